//! `shmpool images`: decode, process and encode a directory of images, one file per task of a
//! pool of worker processes. A corrupt, hostile or oversized file fails that file only; a
//! decoder that crashes or hangs loses only its worker (killed after `--timeout` and replaced);
//! outputs appear only complete (written to a hidden temporary name, then renamed). See
//! `docs/images.md`.

mod allocator;
mod in_pool;
mod inputs;
mod options;
mod progress;
mod report;
mod run;
mod summary;
mod task;
mod workers;

pub(crate) use options::ImagesArgs;

use crate::error::CliError;

/// Runs `shmpool images`: the summary table (or `--json`) on stdout; an error if any file
/// failed, so the exit status is non-zero. The pool's workers, told to stop when the last
/// result came, are reaped after the summary is written, while they exit; a forkserver started
/// for them is stopped and reaped too, so no process of the batch outlives the command.
pub(crate) fn images(args: ImagesArgs) -> Result<(), CliError> {
    let res = run_and_report(&args);
    // Nothing to do unless the workers were started by the forkserver (a thread was running).
    let _ = shmpool::process::shutdown_forkserver_timeout(workers::REAP_WAIT);
    res
}

fn run_and_report(args: &ImagesArgs) -> Result<(), CliError> {
    use std::io::Write;
    let (batch, pool) = run::run_batch(args)?;
    let summary = if args.json { format!("{}\n", batch.to_json()) } else { batch.table() };
    let written = std::io::stdout().lock().write_all(summary.as_bytes());
    let written = written.and_then(|()| std::io::stdout().flush());
    if let Some(pool) = pool {
        workers::reap(pool);
    }
    written.map_err(|source| CliError::ImagesIo {
        action: "write the summary to",
        path: "standard output".into(),
        source,
    })?;
    match batch.failed() {
        0 => Ok(()),
        failed => Err(CliError::ImagesFailed { failed, total: batch.files.len() }),
    }
}
