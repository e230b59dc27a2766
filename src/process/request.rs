//! The forkserver's request protocol, both ends (the client in `forkserver.rs`, the server in
//! `server.rs`): a job frame with the worker's two pipes attached to its first bytes, and a
//! 4-byte reply. The protocol text is in `README.md` beside this file ("Forkserver requests").

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::frame::{FrameError, HEADER_LEN, JOB, Reader, Stream};
use crate::sys;

/// How long a request may wait on the server before it counts as hung.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The reply of a server that refused a job because it failed verification.
pub(crate) const JOB_REFUSED: i32 = i32::MIN;

/// Sends one request: the job `frame` (`entry::Job::to_frame`) with the worker's status and
/// report pipes (`fds`), then the descriptors its arguments pass (`args`, at most
/// `entry::MAX_JOB_FDS`), attached to its length prefix.
pub(crate) fn send_request(
    sock: &UnixStream,
    frame: &[u8],
    fds: [BorrowedFd<'_>; 2],
    args: &[BorrowedFd<'_>],
) -> std::io::Result<()> {
    let all: Vec<BorrowedFd<'_>> = fds.iter().chain(args).copied().collect();
    let sent = sys::fdpass::send_with_fds(sock.as_fd(), &frame[..HEADER_LEN], &all)?;
    sys::fdpass::send_all(sock.as_fd(), &frame[sent..])
}

/// A reply to a request: the worker's pid, minus an errno when the server could not fork, or
/// [`JOB_REFUSED`].
pub(crate) fn encode_reply(reply: i32) -> [u8; 4] {
    reply.to_le_bytes()
}

/// Reads a reply [`encode_reply`] wrote: `Ok(pid)` or `Err(code)` (minus an errno, or
/// [`JOB_REFUSED`]).
pub(crate) fn read_reply(sock: &mut UnixStream) -> std::io::Result<Result<u32, i32>> {
    let mut reply = [0u8; 4];
    sock.read_exact(&mut reply)?;
    let r = i32::from_le_bytes(reply);
    Ok(if r > 0 { Ok(r as u32) } else { Err(r) })
}

/// A request: the job frame, undecoded, the worker's status and report pipes, and the
/// descriptors the job's arguments pass.
pub(crate) type Request = (Vec<u8>, OwnedFd, OwnedFd, Vec<OwnedFd>);

/// Reads one request: the frame's length prefix with the two descriptors attached, then exactly
/// the announced length, once the [`JOB`] format has bounded it; a client that stops sending for
/// `timeout` mid-request fails it instead of blocking the server. `Ok(None)` at end of file
/// (the client is gone). Decoding is separate: `entry::decode_frame`.
///
/// The errors are I/O errors for the server's message: `WouldBlock` when the time ran out,
/// `UnexpectedEof` when the client closed inside the request, `InvalidData` for a request that
/// is not one (its descriptors, or a length over the maximum).
pub(crate) fn read_request(
    sock: &UnixStream,
    timeout: Duration,
) -> std::io::Result<Option<Request>> {
    use std::io::{Error, ErrorKind};
    let io = |e: FrameError| match e {
        FrameError::Timeout { .. } => Error::new(ErrorKind::WouldBlock, e.to_string()),
        FrameError::Truncated { .. } => {
            Error::new(ErrorKind::UnexpectedEof, format!("the client {e}"))
        }
        FrameError::TooLong { .. } => Error::new(ErrorKind::InvalidData, e.to_string()),
        FrameError::Io { source, .. } => source,
    };
    let mut reader = Reader::stalling_after(Stream::Socket(sock.as_fd()), timeout);
    let Some(head) = reader.header(&JOB).map_err(io)? else { return Ok(None) };
    let mut fds = reader.take_fds().into_iter();
    let (Some(status_w), Some(report_w)) = (fds.next(), fds.next()) else {
        return Err(Error::new(ErrorKind::InvalidData, "expected at least two descriptors"));
    };
    let args: Vec<OwnedFd> = fds.collect();
    let len = JOB.check(head.len).map_err(io)?;
    let mut frame = Vec::with_capacity(HEADER_LEN);
    frame.extend_from_slice(&JOB.encode(head.len, 0));
    reader.body_into(&mut frame, len, JOB.body_part).map_err(io)?;
    Ok(Some((frame, status_w, report_w, args)))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::process::entry::{self, FRAME_PREFIX, Job};

    /// Sends `frame` the way a client does (the first bytes carry `fds` descriptors), closes the
    /// client's end unless `keep`, and reads one request the way the server does.
    fn request_through_socket(
        frame: &[u8],
        fds: usize,
        keep: bool,
    ) -> std::io::Result<Option<Request>> {
        let (client, server) = UnixStream::pair()?;
        let pipes = [sys::proc::pipe()?, sys::proc::pipe()?];
        let all = [pipes[0].1.as_fd(), pipes[1].1.as_fd(), pipes[0].0.as_fd()];
        if !frame.is_empty() {
            let first = &frame[..frame.len().min(FRAME_PREFIX)];
            let sent = sys::fdpass::send_with_fds(client.as_fd(), first, &all[..fds])?;
            sys::fdpass::send_all(client.as_fd(), &frame[sent..])?;
        }
        let client = keep.then_some(client);
        // The server's guard against a request sent in part (see `serve`), shortened.
        let r = read_request(&server, Duration::from_millis(50));
        drop(client);
        r
    }

    /// The server's whole intake, socket to decoder, on mutated and random frames and wrong
    /// descriptor counts: a typed refusal, never a panic or a hang, and only the unchanged
    /// frame with its two descriptors runs (a third is refused by the job, whose arguments pass
    /// none).
    #[test]
    fn mutated_requests_are_refused() {
        use proptest::prelude::*;

        use crate::process::entry::tests::{
            Mutation, SECRET, apply, decode_checked, meter, mutation, run,
        };
        fn eight(_: Vec<String>) -> i32 {
            8
        }
        let args = vec![String::new(), "forkserver".into()];
        let valid = Job::new(eight, &args, "served", SECRET, true).unwrap().to_frame();
        let strategy = (
            prop_oneof![
                proptest::collection::vec(mutation(), 0..4),
                proptest::collection::vec(any::<u8>(), 0..64)
                    .prop_map(|b| vec![Mutation::Truncate(0), Mutation::Append(b)]),
            ],
            prop_oneof![4 => Just(2usize), 1 => 0usize..=3],
        );
        run(200, strategy, |(ms, fds): (Vec<Mutation>, usize)| {
            let mut f = valid.clone();
            for m in &ms {
                apply(&mut f, m);
            }
            let (r, peak) = meter::peak_during(|| request_through_socket(&f, fds, false));
            assert!(
                peak <= 2 * f.len() + 2 * crate::frame::READ_CHUNK,
                "{peak} bytes to read {}",
                f.len()
            );
            match r {
                Ok(None) => assert!(f.is_empty()),
                Ok(Some((read, _, _, extra))) => {
                    // A stream: what follows the announced length waits for the next request.
                    assert!(fds >= 2 && f.starts_with(&read), "{read:?} read from {f:?}");
                    assert_eq!(extra.len(), fds - 2);
                    if let Ok(v) = decode_checked(&read, Some(&valid)) {
                        match v.with_fds(extra) {
                            Ok(v) => assert_eq!((fds, v.call()), (2, 8)),
                            Err(e) => assert!(fds > 2, "{e}"),
                        }
                    }
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        });
    }

    #[test]
    fn a_request_sent_in_part_times_out_instead_of_hanging() {
        fn nine(_: ()) -> i32 {
            9
        }
        let valid = Job::new(nine, &(), "x", 1, true).unwrap().to_frame();
        let t = Instant::now();
        for cut in [3, FRAME_PREFIX, valid.len() - 1] {
            let e = request_through_socket(&valid[..cut], 2, true).err().unwrap();
            assert!(matches!(e.kind(), std::io::ErrorKind::WouldBlock), "{e}");
        }
        assert!(t.elapsed() < Duration::from_secs(5));
        let absurd = [&u64::MAX.to_le_bytes()[..], &[0; 8]].concat();
        let e = request_through_socket(&absurd, 2, true).err().unwrap();
        assert!(e.to_string().contains("more than"), "{e}");
        // The most a frame may announce, and ten bytes sent: memory follows what arrived.
        let most = [&entry::MAX_JOB_BYTES.to_le_bytes()[..], &[0; 10]].concat();
        let (r, peak) =
            entry::tests::meter::peak_during(|| request_through_socket(&most, 2, false));
        assert!(r.err().unwrap().to_string().contains("closed after 10 of the"));
        assert!(peak < 4 * crate::frame::READ_CHUNK, "{peak} bytes allocated for 18 received");
        let (read, ..) = request_through_socket(&valid, 2, true).unwrap().unwrap();
        assert_eq!(entry::decode_frame(&read, 1).ok().map(|v| v.call()), Some(9));
    }
}
