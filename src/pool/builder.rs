//! `PoolBuilder`: workers, start method, name, initializer (with or without an argument),
//! threads per worker, CPU affinity, maxtasksperchild, retries, chunk size, task limits (bytes,
//! time); and the constructors that use it, `Pool::new` and `Pool::builder`.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::control::MAX_WORKERS;
use super::state::Pool;
use super::worker::{InitTrampoline, InitWith, Launch, Threads, WorkerConfig, init_trampoline};
use crate::error::{Error, Result};
use crate::process::context::StartMethod;
use crate::sys;

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

/// Bytes (times stages) under which a job of a pool with `workers` workers runs in the caller
/// by default: where the time the workers save, `B / bw - B / (W bw)` for `B` bytes at one
/// core's pace `bw`, pays for one dispatch `D`, so `B* = D bw W / (W - 1)`. The 2-worker
/// crossover measured here is 1 MiB, so `D bw` is 512 KiB: 1 MiB for 2 workers, about
/// 550 KiB for 16. One worker is never faster than the caller: 4 MiB, as before, so only
/// large jobs leave it. docs/architecture.md, "The inline threshold".
pub(crate) fn default_inline_threshold(workers: usize) -> usize {
    match workers {
        0 | 1 => 4 << 20,
        w => (512 << 10) * w / (w - 1),
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
    threads_per_worker: Option<usize>,
    affinity: Option<Affinity>,
    /// Why `initializer_with`'s argument could not be encoded, reported by `build`.
    init_error: Option<String>,
}

/// Which CPUs each worker of a pool runs on ([`PoolBuilder::cpu_affinity`]). Every CPU named
/// must be one this process may run on (its `sched_getaffinity` set, which `taskset` and
/// containers narrow); [`build`](PoolBuilder::build) refuses any other with
/// [`Error::CpuNotAllowed`], naming the allowed set.
///
/// ```no_run
/// use shmpool::pool::Affinity;
/// // Workers 0 and 1 share CPUs 0-1, worker 2 (and 3) get CPU 2 and 3 alone.
/// let pool = shmpool::Pool::builder()
///     .workers(4)
///     .cpu_affinity(Affinity::Sets(vec![vec![0, 1], vec![0, 1], vec![2], vec![3]]))
///     .build()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Affinity {
    /// One CPU per worker, round-robin over the CPUs this process may run on (ascending):
    /// worker `i` runs on the `i`-th allowed CPU, wrapping around when there are more workers
    /// than CPUs. Replacement workers take the CPU of the slot they replace.
    RoundRobin,
    /// Explicit CPU sets: worker `i` runs on any CPU of `sets[i % sets.len()]`.
    Sets(Vec<Vec<usize>>),
}

impl Affinity {
    /// The CPU set of every worker slot of a pool of `n`, checked against `allowed` (the
    /// process's CPUs, ascending).
    fn resolve(&self, n: usize, allowed: &[usize]) -> Result<Vec<Vec<usize>>> {
        let refuse = |worker, cpu| Error::CpuNotAllowed {
            worker,
            cpu,
            allowed: sys::affinity::list_format(allowed),
        };
        match self {
            Affinity::RoundRobin if allowed.is_empty() => Err(Error::InvalidArgument {
                what: "pool CPU affinity",
                reason: "this process may run on no CPU at all (sched_getaffinity is empty)".into(),
            }),
            Affinity::RoundRobin => Ok((0..n).map(|i| vec![allowed[i % allowed.len()]]).collect()),
            Affinity::Sets(sets) if sets.is_empty() => Err(Error::InvalidArgument {
                what: "pool CPU affinity",
                reason: "Affinity::Sets needs at least one CPU set; use Affinity::RoundRobin, or \
                         leave the affinity unset"
                    .into(),
            }),
            Affinity::Sets(sets) => {
                for (i, set) in sets.iter().enumerate() {
                    let bad = set.iter().find(|c| allowed.binary_search(c).is_err());
                    if set.is_empty() {
                        return Err(Error::InvalidArgument {
                            what: "pool CPU affinity",
                            reason: format!(
                                "worker {i}'s CPU set is empty; name at least one of the CPUs \
                                 this process may run on ({})",
                                sys::affinity::list_format(allowed)
                            ),
                        });
                    }
                    if let Some(&cpu) = bad {
                        return Err(refuse(i, cpu));
                    }
                }
                Ok(sets.clone())
            }
        }
    }
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
        self.cfg.init_with = None;
        self.init_error = None;
        self
    }

    /// A function each worker runs once when it starts, with an argument (Python's
    /// `initializer=f, initargs=(a,)`; several arguments are a tuple). The argument is encoded
    /// once here (postcard) and decoded afresh in every worker, replacements included, under
    /// every start method. It replaces an [`initializer`](PoolBuilder::initializer) set before
    /// (a pool has one), and fails as that one does. The pool keeps `arg` itself until it is
    /// dropped, so a shared object in it (a `Barrier`, a `Queue`), which crosses as a handle to
    /// this process's copy, can still be opened by replacement workers.
    ///
    /// An argument that cannot be encoded (or decoded back) makes [`build`](PoolBuilder::build)
    /// return [`Error::InvalidArgument`].
    ///
    /// ```no_run
    /// fn init((name, level): (String, u8)) {
    ///     // Runs in each worker: keep what tasks need in the worker's own statics.
    ///     let _ = (name, level);
    /// }
    /// let pool = shmpool::Pool::builder()
    ///     .workers(2)
    ///     .initializer_with(init, ("job-7".to_string(), 3))
    ///     .build()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn initializer_with<A>(mut self, f: fn(A), arg: A) -> PoolBuilder
    where
        A: Serialize + DeserializeOwned + Send + 'static,
    {
        self.cfg.initializer = None;
        match crate::process::entry::encode_args(&arg) {
            Ok(bytes) => {
                self.init_error = None;
                self.cfg.init_with = Some(InitWith {
                    trampoline: init_trampoline::<A> as InitTrampoline,
                    function: f as usize,
                    arg: bytes.into(),
                    _keep: Some(Arc::new(std::sync::Mutex::new(arg))),
                });
            }
            Err(e) => {
                self.cfg.init_with = None;
                self.init_error = Some(e.to_string());
            }
        }
        self
    }

    /// Threads each worker's numeric libraries may start: every worker sets
    /// `RAYON_NUM_THREADS`, `OMP_NUM_THREADS`, `OPENBLAS_NUM_THREADS` and `MKL_NUM_THREADS` to
    /// `n` in its own environment when it starts, before the initializer or any task runs, so a
    /// kernel that uses rayon (whose global pool reads `RAYON_NUM_THREADS` when it first starts),
    /// OpenMP or a BLAS gets `n` threads instead of one per CPU. shmpool does not depend on rayon
    /// and builds no pool itself: the variable is read by rayon in the worker. The worker is
    /// single-threaded at that point under every start method, which is what makes setting its
    /// environment sound.
    ///
    /// **Default** (not called): `max(1, CPUs / workers)`, with the CPUs of
    /// [`process_cpu_count`](crate::process_cpu_count), set only where the worker did not inherit
    /// the variable. With one worker per CPU (the pool's default size) that is 1 thread each:
    /// `N` workers each starting a rayon or OpenMP pool of `N` threads would run `N²` threads on
    /// `N` CPUs, which is slower than either level of parallelism alone. Calling this sets the
    /// variables even where they were inherited. Zero is taken as 1.
    ///
    /// Under `Fork`, a parent that already used rayon's global pool hands its workers a copy of
    /// it without its threads (rayon is not fork-safe): use rayon in the workers only, or another
    /// start method.
    ///
    /// ```
    /// let b = shmpool::pool::PoolBuilder::new().workers(2).threads_per_worker(2);
    /// # let _ = b;
    /// ```
    pub fn threads_per_worker(mut self, n: usize) -> PoolBuilder {
        self.threads_per_worker = Some(n.max(1));
        self
    }

    /// Pins each worker to CPUs (default: not pinned, the workers inherit this process's
    /// affinity). Each worker pins itself when it starts, before its initializer; a replacement
    /// worker takes the set of the slot it replaces. See [`Affinity`].
    ///
    /// ```
    /// use shmpool::pool::Affinity;
    /// let b = shmpool::pool::PoolBuilder::new().cpu_affinity(Affinity::RoundRobin);
    /// # let _ = b;
    /// ```
    pub fn cpu_affinity(mut self, affinity: Affinity) -> PoolBuilder {
        self.affinity = Some(affinity);
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
    /// costs more than the work. 0 = never inline. Default: 1 MiB with 2 workers, falling
    /// towards 512 KiB as workers are added (`512 KiB x W / (W - 1)`: the size at which the
    /// workers' share of the work saves one dispatch), 4 MiB with one worker; see
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
    /// larger one is [`Error::TaskValueTooLarge`], naming the task and its whole size; past the
    /// limit its bytes are counted, not stored, so a value of gigabytes is refused holding no
    /// more than the limit of it, in the parent (arguments) or the worker (results). Results are
    /// written into a region of `tasks * limit` bytes (at most 16 GiB) reserved in the task
    /// arena but touched only as far as the results go, so a high limit costs address space,
    /// not memory.
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
    /// [`Error::PoolSize`] for zero workers (or more than 256), [`Error::CpuNotAllowed`] for a
    /// [`cpu_affinity`](PoolBuilder::cpu_affinity) naming a CPU this process may not run on,
    /// [`Error::InvalidArgument`] for an [`initializer_with`](PoolBuilder::initializer_with)
    /// argument that cannot be encoded or an empty CPU set, [`Error::ForkWithThreads`] when
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
    pub fn build(mut self) -> Result<Pool> {
        let cpus = crate::process::cpu::process_cpu_count();
        let n = self.workers.unwrap_or(cpus);
        if n == 0 || n > MAX_WORKERS {
            return Err(Error::PoolSize { requested: n, max: MAX_WORKERS });
        }
        if let Some(reason) = self.init_error.take() {
            return Err(Error::InvalidArgument { what: "pool initializer argument", reason });
        }
        self.cfg.threads = Some(match self.threads_per_worker {
            Some(n) => Threads { n, overwrite: true },
            None => Threads { n: (cpus / n).max(1), overwrite: false },
        });
        if let Some(a) = &self.affinity {
            let allowed = sys::affinity::allowed().map_err(Error::io("sched_getaffinity"))?;
            self.cfg.cpus = Arc::from(a.resolve(n, &allowed)?);
        }
        let method =
            self.method.unwrap_or_else(crate::process::default_method::default_start_method);
        if method != StartMethod::Fork
            && let Some(i) = &self.cfg.init_with
        {
            use crate::process::code::{Receiver, check_sendable};
            check_sendable(i.function, "the pool's initializer", Receiver::Reexecuted)?;
            let what = "the pool initializer's trampoline (monomorphised for its argument type)";
            check_sendable(i.trampoline as usize, what, Receiver::Reexecuted)?;
        }
        let launch = Launch {
            method,
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
        pool.inline_threshold = self.inline_threshold.unwrap_or(default_inline_threshold(n));
        Ok(pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_inline_threshold_falls_with_more_workers() {
        assert_eq!(default_inline_threshold(1), 4 << 20);
        assert_eq!(default_inline_threshold(2), 1 << 20);
        let mut last = default_inline_threshold(2);
        for w in 3..=MAX_WORKERS {
            let t = default_inline_threshold(w);
            assert!(t <= last && t > 512 << 10, "{w} workers: {t}");
            last = t;
        }
        assert_eq!(default_inline_threshold(16), (512 << 10) * 16 / 15);
    }

    #[derive(Serialize, serde::Deserialize)]
    #[serde(untagged)]
    enum Loose {
        N(u32),
        S(String),
    }

    fn takes_loose(_: Loose) {}

    fn takes_u8(_: u8) {}

    #[test]
    fn an_initializer_argument_that_cannot_cross_is_refused_at_build() {
        let _ = Loose::S(String::new());
        let b = PoolBuilder::new().workers(1).initializer_with(takes_loose, Loose::N(1));
        match b.build() {
            Err(Error::InvalidArgument { what, reason }) => {
                assert_eq!(what, "pool initializer argument");
                assert!(reason.contains("untagged"), "{reason}");
            }
            Err(e) => panic!("expected InvalidArgument, got {e:?}"),
            Ok(_) => panic!("expected InvalidArgument, got a pool"),
        }
        // A later initializer replaces the refused one.
        let b = PoolBuilder::new()
            .initializer_with(takes_loose, Loose::N(1))
            .initializer_with(takes_u8, 3);
        assert!(b.init_error.is_none() && b.cfg.init_with.is_some());
    }

    #[test]
    fn affinity_resolves_per_worker_and_refuses_cpus_outside_the_allowed_set() {
        let allowed = [1, 3, 4];
        assert_eq!(Affinity::RoundRobin.resolve(4, &allowed).unwrap(), [[1], [3], [4], [1]]);
        let sets = Affinity::Sets(vec![vec![3, 4], vec![1]]);
        assert_eq!(sets.resolve(3, &allowed).unwrap(), [vec![3, 4], vec![1]]);
        match Affinity::Sets(vec![vec![1], vec![2]]).resolve(2, &allowed) {
            Err(e @ Error::CpuNotAllowed { worker: 1, cpu: 2, .. }) => {
                assert!(e.to_string().contains("CPUs 1,3-4"), "{e}");
            }
            other => panic!("expected CpuNotAllowed, got {other:?}"),
        }
    }
}
