//! The spawn start method: re-execute the program (`/proc/self/exe`, the very file this process
//! runs even if it was replaced on disk since) with a marker that turns the new process into a
//! worker before `main` (see `boot.rs`), and hand it its job through a pipe (`jobpipe.rs`).
//! A parent-side start method: it returns a pid and a report pipe, never a `Process`.
//!
//! The child is started with `posix_spawn` (`sys::spawn`), which never copies this process:
//! its cost is the same for a parent of 10 MiB and of 10 GiB.

use std::fs::File;
use std::os::fd::AsRawFd;

use super::alive;
use super::entry::Job;
use super::jobpipe::send_job;
use super::marker::Mode;
use super::reexec::{extra_numbers, reexec_keeping};
use super::start_error::StartError;
use crate::sys;

/// Starts a re-executed child running `job`; returns its pid and the read end of its panic
/// report pipe.
pub(crate) fn start(job: &Job) -> Result<(u32, File), StartError> {
    // An ignored SIGCHLD (inherited from a launcher) would let the kernel reap the child behind
    // our back: `join`'s waitpid would fail, and a pid we still mean to signal could be reused.
    sys::signal::keep_children_waitable().map_err(StartError::io("sigaction(SIGCHLD)"))?;
    let (job_r, mut job_w) = sys::proc::pipe().map_err(StartError::io("pipe"))?;
    let (report_r, report_w) = sys::proc::pipe().map_err(StartError::io("pipe"))?;
    let alive = alive::read_end()?;
    let fds = [job_r.as_raw_fd(), report_w.as_raw_fd(), alive];
    // The descriptors the arguments pass are inherited, at numbers the job names.
    let extra: Vec<_> = job.fds().iter().map(|fd| fd.as_raw_fd()).collect();
    let frame = job.to_frame_placing(&extra_numbers(fds, &extra));
    let pid =
        reexec_keeping(Mode::Spawn, fds, &extra, job.secret, "spawning a worker (/proc/self/exe)")?;
    drop((job_r, report_w));
    if let Err(e) = send_job(&mut job_w, &frame) {
        let _ = sys::proc::kill(pid, libc::SIGKILL);
        let _ = sys::proc::waitpid(pid);
        return Err(e);
    }
    Ok((pid, report_r))
}
