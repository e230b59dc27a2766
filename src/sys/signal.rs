//! Signal plumbing for child processes: SIGPIPE, the SIGCHLD mask and signalfd of the
//! forkserver (and how it looks at a dead child before reaping it), signalling through a pidfd,
//! and "kill me when this pipe's writers are gone".

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags};

use super::cvt;
use super::proc::Exit;

/// A dead child of this process, looked at without reaping it (`waitid` with `WNOWAIT`): its pid
/// stays taken, so cannot be reused, until it is reaped. `None` when no child has ended.
pub(crate) fn peek_dead_child() -> io::Result<Option<(u32, Exit)>> {
    // SAFETY: siginfo_t is plain data; all-zero is a valid value, and si_pid 0 means "none".
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: `info` is a valid out-pointer for the call's duration.
    match super::cvt_retry(|| unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) }) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Ok(None),
        Err(e) => return Err(e),
    }
    // SAFETY: waitid filled `info` for a child state change (SIGCHLD layout), or left it zeroed.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    let exit =
        if info.si_code == libc::CLD_EXITED { Exit::Code(status) } else { Exit::Signal(status) };
    Ok(Some((pid as u32, exit)))
}

/// A pidfd for process `pid`, which keeps naming that process even after its pid is reused;
/// `Ok(None)` on kernels without pidfds (before Linux 5.3).
pub(crate) fn pidfd_open(pid: u32) -> io::Result<Option<OwnedFd>> {
    // 0 and "negative" pids: EINVAL, the kernel's answer to them.
    let pid = i32::try_from(pid).ok().and_then(Pid::from_raw).ok_or(Errno::INVAL)?;
    match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOSYS) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Sends `sig` to the process a pidfd names.
pub(crate) fn pidfd_send_signal(fd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: the descriptor is a valid pidfd; a null siginfo pointer is allowed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Ignores SIGPIPE, as Rust's runtime does before `main`: a write to a closed pipe becomes an
/// `EPIPE` error instead of killing the process.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: installing SIG_IGN has no memory effects.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Makes sure this process's children stay waitable: with SIGCHLD set to `SIG_IGN`, or a handler
/// installed with `SA_NOCLDWAIT` (often inherited from a launcher, since ignored dispositions
/// survive `exec`), the kernel reaps every child the moment it ends, so `waitpid` fails with
/// ECHILD and the dead child's pid may be reused while shmpool still means to signal it.
/// Resets `SIG_IGN` to `SIG_DFL` (which discards SIGCHLD just the same, but leaves zombies to
/// reap) and clears `SA_NOCLDWAIT` from a handler. Returns whether it changed anything.
///
/// Called before every start of a child; one `sigaction` read when nothing needs changing.
pub(crate) fn keep_children_waitable() -> io::Result<bool> {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `old`, a valid out-pointer.
    cvt(unsafe { libc::sigaction(libc::SIGCHLD, std::ptr::null(), old.as_mut_ptr()) })?;
    // SAFETY: sigaction succeeded and filled `old`.
    let mut act = unsafe { old.assume_init() };
    let ignored = act.sa_sigaction == libc::SIG_IGN;
    if !ignored && act.sa_flags & libc::SA_NOCLDWAIT == 0 {
        return Ok(false);
    }
    if ignored {
        act.sa_sigaction = libc::SIG_DFL;
        act.sa_flags = 0;
    } else {
        act.sa_flags &= !libc::SA_NOCLDWAIT;
    }
    // SAFETY: `act` is a valid, initialised sigaction (a copy of the current one, adjusted).
    cvt(unsafe { libc::sigaction(libc::SIGCHLD, &act, std::ptr::null_mut()) })?;
    Ok(true)
}

/// A saved signal mask, to restore in a forked child.
pub(crate) struct SavedMask(libc::sigset_t);

fn sigchld_set() -> libc::sigset_t {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: `set` is a valid sigset_t out-pointer; sigemptyset/sigaddset only write into it.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGCHLD);
        set.assume_init()
    }
}

/// Blocks SIGCHLD for the calling thread (the forkserver has only one) and returns the old mask.
pub(crate) fn block_sigchld() -> io::Result<SavedMask> {
    let set = sigchld_set();
    let mut old = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: both pointers are valid sigset_t for the call's duration.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, old.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    // SAFETY: pthread_sigmask succeeded and wrote the old mask.
    Ok(SavedMask(unsafe { old.assume_init() }))
}

/// Puts back a mask saved by [`block_sigchld`].
pub(crate) fn restore_mask(m: &SavedMask) {
    // SAFETY: `m.0` is a valid sigset_t; a null old-set pointer is allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &m.0, std::ptr::null_mut()) };
}

/// A non-blocking, close-on-exec signalfd that becomes readable when SIGCHLD is pending
/// (block SIGCHLD first).
pub(crate) fn sigchld_fd() -> io::Result<File> {
    let set = sigchld_set();
    // SAFETY: `set` is a valid sigset_t; -1 asks for a new descriptor.
    let fd = cvt(unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })?;
    // SAFETY: signalfd returned a fresh descriptor that nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Empties a signalfd (non-blocking reads until EAGAIN).
pub(crate) fn drain(fd: &File) {
    super::fdpass::drain(fd.as_fd());
}

/// `fcntl` command choosing the signal `O_ASYNC` sends (linux/fcntl.h; the libc crate lacks it).
const F_SETSIG: libc::c_int = 10;

/// Arranges for the kernel to SIGKILL this process as soon as the last writer of the pipe whose
/// read end is `read_fd` closes it (the writer's death closes it too). Returns false when that
/// has already happened. Works through a private open file description (reopened through
/// `/proc/self/fd`), kept open for the rest of the process's life, so the inherited `read_fd` may
/// be closed afterwards and siblings sharing it are not disturbed.
pub(crate) fn kill_on_hangup(read_fd: RawFd) -> io::Result<bool> {
    use rustix::event::{PollFd, PollFlags};
    use rustix::fs::OFlags;
    let own = std::fs::OpenOptions::new().read(true).open(format!("/proc/self/fd/{read_fd}"))?;
    let fd = own.as_raw_fd();
    // SAFETY: fcntl on our own descriptor with integer arguments touches no memory of ours
    // (rustix has no F_SETOWN or F_SETSIG).
    unsafe {
        cvt(libc::fcntl(fd, libc::F_SETOWN, libc::getpid()))?;
        cvt(libc::fcntl(fd, F_SETSIG, libc::SIGKILL))?;
    }
    let fl = rustix::fs::fcntl_getfl(&own)?;
    rustix::fs::fcntl_setfl(&own, fl | OFlags::ASYNC | OFlags::NONBLOCK | OFlags::CLOEXEC)?;
    rustix::io::fcntl_setfd(&own, rustix::io::FdFlags::CLOEXEC)?;
    // The writers may have gone before O_ASYNC was armed: look once, now that it is.
    let mut pfd = [PollFd::new(&own, PollFlags::IN)];
    let n = rustix::event::poll(&mut pfd, Some(&rustix::event::Timespec::default()))?;
    if n > 0 && pfd[0].revents().contains(PollFlags::HUP) {
        return Ok(false);
    }
    // Kept open on purpose: closing it would disarm the signal.
    std::mem::forget(own);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pidfd_signals_its_process() {
        let Some(fd) = pidfd_open(std::process::id()).unwrap() else { return };
        pidfd_send_signal(&fd, 0).unwrap();
        assert_eq!(pidfd_open(0).map(|_| ()).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    }
}
