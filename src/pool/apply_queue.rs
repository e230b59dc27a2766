//! `ApplyQueue`: any number of `apply_async` calls of one function alive at once (Python's
//! `[pool.apply_async(f, (i,)) for i in range(n)]`). The queue holds the pool; each call
//! returns a [`Pending`] that borrows the queue shared, so results can be kept, and read in
//! any order. Calls made while a job runs wait in the queue and go out together as the next
//! job (one task per chunk) when that job is over: the pool runs one job at a time, so this
//! batches instead of serializing round trips.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::imap::chunk_error;
use super::kernel::Trampoline;
use super::staging::{ResultSource, SerialResults, serialize_args};
use super::state::Pool;
use super::task_kernel::{self, Plain};
use crate::error::{Error, Result};

/// Many [`apply_async`](ApplyQueue::apply_async) calls of `f` in flight at once; made by
/// [`Pool::apply_queue`].
///
/// A queue can only be dropped once every `Pending` is (they borrow it). Dropping it waits for
/// the batch running; calls still queued behind it (made while it ran, and never asked for
/// with `get` or `is_ready`) are dropped without running.
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let q = pool.apply_queue(|x: u64| x * x);
/// let mut pending: Vec<_> = (0..100).map(|i| q.apply_async(i)).collect::<Result<_, _>>()?;
/// for (i, p) in pending.iter_mut().enumerate().rev() {
///     assert_eq!(p.get()?, (i * i) as u64);
/// }
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct ApplyQueue<'p, A, R> {
    f: fn(A) -> R,
    state: RefCell<QueueState<'p, R>>,
}

/// What the queue holds.
struct QueueState<'p, R> {
    pool: &'p mut Pool,
    /// Calls not yet published: their ids (consecutive), argument offsets (`n + 1`) and bytes.
    queued: Vec<u64>,
    offsets: Vec<u64>,
    data: Vec<u8>,
    /// The job in flight: its calls' ids (task `k` is `ids[k]`) and where its results are.
    running: Option<(Vec<u64>, SerialResults<R>)>,
    /// Finished calls whose `Pending` has not taken the result yet.
    finished: HashMap<u64, Result<R>>,
    next_id: u64,
}

impl<R: DeserializeOwned + 'static> QueueState<'_, R> {
    /// If a job runs: waits for it until `wait`'s deadline (forever with `Some(None)`; without
    /// `wait`, only looks whether it is over) and collects its results. Then, if nothing runs,
    /// publishes the queued calls as one job.
    fn pump(
        &mut self,
        trampoline: usize,
        kernel: usize,
        wait: Option<Option<Instant>>,
    ) -> Result<()> {
        if self.running.is_some() {
            let over = if let Some(deadline) = wait {
                // An error means the pool stopped: the calls not done are reported as such.
                self.pool.wait_job(deadline).unwrap_or(true)
            } else {
                let _ = self.pool.check_workers();
                self.pool.job_done() || self.pool.active.is_none()
            };
            if !over {
                return Ok(());
            }
            self.harvest();
        }
        if self.queued.is_empty() {
            return Ok(());
        }
        let first = self.queued[0] as usize;
        let staged = self.pool.stage_serialized::<R>(
            trampoline,
            kernel,
            &self.offsets,
            &self.data,
            Some(1),
            first,
        );
        let ids = std::mem::take(&mut self.queued);
        (self.offsets, self.data) = (vec![0], Vec::new());
        let published = staged.and_then(|s| self.pool.publish(&s.spec).map(|_| s));
        match published {
            Ok(staged) => self.running = Some((ids, staged.results)),
            Err(e) => {
                // The batch did not go out: its first call carries why, the others say so.
                let mut errors =
                    std::iter::once(e).chain(std::iter::repeat_with(|| Error::ResultUnavailable {
                        reason: "the batch of this call could not be published; the batch's \
                                 first call's get() returned why",
                    }));
                for id in ids {
                    self.finished.insert(id, Err(errors.next().expect("endless")));
                }
            }
        }
        Ok(())
    }

    /// Collects the results of the job in flight, which is over, and ends it.
    fn harvest(&mut self) {
        let Some((ids, results)) = self.running.take() else { return };
        let pool = &*self.pool;
        let mut error_given = false;
        for (k, id) in ids.into_iter().enumerate() {
            let chunk = k as u64;
            let r = if !pool.ctl.is_done(chunk) {
                Err(pool.stopped_error())
            } else if pool.ctl.is_failed(chunk) {
                Err(chunk_error(pool, chunk, Some(chunk), &mut error_given))
            } else {
                results.read(pool, k)
            };
            self.finished.insert(id, r);
        }
        pool.learn_result_size(&results);
        // Each call's error was recorded above; the job's own outcome repeats the first.
        let _ = self.pool.take_outcome();
    }
}

impl Pool {
    /// A queue for any number of `apply_async` calls of `f` alive at once (see
    /// [`ApplyQueue`]); it holds the pool until dropped.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue(|s: String| s.len());
    /// let (mut a, mut b) = (q.apply_async("ab".into())?, q.apply_async("cde".into())?);
    /// assert_eq!((b.get()?, a.get()?), (3, 2));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply_queue<A, R>(&mut self, f: fn(A) -> R) -> ApplyQueue<'_, A, R> {
        let state = QueueState {
            pool: self,
            queued: Vec::new(),
            offsets: vec![0],
            data: Vec::new(),
            running: None,
            finished: HashMap::new(),
            next_id: 0,
        };
        ApplyQueue { f, state: RefCell::new(state) }
    }
}

impl<'p, A, R> ApplyQueue<'p, A, R>
where
    A: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned + 'static,
{
    fn code(&self) -> (usize, usize) {
        (task_kernel::task_serial::<Plain<A, R>> as Trampoline as usize, self.f as usize)
    }

    /// Calls `f(arg)` in a worker (Python's `apply_async`): at once if no call of this queue
    /// runs, else with the next batch. Calls are numbered from 0 in the order made; errors and
    /// panic messages name that number.
    ///
    /// # Errors
    ///
    /// As for [`Pool::apply_async`]; a call's own error comes from [`Pending::get`].
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue(|x: i32| -x);
    /// let mut r = q.apply_async(5)?;
    /// assert_eq!(r.get()?, -5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply_async(&self, arg: A) -> Result<Pending<'_, 'p, A, R>> {
        let (trampoline, kernel) = self.code();
        let mut st = self.state.borrow_mut();
        st.pool.check_running()?;
        let id = st.next_id;
        let (_, bytes) = serialize_args::<A>([&arg], st.pool.max_task_bytes, id as usize)?;
        st.next_id += 1;
        st.queued.push(id);
        st.data.extend_from_slice(&bytes);
        let end = st.data.len() as u64;
        st.offsets.push(end);
        st.pump(trampoline, kernel, None)?;
        Ok(Pending { queue: self, id, outcome: None })
    }
}

impl<A, R> Drop for ApplyQueue<'_, A, R> {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if st.pool.check_owner().is_err() || std::thread::panicking() {
            return;
        }
        // The running batch is waited for (its results read no more); queued calls never ran.
        let _ = st.pool.finish_active();
        st.running = None;
    }
}

/// One call of an [`ApplyQueue`] (Python's `AsyncResult` of `apply_async`).
pub struct Pending<'q, 'p, A, R> {
    queue: &'q ApplyQueue<'p, A, R>,
    id: u64,
    outcome: Option<Result<R>>,
}

impl<A, R> Pending<'_, '_, A, R>
where
    A: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned + Clone + 'static,
{
    /// Whether the result is ready (Python's `ready()`), without waiting.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue(|x: u8| x);
    /// let mut r = q.apply_async(1)?;
    /// while !r.is_ready() {}
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[doc(alias = "ready")]
    pub fn is_ready(&mut self) -> bool {
        if self.outcome.is_none() {
            let (trampoline, kernel) = self.queue.code();
            let mut st = self.queue.state.borrow_mut();
            let _ = st.pump(trampoline, kernel, None);
            self.outcome = st.finished.remove(&self.id);
        }
        self.outcome.is_some()
    }

    /// Waits for the call and returns its result (Python's `get()`); again on every call, as
    /// [`AsyncResult::get`](crate::pool::AsyncResult::get) does.
    ///
    /// # Errors
    ///
    /// The call's own error ([`Error::KernelPanicked`], [`Error::WorkerDied`],
    /// [`Error::TaskValue`], [`Error::TaskValueTooLarge`]), once; then
    /// [`Error::ResultUnavailable`].
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue(|x: u64| x + 1);
    /// let mut r = q.apply_async(1)?;
    /// assert_eq!(r.get()?, 2);
    /// assert_eq!(r.get()?, 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get(&mut self) -> Result<R> {
        self.get_within(None)
    }

    /// Like [`get`](Pending::get), waiting at most `timeout` (Python's `get(timeout)`).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if the call is not over in time (it keeps running, or stays queued:
    /// `get` again later), and as for [`get`](Pending::get).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue(|x: u64| x + 1);
    /// let mut r = q.apply_async(1)?;
    /// assert_eq!(r.get_timeout(Duration::from_secs(5))?, 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<R> {
        self.get_within(Some(timeout))
    }

    /// [`get`](Pending::get), waiting at most `timeout` (forever with `None`).
    fn get_within(&mut self, timeout: Option<Duration>) -> Result<R> {
        let (trampoline, kernel) = self.queue.code();
        let deadline = timeout.and_then(crate::sync::wait::deadline_after);
        while self.outcome.is_none() {
            let mut st = self.queue.state.borrow_mut();
            if let Some(r) = st.finished.remove(&self.id) {
                self.outcome = Some(r);
                break;
            }
            let known = st.running.as_ref().is_some_and(|(ids, _)| ids.contains(&self.id))
                || st.queued.contains(&self.id);
            if !known {
                return Err(Error::ResultUnavailable {
                    reason: "the call's result was lost (the pool stopped before it ran)",
                });
            }
            if let (Some(after), Some(d)) = (timeout, deadline)
                && Instant::now() >= d
            {
                return Err(Error::Timeout { what: "Pending::get_timeout", after });
            }
            st.pump(trampoline, kernel, Some(deadline))?;
        }
        match &mut self.outcome {
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(Error::ResultUnavailable { reason })) => {
                Err(Error::ResultUnavailable { reason })
            }
            o => {
                let again = Error::ResultUnavailable {
                    reason: "the call failed, and its error was already returned by get()",
                };
                match o.replace(Err(again)) {
                    Some(Err(e)) => Err(e),
                    _ => unreachable!("an error, matched above"),
                }
            }
        }
    }
}

impl<A, R> Drop for Pending<'_, '_, A, R> {
    fn drop(&mut self) {
        if let Ok(mut st) = self.queue.state.try_borrow_mut() {
            st.finished.remove(&self.id);
        }
    }
}
