//! `unsharp_mask`: sharpening by adding back the difference from a blur.

use super::blur::{blur_rows, gaussian_kernel};
use super::sample::Sample;
use super::shape::Shape;

/// Sharpens an image of `shape` in place: `p + amount * (p - blur(p))` where
/// `|p - blur(p)|` exceeds `threshold` (on the `[0, 1]` scale; 0 sharpens everything), the
/// blur a Gaussian of `sigma` ([`gaussian_blur`](super::gaussian_blur)'s; 0, less or NaN
/// leave the image as it is). Alpha is kept.
///
/// # Panics
///
/// If `px.len()` is not `shape.len()`.
///
/// ```
/// use shmpool_kernels::imaging::{Shape, unsharp_mask};
/// let mut px = [50u8, 50, 50, 200, 200, 200];
/// unsharp_mask(&mut px, Shape::new(1, 6, 1), 1.0, 1.0, 0.0);
/// assert!(px[2] < 50 && px[3] > 200); // the edge got steeper
/// ```
pub fn unsharp_mask<T: Sample>(
    px: &mut [T],
    shape: Shape,
    sigma: f32,
    amount: f32,
    threshold: f32,
) {
    assert_eq!(px.len(), shape.len(), "unsharp_mask: the buffer is not {shape}");
    // A NaN sigma leaves the image as it is, as 0 does (NaN taps zeroed it).
    if sigma.is_nan() || sigma <= 0.0 || shape.is_empty() {
        return;
    }
    let colour = shape.colour_channels();
    let limit = threshold * T::MAX;
    blur_rows(px, shape, &gaussian_kernel(sigma), |row, blurred| {
        for (p, b) in row.chunks_exact_mut(shape.c).zip(blurred.chunks_exact(shape.c)) {
            for (v, &bl) in p[..colour].iter_mut().zip(b) {
                // The blur is stored as the image's type would store it, as a blurred copy
                // would be.
                let bl = T::from_f32(bl.clamp(0.0, T::MAX)).to_f32();
                let diff = v.to_f32() - bl;
                if diff.abs() > limit {
                    *v = T::from_f32((v.to_f32() + amount * diff).clamp(0.0, T::MAX));
                }
            }
        }
    });
}
