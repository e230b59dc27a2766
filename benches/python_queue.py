"""Queue throughput and round-trip latency through Python's multiprocessing.

The baseline for benches/queue.rs, which runs this script in the same run. Prints one JSON
object:
  {"python": "3.x.y",
   "queue_throughput": {"median_msgs_per_s": ..., "items": N, "runs": R},
   "queue_round_trip": {"median_us": ..., "round_trips": M, "runs": R},
   "pipe_round_trip":  {"median_us": ..., "round_trips": M, "runs": R}}

Same workloads as the Rust side: small integers from one producer process to one consumer
(the parent) through a Queue; a ping-pong over two Queues; a ping-pong of 8-byte messages over
a duplex Pipe with send_bytes/recv_bytes. A persistent child serves every run, so process start
is not measured. Start method: fork (what the Rust side uses).

Usage: python3 benches/python_queue.py [RUNS]
"""

import json
import multiprocessing as mp
import platform
import statistics
import sys
import time

ITEMS = 100_000
ROUND_TRIPS = 2_000


def producer(ctl, data):
    while True:
        n = ctl.get()
        if n == 0:
            return
        for i in range(n):
            data.put(i)


def echo_queue(ping, pong):
    while True:
        v = ping.get()
        if v is None:
            return
        pong.put(v)


def echo_pipe(conn):
    while True:
        b = conn.recv_bytes()
        if not b:
            return
        conn.send_bytes(b)


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    ctx = mp.get_context("fork")
    out = {"python": platform.python_version()}

    ctl, data = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=producer, args=(ctl, data))
    p.start()
    rates = []
    for _ in range(runs + 1):  # the first run is a warm-up
        t0 = time.perf_counter()
        ctl.put(ITEMS)
        for _ in range(ITEMS):
            data.get()
        rates.append(ITEMS / (time.perf_counter() - t0))
    ctl.put(0)
    p.join()
    out["queue_throughput"] = {"median_msgs_per_s": statistics.median(rates[1:]), "items": ITEMS, "runs": runs}

    ping, pong = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=echo_queue, args=(ping, pong))
    p.start()
    lat = []
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        for i in range(ROUND_TRIPS):
            ping.put(i)
            pong.get()
        lat.append((time.perf_counter() - t0) / ROUND_TRIPS)
    ping.put(None)
    p.join()
    out["queue_round_trip"] = {"median_us": statistics.median(lat[1:]) * 1e6, "round_trips": ROUND_TRIPS, "runs": runs}

    a, b = ctx.Pipe(duplex=True)
    p = ctx.Process(target=echo_pipe, args=(b,))
    p.start()
    b.close()
    msg = b"\x01" * 8
    lat = []
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        for _ in range(ROUND_TRIPS):
            a.send_bytes(msg)
            a.recv_bytes()
        lat.append((time.perf_counter() - t0) / ROUND_TRIPS)
    a.send_bytes(b"")
    p.join()
    out["pipe_round_trip"] = {"median_us": statistics.median(lat[1:]) * 1e6, "round_trips": ROUND_TRIPS, "runs": runs}

    print(json.dumps(out))


if __name__ == "__main__":
    main()
