//! A hostile or broken peer on a `Connection`'s socket: bytes written by hand (not by
//! `Connection::send*`), with descriptors attached where no frame expects them, and timeouts at
//! the edge of what the clock can add.
//!
//! Every descriptor a peer attaches must be closed by the receiver once the frame it came with is
//! refused, skipped or returned without one: the tests attach a pipe's write end and check that
//! the read end then sees the end of file (which it cannot while the receiver keeps a copy).
//! No test here forks, so no other process holds a copy of those write ends.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use shmpool::{Connection, Error};

/// A frame header as a `Connection` writes it: payload length, then tag, both `u32` LE.
fn header(len: u32, tag: u32) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&len.to_le_bytes());
    h[4..].copy_from_slice(&tag.to_le_bytes());
    h
}

/// Writes `bytes` on `sock` in one `sendmsg`, with `fds` attached to the first byte.
fn send_raw(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) {
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); 256];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    }
    let sent = rustix::net::sendmsg(sock, &[std::io::IoSlice::new(bytes)], &mut control, {
        SendFlags::NOSIGNAL
    })
    .unwrap();
    assert_eq!(sent, bytes.len());
}

/// A pipe whose write end is to be sent: (read end, non-blocking; write end).
fn probe() -> (File, OwnedFd) {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    rustix::fs::fcntl_setfl(&r, rustix::fs::OFlags::NONBLOCK).unwrap();
    (File::from(r), w)
}

/// Whether every write end of the probe's pipe is closed (the read end gives end of file), waiting
/// a little for the receiver to finish dropping. A copy still open somewhere gives `WouldBlock`.
fn all_writers_closed(r: &mut File) -> bool {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        match r.read(&mut [0u8; 1]) {
            Ok(0) => return true,
            Ok(_) => panic!("nothing writes to the probe"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return false,
        }
    }
}

/// A frame with a descriptor attached where none belongs, written to `a`'s socket; returns what
/// `b` gives for it and whether the attached descriptor was closed by then (and `b` dropped).
fn refused_with_probe(
    bytes: &[u8],
    close_writer: bool,
    recv: impl FnOnce(&mut Connection) -> shmpool::Result<Vec<u8>>,
) -> (shmpool::Result<Vec<u8>>, bool) {
    let (a, mut b) = shmpool::connection::pipe_with(true, 64).unwrap();
    let (mut r, w) = probe();
    send_raw(a.as_fd(), bytes, &[w.as_fd()]);
    drop(w);
    let a = if close_writer {
        drop(a);
        None
    } else {
        Some(a)
    };
    let got = recv(&mut b);
    // The receiver stays open: whatever it kept of the frame it still holds.
    let closed = all_writers_closed(&mut r);
    drop((a, b));
    (got, closed)
}

#[test]
fn descriptors_on_a_truncated_frame_are_closed() {
    let bytes = [&header(10, 0)[..], b"abc"].concat();
    let (got, closed) = refused_with_probe(&bytes, true, |b| b.recv_bytes());
    assert!(matches!(got, Err(Error::TruncatedFrame { expected: 18, got: 11, .. })), "{got:?}");
    assert!(closed, "the descriptor that came with a truncated frame is still open");
}

#[test]
fn descriptors_on_a_truncated_header_are_closed() {
    let (got, closed) = refused_with_probe(&[5, 0, 0], true, |b| b.recv_bytes());
    assert!(matches!(got, Err(Error::TruncatedFrame { expected: 8, got: 3, .. })), "{got:?}");
    assert!(closed, "the descriptor that came with a truncated header is still open");
}

#[test]
fn descriptors_on_a_skipped_frame_are_closed() {
    // Over the limit of 64: skipped whole, the connection stays usable.
    let bytes = [&header(100, 0)[..], &[7; 100]].concat();
    let (got, closed) = refused_with_probe(&bytes, false, |b| b.recv_bytes());
    assert!(matches!(got, Err(Error::MessageTooLarge { len: 100, max: 64, .. })), "{got:?}");
    assert!(closed, "the descriptor that came with a skipped frame is still open");
}

#[test]
fn descriptors_on_a_frame_with_an_unknown_tag_are_closed() {
    let bytes = [&header(1, 9)[..], b"x"].concat();
    let (got, closed) = refused_with_probe(&bytes, false, |b| b.recv_bytes());
    assert!(matches!(got, Err(Error::BadMessage { .. })), "{got:?}");
    assert!(closed, "the descriptor that came with an unknown frame is still open");
}

#[test]
fn descriptors_on_a_data_message_are_closed_once_it_is_returned() {
    let bytes = [&header(2, 0)[..], b"ok"].concat();
    let (got, closed) = refused_with_probe(&bytes, false, |b| b.recv_bytes());
    assert_eq!(got.unwrap(), b"ok");
    assert!(closed, "the descriptor that came with a data message is still open");
}

#[test]
fn descriptors_on_a_frame_that_timed_out_are_closed() {
    // The header and part of the payload, then a stall with the sender's end open.
    let bytes = [&header(10, 0)[..], b"abc"].concat();
    let (got, closed) =
        refused_with_probe(&bytes, false, |b| b.recv_bytes_timeout(Duration::from_millis(30)));
    assert!(matches!(got, Err(Error::Timeout { .. })), "{got:?}");
    assert!(closed, "the descriptor that came with a timed-out frame is still open");
}

/// A timeout too long for the clock to add to now (`Duration::MAX`, what a caller writes for
/// "wait as long as it takes") waits like no timeout, as `Scope`'s joins do; it used to panic
/// with "overflow when adding duration to instant".
#[test]
fn a_timeout_past_the_clock_s_range_waits_instead_of_panicking() {
    let (mut a, mut b) = shmpool::pipe(true).unwrap();
    a.send_bytes(b"first").unwrap();
    assert_eq!(b.recv_bytes_timeout(Duration::MAX).unwrap(), b"first");
    a.send(&7u32).unwrap();
    assert_eq!(b.recv_timeout::<u32>(Duration::MAX).unwrap(), 7);
    // And one that starts before the message does: the sender writes a little later.
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        a.send_bytes(b"later").unwrap();
        a
    });
    assert_eq!(b.recv_bytes_timeout(Duration::from_secs(u64::MAX)).unwrap(), b"later");
    drop(sender.join().unwrap());
    assert!(matches!(b.recv_bytes_timeout(Duration::MAX), Err(Error::Disconnected { .. })));
}

/// A peer that sends a message one byte per `sendmsg` (header included) is read whole.
#[test]
fn a_message_sent_byte_by_byte_arrives_whole() {
    let (a, mut b) = shmpool::connection::pipe_with(true, 1 << 20).unwrap();
    let payload: Vec<u8> = (0..20_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let bytes = [&header(payload.len() as u32, 0)[..], &payload].concat();
    let sender = std::thread::spawn(move || {
        for byte in bytes.chunks(1) {
            send_raw(a.as_fd(), byte, &[]);
        }
        a
    });
    assert_eq!(b.recv_bytes_timeout(Duration::from_secs(20)).unwrap(), payload);
    drop(sender.join().unwrap());
}
