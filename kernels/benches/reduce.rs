//! Reductions at memory bandwidth, and a compute-bound polynomial, in the same run:
//! - `sum` and `dot` over 32 Mi `f64` (256 MiB per array) and 1 Mi (8 MiB): sequential (the
//!   chunk kernel over the whole array), rayon with 2 threads and the pool with 2 workers (both
//!   with the same chunk kernel and the same chunks), and a read-bandwidth reference over the
//!   same buffers: the widest plain read loop (16 `u64` lanes OR-ed together, which any core
//!   retires faster than memory delivers) on rayon with one thread per core. Throughput is bytes
//!   read, so criterion prints GB/s and the ratio to the reference is the kernel's share of the
//!   machine's read bandwidth.
//! - `polyval` of degree 16 over 4 Mi `f64` in place: sequential, rayon 2 threads, pool 2 workers
//!   (elements per second; the target is pool >= 1.9x sequential).
//!
//! `cargo bench -p shmpool-kernels --bench reduce` (short: `-- --warm-up-time 1
//! --measurement-time 3`).
//!
//! The pool starts before criterion or rayon start any thread (as in `benches/pool.rs`), with the
//! default start method; the rayon pools are built after it.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use rayon::prelude::*;
use shmpool::{Pool, SharedArray};
use shmpool_kernels::{elementwise, reduce};

/// Degree 16, |p(x)| bounded for x in [0, 1): in place over and over it stays finite.
const COEFFS: [f64; 17] = [
    0.01, -0.02, 0.03, -0.01, 0.02, -0.03, 0.01, 0.02, -0.01, 0.03, -0.02, 0.01, 0.02, -0.01, 0.03,
    0.5, 0.25,
];

/// The read-bandwidth reference: OR of every 64-bit word, 16 independent lanes.
fn read_or(a: &[f64]) -> u64 {
    let words: &[u64] = bytemuck::cast_slice(a);
    let mut acc = [0u64; 16];
    let mut blocks = words.chunks_exact(16);
    for b in &mut blocks {
        for j in 0..16 {
            acc[j] |= b[j];
        }
    }
    blocks.remainder().iter().fold(acc.iter().fold(0, |x, y| x | y), |x, y| x | y)
}

fn reference(g: &mut BenchmarkGroup<'_, WallTime>, all: &rayon::ThreadPool, arrays: &[&[f64]]) {
    let name = format!("read reference (rayon {} threads)", all.current_num_threads());
    g.bench_function(name, |b| {
        b.iter(|| {
            all.install(|| {
                let or = |a: &[f64]| a.par_chunks(1 << 16).map(read_or).reduce(|| 0, |x, y| x | y);
                black_box(arrays.iter().map(|a| or(a)).fold(0, |x, y| x | y))
            })
        })
    });
}

fn reductions(c: &mut Criterion, pool: &mut Pool, n: usize, label: &str) {
    let a = SharedArray::<f64>::from_fn(n, |i| (i % 1000) as f64 * 1e-3).unwrap();
    let b = SharedArray::<f64>::from_fn(n, |i| ((i * 7) % 1000) as f64 * 1e-3).unwrap();
    let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let all = rayon::ThreadPoolBuilder::new().build().unwrap();
    let chunk = pool.chunk_size_for(n, 8);
    // The drivers agree bit for bit at the same chunks: the benchmark compares like with like.
    let s = reduce::sum(pool, &a).unwrap();
    assert_eq!(s.to_bits(), two.install(|| reduce::run_rayon::<reduce::Sum>(&a, chunk)).to_bits());

    let mut g = c.benchmark_group(format!("reduce/sum_{label}_f64"));
    g.sample_size(10).throughput(Throughput::Bytes((n * 8) as u64));
    reference(&mut g, &all, &[&a]);
    g.bench_function("sequential", |bn| bn.iter(|| black_box(shmpool_kernels::sum(&a))));
    g.bench_function("rayon 2 threads", |bn| {
        bn.iter(|| black_box(two.install(|| reduce::run_rayon::<reduce::Sum>(&a, chunk))))
    });
    g.bench_function(format!("shmpool {} workers", pool.workers()), |bn| {
        bn.iter(|| black_box(reduce::sum(pool, &a).unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group(format!("reduce/dot_{label}_f64"));
    g.sample_size(10).throughput(Throughput::Bytes((2 * n * 8) as u64));
    reference(&mut g, &all, &[&a, &b]);
    g.bench_function("sequential", |bn| bn.iter(|| black_box(shmpool_kernels::dot(&a, &b))));
    g.bench_function("rayon 2 threads", |bn| {
        bn.iter(|| black_box(two.install(|| reduce::dot_rayon(&a, &b, chunk).unwrap())))
    });
    g.bench_function(format!("shmpool {} workers", pool.workers()), |bn| {
        bn.iter(|| black_box(reduce::dot(pool, &a, &b).unwrap()))
    });
    g.finish();
}

fn polynomial(c: &mut Criterion, pool: &mut Pool) {
    const N: usize = 4 << 20;
    let mut x = SharedArray::<f64>::from_fn(N, |i| (i % 1000) as f64 * 1e-3).unwrap();
    let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let chunk = pool.chunk_size_for(N, 8);
    let mut g = c.benchmark_group("reduce/polyval16_4Mi_f64");
    g.sample_size(10).throughput(Throughput::Elements(N as u64));
    g.bench_function("sequential", |bn| bn.iter(|| elementwise::chunk::polyval(&COEFFS, &mut x)));
    g.bench_function("rayon 2 threads", |bn| {
        bn.iter(|| two.install(|| elementwise::polyval_rayon(&COEFFS, &mut x, chunk)))
    });
    g.bench_function(format!("shmpool {} workers", pool.workers()), |bn| {
        bn.iter(|| elementwise::polyval(pool, &COEFFS, &mut x).unwrap())
    });
    g.finish();
    assert!(x.iter().all(|v| v.is_finite()));
}

fn main() {
    // Before any thread exists: the pool's workers come from the forkserver.
    let mut pool = Pool::new(2).expect("starting the pool");
    let mut c = Criterion::default().warm_up_time(Duration::from_secs(1)).configure_from_args();
    reductions(&mut c, &mut pool, 32 << 20, "32Mi");
    reductions(&mut c, &mut pool, 1 << 20, "1Mi");
    polynomial(&mut c, &mut pool);
    drop(pool);
    shmpool::process::shutdown_forkserver().expect("stopping the forkserver");
    c.final_summary();
}
