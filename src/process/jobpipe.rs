//! Spawn's job pipe, both ends: the parent writes one job frame (`entry::Job::to_frame`) and the
//! child reads exactly that frame, within [`JOB_TIMEOUT`], refusing trailing bytes. So a stray
//! holder of the pipe's write end (a sibling forked by another thread) can neither keep the child
//! waiting for an end-of-file nor append to its job. Reading is separate from decoding: the
//! frame's bytes then go to `entry::decode_frame`, a pure function. The frame layout is in
//! `README.md` beside this file ("Job frame").

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use super::start_error::StartError;
use crate::frame::{FrameError, HEADER_LEN, JOB, Reader, Stream};
use crate::sys;

/// How long a spawn child waits for its whole job (the parent writes it right after the start),
/// and how long the parent waits for the child to take it.
pub(crate) const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes the framed job, giving up when the child stops reading for [`JOB_TIMEOUT`] (it is not
/// reading: stopped, say). No acknowledgement is awaited: that would make every start wait for
/// the child's exec; a program in which no diversion path ran is refused before the start
/// (`entry::check_reexecutable`), so the child does divert, and it reads exactly the framed
/// length within the same timeout ([`read_job`]). A child that dies before reading
/// makes this a broken pipe, which is not an error here: its exit status, which `join`
/// reports, says more.
pub(crate) fn send_job(w: &mut File, mut bytes: &[u8]) -> Result<(), StartError> {
    sys::fdpass::set_nonblocking(w.as_fd()).map_err(StartError::io("fcntl"))?;
    while !bytes.is_empty() {
        match w.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if !sys::fdpass::wait_writable(w.as_fd(), Some(JOB_TIMEOUT))
                    .map_err(StartError::io("poll"))?
                {
                    return Err(StartError::JobNotTaken { after: JOB_TIMEOUT });
                }
            }
            Err(e) => return Err(StartError::io("writing a worker's job")(e)),
        }
    }
    Ok(())
}

/// Reads one job frame (see `entry::Job::to_frame`) from `r`: its length prefix, then exactly
/// the announced length (bounded by the [`JOB`] format's maximum), within `timeout`, and nothing
/// after it. Returns the whole frame, prefix included, undecoded. Memory follows the bytes that
/// arrive (`frame::Reader`), not the length announced.
pub(crate) fn read_job(r: File, timeout: Duration) -> Result<Vec<u8>, String> {
    sys::fdpass::set_nonblocking(r.as_fd())
        .map_err(|e| format!("its job pipe cannot be made non-blocking ({e})"))?;
    let why = |e: FrameError| match e {
        FrameError::Truncated { .. } => format!("its job pipe {e}"),
        FrameError::Io { op: "poll", source } => {
            format!("its job pipe cannot be polled ({source})")
        }
        FrameError::Io { source, .. } => format!("its job could not be read ({source})"),
        FrameError::TooLong { .. } | FrameError::Timeout { .. } => e.to_string(),
    };
    let mut reader = Reader::new(Stream::Pipe(&r), Some(timeout));
    let head = reader.header(&JOB).map_err(why)?.ok_or_else(|| {
        why(FrameError::Truncated { part: JOB.header_part, expected: HEADER_LEN as u64, got: 0 })
    })?;
    let len = JOB.check(head.len).map_err(why)?;
    let mut job = Vec::with_capacity(HEADER_LEN);
    job.extend_from_slice(&JOB.encode(head.len, 0));
    reader.body_into(&mut job, len, JOB.body_part).map_err(why)?;
    let mut extra = [0u8; 1];
    match (&r).read(&mut extra) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok(_) => return Err("its job pipe holds trailing bytes after the job".into()),
        Err(e) => return Err(format!("its job could not be read ({e})")),
    }
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::READ_CHUNK;
    use crate::process::entry;

    fn job_through_pipe(bytes: &[u8], keep_writer: bool) -> Result<Vec<u8>, String> {
        use std::io::Write;
        let (r, mut w) = sys::proc::pipe().unwrap();
        w.write_all(bytes).unwrap();
        if !keep_writer {
            drop(w);
            return read_job(r, Duration::from_millis(50));
        }
        let r = read_job(r, Duration::from_millis(50));
        drop(w);
        r
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        [&(body.len() as u64).to_le_bytes()[..], body].concat()
    }

    #[test]
    fn a_job_is_read_to_its_length_never_to_end_of_file() {
        let framed = frame(b"{\"x\":1}");
        // The writer stays open (a stray copy of it): the job is still complete.
        assert_eq!(job_through_pipe(&framed, true).unwrap(), framed);
        assert_eq!(job_through_pipe(&framed, false).unwrap(), framed);
        let mut trailing = framed.clone();
        trailing.push(b' ');
        assert!(job_through_pipe(&trailing, true).unwrap_err().contains("trailing"));
        let short = &framed[..framed.len() - 1];
        assert!(job_through_pipe(short, false).unwrap_err().contains("closed after 6 of the 7"));
        assert!(job_through_pipe(short, true).unwrap_err().contains("did not arrive"));
        assert!(job_through_pipe(&framed[..3], true).unwrap_err().contains("length"));
        let huge = (entry::MAX_JOB_BYTES + 1).to_le_bytes();
        assert!(job_through_pipe(&huge, true).unwrap_err().contains("more than"));
        // The most a frame may announce, and ten bytes sent: memory follows what arrived.
        let most = [&entry::MAX_JOB_BYTES.to_le_bytes()[..], &[0; 10]].concat();
        let (r, peak) = entry::tests::meter::peak_during(|| job_through_pipe(&most, false));
        assert!(r.unwrap_err().contains("closed after 10 of the 1073741824"));
        assert!(peak < 4 * READ_CHUNK, "{peak} bytes allocated for 18 received");
    }

    /// The spawn child's whole intake, pipe to decoder, on mutated and random frames: a typed
    /// refusal, never a panic or a hang (the writer is closed, as a dead parent's would be), and
    /// only the unchanged frame is accepted.
    #[test]
    fn mutated_frames_through_the_job_pipe_are_refused() {
        use entry::tests::{Mutation, SECRET, apply, decode_checked, meter, mutation, run};
        use proptest::prelude::*;
        let valid = {
            fn seven(_: (f64, String)) -> i32 {
                7
            }
            let args = (f64::NAN, "x".repeat(100));
            let job = entry::Job::new(seven, &args, "piped", SECRET, false).unwrap();
            job.to_frame()
        };
        let strategy = prop_oneof![
            proptest::collection::vec(mutation(), 0..4),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| vec![Mutation::Append(b)]),
        ];
        run(200, strategy, |ms: Vec<Mutation>| {
            let mut f = valid.clone();
            for m in &ms {
                apply(&mut f, m);
            }
            // Pipe buffers hold 64 KiB: these frames fit, so writing before reading is fine.
            let (r, peak) = meter::peak_during(|| job_through_pipe(&f, false));
            assert!(peak <= 2 * f.len() + 2 * READ_CHUNK, "{peak} bytes to read {}", f.len());
            match r {
                Err(reason) => assert!(!reason.is_empty()),
                Ok(read) => {
                    assert_eq!(read, f, "the frame read is the one written");
                    if let Ok(v) = decode_checked(&read, Some(&valid)) {
                        assert_eq!(v.call(), 7);
                    }
                }
            }
        });
    }
}
