//! The Jacobi iteration in a [`Pool`]: one kernel job per batch of steps, each step a stage
//! with a one-row halo over the `(h, w)` grid chunked by rows, its residual a per-chunk partial
//! reduced by max.
//!
//! The job's two outputs are the grid and its second buffer. A step reads one of them through
//! its halo ([`Chunk::output_halo`], complete because a halo stage starts only once every chunk
//! of the step before it is done) and writes the other; the next step swaps them. After an odd
//! number of steps a last halo stage copies the second buffer back, so the result always ends in
//! the grid. A job holds at most 16 stages, so longer runs are several jobs of 16 steps.

use shmpool::pool::Chunk;
use shmpool::{Pool, SharedArray};

use crate::dims_error::DriverError;
use crate::float::Float;
use crate::stencil::{GridDims, jacobi_rows};

/// Stages in one kernel job (the pool's limit).
const MAX_STAGES: usize = 16;

/// One step from output `FROM` into the other output; sets the chunk's residual.
fn step<T: Float, const FROM: usize>(c: &Chunk<GridDims>) {
    let w = c.params().w as usize;
    let (old, off) = c.output_halo::<T>(FROM);
    let new = c.output::<T>(1 - FROM);
    c.set_partial(jacobi_rows(old, off, new, w));
}

/// One step from input 0 into output 0; sets the chunk's residual.
fn step_in<T: Float>(c: &Chunk<GridDims>) {
    let w = c.params().w as usize;
    let (old, off) = c.input_halo::<T>(0);
    c.set_partial(jacobi_rows(old, off, c.output::<T>(0), w));
}

/// Copies the second buffer (output 1) back into the grid (output 0).
fn copy_back<T: Float>(c: &Chunk<GridDims>) {
    let (from, off) = c.output_halo::<T>(1);
    let to = c.output::<T>(0);
    let n = to.len();
    to.copy_from_slice(&from[off..off + n]);
}

/// [`jacobi`](crate::jacobi) in the pool's workers: `steps` steps over `grid`, alternating
/// with `scratch`, the result in `grid`; returns the last step's residual (largest
/// `|new - old|`, NaN if any point is NaN), or 0 for no steps. Chunks are bands of whole rows
/// (the pool's chunk size rounded up to rows); grid and residual are identical bit for bit to
/// the sequential [`jacobi`](crate::jacobi)'s whatever the chunking.
///
/// # Errors
///
/// [`DriverError::Dims`] when an array does not have `dims.len()` elements (nothing runs);
/// [`DriverError::Pool`] when a step fails in the pool (a worker died, the pool is closed).
///
/// ```
/// use shmpool::SharedArray;
/// use shmpool_kernels::{GridDims, jacobi_pool};
/// let mut pool = shmpool::Pool::new(2)?;
/// let dims = GridDims::new(64, 64);
/// // A hot top edge, everything else cold.
/// let mut grid = SharedArray::<f64>::from_fn(dims.len(), |i| if i < 64 { 1.0 } else { 0.0 })?;
/// let mut scratch = SharedArray::<f64>::zeroed(dims.len())?;
/// let residual = jacobi_pool(&mut pool, &mut grid, &mut scratch, dims, 10)?;
/// assert!(residual > 0.0 && grid[64 + 32] > 0.0);
/// # drop(pool);
/// # shmpool::process::shutdown_forkserver()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn jacobi_pool<T: Float>(
    pool: &mut Pool,
    grid: &mut SharedArray<T>,
    scratch: &mut SharedArray<T>,
    dims: GridDims,
    steps: usize,
) -> Result<T, DriverError> {
    dims.check(grid, scratch)?;
    let (h, w) = dims.get();
    if dims.is_empty() || steps == 0 {
        return Ok(T::ZERO);
    }
    let mut residual = T::ZERO;
    let mut left = steps;
    while left > 0 {
        // Whole jobs of 16 steps keep the grid in output 0 between jobs.
        let batch = left.min(MAX_STAGES);
        left -= batch;
        let mut job = pool.job(dims).output(&mut *grid)?.output(&mut *scratch)?.shape(&[h, w]);
        for s in 0..batch {
            job = job.stage_halo(1, if s % 2 == 0 { step::<T, 0> } else { step::<T, 1> });
        }
        if batch % 2 == 1 {
            job = job.stage_halo(1, copy_back::<T>);
        }
        residual = job.run_reduce(T::ZERO, T::max_nan)?;
    }
    Ok(residual)
}

/// One step of [`jacobi_pool`] from `old` into `new`;
/// returns the residual. A convergence loop calls it once per step, or [`jacobi_pool`] once
/// per batch of steps to publish fewer jobs.
///
/// # Errors
///
/// As for [`jacobi_pool`].
///
/// ```
/// use shmpool::SharedArray;
/// use shmpool_kernels::{GridDims, jacobi_step_pool};
/// let mut pool = shmpool::Pool::new(2)?;
/// let dims = GridDims::new(3, 3);
/// let old = SharedArray::<f64>::from_slice(&[0.0, 4.0, 0.0, 8.0, 1.0, 0.0, 0.0, 4.0, 0.0])?;
/// let mut new = SharedArray::<f64>::zeroed(9)?;
/// assert_eq!(jacobi_step_pool(&mut pool, &old, &mut new, dims)?, 3.0);
/// assert_eq!(new[4], 4.0);
/// # drop(pool);
/// # shmpool::process::shutdown_forkserver()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn jacobi_step_pool<T: Float>(
    pool: &mut Pool,
    old: &SharedArray<T>,
    new: &mut SharedArray<T>,
    dims: GridDims,
) -> Result<T, DriverError> {
    dims.check(old, new)?;
    let (h, w) = dims.get();
    if dims.is_empty() {
        return Ok(T::ZERO);
    }
    let residual = pool
        .job(dims)
        .input(old)?
        .output(new)?
        .shape(&[h, w])
        .stage_halo(1, step_in::<T>)
        .run_reduce(T::ZERO, T::max_nan)?;
    Ok(residual)
}
