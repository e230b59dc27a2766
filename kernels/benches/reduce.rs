//! Reductions at memory bandwidth, and a compute-bound polynomial, in the same run:
//! - `sum` and `dot` over 32 Mi `f64` (256 MiB per array) and 1 Mi (8 MiB), each group holding
//!   the references and the contenders over the same buffers, so drift on a shared machine hits
//!   them alike:
//!   - `read C/OpenMP`: the STREAM-style read kernel (an OR of every 64-bit word, one pass over
//!     the group's arrays, one-cycle operations that no core retires slower than memory delivers)
//!     in C, `gcc -O3 -march=native -ffast-math -fopenmp`, one thread per core: the machine's read
//!     bandwidth;
//!   - `read C 1 thread`: the same on one thread, the bound of `sequential`;
//!   - `read rayon`: the same read kernel in Rust on rayon, one thread per core (kept so there is
//!     a reference where the C one cannot be built);
//!   - `C/OpenMP`: the same reduction in C (issue #9's reference), as many threads as workers;
//!   - `sequential` (the chunk kernel over the whole array), `rayon` and `shmpool` (the same chunk
//!     kernel over the same chunks, the partials folded in chunk order).
//!
//!   The C code (`reduce_ref/openmp.c`) is built at run time; where `gcc` or OpenMP is missing
//!   the C rows are skipped with the reason printed, never a failure. Every parallel contender
//!   gets the pool's chunks (`Pool::chunk_size_for(n, 8)`). Throughput is bytes read, so
//!   criterion prints GB/s.
//! - `polyval` of degree 16 over 4 Mi `f64` in place: sequential, rayon, pool (elements per
//!   second; the target is pool >= 1.9x sequential).
//!
//! After criterion, each reduction group runs again in `SHMPOOL_BENCH_ROUNDS` (default 15; 0:
//! none) alternating rounds, every contender once per round in a rotating order, and a table
//! prints the median and best GB/s of each, and the pool against the read reference (the faster
//! of the two read kernels by median), the C reduction and rayon as the median of the per-round ratios (which drift on a busy machine
//! cannot bias) and as the ratio of the bests (the least disturbed run of each).
//!
//! `cargo bench -p shmpool-kernels --bench reduce` (short: `-- --warm-up-time 1
//! --measurement-time 2`). `SHMPOOL_BENCH_WORKERS` sets the workers and threads (default 2).
//!
//! The pool starts before criterion, rayon or OpenMP start any thread (as in `benches/pool.rs`),
//! with the default start method; the rayon pools are built after it.

#[path = "../../cli/src/bench/bounded.rs"]
mod bounded;
#[path = "reduce_ref/openmp.rs"]
mod openmp;
#[path = "reduce_ref/rounds.rs"]
mod rounds;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use openmp::OpenMp;
use rayon::prelude::*;
use shmpool::{Pool, SharedArray};
use shmpool_kernels::{elementwise, reduce};

/// Degree 16, |p(x)| bounded for x in [0, 1): in place over and over it stays finite.
const COEFFS: [f64; 17] = [
    0.01, -0.02, 0.03, -0.01, 0.02, -0.03, 0.01, 0.02, -0.01, 0.03, -0.02, 0.01, 0.02, -0.01, 0.03,
    0.5, 0.25,
];

/// The Rust read kernel: OR of every 64-bit word of `a` and `b` (when given), 16 lanes.
fn read_or(a: &[f64], b: Option<&[f64]>) -> u64 {
    let mut acc = [0u64; 16];
    let x: &[u64] = bytemuck::cast_slice(a);
    let mut xs = x.chunks_exact(16);
    match b {
        Some(b) => {
            let y: &[u64] = bytemuck::cast_slice(b);
            let mut ys = y.chunks_exact(16);
            for (p, q) in (&mut xs).zip(&mut ys) {
                for j in 0..16 {
                    acc[j] |= p[j] | q[j];
                }
            }
            acc[0] |= ys.remainder().iter().fold(0, |s, w| s | w);
        }
        None => {
            for p in &mut xs {
                for j in 0..16 {
                    acc[j] |= p[j];
                }
            }
        }
    }
    xs.remainder().iter().fold(acc.iter().fold(0, |s, w| s | w), |s, w| s | w)
}

/// One row of a group: its name and one run (its result, to keep the work).
type Contender<'a> = rounds::Row<'a, u64>;

/// Which reduction a group measures.
#[derive(Clone, Copy, PartialEq)]
enum Op {
    Sum,
    Dot,
}

struct Setup<'a> {
    workers: usize,
    cores: usize,
    /// Threads as many as the workers.
    threads: &'a rayon::ThreadPool,
    /// One thread per core.
    all: &'a rayon::ThreadPool,
    omp: Option<&'a OpenMp>,
}

/// The group's rows, the read references first.
fn contenders<'a>(
    s: &Setup<'a>,
    pool: &'a mut Pool,
    op: Op,
    a: &'a SharedArray<f64>,
    b: &'a SharedArray<f64>,
) -> Vec<Contender<'a>> {
    let chunk = pool.chunk_size_for(a.len(), 8);
    let (threads, all, workers, cores) = (s.threads, s.all, s.workers, s.cores);
    let second: Option<&'a [f64]> = (op == Op::Dot).then_some(&b[..]);
    let mut rows: Vec<Contender<'a>> = Vec::new();
    if let Some(omp) = s.omp {
        rows.push((
            format!("read C/OpenMP {cores} threads"),
            Box::new(move || omp.read(a, second, chunk, cores)),
        ));
        // One core's share, the bound of `sequential`.
        rows.push(("read C 1 thread".into(), Box::new(move || omp.read(a, second, chunk, 1))));
    }
    rows.push((
        format!("read rayon {cores} threads"),
        Box::new(move || {
            all.install(|| match second {
                None => a.par_chunks(chunk).map(|x| read_or(x, None)).reduce(|| 0, |x, y| x | y),
                Some(b) => a
                    .par_chunks(chunk)
                    .zip(b.par_chunks(chunk))
                    .map(|(x, y)| read_or(x, Some(y)))
                    .reduce(|| 0, |x, y| x | y),
            })
        }),
    ));
    if let Some(omp) = s.omp {
        rows.push((
            format!("C/OpenMP {workers} threads"),
            Box::new(move || match op {
                Op::Sum => omp.sum(a, chunk, workers).to_bits(),
                Op::Dot => omp.dot(a, b, chunk, workers).to_bits(),
            }),
        ));
    }
    rows.push((
        "sequential".into(),
        Box::new(move || match op {
            Op::Sum => shmpool_kernels::sum(a).to_bits(),
            Op::Dot => shmpool_kernels::dot(a, b).to_bits(),
        }),
    ));
    rows.push((
        format!("rayon {workers} threads"),
        Box::new(move || {
            threads.install(|| match op {
                Op::Sum => reduce::run_rayon::<reduce::Sum>(a, chunk).to_bits(),
                Op::Dot => reduce::dot_rayon(a, b, chunk).unwrap().to_bits(),
            })
        }),
    ));
    rows.push((
        format!("shmpool {workers} workers"),
        Box::new(move || match op {
            Op::Sum => reduce::sum(pool, a).unwrap().to_bits(),
            Op::Dot => reduce::dot(pool, a, b).unwrap().to_bits(),
        }),
    ));
    rows
}

/// Checks that every contender computes what it should: the Rust drivers the same bits (like
/// is compared with like), the C reduction the same value to rounding, the read kernels the
/// same word.
fn check(s: &Setup<'_>, pool: &mut Pool, op: Op, a: &SharedArray<f64>, b: &SharedArray<f64>) {
    let chunk = pool.chunk_size_for(a.len(), 8);
    let want = match op {
        Op::Sum => reduce::run_sequential::<reduce::Sum>(a, chunk),
        Op::Dot => reduce::dot_sequential(a, b, chunk).unwrap(),
    };
    let mut rows = contenders(s, pool, op, a, b);
    let reads: Vec<u64> =
        rows.iter_mut().filter(|(n, _)| n.starts_with("read")).map(|(_, f)| f()).collect();
    assert!(reads.windows(2).all(|w| w[0] == w[1]), "the read kernels disagree: {reads:?}");
    for (name, f) in rows.iter_mut().filter(|(n, _)| !n.starts_with("read")) {
        let got = f64::from_bits(f());
        if name.starts_with("C/") {
            assert!((got - want).abs() <= 1e-9 * want.abs(), "{name}: {got} against {want}");
        } else if name != "sequential" {
            assert_eq!(got.to_bits(), want.to_bits(), "{name}: {got} against {want}");
        }
    }
}

fn group(c: &mut Criterion, rows: &mut [Contender<'_>], name: &str, bytes: usize) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10).throughput(Throughput::Bytes(bytes as u64));
    for (row, f) in rows.iter_mut() {
        g.bench_function(row.as_str(), |bn| bn.iter(|| black_box(f())));
    }
    g.finish();
}

/// The alternating rounds of one group: returns the table's lines.
fn rounds_table(
    rows: &mut [Contender<'_>],
    name: &str,
    bytes: usize,
    rounds_n: usize,
) -> Vec<String> {
    // Each timed run reads at least 256 MiB (a few ms), repeating the smaller arrays.
    let reps = (256usize << 20).div_ceil(bytes).max(1);
    let secs = rounds::alternate(rows, rounds_n, reps);
    let gbs = |t: f64| bytes as f64 / t / 1e9;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let find = |p: &str| rows.iter().position(|(n, _)| n.starts_with(p));
    let pool = rows.len() - 1;
    let mut out =
        vec![format!("{name}: {rounds_n} rounds x {reps} runs, GB/s of input read: median, best")];
    for (i, (row, _)) in rows.iter().enumerate() {
        let (m, b) = (gbs(median(secs[i].clone())), gbs(best(&secs[i])));
        out.push(format!("  {row:<28} {m:>7.1} {b:>7.1}"));
    }
    // The machine's read bandwidth: the faster of the two-thread read kernels (OpenMP's
    // passive threads pay a wake per region, which shows at 1 Mi; rayon's pay less).
    let reference = (0..rows.len())
        .filter(|&i| rows[i].0.starts_with("read") && !rows[i].0.contains(" 1 thread"))
        .min_by(|&i, &j| median(secs[i].clone()).total_cmp(&median(secs[j].clone())))
        .expect("a read reference");
    for other in [Some(reference), find("C/"), Some(rows.len() - 2)].into_iter().flatten() {
        let ratio = median(secs[other].iter().zip(&secs[pool]).map(|(o, p)| o / p).collect());
        out.push(format!(
            "  pool / {}: {ratio:.2}x (median of the per-round ratios), {:.2}x (best / best)",
            rows[other].0,
            best(&secs[other]) / best(&secs[pool])
        ));
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn reductions(
    c: &mut Criterion,
    s: &Setup<'_>,
    pool: &mut Pool,
    n: usize,
    label: &str,
    rounds_n: usize,
    table: &mut Vec<String>,
) {
    let a = SharedArray::<f64>::from_fn(n, |i| (i % 1000) as f64 * 1e-3).unwrap();
    let b = SharedArray::<f64>::from_fn(n, |i| ((i * 7) % 1000) as f64 * 1e-3).unwrap();
    for (op, bytes, name) in [(Op::Sum, n * 8, "sum"), (Op::Dot, 2 * n * 8, "dot")] {
        check(s, pool, op, &a, &b);
        let name = format!("reduce/{name}_{label}_f64");
        let mut rows = contenders(s, pool, op, &a, &b);
        group(c, &mut rows, &name, bytes);
        if rounds_n > 0 {
            table.extend(rounds_table(&mut rows, &name, bytes, rounds_n));
        }
    }
}

fn polynomial(c: &mut Criterion, pool: &mut Pool, threads: &rayon::ThreadPool) {
    const N: usize = 4 << 20;
    let mut x = SharedArray::<f64>::from_fn(N, |i| (i % 1000) as f64 * 1e-3).unwrap();
    let chunk = pool.chunk_size_for(N, 8);
    let mut g = c.benchmark_group("reduce/polyval16_4Mi_f64");
    g.sample_size(10).throughput(Throughput::Elements(N as u64));
    g.bench_function("sequential", |bn| bn.iter(|| elementwise::chunk::polyval(&COEFFS, &mut x)));
    g.bench_function(format!("rayon {} threads", threads.current_num_threads()), |bn| {
        bn.iter(|| threads.install(|| elementwise::polyval_rayon(&COEFFS, &mut x, chunk)))
    });
    g.bench_function(format!("shmpool {} workers", pool.workers()), |bn| {
        bn.iter(|| elementwise::polyval(pool, &COEFFS, &mut x).unwrap())
    });
    g.finish();
    assert!(x.iter().all(|v| v.is_finite()));
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // Idle OpenMP threads sleep instead of spinning, so they take no core from the contender
    // measured next (libgomp reads this when it is loaded, below).
    // SAFETY: no other thread exists yet, so none reads the environment meanwhile.
    unsafe { std::env::set_var("OMP_WAIT_POLICY", "PASSIVE") };
    let workers = env("SHMPOOL_BENCH_WORKERS", 2);
    let rounds_n = env("SHMPOOL_BENCH_ROUNDS", 15);
    // Before any thread exists: the pool's workers come from the forkserver.
    let mut pool = Pool::new(workers).expect("starting the pool");
    let cores = std::thread::available_parallelism().map_or(workers, |n| n.get());
    let omp = match OpenMp::load() {
        Ok(omp) => {
            println!("C/OpenMP reference: {}", omp.compiler);
            Some(omp)
        }
        Err(why) => {
            println!("C/OpenMP rows skipped: {why}");
            None
        }
    };
    let threads = rayon::ThreadPoolBuilder::new().num_threads(workers).build().unwrap();
    let all = rayon::ThreadPoolBuilder::new().num_threads(cores).build().unwrap();
    let s = Setup { workers, cores, threads: &threads, all: &all, omp: omp.as_ref() };
    let mut c = Criterion::default().warm_up_time(Duration::from_secs(1)).configure_from_args();
    let mut table = Vec::new();
    reductions(&mut c, &s, &mut pool, 32 << 20, "32Mi", rounds_n, &mut table);
    reductions(&mut c, &s, &mut pool, 1 << 20, "1Mi", rounds_n, &mut table);
    polynomial(&mut c, &mut pool, &threads);
    drop(pool);
    shmpool::process::shutdown_forkserver().expect("stopping the forkserver");
    c.final_summary();
    for line in table {
        println!("{line}");
    }
}
