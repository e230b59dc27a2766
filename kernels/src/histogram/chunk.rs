//! What one chunk computes: counts of its elements per bin of a [`Bins`], added to a counts
//! slice laid out as [`Bins::counts_len`] says. Counts are integers, so every driver and every
//! chunking gives the same histogram.

use thiserror::Error;

/// `n` equal bins over `[lo, hi)`: bin `i` holds the `x` with `edge(i) <= x < edge(i + 1)`,
/// where `edge(i) = lo + i * ((hi - lo) / n)` and `edge(n) = hi` (NumPy's `linspace` edges).
/// Elements below `lo`, at or above `hi`, and NaN are counted apart.
///
/// Inside `[lo, hi)` the bin of every element is NumPy's (`np.histogram(x, n, (lo, hi))`, which
/// computes it the same way: a multiply, then a correction against the edges); unlike NumPy,
/// `x == hi` is out of range (NumPy puts it in the last bin) and NaN is counted (NumPy drops it).
///
/// ```
/// use shmpool_kernels::histogram::chunk::Bins;
/// let bins = Bins::new(0.0, 1.0, 4)?;
/// assert_eq!(bins.edge(1), 0.25);
/// assert_eq!(bins.bin(0.3), Some(1));
/// assert_eq!(bins.bin(1.0), None);
/// # Ok::<(), shmpool_kernels::histogram::chunk::BinsError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Bins {
    lo: f64,
    hi: f64,
    /// `(hi - lo) / n`, NumPy's edge step.
    step: f64,
    /// `n / (hi - lo)`, NumPy's `norm`.
    norm: f64,
    n: u64,
}

/// Bins that cannot be made.
#[derive(Clone, Copy, Debug, Error, PartialEq)]
pub enum BinsError {
    /// No bins.
    #[error("a histogram needs at least one bin; pass n >= 1")]
    NoBins,
    /// The range is empty, reversed or not finite.
    #[error(
        "the histogram range [{lo}, {hi}) is empty, reversed or not finite; pass finite lo < hi"
    )]
    BadRange {
        /// Lower bound given.
        lo: f64,
        /// Upper bound given.
        hi: f64,
    },
}

/// Index in a counts slice of the elements below `lo`, after the `n` bins (`counts[n + BELOW]`).
///
/// ```
/// use shmpool_kernels::histogram::chunk::{ABOVE, BELOW, Bins, NAN, count};
/// let bins = Bins::new(0.0, 1.0, 3)?;
/// let mut c = vec![0; bins.counts_len()];
/// count(&bins, &[-1.0, 2.0, 2.0, f64::NAN], &mut c);
/// assert_eq!((c[3 + BELOW], c[3 + ABOVE], c[3 + NAN]), (1, 2, 1));
/// # Ok::<(), shmpool_kernels::histogram::chunk::BinsError>(())
/// ```
pub const BELOW: usize = 0;
/// Index, after the `n` bins, of the elements at or above `hi` (see [`BELOW`]).
///
/// ```
/// assert_eq!(shmpool_kernels::histogram::chunk::ABOVE, 1);
/// ```
pub const ABOVE: usize = 1;
/// Index, after the `n` bins, of the NaN elements (see [`BELOW`]).
///
/// ```
/// assert_eq!(shmpool_kernels::histogram::chunk::NAN, 2);
/// ```
pub const NAN: usize = 2;

impl Bins {
    /// `n` equal bins over `[lo, hi)`.
    ///
    /// # Errors
    ///
    /// [`BinsError::NoBins`] for `n == 0`; [`BinsError::BadRange`] unless `lo < hi`, both
    /// finite, with a finite width.
    ///
    /// ```
    /// use shmpool_kernels::histogram::chunk::{Bins, BinsError};
    /// assert_eq!(Bins::new(1.0, 1.0, 3), Err(BinsError::BadRange { lo: 1.0, hi: 1.0 }));
    /// ```
    pub fn new(lo: f64, hi: f64, n: usize) -> Result<Bins, BinsError> {
        if n == 0 {
            return Err(BinsError::NoBins);
        }
        if lo.is_nan() || hi.is_nan() || lo >= hi || !(hi - lo).is_finite() {
            return Err(BinsError::BadRange { lo, hi });
        }
        let width = hi - lo;
        Ok(Bins { lo, hi, step: width / n as f64, norm: n as f64 / width, n: n as u64 })
    }

    /// Number of bins.
    ///
    /// ```
    /// # use shmpool_kernels::histogram::chunk::Bins;
    /// assert_eq!(Bins::new(0.0, 1.0, 4)?.len(), 4);
    /// # Ok::<(), shmpool_kernels::histogram::chunk::BinsError>(())
    /// ```
    #[allow(clippy::len_without_is_empty)] // never empty: `new` refuses n == 0
    pub fn len(&self) -> usize {
        self.n as usize
    }

    /// Length of the counts slice [`count`] adds to: the `n` bins, then [`BELOW`], [`ABOVE`]
    /// and [`NAN`] (at `n + BELOW`, ...).
    ///
    /// ```
    /// # use shmpool_kernels::histogram::chunk::Bins;
    /// assert_eq!(Bins::new(0.0, 1.0, 4)?.counts_len(), 7);
    /// # Ok::<(), shmpool_kernels::histogram::chunk::BinsError>(())
    /// ```
    pub fn counts_len(&self) -> usize {
        self.len() + 3
    }

    /// The lower edge of bin `i` (`hi` for `i == n`).
    ///
    /// ```
    /// # use shmpool_kernels::histogram::chunk::Bins;
    /// let b = Bins::new(-1.0, 1.0, 4)?;
    /// assert_eq!((b.edge(0), b.edge(2), b.edge(4)), (-1.0, 0.0, 1.0));
    /// # Ok::<(), shmpool_kernels::histogram::chunk::BinsError>(())
    /// ```
    pub fn edge(&self, i: usize) -> f64 {
        if i as u64 >= self.n { self.hi } else { i as f64 * self.step + self.lo }
    }

    /// The bin of `x`; `None` below `lo`, at or above `hi`, or NaN.
    ///
    /// ```
    /// # use shmpool_kernels::histogram::chunk::Bins;
    /// let b = Bins::new(0.0, 1.0, 10)?;
    /// assert_eq!((b.bin(0.0), b.bin(0.99), b.bin(-0.1)), (Some(0), Some(9), None));
    /// # Ok::<(), shmpool_kernels::histogram::chunk::BinsError>(())
    /// ```
    pub fn bin(&self, x: f64) -> Option<usize> {
        let slot = self.slot(x);
        (slot < self.len()).then_some(slot)
    }

    /// The counts-slice index of `x`: its bin, or `n + BELOW`, `n + ABOVE`, `n + NAN`.
    #[inline(always)]
    fn slot(&self, x: f64) -> usize {
        let n = self.len();
        if x.is_nan() {
            return n + NAN;
        }
        if x < self.lo {
            return n + BELOW;
        }
        if x >= self.hi {
            return n + ABOVE;
        }
        // NumPy's rule: the multiply may be off by one near an edge; the edges decide.
        let mut i = (((x - self.lo) * self.norm) as usize).min(n - 1);
        if x < self.edge(i) {
            i -= 1;
        } else if i + 1 < n && x >= self.edge(i + 1) {
            i += 1;
        }
        i
    }
}

/// Adds the elements of `x` to `counts` (length [`Bins::counts_len`]): `counts[i]` for bin `i`,
/// then `counts[n + BELOW]`, `counts[n + ABOVE]`, `counts[n + NAN]`.
///
/// # Panics
///
/// If `counts` is shorter than [`Bins::counts_len`].
///
/// ```
/// use shmpool_kernels::histogram::chunk::{Bins, count};
/// let bins = Bins::new(0.0, 1.0, 2)?;
/// let mut counts = vec![0; bins.counts_len()];
/// count(&bins, &[0.1, 0.7, 0.8, -3.0, 1.0, f64::NAN], &mut counts);
/// assert_eq!(counts, [1, 2, 1, 1, 1]); // 2 bins, below, above, NaN
/// # Ok::<(), shmpool_kernels::histogram::chunk::BinsError>(())
/// ```
pub fn count(bins: &Bins, x: &[f64], counts: &mut [u64]) {
    let counts = &mut counts[..bins.counts_len()];
    for &v in x {
        counts[bins.slot(v)] += 1;
    }
}
