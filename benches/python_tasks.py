"""Python baselines for issue 10's serialized-task benchmarks (benches/pool.rs groups
pool/map_100k_short_strings and pool/1000_apply_async_in_flight), printed as one JSON object.

Run: python3 benches/python_tasks.py [--workers W]
Each figure is the median of 7 runs, Pool(W) under fork and under forkserver.
  map_100k_short_strings_ms: pool.map(len, names) over 100,000 "/data/file-{i}.csv" strings,
                             default chunksize (pickles each chunk there and back)
  apply_async_1000_ms: [pool.apply_async(tiny, (i,)) for i in range(1000)], then every get()
  apply_roundtrip_us: pool.apply(tiny, (1,)) back to back
"""

import json
import multiprocessing as mp
import statistics
import sys
import time

W = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 2


def tiny(x):
    return x + 1


def median_ms(fn, reps=7):
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def main():
    names = [f"/data/file-{i}.csv" for i in range(100_000)]
    out = {"python": sys.version.split()[0], "workers": W}
    for method in ("fork", "forkserver"):
        with mp.get_context(method).Pool(W) as pool:
            pool.map(len, names[:1000])  # warm up
            out[f"{method}_map_100k_short_strings_ms"] = median_ms(lambda: pool.map(len, names))
            out[f"{method}_apply_async_1000_ms"] = median_ms(
                lambda: [r.get() for r in [pool.apply_async(tiny, (i,)) for i in range(1000)]])
            k = 2000
            out[f"{method}_apply_roundtrip_us"] = median_ms(
                lambda: [pool.apply(tiny, (i,)) for i in range(k)], reps=3) / k * 1e3
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
