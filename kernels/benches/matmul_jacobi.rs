//! The compute-bound and the stencil kernels, sequential vs rayon (2 threads) vs the pool (2
//! workers), in the same run, all three through the same block kernel:
//! - `matmul` 512 x 512 x 512 `f64` (multiply-adds per second; the target is pool >= 1.9x
//!   sequential);
//! - Jacobi 2048 x 2048 `f64`, 10 steps with the residual of each (grid points per second);
//! - the sample sort of 8 Mi random `u64` (elements per second; each iteration sorts a fresh
//!   copy, made outside the timing).
//!
//! `cargo bench -p shmpool-kernels --bench matmul_jacobi` (short: `-- --warm-up-time 1
//! --measurement-time 3`).
//!
//! The pool starts before criterion or rayon start any thread (as in `benches/pool.rs`), with the
//! default start method; the rayon pool is built after it.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use shmpool::{Pool, SharedArray};
use shmpool_kernels::{
    GridDims, MatDims, MatmulBuffers, jacobi, jacobi_pool, jacobi_rayon, matmul, matmul_pool,
    matmul_rayon, sort, sort_pool, sort_rayon,
};

const MAT: usize = 512;
const GRID: usize = 2048;
const STEPS: usize = 10;
const SORT: usize = 8 << 20;

/// The benchmark name of the pool: its workers and start method.
fn ours(pool: &Pool) -> String {
    format!("shmpool {} workers ({})", pool.workers(), pool.start_method())
}

fn matmul_group(c: &mut Criterion, pool: &mut Pool, rp: &rayon::ThreadPool) {
    let dims = MatDims::new(MAT, MAT, MAT);
    let mut bufs = MatmulBuffers::<f64>::zeroed(dims).unwrap();
    let (a, b) = bufs.a_b_mut();
    a.iter_mut().enumerate().for_each(|(i, x)| *x = (i % 17) as f64 * 0.1 - 0.8);
    b.iter_mut().enumerate().for_each(|(i, x)| *x = (i % 13) as f64 * 0.1 - 0.6);
    let (a, b) = (bufs.a().to_vec(), bufs.b().to_vec());
    let mut out = vec![0.0f64; dims.c_len()];
    let mut g = c.benchmark_group(format!("matmul_{MAT}x{MAT}x{MAT}_f64"));
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements((MAT * MAT * MAT) as u64));
    g.bench_function(ours(pool), |bch| bch.iter(|| matmul_pool(pool, &mut bufs).unwrap()));
    g.bench_function("rayon 2 threads", |bch| {
        bch.iter(|| rp.install(|| matmul_rayon(&a, &b, &mut out, dims)).unwrap())
    });
    g.bench_function("sequential", |bch| bch.iter(|| matmul(&a, &b, &mut out, dims)));
    g.finish();
    assert_eq!(bufs.c(), out, "the pool and sequential products differ");
}

fn jacobi_group(c: &mut Criterion, pool: &mut Pool, rp: &rayon::ThreadPool) {
    let dims = GridDims::new(GRID, GRID);
    let start = |i: usize| if i < GRID { 100.0 } else { (i % 7) as f64 };
    let mut grid = SharedArray::<f64>::from_fn(dims.len(), start).unwrap();
    let mut scratch = SharedArray::<f64>::zeroed(dims.len()).unwrap();
    let mut g_r: Vec<f64> = (0..dims.len()).map(start).collect();
    let mut s_r = vec![0.0; dims.len()];
    let mut g = c.benchmark_group(format!("jacobi_{GRID}x{GRID}_f64_{STEPS}_steps"));
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements((GRID * GRID * STEPS) as u64));
    g.bench_function(ours(pool), |b| {
        b.iter(|| black_box(jacobi_pool(pool, &mut grid, &mut scratch, dims, STEPS).unwrap()))
    });
    g.bench_function("rayon 2 threads", |b| {
        b.iter(|| black_box(rp.install(|| jacobi_rayon(&mut g_r, &mut s_r, dims, STEPS)).unwrap()))
    });
    g.bench_function("sequential", |b| {
        b.iter(|| black_box(jacobi(&mut g_r, &mut s_r, dims, STEPS)))
    });
    g.finish();
}

fn sort_group(c: &mut Criterion, pool: &mut Pool, rp: &rayon::ThreadPool) {
    let data: Vec<u64> = (0..SORT as u64)
        .map(|i| (i ^ 0x5555).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17))
        .collect();
    let mut g = c.benchmark_group("sort_8Mi_u64");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(SORT as u64));
    g.bench_function(ours(pool), |b| {
        b.iter_batched(
            || SharedArray::from_slice(&data).unwrap(),
            |mut a| sort_pool(pool, &mut a).unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("rayon 2 threads", |b| {
        b.iter_batched(
            || data.clone(),
            |mut v| rp.install(|| sort_rayon(&mut v)),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("sequential", |b| {
        b.iter_batched(|| data.clone(), |mut v| sort(&mut v), BatchSize::PerIteration)
    });
    g.finish();
}

fn main() {
    // Workers first: the pool forks (or asks the forkserver) before any other thread exists.
    let mut pool = Pool::new(2).expect("starting the pool");
    let rp = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let mut c = Criterion::default().warm_up_time(Duration::from_secs(1)).configure_from_args();
    matmul_group(&mut c, &mut pool, &rp);
    jacobi_group(&mut c, &mut pool, &rp);
    sort_group(&mut c, &mut pool, &rp);
    drop(pool);
    c.final_summary();
}
