//! `gaussian_blur`: a separable Gaussian blur of any sigma, in place.

use super::sample::Sample;
use super::shape::Shape;

/// The normalized 1-D Gaussian kernel of `sigma`, `2r + 1` taps with `r = ceil(3 sigma)` (at
/// least 1): the taps beyond carry under 0.3% of the weight.
///
/// ```
/// let k = shmpool_kernels::imaging::gaussian_kernel(1.0);
/// assert_eq!(k.len(), 7);
/// assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// assert!(k[3] > k[2] && k[2] == k[4]);
/// ```
pub fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let sigma = sigma.max(1e-3);
    let r = ((3.0 * sigma).ceil() as usize).max(1);
    let mut k: Vec<f32> = (0..=2 * r)
        .map(|i| {
            let d = i as f32 - r as f32;
            (-d * d / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    k
}

/// Blurs an image of `shape` in place with a Gaussian of standard deviation `sigma` pixels:
/// rows, then columns, in `f32`, edges clamped (the border pixel repeats), every channel alike.
/// A `sigma` of 0 or less leaves the image as it is.
///
/// # Panics
///
/// If `px.len()` is not `shape.len()`.
///
/// ```
/// use shmpool_kernels::imaging::{Shape, gaussian_blur};
/// let mut px = [0u8, 0, 0, 255, 0, 0, 0];
/// gaussian_blur(&mut px, Shape::new(1, 7, 1), 1.0);
/// let total: u32 = px.iter().map(|&v| v as u32).sum();
/// assert!(total.abs_diff(255) <= 3); // spread out, rounded per pixel
/// assert!(px[3] < 255 && px[2] > 0 && px[2] == px[4]);
/// ```
pub fn gaussian_blur<T: Sample>(px: &mut [T], shape: Shape, sigma: f32) {
    assert_eq!(px.len(), shape.len(), "gaussian_blur: the buffer is not {shape}");
    if sigma <= 0.0 || shape.is_empty() {
        return;
    }
    let k = gaussian_kernel(sigma);
    let mut buf: Vec<f32> = px.iter().map(|v| v.to_f32()).collect();
    convolve(&mut buf, shape, &k);
    for (o, v) in px.iter_mut().zip(&buf) {
        *o = T::from_f32(v.clamp(0.0, T::MAX));
    }
}

/// Convolves `buf` (an image of `shape` in `f32`) with the separable kernel `k` along rows
/// and then columns, edges clamped.
pub(crate) fn convolve(buf: &mut [f32], shape: Shape, k: &[f32]) {
    let r = k.len() / 2;
    let (h, w, c) = (shape.h, shape.w, shape.c);
    let row_len = shape.row_len();
    // Rows: each row copied with `r` edge pixels repeated on either side, then one pass over
    // the row per tap, so the inner loop runs along contiguous samples.
    let mut padded = vec![0.0f32; (w + 2 * r) * c];
    for y in 0..h {
        let row = &mut buf[y * row_len..(y + 1) * row_len];
        for (p, px) in padded.chunks_exact_mut(c).enumerate() {
            let sx = p.saturating_sub(r).min(w - 1);
            px.copy_from_slice(&row[sx * c..(sx + 1) * c]);
        }
        row.iter_mut().for_each(|v| *v = 0.0);
        for (t, wgt) in k.iter().enumerate() {
            for (o, v) in row.iter_mut().zip(&padded[t * c..t * c + row_len]) {
                *o += wgt * v;
            }
        }
    }
    // Columns: a whole row of accumulators at a time, so the reads run along rows.
    let src = buf.to_vec();
    for y in 0..h {
        let out = &mut buf[y * row_len..(y + 1) * row_len];
        out.iter_mut().for_each(|v| *v = 0.0);
        for (t, wgt) in k.iter().enumerate() {
            let sy = (y + t).saturating_sub(r).min(h - 1);
            for (o, v) in out.iter_mut().zip(&src[sy * row_len..(sy + 1) * row_len]) {
                *o += wgt * v;
            }
        }
    }
}
