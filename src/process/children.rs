//! The children this process started and has not joined: Python's `active_children()`. A leaf
//! below `handle.rs`: a `Process` registers itself when it starts and is forgotten once its exit
//! status is known; the registry keeps its own copy of the child's exit descriptor (a pidfd, or
//! a forkserver child's status pipe), so it can tell a finished child without reaping it, which
//! would take the status from the handle that owns it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::time::Duration;

use super::identity::ProcessInfo;
use super::reaper;
use crate::sys;

/// A started child not known to have ended.
struct Entry {
    /// The process that started it (an entry inherited by a forked child is not the child's).
    owner: u32,
    pid: u32,
    name: String,
    daemon: bool,
    /// Readable once the child ended; `None` on a kernel without pidfds.
    exit: Option<OwnedFd>,
}

impl Entry {
    fn ended(&self) -> bool {
        match &self.exit {
            Some(fd) => {
                sys::fdpass::wait_readable(fd.as_fd(), Some(Duration::ZERO)).unwrap_or(true)
            }
            // No pidfd (Linux before 5.3): a zombie still exists, so it counts until joined.
            None => !sys::proc::pid_alive(self.pid),
        }
    }
}

static CHILDREN: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// Records a child just started; `exit` becomes readable when it ends (copied: the caller keeps
/// its own).
pub(crate) fn register(pid: u32, name: &str, daemon: bool, exit: Option<BorrowedFd<'_>>) {
    let exit = exit.and_then(|fd| fd.try_clone_to_owned().ok());
    let entry = Entry { owner: sys::proc::getpid(), pid, name: name.to_string(), daemon, exit };
    CHILDREN.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
}

/// Forgets a child whose exit status its handle now holds.
pub(crate) fn forget(pid: u32) {
    let me = sys::proc::getpid();
    let mut list = CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
    list.retain(|e| e.owner != me || e.pid != pid);
}

/// The children this process started that still run (Python's
/// `multiprocessing.active_children()`), in the order they were started: [`Process`]es not
/// joined yet, including ones whose handle was dropped while they ran (they are detached, and
/// still children), and the workers of a pool under `forkserver` or `spawn`.
///
/// As in Python, finished children are dropped from the list here, and children whose handle
/// was dropped are reaped. A child whose [`Process`] handle you still hold stays a zombie until
/// that handle is joined, polled ([`Process::is_alive`], [`Process::exitcode`]) or dropped: the
/// handle owns its exit status, which reaping it here would take away. Scope children and a
/// pool's workers under `fork` are not listed (their owners join them).
///
/// [`Process`]: crate::Process
/// [`Process::is_alive`]: crate::Process::is_alive
/// [`Process::exitcode`]: crate::Process::exitcode
///
/// ```
/// fn nap(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
/// let ctx = shmpool::get_context(shmpool::StartMethod::Spawn);
/// let mut p = ctx.process().name("napper").start(nap, 5_000)?;
/// let live = shmpool::active_children();
/// assert_eq!(live.len(), 1);
/// assert_eq!((live[0].name(), live[0].pid()), ("napper", p.pid()));
/// p.kill()?;
/// p.join()?;
/// assert!(shmpool::active_children().is_empty());
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn active_children() -> Vec<ProcessInfo> {
    reaper::reap_detached();
    let me = sys::proc::getpid();
    let mut list = CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
    list.retain(|e| e.owner == me && !e.ended());
    list.iter().map(|e| ProcessInfo::new(e.name.clone(), e.pid, e.daemon)).collect()
}
