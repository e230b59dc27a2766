//! `gaussian_blur`: a separable Gaussian blur of any sigma, in place.

use super::sample::Sample;
use super::shape::Shape;

/// The normalized 1-D Gaussian kernel of `sigma`, `2r + 1` taps with `r = ceil(3 sigma)` (at
/// least 1): the taps beyond carry under 0.3% of the weight. A `sigma` above 10,000 pixels
/// (or infinite) is taken as 10,000, so the kernel stays allocatable (60,001 taps); one below
/// 0.001 (or NaN) as 0.001 (three taps, all the weight in the middle one).
///
/// ```
/// let k = shmpool_kernels::imaging::gaussian_kernel(1.0);
/// assert_eq!(k.len(), 7);
/// assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// assert!(k[3] > k[2] && k[2] == k[4]);
/// ```
pub fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let sigma = if sigma.is_nan() { 1e-3 } else { sigma.clamp(1e-3, 1e4) };
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
/// A `sigma` of 0 or less (or NaN) leaves the image as it is.
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
    // NaN checked on its own: it is not `<= 0.0`, and its NaN taps zeroed the image.
    if sigma.is_nan() || sigma <= 0.0 || shape.is_empty() {
        return;
    }
    blur_rows(px, shape, &gaussian_kernel(sigma), |row, blurred| {
        for (o, &v) in row.iter_mut().zip(blurred) {
            *o = T::from_f32(v.clamp(0.0, T::MAX));
        }
    });
}

/// Convolves the image `px` of `shape` with the symmetric separable kernel `k` (odd length)
/// along rows and then columns, in `f32`, edges clamped, and hands each output row to
/// `store(row, blurred)` with `row` the image's own row, still unchanged, to overwrite.
///
/// It streams: each source row is converted and convolved along the row once, into a ring
/// of `k.len()` rows (in cache), and each output row is the column sum over that ring, taken
/// once the rows below it are in. Row `y` is stored only after every source row it needs
/// (up to `y + r`) was read, so the image can be overwritten in place. Both passes run over
/// whole rows (all channels at once, contiguous), folding the kernel's mirrored taps
/// (`k[t] * (a + b)`), so the inner loops vectorize: with AVX2 where the CPU has it (chosen
/// at run time, [`simd`](super::simd)), the same arithmetic in the same order either way, so
/// the result does not depend on the CPU.
pub(crate) fn blur_rows<T: Sample>(
    px: &mut [T],
    shape: Shape,
    k: &[f32],
    store: impl FnMut(&mut [T], &[f32]),
) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::has_avx2() {
        // SAFETY: `blur_rows_avx2` needs AVX2 only (its `target_feature`), and the CPU has it:
        // `has_avx2` asked it just above.
        return unsafe { blur_rows_avx2(px, shape, k, store) };
    }
    blur_rows_any(px, shape, k, store);
}

/// [`blur_rows_any`] compiled for AVX2 (8 `f32` lanes instead of SSE2's 4); no FMA, so the
/// results are bit for bit those of the baseline build.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn blur_rows_avx2<T: Sample>(
    px: &mut [T],
    shape: Shape,
    k: &[f32],
    store: impl FnMut(&mut [T], &[f32]),
) {
    blur_rows_any(px, shape, k, store);
}

/// [`blur_rows`] for any CPU, inlined into each instruction-set variant.
#[inline(always)]
fn blur_rows_any<T: Sample>(
    px: &mut [T],
    shape: Shape,
    k: &[f32],
    mut store: impl FnMut(&mut [T], &[f32]),
) {
    let (h, w, c) = (shape.h, shape.w, shape.c);
    let row_len = shape.row_len();
    if shape.is_empty() {
        return;
    }
    let r = k.len() / 2;
    // A ring of `taps` rows, or of every row when the image is shorter: then no row is
    // overwritten, and the ring never holds more than the image (a huge sigma allocates no
    // more than a small one on a short image).
    let taps = (2 * r + 1).min(h);
    let mut padded = vec![0.0f32; (w + 2 * r) * c];
    let mut ring = vec![0.0f32; taps * row_len];
    let mut out = vec![0.0f32; row_len];
    let slot = |sy: usize| (sy % taps) * row_len;
    let mut next = 0; // the next source row to bring into the ring
    for y in 0..h {
        let last = (y + r).min(h - 1);
        while next <= last {
            let src = &px[next * row_len..(next + 1) * row_len];
            let slot = &mut ring[(next % taps) * row_len..(next % taps + 1) * row_len];
            horizontal(src, c, k, &mut padded, slot);
            next += 1;
        }
        let row_of = |t: usize| (y + t).saturating_sub(r).min(h - 1);
        scale(&mut out, &ring[slot(y)..slot(y) + row_len], k[r]);
        for t in 0..r {
            let a = &ring[slot(row_of(t))..slot(row_of(t)) + row_len];
            let b = &ring[slot(row_of(2 * r - t))..slot(row_of(2 * r - t)) + row_len];
            add_pair(&mut out, a, b, k[t]);
        }
        store(&mut px[y * row_len..(y + 1) * row_len], &out);
    }
}

/// One source row `src` (of `c` channels) convolved with `k` along the row into `slot`,
/// through `padded` (the row converted to `f32` with `k.len() / 2` border pixels repeated on
/// each side).
///
/// A function, not a closure in [`blur_rows_any`]: a closure is compiled for the baseline
/// CPU even inside an AVX2 build (measured: this pass ran on 4-lane SSE2 in `blur_rows_avx2`,
/// 8% of a 100-file batch's samples).
#[inline(always)]
fn horizontal<T: Sample>(src: &[T], c: usize, k: &[f32], padded: &mut [f32], slot: &mut [f32]) {
    let row_len = src.len();
    let r = k.len() / 2;
    let (left, rest) = padded.split_at_mut(r * c);
    let (mid, right) = rest.split_at_mut(row_len);
    for (d, s) in mid.iter_mut().zip(src) {
        *d = s.to_f32();
    }
    for (d, s) in left.chunks_exact_mut(c).zip(std::iter::repeat(&src[..c])) {
        d.iter_mut().zip(s).for_each(|(d, s)| *d = s.to_f32());
    }
    for (d, s) in right.chunks_exact_mut(c).zip(std::iter::repeat(&src[row_len - c..])) {
        d.iter_mut().zip(s).for_each(|(d, s)| *d = s.to_f32());
    }
    scale(slot, &padded[r * c..r * c + row_len], k[r]);
    for t in 0..r {
        let a = &padded[t * c..t * c + row_len];
        let b = &padded[(2 * r - t) * c..(2 * r - t) * c + row_len];
        add_pair(slot, a, b, k[t]);
    }
}

/// `out = wgt * a`, element by element (the slices are as long as `out`).
#[inline(always)]
fn scale(out: &mut [f32], a: &[f32], wgt: f32) {
    for (o, x) in out.iter_mut().zip(a) {
        *o = wgt * x;
    }
}

/// `out += wgt * (a + b)`, element by element: a mirrored pair of taps (the slices are as
/// long as `out`).
// Indexed on purpose: the three-way `zip` of the same loop is not vectorized (measured: the
// blur took 25-40 ms on 640x480 RGB instead of 5), the indexed loop over slices cut to one
// length is.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn add_pair(out: &mut [f32], a: &[f32], b: &[f32], wgt: f32) {
    let (a, b) = (&a[..out.len()], &b[..out.len()]);
    for i in 0..out.len() {
        out[i] += wgt * (a[i] + b[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(shape: Shape) -> Vec<u8> {
        (0..shape.len()).map(|i| ((i.wrapping_mul(2_654_435_761)) >> 13) as u8).collect()
    }

    /// The AVX2 build and the baseline build compute the same bits (no FMA, same order), so a
    /// file's output does not depend on the CPU that ran it. Fails if a fused multiply-add or
    /// a reordered sum slips into one of them.
    #[test]
    fn avx2_and_baseline_blur_agree_bit_for_bit() {
        for shape in [Shape::new(37, 53, 3), Shape::new(5, 200, 4), Shape::new(64, 1, 1)] {
            for sigma in [0.6f32, 1.5, 4.0] {
                let k = gaussian_kernel(sigma);
                let (mut a, mut b) = (noisy(shape), noisy(shape));
                let (mut fa, mut fb) = (Vec::new(), Vec::new());
                blur_rows(&mut a, shape, &k, |_, bl| fa.extend_from_slice(bl));
                blur_rows_any(&mut b, shape, &k, |_, bl| fb.extend_from_slice(bl));
                assert_eq!(fa.len(), shape.len());
                let same = fa.iter().zip(&fb).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{shape} sigma {sigma}: the two builds differ");
            }
        }
    }

    /// Streaming through the ring of rows gives what a plain two-pass convolution gives, at
    /// every edge (images shorter and narrower than the kernel included).
    #[test]
    fn streamed_blur_matches_a_direct_convolution() {
        for shape in [Shape::new(9, 11, 3), Shape::new(2, 3, 1), Shape::new(1, 1, 2)] {
            let k = gaussian_kernel(1.5);
            let r = k.len() / 2;
            let src = noisy(shape);
            let (h, w, c) = (shape.h, shape.w, shape.c);
            let at = |y: usize, x: usize, ch: usize| f64::from(src[(y * w + x) * c + ch]);
            let clamp = |i: usize, t: usize, n: usize| (i + t).saturating_sub(r).min(n - 1);
            let mut got = src.clone();
            gaussian_blur(&mut got, shape, 1.5);
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..c {
                        let mut v = 0.0f64;
                        for (ty, ky) in k.iter().enumerate() {
                            for (tx, kx) in k.iter().enumerate() {
                                let s = at(clamp(y, ty, h), clamp(x, tx, w), ch);
                                v += f64::from(*ky) * f64::from(*kx) * s;
                            }
                        }
                        let g = f64::from(got[(y * w + x) * c + ch]);
                        assert!((g - v).abs() <= 0.51, "{shape} at {y},{x},{ch}: {g} vs {v}");
                    }
                }
            }
        }
    }

    /// A sigma of NaN (which `Op`'s parser refuses, but a caller can pass) leaves the image as
    /// it is, as 0 and negative ones do: it zeroed every sample (NaN taps, stored as 0), in
    /// blur and sharpen alike. `gaussian_kernel(NaN)` is the narrowest kernel, not NaNs.
    #[test]
    fn nan_zero_and_negative_sigma_leave_the_image_as_it_is() {
        let shape = Shape::new(5, 6, 3);
        for sigma in [f32::NAN, -f32::NAN, 0.0, -1.0, f32::NEG_INFINITY] {
            let mut px = noisy(shape);
            gaussian_blur(&mut px, shape, sigma);
            assert_eq!(px, noisy(shape), "blur sigma {sigma}");
            super::super::sharpen::unsharp_mask(&mut px, shape, sigma, 1.0, 0.0);
            assert_eq!(px, noisy(shape), "sharpen sigma {sigma}");
        }
        assert!(gaussian_kernel(f32::NAN).iter().all(|v| v.is_finite()));
    }

    /// An absurd sigma (infinite, taken as 10,000) on a small image finishes at once with a
    /// flat result inside the input's range, and no ring row past the image's height is
    /// allocated (it would be 60,001 rows).
    #[test]
    fn infinite_sigma_gives_a_flat_image_quickly() {
        let shape = Shape::new(3, 4, 2);
        let mut px = noisy(shape);
        let (lo, hi) = (*px.iter().min().unwrap(), *px.iter().max().unwrap());
        gaussian_blur(&mut px, shape, f32::INFINITY);
        for ch in 0..2 {
            let vals: Vec<u8> = px.iter().skip(ch).step_by(2).copied().collect();
            let (a, b) = (*vals.iter().min().unwrap(), *vals.iter().max().unwrap());
            assert!(a >= lo && b <= hi && b - a <= 1, "channel {ch}: {vals:?}");
        }
        assert_eq!(gaussian_kernel(f32::INFINITY).len(), 60_001);
    }
}
