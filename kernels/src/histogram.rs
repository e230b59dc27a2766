//! Histograms of `f64` arrays over equal bins ([`Bins`]): the chunk kernel in [`chunk`], and
//! drivers that run it on rayon or in a [`Pool`](shmpool::Pool)'s worker processes. Counts are integers, so
//! every driver and chunking gives the same histogram.

pub mod chunk;

use rayon::prelude::*;

pub use chunk::{Bins, BinsError};

/// Counts of the elements of an array per bin of a [`Bins`], and of those outside it.
///
/// ```
/// use shmpool_kernels::histogram::{Bins, Histogram};
/// let bins = Bins::new(0.0, 1.0, 2)?;
/// let h = Histogram::of(&bins, &[0.1, 0.7, 0.8, -3.0, 1.0, f64::NAN]);
/// assert_eq!(h.counts, [1, 2]);
/// assert_eq!((h.below, h.above, h.nan), (1, 1, 1));
/// assert_eq!(h.total(), 6);
/// # Ok::<(), shmpool_kernels::histogram::BinsError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Elements per bin.
    pub counts: Vec<u64>,
    /// Elements below the range's low end.
    pub below: u64,
    /// Elements at or above the range's high end.
    pub above: u64,
    /// NaN elements.
    pub nan: u64,
}

impl Histogram {
    /// The histogram of `x`, in this thread (one call of [`chunk::count`]).
    pub fn of(bins: &Bins, x: &[f64]) -> Histogram {
        let mut slots = vec![0; bins.counts_len()];
        chunk::count(bins, x, &mut slots);
        Histogram::from_slots(bins, &slots)
    }

    /// The histogram from a counts slice laid out as [`chunk::count`] fills it.
    ///
    /// ```
    /// use shmpool_kernels::histogram::{Bins, Histogram};
    /// let bins = Bins::new(0.0, 1.0, 2)?;
    /// let h = Histogram::from_slots(&bins, &[4, 5, 1, 2, 3]);
    /// assert_eq!((h.counts[1], h.nan), (5, 3));
    /// # Ok::<(), shmpool_kernels::histogram::BinsError>(())
    /// ```
    pub fn from_slots(bins: &Bins, slots: &[u64]) -> Histogram {
        let n = bins.len();
        Histogram {
            counts: slots[..n].to_vec(),
            below: slots[n + chunk::BELOW],
            above: slots[n + chunk::ABOVE],
            nan: slots[n + chunk::NAN],
        }
    }

    /// Every element counted: the bins, below, above and NaN.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.below + self.above + self.nan
    }
}

/// The histogram of `x` on rayon's current pool, `chunk_size` elements per task.
///
/// ```
/// use shmpool_kernels::histogram::{Bins, histogram_rayon};
/// let x: Vec<f64> = (0..1000).map(|i| i as f64 + 0.5).collect();
/// let h = histogram_rayon(&Bins::new(0.0, 1000.0, 10)?, &x, 64);
/// assert!(h.counts.iter().all(|&c| c == 100));
/// # Ok::<(), shmpool_kernels::histogram::BinsError>(())
/// ```
pub fn histogram_rayon(bins: &Bins, x: &[f64], chunk_size: usize) -> Histogram {
    let slots = x
        .par_chunks(chunk_size.max(1))
        .map(|c| {
            let mut s = vec![0; bins.counts_len()];
            chunk::count(bins, c, &mut s);
            s
        })
        .reduce(
            || vec![0; bins.counts_len()],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        );
    Histogram::from_slots(bins, &slots)
}
