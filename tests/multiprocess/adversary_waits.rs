//! An adversary's pass over the pool's wait convention ("Timed waits" in `src/pool/README.md`)
//! and `Pending::is_finished`'s rate-limited look at the workers: polling loops over every
//! handle (`AsyncResult`, `JobHandle`, `Pending`), written as a user would, that must end when
//! a worker is SIGKILLed from outside mid-call (at every moment of a batch), SIGSTOPped past the
//! task timeout, the forkserver is killed, `maxtasksperchild` retires workers mid-batch, a
//! replacement worker's initializer fails (the pool gives up), and when many pools are polled in
//! one loop, at a zero and an endless timeout. Each value is delivered exactly once, each error
//! once and then `ResultUnavailable`, each callback once. Found and fixed here: batches queued
//! behind one another went out one per 10 ms under polls of `is_finished`; a panicking callback
//! lost its call's outcome; polls and `get` from a result's `Deserialize`, `Drop` or `Clone`
//! panicked on a `RefCell`; `get` from a call's own callback said the pool had stopped.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shmpool::pool::{ApplyQueue, Pending};
use shmpool::{Error, Pool, SharedArray, StartMethod};

use crate::harness::{
    POLL_DEADLINE as DEADLINE, POOL_METHODS as METHODS, PROMPT, Tests, close_pool,
    poll_all_finished, register, scratch_dir, spin_until,
};

pub fn tests() -> Tests {
    register! {
        every_handle_polled_alone_ends_when_its_worker_is_sigkilled_from_outside in METHODS,
        every_handle_polled_alone_ends_when_its_worker_is_sigstopped_past_the_task_timeout in METHODS,
        a_killed_forkserver_ends_every_poll_and_the_pool_goes_on,
        workers_retiring_mid_batch_lose_no_result_under_polls_alone in METHODS,
        a_replacement_whose_initializer_fails_ends_every_poll in METHODS,
        many_pools_polled_in_one_loop_all_end_each_rate_limited in METHODS,
        zero_and_endless_timeouts_end_on_a_killed_worker in METHODS,
        polls_from_inside_callbacks_neither_panic_nor_run_a_callback_twice in METHODS,
        calls_of_alternating_functions_go_out_at_once_under_polls_alone in METHODS,
        a_panicking_callback_loses_no_outcome in METHODS,
        polls_from_a_results_deserialize_drop_and_clone_never_panic,
        a_retried_call_is_finished_once_rerun_under_polls_alone in METHODS,
        poll_looks_doc_claim_holds in METHODS,
        a_job_finished_before_the_pool_gives_up_is_whole in METHODS,
        a_call_polled_from_its_own_callback_says_so in METHODS,
        kills_at_every_moment_of_a_polled_batch_lose_or_repeat_nothing in METHODS,
        helpers: [poll_hooked],
    }
}

/// [`poll_all_finished`]'s time.
fn poll_finished<R>(what: &str, q: &ApplyQueue<'_>, pending: &[Pending<'_, '_, R>]) -> Duration {
    poll_all_finished(what, q, pending).0
}

/// A pool of two workers that never runs a job in this process (`inline_threshold(0)`): the
/// kernels of these tests signal the process they run in, or its parent.
fn workers_only(m: StartMethod) -> Pool {
    Pool::builder().workers(2).start_method(m).inline_threshold(0).build().unwrap()
}

/// Sends `sig` to `pid`.
fn signal(pid: u32, sig: i32) {
    // SAFETY: `kill` only sends a signal; the pids are this test's pool workers.
    let rc = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
}

/// Creates `marker` (so the parent knows the call runs), then sleeps 20 s and returns 7.
fn mark_then_sleep(marker: String) -> u64 {
    std::fs::write(&marker, std::process::id().to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(20));
    7
}

/// The pid written to `marker` by [`mark_then_sleep`], once it is there.
fn marked_pid(marker: &Path) -> u32 {
    let t = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(marker)
            && let Ok(pid) = s.parse()
        {
            return pid;
        }
        assert!(t.elapsed() < DEADLINE, "the call never started ({})", marker.display());
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A marker file path in a fresh scratch folder, as a `String` for a task's argument.
fn marker(dir: &Path, name: &str) -> (PathBuf, String) {
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    (p.clone(), p.display().to_string())
}

/// `i + 1`, after 20 ms.
fn slow_inc(i: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(20));
    i + 1
}

/// Fails unless `r` is a worker's death by SIGKILL.
fn died_of_sigkill<T: std::fmt::Debug>(r: shmpool::Result<T>, what: &str) {
    match r {
        Err(Error::WorkerDied { signal, .. }) => assert_eq!(signal, Some(libc::SIGKILL), "{what}"),
        other => panic!("{what}: expected WorkerDied by SIGKILL, got {other:?}"),
    }
}

/// Fails unless `r` is `ResultUnavailable` (an error already returned).
fn unavailable<T: std::fmt::Debug>(r: shmpool::Result<T>, what: &str) {
    assert!(matches!(r, Err(Error::ResultUnavailable { .. })), "{what}: {r:?}");
}

fn every_handle_polled_alone_ends_when_its_worker_is_sigkilled_from_outside(m: StartMethod) {
    let dir = scratch_dir("adv-waits", "sigkill", m);
    let mut pool = workers_only(m);
    // An `AsyncResult` polled with `is_ready` only.
    let (path, arg) = marker(&dir, "async");
    let mut r = pool.apply_async(mark_then_sleep, arg).unwrap();
    signal(marked_pid(&path), libc::SIGKILL);
    let took = spin_until("AsyncResult::is_ready", || r.is_ready());
    assert!(took < PROMPT, "AsyncResult::is_ready saw the death after {took:?}");
    died_of_sigkill(r.get(), "AsyncResult::get");
    unavailable(r.get(), "AsyncResult::get again");
    drop(r);
    // A `JobHandle` polled with `is_ready` only: its running workers are killed.
    let a = SharedArray::<u8>::zeroed(2).unwrap();
    let mut job = pool
        .for_each_chunk_async(a, |c| {
            c.fill(1);
            std::thread::sleep(Duration::from_secs(20));
        })
        .unwrap();
    let t = Instant::now();
    let running = loop {
        let running = job.running();
        if !running.is_empty() {
            break running;
        }
        assert!(t.elapsed() < DEADLINE, "the job never ran");
    };
    for (pid, _) in running {
        signal(pid, libc::SIGKILL);
    }
    let took = spin_until("JobHandle::is_ready", || job.is_ready());
    assert!(took < PROMPT, "JobHandle::is_ready saw the death after {took:?}");
    died_of_sigkill(job.wait(), "JobHandle::wait");
    // A batch polled with `is_finished` only: the worker of call 1 is killed; the others are
    // right, each once.
    {
        let q = pool.apply_queue();
        let (path, arg) = marker(&dir, "batch");
        let first = q.apply_async(slow_inc, 0).unwrap();
        let killed = q.apply_async(mark_then_sleep, arg).unwrap();
        let rest = q.apply_async_batch(slow_inc, 2..6).unwrap();
        // `killed` goes out once `first` is over (another `fn`): only a look sends it.
        spin_until("the call to kill starting", || {
            let _ = killed.is_finished();
            path.exists()
        });
        signal(marked_pid(&path), libc::SIGKILL);
        let took = poll_finished("Pending::is_finished", &q, std::slice::from_ref(&killed));
        assert!(took < PROMPT, "Pending::is_finished saw the death after {took:?}");
        poll_finished("the calls after the killed one", &q, &rest);
        assert_eq!(first.get().unwrap(), 1);
        died_of_sigkill(killed.get(), "Pending::get");
        unavailable(killed.get(), "Pending::get again");
        for (i, p) in rest.iter().enumerate() {
            assert_eq!(p.get().unwrap(), i as u64 + 3, "call {}", i + 2);
        }
    }
    close_pool(pool, m);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Stops its own worker (SIGSTOP), else returns `i`.
fn stop_at_1(i: u64) -> u64 {
    if i == 1 {
        // SAFETY: `raise` only sends a signal to this process.
        unsafe { libc::raise(libc::SIGSTOP) };
    }
    i
}

fn every_handle_polled_alone_ends_when_its_worker_is_sigstopped_past_the_task_timeout(
    m: StartMethod,
) {
    let timeout = Duration::from_millis(200);
    let mut pool =
        Pool::builder().workers(2).start_method(m).task_timeout(timeout).build().unwrap();
    let timed_out = |r: shmpool::Result<u64>, what: &str| match r {
        Err(Error::TaskTimedOut { after, .. }) => assert_eq!(after, timeout, "{what}"),
        other => panic!("{what}: expected TaskTimedOut, got {other:?}"),
    };
    let mut r = pool.apply_async(stop_at_1, 1).unwrap();
    let took = spin_until("AsyncResult::is_ready", || r.is_ready());
    assert!(took < timeout + PROMPT, "AsyncResult::is_ready saw the overrun after {took:?}");
    timed_out(r.get(), "AsyncResult::get");
    unavailable(r.get(), "AsyncResult::get again");
    drop(r);
    // Data-parallel jobs are not timed (`PoolBuilder::task_timeout`): a `map_async` of one
    // task per chunk stands for the `JobHandle`, its chunks counted by `progress`.
    let mut r = pool.map_async(stop_at_1, 0..4u64, Some(1)).unwrap();
    let took = spin_until("AsyncResult::progress", || {
        let (done, total) = r.progress();
        done == total
    });
    assert!(took < timeout + PROMPT, "AsyncResult::progress saw the overrun after {took:?}");
    assert!(r.is_ready());
    timed_out(r.get().map(|v| v[0]), "map_async's get");
    drop(r);
    {
        let q = pool.apply_queue();
        let pending = q.apply_async_batch(stop_at_1, 0..4).unwrap();
        let took = poll_finished("Pending::is_finished", &q, &pending);
        assert!(took < timeout + PROMPT, "Pending::is_finished saw the overrun after {took:?}");
        for (i, p) in pending.iter().enumerate() {
            if i == 1 {
                timed_out(p.get(), "Pending::get");
                unavailable(p.get(), "Pending::get again");
            } else {
                assert_eq!(p.get().unwrap(), i as u64);
            }
        }
    }
    close_pool(pool, m);
}

/// SIGKILLs the worker's parent when that is not `test_pid` (the forkserver), then sleeps
/// 20 s; `i` otherwise.
fn kill_server_at_1((test_pid, i): (u32, u64)) -> u64 {
    if i == 1 {
        // SAFETY: getppid only reads this process's parent.
        let server = unsafe { libc::getppid() };
        assert_ne!(server as u32, test_pid, "not a forkserver worker");
        signal(server as u32, libc::SIGKILL);
        std::thread::sleep(Duration::from_secs(20));
    }
    std::thread::sleep(Duration::from_millis(20));
    i
}

fn a_killed_forkserver_ends_every_poll_and_the_pool_goes_on() {
    let m = StartMethod::ForkServer;
    let mut pool = workers_only(m);
    let me = std::process::id();
    {
        let q = pool.apply_queue();
        let pending = q.apply_async_batch(kill_server_at_1, (0..6).map(|i| (me, i))).unwrap();
        let took = poll_finished("Pending::is_finished", &q, &pending);
        assert!(took < PROMPT, "a dead forkserver's calls were seen finished after {took:?}");
        let mut died = 0;
        for (i, p) in pending.iter().enumerate() {
            match p.get() {
                Err(Error::WorkerDied { .. }) => {
                    died += 1;
                    unavailable(p.get(), "Pending::get again");
                }
                r => assert_eq!(r.unwrap(), i as u64, "call {i}"),
            }
        }
        assert!(died >= 1, "call 1 killed the server and cannot have returned");
        // The pool starts a new server and goes on.
        assert_eq!(q.apply_async(slow_inc, 1).unwrap().get().unwrap(), 2);
    }
    // The same under `AsyncResult::is_ready` and `JobHandle::is_ready` polls: the new server
    // is killed in turn.
    let mut r = pool.map_async(kill_server_at_1, (0..4).map(|i| (me, i)), Some(1)).unwrap();
    let took = spin_until("AsyncResult::is_ready", || r.is_ready());
    assert!(took < PROMPT, "AsyncResult::is_ready saw the server's death after {took:?}");
    assert!(matches!(r.get(), Err(Error::WorkerDied { .. })), "map_async's get");
    unavailable(r.get(), "map_async's get again");
    drop(r);
    let mut job = pool
        .for_each_chunk_async(SharedArray::<u32>::zeroed(2).unwrap(), |_| {
            // SAFETY: getppid reads this worker's parent, the forkserver (the test runs only
            // under it); SIGKILL ends the server, and this worker with it.
            unsafe { libc::kill(libc::getppid(), libc::SIGKILL) };
            std::thread::sleep(Duration::from_secs(20));
        })
        .unwrap();
    let took = spin_until("JobHandle::is_ready", || job.is_ready());
    assert!(took < PROMPT, "JobHandle::is_ready saw the server's death after {took:?}");
    assert!(matches!(job.wait(), Err(Error::WorkerDied { .. })), "JobHandle::wait");
    assert_eq!(pool.apply(slow_inc, 1).unwrap(), 2, "the pool goes on");
    close_pool(pool, m);
}

/// `i` repeated: 200 KiB, over the size of a result slot, so it travels in a worker's spill.
fn big(i: u64) -> Vec<u64> {
    vec![i; 25_600]
}

fn workers_retiring_mid_batch_lose_no_result_under_polls_alone(m: StartMethod) {
    let mut pool = Pool::builder().workers(2).start_method(m).maxtasksperchild(1).build().unwrap();
    {
        let q = pool.apply_queue();
        let small = q.apply_async_batch(slow_inc, 0..8).unwrap();
        let large = q.apply_async_batch(big, 0..6).unwrap();
        poll_finished("Pending::is_finished (small)", &q, &small);
        poll_finished("Pending::is_finished (large)", &q, &large);
        for (i, p) in small.iter().enumerate() {
            assert_eq!(p.get().unwrap(), i as u64 + 1, "small call {i}");
        }
        for (i, p) in large.iter().enumerate() {
            assert_eq!(p.get().unwrap(), big(i as u64), "large call {i}");
        }
    }
    // The same through an `AsyncResult` and a `JobHandle` polled with `is_ready` only.
    let mut r = pool.map_async(big, 0..6u64, Some(1)).unwrap();
    spin_until("AsyncResult::is_ready", || r.is_ready());
    assert_eq!(r.get().unwrap(), (0..6).map(big).collect::<Vec<_>>());
    drop(r);
    let mut job = pool
        .for_each_chunk_async(SharedArray::<u32>::zeroed(1 << 16).unwrap(), |c| c.fill(3))
        .unwrap();
    spin_until("JobHandle::is_ready", || job.is_ready());
    assert!(job.wait().unwrap().iter().all(|&x| x == 3));
    close_pool(pool, m);
}

/// A worker initializer that fails once `armed` exists.
fn init_unless_armed(armed: String) {
    assert!(!Path::new(&armed).exists(), "armed: no replacement may start");
}

/// A pool of 2 whose workers start only while `dir`'s marker file (returned) does not exist:
/// writing it makes every replacement fail its initializer, and so the pool give up.
fn armable_pool(dir: &Path, m: StartMethod) -> (PathBuf, Pool) {
    let (armed, arg) = marker(dir, "armed");
    let pool = Pool::builder()
        .workers(2)
        .start_method(m)
        .initializer_with(init_unless_armed, arg)
        .build()
        .unwrap();
    (armed, pool)
}

/// SIGKILLs its own worker for 1, else returns `i` after 20 ms.
fn die_at_1(i: u64) -> u64 {
    if i == 1 {
        // SAFETY: `raise` only sends a signal to this process.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    slow_inc(i) - 1
}

/// SIGKILLs its own worker.
fn die(_: u64) -> u64 {
    // SAFETY: `raise` only sends a signal to this process.
    unsafe { libc::raise(libc::SIGKILL) };
    unreachable!("SIGKILL returned")
}

/// `-i`.
fn negate(i: i64) -> i64 {
    -i
}

fn a_replacement_whose_initializer_fails_ends_every_poll(m: StartMethod) {
    let dir = scratch_dir("adv-waits", "armed", m);
    let (armed, mut pool) = armable_pool(&dir, m);
    assert_eq!(pool.apply(slow_inc, 1).unwrap(), 2, "the first workers start");
    std::fs::write(&armed, "").unwrap();
    {
        let q = pool.apply_queue();
        // Both workers die; no replacement can start.
        let pending = q.apply_async_batch(die, 0..2).unwrap();
        // Queued behind the batch (another `fn`): their job can never run.
        let queued = q.apply_async_batch(negate, 1..3).unwrap();
        poll_finished("Pending::is_finished", &q, &pending);
        poll_finished("Pending::is_finished (queued)", &q, &queued);
        for (i, p) in pending.iter().enumerate() {
            assert!(p.is_ready() && p.wait_timeout(Duration::ZERO), "call {i}");
        }
        for (i, p) in queued.iter().enumerate() {
            assert!(p.is_ready() && p.wait_timeout(Duration::ZERO), "queued call {i}");
        }
        for (i, p) in pending.iter().enumerate() {
            match p.get() {
                Err(Error::WorkerDied { .. } | Error::PoolGaveUp { .. }) => {}
                other => panic!("call {i}: {other:?}"),
            }
            unavailable(p.get(), "Pending::get again");
        }
        match queued[0].get() {
            Err(e @ Error::PoolGaveUp { .. }) => {
                assert!(e.to_string().contains("armed"), "the reason is lost: {e}");
            }
            other => panic!("the first queued call: {other:?}"),
        }
        // The second: the pool's reason too (its job went out, then the pool gave up), or
        // that its batch could not go out; once.
        assert!(queued[1].get().is_err(), "a call of a pool that gave up returned");
        for p in &queued {
            unavailable(p.get(), "queued Pending::get again");
        }
        assert!(q.apply_async(negate, 1).is_err(), "the pool gave up");
    }
    close_pool(pool, m);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn many_pools_polled_in_one_loop_all_end_each_rate_limited(m: StartMethod) {
    let mut pools: Vec<Pool> =
        (0..3).map(|_| Pool::builder().workers(2).start_method(m).build().unwrap()).collect();
    {
        let queues: Vec<ApplyQueue<'_>> = pools.iter_mut().map(|p| p.apply_queue()).collect();
        let pending: Vec<Vec<_>> =
            queues.iter().map(|q| q.apply_async_batch(die_at_1, 0..5).unwrap()).collect();
        let before: Vec<u64> = queues.iter().map(|q| q.poll_looks()).collect();
        let took = spin_until("is_finished over three pools", || {
            pending.iter().flatten().filter(|p| !p.is_finished()).count() == 0
        });
        assert!(took < PROMPT, "three pools' dead calls were seen finished after {took:?}");
        for (k, q) in queues.iter().enumerate() {
            let looks = q.poll_looks() - before[k];
            assert!(looks >= 1 && looks <= 2 + took.as_millis() as u64 / 10, "pool {k}: {looks}");
            for (i, p) in pending[k].iter().enumerate() {
                if i == 1 {
                    died_of_sigkill(p.get(), "Pending::get");
                } else {
                    assert_eq!(p.get().unwrap(), i as u64, "pool {k}, call {i}");
                }
            }
        }
    }
    // Every pool goes before the forkserver they share is shut down (it waits for their workers).
    let last = pools.pop().unwrap();
    drop(pools);
    close_pool(last, m);
}

fn zero_and_endless_timeouts_end_on_a_killed_worker(m: StartMethod) {
    let mut pool = workers_only(m);
    for timeout in [Duration::ZERO, Duration::MAX] {
        let what = |h: &str| format!("{h}::wait_timeout({timeout:?})");
        let mut r = pool.apply_async(die_at_1, 1).unwrap();
        spin_until(&what("AsyncResult"), || r.wait_timeout(timeout));
        died_of_sigkill(r.get(), &what("AsyncResult"));
        drop(r);
        let mut job = pool
            .for_each_chunk_async(SharedArray::<u8>::zeroed(2).unwrap(), |_| {
                // SAFETY: `raise` only sends a signal to this process.
                unsafe { libc::raise(libc::SIGKILL) };
            })
            .unwrap();
        spin_until(&what("JobHandle"), || job.wait_timeout(timeout));
        died_of_sigkill(job.wait(), &what("JobHandle"));
        let q = pool.apply_queue();
        let pending = q.apply_async_batch(die_at_1, 0..3).unwrap();
        spin_until(&what("Pending"), || pending.iter().all(|p| p.wait_timeout(timeout)));
        died_of_sigkill(pending[1].get(), &what("Pending"));
        assert_eq!((pending[0].get().unwrap(), pending[2].get().unwrap()), (0, 2));
    }
    close_pool(pool, m);
}

fn polls_from_inside_callbacks_neither_panic_nor_run_a_callback_twice(m: StartMethod) {
    let mut pool = Pool::builder().workers(2).start_method(m).build().unwrap();
    {
        let q = pool.apply_queue();
        let (ok_calls, err_calls, inner_ok) = (Cell::new(0), Cell::new(0), Cell::new(0));
        let others = q.apply_async_batch(die_at_1, 0..3).unwrap();
        let inner = std::cell::RefCell::new(Vec::new());
        let last = q
            .apply_async(slow_inc, 10)
            .unwrap()
            .callback(|v: &u64| {
                assert_eq!(*v, 11);
                ok_calls.set(ok_calls.get() + 1);
                // Polls and waits of other calls, and a new call, from inside a callback.
                for p in &others {
                    let _ = p.is_finished();
                    assert!(p.is_ready());
                    assert!(p.wait_timeout(Duration::from_secs(5)));
                }
                let p = q.apply_async(slow_inc, 20).unwrap().callback(|v: &u64| {
                    assert_eq!(*v, 21);
                    inner_ok.set(inner_ok.get() + 1);
                });
                let _ = p.is_finished();
                inner.borrow_mut().push(p);
            })
            .error_callback(|_| err_calls.set(err_calls.get() + 1));
        let failing = q.apply_async(die_at_1, 1).unwrap().error_callback(|e| {
            assert!(matches!(e, Error::WorkerDied { .. }), "{e:?}");
            err_calls.set(err_calls.get() + 1);
            // Polls of itself and of the others while its own callback runs.
            let _ = last.is_finished();
        });
        poll_finished("Pending::is_finished", &q, std::slice::from_ref(&last));
        spin_until("is_ready", || last.is_ready() && failing.is_ready());
        spin_until("is_ready again", || last.is_ready() && failing.is_ready());
        assert_eq!(last.get().unwrap(), 11);
        assert!(failing.get().is_err());
        drop(failing);
        for p in inner.borrow().iter() {
            assert_eq!(p.get().unwrap(), 21);
        }
        assert_eq!((ok_calls.get(), err_calls.get(), inner_ok.get()), (1, 1, 1));
        inner.borrow_mut().clear();
        assert_eq!(inner_ok.get(), 1, "a callback ran twice");
    }
    close_pool(pool, m);
}

/// `-(i as i64)`: another `fn` than [`slow_inc`]'s type, so calls alternate runs.
fn neg_u(i: u64) -> i64 {
    -(i as i64)
}

/// `i + 1`.
fn inc(i: u64) -> u64 {
    i + 1
}

/// Calls of two functions made alternately go out as one job each (a job runs one `fn`):
/// polled through `is_finished` alone, each job must go out once the one before it is over,
/// not at the next timed look (10 ms), which paced such a queue at 100 jobs a second.
fn calls_of_alternating_functions_go_out_at_once_under_polls_alone(m: StartMethod) {
    let mut pool = Pool::builder().workers(2).start_method(m).build().unwrap();
    {
        let q = pool.apply_queue();
        let runs = 300u64;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..runs / 2 {
            a.push(q.apply_async(inc, i).unwrap());
            b.push(q.apply_async(neg_u, i).unwrap());
        }
        let took = spin_until("is_finished over alternating calls", || {
            a.iter().all(|p| p.is_finished()) && b.iter().all(|p| p.is_finished())
        });
        // 300 jobs at one per look would take 3 s.
        assert!(took < PROMPT, "{runs} one-call jobs took {took:?} under polls of is_finished");
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_eq!((a.get().unwrap(), b.get().unwrap()), (i as u64 + 1, -(i as i64)));
        }
    }
    close_pool(pool, m);
}

/// A callback or error callback that panics (the panic caught by the caller) leaves the call's
/// outcome in place: `get` then returns the value, or the error once, and `is_successful`
/// tells the truth, for a `Pending` and an `AsyncResult`.
fn a_panicking_callback_loses_no_outcome(m: StartMethod) {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let mut pool = Pool::builder().workers(2).start_method(m).build().unwrap();
    {
        let q = pool.apply_queue();
        let ok = q.apply_async(inc, 1).unwrap().callback(|_| panic!("callback panics"));
        let failed = q.apply_async(die, 1).unwrap().error_callback(|_| panic!("callback panics"));
        assert!(catch_unwind(AssertUnwindSafe(|| ok.get())).is_err(), "the callback ran");
        assert!(catch_unwind(AssertUnwindSafe(|| failed.get())).is_err(), "the callback ran");
        assert!(ok.is_finished() && ok.is_ready() && failed.is_ready());
        assert_eq!(ok.get().unwrap(), 2, "the value was lost to its callback's panic");
        died_of_sigkill(failed.get(), "Pending::get after its error callback panicked");
        unavailable(failed.get(), "Pending::get again");
    }
    let mut r = pool.apply_async(inc, 1).unwrap().callback(|_| panic!("callback panics"));
    assert!(catch_unwind(AssertUnwindSafe(|| r.wait())).is_err(), "the callback ran");
    assert!(r.is_successful().unwrap());
    assert_eq!(r.get().unwrap(), 2);
    drop(r);
    let mut r = pool.apply_async(die, 1).unwrap().error_callback(|_| panic!("callback panics"));
    assert!(catch_unwind(AssertUnwindSafe(|| r.wait())).is_err(), "the callback ran");
    assert!(!r.is_successful().unwrap(), "a call whose worker died reads successful");
    died_of_sigkill(r.get(), "AsyncResult::get after its error callback panicked");
    unavailable(r.get(), "AsyncResult::get again");
    drop(r);
    close_pool(pool, m);
}

/// A leaked queue's call, for code the queue runs itself (a result's `Deserialize` and `Drop`)
/// to poll: a thread-local holds only `'static` things, so the pool is leaked, in a child.
type Hooked = &'static Pending<'static, 'static, u64>;

thread_local! {
    static HOOK: Cell<Option<(Hooked, &'static ApplyQueue<'static>)>> = const { Cell::new(None) };
    /// Polls made, and how many of them found themselves inside the queue's own work.
    static POLLS: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
}

/// Polls the hooked call every way a user could, and makes a call, from wherever this runs:
/// none may panic; inside the queue's work, `get` and `apply_async` say so.
fn poll_hooked() {
    let Some((p, q)) = HOOK.with(Cell::get) else { return };
    let _ = (p.is_finished(), p.is_ready(), p.wait_timeout(Duration::ZERO));
    let inside = match p.get() {
        Ok(v) => {
            assert_eq!(v, 2);
            false
        }
        Err(Error::ResultUnavailable { reason }) => {
            assert!(reason.contains("inside the apply queue"), "{reason}");
            true
        }
        Err(e) => panic!("{e:?}"),
    };
    match q.apply_async(inc, 1) {
        Ok(_) => assert!(!inside, "a call was made from inside the queue's work"),
        Err(Error::ResultUnavailable { .. }) => assert!(inside),
        Err(e) => panic!("{e:?}"),
    }
    POLLS.with(|c| {
        let (n, inner) = c.get();
        c.set((n + 1, inner + u32::from(inside)));
    });
}

/// A result whose `Deserialize` and `Drop` poll the hooked call, and whose `Clone` (run by
/// `get`) polls the call hooked in [`SELF_HOOK`], its own.
#[derive(serde::Serialize)]
struct Probe(u64);

thread_local! {
    static SELF_HOOK: Cell<Option<&'static Pending<'static, 'static, Probe>>> =
        const { Cell::new(None) };
}

impl Clone for Probe {
    fn clone(&self) -> Probe {
        if let Some(p) = SELF_HOOK.with(Cell::get) {
            assert!(p.is_finished() && p.is_ready() && p.wait_timeout(Duration::ZERO));
        }
        Probe(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Probe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Probe, D::Error> {
        poll_hooked();
        Ok(Probe(u64::deserialize(d)?))
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        poll_hooked();
    }
}

/// A [`Probe`] of `i`, after 20 ms.
fn probe(i: u64) -> Probe {
    Probe(slow_inc(i) - 1)
}

/// In a child: a leaked pool's queue runs calls whose results poll another call of the queue
/// from their `Deserialize` (while the queue collects the batch) and `Drop` (a dropped call's
/// result, dropped as it comes), and their own call from their `Clone` (while `get` clones the
/// value); exits 0 when every poll returned and the results are right.
fn reentrant_polls(_: ()) -> i32 {
    let pool: &'static mut Pool = Box::leak(Box::new(
        Pool::builder().workers(2).start_method(StartMethod::Fork).build().unwrap(),
    ));
    let q: &'static ApplyQueue<'static> = Box::leak(Box::new(pool.apply_queue()));
    let hooked: Hooked = Box::leak(Box::new(q.apply_async(slow_inc, 1).unwrap()));
    HOOK.with(|h| h.set(Some((hooked, q))));
    let probes: &'static [Pending<'static, 'static, Probe>] =
        Box::leak(q.apply_async_batch(probe, 0..3).unwrap().into_boxed_slice());
    SELF_HOOK.with(|h| h.set(Some(&probes[0])));
    let dropped = q.apply_async_batch(probe, 10..12).unwrap();
    drop(dropped); // abandoned: the results are dropped as they come, inside the queue
    spin_until("is_finished of the probes", || probes.iter().all(|p| p.is_finished()));
    for (i, p) in probes.iter().enumerate() {
        assert_eq!(p.get().map(|r| r.0).unwrap(), i as u64);
    }
    assert_eq!(hooked.get().unwrap(), 2);
    let (polls, inside) = POLLS.with(Cell::get);
    assert!(inside >= 3, "{inside} of {polls} polls came from inside the queue's work");
    HOOK.with(|h| h.set(None));
    SELF_HOOK.with(|h| h.set(None));
    0
}

fn polls_from_a_results_deserialize_drop_and_clone_never_panic() {
    let mut child = shmpool::get_context(StartMethod::Fork).start(reentrant_polls, ()).unwrap();
    let status = child.join().unwrap();
    assert_eq!(status.exitcode(), 0, "{status}");
}

/// SIGKILLs its worker the first time (creating `marker`), then returns `i`.
fn die_once((marker, i): (String, u64)) -> u64 {
    if std::fs::OpenOptions::new().write(true).create_new(true).open(&marker).is_ok() {
        die(i);
    }
    i
}

/// With `retries(1)`, a call whose worker died runs again: polls of `is_finished` alone must
/// not read it finished before the rerun, and `get` returns the rerun's value, once.
fn a_retried_call_is_finished_once_rerun_under_polls_alone(m: StartMethod) {
    let dir = scratch_dir("adv-waits", "retry", m);
    let (path, arg) = marker(&dir, "died");
    let mut pool = Pool::builder().workers(2).start_method(m).retries(1).build().unwrap();
    {
        let q = pool.apply_queue();
        let pending = q.apply_async_batch(die_once, (0..4).map(|i| (arg.clone(), i))).unwrap();
        poll_finished("Pending::is_finished", &q, &pending);
        assert!(path.exists(), "no call killed its worker");
        for (i, p) in pending.iter().enumerate() {
            assert_eq!(p.get().unwrap(), i as u64, "call {i}");
            assert_eq!(p.get().unwrap(), i as u64, "call {i} again");
        }
    }
    close_pool(pool, m);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `ApplyQueue::poll_looks`'s example, run: a loop polling one call without pause looks at
/// most once per 10 ms (plus the first).
fn poll_looks_doc_claim_holds(m: StartMethod) {
    let mut pool = Pool::builder().workers(2).start_method(m).build().unwrap();
    {
        let q = pool.apply_queue();
        let r = q.apply_async(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 50).unwrap();
        let took = spin_until("Pending::is_finished", || r.is_finished());
        let looks = q.poll_looks();
        assert!(looks >= 1, "a 50 ms call was seen finished without a look");
        assert!(looks <= 1 + took.as_millis() as u64 / 10, "{looks} looks in {took:?}");
    }
    close_pool(pool, m);
}

/// `src/pool/README.md`, "Timed waits": "A job all of whose chunks had finished when the pool
/// gave up is whole and reports its results." The job finishes; then its idle workers are
/// killed while no replacement can start, and a poll makes the pool give up.
fn a_job_finished_before_the_pool_gives_up_is_whole(m: StartMethod) {
    let dir = scratch_dir("adv-waits", "whole", m);
    let (armed, mut pool) = armable_pool(&dir, m);
    let pids = pool.worker_pids();
    let mut job = pool
        .for_each_chunk_async(SharedArray::<u32>::zeroed(1 << 12).unwrap(), |c| c.fill(5))
        .unwrap();
    spin_until("the job to start", || !job.running().is_empty() || job.is_ready());
    // Done per the control block; no poll has looked at the workers since.
    assert!(job.wait_timeout(Duration::from_secs(5)));
    std::fs::write(&armed, "").unwrap();
    for pid in pids {
        signal(pid, libc::SIGKILL);
    }
    spin_until("JobHandle::is_ready", || job.is_ready());
    // Polls that look at the workers, which give up (the replacements cannot start).
    for _ in 0..3 {
        let _ = (job.running(), job.progress());
        std::thread::sleep(Duration::from_millis(20));
    }
    let a = job.wait().expect("a job that had finished is whole");
    assert!(a.iter().all(|&x| x == 5));
    match pool.apply(slow_inc, 1) {
        Err(e @ Error::PoolGaveUp { .. }) => assert!(e.to_string().contains("armed"), "{e}"),
        other => panic!("the pool did not give up: {other:?}"),
    }
    close_pool(pool, m);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A callback that reaches its own call (leaked, through a cell filled once the call is made) and polls
/// and gets it: no panic, and `get` says why it cannot answer there (it said "the pool stopped
/// before it ran", which was false); after the callback, `get` returns the value.
fn a_call_polled_from_its_own_callback_says_so(m: StartMethod) {
    let mut pool = Pool::builder().workers(2).start_method(m).build().unwrap();
    {
        let q = pool.apply_queue();
        let me: Cell<Option<&Pending<'_, '_, u64>>> = Cell::new(None);
        let inside = Cell::new(None);
        // Leaked (its `Drop` never runs), so the cell may hold it while the callback lives.
        let p: &Pending<'_, '_, u64> =
            Box::leak(Box::new(q.apply_async(inc, 1).unwrap().callback(|v| {
                assert_eq!(*v, 2);
                let p = me.get().expect("set before the callback can run");
                let _ = (p.is_finished(), p.is_ready(), p.wait_timeout(Duration::ZERO));
                inside.set(Some(p.get()));
            })));
        me.set(Some(p));
        assert_eq!(p.get().unwrap(), 2);
        match inside.take() {
            Some(Err(Error::ResultUnavailable { reason })) => {
                assert!(reason.contains("own callback"), "{reason}");
            }
            other => panic!("get from its own callback: {other:?}"),
        }
        assert_eq!(p.get().unwrap(), 2);
        me.set(None);
    }
    close_pool(pool, m);
}

/// `i * 3`, after `i % 4` ms.
fn triple(i: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(i % 4));
    i * 3
}

/// Twenty batches polled only through `is_finished`, a worker SIGKILLed from outside at a
/// different moment of each (before, during, after its calls): every call is its own value or
/// the worker's death, each error once, and the pool goes on.
fn kills_at_every_moment_of_a_polled_batch_lose_or_repeat_nothing(m: StartMethod) {
    let mut pool = workers_only(m);
    let (mut died, mut last_victim) = (0, None::<u32>);
    for round in 0..20u64 {
        // The worker killed in the round before (idle, maybe) is gone and replaced once a
        // job has seen it dead.
        let mut pids = Vec::new();
        spin_until("both workers running", || {
            pool.apply(triple, 0).unwrap();
            pids = pool.worker_pids();
            pids.len() == 2 && last_victim.is_none_or(|v| !pids.contains(&v))
        });
        let victim = pids[(round % 2) as usize];
        last_victim = Some(victim);
        let q = pool.apply_queue();
        let pending = q.apply_async_batch(triple, 0..8).unwrap();
        let t = Instant::now();
        let mut killed = false;
        spin_until("is_finished under a kill", || {
            if !killed && t.elapsed() >= Duration::from_micros(round * 500) {
                signal(victim, libc::SIGKILL);
                killed = true;
            }
            killed && pending.iter().all(|p| p.is_finished())
        });
        for (i, p) in pending.iter().enumerate() {
            match p.get() {
                Ok(v) => {
                    assert_eq!(v, i as u64 * 3, "round {round}, call {i}");
                    assert_eq!(p.get().unwrap(), v, "round {round}, call {i} again");
                }
                Err(Error::WorkerDied { signal, .. }) => {
                    assert_eq!(signal, Some(libc::SIGKILL), "round {round}, call {i}");
                    unavailable(p.get(), "Pending::get again");
                    died += 1;
                }
                Err(e) => panic!("round {round}, call {i}: {e:?}"),
            }
        }
        drop(pending);
        drop(q);
    }
    assert!(died >= 1, "no kill landed on a call in 20 rounds");
    assert_eq!(pool.apply(triple, 5).unwrap(), 15, "the pool goes on");
    close_pool(pool, m);
}
