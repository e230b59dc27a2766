//! The background reaper: children nobody waits for any more (a dropped running `Process`, a
//! forkserver that outlived its shutdown timeout) are reaped at the next start in this process, so
//! they leave no zombie. A leaf: it knows pids and status pipes, not the `Process` handle.

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::time::Duration;

use crate::sys;

/// Children nobody waits for: (owner pid, child pid, status pipe).
static DETACHED: Mutex<Vec<(u32, u32, Option<File>)>> = Mutex::new(Vec::new());

/// Hands a child of ours that we no longer wait for to the background reaper; `relay` is a
/// forkserver child's status pipe (readable once it ended), `None` for a child of ours.
pub(crate) fn detach(pid: u32, relay: Option<File>) {
    DETACHED.lock().unwrap_or_else(|p| p.into_inner()).push((sys::proc::getpid(), pid, relay));
}

/// Reaps detached children that have ended; forgets entries inherited from a parent by fork.
pub(crate) fn reap_detached() {
    let me = sys::proc::getpid();
    let mut list = DETACHED.lock().unwrap_or_else(|p| p.into_inner());
    list.retain_mut(|(owner, pid, relay)| {
        if *owner != me {
            return false;
        }
        match relay {
            None => matches!(sys::proc::try_waitpid(*pid), Ok(None)),
            Some(f) => !sys::fdpass::wait_readable(f.as_fd(), Some(Duration::ZERO)).unwrap_or(true),
        }
    });
}
