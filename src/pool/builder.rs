//! `PoolBuilder`: workers, start method, name, initializer, maxtasksperchild, retries, chunk
//! size, task limits (bytes, time); and the constructors that use it, `Pool::new` and `Pool::builder`.

use super::control::MAX_WORKERS;
use super::state::Pool;
use super::worker::{Launch, WorkerConfig};
use crate::error::{Error, Result};
use crate::process::context::StartMethod;

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
}

/// Configures and starts a [`Pool`].
///
/// ```no_run
/// fn setup() { /* runs once in each worker */ }
/// let pool = shmpool::Pool::builder()
///     .workers(2)
///     .name("blur")
///     .initializer(setup)
///     .maxtasksperchild(1000)
///     .retries(3) // only for idempotent kernels
///     .build()?;
/// assert_eq!(pool.workers(), 2);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct PoolBuilder {
    workers: Option<usize>,
    name: Option<String>,
    cfg: WorkerConfig,
    retries: u32,
    chunk_size: Option<usize>,
    inline_threshold: Option<usize>,
    allow_threads: bool,
    method: Option<StartMethod>,
    max_task_bytes: Option<usize>,
    task_timeout: Option<std::time::Duration>,
}

impl PoolBuilder {
    /// A builder with the defaults: one worker per CPU this process may run on.
    ///
    /// ```
    /// let b = shmpool::pool::PoolBuilder::new().workers(4);
    /// # let _ = b;
    /// ```
    pub fn new() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// Number of worker processes (default: the CPUs in this process's affinity mask, Python's
    /// `process_cpu_count()`). Zero is an error at [`build`](PoolBuilder::build).
    ///
    /// ```
    /// let b = shmpool::pool::PoolBuilder::new().workers(2);
    /// # let _ = b;
    /// ```
    pub fn workers(mut self, n: usize) -> PoolBuilder {
        self.workers = Some(n);
        self
    }

    /// How workers (and the replacements of workers that die) are started. Default: the
    /// process's default start method, as for [`Process`](crate::Process):
    /// [`set_start_method`](crate::process::set_start_method)'s choice, else
    /// [`StartMethod::default`], the forkserver, as in Python 3.14 on Linux. Measured here (`docs/benchmarks.md`, 2 workers, start + one
    /// `apply` + drop; a worker's death to its replacement):
    ///
    /// | parent's private memory | fork | forkserver | spawn |
    /// |---|---|---|---|
    /// | none | 0.55 ms; 0.5 ms | 1.2 ms; 0.7 ms | 2.3 ms; 0.6 ms |
    /// | 4 GiB | 205 ms; 125 ms | 1.0 ms; 0.6 ms | 1.9 ms; 0.6 ms |
    ///
    /// - `ForkServer` (default): workers are forks of a clean, single-threaded server launched
    ///   (once per program, `posix_spawn` + exec, ~2 ms) from this program's executable: their
    ///   start costs the same however large this process grows, they inherit nothing of it
    ///   (no lock, no array, no descriptor), and this process may run other threads. Kernels,
    ///   task functions and the initializer must be code of the program's own executable (not
    ///   of a shared library): a job naming other code fails with
    ///   [`Error::SpawnUnavailable`], and so does `build`
    ///   where shmpool itself lives in a shared library (a Python extension, say), which leaves
    ///   `Fork`. State a worker needs comes from the initializer or through shared memory, not
    ///   from this process's globals. The server ends with this program, or at
    ///   [`shutdown_forkserver`](crate::process::shutdown_forkserver).
    /// - `Fork`: workers are forks of this process: fastest while it is small, but a fork copies
    ///   the page tables of all its private memory (~20 ms per GiB here, and as much again when
    ///   the worker exits) for each worker and each replacement; refused while it has other threads (see
    ///   [`allow_threads`](PoolBuilder::allow_threads)). The control block is an anonymous
    ///   mapping no other process can open.
    /// - `Spawn`: workers are fresh runs of the program (`posix_spawn`, which copies nothing of
    ///   this process), with the same rules for code as `ForkServer`.
    ///
    /// Under `ForkServer` and `Spawn` the control block is a sealed memfd the workers open through
    /// `/proc/<pid>/fd` (see the pool's README).
    ///
    /// ```no_run
    /// use shmpool::{Pool, StartMethod};
    /// let pool = Pool::builder().workers(2).start_method(StartMethod::Spawn).build()?;
    /// assert_eq!(pool.start_method(), StartMethod::Spawn);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> PoolBuilder {
        self.method = Some(method);
        self
    }

    /// A name for messages and diagnostics.
    ///
    /// ```
    /// let b = shmpool::pool::PoolBuilder::new().name("resize");
    /// # let _ = b;
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> PoolBuilder {
        self.name = Some(name.into());
        self
    }

    /// A function each worker runs once when it starts (Python's `initializer`). It runs after
    /// the worker let go of the parent's descriptors (see [`Pool`]): open files it needs itself.
    ///
    /// If workers keep dying before it returns (it panics, aborts, or exits), `2 * workers + 2`
    /// in a row, the pool gives up: it is terminated, and the call that noticed, every pending
    /// result and every later call report [`Error::PoolGaveUp`] naming the initializer's
    /// failure. Workers killed from outside once they run do not count.
    ///
    /// ```
    /// fn init() {}
    /// let b = shmpool::pool::PoolBuilder::new().initializer(init);
    /// # let _ = b;
    /// ```
    pub fn initializer(mut self, f: fn()) -> PoolBuilder {
        self.cfg.initializer = Some(f);
        self
    }

    /// A worker exits after this many chunks and a fresh one replaces it (Python's
    /// `maxtasksperchild`). Zero means no limit.
    ///
    /// ```
    /// let b = shmpool::pool::PoolBuilder::new().maxtasksperchild(100);
    /// # let _ = b;
    /// ```
    pub fn maxtasksperchild(mut self, n: u64) -> PoolBuilder {
        self.cfg.max_tasks = (n > 0).then_some(n);
        self
    }

    /// How many chunks per job may be re-run after the worker running them died (default 0:
    /// a death fails the job with [`Error::WorkerDied`]). Opt in only for idempotent kernels: a
    /// chunk that died half-way is run again from whatever it had already written.
    ///
    /// ```
    /// let b = shmpool::pool::PoolBuilder::new().retries(2);
    /// # let _ = b;
    /// ```
    pub fn retries(mut self, n: u32) -> PoolBuilder {
        self.retries = n;
        self
    }

    /// Elements per chunk for data-parallel jobs (default: see [`Pool::chunk_size_for`]).
    ///
    /// ```
    /// let b = shmpool::pool::PoolBuilder::new().chunk_size(1 << 16);
    /// # let _ = b;
    /// ```
    pub fn chunk_size(mut self, n: usize) -> PoolBuilder {
        self.chunk_size = Some(n.max(1));
        self
    }

    /// Kernel jobs ([`Pool::job`]) touching fewer bytes than this (the bytes of all their
    /// arrays, times their stages) run in the calling process, chunk by chunk, through the same
    /// kernels, instead of in the workers: below it, waking the workers and waiting for them
    /// costs more than the work. 0 = never inline. Default: see
    /// [`Pool::inline_threshold`].
    ///
    /// ```
    /// let b = shmpool::pool::PoolBuilder::new().inline_threshold(0); // always the workers
    /// # let _ = b;
    /// ```
    pub fn inline_threshold(mut self, bytes: usize) -> PoolBuilder {
        self.inline_threshold = Some(bytes);
        self
    }

    /// The most bytes one task argument or result of the serialized task calls
    /// ([`Pool::map`], [`Pool::apply`], ...) may take once serialized (default 16 MiB). A
    /// larger one is [`Error::TaskValueTooLarge`], naming the task. Results are written into a
    /// region of `tasks * limit` bytes (at most 16 GiB) reserved in the task arena but touched
    /// only as far as the results go, so a high limit costs address space, not memory.
    ///
    /// ```
    /// let b = shmpool::pool::PoolBuilder::new().max_task_bytes(1 << 20);
    /// # let _ = b;
    /// ```
    pub fn max_task_bytes(mut self, n: usize) -> PoolBuilder {
        self.max_task_bytes = Some(n.max(1));
        self
    }

    /// The longest one task of a task call ([`Pool::map`], [`Pool::apply`], [`Pool::imap`],
    /// their `_async`, `try_*` and `*_pod` forms, ...) may run (default: no limit). A task
    /// still running at its deadline has its worker killed (SIGKILL) and replaced; its result
    /// is [`Error::TaskTimedOut`] naming the task, the other tasks run on, and the pool stays
    /// usable. The parent notices the deadline while it waits or polls (no extra thread), within
    /// about a millisecond.
    ///
    /// **Chunks of several tasks** (`map`'s default `chunksize`): the chunk is lost with its
    /// worker, so its other tasks come back as [`Error::WorkerDied`] saying which task timed
    /// out (`map` itself returns the [`Error::TaskTimedOut`]); with
    /// [`retries`](PoolBuilder::retries) the whole chunk runs again on another worker instead
    /// (the slow task included, which may time out again until the retries are spent). Pass
    /// `chunksize` 1 (as `imap` and `apply` do) to keep every task apart.
    ///
    /// Data-parallel jobs ([`Pool::for_each_chunk`], ...) have no tasks and are not timed;
    /// a pool with a timeout pays one clock read per task.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = shmpool::pool::PoolBuilder::new().task_timeout(Duration::from_secs(30));
    /// # let _ = b;
    /// ```
    pub fn task_timeout(mut self, timeout: std::time::Duration) -> PoolBuilder {
        self.task_timeout = Some(timeout);
        self
    }

    /// Fork the workers (and their replacements) even though this process has other threads.
    /// Only the `Fork` [start method](PoolBuilder::start_method) forks this process; the others
    /// ignore this.
    ///
    /// # Safety
    ///
    /// After a fork in a multi-threaded process, POSIX allows the child only async-signal-safe
    /// calls: a lock another thread holds at the fork (stdout's, any `std::sync::Mutex`, a rayon
    /// registry's) stays locked forever in the workers. The caller promises that kernels and the
    /// initializer touch nothing but their arguments, shared memory and glibc's `malloc`.
    ///
    /// ```
    /// // SAFETY: nothing is started from this builder here.
    /// let b = unsafe { shmpool::pool::PoolBuilder::new().allow_threads() };
    /// # let _ = b;
    /// ```
    pub unsafe fn allow_threads(mut self) -> PoolBuilder {
        self.allow_threads = true;
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    ///
    /// [`Error::PoolSize`] for zero workers (or more than 256), [`Error::ForkWithThreads`] when
    /// the start method is `Fork`, the process has other threads and
    /// [`allow_threads`](PoolBuilder::allow_threads) was not set,
    /// [`Error::SpawnUnavailable`] when the start method (forkserver, the default, or spawn)
    /// cannot re-execute this program (or the initializer is not in its executable), and OS
    /// errors from creating the control segment or starting workers.
    ///
    /// ```no_run
    /// let pool = shmpool::pool::PoolBuilder::new().workers(2).build()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn build(self) -> Result<Pool> {
        let n = self.workers.unwrap_or_else(crate::process::cpu::process_cpu_count);
        if n == 0 || n > MAX_WORKERS {
            return Err(Error::PoolSize { requested: n, max: MAX_WORKERS });
        }
        let launch = Launch {
            method: self
                .method
                .unwrap_or_else(crate::process::default_method::default_start_method),
            allow_threads: self.allow_threads,
            cfg: self.cfg,
            name: self.name.unwrap_or_else(|| "pool".to_string()),
            parent_pid: crate::sys::proc::getpid(),
        };
        let mut pool = Pool::start(n, launch, self.retries, self.chunk_size)?;
        if let Some(limit) = self.max_task_bytes {
            pool.max_task_bytes = limit;
        }
        pool.task_timeout = self.task_timeout;
        if let Some(bytes) = self.inline_threshold {
            pool.inline_threshold = bytes;
        }
        Ok(pool)
    }
}
