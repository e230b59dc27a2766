//! `shmpool images`'s command line: inputs, operations, output, limits and test hooks.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Decode, process and encode a directory (or glob) of images in isolated worker processes.
#[derive(Args, Debug, Clone)]
pub(crate) struct ImagesArgs {
    /// A directory (its PNG, JPEG, WebP and TIFF files, not recursive) or a glob such as
    /// 'photos/*.jpg' (quote it; `*` and `?` in the file name part).
    pub(crate) input: String,
    /// An operation, in order; repeat it: --op resize=640x480 --op blur=1.5. Known: resize=WxH
    /// (or resize=WxH,lanczos3), thumbnail=WxH, crop=X,Y,W,H, rotate=90|180|270, flip=h|v,
    /// grayscale, brightness=B, contrast=K, gamma=G, blur=SIGMA, sharpen=SIGMA (or
    /// sharpen=SIGMA,AMOUNT,THRESHOLD), edges.
    #[arg(long = "op", value_name = "OP")]
    pub(crate) ops: Vec<String>,
    /// A file of operations, one per line ('#' comments), run before the --op ones.
    #[arg(long, value_name = "FILE")]
    pub(crate) pipeline: Option<PathBuf>,
    /// The output directory (created if missing). Files appear there only once complete.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// The output format (default: png).
    #[arg(long, value_enum, default_value_t = Format::Png)]
    pub(crate) format: Format,
    /// JPEG quality, 1 to 100.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub(crate) quality: u8,
    /// JPEG chroma subsampling: `auto` (4:2:0 below quality 90, 4:4:4 from 90), `420` (half
    /// the colour resolution each way, as Pillow and libjpeg write at any quality: smaller
    /// files, faster) or `444` (full colour resolution).
    #[arg(long, value_enum, default_value_t = Chroma::Auto)]
    pub(crate) chroma: Chroma,
    /// Worker processes (default: the CPUs this process may use).
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Seconds one file may take (decode, process, encode, write) before its worker is killed
    /// and replaced; the file is reported failed.
    #[arg(long, default_value_t = 60.0)]
    pub(crate) timeout: f64,
    /// Refuse images of more pixels than this before decoding them (decompression bombs), and
    /// operations that would make one (a resize to an absurd size), before allocating it.
    #[arg(long, default_value_t = 100_000_000)]
    pub(crate) max_pixels: u64,
    /// Refuse a decode that would allocate more than this many MiB.
    #[arg(long, default_value_t = 1024)]
    pub(crate) max_alloc_mib: u64,
    /// Keep the pixels as stored: do not apply the file's EXIF orientation. By default a JPEG
    /// (or PNG, WebP, TIFF) whose EXIF says it is rotated or mirrored is turned upright on
    /// decode, since the output carries no EXIF to say so: a phone photo taken upright comes
    /// out upright, as in a browser or after Pillow's ImageOps.exif_transpose.
    #[arg(long)]
    pub(crate) no_auto_orient: bool,
    /// Go on after a file fails and report every failure at the end (the default).
    #[arg(long, overrides_with = "fail_fast")]
    pub(crate) keep_going: bool,
    /// Stop at the first failed file: files not yet started are reported as not run.
    #[arg(long, overrides_with = "keep_going")]
    pub(crate) fail_fast: bool,
    /// Where the files are processed: `pool` (worker processes, isolated: the default), or,
    /// for comparison, `rayon` (threads of this process) or `sequential` (this thread); these
    /// two have no isolation and no --timeout: a crashing decoder ends the whole batch.
    #[arg(long, value_enum, default_value_t = Engine::Pool)]
    pub(crate) engine: Engine,
    /// How the pool's workers start: `auto` (the default) forks this process while it has a
    /// single thread, which it has unless something started one (fastest: no program is
    /// re-executed), else uses the forkserver; `fork`, `forkserver` or `spawn` force one
    /// (`fork` then fails if this process has other threads).
    #[arg(long, value_enum, default_value_t = StartWith::Auto)]
    pub(crate) start_method: StartWith,
    /// Print the results as JSON on stdout instead of the summary table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Test hook: a worker that reaches this file name kills itself with SIGKILL.
    #[arg(long, hide = true, value_name = "NAME")]
    pub(crate) test_kill_on: Option<String>,
    /// Test hook: a worker that reaches this file name hangs.
    #[arg(long, hide = true, value_name = "NAME")]
    pub(crate) test_hang_on: Option<String>,
    /// Test hook: a worker that reaches this file name panics.
    #[arg(long, hide = true, value_name = "NAME")]
    pub(crate) test_panic_on: Option<String>,
    /// Test hook: take the pool's results one by one as they finish, as when the progress bar
    /// is drawn on a terminal, instead of sleeping through the batch.
    #[arg(long, hide = true)]
    pub(crate) test_stream_results: bool,
    /// Test hook: start an idle thread before the pool, so that `--start-method auto` must not
    /// fork.
    #[arg(long, hide = true)]
    pub(crate) test_extra_thread: bool,
}

/// How a pool's workers start (`--start-method`).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartWith {
    /// `fork` while this process is single-threaded, else `forkserver`.
    Auto,
    /// Forks of this process (refused if it has other threads).
    Fork,
    /// Forks of a clean server process started from this program.
    Forkserver,
    /// Fresh runs of this program.
    Spawn,
}

/// Where a batch's files are processed.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    /// A pool of worker processes, one file per task.
    Pool,
    /// Rayon threads in this process.
    Rayon,
    /// One file after the other on this thread.
    Sequential,
}

/// JPEG chroma subsampling.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Chroma {
    /// 4:2:0 below quality 90, 4:4:4 from 90.
    Auto,
    /// 4:2:0: chroma at half resolution each way.
    #[value(name = "420")]
    S420,
    /// 4:4:4: chroma at full resolution.
    #[value(name = "444")]
    S444,
}

/// An output format.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Format {
    /// PNG (lossless).
    Png,
    /// JPEG (lossy; alpha is dropped).
    Jpeg,
    /// WebP (lossless).
    Webp,
    /// TIFF.
    Tiff,
}

impl Format {
    /// The file extension.
    pub(crate) fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpg",
            Format::Webp => "webp",
            Format::Tiff => "tiff",
        }
    }
}
