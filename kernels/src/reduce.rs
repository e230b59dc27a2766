//! Reductions of `f64` arrays (sum, compensated sum, dot, min, max, argmin, argmax): the chunk
//! kernels in [`chunk`], and drivers that run them over a whole array sequentially, on rayon, or
//! in a [`Pool`]'s worker processes.
//!
//! # What is deterministic
//!
//! A reduction is computed in two levels, both in a fixed order:
//! 1. each chunk (a run of `chunk_size` consecutive elements; the last may be shorter) is reduced
//!    by its chunk kernel with 16 accumulators, element `i` of the chunk feeding lane `i % 16`,
//!    the lanes joined as a balanced binary tree in lane order (`l0+l1`, `l2+l3`, ..., then
//!    `(l0+l1)+(l2+l3)`, ...);
//! 2. the chunk partials are folded left to right, in chunk order, in the calling process,
//!    from the reduction's identity: `join(join(join(IDENTITY, p0), p1), p2)...`.
//!
//! So the result depends on the data and the chunk size only, never on the number of workers or
//! threads nor on which worker ran which chunk: [`run_sequential`], [`run_rayon`] and
//! [`run_pool`] return the same bits for the same chunk size. The pool chooses its chunk size
//! with [`Pool::chunk_size_for`]`(len, 8)`, which depends on the number of workers unless set
//! with [`Pool::set_chunk_size`]: set it to get results that do not change with the pool size.
//! Min, max, argmin and argmax are exact, so any chunking gives the same answer; sums and dots
//! differ between chunk sizes in the last bits.
//!
//! # Speed
//!
//! [`chunk::sum`] and [`chunk::dot`] run an AVX2 build of their lane loop where the CPU has it
//! (the same lanes in the same order, no fused multiply-add: the same bits as the baseline
//! build), reading data in cache 1.2-2x faster than the SSE2 build on one core; from memory one
//! core is bound by memory either way. `cargo bench -p shmpool-kernels --bench reduce` measures
//! them, sequentially, on rayon and in the pool, against the machine's read bandwidth and the same
//! reduction in C/OpenMP in the same run; `docs/kernels.md` has the method and the figures.
//!
//! ```no_run
//! use shmpool_kernels::reduce::{self, Sum};
//! let mut pool = shmpool::Pool::new(2)?;
//! let a = shmpool::SharedArray::<f64>::from_fn(1 << 20, |i| (i % 7) as f64)?;
//! let chunk = pool.chunk_size_for(a.len(), 8);
//! let s = reduce::sum(&mut pool, &a)?;
//! assert_eq!(s.to_bits(), reduce::run_sequential::<Sum>(&a, chunk).to_bits());
//! assert_eq!(s.to_bits(), reduce::run_rayon::<Sum>(&a, chunk).to_bits());
//! # Ok::<(), shmpool::Error>(())
//! ```

pub mod chunk;

use bytemuck::Pod;
use rayon::prelude::*;
use shmpool::pool::Chunk;
use shmpool::{Pool, Result, SharedArray};

use chunk::{Compensated, Extreme};

/// A reduction: its chunk kernel, how two partials join, and the answer from the last partial.
///
/// Implemented by [`Sum`], [`SumCompensated`], [`Min`], [`Max`], [`ArgMin`] and [`ArgMax`];
/// every driver ([`run_sequential`], [`run_rayon`], [`run_pool`]) takes one as a type parameter.
///
/// ```
/// use shmpool_kernels::reduce::{Max, Reduction};
/// let p = Max::join(Max::chunk(&[1.0, 5.0]), Max::chunk(&[3.0]));
/// assert_eq!(Max::finish(p, 3), Some(5.0));
/// ```
pub trait Reduction {
    /// What one chunk reduces to (plain data: it comes back from a worker as bytes).
    type Partial: Pod + Send;
    /// The answer.
    type Output;
    /// The partial of no elements, where every fold starts (`join(IDENTITY, p)` is `p`).
    const IDENTITY: Self::Partial;

    /// The chunk kernel: the partial of one chunk (of the empty chunk, for an empty array).
    fn chunk(a: &[f64]) -> Self::Partial;

    /// The partial of chunk `a` followed by chunk `b`.
    fn join(a: Self::Partial, b: Self::Partial) -> Self::Partial;

    /// The answer from the partial of the whole array of `len` elements.
    fn finish(p: Self::Partial, len: usize) -> Self::Output;
}

/// Sum ([`chunk::sum`]); 0.0 for an empty array, as NumPy's `sum`.
///
/// ```
/// use shmpool_kernels::reduce::{Sum, run_sequential};
/// assert_eq!(run_sequential::<Sum>(&[0.5; 10], 4), 5.0);
/// assert_eq!(run_sequential::<Sum>(&[], 4), 0.0);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Sum;

impl Reduction for Sum {
    type Partial = f64;
    type Output = f64;
    const IDENTITY: f64 = 0.0;
    fn chunk(a: &[f64]) -> f64 {
        chunk::sum(a)
    }
    fn join(a: f64, b: f64) -> f64 {
        a + b
    }
    fn finish(p: f64, _: usize) -> f64 {
        p
    }
}

/// Compensated sum ([`chunk::sum_compensated`]), partials joined with exact two-sums.
///
/// ```
/// use shmpool_kernels::reduce::{SumCompensated, run_sequential};
/// assert_eq!(run_sequential::<SumCompensated>(&[1e16, 1.0, -1e16], 2), 1.0);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SumCompensated;

impl Reduction for SumCompensated {
    type Partial = Compensated;
    type Output = f64;
    const IDENTITY: Compensated = Compensated::ZERO;
    fn chunk(a: &[f64]) -> Compensated {
        chunk::sum_compensated(a)
    }
    fn join(a: Compensated, b: Compensated) -> Compensated {
        a.join(b)
    }
    fn finish(p: Compensated, _: usize) -> f64 {
        p.value()
    }
}

/// Smallest element ([`chunk::min`]): NaN if any element is NaN, `None` for an empty array.
///
/// ```
/// use shmpool_kernels::reduce::{Min, run_sequential};
/// assert_eq!(run_sequential::<Min>(&[3.0, -2.0, 5.0], 2), Some(-2.0));
/// assert_eq!(run_sequential::<Min>(&[], 2), None);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Min;

impl Reduction for Min {
    type Partial = f64;
    type Output = Option<f64>;
    const IDENTITY: f64 = f64::INFINITY;
    fn chunk(a: &[f64]) -> f64 {
        chunk::min(a)
    }
    fn join(a: f64, b: f64) -> f64 {
        chunk::min_of(a, b)
    }
    fn finish(p: f64, len: usize) -> Option<f64> {
        (len > 0).then_some(p)
    }
}

/// Largest element ([`chunk::max`]): NaN if any element is NaN, `None` for an empty array.
///
/// ```
/// use shmpool_kernels::reduce::{Max, run_sequential};
/// assert!(run_sequential::<Max>(&[3.0, f64::NAN], 1).unwrap().is_nan());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Max;

impl Reduction for Max {
    type Partial = f64;
    type Output = Option<f64>;
    const IDENTITY: f64 = f64::NEG_INFINITY;
    fn chunk(a: &[f64]) -> f64 {
        chunk::max(a)
    }
    fn join(a: f64, b: f64) -> f64 {
        chunk::max_of(a, b)
    }
    fn finish(p: f64, len: usize) -> Option<f64> {
        (len > 0).then_some(p)
    }
}

/// `(index, value)` of the first smallest element, or of the first NaN ([`chunk::argmin`]);
/// `None` for an empty array.
///
/// ```
/// use shmpool_kernels::reduce::{ArgMin, run_sequential};
/// assert_eq!(run_sequential::<ArgMin>(&[3.0, 1.0, 1.0], 2), Some((1, 1.0)));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ArgMin;

impl Reduction for ArgMin {
    type Partial = Extreme;
    type Output = Option<(usize, f64)>;
    const IDENTITY: Extreme = Extreme::EMPTY;
    fn chunk(a: &[f64]) -> Extreme {
        chunk::argmin(a)
    }
    fn join(a: Extreme, b: Extreme) -> Extreme {
        a.join_min(b)
    }
    fn finish(p: Extreme, _: usize) -> Option<(usize, f64)> {
        (p.len > 0).then_some((p.index as usize, p.value))
    }
}

/// `(index, value)` of the first largest element, or of the first NaN ([`chunk::argmax`]);
/// `None` for an empty array.
///
/// ```
/// use shmpool_kernels::reduce::{ArgMax, run_sequential};
/// assert_eq!(run_sequential::<ArgMax>(&[3.0, 7.0, 7.0], 2), Some((1, 7.0)));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ArgMax;

impl Reduction for ArgMax {
    type Partial = Extreme;
    type Output = Option<(usize, f64)>;
    const IDENTITY: Extreme = Extreme::EMPTY;
    fn chunk(a: &[f64]) -> Extreme {
        chunk::argmax(a)
    }
    fn join(a: Extreme, b: Extreme) -> Extreme {
        a.join_max(b)
    }
    fn finish(p: Extreme, _: usize) -> Option<(usize, f64)> {
        (p.len > 0).then_some((p.index as usize, p.value))
    }
}

/// Folds partials in chunk order from [`Reduction::IDENTITY`], as every driver does.
fn fold<R: Reduction>(parts: impl IntoIterator<Item = R::Partial>, len: usize) -> R::Output {
    R::finish(parts.into_iter().fold(R::IDENTITY, R::join), len)
}

/// `R` over `a` in this thread, chunk by chunk (`chunk_size` elements, at least 1): the
/// reference the parallel drivers equal bit for bit at the same chunk size.
///
/// ```
/// use shmpool_kernels::reduce::{ArgMin, run_sequential};
/// assert_eq!(run_sequential::<ArgMin>(&[4.0, 2.0, 9.0, 2.0], 3), Some((1, 2.0)));
/// ```
pub fn run_sequential<R: Reduction>(a: &[f64], chunk_size: usize) -> R::Output {
    fold::<R>(a.chunks(chunk_size.max(1)).map(R::chunk), a.len())
}

/// `R` over `a` on rayon's current pool, one task per chunk of `chunk_size` elements, the
/// partials folded in chunk order in this thread (so the result equals [`run_sequential`]'s).
///
/// ```
/// use shmpool_kernels::reduce::{Sum, run_rayon};
/// assert_eq!(run_rayon::<Sum>(&[1.0; 1000], 64), 1000.0);
/// ```
pub fn run_rayon<R: Reduction>(a: &[f64], chunk_size: usize) -> R::Output {
    let parts: Vec<R::Partial> = a.par_chunks(chunk_size.max(1)).map(R::chunk).collect();
    fold::<R>(parts, a.len())
}

/// `R` over `a` in the pool's workers: a kernel job ([`Pool::job`]) whose stage runs
/// [`Reduction::chunk`] on each chunk (of [`Pool::chunk_size_for`]`(a.len(), 8)` elements,
/// unless the pool's chunk size is set), the partials folded in chunk order in the caller
/// ([`JobBuilder::run_reduce`](shmpool::pool::JobBuilder::run_reduce)).
///
/// # Errors
///
/// As [`JobBuilder::run_reduce`](shmpool::pool::JobBuilder::run_reduce): a worker that died, a
/// pool that is not running.
///
/// ```no_run
/// use shmpool_kernels::reduce::{Max, run_pool};
/// let mut pool = shmpool::Pool::new(2)?;
/// let a = shmpool::SharedArray::<f64>::from_fn(1000, |i| i as f64)?;
/// assert_eq!(run_pool::<Max>(&mut pool, &a)?, Some(999.0));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn run_pool<R: Reduction>(pool: &mut Pool, a: &SharedArray<f64>) -> Result<R::Output> {
    let p = pool.job(()).input(a)?.stage(reduce_stage::<R>).run_reduce(R::IDENTITY, R::join)?;
    Ok(R::finish(p, a.len()))
}

/// The stage of [`run_pool`]: the chunk kernel over input 0.
fn reduce_stage<R: Reduction>(c: &Chunk<()>) {
    c.set_partial(R::chunk(c.input::<f64>(0)));
}

/// The stage of [`dot`]: the chunk kernel over inputs 0 and 1.
fn dot_stage(c: &Chunk<()>) {
    c.set_partial(chunk::dot(c.input::<f64>(0), c.input::<f64>(1)));
}

/// Dot product of `a` and `b` in the pool's workers: [`chunk::dot`] per chunk, the partials
/// added in chunk order from 0.0 in the caller (bit for bit [`dot_sequential`] at the pool's
/// chunk size).
///
/// # Errors
///
/// [`Error::ShapeMismatch`](shmpool::Error::ShapeMismatch) unless `a` and `b` have the same
/// length; otherwise as [`run_pool`].
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let a = shmpool::SharedArray::<f64>::from_fn(1000, |_| 0.5)?;
/// assert_eq!(shmpool_kernels::reduce::dot(&mut pool, &a, &a)?, 250.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn dot(pool: &mut Pool, a: &SharedArray<f64>, b: &SharedArray<f64>) -> Result<f64> {
    pool.job(()).input(a)?.input(b)?.stage(dot_stage).run_reduce(0.0, |x, y| x + y)
}

/// Sum of `a` in the pool's workers ([`Sum`] through [`run_pool`]).
///
/// # Errors
///
/// As [`run_pool`].
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let a = shmpool::SharedArray::<f64>::from_fn(1000, |i| i as f64)?;
/// assert_eq!(shmpool_kernels::reduce::sum(&mut pool, &a)?, 499500.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn sum(pool: &mut Pool, a: &SharedArray<f64>) -> Result<f64> {
    run_pool::<Sum>(pool, a)
}

/// Compensated sum of `a` in the pool's workers ([`SumCompensated`] through [`run_pool`]).
///
/// # Errors
///
/// As [`run_pool`].
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let a = shmpool::SharedArray::<f64>::from_fn(3, |i| [1e16, 1.0, -1e16][i])?;
/// assert_eq!(shmpool_kernels::reduce::sum_compensated(&mut pool, &a)?, 1.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn sum_compensated(pool: &mut Pool, a: &SharedArray<f64>) -> Result<f64> {
    run_pool::<SumCompensated>(pool, a)
}

/// Smallest element of `a` in the pool's workers ([`Min`] through [`run_pool`]).
///
/// # Errors
///
/// As [`run_pool`].
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let a = shmpool::SharedArray::<f64>::from_fn(1000, |i| i as f64 - 5.0)?;
/// assert_eq!(shmpool_kernels::reduce::min(&mut pool, &a)?, Some(-5.0));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn min(pool: &mut Pool, a: &SharedArray<f64>) -> Result<Option<f64>> {
    run_pool::<Min>(pool, a)
}

/// Largest element of `a` in the pool's workers ([`Max`] through [`run_pool`]).
///
/// # Errors
///
/// As [`run_pool`].
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let a = shmpool::SharedArray::<f64>::from_fn(1000, |i| i as f64)?;
/// assert_eq!(shmpool_kernels::reduce::max(&mut pool, &a)?, Some(999.0));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn max(pool: &mut Pool, a: &SharedArray<f64>) -> Result<Option<f64>> {
    run_pool::<Max>(pool, a)
}

/// `(index, value)` of the first smallest element of `a` in the pool's workers ([`ArgMin`]
/// through [`run_pool`]).
///
/// # Errors
///
/// As [`run_pool`].
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let a = shmpool::SharedArray::<f64>::from_fn(1000, |i| (i as f64 - 600.0).abs())?;
/// assert_eq!(shmpool_kernels::reduce::argmin(&mut pool, &a)?, Some((600, 0.0)));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn argmin(pool: &mut Pool, a: &SharedArray<f64>) -> Result<Option<(usize, f64)>> {
    run_pool::<ArgMin>(pool, a)
}

/// `(index, value)` of the first largest element of `a` in the pool's workers ([`ArgMax`]
/// through [`run_pool`]).
///
/// # Errors
///
/// As [`run_pool`].
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let a = shmpool::SharedArray::<f64>::from_fn(1000, |i| -(i as f64 - 600.0).abs())?;
/// assert_eq!(shmpool_kernels::reduce::argmax(&mut pool, &a)?, Some((600, 0.0)));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn argmax(pool: &mut Pool, a: &SharedArray<f64>) -> Result<Option<(usize, f64)>> {
    run_pool::<ArgMax>(pool, a)
}

/// Dot product of `a` and `b` in this thread, chunk by chunk (`chunk_size` elements), the chunk
/// partials ([`chunk::dot`]) added in chunk order from 0.0: the reference the parallel drivers
/// equal bit for bit at the same chunk size.
///
/// # Errors
///
/// [`Error::LengthMismatch`](shmpool::Error::LengthMismatch) unless `a` and `b` have the same
/// length.
///
/// ```
/// let a: Vec<f64> = (0..100).map(f64::from).collect();
/// assert_eq!(shmpool_kernels::reduce::dot_sequential(&a, &a, 7)?, 328350.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn dot_sequential(a: &[f64], b: &[f64], chunk_size: usize) -> Result<f64> {
    crate::elementwise::same_len(&[a.len(), b.len()])?;
    let c = chunk_size.max(1);
    Ok(a.chunks(c).zip(b.chunks(c)).map(|(x, y)| chunk::dot(x, y)).fold(0.0, |s, p| s + p))
}

/// As [`dot_sequential`], one rayon task per chunk, the partials added in chunk order in this
/// thread.
///
/// # Errors
///
/// As [`dot_sequential`].
///
/// ```
/// let a = vec![0.5; 1000];
/// assert_eq!(shmpool_kernels::reduce::dot_rayon(&a, &a, 64)?, 250.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn dot_rayon(a: &[f64], b: &[f64], chunk_size: usize) -> Result<f64> {
    crate::elementwise::same_len(&[a.len(), b.len()])?;
    let c = chunk_size.max(1);
    let parts: Vec<f64> =
        a.par_chunks(c).zip(b.par_chunks(c)).map(|(x, y)| chunk::dot(x, y)).collect();
    Ok(parts.into_iter().fold(0.0, |s, p| s + p))
}
