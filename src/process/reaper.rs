//! The background reaper: children nobody waits for any more (a dropped running `Process`, a
//! forkserver that outlived its shutdown timeout) are reaped at the next start in this process, so
//! they leave no zombie. A leaf: it knows pids and status pipes, not the `Process` handle.

use std::any::Any;
use std::fs::File;
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::time::Duration;

use crate::sys;

/// What the parent keeps alive for a child until it ends: the arguments it was started with,
/// whose shared objects the child opens by handle (an anonymous segment's handle names the
/// parent's descriptor, which must stay open until the child has opened it).
pub(crate) type Kept = Box<dyn Any + Send>;

/// A child nobody waits for.
struct Detached {
    owner: u32,
    pid: u32,
    /// A forkserver child's status pipe; `None` for a child of ours.
    relay: Option<File>,
    kept: Option<Kept>,
}

static DETACHED: Mutex<Vec<Detached>> = Mutex::new(Vec::new());

/// Hands a child of ours that we no longer wait for to the background reaper; `relay` is a
/// forkserver child's status pipe (readable once it ended), `None` for a child of ours; `kept`
/// is dropped once the child has ended.
pub(crate) fn detach(pid: u32, relay: Option<File>, kept: Option<Kept>) {
    let entry = Detached { owner: sys::proc::getpid(), pid, relay, kept };
    DETACHED.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
}

/// Reaps detached children that have ended; forgets entries inherited from a parent by fork.
pub(crate) fn reap_detached() {
    let me = sys::proc::getpid();
    let mut list = DETACHED.lock().unwrap_or_else(|p| p.into_inner());
    list.retain_mut(|d| {
        if d.owner != me {
            // Another process's (copied by a fork): its values are not ours to drop.
            std::mem::forget(d.kept.take());
            return false;
        }
        match &d.relay {
            None => matches!(sys::proc::try_waitpid(d.pid), Ok(None)),
            Some(f) => !sys::fdpass::wait_readable(f.as_fd(), Some(Duration::ZERO)).unwrap_or(true),
        }
    });
}
