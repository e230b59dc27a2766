//! The spawn start method: re-execute the program (`/proc/self/exe`, the very file this process
//! runs even if it was replaced on disk since) with a marker that turns the new process into a
//! worker before `main` (see `boot.rs`), and hand it its job through a pipe.
//!
//! The child is started with `posix_spawn` (`sys::spawn`), which never copies this process:
//! its cost is the same for a parent of 10 MiB and of 10 GiB.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Duration;

use super::alive;
use super::boot::{self, Marker, Mode};
use super::entry::Job;
use crate::error::{Error, Result};
use crate::sys;

/// Starts a re-executed child running `job`; returns its pid and the read end of its panic
/// report pipe.
pub(crate) fn start(job: &Job) -> Result<(u32, File)> {
    std::hint::black_box(&boot::BOOT);
    // An ignored SIGCHLD (inherited from a launcher) would let the kernel reap the child behind
    // our back: `join`'s waitpid would fail, and a pid we still mean to signal could be reused.
    sys::signal::keep_children_waitable().map_err(Error::io("sigaction(SIGCHLD)"))?;
    let frame = job.to_frame();
    let (job_r, mut job_w) = sys::proc::pipe().map_err(Error::io("pipe"))?;
    let (report_r, report_w) = sys::proc::pipe().map_err(Error::io("pipe"))?;
    let alive = alive::read_end()?;
    let pid = reexec(
        Mode::Spawn,
        [job_r.as_raw_fd(), report_w.as_raw_fd(), alive],
        job.secret,
        "spawning a worker (/proc/self/exe)",
    )?;
    drop((job_r, report_w));
    if let Err(e) = send_job(&mut job_w, &frame) {
        let _ = sys::proc::kill(pid, libc::SIGKILL);
        let _ = sys::proc::waitpid(pid);
        return Err(e);
    }
    Ok((pid, report_r))
}

/// Re-executes this program as a spawn child or a forkserver (`mode`), handing it the
/// descriptors `[fd_a, fd_b, alive]` (`fd_b` -1 for none) under the numbers its marker names,
/// and nothing else of shmpool's. `what` names the start in an error.
pub(crate) fn reexec(
    mode: Mode,
    [fd_a, fd_b, alive]: [RawFd; 3],
    secret: u64,
    what: &'static str,
) -> Result<u32> {
    let keep: Vec<RawFd> = [fd_a, fd_b, alive].into_iter().filter(|&fd| fd >= 0).collect();
    let at = sys::spawn::child_numbers(&keep);
    let number = |fd: RawFd| keep.iter().position(|&k| k == fd).map_or(-1, |i| at[i]);
    let marker =
        Marker { mode, fd_a: number(fd_a), fd_b: number(fd_b), alive: number(alive), secret };
    let env = sys::spawn::environment_with(boot::MARKER, &marker.format());
    let pairs: Vec<(RawFd, RawFd)> = keep.iter().copied().zip(at.iter().copied()).collect();
    let exe = c"/proc/self/exe";
    sys::spawn::spawn(exe, &[exe], &env, &pairs).map_err(Error::io(what))
}

/// How long a child may take to read its job.
const JOB_TIMEOUT: Duration = boot::JOB_TIMEOUT;

/// Writes the framed job, giving up when the child stops reading for [`JOB_TIMEOUT`] (it is not
/// reading: stopped, say). No acknowledgement is awaited: that would make every start wait for
/// the child's exec; a program in which no diversion path ran is refused before the start
/// (`entry::check_reexecutable`), so the child does divert, and it reads exactly the framed
/// length within the same timeout (`boot::read_job`). A child that dies before reading
/// makes this a broken pipe, which is not an error here: its exit status, which `join`
/// reports, says more.
fn send_job(w: &mut File, mut bytes: &[u8]) -> Result<()> {
    sys::fdpass::set_nonblocking(w.as_raw_fd()).map_err(Error::io("fcntl"))?;
    while !bytes.is_empty() {
        match w.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if !sys::fdpass::wait_writable(w.as_fd(), Some(JOB_TIMEOUT))
                    .map_err(Error::io("poll"))?
                {
                    return Err(Error::Timeout {
                        what: "a spawned worker reading its job",
                        after: JOB_TIMEOUT,
                    });
                }
            }
            Err(e) => return Err(Error::io("writing a worker's job")(e)),
        }
    }
    Ok(())
}
