"""The statistics summarize.py and pooled.py give of pool/rayon ratios: the geometric mean and
95% bootstrap intervals (percentile method, fixed seed, so a rerun prints the same interval)."""
import math
import random


def geomean(xs):
    return math.exp(sum(map(math.log, xs)) / len(xs))


def interval(xs, f, n=20000):
    """A 95% bootstrap interval of f over the pairs."""
    rng = random.Random(1)
    v = sorted(f(rng.choices(xs, k=len(xs))) for _ in range(n))
    return f"{v[int(0.025 * n)]:.3f}-{v[int(0.975 * n)]:.3f}"
