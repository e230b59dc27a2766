//! Elementwise kernels over `f64` arrays (axpy, scale, clamp, fused multiply-add, polynomial):
//! the chunk kernels in [`chunk`], and drivers that run them on rayon or in a [`Pool`](shmpool::Pool)'s worker
//! processes.
//!
//! Each element's result depends on that element alone, so every driver, every chunking and
//! every number of workers or threads gives the same bits as the chunk kernel over the whole
//! array.

pub mod chunk;

use rayon::prelude::*;
use shmpool::{Error, Result};

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
