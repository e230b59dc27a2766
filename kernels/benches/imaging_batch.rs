//! An image batch three ways, in the same run: 64 photo-like 1024x768 RGB `u8` images
//! (`SHMPOOL_BENCH_IMAGES` sets how many) through `resize=640x480; blur=1.5`
//! (`SHMPOOL_BENCH_PIPELINE` sets another), by (`SHMPOOL_BENCH_WORKERS` sets the 2 below)
//! - `imaging::batch::apply_into` on a pool of 2 worker processes (the images in one shaped
//!   `(n, h, w, 3)` shared array, the output in another), and `apply_into_with` the same with
//!   a `Scratch` kept from one run to the next (a batch that changes the size stages images
//!   through a scratch array: fresh each run, or kept);
//! - the same `Pipeline::apply` on each image in turn, sequentially;
//! - rayon over the images, 2 threads.
//!
//! Every contender copies each image in, runs the pipeline, and writes into one output buffer;
//! the outputs are checked equal before anything is timed.
//!
//! `cargo bench -p shmpool-kernels --bench imaging_batch -- --warm-up-time 1 --measurement-time 2`
//!
//! The pool starts before criterion or rayon start any thread (as in `benches/pool.rs`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use rayon::prelude::*;
use shmpool::{Pool, SharedArray};
use shmpool_kernels::imaging::{Image, Pipeline, Shape, batch};

const PIPELINE: &str = "resize=640x480; blur=1.5";

fn one(p: &Pipeline, shape: Shape, src: &[u8], dst: &mut [u8]) {
    let out = p.apply(Image::from_vec(shape, src.to_vec()).unwrap()).unwrap();
    dst.copy_from_slice(out.as_slice());
}

fn main() {
    let workers: usize =
        std::env::var("SHMPOOL_BENCH_WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let mut pool = Pool::new(workers).unwrap();
    let n: usize =
        std::env::var("SHMPOOL_BENCH_IMAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let shape = Shape::new(768, 1024, 3);
    let text = std::env::var("SHMPOOL_BENCH_PIPELINE").unwrap_or_else(|_| PIPELINE.to_string());
    let p: Pipeline = text.parse().unwrap();
    let input = SharedArray::<u8>::from_shape_fn(&[n, shape.h, shape.w, 3], |ix| {
        let (k, y, x, c) = (ix[0], ix[1], ix[2], ix[3]);
        let noise = (y * 7919 + x * 104_729 + c * 31 + k * 613) % 61;
        let disc =
            if (y as i64 - 384).pow(2) + (x as i64 - 500).pow(2) < 200 * 200 { 70 } else { 0 };
        ((x / 5 + y / 4 + c * 40 + k * 3 + disc + noise) % 256) as u8
    })
    .unwrap();
    let dims = batch::output_shape(&p, input.shape()).unwrap();
    let mut out = SharedArray::<u8>::zeroed_shape(&dims).unwrap();
    let (n_in, n_out) = (shape.len(), out.len() / n);
    let rayon2 = rayon::ThreadPoolBuilder::new().num_threads(workers).build().unwrap();

    let sequential = |dst: &mut [u8]| {
        for (s, d) in input.chunks_exact(n_in).zip(dst.chunks_exact_mut(n_out)) {
            one(&p, shape, s, d);
        }
    };
    let rayon = |dst: &mut [u8]| {
        rayon2.install(|| {
            input.par_chunks_exact(n_in).zip(dst.par_chunks_exact_mut(n_out)).for_each(|(s, d)| {
                one(&p, shape, s, d);
            })
        })
    };
    // The three agree before anything is timed.
    let mut want = vec![0u8; out.len()];
    sequential(&mut want);
    let mut got = vec![0u8; out.len()];
    rayon(&mut got);
    assert!(got == want, "rayon differs from sequential");
    batch::apply_into(&mut pool, &p, &input, &mut out).unwrap();
    assert!(out[..] == want[..], "the batch API differs from sequential");
    out.fill(0);
    let mut kept = batch::Scratch::new();
    for _ in 0..2 {
        batch::apply_into_with(&mut pool, &p, &input, &mut out, &mut kept).unwrap();
        assert!(out[..] == want[..], "the batch API with a kept scratch differs from sequential");
    }

    let mut c = Criterion::default().configure_from_args().sample_size(10);
    let mut g = c.benchmark_group(format!("imaging batch {n} x 1024x768x3 u8, {text}"));
    g.throughput(Throughput::Elements(n as u64));
    g.measurement_time(Duration::from_secs(2));
    g.bench_function(format!("batch::apply_into (pool, {workers} workers)"), |b| {
        b.iter(|| batch::apply_into(&mut pool, &p, black_box(&input), &mut out).unwrap())
    });
    let mut scratch = batch::Scratch::new();
    g.bench_function(
        format!("batch::apply_into_with (pool, {workers} workers, Scratch kept)"),
        |b| {
            b.iter(|| {
                batch::apply_into_with(&mut pool, &p, black_box(&input), &mut out, &mut scratch)
                    .unwrap()
            })
        },
    );
    g.bench_function(format!("rayon over images ({workers} threads)"), |b| {
        b.iter(|| rayon(black_box(&mut got)))
    });
    g.bench_function("sequential, image by image", |b| b.iter(|| sequential(black_box(&mut got))));
    g.finish();
    c.final_summary();
}
