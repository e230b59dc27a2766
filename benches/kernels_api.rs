//! Kernel jobs (`Pool::job`) against rayon (2 threads, the same kernel code) and sequential
//! code, in the same run:
//! - the in-place kernel `a = a*1.0001 + 0.5` at 4 Ki, 16 Ki, 64 Ki, 256 Ki, 1 Mi and 32 Mi f64:
//!   the pool as it decides (inline below its threshold), the pool forced to its workers, rayon,
//!   sequential; the forced rows place the inline threshold;
//! - where the inline threshold belongs: one job run inline against the same job forced to the
//!   workers at 128 Ki, 256 Ki, 512 Ki and 1 Mi f64, in place (one array) and from an input
//!   into an output (two arrays);
//! - a 3-stage pipeline over 4 Mi f64 (2 x 32 MiB: about this machine's L3) and 32 Mi f64
//!   (2 x 256 MiB, far past it: what fusion is for): one job of three fused stages against
//!   the same three stages published one by one.
//!
//! `cargo bench --bench kernels_api` (short: `-- --warm-up-time 1 --measurement-time 2`).
//!
//! As in `benches/pool.rs`, the pool uses the default start method (the forkserver), so it
//! starts whatever threads criterion has.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use rayon::prelude::*;
use shmpool::pool::Chunk;
use shmpool::{Pool, SharedArray};

/// rayon's chunk for the same kernel: big enough that splitting costs vanish.
const RAYON_CHUNK: usize = 1 << 14;

/// The kernel, shared by every contender.
fn scale_add(x: &mut [f64]) {
    for v in x {
        *v = *v * 1.0001 + 0.5;
    }
}

fn scale_add_stage(c: &Chunk<()>) {
    scale_add(c.output::<f64>(0));
}

fn in_place(c: &mut Criterion, pool: &mut Pool, rp: &rayon::ThreadPool) {
    let mut g = c.benchmark_group("kernels_api/scale_add_f64");
    g.sample_size(10);
    for n in [64usize, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 32 << 20] {
        let mut a = SharedArray::<f64>::from_fn(n, |i| (i % 1000) as f64).unwrap();
        g.throughput(Throughput::Elements(n as u64));
        let job = |pool: &mut Pool, a: &mut SharedArray<f64>, inline: Option<bool>| {
            let mut j = pool.job(()).output(a).unwrap().stage(scale_add_stage);
            if let Some(i) = inline {
                j = j.inline(i);
            }
            j.run().unwrap()
        };
        g.bench_with_input(BenchmarkId::new("shmpool 2 workers (adaptive)", n), &n, |b, _| {
            b.iter(|| job(pool, &mut a, None))
        });
        g.bench_with_input(BenchmarkId::new("shmpool 2 workers (pooled)", n), &n, |b, _| {
            b.iter(|| job(pool, &mut a, Some(false)))
        });
        g.bench_with_input(BenchmarkId::new("rayon 2 threads", n), &n, |b, _| {
            b.iter(|| rp.install(|| a.par_chunks_mut(RAYON_CHUNK).for_each(scale_add)))
        });
        g.bench_with_input(BenchmarkId::new("sequential", n), &n, |b, _| {
            b.iter(|| scale_add(&mut a))
        });
    }
    g.finish();
}

fn axpy_stage(c: &Chunk<()>) {
    let (x, y) = (c.input::<f64>(0), c.output::<f64>(0));
    for (x, y) in x.iter().zip(y.iter_mut()) {
        *y += 2.0 * x;
    }
}

/// The same job inline and in the workers, one array and two, around the default threshold.
fn threshold(c: &mut Criterion, pool: &mut Pool) {
    let mut g = c.benchmark_group("kernels_api/inline_vs_pooled");
    g.sample_size(10);
    for n in [128usize << 10, 256 << 10, 512 << 10, 1 << 20] {
        let x = SharedArray::<f64>::from_fn(n, |i| (i % 1000) as f64).unwrap();
        let mut y = SharedArray::<f64>::from_fn(n, |i| (i % 7) as f64).unwrap();
        g.throughput(Throughput::Elements(n as u64));
        for inline in [true, false] {
            let how = if inline { "inline" } else { "pooled" };
            g.bench_with_input(BenchmarkId::new(format!("in place {how}"), n), &n, |b, _| {
                b.iter(|| {
                    let j = pool.job(()).output(&mut y).unwrap().inline(inline);
                    j.stage(scale_add_stage).run().unwrap()
                })
            });
            g.bench_with_input(BenchmarkId::new(format!("2 arrays {how}"), n), &n, |b, _| {
                b.iter(|| {
                    let j = pool.job(()).input(&x).unwrap().output(&mut y).unwrap();
                    j.inline(inline).stage(axpy_stage).run().unwrap()
                })
            });
        }
    }
    g.finish();
}

fn square(c: &Chunk<()>) {
    let (x, y) = (c.input::<f64>(0), c.output::<f64>(0));
    for i in 0..x.len() {
        y[i] = x[i] * x[i];
    }
}
fn add_half(c: &Chunk<()>) {
    c.output::<f64>(0).iter_mut().for_each(|v| *v += 0.5);
}
fn root(c: &Chunk<()>) {
    c.output::<f64>(0).iter_mut().for_each(|v| *v = v.sqrt());
}

/// A stage of the pipelines.
type Stage = fn(&Chunk<()>);

fn halve(c: &Chunk<()>) {
    c.output::<f64>(0).iter_mut().for_each(|v| *v *= 0.5);
}

/// Three stages over `n` f64, fused in one job against published one by one. `square,
/// add_half, root` ends in a square root, which on the baseline x86-64 build (2-wide
/// `sqrtpd`) costs more than streaming the array; `square, add_half, halve` is three passes
/// of one-cycle work, bound by memory once the arrays outgrow the cache: what fusing saves.
fn pipeline(c: &mut Criterion, pool: &mut Pool, n: usize, name: &str, stages: [Stage; 3]) {
    let x = SharedArray::<f64>::from_fn(n, |i| (i % 1000) as f64).unwrap();
    let mut y = SharedArray::<f64>::zeroed(n).unwrap();
    let mut g = c.benchmark_group(format!("kernels_api/{name}_{}M_f64", n >> 20));
    g.sample_size(10).throughput(Throughput::Elements(n as u64));
    g.bench_function("fused (one job of 3 stages)", |b| {
        b.iter(|| {
            let j = pool.job(()).input(&x).unwrap().output(&mut y).unwrap();
            j.stage(stages[0]).stage(stages[1]).stage(stages[2]).run().unwrap()
        })
    });
    g.bench_function("stage by stage (3 jobs)", |b| {
        b.iter(|| {
            for k in stages {
                pool.job(()).input(&x).unwrap().output(&mut y).unwrap().stage(k).run().unwrap();
            }
        })
    });
    g.finish();
}

fn main() {
    let mut pool = Pool::new(2).expect("starting the pool");
    let rp = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let mut c = Criterion::default().warm_up_time(Duration::from_secs(1)).configure_from_args();
    in_place(&mut c, &mut pool, &rp);
    threshold(&mut c, &mut pool);
    for n in [4 << 20, 32 << 20] {
        pipeline(&mut c, &mut pool, n, "pipeline3", [square, add_half, root]);
        pipeline(&mut c, &mut pool, n, "pipeline3_halve", [square, add_half, halve]);
    }
    drop(pool);
    c.final_summary();
}
