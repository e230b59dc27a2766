//! Descriptor plumbing for child processes: passing descriptors over a Unix socket
//! (SCM_RIGHTS), descriptor flags and kinds, and waiting for one to become readable.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::retry_on_intr;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};

use super::cvt;

/// Most descriptors one message carries.
pub(crate) const MAX_FDS: usize = 4;

/// Room for the control message of one `sendmsg` or `recvmsg`, aligned for `cmsghdr`: up to
/// [`MAX_FDS`] descriptors sent, up to 28 received before the kernel truncates the list.
#[repr(C, align(8))]
struct CmsgBuf([MaybeUninit<u8>; 128]);

const _: () = assert!(std::mem::size_of::<CmsgBuf>() >= rustix::cmsg_space!(ScmRights(MAX_FDS)));

impl CmsgBuf {
    fn new() -> CmsgBuf {
        CmsgBuf([MaybeUninit::uninit(); 128])
    }
}

/// Sends `data` (at least one byte) with `fds` attached, in one `sendmsg`. Returns the bytes sent;
/// the descriptors travel with the first of them.
pub(crate) fn send_with_fds(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    assert!(!data.is_empty() && fds.len() <= MAX_FDS);
    send_vectored(sock, &[data], fds)
}

/// Sends as much of `bufs` as the socket takes in one `sendmsg`, with `fds` attached to the first
/// byte (only pass them on the first call for a message). Never raises SIGPIPE: a closed peer is
/// `EPIPE`. Returns the bytes sent.
pub(crate) fn send_vectored(
    sock: BorrowedFd<'_>,
    bufs: &[&[u8]],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many descriptors in one message",
        ));
    }
    let iov: Vec<IoSlice<'_>> =
        bufs.iter().filter(|b| !b.is_empty()).map(|b| IoSlice::new(b)).collect();
    let mut space = CmsgBuf::new();
    let mut control = SendAncillaryBuffer::new(&mut space.0);
    if !fds.is_empty() {
        let pushed = control.push(SendAncillaryMessage::ScmRights(fds));
        debug_assert!(pushed, "CmsgBuf holds MAX_FDS descriptors");
    }
    Ok(retry_on_intr(|| sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL))?)
}

/// Sends all of `data` on a socket, without ever raising SIGPIPE (a closed peer is `EPIPE`).
pub(crate) fn send_all(sock: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = retry_on_intr(|| rustix::net::send(sock, data, SendFlags::NOSIGNAL))?;
        data = &data[n..];
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
    let mut space = CmsgBuf::new();
    let mut control = RecvAncillaryBuffer::new(&mut space.0);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = retry_on_intr(|| recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC))?;
    let mut fds = Vec::new();
    for cmsg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = cmsg {
            fds.extend(received);
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "descriptor list truncated (too many open files?)",
        ));
    }
    Ok((msg.bytes, fds))
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
pub(crate) fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    let fl = rustix::fs::fcntl_getfl(&fd)?;
    Ok(rustix::fs::fcntl_setfl(&fd, fl | rustix::fs::OFlags::NONBLOCK)?)
}

/// Makes descriptor `fd` close on `exec` (`F_SETFD`, which clears every other descriptor flag:
/// there is none but close-on-exec).
pub(crate) fn set_cloexec(fd: impl AsFd) -> io::Result<()> {
    Ok(rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?)
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
    wait_for(fd, PollFlags::IN, timeout)
}

/// Waits until `fd` is writable (or its reader is gone), at most `timeout`. Returns whether it is.
pub(crate) fn wait_writable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    wait_for(fd, PollFlags::OUT, timeout)
}

fn wait_for(fd: BorrowedFd<'_>, events: PollFlags, timeout: Option<Duration>) -> io::Result<bool> {
    let mut pfd = [PollFd::from_borrowed_fd(fd, events)];
    Ok(poll(&mut pfd, timeout)? > 0)
}

/// Polls `pfds` for at most `timeout` (`None`: forever), to the nanosecond (`ppoll`: `poll`
/// counts whole milliseconds, so a shorter wait would not wait at all; a zero timeout is a look
/// that does not sleep, which the pool's liveness checks make once per worker per job). Retried
/// from the start when a signal interrupts it. Returns how many are ready.
fn poll(pfds: &mut [PollFd<'_>], timeout: Option<Duration>) -> io::Result<usize> {
    let ts = timeout.map(|t| Timespec {
        tv_sec: t.as_secs().min(i32::MAX as u64) as i64,
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    Ok(retry_on_intr(|| rustix::event::poll(pfds, ts.as_ref()))?)
}

/// Polls several descriptors for input, forever; returns which are readable or hung up.
pub(crate) fn wait_any(fds: &[BorrowedFd<'_>]) -> io::Result<Vec<bool>> {
    let mut pfds = pollfds(fds);
    poll(&mut pfds, None)?;
    Ok(pfds.iter().map(|p| !p.revents().is_empty()).collect())
}

/// Waits until any of `fds` is readable or hung up, at most `timeout` (`None`: forever);
/// returns whether the first one is.
pub(crate) fn wait_readable_any(
    fds: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let mut pfds = pollfds(fds);
    poll(&mut pfds, timeout)?;
    Ok(pfds.first().is_some_and(|p| !p.revents().is_empty()))
}

fn pollfds<'a>(fds: &[BorrowedFd<'a>]) -> Vec<PollFd<'a>> {
    fds.iter().map(|&f| PollFd::from_borrowed_fd(f, PollFlags::IN)).collect()
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
    // A non-blocking read ends with EAGAIN.
    while rustix::io::read(fd, &mut buf).is_ok_and(|n| n > 0) {}
}

/// The inode number of what `fd` refers to (a pipe's is what `/proc/<pid>/fd/<n>` names it by).
pub(crate) fn inode(fd: BorrowedFd<'_>) -> io::Result<u64> {
    Ok(rustix::fs::fstat(fd)?.st_ino)
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
