//! Process start + join per start method, against Python's `multiprocessing` in the same run.
//!
//! `cargo bench --bench process` runs `benches/python_mp.py` first (the baseline: Python's
//! medians, printed as JSON), then measures the median of 31 start + join rounds per method,
//! then runs the criterion group `process_start_join` (sample size 10), and ends with a
//! side-by-side summary of the medians, Python's next to ours, with the ratio.
//!
//! The fork rows use `allow_threads()`: criterion may have started threads of its own by then,
//! and the child only returns, so the multi-threaded fork is safe here.

#[path = "support/python.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::Criterion;
use shmpool::{Context, StartMethod, get_context};

const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn];

fn noop(_: ()) {}

fn ctx(m: StartMethod) -> Context {
    // SAFETY: the benchmarked children only return; they take no lock criterion's threads
    // could hold.
    unsafe { get_context(m).allow_threads() }
}

fn start_join(ctx: &Context) {
    let mut p = ctx.start(noop, ()).expect("start");
    assert!(p.join().expect("join").success());
}

fn python_baseline() -> Option<serde_json::Value> {
    support::baseline("python_mp.py")
}

fn median_ms(ctx: &Context, runs: usize) -> f64 {
    start_join(ctx); // warm-up (starts the forkserver)
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            start_join(ctx);
            t0.elapsed()
        })
        .collect();
    t.sort();
    t[runs / 2].as_secs_f64() * 1e3
}

fn main() {
    let python = python_baseline();

    // The side-by-side medians first, while this process is as small as Python's (fork and
    // exit cost grows with the parent's mappings, and criterion's analysis grows them).
    let ours: Vec<f64> = METHODS.iter().map(|&m| median_ms(&ctx(m), 31)).collect();

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("process_start_join");
        g.sample_size(10);
        for m in METHODS {
            let ctx = ctx(m);
            g.bench_function(m.name(), |b| b.iter(|| start_join(&ctx)));
        }
        g.finish();
    }
    c.final_summary();

    println!("\nstart + join, median of 31 (after one warm-up, measured before criterion ran):");
    println!("{:<12} {:>12} {:>12} {:>10}", "method", "shmpool ms", "python ms", "speed-up");
    for (m, ours) in METHODS.iter().zip(ours) {
        let theirs = python.as_ref().and_then(|p| p[m.name()]["median_ms"].as_f64());
        match theirs {
            Some(py) => {
                println!("{:<12} {:>12.3} {:>12.3} {:>9.1}x", m.name(), ours, py, py / ours)
            }
            None => println!("{:<12} {:>12.3} {:>12} {:>10}", m.name(), ours, "-", "-"),
        }
    }
    shmpool::process::shutdown_forkserver().expect("forkserver shutdown");
}
