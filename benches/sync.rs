//! Lock costs: uncontended lock/unlock, and an increment contended by two processes (shmpool's
//! robust `Mutex<u64>`, `SharedAtomic<AtomicU64>`) against `std::sync::Mutex<u64>` contended by
//! two threads, all in one run. Criterion reports time per increment.
//!
//! `cargo bench --bench sync -- --warm-up-time 1 --measurement-time 3`
//!
//! For orientation (not measured here): Python's `Value` increment under its lock, two
//! processes, costs about 2.3 us on the project's 2-core VM.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use shmpool::{Barrier, Mutex, SharedAtomic};

const QUIT: u64 = u64::MAX;
const WAIT: Duration = Duration::from_secs(60);

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("uncontended lock+increment+unlock");
    let m = Mutex::new(0u64).unwrap();
    g.bench_function("shmpool::Mutex<u64>", |b| b.iter(|| *black_box(&m).lock().unwrap() += 1));
    let s = std::sync::Mutex::new(0u64);
    g.bench_function("std::sync::Mutex<u64> (baseline)", |b| {
        b.iter(|| *black_box(&s).lock().unwrap() += 1)
    });
    let a = SharedAtomic::<AtomicU64>::new(0).unwrap();
    g.bench_function("shmpool::SharedAtomic<AtomicU64> fetch_add", |b| {
        b.iter(|| black_box(&a).fetch_add(1, Ordering::Relaxed))
    });
    g.finish();
}

/// What the child process is told to do in a round.
#[derive(Clone, Copy)]
#[repr(u64)]
enum Work {
    Mutex = 0,
    Atomic = 1,
}

/// Shared state between the benchmark process and its partner child.
struct Shared {
    start: Barrier,
    end: Barrier,
    /// Increments the child does this round, or QUIT.
    n: SharedAtomic<AtomicU64>,
    work: SharedAtomic<AtomicU64>,
    m: Mutex<u64>,
    a: SharedAtomic<AtomicU64>,
}

impl Shared {
    fn increments(&self, work: u64, n: u64) {
        if work == Work::Mutex as u64 {
            for _ in 0..n {
                *self.m.lock().unwrap() += 1;
            }
        } else {
            for _ in 0..n {
                self.a.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The child: waits for a round, does its share, reports, until told to quit.
    fn partner(&self) -> shmpool::Result<()> {
        loop {
            self.start.wait_timeout(WAIT)?;
            let n = self.n.load(Ordering::Acquire);
            if n == QUIT {
                return Ok(());
            }
            self.increments(self.work.load(Ordering::Acquire), n);
            self.end.wait_timeout(WAIT)?;
        }
    }

    /// One timed round: `iters` increments, half in each process.
    fn round(&self, work: Work, iters: u64) -> Duration {
        let theirs = iters / 2;
        self.n.store(theirs, Ordering::Release);
        self.work.store(work as u64, Ordering::Release);
        let t0 = Instant::now();
        self.start.wait_timeout(WAIT).unwrap();
        self.increments(work as u64, iters - theirs);
        self.end.wait_timeout(WAIT).unwrap();
        t0.elapsed()
    }
}

fn contended(c: &mut Criterion) {
    let shared = Shared {
        start: Barrier::new(2).unwrap(),
        end: Barrier::new(2).unwrap(),
        n: SharedAtomic::new(0).unwrap(),
        work: SharedAtomic::new(0).unwrap(),
        m: Mutex::new(0).unwrap(),
        a: SharedAtomic::new(0).unwrap(),
    };
    let mut g = c.benchmark_group("increment contended by 2 (time per increment)");
    shmpool::scope(|s| -> shmpool::Result<()> {
        // The partner only touches shared memory (and glibc's malloc, which has fork
        // handlers), so a criterion helper thread, if any, cannot deadlock it.
        if std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(1) > 1 {
            // SAFETY: criterion's threads hold none of the locks the partner child uses: it
            // touches only the shared mutex, atomics and barriers, and exits with _exit.
            unsafe { s.allow_threads() };
        }
        let child = s.fork(|| shared.partner())?;
        g.bench_function("shmpool::Mutex<u64>, 2 processes", |b| {
            b.iter_custom(|iters| shared.round(Work::Mutex, iters))
        });
        g.bench_function("shmpool::SharedAtomic<AtomicU64> fetch_add, 2 processes", |b| {
            b.iter_custom(|iters| shared.round(Work::Atomic, iters))
        });
        shared.n.store(QUIT, Ordering::Release);
        shared.start.wait_timeout(WAIT)?;
        let st = child.join()?;
        assert!(st.success(), "partner process failed: {st}");
        Ok(())
    })
    .unwrap()
    .unwrap();
    let expected = shared.m.lock().unwrap();
    black_box(*expected);
    drop(expected);

    // Baseline: std's Mutex, two threads, same round structure.
    let start = std::sync::Barrier::new(2);
    let end = std::sync::Barrier::new(2);
    let n = AtomicU64::new(0);
    let m = std::sync::Mutex::new(0u64);
    std::thread::scope(|s| {
        s.spawn(|| {
            loop {
                start.wait();
                let k = n.load(Ordering::Acquire);
                if k == QUIT {
                    return;
                }
                for _ in 0..k {
                    *m.lock().unwrap() += 1;
                }
                end.wait();
            }
        });
        g.bench_function("std::sync::Mutex<u64>, 2 threads (baseline)", |b| {
            b.iter_custom(|iters| {
                let theirs = iters / 2;
                n.store(theirs, Ordering::Release);
                let t0 = Instant::now();
                start.wait();
                for _ in 0..iters - theirs {
                    *m.lock().unwrap() += 1;
                }
                end.wait();
                t0.elapsed()
            })
        });
        n.store(QUIT, Ordering::Release);
        start.wait();
    });
    g.finish();
}

criterion_group!(benches, uncontended, contended);
criterion_main!(benches);
