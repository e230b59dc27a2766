//! The spawn start method: re-execute the program (`/proc/self/exe`, the very file this process
//! runs even if it was replaced on disk since) with a marker that turns the new process into a
//! worker before `main` (see `boot.rs`), and hand it its job through a pipe.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::alive;
use super::boot::{self, Marker, Mode};
use super::entry::Job;
use crate::error::{Error, Result};
use crate::sys;

/// This process's secret, which proves to a re-executed child (or the forkserver) that its job
/// came from us. A forked child keeps its parent's: the secret only vouches that a job was built
/// by a process running this same executable, which a forked child is.
pub(crate) fn secret() -> u64 {
    static SECRET: OnceLock<u64> = OnceLock::new();
    *SECRET.get_or_init(sys::proc::random_u64)
}

/// Starts a re-executed child running `job`; returns its pid and the read end of its panic
/// report pipe.
pub(crate) fn start(job: &Job) -> Result<(u32, File)> {
    std::hint::black_box(&boot::BOOT);
    let (job_r, mut job_w) = sys::proc::pipe().map_err(Error::io("pipe"))?;
    let (report_r, report_w) = sys::proc::pipe().map_err(Error::io("pipe"))?;
    let alive = alive::read_end()?;
    let marker = Marker {
        mode: Mode::Spawn,
        fd_a: job_r.as_raw_fd(),
        fd_b: report_w.as_raw_fd(),
        alive,
        secret: job.secret,
    };
    let keep = [job_r.as_raw_fd(), report_w.as_raw_fd(), alive];
    let mut cmd = Command::new("/proc/self/exe");
    cmd.env(boot::MARKER, marker.format()).stdin(Stdio::null());
    // SAFETY: the closure runs between fork and exec and only calls fcntl, which is
    // async-signal-safe; it touches the child's copies of descriptors this process owns.
    unsafe {
        cmd.pre_exec(move || keep.iter().try_for_each(|&fd| sys::fdpass::clear_cloexec(fd)));
    }
    let child = cmd.spawn().map_err(Error::io("spawning a worker (/proc/self/exe)"))?;
    drop((job_r, report_w));
    // A child that dies before reading its job makes this a broken pipe; its exit status, which
    // `join` reports, says more than this error would.
    match job_w.write_all(&job.to_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            let _ = sys::proc::kill(child.id(), libc::SIGKILL);
            let _ = sys::proc::waitpid(child.id());
            return Err(Error::io("writing a worker's job")(e));
        }
        _ => {}
    }
    Ok((child.id(), report_r))
}
