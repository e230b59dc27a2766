//! Python's task API on the same engine: `apply`, `map`, `starmap`, `imap`, `imap_unordered`
//! and their `_async` forms, with Python's chunking defaults.
//!
//! A task call is one job whose iteration space is the task list: arguments go into shared
//! memory (the control block's 64 KiB scratch area when they fit, else a shared array), each
//! chunk of `chunksize` tasks is claimed like any chunk, and each result is written to its own
//! shared slot. Functions are `fn` pointers and arguments and results are `Pod`, so nothing of
//! the parent's heap is ever needed in a worker.

use std::marker::PhantomData;
use std::mem::{align_of, size_of, size_of_val};
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use super::control::{MAX_CHUNKS, SCRATCH_BYTES};
use super::job::JobHandle;
use super::kernel::{self, Trampoline};
use super::publish::{ArraySpec, JobSpec};
use super::state::Pool;
use crate::error::{Error, Result};
use crate::segment::Segment;
use crate::segment::header::{Kind, Layout, TypeDesc};
use crate::segment::options::ShmOptions;

/// A streaming job's handle: results are read from the pool as chunks finish.
type KeepHandle<'p> = JobHandle<'p, ()>;

/// Where a task job's results live.
enum Store {
    /// In the control block's scratch area, at this byte offset.
    Scratch(usize),
    /// In the pool's arena segment, at this byte offset.
    Arena(usize),
}

/// A task job's results: `n` values of `R`, written by workers, read by the parent only for
/// chunks whose done bit is set.
struct Results<R: Pod> {
    store: Store,
    n: usize,
    _r: PhantomData<R>,
}

impl<R: Pod> Results<R> {
    fn base(&self, pool: &Pool) -> *const R {
        match &self.store {
            Store::Scratch(off) => {
                // SAFETY: the offset was checked to fit the scratch area when staging.
                unsafe { pool.ctl.scratch_ptr().add(*off).cast::<R>() }
            }
            Store::Arena(off) => {
                let seg = pool.arena.as_ref().expect("the arena outlives the job using it");
                // SAFETY: the arena was sized to hold the results at `off` when staging, and is
                // replaced only while no job is in flight.
                unsafe { seg.data_ptr().as_ptr().add(*off).cast::<R>() }
            }
        }
    }

    /// Result `i`. The caller has seen the done bit of `i`'s chunk set (SeqCst), which orders
    /// the worker's write before this read; nothing writes the slot afterwards.
    fn read(&self, pool: &Pool, i: usize) -> R {
        assert!(i < self.n);
        debug_assert!(self.base(pool).is_aligned());
        // SAFETY: `i < n` and the store holds `n` aligned values of `R`; see above for why no
        // write races with this read.
        unsafe { self.base(pool).add(i).read() }
    }

    /// Every result (the job must be done).
    fn to_vec(&self, pool: &Pool) -> Vec<R> {
        (0..self.n).map(|i| self.read(pool, i)).collect()
    }
}

/// A staged task job: its spec and where its results will be.
struct Staged<R: Pod> {
    spec: JobSpec,
    results: Results<R>,
}

/// The most alignment a task argument or result type may have: the task arena's data starts on
/// a page boundary in every process that maps it (a mapping guarantees no more).
const MAX_TASK_ALIGN: usize = crate::segment::header::MAX_ALIGN;

/// One page of the task arena: its element type, so that the arena's data starts at a page
/// boundary (the header puts data at a multiple of the element's alignment) and regions at
/// multiples of any alignment up to [`MAX_TASK_ALIGN`] are aligned in every process.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct ArenaPage([u8; MAX_TASK_ALIGN]);

/// The staging layout of `n` tasks: byte offsets of the second arguments and the results, and
/// the bytes in all, each region starting at a multiple of `align` (a power of two) and of 64;
/// [`Error::TooLarge`] when a size does not fit in `usize` (zero-sized arguments let `n` be
/// anything).
fn staging_layout(
    n: usize,
    a_bytes: usize,
    b_bytes: usize,
    r_size: usize,
    align: usize,
) -> Result<(usize, usize, usize)> {
    let too_large = || Error::TooLarge { len: n, elem_size: r_size };
    let step = align.max(64);
    let r_bytes = n.checked_mul(r_size).ok_or_else(too_large)?;
    let b_off = a_bytes.checked_next_multiple_of(step).ok_or_else(too_large)?;
    let r_off = b_bytes
        .checked_next_multiple_of(step)
        .and_then(|b| b_off.checked_add(b))
        .ok_or_else(too_large)?;
    let end = r_off.checked_add(r_bytes).ok_or_else(too_large)?;
    Ok((b_off, r_off, end))
}

/// [`Error::InvalidArgument`] unless a task argument or result type of alignment `align` can
/// be staged.
fn check_task_align(align: usize) -> Result<()> {
    crate::segment::header::check_align(
        "task argument or result type",
        "the type",
        align,
        "use a less aligned type, or put the data in a SharedArray and pass indices",
    )
}

impl Pool {
    /// Puts the arguments in shared memory and describes the job. No job may be in flight.
    fn stage<A: Pod, B: Pod, R: Pod>(
        &mut self,
        trampoline: usize,
        kernel: usize,
        a: &[A],
        b: Option<&[B]>,
        chunksize: usize,
    ) -> Result<Staged<R>> {
        self.check_running()?;
        let align = align_of::<A>().max(align_of::<B>()).max(align_of::<R>());
        check_task_align(align)?;
        self.finish_active()?;
        let n = a.len();
        let chunk_size = chunksize.max(1).max(n.div_ceil(MAX_CHUNKS));
        let (a_bytes, b_bytes) = (size_of_val(a), b.map_or(0, size_of_val));
        let (b_off, r_off, end) = staging_layout(n, a_bytes, b_bytes, size_of::<R>(), align)?;
        // The scratch area is 8-aligned; the arena's data page-aligned; regions start at
        // multiples of `align` (and of 64).
        let fits = end <= SCRATCH_BYTES && align <= 8;
        let mut spec = JobSpec {
            trampoline,
            kernel,
            len: n,
            chunk_size,
            radius: 0,
            arrays: Default::default(),
        };
        let base = if fits {
            self.ctl.scratch_ptr()
        } else {
            let need = end.max(1);
            let page = size_of::<ArenaPage>();
            if self.arena.as_ref().is_none_or(|seg| seg.len().saturating_mul(page) < need) {
                let pages = need
                    .div_ceil(page)
                    .checked_next_power_of_two()
                    .ok_or(Error::TooLarge { len: n, elem_size: size_of::<R>() })?
                    .max(256);
                let layout = Layout::new(Kind::Array, TypeDesc::of::<ArenaPage>(), pages)?;
                let seg = Segment::create(&ShmOptions::new(), &layout)?;
                seg.publish();
                self.arena = Some(seg);
            }
            self.arena.as_ref().expect("set above").data_ptr().as_ptr()
        };
        // SAFETY: no job is in flight (finish_active above), so no worker reads the scratch area
        // or the arena; the regions lie inside it (`fits`, or the arena was sized to `need`),
        // and the sources are plain `Pod` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(a.as_ptr().cast::<u8>(), base, a_bytes);
            if let Some(b) = b {
                std::ptr::copy_nonoverlapping(b.as_ptr().cast::<u8>(), base.add(b_off), b_bytes);
            }
        }
        let region = |off, elem| match &self.arena {
            Some(seg) if !fits => ArraySpec::Region(seg.handle(), off, n, elem),
            _ => ArraySpec::Scratch(off, n, elem),
        };
        spec.arrays[0] = region(0, size_of::<A>());
        if b.is_some() {
            spec.arrays[1] = region(b_off, size_of::<B>());
        }
        spec.arrays[2] = region(r_off, size_of::<R>());
        let store = if fits { Store::Scratch(r_off) } else { Store::Arena(r_off) };
        Ok(Staged { spec, results: Results { store, n, _r: PhantomData } })
    }

    /// Publishes a staged job and returns a handle whose output is `finish(results)`.
    fn launch<R: Pod, T: 'static>(
        &mut self,
        staged: Staged<R>,
        finish: fn(&Results<R>, &Pool) -> T,
    ) -> Result<JobHandle<'_, T>> {
        let Staged { spec, results } = staged;
        let job = if spec.len > 0 { self.publish(&spec)? } else { 0 };
        Ok(JobHandle::new(self, job, Box::new(move |pool: &Pool| finish(&results, pool))))
    }

    fn default_map_chunksize(&self, n: usize) -> usize {
        n.div_ceil(4 * self.workers()).max(1)
    }

    /// Calls `f(arg)` in a worker and returns its result (Python's `apply`).
    ///
    /// # Errors
    ///
    /// [`Error::KernelPanicked`] if `f` panicked, [`Error::WorkerDied`] if the worker died.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// assert_eq!(pool.apply(|x: u64| x * x, 12)?, 144);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply<A: Pod, R: Pod>(&mut self, f: fn(A) -> R, arg: A) -> Result<R> {
        self.apply_async(f, arg)?.get()
    }

    /// [`apply`](Pool::apply) in the background.
    ///
    /// # Errors
    ///
    /// [`Error::PoolNotRunning`] (or [`Error::PoolGaveUp`] with the reason, if the pool gave
    /// up), [`Error::InvalidArgument`] if `A` or `R` is aligned to more than 4096 bytes, or OS
    /// errors staging the argument. (Every task call has these.)
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.apply_async(|x: f64| x.sqrt(), 2.0)?;
    /// assert!((r.get()? - 1.4142).abs() < 1e-3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply_async<A: Pod, R: Pod>(
        &mut self,
        f: fn(A) -> R,
        arg: A,
    ) -> Result<AsyncResult<'_, R>> {
        let staged = self.stage::<A, (), R>(
            kernel::task::<A, R> as Trampoline as usize,
            f as usize,
            &[arg],
            None,
            1,
        )?;
        Ok(AsyncResult::new(self.launch(staged, |r, p| r.read(p, 0))?))
    }

    /// `f` over every argument, results in order (Python's `map`). `chunksize` defaults to
    /// Python's `ceil(len / (4 * workers))`.
    ///
    /// # Errors
    ///
    /// The first failure recorded (in time, which may not be the lowest task index):
    /// [`Error::KernelPanicked`] (its message names the task index) or [`Error::WorkerDied`].
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let squares = pool.map(|x: u32| x * x, &[1, 2, 3], None)?;
    /// assert_eq!(squares, [1, 4, 9]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map<A: Pod, R: Pod>(
        &mut self,
        f: fn(A) -> R,
        args: &[A],
        chunksize: Option<usize>,
    ) -> Result<Vec<R>> {
        self.map_async(f, args, chunksize)?.get()
    }

    /// [`map`](Pool::map) in the background.
    ///
    /// # Errors
    ///
    /// As for [`apply_async`](Pool::apply_async).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.map_async(|x: i32| -x, &[1, 2], Some(1))?;
    /// assert_eq!(r.get()?, [-1, -2]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_async<A: Pod, R: Pod>(
        &mut self,
        f: fn(A) -> R,
        args: &[A],
        chunksize: Option<usize>,
    ) -> Result<AsyncResult<'_, Vec<R>>> {
        let cs = chunksize.unwrap_or_else(|| self.default_map_chunksize(args.len()));
        let staged = self.stage::<A, (), R>(
            kernel::task::<A, R> as Trampoline as usize,
            f as usize,
            args,
            None,
            cs,
        )?;
        Ok(AsyncResult::new(self.launch(staged, Results::to_vec)?))
    }

    /// `f(a, b)` for every pair, results in order (Python's `starmap`).
    ///
    /// # Errors
    ///
    /// As for [`map`](Pool::map).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let sums = pool.starmap(|a: u8, b: u16| a as u32 + b as u32, &[(1, 2), (3, 4)], None)?;
    /// assert_eq!(sums, [3, 7]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn starmap<A: Pod, B: Pod, R: Pod>(
        &mut self,
        f: fn(A, B) -> R,
        args: &[(A, B)],
        chunksize: Option<usize>,
    ) -> Result<Vec<R>> {
        self.starmap_async(f, args, chunksize)?.get()
    }

    /// [`starmap`](Pool::starmap) in the background.
    ///
    /// # Errors
    ///
    /// As for [`map_async`](Pool::map_async).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.starmap_async(|a: u8, b: u8| a.max(b), &[(1, 2), (5, 4)], None)?;
    /// assert_eq!(r.get()?, [2, 5]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn starmap_async<A: Pod, B: Pod, R: Pod>(
        &mut self,
        f: fn(A, B) -> R,
        args: &[(A, B)],
        chunksize: Option<usize>,
    ) -> Result<AsyncResult<'_, Vec<R>>> {
        let cs = chunksize.unwrap_or_else(|| self.default_map_chunksize(args.len()));
        let (a, b): (Vec<A>, Vec<B>) = args.iter().copied().unzip();
        let tramp = kernel::task2::<A, B, R> as Trampoline as usize;
        let staged = self.stage::<A, B, R>(tramp, f as usize, &a, Some(&b), cs)?;
        Ok(AsyncResult::new(self.launch(staged, Results::to_vec)?))
    }

    /// `f` over every argument, yielding results in order as they become available (Python's
    /// `imap`; `chunksize` defaults to 1).
    ///
    /// # Errors
    ///
    /// As for [`apply_async`](Pool::apply_async). Each item is a `Result`:
    /// a task whose chunk failed yields the error.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let args: Vec<u64> = (0..100).collect();
    /// for (i, r) in pool.imap(|x: u64| x + 1, &args, None)?.enumerate() {
    ///     assert_eq!(r?, i as u64 + 1);
    /// }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn imap<A: Pod, R: Pod>(
        &mut self,
        f: fn(A) -> R,
        args: &[A],
        chunksize: Option<usize>,
    ) -> Result<IMap<'_, R>> {
        let staged = self.stage::<A, (), R>(
            kernel::task::<A, R> as Trampoline as usize,
            f as usize,
            args,
            None,
            chunksize.unwrap_or(1),
        )?;
        let (n, cs) = (staged.results.n, staged.spec.chunk_size);
        let (handle, results) = self.launch_streaming(staged)?;
        Ok(IMap { handle, results, n, cs, next: 0, error_given: false })
    }

    /// Like [`imap`](Pool::imap), yielding `(index, result)` in the order chunks finish
    /// (Python's `imap_unordered`, with the index added so callers can place results).
    ///
    /// # Errors
    ///
    /// As for [`imap`](Pool::imap).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let args: Vec<u64> = (0..100).collect();
    /// let mut total = 0;
    /// for r in pool.imap_unordered(|x: u64| x * 2, &args, None)? {
    ///     total += r?.1;
    /// }
    /// assert_eq!(total, 9900);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn imap_unordered<A: Pod, R: Pod>(
        &mut self,
        f: fn(A) -> R,
        args: &[A],
        chunksize: Option<usize>,
    ) -> Result<IMapUnordered<'_, R>> {
        let staged = self.stage::<A, (), R>(
            kernel::task::<A, R> as Trampoline as usize,
            f as usize,
            args,
            None,
            chunksize.unwrap_or(1),
        )?;
        let (n, cs) = (staged.results.n, staged.spec.chunk_size);
        let chunks = n.div_ceil(cs);
        let (handle, results) = self.launch_streaming(staged)?;
        Ok(IMapUnordered {
            handle,
            results,
            n,
            cs,
            yielded: vec![0; chunks.div_ceil(64)],
            low: 0,
            current: None,
            left: chunks,
            error_given: false,
        })
    }

    fn launch_streaming<R: Pod>(
        &mut self,
        staged: Staged<R>,
    ) -> Result<(KeepHandle<'_>, Results<R>)> {
        let Staged { spec, results } = staged;
        let job = if spec.len > 0 { self.publish(&spec)? } else { 0 };
        Ok((JobHandle::new(self, job, Box::new(|_: &Pool| ())), results))
    }
}

/// A callback run in the parent with a result or an error.
type Callback<'p, T> = Box<dyn FnOnce(&T) + 'p>;

/// The result of an `_async` task call (Python's `AsyncResult`).
///
/// Dropping it waits for the job to finish.
///
/// ```no_run
/// use std::time::Duration;
/// let mut pool = shmpool::Pool::new(2)?;
/// let mut r = pool.map_async(|x: u32| x + 1, &[1, 2, 3], None)?;
/// assert!(r.wait_timeout(Duration::from_secs(5))?);
/// assert!(r.is_ready());
/// assert!(r.is_successful()?);
/// assert_eq!(r.get()?, [2, 3, 4]);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct AsyncResult<'p, T> {
    handle: JobHandle<'p, T>,
    outcome: Option<Result<()>>,
    value: Option<T>,
    callback: Option<Callback<'p, T>>,
    error_callback: Option<Callback<'p, Error>>,
}

impl<'p, T> AsyncResult<'p, T> {
    fn new(handle: JobHandle<'p, T>) -> AsyncResult<'p, T> {
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
    /// A replacement worker could not be started (the pool is then terminated).
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
    /// whether the result is ready.
    ///
    /// # Errors
    ///
    /// As for [`wait`](AsyncResult::wait).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.apply_async(|x: u8| x, 1)?;
    /// assert!(r.wait_timeout(Duration::from_secs(5))?);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<bool> {
        self.wait_deadline(Instant::now().checked_add(timeout))
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
        let outcome = self.handle.outcome();
        match &outcome {
            Ok(()) => {
                if let Some(cb) = self.callback.take() {
                    self.value = self.handle.take_output();
                    if let Some(v) = &self.value {
                        cb(v);
                    }
                }
            }
            Err(e) => {
                if let Some(cb) = self.error_callback.take() {
                    cb(e);
                }
            }
        }
        self.outcome = Some(outcome);
        Ok(true)
    }

    /// Chunks of tasks finished so far, and chunks in all (for progress bars).
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

    /// Whether the result is ready (Python's `ready()`).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.apply_async(|x: u8| x, 1)?;
    /// while !r.is_ready() {}
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[doc(alias = "ready")]
    pub fn is_ready(&mut self) -> bool {
        self.outcome.is_some()
            || (self.handle.is_ready() && self.wait_timeout(Duration::ZERO).unwrap_or(false))
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

    /// Waits for the call and returns its result, or the error that ended it (Python's
    /// `get()`). The result (or error) is handed out once.
    ///
    /// # Errors
    ///
    /// The call's own error, or [`Error::ResultUnavailable`] if already taken.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let mut r = pool.apply_async(|x: u64| x * 3, 5)?;
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
        if !self.wait_timeout(timeout)? {
            return Err(Error::Timeout { what: "AsyncResult::get_timeout", after: timeout });
        }
        self.take()
    }

    /// Hands out the result, or the error, of a call that is over: once.
    fn take(&mut self) -> Result<T> {
        match self.outcome.as_mut().map(|o| std::mem::replace(o, Ok(()))) {
            Some(Err(e)) => {
                self.outcome = Some(Err(Error::ResultUnavailable {
                    reason: "the call's error was already returned by get()",
                }));
                Err(e)
            }
            _ => self.value.take().or_else(|| self.handle.take_output()).ok_or(
                Error::ResultUnavailable {
                    reason: "the result was already taken by an earlier get()",
                },
            ),
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

/// Ordered streaming results of [`Pool::imap`].
pub struct IMap<'p, R: Pod> {
    handle: KeepHandle<'p>,
    results: Results<R>,
    n: usize,
    cs: usize,
    next: usize,
    error_given: bool,
}

/// The error for a task of a failed chunk: [`Error::WorkerDied`] if its worker died; else the
/// job's recorded panic for the first one, a pointer to it for later ones.
fn chunk_error(pool: &Pool, chunk: u64, first: &mut bool) -> Error {
    if let Some(e) = pool.lost_chunk(chunk) {
        return e;
    }
    match pool.ctl.read_error() {
        Some((_, c, pid, message)) if c == chunk && !*first => {
            *first = true;
            Error::KernelPanicked { chunk, pid, message }
        }
        _ => Error::KernelPanicked {
            chunk,
            pid: 0,
            message: "this chunk's task panicked too; only the first panic's message is kept"
                .to_string(),
        },
    }
}

impl<R: Pod> Iterator for IMap<'_, R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        if self.next >= self.n {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let chunk = (i / self.cs) as u64;
        if let Err(e) = self.handle.wait_until(None, |p| p.ctl.is_done(chunk)) {
            self.next = self.n;
            return Some(Err(e));
        }
        let pool = self.handle.pool();
        if !pool.ctl.is_done(chunk) {
            self.next = self.n;
            return Some(Err(pool.stopped_error()));
        }
        if pool.ctl.is_failed(chunk) {
            return Some(Err(chunk_error(pool, chunk, &mut self.error_given)));
        }
        Some(Ok(self.results.read(pool, i)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.n - self.next, Some(self.n - self.next))
    }
}

/// Streaming results of [`Pool::imap_unordered`]: `(index, result)` as chunks finish.
pub struct IMapUnordered<'p, R: Pod> {
    handle: KeepHandle<'p>,
    results: Results<R>,
    n: usize,
    cs: usize,
    /// Chunks already handed out, one bit each.
    yielded: Vec<u64>,
    /// Words of `yielded` below this are full.
    low: usize,
    /// The chunk being handed out: next index, end.
    current: Option<(usize, usize)>,
    left: usize,
    error_given: bool,
}

/// Finds a finished chunk not yet handed out, and marks it handed out.
fn take_done(pool: &Pool, yielded: &mut [u64], low: &mut usize, chunks: usize) -> Option<usize> {
    while *low < yielded.len() && yielded[*low] == u64::MAX {
        *low += 1;
    }
    for (w, y) in yielded.iter_mut().enumerate().skip(*low) {
        let fresh = pool.ctl.done_bits[w].load(SeqCst) & !*y;
        if fresh != 0 {
            let c = w * 64 + fresh.trailing_zeros() as usize;
            if c < chunks {
                *y |= 1 << (c % 64);
                return Some(c);
            }
        }
    }
    None
}

impl<R: Pod> Iterator for IMapUnordered<'_, R> {
    type Item = Result<(usize, R)>;

    fn next(&mut self) -> Option<Result<(usize, R)>> {
        loop {
            if let Some((i, end)) = self.current {
                if i < end {
                    self.current = Some((i + 1, end));
                    return Some(Ok((i, self.results.read(self.handle.pool(), i))));
                }
                self.current = None;
            }
            if self.left == 0 {
                return None;
            }
            let chunks = self.n.div_ceil(self.cs);
            let pool = self.handle.pool();
            match take_done(pool, &mut self.yielded, &mut self.low, chunks) {
                Some(c) => {
                    self.left -= 1;
                    if pool.ctl.is_failed(c as u64) {
                        return Some(Err(chunk_error(pool, c as u64, &mut self.error_given)));
                    }
                    self.current = Some((c * self.cs, ((c + 1) * self.cs).min(self.n)));
                }
                None => {
                    let (yielded, low) = (&self.yielded, self.low);
                    let ok = self.handle.wait_until(None, |p| {
                        p.ctl.done_bits[low..yielded.len()]
                            .iter()
                            .zip(&yielded[low..])
                            .any(|(d, y)| d.load(SeqCst) & !y != 0)
                    });
                    match ok {
                        Err(e) => {
                            self.left = 0;
                            return Some(Err(e));
                        }
                        Ok(_) if self.handle.terminated() => {
                            // Terminated under us: nothing more will finish.
                            self.left = 0;
                            return Some(Err(self.handle.pool().stopped_error()));
                        }
                        Ok(_) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_sizes_that_overflow_are_too_large() {
        // Zero-sized arguments let a task list be as long as `usize` allows.
        assert!(matches!(staging_layout(usize::MAX, 0, 0, 8, 8), Err(Error::TooLarge { .. })));
        assert!(matches!(staging_layout(usize::MAX / 8, 64, 0, 8, 8), Err(Error::TooLarge { .. })));
        assert!(matches!(staging_layout(4, usize::MAX - 10, 0, 8, 8), Err(Error::TooLarge { .. })));
        assert_eq!(staging_layout(3, 24, 6, 8, 8).unwrap(), (64, 128, 152));
    }

    #[test]
    fn regions_start_at_multiples_of_the_alignment() {
        // Three 128-aligned arguments of 128 bytes; results of 256 bytes, 256-aligned.
        assert_eq!(staging_layout(3, 384, 0, 256, 256).unwrap(), (512, 512, 512 + 768));
        assert_eq!(staging_layout(1, 4096, 4096, 4096, 4096).unwrap(), (4096, 8192, 12288));
        assert!(check_task_align(4096).is_ok());
        let e = check_task_align(8192).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument { reason, .. } if reason.contains("8192")),
            "{e}"
        );
        assert_eq!(std::mem::align_of::<ArenaPage>(), MAX_TASK_ALIGN);
    }
}
