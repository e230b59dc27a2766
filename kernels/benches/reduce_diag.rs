//! Where the pool's time goes on a reduction that fits in cache (issue #9's "dot 1 Mi pool at
//! 0.78x rayon"): variants of `dot` and `sum` over the reduce bench's data, in alternating
//! rounds (every row once per round, in a rotating order, `REPS` calls each), printing each
//! row's median and best time per call:
//! - sequential, rayon 2 threads and the pool with 2 workers at the default chunks (16);
//! - the same with 2, 4 and 64 chunks (is it the chunking?);
//! - the pool's job run inline in the caller (the job path without the workers);
//! - `sum` on rayon and the pool (one input instead of two);
//! - a job whose stage does nothing, with 1 and 2 inputs, and rayon's empty equivalent (the
//!   dispatch floor: publish, wake, claim, wait).
//!
//!
//! First, on x86-64, a table of the chunk kernels' two builds on one thread (the baseline SSE2
//! build against the AVX2 one that `sum` and `dot` pick where the CPU has it), over data in L1,
//! L2, L3 and memory (4 KiB, 256 KiB, 8 MiB, 256 MiB per array): GB/s read, median of
//! alternating rounds.
//!
//! `cargo bench -p shmpool-kernels --bench reduce_diag` (`N`, `ROUNDS`, `REPS` set the array
//! length, default 1 Mi, rounds, default 30, and calls per timing, default 20).
#[cfg(target_arch = "x86_64")]
#[path = "reduce_ref/isa.rs"]
mod isa;
#[path = "reduce_ref/rounds.rs"]
mod rounds;

use std::cell::RefCell;
use std::hint::black_box;

use rayon::prelude::*;
use shmpool::pool::Chunk;
use shmpool::{Pool, SharedArray};
use shmpool_kernels::reduce;

fn nothing(c: &Chunk<()>) {
    c.set_partial(0.0f64);
}

fn dot_stage(c: &Chunk<()>) {
    c.set_partial(shmpool_kernels::dot(c.input::<f64>(0), c.input::<f64>(1)));
}

fn sum_stage(c: &Chunk<()>) {
    c.set_partial(shmpool_kernels::sum(c.input::<f64>(0)));
}

/// A row: its name and one call.
type Row<'a> = rounds::Row<'a, f64>;

/// [`rounds::alternate`]: the microseconds per call of each row, sorted.
fn alternate(rows: &mut [Row<'_>], rounds: usize, reps: usize) -> Vec<Vec<f64>> {
    let mut t = rounds::alternate(rows, rounds, reps);
    for v in &mut t {
        v.iter_mut().for_each(|s| *s *= 1e6);
        v.sort_by(f64::total_cmp);
    }
    t
}

/// The table of the kernels' two builds, one thread.
#[cfg(target_arch = "x86_64")]
fn builds(rounds: usize) {
    println!("one thread, GB/s read (median of {rounds} rounds): baseline build / AVX2 build");
    for n in [512usize, 32 << 10, 1 << 20, 32 << 20] {
        let a: Vec<f64> = (0..n).map(|i| (i % 1000) as f64 * 1e-3).collect();
        let b: Vec<f64> = (0..n).map(|i| ((i * 7) % 1000) as f64 * 1e-3).collect();
        isa::check(&a, &b);
        let (a, b) = (&a[..], &b[..]);
        let mut rows: Vec<Row<'_>> = vec![
            ("sum base".into(), Box::new(|| isa::sum_base(black_box(a)))),
            ("sum avx2".into(), Box::new(|| isa::sum_avx2(black_box(a)).unwrap_or(f64::NAN))),
            ("dot base".into(), Box::new(|| isa::dot_base(black_box(a), black_box(b)))),
            ("dot avx2".into(), Box::new(|| isa::dot_avx2(black_box(a), b).unwrap_or(f64::NAN))),
        ];
        let reps = ((256usize << 20) / (n * 8)).max(1);
        let t = alternate(&mut rows, rounds, reps);
        let gbs = |i: usize, k: usize| (k * n * 8) as f64 / t[i][t[i].len() / 2] / 1e3;
        println!(
            "  {:>7} KiB per array: sum {:6.1} / {:6.1}, dot {:6.1} / {:6.1}",
            n * 8 / 1024,
            gbs(0, 1),
            gbs(1, 1),
            gbs(2, 2),
            gbs(3, 2)
        );
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let (n, rounds, reps) = (env("N", 1 << 20), env("ROUNDS", 30).max(1), env("REPS", 20).max(1));
    // Before any thread exists: the pool's workers come from the forkserver.
    let pool = RefCell::new(Pool::new(2).unwrap());
    #[cfg(target_arch = "x86_64")]
    builds(rounds.min(15));
    let a = SharedArray::<f64>::from_fn(n, |i| (i % 1000) as f64 * 1e-3).unwrap();
    let b = SharedArray::<f64>::from_fn(n, |i| ((i * 7) % 1000) as f64 * 1e-3).unwrap();
    let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let chunk = pool.borrow().chunk_size_for(n, 8);
    let (a, b, two, pool) = (&a, &b, &two, &pool);
    let pool_dot = move |c: usize| {
        let mut p = pool.borrow_mut();
        let job = p.job(()).input(a).unwrap().input(b).unwrap();
        job.chunk_size(c).stage(dot_stage).run_reduce(0.0, |x, y| x + y).unwrap()
    };
    let mut rows: Vec<Row<'_>> = vec![
        ("sequential dot".into(), Box::new(move || shmpool_kernels::dot(a, b))),
        (
            "rayon dot".into(),
            Box::new(move || two.install(|| reduce::dot_rayon(a, b, chunk).unwrap())),
        ),
        ("pool dot".into(), Box::new(move || reduce::dot(&mut pool.borrow_mut(), a, b).unwrap())),
    ];
    for k in [2usize, 4, 64] {
        let c = n.div_ceil(k).max(1);
        rows.push((
            format!("rayon dot {k} chunks"),
            Box::new(move || two.install(|| reduce::dot_rayon(a, b, c).unwrap())),
        ));
        rows.push((format!("pool dot {k} chunks"), Box::new(move || pool_dot(c))));
    }
    rows.push((
        "pool dot inline".into(),
        Box::new(move || {
            let mut p = pool.borrow_mut();
            let job = p.job(()).input(a).unwrap().input(b).unwrap().inline(true);
            job.stage(dot_stage).run_reduce(0.0, |x, y| x + y).unwrap()
        }),
    ));
    rows.push((
        "rayon sum".into(),
        Box::new(move || two.install(|| reduce::run_rayon::<reduce::Sum>(a, chunk))),
    ));
    rows.push((
        "pool sum".into(),
        Box::new(move || {
            let mut p = pool.borrow_mut();
            let job = p.job(()).input(a).unwrap();
            job.stage(sum_stage).run_reduce(0.0, |x, y| x + y).unwrap()
        }),
    ));
    rows.push((
        "pool empty 2 inputs".into(),
        Box::new(move || {
            let mut p = pool.borrow_mut();
            let job = p.job(()).input(a).unwrap().input(b).unwrap().inline(false);
            job.stage(nothing).run_reduce(0.0, |x, y| x + y).unwrap()
        }),
    ));
    rows.push((
        "pool empty 1 input".into(),
        Box::new(move || {
            let mut p = pool.borrow_mut();
            let job = p.job(()).input(a).unwrap().inline(false);
            job.stage(nothing).run_reduce(0.0, |x, y| x + y).unwrap()
        }),
    ));
    rows.push((
        "rayon empty".into(),
        Box::new(move || {
            two.install(|| a.par_chunks(chunk).map(|_| 0.0).collect::<Vec<f64>>().len() as f64)
        }),
    ));
    let t = alternate(&mut rows, rounds, reps);
    println!("{n} f64 per array, {chunk} per chunk by default, microseconds per call");
    for (i, (name, _)) in rows.iter().enumerate() {
        let v = &t[i];
        println!("  {name:<24} median {:8.1} us  min {:8.1} us", v[v.len() / 2], v[0]);
    }
    drop(rows);
    pool.borrow_mut().terminate();
    shmpool::process::shutdown_forkserver().expect("stopping the forkserver");
}
