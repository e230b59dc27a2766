"""Python baselines for issue 10's serialized-task benchmarks (benches/pool.rs groups
pool/map_100k_short_strings and pool/1000_apply_async_in_flight), printed as one JSON object.

Run: python3 benches/python_tasks.py [--workers W]
Each figure is the median of 7 runs, Pool(W) under fork and under forkserver, then the same
three with loky's reusable executor and pebble's ProcessPool (W workers each), when installed
(python3 -m pip install loky pebble); a contender that is not installed is skipped with the
reason printed under "skipped". loky and pebble map with Python's default chunksize,
ceil(n / (4 * W)), so every contender ships the same chunks.
  map_100k_short_strings_ms: pool.map(len, names) over 100,000 "/data/file-{i}.csv" strings,
                             default chunksize (pickles each chunk there and back)
  sequential_map_100k_short_strings_ms: list(map(len, names)) in this process, so that
                             (pool - sequential) / 100,000 is the pool's own cost per task
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
    # The same tasks in this process, for (pool - sequential) / tasks: the pool's own cost.
    out["sequential_map_100k_short_strings_ms"] = median_ms(lambda: list(map(len, names)))
    for method in ("fork", "forkserver"):
        with mp.get_context(method).Pool(W) as pool:
            pool.map(len, names[:1000])  # warm up
            out[f"{method}_map_100k_short_strings_ms"] = median_ms(lambda: pool.map(len, names))
            out[f"{method}_apply_async_1000_ms"] = median_ms(
                lambda: [r.get() for r in [pool.apply_async(tiny, (i,)) for i in range(1000)]])
            k = 2000
            out[f"{method}_apply_roundtrip_us"] = median_ms(
                lambda: [pool.apply(tiny, (i,)) for i in range(k)], reps=3) / k * 1e3
    chunksize = -(-len(names) // (4 * W))
    out["skipped"] = {}
    for name, bench in (("loky", loky_figures), ("pebble", pebble_figures)):
        try:
            out.update(bench(names, chunksize))
        except ImportError as e:
            out["skipped"][name] = f"not installed ({e}); python3 -m pip install {name}"
    print(json.dumps(out, indent=1))


def loky_figures(names, chunksize):
    """loky's reusable executor (joblib's backend): map, 1000 submits in flight, round trips."""
    from loky import get_reusable_executor

    ex = get_reusable_executor(max_workers=W)
    list(ex.map(len, names[:1000], chunksize=chunksize))  # warm up
    out = {"loky": __import__("loky").__version__}
    out["loky_map_100k_short_strings_ms"] = median_ms(
        lambda: list(ex.map(len, names, chunksize=chunksize)))
    out["loky_apply_async_1000_ms"] = median_ms(
        lambda: [f.result() for f in [ex.submit(tiny, i) for i in range(1000)]])
    k = 2000
    out["loky_apply_roundtrip_us"] = median_ms(
        lambda: [ex.submit(tiny, i).result() for i in range(k)], reps=3) / k * 1e3
    ex.shutdown(wait=True)
    return out


def pebble_figures(names, chunksize):
    """pebble's ProcessPool (per-task timeouts): map, 1000 schedules in flight, round trips."""
    import pebble

    out = {"pebble": pebble.__version__}
    with pebble.ProcessPool(max_workers=W) as pool:
        list(pool.map(len, names[:1000], chunksize=chunksize).result())  # warm up
        out["pebble_map_100k_short_strings_ms"] = median_ms(
            lambda: list(pool.map(len, names, chunksize=chunksize).result()))
        out["pebble_apply_async_1000_ms"] = median_ms(
            lambda: [f.result() for f in [pool.schedule(tiny, args=(i,)) for i in range(1000)]])
        k = 2000
        out["pebble_apply_roundtrip_us"] = median_ms(
            lambda: [pool.schedule(tiny, args=(i,)).result() for i in range(k)], reps=3) / k * 1e3
    return out


if __name__ == "__main__":
    main()
