//! The pool: worker processes (started by the forkserver by default, or forked or spawned) that
//! run kernels in place on chunks of shared arrays.
//!
//! One file per concept: [`builder`] (configuration), [`control`] (the shared control block and
//! job descriptor), [`worker`] (the worker loop and its single start step), [`kernel`]
//! (type-erased trampolines), [`failure`] (waiting for a job and noticing dead workers),
//! [`parallel`] (the data-parallel operations), [`job`] (the asynchronous job handle).
//! `README.md` beside this file explains the protocol.

pub(crate) mod anon;
pub(crate) mod builder;
pub(crate) mod code;
pub(crate) mod control;
pub(crate) mod failure;
pub(crate) mod job;
pub(crate) mod kernel;
pub(crate) mod liveness;
pub(crate) mod parallel;
pub(crate) mod tasks;
pub(crate) mod worker;

use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};
use std::time::{Duration, Instant};

use anon::AnonBox;
use control::{CLOSED, CLOSING, ControlBlock, ERR_NONE, MAX_ARRAYS, RUNNING, TERMINATING, pack};
use failure::{Active, WakePipe};
use liveness::ServerDeath;
pub(crate) use liveness::WorkerProc;
use worker::WorkerConfig;

use crate::error::{Error, Result};
use crate::process::context::StartMethod;
use crate::segment::handle::SegmentHandle;
use crate::sys;

pub use builder::PoolBuilder;
pub use job::JobHandle;
pub use tasks::{AsyncResult, IMap, IMapUnordered};

/// A pool of worker processes that run `fn` kernels in place on chunks of
/// [`SharedArray`](crate::SharedArray)s. Only chunk indices travel between processes. Workers
/// are started by the forkserver by default ([`StartMethod::default`]): a worker starts and is
/// replaced in about a millisecond however large this process is, and it works from a
/// multi-threaded process (this doctest runs on a test harness thread).
/// [`PoolBuilder::start_method`] picks fork (fastest in a small, single-threaded process: it
/// copies the page tables of this process's private memory, ~20 ms per GiB per worker here, and
/// as much again when the worker exits) or spawn instead; `docs/benchmarks.md` has the figures.
///
/// ```
/// use shmpool::{Pool, SharedArray};
///
/// let mut pool = Pool::new(2)?;
/// let mut a = SharedArray::<f64>::from_fn(1 << 20, |i| i as f64)?;
/// pool.for_each_chunk(&mut a, |chunk| chunk.iter_mut().for_each(|x| *x = *x * 2.0 + 1.0))?;
/// assert_eq!(a[3], 7.0);
/// let sum = pool.map_reduce(&a, |c| c.iter().sum::<f64>(), |x, y| x + y)?;
/// assert!(sum > 0.0);
/// # drop(pool);
/// # shmpool::shutdown_forkserver()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
///
/// Dropping the pool terminates it: every worker is killed and reaped.
///
/// A pool answers only to the process that created it: in a forked child that got a copy of it
/// (a [`scope`](crate::scope) child capturing `&mut pool`, say), every operation returns
/// [`Error::PoolNotOwned`] and dropping the copy leaves the workers alone.
///
/// Workers exit when this process dies (`PR_SET_PDEATHSIG` when forked from the main thread, the
/// crate's alive pipe otherwise, and a `getppid()` check whenever they wake). A worker's death
/// wakes a parent waiting for a job at once (it sleeps on the workers' pidfds, or the
/// forkserver's reports), and is otherwise noticed when the parent next waits for or polls a
/// job; the worker is replaced then. Code elsewhere in the process must not reap the pool's
/// children (`waitpid(-1)`).
///
/// Workers keep none of the parent's descriptors but stdio: right after the fork every other
/// descriptor the parent had open is pointed at `/dev/null` in the worker, so a pipe or socket
/// made before the pool still reports its peer gone when the parent drops its end. (Forkserver
/// and spawn workers never get them in the first place.)
///
/// Under the forkserver start method the server outlives the pool (the next pool or forkserver
/// child reuses it) and ends with this process; call
/// [`shutdown_forkserver`](crate::shutdown_forkserver) after dropping the pool to end it
/// sooner.
pub struct Pool {
    ctl: AnonBox<ControlBlock>,
    slots: Vec<WorkerProc>,
    cfg: WorkerConfig,
    name: String,
    retries: u32,
    chunk_size: Option<usize>,
    allow_threads: bool,
    /// How workers (and their replacements) are started.
    method: StartMethod,
    /// The creating process: the only one whose calls the pool obeys.
    parent_pid: u32,
    state: PoolState,
    next_job: u32,
    /// Jobs published so far; names the descriptor's contents for the workers' mapping cache
    /// (64 bits: never repeats, unlike job ids).
    generation: u64,
    active: Option<Active>,
    /// Workers in a row that died before finishing the initializer.
    early_deaths: u32,
    /// Why the pool gave up, if it did: (pid, how), reported as `Error::PoolGaveUp` by every
    /// later call and by every result still pending.
    gave_up: Option<(u32, String)>,
    /// The last forkserver death seen, with its cause (`liveness.rs`).
    server_death: ServerDeath,
    /// Task arguments and results too big for the scratch area, reused from call to call.
    arena: Option<crate::segment::Segment>,
    /// Through which workers wake the parent when it sleeps (`failure.rs`).
    wake: WakePipe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoolState {
    Running,
    Closed,
    Terminated,
}

/// What the parent publishes for one job.
pub(crate) struct JobSpec {
    pub(crate) trampoline: usize,
    pub(crate) kernel: usize,
    pub(crate) len: usize,
    pub(crate) chunk_size: usize,
    pub(crate) radius: usize,
    pub(crate) arrays: [ArraySpec; MAX_ARRAYS],
}

/// Where one array of a job lives.
#[derive(Default)]
pub(crate) enum ArraySpec {
    /// No array in this position.
    #[default]
    None,
    /// A shared array segment, with the number of elements the job covers.
    Handle(SegmentHandle, usize),
    /// A region of the control block's scratch area: byte offset, elements, element size.
    Scratch(usize, usize, usize),
    /// A region of a byte segment (the task arena): byte offset, elements, element size.
    Region(SegmentHandle, usize, usize, usize),
}

impl Pool {
    /// A pool of `n` workers with default settings.
    ///
    /// # Errors
    ///
    /// [`Error::PoolSize`] when `n` is 0, [`Error::SpawnUnavailable`] when this program cannot
    /// be re-executed for the forkserver (see [`PoolBuilder::start_method`]).
    ///
    /// ```no_run
    /// let pool = shmpool::Pool::new(2)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new(n: usize) -> Result<Pool> {
        PoolBuilder::new().workers(n).build()
    }

    /// A builder for the other settings.
    ///
    /// ```no_run
    /// let pool = shmpool::Pool::builder().workers(2).name("demo").build()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    fn start(
        n: usize,
        name: String,
        cfg: WorkerConfig,
        retries: u32,
        chunk_size: Option<usize>,
        (method, allow_threads): (StartMethod, bool),
    ) -> Result<Pool> {
        let ctl = if method == StartMethod::Fork {
            // An anonymous shared mapping, not a memfd: the workers inherit it through fork, and
            // no other process can open it (README.md, "Who can write the control block").
            // SAFETY: an all-zero `ControlBlock` (atomics and plain bytes only) is a valid value.
            unsafe { AnonBox::<ControlBlock>::zeroed()? }
        } else {
            // Workers that are not forks of this process open it through `/proc/<pid>/fd`.
            if let Some(init) = cfg.initializer {
                crate::process::entry::check_in_executable(
                    init as usize,
                    "the pool's initializer",
                )?;
            }
            // SAFETY: as above.
            unsafe { AnonBox::<ControlBlock>::zeroed_memfd("shmpool-pool-control")? }
        };
        let wake = WakePipe::new()?;
        ctl.nonce.store(sys::proc::random_u64(), Relaxed);
        ctl.cursor.store(pack(0, CLOSED), Relaxed);
        ctl.state.store(RUNNING, Relaxed);
        for w in &ctl.workers {
            w.held.store(control::NOTHING, Relaxed);
        }
        let mut pool = Pool {
            ctl,
            slots: Vec::with_capacity(n),
            cfg,
            name,
            retries,
            chunk_size,
            allow_threads,
            method,
            parent_pid: sys::proc::getpid(),
            state: PoolState::Running,
            next_job: 0,
            generation: 0,
            active: None,
            early_deaths: 0,
            gave_up: None,
            server_death: None,
            arena: None,
            wake,
        };
        for slot in 0..n {
            // On failure `pool` drops here, which kills and reaps the workers already started.
            let w = worker::start(&pool, slot)?;
            pool.slots.push(w);
        }
        Ok(pool)
    }

    /// Number of worker processes.
    ///
    /// ```no_run
    /// assert_eq!(shmpool::Pool::new(3)?.workers(), 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn workers(&self) -> usize {
        self.slots.len()
    }

    /// How the pool starts its workers (see [`PoolBuilder::start_method`]).
    ///
    /// ```no_run
    /// let pool = shmpool::Pool::new(2)?;
    /// assert_eq!(pool.start_method(), shmpool::StartMethod::ForkServer);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// The pool's name.
    ///
    /// ```no_run
    /// assert_eq!(shmpool::Pool::builder().name("x").build()?.name(), "x");
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pids of the live workers, in slot order (a replaced worker's slot shows the new pid).
    /// A worker that has ended is left out at once, even before the pool notices and replaces
    /// it (which it does while it waits for or polls a job, or publishes the next one).
    ///
    /// ```no_run
    /// let pool = shmpool::Pool::new(2)?;
    /// assert_eq!(pool.worker_pids().len(), 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn worker_pids(&self) -> Vec<u32> {
        self.slots.iter().filter(|w| w.running()).map(|w| w.pid).collect()
    }

    /// Sets the chunk size (elements per chunk) for later data-parallel jobs; `None` restores
    /// the default. (Task calls take their own `chunksize`.)
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// pool.set_chunk_size(Some(1024));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn set_chunk_size(&mut self, n: Option<usize>) {
        self.chunk_size = n.map(|n| n.max(1));
    }

    /// Stops taking work; workers exit once idle. Follow with [`join`](Pool::join).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// pool.close();
    /// pool.join()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn close(&mut self) {
        if self.check_owner().is_err() {
            return; // a forked copy: the workers are not ours to stop
        }
        if self.state == PoolState::Running {
            let _ = self.finish_active();
            self.state = PoolState::Closed;
            self.ctl.state.store(CLOSING, SeqCst);
            self.ctl.wake_workers();
        }
    }

    /// Stops at once: kills every worker (SIGKILL) and reaps it. Work in flight is abandoned;
    /// an unfinished job reports an error.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// pool.terminate();
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn terminate(&mut self) {
        if self.state == PoolState::Terminated || self.check_owner().is_err() {
            // Already done, or a forked copy: the workers are not ours to kill.
            return;
        }
        self.state = PoolState::Terminated;
        self.ctl.state.store(TERMINATING, SeqCst);
        self.ctl.wake_workers();
        for w in &self.slots {
            w.kill();
        }
        for w in &mut self.slots {
            w.reap();
        }
    }

    /// Waits for every worker to exit, after [`close`](Pool::close) or
    /// [`terminate`](Pool::terminate).
    ///
    /// # Errors
    ///
    /// [`Error::PoolStillRunning`] if neither was called, [`Error::PoolNotOwned`] outside the
    /// creating process.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// assert!(pool.join().is_err()); // still running
    /// pool.close();
    /// pool.join()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn join(&mut self) -> Result<()> {
        match self.join_timeout(Duration::MAX)? {
            true => Ok(()),
            false => unreachable!("an unbounded join returns only when every worker exited"),
        }
    }

    /// Like [`join`](Pool::join), waiting at most `timeout`; `Ok(false)` if some worker still
    /// runs then.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// pool.close();
    /// assert!(pool.join_timeout(std::time::Duration::from_secs(5))?);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<bool> {
        self.check_owner()?;
        if self.state == PoolState::Running {
            return Err(Error::PoolStillRunning);
        }
        let deadline = Instant::now().checked_add(timeout);
        loop {
            for w in &mut self.slots {
                w.try_exit(&mut self.server_death)?;
            }
            if self.slots.iter().all(|w| !w.alive) {
                return Ok(true);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(false);
            }
            // Until a worker ends (its exit descriptor), or a slice where one has none.
            let nap = self.nap();
            self.sleep(deadline.map_or(nap, |d| nap.min(d - now)));
        }
    }

    /// [`Error::PoolNotOwned`] unless this is the process that created the pool. Every entry
    /// point that touches the workers or the control block checks this first: a forked copy of
    /// the pool shares the control block and the workers, but not the parent's bookkeeping
    /// (job ids, the job in flight, which workers are its children).
    pub(crate) fn check_owner(&self) -> Result<()> {
        let pid = sys::proc::getpid();
        if pid == self.parent_pid {
            Ok(())
        } else {
            Err(Error::PoolNotOwned { pid, owner: self.parent_pid })
        }
    }

    pub(crate) fn check_running(&self) -> Result<()> {
        self.check_owner()?;
        match self.state {
            PoolState::Running => Ok(()),
            PoolState::Closed => Err(Error::PoolNotRunning { state: "closed" }),
            PoolState::Terminated => Err(self.stopped_error()),
        }
    }

    /// The error for work that cannot run because the pool was terminated: why the pool gave
    /// up, if it did (the same report every time), else [`Error::PoolNotRunning`].
    pub(crate) fn stopped_error(&self) -> Error {
        match &self.gave_up {
            Some((pid, how)) => Error::PoolGaveUp { pid: *pid, how: how.clone() },
            None => Error::PoolNotRunning { state: "terminated" },
        }
    }

    /// Gives up: records why (`pid`, `how`: the words after "child process PID"), for every
    /// later call and pending result, and terminates the pool.
    pub(crate) fn give_up(&mut self, pid: u32, how: String) {
        if self.gave_up.is_none() && self.state != PoolState::Terminated {
            self.gave_up = Some((pid, how));
        }
        self.terminate();
    }

    /// The number of chunks `spec` makes.
    pub(crate) fn chunks_of(len: usize, chunk_size: usize) -> usize {
        len.div_ceil(chunk_size.max(1))
    }

    /// Publishes a job (after the previous one, if any, finished). Returns its id.
    pub(crate) fn publish(&mut self, spec: &JobSpec) -> Result<u32> {
        self.check_running()?;
        self.finish_active()?;
        self.check_workers()?;
        if self.method != StartMethod::Fork {
            // A worker that is not a fork of this process finds code by its offset from an
            // anchor, which names the same code only inside the executable (not a shared
            // library mapped elsewhere there).
            use crate::process::entry::check_in_executable;
            check_in_executable(spec.trampoline, "the job's trampoline")?;
            check_in_executable(spec.kernel, "the job's kernel")?;
        }
        let chunks = Self::chunks_of(spec.len, spec.chunk_size) as u64;
        debug_assert!(chunks as usize <= control::MAX_CHUNKS);
        self.next_job = self.next_job.wrapping_add(1).max(1);
        self.generation += 1;
        let job = self.next_job;
        let c = &*self.ctl;
        c.cursor.store(pack(job, CLOSED), SeqCst);
        c.done.store(0, SeqCst);
        let words = (chunks as usize).div_ceil(64);
        for w in c.done_bits[..words].iter().chain(&c.failed_bits[..words]) {
            w.store(0, Relaxed);
        }
        c.error.kind.store(ERR_NONE, Relaxed);
        let d = &c.job;
        d.trampoline.store(kernel::to_offset(spec.trampoline), Relaxed);
        d.kernel.store(kernel::to_offset(spec.kernel), Relaxed);
        d.len.store(spec.len as u64, Relaxed);
        d.chunk_size.store(spec.chunk_size as u64, Relaxed);
        d.radius.store(spec.radius as u64, Relaxed);
        d.retries.store(self.retries, Relaxed);
        d.generation.store(self.generation, Relaxed);
        for (slot, a) in d.arrays.iter().zip(&spec.arrays) {
            match a {
                ArraySpec::Handle(h, len) => slot.set(Some(h), *len),
                ArraySpec::Scratch(off, len, elem) => slot.set_scratch(*off, *len, *elem),
                ArraySpec::Region(h, off, len, elem) => slot.set_region(h, *off, *len, *elem),
                ArraySpec::None => slot.set(None, 0),
            }
        }
        // `chunks` is the one field a worker reads before its claim's compare-and-swap. Release
        // orders the closing cursor store above before it: a worker that sees this job's count
        // (acquire) also sees the cursor closed for the old job, so its CAS on the old job's
        // cursor value fails (README.md, "Memory ordering").
        d.chunks.store(chunks, Release);
        c.job_id.store(job, Release);
        c.cursor.store(pack(job, 0), SeqCst);
        c.wake_workers();
        self.active = Some(Active::new(job, chunks, self.retries));
        Ok(job)
    }

    /// The default chunk size for `len` elements of `elem_size` bytes: about 8 chunks per worker
    /// (so a slow worker or a busy core costs at most an eighth of its share), but never under
    /// 64 KiB of data per chunk (so claiming, a compare-and-swap on a shared line, costs well
    /// under 1% of the chunk's work), and never more than 4M chunks. [`Pool::set_chunk_size`]
    /// or [`PoolBuilder::chunk_size`] override it.
    ///
    /// ```no_run
    /// let pool = shmpool::Pool::new(2)?;
    /// assert_eq!(pool.chunk_size_for(32 << 20, 8), 2 << 20); // 16 chunks of 16 MiB
    /// assert_eq!(pool.chunk_size_for(1000, 8), 8192); // one chunk: the 64 KiB floor
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn chunk_size_for(&self, len: usize, elem_size: usize) -> usize {
        let min_chunks = len.div_ceil(control::MAX_CHUNKS).max(1);
        let size = match self.chunk_size {
            Some(n) => n,
            None => {
                let floor = (64 * 1024 / elem_size.max(1)).max(1);
                len.div_ceil(8 * self.slots.len().max(1)).max(floor)
            }
        };
        size.max(min_chunks)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // `terminate` does nothing in a forked copy: the workers belong to the creator.
        self.terminate();
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name)
            .field("workers", &self.worker_pids())
            .field("state", &self.state)
            .finish()
    }
}
