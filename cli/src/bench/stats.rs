//! Robust statistics over one cell's timed rounds: median, quartiles, MAD and outliers.

use serde::{Deserialize, Serialize};

/// How far from the median (in MADs) a round is flagged as an outlier.
pub(crate) const OUTLIER_MADS: f64 = 3.0;

/// The spread of one cell's rounds, in seconds per round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Summary {
    /// Timed rounds.
    pub(crate) rounds: usize,
    /// The median.
    pub(crate) median: f64,
    /// The fastest round.
    pub(crate) min: f64,
    /// The slowest round.
    pub(crate) max: f64,
    /// First quartile (linear interpolation between order statistics).
    pub(crate) q1: f64,
    /// Third quartile.
    pub(crate) q3: f64,
    /// Median absolute deviation from the median (unscaled).
    pub(crate) mad: f64,
    /// Indices (in round order) of rounds more than [`OUTLIER_MADS`] MADs from the median.
    pub(crate) outliers: Vec<usize>,
}

/// The `p` quantile (0..=1) of sorted samples, interpolating linearly between order statistics
/// (R's type 7, NumPy's default).
pub(crate) fn quantile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

/// The median: the mean of the two middle samples when their count is even.
pub(crate) fn median(samples: &[f64]) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

/// Summarizes samples; `None` when there are none.
pub(crate) fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let med = quantile(&sorted, 0.5);
    let deviations: Vec<f64> = samples.iter().map(|x| (x - med).abs()).collect();
    let mad = median(&deviations);
    let outliers = if mad > 0.0 {
        deviations
            .iter()
            .enumerate()
            .filter(|&(_, d)| *d > OUTLIER_MADS * mad)
            .map(|(i, _)| i)
            .collect()
    } else {
        Vec::new()
    };
    Some(Summary {
        rounds: samples.len(),
        median: med,
        min: sorted[0],
        max: sorted[sorted.len() - 1],
        q1: quantile(&sorted, 0.25),
        q3: quantile(&sorted, 0.75),
        mad,
        outliers,
    })
}
