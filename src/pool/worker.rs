//! The worker side: how a worker starts (the one start step: a fork, or a `fn(WorkerArgs)` run
//! by the forkserver or a spawned copy of the program), claims chunks, maps arrays by handle,
//! runs kernels in place, and sleeps when there is nothing to do.

use std::os::fd::{AsRawFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::anon::AnonBox;
use super::control::{
    ControlBlock, MAX_ARRAYS, MAX_DIMS, MAX_JOB_ARRAYS, MAX_WORKERS, SCRATCH_BYTES, WorkerSlot,
};
use super::kernel::{JobCtx, Span, Trampoline, Views, take_panic};
use super::liveness::WorkerProc;
use super::task_clock;
use super::task_kernel;
use super::wake::WakePipe;
use super::words::{ArrayKind, FailKind, JobIndex, ParentSleep, Phase};
use crate::error::{Error, Result};
use crate::process::code::{CodeRanges, from_offset, to_offset};
use crate::process::context::{StartMethod, get_context};
use crate::process::fork;
use crate::segment::header::TypeDesc;
use crate::segment::{Segment, SegmentHandle};
use crate::sys;

/// How long a worker that ran out of work spins before it sleeps on the futex.
pub(crate) const WORKER_SPIN: Duration = Duration::from_micros(50);
/// A sleeping worker wakes at least this often to check that its parent lives.
const PARENT_CHECK: Duration = Duration::from_millis(250);
/// Array mappings a worker keeps between jobs.
const CACHE_ENTRIES: usize = 4;
/// How often an idle worker lets go of cached arrays the parent no longer has.
const CACHE_CHECK: Duration = Duration::from_millis(250);

/// What every worker runs besides the protocol.
#[derive(Clone, Default)]
pub(crate) struct WorkerConfig {
    /// Run once in each worker before it takes work.
    pub(crate) initializer: Option<fn()>,
    /// Run once in each worker before it takes work, with its argument (Python's `initargs`);
    /// the builder keeps at most one of `initializer` and this.
    pub(crate) init_with: Option<InitWith>,
    /// Exit (to be replaced) after this many chunks.
    pub(crate) max_tasks: Option<u64>,
    /// The thread-count variables each worker sets at start-up (`PoolBuilder::threads_per_worker`).
    pub(crate) threads: Option<Threads>,
    /// CPU sets: worker slot `i` is pinned to `cpus[i % cpus.len()]`; empty: not pinned.
    pub(crate) cpus: std::sync::Arc<[Vec<usize>]>,
}

impl WorkerConfig {
    /// The CPU set of worker slot `slot`, if the pool pins its workers.
    fn cpus_for(&self, slot: usize) -> Option<&[usize]> {
        (!self.cpus.is_empty()).then(|| self.cpus[slot % self.cpus.len()].as_slice())
    }
}

/// The environment variables through which numeric libraries size their thread pools, set in
/// every worker at start-up: rayon's global pool, OpenMP, OpenBLAS and MKL read them when they
/// first start their threads.
pub(crate) const THREAD_VARS: [&str; 4] =
    ["RAYON_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"];

/// How many threads each worker's numeric libraries should start.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Threads {
    /// The count written into [`THREAD_VARS`].
    pub(crate) n: usize,
    /// Overwrite a variable the worker inherited (an explicit `threads_per_worker`), rather
    /// than set only those it lacks (the default).
    pub(crate) overwrite: bool,
}

/// The type of [`init_trampoline`]: the user's `fn(A)` as an address, and `A` in postcard.
pub(crate) type InitTrampoline = fn(usize, &[u8]);

/// An initializer with an argument: a trampoline that knows `A`, the user's `fn(A)`, and the
/// argument in postcard (decoded afresh in every worker, replacements included).
#[derive(Clone)]
pub(crate) struct InitWith {
    pub(crate) trampoline: InitTrampoline,
    pub(crate) function: usize,
    pub(crate) arg: std::sync::Arc<[u8]>,
    /// In the pool's process, the argument itself, kept as long as workers may start: a shared
    /// object in it (a `Barrier`, a `Queue`) crosses as a handle naming this process's
    /// descriptor, which must stay open until every worker, replacements included, opened it.
    /// `None` in a worker.
    pub(crate) _keep: Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>,
}

/// Decodes the initializer's argument and calls it; a bad argument panics, which the pool counts
/// as a failing initializer.
pub(crate) fn init_trampoline<A: serde::de::DeserializeOwned>(function: usize, arg: &[u8]) {
    // SAFETY: `function` is a `fn(A)`: `PoolBuilder::initializer_with` took it from one with
    // this `A` (this trampoline is monomorphised for it), and a worker that is not a fork got
    // both addresses as offsets from a parent of this build, checked to lie in our code.
    let f = unsafe { std::mem::transmute::<usize, fn(A)>(function) };
    let a: A = postcard::from_bytes(arg).unwrap_or_else(|e| {
        panic!("the pool initializer's argument does not decode ({e})");
    });
    f(a)
}

/// An [`InitWith`] as it crosses to a worker that is not a fork: offsets from the code anchor.
#[derive(Debug, Serialize, Deserialize)]
struct InitWire {
    trampoline: u64,
    function: u64,
    arg: Vec<u8>,
}

/// How a pool starts its workers: the same for its first workers and for every replacement.
pub(crate) struct Launch {
    /// The pool's start method.
    pub(crate) method: StartMethod,
    /// Fork even though the parent has other threads (`PoolBuilder::allow_threads`).
    pub(crate) allow_threads: bool,
    /// What every worker runs besides the protocol.
    pub(crate) cfg: WorkerConfig,
    /// The pool's name; workers are named after it.
    pub(crate) name: String,
    /// The creating process: the pool's owner, whose memfds the workers open.
    pub(crate) parent_pid: u32,
}

/// What a worker that is not a fork of the parent needs (serde: it crosses to the forkserver or
/// a spawned copy of the program).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerArgs {
    /// The pool's process, which holds the control block's memfd.
    parent_pid: u32,
    /// The memfd's descriptor there.
    ctl_fd: i32,
    /// The control block's nonce, checked after mapping it.
    nonce: u64,
    /// This worker's slot.
    slot: usize,
    /// `maxtasksperchild`.
    max_tasks: Option<u64>,
    /// The initializer, as an offset from the code anchor (`process::code::to_offset`).
    initializer: Option<u64>,
    /// The initializer with an argument, its two addresses as offsets.
    init_with: Option<InitWire>,
    /// The thread-count variables to set.
    threads: Option<Threads>,
    /// This worker's CPU set, if pinned.
    cpus: Option<Vec<usize>>,
    /// The write end of the parent's wake pipe there (`wake::WakePipe`), and the pipe's
    /// inode, checked after opening it.
    wake_fd: i32,
    wake_ino: u64,
}

/// Starts the worker for slot `slot` of the pool whose control block is `ctl_box`, as `launch`
/// says; it wakes the parent through `wake`.
///
/// This is the pool's only start step. Under `Fork` the worker is a fork of the parent running
/// [`run`] on the inherited control block. Under `ForkServer` and `Spawn` the process layer
/// starts [`run_started`], which maps the control block from the parent's memfd; kernel
/// addresses travel as offsets from an anchor in either case (`process::code::to_offset`).
pub(crate) fn start(
    ctl_box: &AnonBox<ControlBlock>,
    launch: &Launch,
    wake: &WakePipe,
    slot: usize,
) -> Result<WorkerProc> {
    let ctl: &ControlBlock = ctl_box;
    let s = &ctl.workers[slot];
    s.held.store(JobIndex::NOTHING, SeqCst);
    s.retiring.put(false, SeqCst);
    s.keeping.put(false, SeqCst);
    s.completed.store(0, SeqCst);
    s.initialized.put(false, SeqCst);
    // A worker killed mid-task (a task timeout) left its stamp: not the new worker's task.
    s.task_started.store(0, SeqCst);
    if launch.method != StartMethod::Fork {
        let Some(ctl_fd) = ctl_box.fd() else {
            unreachable!("a pool that does not fork keeps its control block in a memfd")
        };
        let args = WorkerArgs {
            parent_pid: launch.parent_pid,
            ctl_fd,
            nonce: ctl.nonce.load(SeqCst),
            slot,
            max_tasks: launch.cfg.max_tasks,
            initializer: launch.cfg.initializer.map(|f| to_offset(f as usize)),
            init_with: launch.cfg.init_with.as_ref().map(|i| InitWire {
                trampoline: to_offset(i.trampoline as usize),
                function: to_offset(i.function),
                arg: i.arg.to_vec(),
            }),
            threads: launch.cfg.threads,
            cpus: launch.cfg.cpus_for(slot).map(<[usize]>::to_vec),
            wake_fd: wake.w.as_raw_fd(),
            wake_ino: wake.ino,
        };
        let p = get_context(launch.method)
            .process()
            .name(format!("{}-worker-{slot}", launch.name))
            .daemon(true)
            .start(run_started, args)?;
        s.pid.store(p.pid(), SeqCst);
        return Ok(WorkerProc::started(p, launch.method == StartMethod::ForkServer));
    }
    let (cfg, allow_threads, parent_pid) =
        (launch.cfg.clone(), launch.allow_threads, launch.parent_pid);
    // Every descriptor open now is the parent's business, not the worker's: the worker needs
    // only stdio, its report pipe and its alive-pipe guard (both made inside `fork::start`,
    // after this list), and maps arrays through `/proc/<parent>/fd`. Listed here, where
    // allocating is fine; detached in the child first thing.
    // Except the write end of the wake pipe, through which the worker wakes the parent.
    let wake = wake.w.as_raw_fd();
    let mut inherited = sys::fds::open_above_stdio().map_err(Error::io("listing /proc/self/fd"))?;
    inherited.retain(|&fd| fd != wake);
    // The crate's one fork path: thread check, alive pipe, parent-death signal, panic report.
    let (pid, report) = fork::start(allow_threads, move || {
        if let Err(e) = sys::fds::detach_inherited(&inherited) {
            panic!("the pool worker could not detach the descriptors it inherited: {e}");
        }
        run(ctl, slot, cfg, parent_pid, wake)
    })?;
    s.pid.store(pid, SeqCst);
    Ok(WorkerProc::forked(pid, report))
}

/// A worker started by the forkserver or spawn: maps the control block from the parent's memfd
/// (closing the descriptor it opened at once), checks it, and runs the worker loop. A failure
/// here panics, which the process layer reports as the worker's exit status.
fn run_started(a: WorkerArgs) -> i32 {
    // SAFETY: every field of `ControlBlock` is an atomic or plain bytes, so any bytes are a valid
    // value.
    let ctl = match unsafe { AnonBox::<ControlBlock>::open_memfd(a.parent_pid, a.ctl_fd) } {
        Ok(c) => c,
        Err(e) => panic!("the pool worker could not map the pool's control block: {e}"),
    };
    if ctl.nonce.load(SeqCst) != a.nonce {
        panic!(
            "descriptor {} of process {} is not this pool's control block",
            a.ctl_fd, a.parent_pid
        );
    }
    assert!(a.slot < MAX_WORKERS, "worker slot {} is out of range", a.slot);
    let code = CodeRanges::of_this_process();
    let in_code = |off: u64, what: &str| {
        let addr = from_offset(off);
        assert!(code.contains(addr), "the pool's {what} ({addr:#x}) is not in this program's code");
        addr
    };
    let initializer = a.initializer.map(|off| {
        let addr = in_code(off, "initializer");
        // The offset came in arguments the process layer accepts only from a parent of this build
        // (secret + fingerprint), which took it from a `fn()` it checked lies in the executable.
        // SAFETY: so, measured from the same anchor, it names that `fn()` here (in our code).
        unsafe { std::mem::transmute::<usize, fn()>(addr) }
    });
    let init_with = a.init_with.map(|w| {
        let tramp = in_code(w.trampoline, "initializer trampoline");
        InitWith {
            // As for the initializer: the parent took this offset from an `init_trampoline::<A>`
            // (an `InitTrampoline`) it checked lies in the executable.
            // SAFETY: so it names that function here.
            trampoline: unsafe { std::mem::transmute::<usize, InitTrampoline>(tramp) },
            function: in_code(w.function, "initializer"),
            arg: w.arg.into(),
            _keep: None,
        }
    });
    let cfg = WorkerConfig {
        initializer,
        init_with,
        max_tasks: a.max_tasks,
        threads: a.threads,
        cpus: a.cpus.into_iter().collect(),
    };
    let wake = match sys::fdpass::open_pipe_of(a.parent_pid, a.wake_fd, a.wake_ino) {
        Ok(w) => w,
        Err(e) => panic!("the pool worker could not open the pool's wake pipe: {e}"),
    };
    // Our parent (the pool's process under spawn, the forkserver under forkserver) is checked
    // whenever the worker wakes: if it changed, the pool is gone.
    // `cfg.cpus` holds this worker's set alone, which `cpus_for` picks for any slot.
    run(&ctl, a.slot, cfg, sys::proc::getppid(), wake.as_raw_fd())
}

/// The worker's start-up before any user code: the thread-count variables, then the CPU set.
/// Runs first thing in [`run`], while the worker is single-threaded under every start method (a
/// fork's child has only the forking thread; the forkserver is single-threaded and forks its
/// workers; a spawned child runs from the program's constructor, before `main` could start a
/// thread), which is what makes changing the environment sound. A failure panics: the pool
/// counts it as a failing initializer.
fn start_up(cfg: &WorkerConfig, cpus: Option<&[usize]>) {
    if let Some(t) = cfg.threads {
        match sys::proc::thread_count() {
            Ok(1) => {}
            Ok(n) => panic!(
                "the pool worker has {n} threads at start-up, so it cannot set \
                 RAYON_NUM_THREADS and the other thread-count variables safely"
            ),
            Err(e) => panic!("the pool worker cannot count its threads ({e})"),
        }
        let n = t.n.to_string();
        for var in THREAD_VARS {
            if t.overwrite || std::env::var_os(var).is_none() {
                // SAFETY: this process has one thread (checked just above), so nothing reads the
                // environment while it changes.
                unsafe { std::env::set_var(var, &n) };
            }
        }
    }
    if let Some(cpus) = cpus
        && let Err(e) = sys::affinity::pin(cpus)
    {
        panic!("the pool worker could not pin itself to CPUs {cpus:?} ({e})");
    }
}

/// The worker's main loop; returns its exit code. `parent_pid` is what `getppid()` must keep
/// returning while the pool lives; `wake` is the write end of the parent's wake pipe.
fn run(ctl: &ControlBlock, slot: usize, cfg: WorkerConfig, parent_pid: u32, wake: RawFd) -> i32 {
    start_up(&cfg, cfg.cpus_for(slot));
    if let Some(init) = cfg.initializer {
        init();
    }
    if let Some(i) = &cfg.init_with {
        (i.trampoline)(i.function, &i.arg);
    }
    let me = &ctl.workers[slot];
    // From here on a death is not the initializer's fault (README.md, "Death").
    me.initialized.put(true, SeqCst);
    let mut cache = MapCache::default();
    let mut code = None;
    let mut tasks = 0u64;
    let mut checked = Instant::now();
    loop {
        let seen = ctl.wake_seq.load(SeqCst);
        let state = ctl.state.load(SeqCst);
        if state == Phase::TERMINATING {
            return 0;
        }
        if let Some(claim) = claim(ctl, me) {
            let code = code.get_or_insert_with(CodeRanges::of_this_process);
            run_chunk(ctl, me, &claim, &mut cache, code, wake);
            tasks += 1;
            if cfg.max_tasks.is_some_and(|m| tasks >= m) {
                me.retiring.put(true, SeqCst);
                if task_kernel::has_spills() {
                    keep_spills(ctl, me, parent_pid, wake);
                }
                wake_parent(ctl, wake);
                return 0;
            }
            continue;
        }
        if state == Phase::CLOSING {
            return 0;
        }
        match idle(ctl, seen, parent_pid) {
            Idle::ParentGone => return 0,
            Idle::Woken => continue,
            Idle::Slept => {}
        }
        // Only after a sleep (no job for a while): the spinning path stays clock-free.
        if checked.elapsed() >= CACHE_CHECK {
            // A dropped array's memory goes back when its last mapping goes: not ours to keep.
            cache.forget_gone();
            checked = Instant::now();
        }
    }
}

/// A snapshot of the job descriptor plus the chunk a worker won.
struct Claim {
    generation: u64,
    index: u64,
    trampoline: u64,
    kernel: u64,
    len: u64,
    chunk_size: u64,
    radius: u64,
}

/// Claims one chunk of the current job: a retried chunk first, then the next from the cursor.
/// `held` is stored before each compare-and-swap so the parent can always find the chunk of a
/// worker that dies (README.md, "Death").
fn claim(ctl: &ControlBlock, me: &WorkerSlot) -> Option<Claim> {
    let job = ctl.job_id.load(Acquire);
    if job == 0 {
        return None;
    }
    let d = &ctl.job;
    // Acquire pairs with the parent's release store: if this is a newer job's count, the
    // parent's closing of the cursor is visible too and the CAS below on an older job's cursor
    // value fails (README.md, "Memory ordering"). The other fields are read after a successful
    // claim, when the parent cannot rewrite them before this chunk is done.
    let chunks = d.chunks.load(Acquire);
    let mk = |index| Claim {
        generation: d.generation.load(Relaxed),
        index,
        trampoline: d.trampoline.load(Relaxed),
        kernel: d.kernel.load(Relaxed),
        len: d.len.load(Relaxed),
        chunk_size: d.chunk_size.load(Relaxed),
        radius: d.radius.load(Relaxed),
    };
    loop {
        let pop = ctl.retry_pop.load(SeqCst);
        if pop >= ctl.retry_push.load(SeqCst) {
            break;
        }
        let e = ctl.retry_entry(pop).load(SeqCst);
        if e.job() != job {
            return None; // our snapshot is stale; the caller looks again after the next wake
        }
        me.held.store(e, SeqCst);
        if ctl.retry_pop.compare_exchange(pop, pop + 1, SeqCst, SeqCst).is_ok() {
            return Some(mk(e.index()));
        }
        me.held.store(JobIndex::NOTHING, SeqCst);
    }
    loop {
        let c = ctl.cursor.load(SeqCst);
        if c.job() != job || c.index() >= chunks {
            return None;
        }
        // A chunk whose arguments the parent is still writing: the caller idles until the
        // parent marks more chunks staged (which wakes it) or closes the cursor. Acquire pairs
        // with `mark_staged`'s release, so chunk `i < staged`'s arguments are visible.
        if c.index() >= d.staged.load(Acquire) {
            return None;
        }
        me.held.store(JobIndex::new(job, c.index()), SeqCst);
        if ctl.cursor.compare_exchange(c, c.next(), SeqCst, SeqCst).is_ok() {
            return Some(mk(c.index()));
        }
        me.held.store(JobIndex::NOTHING, SeqCst);
    }
}

fn run_chunk(
    ctl: &ControlBlock,
    me: &WorkerSlot,
    c: &Claim,
    cache: &mut MapCache,
    code: &CodeRanges,
    wake: RawFd,
) {
    let start = c.index.saturating_mul(c.chunk_size).min(c.len);
    let span = Span {
        index: c.index,
        start: start as usize,
        end: start.saturating_add(c.chunk_size).min(c.len) as usize,
        radius: c.radius as usize,
    };
    let (tramp_addr, kernel_addr) = (from_offset(c.trampoline), from_offset(c.kernel));
    let views = cache.views(ctl, c.generation);
    // A kernel job's stages are code too: every one is checked with the trampoline.
    let stages_ok = |v: &Views| v.job.running().iter().all(|&a| code.contains(a));
    let code_ok = cache.code_checked(c.generation, || {
        code.contains(tramp_addr)
            && code.contains(kernel_addr)
            && views.as_ref().is_ok_and(stages_ok)
    });
    let outcome = match views {
        Ok(_) if !code_ok => Err(format!(
            "the job names code addresses {tramp_addr:#x} / {kernel_addr:#x} outside this \
             program's code; the job descriptor is corrupt"
        )),
        Ok(views) => {
            // Only the parent writes the block (an anonymous mapping under fork; a memfd it holds
            // otherwise, README.md), from a `Trampoline` of this executable image (a fork of it, or
            // the same executable, where it checked both addresses lie) and a `fn` of its type.
            // SAFETY: so the offsets, from the same anchor, name that code here (checked above).
            let tramp: Trampoline = unsafe { std::mem::transmute::<usize, Trampoline>(tramp_addr) };
            // Tasks stamp their start in our slot when the pool has a task timeout.
            let timed = ctl.job.timed.is_set(Relaxed);
            if timed {
                // SAFETY: `me` is in the control block, mapped until this process exits; the
                // watch is cleared below, after the chunk.
                unsafe { task_clock::watch(Some(me)) };
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                // The views map the job's arrays as this worker opened them, each pointer valid
                // for the length it records; the parent keeps them borrowed (or owned) until
                // every chunk is done; the trampoline checks the span against every array's
                // mapped and expected length itself.
                // SAFETY: the two addresses as above; views valid as just said; the chunk was
                // claimed exclusively above.
                unsafe { tramp(kernel_addr, &views, &span) }
            }))
            .map_err(take_panic);
            if timed {
                // SAFETY: clearing is always sound.
                unsafe { task_clock::watch(None) };
            }
            outcome
        }
        Err(e) => Err(format!("the worker could not map the job's arrays: {e}")),
    };
    if let Err(msg) = outcome {
        ctl.mark_failed(c.index);
        ctl.record_error(FailKind::PANIC, c.index, sys::proc::getpid(), &msg);
    }
    ctl.mark_done(c.index);
    me.held.store(JobIndex::NOTHING, SeqCst);
    me.completed.fetch_add(1, Relaxed);
    let chunks = ctl.job.chunks.load(Relaxed);
    let finished = ctl.done.fetch_add(1, SeqCst) + 1 >= chunks;
    let parent = ctl.parent_sleeping.load(SeqCst);
    if (finished && parent.is_asleep()) || parent == ParentSleep::EACH_CHUNK {
        wake_parent(ctl, wake);
    }
}

/// Before a retiring worker exits holding spilled results (their memfds die with it): waits
/// until the parent has opened them (it clears `keeping`), a new job was published (the results
/// were read), the pool stops running, or the parent is gone. The parent looks at every wait and
/// poll; one byte in its wake pipe makes a sleeping parent look at once.
fn keep_spills(ctl: &ControlBlock, me: &WorkerSlot, parent_pid: u32, wake: RawFd) {
    let job = ctl.job_id.load(SeqCst);
    me.keeping.put(true, SeqCst);
    sys::fdpass::poke(wake);
    while me.keeping.is_set(SeqCst)
        && ctl.job_id.load(SeqCst) == job
        && ctl.state.load(SeqCst) == Phase::RUNNING
        && sys::proc::getppid() == parent_pid
    {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Wakes the parent if it sleeps: one byte into its wake pipe, which it polls together with
/// every worker's exit descriptor (README.md, "Sleeping and waking").
fn wake_parent(ctl: &ControlBlock, wake: RawFd) {
    if ctl.parent_sleeping.load(SeqCst).is_asleep() {
        sys::fdpass::poke(wake);
    }
}

/// How an [`idle`] wait ended.
enum Idle {
    /// `wake_seq` moved while spinning.
    Woken,
    /// After a futex sleep (woken, or the sleep slice ended); the parent lives.
    Slept,
    /// The parent died.
    ParentGone,
}

/// Waits for `wake_seq` to move on from `seen`: a short spin, then the futex.
fn idle(ctl: &ControlBlock, seen: u32, parent_pid: u32) -> Idle {
    let t0 = Instant::now();
    let mut i = 0u32;
    while ctl.wake_seq.load(Relaxed) == seen {
        std::hint::spin_loop();
        i = i.wrapping_add(1);
        if i.is_multiple_of(64) {
            // On an oversubscribed machine, let a runnable peer (the worker we wait for, or
            // the parent about to publish) have the core.
            std::thread::yield_now();
        }
        if i.is_multiple_of(64) && t0.elapsed() >= WORKER_SPIN {
            ctl.sleepers.fetch_add(1, SeqCst);
            if ctl.wake_seq.load(SeqCst) == seen {
                sys::futex::wait(&ctl.wake_seq, seen, Some(PARENT_CHECK));
            }
            ctl.sleepers.fetch_sub(1, SeqCst);
            return if sys::proc::getppid() == parent_pid { Idle::Slept } else { Idle::ParentGone };
        }
    }
    Idle::Woken
}

/// A kernel job's context from the descriptor (all zero for other jobs): stage offsets become
/// addresses here (checked to be code before any runs, in `run_chunk`).
fn job_ctx(ctl: &ControlBlock) -> JobCtx {
    let d = &ctl.job.stages;
    let mut j = JobCtx {
        first: d.first.load(Relaxed) as usize,
        count: d.count.load(Relaxed) as usize,
        inputs: d.inputs.load(Relaxed) as usize,
        outputs: d.outputs.load(Relaxed) as usize,
        ndim: (d.ndim.load(Relaxed) as usize).min(MAX_DIMS),
        access: &ctl.access,
        ..JobCtx::default()
    };
    for (dst, k) in j.stages.iter_mut().zip(&d.kernels).take(j.first.saturating_add(j.count)) {
        *dst = from_offset(k.load(Relaxed));
    }
    for (dst, n) in j.dims.iter_mut().zip(&d.dims) {
        *dst = n.load(Relaxed) as usize;
    }
    // Inputs and outputs must fit the user's slots (a corrupt count would index past them).
    j.inputs = j.inputs.min(MAX_JOB_ARRAYS);
    j.outputs = j.outputs.min(MAX_JOB_ARRAYS - j.inputs);
    j
}

/// The arrays a worker has mapped, by nonce, most recently used first.
#[derive(Default)]
struct MapCache {
    entries: Vec<(SegmentHandle, Segment)>,
    /// The views of the last descriptor seen, by its generation (the parent's 64-bit publish
    /// counter, which never repeats): every chunk of one job maps the same arrays.
    last: Option<(u64, Views)>,
    /// The generation whose code addresses were found inside this process's code (one check
    /// per job, not per chunk).
    code_ok: Option<u64>,
}

impl MapCache {
    /// Drops the cached mappings of arrays whose handle no longer leads to the same file (the
    /// parent dropped the array, closing its descriptor or removing its name). Only between
    /// jobs: the views of a job in flight come from `last`, which this clears.
    fn forget_gone(&mut self) {
        let before = self.entries.len();
        self.entries.retain(|(h, seg)| seg.is_file_at(&h.loc));
        if self.entries.len() != before {
            self.last = None;
        }
    }

    /// Whether the code addresses of the descriptor of `generation` pass `check`, which runs
    /// once per generation that passes.
    fn code_checked(&mut self, generation: u64, check: impl FnOnce() -> bool) -> bool {
        if self.code_ok == Some(generation) {
            return true;
        }
        let ok = check();
        if ok {
            self.code_ok = Some(generation);
        }
        ok
    }

    /// Maps (or finds) every array of the descriptor of `generation` and returns raw views.
    fn views(&mut self, ctl: &ControlBlock, generation: u64) -> Result<Views> {
        if let Some((g, v)) = self.last
            && g == generation
        {
            return Ok(v);
        }
        self.last = None;
        // A new job: the parent has read every spilled result of the earlier ones.
        task_kernel::drop_spills();
        let mut v = Views { job: job_ctx(ctl), ..Views::default() };
        for (i, a) in ctl.job.arrays.iter().enumerate().take(MAX_ARRAYS) {
            if a.tag.load(Relaxed) == ArrayKind::SCRATCH {
                let (off, len) = (a.offset.load(Relaxed) as usize, a.len.load(Relaxed) as usize);
                let elem = a.elem_size.load(Relaxed) as usize;
                if off.saturating_add(len.saturating_mul(elem)) > SCRATCH_BYTES {
                    return Err(Error::TooLarge { len, elem_size: elem });
                }
                // SAFETY: `off + len * elem` lies inside the scratch area (checked above).
                v.ptr[i] = unsafe { ctl.scratch_ptr().add(off) };
                (v.len[i], v.elem_size[i], v.expected_len[i]) = (len, elem, len);
                continue;
            }
            let Some(h) = a.get() else { continue };
            let pos = match self.entries.iter().position(|(e, _)| e.nonce == h.nonce) {
                Some(p) => p,
                None => {
                    // The task arena (a region) is touched only as far as a job's tasks go.
                    let populate = !a.region.is_set(Relaxed);
                    let seg = Segment::open(&h.loc, Some(h.nonce), populate)?;
                    self.entries.insert(0, (h, seg));
                    0
                }
            };
            let entry = self.entries.remove(pos);
            self.entries.insert(0, entry);
            let seg = &self.entries[0].1;
            let len = a.len.load(Relaxed) as usize;
            if a.region.is_set(Relaxed) {
                let (off, elem) =
                    (a.offset.load(Relaxed) as usize, a.elem_size.load(Relaxed) as usize);
                let bytes = seg.len().saturating_mul(seg.header().elem_size as usize);
                if off.saturating_add(len.saturating_mul(elem)) > bytes {
                    return Err(Error::TooLarge { len, elem_size: elem });
                }
                // SAFETY: `off + len * elem` lies inside the segment's data (checked above).
                v.ptr[i] = unsafe { seg.data_ptr().as_ptr().add(off) };
                (v.len[i], v.elem_size[i], v.expected_len[i]) = (len, elem, len);
                continue;
            }
            v.ptr[i] = seg.data_ptr().as_ptr();
            v.len[i] = seg.len();
            let hd = seg.header();
            v.elem_size[i] = hd.elem_size as usize;
            v.expected_len[i] = len;
            v.ty[i] = Some(TypeDesc {
                dtype: hd.dtype,
                type_hash: hd.type_hash,
                size: hd.elem_size,
                align: hd.elem_align,
            });
        }
        // Keep the arrays of this job mapped; let older ones go.
        let in_use =
            ctl.job.arrays.iter().filter(|a| a.tag.load(Relaxed) != ArrayKind::UNUSED).count();
        self.entries.truncate(CACHE_ENTRIES.max(in_use));
        self.last = Some((generation, v));
        Ok(v)
    }
}
