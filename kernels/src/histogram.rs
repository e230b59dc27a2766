//! Histograms of `f64` arrays over equal bins ([`Bins`]): the chunk kernel in [`chunk`], and
//! drivers that run it on rayon or in a [`Pool`]'s worker processes. Counts are integers, so
//! every driver and chunking gives the same histogram.

pub mod chunk;

use rayon::prelude::*;
use shmpool::pool::Chunk;
use shmpool::{Error, Pool, Result, SharedArray};

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
    ///
    /// ```
    /// use shmpool_kernels::histogram::{Bins, Histogram};
    /// let h = Histogram::of(&Bins::new(0.0, 4.0, 4)?, &[0.5, 1.5, 1.7, 9.0]);
    /// assert_eq!((h.counts, h.above), (vec![1, 2, 0, 0], 1));
    /// # Ok::<(), shmpool_kernels::histogram::BinsError>(())
    /// ```
    pub fn of(bins: &Bins, x: &[f64]) -> Histogram {
        let mut slots = vec![0; bins.counts_len()];
        chunk::count(bins, x, &mut slots);
        Histogram::from_slots(bins, &slots)
    }

    /// The histogram from a counts slice laid out as [`chunk::count`] fills it.
    ///
    /// # Panics
    ///
    /// If `slots` is shorter than [`Bins::counts_len`].
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
    ///
    /// ```
    /// use shmpool_kernels::histogram::{Bins, Histogram};
    /// let h = Histogram::of(&Bins::new(0.0, 1.0, 2)?, &[0.5, -1.0, f64::NAN]);
    /// assert_eq!(h.total(), 3);
    /// # Ok::<(), shmpool_kernels::histogram::BinsError>(())
    /// ```
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

/// The most bins [`histogram`] counts in the pool (each chunk's counts come back as one
/// fixed-size partial); [`histogram_rayon`] and [`Histogram::of`] take any number.
///
/// ```
/// assert_eq!(shmpool_kernels::histogram::MAX_POOL_BINS, 256);
/// ```
pub const MAX_POOL_BINS: usize = 256;

/// One chunk's counts in the pool: the bins, then below, above and NaN.
type Slots = [u64; MAX_POOL_BINS + 3];

/// The stage of [`histogram`]: input 0 counted into this chunk's partial.
fn histogram_stage(c: &Chunk<Bins>) {
    let bins = c.params();
    let mut slots: Slots = [0; MAX_POOL_BINS + 3];
    chunk::count(bins, c.input::<f64>(0), &mut slots);
    c.set_partial(slots);
}

/// The histogram of `x` in the pool's workers: [`chunk::count`] per chunk into a partial, the
/// partials added in the caller (the `bins` travel in the job's parameter block).
///
/// # Errors
///
/// [`Error::InvalidArgument`] for more than [`MAX_POOL_BINS`] bins; as
/// [`JobBuilder::run_reduce`](shmpool::pool::JobBuilder::run_reduce) otherwise.
///
/// ```no_run
/// use shmpool_kernels::histogram::{Bins, histogram};
/// let mut pool = shmpool::Pool::new(2)?;
/// let x = shmpool::SharedArray::<f64>::from_fn(1000, |i| i as f64 + 0.5)?;
/// let h = histogram(&mut pool, &Bins::new(0.0, 1000.0, 10).unwrap(), &x)?;
/// assert!(h.counts.iter().all(|&c| c == 100));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn histogram(pool: &mut Pool, bins: &Bins, x: &SharedArray<f64>) -> Result<Histogram> {
    if bins.len() > MAX_POOL_BINS {
        return Err(Error::InvalidArgument {
            what: "histogram bins",
            reason: format!(
                "{} bins, more than the {MAX_POOL_BINS} the pool driver counts per chunk; use \
                 fewer bins or histogram_rayon",
                bins.len()
            ),
        });
    }
    let slots = pool.job(*bins).input(x)?.stage(histogram_stage).run_reduce(
        [0; MAX_POOL_BINS + 3],
        |mut a: Slots, b: Slots| {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
            a
        },
    )?;
    // `count` filled the first `counts_len` slots: the bins, below, above, NaN.
    Ok(Histogram::from_slots(bins, &slots[..bins.counts_len()]))
}
