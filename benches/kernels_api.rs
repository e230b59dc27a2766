//! Kernel jobs (`Pool::job`) against rayon (2 threads, the same kernel code) and sequential
//! code, in the same run:
//! - the in-place kernel `a = a*1.0001 + 0.5` at 4 Ki, 16 Ki, 64 Ki, 256 Ki, 1 Mi and 32 Mi f64:
//!   the pool as it decides (inline below its threshold), the pool forced to its workers, rayon,
//!   sequential; the forced rows place the inline threshold;
//! - a 3-stage pipeline over 4 Mi f64 (32 MiB, past the caches): one job of three fused stages
//!   against the same three stages published one by one.
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

fn pipeline(c: &mut Criterion, pool: &mut Pool) {
    let n = 4 << 20;
    let x = SharedArray::<f64>::from_fn(n, |i| (i % 1000) as f64).unwrap();
    let mut y = SharedArray::<f64>::zeroed(n).unwrap();
    let mut g = c.benchmark_group("kernels_api/pipeline3_4M_f64");
    g.sample_size(10).throughput(Throughput::Elements(n as u64));
    g.bench_function("fused (one job of 3 stages)", |b| {
        b.iter(|| {
            let j = pool.job(()).input(&x).unwrap().output(&mut y).unwrap();
            j.stage(square).stage(add_half).stage(root).run().unwrap()
        })
    });
    g.bench_function("stage by stage (3 jobs)", |b| {
        b.iter(|| {
            for k in [square as fn(&Chunk<()>), add_half, root] {
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
    pipeline(&mut c, &mut pool);
    drop(pool);
    c.final_summary();
}
