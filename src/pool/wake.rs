//! The parent's wake pipe: how a worker wakes a parent that sleeps in a job.
//!
//! The parent polls the read end together with every worker's exit descriptor (`failure.rs`); a
//! worker that finishes the job (or, for streaming results, any chunk) while the parent sleeps
//! writes one byte to the write end (README.md, "Sleeping and waking").

use std::fs::File;
use std::os::fd::AsFd;

use crate::error::{Error, Result};
use crate::sys;

/// The pipe through which workers wake a sleeping parent: the parent polls the read end, with
/// the workers' exit descriptors; a worker writes a byte to the write end (inherited by forked
/// workers, opened through `/proc/<parent>/fd` by the others, which check the inode). Both ends
/// are non-blocking and stay open in the parent for the pool's life.
pub(crate) struct WakePipe {
    pub(crate) r: File,
    pub(crate) w: File,
    /// The pipe's inode, which a worker opening the write end by number checks.
    pub(crate) ino: u64,
}

impl WakePipe {
    pub(crate) fn new() -> Result<WakePipe> {
        let (r, w) = sys::proc::pipe().map_err(Error::io("pipe (the pool's wake pipe)"))?;
        for f in [&r, &w] {
            sys::fdpass::set_nonblocking(f).map_err(Error::io("fcntl"))?;
        }
        let ino = sys::fdpass::inode(r.as_fd()).map_err(Error::io("fstat"))?;
        Ok(WakePipe { r, w, ino })
    }
}
