//! `run_batch`: every file one task of a pool with a task timeout, results taken as they
//! finish; a worker that crashes or hangs fails its file only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shmpool::Pool;
use shmpool_kernels::imaging::Pipeline;

use super::options::{Engine, ImagesArgs};
use super::progress::Progress;
use super::report::FileReport;
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

/// The file an error of the pool is about and what to report for it, if it is one file's
/// failure (a panic, a death or a timeout of its task; tasks are sent one per chunk).
fn failed_task(e: &shmpool::Error) -> Option<(usize, String)> {
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
            Some((*chunk as usize, format!("panicked in its worker: {message}")))
        }
        Error::TaskFailed { task, message } => Some((*task, message.clone())),
        _ => None,
    }
}

/// Runs the batch `args` describes.
pub(crate) fn run_batch(args: &ImagesArgs) -> Result<Batch, CliError> {
    let pipeline = pipeline(args)?;
    let inputs = super::inputs::list(&args.input)?;
    if inputs.is_empty() {
        return Err(CliError::ImagesInput {
            input: args.input.clone(),
            fix: "it holds no .png, .jpg, .jpeg, .webp, .tif or .tiff file; give another directory or glob",
        });
    }
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero() && t.as_secs() <= 1 << 32)
        .ok_or_else(|| CliError::ImagesInput {
            input: format!("--timeout {}", args.timeout),
            fix: "give a number of seconds above 0 (and below 4e9)",
        })?;
    std::fs::create_dir_all(&args.out).map_err(|source| CliError::ImagesIo {
        action: "create",
        path: args.out.clone(),
        source,
    })?;
    let text = pipeline.to_string();
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
            hooks: hooks.clone(),
        })
        .collect();

    let workers = args.workers.unwrap_or_else(shmpool::process_cpu_count).max(1);
    let start = Instant::now();
    let results = match args.engine {
        Engine::Pool => in_pool(args, &tasks, workers, timeout)?,
        Engine::Rayon => in_process(&tasks, Some(workers))?,
        Engine::Sequential => in_process(&tasks, None)?,
    };
    let seconds = start.elapsed().as_secs_f64();

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
    Ok(Batch {
        pipeline: pipeline.ops().iter().map(|o| o.to_string()).collect(),
        workers: if args.engine == Engine::Sequential { 1 } else { workers },
        seconds,
        files,
    })
}

/// Each file's result, `None` for those never run.
type Results = Vec<Option<Result<FileReport, String>>>;

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

/// The files in a pool of `workers` processes, one task each, under `--timeout`.
fn in_pool(
    args: &ImagesArgs,
    tasks: &[FileTask],
    workers: usize,
    timeout: Duration,
) -> Result<Results, CliError> {
    let mut pool = Pool::builder().workers(workers).task_timeout(timeout).build()?;
    let mut results: Results = vec![None; tasks.len()];
    let mut progress = Progress::new(tasks.len());
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
                break; // dropping the stream cancels the files no worker started
            }
        }
    }
    // Terminates the workers, any still on a file after --fail-fast included, before the
    // clean-up of temporaries.
    drop(pool);
    progress.finish();
    Ok(results)
}
