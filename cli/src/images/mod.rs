//! `shmpool images`: decode, process and encode a directory of images, one file per task of a
//! pool of worker processes. A corrupt, hostile or oversized file fails that file only; a
//! decoder that crashes or hangs loses only its worker (killed after `--timeout` and replaced);
//! outputs appear only complete (written to a hidden temporary name, then renamed). See
//! `docs/images.md`.

mod inputs;
mod options;
mod progress;
mod report;
mod run;
mod summary;
mod task;

pub(crate) use options::ImagesArgs;

use crate::error::CliError;

/// Runs `shmpool images`: the summary table (or `--json`) on stdout; an error if any file
/// failed, so the exit status is non-zero.
pub(crate) fn images(args: ImagesArgs) -> Result<(), CliError> {
    let batch = run::run_batch(&args)?;
    if args.json {
        println!("{}", batch.to_json());
    } else {
        print!("{}", batch.table());
    }
    match batch.failed() {
        0 => Ok(()),
        failed => Err(CliError::ImagesFailed { failed, total: batch.files.len() }),
    }
}
