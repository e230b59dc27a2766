//! `pipe`: two connected [`Connection`]s over a Unix socket pair, Python's
//! `multiprocessing.Pipe`.
//!
//! Framing on the `SOCK_STREAM` socket, the `frame` module's message format: an 8-byte header
//! (payload length `u32` LE, frame tag `u32` LE), then the payload. Tag 0 is a message (raw
//! bytes, or postcard for the serde API); tag 1 is a segment handle (postcard-encoded [`SegmentHandle`]), carrying the segment's memfd
//! as `SCM_RIGHTS` ancillary data when it has one. A receiver refuses a frame longer than its
//! stated maximum without allocating for it (it skips the bytes), and reports a stream that
//! ends inside a frame as [`Error::TruncatedFrame`].

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::frame::{Format, FrameError, HEADER_LEN, Head, Layout, Reader, Stream};
use crate::segment::SegmentHandle;
use crate::segment::handle::Locator;
use crate::sys::{self, fdpass, socket};

// Listener and Client (Python's `multiprocessing.connection` names) live in `crate::listener`.
pub use crate::listener::{
    Address, Client, DEFAULT_HANDSHAKE_TIMEOUT, Listener, ListenerBuilder, Unauthenticated,
};

/// The largest message a connection takes unless told otherwise: 64 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;

const HEADER: usize = HEADER_LEN;
const TAG_DATA: u32 = 0;
const TAG_HANDLE: u32 = 1;
const WHAT: &str = "connection";

/// One received frame.
struct Frame {
    tag: u32,
    payload: Vec<u8>,
    fds: Vec<OwnedFd>,
}

/// One end of a [`pipe`]: sends and receives whole messages.
///
/// Messages are either raw bytes ([`send_bytes`](Connection::send_bytes),
/// [`recv_bytes`](Connection::recv_bytes), [`recv_bytes_into`](Connection::recv_bytes_into)) or
/// anything serde handles ([`send`](Connection::send), [`recv`](Connection::recv), encoded with
/// postcard), plus segment handles whose memfd travels with them
/// ([`send_handle`](Connection::send_handle), [`recv_handle`](Connection::recv_handle)).
///
/// Limits: a message longer than [`max_message`](Connection::max_message) is refused by the
/// sender and, should a foreign sender try, by the receiver, which skips it without allocating.
/// A peer that closed its end or died ends `recv` with [`Error::Disconnected`]; one that died in
/// the middle of a message, with [`Error::TruncatedFrame`].
///
/// An end is a [`Process`](crate::Process) argument under every start method, as in Python's
/// `Process(target=f, args=(child_conn,))`: its socket travels with the start (at most two ends
/// per child), and the parent's copy is closed once the child has ended (or at once under
/// `fork`, where the end is moved). Under spawn and forkserver "ended" means noticed by
/// [`join`](crate::Process::join), [`join_timeout`](crate::Process::join_timeout) or
/// [`is_alive`](crate::Process::is_alive): until then the end the child got is still open in
/// the parent, so a `recv` on the other end cannot see that child die. Receive with
/// [`recv_timeout`](Connection::recv_timeout) and check `is_alive` between tries, or join.
///
/// After a fork both processes hold both ends: as with Python, each side should drop the end it
/// does not use (moving an end into a [`Scope::fork`](crate::process::Scope::fork) closure drops the
/// parent's copy), or a dead peer is never noticed, because its end is still open elsewhere.
///
/// ```
/// let (mut a, mut b) = shmpool::pipe(true)?;
/// a.send(&("hello", 42u32))?;
/// let (s, n): (String, u32) = b.recv()?;
/// assert_eq!((s.as_str(), n), ("hello", 42));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct Connection {
    fd: OwnedFd,
    readable: bool,
    writable: bool,
    max: usize,
    /// A whole frame set aside: too large for the caller's buffer, or of the other kind.
    stash: Option<Frame>,
    /// Set when a timeout, a receive error (such as truncated descriptors) or a garbage header
    /// left the stream inside a frame.
    broken: Option<&'static str>,
}

/// A connected pair of [`Connection`]s. With `duplex`, both ends send and receive; without,
/// the first only receives and the second only sends (Python's `Pipe(duplex=False)`).
/// Messages are limited to [`DEFAULT_MAX_MESSAGE`] bytes; see [`pipe_with`].
///
/// ```
/// let (mut rx, mut tx) = shmpool::pipe(false)?;
/// tx.send_bytes(b"one way")?;
/// assert_eq!(rx.recv_bytes()?, b"one way");
/// assert!(rx.send_bytes(b"back").is_err()); // the read end cannot send
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn pipe(duplex: bool) -> Result<(Connection, Connection)> {
    pipe_with(duplex, DEFAULT_MAX_MESSAGE)
}

/// As [`pipe`], with messages limited to `max_message` bytes (at most 4 GiB - 1).
///
/// ```
/// let (mut a, mut b) = shmpool::connection::pipe_with(true, 16)?;
/// assert!(matches!(a.send_bytes(&[0; 17]), Err(shmpool::Error::MessageTooLarge { .. })));
/// a.send_bytes(&[0; 16])?;
/// assert_eq!(b.recv_bytes()?.len(), 16);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn pipe_with(duplex: bool, max_message: usize) -> Result<(Connection, Connection)> {
    if max_message as u64 > Layout::Len32Kind32.largest() {
        return Err(Error::InvalidArgument {
            what: "connection message limit",
            reason: "messages are limited to 4 GiB - 1 bytes".into(),
        });
    }
    let (a, b) = socket::socketpair().map_err(Error::io("socketpair"))?;
    let conn = |fd, readable, writable| Connection {
        fd,
        readable,
        writable,
        max: max_message,
        stash: None,
        broken: None,
    };
    if duplex {
        return Ok((conn(a, true, true), conn(b, true, true)));
    }
    socket::shutdown(a.as_fd(), socket::Shut::Write).map_err(Error::io("shutdown"))?;
    socket::shutdown(b.as_fd(), socket::Shut::Read).map_err(Error::io("shutdown"))?;
    Ok((conn(a, true, false), conn(b, false, true)))
}

fn gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPIPE) | Some(libc::ECONNRESET) | Some(libc::ENOTCONN))
}

impl Connection {
    /// The largest message this end sends or accepts, in bytes.
    ///
    /// ```
    /// assert_eq!(shmpool::connection::pipe_with(true, 100)?.0.max_message(), 100);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn max_message(&self) -> usize {
        self.max
    }

    fn send_frame(&mut self, tag: u32, payload: &[u8], fd: Option<BorrowedFd<'_>>) -> Result<()> {
        if !self.writable {
            return Err(Error::Closed { what: "read-only end of a one-way pipe" });
        }
        if payload.len() > self.max {
            return Err(Error::MessageTooLarge {
                what: WHAT,
                len: payload.len() as u64,
                max: self.max as u64,
            });
        }
        let header = self.format().encode(payload.len() as u64, tag);
        let total = HEADER + payload.len();
        let mut sent = 0;
        while sent < total {
            let bufs: [&[u8]; 2] = if sent < HEADER {
                [&header[sent..], payload]
            } else {
                [&payload[sent - HEADER..], &[]]
            };
            let fds: Vec<BorrowedFd<'_>> =
                if sent == 0 { fd.into_iter().collect() } else { Vec::new() };
            match socket::send(self.fd.as_fd(), &bufs, &fds) {
                Ok(n) => sent += n,
                Err(e) if gone(&e) => return Err(Error::Disconnected { what: WHAT }),
                Err(e) => return Err(Error::io("sendmsg")(e)),
            }
        }
        Ok(())
    }

    /// The frame format of this end: messages of at most [`max_message`](Connection::max_message).
    fn format(&self) -> Format {
        Format::message(self.max as u64)
    }

    fn recv_frame(&mut self, timeout: Option<Duration>, what: &'static str) -> Result<Frame> {
        if let Some(f) = self.stash.take() {
            return Ok(f);
        }
        if !self.readable {
            return Err(Error::Closed { what: "write-only end of a one-way pipe" });
        }
        if let Some(why) = self.broken {
            return Err(Error::BadMessage {
                what: WHAT,
                reason: format!("the stream lost its framing earlier ({why}); open a new pipe"),
            });
        }
        let t = timeout.unwrap_or_default();
        let format = self.format();
        let mut reader = Reader::new(Stream::Socket(self.fd.as_fd()), timeout);
        let io = |e: FrameError| e.into_error(WHAT, what, t);
        // Wait for the first byte under the deadline; once a frame started, a timeout breaks it.
        if timeout.is_some() && !reader.wait().map_err(io)? {
            return Err(Error::Timeout { what, after: t });
        }
        // Any failure here may have consumed part of a frame (a timeout after some bytes, or
        // MSG_CTRUNC, which drops the descriptors but consumes the bytes): never parse on from
        // the middle of a frame.
        let head = reader.header(&format).inspect_err(|e| {
            self.broken = Some(match e {
                FrameError::Timeout { .. } => "a timeout inside a frame header",
                FrameError::Truncated { .. } => "a truncated frame",
                _ => "a receive error inside a frame header (descriptors truncated?)",
            });
        });
        let Some(Head { len, kind: tag }) = head.map_err(io)? else {
            return Err(Error::Disconnected { what: WHAT });
        };
        if tag != TAG_DATA && tag != TAG_HANDLE {
            self.broken = Some("a frame with an unknown tag");
            return Err(Error::BadMessage {
                what: WHAT,
                reason: format!("unknown frame tag {tag}: the peer does not speak this protocol"),
            });
        }
        let Ok(n) = format.check(len) else {
            reader.skip(len, format.body_part).map_err(|e| {
                self.broken = Some(if e.is_timeout() {
                    "a timeout inside a frame"
                } else {
                    "a receive error inside a frame"
                });
                io(e)
            })?;
            return Err(Error::MessageTooLarge { what: WHAT, len, max: self.max as u64 });
        };
        let mut payload = Vec::new();
        reader.body_into(&mut payload, n, format.body_part).map_err(|e| {
            self.broken = Some(match e {
                FrameError::Timeout { .. } => "a timeout inside a frame",
                FrameError::Truncated { .. } => "a truncated frame",
                _ => "a receive error inside a frame (descriptors truncated?)",
            });
            match e {
                FrameError::Truncated { got, .. } => Error::TruncatedFrame {
                    what: WHAT,
                    expected: HEADER as u64 + len,
                    got: HEADER as u64 + got,
                },
                e => io(e),
            }
        })?;
        let fds = reader.take_fds();
        Ok(Frame { tag, payload, fds })
    }

    fn recv_data(&mut self, timeout: Option<Duration>, what: &'static str) -> Result<Vec<u8>> {
        let f = self.recv_frame(timeout, what)?;
        if f.tag != TAG_DATA {
            self.stash = Some(f);
            return Err(Error::BadMessage {
                what: WHAT,
                reason: "the next message is a segment handle; take it with recv_handle".into(),
            });
        }
        Ok(f.payload)
    }

    /// Sends `bytes` as one message.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] over [`max_message`](Connection::max_message) (nothing is
    /// sent); [`Error::Disconnected`] when the peer closed or died.
    ///
    /// ```
    /// let (mut a, mut b) = shmpool::pipe(true)?;
    /// a.send_bytes(&[1, 2, 3])?;
    /// assert_eq!(b.recv_bytes()?, [1, 2, 3]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.send_frame(TAG_DATA, bytes, None)
    }

    /// Receives one message as bytes, waiting for it.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] when the peer closed or died; [`Error::TruncatedFrame`] when the
    /// stream ended inside a message; [`Error::MessageTooLarge`] for a message over the limit
    /// (skipped, the connection stays usable).
    ///
    /// ```
    /// let (mut a, mut b) = shmpool::pipe(true)?;
    /// drop(a);
    /// assert!(matches!(b.recv_bytes(), Err(shmpool::Error::Disconnected { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>> {
        self.recv_data(None, "Connection::recv_bytes")
    }

    /// As [`recv_bytes`](Connection::recv_bytes), waiting at most `timeout` for the message to
    /// start; then [`Error::Timeout`]. (A message that starts but stalls past the deadline also
    /// times out, and leaves the connection unusable.)
    ///
    /// ```
    /// use std::time::Duration;
    /// let (_a, mut b) = shmpool::pipe(true)?;
    /// assert!(matches!(b.recv_bytes_timeout(Duration::from_millis(5)), Err(shmpool::Error::Timeout { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>> {
        self.recv_data(Some(timeout), "Connection::recv_bytes")
    }

    /// Receives one message into `buf` and returns its length.
    ///
    /// # Errors
    ///
    /// [`Error::BufferTooSmall`] when the message does not fit: it stays queued, and the next
    /// receive (of any kind) returns it. Otherwise as [`recv_bytes`](Connection::recv_bytes).
    ///
    /// ```
    /// let (mut a, mut b) = shmpool::pipe(true)?;
    /// a.send_bytes(b"hello")?;
    /// let mut small = [0u8; 2];
    /// assert!(matches!(b.recv_bytes_into(&mut small), Err(shmpool::Error::BufferTooSmall { needed: 5, .. })));
    /// let mut buf = [0u8; 16];
    /// let n = b.recv_bytes_into(&mut buf)?;
    /// assert_eq!(&buf[..n], b"hello");
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize> {
        let payload = self.recv_data(None, "Connection::recv_bytes_into")?;
        if payload.len() > buf.len() {
            let (needed, len) = (payload.len(), buf.len());
            // Queued again for the next receive (a data message carries no descriptor to keep).
            self.stash = Some(Frame { tag: TAG_DATA, payload, fds: Vec::new() });
            return Err(Error::BufferTooSmall { needed, len });
        }
        buf[..payload.len()].copy_from_slice(&payload);
        Ok(payload.len())
    }

    /// Serializes `msg` (postcard) and sends it as one message.
    ///
    /// ```
    /// let (mut a, mut b) = shmpool::pipe(true)?;
    /// a.send(&vec![1.5f64, 2.5])?;
    /// assert_eq!(b.recv::<Vec<f64>>()?, [1.5, 2.5]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn send<M: Serialize + ?Sized>(&mut self, msg: &M) -> Result<()> {
        let bytes = postcard::to_stdvec(msg)
            .map_err(|e| Error::BadMessage { what: WHAT, reason: format!("cannot encode: {e}") })?;
        self.send_bytes(&bytes)
    }

    /// Receives one message and deserializes it as `M`.
    ///
    /// # Errors
    ///
    /// [`Error::BadMessage`] when the bytes do not decode as `M` (the message is consumed);
    /// otherwise as [`recv_bytes`](Connection::recv_bytes).
    ///
    /// ```
    /// let (mut a, mut b) = shmpool::pipe(true)?;
    /// a.send_bytes(&[0xff; 3])?; // not a valid String encoding
    /// assert!(matches!(b.recv::<String>(), Err(shmpool::Error::BadMessage { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn recv<M: DeserializeOwned>(&mut self) -> Result<M> {
        decode(&self.recv_bytes()?)
    }

    /// As [`recv`](Connection::recv), waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (mut a, mut b) = shmpool::pipe(true)?;
    /// a.send(&1u8)?;
    /// assert_eq!(b.recv_timeout::<u8>(Duration::from_secs(1))?, 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn recv_timeout<M: DeserializeOwned>(&mut self, timeout: Duration) -> Result<M> {
        decode(&self.recv_data(Some(timeout), "Connection::recv")?)
    }

    /// Whether a message (or the peer's end-of-file) can be received now, waiting at most
    /// `timeout` for one.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (mut a, b) = shmpool::pipe(true)?;
    /// assert!(!b.poll(Duration::ZERO)?);
    /// a.send(&1u8)?;
    /// assert!(b.poll(Duration::from_secs(1))?);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        if self.stash.is_some() {
            return Ok(true);
        }
        if !self.readable {
            return Err(Error::Closed { what: "write-only end of a one-way pipe" });
        }
        fdpass::wait_readable(self.fd.as_fd(), Some(timeout)).map_err(Error::io("poll"))
    }

    /// Sends a segment handle. For an anonymous segment (memfd) the descriptor itself travels
    /// (`SCM_RIGHTS`), so the receiver can open it even after the creator exited; this process
    /// must hold that descriptor (it created the segment, or inherited it by fork): the
    /// descriptor number in the handle must be a memfd here whose header carries the handle's
    /// nonce, else [`Error::StaleHandle`], so an unrelated file at that number is never sent.
    ///
    /// ```
    /// use shmpool::SharedArray;
    /// let (mut a, mut b) = shmpool::pipe(true)?;
    /// let arr = SharedArray::from_slice(&[1u32, 2, 3])?;
    /// a.send_handle(&arr.handle())?;
    /// let got = b.recv_handle()?;
    /// // SAFETY: nothing writes the array while `view` lives.
    /// let view = unsafe { SharedArray::<u32>::open_handle(got.handle())? };
    /// assert_eq!(&view[..], &[1, 2, 3]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn send_handle(&mut self, handle: &SegmentHandle) -> Result<()> {
        let payload = postcard::to_stdvec(handle).map_err(|e| Error::BadMessage {
            what: WHAT,
            reason: format!("cannot encode the handle: {e}"),
        })?;
        match &handle.loc {
            Locator::Named(_) => self.send_frame(TAG_HANDLE, &payload, None),
            Locator::Anonymous { fd, .. } => {
                let stale =
                    |reason: String| Error::StaleHandle { what: handle.to_string(), reason };
                // Our own duplicate: the number in the handle is caller data, so we never borrow
                // it; whatever it names now is checked through the duplicate we own.
                let dup = fdpass::dup_cloexec(*fd as RawFd).map_err(|_| {
                    stale(format!(
                        "this process holds no descriptor {fd}; send the handle from the process that created the segment"
                    ))
                })?;
                if !socket::is_memfd(dup.as_raw_fd()) || !holds_nonce(&dup, handle.nonce) {
                    return Err(stale(format!(
                        "descriptor {fd} in this process is not that segment's memfd; send the handle from the process that created the segment"
                    )));
                }
                self.send_frame(TAG_HANDLE, &payload, Some(dup.as_fd()))
            }
        }
    }

    /// Receives a segment handle sent with [`send_handle`](Connection::send_handle). The
    /// returned value holds the received descriptor; open the segment (for example with
    /// `SharedArray::open_handle(received.handle())`) while it lives.
    ///
    /// # Errors
    ///
    /// [`Error::BadMessage`] when the next message is not a handle (the message stays queued
    /// for [`recv_bytes`](Connection::recv_bytes)); otherwise as
    /// [`recv_bytes`](Connection::recv_bytes).
    ///
    /// ```
    /// let (mut a, mut b) = shmpool::pipe(true)?;
    /// a.send_bytes(b"not a handle")?;
    /// assert!(b.recv_handle().is_err());
    /// assert_eq!(b.recv_bytes()?, b"not a handle"); // still there
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn recv_handle(&mut self) -> Result<ReceivedHandle> {
        let mut f = self.recv_frame(None, "Connection::recv_handle")?;
        if f.tag != TAG_HANDLE {
            self.stash = Some(f);
            return Err(Error::BadMessage { what: WHAT, reason: "the next message is data, not a segment handle; take it with recv_bytes or recv".into() });
        }
        let mut handle: SegmentHandle = decode(&f.payload)?;
        let fd = match handle.loc {
            Locator::Named(_) => None,
            Locator::Anonymous { .. } => {
                let fd = f.fds.pop().ok_or_else(|| Error::BadMessage {
                    what: WHAT,
                    reason: "an anonymous segment handle arrived without its descriptor".into(),
                })?;
                handle.loc = Locator::Anonymous { pid: sys::proc::getpid(), fd: fd.as_raw_fd() };
                Some(fd)
            }
        };
        Ok(ReceivedHandle { handle, _fd: fd })
    }

    /// What a `Process` argument carries of this end besides its descriptor (`sync::by_handle`):
    /// its directions and message limit. Refused while it holds a message set aside or lost its
    /// framing, which would not cross.
    pub(crate) fn crossing(
        &self,
    ) -> std::result::Result<(BorrowedFd<'_>, bool, bool, u64), String> {
        if self.stash.is_some() {
            return Err("this Connection holds a message set aside (too large for a buffer, or \
                        of the other kind): receive it before passing the Connection on"
                .into());
        }
        if let Some(why) = self.broken {
            return Err(format!("this Connection lost its framing ({why}); open a new pipe"));
        }
        Ok((self.fd.as_fd(), self.readable, self.writable, self.max as u64))
    }

    /// The end that crossed as a `Process` argument: `fd`, a socket that came with the
    /// arguments, and what [`crossing`](Connection::crossing) said of it.
    pub(crate) fn arrived(
        fd: OwnedFd,
        readable: bool,
        writable: bool,
        max: u64,
    ) -> Result<Connection> {
        if fdpass::fd_kind(fd.as_raw_fd()) != Some(fdpass::FdKind::Socket) {
            return Err(Error::BadMessage {
                what: WHAT,
                reason: "the descriptor that came as a Connection is not a socket".into(),
            });
        }
        let max =
            usize::try_from(max).unwrap_or(usize::MAX).min(Layout::Len32Kind32.largest() as usize);
        Ok(Connection { fd, readable, writable, max, stash: None, broken: None })
    }

    /// Closes this end; the peer's receives then end with [`Error::Disconnected`] (once no other
    /// process holds a copy of this end). Dropping does the same.
    ///
    /// ```
    /// let (a, mut b) = shmpool::pipe(true)?;
    /// a.close();
    /// assert!(b.recv_bytes().is_err());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn close(self) {
        drop(self)
    }
}

/// Whether the segment file behind `fd` carries `nonce` in its header.
fn holds_nonce(fd: &OwnedFd, nonce: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(file) = fd.try_clone().map(std::fs::File::from) else { return false };
    let mut bytes = [0u8; 8];
    let at = std::mem::offset_of!(crate::segment::header::Header, nonce) as u64;
    file.read_exact_at(&mut bytes, at).is_ok() && u64::from_ne_bytes(bytes) == nonce
}

fn decode<M: DeserializeOwned>(bytes: &[u8]) -> Result<M> {
    postcard::from_bytes(bytes)
        .map_err(|e| Error::BadMessage { what: WHAT, reason: format!("cannot decode: {e}") })
}

impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Connection {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd.as_raw_fd())
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .field("max_message", &self.max)
            .finish()
    }
}

/// A segment handle received over a [`Connection`], holding the descriptor that came with it.
/// Open the segment through [`handle`](ReceivedHandle::handle) while this value lives; the
/// opened object keeps its own descriptor, so this one may be dropped afterwards.
///
/// ```
/// let (mut a, mut b) = shmpool::pipe(true)?;
/// let q = shmpool::Queue::<u8>::bounded(4)?;
/// a.send_handle(&q.handle())?;
/// let got = b.recv_handle()?;
/// shmpool::Queue::<u8>::open_handle(got.handle())?.put(1)?;
/// assert_eq!(q.get()?, 1);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug)]
pub struct ReceivedHandle {
    handle: SegmentHandle,
    _fd: Option<OwnedFd>,
}

impl ReceivedHandle {
    /// The handle, rewritten to point at the received descriptor in this process.
    ///
    /// ```
    /// let (mut a, mut b) = shmpool::pipe(true)?;
    /// let arr = shmpool::SharedArray::<u8>::zeroed(1)?;
    /// a.send_handle(&arr.handle())?;
    /// println!("{}", b.recv_handle()?.handle());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn handle(&self) -> &SegmentHandle {
        &self.handle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::ShmOptions;

    #[test]
    fn named_handles_travel_without_a_descriptor() {
        let (mut a, mut b) = pipe(true).unwrap();
        let arr =
            crate::SharedArray::from_slice_with(&[4u8, 5], &ShmOptions::new().generated_name())
                .unwrap();
        a.send_handle(&arr.handle()).unwrap();
        let got = b.recv_handle().unwrap();
        assert_eq!(got.handle(), &arr.handle());
        // SAFETY: nothing writes the array.
        let view = unsafe { crate::SharedArray::<u8>::open_handle(got.handle()) }.unwrap();
        assert_eq!(&view[..], &[4, 5]);
    }

    #[test]
    fn a_handle_frame_is_not_taken_as_data_and_stays_queued() {
        let (mut a, mut b) = pipe(true).unwrap();
        let q = crate::Queue::<u8>::bounded(1).unwrap();
        a.send_handle(&q.handle()).unwrap();
        assert!(matches!(b.recv_bytes(), Err(Error::BadMessage { .. })));
        assert!(b.poll(Duration::ZERO).unwrap());
        let got = b.recv_handle().unwrap();
        crate::Queue::<u8>::open_handle(got.handle()).unwrap();
    }

    #[test]
    fn a_handle_this_process_cannot_send_is_refused() {
        let (mut a, _b) = pipe(true).unwrap();
        let bogus = SegmentHandle { loc: Locator::Anonymous { pid: 1, fd: 9999 }, nonce: 0 };
        assert!(matches!(a.send_handle(&bogus), Err(Error::StaleHandle { .. })));
    }

    #[test]
    fn a_handle_whose_descriptor_is_another_file_is_refused() {
        let (mut a, mut b) = pipe(true).unwrap();
        let arr = crate::SharedArray::from_slice(&[1u8]).unwrap();
        let other = crate::SharedArray::from_slice(&[2u8]).unwrap();
        let Locator::Anonymous { pid, fd: other_fd } = other.handle().loc else { unreachable!() };
        let mut h = arr.handle();
        // Another memfd segment at that number: its nonce differs.
        h.loc = Locator::Anonymous { pid, fd: other_fd };
        assert!(matches!(a.send_handle(&h), Err(Error::StaleHandle { .. })));
        // Not a memfd at all (our own socket).
        h.loc = Locator::Anonymous { pid, fd: b.as_raw_fd() };
        assert!(matches!(a.send_handle(&h), Err(Error::StaleHandle { .. })));
        // The real one goes, whatever pid the handle names (a forked child holds the same fd).
        let mut h = arr.handle();
        let Locator::Anonymous { fd, .. } = h.loc else { unreachable!() };
        h.loc = Locator::Anonymous { pid: pid + 1, fd };
        a.send_handle(&h).unwrap();
        let got = b.recv_handle().unwrap();
        // SAFETY: nothing writes the array.
        let view = unsafe { crate::SharedArray::<u8>::open_handle(got.handle()) }.unwrap();
        assert_eq!(&view[..], &[1]);
    }

    #[test]
    fn one_way_pipes_refuse_the_wrong_direction() {
        let (mut r, mut w) = pipe(false).unwrap();
        assert!(matches!(r.send_bytes(b"x"), Err(Error::Closed { .. })));
        assert!(matches!(w.recv_bytes(), Err(Error::Closed { .. })));
        w.send(&1u16).unwrap();
        assert_eq!(r.recv::<u16>().unwrap(), 1);
    }

    #[test]
    fn large_messages_cross_whole() {
        let (mut a, mut b) = pipe(true).unwrap();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::thread::scope(|s| {
            s.spawn(|| a.send_bytes(&big).unwrap());
            assert_eq!(b.recv_bytes().unwrap(), big);
        });
    }

    #[test]
    fn garbage_header_breaks_the_connection_with_an_error() {
        use std::io::Write;
        let (a, mut b) = pipe(true).unwrap();
        let mut raw = std::os::unix::net::UnixStream::from(a.as_fd().try_clone_to_owned().unwrap());
        raw.write_all(&[1, 0, 0, 0, 99, 0, 0, 0, 0]).unwrap();
        assert!(matches!(b.recv_bytes(), Err(Error::BadMessage { .. })));
        assert!(matches!(b.recv_bytes(), Err(Error::BadMessage { .. })));
    }

    // ---- property tests: byte streams another process wrote, random and mutated ----
    //
    // A writer thread puts pieces (well-formed frames, frames over the limit, unknown tags,
    // handle frames with garbage or without their descriptor, raw bytes; some flipped, the
    // stream maybe cut short; some pieces carrying a descriptor) on one end of a socket pair and
    // closes it, so end-of-file always comes. The reader calls random receive operations, then
    // drains. Every result must equal what a small reference parser of the documented framing
    // predicts (so each is a typed error or the right value), no call may hold more than
    // max_message-sized buffers, and every descriptor that came along must be closed once the
    // values holding it are dropped.

    use std::cell::Cell;
    use std::io::{Read, Write as _};

    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::Index;
    use proptest::test_runner::{Config, TestRunner};

    use crate::process::entry::tests::meter;

    fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value)) {
        // No regression files: they would land in the source tree.
        let config = Config {
            cases,
            failure_persistence: None,
            // A failing case may wait out the descriptor check: keep shrinking short.
            max_shrink_iters: 200,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        if let Err(e) = runner.run(&strategy, |v| {
            test(v);
            Ok(())
        }) {
            panic!("{e}");
        }
    }

    fn frame(len: u32, tag: u32, payload: &[u8]) -> Vec<u8> {
        [&len.to_le_bytes()[..], &tag.to_le_bytes(), payload].concat()
    }

    /// What the writer sends in one `sendmsg` loop: bytes, and whether a descriptor rides on the
    /// first of them.
    #[derive(Debug, Clone)]
    struct Piece {
        bytes: Vec<u8>,
        fd: bool,
    }

    /// One receive call.
    #[derive(Debug, Clone, Copy)]
    enum Op {
        Bytes,
        BytesTimeout,
        Into(usize),
        Str,
        Handle,
        Poll,
    }

    /// A call's result, reduced to what the framing decides.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Outcome {
        Bytes(Vec<u8>),
        Named(SegmentHandle),
        /// An anonymous handle with its descriptor, rewritten to this process.
        Anon(u64),
        Ready(bool),
        Disconnected,
        Truncated {
            expected: u64,
            got: u64,
        },
        TooLarge {
            len: u64,
        },
        TooSmall {
            needed: usize,
        },
        Bad,
    }

    /// The documented framing, as a parser of the whole stream (the writer closed its end).
    struct Model {
        s: Vec<u8>,
        /// Offsets at which a descriptor was attached.
        fds: Vec<usize>,
        pos: usize,
        max: u64,
        stash: Option<(u32, Vec<u8>, usize)>,
        broken: bool,
    }

    impl Model {
        fn frame(&mut self) -> std::result::Result<(u32, Vec<u8>, usize), Outcome> {
            if let Some(f) = self.stash.take() {
                return Ok(f);
            }
            if self.broken {
                return Err(Outcome::Bad);
            }
            let (start, end) = (self.pos, self.s.len());
            let rest = end - start;
            if rest == 0 {
                return Err(Outcome::Disconnected);
            }
            if rest < HEADER {
                (self.pos, self.broken) = (end, true);
                return Err(Outcome::Truncated { expected: 8, got: rest as u64 });
            }
            let len = u32::from_le_bytes(self.s[start..start + 4].try_into().unwrap()) as u64;
            let tag = u32::from_le_bytes(self.s[start + 4..start + 8].try_into().unwrap());
            self.pos += HEADER;
            if tag > TAG_HANDLE {
                self.broken = true;
                return Err(Outcome::Bad);
            }
            let avail = (end - self.pos) as u64;
            if len > self.max {
                self.pos += len.min(avail) as usize;
                return Err(Outcome::TooLarge { len });
            }
            if avail < len {
                (self.pos, self.broken) = (end, true);
                return Err(Outcome::Truncated { expected: 8 + len, got: 8 + avail });
            }
            let payload = self.s[self.pos..self.pos + len as usize].to_vec();
            self.pos += len as usize;
            let fds = self.fds.iter().filter(|&&at| at >= start && at < self.pos).count();
            Ok((tag, payload, fds))
        }

        fn apply(&mut self, op: Op) -> Outcome {
            if let Op::Poll = op {
                return Outcome::Ready(true); // a message, or the writer's end-of-file
            }
            let f = match self.frame() {
                Ok(f) => f,
                Err(o) => return o,
            };
            let want = if let Op::Handle = op { TAG_HANDLE } else { TAG_DATA };
            if f.0 != want {
                self.stash = Some(f);
                return Outcome::Bad;
            }
            match op {
                Op::Into(room) if f.1.len() > room => {
                    let needed = f.1.len();
                    self.stash = Some(f);
                    Outcome::TooSmall { needed }
                }
                Op::Str => match postcard::from_bytes::<String>(&f.1) {
                    Ok(s) => Outcome::Bytes(s.into_bytes()),
                    Err(_) => Outcome::Bad,
                },
                Op::Handle => match postcard::from_bytes::<SegmentHandle>(&f.1) {
                    Ok(h) if matches!(h.loc, Locator::Named(_)) => Outcome::Named(h),
                    Ok(h) if f.2 > 0 => Outcome::Anon(h.nonce),
                    _ => Outcome::Bad,
                },
                _ => Outcome::Bytes(f.1),
            }
        }

        /// The call that takes the next message, whichever kind it is.
        fn next_op(&self) -> Op {
            match &self.stash {
                Some((TAG_HANDLE, ..)) => Op::Handle,
                _ => Op::Bytes,
            }
        }
    }

    /// Runs `op` on the real connection; `keep` collects received handles (they hold
    /// descriptors). Checks the allocation bound on the way.
    fn real(c: &mut Connection, op: Op, keep: &mut Vec<ReceivedHandle>) -> Outcome {
        let max = c.max;
        let mut buf = vec![0xEE; if let Op::Into(room) = op { room } else { 0 }];
        let (r, peak) = meter::peak_during(|| match op {
            Op::Bytes => c.recv_bytes().map(Outcome::Bytes),
            Op::BytesTimeout => c.recv_bytes_timeout(Duration::from_secs(5)).map(Outcome::Bytes),
            Op::Into(_) => c.recv_bytes_into(&mut buf).map(|n| Outcome::Bytes(buf[..n].to_vec())),
            Op::Str => c.recv::<String>().map(|s| Outcome::Bytes(s.into_bytes())),
            Op::Handle => c.recv_handle().map(|h| {
                let o = match h.handle().loc {
                    Locator::Named(_) => Outcome::Named(h.handle().clone()),
                    Locator::Anonymous { pid, fd } => {
                        assert_eq!(pid, sys::proc::getpid());
                        assert_eq!(Some(fd), h._fd.as_ref().map(|f| f.as_raw_fd()));
                        Outcome::Anon(h.handle().nonce)
                    }
                };
                keep.push(h);
                o
            }),
            Op::Poll => c.poll(Duration::from_secs(5)).map(Outcome::Ready),
        });
        // The payload (at most max), one decoded copy of it, and small change for messages: never
        // anything sized by a length the peer announced.
        assert!(peak <= 2 * max + 1024, "{op:?} held {peak} bytes with max_message {max}");
        if let Op::Into(_) = op
            && let Ok(Outcome::Bytes(b)) = &r
        {
            assert!(buf[b.len()..].iter().all(|&x| x == 0xEE), "wrote past the message");
        }
        r.unwrap_or_else(|e| match e {
            Error::Disconnected { .. } => Outcome::Disconnected,
            Error::TruncatedFrame { expected, got, .. } => Outcome::Truncated { expected, got },
            Error::MessageTooLarge { len, max: m, .. } => {
                assert_eq!(m, max as u64);
                Outcome::TooLarge { len }
            }
            Error::BufferTooSmall { needed, len } => {
                assert_eq!(len, buf.len());
                Outcome::TooSmall { needed }
            }
            Error::BadMessage { .. } => Outcome::Bad,
            e => panic!("{op:?}: unexpected error {e:?}"),
        })
    }

    fn small_string() -> impl Strategy<Value = String> {
        vec(any::<char>(), 0..12).prop_map(|c| c.into_iter().collect())
    }

    fn handle() -> impl Strategy<Value = SegmentHandle> {
        let loc = prop_oneof![
            small_string().prop_map(Locator::Named),
            (any::<u32>(), any::<i32>()).prop_map(|(pid, fd)| Locator::Anonymous { pid, fd }),
        ];
        (loc, any::<u64>()).prop_map(|(loc, nonce)| SegmentHandle { loc, nonce })
    }

    /// The byte content of one piece, for connections limited to `max` bytes.
    fn piece_bytes(max: u32) -> impl Strategy<Value = Vec<u8>> {
        let room = (max as usize + 8).min(300);
        prop_oneof![
            // Messages, some just over the limit.
            5 => vec(any::<u8>(), 0..=room).prop_map(|p| frame(p.len() as u32, TAG_DATA, &p)),
            2 => small_string().prop_map(|s| {
                let p = postcard::to_stdvec(&s).unwrap();
                frame(p.len() as u32, TAG_DATA, &p)
            }),
            // Handle frames: well-formed, or garbage.
            2 => handle().prop_map(|h| {
                let p = postcard::to_stdvec(&h).unwrap();
                frame(p.len() as u32, TAG_HANDLE, &p)
            }),
            1 => vec(any::<u8>(), 0..24).prop_map(|p| frame(p.len() as u32, TAG_HANDLE, &p)),
            // Over the limit with the whole payload there (the stream goes on after it) ...
            1 => (1u32..200, 0..=TAG_HANDLE)
                .prop_map(move |(k, tag)| frame(max + k, tag, &vec![k as u8; (max + k) as usize])),
            // ... or announcing up to 4 GiB and sending little of it.
            1 => (max + 1.., 0..=TAG_HANDLE, 0usize..64)
                .prop_map(|(len, tag, n)| frame(len, tag, &vec![7; n.min(len as usize)])),
            1 => (TAG_HANDLE + 1.., 0u32..16)
                .prop_map(|(tag, len)| frame(len, tag, &vec![1; len as usize])),
            1 => vec(any::<u8>(), 0..12),
        ]
    }

    fn piece(max: u32) -> impl Strategy<Value = Piece> {
        let flips = prop::option::weighted(0.1, vec((any::<Index>(), 1u8..), 1..3));
        (piece_bytes(max), flips, prop::bool::weighted(0.2)).prop_map(|(mut bytes, flips, fd)| {
            for (at, x) in flips.into_iter().flatten() {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] ^= x;
                }
            }
            Piece { fd: fd && !bytes.is_empty(), bytes }
        })
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Bytes),
            Just(Op::BytesTimeout),
            (0usize..400).prop_map(Op::Into),
            Just(Op::Str),
            Just(Op::Handle),
            Just(Op::Poll),
        ]
    }

    type Case = (u32, Vec<Piece>, Option<Index>, Vec<Op>);

    fn cases() -> impl Strategy<Value = Case> {
        prop_oneof![Just(0u32), Just(5), Just(64), 1u32..3000].prop_flat_map(|max| {
            let cut = prop::option::weighted(0.2, any::<Index>());
            (Just(max), vec(piece(max), 0..8), cut, vec(op(), 0..12))
        })
    }

    /// Writes `pieces` (cut to `cut` bytes) into a connection limited to `max`, runs `ops` then
    /// drains, comparing every result with the model; returns the number of calls made.
    /// Returns how many calls were made in all, and what the listed `ops` gave.
    fn check_stream(
        max: u32,
        pieces: &[Piece],
        cut: Option<usize>,
        ops: &[Op],
    ) -> (usize, Vec<Outcome>) {
        let mut pieces = pieces.to_vec();
        if let Some(cut) = cut {
            let mut left = cut;
            for p in &mut pieces {
                p.bytes.truncate(left);
                left -= p.bytes.len();
            }
            pieces.retain(|p| !p.bytes.is_empty());
        }
        let mut model = Model {
            s: pieces.iter().flat_map(|p| p.bytes.clone()).collect(),
            fds: Vec::new(),
            pos: 0,
            max: max as u64,
            stash: None,
            broken: false,
        };
        let mut at = 0;
        for p in &pieces {
            if p.fd {
                model.fds.push(at);
            }
            at += p.bytes.len();
        }
        // What rides along: the write end of a pipe, whose reader sees end-of-file only once
        // every copy is closed.
        let (mut leak_r, leak_w) = std::io::pipe().unwrap();
        let (a, mut b) = pipe_with(true, max as usize).unwrap();
        let w = a.fd;
        let calls = Cell::new(0);
        let mut listed = Vec::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                for p in &pieces {
                    let mut sent = 0;
                    while sent < p.bytes.len() {
                        let fds = if p.fd && sent == 0 { vec![leak_w.as_fd()] } else { vec![] };
                        match socket::send(w.as_fd(), &[&p.bytes[sent..]], &fds) {
                            Ok(n) => sent += n,
                            Err(_) => return, // the reader is done and closed its end
                        }
                    }
                }
                drop(w);
            });
            let mut keep = Vec::new();
            let mut step = |op: Op, model: &mut Model| {
                calls.set(calls.get() + 1);
                let want = model.apply(op);
                let got = real(&mut b, op, &mut keep);
                assert_eq!(
                    got,
                    want,
                    "call {} ({op:?}) at stream offset {}",
                    calls.get(),
                    model.pos
                );
                want
            };
            for &op in ops {
                listed.push(step(op, &mut model));
            }
            // Drain: each call consumes a frame, so this ends within len/8 + 2 calls, with
            // end-of-file or a broken stream; after that every call keeps saying so.
            for _ in 0..model.s.len() / HEADER + 3 {
                let op = model.next_op();
                let o = step(op, &mut model);
                if o == Outcome::Disconnected || (o == Outcome::Bad && model.broken) {
                    break;
                }
            }
            let last = step(Op::Bytes, &mut model);
            assert!(matches!(last, Outcome::Disconnected | Outcome::Bad), "{last:?}");
            for op in [Op::Handle, Op::Into(0), Op::Str, Op::BytesTimeout] {
                step(op, &mut model);
            }
            drop(b);
            drop(keep);
        });
        drop(leak_w);
        assert!(
            fdpass::wait_readable(leak_r.as_fd(), Some(Duration::from_millis(500))).unwrap(),
            "a descriptor that arrived over the connection is still open"
        );
        assert_eq!(leak_r.read(&mut [0u8; 1]).unwrap(), 0);
        (calls.get(), listed)
    }

    #[test]
    fn fuzzed_streams_give_the_framing_s_answer_or_a_typed_error() {
        run(3000, cases(), |(max, pieces, cut, ops)| {
            let total: usize = pieces.iter().map(|p| p.bytes.len()).sum();
            check_stream(max, &pieces, cut.map(|c| c.index(total + 1)), &ops);
        });
    }

    fn data(p: &[u8]) -> Piece {
        Piece { bytes: frame(p.len() as u32, TAG_DATA, p), fd: false }
    }

    fn with_fd(mut p: Piece) -> Piece {
        p.fd = true;
        p
    }

    fn raw_piece(bytes: &[u8]) -> Piece {
        Piece { bytes: bytes.to_vec(), fd: false }
    }

    #[test]
    fn listed_bad_streams_give_the_documented_errors() {
        use Op::*;
        let anon = SegmentHandle { loc: Locator::Anonymous { pid: 1, fd: 3 }, nonce: 9 };
        let anon = postcard::to_stdvec(&anon).unwrap();
        let anon = frame(anon.len() as u32, TAG_HANDLE, &anon);
        let garbage_handle = Piece { bytes: frame(3, TAG_HANDLE, &[0xff; 3]), fd: false };
        use Outcome as O;
        /// What a case is called, what is written, the calls made, what they must give.
        type Case = (&'static str, Vec<Piece>, Vec<Op>, Vec<Outcome>);
        let cases: Vec<Case> = vec![
            (
                "a truncated header",
                vec![raw_piece(&[5, 0, 0])],
                vec![Bytes, Bytes],
                vec![O::Truncated { expected: 8, got: 3 }, O::Bad],
            ),
            (
                "a truncated payload",
                vec![raw_piece(&frame(9, TAG_DATA, b"abc"))],
                vec![Bytes],
                vec![O::Truncated { expected: 17, got: 11 }],
            ),
            (
                "an unknown tag",
                vec![raw_piece(&frame(1, 7, b"x")), data(b"after")],
                vec![Bytes],
                vec![O::Bad],
            ),
            (
                "a handle frame without its descriptor",
                vec![raw_piece(&anon)],
                vec![Handle],
                vec![O::Bad],
            ),
            ("the same with it", vec![with_fd(raw_piece(&anon))], vec![Handle], vec![O::Anon(9)]),
            (
                "a garbage handle",
                vec![garbage_handle.clone(), data(b"x")],
                vec![Handle, Bytes],
                vec![O::Bad, O::Bytes(b"x".to_vec())],
            ),
            (
                "a garbage handle with a descriptor",
                vec![with_fd(garbage_handle)],
                vec![Handle],
                vec![O::Bad],
            ),
            (
                "a descriptor on a message",
                vec![with_fd(data(b"m"))],
                vec![Bytes],
                vec![O::Bytes(b"m".to_vec())],
            ),
            (
                "4 GiB - 1 announced over the limit, then more frames",
                vec![raw_piece(&frame(u32::MAX, TAG_DATA, &[1; 40])), data(b"next")],
                vec![Bytes, Bytes],
                vec![O::TooLarge { len: u32::MAX as u64 }, O::Disconnected],
            ),
            (
                "over the limit, whole, then more frames",
                vec![data(&[3; 100]), data(b"next"), with_fd(data(&[4; 65])), data(b"last")],
                vec![Poll, Into(3), Str, Bytes, Bytes],
                vec![
                    O::Ready(true),
                    O::TooLarge { len: 100 },
                    O::Bad,
                    O::TooLarge { len: 65 },
                    O::Bytes(b"last".to_vec()),
                ],
            ),
        ];
        for (what, pieces, ops, want) in cases {
            // The model is checked too: these expectations are the documentation's table.
            let (calls, got) = check_stream(64, &pieces, None, &ops);
            assert!(calls > ops.len(), "{what}");
            assert_eq!(got, want, "{what}");
        }
        // Spelled out for two of them.
        let (a, mut b) = pipe_with(true, 64).unwrap();
        let mut w = std::os::unix::net::UnixStream::from(a.fd);
        let over = frame(u32::MAX, TAG_DATA, &[]);
        w.write_all(&[&over[..], &[0; 100], &frame(1, TAG_HANDLE, &[0])].concat()).unwrap();
        drop(w);
        let e = b.recv_bytes().unwrap_err();
        assert!(matches!(e, Error::MessageTooLarge { len: 0xffff_ffff, max: 64, .. }), "{e}");
        assert!(matches!(b.recv_bytes(), Err(Error::Disconnected { .. })));
        let (a, mut b) = pipe_with(true, 64).unwrap();
        let mut w = std::os::unix::net::UnixStream::from(a.fd);
        w.write_all(&[&frame(1, TAG_HANDLE, &[0])[..], &frame(2, TAG_DATA, b"ok")].concat())
            .unwrap();
        drop(w);
        assert!(matches!(b.recv_handle(), Err(Error::BadMessage { .. })));
        assert_eq!(b.recv_bytes().unwrap(), b"ok");
    }

    #[test]
    fn a_stalled_message_over_the_limit_times_out() {
        // The peer announces more than the limit, sends a little of it, and stalls (alive, end
        // open). Skipping the refused bytes used to ignore the deadline and block forever.
        let (a, mut b) = pipe_with(true, 16).unwrap();
        let mut w = std::os::unix::net::UnixStream::from(a.fd);
        w.write_all(&[&frame(1000, TAG_DATA, &[])[..], &[0; 10]].concat()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let r = b.recv_bytes_timeout(Duration::from_millis(100));
            let again = b.recv_bytes_timeout(Duration::from_millis(10));
            let _ = tx.send((r, again));
        });
        let got = rx.recv_timeout(Duration::from_secs(10));
        drop(w); // unblocks a reader stuck in the old code, so the test ends either way
        let (r, again) = got.expect("recv_bytes_timeout blocked past its deadline");
        reader.join().unwrap();
        assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
        // The stream is inside the refused message now: later receives say so.
        let e = again.unwrap_err();
        assert!(
            matches!(&e, Error::BadMessage { reason, .. } if reason.contains("timeout")),
            "{e}"
        );
    }

    /// The most a header can announce (4 GiB - 1) on a connection whose limit allows it, then ten
    /// bytes and the end: memory follows what arrived, and the numbers do not wrap.
    #[test]
    fn the_longest_length_a_header_can_hold_costs_what_arrived() {
        let (a, mut b) = pipe_with(true, u32::MAX as usize).unwrap();
        let mut w = std::os::unix::net::UnixStream::from(a.fd);
        w.write_all(&[&frame(u32::MAX, TAG_DATA, &[])[..], &[5; 10]].concat()).unwrap();
        drop(w);
        let (r, peak) = meter::peak_during(|| b.recv_bytes());
        let want = HEADER as u64 + u64::from(u32::MAX);
        assert!(
            matches!(r, Err(Error::TruncatedFrame { expected, got: 18, .. }) if expected == want),
            "{r:?}"
        );
        assert!(peak < 64 << 10, "{peak} bytes allocated for 18 received");
        assert!(matches!(b.recv_bytes(), Err(Error::BadMessage { .. })));
    }

    /// A message sent a byte per write: whole, and the buffer stays within twice its length.
    #[test]
    fn a_message_trickling_in_is_read_whole_in_bounded_memory() {
        let (a, mut b) = pipe_with(true, 1 << 20).unwrap();
        let payload: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
        let bytes = [&frame(payload.len() as u32, TAG_DATA, &[])[..], &payload].concat();
        let writer = std::thread::spawn(move || {
            let w = std::os::unix::net::UnixStream::from(a.fd);
            for chunk in bytes.chunks(7) {
                (&w).write_all(chunk).unwrap();
            }
        });
        let (r, peak) = meter::peak_during(|| b.recv_bytes_timeout(Duration::from_secs(30)));
        writer.join().unwrap();
        assert_eq!(r.unwrap(), payload);
        assert!(peak <= 2 * payload.len() + 4096, "{peak} bytes for {}", payload.len());
    }
}
