//! Re-executing this program (`/proc/self/exe`) as a spawn child or the forkserver, with the
//! marker (`marker.rs`) that diverts the new process before `main`. Shared by the two parent-side
//! start methods that re-execute (`spawn.rs` and the forkserver client, `forkserver.rs`). Its
//! one edge to the child side is a reference to `boot::BOOT`, which links the constructor in.

use std::os::fd::RawFd;

use super::boot;
use super::marker::{MARKER, Marker, Mode};
use super::start_error::StartError;
use crate::sys;

/// Re-executes this program as a spawn child or a forkserver (`mode`), handing it the
/// descriptors `[fd_a, fd_b, alive]` (`fd_b` -1 for none) under the numbers its marker names,
/// and nothing else of shmpool's. `what` names the start in an error.
pub(crate) fn reexec(
    mode: Mode,
    fds: [RawFd; 3],
    secret: u64,
    what: &'static str,
) -> Result<u32, StartError> {
    reexec_keeping(mode, fds, &[], secret, what)
}

/// The descriptors [`reexec_keeping`] hands the child, in order: `fds` (those not -1), then
/// `extra`.
fn kept(fds: [RawFd; 3], extra: &[RawFd]) -> Vec<RawFd> {
    fds.into_iter().filter(|&fd| fd >= 0).chain(extra.iter().copied()).collect()
}

/// The numbers at which a child started by [`reexec_keeping`] with `fds` and `extra` finds
/// `extra` (a spawn child's job names them).
pub(crate) fn extra_numbers(fds: [RawFd; 3], extra: &[RawFd]) -> Vec<RawFd> {
    let at = sys::spawn::child_numbers(&kept(fds, extra));
    at[at.len() - extra.len()..].to_vec()
}

/// As [`reexec`], also handing the child the descriptors `extra` (a spawn child's arguments'),
/// at the numbers [`extra_numbers`] says.
pub(crate) fn reexec_keeping(
    mode: Mode,
    [fd_a, fd_b, alive]: [RawFd; 3],
    extra: &[RawFd],
    secret: u64,
    what: &'static str,
) -> Result<u32, StartError> {
    // The copy diverts only through the constructor: referring to it here links it into every
    // binary that re-executes itself (see `boot.rs`).
    std::hint::black_box(&boot::BOOT);
    let keep = kept([fd_a, fd_b, alive], extra);
    let at = sys::spawn::child_numbers(&keep);
    let number = |fd: RawFd| keep.iter().position(|&k| k == fd).map_or(-1, |i| at[i]);
    let marker =
        Marker { mode, fd_a: number(fd_a), fd_b: number(fd_b), alive: number(alive), secret };
    let env = sys::spawn::environment_with(MARKER, &marker.format());
    let pairs: Vec<(RawFd, RawFd)> = keep.iter().copied().zip(at.iter().copied()).collect();
    let exe = c"/proc/self/exe";
    sys::spawn::spawn(exe, &[exe], &env, &pairs).map_err(StartError::io(what))
}
