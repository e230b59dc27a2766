//! Descriptor plumbing for child processes: passing descriptors over a Unix socket
//! (SCM_RIGHTS), descriptor flags and kinds, and waiting for one to become readable.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{cvt, cvt_retry};

/// Most descriptors one message carries.
pub(crate) const MAX_FDS: usize = 4;

/// Sends `data` (at least one byte) with `fds` attached, in one `sendmsg`. Returns the bytes sent;
/// the descriptors travel with the first of them.
pub(crate) fn send_with_fds(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    assert!(!data.is_empty() && fds.len() <= MAX_FDS);
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let payload = std::mem::size_of_val(raw.as_slice()) as u32;
    // A u64 buffer keeps the control message aligned as cmsghdr requires.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: msghdr is plain data; all-zero is a valid empty header, filled in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !raw.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE only computes a size.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(payload) } as usize;
        assert!(msg.msg_controllen <= std::mem::size_of_val(&control));
        // SAFETY: msg_control points at a zeroed, aligned buffer of at least msg_controllen bytes,
        // so the first header exists and is writable, and CMSG_DATA leaves room for `payload`.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as usize;
            std::ptr::copy_nonoverlapping(
                raw.as_ptr(),
                libc::CMSG_DATA(cmsg).cast::<RawFd>(),
                raw.len(),
            );
        }
    }
    // SAFETY: msg, its iovec and control buffer are valid for the call; the kernel only reads them.
    let n = cvt_retry(|| unsafe {
        libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) as libc::c_int
    })?;
    Ok(n as usize)
}

/// Sends all of `data` on a socket, without ever raising SIGPIPE (a closed peer is `EPIPE`).
pub(crate) fn send_all(sock: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: `data` is valid for reads of its length for the call's duration.
        let n = cvt_retry(|| unsafe {
            libc::send(sock.as_raw_fd(), data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL)
                as libc::c_int
        })?;
        data = &data[n as usize..];
    }
    Ok(())
}

/// Receives up to `buf.len()` bytes and any descriptors attached to them (close-on-exec).
/// Returns 0 bytes at end of stream. Truncated descriptor lists (`MSG_CTRUNC`, typically
/// `EMFILE` on our side) are an error of kind `InvalidData`, *after* the bytes were consumed: a
/// framed reader must treat its stream as broken.
pub(crate) fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut control = [0u64; 16];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: msghdr is plain data; all-zero is a valid empty header, filled in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msg describes `buf` and `control`, both writable for the call's duration.
    let n = cvt_retry(|| unsafe {
        libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) as libc::c_int
    })?;
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of well-formed cmsg headers;
    // CMSG_FIRSTHDR/NXTHDR walk them within that length. Each SCM_RIGHTS payload holds fresh
    // descriptors installed for us, which we take ownership of exactly once.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..bytes / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "descriptor list truncated (too many open files?)",
        ));
    }
    Ok((n as usize, fds))
}

/// A new close-on-exec descriptor for whatever descriptor number `fd` refers to now, owned by
/// the caller. Unlike borrowing the number, this asserts nothing about who owns `fd`: `fcntl` on
/// any integer is memory safe, and a number that is not open is `EBADF`.
pub(crate) fn dup_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an int argument and touches no memory of ours.
    let new = cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: on success fcntl returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Puts descriptor `fd` in non-blocking mode.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL take int arguments and touch no memory of ours.
    unsafe {
        let fl = cvt(libc::fcntl(fd, libc::F_GETFL))?;
        cvt(libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK)).map(drop)
    }
}

/// Makes descriptor `fd` close on `exec`.
pub(crate) fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_SETFD takes an int argument and touches no memory of ours.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }).map(drop)
}

/// The kind of file behind a raw descriptor number, if the number is an open descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    /// A pipe or FIFO.
    Pipe,
    /// A socket.
    Socket,
    /// Anything else.
    Other,
}

/// What `fd` is, or `None` when it is not an open descriptor.
pub(crate) fn fd_kind(fd: RawFd) -> Option<FdKind> {
    if fd < 0 {
        return None;
    }
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `st` is a valid out-pointer of the right type; a bad fd only makes fstat fail.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat succeeded and filled the struct (which was zeroed before anyway).
    let mode = unsafe { st.assume_init() }.st_mode & libc::S_IFMT;
    Some(match mode {
        libc::S_IFIFO => FdKind::Pipe,
        libc::S_IFSOCK => FdKind::Socket,
        _ => FdKind::Other,
    })
}

/// Waits until `fd` is readable or hung up, at most `timeout` (`None`: forever). Returns whether
/// it is.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    wait_for(fd, libc::POLLIN, timeout)
}

/// Waits until `fd` is writable (or its reader is gone), at most `timeout`. Returns whether it is.
pub(crate) fn wait_writable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    wait_for(fd, libc::POLLOUT, timeout)
}

fn wait_for(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let mut pfd = [libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 }];
    Ok(poll(&mut pfd, timeout)? > 0)
}

/// Polls `pfds` for at most `timeout` (`None`: forever), to the nanosecond: `ppoll` for a
/// timeout (`poll` counts whole milliseconds, so a shorter wait would not wait at all), plain
/// `poll` for none or zero (a look that does not sleep: the pool's liveness checks make one per
/// worker per job). Returns how many are ready.
fn poll(pfds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let (ptr, len) = (pfds.as_mut_ptr(), pfds.len() as libc::nfds_t);
    let n = match timeout {
        None | Some(Duration::ZERO) => {
            let ms = if timeout.is_none() { -1 } else { 0 };
            // SAFETY: `ptr` and `len` describe `pfds`, a valid array for the call's duration.
            cvt_retry(|| unsafe { libc::poll(ptr, len, ms) })?
        }
        Some(t) => {
            let ts = libc::timespec {
                tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
                tv_nsec: t.subsec_nanos() as libc::c_long,
            };
            // SAFETY: as above, and `ts` lives on this frame for the call; a null signal mask
            // leaves the mask alone.
            cvt_retry(|| unsafe { libc::ppoll(ptr, len, &ts, std::ptr::null()) })?
        }
    };
    Ok(n as usize)
}

/// Polls several descriptors for input, forever; returns which are readable or hung up.
pub(crate) fn wait_any(fds: &[BorrowedFd<'_>]) -> io::Result<Vec<bool>> {
    let mut pfds = pollfds(fds);
    poll(&mut pfds, None)?;
    Ok(pfds.iter().map(|p| p.revents != 0).collect())
}

/// Waits until any of `fds` is readable or hung up, at most `timeout` (`None`: forever);
/// returns whether the first one is.
pub(crate) fn wait_readable_any(
    fds: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let mut pfds = pollfds(fds);
    poll(&mut pfds, timeout)?;
    Ok(pfds.first().is_some_and(|p| p.revents != 0))
}

fn pollfds(fds: &[BorrowedFd<'_>]) -> Vec<libc::pollfd> {
    fds.iter()
        .map(|f| libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 })
        .collect()
}

/// Writes one byte to `fd`, a non-blocking pipe: a wake-up for whoever polls the other end.
/// Errors are ignored: a full pipe already holds a wake-up, and a closed one has nobody
/// waiting. Async-signal-safe, allocates nothing.
pub(crate) fn poke(fd: RawFd) {
    let b = 1u8;
    // SAFETY: writes one byte from a local; a bad descriptor only makes write fail.
    let _ = unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
}

/// Reads and discards whatever the non-blocking descriptor `fd` holds now.
pub(crate) fn drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its whole length; a non-blocking read ends with EAGAIN.
    while unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

/// The inode number of what `fd` refers to (a pipe's is what `/proc/<pid>/fd/<n>` names it by).
pub(crate) fn inode(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `st` is a valid out-pointer of the right type.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded and filled the struct.
    Ok(unsafe { st.assume_init() }.st_ino)
}

/// Opens, for writing and non-blocking, the pipe that process `pid` holds at descriptor `fd`
/// (through `/proc/<pid>/fd`, a new open file description of the same pipe), and checks that it
/// is a pipe with inode `ino`, so a reused descriptor number there is refused.
pub(crate) fn open_pipe_of(pid: u32, fd: RawFd, ino: u64) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(format!("/proc/{pid}/fd/{fd}"))?;
    let fd_now = std::os::fd::AsFd::as_fd(&f);
    if fd_kind(fd_now.as_raw_fd()) != Some(FdKind::Pipe) || inode(fd_now)? != ino {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("descriptor {fd} of process {pid} is not the pipe it was said to be"),
        ));
    }
    Ok(f)
}
