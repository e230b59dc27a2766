"""Per-call cost of Python's multiprocessing Manager proxies.

The baseline for benches/manager.rs, which runs this script in the same run. Prints one JSON
object:
  {"python": "3.x.y",
   "dict_set_get_unix":  {"median_us": ..., "pairs": N, "runs": R},
   "dict_set_get_tcp":   {"median_us": ..., "pairs": N, "runs": R},
   "dict_set_get_4procs": {"median_pairs_per_s": ..., "pairs": N, "runs": R},
   "queue_put_get":      {"median_us": ..., "pairs": N, "runs": R},
   "array_set_get_unix": {"median_us": ..., "pairs": N, "runs": R}}

Same workloads as the Rust side: d[k] = v then d[k] from this process (a set and a get: one
"pair"), over the default Manager() (a Unix socket) and over a BaseManager-style TCP manager
on 127.0.0.1; the same pairs from 4 client processes at once (pairs per second, counted from the
slowest client's time); q.put(x) then q.get(); a[k] = x then a[k] on Manager().Array("d"). Start method: fork.

Usage: python3 benches/manager.py [RUNS]
"""

import json
import multiprocessing as mp
import platform
import statistics
import sys
import time
from multiprocessing.managers import SyncManager

PAIRS = 5_000


def pairs(d, n):
    t = time.perf_counter()
    for i in range(n):
        d[i & 1023] = i
        d[i & 1023]
    return time.perf_counter() - t


def client(d, n, out):
    out.put(pairs(d, n))


def per_pair_us(d, runs):
    return statistics.median(pairs(d, PAIRS) for _ in range(runs)) / PAIRS * 1e6


def four_procs(m, d, runs):
    rates = []
    for _ in range(runs):
        out = m.Queue()
        ps = [mp.Process(target=client, args=(d, PAIRS // 4, out)) for _ in range(4)]
        for p in ps:
            p.start()
        slowest = max(out.get() for _ in ps)
        for p in ps:
            p.join()
        rates.append(PAIRS / slowest)
    return statistics.median(rates)


def queue_us(q, runs):
    def once():
        t = time.perf_counter()
        for i in range(PAIRS):
            q.put(i)
            q.get()
        return time.perf_counter() - t
    return statistics.median(once() for _ in range(runs)) / PAIRS * 1e6


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    mp.set_start_method("fork")
    out = {"python": platform.python_version()}
    with mp.Manager() as m:
        d = m.dict()
        out["dict_set_get_unix"] = {"median_us": per_pair_us(d, runs), "pairs": PAIRS, "runs": runs}
        out["dict_set_get_4procs"] = {
            "median_pairs_per_s": four_procs(m, d, runs), "pairs": PAIRS, "runs": runs}
        out["queue_put_get"] = {"median_us": queue_us(m.Queue(), runs), "pairs": PAIRS, "runs": runs}
        a = m.Array("d", [0.0] * 1024)
        out["array_set_get_unix"] = {"median_us": per_pair_us(a, runs), "pairs": PAIRS, "runs": runs}
    tcp = SyncManager(address=("127.0.0.1", 0), authkey=b"bench")
    tcp.start()
    try:
        d = tcp.dict()
        out["dict_set_get_tcp"] = {"median_us": per_pair_us(d, runs), "pairs": PAIRS, "runs": runs}
    finally:
        tcp.shutdown()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
