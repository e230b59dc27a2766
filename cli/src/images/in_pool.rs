//! `in_pool`: a batch's files in the pool, one task each, in one of two ways.
//!
//! - **As one job** ([`in_one_job`]), unless `--fail-fast` must stop at the first failure:
//!   this process queues every file, then sleeps until the whole batch is over, and reads
//!   every result then. Measured on 100 files (2 workers), this process used 2.9-4.2 ms of CPU
//!   and 6-8 context switches for the batch, like rayon's main thread, instead of 9.6-11 ms and
//!   164-176 when it took the results one by one: each result woke it on a core both workers
//!   were using (`docs/images.md`, fourth session). With the progress bar drawn it wakes at
//!   most [`TICK`]'s ten times a second to move it, from the files finished so far
//!   ([`Pending::is_finished`] reads a flag in shared memory: no worker is woken, nothing
//!   waits), and sees the end of the job at once (it sleeps on the job's end, a tick at most).
//! - **Streamed** ([`streamed`]), with `--fail-fast` (and the test flag
//!   `--test-stream-results`): each result is taken as it comes, so the first failure stops
//!   the batch and the files no worker started are cancelled.
//!
//! Either way a file's panic, crash or timeout fails that file only.
//!
//! [`Pending::is_finished`]: shmpool::pool::Pending::is_finished

use std::time::Duration;

use shmpool::Pool;
use shmpool::pool::Pending;

use super::options::ImagesArgs;
use super::progress::Progress;
use super::report::{FileReport, Results};
use super::task::{FileTask, process_file};
use crate::error::CliError;

/// The file an error of the pool is about and what to report for it, if it is one file's
/// failure (a panic, a death or a timeout of its task).
pub(crate) fn failed_task(e: &shmpool::Error) -> Option<(usize, String)> {
    use shmpool::Error;
    match e {
        Error::TaskTimedOut { task, pid, after } => Some((
            *task,
            format!(
                "timed out: still running after {after:?}, so its worker {pid} was killed and \
                 replaced; raise --timeout if the file is just slow"
            ),
        )),
        Error::WorkerDied { chunk, pid, how, .. } => Some((
            *chunk as usize,
            format!(
                "its worker {pid} {how} (a crash in a decoder or an operation); it was replaced"
            ),
        )),
        Error::KernelPanicked { chunk, message, .. } => {
            // The pool's "task N: " names the call; the summary names the file already.
            let message = message
                .strip_prefix("task ")
                .and_then(|m| m.split_once(": "))
                .filter(|(n, _)| n.parse::<u64>().is_ok())
                .map_or(message.as_str(), |(_, rest)| rest);
            Some((*chunk as usize, format!("panicked in its worker: {message}")))
        }
        Error::TaskFailed { task, message } => Some((*task, message.clone())),
        _ => None,
    }
}

/// How often the progress bar moves while a batch runs as one job.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Every file as one job of the pool's apply queue ([`ApplyQueue::apply_async_batch`]: all
/// queued before any goes out, so no job boundary, where one worker waits for the other's last
/// file, falls inside the batch); this process sleeps until it is over, waking every [`TICK`]
/// to move the progress bar if it is drawn (`bar`). Each file keeps its own result or error.
///
/// [`ApplyQueue::apply_async_batch`]: shmpool::pool::ApplyQueue::apply_async_batch
pub(crate) fn in_one_job(
    pool: &mut Pool,
    tasks: &[FileTask],
    bar: bool,
) -> Result<Results, CliError> {
    let mut results: Results = Vec::with_capacity(tasks.len());
    {
        let queue = pool.apply_queue();
        let pending = queue.apply_async_batch(process_file, tasks.iter().cloned())?;
        if bar {
            watch(&pending, tasks);
        }
        for p in &pending {
            let r = match p.get() {
                Ok(r) => r,
                Err(e) => match failed_task(&e) {
                    Some((_, why)) => Err(why),
                    None => return Err(e.into()),
                },
            };
            results.push(Some(r));
        }
    }
    pool.close();
    Ok(results)
}

/// Draws the progress bar until every call of `pending` (the files of `tasks`, in order) is
/// ready: asleep until the job is over or a [`TICK`] passes, then counting the files finished
/// since the last tick. A finished file's bytes are its size on disk (what its worker read,
/// unless the file changed), a failed file's too: the results, and with them the exact bytes
/// the summary reports, are read only when the job is over.
fn watch(pending: &[Pending<'_, '_, Result<FileReport, String>>], tasks: &[FileTask]) {
    let mut progress = Progress::new(tasks.len());
    let mut left: Vec<usize> = (0..pending.len()).collect();
    for p in pending {
        while !p.wait_timeout(TICK) {
            let (mut files, mut bytes) = (0, 0);
            left.retain(|&i| {
                let finished = pending[i].is_finished();
                if finished {
                    files += 1;
                    bytes += std::fs::metadata(&tasks[i].input).map_or(0, |m| m.len());
                }
                !finished
            });
            progress.advance(files, bytes);
        }
    }
    progress.finish();
}

/// The files in `pool`, one task each, taken as they finish (the progress bar moves with
/// them), for `--fail-fast`: the first failure stops the batch. When every file came back the
/// pool is closed (its idle workers exit while this process writes the summary); after
/// `--fail-fast` stopped the batch it is left running, for the caller to terminate.
pub(crate) fn streamed(
    args: &ImagesArgs,
    pool: &mut Pool,
    tasks: &[FileTask],
) -> Result<Results, CliError> {
    let mut results: Results = vec![None; tasks.len()];
    let mut progress = Progress::new(tasks.len());
    let mut stopped = false;
    {
        let stream = pool.imap_unordered(process_file, tasks, Some(1))?;
        for item in stream {
            let (i, r) = match item {
                Ok((i, r)) => (i, r),
                Err(e) => match failed_task(&e) {
                    Some((i, why)) if i < tasks.len() => (i, Err(why)),
                    _ => return Err(e.into()),
                },
            };
            let failed = r.is_err();
            progress.done(r.as_ref().map_or(0, |rep| rep.in_bytes));
            results[i] = Some(r);
            if failed && args.fail_fast {
                stopped = true;
                break; // dropping the stream cancels the files no worker started
            }
        }
    }
    if !stopped {
        pool.close();
    }
    progress.finish();
    Ok(results)
}
