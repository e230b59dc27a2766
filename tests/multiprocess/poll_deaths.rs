//! Every poll loop ends: `Pending::is_finished` alone, with no wait and no `is_ready` between
//! polls, sees a call whose worker was SIGKILLed, or ran past the task timeout, as finished
//! (within ~10 ms of the death: a rate-limited look at the workers shared by the queue's polls),
//! and sees calls queued behind a running batch go out and finish. The other calls' results
//! are right, and the looks are rate-limited (counted with `ApplyQueue::poll_looks`). And the
//! pool's rule for timed waits (`src/pool/README.md`, "Timed waits"): when the pool gives up
//! under a poll or a timed wait, the poll or wait reads the job as over and `get` / `wait` says
//! why. Each under the default start method (the forkserver) and fork.

use std::time::{Duration, Instant};

use shmpool::pool::{ApplyQueue, Pending};
use shmpool::{Error, Pool, SharedArray, StartMethod};

use crate::harness::{
    POLL_DEADLINE as DEADLINE, POOL_METHODS as METHODS, PROMPT, Tests, close_pool,
    poll_all_finished, register, two_worker_pool,
};

pub fn tests() -> Tests {
    register! {
        a_call_that_kills_its_worker_is_seen_finished_by_polls_alone in METHODS,
        a_call_past_the_task_timeout_is_seen_finished_by_polls_alone in METHODS,
        calls_queued_behind_a_batch_are_seen_finished_by_polls_alone in METHODS,
        a_pool_that_gives_up_ends_every_poll_and_timed_wait_and_get_says_why in METHODS,
        helpers: [bad_init],
    }
}

/// Polls `pending` only through `is_finished` until every call is finished
/// ([`poll_all_finished`]: rate-limited looks); how long it took. Fails also if the queue
/// never looked at its workers.
fn poll_until_all_finished<R>(q: &ApplyQueue<'_>, pending: &[Pending<'_, '_, R>]) -> Duration {
    let (took, looks) = poll_all_finished("is_finished", q, pending);
    assert!(looks >= 1, "the calls were seen finished without a look at the workers");
    took
}

/// SIGKILLs its own worker for 2, else sleeps 30 ms and returns `i * i`.
fn square_or_die(i: u64) -> u64 {
    if i == 2 {
        // SAFETY: `kill` with this process's own pid and a valid signal number has no memory
        // effects; the worker dies at once, which is the point.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_millis(30));
    i * i
}

fn a_call_that_kills_its_worker_is_seen_finished_by_polls_alone(m: StartMethod) {
    let mut pool = two_worker_pool(m);
    {
        let q = pool.apply_queue();
        let pending = q.apply_async_batch(square_or_die, 0..6).unwrap();
        let took = poll_until_all_finished(&q, &pending);
        assert!(took < PROMPT, "the dead worker's call was seen finished after {took:?}");
        for (i, p) in pending.iter().enumerate() {
            match p.get() {
                Err(Error::WorkerDied { signal, .. }) if i == 2 => {
                    assert_eq!(signal, Some(libc::SIGKILL));
                }
                r => assert_eq!(r.unwrap(), (i * i) as u64, "call {i}"),
            }
        }
        // The pool replaced the worker and goes on.
        assert_eq!(q.apply_async(square_or_die, 7).unwrap().get().unwrap(), 49);
    }
    close_pool(pool, m);
}

/// Sleeps 20 s for 1 (far past the task timeout), else returns `i + 1`.
fn late_at_1(i: u64) -> u64 {
    if i == 1 {
        std::thread::sleep(Duration::from_secs(20));
    }
    i + 1
}

fn a_call_past_the_task_timeout_is_seen_finished_by_polls_alone(m: StartMethod) {
    let timeout = Duration::from_millis(200);
    let mut pool =
        Pool::builder().workers(2).start_method(m).task_timeout(timeout).build().unwrap();
    {
        let q = pool.apply_queue();
        let pending = q.apply_async_batch(late_at_1, 0..5).unwrap();
        let took = poll_until_all_finished(&q, &pending);
        assert!(took >= timeout, "the late call was seen finished before its timeout ({took:?})");
        assert!(took < timeout + PROMPT, "the late call was seen finished after {took:?}");
        for (i, p) in pending.iter().enumerate() {
            match p.get() {
                Err(Error::TaskTimedOut { task, after, .. }) if i == 1 => {
                    assert_eq!((task, after), (1, timeout));
                }
                r => assert_eq!(r.unwrap(), i as u64 + 1, "call {i}"),
            }
        }
    }
    close_pool(pool, m);
}

/// Sleeps 100 ms, then returns `i`.
fn slow(i: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(100));
    i
}

/// `-i`.
fn negate(i: i64) -> i64 {
    -i
}

fn calls_queued_behind_a_batch_are_seen_finished_by_polls_alone(m: StartMethod) {
    let mut pool = two_worker_pool(m);
    {
        let q = pool.apply_queue();
        let first = q.apply_async_batch(slow, 0..2).unwrap();
        // Made while the first batch runs: queued, of another `fn`, so a job of their own that
        // only a look at the queue sends out once the first is over.
        let queued = q.apply_async_batch(negate, 1..4).unwrap();
        assert!(!queued[0].is_finished(), "a queued call finished before the batch before it");
        let took = poll_until_all_finished(&q, &queued);
        assert!(took < PROMPT, "the queued calls were seen finished after {took:?}");
        assert!(first.iter().all(|p| p.is_finished()), "a later batch ended before an earlier");
        let got: Vec<_> = queued.iter().map(|p| p.get().unwrap()).collect();
        assert_eq!(got, [-1, -2, -3]);
        assert_eq!(first.iter().map(|p| p.get().unwrap()).collect::<Vec<_>>(), [0, 1]);
    }
    close_pool(pool, m);
}

/// A worker initializer that always fails: a pool of it gives up at its first wait or poll.
fn bad_init() {
    panic!("no config file");
}

/// A pool that will give up (its initializer fails) while the test waits or polls.
fn doomed_pool(m: StartMethod) -> Pool {
    Pool::builder()
        .workers(2)
        .start_method(m)
        .initializer(bad_init)
        .inline_threshold(0)
        .build()
        .unwrap()
}

/// Fails the test unless `r` is the error of a pool that gave up on its initializer.
fn says_gave_up<T: std::fmt::Debug>(r: shmpool::Result<T>, what: &str) {
    match r {
        Err(e @ Error::PoolGaveUp { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("no config file") && msg.contains("gave up"), "{what}: {msg}");
        }
        other => panic!("{what}: expected PoolGaveUp naming the initializer, got {other:?}"),
    }
}

/// Calls `poll` until it says over; fails the test at [`DEADLINE`].
fn until_over(what: &str, mut poll: impl FnMut() -> bool) {
    let t = Instant::now();
    while !poll() {
        assert!(t.elapsed() < DEADLINE, "{what} never read over after the pool gave up");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn square(x: u64) -> u64 {
    x * x
}

fn a_pool_that_gives_up_ends_every_poll_and_timed_wait_and_get_says_why(m: StartMethod) {
    let array = || SharedArray::<u8>::zeroed(1 << 16).unwrap();
    // A job polled with `is_ready` only (before, it read "not ready" forever once the pool
    // gave up), then a timed wait, which reads it over.
    let mut pool = doomed_pool(m);
    let mut job = pool.for_each_chunk_async(array(), |c| c.fill(1)).unwrap();
    until_over("JobHandle::is_ready", || job.is_ready());
    assert!(job.wait_timeout(Duration::ZERO), "a job of a pool that gave up is over");
    says_gave_up(job.wait(), "JobHandle::wait");
    close_pool(pool, m);
    // A job whose pool gives up inside a timed wait: `true` (over), and `wait` says why.
    let mut pool = doomed_pool(m);
    let mut job = pool.for_each_chunk_async(array(), |c| c.fill(1)).unwrap();
    until_over("JobHandle::wait_timeout", || job.wait_timeout(Duration::from_millis(50)));
    says_gave_up(job.wait(), "JobHandle::wait after wait_timeout");
    close_pool(pool, m);
    // The same for an `AsyncResult`: polled, then through a timed wait.
    let mut pool = doomed_pool(m);
    let mut r = pool.apply_async(square, 3).unwrap();
    until_over("AsyncResult::is_ready", || r.is_ready());
    assert!(r.wait_timeout(Duration::ZERO));
    assert!(!r.is_successful().unwrap());
    says_gave_up(r.get(), "AsyncResult::get");
    drop(r);
    close_pool(pool, m);
    let mut pool = doomed_pool(m);
    let mut r = pool.apply_async(square, 3).unwrap();
    until_over("AsyncResult::wait_timeout", || r.wait_timeout(Duration::from_millis(50)));
    says_gave_up(r.get_timeout(Duration::ZERO), "AsyncResult::get_timeout");
    drop(r);
    close_pool(pool, m);
    // A batch polled with `is_finished` only, then with `is_ready`, and a timed wait.
    let mut pool = doomed_pool(m);
    {
        let q = pool.apply_queue();
        let pending = q.apply_async_batch(square, 0..4).unwrap();
        until_over("Pending::is_finished", || pending.iter().all(|p| p.is_finished()));
        for (i, p) in pending.iter().enumerate() {
            assert!(p.is_ready() && p.wait_timeout(Duration::ZERO), "call {i}");
            says_gave_up(p.get(), "Pending::get");
        }
    }
    close_pool(pool, m);
}
