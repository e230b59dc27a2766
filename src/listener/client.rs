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
use crate::frame::{Format, FrameError, HEADER_LEN, Head, Layout, Reader, Stream};
use crate::sys::fdpass;

/// The largest message a client or listener takes unless told otherwise: 64 MiB.
pub(crate) const DEFAULT_MAX_MESSAGE: usize = 64 << 20;

/// How long connecting and the handshake may take unless told otherwise: 5 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The frame kind of a message.
pub(crate) const KIND_DATA: u32 = 0;

const WHAT: &str = "client connection";

/// An authenticated connection to a [`Listener`](super::Listener), or one the listener
/// accepted: sends and receives whole messages, as serde values (postcard) or bytes.
///
/// Both sides proved they hold the same `authkey` before the first message (HMAC-SHA256
/// challenge and response, each way; see `docs/manager.md`). Messages are limited to
/// [`max_message`](Client::max_message) bytes both ways: a larger frame from the peer is
/// refused without allocating for it. Every receive has a `_timeout` form. Bytes travel in
/// clear: use it on a trusted network or over a tunnel.
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
        Client { fd, max: max_message, peer, broken: None }
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
        if let Some(why) = self.broken {
            return Err(Error::BadMessage {
                what: WHAT,
                reason: format!("the stream lost its framing earlier ({why}); connect again"),
            });
        }
        let after = timeout.unwrap_or_default();
        let format = Format::message(max as u64);
        let mut reader = match timeout {
            Some(t) => Reader::stalling_after(Stream::Socket(self.fd.as_fd()), t),
            None => Reader::new(Stream::Socket(self.fd.as_fd()), None),
        };
        let io = |e: FrameError| e.into_error(WHAT, WHAT, after);
        if timeout.is_some() && !reader.wait().map_err(io)? {
            return Err(Error::Timeout { what: WHAT, after });
        }
        let head = reader.header(&format).inspect_err(|_| {
            self.broken = Some("a timeout or an error inside a frame header");
        });
        let Some(Head { len, kind }) = head.map_err(io)? else {
            return Err(Error::Disconnected { what: WHAT });
        };
        let Ok(n) = format.check(len) else {
            if !skip_large {
                self.broken = Some("a frame over the limit");
                return Err(Error::MessageTooLarge { what: WHAT, len, max: max as u64 });
            }
            reader.skip(len, format.body_part).map_err(|e| {
                self.broken = Some("a timeout or an error inside a refused frame");
                io(e)
            })?;
            return Err(Error::MessageTooLarge { what: WHAT, len, max: max as u64 });
        };
        let mut body = Vec::new();
        reader.body_into(&mut body, n, format.body_part).map_err(|e| {
            self.broken = Some("a timeout or an error inside a frame");
            match e {
                FrameError::Truncated { got, .. } => Error::TruncatedFrame {
                    what: WHAT,
                    expected: HEADER_LEN as u64 + len,
                    got: HEADER_LEN as u64 + got,
                },
                e => io(e),
            }
        })?;
        Ok((kind, body))
    }

    /// A server's receive of the next message from a client that is not trusted with its
    /// resources: waits as long as it takes for a message to start, then fails when the client
    /// stalls `stall` inside it; a frame over the limit is refused unread (the connection is
    /// then unusable: hang up).
    pub(crate) fn recv_untrusted(&mut self, stall: Duration) -> Result<Vec<u8>> {
        fdpass::wait_readable(self.fd.as_fd(), None).map_err(Error::io("poll"))?;
        let (kind, body) = self.recv_frame(Some(stall), self.max, false)?;
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
