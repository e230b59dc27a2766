//! Descriptors a forked child inherited but must not keep: a pool worker holding a copy of a
//! pipe's end (or a socket) created before the fork would keep the peer from ever seeing EOF.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use rustix::fs::{Mode, OFlags};

/// The descriptors above stdio open in this process now (those a child forked next inherits).
pub(crate) fn open_above_stdio() -> io::Result<Vec<RawFd>> {
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Ok(fd) = entry?.file_name().to_string_lossy().parse::<RawFd>() else { continue };
        if fd > 2 {
            fds.push(fd);
        }
    }
    // The listing's own directory descriptor appears in it and is closed by now.
    // SAFETY: F_GETFD on a descriptor number only reads its flags (EBADF when closed).
    fds.retain(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1);
    Ok(fds)
}

/// In a forked child: points each descriptor of `fds` at `/dev/null` (close-on-exec), which
/// drops this process's reference to what it was, while the number stays taken so that a
/// leftover user of the old descriptor (a `File` in a static, say) reads EOF and writes into
/// nothing rather than into whatever the number would name next. Descriptors with `O_ASYNC`
/// set (the alive-pipe guard, which SIGKILLs this process when its parent dies) are kept.
/// Uses no locks and allocates nothing.
pub(crate) fn detach_inherited(fds: &[RawFd]) -> io::Result<()> {
    // A `&CStr` path: rustix makes the system call without copying it (no allocation).
    let null_fd = rustix::fs::open(c"/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
    let null = null_fd.as_raw_fd();
    for &fd in fds {
        if fd == null {
            continue;
        }
        // SAFETY: F_GETFL only reads the flags of a descriptor number.
        let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if fl != -1 && fl & libc::O_ASYNC != 0 {
            continue;
        }
        // SAFETY: `fd` is a descriptor this child inherited and that nothing in it may use (the
        // caller's contract); dup3 atomically replaces it with a copy of `null`.
        unsafe { libc::dup3(null, fd, libc::O_CLOEXEC) };
    }
    drop(null_fd);
    Ok(())
}
