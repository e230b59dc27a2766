//! Prefix sums (inclusive and exclusive, as NumPy's `cumsum`) of `f64` arrays, in two passes:
//! 1. each chunk's total ([`crate::reduce::chunk::sum`]);
//! 2. the exclusive scan of the totals, in chunk order, in the caller: chunk `k`'s offset;
//! 3. each chunk's running sum from its offset ([`chunk::inclusive`], [`chunk::exclusive`]).
//!
//! Passes 1 and 3 run in parallel; in the pool ([`inclusive`], [`exclusive`]) they are two jobs,
//! the offsets travelling to the second in its parameter block. The result depends on the data and the chunk size only (the
//! order of every addition is fixed by them), so the drivers agree bit for bit at the same chunk
//! size; with a single chunk it is NumPy's `cumsum` bit for bit. Different chunk sizes round
//! differently in the last bits.

pub mod chunk;

use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;
use shmpool::pool::Chunk;
use shmpool::{Pool, Result, SharedArray};

use crate::elementwise::same_len;
use crate::reduce;

/// Which prefix sum: `out[i]` with or without `x[i]`.
///
/// ```
/// use shmpool_kernels::scan::{Scan, run_sequential};
/// let mut out = [0.0; 3];
/// run_sequential(Scan::Exclusive, &[1.0, 2.0, 3.0], &mut out, 8)?;
/// assert_eq!(out, [0.0, 1.0, 3.0]);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// `out[i] = x[0] + ... + x[i]` (NumPy's `cumsum`).
    Inclusive,
    /// `out[i] = x[0] + ... + x[i - 1]`, `out[0] = 0`.
    Exclusive,
}

impl Scan {
    /// The pass-3 kernel of this scan.
    fn kernel(self) -> fn(&[f64], f64, &mut [f64]) -> f64 {
        match self {
            Scan::Inclusive => chunk::inclusive,
            Scan::Exclusive => chunk::exclusive,
        }
    }
}

/// The offsets of pass 2: the exclusive scan of the chunk totals, left to right from 0.0.
pub(crate) fn offsets(totals: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut run = 0.0;
    totals
        .into_iter()
        .map(|t| {
            let o = run;
            run += t;
            o
        })
        .collect()
}

/// The prefix sum `scan` of `x` into `out`, in this thread, chunk by chunk (`chunk_size`
/// elements): the reference the parallel drivers equal bit for bit at the same chunk size.
///
/// # Errors
///
/// [`Error::LengthMismatch`](shmpool::Error::LengthMismatch) unless `x` and `out` have the
/// same length (nothing is written).
///
/// ```
/// use shmpool_kernels::scan::{Scan, run_sequential};
/// let mut out = [0.0; 5];
/// run_sequential(Scan::Inclusive, &[1.0, 2.0, 3.0, 4.0, 5.0], &mut out, 2)?;
/// assert_eq!(out, [1.0, 3.0, 6.0, 10.0, 15.0]);
/// run_sequential(Scan::Exclusive, &[1.0, 2.0, 3.0, 4.0, 5.0], &mut out, 2)?;
/// assert_eq!(out, [0.0, 1.0, 3.0, 6.0, 10.0]);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn run_sequential(scan: Scan, x: &[f64], out: &mut [f64], chunk_size: usize) -> Result<()> {
    same_len(&[x.len(), out.len()])?;
    let c = chunk_size.max(1);
    let offs = offsets(x.chunks(c).map(reduce::chunk::sum));
    for ((x, out), off) in x.chunks(c).zip(out.chunks_mut(c)).zip(offs) {
        scan.kernel()(x, off, out);
    }
    Ok(())
}

/// As [`run_sequential`], passes 1 and 3 on rayon's current pool, one task per chunk.
///
/// # Errors
///
/// As [`run_sequential`].
///
/// ```
/// use shmpool_kernels::scan::{Scan, run_rayon};
/// let x = vec![1.0; 1000];
/// let mut out = vec![0.0; 1000];
/// run_rayon(Scan::Inclusive, &x, &mut out, 64)?;
/// assert_eq!(out[999], 1000.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn run_rayon(scan: Scan, x: &[f64], out: &mut [f64], chunk_size: usize) -> Result<()> {
    same_len(&[x.len(), out.len()])?;
    let c = chunk_size.max(1);
    let totals: Vec<f64> = x.par_chunks(c).map(reduce::chunk::sum).collect();
    let offs = offsets(totals);
    let k = scan.kernel();
    out.par_chunks_mut(c).zip(x.par_chunks(c)).zip(offs).for_each(|((out, x), off)| {
        k(x, off, out);
    });
    Ok(())
}

/// The most chunks the pool drivers split an array into: the offsets of every chunk travel in
/// one job's parameter block, so [`pool_chunk_size`] never gives more.
///
/// ```
/// assert_eq!(shmpool_kernels::scan::MAX_POOL_CHUNKS, 256);
/// ```
pub const MAX_POOL_CHUNKS: usize = 256;

/// The chunk size the pool drivers use for `len` elements: the pool's own
/// ([`Pool::chunk_size_for`]`(len, 8)`), raised so there are at most [`MAX_POOL_CHUNKS`] chunks.
/// [`run_sequential`] at this chunk size gives the pool drivers' result bit for bit.
///
/// ```no_run
/// let pool = shmpool::Pool::new(2)?;
/// assert_eq!(shmpool_kernels::scan::pool_chunk_size(&pool, 1 << 20), 8192);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn pool_chunk_size(pool: &Pool, len: usize) -> usize {
    pool.chunk_size_for(len, 8).max(len.div_ceil(MAX_POOL_CHUNKS)).max(1)
}

/// Each chunk's total in its own slot (the others 0.0), so adding the partials in chunk order
/// gathers all the totals without rounding.
type Totals = [f64; MAX_POOL_CHUNKS];

/// The stage of pass 1: input 0's chunk total in slot `index`.
fn totals_stage(c: &Chunk<()>) {
    let mut t: Totals = [0.0; MAX_POOL_CHUNKS];
    t[c.index()] = crate::reduce::chunk::sum(c.input::<f64>(0));
    c.set_partial(t);
}

/// The parameter block of pass 3: every chunk's offset, and the scan (0 inclusive, 1 exclusive).
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct Offsets {
    offsets: [f64; MAX_POOL_CHUNKS],
    exclusive: u64,
}

/// The stage of pass 3: input 0's running sum from this chunk's offset into output 0.
fn offsets_stage(c: &Chunk<Offsets>) {
    let p = c.params();
    let scan = if p.exclusive == 1 { Scan::Exclusive } else { Scan::Inclusive };
    scan.kernel()(c.input::<f64>(0), p.offsets[c.index()], c.output::<f64>(0));
}

/// The prefix sum `scan` of `x` into `out` in the pool's workers, chunks of
/// [`pool_chunk_size`]: two jobs (the totals, then the running sums), the offsets computed in
/// between in the caller.
///
/// # Errors
///
/// [`Error::ShapeMismatch`](shmpool::Error::ShapeMismatch) unless `x` and `out` have the same
/// length (nothing is written); as [`JobBuilder::run`](shmpool::pool::JobBuilder::run)
/// otherwise.
///
/// ```no_run
/// use shmpool_kernels::scan::{Scan, run_pool};
/// let mut pool = shmpool::Pool::new(2)?;
/// let x = shmpool::SharedArray::<f64>::from_fn(1000, |_| 1.0)?;
/// let mut out = shmpool::SharedArray::<f64>::zeroed(1000)?;
/// run_pool(&mut pool, Scan::Exclusive, &x, &mut out)?;
/// assert_eq!((out[0], out[999]), (0.0, 999.0));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn run_pool(
    pool: &mut Pool,
    scan: Scan,
    x: &SharedArray<f64>,
    out: &mut SharedArray<f64>,
) -> Result<()> {
    if x.len() != out.len() {
        // Checked before pass 1, which sees only `x`.
        return Err(shmpool::Error::LengthMismatch { lens: vec![x.len(), out.len()] });
    }
    let c = pool_chunk_size(pool, x.len());
    let chunks = x.len().div_ceil(c);
    let totals = pool.job(()).input(x)?.chunk_size(c).stage(totals_stage).run_reduce(
        [0.0; MAX_POOL_CHUNKS],
        |mut a: Totals, b: Totals| {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
            a
        },
    )?;
    let mut p =
        Offsets { offsets: [0.0; MAX_POOL_CHUNKS], exclusive: u64::from(scan == Scan::Exclusive) };
    for (dst, o) in p.offsets.iter_mut().zip(offsets(totals[..chunks].iter().copied())) {
        *dst = o;
    }
    pool.job(p).input(x)?.output(out)?.chunk_size(c).stage(offsets_stage).run()
}

/// Inclusive prefix sum of `x` into `out` in the pool's workers ([`run_pool`] with
/// [`Scan::Inclusive`]).
///
/// # Errors
///
/// As [`run_pool`].
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let x = shmpool::SharedArray::<f64>::from_fn(1000, |i| i as f64)?;
/// let mut out = shmpool::SharedArray::<f64>::zeroed(1000)?;
/// shmpool_kernels::scan::inclusive(&mut pool, &x, &mut out)?;
/// assert_eq!(out[999], 499500.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn inclusive(pool: &mut Pool, x: &SharedArray<f64>, out: &mut SharedArray<f64>) -> Result<()> {
    run_pool(pool, Scan::Inclusive, x, out)
}

/// Exclusive prefix sum of `x` into `out` in the pool's workers ([`run_pool`] with
/// [`Scan::Exclusive`]).
///
/// # Errors
///
/// As [`run_pool`].
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let x = shmpool::SharedArray::<f64>::from_fn(1000, |i| i as f64)?;
/// let mut out = shmpool::SharedArray::<f64>::zeroed(1000)?;
/// shmpool_kernels::scan::exclusive(&mut pool, &x, &mut out)?;
/// assert_eq!(out[999], 498501.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn exclusive(pool: &mut Pool, x: &SharedArray<f64>, out: &mut SharedArray<f64>) -> Result<()> {
    run_pool(pool, Scan::Exclusive, x, out)
}
