//! `Active`: the parent's bookkeeping for the job in flight (its id and size, the retries it has
//! left, the chunks dead workers held and the chunks their deaths cost). Only the parent has it;
//! `failure.rs` fills it as workers die, and the job's outcome is read from it.

use super::liveness::Ended;

/// The parent's bookkeeping for the job in flight.
pub(crate) struct Active {
    pub(crate) job: u32,
    pub(crate) chunks: u64,
    pub(crate) retries_left: u32,
    /// Chunks held by workers that died, not yet resolved: (chunk, pid, how it ended).
    pub(crate) suspects: Vec<(u64, u32, Ended)>,
    /// Every chunk a death cost, the first first: (chunk, pid, how, signal), for streaming
    /// results and the job's outcome.
    pub(crate) lost: Vec<(u64, u32, String, Option<i32>)>,
    /// A worker ended while this job was in flight: completion is then read from the done
    /// bitmap, not only the counter ([`ControlBlock::finished`](super::control::ControlBlock::finished)).
    pub(crate) deaths: bool,
    /// Workers the parent killed because their task ran past the task timeout: (chunk, task
    /// index in the job, task index in the call, pid).
    pub(crate) timed_out: Vec<(u64, u64, u64, u32)>,
    /// A serialized task job's result region: (address in this process, tasks, chunk size).
    pub(crate) results: Option<(usize, usize, usize)>,
}

impl Active {
    pub(crate) fn new(job: u32, chunks: u64, retries: u32) -> Active {
        Active {
            job,
            chunks,
            retries_left: retries,
            suspects: Vec::new(),
            lost: Vec::new(),
            deaths: false,
            timed_out: Vec::new(),
            results: None,
        }
    }
}
