//! Queue throughput and round-trip latency between two processes, against Python's
//! `multiprocessing` in the same run.
//!
//! `cargo bench --bench queue` runs `benches/python_queue.py` first (Python's medians, printed as
//! JSON), then measures the same three workloads here as medians of 5 runs (after a warm-up),
//! then runs the criterion group `queue` (sample size 10), and ends with a side-by-side summary:
//!
//! - `throughput_u64`: one producer process puts `u64`s, the consumer (this process) gets them,
//!   through a `Queue<u64>` of 1024 slots (Python: `Queue()` of ints);
//! - `queue_round_trip`: put on one queue, a child echoes onto another, get the echo;
//! - `pipe_round_trip`: 8-byte `send_bytes` / `recv_bytes` ping-pong over a duplex pipe.
//!
//! A second criterion group, `message_queue`, compares `MessageQueue` put/get throughput,
//! unbounded (the default) against bounded: in one process, and streamed from a producer
//! process (`message_queue_group`).
//!
//! The serving children are forked before criterion starts (while this process has one thread)
//! and serve every run, so process start is never measured.

#[path = "support/python.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::Criterion;
use shmpool::{Connection, MessageQueue, Queue, scope};

const ITEMS: u64 = 1_000_000;
const ROUND_TRIPS: u32 = 20_000;
const RUNS: usize = 5;
const STOP: u64 = u64::MAX;

fn python_baseline() -> Option<serde_json::Value> {
    support::baseline("python_queue.py")
}

/// The three endpoints the parent drives; the children serve the other ends.
struct Rig<'a> {
    ctl: &'a Queue<u64>,
    data: &'a Queue<u64>,
    ping: &'a Queue<u64>,
    pong: &'a Queue<u64>,
    pipe: Connection,
}

impl Rig<'_> {
    /// Time for `n` items from the producer child to this process.
    fn stream(&self, n: u64) -> Duration {
        let t0 = Instant::now();
        self.ctl.put(n).unwrap();
        for _ in 0..n {
            self.data.get().unwrap();
        }
        t0.elapsed()
    }

    fn queue_round_trip(&self) {
        self.ping.put(1).unwrap();
        self.pong.get().unwrap();
    }

    fn pipe_round_trip(&mut self) {
        let mut buf = [1u8; 8];
        self.pipe.send_bytes(&buf).unwrap();
        self.pipe.recv_bytes_into(&mut buf).unwrap();
    }
}

/// `MessageQueue` put/get throughput in one process, unbounded (the default) against bounded:
/// batches of 1,000 `(u32, String)` messages that fit the first ring (the steady state), and a
/// burst of 100,000 put before any get (the unbounded queue grows through several rings and
/// removes them as it drains; a bounded ring would block the putter).
fn message_queue_group(c: &mut Criterion, streams: &MessageStreams) {
    let msg = |i: u32| (i, "a short message text");
    let batch = |q: &MessageQueue, size: u64, n: u64| {
        let t0 = Instant::now();
        let mut left = n;
        while left > 0 {
            let k = left.min(size);
            (0..k).for_each(|i| q.put(&msg(i as u32)).unwrap());
            (0..k).for_each(|_| drop(q.get::<(u32, String)>().unwrap()));
            left -= k;
        }
        t0.elapsed()
    };
    let bounded = MessageQueue::bounded(64 * 1024, 1024).unwrap();
    let unbounded = MessageQueue::new().unwrap();
    let mut g = c.benchmark_group("message_queue");
    g.sample_size(10);
    g.bench_function("bounded_put_get_per_msg", |b| b.iter_custom(|n| batch(&bounded, 1000, n)));
    g.bench_function("unbounded_put_get_per_msg", |b| {
        b.iter_custom(|n| batch(&unbounded, 1000, n))
    });
    g.bench_function("unbounded_burst_100k_per_msg", |b| {
        b.iter_custom(|n| batch(&unbounded, 100_000, n))
    });
    let items = |q: &Queue<u64>, n: u64| {
        let t0 = Instant::now();
        let mut left = n;
        while left > 0 {
            let k = left.min(1000);
            (0..k).for_each(|i| q.put(i).unwrap());
            (0..k).for_each(|_| {
                std::hint::black_box(q.get().unwrap());
            });
            left -= k;
        }
        t0.elapsed()
    };
    let pod_bounded = Queue::<u64>::bounded(1024).unwrap();
    let pod_unbounded = Queue::<u64>::new().unwrap();
    g.bench_function("pod_bounded_put_get_per_item", |b| b.iter_custom(|n| items(&pod_bounded, n)));
    g.bench_function("pod_unbounded_put_get_per_item", |b| {
        b.iter_custom(|n| items(&pod_unbounded, n))
    });
    g.bench_function("stream_bounded_per_msg", |b| b.iter_custom(|n| streams.stream(false, n)));
    g.bench_function("stream_unbounded_per_msg", |b| b.iter_custom(|n| streams.stream(true, n)));
    g.finish();
}

/// A producer process streams `(u32, String)` messages into one of two `MessageQueue`s, bounded
/// (64 KiB ring) or unbounded, on command; this process gets them.
struct MessageStreams {
    ctl: Queue<u64>,
    bounded: MessageQueue,
    unbounded: MessageQueue,
}

impl MessageStreams {
    /// Commands: `n << 1 | unbounded`, or `STOP`.
    fn serve(&self) {
        while let Ok(cmd) = self.ctl.get() {
            if cmd == STOP {
                return;
            }
            let q = if cmd & 1 == 1 { &self.unbounded } else { &self.bounded };
            (0..cmd >> 1).for_each(|i| q.put(&(i as u32, "a short message text")).unwrap());
        }
    }

    /// Time for `n` messages from the producer child to this process.
    fn stream(&self, unbounded: bool, n: u64) -> Duration {
        let q = if unbounded { &self.unbounded } else { &self.bounded };
        let t0 = Instant::now();
        self.ctl.put(n << 1 | u64::from(unbounded)).unwrap();
        for _ in 0..n {
            drop(q.get::<(u32, String)>().unwrap());
        }
        t0.elapsed()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let python = python_baseline();
    let ctl = Queue::<u64>::bounded(4).unwrap();
    let data = Queue::<u64>::bounded(1024).unwrap();
    let ping = Queue::<u64>::bounded(4).unwrap();
    let pong = Queue::<u64>::bounded(4).unwrap();
    let (parent_end, mut child_end) = shmpool::pipe(true).unwrap();
    let streams = MessageStreams {
        ctl: Queue::<u64>::bounded(4).unwrap(),
        bounded: MessageQueue::bounded(64 * 1024, 1024).unwrap(),
        unbounded: MessageQueue::new().unwrap(),
    };
    scope(|s| {
        let (c, d) = (&ctl, &data);
        let producer = s
            .fork(move || {
                while let Ok(n) = c.get() {
                    if n == STOP {
                        return;
                    }
                    (0..n).for_each(|i| d.put(i).unwrap());
                }
            })
            .unwrap();
        let (pi, po) = (&ping, &pong);
        let echo = s
            .fork(move || {
                while let Ok(v) = pi.get() {
                    if v == STOP {
                        return;
                    }
                    po.put(v).unwrap();
                }
            })
            .unwrap();
        let pipe_echo = s
            .fork(move || {
                let mut buf = [0u8; 8];
                while let Ok(n) = child_end.recv_bytes_into(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    child_end.send_bytes(&buf[..n]).unwrap();
                }
            })
            .unwrap();
        let st = &streams;
        let message_producer = s.fork(move || st.serve()).unwrap();
        let mut rig = Rig { ctl: &ctl, data: &data, ping: &ping, pong: &pong, pipe: parent_end };

        // Side-by-side medians, measured the same way as the Python script.
        rig.stream(ITEMS / 10);
        let rate =
            median((0..RUNS).map(|_| ITEMS as f64 / rig.stream(ITEMS).as_secs_f64()).collect());
        let per_trip = |f: &mut dyn FnMut()| {
            (0..1000).for_each(|_| f());
            median(
                (0..RUNS)
                    .map(|_| {
                        let t0 = Instant::now();
                        (0..ROUND_TRIPS).for_each(|_| f());
                        t0.elapsed().as_secs_f64() * 1e6 / ROUND_TRIPS as f64
                    })
                    .collect(),
            )
        };
        let queue_rt = per_trip(&mut || rig.queue_round_trip());
        let pipe_rt = per_trip(&mut || rig.pipe_round_trip());

        let mut c = Criterion::default().configure_from_args();
        {
            let mut g = c.benchmark_group("queue");
            g.sample_size(10);
            g.bench_function("throughput_u64_per_item", |b| b.iter_custom(|n| rig.stream(n)));
            g.bench_function("queue_round_trip", |b| b.iter(|| rig.queue_round_trip()));
            g.bench_function("pipe_round_trip", |b| b.iter(|| rig.pipe_round_trip()));
            g.finish();
        }
        message_queue_group(&mut c, &streams);
        c.final_summary();

        ctl.put(STOP).unwrap();
        ping.put(STOP).unwrap();
        streams.ctl.put(STOP).unwrap();
        rig.pipe.send_bytes(&[]).unwrap();
        for child in [producer, echo, pipe_echo, message_producer] {
            assert!(child.join().unwrap().success());
        }

        let py = |k: &str, f: &str| python.as_ref().and_then(|p| p[k][f].as_f64());
        println!("\nmedians of {RUNS} runs (after a warm-up, measured before criterion ran):");
        println!("{:<18} {:>14} {:>14} {:>9}", "workload", "shmpool", "python", "ratio");
        let row = |name: &str,
                   ours: f64,
                   theirs: Option<f64>,
                   unit: &str,
                   better: fn(f64, f64) -> f64| {
            match theirs {
                Some(t) => println!(
                    "{name:<18} {ours:>11.2} {unit} {t:>11.2} {unit} {:>8.1}x",
                    better(ours, t)
                ),
                None => println!("{name:<18} {ours:>11.2} {unit} {:>14} {:>9}", "-", "-"),
            }
        };
        let py_rate = py("queue_throughput", "median_msgs_per_s").map(|r| r / 1e6);
        row("throughput_u64", rate / 1e6, py_rate, "M/s", |o, t| o / t);
        row("queue_round_trip", queue_rt, py("queue_round_trip", "median_us"), " us", |o, t| t / o);
        row("pipe_round_trip", pipe_rt, py("pipe_round_trip", "median_us"), " us", |o, t| t / o);
    })
    .unwrap();
}
