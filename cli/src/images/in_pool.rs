//! `in_pool`: a batch's files in the pool, one task each, in one of two ways.
//!
//! - **As one job** ([`in_one_job`]), when nobody watches the batch file by file (no progress
//!   bar on a terminal, no `--fail-fast`): this process queues every file, then sleeps until the
//!   whole batch is over, and reads every result then. Measured on 100 files (2 workers), this
//!   process used 2.9-4.2 ms of CPU and 6-8 context switches for the batch, like rayon's main
//!   thread, instead of 9.6-11 ms and 164-176 when it took the results one by one: each result
//!   woke it on a core both workers were using (`docs/images.md`, fourth session).
//! - **Streamed** ([`streamed`]), when the progress bar is drawn or `--fail-fast` must stop at
//!   the first failure: each result is taken as it comes.
//!
//! Either way a file's panic, crash or timeout fails that file only.

use std::time::Duration;

use shmpool::Pool;

use super::options::ImagesArgs;
use super::progress::Progress;
use super::report::Results;
use super::task::{FileTask, process_file};
use crate::error::CliError;

/// How long the job in front of the files holds a worker: [`HOLD_BASE`] plus this per file.
/// Queueing a file (serializing its task) took about 1.5 us here (300 files in 0.43-0.76 ms).
const HOLD_PER_FILE: Duration = Duration::from_micros(5);
/// The part of the hold that does not depend on the batch's size.
const HOLD_BASE: Duration = Duration::from_micros(50);
/// The longest hold, however many files.
const HOLD_MAX: Duration = Duration::from_millis(20);

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
            // The pool's "task N: " names the call, which in one job counts the call in front
            // of the files too; the summary names the file already.
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

/// How long the job in front of `files` files holds its worker: longer than queueing them
/// takes, so that they go out as one job (see [`in_one_job`]), and under half the task
/// `timeout`, so that a tiny `--timeout` does not kill the worker holding.
pub(crate) fn hold_for(files: usize, timeout: Duration) -> Duration {
    let per_file = u32::try_from(files).map_or(HOLD_MAX, |n| HOLD_PER_FILE.saturating_mul(n));
    HOLD_BASE.saturating_add(per_file).min(HOLD_MAX).min(timeout / 2)
}

/// The task of the job in front of the files: waits `d`.
fn hold(d: Duration) {
    std::thread::sleep(d);
}

/// Every file as one job of the pool's apply queue; this process sleeps until it is over.
///
/// The queue publishes its first call at once and the calls made while that one runs as one
/// job when it is over. The first call is a [`hold`] of [`hold_for`] the batch, so every file
/// is queued behind it and they go out together: no job boundary (where one worker waits for
/// the other's last file) falls inside the batch, and the first file does not run alone. If
/// queueing outlasts the hold (this process descheduled), the files go out as two jobs: the
/// results are the same. The workers would have nothing to do during the hold anyway: the
/// files are being queued.
pub(crate) fn in_one_job(
    pool: &mut Pool,
    tasks: &[FileTask],
    timeout: Duration,
) -> Result<Results, CliError> {
    let mut results: Results = Vec::with_capacity(tasks.len());
    {
        let queue = pool.apply_queue();
        let front = queue.apply_async(hold, hold_for(tasks.len(), timeout))?;
        let pending = tasks
            .iter()
            .map(|t| queue.apply_async(process_file, t.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        // Its only effect was the wait; a worker killed meanwhile is replaced by the pool.
        let _ = front.get();
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

/// The files in `pool`, one task each, taken as they finish (the progress bar moves with
/// them). When every file came back the pool is closed (its idle workers exit while this
/// process writes the summary); after `--fail-fast` stopped the batch it is left running, for
/// the caller to terminate.
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

#[cfg(test)]
mod tests {
    use super::{HOLD_BASE, HOLD_MAX, hold_for};
    use std::time::Duration;

    #[test]
    fn hold_grows_with_the_batch_up_to_its_caps() {
        let t = Duration::from_secs(60);
        assert_eq!(hold_for(0, t), HOLD_BASE);
        assert_eq!(hold_for(300, t), HOLD_BASE + Duration::from_micros(1500));
        assert!(hold_for(1000, t) > hold_for(300, t));
        assert_eq!(hold_for(1 << 20, t), HOLD_MAX);
        assert_eq!(hold_for(usize::MAX, t), HOLD_MAX);
        // Under half the task timeout, however small.
        assert_eq!(hold_for(300, Duration::from_millis(1)), Duration::from_micros(500));
        assert_eq!(hold_for(300, Duration::from_nanos(1)), Duration::ZERO);
    }
}
