//! Who this process is: Python's `current_process()` and `parent_process()`. A leaf: the start
//! methods' child sides set it (`fork.rs` and `builder.rs` in a forked child, `spawned.rs` and
//! `server.rs` from the job), before any of the user's code runs there.
//!
//! The identity is one leaked, immutable record behind an atomic pointer, set once per child
//! while it is single-threaded: a forked child may not take a lock another thread of its parent
//! held at the fork, and an atomic load takes none. The main process has no record and is
//! `MainProcess`, as in Python.

use std::sync::atomic::{AtomicPtr, Ordering};

use crate::sys;

/// Python's name for the process that was not started by shmpool.
const MAIN_NAME: &str = "MainProcess";

/// A child's identity, as its parent set it.
struct Identity {
    name: String,
    daemon: bool,
    /// The pid and name of the process that started this one.
    parent_pid: u32,
    parent_name: String,
}

/// The record of this process, null in the main process. A forked child inherits its parent's
/// pointer (and the record: the memory is copied) until it sets its own.
static IDENTITY: AtomicPtr<Identity> = AtomicPtr::new(std::ptr::null_mut());

fn own() -> Option<&'static Identity> {
    // SAFETY: the pointer is null or came from `Box::leak` in `become_child` and is never freed,
    // so it stays valid for the life of the process (a forked child has a copy of the record).
    unsafe { IDENTITY.load(Ordering::Acquire).as_ref() }
}

/// This process's name: `MainProcess` unless shmpool started it.
pub(crate) fn current_name() -> String {
    own().map_or_else(|| MAIN_NAME.to_string(), |i| i.name.clone())
}

/// Records, in a newly started child and before its body runs, who it is and who started it.
/// Called once per start (a forked child may call it twice: a default first, then its name).
pub(crate) fn become_child(name: String, daemon: bool, parent_pid: u32, parent_name: String) {
    let record = Box::leak(Box::new(Identity { name, daemon, parent_pid, parent_name }));
    IDENTITY.store(record, Ordering::Release);
}

/// Records, in a forked child, its name and daemon flag, keeping the parent `fork.rs` recorded.
pub(crate) fn rename_child(name: String, daemon: bool) {
    let (parent_pid, parent_name) = match own() {
        Some(i) => (i.parent_pid, i.parent_name.clone()),
        None => (sys::proc::getppid(), MAIN_NAME.to_string()),
    };
    become_child(name, daemon, parent_pid, parent_name);
}

/// A process as Python's `current_process()` and `parent_process()` describe it: name, pid
/// (`ident` too) and daemon flag.
///
/// ```
/// let me = shmpool::current_process();
/// assert_eq!(me.name(), "MainProcess");
/// assert_eq!(me.pid(), std::process::id());
/// assert_eq!(me.ident(), me.pid());
/// assert!(!me.daemon());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    name: String,
    pid: u32,
    daemon: bool,
}

impl ProcessInfo {
    pub(crate) fn new(name: String, pid: u32, daemon: bool) -> ProcessInfo {
        ProcessInfo { name, pid, daemon }
    }

    /// The name: `MainProcess` for a process shmpool did not start, else the name its
    /// [`ProcessBuilder`](crate::process::ProcessBuilder) gave it (default `Process-N`).
    ///
    /// ```
    /// assert_eq!(shmpool::current_process().name(), "MainProcess");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pid.
    ///
    /// ```
    /// assert_eq!(shmpool::current_process().pid(), std::process::id());
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Python's `ident`: the pid, as in Python.
    ///
    /// ```
    /// let me = shmpool::current_process();
    /// assert_eq!(me.ident(), me.pid());
    /// ```
    pub fn ident(&self) -> u32 {
        self.pid
    }

    /// Whether the process was started as a daemon
    /// ([`ProcessBuilder::daemon`](crate::process::ProcessBuilder::daemon)); `false` for the
    /// main process and for a parent (a child is not told its parent's flag).
    ///
    /// ```
    /// assert!(!shmpool::current_process().daemon());
    /// ```
    pub fn daemon(&self) -> bool {
        self.daemon
    }
}

/// This process (Python's `multiprocessing.current_process()`): `MainProcess` unless shmpool
/// started it; in a child, the name and daemon flag it was started with, under every start
/// method. A scope child or pool worker that was given no name is `Child-<pid>`.
///
/// ```
/// fn report(_: ()) -> i32 {
///     let me = shmpool::current_process();
///     if me.name() == "reporter" && me.pid() == std::process::id() { 0 } else { 1 }
/// }
/// let ctx = shmpool::get_context(shmpool::StartMethod::Spawn);
/// let mut p = ctx.process().name("reporter").start(report, ())?;
/// assert!(p.join()?.success());
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn current_process() -> ProcessInfo {
    let pid = sys::proc::getpid();
    match own() {
        Some(i) => ProcessInfo::new(i.name.clone(), pid, i.daemon),
        None => ProcessInfo::new(MAIN_NAME.to_string(), pid, false),
    }
}

/// The process that started this one (Python's `multiprocessing.parent_process()`): `None` in
/// the main process. Under `forkserver` it is the process that asked for the child, not the
/// server that forked it, as in Python. Its daemon flag reads `false`.
///
/// ```
/// assert_eq!(shmpool::parent_process(), None);
///
/// fn check(parent: u32) -> i32 {
///     match shmpool::parent_process() {
///         Some(p) if p.pid() == parent && p.name() == "MainProcess" => 0,
///         _ => 1,
///     }
/// }
/// let ctx = shmpool::get_context(shmpool::StartMethod::Spawn);
/// let mut p = ctx.start(check, std::process::id())?;
/// assert!(p.join()?.success());
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn parent_process() -> Option<ProcessInfo> {
    own().map(|i| ProcessInfo::new(i.parent_name.clone(), i.parent_pid, false))
}
