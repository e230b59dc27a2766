//! Segment costs per GiB: create + first touch, and attach (open by name) + touch, each with and
//! without pre-faulting (MAP_POPULATE), against a heap `Vec` of the same size in the same run.
//!
//! `cargo bench --bench segment`; criterion reports throughput in GiB/s (time per GiB = 1 / that).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shmpool::{SharedArray, ShmOptions};

const BYTES: usize = 256 << 20;
const PAGE: usize = 4096;

/// Writes one byte per page, the way a kernel's first pass would fault the pages in.
fn touch_write(s: &mut [u8]) {
    for i in (0..s.len()).step_by(PAGE) {
        s[i] = 1;
    }
}

fn touch_read(s: &[u8]) -> u64 {
    (0..s.len()).step_by(PAGE).map(|i| s[i] as u64).sum()
}

fn create(c: &mut Criterion) {
    let mut g = c.benchmark_group("create+touch");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(BYTES as u64));
    g.bench_function("Vec (heap baseline)", |b| {
        b.iter(|| {
            let mut v = vec![0u8; BYTES];
            touch_write(&mut v);
            black_box(v);
        })
    });
    for populate in [false, true] {
        for named in [false, true] {
            let mut opts = ShmOptions::new().populate(populate);
            if named {
                opts = opts.generated_name();
            }
            let id = BenchmarkId::new(
                if named { "named" } else { "memfd" },
                if populate { "populate" } else { "lazy" },
            );
            g.bench_with_input(id, &opts, |b, opts| {
                b.iter(|| {
                    let mut a = SharedArray::<u8>::zeroed_with(BYTES, opts).unwrap();
                    touch_write(&mut a);
                    black_box(a);
                })
            });
        }
    }
    g.finish();
}

fn attach(c: &mut Criterion) {
    let src =
        SharedArray::<u8>::from_fn_with(BYTES, &ShmOptions::new().generated_name(), |i| i as u8)
            .unwrap();
    let name = src.name().unwrap().to_string();
    let mut g = c.benchmark_group("attach+touch");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(BYTES as u64));
    g.bench_function("open by name, lazy", |b| {
        b.iter(|| {
            // SAFETY: nothing writes the segment during the benchmark.
            let a = unsafe { SharedArray::<u8>::open(&name) }.unwrap();
            black_box(touch_read(&a));
        })
    });
    g.bench_function("open by name, populate", |b| {
        let opts = ShmOptions::new().populate(true);
        b.iter(|| {
            // SAFETY: nothing writes the segment during the benchmark.
            let a = unsafe { SharedArray::<u8>::open_with(&name, &opts) }.unwrap();
            black_box(touch_read(&a));
        })
    });
    g.bench_function("open by handle, lazy", |b| {
        let h = src.handle();
        b.iter(|| {
            // SAFETY: nothing writes the segment during the benchmark.
            let a = unsafe { SharedArray::<u8>::open_handle(&h) }.unwrap();
            black_box(touch_read(&a));
        })
    });
    g.finish();
    drop(src);
}

criterion_group!(benches, create, attach);
criterion_main!(benches);
