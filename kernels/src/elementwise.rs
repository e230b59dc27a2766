//! Elementwise kernels over `f64` arrays (axpy, scale, clamp, fused multiply-add, polynomial):
//! the chunk kernels in [`chunk`], and drivers that run them on rayon or in a [`Pool`]'s worker
//! processes.
//!
//! Each element's result depends on that element alone, so every driver, every chunking and
//! every number of workers or threads gives the same bits as the chunk kernel over the whole
//! array.

pub mod chunk;

use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;
use shmpool::pool::Chunk;
use shmpool::{Error, Pool, Result, SharedArray};

/// `Err(LengthMismatch)` unless every length is the first.
pub(crate) fn same_len(lens: &[usize]) -> Result<()> {
    if lens.iter().all(|&n| n == lens[0]) {
        Ok(())
    } else {
        Err(Error::LengthMismatch { lens: lens.to_vec() })
    }
}

/// [`chunk::axpy`] on rayon's current pool, `chunk_size` elements per task.
///
/// # Errors
///
/// [`Error::LengthMismatch`] unless `x` and `y` have the same length (nothing is written).
///
/// ```
/// let mut y = vec![1.0; 1000];
/// shmpool_kernels::elementwise::axpy_rayon(2.0, &vec![3.0; 1000], &mut y, 64)?;
/// assert_eq!(y[999], 7.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn axpy_rayon(alpha: f64, x: &[f64], y: &mut [f64], chunk_size: usize) -> Result<()> {
    same_len(&[x.len(), y.len()])?;
    let c = chunk_size.max(1);
    y.par_chunks_mut(c).zip(x.par_chunks(c)).for_each(|(y, x)| chunk::axpy(alpha, x, y));
    Ok(())
}

/// [`chunk::scale`] on rayon's current pool, `chunk_size` elements per task.
///
/// ```
/// let mut x = vec![1.5; 1000];
/// shmpool_kernels::elementwise::scale_rayon(2.0, &mut x, 64);
/// assert_eq!(x[999], 3.0);
/// ```
pub fn scale_rayon(alpha: f64, x: &mut [f64], chunk_size: usize) {
    x.par_chunks_mut(chunk_size.max(1)).for_each(|x| chunk::scale(alpha, x));
}

/// [`chunk::clamp`] on rayon's current pool, `chunk_size` elements per task.
///
/// ```
/// let mut x: Vec<f64> = (0..1000).map(|i| i as f64).collect();
/// shmpool_kernels::elementwise::clamp_rayon(10.0, 20.0, &mut x, 64);
/// assert_eq!((x[0], x[15], x[999]), (10.0, 15.0, 20.0));
/// ```
pub fn clamp_rayon(lo: f64, hi: f64, x: &mut [f64], chunk_size: usize) {
    x.par_chunks_mut(chunk_size.max(1)).for_each(|x| chunk::clamp(lo, hi, x));
}

/// [`chunk::fma`] on rayon's current pool, `chunk_size` elements per task.
///
/// # Errors
///
/// [`Error::LengthMismatch`] unless the four slices have the same length (nothing is written).
///
/// ```
/// let (a, b, c) = (vec![2.0; 100], vec![3.0; 100], vec![1.0; 100]);
/// let mut out = vec![0.0; 100];
/// shmpool_kernels::elementwise::fma_rayon(&a, &b, &c, &mut out, 16)?;
/// assert_eq!(out[99], 7.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn fma_rayon(
    a: &[f64],
    b: &[f64],
    c: &[f64],
    out: &mut [f64],
    chunk_size: usize,
) -> Result<()> {
    same_len(&[a.len(), b.len(), c.len(), out.len()])?;
    let n = chunk_size.max(1);
    out.par_chunks_mut(n)
        .zip(a.par_chunks(n))
        .zip(b.par_chunks(n))
        .zip(c.par_chunks(n))
        .for_each(|(((o, a), b), c)| chunk::fma(a, b, c, o));
    Ok(())
}

/// [`chunk::polyval`] on rayon's current pool, `chunk_size` elements per task.
///
/// ```
/// let mut x = vec![2.0; 1000];
/// shmpool_kernels::elementwise::polyval_rayon(&[1.0, 0.0, -1.0], &mut x, 64); // x^2 - 1
/// assert_eq!(x[999], 3.0);
/// ```
pub fn polyval_rayon(coeffs: &[f64], x: &mut [f64], chunk_size: usize) {
    x.par_chunks_mut(chunk_size.max(1)).for_each(|x| chunk::polyval(coeffs, x));
}

/// The stage of [`axpy`]: input 0 is `x`, output 0 is `y`, the parameter `alpha`.
fn axpy_stage(c: &Chunk<f64>) {
    chunk::axpy(*c.params(), c.input::<f64>(0), c.output::<f64>(0));
}

/// `y = alpha * x + y` in the pool's workers ([`chunk::axpy`] per chunk, `alpha` in the job's
/// parameter block).
///
/// # Errors
///
/// [`Error::ShapeMismatch`] unless `x` and `y` have the same length (nothing is written); as
/// [`JobBuilder::run`](shmpool::pool::JobBuilder::run) otherwise.
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let x = shmpool::SharedArray::<f64>::from_fn(1000, |i| i as f64)?;
/// let mut y = shmpool::SharedArray::<f64>::from_fn(1000, |_| 1.0)?;
/// shmpool_kernels::elementwise::axpy(&mut pool, 2.0, &x, &mut y)?;
/// assert_eq!(y[10], 21.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn axpy(
    pool: &mut Pool,
    alpha: f64,
    x: &SharedArray<f64>,
    y: &mut SharedArray<f64>,
) -> Result<()> {
    pool.job(alpha).input(x)?.output(y)?.stage(axpy_stage).run()
}

/// The stage of [`scale`]: output 0 in place, the parameter `alpha`.
fn scale_stage(c: &Chunk<f64>) {
    chunk::scale(*c.params(), c.output::<f64>(0));
}

/// `x = alpha * x` in the pool's workers, in place ([`chunk::scale`] per chunk).
///
/// # Errors
///
/// As [`JobBuilder::run`](shmpool::pool::JobBuilder::run).
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let mut x = shmpool::SharedArray::<f64>::from_fn(1000, |i| i as f64)?;
/// shmpool_kernels::elementwise::scale(&mut pool, 0.5, &mut x)?;
/// assert_eq!(x[10], 5.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn scale(pool: &mut Pool, alpha: f64, x: &mut SharedArray<f64>) -> Result<()> {
    pool.job(alpha).output(x)?.stage(scale_stage).run()
}

/// The stage of [`clamp`]: output 0 in place, the parameters `[lo, hi]`.
fn clamp_stage(c: &Chunk<[f64; 2]>) {
    let [lo, hi] = *c.params();
    chunk::clamp(lo, hi, c.output::<f64>(0));
}

/// Clamps `x` into `[lo, hi]` in the pool's workers, in place ([`chunk::clamp`] per chunk, with
/// its NaN rules).
///
/// # Errors
///
/// As [`JobBuilder::run`](shmpool::pool::JobBuilder::run).
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let mut x = shmpool::SharedArray::<f64>::from_fn(1000, |i| i as f64)?;
/// shmpool_kernels::elementwise::clamp(&mut pool, 10.0, 20.0, &mut x)?;
/// assert_eq!((x[0], x[15], x[999]), (10.0, 15.0, 20.0));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn clamp(pool: &mut Pool, lo: f64, hi: f64, x: &mut SharedArray<f64>) -> Result<()> {
    pool.job([lo, hi]).output(x)?.stage(clamp_stage).run()
}

/// The stage of [`fma`]: inputs 0, 1, 2 are `a`, `b`, `c`, output 0 is `out`.
fn fma_stage(c: &Chunk<()>) {
    chunk::fma(c.input::<f64>(0), c.input::<f64>(1), c.input::<f64>(2), c.output::<f64>(0));
}

/// `out = a * b + c`, fused (one rounding), in the pool's workers ([`chunk::fma`] per chunk).
///
/// # Errors
///
/// [`Error::ShapeMismatch`] unless the four arrays have the same length (nothing is written);
/// as [`JobBuilder::run`](shmpool::pool::JobBuilder::run) otherwise.
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let a = shmpool::SharedArray::<f64>::from_fn(1000, |i| i as f64)?;
/// let b = shmpool::SharedArray::<f64>::from_fn(1000, |_| 2.0)?;
/// let c = shmpool::SharedArray::<f64>::from_fn(1000, |_| 1.0)?;
/// let mut out = shmpool::SharedArray::<f64>::zeroed(1000)?;
/// shmpool_kernels::elementwise::fma(&mut pool, &a, &b, &c, &mut out)?;
/// assert_eq!(out[10], 21.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn fma(
    pool: &mut Pool,
    a: &SharedArray<f64>,
    b: &SharedArray<f64>,
    c: &SharedArray<f64>,
    out: &mut SharedArray<f64>,
) -> Result<()> {
    pool.job(()).input(a)?.input(b)?.input(c)?.output(out)?.stage(fma_stage).run()
}

/// The most coefficients [`polyval`] carries in a job's parameter block (degree 31);
/// [`polyval_rayon`] and [`chunk::polyval`] take any number.
///
/// ```
/// assert_eq!(shmpool_kernels::elementwise::MAX_COEFFS, 32);
/// ```
pub const MAX_COEFFS: usize = 32;

/// The parameter block of [`polyval`]: the coefficients, highest degree first, and how many.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct Poly {
    coeffs: [f64; MAX_COEFFS],
    len: u64,
}

/// The stage of [`polyval`]: output 0 in place.
fn polyval_stage(c: &Chunk<Poly>) {
    let p = c.params();
    let n = (p.len as usize).min(MAX_COEFFS);
    chunk::polyval(&p.coeffs[..n], c.output::<f64>(0));
}

/// Evaluates the polynomial `coeffs` (highest degree first, as NumPy's `polyval`) at every
/// element of `x` in the pool's workers, in place ([`chunk::polyval`] per chunk; the
/// coefficients travel in the job's parameter block).
///
/// # Errors
///
/// [`Error::InvalidArgument`] for more than [`MAX_COEFFS`] coefficients; as
/// [`JobBuilder::run`](shmpool::pool::JobBuilder::run) otherwise.
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let mut x = shmpool::SharedArray::<f64>::from_fn(1000, |_| 2.0)?;
/// shmpool_kernels::elementwise::polyval(&mut pool, &[1.0, 0.0, -1.0], &mut x)?; // x^2 - 1
/// assert_eq!(x[999], 3.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn polyval(pool: &mut Pool, coeffs: &[f64], x: &mut SharedArray<f64>) -> Result<()> {
    if coeffs.len() > MAX_COEFFS {
        return Err(Error::InvalidArgument {
            what: "polynomial",
            reason: format!(
                "it has {} coefficients, more than the {MAX_COEFFS} a job carries; split it \
                 (p(x) = q(x) x^k + r(x)) or use polyval_rayon",
                coeffs.len()
            ),
        });
    }
    let mut p = Poly { coeffs: [0.0; MAX_COEFFS], len: coeffs.len() as u64 };
    p.coeffs[..coeffs.len()].copy_from_slice(coeffs);
    // Horner's rule: one multiply-add per coefficient and element, about 0.1 ns each on one
    // core (degree 16 over 4 Mi f64 in 6.9 ms), weighed by the pool's inline rule.
    pool.job(p).output(x)?.cost_per_element(coeffs.len() as f64 * 0.1).stage(polyval_stage).run()
}
