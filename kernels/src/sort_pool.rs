//! The sample sort in a [`Pool`]: one kernel job of three groups of stages over the array and a
//! scratch array of the same length, published once per group (see [`crate::sort`]'s module
//! documentation for the steps).
//!
//! 1. `sort_runs`: every chunk of the array sorts itself in place (the runs).
//! 2. `merge_bucket`, a halo stage whose halo is the whole array: each chunk of the scratch
//!    array finds its bucket's splitters by rank in the runs and gathers and sorts its bucket.
//!    The halo makes it wait for every run, and lets it read all of them.
//! 3. `copy_back`, a halo stage (so it waits for every bucket): each chunk copies its bucket
//!    back into the array.

use shmpool::pool::Chunk;
use shmpool::{Pool, SharedArray};

use crate::sort::{SortKey, merge_ranks, run_len, sort_run};

/// The job's parameter block: the run length (the job's chunk size).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Runs {
    len: u64,
}

/// Step 1: the chunk of output 0 (the array) sorts itself.
fn sort_runs<T: SortKey>(c: &Chunk<Runs>) {
    sort_run(c.output::<T>(0));
}

/// Step 2: the chunk of output 1 (scratch) receives its bucket of the runs in output 0.
fn merge_bucket<T: SortKey>(c: &Chunk<Runs>) {
    let (runs, _) = c.output_halo::<T>(0);
    let run_len = c.params().len as usize;
    merge_ranks(runs, run_len, c.range().start, c.output::<T>(1));
}

/// Step 3: the chunk of output 0 (the array) takes back its sorted bucket from output 1.
fn copy_back<T: SortKey>(c: &Chunk<Runs>) {
    let (from, off) = c.output_halo::<T>(1);
    let to = c.output::<T>(0);
    let n = to.len();
    to.copy_from_slice(&from[off..off + n]);
}

/// Sorts `data` in place in the pool's workers under the total order of [`SortKey`] (floats by
/// [`f64::total_cmp`]); the result equals [`sort`](crate::sort)'s. Runs and buckets are the
/// job's chunks, two per worker (at least 4096 elements each, whatever the pool's chunk size:
/// every bucket merges a piece of every run, so fewer runs mean fewer merge passes); a scratch
/// array of the same length is created for the buckets. One job of three groups of stages: sort runs, merge buckets, copy back.
///
/// # Errors
///
/// The pool's: [`shmpool::Error::KernelPanicked`], [`shmpool::Error::WorkerDied`],
/// [`shmpool::Error::PoolNotRunning`], or an OS error creating the scratch array.
///
/// ```
/// let mut pool = shmpool::Pool::new(2)?;
/// let mut v = shmpool::SharedArray::<i64>::from_fn(100_000, |i| (i as i64 * 7919) % 1001 - 500)?;
/// shmpool_kernels::sort_pool(&mut pool, &mut v)?;
/// assert!(v.windows(2).all(|w| w[0] <= w[1]));
/// # drop(pool);
/// # shmpool::process::shutdown_forkserver()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn sort_pool<T: SortKey>(pool: &mut Pool, data: &mut SharedArray<T>) -> shmpool::Result<()> {
    let len = data.len();
    if len <= 1 {
        return Ok(());
    }
    let run = run_len(len, pool.workers());
    if run >= len {
        // One run: nothing to merge.
        return pool
            .job(Runs { len: len as u64 })
            .output(data)?
            .chunk_size(len)
            .stage(sort_runs::<T>)
            .run();
    }
    let mut scratch = SharedArray::<T>::zeroed(len)?;
    pool.job(Runs { len: run as u64 })
        .output(data)?
        .output(&mut scratch)?
        .chunk_size(run)
        .stage(sort_runs::<T>)
        .stage_halo(len, merge_bucket::<T>)
        .stage_halo(1, copy_back::<T>)
        .run()
}
