//! A [`Pipeline`] run on images held in shaped shared arrays, by a [`Pool`]'s worker processes.
//!
//! An array of shape `(h, w, c)` holds one image, `(n, h, w, c)` a batch of `n` images of one
//! size (a NumPy `uint8` or `float32` array of that shape, attached with
//! `python/shmpool_shm.py`, is one); `c` is 1, 3 or 4, samples `u8` or `f32` as everywhere in
//! [`imaging`](super). These calls run a pipeline on them through [`Pool::job`]:
//!
//! - [`apply_into`] writes into an output array of the shape [`output_shape`] computes (the
//!   caller makes it, named for Python to attach if need be);
//! - [`apply_into_with`] does too, keeping its scratch arrays in a [`Scratch`] for the next
//!   run (for batches that change the size, run again and again);
//! - [`apply`] makes that array (anonymous) and returns it;
//! - [`apply_in_place`] overwrites the images, for a pipeline that keeps their shape.
//!
//! How the work is split:
//!
//! - **A batch** (`(n, h, w, c)`) is chunked by images: each chunk runs the whole pipeline on
//!   its images, one after the other, through the same per-image code as [`Pipeline::apply`].
//!   Where the output's images are another size, the job's arrays must still be of one length
//!   (the pool's rule), so the smaller side goes through an anonymous scratch array of `n`
//!   slots of the larger image size, copied by the caller (the shrinking side of a pipeline
//!   only: the input of an enlarging one, the output of a shrinking one).
//! - **One image** (`(h, w, c)`) whose pipeline only has tone curves (brightness, contrast,
//!   gamma), horizontal flips, Gaussian blurs and unsharp masks is chunked by bands of rows:
//!   the tone curves and flips run on each band; a blur or sharpen copies each band into a
//!   scratch array, then, as a stage with a halo of the Gaussian's radius (it starts once every
//!   band is copied), runs on each band widened by the halo and keeps the band's rows (each
//!   band recomputes `2r` rows of its neighbours: about `2r / rows per chunk` more work). Any
//!   other pipeline on one image runs in one chunk, as a batch of one: a job's arrays all have
//!   one length, so an operation that changes the size or the channel count (resize,
//!   grayscale, edges, ...) cannot write its rows into the output band by band, and a
//!   vertical flip or a rotation reads rows of other bands.
//!
//! Cost over running [`Pipeline::apply`] on each image yourself: in a worker, none for the
//! operations after the last that changes the size (they run on the output image itself) and
//! for a resize that is the last size change (it resamples straight into the output, from the
//! shared input when it comes first); a copy of the image for other size changes. Where the
//! size changes, the scratch array and one copy of the smaller side by the caller; the scratch
//! made fresh for each run is the larger cost (its pages allocated, zeroed and mapped by every
//! worker), which [`apply_into_with`] and a kept [`Scratch`] pay once for runs of the same
//! sizes. `cargo bench -p shmpool-kernels --bench imaging_batch -- --warm-up-time 1
//! --measurement-time 2` runs 64 1024x768 RGB images through `resize=640x480; blur=1.5` both
//! ways, with rayon over the images and sequential code beside them (`SHMPOOL_BENCH_WORKERS`,
//! `SHMPOOL_BENCH_IMAGES` set the workers and images). On the shared 2-core machine, 32 images
//! on 1 worker: `apply_into` 198 ms, `apply_into_with` 132, rayon 135, sequential 138; 64
//! images on 2 workers (at load 2-3, so the second core was not free): 367, 277, 275, 266.
//! `docs/images.md` has the table.
//!
//! Either way the result equals [`Pipeline::apply`] on each image, bit for bit
//! (`kernels/tests/imaging_batch.rs` checks it on sizes from 1x1 up, with more chunks than
//! rows). Errors are [`BatchError`]s, raised before anything runs for a wrong shape, channel
//! count or operation (a crop outside the images).
//!
//! ```
//! use shmpool::SharedArray;
//! use shmpool_kernels::imaging::batch;
//! use shmpool_kernels::imaging::Pipeline;
//!
//! let mut pool = shmpool::Pool::new(2)?;
//! // Eight 48x64 RGB images.
//! let photos = SharedArray::<u8>::from_shape_fn(&[8, 48, 64, 3], |ix| (ix[1] * 5 + ix[2]) as u8)?;
//! let pipeline: Pipeline = "resize=32x24; blur=1.0; rotate=90".parse()?;
//! assert_eq!(batch::output_shape(&pipeline, photos.shape())?, [8, 32, 24, 3]);
//! let small = batch::apply(&mut pool, &pipeline, &photos)?;
//! assert_eq!(small.shape(), &[8, 32, 24, 3]);
//! # drop(pool);
//! # shmpool::process::shutdown_forkserver()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[path = "batch_error.rs"]
mod error;
#[path = "batch_plan.rs"]
mod plan;
#[path = "batch_scratch.rs"]
mod scratch;
#[path = "batch_stages.rs"]
mod stages;

use bytemuck::Pod;
use shmpool::pool::{Chunk, JobBuilder};
use shmpool::{Pool, SharedArray};

use super::geometry::Flip;
use super::op::Op;
use super::pipeline::Pipeline;
use super::sample::Sample;
use super::shape::Shape;
pub use error::BatchError;
use plan::{Layout, Params, shapes};
pub use scratch::Scratch;

/// Stages in one kernel job (the pool's limit).
const MAX_STAGES: usize = 16;

/// The shape of the array `pipeline` makes of images in an array of shape `dims`: `(h, w, c)`
/// for one image, `(n, h, w, c)` for a batch.
///
/// # Errors
///
/// [`BatchError::NotImages`], [`BatchError::Channels`] for an array that does not hold images;
/// [`BatchError::Op`] for an operation that cannot run on them (a crop outside them);
/// [`BatchError::TooManyOps`] past 48 operations; [`BatchError::TooLarge`] for images that
/// would take more samples than memory holds.
///
/// ```
/// use shmpool_kernels::imaging::batch::output_shape;
/// let p = "crop=0,0,10,20; grayscale".parse()?;
/// assert_eq!(output_shape(&p, &[4, 100, 100, 3])?, [4, 20, 10, 1]);
/// assert!(output_shape(&p, &[100, 5, 3]).is_err()); // the crop reaches past 5 columns
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn output_shape(pipeline: &Pipeline, dims: &[usize]) -> Result<Vec<usize>, BatchError> {
    let layout = Layout::of(dims)?;
    let out =
        *shapes(pipeline, layout.shape, layout.n)?.last().expect("the input's shape is first");
    Ok(layout.dims(out))
}

/// Runs `pipeline` on the images in `input` (shape `(h, w, c)` or `(n, h, w, c)`) in `pool`'s
/// workers, into a new anonymous array of shape [`output_shape`].
///
/// # Errors
///
/// As [`apply_into`].
///
/// ```
/// use shmpool::SharedArray;
/// use shmpool_kernels::imaging::batch;
/// let mut pool = shmpool::Pool::new(2)?;
/// let img = SharedArray::<f32>::from_shape_fn(&[30, 40, 3], |ix| ix[1] as f32 / 40.0)?;
/// let thumb = batch::apply(&mut pool, &"thumbnail=20".parse()?, &img)?;
/// assert_eq!(thumb.shape(), &[15, 20, 3]);
/// # drop(pool);
/// # shmpool::process::shutdown_forkserver()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn apply<T: Sample + Pod>(
    pool: &mut Pool,
    pipeline: &Pipeline,
    input: &SharedArray<T>,
) -> Result<SharedArray<T>, BatchError> {
    let mut out = SharedArray::<T>::zeroed_shape(&output_shape(pipeline, input.shape())?)?;
    apply_into(pool, pipeline, input, &mut out)?;
    Ok(out)
}

/// Runs `pipeline` on the images in `input` (shape `(h, w, c)` or `(n, h, w, c)`) in `pool`'s
/// workers, writing `output`, which must have the shape [`output_shape`] gives.
///
/// # Errors
///
/// Before anything runs: as [`output_shape`], and [`BatchError::OutputShape`] for an output of
/// another shape. While it runs: [`BatchError::Pool`] (a worker died; an operation panicked),
/// `output` then partly written.
///
/// ```
/// use shmpool::SharedArray;
/// use shmpool_kernels::imaging::batch;
/// let mut pool = shmpool::Pool::new(2)?;
/// let img = SharedArray::<u8>::from_shape_fn(&[64, 64, 3], |ix| (ix[0] * 4) as u8)?;
/// let mut out = SharedArray::<u8>::zeroed_shape(&[64, 64, 3])?;
/// batch::apply_into(&mut pool, &"blur=2; brightness=0.1".parse()?, &img, &mut out)?;
/// let mut wrong = SharedArray::<u8>::zeroed_shape(&[64, 64, 1])?;
/// assert!(batch::apply_into(&mut pool, &"blur=2".parse()?, &img, &mut wrong).is_err());
/// # drop(pool);
/// # shmpool::process::shutdown_forkserver()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn apply_into<T: Sample + Pod>(
    pool: &mut Pool,
    pipeline: &Pipeline,
    input: &SharedArray<T>,
    output: &mut SharedArray<T>,
) -> Result<(), BatchError> {
    apply_into_with(pool, pipeline, input, output, &mut Scratch::new())
}

/// [`apply_into`], staging images through `scratch`'s arrays, kept for the next run: for
/// pipelines that change the images' size, run again and again on arrays of the same sizes
/// (frames of a video, batches of a data set). See [`Scratch`] for what it saves.
///
/// # Errors
///
/// As [`apply_into`].
///
/// ```
/// use shmpool::SharedArray;
/// use shmpool_kernels::imaging::batch::{self, Scratch};
/// let mut pool = shmpool::Pool::new(2)?;
/// let pipeline = "thumbnail=32".parse()?;
/// let frames = SharedArray::<u8>::zeroed_shape(&[8, 60, 80, 3])?;
/// let mut thumbs = SharedArray::<u8>::zeroed_shape(&batch::output_shape(&pipeline, frames.shape())?)?;
/// let mut scratch = Scratch::new();
/// batch::apply_into_with(&mut pool, &pipeline, &frames, &mut thumbs, &mut scratch)?;
/// assert_eq!(thumbs.shape(), &[8, 24, 32, 3]);
/// # drop(pool);
/// # shmpool::process::shutdown_forkserver()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn apply_into_with<T: Sample + Pod>(
    pool: &mut Pool,
    pipeline: &Pipeline,
    input: &SharedArray<T>,
    output: &mut SharedArray<T>,
    scratch: &mut Scratch<T>,
) -> Result<(), BatchError> {
    let layout = Layout::of(input.shape())?;
    let out =
        *shapes(pipeline, layout.shape, layout.n)?.last().expect("the input's shape is first");
    let expected = layout.dims(out);
    if output.shape() != expected.as_slice() {
        return Err(BatchError::OutputShape { found: output.shape().to_vec(), expected });
    }
    match row_stages::<T>(pipeline, layout) {
        Some(plan) => rows_job(pool, pipeline, layout.shape, Some(input), output, &plan, scratch),
        None => images_job(pool, pipeline, layout, out, input, output, scratch),
    }
}

/// Runs `pipeline` on the images in `images` (shape `(h, w, c)` or `(n, h, w, c)`) in place,
/// in `pool`'s workers. The pipeline must keep the images' shape.
///
/// # Errors
///
/// As [`output_shape`], and [`BatchError::NotInPlace`] for a pipeline that changes the shape
/// (before anything runs); [`BatchError::Pool`] while it runs, `images` then partly written.
///
/// ```
/// use shmpool::SharedArray;
/// use shmpool_kernels::imaging::batch;
/// let mut pool = shmpool::Pool::new(2)?;
/// let mut imgs = SharedArray::<u8>::zeroed_shape(&[4, 16, 16, 3])?;
/// batch::apply_in_place(&mut pool, &"brightness=0.5; flip=v".parse()?, &mut imgs)?;
/// assert!(imgs.iter().all(|&v| v == 128));
/// let e = batch::apply_in_place(&mut pool, &"rotate=90".parse()?, &mut imgs);
/// assert!(e.is_ok()); // 16x16 turned is 16x16
/// assert!(batch::apply_in_place(&mut pool, &"grayscale".parse()?, &mut imgs).is_err());
/// # drop(pool);
/// # shmpool::process::shutdown_forkserver()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn apply_in_place<T: Sample + Pod>(
    pool: &mut Pool,
    pipeline: &Pipeline,
    images: &mut SharedArray<T>,
) -> Result<(), BatchError> {
    let layout = Layout::of(images.shape())?;
    let out =
        *shapes(pipeline, layout.shape, layout.n)?.last().expect("the input's shape is first");
    if out != layout.shape {
        return Err(BatchError::NotInPlace { from: images.shape().to_vec(), to: layout.dims(out) });
    }
    if let Some(plan) = row_stages::<T>(pipeline, layout) {
        return rows_job(pool, pipeline, layout.shape, None, images, &plan, &mut Scratch::new());
    }
    let stride = layout.shape.len();
    pool.job(Params::new(pipeline, layout.shape, out, stride))
        .output(images)?
        .chunk_size(stride)
        .stage(stages::images_in_place::<T>)
        .run()?;
    Ok(())
}

/// One stage of a row job: its kernel, halo radius, operation and scratch output.
struct RowStage {
    kernel: fn(&Chunk<Params>),
    radius: usize,
    op: usize,
    scratch: usize,
}

/// The stages of a row job for `pipeline` on `layout` (its copy stage not counted), or `None`
/// when it must run image by image: a batch, an operation that is not row-wise, a blur wider
/// than the image, too many stages.
fn row_stages<T: Sample + Pod>(pipeline: &Pipeline, layout: Layout) -> Option<Vec<RowStage>> {
    if layout.batched {
        return None;
    }
    let mut out = Vec::new();
    let mut blurs = 0;
    for (op_index, op) in pipeline.ops().iter().enumerate() {
        let stage = |kernel, radius, scratch| RowStage { kernel, radius, op: op_index, scratch };
        match op {
            Op::Tone(_) | Op::Flip(Flip::Horizontal) => {
                out.push(stage(stages::row_local::<T>, 0, 0));
            }
            Op::Blur(_) | Op::Sharpen { .. } => {
                let r = stages::radius_of(op);
                if r == 0 {
                    continue; // sigma 0 or less: the operation leaves the image as it is
                }
                if r > layout.shape.h {
                    return None;
                }
                // Alternate scratch arrays: a band filter reads one through its halo while the
                // next blur's copy, fused after it, writes the other.
                let scratch = 1 + blurs % 2;
                blurs += 1;
                out.push(stage(stages::to_scratch::<T>, 0, scratch));
                out.push(stage(stages::band_filter::<T>, r, scratch));
            }
            _ => return None,
        }
    }
    (out.len() < MAX_STAGES).then_some(out)
}

/// Adds `array` as an output when there is one.
fn maybe_output<'a, P: Pod, U: Pod>(
    job: JobBuilder<'a, P>,
    array: Option<&'a mut SharedArray<U>>,
) -> shmpool::Result<JobBuilder<'a, P>> {
    match array {
        Some(a) => job.output(a),
        None => Ok(job),
    }
}

/// One image in bands of rows: `input` (or, without one, `images` itself) through `plan`'s
/// stages into `images`.
fn rows_job<T: Sample + Pod>(
    pool: &mut Pool,
    pipeline: &Pipeline,
    shape: Shape,
    input: Option<&SharedArray<T>>,
    images: &mut SharedArray<T>,
    plan: &[RowStage],
    scratch: &mut Scratch<T>,
) -> Result<(), BatchError> {
    if plan.is_empty() && input.is_none() {
        return Ok(()); // nothing to do in place
    }
    let mut params = Params::new(pipeline, shape, shape, shape.len());
    let first = usize::from(input.is_some());
    for (k, s) in plan.iter().enumerate() {
        params.stage_op[first + k] = s.op as u32;
        params.stage_scratch[first + k] = s.scratch as u32;
    }
    // The band filters' copies go through up to two scratch arrays of the image's length,
    // kept in `scratch` (each band's rows are written before they are read).
    let scratches = plan.iter().map(|s| s.scratch).max().unwrap_or(0);
    let Scratch { input: keep1, output: keep2 } = scratch;
    let n = shape.len();
    let (scratch1, scratch2) =
        (scratch::fit_if(keep1, n, scratches >= 1)?, scratch::fit_if(keep2, n, scratches >= 2)?);
    let mut job = pool.job(params);
    if let Some(input) = input {
        job = job.input(input)?;
    }
    job = job.output(images)?;
    job = maybe_output(job, scratch1)?;
    job = maybe_output(job, scratch2)?;
    if input.is_some() {
        job = job.stage(stages::copy_rows::<T>);
    }
    for s in plan {
        job = match s.radius {
            0 => job.stage(s.kernel),
            r => job.stage_halo(r, s.kernel),
        };
    }
    job.run()?;
    Ok(())
}

/// Whole images per chunk: `input`'s `n` images of `layout` through `pipeline` into `output`'s
/// of shape `out`. The job's arrays must be of one length: the side with the smaller images
/// goes through an anonymous scratch array of `n` slots of the larger size.
fn images_job<T: Sample + Pod>(
    pool: &mut Pool,
    pipeline: &Pipeline,
    layout: Layout,
    out: Shape,
    input: &SharedArray<T>,
    output: &mut SharedArray<T>,
    scratch: &mut Scratch<T>,
) -> Result<(), BatchError> {
    let (n, n_in, n_out) = (layout.n, layout.shape.len(), out.len());
    let stride = n_in.max(n_out);
    let params = Params::new(pipeline, layout.shape, out, stride);
    let Scratch { input: keep_in, output: keep_out } = scratch;
    // What this run does not use is let go: a scratch holds what its last run needed.
    if n_in == stride {
        *keep_in = None;
    }
    if n_out == stride {
        *keep_out = None;
    }
    // Only the first `n_in` / `n_out` samples of a slot are read: a reused slot's rest is stale
    // and never looked at.
    let scratch_in = if n_in < stride {
        let s = scratch::fit(keep_in, n * stride)?;
        for (d, src) in s.chunks_exact_mut(stride).zip(input.chunks_exact(n_in)) {
            d[..n_in].copy_from_slice(src);
        }
        Some(&*s)
    } else {
        None
    };
    let mut scratch_out =
        if n_out < stride { Some(scratch::fit(keep_out, n * stride)?) } else { None };
    // Input and output of one length but other dimensions (a quarter turn): the job sees the
    // output with the input's dimensions while it runs.
    let out_dims = output.shape().to_vec();
    let reshaped = scratch_in.is_none() && scratch_out.is_none() && out_dims != input.shape();
    if reshaped {
        output.reshape(input.shape())?;
    }
    let both_scratch = scratch_in.is_some() && scratch_out.is_some();
    let mut run = || -> shmpool::Result<()> {
        let mut job = pool.job(params).input(scratch_in.unwrap_or(input))?;
        job = match scratch_out.as_deref_mut() {
            Some(s) => job.output(s)?,
            None => job.output(&mut *output)?,
        };
        if both_scratch {
            job = job.shape(&[n, stride]);
        }
        job.chunk_size(stride).stage(stages::images::<T>).run()
    };
    let ran = run();
    if reshaped {
        output.reshape(&out_dims)?;
    }
    ran?;
    if let Some(s) = scratch_out.as_deref() {
        for (d, src) in output.chunks_exact_mut(n_out).zip(s.chunks_exact(stride)) {
            d.copy_from_slice(&src[..n_out]);
        }
    }
    Ok(())
}
