//! Length-prefixed frames: the one framing every byte stream between shmpool processes uses.
//!
//! A frame is a header (its body's length, and for some formats a kind), then exactly that many
//! bytes. A [`Format`] declares the header's layout, the largest body it accepts and the names of
//! its parts (for messages); a [`Reader`] reads headers and bodies from a pipe or a socket,
//! collecting descriptors that travel with a socket's bytes, under one deadline. Its
//! errors are one type, [`FrameError`]: a stream that ends inside a frame, a length over the
//! declared maximum, a deadline passed, or the read itself failing.
//!
//! The formats in use (each documented beside its protocol):
//!
//! | format | header | maximum | used by |
//! |---|---|---|---|
//! | [`JOB`] | 8 bytes: length, `u64` little-endian | 1 GiB | spawn's job pipe, forkserver requests (`process/README.md`) |
//! | [`Format::message`] | 8 bytes: length, `u32` LE, then kind, `u32` LE | the connection's `max_message` | `Connection` (below) |
//!
//! A reader never allocates what a header announces: a body's buffer grows with the bytes that
//! arrive (doubling: at most twice them, or 4 KiB), so a frame that announces a gigabyte and
//! sends ten bytes costs 4 KiB.
//!
//! # The message format (`Connection`, `shmpool::pipe`)
//!
//! A `Connection` is one end of an `AF_UNIX` `SOCK_STREAM` socket pair; every message is one
//! frame:
//!
//! ```text
//! u32 LE payload length | u32 LE tag | payload
//! tag 0: message (bytes as given, or postcard for send/recv)
//! tag 1: segment handle (postcard SegmentHandle); for a memfd the descriptor itself travels as
//!        SCM_RIGHTS ancillary data on the frame's first byte
//! ```
//!
//! Header and payload go out in one `sendmsg` (two iovecs, `sys::fdpass::send_vectored`), with
//! `MSG_NOSIGNAL`, so a dead peer is `EPIPE` -> `Error::Disconnected`, never SIGPIPE. Limits and
//! bad input, case by case:
//!
//! - A send over `max_message` (default 64 MiB, `pipe_with` to change): `MessageTooLarge`,
//!   nothing sent.
//! - A frame header claiming more than `max_message` (a foreign sender): `MessageTooLarge`; the
//!   payload is skipped in 16 KiB pieces ([`Reader::skip`]), never allocated, and the connection
//!   stays usable. With a timeout, a sender that stalls inside the refused payload makes the
//!   receive return `Timeout`, and the connection is then unusable; a stream that ends inside
//!   it gives `MessageTooLarge`, then `Disconnected`.
//! - The end of the stream inside a header or payload (within the limit):
//!   `TruncatedFrame { expected, got }`; the connection is then unusable.
//! - An unknown tag: `BadMessage`; unusable (the framing cannot be trusted).
//! - Bytes that do not decode as the requested type: `BadMessage`; the message is consumed.
//! - The end of the stream between frames (the peer closed or died): `Disconnected`.
//! - `recv_bytes_into` with a small buffer: `BufferTooSmall { needed }`; the message stays
//!   queued for the next receive.
//! - A handle frame where data was expected, or the reverse: `BadMessage`; the frame stays
//!   queued for the right call.
//! - A timeout before a frame starts: `Timeout`, the connection intact; a timeout inside a frame
//!   makes it unusable. A timeout too long for the clock (`Duration::MAX`) waits as long as it
//!   takes.
//! - Descriptors attached where none belongs (a data frame, a frame refused, skipped or cut
//!   short): closed by the receiver; more than four on one frame: the rest closed on arrival
//!   (`tests/frame_attack.rs`).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::sys::fdpass;

/// Bytes a reader reads into a body's buffer at once at most (the buffer itself doubles with
/// what arrived, never growing ahead of it).
pub(crate) const READ_CHUNK: usize = 64 << 10;

/// The layout of a frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// 8 bytes: the body's length, `u64` little-endian. No kind.
    Len64,
    /// 8 bytes: the body's length, `u32` little-endian, then its kind, `u32` little-endian.
    Len32Kind32,
}

impl Layout {
    /// The largest length the header can express.
    pub(crate) const fn largest(self) -> u64 {
        match self {
            Layout::Len64 => u64::MAX,
            Layout::Len32Kind32 => u32::MAX as u64,
        }
    }
}

/// A frame's header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// The body's length, as announced (not yet checked against the format's maximum).
    pub(crate) len: u64,
    /// The frame's kind (0 in a layout without one).
    pub(crate) kind: u32,
}

/// A frame format: header layout, declared maximum, and the names of its parts for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Format {
    /// The header's layout.
    pub(crate) layout: Layout,
    /// The largest body accepted, in bytes.
    pub(crate) max: u64,
    /// The header, in a message: "job's length".
    pub(crate) header_part: &'static str,
    /// The body, in a message: "job".
    pub(crate) body_part: &'static str,
}

/// Bytes of every header.
pub(crate) const HEADER_LEN: usize = 8;

/// Job frames: spawn's job pipe and forkserver requests (`process/README.md`, "Job frame").
pub(crate) const JOB: Format =
    Format { layout: Layout::Len64, max: 1 << 30, header_part: "job's length", body_part: "job" };

impl Format {
    /// A connection's messages (`connection.rs`), limited to `max` bytes.
    pub(crate) const fn message(max: u64) -> Format {
        Format {
            layout: Layout::Len32Kind32,
            max,
            header_part: "message header",
            body_part: "message",
        }
    }

    /// The header of a body of `len` bytes and kind `kind` (ignored by a layout without kinds).
    /// The caller checks `len` against [`max`](Format::max) first ([`check`](Format::check)).
    pub(crate) fn encode(&self, len: u64, kind: u32) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        match self.layout {
            Layout::Len64 => h.copy_from_slice(&len.to_le_bytes()),
            Layout::Len32Kind32 => {
                h[..4].copy_from_slice(&(len as u32).to_le_bytes());
                h[4..].copy_from_slice(&kind.to_le_bytes());
            }
        }
        h
    }

    /// Decodes a header; the length is not checked yet ([`check`](Format::check)).
    pub(crate) fn decode(&self, h: [u8; HEADER_LEN]) -> Head {
        match self.layout {
            Layout::Len64 => Head { len: u64::from_le_bytes(h), kind: 0 },
            Layout::Len32Kind32 => Head {
                len: u32::from_le_bytes([h[0], h[1], h[2], h[3]]).into(),
                kind: u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
            },
        }
    }

    /// `len` as a body length this format accepts: refused over [`max`](Format::max), before
    /// anything is allocated for it.
    pub(crate) fn check(&self, len: u64) -> Result<usize, FrameError> {
        if len > self.max {
            return Err(FrameError::TooLong {
                part: self.body_part,
                announced: len,
                max: self.max,
            });
        }
        Ok(len as usize)
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The stream ended inside a part of a frame.
    #[error("closed after {got} of the {expected} bytes of its {part}")]
    Truncated {
        /// The part being read ("job's length", "job").
        part: &'static str,
        /// Bytes the part has.
        expected: u64,
        /// Bytes that arrived.
        got: u64,
    },
    /// The header announces more than the format's maximum.
    #[error("its {part} announces {announced} bytes, more than the {max} allowed")]
    TooLong {
        /// The body's name.
        part: &'static str,
        /// The length announced.
        announced: u64,
        /// The format's maximum.
        max: u64,
    },
    /// The deadline passed inside a part of a frame.
    #[error("its {part} did not arrive within {after:?} ({got} of {expected} bytes)")]
    Timeout {
        /// The part being read.
        part: &'static str,
        /// The reader's timeout.
        after: Duration,
        /// Bytes the part has.
        expected: u64,
        /// Bytes that arrived.
        got: u64,
    },
    /// Waiting for the stream (`op` "poll") or reading it (`op` "read") failed.
    #[error("{op} failed ({source})")]
    Io {
        /// "poll" or "read".
        op: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl FrameError {
    /// Whether the deadline passed (rather than the stream ending or failing).
    pub(crate) fn is_timeout(&self) -> bool {
        matches!(self, FrameError::Timeout { .. })
    }

    /// The public error for a frame a socket connection could not read: `what` names the
    /// connection, `waiting` the operation a timeout reports (with `after`, the caller's
    /// timeout).
    pub(crate) fn into_error(
        self,
        what: &'static str,
        waiting: &'static str,
        after: Duration,
    ) -> Error {
        match self {
            FrameError::Timeout { .. } => Error::Timeout { what: waiting, after },
            FrameError::Io { op: "poll", source } => Error::io("poll")(source),
            FrameError::Io { source, .. } => Error::io("recvmsg")(source),
            FrameError::Truncated { expected, got, .. } => {
                Error::TruncatedFrame { what, expected, got }
            }
            FrameError::TooLong { announced, max, .. } => {
                Error::MessageTooLarge { what, len: announced, max }
            }
        }
    }
}

/// What a [`Reader`] reads from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream<'a> {
    /// A pipe (or any file): plain reads.
    Pipe(&'a File),
    /// A Unix socket: descriptors that travel with the bytes are collected.
    Socket(BorrowedFd<'a>),
}

impl Stream<'_> {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Pipe(f) => f.as_fd(),
            Stream::Socket(fd) => *fd,
        }
    }
}

/// Reads frames from one stream under one deadline.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    stream: Stream<'a>,
    /// When every wait ends; `None`: wait as long as it takes.
    deadline: Option<Instant>,
    /// The timeout the deadline came from, for messages.
    timeout: Duration,
    /// Whether the deadline moves to `timeout` after each read that brought bytes (a stall
    /// limit, as a socket's `SO_RCVTIMEO`), rather than staying put (a limit on the whole read).
    idle: bool,
    /// Descriptors that came with a socket's bytes: the first [`fdpass::MAX_FDS`] of them, the
    /// rest closed on arrival.
    fds: Vec<OwnedFd>,
}

impl<'a> Reader<'a> {
    /// A reader of `stream` whose every wait ends `timeout` from now (`None`, or a timeout past
    /// the clock's range such as `Duration::MAX`: never).
    pub(crate) fn new(stream: Stream<'a>, timeout: Option<Duration>) -> Reader<'a> {
        Reader {
            stream,
            deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
            timeout: timeout.unwrap_or_default(),
            idle: false,
            fds: Vec::new(),
        }
    }

    /// A reader of `stream` that fails only when no byte arrives for `timeout`: each read that
    /// brings bytes moves the deadline.
    pub(crate) fn stalling_after(stream: Stream<'a>, timeout: Duration) -> Reader<'a> {
        Reader { idle: true, ..Reader::new(stream, Some(timeout)) }
    }

    /// The descriptors collected so far (a socket's), taken out of the reader.
    pub(crate) fn take_fds(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.fds)
    }

    /// Waits until the stream is readable (a byte, or its end): false when the deadline passed.
    pub(crate) fn wait(&self) -> Result<bool, FrameError> {
        let left = self.deadline.map(|d| d.saturating_duration_since(Instant::now()));
        fdpass::wait_readable(self.stream.fd(), left)
            .map_err(|source| FrameError::Io { op: "poll", source })
    }

    /// Reads at least one byte into `buf` (empty: none), waiting up to the deadline; 0 at the
    /// end of the stream. `part`, `got` and `expected` are for a timeout's message.
    fn some(
        &mut self,
        buf: &mut [u8],
        part: &'static str,
        got: u64,
        expected: u64,
    ) -> Result<usize, FrameError> {
        loop {
            if self.deadline.is_some() && !self.wait()? {
                return Err(FrameError::Timeout { part, after: self.timeout, expected, got });
            }
            let r = match self.stream {
                Stream::Pipe(mut f) => f.read(buf),
                Stream::Socket(fd) => fdpass::recv_with_fds(fd, buf).map(|(n, fds)| {
                    // No frame carries more than MAX_FDS: the rest are closed as they arrive,
                    // so a peer attaching descriptors to every byte of a long frame cannot fill
                    // this process's descriptor table while the frame lasts.
                    let room = fdpass::MAX_FDS.saturating_sub(self.fds.len());
                    self.fds.extend(fds.into_iter().take(room));
                    n
                }),
            };
            match r {
                Ok(n) => {
                    if self.idle && n > 0 {
                        self.deadline = Instant::now().checked_add(self.timeout);
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A non-blocking stream with nothing yet: wait for it (above, or here).
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.deadline.is_none() {
                        fdpass::wait_readable(self.stream.fd(), None)
                            .map_err(|source| FrameError::Io { op: "poll", source })?;
                    }
                }
                // A peer gone is the end of the stream.
                Err(e) if gone(&e) => return Ok(0),
                Err(source) => return Err(FrameError::Io { op: "read", source }),
            }
        }
    }

    /// Fills `buf` (a whole `part`), returning how many bytes arrived before the end of the
    /// stream: all of them unless it ended.
    pub(crate) fn fill(&mut self, buf: &mut [u8], part: &'static str) -> Result<usize, FrameError> {
        let (mut got, expected) = (0, buf.len());
        while got < expected {
            let n = self.some(&mut buf[got..], part, got as u64, expected as u64)?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok(got)
    }

    /// Reads a header of `format`: `None` at the end of the stream before its first byte;
    /// [`FrameError::Truncated`] when it ends inside it. The length is not checked yet
    /// ([`Format::check`]).
    pub(crate) fn header(&mut self, format: &Format) -> Result<Option<Head>, FrameError> {
        let mut h = [0u8; HEADER_LEN];
        let got = self.fill(&mut h, format.header_part)?;
        match got {
            0 => Ok(None),
            HEADER_LEN => Ok(Some(format.decode(h))),
            _ => Err(FrameError::Truncated {
                part: format.header_part,
                expected: HEADER_LEN as u64,
                got: got as u64,
            }),
        }
    }

    /// Appends a body of `len` bytes (checked by [`Format::check`]) to `out`, growing it with
    /// the bytes that arrive; [`FrameError::Truncated`] when the stream ends first.
    pub(crate) fn body_into(
        &mut self,
        out: &mut Vec<u8>,
        len: usize,
        part: &'static str,
    ) -> Result<(), FrameError> {
        let start = out.len();
        let end = start + len;
        out.reserve_exact(len.min(4096));
        // `out[start..at]` arrived; `out[at..]` is zeroed room not yet read into. Room is zeroed
        // once, a chunk at a time, and kept across reads: a peer sending a byte per write costs
        // a read per byte, not a chunk's zeroing per byte.
        let mut at = start;
        while at < end {
            if out.len() == at {
                if out.capacity() == at {
                    // Doubling what arrived, but never past the announced end.
                    out.reserve_exact((at - start).max(4096).min(end - at));
                }
                let room = (out.capacity() - at).min(end - at).min(READ_CHUNK);
                out.resize(at + room, 0);
            }
            match self.some(&mut out[at..], part, (at - start) as u64, len as u64) {
                Ok(0) => {
                    out.truncate(at);
                    let got = (at - start) as u64;
                    return Err(FrameError::Truncated { part, expected: len as u64, got });
                }
                Ok(n) => at += n,
                Err(e) => {
                    out.truncate(at);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Reads and drops `n` bytes (a body refused as too long), in small pieces; stops early
    /// at the end of the stream (the next read reports it).
    pub(crate) fn skip(&mut self, mut n: u64, part: &'static str) -> Result<(), FrameError> {
        let mut scratch = [0u8; 16 * 1024];
        while n > 0 {
            let want = scratch.len().min(n as usize);
            let got = self.fill(&mut scratch[..want], part)?;
            // Descriptors that came with skipped bytes are closed here.
            self.fds.clear();
            if got < want {
                break;
            }
            n -= got as u64;
        }
        Ok(())
    }
}

/// Whether `e` says the peer is gone (read as the end of the stream).
fn gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPIPE) | Some(libc::ECONNRESET) | Some(libc::ENOTCONN))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::sys;

    #[test]
    fn headers_round_trip_in_both_layouts() {
        let m = Format::message(100);
        assert_eq!(m.decode(m.encode(7, 1)), Head { len: 7, kind: 1 });
        assert_eq!(JOB.decode(JOB.encode(1 << 40, 9)), Head { len: 1 << 40, kind: 0 });
        assert_eq!(m.encode(3, 2), [3, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(Layout::Len32Kind32.largest(), u32::MAX as u64);
    }

    #[test]
    fn a_length_over_the_maximum_is_refused_with_the_numbers() {
        assert_eq!(JOB.check(JOB.max).unwrap(), 1 << 30);
        let e = JOB.check(JOB.max + 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "its job announces 1073741825 bytes, more than the 1073741824 allowed"
        );
    }

    #[test]
    fn a_stream_ending_or_stalling_inside_a_frame_is_typed() {
        let (r, mut w) = sys::proc::pipe().unwrap();
        w.write_all(&[&JOB.encode(5, 0)[..], b"abc"].concat()).unwrap();
        let mut rd = Reader::new(Stream::Pipe(&r), Some(Duration::from_millis(20)));
        let h = rd.header(&JOB).unwrap().unwrap();
        let mut body = Vec::new();
        let e = rd.body_into(&mut body, JOB.check(h.len).unwrap(), "job").unwrap_err();
        assert!(matches!(e, FrameError::Timeout { got: 3, expected: 5, .. }), "{e}");
        assert!(e.is_timeout());
        drop(w);
        let mut rd = Reader::new(Stream::Pipe(&r), None);
        let e = rd.body_into(&mut body, 2, "job").unwrap_err();
        assert_eq!(e.to_string(), "closed after 0 of the 2 bytes of its job");
        assert!(rd.header(&JOB).unwrap().is_none());
    }

    /// A peer attaching descriptors to every byte of a frame: the reader keeps the first
    /// `MAX_FDS` and closes the rest on arrival (it used to keep them all until the frame ended).
    #[test]
    fn descriptors_past_the_most_a_frame_carries_are_closed_on_arrival() {
        use std::os::fd::AsRawFd;
        let (ours, theirs) = sys::socket::socketpair().unwrap();
        let (_r, w) = sys::proc::pipe().unwrap();
        let four = [w.as_fd(); 4];
        for b in 0..50u8 {
            sys::fdpass::send_vectored(theirs.as_fd(), &[&[b]], &four).unwrap();
        }
        let mut rd = Reader::new(Stream::Socket(ours.as_fd()), Some(Duration::from_secs(5)));
        let mut buf = [0u8; 50];
        assert_eq!(rd.fill(&mut buf, "body").unwrap(), 50);
        assert_eq!(buf[49], 49);
        let kept = rd.take_fds();
        assert_eq!(kept.len(), fdpass::MAX_FDS, "{} descriptors kept", kept.len());
        assert!(kept.iter().all(|fd| fd.as_raw_fd() != w.as_raw_fd()));
    }

    /// A timeout the clock cannot add to now waits like none (it used to panic).
    #[test]
    fn a_timeout_past_the_clock_s_range_is_no_deadline() {
        let (r, mut w) = sys::proc::pipe().unwrap();
        w.write_all(&[1, 2, 3]).unwrap();
        let mut rd = Reader::new(Stream::Pipe(&r), Some(Duration::MAX));
        assert_eq!(rd.fill(&mut [0u8; 2], "body").unwrap(), 2);
        let mut stall = Reader::stalling_after(Stream::Pipe(&r), Duration::MAX);
        assert_eq!(stall.fill(&mut [0u8; 1], "body").unwrap(), 1);
        drop(w);
        assert_eq!(stall.fill(&mut [0u8; 1], "body").unwrap(), 0);
    }

    #[test]
    fn a_stall_limit_moves_with_each_byte_and_a_deadline_does_not() {
        let (r, mut w) = sys::proc::pipe().unwrap();
        let writer = std::thread::spawn(move || {
            for b in 0..6u8 {
                std::thread::sleep(Duration::from_millis(20));
                w.write_all(&[b]).unwrap();
            }
        });
        let mut buf = [0u8; 6];
        let mut stall = Reader::stalling_after(Stream::Pipe(&r), Duration::from_millis(300));
        assert_eq!(stall.fill(&mut buf[..3], "body").unwrap(), 3);
        let mut whole = Reader::new(Stream::Pipe(&r), Some(Duration::from_millis(30)));
        assert!(whole.fill(&mut buf[3..], "body").unwrap_err().is_timeout());
        writer.join().unwrap();
    }
}
