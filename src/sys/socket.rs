//! Unix stream sockets for `Pipe`: socket pairs, one-way shutdown, and a vectored send (frame
//! header and payload in one `sendmsg`) with descriptors attached (`SCM_RIGHTS`). Receiving
//! descriptors and polling are `fdpass`'s.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

use rustix::net::{AddressFamily, Shutdown, SocketFlags, SocketType};

/// A connected pair of close-on-exec `AF_UNIX` stream sockets.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Which direction [`shutdown`] closes.
pub(crate) enum Shut {
    /// No more reads on this end (and no more writes from the peer).
    Read,
    /// No more writes from this end: the peer reads end-of-file.
    Write,
}

/// Closes one direction of a socket for every process that shares it.
pub(crate) fn shutdown(fd: BorrowedFd<'_>, how: Shut) -> io::Result<()> {
    let how = match how {
        Shut::Read => Shutdown::Read,
        Shut::Write => Shutdown::Write,
    };
    Ok(rustix::net::shutdown(fd, how)?)
}

/// Sends as much of `bufs` as the socket takes in one `sendmsg`, with `fds` attached to the first
/// byte (only pass them on the first call for a message). Never raises SIGPIPE: a closed peer is
/// `EPIPE`. Returns the bytes sent.
pub(crate) fn send(
    fd: BorrowedFd<'_>,
    bufs: &[&[u8]],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    super::fdpass::send_vectored(fd, bufs, fds)
}

/// Whether `fd` is an open memfd in this process.
pub(crate) fn is_memfd(fd: RawFd) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|t| t.to_string_lossy().starts_with("/memfd:"))
        .unwrap_or(false)
}
