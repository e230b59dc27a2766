"""Python multiprocessing baselines for the pool benchmarks, printed as one JSON object.

Run: python3 benches/python_pool.py [--quick] [--workers W] [--shm-only]
(--workers sets the pool size, default 2; --shm-only runs only the in-place and sum rows, for
the worker-scaling sweep)
Each figure is the median of several runs. Workloads mirror benches/pool.rs:
  kernel_*: a = a*1.0001 + 0.5 over N float64 (numpy in one process; Pool(2) over
            shared_memory chunks in place; Pool(2) pickling chunks there and back)
  sum_pool_shm: map-reduce sum over the same array with Pool(2) over shared_memory
  map_per_item_*: Pool(2).map(tiny, range(M)) per item, default chunksize and chunksize=1
  apply_roundtrip_us: Pool(2).apply(tiny) back to back
  pool_start_*_ms: Pool(2) start + first map + stop, per start method
"""

import json
import multiprocessing as mp
import statistics
import sys
import time
from multiprocessing import shared_memory

import numpy as np

QUICK = "--quick" in sys.argv
N = (4 if QUICK else 32) * 1024 * 1024
REPS = 3 if QUICK else 5
W = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 2
SHM_ONLY = "--shm-only" in sys.argv


def median_time(fn, reps=REPS):
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


_shm = None


def _attach(name):
    global _shm
    _shm = shared_memory.SharedMemory(name=name)


def _kernel_chunk(args):
    lo, hi, n = args
    a = np.ndarray((n,), dtype=np.float64, buffer=_shm.buf)
    seg = a[lo:hi]
    seg *= 1.0001
    seg += 0.5
    return None


def _sum_chunk(args):
    lo, hi, n = args
    a = np.ndarray((n,), dtype=np.float64, buffer=_shm.buf)
    return float(a[lo:hi].sum())


def _kernel_pickled(chunk):
    return chunk * 1.0001 + 0.5


def tiny(x):
    return x + 1


def chunks(n, parts):
    step = -(-n // parts)
    return [(lo, min(lo + step, n), n) for lo in range(0, n, step)]


def main():
    out = {"python": sys.version.split()[0], "numpy": np.__version__, "n": N, "workers": W}
    a = np.arange(N, dtype=np.float64)

    def numpy_inplace():
        a.__imul__(1.0001)
        a.__iadd__(0.5)

    out["kernel_numpy_1proc_gelem_s"] = N / median_time(numpy_inplace) / 1e9

    shm = shared_memory.SharedMemory(create=True, size=N * 8)
    try:
        sa = np.ndarray((N,), dtype=np.float64, buffer=shm.buf)
        sa[:] = a
        ctx = mp.get_context("fork")
        with ctx.Pool(W, initializer=_attach, initargs=(shm.name,)) as pool:
            parts = chunks(N, 4 * W)
            pool.map(_kernel_chunk, parts)  # warm up
            out["kernel_pool_shm_gelem_s"] = N / median_time(lambda: pool.map(_kernel_chunk, parts)) / 1e9
            out["sum_pool_shm_gelem_s"] = N / median_time(lambda: sum(pool.map(_sum_chunk, parts))) / 1e9
        del sa
    finally:
        shm.close()
        shm.unlink()
    if SHM_ONLY:
        print(json.dumps(out, indent=1))
        return

    with mp.get_context("fork").Pool(W) as pool:
        pieces = np.array_split(a, 4 * W)
        out["kernel_pool_pickle_gelem_s"] = N / median_time(lambda: pool.map(_kernel_pickled, pieces), reps=3) / 1e9
        m = 200_000 if QUICK else 1_000_000
        out["map_per_item_default_us"] = median_time(lambda: pool.map(tiny, range(m)), reps=3) / m * 1e6
        m1 = 20_000 if QUICK else 100_000
        out["map_per_item_chunksize1_us"] = median_time(lambda: pool.map(tiny, range(m1), chunksize=1), reps=3) / m1 * 1e6
        k = 2_000 if QUICK else 10_000
        pool.apply(tiny, (1,))
        out["apply_roundtrip_us"] = median_time(lambda: [pool.apply(tiny, (i,)) for i in range(k)], reps=3) / k * 1e6

    for method in ("fork", "forkserver", "spawn"):
        ctx = mp.get_context(method)

        def start_stop():
            with ctx.Pool(2) as p:
                p.map(tiny, [1, 2])

        out[f"pool_start_{method}_ms"] = median_time(start_stop, reps=3) * 1e3

    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
