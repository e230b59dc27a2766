//! Per-call cost of `Manager` proxies against Python's `Manager()` in the same run.
//!
//! `cargo bench --bench manager` runs `benches/manager.py` first (Python's medians, printed as
//! JSON), then the same workloads here, each the median of 5 runs, and prints both side by side:
//!
//! - `dict_set_get_unix`: `d.set(k, v)` then `d.get(k)` from this process (one "pair"), over the
//!   default Unix socket;
//! - `dict_set_get_tcp`: the same over TCP on 127.0.0.1;
//! - `dict_set_get_4procs`: the same pairs from 4 client processes at once, in pairs per second
//!   counted from the slowest client's time;
//! - `queue_put_get`: `q.put(x)` then `q.get()`;
//! - `shared_dict_set_get` and `shared_dict_4procs`: the first and third rows with a dict made
//!   by `Manager::dict_with_capacity` (the fast path: the table in shared memory, no round
//!   trip), compared with the same Python rows; `shared_queue_put_get`: the queue row with a
//!   queue made by `Manager::queue_with_capacity` (a ring in shared memory);
//! - `array_set_get`: `a.set(k, x)` then `a.get(k)` on a `Manager::array::<f64>(1024)` (in
//!   shared memory), against Python's `Manager().Array("d")`;
//! - `raw_round_trip_x2`: the floor: two 16-byte round trips over a bare Unix socket pair
//!   between two processes (what one pair costs with no framing, encoding, authentication or
//!   server work at all).
//!
//! Server and clients start under `fork`, as Python's side does. Each client's first call
//! (connect and handshake) happens before its timing starts, as Python's proxies connect on
//! creation.

#[path = "support/python.rs"]
mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use shmpool::connection::Address;
use shmpool::manager::{ArrayProxy, DictProxy, QueueProxy};
use shmpool::{Manager, StartMethod, get_context};

const PAIRS: u64 = 20_000;
const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn pairs(d: &DictProxy<u64, u64>, n: u64) -> Duration {
    let t = Instant::now();
    for i in 0..n {
        d.set(&(i & 1023), &i).unwrap();
        d.get(&(i & 1023)).unwrap();
    }
    t.elapsed()
}

/// Median microseconds per set + get pair.
fn per_pair_us(d: &DictProxy<u64, u64>) -> f64 {
    d.len().unwrap(); // connect first
    median((0..RUNS).map(|_| pairs(d, PAIRS).as_secs_f64() / PAIRS as f64 * 1e6).collect())
}

/// A client process: connects, then times its pairs and reports the seconds.
fn client(args: (DictProxy<u64, u64>, QueueProxy<f64>, u64)) -> Result<(), String> {
    let (d, out, n) = args;
    d.len().map_err(|e| e.to_string())?;
    let secs = pairs(&d, n).as_secs_f64();
    out.put(&secs).map_err(|e| e.to_string())
}

/// Median pairs per second from 4 client processes at once.
fn four_procs(m: &Manager, d: &DictProxy<u64, u64>) -> f64 {
    let out = m.queue::<f64>().unwrap();
    let ctx = get_context(StartMethod::Fork);
    median(
        (0..RUNS)
            .map(|_| {
                let mut ps: Vec<_> = (0..4)
                    .map(|_| ctx.start(client, (d.clone(), out.clone(), PAIRS / 4)).unwrap())
                    .collect();
                let slowest =
                    (0..4).map(|_| out.get().unwrap()).fold(0.0f64, |a: f64, b: f64| a.max(b));
                for p in &mut ps {
                    assert!(p.join().unwrap().success());
                }
                PAIRS as f64 / slowest
            })
            .collect(),
    )
}

/// Median microseconds per `a.set(k, x)` + `a.get(k)` pair.
fn array_us(a: &ArrayProxy<f64>) -> f64 {
    a.len().unwrap(); // map first
    median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                for i in 0..PAIRS {
                    a.set((i & 1023) as usize, i as f64).unwrap();
                    a.get((i & 1023) as usize).unwrap();
                }
                t.elapsed().as_secs_f64() / PAIRS as f64 * 1e6
            })
            .collect(),
    )
}

fn queue_us(q: &QueueProxy<u64>) -> f64 {
    q.len().unwrap();
    median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                for i in 0..PAIRS {
                    q.put(&i).unwrap();
                    q.get().unwrap();
                }
                t.elapsed().as_secs_f64() / PAIRS as f64 * 1e6
            })
            .collect(),
    )
}

/// Median microseconds of two 16-byte round trips over a bare Unix socket pair to an echo
/// child: a pair of calls with nothing but the transport.
fn raw_round_trip_x2() -> f64 {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let mut echo = get_context(StartMethod::Fork)
        .start_closure(move || {
            let mut buf = [0u8; 16];
            while b.read_exact(&mut buf).is_ok() && buf != [0xff; 16] {
                b.write_all(&buf).unwrap();
            }
        })
        .unwrap();
    let mut buf = [0u8; 16];
    let us = median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..2 * PAIRS {
                    a.write_all(&buf).unwrap();
                    a.read_exact(&mut buf).unwrap();
                }
                t.elapsed().as_secs_f64() / PAIRS as f64 * 1e6
            })
            .collect(),
    );
    a.write_all(&[0xff; 16]).unwrap();
    assert!(echo.join().unwrap().success());
    us
}

fn main() {
    // Criterion's command line (`--bench`, filters) is accepted and ignored: this bench always
    // runs all its workloads.
    let py = support::baseline("manager.py");
    let floor = raw_round_trip_x2();
    let m = Manager::builder().start_method(StartMethod::Fork).start().unwrap();
    let d = m.dict::<u64, u64>().unwrap();
    let unix = per_pair_us(&d);
    let procs = four_procs(&m, &d);
    let queue = queue_us(&m.queue::<u64>().unwrap());
    let sd = m.dict_with_capacity::<u64, u64>(4096, 1 << 20).unwrap();
    let shared = per_pair_us(&sd);
    let shared_procs = four_procs(&m, &sd);
    let shared_queue = queue_us(&m.queue_with_capacity::<u64>(1 << 16, 64).unwrap());
    let array = array_us(&m.array::<f64>(1024).unwrap());
    drop(m);
    let tcp_m = Manager::builder()
        .start_method(StartMethod::Fork)
        .address(Address::localhost(0))
        .start()
        .unwrap();
    let tcp = per_pair_us(&tcp_m.dict::<u64, u64>().unwrap());
    drop(tcp_m);
    let p = |k: &str, f: &str| py.as_ref().and_then(|v| v[k][f].as_f64());
    println!("\nworkload              shmpool         python          python/shmpool");
    let row = |name: &str, ours: f64, theirs: Option<f64>, unit: &str, higher_better: bool| {
        let ratio = theirs.map(|t| if higher_better { ours / t } else { t / ours });
        println!(
            "{name:<21} {ours:>9.1} {unit:<5} {:>9} {unit:<5} {}",
            theirs.map_or("n/a".to_string(), |t| format!("{t:.1}")),
            ratio.map_or("n/a".to_string(), |r| format!("{r:.1}x")),
        );
    };
    row("dict_set_get_unix", unix, p("dict_set_get_unix", "median_us"), "us", false);
    row("dict_set_get_tcp", tcp, p("dict_set_get_tcp", "median_us"), "us", false);
    row("dict_set_get_4procs", procs, p("dict_set_get_4procs", "median_pairs_per_s"), "/s", true);
    row("shared_dict_set_get", shared, p("dict_set_get_unix", "median_us"), "us", false);
    let py4 = p("dict_set_get_4procs", "median_pairs_per_s");
    row("shared_dict_4procs", shared_procs, py4, "/s", true);
    row("queue_put_get", queue, p("queue_put_get", "median_us"), "us", false);
    row("shared_queue_put_get", shared_queue, p("queue_put_get", "median_us"), "us", false);
    row("array_set_get", array, p("array_set_get_unix", "median_us"), "us", false);
    row("raw_round_trip_x2", floor, None, "us", false);
}
