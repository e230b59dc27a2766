//! Prefix sums (inclusive and exclusive, as NumPy's `cumsum`) of `f64` arrays, in two passes:
//! 1. each chunk's total ([`crate::reduce::chunk::sum`]);
//! 2. the exclusive scan of the totals, in chunk order, in the caller: chunk `k`'s offset;
//! 3. each chunk's running sum from its offset ([`chunk::inclusive`], [`chunk::exclusive`]).
//!
//! Passes 1 and 3 run in parallel. The result depends on the data and the chunk size only (the
//! order of every addition is fixed by them), so the drivers agree bit for bit at the same chunk
//! size; with a single chunk it is NumPy's `cumsum` bit for bit. Different chunk sizes round
//! differently in the last bits.

pub mod chunk;

use rayon::prelude::*;
use shmpool::Result;

use crate::elementwise::same_len;
use crate::reduce;

/// Which prefix sum: `out[i]` with or without `x[i]`.
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
