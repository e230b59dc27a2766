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

    /// A `shmpool run` option is zero, which leaves nothing to run or measure.
    #[error("bad --{option} 0: {fix}")]
    RunZero {
        /// The option, without its dashes: workers, rounds or len.
        option: &'static str,
        /// What to give instead.
        fix: &'static str,
    },

    /// A `shmpool bench` option has a value it cannot use.
    #[error("bad --{option} {value}: {fix}")]
    BenchOption {
        /// The option, without its dashes.
        option: &'static str,
        /// The value given.
        value: String,
        /// What to give instead.
        fix: String,
    },

    /// `shmpool bench` could not read, write or create a file or directory.
    #[error("could not {action} {}: {source}; check the path and its permissions", path.display())]
    BenchIo {
        /// What it tried: read, write or create.
        action: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },

    /// A results file is not the JSON `shmpool bench --json` writes (or could not be written).
    #[error(
        "{} is not a `shmpool bench --json FILE` results file ({source}); pass the JSON a run wrote",
        path.display()
    )]
    BenchResults {
        /// The file.
        path: std::path::PathBuf,
        /// What serde_json said.
        source: serde_json::Error,
    },

    /// A chart could not be drawn.
    #[error("could not draw {}: {why}; pass another --plot DIR, or leave --plot out", path.display())]
    BenchPlot {
        /// The SVG file.
        path: std::path::PathBuf,
        /// What plotters said.
        why: String,
    },

    /// `--report`'s file has no marked section to rewrite.
    #[error(
        "{} has no `<!-- bench:begin -->` line followed by a `<!-- bench:end -->` line; add the \
         two lines where the generated tables belong",
        path.display()
    )]
    BenchMarkers {
        /// The Markdown file.
        path: std::path::PathBuf,
    },

    /// `shmpool images` could not read or create a file or directory.
    #[error("could not {action} {}: {source}; check the path and its permissions", path.display())]
    ImagesIo {
        /// What it tried: read or create.
        action: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },

    /// `shmpool images` was given an input or option it cannot use.
    #[error("bad input {input}: {fix}")]
    ImagesInput {
        /// The input or option given.
        input: String,
        /// What to give instead.
        fix: &'static str,
    },

    /// An `--op` or a line of `--pipeline` does not parse.
    #[error(transparent)]
    ImagesOp(#[from] shmpool_kernels::imaging::OpParseError),

    /// Some files of a batch failed (each with its reason in the summary).
    #[error(
        "{failed} of {total} files failed; the summary above gives each one's reason (every \
         other file was written)"
    )]
    ImagesFailed {
        /// Files that failed.
        failed: usize,
        /// Files in the batch.
        total: usize,
    },
}
