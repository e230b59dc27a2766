"""Python multiprocessing baseline for the sync benchmark: a Value incremented under its lock by
two processes, printed as JSON (median ns per increment over several runs).

Run: python3 benches/python_sync.py
"""

import json
import multiprocessing as mp
import statistics
import sys
import time

N = 200_000


def work(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def run_once(ctx):
    v = ctx.Value("q", 0)
    ps = [ctx.Process(target=work, args=(v, N)) for _ in range(2)]
    t = time.perf_counter()
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    dt = time.perf_counter() - t
    assert v.value == 2 * N, v.value
    return dt / (2 * N) * 1e9


def main():
    ctx = mp.get_context("fork")
    runs = [run_once(ctx) for _ in range(5)]
    print(json.dumps({"python": sys.version.split()[0], "value_increment_2proc_ns": statistics.median(runs),
                      "increments": 2 * N, "runs": len(runs)}))


if __name__ == "__main__":
    main()
