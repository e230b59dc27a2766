"""Process start + join through Python's multiprocessing, per start method.

The baseline for benches/process.rs, which runs this script in the same run. Prints one JSON
object: {"python": "3.x.y", "fork": {"median_ms": ..., "runs": N}, "forkserver": ..., "spawn": ...}.
Each method is warmed up once first (for forkserver that starts the server), as criterion's
warm-up does for the Rust side.

Usage: python3 benches/python_mp.py [RUNS]
"""

import json
import multiprocessing as mp
import platform
import statistics
import sys
import time


def noop():
    pass


def start_join(ctx):
    p = ctx.Process(target=noop)
    t0 = time.perf_counter()
    p.start()
    p.join()
    dt = time.perf_counter() - t0
    assert p.exitcode == 0, p.exitcode
    return dt


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    out = {"python": platform.python_version()}
    for method in ("fork", "forkserver", "spawn"):
        ctx = mp.get_context(method)
        start_join(ctx)  # warm-up (starts the forkserver)
        times = [start_join(ctx) for _ in range(runs)]
        out[method] = {"median_ms": statistics.median(times) * 1e3, "runs": runs}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
