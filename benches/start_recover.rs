//! Pool start and worker-death recovery per start method, in a parent that holds 0, 1 and 4 GiB
//! of touched private heap (issue 15), plus a bare fork with the same parent, and a bare fork of
//! a parent holding a large shared array (kept out of forks by `MADV_DONTFORK`).
//!
//! ```sh
//! cargo bench --bench start_recover                       # sizes 0,1,4 GiB, 7 runs each
//! cargo bench --bench start_recover -- --sizes 0,1 --runs 5 --methods spawn,forkserver
//! cargo bench --bench start_recover -- --shared 4         # + fork with a 4 GiB SharedArray
//! cargo bench --bench start_recover -- --apply-only       # only the apply round trip
//! ```
//!
//! Every figure is a median of `--runs` (after one warm-up), in milliseconds:
//! - **start**: `Pool` of 2 workers built, one `apply` answered, pool dropped (workers killed
//!   and reaped). Under forkserver the server is already running (launched by the warm-up; its
//!   launch is reported on its own, `server launch`).
//! - **death**: the parent is blocked (asleep) in a job whose only chunk a worker runs; 20 to
//!   30 ms in (spread evenly over the runs, so a periodic check would be met at every phase),
//!   that worker notes the time (`CLOCK_MONOTONIC`, one clock for all processes) and SIGKILLs
//!   itself. `noticed` is death -> the job returns `Error::WorkerDied` (the parent noticed the
//!   death and started the replacement); `next apply` is death -> the next `apply` returned.
//! - **fork**: a bare `Process` under fork started and joined (what a fork of this parent costs).
//! - **apply**: the `apply` round trip, back to back (median of 20 batches of 5,000, after
//!   10,000 to warm up), per method, in the first parent size only: how the parent sleeps and
//!   is woken must not slow the hot path, where it spins.
//!
//! No criterion and no threads: the process stays single-threaded, so fork is allowed, and its
//! size is what the heap makes it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use shmpool::{Error, Pool, SharedArray, StartMethod, get_context};

fn tiny(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7
}

/// The one chunk of the death job: waits the microseconds in `c[0]` (the parent sleeps by then),
/// notes the time there and kills its own worker (SIGKILL).
fn die_later(c: &mut [u64]) {
    std::thread::sleep(Duration::from_micros(c[0]));
    c[0] = now_ns();
    // SAFETY: raise has no memory effects; it ends this (worker) process.
    unsafe { libc::raise(libc::SIGKILL) };
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the machine.
fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn noop(_: ()) {}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A private heap of `gib` GiB, every page written (so the page tables exist).
fn touched_heap(gib: usize) -> Vec<u8> {
    let mut v = vec![0u8; gib << 30];
    for i in (0..v.len()).step_by(4096) {
        v[i] = 1;
    }
    black_box(v)
}

fn pool(m: StartMethod) -> Pool {
    Pool::builder().workers(2).start_method(m).build().expect("starting the pool")
}

/// Pool start + one apply + drop.
fn start_once(m: StartMethod) -> Duration {
    let t0 = Instant::now();
    let mut p = pool(m);
    assert_eq!(p.apply(tiny, 3).unwrap(), tiny(3));
    drop(p);
    t0.elapsed()
}

/// One worker killed while the parent sleeps in a job, waiting on that worker's chunk:
/// (death -> the job's error, death -> the next apply's answer).
/// `after_us` is when the worker dies, after the job started.
fn death_once(p: &mut Pool, after_us: u64) -> (Duration, Duration) {
    let one = SharedArray::<u64>::from_fn(1, |_| after_us).unwrap();
    let job = p.for_each_chunk_async(one, die_later).unwrap();
    let (a, outcome) = job.finish();
    let noticed = now_ns();
    assert!(matches!(outcome, Err(Error::WorkerDied { .. })), "{outcome:?}");
    assert_eq!(p.apply(tiny, 5).unwrap(), tiny(5));
    let next = now_ns();
    let died = a[0];
    assert!(died > 0 && died <= noticed, "the worker noted when it died");
    (Duration::from_nanos(noticed - died), Duration::from_nanos(next - died))
}

/// A bare fork of this process: (the start, i.e. the fork itself; start + join, which adds the
/// child's exit, where its copy of the page tables is freed).
fn fork_once() -> (Duration, Duration) {
    let t0 = Instant::now();
    let mut c = get_context(StartMethod::Fork).start(noop, ()).unwrap();
    let started = t0.elapsed();
    assert!(c.join().unwrap().success());
    (started, t0.elapsed())
}

/// The `apply` round trip in microseconds, back to back: the median of 20 batches of 5,000
/// (a busy machine slows some batches; the median keeps the typical one).
fn apply_us(m: StartMethod) -> f64 {
    let mut p = pool(m);
    let mut x = 0u64;
    for _ in 0..10_000 {
        x = p.apply(tiny, x).unwrap();
    }
    let batches = (0..20)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..5_000 {
                x = p.apply(tiny, x).unwrap();
            }
            t0.elapsed().as_secs_f64() * 1e6 / 5_000.0
        })
        .collect();
    black_box(x);
    median(batches)
}

struct Row {
    heap: String,
    method: StartMethod,
    start: f64,
    noticed: f64,
    next_apply: f64,
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = arg(&args, "--runs").map_or(7, |r| r.parse().expect("--runs N"));
    let sizes: Vec<usize> = arg(&args, "--sizes")
        .unwrap_or("0,1,4")
        .split(',')
        .map(|s| s.parse().expect("--sizes 0,1,4"))
        .collect();
    let methods: Vec<StartMethod> = arg(&args, "--methods")
        .unwrap_or("fork,forkserver,spawn")
        .split(',')
        .map(|s| StartMethod::from_name(s).expect("--methods fork,forkserver,spawn"))
        .collect();
    let shared: Option<usize> = arg(&args, "--shared").map(|s| s.parse().expect("--shared GIB"));
    if args.iter().any(|a| a == "--apply-only") {
        // The hot path alone, for back-to-back comparisons of two builds.
        for &m in &methods {
            println!("| {m} | {:.2} |", apply_us(m));
        }
        shmpool::process::shutdown_forkserver().expect("stopping the forkserver");
        return;
    }
    let mut rows = Vec::new();
    let mut applies = Vec::new();
    let mut forks = Vec::new();
    let mut launches = Vec::new();
    for &gib in &sizes {
        let heap = touched_heap(gib);
        let _ = fork_once();
        let (start, total): (Vec<f64>, Vec<f64>) = (0..runs)
            .map(|_| {
                let (a, b) = fork_once();
                (ms(a), ms(b))
            })
            .unzip();
        forks.push((gib, median(start), median(total)));
        for &m in &methods {
            if m == StartMethod::ForkServer {
                launches.push((gib, ms(start_once(m))));
            } else {
                start_once(m);
            }
            let start = median((0..runs).map(|_| ms(start_once(m))).collect());
            let mut p = pool(m);
            death_once(&mut p, 20_000);
            // Deaths spread over 10 ms (a slice of the old 10 ms polling), 20 ms into the job.
            let (noticed, next): (Vec<f64>, Vec<f64>) = (0..runs as u64)
                .map(|k| {
                    let (a, b) = death_once(&mut p, 20_000 + k * 10_000 / runs as u64);
                    (ms(a), ms(b))
                })
                .unzip();
            drop(p);
            if gib == sizes[0] {
                applies.push((m, apply_us(m)));
            }
            rows.push(Row {
                heap: format!("{gib} GiB"),
                method: m,
                start,
                noticed: median(noticed),
                next_apply: median(next),
            });
            eprintln!("{gib} GiB {m}: done");
        }
        shmpool::process::shutdown_forkserver().expect("stopping the forkserver");
        drop(heap);
    }
    println!("\nmedians of {runs} runs, milliseconds; 2 workers\n");
    println!(
        "| parent heap | method | start + apply + drop | death -> noticed | death -> next apply |"
    );
    println!("|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} |",
            r.heap, r.method, r.start, r.noticed, r.next_apply
        );
    }
    println!(
        "\n| parent heap | bare fork: the fork | bare fork: start + join | forkserver launch (first pool start) |"
    );
    println!("|---|---|---|---|");
    for (gib, f, fj) in &forks {
        let launch =
            launches.iter().find(|l| l.0 == *gib).map_or("-".into(), |l| format!("{:.2}", l.1));
        println!("| {gib} GiB | {f:.2} | {fj:.2} | {launch} |");
    }
    println!("\n| method | apply round trip, us (parent heap {} GiB) |", sizes[0]);
    println!("|---|---|");
    for (m, us) in &applies {
        println!("| {m} | {us:.2} |");
    }
    if let Some(gib) = shared {
        let before = median((0..runs).map(|_| ms(fork_once().1)).collect());
        let mut a = SharedArray::<u8>::zeroed(gib << 30).expect("a shared array");
        for i in (0..a.len()).step_by(4096) {
            a[i] = 1;
        }
        let with = median((0..runs).map(|_| ms(fork_once().1)).collect());
        drop(a);
        println!(
            "\nbare fork, no heap: {before:.3} ms; with a touched {gib} GiB SharedArray: {with:.3} ms"
        );
    }
}
