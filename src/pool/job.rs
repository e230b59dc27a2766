//! `JobHandle`: a data-parallel job running in the background, with progress and timeouts.

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use super::state::{Pool, PoolState};
use super::words::JobIndex;
use crate::error::{Error, Result};

/// What a finished job hands back, computed from the pool once the job is done.
pub(crate) type Output<'p, R> = Box<dyn FnOnce(&Pool) -> R + 'p>;

/// A job started by an `_async` operation such as [`Pool::for_each_chunk_async`]. It owns the
/// arrays the job works on and gives them back from [`wait`](JobHandle::wait).
///
/// Dropping the handle waits for the job to finish (so the arrays are never freed while
/// workers use them); leaking it with `mem::forget` leaks the arrays, and the pool's next job
/// waits for this one first (and drops its outcome). A job over an empty array is done at once
/// and succeeds, whatever an earlier, leaked job does.
///
/// A handle stays in the process that started the job: it is not `Send`, so no fork child
/// (which needs a `Send` closure) can take it, and calls on a pool's forked copy fail with
/// [`Error::PoolNotOwned`](crate::Error::PoolNotOwned) before any job starts.
///
/// ```compile_fail
/// fn needs_send<T: Send>(_: T) {}
/// let mut pool = shmpool::Pool::new(2).unwrap();
/// let a = shmpool::SharedArray::<u8>::zeroed(16).unwrap();
/// needs_send(pool.for_each_chunk_async(a, |c| c.fill(1)).unwrap());
/// ```
///
/// ```no_run
/// use shmpool::{Pool, SharedArray};
/// use std::time::Duration;
///
/// let mut pool = Pool::new(2)?;
/// let a = SharedArray::<f32>::zeroed(1 << 24)?;
/// let mut job = pool.for_each_chunk_async(a, |c| c.iter_mut().for_each(|x| *x += 1.0))?;
/// while !job.wait_timeout(Duration::from_millis(100)) {
///     let (done, total) = job.progress();
///     println!("{done}/{total} chunks");
/// }
/// let a = job.wait()?;
/// assert_eq!(a[0], 1.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct JobHandle<'p, R> {
    pool: &'p mut Pool,
    /// The job's id; 0 for an empty job, which was never published and is done at once.
    job: u32,
    /// Its chunks.
    chunks: u64,
    /// Chunks finished when its outcome was taken (what `progress` reports from then on).
    finished: u64,
    output: Option<Output<'p, R>>,
    /// Dropping does not wait for the job (a streaming job whose unclaimed chunks were
    /// cancelled: its output owns nothing the workers use).
    detached: bool,
    /// How the job's error reads to the caller (the identity but for plain-result tasks,
    /// whose argument failures travel as panics: [`JobHandle::recast_errors`]).
    recast: fn(Error) -> Error,
}

impl<'p, R> JobHandle<'p, R> {
    /// A handle for job `job` (just published), or for an empty job (`job` 0).
    pub(crate) fn new(pool: &'p mut Pool, job: u32, output: Output<'p, R>) -> JobHandle<'p, R> {
        let chunks = match &pool.active {
            Some(a) if job != 0 && a.job == job => a.chunks,
            _ => 0,
        };
        JobHandle {
            pool,
            job,
            chunks,
            finished: chunks,
            output: Some(output),
            detached: false,
            recast: std::convert::identity,
        }
    }

    /// Makes the job's error (its outcome) read as `recast` makes it.
    pub(crate) fn recast_errors(mut self, recast: fn(Error) -> Error) -> JobHandle<'p, R> {
        self.recast = recast;
        self
    }

    /// Points this handle at job `job` (just published by [`pool_mut`](JobHandle::pool_mut)'s
    /// pool), for a streaming call that runs its input as successive jobs.
    pub(crate) fn rearm(&mut self, job: u32) {
        self.chunks = match &self.pool.active {
            Some(a) if job != 0 && a.job == job => a.chunks,
            _ => 0,
        };
        (self.job, self.finished, self.detached) = (job, self.chunks, false);
    }

    /// The pool running the job, to publish the next job of a streaming call.
    pub(crate) fn pool_mut(&mut self) -> &mut Pool {
        self.pool
    }

    /// Cancels the job's chunks that no worker claimed, and makes dropping this handle return
    /// at once: the pool's next job waits for the chunks still running.
    pub(crate) fn cancel_and_detach(&mut self) {
        if self.in_flight() && self.pool.check_owner().is_ok() {
            self.pool.cancel_unclaimed();
            self.detached = true;
        }
    }

    /// Whether this job is the pool's job in flight, its outcome not yet taken. An empty job
    /// never is: the job in flight then is an earlier one whose handle was leaked, and neither
    /// its progress nor its error are this job's.
    fn in_flight(&self) -> bool {
        self.job != 0 && self.pool.active.as_ref().is_some_and(|a| a.job == self.job)
    }

    /// Chunks finished so far, and chunks in all. It looks at the workers first, as a wait
    /// does (a system call or more per worker), so a chunk whose worker died, or ran past the
    /// task timeout, is counted (failed, or retried) however progress is polled: poll it at a
    /// tick, not in a spin.
    ///
    /// ```no_run
    /// # let mut pool = shmpool::Pool::new(2)?;
    /// # let a = shmpool::SharedArray::<u8>::zeroed(1 << 20)?;
    /// let mut job = pool.for_each_chunk_async(a, |c| c.fill(1))?;
    /// let (done, total) = job.progress();
    /// assert!(done <= total);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn progress(&mut self) -> (u64, u64) {
        self.poll();
        if self.in_flight() { self.pool.progress_now() } else { (self.finished, self.chunks) }
    }

    /// Waits for the job until `deadline`; whether it is done.
    pub(crate) fn pool_wait(&mut self, deadline: Option<Instant>) -> Result<bool> {
        if !self.in_flight() {
            return Ok(true);
        }
        self.pool.wait_job(deadline)
    }

    /// Whether the pool was terminated (nothing more will finish).
    pub(crate) fn terminated(&self) -> bool {
        self.pool.state == PoolState::Terminated
    }

    /// Terminates the pool (see [`terminate_pool`](JobHandle::terminate_pool)).
    pub(crate) fn terminate_now(&mut self) {
        self.pool.terminate();
    }

    /// The pool running the job.
    pub(crate) fn pool(&self) -> &Pool {
        self.pool
    }

    /// Waits until `ready` holds, waking at every finished chunk (for streaming results).
    pub(crate) fn wait_until(
        &mut self,
        deadline: Option<Instant>,
        ready: impl Fn(&Pool) -> bool,
    ) -> Result<bool> {
        self.pool.wait_until(deadline, true, ready)
    }

    /// The job's outcome once it is done (first call only; later calls return `Ok`).
    pub(crate) fn outcome(&mut self) -> Result<()> {
        if self.in_flight() {
            self.pool.wait_job(None)?;
            self.finished = self.pool.progress_now().0;
            self.pool.take_outcome().map_err(self.recast)
        } else {
            Ok(())
        }
    }

    /// Takes the output (the job must be done).
    pub(crate) fn take_output(&mut self) -> Option<R> {
        let out = self.output.take()?;
        Some(out(self.pool))
    }

    /// Reaps and replaces dead workers (so polling notices deaths, as waiting does). An error
    /// means the pool gave up: it is terminated and records why, which the job's outcome then
    /// reports.
    fn poll(&mut self) {
        let _ = self.pool.check_workers();
    }

    /// Whether every chunk has finished, or the job is over otherwise (the pool gave up and is
    /// terminated: [`wait`](JobHandle::wait) says why). It looks at the workers first, as a wait
    /// does, so a chunk whose worker died is seen lost (or retried).
    ///
    /// ```no_run
    /// # let mut pool = shmpool::Pool::new(2)?;
    /// # let a = shmpool::SharedArray::<u8>::zeroed(16)?;
    /// let mut job = pool.for_each_chunk_async(a, |c| c.fill(1))?;
    /// let _ = job.is_ready();
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_ready(&mut self) -> bool {
        self.poll();
        // A terminated pool (one that gave up in `poll`, say) finishes nothing more: the job is
        // over, and `wait` reports how.
        !self.in_flight() || self.pool.job_done() || self.terminated()
    }

    /// The workers running a chunk of this job right now, as (pid, chunk index).
    ///
    /// ```no_run
    /// # let mut pool = shmpool::Pool::new(2)?;
    /// # let a = shmpool::SharedArray::<u8>::zeroed(1 << 24)?;
    /// let mut job = pool.for_each_chunk_async(a, |c| c.fill(1))?;
    /// for (pid, chunk) in job.running() {
    ///     println!("worker {pid} runs chunk {chunk}");
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn running(&mut self) -> Vec<(u32, u64)> {
        self.poll();
        let c = &*self.pool.ctl;
        let done_or_claimed = |i: u64| c.is_done(i);
        self.pool
            .slots
            .iter()
            .enumerate()
            .filter(|(_, w)| w.alive)
            .filter_map(|(s, w)| {
                let h = c.workers[s].held.load(SeqCst);
                let i = h.index();
                (h != JobIndex::NOTHING && h.job() == self.job && !done_or_claimed(i))
                    .then_some((w.pid, i))
            })
            .collect()
    }

    /// Waits at most `timeout` for the job; `true` once it is over (then
    /// [`wait`](JobHandle::wait) returns at once), `false` if it still runs. The pool's rule
    /// for timed waits (`src/pool/README.md`, "Timed waits"): an error reads as over, and
    /// [`wait`](JobHandle::wait) reports it (a pool that gave up while this waited, because a
    /// replacement worker could not start, say, is terminated: `wait` then returns
    /// [`Error::PoolGaveUp`](crate::Error::PoolGaveUp) with the reason).
    ///
    /// ```no_run
    /// # let mut pool = shmpool::Pool::new(2)?;
    /// # let a = shmpool::SharedArray::<u8>::zeroed(16)?;
    /// let mut job = pool.for_each_chunk_async(a, |c| c.fill(1))?;
    /// if job.wait_timeout(std::time::Duration::from_secs(1)) {
    ///     let a = job.wait()?; // returns at once, with the job's outcome
    ///     assert_eq!(a[0], 1);
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        // An error means the pool gave up (it is terminated and `wait` returns why) or this
        // process does not own the pool (`wait` meets that again): over either way.
        self.pool_wait(Instant::now().checked_add(timeout)).unwrap_or(true)
    }

    /// Waits for the job and returns its output.
    ///
    /// # Errors
    ///
    /// [`Error::KernelPanicked`](crate::Error::KernelPanicked) (first panic, with chunk and
    /// message), [`Error::WorkerDied`](crate::Error::WorkerDied) (a worker died holding a chunk
    /// and no retry was left), [`Error::PoolNotRunning`](crate::Error::PoolNotRunning) if the
    /// pool was terminated, [`Error::PoolGaveUp`](crate::Error::PoolGaveUp) with the reason if
    /// the pool gave up (workers kept failing their initializer, say). The arrays are dropped
    /// on error.
    ///
    /// ```no_run
    /// # let mut pool = shmpool::Pool::new(2)?;
    /// # let a = shmpool::SharedArray::<u8>::zeroed(16)?;
    /// let a = pool.for_each_chunk_async(a, |c| c.fill(1))?.wait()?;
    /// assert_eq!(a[15], 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait(mut self) -> Result<R> {
        self.outcome()?;
        let out = self.output.take().expect("output taken only here");
        Ok(out(self.pool))
    }

    /// Waits for the job and returns its output together with its outcome, so the arrays can
    /// be inspected even when a chunk failed.
    ///
    /// ```no_run
    /// # let mut pool = shmpool::Pool::new(2)?;
    /// # let a = shmpool::SharedArray::<u8>::zeroed(16)?;
    /// let (a, outcome) = pool.for_each_chunk_async(a, |c| c.fill(1))?.finish();
    /// outcome?;
    /// assert_eq!(a[0], 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn finish(mut self) -> (R, Result<()>) {
        if let Err(e) = self.pool.check_owner() {
            // Unreachable through safe code (a handle is not `Send`); handing out the output
            // here could give a process arrays the creator's workers still write.
            panic!("{e}");
        }
        let outcome = self.outcome();
        let out = self.output.take().expect("output taken only here");
        (out(self.pool), outcome)
    }

    /// Terminates the pool (Python's `Pool.terminate` with work pending): kills and reaps every
    /// worker at once; the job's chunks that did not run are abandoned.
    ///
    /// ```no_run
    /// # let mut pool = shmpool::Pool::new(2)?;
    /// # let a = shmpool::SharedArray::<u8>::zeroed(1 << 24)?;
    /// let job = pool.for_each_chunk_async(a, |c| c.fill(1))?;
    /// job.terminate_pool();
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn terminate_pool(self) {
        self.pool.terminate();
    }
}

impl<R> Drop for JobHandle<'_, R> {
    fn drop(&mut self) {
        if self.pool.check_owner().is_err() {
            return; // not the creator: nothing of the job is ours to wait for or stop
        }
        if self.detached {
            return; // cancelled: what still runs is waited for by the pool's next job
        }
        if std::thread::panicking() {
            // Unwinding: do not wait (or fork replacements) now; stop the workers instead.
            self.pool.terminate();
            return;
        }
        // The output (and the arrays it owns) drops after this: make sure no worker still uses
        // them. `wait_job` terminates the pool itself if it cannot finish the job. (An empty
        // job, or one whose outcome was taken, has nothing left running.)
        let _ = self.outcome();
    }
}
