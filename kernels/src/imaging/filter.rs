//! `Filter`: the reconstruction filters of [`resize`](super::resize), and the per-output-sample
//! weights a separable resampler takes from them.

/// A resampling filter. Downscaling widens it by the scale factor, so every source pixel
/// contributes (no aliasing); upscaling interpolates.
///
/// ```
/// use shmpool_kernels::imaging::Filter;
/// assert_eq!(Filter::Bilinear.support(), 1.0);
/// assert_eq!(Filter::Lanczos3.support(), 3.0);
/// assert_eq!("lanczos3".parse::<Filter>(), Ok(Filter::Lanczos3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    /// The triangle (tent) filter: bilinear interpolation.
    Bilinear,
    /// `sinc(x) * sinc(x / 3)` on `|x| < 3`: sharper, with slight ringing.
    Lanczos3,
}

impl Filter {
    /// The filter's radius, in source pixels, at scale 1.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::imaging::Filter::Bilinear.support(), 1.0);
    /// ```
    pub fn support(self) -> f32 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Lanczos3 => 3.0,
        }
    }

    /// The filter's weight at distance `x`.
    ///
    /// ```
    /// use shmpool_kernels::imaging::Filter;
    /// assert_eq!(Filter::Bilinear.weight(0.25), 0.75);
    /// assert_eq!(Filter::Lanczos3.weight(0.0), 1.0);
    /// ```
    pub fn weight(self, x: f32) -> f32 {
        let x = x.abs();
        match self {
            Filter::Bilinear => (1.0 - x).max(0.0),
            Filter::Lanczos3 if x < 3.0 => sinc(x) * sinc(x / 3.0),
            Filter::Lanczos3 => 0.0,
        }
    }
}

fn sinc(x: f32) -> f32 {
    if x == 0.0 {
        1.0
    } else {
        let a = x * std::f32::consts::PI;
        a.sin() / a
    }
}

impl std::str::FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Filter, String> {
        match s {
            "bilinear" | "triangle" | "linear" => Ok(Filter::Bilinear),
            "lanczos" | "lanczos3" => Ok(Filter::Lanczos3),
            _ => Err(format!("unknown filter `{s}`: give bilinear or lanczos3")),
        }
    }
}

/// For each of `dst` output samples along an axis of `src` input samples: the first input
/// index and the normalized weights of the inputs from there.
pub(crate) fn weights(filter: Filter, src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let ratio = src as f32 / dst as f32;
    let scale = ratio.max(1.0);
    let support = filter.support() * scale;
    (0..dst)
        .map(|o| {
            let centre = (o as f32 + 0.5) * ratio;
            let left = ((centre - support).floor().max(0.0) as usize).min(src - 1);
            let right = ((centre + support).ceil() as usize).clamp(left + 1, src);
            let mut ws: Vec<f32> =
                (left..right).map(|i| filter.weight((i as f32 - (centre - 0.5)) / scale)).collect();
            let sum: f32 = ws.iter().sum();
            if sum != 0.0 {
                ws.iter_mut().for_each(|w| *w /= sum);
            }
            (left, ws)
        })
        .collect()
}
