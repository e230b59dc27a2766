//! The pool against rayon (2 threads) and sequential code, in the same run:
//! - in place `a = a*1.0001 + 0.5` over 32M f64 (256 MiB), elements per second;
//! - a map-reduce sum over the same array;
//! - 1M tiny tasks through `map`, default chunking and chunksize 1;
//! - `map` over 100,000 short strings: `fn(String)`, and `map_ref` of a `fn(&str)` reading
//!   them in place, against sequential code cloning each string or borrowing it;
//! - `apply` round trip, back to back;
//! - `Pending::is_finished`, one poll, of a call still running and of one finished;
//! - pool start (2 workers) + first task + shutdown, per start method (fork, forkserver with
//!   the server already running, as in Python's figure after its first repetition, and spawn).
//!
//! `cargo bench --bench pool` (short: `-- --warm-up-time 1 --measurement-time 3`).
//!
//! The long-lived pool of the throughput and round-trip groups uses the default start method
//! (the forkserver; every benchmark name says which): the protocol between the parent and the
//! workers is the same for every method, only starting and replacing workers differ (those are
//! in the start group here and in `benches/start_recover.rs`). The fork row of the
//! start/shutdown group must fork while criterion's threads exist, and opts in with
//! `allow_threads()` (its workers touch only shared memory).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use rayon::prelude::*;
use shmpool::{Pool, SharedArray, StartMethod};

const N: usize = 32 << 20;
/// rayon's chunk for the same kernel: big enough that splitting costs vanish.
const RAYON_CHUNK: usize = 1 << 16;

fn rayon2() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap()
}

/// The benchmark name of the long-lived pool: its workers and start method.
fn ours(pool: &Pool) -> String {
    format!("shmpool {} workers ({})", pool.workers(), pool.start_method())
}

fn scale_add(c: &mut Criterion, pool: &mut Pool, a: &mut SharedArray<f64>) {
    let rp = rayon2();
    let mut g = c.benchmark_group("pool/scale_add_32M_f64");
    g.sample_size(10).throughput(Throughput::Elements(N as u64));
    g.bench_function(ours(pool), |b| {
        b.iter(|| pool.for_each_chunk(a, shmpool_kernels::scale_add).unwrap())
    });
    g.bench_function("rayon 2 threads", |b| {
        b.iter(|| rp.install(|| a.par_chunks_mut(RAYON_CHUNK).for_each(shmpool_kernels::scale_add)))
    });
    g.bench_function("sequential", |b| b.iter(|| shmpool_kernels::scale_add(a)));
    g.finish();
}

fn sum(c: &mut Criterion, pool: &mut Pool, a: &SharedArray<f64>) {
    let rp = rayon2();
    let mut g = c.benchmark_group("pool/sum_32M_f64");
    g.sample_size(10).throughput(Throughput::Elements(N as u64));
    g.bench_function(ours(pool), |b| {
        b.iter(|| black_box(pool.map_reduce(a, shmpool_kernels::sum, |x, y| x + y).unwrap()))
    });
    g.bench_function("rayon 2 threads", |b| {
        b.iter(|| {
            black_box(
                rp.install(|| a.par_chunks(RAYON_CHUNK).map(shmpool_kernels::sum).sum::<f64>()),
            )
        })
    });
    g.bench_function("sequential", |b| b.iter(|| black_box(shmpool_kernels::sum(a))));
    g.finish();
}

fn start_stop(c: &mut Criterion) {
    let mut small = SharedArray::<f64>::zeroed(1024).unwrap();
    let mut g = c.benchmark_group("pool/start+first_task+shutdown");
    g.sample_size(10);
    g.bench_function("shmpool 2 workers (fork)", |b| {
        b.iter(|| {
            // SAFETY: the workers run `scale_add` on shared memory only; criterion's threads, if
            // any, hold no lock they take.
            let builder = unsafe {
                Pool::builder()
                    .workers(2)
                    .start_method(StartMethod::Fork)
                    .inline_threshold(0) // a first task in a worker, not inline
                    .allow_threads()
            };
            let mut p = builder.build().unwrap();
            p.for_each_chunk(&mut small, shmpool_kernels::scale_add).unwrap();
            drop(p);
        })
    });
    for m in [StartMethod::ForkServer, StartMethod::Spawn] {
        g.bench_function(format!("shmpool 2 workers ({m})"), |b| {
            b.iter(|| {
                // Neither method forks this (multi-threaded) process.
                let b = Pool::builder().workers(2).start_method(m).inline_threshold(0);
                let mut p = b.build().unwrap();
                p.for_each_chunk(&mut small, shmpool_kernels::scale_add).unwrap();
                drop(p);
            })
        });
    }
    shmpool::process::shutdown_forkserver().expect("stopping the forkserver");
    g.bench_function("rayon 2 threads", |b| {
        b.iter(|| {
            let rp = rayon2();
            rp.install(|| small.par_chunks_mut(64).for_each(shmpool_kernels::scale_add));
            drop(rp);
        })
    });
    g.bench_function("sequential (the task alone)", |b| {
        b.iter(|| shmpool_kernels::scale_add(&mut small))
    });
    g.finish();
}

fn tiny(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7
}

/// A `u64` the task calls serialize (no `TypeId` list knows it), to measure that path.
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Wrapped(u64);

fn tiny_wrapped(x: Wrapped) -> Wrapped {
    Wrapped(tiny(x.0))
}

const TASKS: usize = 1 << 20;

fn tiny_tasks(c: &mut Criterion, pool: &mut Pool) {
    let rp = rayon2();
    let args: Vec<u64> = (0..TASKS as u64).collect();
    let mut g = c.benchmark_group("pool/1M_tiny_tasks");
    g.sample_size(10).throughput(Throughput::Elements(TASKS as u64));
    // The Pod path (raw bytes: `map_pod`, and `map` choosing it by itself for `u64`) and the
    // serialized path (postcard, for a newtype no `TypeId` list knows), on the same tasks in
    // the same run.
    let wrapped: Vec<Wrapped> = args.iter().map(|&x| Wrapped(x)).collect();
    g.bench_function(format!("{}, map_pod, default chunksize", ours(pool)), |b| {
        b.iter(|| black_box(pool.map_pod(tiny, &args, None).unwrap()))
    });
    g.bench_function(format!("{}, map (automatic Pod path), default chunksize", ours(pool)), |b| {
        b.iter(|| black_box(pool.map(tiny, &args, None).unwrap()))
    });
    g.bench_function(format!("{}, map (serialized), default chunksize", ours(pool)), |b| {
        b.iter(|| black_box(pool.map(tiny_wrapped, &wrapped, None).unwrap()))
    });
    g.bench_function(format!("{}, map_pod, chunksize 1", ours(pool)), |b| {
        b.iter(|| black_box(pool.map_pod(tiny, &args, Some(1)).unwrap()))
    });
    g.bench_function(format!("{}, map (serialized), chunksize 1", ours(pool)), |b| {
        b.iter(|| black_box(pool.map(tiny_wrapped, &wrapped, Some(1)).unwrap()))
    });
    g.bench_function("rayon 2 threads", |b| {
        b.iter(|| black_box(rp.install(|| args.par_iter().map(|&x| tiny(x)).collect::<Vec<u64>>())))
    });
    g.bench_function("sequential", |b| {
        b.iter(|| black_box(args.iter().map(|&x| tiny(x)).collect::<Vec<u64>>()))
    });
    g.finish();
}

fn short_string_len(s: String) -> usize {
    s.len()
}

/// A `usize` the task calls serialize.
#[derive(serde::Serialize, serde::Deserialize)]
struct Len(usize);

fn short_string_len_wrapped(s: String) -> Len {
    Len(s.len())
}

/// Python's most common pool program: `map` over 100,000 short strings (file names).
fn short_strings(c: &mut Criterion, pool: &mut Pool) {
    let names: Vec<String> = (0..100_000).map(|i| format!("/data/file-{i}.csv")).collect();
    let mut g = c.benchmark_group("pool/map_100k_short_strings");
    g.sample_size(10).throughput(Throughput::Elements(names.len() as u64));
    g.bench_function(format!("{}, map, default chunksize", ours(pool)), |b| {
        b.iter(|| black_box(pool.map(short_string_len, &names, None).unwrap()))
    });
    // The same tasks with a result the pool serializes (what every result took before plain
    // results came back as raw slots): the before-and-after of that change in one run.
    g.bench_function(format!("{}, map, serialized results", ours(pool)), |b| {
        b.iter(|| black_box(pool.map(short_string_len_wrapped, &names, None).unwrap()))
    });
    // The task borrows its argument in place (`&str` into shared memory): no serialization
    // and no allocation per task.
    g.bench_function(format!("{}, map_ref (&str), default chunksize", ours(pool)), |b| {
        b.iter(|| black_box(pool.map_ref(str_len, &names, None).unwrap()))
    });
    g.bench_function(format!("{}, map_ref (&str), serialized results", ours(pool)), |b| {
        b.iter(|| black_box(pool.map_ref(str_len_wrapped, &names, None).unwrap()))
    });
    g.bench_function("sequential", |b| {
        b.iter(|| black_box(names.iter().cloned().map(short_string_len).collect::<Vec<_>>()))
    });
    g.bench_function("sequential (&str)", |b| {
        b.iter(|| black_box(names.iter().map(|s| str_len(s)).collect::<Vec<_>>()))
    });
    g.finish();
}

fn str_len(s: &str) -> usize {
    s.len()
}

fn str_len_wrapped(s: &str) -> Len {
    Len(s.len())
}

/// Python's `[pool.apply_async(f, (i,)) for i in range(1000)]`, then every `get`.
fn apply_async_in_flight(c: &mut Criterion, pool: &mut Pool) {
    let mut g = c.benchmark_group("pool/1000_apply_async_in_flight");
    g.sample_size(10).throughput(Throughput::Elements(1000));
    g.bench_function(format!("{}, apply_queue", ours(pool)), |b| {
        b.iter(|| {
            let q = pool.apply_queue();
            let pending: Vec<_> = (0..1000).map(|i| q.apply_async(tiny, i).unwrap()).collect();
            pending.iter().map(|p| p.get().unwrap()).sum::<u64>()
        })
    });
    g.finish();
}

/// Holds its worker while the file `path` exists.
fn hold_while(path: String) {
    while std::path::Path::new(&path).exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One `Pending::is_finished` poll (a progress bar asks it of every call at every tick): of a
/// call still running (held by a file) and of one finished, in the same batch.
fn is_finished_poll(c: &mut Criterion, pool: &mut Pool) {
    let mut g = c.benchmark_group("pool/pending_is_finished");
    let hold = std::env::temp_dir().join(format!("shmpool-bench-hold-{}", std::process::id()));
    std::fs::write(&hold, b"").unwrap();
    let ours = ours(pool);
    let q = pool.apply_queue();
    let name = hold.to_string_lossy().into_owned();
    let p = q.apply_async_batch(hold_while, [name, String::new()]).unwrap();
    while !p[1].is_finished() {
        std::thread::yield_now();
    }
    g.bench_function(format!("{ours}, running call"), |b| {
        b.iter(|| assert!(!black_box(&p[0]).is_finished()))
    });
    g.bench_function(format!("{ours}, finished call"), |b| {
        b.iter(|| assert!(black_box(&p[1]).is_finished()))
    });
    std::fs::remove_file(&hold).unwrap();
    p[0].get().unwrap();
    g.finish();
}

fn apply_round_trip(c: &mut Criterion, pool: &mut Pool) {
    let rp = rayon2();
    let mut g = c.benchmark_group("pool/apply_round_trip");
    g.sample_size(10);
    let mut x = 0u64;
    g.bench_function(format!("{}, apply_pod", ours(pool)), |b| {
        b.iter(|| {
            x = pool.apply_pod(tiny, x).unwrap();
        })
    });
    g.bench_function(format!("{}, apply (automatic Pod path)", ours(pool)), |b| {
        b.iter(|| {
            x = pool.apply(tiny, x).unwrap();
        })
    });
    let mut w = Wrapped(0);
    g.bench_function(format!("{}, apply (serialized)", ours(pool)), |b| {
        b.iter(|| {
            w = pool.apply(tiny_wrapped, w).unwrap();
        })
    });
    g.bench_function("rayon install", |b| b.iter(|| black_box(rp.install(|| tiny(black_box(7))))));
    g.bench_function("sequential call", |b| b.iter(|| black_box(tiny(black_box(7)))));
    g.finish();
}

fn main() {
    // The default start method (the forkserver), named in every benchmark of this pool.
    let mut pool = Pool::new(2).expect("starting the pool");
    let mut a = SharedArray::<f64>::from_fn(N, |i| (i % 1000) as f64).unwrap();
    let mut c = Criterion::default().warm_up_time(Duration::from_secs(1)).configure_from_args();
    scale_add(&mut c, &mut pool, &mut a);
    sum(&mut c, &mut pool, &a);
    tiny_tasks(&mut c, &mut pool);
    short_strings(&mut c, &mut pool);
    apply_async_in_flight(&mut c, &mut pool);
    is_finished_poll(&mut c, &mut pool);
    apply_round_trip(&mut c, &mut pool);
    drop(pool);
    start_stop(&mut c);
    c.final_summary();
}
