"""Summarizes a pairs.sh run: per contender the median files/s, MB/s and per-file stage times,
and per setting the pool/rayon ratio of each pair (median and quartiles, and the median's and the
geometric mean's 95% bootstrap intervals over the pairs, so that "level" and "ahead" can be told
apart). Rounds without a contender's file (pairs.sh's BASELINES=N runs sequential and Python
every Nth round) are skipped for that contender.
Usage: python3 summarize.py RUNS_DIR PAIRS"""
import json
import os
import statistics as st
import sys

from pair_stats import geomean, interval

runs, pairs = sys.argv[1], int(sys.argv[2])


def load(label, r):
    j = json.load(open(f"{runs}/{label}-{r}.json"))
    if "totals" not in j:  # pool_pillow.py's line
        return j
    t = j["totals"]
    n = max(t["written"], 1)
    return {"files_per_s": t["files_per_s"], "in_mb_per_s": t["in_mb_per_s"],
            "decode_ms": t["decode_ms"] / n, "process_ms": t["process_ms"] / n,
            "encode_ms": t["encode_ms"] / n, "failed": t["failed"]}


def quartiles(xs):
    q = st.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return f"{q[1]:.3f} ({q[0]:.3f}-{q[2]:.3f})"


rows = [("pool-420", "`shmpool images --chroma 420`"), ("rayon-420", "`--engine rayon --chroma 420`"),
        ("sequential-420", "`--engine sequential --chroma 420`"),
        ("pool-auto", "`shmpool images` (auto: 4:4:4 at q90)"), ("rayon-auto", "`--engine rayon`"),
        ("sequential-auto", "`--engine sequential`"), ("python", "Python `Pool` + Pillow (4:2:0)")]
print(f"| contender | runs | files/s (median) | MB/s | decode / process / encode ms per file |")
print("|---|---|---|---|---|")
data = {}
for label, name in rows:
    xs = [load(label, r) for r in range(1, pairs + 1) if os.path.exists(f"{runs}/{label}-{r}.json")]
    assert all(x.get("failed", 0) == 0 for x in xs), f"{label}: some files failed"
    data[label] = xs
    m = {k: st.median(x[k] for x in xs) for k in ("files_per_s", "in_mb_per_s", "decode_ms", "process_ms", "encode_ms")}
    print(f"| {name} | {len(xs)} | {m['files_per_s']:.1f} | {m['in_mb_per_s']:.1f} | "
          f"{m['decode_ms']:.2f} / {m['process_ms']:.2f} / {m['encode_ms']:.2f} |")


def pair_line(label, ratio):
    wins = sum(x >= 1.0 for x in ratio)
    return (f"{label}: pool/rayon per pair, median (quartiles) {quartiles(ratio)}, 95% interval "
            f"{interval(ratio, st.median)}; geometric mean {geomean(ratio):.3f}, 95% interval "
            f"{interval(ratio, geomean)}; pool >= rayon in {wins} of {len(ratio)} pairs")


print()
both = []
for chroma in ("420", "auto"):
    p, r = data[f"pool-{chroma}"], data[f"rayon-{chroma}"]
    ratio = [a["files_per_s"] / b["files_per_s"] for a, b in zip(p, r)]
    both += ratio
    print(f"{pair_line(f'--chroma {chroma}', ratio)}; each pair: {' '.join(f'{x:.3f}' for x in ratio)}")
print(pair_line("both settings", both))
ratio = [load("pool-420", r)["files_per_s"] / load("python", r)["files_per_s"]
         for r in range(1, pairs + 1) if os.path.exists(f"{runs}/python-{r}.json")]
print(f"pool --chroma 420 / Python Pool + Pillow, same round: median (quartiles) {quartiles(ratio)}")
loads = [float(l.split("load average:")[1].split(",")[0]) for l in open(f"{runs}/load.txt")
         if "load average:" in l]
if loads:
    print(f"1-minute load average at the rounds' starts: {min(loads):.2f}-{max(loads):.2f} "
          f"(median {st.median(loads):.2f})")
