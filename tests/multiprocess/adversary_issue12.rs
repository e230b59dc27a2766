//! Attacks on issue 12's `Pending::is_finished` and `Pending::wait_timeout` (the progress bar
//! over one `apply_async_batch` job): waits of zero and of `Duration::MAX`, a call queued
//! behind the running job (its own run: another `fn`), a worker killed mid-batch (the dead
//! call finished as failed at once without retries, and only once rerun with them), a dropped
//! `Pending` in the middle of a batch, a call past its task timeout, and both methods called from inside another call's
//! callback. Nothing may hang: every wait here is bounded. Each under the default start method
//! (the forkserver) and fork.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shmpool::{Error, StartMethod};

use crate::harness::{
    POOL_METHODS as METHODS, Tests, close_pool, eventually, gated, register, scratch_dir,
    two_worker_pool,
};

pub fn tests() -> Tests {
    register! {
        zero_and_max_waits_end_and_a_call_queued_behind_the_job_is_not_finished in METHODS,
        a_killed_workers_call_is_finished_failed_and_a_retried_one_once_rerun in METHODS,
        a_dropped_pending_and_calls_from_inside_a_callback in METHODS,
        a_call_past_its_task_timeout_is_finished_failed in METHODS,
    }
}

/// `x * 10`: a second `fn`, so its calls are a run (a job) of their own.
fn times_ten(x: u64) -> u64 {
    x * 10
}

/// What a task of [`act`] does.
#[derive(serde::Serialize, serde::Deserialize)]
enum Act {
    /// Returns `i` at once.
    Ok(u64),
    /// SIGKILLs its worker, every time.
    Die,
    /// SIGKILLs its worker the first time (creating the marker file), then returns `i`.
    DieOnce(PathBuf, u64),
    /// Waits for the gate file, then returns `i`.
    Gate(PathBuf, u64),
    /// Sleeps 30 s (past any task timeout here), then returns `i`.
    Hang(u64),
}

fn act(a: Act) -> u64 {
    let die = || {
        // SAFETY: `kill` on this process is a plain syscall; SIGKILL ends it at once.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        unreachable!("SIGKILL returned");
    };
    match a {
        Act::Ok(i) => i,
        Act::Die => die(),
        Act::DieOnce(marker, i) => {
            if std::fs::OpenOptions::new().write(true).create_new(true).open(&marker).is_ok() {
                die();
            }
            i
        }
        Act::Gate(gate, i) => gated((gate, i)),
        Act::Hang(i) => {
            std::thread::sleep(Duration::from_secs(30));
            i
        }
    }
}

fn open(gate: &Path) {
    std::fs::write(gate, b"").unwrap();
}

fn zero_and_max_waits_end_and_a_call_queued_behind_the_job_is_not_finished(m: StartMethod) {
    let dir = scratch_dir("adv12", "waits", m);
    let gate = |i: u64| dir.join(format!("gate{i}"));
    let mut pool = two_worker_pool(m);
    {
        let q = pool.apply_queue();
        let batch = q.apply_async_batch(gated, (0..2).map(|i| (gate(i), i))).unwrap();
        let later = q.apply_async(times_ten, 5).unwrap();
        let t = Instant::now();
        assert!(!batch[0].wait_timeout(Duration::ZERO), "a zero wait on a gated call");
        assert!(!later.wait_timeout(Duration::ZERO), "a zero wait on a queued call");
        let took = t.elapsed();
        assert!(took < Duration::from_millis(500), "zero waits took {took:?}");
        assert!(!later.is_finished() && !batch[1].is_finished());
        open(&gate(1));
        eventually("call 1 is seen finished", || batch[1].is_finished());
        // Task 1 of the running job is done; the queued call (id 2, no task of that job, and
        // not yet published) is not, nor is call 0.
        assert!(!later.is_finished(), "a queued call seen finished while its job never ran");
        assert!(!batch[0].is_finished());
        assert!(!later.wait_timeout(Duration::from_millis(30)));
        open(&gate(0));
        // `Duration::MAX` is "no deadline": it waits through the running job and then the
        // queued one, and ends as soon as that is over.
        let t = Instant::now();
        assert!(later.wait_timeout(Duration::MAX), "a wait without deadline returned false");
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(later.is_finished() && batch.iter().all(|p| p.is_finished()));
        assert!(batch[1].wait_timeout(Duration::ZERO) && batch[0].wait_timeout(Duration::MAX));
        assert_eq!(later.get().unwrap(), 50);
        assert_eq!(batch.iter().map(|p| p.get().unwrap()).collect::<Vec<_>>(), [0, 1]);
        // Taken results stay finished and ready.
        assert!(later.is_finished() && later.wait_timeout(Duration::ZERO));
    }
    close_pool(pool, m);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn a_killed_workers_call_is_finished_failed_and_a_retried_one_once_rerun(m: StartMethod) {
    let dir = scratch_dir("adv12", "killed", m);
    let gate = dir.join("gate");
    // Without retries: the dead call is finished (failed) while the gated one still runs.
    let mut pool = two_worker_pool(m);
    {
        let q = pool.apply_queue();
        let args = [Act::Gate(gate.clone(), 0), Act::Die, Act::Ok(2)];
        let p = q.apply_async_batch(act, args).unwrap();
        // `is_finished` reads a bit and looks at no worker: the parent gives the dead call up
        // (marks it finished, failed) when it looks at its workers, in a wait: here the gated
        // call's, 5 ms at a time, as the progress bar's loop does a tick at a time. (Polled
        // alone, without a wait between, the dead call is never seen finished: measured.)
        let look = |i: usize| !p[0].wait_timeout(Duration::from_millis(5)) && p[i].is_finished();
        eventually("the dead call is seen finished", || look(1));
        eventually("the call after it is seen finished", || look(2));
        assert!(!p[0].is_finished(), "the gated call finished before its gate");
        assert!(!p[1].is_ready(), "results are read when the job is over");
        open(&gate);
        assert!(p[1].wait_timeout(Duration::from_secs(10)), "the job did not end");
        assert_eq!(p[0].get().unwrap(), 0);
        assert!(matches!(p[1].get(), Err(Error::WorkerDied { .. })), "the dead call's error");
        assert_eq!(p[2].get().unwrap(), 2);
        assert!(p.iter().all(|p| p.is_finished()));
    }
    close_pool(pool, m);
    // With a retry: the call that killed its worker once is finished only when rerun, and
    // then with its result.
    std::fs::remove_file(&gate).unwrap();
    let mut pool = shmpool::Pool::builder().workers(2).start_method(m).retries(1).build().unwrap();
    {
        let q = pool.apply_queue();
        let marker = dir.join("died");
        let args = [Act::DieOnce(marker.clone(), 7), Act::Gate(gate.clone(), 1)];
        let p = q.apply_async_batch(act, args).unwrap();
        let look = || !p[1].wait_timeout(Duration::from_millis(5)) && p[0].is_finished();
        eventually("the retried call is seen finished", look);
        assert!(marker.exists(), "the call never killed its worker");
        assert!(!p[1].is_finished());
        open(&gate);
        assert!(p[1].wait_timeout(Duration::from_secs(10)), "the job did not end");
        assert_eq!(p.iter().map(|p| p.get().unwrap()).collect::<Vec<_>>(), [7, 1]);
    }
    close_pool(pool, m);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn a_dropped_pending_and_calls_from_inside_a_callback(m: StartMethod) {
    let dir = scratch_dir("adv12", "dropped", m);
    let gate = |i: u64| dir.join(format!("gate{i}"));
    let mut pool = two_worker_pool(m);
    {
        let q = pool.apply_queue();
        let mut batch = q.apply_async_batch(gated, (0..4).map(|i| (gate(i), i))).unwrap();
        drop(batch.remove(1)); // call 1, still running: its result is dropped when it comes
        assert!(batch.iter().all(|p| !p.is_finished()));
        for i in [1, 2] {
            open(&gate(i));
        }
        // batch is now calls 0, 2, 3.
        eventually("call 2 is seen finished", || batch[1].is_finished());
        assert!(!batch[0].is_finished() && !batch[2].is_finished());
        let seen = Cell::new(None);
        // Queued behind the job (another fn); its callback asks the others, which ends the
        // wait of a zero timeout and of a long one once their job is over.
        let probe = q.apply_async(times_ten, 3).unwrap().callback(|_| {
            seen.set(Some((
                batch.iter().all(|p| p.is_finished()),
                batch[2].wait_timeout(Duration::ZERO),
                batch[0].wait_timeout(Duration::from_secs(10)),
            )))
        });
        open(&gate(0));
        open(&gate(3));
        assert_eq!(probe.get_timeout(Duration::from_secs(10)).unwrap(), 30);
        assert_eq!(seen.get(), Some((true, true, true)), "what the callback saw");
        assert_eq!(batch.iter().map(|p| p.get().unwrap()).collect::<Vec<_>>(), [0, 2, 3]);
    }
    close_pool(pool, m);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn a_call_past_its_task_timeout_is_finished_failed(m: StartMethod) {
    let builder = shmpool::Pool::builder().workers(2).start_method(m);
    let mut pool = builder.task_timeout(Duration::from_millis(300)).build().unwrap();
    {
        let q = pool.apply_queue();
        let p = q.apply_async_batch(act, [Act::Ok(0), Act::Hang(1), Act::Ok(2)]).unwrap();
        let t = Instant::now();
        assert!(!p[1].is_finished(), "the hung call finished at once");
        // Short waits (any call's) look at the workers, and find the task past its timeout.
        let look = || {
            let _ = p[2].wait_timeout(Duration::from_millis(5));
            p[1].is_finished()
        };
        eventually("the hung call is seen finished", look);
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(300), "finished before its timeout: {took:?}");
        assert!(p[1].wait_timeout(Duration::from_secs(10)), "the job did not end");
        assert!(matches!(p[1].get(), Err(Error::TaskTimedOut { .. })), "the hung call's error");
        assert_eq!((p[0].get().unwrap(), p[2].get().unwrap()), (0, 2));
    }
    close_pool(pool, m);
}
