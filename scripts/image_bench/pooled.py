"""Pools the pool/rayon pairs of several pairs.sh sittings (the text summarize.py printed, one
file per sitting) and prints the pooled median and geometric mean with 95% bootstrap intervals
(percentile method, fixed seed, as summarize.py computes them per sitting).
Usage: python3 pooled.py SUMMARY.txt [SUMMARY.txt ...]"""
import re
import statistics as st
import sys

from pair_stats import geomean, interval

ratios = []
for path in sys.argv[1:]:
    for m in re.finditer(r"each pair: (.*)", open(path).read()):
        ratios += [float(x) for x in m.group(1).split()]


print(f"{len(ratios)} pairs from {len(sys.argv) - 1} sittings: pool/rayon median "
      f"{st.median(ratios):.3f} (95% interval {interval(ratios, st.median)}), geometric mean "
      f"{geomean(ratios):.3f} (95% interval {interval(ratios, geomean)}); pool >= rayon in "
      f"{sum(x >= 1.0 for x in ratios)} of {len(ratios)} (ratios as printed, to 3 decimals)")
