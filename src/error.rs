//! The crate's errors, by family. Every message says what happened and how to fix it.
//!
//! [`Error`] is the umbrella every fallible call converts into, so `?` into [`Result`] works
//! everywhere. Its variants are grouped by family, each section headed by what returns it. Where
//! an operation can fail in only a few ways, it returns a small type of its own that names
//! exactly those ways (as `crossbeam-channel` does for its channels) and converts into the
//! matching [`Error`] variant, with the same message:
//!
//! | family | returned by | type |
//! |---|---|---|
//! | segments | creating or opening any shared object (`new`, `new_with`, `open`, `open_handle`), [`segment::inspect`](crate::segment::inspect), [`clean_stale`](crate::clean_stale) | [`Error`]: `OutOfSpace`, `AlreadyExists`, `NotFound`, `InvalidName`, `NotShmpool`, `CorruptHeader`, `VersionMismatch`, `KindMismatch`, `TypeMismatch`, `StaleHandle`, `TooLarge`, `InvalidShape` |
//! | arguments and waits | any call that checks a size or count; any wait given a timeout | [`Error`]: `InvalidArgument`, `Timeout` |
//! | synchronisation | locking a [`Mutex`](crate::Mutex), [`RLock`](crate::RLock) or [`SharedValue`](crate::SharedValue) | [`LockError`](crate::sync::LockError) (its `OwnerDied` carries the guard), converting into [`Error`]: `OwnerDied`, `NotRecoverable`, `WouldBlock`, `WouldDeadlock`, `TooManyLocksHeld`, `Timeout`, `Io` |
//! | synchronisation | [`Semaphore`](crate::Semaphore), [`BoundedSemaphore`](crate::BoundedSemaphore), [`Barrier`](crate::Barrier), [`Condition`](crate::Condition) | [`Error`]: `OverRelease`, `BrokenBarrier`, `BarrierActionPanicked`, `OwnerDied` (a condition's lock), `Timeout` |
//! | process start | [`scope`](crate::scope), [`Process`](crate::Process), [`Context`](crate::Context), the start methods, pool workers starting | [`Error`]: `ForkWithThreads`, `ForkWhileLocked`, `NotShared`, `ClosureNeedsFork`, `Serialize`, `SpawnUnavailable`, `ForkServer`, `ChildFailed`; [`set_start_method`](crate::process::set_start_method): `StartMethodAlreadySet` |
//! | pool jobs | [`Pool`](crate::Pool), [`PoolBuilder`](crate::pool::PoolBuilder), [`AsyncResult`](crate::pool::AsyncResult), [`JobHandle`](crate::pool::JobHandle) | [`Error`]: `PoolSize`, `CpuNotAllowed`, `PoolNotRunning`, `PoolStillRunning`, `PoolNotOwned`, `PoolGaveUp`, `KernelPanicked`, `WorkerDied`, `TaskFailed`, `TaskValueTooLarge`, `TaskValue`, `LengthMismatch`, `ResultUnavailable` |
//! | messaging: queues | [`Queue`](crate::Queue) and [`JoinableQueue`](crate::JoinableQueue): `get`, `get_timeout`, `get_nowait` | [`GetError`](crate::queue::GetError), [`GetTimeoutError`](crate::queue::GetTimeoutError), [`TryGetError`](crate::queue::TryGetError) |
//! | messaging: queues | the same: `put`, `put_timeout`, `put_nowait` | [`PutError`](crate::queue::PutError), [`PutTimeoutError`](crate::queue::PutTimeoutError), [`TryPutError`](crate::queue::TryPutError) |
//! | messaging: queues | [`JoinableQueue`](crate::JoinableQueue): `task_done`, `join`, `join_timeout` | [`TaskDoneError`](crate::queue::TaskDoneError), [`JoinError`](crate::queue::JoinError), [`JoinTimeoutError`](crate::queue::JoinTimeoutError) |
//! | messaging: queues | [`MessageQueue`](crate::MessageQueue): `get` and `get_bytes`, `get_timeout`, `get_nowait` | [`MessageGetError`](crate::queue::MessageGetError), [`MessageGetTimeoutError`](crate::queue::MessageGetTimeoutError), [`MessageTryGetError`](crate::queue::MessageTryGetError) |
//! | messaging: queues | the same: `put` and `put_bytes`, `put_timeout`, `put_nowait` | [`MessagePutError`](crate::queue::MessagePutError), [`MessagePutTimeoutError`](crate::queue::MessagePutTimeoutError), [`MessageTryPutError`](crate::queue::MessageTryPutError) |
//! | messaging: pipes | [`Connection`](crate::Connection), [`pipe`](crate::pipe) | [`Error`]: `Closed`, `Disconnected`, `MessageTooLarge`, `BadMessage`, `TruncatedFrame`, `BufferTooSmall`, `Timeout` |
//! | managers and listeners | [`Manager`](crate::Manager), its proxies, [`Listener`](crate::connection::Listener), [`Client`](crate::connection::Client) | [`Error`]: `AuthenticationFailed`, `ManagerGone`, `ManagerRefused`, and the messaging variants above |
//! | the operating system | any call whose system call failed with no more specific variant | [`Error`]: `Io` |
//!
//! The queue types convert into the messaging variants `Empty`, `Full`, `Closed`, `PeerDied`,
//! `SlotAbandoned`, `TaskDoneTooOften`, `MessageTooLarge`, `BadMessage` and `Timeout`.

use std::io;
use std::time::Duration;

/// Everything that can go wrong in shmpool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- Segments ----
    // Returned by whatever creates or opens a segment: `SharedArray`, `RawValue`/`SharedValue`,
    // the sync objects, the queues (`new`, `new_with`, `open`, `open_handle`),
    // `segment::inspect`/`unlink`, `clean_stale`, and the pool when it maps a task's arrays.
    /// The segment would not fit in the memory that is left.
    #[error(
        "{place} has {} free, {} requested; {fix}",
        human_bytes(*available),
        human_bytes(*requested)
    )]
    OutOfSpace {
        /// Where the bytes were to come from ("/dev/shm", "memory").
        place: &'static str,
        /// Bytes the segment needs, header included.
        requested: u64,
        /// Bytes that were free when it was asked for.
        available: u64,
        /// What the user can do about it.
        fix: &'static str,
    },

    /// A segment of that name exists already.
    #[error(
        "a shared memory segment named {name} already exists; pick another name, open the existing \
         one, or remove it (shmpool::segment::unlink, or shmpool::clean_stale if its creator is dead)"
    )]
    AlreadyExists {
        /// The segment's name.
        name: String,
    },

    /// No segment of that name exists.
    #[error(
        "no shared memory segment named {name}; check the name, and that its creator still runs"
    )]
    NotFound {
        /// The segment's name.
        name: String,
    },

    /// The name cannot be a POSIX shared-memory name.
    #[error("invalid segment name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The segment exists but was not made by shmpool (or not yet finished by its creator).
    #[error(
        "{what} is not a shmpool segment (no shmpool header); only segments created by shmpool \
         (or its Python helper) can be opened"
    )]
    NotShmpool {
        /// The segment's name or handle.
        what: String,
    },

    /// The header is damaged or disagrees with the segment's size.
    #[error("the header of {what} is corrupt: {reason}")]
    CorruptHeader {
        /// The segment's name or handle.
        what: String,
        /// Which check failed.
        reason: String,
    },

    /// The segment was written by an incompatible shmpool layout version.
    #[error(
        "{what} has header layout version {found}, this build reads version {expected}; use the same shmpool version on both sides"
    )]
    VersionMismatch {
        /// The segment's name or handle.
        what: String,
        /// The version in the header.
        found: u32,
        /// The version this build writes and reads.
        expected: u32,
    },

    /// The segment holds another kind of object (say, a semaphore where an array was expected).
    #[error("{what} holds a {found}, but was opened as a {expected}")]
    KindMismatch {
        /// The segment's name or handle.
        what: String,
        /// What the caller asked for.
        expected: &'static str,
        /// What the header says it holds.
        found: &'static str,
    },

    /// The element type does not match the one the segment was created with.
    #[error(
        "{what} holds elements of type {found}, but was opened as {expected}; open it with the element type it was created with"
    )]
    TypeMismatch {
        /// The segment's name or handle.
        what: String,
        /// The type the caller asked for.
        expected: String,
        /// The type in the header.
        found: String,
    },

    /// The handle refers to a segment that no longer exists or is not the one it named.
    #[error("stale handle {what}: {reason}")]
    StaleHandle {
        /// The handle, printed.
        what: String,
        /// Why it could not be resolved.
        reason: String,
    },

    /// A requested size does not fit in memory addresses.
    #[error("{len} elements of {elem_size} bytes overflow the address space; use a smaller array")]
    TooLarge {
        /// Elements asked for.
        len: usize,
        /// Bytes per element.
        elem_size: usize,
    },

    /// A shape that cannot describe a shared array, or that does not match its length.
    #[error("shape {shape:?}: {reason}")]
    InvalidShape {
        /// The shape as given (or as a segment's header records it).
        shape: Vec<usize>,
        /// What is wrong with it, and what to do instead.
        reason: String,
    },

    // ---- Arguments and waits ----
    // Returned by any call that takes a size or count it must check, and by any wait given a
    // timeout (locks, barriers, pipes, pool results, the forkserver). The queues report their own
    // timeouts through their error types (`queue::GetTimeoutError`, ...), which convert to these.
    /// An argument is out of range.
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// The argument.
        what: &'static str,
        /// What is wrong, and what is allowed.
        reason: String,
    },

    /// A wait ran out of time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was being waited for.
        what: &'static str,
        /// The timeout that passed.
        after: Duration,
    },

    // ---- Synchronisation ----
    // Returned by `Mutex`, `RLock`, `SharedValue` (through `LockError`),
    // `Semaphore`/`BoundedSemaphore`, `Barrier` and `Condition`.
    /// A lock's holder died while holding it (the `?` conversion of
    /// [`LockError::OwnerDied`](crate::sync::LockError::OwnerDied), which leaves the lock unusable).
    #[error(
        "the holder of a {what} died while holding it, so the data it protects may be half-written; \
         match LockError::OwnerDied, check or repair the data and call recover() (letting the \
         outcome drop, as `?` does, leaves the lock permanently unusable)"
    )]
    OwnerDied {
        /// What was being locked ("mutex", "reentrant lock", "locked value").
        what: &'static str,
    },

    /// A lock whose dead holder's state was never recovered.
    #[error(
        "the {what} is unusable: a holder died while holding it and the next locker did not call \
         recover(), or a thread exited holding it (its guard leaked with mem::forget or \
         Box::leak) while its process lived on; create a new one and rebuild the data it \
         protected"
    )]
    NotRecoverable {
        /// What was being locked.
        what: &'static str,
    },

    /// A non-blocking attempt found the object taken.
    #[error(
        "the {what} is held elsewhere; wait for it with the blocking call or its timeout variant"
    )]
    WouldBlock {
        /// What was being acquired.
        what: &'static str,
    },

    /// The calling thread already holds this (non-reentrant) lock.
    #[error(
        "this thread already holds the {what}, and locking it again would wait forever; drop the \
         first guard before locking again, or use an RLock"
    )]
    WouldDeadlock {
        /// What was being locked.
        what: &'static str,
    },

    /// The barrier was broken by a timeout, a dead waiting party, `abort`, or a `reset` while
    /// parties waited.
    #[error(
        "the barrier is broken (a party timed out or died while waiting, abort() was called, or \
         reset() ran while parties waited); call reset() before using it again"
    )]
    BrokenBarrier,

    /// The barrier's action (`Barrier::with_action`) panicked in this party: the round was not
    /// released, and the barrier is broken for every party (Python's `BrokenBarrierError`).
    #[error(
        "the barrier's action panicked ({message}); the barrier is broken for every party: fix \
         the action, then call reset() before using the barrier again"
    )]
    BarrierActionPanicked {
        /// The panic's message.
        message: String,
    },

    /// A semaphore was released past its bound.
    #[error(
        "semaphore released past its bound: its value is already {value}, the most it may hold; \
         release only what was acquired (a BoundedSemaphore's bound is its initial value)"
    )]
    OverRelease {
        /// The value it already had.
        value: u32,
    },

    /// This thread already holds as many robust locks as the kernel releases when a thread dies
    /// (2048): one more could stay locked forever if the thread died.
    #[error(
        "this thread holds {held} robust locks (Mutex, RLock, SharedValue guards) already, the \
         most the kernel releases when a thread dies; drop a guard before taking another lock, \
         or take it on another thread"
    )]
    TooManyLocksHeld {
        /// Robust locks the thread holds.
        held: u32,
    },

    // ---- Process start ----
    // Returned by `scope` (`fork`, `fork_with`, joining its children), `Process`/`ProcessBuilder`
    // (`start`, `join`), `Context` and the start methods (fork, forkserver, spawn), and the pool
    // when it starts workers. Inside the crate, the parent-side start methods return
    // `process::start_error::StartError`, which converts into these.
    /// Forking now could deadlock the child, because the process has other threads.
    #[error(
        "refusing to fork: this process has {threads} threads, and a lock held by another thread \
         at the fork stays held forever in the child; fork before starting threads, use the \
         forkserver or spawn start method, or opt in with (unsafe) allow_threads() if the child only \
         touches shared memory"
    )]
    ForkWithThreads {
        /// Threads counted in /proc/self/task.
        threads: usize,
    },

    /// A fork was asked for while this process holds a shmpool lock guard (live, or leaked with
    /// `mem::forget`/`Box::leak`): the child would get a copy of the guard, or of a `&mut` taken
    /// from it, and write the data the parent's guard protects.
    #[error(
        "cannot fork while this process holds {held} shmpool lock guard(s): a forked child would \
         get a copy of the guard and write the data it protects alongside this process; drop \
         the guard before forking (a guard leaked with mem::forget or Box::leak keeps forks \
         refused for the rest of the process)"
    )]
    ForkWhileLocked {
        /// Guards this process holds.
        held: usize,
    },

    /// A slice lent mutably to a forked child does not lie in a shared array: the child would
    /// write its own private copy, and the parent would never see the writes (or, inside a lock
    /// made for sharing, write data the parent's guard protects).
    #[error(
        "{what} lent to a child is not part of a SharedArray or RawValue ({bytes} bytes at \
         {addr:#x}); the child would write a private copy the parent never sees: allocate the \
         data as a SharedArray (or lend it immutably)"
    )]
    NotShared {
        /// What was lent ("a mutable slice").
        what: &'static str,
        /// The address of its first byte.
        addr: usize,
        /// Its size in bytes.
        bytes: usize,
    },

    /// A closure was given to a start method that cannot carry one to the child.
    #[error(
        "a closure can only be started under the fork start method, and this context uses \
         {method}; pass a fn item and serde-serializable arguments to start() instead, or use \
         get_context(StartMethod::Fork)"
    )]
    ClosureNeedsFork {
        /// The context's start method.
        method: &'static str,
    },

    /// The arguments for a spawn or forkserver child could not be serialized.
    #[error(
        "could not serialize the child's arguments: {reason}; make the argument type \
         serde-serializable (handles, not mappings: pass SharedArray::handle()), or use the fork \
         start method"
    )]
    Serialize {
        /// What serde said.
        reason: String,
    },

    /// The spawn and forkserver start methods cannot re-execute this program.
    #[error(
        "spawn and forkserver start a child by re-executing this program, but {reason}; use the \
         fork start method here"
    )]
    SpawnUnavailable {
        /// Why the program cannot be re-executed as a worker.
        reason: String,
    },

    /// The forkserver could not be used.
    #[error(
        "the forkserver {reason}; check that the program starts cleanly when re-executed with \
         SHMPOOL_WORKER set (shmpool's constructor must be linked, or shmpool::init() must be \
         the first call in main); the next start launches a new server"
    )]
    ForkServer {
        /// What went wrong.
        reason: String,
    },

    /// [`set_start_method`](crate::process::set_start_method) after the default start method
    /// was already set or used.
    #[error(transparent)]
    StartMethodAlreadySet(#[from] crate::process::StartMethodAlreadySet),

    /// A child process ended badly.
    #[error("child process {pid} {how}")]
    ChildFailed {
        /// The child's pid.
        pid: u32,
        /// How it ended, in words ("exited with code 3", "was killed by signal 9 (SIGKILL)",
        /// "panicked: ...").
        how: String,
    },

    // ---- Pool jobs ----
    // Returned by `Pool`/`PoolBuilder` (`build`, `for_each_chunk`, `map_reduce`, `apply`, `map`,
    // `imap`, `close`, `join`, ...) and by `AsyncResult`/`JobHandle`.
    /// A pool was asked for zero workers (or more than it supports).
    #[error(
        "a pool needs between 1 and {max} workers, {requested} were asked for; pass a count in that range, or leave it unset for one per available CPU"
    )]
    PoolSize {
        /// Workers asked for.
        requested: usize,
        /// The most a pool supports.
        max: usize,
    },

    /// A pool's CPU affinity names a CPU this process may not run on (outside its
    /// `sched_getaffinity` set).
    #[error(
        "worker {worker}'s CPU set names CPU {cpu}, which this process may not run on (it may run \
         on CPUs {allowed}); pick CPUs from that list (Affinity::RoundRobin does), or widen this \
         process's affinity first (taskset, sched_setaffinity)"
    )]
    CpuNotAllowed {
        /// The worker slot whose set is wrong.
        worker: usize,
        /// The CPU asked for.
        cpu: usize,
        /// The CPUs this process may run on, in Linux's list format ("0-3,6").
        allowed: String,
    },

    /// The pool was closed or terminated, so it takes no more work.
    #[error("the pool is {state}; build a new pool for more work")]
    PoolNotRunning {
        /// "closed" or "terminated".
        state: &'static str,
    },

    /// `join` was called on a pool that is still running.
    #[error(
        "join() needs a closed or terminated pool; call close() (let work finish) or terminate() first"
    )]
    PoolStillRunning,

    /// A pool was used from a process other than the one that created it (a forked child that
    /// got a copy of it). Its workers answer only to their creator.
    #[error(
        "this pool belongs to process {owner} and cannot be used from process {pid} (a forked copy); create a new Pool in this process, or hand the work back to process {owner}"
    )]
    PoolNotOwned {
        /// The process that tried to use the pool.
        pid: u32,
        /// The process that created it.
        owner: u32,
    },

    /// The pool gave up (its workers kept failing in the initializer) and was terminated: every
    /// pending result and every later call carries the reason.
    #[error("the pool gave up after worker {pid} {how}")]
    PoolGaveUp {
        /// The last worker that failed.
        pid: u32,
        /// How it failed, how often, and what to do.
        how: String,
    },

    /// A kernel panicked on one chunk; the job's other chunks ran.
    #[error(
        "the kernel panicked on chunk {chunk} (worker {pid}): {message}; the other chunks ran and the pool is still usable"
    )]
    KernelPanicked {
        /// The chunk index.
        chunk: u64,
        /// The worker that ran it.
        pid: u32,
        /// The panic message.
        message: String,
    },

    /// A worker process died while it held a chunk, and no retry was left for it.
    #[error(
        "pool worker {pid} {how} while running chunk {chunk}; the chunk was not completed (the other chunks ran, and a new worker replaced it); opt in to retries (PoolBuilder::retries) if the kernel is idempotent"
    )]
    WorkerDied {
        /// The dead worker's pid.
        pid: u32,
        /// How it ended ("was killed by signal 9 (SIGKILL)").
        how: String,
        /// The chunk it held.
        chunk: u64,
        /// The signal that killed it, if one did.
        signal: Option<i32>,
    },

    /// A task ran past the pool's task timeout
    /// ([`PoolBuilder::task_timeout`](crate::pool::PoolBuilder::task_timeout)): its worker was
    /// killed (SIGKILL) and replaced; the other tasks ran.
    #[error(
        "task {task} ran past the pool's task timeout of {after:?}, so its worker {pid} was killed and replaced (the other tasks ran and the pool is still usable); raise PoolBuilder::task_timeout, or make the task end sooner"
    )]
    TaskTimedOut {
        /// The task's index in the call's arguments.
        task: usize,
        /// The killed worker's pid.
        pid: u32,
        /// The timeout it ran past.
        after: Duration,
    },

    /// A task returned `Err` (a `try_*` task call): its error's message, with the task's index.
    #[error(
        "task {task} returned an error: {message}; the other tasks ran and the pool is still usable"
    )]
    TaskFailed {
        /// The task's index in the call's arguments.
        task: usize,
        /// The task error's `Display` text.
        message: String,
    },

    /// A task's serialized argument or result is larger than the pool's limit.
    #[error(
        "the {what} of task {task} is {bytes} bytes serialized, over the pool's limit of {limit} bytes; raise PoolBuilder::max_task_bytes, or put the data in a SharedArray and pass indices"
    )]
    TaskValueTooLarge {
        /// The task's index.
        task: usize,
        /// `"argument"` or `"result"`.
        what: &'static str,
        /// Its size as staged, exact: the serialized (postcard) size, or the raw bytes of a
        /// [`Pool::map_ref`](crate::Pool::map_ref) argument.
        bytes: usize,
        /// The limit.
        limit: usize,
    },

    /// A task's argument or result could not be serialized or deserialized (postcard).
    #[error(
        "the {what} of task {task} could not be {how}: {reason}; check the type's Serialize/Deserialize impls agree (the types of the task fn and of the call must match)"
    )]
    TaskValue {
        /// The task's index.
        task: usize,
        /// `"argument"` or `"result"`.
        what: &'static str,
        /// `"serialized"`, `"deserialized"`, or `"read"` (a spilled result that could not be
        /// reached).
        how: &'static str,
        /// What serde said.
        reason: String,
    },

    /// Arrays handed to one job have different lengths.
    #[error(
        "the arrays of a zip job must have the same length, got {lens:?}; slice or resize them to match"
    )]
    LengthMismatch {
        /// The lengths seen.
        lens: Vec<usize>,
    },

    /// A kernel job's parameter block is larger than a job descriptor carries
    /// ([`Pool::job`](crate::Pool::job)).
    #[error(
        "the job's parameter block is {bytes} bytes, over the limit of {max}; put large parameters in a SharedArray and pass it as an input"
    )]
    ParamsTooLarge {
        /// `size_of` the parameter block.
        bytes: usize,
        /// The most a job carries.
        max: usize,
    },

    /// A kernel job was given more arrays than a job descriptor holds.
    #[error(
        "a kernel job takes at most {max} arrays (inputs and outputs together), got {count}; split the work into several jobs, or pack related arrays into one array of a struct"
    )]
    TooManyArrays {
        /// Arrays given.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// A kernel job was given more stages than a job descriptor holds.
    #[error(
        "a kernel job takes at most {max} stages, got {count}; merge stages that need no halo into one kernel, or run two jobs"
    )]
    TooManyStages {
        /// Stages given.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// An array of a kernel job does not have the job's shape (or length).
    #[error(
        "{array} of the job has shape {found:?}, but the job has shape {expected:?}; give every array of a job the same number of elements (and shape)"
    )]
    ShapeMismatch {
        /// Which array ("input 1", "output 0").
        array: String,
        /// Its shape (`[len]` for a 1-D array).
        found: Vec<usize>,
        /// The job's shape.
        expected: Vec<usize>,
    },

    /// The same array was given to one kernel job as an input and an output (or twice as an
    /// output).
    #[error(
        "{second} of the job is the same array as {first}; a job cannot read or write an array while it writes it elsewhere: pass it once, as an output (outputs can be read too)"
    )]
    ArrayAliased {
        /// The first position it was given in ("input 0").
        first: String,
        /// The second ("output 1").
        second: String,
    },

    /// A chunk size given to a kernel job would split a row of its shaped arrays.
    #[error(
        "a chunk size of {chunk_size} elements would split rows of {row_len} elements; use a multiple of the row length, or leave the chunk size to the pool"
    )]
    ChunkSplitsRows {
        /// The chunk size given, in elements.
        chunk_size: usize,
        /// Elements per row of the outer axis.
        row_len: usize,
    },

    /// A stage's halo reaches further than the job's arrays are long.
    #[error(
        "stage {stage} of the job has a halo of {radius} rows, but the job has only {rows}; use a radius of at most {rows}"
    )]
    HaloTooLarge {
        /// The stage's index.
        stage: usize,
        /// Its halo radius, in rows of the outer axis (elements for 1-D arrays).
        radius: usize,
        /// Rows in the job.
        rows: usize,
    },

    /// An asynchronous result cannot be given (yet, or any more).
    #[error("{reason}")]
    ResultUnavailable {
        /// Why, and what to do.
        reason: &'static str,
    },

    // ---- Messaging ----
    // Returned by `Connection` (`pipe`, `send`, `recv`, ...) directly, and by the queues through
    // their per-operation types in `shmpool::queue` (`TryGetError`, `PutTimeoutError`,
    // `MessageGetError`, ...), each of which converts into these variants, so `?` into
    // `shmpool::Result` keeps working.
    /// A non-blocking `get` found nothing.
    #[error("the {what} is empty; wait with get or get_timeout, or check is_empty() first")]
    Empty {
        /// Which object ("queue", "message queue").
        what: &'static str,
    },

    /// A non-blocking `put` found no room.
    #[error(
        "the {what} is full ({capacity}); wait with put or put_timeout, drain it, or create it larger"
    )]
    Full {
        /// Which object ("queue", "message queue").
        what: &'static str,
        /// Its capacity, in words ("1024 items", "64 KiB").
        capacity: String,
    },

    /// The object was closed, by this process or another.
    #[error("the {what} is closed; stop using it, or create a new one")]
    Closed {
        /// Which object ("queue", "message queue", "connection").
        what: &'static str,
    },

    /// Every process on the other side of a queue is gone, so the wait could never end.
    #[error(
        "every {role} of the {what} has exited (pids {pids:?}) and the wait could never end; \
         check why they died, or keep a {role} alive"
    )]
    PeerDied {
        /// Which object ("queue", "message queue", "joinable queue").
        what: &'static str,
        /// Which side is gone ("producer", "consumer").
        role: &'static str,
        /// The pids that were registered on that side.
        pids: Vec<u32>,
    },

    /// A process died in the middle of a queue operation, between claiming a slot and handing
    /// it on, so the queue can no longer go past that slot.
    #[error(
        "a {role} of this {what} died in the middle of an operation on position {pos}; the item \
         there is lost and the queue cannot go past it: close the queue and create a new one"
    )]
    SlotAbandoned {
        /// Which object ("queue", "joinable queue").
        what: &'static str,
        /// Which side died mid-operation ("producer", "consumer").
        role: &'static str,
        /// The ring position that is stuck.
        pos: u64,
    },

    /// `task_done` was called more times than items were put.
    #[error(
        "task_done() called more times than items were put in the joinable queue; call it once per item you got"
    )]
    TaskDoneTooOften,

    /// The peer of a connection closed its end or died.
    #[error(
        "the peer of this {what} closed its end or exited; make sure it stays alive until the exchange ends"
    )]
    Disconnected {
        /// Which object ("connection").
        what: &'static str,
    },

    /// A message is larger than the limit stated when the channel was created.
    #[error(
        "a message of {} exceeds the {} limit of this {what}; send smaller messages or create \
         the {what} with a larger maximum",
        human_bytes(*len),
        human_bytes(*max)
    )]
    MessageTooLarge {
        /// Which object ("connection", "message queue").
        what: &'static str,
        /// The message's size in bytes.
        len: u64,
        /// The limit in bytes.
        max: u64,
    },

    /// A message could not be encoded or decoded, or a frame is malformed.
    #[error("bad message on this {what}: {reason}; send and receive the same type on both ends")]
    BadMessage {
        /// Which object ("connection", "message queue").
        what: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// The stream ended in the middle of a frame.
    #[error(
        "truncated frame on this {what}: {got} of {expected} bytes arrived before the stream ended; the sender died or closed mid-message"
    )]
    TruncatedFrame {
        /// Which object ("connection").
        what: &'static str,
        /// Bytes the frame promised.
        expected: u64,
        /// Bytes that arrived.
        got: u64,
    },

    /// The caller's buffer cannot hold the next message; it stays queued for a larger buffer.
    #[error(
        "the next message is {needed} bytes but the buffer holds {len}; call again with a buffer of at least {needed} bytes"
    )]
    BufferTooSmall {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes the buffer had.
        len: usize,
    },

    // ---- Managers and listeners ----
    // Returned by `connection::Listener` and `connection::Client` (the handshake), and by the
    // `Manager`, its builder and its proxies.
    /// The `authkey` handshake failed: the two sides do not hold the same key.
    #[error(
        "authentication with {peer} failed: {reason}; give both sides the same authkey (a \
         Manager's is Manager::authkey())"
    )]
    AuthenticationFailed {
        /// The other side's address, or "a client".
        peer: String,
        /// What went wrong ("the server refused our answer", ...).
        reason: &'static str,
    },

    /// The manager's server process is gone (it exited or was killed), or a restarted server
    /// now answers at its address: proxies of the old one cannot reach their objects.
    #[error(
        "the manager at {address} is gone ({reason}); its objects went with it: start a new \
         Manager (a restarted server is a new server, with none of the old objects)"
    )]
    ManagerGone {
        /// The manager's address.
        address: String,
        /// How that was noticed.
        reason: String,
    },

    /// The manager's server refused a request (an object it does not hold, a custom type not
    /// registered, an operation the object does not have).
    #[error("the manager refused the request: {reason}")]
    ManagerRefused {
        /// Why, with the fix.
        reason: String,
    },

    // ---- The operating system ----
    // Returned by any call whose system call failed in a way no variant above names.
    /// A system call failed.
    #[error("{op} failed: {source}")]
    Io {
        /// The operation, in words.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// `Result` with shmpool's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an OS error with the name of the operation that failed.
    pub(crate) fn io(op: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { op, source }
    }
}

/// Formats a byte count the way people read it: "60 MiB", "1.5 GiB", "512 B".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 || v.fract() < 0.05 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_reads_naturally() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(60 << 20), "60 MiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn out_of_space_message_names_both_sizes_and_the_fix() {
        let e = Error::OutOfSpace {
            place: "/dev/shm",
            requested: 256 << 20,
            available: 60 << 20,
            fix: "mount a larger /dev/shm or use a smaller array",
        };
        assert_eq!(
            e.to_string(),
            "/dev/shm has 60 MiB free, 256 MiB requested; mount a larger /dev/shm or use a smaller array"
        );
    }

    #[test]
    fn a_start_method_set_twice_converts_with_its_message() {
        let inner = crate::process::StartMethodAlreadySet { current: crate::StartMethod::Spawn };
        let e: Error = inner.clone().into();
        assert!(matches!(&e, Error::StartMethodAlreadySet(x) if *x == inner));
        assert_eq!(e.to_string(), inner.to_string());
        assert!(e.to_string().contains("force_start_method"), "{e}");
    }
}
