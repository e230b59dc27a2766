//! The "alive" pipe: the second guard (after the parent-death signal) that ends a child when
//! its parent dies.
//!
//! Each process that starts children makes one pipe. It alone holds the write end (close-on-exec,
//! and closed at once in forked children), so the write end closes exactly when the process
//! dies, however it dies. Every child gets the read end and asks the kernel, through `O_ASYNC`
//! with `F_SETSIG = SIGKILL` on a private open file description, to SIGKILL it on hang-up. Unlike
//! `PR_SET_PDEATHSIG`, which fires when the *thread* that forked exits, this fires only when the
//! whole process is gone, so it is safe for children started from short-lived threads.

use std::os::fd::{IntoRawFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use super::start_error::StartError;
use crate::sys;

static CREATE: Mutex<()> = Mutex::new(());
static READ: AtomicI32 = AtomicI32::new(-1);
static WRITE: AtomicI32 = AtomicI32::new(-1);
static OWNER: AtomicU32 = AtomicU32::new(0);

/// The read end of this process's alive pipe, made on first use.
pub(crate) fn read_end() -> Result<RawFd, StartError> {
    let me = sys::proc::getpid();
    if OWNER.load(Ordering::Acquire) == me {
        return Ok(READ.load(Ordering::Relaxed));
    }
    let _g = CREATE.lock().unwrap_or_else(|p| p.into_inner());
    if OWNER.load(Ordering::Acquire) != me {
        let (r, w) = sys::proc::pipe().map_err(StartError::io("creating the alive pipe"))?;
        READ.store(r.into_raw_fd(), Ordering::Relaxed);
        WRITE.store(w.into_raw_fd(), Ordering::Relaxed);
        OWNER.store(me, Ordering::Release);
    }
    Ok(READ.load(Ordering::Relaxed))
}

/// In a child: arm "SIGKILL me when the parent is gone" on the inherited read end `fd`.
/// Returns false when the parent is already gone (the caller then exits).
pub(crate) fn guard(fd: RawFd) -> bool {
    // An error arming it leaves the parent-death signal as the only guard; that is no reason to
    // refuse to run, but a hang-up already seen is.
    sys::signal::kill_on_hangup(fd).unwrap_or(true)
}

/// In a child made by `fork`: arm the guard on the parent's pipe, then close the parent's two
/// ends, so this child never keeps its siblings alive and makes its own pipe if it starts
/// children. Uses no locks (the parent may have had other threads).
pub(crate) fn guard_forked_child() -> bool {
    if OWNER.load(Ordering::Acquire) == 0 {
        return true;
    }
    let r = READ.swap(-1, Ordering::Relaxed);
    let w = WRITE.swap(-1, Ordering::Relaxed);
    OWNER.store(0, Ordering::Release);
    let ok = guard(r);
    // SAFETY: `r` and `w` are this process's inherited copies of the parent's pipe ends, owned
    // by these statics (now reset), so nothing else closes or uses them.
    unsafe {
        libc::close(w);
        libc::close(r);
    }
    ok
}
