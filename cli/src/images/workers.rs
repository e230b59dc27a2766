//! The batch's pool of worker processes: how it starts (forks of this process while it is
//! single-threaded, else forks of the forkserver) and how it ends (told to stop as soon as the
//! last result is in, reaped once the summary is out).

use std::time::Duration;

use shmpool::{Pool, StartMethod};

use super::allocator::tune_allocator;
use super::options::StartWith;
use crate::error::CliError;

/// How long [`reap`] waits for workers told to stop before it kills them, and the command for
/// a forkserver to end.
pub(crate) const REAP_WAIT: Duration = Duration::from_secs(10);

/// Starts `workers` processes whose tasks may each run `timeout`, each running
/// [`tune_allocator`] first.
///
/// `StartWith::Auto` forks this process: at this point it is small (no image is decoded in it)
/// and holds no shared array, so two workers start in 0.5-0.75 ms where the forkserver, which
/// re-executes this program first, took 2.2-8 ms (`docs/images.md`, "Start and stop"). The pool checks that the process is single-threaded
/// before every fork, replacements included, and refuses with [`shmpool::Error::ForkWithThreads`]
/// otherwise; only then is the forkserver used. `shmpool images` starts no thread of its own in
/// the pool engine (its progress bar draws from this thread), so a replacement worker is a
/// fork too.
pub(crate) fn start(workers: usize, timeout: Duration, how: StartWith) -> Result<Pool, CliError> {
    let builder = Pool::builder()
        .name("images")
        .workers(workers)
        .task_timeout(timeout)
        .initializer(tune_allocator);
    let with = |m| builder.clone().start_method(m).build();
    let pool = match how {
        StartWith::Auto => match with(StartMethod::Fork) {
            Err(shmpool::Error::ForkWithThreads { .. }) => with(StartMethod::ForkServer),
            other => other,
        },
        StartWith::Fork => with(StartMethod::Fork),
        StartWith::Forkserver => with(StartMethod::ForkServer),
        StartWith::Spawn => with(StartMethod::Spawn),
    };
    Ok(pool?)
}

/// Waits (at most [`REAP_WAIT`]) for the workers of a closed pool to exit and reaps them; any
/// still running then are killed and reaped.
pub(crate) fn reap(mut pool: Pool) {
    let _ = pool.join_timeout(REAP_WAIT);
    drop(pool); // kills and reaps whatever join left
}
