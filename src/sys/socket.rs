//! Stream sockets: socket pairs for `Pipe`, one-way shutdown, a vectored send (frame header and
//! payload in one `sendmsg`) with descriptors attached (`SCM_RIGHTS`), and, for the
//! `Listener`/`Client` connections and the Manager's server, plain `recv`, `SO_SNDTIMEO` /
//! `SO_RCVTIMEO` and a hang-up probe. Receiving descriptors and waiting are `fdpass`'s.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::net::{AddressFamily, RecvFlags, Shutdown, SocketFlags, SocketType, sockopt};

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

/// Which of a socket's two timeouts [`set_timeout`] sets.
pub(crate) enum Timeout {
    /// `SO_SNDTIMEO`: how long a send may block on a full buffer.
    Send,
    /// `SO_RCVTIMEO`: how long a receive may block on an empty one.
    Recv,
}

/// Sets `fd`'s send or receive timeout (`None`: block for as long as it takes). The kernel
/// reads a zero timeout as "none", so a zero `Some` is raised to the shortest it keeps (1 us).
pub(crate) fn set_timeout(
    fd: BorrowedFd<'_>,
    which: Timeout,
    timeout: Option<Duration>,
) -> io::Result<()> {
    let which = match which {
        Timeout::Send => sockopt::Timeout::Send,
        Timeout::Recv => sockopt::Timeout::Recv,
    };
    let timeout = timeout.map(|t| t.max(Duration::from_micros(1)));
    Ok(sockopt::set_socket_timeout(fd, which, timeout)?)
}

/// One `recv` into `buf`: the bytes read (0 at the end of the stream), or the error as the
/// kernel gave it (`EINTR` and `EAGAIN` included: the caller decides what they mean).
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    Ok(rustix::net::recv(fd, buf, RecvFlags::empty())?.0)
}

/// Whether the peer of the connected socket `fd` has hung up, without waiting.
pub(crate) fn peer_hung_up(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::RDHUP)];
    let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
    matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}

/// Fills `buf` from the kernel's random source (`getrandom`, blocking only until the pool is
/// first seeded at boot).
pub(crate) fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
