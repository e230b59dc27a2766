//! `AsyncResult`: the result of an `_async` task call (Python's `AsyncResult`), with its
//! callbacks; `get` hands the value out again on every call, as Python does.

use std::time::{Duration, Instant};

use super::job::JobHandle;
use crate::error::{Error, Result};

/// A callback run in the parent with a result or an error.
type Callback<'p, T> = Box<dyn FnOnce(&T) + 'p>;

/// The result of an `_async` task call (Python's `AsyncResult`).
///
/// Dropping it waits for the job to finish.
///
/// **One at a time; many through a queue.** An `AsyncResult` borrows the pool mutably: the pool
/// runs one job at a time, and the result is read from shared memory the next job reuses. For
/// Python's `[pool.apply_async(f, (i,)) for i in range(n)]`, any number of calls of any
/// functions alive at once, use [`Pool::apply_queue`](crate::Pool::apply_queue): the queue
/// holds the pool and batches the calls into jobs, and each call's
/// [`Pending`](crate::pool::Pending) borrows the queue shared. (`Pool::apply_async(&self)`
/// would need every step of a job, which changes the pool, behind interior mutability; the
/// queue is that, in one place. `src/pool/README.md`, "Many calls in flight", argues it.)
///
/// ```no_run
/// use std::time::Duration;
/// let mut pool = shmpool::Pool::new(2)?;
/// let mut r = pool.map_async(|x: u32| x + 1, &[1, 2, 3], None)?;
/// assert!(r.wait_timeout(Duration::from_secs(5)));
/// assert!(r.is_ready());
/// assert!(r.is_successful()?);
/// assert_eq!(r.get()?, [2, 3, 4]);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct AsyncResult<'p, T> {
    /// The job; its output is the value, or the error reading it back (a task's `Err`, a
    /// result that did not deserialize).
    handle: JobHandle<'p, Result<T>>,
    outcome: Option<Result<()>>,
    value: Option<T>,
    callback: Option<Callback<'p, T>>,
    error_callback: Option<Callback<'p, Error>>,
}

impl<'p, T> AsyncResult<'p, T> {
    pub(crate) fn new(handle: JobHandle<'p, Result<T>>) -> AsyncResult<'p, T> {
        AsyncResult { handle, outcome: None, value: None, callback: None, error_callback: None }
    }

    /// Python's `callback`: called with the result, in this process, when the parent first
    /// sees the call complete successfully (in `wait`, `get`, `is_ready`, or when this is dropped:
    /// there is no result-handler thread).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut seen = Vec::new();
    /// pool.map_async(|x: u32| x * 2, &[1, 2], None)?
    ///     .callback(|r: &Vec<u32>| seen.extend_from_slice(r))
    ///     .wait()?;
    /// assert_eq!(seen, [2, 4]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn callback(mut self, f: impl FnOnce(&T) + 'p) -> Self {
        self.callback = Some(Box::new(f));
        self
    }

    /// Python's `error_callback`: called with the error, in this process, when the parent first
    /// sees the call fail.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut failed = false;
    /// let _ = pool
    ///     .apply_async(|x: u32| 10 / x, 0)?
    ///     .error_callback(|_e: &shmpool::Error| failed = true)
    ///     .wait()?;
    /// assert!(failed);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn error_callback(mut self, f: impl FnOnce(&Error) + 'p) -> Self {
        self.error_callback = Some(Box::new(f));
        self
    }

    /// Waits until the result is ready (Python's `wait()`; the call's own error, if any, comes
    /// from [`get`](AsyncResult::get)).
    ///
    /// # Errors
    ///
    /// [`Error::PoolNotOwned`] when called in another process than the pool's creator. (A pool
    /// that gives up while this waits, a replacement worker that cannot start, say, ends the
    /// call: that is its outcome, which [`get`](AsyncResult::get) returns.)
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.apply_async(|x: u8| x, 1)?;
    /// r.wait()?;
    /// assert!(r.is_ready());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait(&mut self) -> Result<()> {
        self.wait_deadline(None).map(drop)
    }

    /// Like [`wait`](AsyncResult::wait), waiting at most `timeout` (Python's `wait(timeout)`);
    /// whether the result is ready. The pool's rule for timed waits (`src/pool/README.md`,
    /// "Timed waits"): an error reads as ready, and [`get`](AsyncResult::get) reports it.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.apply_async(|x: u8| x, 1)?;
    /// assert!(r.wait_timeout(Duration::from_secs(5)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        // An error here is the pool's refusal in a process that does not own it, which `get`
        // meets again on the same path (`wait_deadline`) and returns.
        self.wait_deadline(Instant::now().checked_add(timeout)).unwrap_or(true)
    }

    /// Waits until the result is ready or `deadline` passes (forever with `None`); whether it is
    /// ready. The first time it sees the call over, it runs the callback or error callback.
    fn wait_deadline(&mut self, deadline: Option<Instant>) -> Result<bool> {
        if self.outcome.is_some() {
            return Ok(true);
        }
        match self.handle.pool_wait(deadline) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            // The pool gave up while waiting: the call is over, and its outcome (below) says why.
            Err(_) if self.handle.terminated() => {}
            Err(e) => return Err(e),
        }
        let mut outcome = self.handle.outcome();
        if outcome.is_ok() {
            match self.handle.take_output() {
                Some(Ok(v)) => self.value = Some(v),
                Some(Err(e)) => outcome = Err(e),
                None => {}
            }
        }
        // Stored before the callback runs: a panicking callback (caught by the caller) cannot
        // lose it, nor make a failed call read as successful.
        self.outcome = Some(outcome);
        match &self.outcome {
            Some(Ok(())) => {
                if let (Some(cb), Some(v)) = (self.callback.take(), &self.value) {
                    cb(v);
                }
            }
            Some(Err(e)) => {
                if let Some(cb) = self.error_callback.take() {
                    cb(e);
                }
            }
            None => {}
        }
        Ok(true)
    }

    /// Chunks of tasks finished so far, and chunks in all (for progress bars); it looks at the
    /// workers first, as [`JobHandle::progress`] does, so a dead worker's chunk is counted.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.map_async(|x: u32| x, &[1, 2, 3, 4], Some(1))?;
    /// let (done, total) = r.progress();
    /// assert!(done <= total && total == 4);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn progress(&mut self) -> (u64, u64) {
        self.handle.progress()
    }

    /// Whether the result is ready (Python's `ready()`), without waiting; an error reads as
    /// ready, for [`get`](AsyncResult::get) to report ("Timed waits" in `src/pool/README.md`).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.apply_async(|x: u8| x, 1)?;
    /// while !r.is_ready() {}
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[doc(alias = "ready")]
    pub fn is_ready(&mut self) -> bool {
        self.outcome.is_some() || (self.handle.is_ready() && self.wait_timeout(Duration::ZERO))
    }

    /// Whether the call completed without error (Python's `successful()`).
    ///
    /// # Errors
    ///
    /// [`Error::ResultUnavailable`] while the result is not ready.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.apply_async(|x: u8| x, 1)?;
    /// r.wait()?;
    /// assert!(r.is_successful()?);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[doc(alias = "successful")]
    pub fn is_successful(&mut self) -> Result<bool> {
        if !self.is_ready() {
            return Err(Error::ResultUnavailable {
                reason: "the result is not ready yet; call wait() or check is_ready() before \
                         is_successful()",
            });
        }
        Ok(matches!(self.outcome, Some(Ok(()))))
    }
}

impl<T: Clone> AsyncResult<'_, T> {
    /// Waits for the call and returns its result, or the error that ended it (Python's
    /// `get()`). Like Python, `get` may be called again: it returns the value again (a clone;
    /// the value stays here). An error is returned in full once; later calls return
    /// [`Error::ResultUnavailable`] quoting it (`Error` is not `Clone`: it may hold an OS
    /// error).
    ///
    /// # Errors
    ///
    /// The call's own error: [`Error::KernelPanicked`], [`Error::WorkerDied`],
    /// [`Error::TaskFailed`] (a `try_*` task's `Err`), [`Error::TaskValue`],
    /// [`Error::TaskValueTooLarge`].
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.apply_async(|x: u64| x * 3, 5)?;
    /// assert_eq!(r.get()?, 15);
    /// assert_eq!(r.get()?, 15);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get(&mut self) -> Result<T> {
        self.wait()?;
        self.take()
    }

    /// Like [`get`](AsyncResult::get), waiting at most `timeout` (Python's `get(timeout)`).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if not ready in time (the call keeps running; `get` again later),
    /// and as for [`get`](AsyncResult::get).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.apply_async(|x: u64| x * 3, 5)?;
    /// assert_eq!(r.get_timeout(Duration::from_secs(5))?, 15);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<T> {
        if !self.wait_deadline(Instant::now().checked_add(timeout))? {
            return Err(Error::Timeout { what: "AsyncResult::get_timeout", after: timeout });
        }
        self.take()
    }

    /// The value (again), or the error (once; then a pointer to it), of a call that is over.
    fn take(&mut self) -> Result<T> {
        match &mut self.outcome {
            Some(Err(Error::ResultUnavailable { reason })) => {
                Err(Error::ResultUnavailable { reason })
            }
            Some(Err(_)) => {
                let again = Error::ResultUnavailable {
                    reason: "the call failed, and its error was already returned by an earlier \
                             get(); is_successful() says so without consuming anything",
                };
                match self.outcome.replace(Err(again)) {
                    Some(Err(e)) => Err(e),
                    _ => unreachable!("matched an error above"),
                }
            }
            _ => self.value.clone().ok_or(Error::ResultUnavailable {
                reason: "the call is over but produced no value (the pool was terminated)",
            }),
        }
    }
}

impl<T> AsyncResult<'_, T> {
    /// Terminates the pool (Python's `Pool.terminate` with tasks pending): every worker is
    /// killed and reaped at once; tasks that did not run are abandoned.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let r = pool.map_async(|x: u64| x, &vec![0; 10_000], Some(1))?;
    /// r.terminate_pool();
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn terminate_pool(mut self) {
        self.callback = None;
        self.error_callback = None;
        self.handle.terminate_now();
    }
}

impl<T> Drop for AsyncResult<'_, T> {
    fn drop(&mut self) {
        // Callbacks still pending fire when the call ends, as in Python, unless unwinding.
        if (self.callback.is_some() || self.error_callback.is_some()) && !std::thread::panicking() {
            let _ = self.wait();
        }
    }
}
