//! `run_batch`: every file one task of a pool with a task timeout, the batch one job of the
//! pool (results taken as they finish only under `--fail-fast`: `in_pool.rs`); a worker that
//! crashes or hangs fails its file only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shmpool::Pool;
use shmpool_kernels::imaging::Pipeline;

use super::options::{Engine, ImagesArgs};
use super::progress::Progress;
use super::report::Results;
use super::summary::{Batch, FileResult};
use super::task::{FileTask, process_file, temp_path};
use crate::error::CliError;

/// The pipeline of `--pipeline FILE` then `--op`s.
pub(crate) fn pipeline(args: &ImagesArgs) -> Result<Pipeline, CliError> {
    let mut p = match &args.pipeline {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|source| CliError::ImagesIo { action: "read", path: path.clone(), source })?
            .parse::<Pipeline>()?,
        None => Pipeline::default(),
    };
    for op in &args.ops {
        p.push(op.parse()?);
    }
    Ok(p)
}

/// Output paths: `out/STEM.EXT`, or `out/NAME.EXT` for inputs whose stems collide.
fn outputs(inputs: &[PathBuf], out: &Path, ext: &str) -> Vec<PathBuf> {
    let stem =
        |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for p in inputs {
        *seen.entry(stem(p)).or_default() += 1;
    }
    inputs
        .iter()
        .map(|p| {
            let s = stem(p);
            let base = if seen[&s] > 1 {
                p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(s)
            } else {
                s
            };
            out.join(format!("{base}.{ext}"))
        })
        .collect()
}

/// A finished batch, and the pool that ran it when its workers were only told to stop: the
/// caller prints the summary, then reaps them ([`super::workers::reap`]).
pub(crate) type Finished = (Batch, Option<Pool>);

/// Runs the batch `args` describes.
///
/// The clock starts here, before the files are listed, under every engine. Under the pool
/// engine the workers are started first (after the cheap checks and the pipeline's parsing, so
/// a bad operation still starts nothing), and set themselves up while this process lists the
/// files and builds the tasks.
pub(crate) fn run_batch(args: &ImagesArgs) -> Result<Finished, CliError> {
    let start = Instant::now();
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero() && t.as_secs() <= 1 << 32)
        .ok_or_else(|| CliError::ImagesInput {
            input: format!("--timeout {}", args.timeout),
            fix: "give a number of seconds above 0 (and below 4e9)",
        })?;
    let pipeline = pipeline(args)?;
    let text = pipeline.to_string();
    if args.test_extra_thread {
        // Parked for the life of the process: it only has to exist when the pool starts.
        std::thread::spawn(|| {
            loop {
                std::thread::park();
            }
        });
    }
    let workers = args.workers.unwrap_or_else(shmpool::process_cpu_count).max(1);
    let mut pool = match args.engine {
        Engine::Pool => Some(super::workers::start(workers, timeout, args.start_method)?),
        Engine::Rayon | Engine::Sequential => {
            super::allocator::tune_allocator();
            None
        }
    };
    let start_method = pool.as_ref().map(|p| p.start_method().name().to_string());

    let inputs = super::inputs::list(&args.input)?;
    if inputs.is_empty() {
        return Err(CliError::ImagesInput {
            input: args.input.clone(),
            fix: "it holds no .png, .jpg, .jpeg, .webp, .tif or .tiff file; give another directory or glob",
        });
    }
    std::fs::create_dir_all(&args.out).map_err(|source| CliError::ImagesIo {
        action: "create",
        path: args.out.clone(),
        source,
    })?;
    let hooks = [args.test_kill_on.clone(), args.test_hang_on.clone(), args.test_panic_on.clone()];
    let tasks: Vec<FileTask> = outputs(&inputs, &args.out, args.format.extension())
        .into_iter()
        .zip(&inputs)
        .map(|(output, input)| FileTask {
            input: input.clone(),
            temp: temp_path(&output),
            output,
            pipeline: text.clone(),
            format: args.format,
            quality: args.quality,
            chroma: args.chroma,
            max_pixels: args.max_pixels,
            max_alloc: args.max_alloc_mib.saturating_mul(1 << 20),
            auto_orient: !args.no_auto_orient,
            hooks: hooks.clone(),
        })
        .collect();

    let results = match &mut pool {
        // Results one by one only for --fail-fast's stop; else this process sleeps through
        // the batch, waking ten times a second if a bar is drawn on a terminal (`in_pool.rs`).
        Some(p) if args.fail_fast || args.test_stream_results => {
            super::in_pool::streamed(args, p, &tasks)?
        }
        Some(p) => super::in_pool::in_one_job(p, &tasks, super::progress::drawn())?,
        None if args.engine == Engine::Rayon => in_process(&tasks, Some(workers))?,
        None => in_process(&tasks, None)?,
    };
    let seconds = start.elapsed().as_secs_f64();
    let any_failed = results.iter().any(|r| !matches!(r, Some(Ok(_))));
    if any_failed {
        // Every worker dead before a temporary is removed: one stopped by --fail-fast may be
        // writing still (killing is not instant), and a file written after its temporary was
        // removed would be left half-written.
        drop(pool.take());
    }

    let files = tasks
        .iter()
        .zip(results)
        .map(|(t, r)| {
            let r = r.unwrap_or_else(|| Err("not run: --fail-fast stopped the batch".to_string()));
            if r.is_err() {
                // A worker killed mid-write leaves its temporary file: nothing half-written stays.
                let _ = std::fs::remove_file(&t.temp);
            }
            let (report, error) = match r {
                Ok(rep) => (Some(rep), None),
                Err(e) => (None, Some(e)),
            };
            FileResult { input: t.input.display().to_string(), report, error }
        })
        .collect();
    let batch = Batch {
        pipeline: pipeline.ops().iter().map(|o| o.to_string()).collect(),
        workers: if args.engine == Engine::Sequential { 1 } else { workers },
        start_method,
        seconds,
        files,
    };
    Ok((batch, pool))
}

/// The files in this process: on `threads` rayon threads, or on this thread (`None`). For
/// comparison only: nothing is isolated.
fn in_process(tasks: &[FileTask], threads: Option<usize>) -> Result<Results, CliError> {
    let mut progress = Progress::new(tasks.len());
    let results: Vec<_> = match threads {
        Some(n) => {
            use rayon::prelude::*;
            let rp = rayon::ThreadPoolBuilder::new().num_threads(n).build()?;
            rp.install(|| tasks.par_iter().map(|t| process_file(t.clone())).collect())
        }
        None => tasks.iter().map(|t| process_file(t.clone())).collect(),
    };
    for r in &results {
        progress.done(r.as_ref().map_or(0, |rep| rep.in_bytes));
    }
    progress.finish();
    Ok(results.into_iter().map(Some).collect())
}
