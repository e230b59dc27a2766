//! `ApplyQueue`: any number of `apply_async` calls, of any functions, alive at once (Python's
//! `[pool.apply_async(f, (i,)) for i in range(n)]`). The queue holds the pool; each call
//! returns a [`Pending`] that borrows the queue shared, so results can be kept, and read in any
//! order. Calls made while a job runs wait in the queue and go out together as the next job
//! (one task per chunk) when that job is over: the pool runs one job at a time, so this batches
//! instead of serializing round trips.
//!
//! *Why a queue and not `Pool::apply_async(&self)`:* publishing needs `&mut Pool` (the arena,
//! the job in flight, the workers), which `&self` cannot give without `RefCell`s in every
//! operation of the pool, turning today's compile-time refusal of a reentrant call into a
//! run-time panic; the queue is that interior mutability in one place, for one line of the
//! caller's (`README.md`, "Many calls in flight").
//!
//! **Many functions.** A job's tasks share one trampoline and one kernel (the descriptor holds
//! one of each, and the worker checks both against its code ranges), so the queue keeps its
//! calls as runs of consecutive calls of one `fn` (a [`Run`]) and publishes one run per job, in
//! the order made. Calls of one `fn` in a row, the common case, still go out as one job;
//! alternating functions pay a job each. *Why not a trampoline per task:* each task's code
//! address would then come from the argument region, which the worker would have to check
//! against its code ranges per task, a second code transport beside `process::code`'s.
//!
//! **Typed results, one queue.** A [`Run`] carries, monomorphised for its call's result type,
//! how to publish it (`publish`) and how to record a failure (`fail`); the published job's
//! results are read through a [`Batch`] of that type. Finished calls wait in the queue as
//! `Box<dyn Any>` holding a `Result<R>`, which only the call's own [`Pending<R>`] takes.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::control::MAX_CHUNKS;
use super::imap::chunk_error;
use super::kernel::Trampoline;
use super::staging::{ResultSource, SerialResults, serialize_args};
use super::state::{Pool, PoolState};
use super::task_kernel::{self, Plain};
use crate::error::{Error, Result};

/// A finished call's `Result<R>`, type-erased until its [`Pending<R>`] takes it.
type Finished = Box<dyn Any>;

/// How often, at most, polls of [`Pending::is_finished`] look at the workers (reap and replace
/// the dead, kill a task past the task timeout, collect a batch that is over and send the
/// next): what `is_ready` does at every call, which costs a system call or more per worker.
/// Every poll of a call not yet finished reads the clock (vDSO, ~20 ns) to know whether a look
/// is due. 10 ms is the slice in which a wait without pidfds notices a death
/// (`failure::SLICE`): a call whose worker died is seen finished as soon as a wait would, while
/// a loop that polls without pause spends a few microseconds per 10 ms on looks (under 0.1%),
/// and a progress bar polling at 100 ms ticks looks once per tick.
const POLL_LOOK: Duration = Duration::from_millis(10);

/// What a call of the queue's made from inside the queue's own work returns: a result's
/// `Deserialize` or `Drop` runs while the queue collects a batch (its state borrowed), where
/// the queue can neither be read nor changed. Polls ([`Pending::is_ready`],
/// [`Pending::wait_timeout`]) read it as ready, by the pool's rule for timed waits, and
/// [`Pending::get`] returns it; [`Pending::is_finished`] reads `false` there.
const INSIDE_THE_QUEUE: Error = Error::ResultUnavailable {
    reason: "called from inside the apply queue's own work (a result's Deserialize or Drop, run \
             while the queue collects a batch), where the queue cannot be used: make this call \
             after that code returns",
};

/// Consecutive calls of one `fn`, queued for the next job.
struct Run {
    /// The trampoline and the user's `fn`, as addresses.
    code: (usize, usize),
    /// The calls' ids (consecutive), argument offsets (`n + 1`) and bytes.
    ids: Vec<u64>,
    offsets: Vec<u64>,
    data: Vec<u8>,
    /// Stages and publishes the run (monomorphised for its result type).
    publish: fn(&mut Pool, &Run) -> Result<Box<dyn Batch>>,
    /// A call's failure as its finished value (`Result<R>`).
    fail: fn(Error) -> Finished,
}

/// A published run's results, of one result type.
trait Batch {
    /// Reads every call's result or error (the job is over) into `finished`.
    fn harvest(&self, pool: &Pool, ids: &[u64], finished: &mut HashMap<u64, Finished>);
}

/// A [`Batch`] of results of type `R`.
struct Typed<R>(SerialResults<R>);

impl<R: DeserializeOwned + 'static> Batch for Typed<R> {
    fn harvest(&self, pool: &Pool, ids: &[u64], finished: &mut HashMap<u64, Finished>) {
        let mut error_given = false;
        for (k, &id) in ids.iter().enumerate() {
            let chunk = k as u64;
            let r: Result<R> = if !pool.ctl.is_done(chunk) {
                Err(pool.stopped_error())
            } else if pool.ctl.is_failed(chunk) {
                Err(chunk_error(pool, chunk, Some(chunk), &mut error_given))
            } else {
                self.0.read(pool, k)
            };
            finished.insert(id, Box::new(r));
        }
        pool.learn_result_size(&self.0);
    }
}

/// [`Run::publish`] for results of type `R`: one task per chunk, numbered from the run's first
/// call (so errors and panic messages name the call).
fn publish_run<R: DeserializeOwned + 'static>(
    pool: &mut Pool,
    run: &Run,
) -> Result<Box<dyn Batch>> {
    let (trampoline, kernel) = run.code;
    let first = run.ids[0] as usize;
    let staged =
        pool.stage_serialized::<R>(trampoline, kernel, &run.offsets, &run.data, Some(1), first)?;
    pool.publish(&staged.spec)?;
    Ok(Box::new(Typed(staged.results)))
}

/// [`Run::fail`] for results of type `R`.
fn fail_as<R: 'static>(e: Error) -> Finished {
    Box::new(Err::<R, Error>(e))
}

/// Many [`apply_async`](ApplyQueue::apply_async) calls in flight at once, of any functions;
/// made by [`Pool::apply_queue`].
///
/// A queue can only be dropped once every `Pending` is (they borrow it). Dropping it waits for
/// the batch running; calls still queued behind it (made while it ran, and never asked for
/// with `get` or `is_ready`) are dropped without running.
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let q = pool.apply_queue();
/// let pending: Vec<_> = (0..100u64).map(|i| q.apply_async(|x: u64| x * x, i)).collect::<Result<_, _>>()?;
/// let text = q.apply_async(|s: String| s.len(), "four".to_string())?;
/// for (i, p) in pending.iter().enumerate().rev() {
///     assert_eq!(p.get()?, (i * i) as u64);
/// }
/// assert_eq!(text.get()?, 4);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct ApplyQueue<'p> {
    state: RefCell<QueueState<'p>>,
    /// When a poll of [`Pending::is_finished`] may next look at the workers ([`POLL_LOOK`]).
    next_look: Cell<Instant>,
    /// Looks made by polls so far (for the test of the rate limit).
    looks: Cell<u64>,
}

/// What the queue holds.
struct QueueState<'p> {
    pool: &'p mut Pool,
    /// Calls not yet published, as runs of one `fn`, oldest first.
    queued: VecDeque<Run>,
    /// The job in flight: its calls' ids (task `k` is `ids[k]`) and where its results are.
    running: Option<(Vec<u64>, Box<dyn Batch>)>,
    /// Finished calls whose `Pending` has not taken the result yet.
    finished: HashMap<u64, Finished>,
    /// Calls queued or running whose `Pending` was dropped unread: their results are dropped
    /// when they come (Python's fire-and-forget `apply_async`), not kept for the queue's life.
    abandoned: HashSet<u64>,
    next_id: u64,
}

impl QueueState<'_> {
    /// If a job runs: waits for it until `wait`'s deadline (forever with `Some(None)`; without
    /// `wait`, only looks whether it is over) and collects its results. Then, if nothing runs,
    /// publishes the oldest queued run as one job.
    fn pump(&mut self, wait: Option<Option<Instant>>) {
        if self.running.is_some() {
            let over = if let Some(deadline) = wait {
                // An error means the pool stopped: the calls not done are reported as such.
                self.pool.wait_job(deadline).unwrap_or(true)
            } else {
                // An error means the pool gave up (it is terminated): nothing more finishes,
                // and the calls not done are reported as such, as after a wait.
                let _ = self.pool.check_workers();
                self.pool.job_done()
                    || self.pool.active.is_none()
                    || self.pool.state == PoolState::Terminated
            };
            if !over {
                return;
            }
            self.harvest();
        }
        let Some(run) = self.queued.pop_front() else { return };
        match (run.publish)(self.pool, &run) {
            Ok(batch) => self.running = Some((run.ids, batch)),
            Err(e) => {
                // The run did not go out: its first call carries why, the others say so.
                let mut errors =
                    std::iter::once(e).chain(std::iter::repeat_with(|| Error::ResultUnavailable {
                        reason: "the batch of this call could not be published; the batch's \
                                 first call's get() returned why",
                    }));
                for &id in &run.ids {
                    self.finished.insert(id, (run.fail)(errors.next().expect("endless")));
                }
                self.forget_abandoned(&run.ids);
            }
        }
    }

    /// Drops the outcomes of `ids` that nobody will ask for (their `Pending` is gone).
    fn forget_abandoned(&mut self, ids: &[u64]) {
        if self.abandoned.is_empty() {
            return;
        }
        for id in ids {
            if self.abandoned.remove(id) {
                self.finished.remove(id);
            }
        }
    }

    /// Collects the results of the job in flight, which is over, and ends it.
    fn harvest(&mut self) {
        let Some((ids, batch)) = self.running.take() else { return };
        batch.harvest(self.pool, &ids, &mut self.finished);
        self.forget_abandoned(&ids);
        // Each call's error was recorded above; the job's own outcome repeats the first.
        let _ = self.pool.take_outcome();
    }

    /// Whether call `id` is queued or running. Calls are numbered in the order made, runs go
    /// out in that order, and a run's calls are consecutive: those from the oldest call not
    /// yet harvested on are all queued or running. (In constant time: a loop dropping each
    /// `Pending` at once asks this per call.)
    fn knows(&self, id: u64) -> bool {
        let oldest = match &self.running {
            Some((ids, _)) => ids.first(),
            None => self.queued.front().and_then(|r| r.ids.first()),
        };
        oldest.is_some_and(|&o| o <= id && id < self.next_id)
    }
}

impl Pool {
    /// A queue for any number of `apply_async` calls alive at once, of any functions (see
    /// [`ApplyQueue`]); it holds the pool until dropped.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue();
    /// let (a, b) = (q.apply_async(|s: String| s.len(), "ab".into())?, q.apply_async(|x: i8| -x, 3)?);
    /// assert_eq!((b.get()?, a.get()?), (-3, 2));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply_queue(&mut self) -> ApplyQueue<'_> {
        let state = QueueState {
            pool: self,
            queued: VecDeque::new(),
            running: None,
            finished: HashMap::new(),
            abandoned: HashSet::new(),
            next_id: 0,
        };
        ApplyQueue {
            state: RefCell::new(state),
            next_look: Cell::new(Instant::now()),
            looks: Cell::new(0),
        }
    }
}

impl<'p> ApplyQueue<'p> {
    /// Calls `f(arg)` in a worker (Python's `apply_async`): at once if no call of this queue
    /// runs, else with the next batch (consecutive calls of one `fn` go out as one job). Calls
    /// are numbered from 0 in the order made; errors and panic messages name that number.
    ///
    /// # Errors
    ///
    /// As for [`Pool::apply_async`]; a call's own error comes from [`Pending::get`].
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue();
    /// let r = q.apply_async(|x: i32| -x, 5)?;
    /// assert_eq!(r.get()?, -5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Pending<'_, 'p, R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + 'static,
    {
        let id = self.queue_call(f, &arg)?;
        self.state.borrow_mut().pump(None);
        Ok(self.pending(id))
    }

    /// [`apply_async`](ApplyQueue::apply_async) of `f` on each of `args`, every call queued
    /// before any goes out: when no call of this queue runs, they go out as one job, where calls made one by one would send the first alone at once
    /// and the rest as a second job. Each call keeps its own [`Pending`] and its own result
    /// or error (a panic, a worker's death or a timeout fails that call only), so a batch of
    /// files can fail file by file while the caller sleeps through the whole job.
    ///
    /// # Errors
    ///
    /// As for [`apply_async`](ApplyQueue::apply_async), for the first argument that cannot be
    /// queued (over `max_task_bytes`, or not serializable); the calls queued before it stay
    /// queued, their results dropped unread.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue();
    /// let pending = q.apply_async_batch(|x: u64| 100 / x, [4, 0, 5])?;
    /// assert_eq!(pending[0].get()?, 25);
    /// assert!(pending[1].get().is_err()); // the division by zero fails that call only
    /// assert_eq!(pending[2].get()?, 20);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply_async_batch<A, R>(
        &self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = A>,
    ) -> Result<Vec<Pending<'_, 'p, R>>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + 'static,
    {
        let mut pending = Vec::new();
        // The caller's iterator runs with no borrow of the queue held: it may call the queue.
        for arg in args {
            match self.queue_call(f, &arg) {
                Ok(id) => pending.push(id),
                Err(e) => {
                    // The calls queued so far run; nobody reads them (their `Pending`s drop).
                    drop(pending.into_iter().map(|id| self.pending::<R>(id)).collect::<Vec<_>>());
                    return Err(e);
                }
            }
        }
        self.state.borrow_mut().pump(None);
        Ok(pending.into_iter().map(|id| self.pending(id)).collect())
    }

    /// The handle of call `id`.
    fn pending<R>(&self, id: u64) -> Pending<'_, 'p, R> {
        Pending {
            queue: self,
            id,
            outcome: RefCell::new(None),
            callback: RefCell::new(None),
            error_callback: RefCell::new(None),
        }
    }
}

impl ApplyQueue<'_> {
    /// Does what [`Pending::is_ready`] does to the queue ([`QueueState::pump`] without
    /// waiting: look at the workers, collect a batch that is over, send the next) if
    /// [`POLL_LOOK`] has passed since a poll last did; whether it did. Never while the queue
    /// is borrowed (a poll from inside the queue's own code: a result's `Deserialize`, say).
    fn look_if_due(&self) -> bool {
        let now = Instant::now();
        if now < self.next_look.get() {
            return self.advance_if_over();
        }
        let Ok(mut st) = self.state.try_borrow_mut() else { return false };
        st.pump(None);
        self.next_look.set(now + POLL_LOOK);
        self.looks.set(self.looks.get() + 1);
        true
    }

    /// Between looks: if the control block says the running batch is over (a shared-memory
    /// read, no system call), or nothing runs while calls are queued, does what a look does
    /// now (collect the batch, send the next); whether it did. Not counted as a look: it
    /// happens once per batch, not per poll, so a queue of many batches (calls of alternating
    /// functions) goes out at the pace of its workers, not one batch per [`POLL_LOOK`].
    /// Measured (`adversary_waits::calls_of_alternating_functions_go_out_at_once_under_polls_alone`,
    /// debug build, 2026-11-30): 300 one-call jobs polled only through `is_finished` took
    /// 2.4 s (forkserver) and 3.0 s (fork) with looks alone, 7-10 ms with this; a poll of a
    /// running call stays at 27.7 ns (`cargo bench --bench pool -- pool/pending_is_finished
    /// --warm-up-time 1 --measurement-time 2`; 28.1 ns before).
    fn advance_if_over(&self) -> bool {
        let Ok(mut st) = self.state.try_borrow_mut() else { return false };
        let over = match st.running {
            Some(_) => st.pool.job_done(),
            None => !st.queued.is_empty(),
        };
        if over {
            st.pump(None);
        }
        over
    }

    /// How many times polls of [`Pending::is_finished`] looked at the workers: at most one per
    /// 10 ms however often they poll (a poll of a finished call never looks; collecting a
    /// batch the control block says is over, and sending the next, is not counted: that
    /// happens once per batch). For tests and diagnostics.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue();
    /// let r = q.apply_async(|ms: u64| std::thread::sleep(std::time::Duration::from_millis(ms)), 50)?;
    /// let t = std::time::Instant::now();
    /// while !r.is_finished() {}
    /// assert!(q.poll_looks() <= 1 + t.elapsed().as_millis() as u64 / 10);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn poll_looks(&self) -> u64 {
        self.looks.get()
    }

    /// Queues the call `f(arg)` behind the others without publishing anything; returns its
    /// number. `arg` is serialized with no borrow of the queue held, so a user's `Serialize`
    /// that calls this queue queues its own call first instead of panicking on the borrow.
    fn queue_call<A, R>(&self, f: fn(A) -> R, arg: &A) -> Result<u64>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + 'static,
    {
        let code = (task_kernel::task_serial::<Plain<A, R>> as Trampoline as usize, f as usize);
        let (limit, next) = {
            let st = self.state.try_borrow().map_err(|_| INSIDE_THE_QUEUE)?;
            st.pool.check_running()?;
            (st.pool.max_task_bytes, st.next_id)
        };
        // A refusal names the number the call would have taken.
        let (_, bytes) = serialize_args::<A>([arg], limit, next as usize)?;
        let mut st = self.state.borrow_mut();
        st.pool.check_running()?;
        let id = st.next_id;
        st.next_id += 1;
        // One task per chunk, and a result's chunk is its index in the run (`Typed::harvest`):
        // a run never outgrows the chunks a job may have.
        let joins = st.queued.back().is_some_and(|r| r.code == code && r.ids.len() < MAX_CHUNKS);
        if !joins {
            st.queued.push_back(Run {
                code,
                ids: Vec::new(),
                offsets: vec![0],
                data: Vec::new(),
                publish: publish_run::<R>,
                fail: fail_as::<R>,
            });
        }
        let run = st.queued.back_mut().expect("pushed above");
        run.ids.push(id);
        run.data.extend_from_slice(&bytes);
        run.offsets.push(run.data.len() as u64);
        Ok(id)
    }
}

impl Drop for ApplyQueue<'_> {
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

/// A callback run in the parent with a call's result or error.
type Callback<'q, T> = Box<dyn FnOnce(&T) + 'q>;

/// A call's outcome on its way into its [`Pending`]'s `slot`, stored when this drops: after
/// the callback returns, or while a panicking callback unwinds.
struct Settled<'a, R> {
    slot: &'a RefCell<Option<Result<R>>>,
    outcome: Option<Result<R>>,
}

impl<R> Drop for Settled<'_, R> {
    fn drop(&mut self) {
        // The slot is borrowed only for moments, none of which can enclose a callback.
        if let Ok(mut slot) = self.slot.try_borrow_mut() {
            *slot = self.outcome.take();
        }
    }
}

/// One call of an [`ApplyQueue`] (Python's `AsyncResult` of `apply_async`). Its methods take
/// `&self`, so results kept in a `Vec` are read in any order, each as often as asked.
pub struct Pending<'q, 'p, R: 'static> {
    queue: &'q ApplyQueue<'p>,
    id: u64,
    outcome: RefCell<Option<Result<R>>>,
    callback: RefCell<Option<Callback<'q, R>>>,
    error_callback: RefCell<Option<Callback<'q, Error>>>,
}

impl<'q, R: 'static> Pending<'q, '_, R> {
    /// Python's `callback`: called once with the result, in this process, when the parent first
    /// sees the call succeed (in `is_ready`, `get`, or when this is dropped).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue();
    /// let seen = std::cell::Cell::new(0);
    /// q.apply_async(|x: u32| x * 2, 21)?.callback(|r: &u32| seen.set(*r)).get()?;
    /// assert_eq!(seen.get(), 42);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn callback(self, f: impl FnOnce(&R) + 'q) -> Self {
        *self.callback.borrow_mut() = Some(Box::new(f));
        self
    }

    /// Python's `error_callback`: called once with the error, in this process, when the parent
    /// first sees the call fail.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue();
    /// let failed = std::cell::Cell::new(false);
    /// let r = q.apply_async(|x: u32| 10 / x, 0)?.error_callback(|_e| failed.set(true));
    /// assert!(r.get().is_err() && failed.get());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn error_callback(self, f: impl FnOnce(&Error) + 'q) -> Self {
        *self.error_callback.borrow_mut() = Some(Box::new(f));
        self
    }

    /// Takes the call's outcome from the queue if it finished (looking whether the running job
    /// is over, or waiting for it with `wait`), and runs its callback the first time.
    fn settle(&self, wait: Option<Option<Instant>>) -> Result<bool> {
        if self.outcome.borrow().is_some() {
            return Ok(true);
        }
        let taken = {
            let mut st = self.queue.state.try_borrow_mut().map_err(|_| INSIDE_THE_QUEUE)?;
            if !st.finished.contains_key(&self.id) {
                if !st.knows(self.id) {
                    return Err(Error::ResultUnavailable {
                        // Neither queued, running nor waiting here: its outcome is on its
                        // way to this `Pending`, whose callback is running (`Settled`).
                        reason: "asked for from inside this call's own callback, which is given \
                                 the result itself; ask again after the callback returns",
                    });
                }
                st.pump(wait);
            }
            st.finished.remove(&self.id)
        };
        let Some(r) = taken else { return Ok(false) };
        let r = *r.downcast::<Result<R>>().expect("a call's result has the call's type");
        // The outcome is stored when the callback returns, or while it unwinds (a panic the
        // caller catches): no callback can lose it.
        let settled = Settled { slot: &self.outcome, outcome: Some(r) };
        match settled.outcome.as_ref().expect("stored on drop only") {
            Ok(v) => {
                let cb = self.callback.borrow_mut().take();
                if let Some(cb) = cb {
                    cb(v);
                }
            }
            Err(e) => {
                let cb = self.error_callback.borrow_mut().take();
                if let Some(cb) = cb {
                    cb(e);
                }
            }
        }
        drop(settled);
        Ok(true)
    }

    /// Whether the result is ready (Python's `ready()`), without waiting; an error (the result
    /// lost) reads as ready, for [`get`](Pending::get) to report ("Timed waits" in
    /// `src/pool/README.md`).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue();
    /// let r = q.apply_async(|x: u8| x, 1)?;
    /// while !r.is_ready() {}
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[doc(alias = "ready")]
    pub fn is_ready(&self) -> bool {
        self.settle(None).unwrap_or(true)
    }

    /// Whether the call has finished in its worker (done, failed or given up as lost), even
    /// while the rest of its batch runs: for a progress bar over one
    /// [`apply_async_batch`](ApplyQueue::apply_async_batch) job. It reads the finished flag of
    /// the call's task in the pool's shared control block: no system call, no wait, and it
    /// takes no result ([`is_ready`](Pending::is_ready) and [`get`](Pending::get) still see the
    /// call only once its whole job is over, when the results are read). True also once the
    /// result is taken or known lost.
    ///
    /// A call whose worker died, or ran past the pool's task timeout, is seen finished too,
    /// within about 10 ms, by a loop that polls only this: while a call is not finished, a poll
    /// at most every 10 ms (for the whole queue) does what [`is_ready`](Pending::is_ready)
    /// does to the queue (looks at the workers, gives up the lost call or retries it, collects
    /// a batch that is over and sends the next), so every such loop ends. Polls in between
    /// read the clock and the control block's count of finished calls; one that finds the
    /// running batch over (or nothing running while calls are queued) collects it and sends
    /// the next at once, so batches queued behind one another go out as fast as the workers
    /// finish them, not one per 10 ms.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue();
    /// let pending = q.apply_async_batch(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), [10, 20, 30])?;
    /// while !pending.iter().all(|p| p.is_finished()) {
    ///     let done = pending.iter().filter(|p| p.is_finished()).count();
    ///     eprintln!("{done}/3 done");
    ///     std::thread::sleep(Duration::from_millis(5));
    /// }
    /// assert!(pending[2].wait_timeout(Duration::from_secs(5)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        if self.outcome.borrow().is_some() || self.seen_finished() {
            return true;
        }
        // Not finished, as far as the control block says: its worker may have died or overrun
        // the task timeout, which only a look at the workers finds (rate-limited).
        self.queue.look_if_due() && self.seen_finished()
    }

    /// Whether the queue or the control block says the call finished, read without changing
    /// anything (see [`is_finished`](Pending::is_finished)).
    fn seen_finished(&self) -> bool {
        // Borrowed by the queue's own code only while this thread is inside it (a result's
        // `Deserialize`, say): then nothing is known to be finished yet.
        let Ok(st) = self.queue.state.try_borrow() else { return false };
        if st.finished.contains_key(&self.id) || !st.knows(self.id) {
            return true;
        }
        match &st.running {
            // Task `k` of the running job is call `ids[k]`, the ids consecutive (`knows`); the
            // pool's finished bits are this job's until the queue publishes the next one.
            Some((ids, _)) => ids
                .first()
                .and_then(|&first| self.id.checked_sub(first))
                .filter(|&k| k < ids.len() as u64)
                .is_some_and(|k| st.pool.ctl.is_done(k)),
            None => false,
        }
    }

    /// Waits at most `timeout` for the call's result to be ready (Python's `wait(timeout)`);
    /// whether it is. Unlike [`get_timeout`](Pending::get_timeout) it takes nothing, so a
    /// loop can wake every `timeout` (to draw a bar, say) and still see the end of the job at
    /// once: the parent sleeps until the job is over or the timeout passes, and no finished
    /// call of the job wakes it before. The pool's rule for timed waits (`src/pool/README.md`,
    /// "Timed waits"): an error (the pool gave up, the result was lost) reads as ready, and
    /// [`get`](Pending::get) reports it.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue();
    /// let r = q.apply_async(|x: u64| x + 1, 1)?;
    /// while !r.wait_timeout(Duration::from_millis(100)) {}
    /// assert!(r.is_ready());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = crate::sync::wait::deadline_after(timeout);
        loop {
            // An error means the result is lost: ready, as `is_ready` says, for `get` to tell.
            if self.settle(Some(deadline)).unwrap_or(true) {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
        }
    }
}

impl<R: Clone + 'static> Pending<'_, '_, R> {
    /// Waits for the call and returns its result (Python's `get()`); again on every call, as
    /// [`AsyncResult::get`](crate::pool::AsyncResult::get) does.
    ///
    /// # Errors
    ///
    /// The call's own error ([`Error::KernelPanicked`], [`Error::WorkerDied`],
    /// [`Error::TaskValue`], [`Error::TaskValueTooLarge`]), once; then
    /// [`Error::ResultUnavailable`]. [`Error::ResultUnavailable`] also, taking nothing, when
    /// called from a result's `Deserialize` or `Drop` while the queue collects a batch (the
    /// queue cannot be used there; `is_ready` reads that as ready, `is_finished` as not
    /// finished).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let q = pool.apply_queue();
    /// let r = q.apply_async(|x: u64| x + 1, 1)?;
    /// assert_eq!(r.get()?, 2);
    /// assert_eq!(r.get()?, 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get(&self) -> Result<R> {
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
    /// let q = pool.apply_queue();
    /// let r = q.apply_async(|x: u64| x + 1, 1)?;
    /// assert_eq!(r.get_timeout(Duration::from_secs(5))?, 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<R> {
        self.get_within(Some(timeout))
    }

    /// [`get`](Pending::get), waiting at most `timeout` (forever with `None`).
    fn get_within(&self, timeout: Option<Duration>) -> Result<R> {
        let deadline = timeout.and_then(crate::sync::wait::deadline_after);
        while !self.settle(Some(deadline))? {
            if let (Some(after), Some(d)) = (timeout, deadline)
                && Instant::now() >= d
            {
                return Err(Error::Timeout { what: "Pending::get_timeout", after });
            }
        }
        // The value is cloned under a shared borrow: a `Clone` that polls this call
        // (`is_finished`, `is_ready`) reads it, where a mutable borrow made the poll panic.
        match &*self.outcome.borrow() {
            Some(Ok(v)) => return Ok(v.clone()),
            Some(Err(Error::ResultUnavailable { reason })) => {
                return Err(Error::ResultUnavailable { reason });
            }
            _ => {}
        }
        let again = Error::ResultUnavailable {
            reason: "the call failed, and its error was already returned by get()",
        };
        match self.outcome.borrow_mut().replace(Err(again)) {
            Some(Err(e)) => Err(e),
            _ => unreachable!("an error: settled, and matched above"),
        }
    }
}

impl<R: 'static> Drop for Pending<'_, '_, R> {
    fn drop(&mut self) {
        let callbacks =
            self.callback.get_mut().is_some() || self.error_callback.get_mut().is_some();
        if callbacks && !std::thread::panicking() {
            // Callbacks still pending fire when the call ends, as in Python: wait for it (an
            // error means the call is lost, and there is nothing to call back with).
            while let Ok(false) = self.settle(Some(None)) {}
        }
        if let Ok(mut st) = self.queue.state.try_borrow_mut()
            && st.finished.remove(&self.id).is_none()
            && self.outcome.get_mut().is_none()
            && st.knows(self.id)
        {
            // Still queued or running: its outcome is dropped when it comes.
            st.abandoned.insert(self.id);
        }
    }
}
