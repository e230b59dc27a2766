//! Brightness, contrast and gamma: per-sample tone curves, in place.

use super::sample::Sample;
use super::shape::Shape;

/// A tone adjustment, on samples scaled to `[0, 1]`; the result is clamped to `[0, 1]`.
///
/// ```
/// use shmpool_kernels::imaging::Tone;
/// assert_eq!(Tone::Brightness(0.1).apply(0.5), 0.6);
/// assert_eq!(Tone::Contrast(2.0).apply(0.75), 1.0);
/// assert_eq!(Tone::Gamma(1.0).apply(0.3), 0.3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tone {
    /// Adds the value (`-1` to `1`): `p + b`.
    Brightness(f32),
    /// Scales the distance from mid-gray: `(p - 0.5) * k + 0.5` (1 keeps the image).
    Contrast(f32),
    /// Gamma correction: `p^(1/g)` (above 1 brightens the mid-tones, 1 keeps the image).
    Gamma(f32),
}

impl Tone {
    /// The curve at `p`, a sample scaled to `[0, 1]`.
    ///
    /// ```
    /// use shmpool_kernels::imaging::Tone;
    /// assert_eq!(Tone::Gamma(2.0).apply(0.25), 0.5);
    /// ```
    pub fn apply(self, p: f32) -> f32 {
        let v = match self {
            Tone::Brightness(b) => p + b,
            Tone::Contrast(k) => (p - 0.5) * k + 0.5,
            Tone::Gamma(g) => p.max(0.0).powf(1.0 / g),
        };
        v.clamp(0.0, 1.0)
    }
}

/// Applies `tone` to every colour sample of an image of `shape` in place (alpha is kept). For
/// `u8` the curve is tabulated once.
///
/// # Panics
///
/// If `px.len()` is not `shape.len()`.
///
/// ```
/// use shmpool_kernels::imaging::{Shape, Tone, adjust};
/// let mut px = [100u8, 200, 255];
/// adjust(&mut px, Shape::new(1, 1, 3), Tone::Brightness(0.2));
/// assert_eq!(px, [151, 251, 255]);
/// ```
pub fn adjust<T: Sample>(px: &mut [T], shape: Shape, tone: Tone) {
    assert_eq!(px.len(), shape.len(), "adjust: the buffer is not {shape}");
    let curve = |v: T| T::from_f32(tone.apply(v.to_f32() / T::MAX) * T::MAX);
    // A u8 image: 256 evaluations instead of one per sample.
    let table: Option<Vec<T>> =
        (T::MAX == 255.0).then(|| (0..=255u8).map(|i| curve(T::from_f32(f32::from(i)))).collect());
    let colour = shape.colour_channels();
    for p in px.chunks_exact_mut(shape.c.max(1)) {
        for v in &mut p[..colour] {
            *v = match &table {
                Some(t) => t[v.to_f32() as usize],
                None => curve(*v),
            };
        }
    }
}
