//! `Pool`: what the parent holds for a pool (the control block, the workers, how they start,
//! the job in flight, why the pool gave up), who may use it (only the creating process), and how
//! it stops at once (`terminate`, also on drop).
//!
//! The other `impl Pool` blocks build on this one, each in its own layer (README.md, "Files"):
//! `failure.rs` (waiting for a job, dead workers, giving up), `publish.rs` (publishing a job),
//! `shutdown.rs` (`close`, `join`), `parallel.rs` and `tasks.rs` (the operations), and
//! `builder.rs` (`Pool::new`, `Pool::builder`).

use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use super::active::Active;
use super::anon::AnonBox;
use super::control::{self, ControlBlock};
use super::liveness::{ServerDeath, WorkerProc};
use super::wake::WakePipe;
use super::words::{JobIndex, Phase};
use super::worker::{self, Launch};
use crate::error::{Error, Result};
use crate::process::context::StartMethod;
use crate::sys;

/// A pool of worker processes that run `fn` kernels in place on chunks of
/// [`SharedArray`](crate::SharedArray)s. Only chunk indices travel between processes. Workers
/// are started by the forkserver by default ([`StartMethod::default`]): a worker starts and is
/// replaced in about a millisecond however large this process is, and it works from a
/// multi-threaded process (this doctest runs on a test harness thread).
/// [`PoolBuilder::start_method`](crate::pool::PoolBuilder::start_method) picks fork (fastest in a small, single-threaded process: it
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
/// # shmpool::process::shutdown_forkserver()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
///
/// Dropping the pool terminates it: every worker is killed and reaped.
///
/// A pool answers only to the process that created it: in a forked child that got a copy of it
/// (a [`scope`](crate::scope()) child capturing `&mut pool`, say), every operation returns
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
/// [`shutdown_forkserver`](crate::process::shutdown_forkserver) after dropping the pool to end it
/// sooner.
pub struct Pool {
    pub(crate) ctl: AnonBox<ControlBlock>,
    pub(crate) slots: Vec<WorkerProc>,
    /// How workers (and their replacements) are started, by whom (the creating process: the
    /// only one whose calls the pool obeys), and named after what.
    pub(crate) launch: Launch,
    pub(crate) retries: u32,
    pub(crate) chunk_size: Option<usize>,
    /// Kernel jobs touching fewer bytes run in the caller (`PoolBuilder::inline_threshold`).
    pub(crate) inline_threshold: usize,
    pub(crate) state: PoolState,
    pub(crate) next_job: u32,
    /// Jobs published so far; names the descriptor's contents for the workers' mapping cache
    /// (64 bits: never repeats, unlike job ids).
    pub(crate) generation: u64,
    pub(crate) active: Option<Active>,
    /// Workers in a row that died before finishing the initializer.
    pub(crate) early_deaths: u32,
    /// Why the pool gave up, if it did: (pid, how), reported as `Error::PoolGaveUp` by every
    /// later call and by every result still pending.
    pub(crate) gave_up: Option<(u32, String)>,
    /// The last forkserver death seen, with its cause (`liveness.rs`).
    pub(crate) server_death: ServerDeath,
    /// Task arguments and results too big for the scratch area, reused from call to call.
    pub(crate) arena: Option<crate::segment::Segment>,
    /// The most bytes one serialized task argument or result may take
    /// (`PoolBuilder::max_task_bytes`).
    pub(crate) max_task_bytes: usize,
    /// How long one task may run before its worker is killed (`PoolBuilder::task_timeout`).
    pub(crate) task_timeout: Option<std::time::Duration>,
    /// Spill segments of the job in flight opened from workers that retire
    /// (`maxtasksperchild`): (pid, descriptor, nonce) and the segment, until the next publish.
    pub(crate) adopted: std::cell::RefCell<Vec<(SpillKey, crate::segment::Segment)>>,
    /// Bytes per serialized result in the last serialized call (sizes the next result region).
    pub(crate) result_hint: std::cell::Cell<usize>,
    /// Through which workers wake the parent when it sleeps (`wake.rs`).
    pub(crate) wake: WakePipe,
}

/// A spill segment as its record names it: the worker's pid, the descriptor there, the nonce.
pub(crate) type SpillKey = (u32, i32, u64);

/// The default of `PoolBuilder::max_task_bytes`: 16 MiB per serialized argument or result.
pub(crate) const DEFAULT_MAX_TASK_BYTES: usize = 16 << 20;

/// The inline threshold a pool starts with, in bytes touched, until `PoolBuilder::build` sets
/// the default for its number of workers (`builder::default_inline_threshold`: this value for
/// one worker; docs/architecture.md, "The inline threshold").
pub(crate) const DEFAULT_INLINE_THRESHOLD: usize = 4 << 20;

/// Where the pool is in its life, as the parent sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolState {
    Running,
    Closed,
    Terminated,
}

impl Pool {
    /// Starts a pool of `n` workers (the builder checked `n`) as `launch` says, with `retries`
    /// per job and the data-parallel `chunk_size`.
    pub(crate) fn start(
        n: usize,
        launch: Launch,
        retries: u32,
        chunk_size: Option<usize>,
    ) -> Result<Pool> {
        let ctl = if launch.method == StartMethod::Fork {
            // An anonymous shared mapping, not a memfd: the workers inherit it through fork, and
            // no other process can open it (README.md, "Who can write the control block").
            // SAFETY: an all-zero `ControlBlock` (atomics and plain bytes only) is a valid value.
            unsafe { AnonBox::<ControlBlock>::zeroed()? }
        } else {
            // Workers that are not forks of this process open it through `/proc/<pid>/fd`.
            if let Some(init) = launch.cfg.initializer {
                use crate::process::code::{Receiver, check_sendable};
                check_sendable(init as usize, "the pool's initializer", Receiver::Reexecuted)?;
            }
            // SAFETY: as above.
            unsafe { AnonBox::<ControlBlock>::zeroed_memfd("shmpool-pool-control")? }
        };
        let wake = WakePipe::new()?;
        ctl.nonce.store(sys::proc::random_u64(), Relaxed);
        ctl.cursor.store(JobIndex::closed(0), Relaxed);
        ctl.state.store(Phase::RUNNING, Relaxed);
        for w in &ctl.workers {
            w.held.store(JobIndex::NOTHING, Relaxed);
        }
        let mut pool = Pool {
            ctl,
            slots: Vec::with_capacity(n),
            launch,
            retries,
            chunk_size,
            inline_threshold: DEFAULT_INLINE_THRESHOLD,
            state: PoolState::Running,
            next_job: 0,
            generation: 0,
            active: None,
            early_deaths: 0,
            gave_up: None,
            server_death: None,
            arena: None,
            max_task_bytes: DEFAULT_MAX_TASK_BYTES,
            task_timeout: None,
            adopted: std::cell::RefCell::new(Vec::new()),
            result_hint: std::cell::Cell::new(64),
            wake,
        };
        for slot in 0..n {
            // On failure `pool` drops here, which kills and reaps the workers already started.
            let w = worker::start(&pool.ctl, &pool.launch, &pool.wake, slot)?;
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

    /// How the pool starts its workers (see
    /// [`PoolBuilder::start_method`](crate::pool::PoolBuilder::start_method)).
    ///
    /// ```no_run
    /// let pool = shmpool::Pool::new(2)?;
    /// assert_eq!(pool.start_method(), shmpool::StartMethod::ForkServer);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn start_method(&self) -> StartMethod {
        self.launch.method
    }

    /// The pool's name.
    ///
    /// ```no_run
    /// assert_eq!(shmpool::Pool::builder().name("x").build()?.name(), "x");
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.launch.name
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
        self.ctl.state.store(Phase::TERMINATING, SeqCst);
        self.ctl.wake_workers();
        for w in &self.slots {
            w.kill();
        }
        for w in &mut self.slots {
            w.reap();
        }
    }

    /// [`Error::PoolNotOwned`] unless this is the process that created the pool. Every entry
    /// point that touches the workers or the control block checks this first: a forked copy of
    /// the pool shares the control block and the workers, but not the parent's bookkeeping
    /// (job ids, the job in flight, which workers are its children).
    pub(crate) fn check_owner(&self) -> Result<()> {
        let pid = sys::proc::getpid();
        if pid == self.launch.parent_pid {
            Ok(())
        } else {
            Err(Error::PoolNotOwned { pid, owner: self.launch.parent_pid })
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

    /// The pool's inline threshold: kernel jobs ([`Pool::job`]) touching fewer bytes (all
    /// their arrays' bytes, times their stages) run in the caller, chunk by chunk, through the
    /// same kernels; 0: never. Set with
    /// [`PoolBuilder::inline_threshold`](crate::pool::PoolBuilder::inline_threshold) or
    /// [`set_inline_threshold`](Pool::set_inline_threshold).
    ///
    /// ```no_run
    /// let pool = shmpool::Pool::new(2)?;
    /// assert!(pool.inline_threshold() > 0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn inline_threshold(&self) -> usize {
        self.inline_threshold
    }

    /// Sets the inline threshold (see [`inline_threshold`](Pool::inline_threshold)).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// pool.set_inline_threshold(0); // every kernel job goes to the workers
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn set_inline_threshold(&mut self, bytes: usize) {
        self.inline_threshold = bytes;
    }

    /// The number of chunks `spec` makes.
    pub(crate) fn chunks_of(len: usize, chunk_size: usize) -> usize {
        len.div_ceil(chunk_size.max(1))
    }

    /// The default chunk size for `len` elements of `elem_size` bytes: about 8 chunks per worker
    /// (so a slow worker or a busy core costs at most an eighth of its share), but never under
    /// 64 KiB of data per chunk (so claiming, a compare-and-swap on a shared line, costs well
    /// under 1% of the chunk's work), and never more than 4M chunks. [`Pool::set_chunk_size`]
    /// or [`PoolBuilder::chunk_size`](crate::pool::PoolBuilder::chunk_size) override it.
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
            .field("name", &self.launch.name)
            .field("workers", &self.worker_pids())
            .field("state", &self.state)
            .finish()
    }
}
