//! What the `shmpool` command reports when it fails: its own failures, and the library's.

/// A failure of the `shmpool` command. `main` prints it after `shmpool: ` and exits with 1.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The library failed (creating a segment, starting the pool, a job, ...); its message
    /// says the fix.
    #[error(transparent)]
    Shmpool(#[from] shmpool::Error),

    /// The rayon thread pool that `run` compares against could not be built.
    #[error(
        "could not start the rayon thread pool to compare against: {0}; pass a smaller --workers"
    )]
    Rayon(#[from] rayon::ThreadPoolBuildError),

    /// The pool's in-place result is not the sequential code's, bit for bit.
    #[error(
        "the pool's results differ from sequential code: {wrong} elements, sum {pool} vs \
         {sequential}; this is a bug in shmpool: please report it with the command line"
    )]
    ResultMismatch {
        /// Elements whose bits differ.
        wrong: usize,
        /// The pool's map-reduce sum.
        pool: f64,
        /// The sequential sum.
        sequential: f64,
    },

    /// `demo`'s children left elements of the shared array unchanged.
    #[error(
        "the children left {bad} elements unchanged; their writes did not reach the shared \
         array: this is a bug in shmpool: please report it with the command line"
    )]
    DemoUnchanged {
        /// Elements that do not hold the expected value.
        bad: usize,
    },
}
