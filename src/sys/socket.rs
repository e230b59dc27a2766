//! Unix stream sockets for `Pipe`: socket pairs, one-way shutdown, and a vectored send (frame
//! header and payload in one `sendmsg`) with descriptors attached (`SCM_RIGHTS`). Receiving
//! descriptors and polling are `fdpass`'s.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;

/// The most descriptors one message carries.
pub(crate) const MAX_FDS: usize = super::fdpass::MAX_FDS;

/// A connected pair of close-on-exec `AF_UNIX` stream sockets.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid out-array of two ints.
    cvt(unsafe {
        libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr())
    })?;
    // SAFETY: socketpair returned two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
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
        Shut::Read => libc::SHUT_RD,
        Shut::Write => libc::SHUT_WR,
    };
    // SAFETY: shutdown takes scalar arguments and touches no memory of ours.
    cvt(unsafe { libc::shutdown(fd.as_raw_fd(), how) }).map(drop)
}

/// Room for the control message carrying up to `MAX_FDS` descriptors, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct CmsgBuf([u8; 128]);

const _: () = assert!(std::mem::size_of::<CmsgBuf>() >= 16 + MAX_FDS * 4 + 8);

fn cmsg_space(n: usize) -> usize {
    // SAFETY: CMSG_SPACE is a pure computation on its argument.
    unsafe { libc::CMSG_SPACE((n * std::mem::size_of::<RawFd>()) as u32) as usize }
}

/// Sends as much of `bufs` as the socket takes in one `sendmsg`, with `fds` attached to the first
/// byte (only pass them on the first call for a message). Never raises SIGPIPE: a closed peer is
/// `EPIPE`. Returns the bytes sent.
pub(crate) fn send(
    fd: BorrowedFd<'_>,
    bufs: &[&[u8]],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many descriptors in one message",
        ));
    }
    let mut iov: Vec<libc::iovec> = bufs
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| libc::iovec { iov_base: b.as_ptr() as *mut libc::c_void, iov_len: b.len() })
        .collect();
    let mut cbuf = CmsgBuf([0; 128]);
    // SAFETY: an all-zero msghdr is a valid empty message header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len() as _;
    if !fds.is_empty() {
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = cmsg_space(fds.len()) as _;
        // SAFETY: msg_control points to `cbuf`, aligned and large enough for one header holding
        // `fds.len() <= MAX_FDS` ints (checked above and by the const assertion), so
        // CMSG_FIRSTHDR is non-null and CMSG_DATA has room for the descriptors written.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN((fds.len() * std::mem::size_of::<RawFd>()) as u32) as _;
            let data = libc::CMSG_DATA(c).cast::<RawFd>();
            for (i, f) in fds.iter().enumerate() {
                data.add(i).write_unaligned(f.as_raw_fd());
            }
        }
    }
    loop {
        // SAFETY: `msg` points to live iovecs over borrowed buffers and to `cbuf`; sendmsg only
        // reads them.
        let r = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether `fd` is an open memfd in this process.
pub(crate) fn is_memfd(fd: RawFd) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|t| t.to_string_lossy().starts_with("/memfd:"))
        .unwrap_or(false)
}
