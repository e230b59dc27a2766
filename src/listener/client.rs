//! `Client`: one authenticated connection, from [`Client::connect`] or
//! [`Listener::accept`](super::Listener::accept) (Python's `multiprocessing.connection.Client`
//! and the connection `Listener.accept()` returns).
//!
//! Frames are `crate::frame`'s message format (`u32` LE length, `u32` LE kind, body). Kind 0 is
//! a message; kinds 16 to 19 belong to the handshake (`auth.rs`) and are refused afterwards.
//! The same framing carries the Manager's requests and replies.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::frame::{Format, HEADER_LEN, Head, Layout};
use crate::sys::fdpass;
use crate::sys::socket::{self, Timeout};

/// The largest message a client or listener takes unless told otherwise: 64 MiB.
pub(crate) const DEFAULT_MAX_MESSAGE: usize = 64 << 20;

/// How long connecting and the handshake may take unless told otherwise: 5 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The frame kind of a message.
pub(crate) const KIND_DATA: u32 = 0;

const WHAT: &str = "client connection";

/// The read buffer's size: a message this size or smaller that has arrived whole is read,
/// header and body, in one `recv`.
const READ_BUF: usize = 32 * 1024;

/// An authenticated connection to a [`Listener`](super::Listener), or one the listener
/// accepted: sends and receives whole messages, as serde values (postcard) or bytes.
///
/// Both sides proved they hold the same `authkey` before the first message (HMAC-SHA256
/// challenge and response, each way; see `docs/manager.md`). Messages are limited to
/// [`max_message`](Client::max_message) bytes both ways: a larger frame from the peer is
/// refused without allocating for it. Every receive has a `_timeout` form. Bytes travel in
/// clear: use it on a trusted network or over a tunnel.
///
/// A receive reads what has arrived in one system call and keeps bytes past its message for
/// the next receive, so ask [`poll`](Client::poll) whether a message is ready, not a `poll` of
/// the descriptor, which cannot see them.
///
/// ```
/// use shmpool::connection::{Address, Client, Listener};
/// let listener = Listener::bind(&Address::localhost(0), b"secret")?;
/// let addr = listener.address().clone();
/// let t = std::thread::spawn(move || -> shmpool::Result<u32> {
///     let mut c = Client::connect(&addr, b"secret")?;
///     c.send(&41u32)?;
///     c.recv()
/// });
/// let mut conn = listener.accept()?;
/// let n: u32 = conn.recv()?;
/// conn.send(&(n + 1))?;
/// assert_eq!(t.join().unwrap()?, 42);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct Client {
    fd: OwnedFd,
    max: usize,
    /// The peer, for messages.
    peer: String,
    /// Set when a timeout or a bad header left the stream inside a frame.
    broken: Option<&'static str>,
    /// Bytes read ahead of the frames taken so far: `rbuf[rpos..rend]` is the start of the
    /// next frame(s). Allocated on the first receive.
    rbuf: Vec<u8>,
    rpos: usize,
    rend: usize,
    /// The socket's `SO_RCVTIMEO` as last set (`None`: none, the kernel's default).
    rcvtimeo: Option<Duration>,
    /// The socket's `SO_SNDTIMEO` (`None`: a send waits for the peer as long as it takes).
    sndtimeo: Option<Duration>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("fd", &self.fd.as_raw_fd())
            .field("peer", &self.peer)
            .field("max_message", &self.max)
            .finish()
    }
}

impl Client {
    /// A connection over a connected socket, not yet authenticated (`connect.rs`, `listen.rs`).
    pub(crate) fn over(fd: OwnedFd, peer: String, max_message: usize) -> Client {
        Client {
            fd,
            max: max_message,
            peer,
            broken: None,
            rbuf: Vec::new(),
            rpos: 0,
            rend: 0,
            rcvtimeo: None,
            sndtimeo: None,
        }
    }

    /// Bounds every later send by `timeout` (the socket's `SO_SNDTIMEO`): a peer that stops
    /// reading makes a send fail with [`Error::Timeout`] once the socket's buffer has stayed
    /// full that long, instead of blocking the sender for good. A send cut by the timeout
    /// leaves the peer's stream inside a frame, so the connection is then to be dropped. For a
    /// server, whose thread per connection must not be held by a client that never reads.
    pub(crate) fn set_send_timeout(&mut self, timeout: Duration) -> Result<()> {
        socket::set_timeout(self.fd.as_fd(), Timeout::Send, Some(timeout))
            .map_err(Error::io("setsockopt SO_SNDTIMEO"))?;
        self.sndtimeo = Some(timeout);
        Ok(())
    }

    /// The peer's address (a listener's, or "a client" on the accepting side).
    pub(crate) fn peer(&self) -> &str {
        &self.peer
    }

    /// The largest message this connection sends or accepts, in bytes.
    ///
    /// ```no_run
    /// # let addr: shmpool::connection::Address = "127.0.0.1:6000".parse()?;
    /// let c = shmpool::connection::Client::connect(&addr, b"k")?;
    /// assert_eq!(c.max_message(), shmpool::connection::DEFAULT_MAX_MESSAGE);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn max_message(&self) -> usize {
        self.max
    }

    /// Sends one frame of `kind`.
    pub(crate) fn send_frame(&mut self, kind: u32, body: &[u8]) -> Result<()> {
        if body.len() > self.max {
            return Err(Error::MessageTooLarge {
                what: WHAT,
                len: body.len() as u64,
                max: self.max as u64,
            });
        }
        let header = Format::message(self.max as u64).encode(body.len() as u64, kind);
        let total = HEADER_LEN + body.len();
        let mut sent = 0;
        while sent < total {
            let bufs: [&[u8]; 2] = if sent < HEADER_LEN {
                [&header[sent..], body]
            } else {
                [&body[sent - HEADER_LEN..], &[]]
            };
            match fdpass::send_vectored(self.fd.as_fd(), &bufs, &[]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if gone(&e) => return Err(Error::Disconnected { what: WHAT }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.sndtimeo.is_some() => {
                    let after = self.sndtimeo.unwrap_or_default();
                    return Err(Error::Timeout {
                        what: "sending a frame to a peer that does not read",
                        after,
                    });
                }
                Err(e) => return Err(Error::io("sendmsg")(e)),
            }
        }
        Ok(())
    }

    /// Receives one frame of at most `max` bytes: its kind and body. `timeout` bounds the wait
    /// for the frame to start and then each stall inside it (`None`: wait as long as it
    /// takes). A frame over `max` is skipped (never allocated) and refused with
    /// [`Error::MessageTooLarge`]; `skip_large` false refuses it without reading further (the
    /// connection is then unusable), for peers that are not trusted yet.
    pub(crate) fn recv_frame(
        &mut self,
        timeout: Option<Duration>,
        max: usize,
        skip_large: bool,
    ) -> Result<(u32, Vec<u8>)> {
        self.recv_frame_within(timeout, timeout, max, skip_large)
    }

    /// As [`recv_frame`](Client::recv_frame), the wait for the frame to start bounded by
    /// `first` and each stall inside it by `stall`.
    ///
    /// The socket stays blocking and the bounds are its `SO_RCVTIMEO` (set only when it
    /// changes), so a frame that has arrived whole costs one `recv` into the read buffer, which
    /// keeps what follows it for the next call; a body larger than the buffer is read
    /// straight into the message. See "One read per message" in `docs/manager.md`.
    fn recv_frame_within(
        &mut self,
        first: Option<Duration>,
        stall: Option<Duration>,
        max: usize,
        skip_large: bool,
    ) -> Result<(u32, Vec<u8>)> {
        if let Some(why) = self.broken {
            return Err(Error::BadMessage {
                what: WHAT,
                reason: format!("the stream lost its framing earlier ({why}); connect again"),
            });
        }
        let format = Format::message(max as u64);
        if self.rbuf.is_empty() {
            self.rbuf = vec![0; READ_BUF];
        }
        if self.rpos == self.rend {
            match self.fill(first) {
                Ok(0) => return Err(Error::Disconnected { what: WHAT }),
                Ok(_) => {}
                Err(Read::Timeout) => {
                    return Err(Error::Timeout { what: WHAT, after: first.unwrap_or_default() });
                }
                Err(Read::Io(e)) => return Err(Error::io("recvmsg")(e)),
            }
        }
        while self.rend - self.rpos < HEADER_LEN {
            let got = (self.rend - self.rpos) as u64;
            match self.fill(stall) {
                Ok(0) => {
                    self.broken = Some("a timeout or an error inside a frame header");
                    return Err(Error::TruncatedFrame {
                        what: WHAT,
                        expected: HEADER_LEN as u64,
                        got,
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    self.broken = Some("a timeout or an error inside a frame header");
                    return Err(e.into_error(stall));
                }
            }
        }
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&self.rbuf[self.rpos..self.rpos + HEADER_LEN]);
        self.rpos += HEADER_LEN;
        let Head { len, kind } = format.decode(h);
        let Ok(n) = format.check(len) else {
            if !skip_large {
                self.broken = Some("a frame over the limit");
                return Err(Error::MessageTooLarge { what: WHAT, len, max: max as u64 });
            }
            self.skip(len, stall).inspect_err(|_| {
                self.broken = Some("a timeout or an error inside a refused frame");
            })?;
            return Err(Error::MessageTooLarge { what: WHAT, len, max: max as u64 });
        };
        let have = (self.rend - self.rpos).min(n);
        let mut body = Vec::with_capacity(if have == n { n } else { n.min(READ_BUF * 2) });
        body.extend_from_slice(&self.rbuf[self.rpos..self.rpos + have]);
        self.rpos += have;
        if have < n {
            self.body_rest(&mut body, n, stall).map_err(|e| {
                self.broken = Some("a timeout or an error inside a frame");
                match e {
                    Some(e) => e.into_error(stall),
                    None => Error::TruncatedFrame {
                        what: WHAT,
                        expected: HEADER_LEN as u64 + len,
                        got: HEADER_LEN as u64 + body.len() as u64,
                    },
                }
            })?;
        }
        Ok((kind, body))
    }

    /// Reads what arrives (at least a byte) into the read buffer after what it holds, waiting
    /// up to `timeout`: 0 at the end of the stream.
    fn fill(&mut self, timeout: Option<Duration>) -> std::result::Result<usize, Read> {
        if self.rpos == self.rend {
            (self.rpos, self.rend) = (0, 0);
        } else if self.rpos > 0 {
            // A part of a header at the end: moved to the front, so the rest fits after it.
            self.rbuf.copy_within(self.rpos..self.rend, 0);
            (self.rend, self.rpos) = (self.rend - self.rpos, 0);
        }
        let (fd, end) = (self.fd.as_fd(), self.rend);
        let n = read_some(fd, &mut self.rcvtimeo, timeout, &mut self.rbuf[end..])?;
        self.rend += n;
        Ok(n)
    }

    /// Reads the rest of a body of `n` bytes straight into `body` (which holds its start),
    /// growing it as bytes arrive, never past `n` and never ahead of them; `Err(None)` when
    /// the stream ends first.
    fn body_rest(
        &mut self,
        body: &mut Vec<u8>,
        n: usize,
        stall: Option<Duration>,
    ) -> std::result::Result<(), Option<Read>> {
        let mut at = body.len();
        let r = loop {
            if at == n {
                break Ok(());
            }
            if body.len() == at {
                if body.capacity() == at {
                    // Doubling what arrived, but never past the announced end.
                    body.reserve_exact(at.max(4096).min(n - at));
                }
                let room = (body.capacity() - at).min(n - at);
                body.resize(at + room, 0);
            }
            match read_some(self.fd.as_fd(), &mut self.rcvtimeo, stall, &mut body[at..]) {
                Ok(0) => break Err(None),
                Ok(k) => at += k,
                Err(e) => break Err(Some(e)),
            }
        };
        body.truncate(at);
        r
    }

    /// Reads and drops `len` bytes (a body refused as too long): first what the read buffer
    /// holds, then in buffer-sized reads; stops early at the end of the stream (the next read
    /// reports it).
    fn skip(&mut self, len: u64, stall: Option<Duration>) -> Result<()> {
        let held = (self.rend - self.rpos).min(usize::try_from(len).unwrap_or(usize::MAX));
        self.rpos += held;
        let mut left = len - held as u64;
        if left > 0 {
            // The buffer is spent: it takes the skipped bytes.
            (self.rpos, self.rend) = (0, 0);
        }
        while left > 0 {
            let want = READ_BUF.min(usize::try_from(left).unwrap_or(usize::MAX));
            let fd = self.fd.as_fd();
            match read_some(fd, &mut self.rcvtimeo, stall, &mut self.rbuf[..want]) {
                Ok(0) => break,
                Ok(k) => left -= k as u64,
                Err(e) => return Err(e.into_error(stall)),
            }
        }
        Ok(())
    }

    /// A server's receive of the next message from a client that is not trusted with its
    /// resources: waits as long as it takes for a message to start, then fails when the client
    /// stalls `stall` inside it; a frame over the limit is refused unread (the connection is
    /// then unusable: hang up).
    pub(crate) fn recv_untrusted(&mut self, stall: Duration) -> Result<Vec<u8>> {
        let (kind, body) = self.recv_frame_within(None, Some(stall), self.max, false)?;
        if kind != KIND_DATA {
            self.broken = Some("a frame of an unknown kind");
            return Err(Error::BadMessage { what: WHAT, reason: format!("frame kind {kind}") });
        }
        Ok(body)
    }

    fn recv_data(&mut self, timeout: Option<Duration>) -> Result<Vec<u8>> {
        let (kind, body) = self.recv_frame(timeout, self.max, true)?;
        if kind != KIND_DATA {
            self.broken = Some("a frame of an unknown kind");
            return Err(Error::BadMessage {
                what: WHAT,
                reason: format!(
                    "frame kind {kind} after the handshake: the peer does not speak this protocol"
                ),
            });
        }
        Ok(body)
    }

    /// Sends `bytes` as one message.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] over [`max_message`](Client::max_message) (nothing sent);
    /// [`Error::Disconnected`] when the peer closed or died.
    ///
    /// ```no_run
    /// # let addr: shmpool::connection::Address = "127.0.0.1:6000".parse()?;
    /// let mut c = shmpool::connection::Client::connect(&addr, b"k")?;
    /// c.send_bytes(b"ping")?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.send_frame(KIND_DATA, bytes)
    }

    /// Receives one message as bytes, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`Error::Disconnected`] when the peer closed or died; [`Error::TruncatedFrame`] when it
    /// died inside a message; [`Error::MessageTooLarge`] for a frame over the limit (skipped).
    ///
    /// ```no_run
    /// # let addr: shmpool::connection::Address = "127.0.0.1:6000".parse()?;
    /// let mut c = shmpool::connection::Client::connect(&addr, b"k")?;
    /// let reply = c.recv_bytes()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>> {
        self.recv_data(None)
    }

    /// As [`recv_bytes`](Client::recv_bytes), giving up with [`Error::Timeout`] when no message
    /// starts within `timeout`, or the peer stalls that long inside one (the connection is then
    /// unusable).
    ///
    /// ```no_run
    /// # let addr: shmpool::connection::Address = "127.0.0.1:6000".parse()?;
    /// let mut c = shmpool::connection::Client::connect(&addr, b"k")?;
    /// let reply = c.recv_bytes_timeout(std::time::Duration::from_secs(1))?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>> {
        self.recv_data(Some(timeout))
    }

    /// Sends `value`, encoded with postcard.
    ///
    /// ```no_run
    /// # let addr: shmpool::connection::Address = "127.0.0.1:6000".parse()?;
    /// let mut c = shmpool::connection::Client::connect(&addr, b"k")?;
    /// c.send(&("job", 3u32))?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let bytes = postcard::to_stdvec(value)
            .map_err(|e| Error::BadMessage { what: WHAT, reason: e.to_string() })?;
        self.send_bytes(&bytes)
    }

    /// Receives one message and decodes it as `T`, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// As [`recv_bytes`](Client::recv_bytes), and [`Error::BadMessage`] when the bytes are not a
    /// `T` (the message is consumed).
    ///
    /// ```no_run
    /// # let addr: shmpool::connection::Address = "127.0.0.1:6000".parse()?;
    /// let mut c = shmpool::connection::Client::connect(&addr, b"k")?;
    /// let n: u64 = c.recv()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T> {
        decode(&self.recv_data(None)?)
    }

    /// As [`recv`](Client::recv), giving up with [`Error::Timeout`] after `timeout`.
    ///
    /// ```no_run
    /// # let addr: shmpool::connection::Address = "127.0.0.1:6000".parse()?;
    /// let mut c = shmpool::connection::Client::connect(&addr, b"k")?;
    /// let n: u64 = c.recv_timeout(std::time::Duration::from_millis(100))?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn recv_timeout<T: DeserializeOwned>(&mut self, timeout: Duration) -> Result<T> {
        decode(&self.recv_data(Some(timeout))?)
    }

    /// Whether a message (or the end of the stream) is ready to receive, waiting up to
    /// `timeout` (Python's `conn.poll(timeout)`).
    ///
    /// ```no_run
    /// # let addr: shmpool::connection::Address = "127.0.0.1:6000".parse()?;
    /// let c = shmpool::connection::Client::connect(&addr, b"k")?;
    /// let ready = c.poll(std::time::Duration::ZERO)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        if self.rpos < self.rend {
            // Bytes already read ahead: a message has started.
            return Ok(true);
        }
        fdpass::wait_readable(self.fd.as_fd(), Some(timeout)).map_err(Error::io("poll"))
    }
}

impl AsFd for Client {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Client {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Decodes a message as `T`.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::BadMessage { what: WHAT, reason: e.to_string() })
}

/// Why a read brought nothing.
enum Read {
    /// The timeout passed first.
    Timeout,
    /// The socket failed.
    Io(io::Error),
}

impl Read {
    /// The public error, `timeout` being the bound that passed.
    fn into_error(self, timeout: Option<Duration>) -> Error {
        match self {
            Read::Timeout => Error::Timeout { what: WHAT, after: timeout.unwrap_or_default() },
            Read::Io(e) => Error::io("recvmsg")(e),
        }
    }
}

/// One `recv` of at least a byte into `buf` on the blocking socket `fd`, waiting up to
/// `timeout` (`None`: as long as it takes), 0 at the end of the stream or when the peer is
/// gone. `current` is the socket's `SO_RCVTIMEO`, set here only when `timeout` differs.
/// Descriptors sent along (a Unix socket's `SCM_RIGHTS`) are closed by the kernel, since no
/// room is given for them.
fn read_some(
    fd: BorrowedFd<'_>,
    current: &mut Option<Duration>,
    timeout: Option<Duration>,
    buf: &mut [u8],
) -> std::result::Result<usize, Read> {
    if *current != timeout {
        socket::set_timeout(fd, Timeout::Recv, timeout).map_err(Read::Io)?;
        *current = timeout;
    }
    loop {
        match socket::recv(fd, &mut *buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                if timeout.is_some() {
                    return Err(Read::Timeout);
                }
                // Made non-blocking by its owner: wait for a byte instead.
                fdpass::wait_readable(fd, None).map_err(Read::Io)?;
            }
            Err(e) if gone(&e) => return Ok(0),
            Err(e) => return Err(Read::Io(e)),
        }
    }
}

/// Refuses a message limit the header cannot express.
pub(crate) fn check_max(max_message: usize) -> Result<()> {
    if max_message as u64 > Layout::Len32Kind32.largest() {
        return Err(Error::InvalidArgument {
            what: "message limit",
            reason: "messages are limited to 4 GiB - 1 bytes".into(),
        });
    }
    Ok(())
}

/// Whether `e` says the peer is gone.
fn gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPIPE) | Some(libc::ECONNRESET) | Some(libc::ENOTCONN))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    use super::*;

    /// A client over one end of a socket pair (no handshake), the other end raw.
    fn pair(max: usize) -> (Client, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        (Client::over(OwnedFd::from(a), "test".into(), max), b)
    }

    /// The bytes of one data frame carrying `body`.
    fn frame(body: &[u8]) -> Vec<u8> {
        let h = Format::message(DEFAULT_MAX_MESSAGE as u64).encode(body.len() as u64, KIND_DATA);
        [&h[..], body].concat()
    }

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn frames_read_ahead_in_one_recv_are_each_received_in_order() {
        let (mut c, mut peer) = pair(DEFAULT_MAX_MESSAGE);
        let all = [frame(b"one"), frame(b""), frame(&[7; 1000])].concat();
        peer.write_all(&all).unwrap();
        assert_eq!(c.recv_bytes_timeout(T).unwrap(), b"one");
        // The rest is in the read buffer, not the socket: poll still sees a message.
        assert!(c.poll(Duration::ZERO).unwrap());
        assert_eq!(c.recv_bytes_timeout(T).unwrap(), b"");
        assert_eq!(c.recv_bytes_timeout(T).unwrap(), vec![7; 1000]);
        assert!(!c.poll(Duration::ZERO).unwrap());
        drop(peer);
        assert!(matches!(c.recv_bytes(), Err(Error::Disconnected { .. })));
    }

    #[test]
    fn a_header_split_at_the_end_of_the_buffer_joins_the_next_read() {
        let (mut c, mut peer) = pair(DEFAULT_MAX_MESSAGE);
        // The first frame fills the buffer but 3 bytes, which hold the next header's start.
        let first = frame(&vec![1; READ_BUF - 3 - HEADER_LEN]);
        let second = frame(b"after");
        peer.write_all(&first).unwrap();
        peer.write_all(&second[..3]).unwrap();
        assert_eq!(c.recv_bytes_timeout(T).unwrap().len(), READ_BUF - 3 - HEADER_LEN);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            peer.write_all(&second[3..]).unwrap();
            peer
        });
        assert_eq!(c.recv_bytes_timeout(T).unwrap(), b"after");
        drop(t.join().unwrap());
    }

    #[test]
    fn a_body_larger_than_the_buffer_arrives_whole_across_reads() {
        let (mut c, peer) = pair(DEFAULT_MAX_MESSAGE);
        let mut other = Client::over(OwnedFd::from(peer), "peer".into(), DEFAULT_MAX_MESSAGE);
        let body: Vec<u8> = (0..3 * READ_BUF + 17).map(|i| i as u8).collect();
        let sent = body.clone();
        let t = std::thread::spawn(move || {
            other.send_bytes(&sent).unwrap();
            other.send_bytes(b"next").unwrap();
            other
        });
        assert_eq!(c.recv_bytes_timeout(T).unwrap(), body);
        assert_eq!(c.recv_bytes_timeout(T).unwrap(), b"next");
        drop(t.join().unwrap());
    }

    #[test]
    fn a_refused_frame_already_in_the_buffer_is_skipped_and_the_next_one_kept() {
        let (mut c, mut peer) = pair(16);
        let h = Format::message(1 << 20).encode(100, KIND_DATA);
        let big = [&h[..], &[9; 100]].concat();
        peer.write_all(&[big.clone(), frame(b"small"), big, frame(b"last")].concat()).unwrap();
        assert!(matches!(
            c.recv_bytes_timeout(T),
            Err(Error::MessageTooLarge { len: 100, max: 16, .. })
        ));
        assert_eq!(c.recv_bytes_timeout(T).unwrap(), b"small");
        assert!(matches!(c.recv_bytes_timeout(T), Err(Error::MessageTooLarge { .. })));
        assert_eq!(c.recv_bytes_timeout(T).unwrap(), b"last");
    }

    #[test]
    fn a_zero_timeout_with_nothing_sent_times_out_and_leaves_the_connection_usable() {
        let (mut c, mut peer) = pair(DEFAULT_MAX_MESSAGE);
        assert!(matches!(c.recv_bytes_timeout(Duration::ZERO), Err(Error::Timeout { .. })));
        let t0 = std::time::Instant::now();
        let e = c.recv_bytes_timeout(Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(t0.elapsed() >= Duration::from_millis(45), "{:?}", t0.elapsed());
        peer.write_all(&frame(b"late")).unwrap();
        assert_eq!(c.recv_bytes_timeout(Duration::ZERO).unwrap(), b"late");
        // A wait without a timeout after one with it: the socket's timeout is cleared.
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            peer.write_all(&frame(b"slow")).unwrap();
            peer
        });
        assert_eq!(c.recv_bytes().unwrap(), b"slow");
        // A timeout past what the kernel keeps is as long as it takes.
        let mut peer = t.join().unwrap();
        peer.write_all(&frame(b"max")).unwrap();
        assert_eq!(c.recv_bytes_timeout(Duration::MAX).unwrap(), b"max");
    }

    #[test]
    fn descriptors_sent_along_a_frame_are_closed_not_kept() {
        let (mut c, peer) = pair(DEFAULT_MAX_MESSAGE);
        let (r, w) = std::io::pipe().unwrap();
        let bytes = frame(b"with a descriptor");
        let sent = fdpass::send_with_fds(peer.as_fd(), &bytes, &[w.as_fd()]).unwrap();
        assert_eq!(sent, bytes.len());
        drop(w);
        assert_eq!(c.recv_bytes_timeout(T).unwrap(), b"with a descriptor");
        // The only other copy of the pipe's write end travelled in the frame: the pipe ends
        // (readable at its end of stream) only if the kernel closed it on arrival. A child that
        // another test of this binary forks meanwhile holds copies until it exits, so the
        // deadline is generous: a kept descriptor never ends the pipe, a fork only delays it.
        let deadline = Duration::from_secs(60);
        assert!(
            fdpass::wait_readable(r.as_fd(), Some(deadline)).unwrap(),
            "the descriptor was kept"
        );
    }

    #[test]
    fn a_send_to_a_peer_that_never_reads_times_out_instead_of_blocking() {
        let max = 64 << 20;
        let (mut c, _peer) = pair(max);
        c.set_send_timeout(Duration::from_millis(100)).unwrap();
        let t = std::time::Instant::now();
        // Far more than a Unix socket's buffers hold: without the bound this blocks for good.
        let e = c.send_bytes(&vec![7u8; 32 << 20]).unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(t.elapsed() < T, "took {:?}", t.elapsed());
    }

    #[test]
    fn a_stall_inside_a_frame_times_out_and_the_connection_is_refused_after() {
        let (mut c, mut peer) = pair(DEFAULT_MAX_MESSAGE);
        peer.write_all(&frame(&[1; 64])[..40]).unwrap();
        let e = c.recv_bytes_timeout(Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        peer.write_all(&[1; 32]).unwrap();
        let e = c.recv_bytes_timeout(T).unwrap_err();
        assert!(matches!(e, Error::BadMessage { .. }), "{e}");
    }

    #[test]
    fn a_peer_gone_inside_a_header_or_a_body_is_a_truncated_frame() {
        for cut in [3, HEADER_LEN + 10] {
            let (mut c, mut peer) = pair(DEFAULT_MAX_MESSAGE);
            peer.write_all(&frame(&[1; 64])[..cut]).unwrap();
            drop(peer);
            let e = c.recv_bytes_timeout(T).unwrap_err();
            assert!(matches!(e, Error::TruncatedFrame { .. }), "cut at {cut}: {e}");
        }
    }
}
