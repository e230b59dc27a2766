//! The spawn child's runtime: a re-executed copy of the program that the marker (`marker.rs`)
//! made a spawn child. It arms the alive-pipe guard, reads its one job from the job pipe
//! (`jobpipe.rs`), has it verified (`entry::decode_frame`), runs it and exits. Child side only:
//! nothing of the parent-side start methods is imported here.

use std::fs::File;

use super::alive;
use super::child;
use super::entry;
use super::jobpipe::{self, JOB_TIMEOUT};
use super::marker::{Marker, fail, own};
use crate::sys;

/// Exit code of a child that found its parent already gone before it started.
const PARENT_GONE_EXIT_CODE: i32 = child::PANIC_EXIT_CODE + 1;

/// Runs the spawn child that `m` describes; never returns.
pub(crate) fn run_spawned(m: Marker) -> ! {
    // Guard first: a parent already gone means there is nothing to do.
    if !alive::guard(m.alive) {
        sys::proc::exit_now(PARENT_GONE_EXIT_CODE);
    }
    drop(own(m.alive));
    let frame =
        jobpipe::read_job(File::from(own(m.fd_a)), JOB_TIMEOUT).unwrap_or_else(|r| fail(&r));
    let report = File::from(own(m.fd_b));
    let job = entry::decode_frame(&frame, m.secret).unwrap_or_else(|e| fail(&e.to_string()));
    let job = job.adopt_inherited(&[m.fd_a, m.fd_b, m.alive]).unwrap_or_else(|e| fail(&e));
    drop(frame);
    child::install_panic_hook();
    let (pdeathsig, parent) = (job.pdeathsig(), job.parent_pid());
    if pdeathsig {
        child::run(parent, report, || job.call())
    } else {
        child::finish(report, || job.call())
    }
}
