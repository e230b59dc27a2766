//! Attacks on issue 10's task hot path: arguments written chunk by chunk after the job is
//! published (`map_ref`, `map` of a `fn(String)` with plain results, over 64 KiB), the inlined
//! per-task loop and the inline short copies. Every task returns a hash of every byte it was
//! given and, where ordering is the question, the `CLOCK_MONOTONIC` time it ran, which the
//! parent compares with the time it wrote that task's argument: a task that ran on bytes not yet
//! written, or a worker left asleep while chunks were staged, fails the test. Each under the
//! default start method (the forkserver) and fork.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use shmpool::{Error, Pool, StartMethod};

use crate::harness::{POOL_METHODS as METHODS, Tests, close_pool, register};
use crate::tasks_borrowed::{fnv, fnv_owned, fnv_str};

pub fn tests() -> Tests {
    register! {
        no_task_runs_before_its_argument_is_written_and_sleeping_workers_wake_per_chunk in METHODS,
        a_streamed_job_after_a_finished_or_cancelled_one_reads_only_its_own_bytes in METHODS,
        as_refs_that_grow_shrink_or_panic_at_chunk_edges_fail_promptly_and_the_pool_goes_on
            in METHODS,
        both_workers_killed_before_staging_ends_are_retried_or_worker_died in METHODS,
        a_dead_workers_chunk_under_a_cancelled_cursor_is_retried_or_failed in METHODS,
        retiring_workers_and_a_task_timeout_while_the_parent_writes in METHODS,
        a_forgotten_or_dropped_async_call_never_shares_its_region_with_the_next in METHODS,
        every_chunk_size_gives_what_the_sequential_code_gives in METHODS,
        sizes_around_the_scratch_boundary_and_the_short_copy_edges_are_read_back_exactly
            in METHODS,
        the_pod_path_and_imap_still_name_a_panicking_task in METHODS,
    }
}

/// Tasks per call in the streamed tests: 300 values of about 250 bytes (75 KiB with the
/// offsets: over the 64 KiB scratch area, so the call streams), 30 chunks of 10.
const N: usize = 300;
const CS: usize = 10;

fn fnv_bytes(b: &[u8]) -> u64 {
    fnv(b)
}

fn fnv_words(w: &[u64]) -> u64 {
    w.iter()
        .fold(0x9e37_79b9_7f4a_7c15 ^ w.len() as u64, |h, &x| (h ^ x).wrapping_mul(0x100_0000_01b3))
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process of the machine.
fn now_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid `timespec` to write; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// A task that hashes its argument and says when it ran. `die:PATH` kills its worker the
/// first time (creating PATH); `sleep` sleeps 10 s; `panic` panics.
fn stamp(s: &str) -> (u64, u64) {
    if let Some(path) = s.strip_prefix("die:") {
        if std::fs::OpenOptions::new().write(true).create_new(true).open(path).is_ok() {
            // SAFETY: `kill` on this process is a plain syscall; SIGKILL ends it at once.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    } else if s == "sleep" {
        std::thread::sleep(Duration::from_secs(10));
    } else if s == "panic" {
        panic!("the task was told to panic");
    }
    (fnv_str(s), now_ns())
}

/// [`stamp`] of an owned argument (`map` of a `fn(String)`, which streams as `map_ref` does).
fn stamp_owned(s: String) -> (u64, u64) {
    stamp(&s)
}

/// [`fnv_str`], 1 ms a task: a job that is still running when its call returns.
fn fnv_slowly(s: &str) -> u64 {
    std::thread::sleep(Duration::from_millis(1));
    fnv_str(s)
}

/// What an argument's `AsRef` does when the pool writes it (its second call; the first is the
/// pool's measuring pass).
#[derive(Clone, Copy, PartialEq, Debug)]
enum When {
    /// Returns the value it was measured with.
    Same,
    /// Returns a value 4 KiB longer.
    Grows,
    /// Returns the first half of its value.
    Shrinks,
    /// Panics.
    Panics,
    /// Returns its value, after waiting (at most 5 s) until every file of the test's list
    /// exists (both workers have killed themselves).
    AwaitsDeaths,
    /// Returns its value after sleeping 400 ms (a task timeout expires meanwhile).
    Lingers,
}

/// An argument whose `AsRef` can be slow and hostile while the pool writes it, and records
/// when it was written.
struct Arg {
    s: String,
    long: String,
    calls: Cell<u32>,
    written: Cell<u64>,
    /// Sleep per write (1 ms: the workers outrun the parent and go to sleep between chunks).
    slow: bool,
    when: When,
    awaited: Vec<PathBuf>,
    saw_deaths: Cell<bool>,
}

impl AsRef<str> for Arg {
    fn as_ref(&self) -> &str {
        let call = self.calls.replace(self.calls.get() + 1);
        if call == 0 {
            return &self.s;
        }
        if self.slow {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.written.set(now_ns());
        match self.when {
            When::Same => &self.s,
            When::Grows => &self.long,
            When::Shrinks => &self.s[..self.s.len() / 2],
            When::Panics => panic!("the AsRef panicked while the pool wrote it"),
            When::AwaitsDeaths => {
                let t = Instant::now();
                while t.elapsed() < Duration::from_secs(5) {
                    if self.awaited.iter().all(|p| p.exists()) {
                        self.saw_deaths.set(true);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                // The worker dies right after creating its file: give the kill a moment.
                std::thread::sleep(Duration::from_millis(20));
                &self.s
            }
            When::Lingers => {
                std::thread::sleep(Duration::from_millis(400));
                &self.s
            }
        }
    }
}

impl Arg {
    /// The bytes the pool wrote for this argument (after its call).
    fn as_written(&self) -> &str {
        if self.when == When::Shrinks { &self.s[..self.s.len() / 2] } else { &self.s }
    }
}

/// An [`Arg`] as `map` takes a `String`: `Borrow<String>`, with the same side effects (its value
/// must not change: `When::Same`).
struct Owned<'a>(&'a Arg);

impl std::borrow::Borrow<String> for Owned<'_> {
    fn borrow(&self) -> &String {
        assert_eq!(self.0.when, When::Same);
        let _ = self.0.as_ref();
        &self.0.s
    }
}

/// `N` distinct ASCII values of 200 to 300 bytes whose contents depend on `seed`.
fn values(seed: u64) -> Vec<String> {
    (0..N as u64)
        .map(|i| {
            let len = 200 + ((i * 37 + seed) % 101) as usize;
            let c = (b'a' + ((i + seed) % 26) as u8) as char;
            let mut s = format!("{seed}:{i}:");
            while s.len() < len {
                s.push(c);
            }
            s
        })
        .collect()
}

fn args(vals: &[String], slow: bool) -> Vec<Arg> {
    vals.iter()
        .map(|s| Arg {
            s: s.clone(),
            long: format!("{s}{}", "+".repeat(4096)),
            calls: Cell::new(0),
            written: Cell::new(0),
            slow,
            when: When::Same,
            awaited: Vec::new(),
            saw_deaths: Cell::new(false),
        })
        .collect()
}

/// Checks a streamed call's results against the values as written, and the order: no task ran
/// before its argument was written; with `slow` writes (1 ms a value), the first chunk ran before the parent wrote the last
/// value (the call did stream), and the workers, asleep between chunks,
/// started each chunk soon after it was written (median under 50 ms; a lost wake-up waits out
/// the workers' 250 ms futex timeout).
fn check_stamps(args: &[Arg], got: &[(u64, u64)], cs: usize, slow: bool) {
    assert_eq!(got.len(), args.len());
    for (i, (a, &(h, ran))) in args.iter().zip(got).enumerate() {
        assert_eq!(h, fnv_str(a.as_written()), "task {i} read bytes it was not given");
        assert!(
            ran >= a.written.get(),
            "task {i} ran {} us before its argument was written",
            (a.written.get() - ran) / 1000
        );
    }
    if slow {
        let last_written = args.iter().map(|a| a.written.get()).max().unwrap();
        let first_chunk = got[..cs].iter().map(|r| r.1).min().unwrap();
        assert!(first_chunk < last_written, "chunk 0 ran only after every argument was written");
        let mut lags: Vec<u64> = (1..args.len().div_ceil(cs))
            .map(|k| {
                let span = k * cs..((k + 1) * cs).min(args.len());
                let written = args[span.clone()].iter().map(|a| a.written.get()).max().unwrap();
                let started = got[span].iter().map(|r| r.1).min().unwrap();
                started.saturating_sub(written)
            })
            .collect();
        lags.sort_unstable();
        let median = lags[lags.len() / 2];
        assert!(
            median < 50_000_000,
            "chunks started {} ms (median) after they were written: {lags:?}",
            median / 1_000_000
        );
    }
}

fn pool(m: StartMethod, retries: u32) -> Pool {
    Pool::builder().workers(2).start_method(m).retries(retries).build().unwrap()
}

fn no_task_runs_before_its_argument_is_written_and_sleeping_workers_wake_per_chunk(m: StartMethod) {
    let mut pool = pool(m, 0);
    for seed in 0..3 {
        let a = args(&values(seed), true);
        let t = Instant::now();
        let got = pool.map_ref(stamp, &a, Some(CS)).unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "the call took {:?}", t.elapsed());
        check_stamps(&a, &got, CS, true);
        // The same through `map` of a `fn(String)`.
        let a = args(&values(seed + 10), true);
        let got = pool.map(stamp_owned, a.iter().map(Owned), Some(CS)).unwrap();
        check_stamps(&a, &got, CS, true);
    }
    close_pool(pool, m);
}

/// A finished job leaves `staged` at its chunk count, a cancelled one part-way: a streamed job
/// published next must start from 0, or its workers read the previous call's bytes, still in
/// the arena.
fn a_streamed_job_after_a_finished_or_cancelled_one_reads_only_its_own_bytes(m: StartMethod) {
    let mut pool = pool(m, 0);
    for round in 0..2u64 {
        // A finished job of more chunks over other values (its bytes stay in the arena).
        let fast = args(&values(100 + round), false);
        let got = pool.map_ref(stamp, &fast, Some(CS / 2)).unwrap();
        check_stamps(&fast, &got, CS / 2, false);
        let slow = args(&values(200 + round), true);
        check_stamps(&slow, &pool.map_ref(stamp, &slow, Some(CS)).unwrap(), CS, true);
        // A job cancelled at chunk 20 of 30, then a streamed one.
        let mut grows = args(&values(300 + round), false);
        grows[200].when = When::Grows;
        let r = pool.map_ref(stamp, &grows, Some(CS));
        assert!(
            matches!(&r, Err(Error::InvalidArgument { reason, .. }) if reason.contains("grew")),
            "{r:?}"
        );
        let slow = args(&values(400 + round), true);
        check_stamps(&slow, &pool.map_ref(stamp, &slow, Some(CS)).unwrap(), CS, true);
    }
    close_pool(pool, m);
}

fn as_refs_that_grow_shrink_or_panic_at_chunk_edges_fail_promptly_and_the_pool_goes_on(
    m: StartMethod,
) {
    let mut pool = pool(m, 0);
    let vals = values(7);
    // The first value, the last of chunk 0, the first of chunk 1, the last value.
    for at in [0, CS - 1, CS, N - 1] {
        for when in [When::Grows, When::Shrinks, When::Panics] {
            let mut a = args(&vals, false);
            a[at].when = when;
            let t = Instant::now();
            let r = catch_unwind(AssertUnwindSafe(|| pool.map_ref(stamp, &a, Some(CS))));
            let what = format!("{when:?} at {at}");
            match (when, r) {
                // Refused where the running total passes the measured one: at the value that
                // grew or a later one, before a byte past the region is written.
                (When::Grows, Ok(Err(Error::InvalidArgument { reason, .. }))) => {
                    let named = reason
                        .strip_prefix("the arguments up to ")
                        .and_then(|r| r.split(' ').next());
                    let named: usize = named.and_then(|n| n.parse().ok()).expect(&reason);
                    assert!(named >= at && reason.contains("grew"), "{what}: {reason}")
                }
                (When::Shrinks, Ok(Ok(got))) => check_stamps(&a, &got, CS, false),
                (When::Panics, Err(p)) => {
                    let text = p.downcast_ref::<&str>().copied().unwrap_or_default();
                    assert!(text.contains("while the pool wrote it"), "{what}: {text:?}");
                }
                (_, Ok(other)) => panic!("{what}: {other:?}"),
                (_, Err(_)) => panic!("{what}: an unexpected panic"),
            }
            assert!(t.elapsed() < Duration::from_secs(3), "{what}: took {:?}", t.elapsed());
            // The next call reads its own values, in order, whatever the last one left.
            let next = args(&values(at as u64 + 1000), false);
            check_stamps(&next, &pool.map_ref(stamp, &next, Some(CS)).unwrap(), CS, false);
        }
    }
    // A task panicking in chunk 0 while a late value grows: the caller hears of the growth
    // (its own mistake), and the pool goes on.
    let mut a = args(&vals, false);
    a[3].s = "panic".into();
    a[250].when = When::Grows;
    let r = pool.map_ref(stamp, &a, Some(CS));
    assert!(matches!(&r, Err(Error::InvalidArgument { .. })), "{r:?}");
    // `map` of a `fn(String)` through a `Borrow<String>` that grows at a chunk boundary.
    let grows = |i: usize| GrowsOnce { s: vals[i].clone(), calls: Cell::new(0), grows: i == CS };
    let b: Vec<GrowsOnce> = (0..N).map(grows).collect();
    let r = pool.map(fnv_owned, b, Some(CS));
    assert!(
        matches!(&r, Err(Error::InvalidArgument { reason, .. }) if reason.contains("grew")),
        "{r:?}"
    );
    let want: Vec<u64> = vals.iter().map(|s| fnv_str(s)).collect();
    assert_eq!(pool.map(fnv_owned, &vals, Some(CS)).unwrap(), want);
    // One value past the limit while its neighbour shrank by more (the total unchanged or
    // less): refused per value, as the write goes, naming it.
    let mut limited =
        Pool::builder().workers(2).start_method(m).max_task_bytes(400).build().unwrap();
    let mut a = args(&vals, false);
    a[CS].when = When::Grows;
    a[CS - 1].s = "z".repeat(399);
    a[CS - 1].long = String::new();
    let r = limited.map_ref(stamp, &a, Some(CS));
    assert!(matches!(&r, Err(Error::TaskValueTooLarge { task, .. }) if *task == CS), "{r:?}");
    drop(limited);
    close_pool(pool, m);
}

/// A `Borrow<String>` that returns a longer string from its second call on.
struct GrowsOnce {
    s: String,
    calls: Cell<u32>,
    grows: bool,
}

static LONGER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

impl std::borrow::Borrow<String> for GrowsOnce {
    fn borrow(&self) -> &String {
        let call = self.calls.replace(self.calls.get() + 1);
        if self.grows && call > 0 {
            return LONGER.get_or_init(|| "L".repeat(8192));
        }
        &self.s
    }
}

/// Marker files for [`stamp`]'s `die:` values, unique to this test and method.
fn markers(tag: &str, m: StartMethod, k: usize) -> Vec<PathBuf> {
    (0..k)
        .map(|j| {
            std::env::temp_dir()
                .join(format!("shmpool-adv10-{tag}-{j}-{}-{m:?}", std::process::id()))
        })
        .inspect(|p| {
            let _ = std::fs::remove_file(p);
        })
        .collect()
}

/// The worker of chunk 0 and the worker of chunk 1 kill themselves while the parent is still
/// writing (it waits for both deaths before writing the last value): no worker is left while
/// the rest is staged. With retries, both chunks run again and every result is its task's own;
/// without, the call is `WorkerDied` for one of them; either way the pool goes on.
fn both_workers_killed_before_staging_ends_are_retried_or_worker_died(m: StartMethod) {
    for retries in [2, 0] {
        let mut pool = pool(m, retries);
        let files = markers("both", m, 2);
        let mut vals = values(retries as u64);
        vals[3] = format!("die:{}", files[0].display());
        vals[CS + 4] = format!("die:{}", files[1].display());
        let mut a = args(&vals, true);
        a[N - 1].when = When::AwaitsDeaths;
        a[N - 1].awaited = files.clone();
        let t = Instant::now();
        let r = pool.map_ref(stamp, &a, Some(CS));
        assert!(a[N - 1].saw_deaths.get(), "both workers died before the last value was written");
        assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
        match (retries, r) {
            (2, Ok(got)) => check_stamps(&a, &got, CS, false),
            (0, Err(Error::WorkerDied { chunk, signal, .. })) => {
                assert!(chunk <= 1, "chunk {chunk}");
                assert_eq!(signal, Some(libc::SIGKILL));
            }
            (_, other) => panic!("retries {retries}: {other:?}"),
        }
        let next = args(&values(50), true);
        check_stamps(&next, &pool.map_ref(stamp, &next, Some(CS)).unwrap(), CS, true);
        for f in &files {
            std::fs::remove_file(f).unwrap();
        }
        close_pool(pool, m);
    }
}

/// A worker dies holding a chunk, and the job is cancelled (its cursor closed) before the
/// parent has seen the death; the wait that follows must still retry that chunk
/// (`retries(1)`) or fail it (`retries(0)`), and the next call read only its own values. Two
/// ways to get there: a streamed `map_ref` whose `AsRef` grows in a late chunk while the
/// worker of chunk 0 is dead (the parent, writing, checks no worker), and an `imap` dropped
/// after its worker died; and the same `map_ref` whose chunk-0 task sleeps past the task
/// timeout (its worker is killed only once the parent waits, after the cancel). Each runs in a child with a deadline: a hang fails this test, not
/// the whole run at the watchdog.
///
/// Fails at the time of writing (2026-11-30): `resolve_suspects` (src/pool/failure.rs) takes
/// a chunk as never claimed when the cursor is closed (`claimed = ... && !cursor.is_closed()
/// && ...`), so the dead worker's chunk is dropped as a suspect, neither retried nor failed,
/// and the wait never ends.
fn a_dead_workers_chunk_under_a_cancelled_cursor_is_retried_or_failed(m: StartMethod) {
    for (scenario, retries) in [(0u8, 1u32), (0, 0), (1, 1), (1, 0), (2, 0)] {
        let files = markers("cancel", m, 1);
        let arg = (scenario, m == StartMethod::Fork, retries, files[0].display().to_string());
        let mut child =
            shmpool::get_context(StartMethod::Fork).start(death_then_cancel, arg).unwrap();
        let status = child.join_timeout(Duration::from_secs(10)).unwrap();
        let _ = std::fs::remove_file(&files[0]);
        let what = ["map_ref with a late growth", "imap dropped", "a task timeout, a late growth"]
            [scenario as usize];
        let Some(status) = status else {
            child.kill().unwrap();
            child.join().unwrap();
            panic!(
                "{what}, retries({retries}): the call never returned: the dead worker's chunk \
                 was dropped as never claimed once the cancel closed the cursor"
            );
        };
        assert_eq!(status.exitcode(), 0, "{what}, retries({retries}): {status}");
    }
}

/// [`stamp`]'s hash of an owned argument (`imap` of `String`s).
fn hash_or_die_once(s: String) -> u64 {
    stamp(&s).0
}

/// The child of [`a_dead_workers_chunk_under_a_cancelled_cursor_is_retried_or_failed`]:
/// 0 when every check held (a failed one panics).
fn death_then_cancel((scenario, fork, retries, marker): (u8, bool, u32, String)) -> i32 {
    let m = if fork { StartMethod::Fork } else { StartMethod::ForkServer };
    let mut pool = pool(m, retries);
    let mut vals = values(77);
    vals[4] = format!("die:{marker}");
    if scenario == 2 {
        // The task of chunk 0 sleeps past the timeout, which the parent enforces only once it
        // waits: after the cancel.
        let timeout = Duration::from_millis(100);
        pool = Pool::builder().workers(2).start_method(m).task_timeout(timeout).build().unwrap();
        vals[4] = "sleep".into();
        std::fs::write(&marker, b"").unwrap();
    }
    if scenario != 1 {
        let mut a = args(&vals, true);
        a[250].when = When::Grows;
        let r = pool.map_ref(stamp, &a, Some(CS));
        assert!(
            matches!(&r, Err(Error::InvalidArgument { reason, .. }) if reason.contains("grew")),
            "{r:?}"
        );
    } else {
        let it = pool.imap(hash_or_die_once, &vals, Some(1)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(it);
    }
    assert!(std::path::Path::new(&marker).exists(), "the worker did die");
    let next = args(&values(78), true);
    check_stamps(&next, &pool.map_ref(stamp, &next, Some(CS / 2)).unwrap(), CS / 2, true);
    close_pool(pool, m);
    0
}

/// Workers that retire after every chunk (`maxtasksperchild(1)`), so both are gone after the
/// first two chunks while the parent still writes; and a task past the task timeout in chunk 0
/// while the parent writes (for 400 ms more): the first call gives every task's own result,
/// the second `TaskTimedOut` naming the task, in bounded time, and the pool goes on.
fn retiring_workers_and_a_task_timeout_while_the_parent_writes(m: StartMethod) {
    let mut pool = Pool::builder().workers(2).start_method(m).maxtasksperchild(1).build().unwrap();
    for seed in 0..2 {
        let a = args(&values(seed), true);
        let t = Instant::now();
        let got = pool.map_ref(stamp, &a, Some(CS)).unwrap();
        assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
        check_stamps(&a, &got, CS, false);
    }
    close_pool(pool, m);
    let timeout = Duration::from_millis(150);
    let mut pool =
        Pool::builder().workers(2).start_method(m).task_timeout(timeout).build().unwrap();
    let mut vals = values(9);
    vals[2] = "sleep".into();
    let mut a = args(&vals, true);
    a[N - 1].when = When::Lingers;
    let t = Instant::now();
    match pool.map_ref(stamp, &a, Some(CS)) {
        Err(Error::TaskTimedOut { task: 2, after, .. }) => assert_eq!(after, timeout),
        other => panic!("expected task 2 to time out, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    let next = args(&values(10), true);
    check_stamps(&next, &pool.map_ref(stamp, &next, Some(CS)).unwrap(), CS, true);
    close_pool(pool, m);
}

/// `map_ref_async` of slow tasks, its result forgotten (the job still runs) or dropped, then
/// calls whose regions need a bigger arena or the same one: each reads its own values.
fn a_forgotten_or_dropped_async_call_never_shares_its_region_with_the_next(m: StartMethod) {
    let mut pool = pool(m, 0);
    let vals = values(1);
    let r = pool.map_ref_async(fnv_slowly, &vals, Some(CS)).unwrap();
    std::mem::forget(r);
    // Four times the bytes: the arena is replaced, after the forgotten job ends.
    let big: Vec<String> = values(2).iter().map(|s| s.repeat(4)).collect();
    let a = args(&big, false);
    check_stamps(&a, &pool.map_ref(stamp, &a, Some(CS)).unwrap(), CS, false);
    let r = pool.map_ref_async(fnv_slowly, &big, Some(CS)).unwrap();
    std::mem::forget(r);
    let a = args(&values(3), true);
    check_stamps(&a, &pool.map_ref(stamp, &a, Some(CS)).unwrap(), CS, true);
    let r = pool.map_ref_async(fnv_slowly, &vals, Some(1)).unwrap();
    drop(r);
    let a = args(&values(4), false);
    check_stamps(&a, &pool.map_ref(stamp, &a, Some(CS)).unwrap(), CS, false);
    let mut r = pool.map_ref_async(fnv_str, &big, Some(CS)).unwrap();
    assert_eq!(r.get().unwrap(), big.iter().map(|s| fnv_str(s)).collect::<Vec<_>>());
    drop(r);
    close_pool(pool, m);
}

fn every_chunk_size_gives_what_the_sequential_code_gives(m: StartMethod) {
    let mut pool = pool(m, 0);
    let n = 2000;
    let names: Vec<String> =
        (0..n).map(|i| format!("/data/{i:05}/file-{}.csv", i * 7919)).collect();
    let want: Vec<u64> = names.iter().map(|s| fnv_str(s)).collect();
    for cs in [Some(1), Some(2), Some(7), Some(n - 1), Some(n), Some(n + 1), Some(usize::MAX), None]
    {
        assert_eq!(pool.map_ref(fnv_str, &names, cs).unwrap(), want, "map_ref, chunksize {cs:?}");
        assert_eq!(pool.map(fnv_owned, &names, cs).unwrap(), want, "map, chunksize {cs:?}");
        let mut r = pool.map_ref_async(fnv_str, &names, cs).unwrap();
        assert_eq!(r.get().unwrap(), want, "map_ref_async, chunksize {cs:?}");
    }
    close_pool(pool, m);
}

fn sizes_around_the_scratch_boundary_and_the_short_copy_edges_are_read_back_exactly(
    m: StartMethod,
) {
    let mut pool = pool(m, 0);
    // 1000 values: the offsets (8 KiB), the results (8 KiB) and about 49 KiB of bytes reach
    // the 64 KiB scratch area when the last value is about 580 bytes long: every length from
    // 450 to 700 (and a coarse sweep to 4000) lands on both sides of it, in scratch and streamed.
    let mut names: Vec<String> = (0..1000).map(|i| format!("{i:04}{}", "k".repeat(45))).collect();
    let lens = (450..=700).chain((0..4000).step_by(97));
    for len in lens {
        names[999] = "v".repeat(len);
        names[500] = format!("{len}{}", "m".repeat(len % 13));
        let want: Vec<u64> = names.iter().map(|s| fnv_str(s)).collect();
        assert_eq!(
            pool.map_ref(fnv_str, &names, Some(50)).unwrap(),
            want,
            "last value {len} bytes"
        );
        assert_eq!(pool.map(fnv_owned, &names, Some(50)).unwrap(), want, "map, {len} bytes");
    }
    // Empty values only: no data bytes, 200 chunks of offsets.
    let empty = vec![String::new(); 20_000];
    assert_eq!(pool.map_ref(fnv_str, &empty, Some(100)).unwrap(), vec![fnv(b""); 20_000]);
    assert_eq!(pool.map(fnv_owned, &empty, Some(100)).unwrap(), vec![fnv(b""); 20_000]);
    // One 4 MiB value among tiny ones: first, last of a chunk, first of the next, last.
    let huge: String = (0..4usize << 20).map(|i| (b'a' + (i % 23) as u8) as char).collect();
    for at in [0, 9, 10, 99] {
        let mut v: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
        v[at] = huge.clone();
        let want: Vec<u64> = v.iter().map(|s| fnv_str(s)).collect();
        assert_eq!(pool.map_ref(fnv_str, &v, Some(10)).unwrap(), want, "huge at {at}");
        assert_eq!(pool.map(fnv_owned, &v, Some(10)).unwrap(), want, "map, huge at {at}");
    }
    // Every length from 0 to 40 bytes (the inline copy's 4/8/16/32 edges) at every offset
    // modulo 16, arbitrary bytes (not UTF-8) and strings with multi-byte characters.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let bytes: Vec<Vec<u8>> =
        (0..41 * 64).map(|i| (0..i % 41).map(|_| next() as u8).collect()).collect();
    let want: Vec<u64> = bytes.iter().map(|b| fnv(b)).collect();
    for cs in [Some(7), Some(41), None] {
        assert_eq!(pool.map_ref(fnv_bytes, &bytes, cs).unwrap(), want, "bytes, chunksize {cs:?}");
    }
    let chars = ['a', 'é', '語', '🦀'];
    let strs: Vec<String> = (0..41 * 64)
        .map(|i| {
            let mut s = String::new();
            while s.len() + 4 <= i % 41 {
                s.push(chars[(next() % 4) as usize]);
            }
            while s.len() < i % 41 {
                s.push('z');
            }
            s
        })
        .collect();
    let want: Vec<u64> = strs.iter().map(|s| fnv_str(s)).collect();
    assert_eq!(pool.map_ref(fnv_str, &strs, Some(13)).unwrap(), want);
    assert_eq!(pool.map(fnv_owned, &strs, Some(13)).unwrap(), want);
    let words: Vec<Vec<u64>> = (0..3000).map(|i| (0..i % 6).map(|_| next()).collect()).collect();
    let want: Vec<u64> = words.iter().map(|w| fnv_words(w)).collect();
    assert_eq!(pool.map_ref(fnv_words, &words, Some(11)).unwrap(), want);
    close_pool(pool, m);
}

fn square_but_not(x: u64) -> u64 {
    assert!(x != 77_777, "not this one");
    x.wrapping_mul(x)
}

fn add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b.rotate_left(7))
}

fn the_pod_path_and_imap_still_name_a_panicking_task(m: StartMethod) {
    let mut pool = pool(m, 0);
    let xs: Vec<u64> = (0..100_000).collect();
    let fine: Vec<u64> = (100_000..200_000).collect();
    let want: Vec<u64> = fine.iter().map(|x| x.wrapping_mul(*x)).collect();
    assert_eq!(pool.map(square_but_not, &fine, Some(1000)).unwrap(), want);
    match pool.map(square_but_not, &xs, Some(1000)) {
        Err(Error::KernelPanicked { chunk: 77, message, .. }) => {
            assert!(message.starts_with("task 77777: not this one"), "{message}")
        }
        other => panic!("expected task 77777 to panic, got {other:?}"),
    }
    let pairs: Vec<(u64, u64)> = (0..50_000).map(|i| (i * 3, u64::MAX - i)).collect();
    let want: Vec<u64> = pairs.iter().map(|&(a, b)| add(a, b)).collect();
    assert_eq!(pool.starmap(add as fn(u64, u64) -> u64, &pairs, Some(999)).unwrap(), want);
    // One task a chunk: only the panicking task's item is an error, naming it.
    let got: Vec<_> = pool.imap(square_but_not, 76_000..79_000u64, Some(1)).unwrap().collect();
    assert_eq!(got.len(), 3000);
    for (i, r) in got.iter().enumerate() {
        let x = 76_000 + i as u64;
        match r {
            Ok(v) if x != 77_777 => assert_eq!(*v, x * x, "task {i}"),
            Err(Error::KernelPanicked { message, .. }) if x == 77_777 => {
                assert!(message.starts_with(&format!("task {i}: not this one")), "{message}")
            }
            other => panic!("task {i}: {other:?}"),
        }
    }
    assert_eq!(pool.map(square_but_not, [3u64], None).unwrap(), [9], "the pool goes on");
    close_pool(pool, m);
}
