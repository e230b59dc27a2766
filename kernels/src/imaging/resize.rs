//! `resize`: separable resampling to a new width and height.

use super::error::ImageError;
use super::filter::{Filter, weights};
use super::image::Image;
use super::sample::Sample;
use super::shape::Shape;

/// `img` resampled to `w` x `h` pixels with `filter`: columns first, then rows, in `f32`,
/// rounded once at the end. Pixel centres are aligned (`(x + 0.5) * ratio`), edges clamp.
///
/// # Errors
///
/// [`ImageError::Empty`] if `img` or the size asked for has no pixel; [`ImageError::TooLarge`]
/// if the result cannot be allocated (a `1048576x1048576` resize asks for 3 TiB: the
/// allocation is tried, and its failure reported, instead of aborting the process).
///
/// ```
/// use shmpool_kernels::imaging::{Filter, Image, Shape, resize};
/// let img = Image::from_fn(Shape::new(4, 4, 1), |_, x, _| (x * 60) as u8);
/// let half = resize(&img, 2, 2, Filter::Bilinear)?;
/// assert_eq!(half.shape(), Shape::new(2, 2, 1));
/// assert!(half.as_slice()[0] < half.as_slice()[1]);
/// # Ok::<(), shmpool_kernels::imaging::ImageError>(())
/// ```
pub fn resize<T: Sample>(
    img: &Image<T>,
    w: usize,
    h: usize,
    filter: Filter,
) -> Result<Image<T>, ImageError> {
    let s = img.shape();
    if s.is_empty() || w == 0 || h == 0 {
        return Err(ImageError::Empty { op: "resize", shape: Shape::new(h, w, s.c) });
    }
    let too_large = || ImageError::TooLarge { op: "resize", w, h, c: s.c };
    let len = [w, s.c].into_iter().try_fold(h, usize::checked_mul).ok_or_else(too_large)?;
    let mut out = Vec::new();
    out.try_reserve_exact(len).map_err(|_| too_large())?;
    out.resize(len, T::default());
    resize_into(img.as_slice(), s, &mut out, w, h, filter);
    Image::from_vec(Shape::new(h, w, s.c), out)
}

/// [`resize`] of the image `src` (of shape `s`, not empty) into `out`, `w` x `h` pixels (at
/// least 1 each): the same code, on slices the caller owns (a shared array's images), so
/// nothing is copied or allocated but the weights.
///
/// # Panics
///
/// If `src` is not `s.len()` samples or `out` not `h * w * s.c`.
pub(crate) fn resize_into<T: Sample>(
    src: &[T],
    s: Shape,
    out: &mut [T],
    w: usize,
    h: usize,
    filter: Filter,
) {
    assert!(src.len() == s.len() && out.len() == h * w * s.c, "resize_into: wrong lengths");
    let rows = weights(filter, s.h, h);
    let cols = weights(filter, s.w, w);
    resample(src, s, &rows, &cols, out);
}

/// The resampling of `src` (of shape `s`) into `out` (`rows.len()` x `cols.len()` pixels),
/// with AVX2 where the CPU has it ([`simd`](super::simd)): the same arithmetic in the same
/// order either way, so the result does not depend on the CPU.
fn resample<T: Sample>(
    src: &[T],
    s: Shape,
    rows: &[(usize, Vec<f32>)],
    cols: &[(usize, Vec<f32>)],
    out: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::has_avx2() {
        // SAFETY: `resample_avx2` needs AVX2 only (its `target_feature`), and the CPU has it:
        // `has_avx2` asked it just above.
        return unsafe { resample_avx2(src, s, rows, cols, out) };
    }
    resample_any(src, s, rows, cols, out);
}

/// [`resample_any`] compiled for AVX2; no FMA, so the results are bit for bit the baseline's.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn resample_avx2<T: Sample>(
    src: &[T],
    s: Shape,
    rows: &[(usize, Vec<f32>)],
    cols: &[(usize, Vec<f32>)],
    out: &mut [T],
) {
    resample_any(src, s, rows, cols, out);
}

/// [`resample`] for any CPU, inlined into each instruction-set variant.
#[inline(always)]
fn resample_any<T: Sample>(
    src: &[T],
    s: Shape,
    rows: &[(usize, Vec<f32>)],
    cols: &[(usize, Vec<f32>)],
    out: &mut [T],
) {
    let c = s.c;
    let row_len = s.row_len();
    let w = cols.len();
    // One output row at a time: the weighted sum of its source rows into one `f32` row of the
    // source's width (contiguous, all channels at once, so it vectorizes; it stays in cache),
    // then that row resampled along x, with the channel count known to the compiler for the
    // common cases.
    //
    // `mid` (and `sums`, an output row's sums) have one more sample than a row: the fourth
    // lane of [`columns3`]'s last pixel.
    let mut mid = vec![0.0f32; row_len + 1];
    let mut sums = vec![0.0f32; if c == 3 { w * c + 1 } else { 0 }];
    for ((first, ws), dst) in rows.iter().zip(out.chunks_exact_mut(w * c)) {
        mid.iter_mut().for_each(|v| *v = 0.0);
        for (k, wgt) in ws.iter().enumerate() {
            let line = &src[(first + k) * row_len..(first + k + 1) * row_len];
            add_scaled(&mut mid[..row_len], line, *wgt);
        }
        match c {
            1 => columns::<T, 1>(&mid, cols, dst),
            2 => columns::<T, 2>(&mid, cols, dst),
            3 => columns3::<T>(&mid, cols, &mut sums, dst),
            4 => columns::<T, 4>(&mid, cols, dst),
            _ => columns_any::<T>(&mid, c, cols, dst),
        }
    }
}

/// `out += wgt * line`, element by element, `line` converted to `f32`.
// Indexed over slices cut to one length, the form the compiler vectorizes.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn add_scaled<T: Sample>(out: &mut [f32], line: &[T], wgt: f32) {
    let line = &line[..out.len()];
    for i in 0..out.len() {
        out[i] += wgt * line[i].to_f32();
    }
}

/// Resamples one `C`-channel row `line` along x: each output pixel of `dst` the weighted sum
/// of its input pixels, stored as `T`.
#[inline(always)]
fn columns<T: Sample, const C: usize>(line: &[f32], cols: &[(usize, Vec<f32>)], dst: &mut [T]) {
    for ((first, ws), px_out) in cols.iter().zip(dst.chunks_exact_mut(C)) {
        let mut acc = [0.0f32; C];
        let src = &line[first * C..(first + ws.len()) * C];
        for (wgt, px) in ws.iter().zip(src.chunks_exact(C)) {
            for ch in 0..C {
                acc[ch] += wgt * px[ch];
            }
        }
        for (o, a) in px_out.iter_mut().zip(acc) {
            *o = T::from_f32(a.clamp(0.0, T::MAX));
        }
    }
}

/// [`columns`] for 3 channels, each input pixel read as 4 lanes (the next pixel's first
/// sample, or `line`'s one extra sample, rides along in the fourth and is dropped), so the
/// compiler multiplies and adds a pixel in one vector operation instead of three scalar ones.
/// The sums go to `sums` as 4 lanes at a 3-sample stride (each pixel's fourth lane is
/// overwritten by the next pixel), and the row is stored from there in one pass the compiler
/// vectorizes. Each channel's sum is taken in the same order as [`columns`]', and clamped and
/// stored alike, so the bits are its bits (but for which NaN a NaN is: Rust does not fix it).
///
/// `line` and `sums` are one sample longer than their rows.
#[inline(always)]
fn columns3<T: Sample>(line: &[f32], cols: &[(usize, Vec<f32>)], sums: &mut [f32], dst: &mut [T]) {
    for (x, (first, ws)) in cols.iter().enumerate() {
        let mut acc = [0.0f32; 4];
        let src = &line[first * 3..first * 3 + ws.len() * 3 + 1];
        for (k, wgt) in ws.iter().enumerate() {
            let px: [f32; 4] = src[k * 3..k * 3 + 4].try_into().expect("4 samples");
            for ch in 0..4 {
                acc[ch] += wgt * px[ch];
            }
        }
        sums[x * 3..x * 3 + 4].copy_from_slice(&acc);
    }
    for (o, a) in dst.iter_mut().zip(sums) {
        *o = T::from_f32(a.clamp(0.0, T::MAX));
    }
}

/// [`columns`] for any channel count.
#[inline(always)]
fn columns_any<T: Sample>(line: &[f32], c: usize, cols: &[(usize, Vec<f32>)], dst: &mut [T]) {
    for ((first, ws), px_out) in cols.iter().zip(dst.chunks_exact_mut(c)) {
        px_out.iter_mut().enumerate().for_each(|(ch, o)| {
            let src = &line[first * c..(first + ws.len()) * c];
            let a: f32 = ws.iter().zip(src.chunks_exact(c)).map(|(wgt, px)| wgt * px[ch]).sum();
            *o = T::from_f32(a.clamp(0.0, T::MAX));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 build and the baseline build give the same bytes (no FMA, same order).
    #[test]
    fn avx2_and_baseline_resize_agree_bit_for_bit() {
        for (s, w, h) in [(Shape::new(77, 101, 3), 40, 31), (Shape::new(20, 30, 4), 67, 45)] {
            let src: Vec<u8> =
                (0..s.len()).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
            for filter in [Filter::Bilinear, Filter::Lanczos3] {
                let rows = weights(filter, s.h, h);
                let cols = weights(filter, s.w, w);
                let (mut a, mut b) = (vec![0u8; h * w * s.c], vec![0u8; h * w * s.c]);
                resample(&src, s, &rows, &cols, &mut a);
                resample_any(&src, s, &rows, &cols, &mut b);
                assert_eq!(a, b, "{s} -> {w}x{h} {filter:?}");
            }
        }
    }
    /// The 3-channel row pass that reads 4 lanes per pixel gives the bits of the one that
    /// reads 3 (any NaN counting as one), for `u8` and for `f32` with NaN, infinities,
    /// negative and over-range samples (the lane it drops must not leak into a pixel), down
    /// and up, both filters, widths 1 to 9 and a long row (the last pixel's fourth lane is the
    /// padding sample, a NaN).
    #[test]
    fn the_four_lane_rgb_row_pass_gives_the_three_lane_ones_bits() {
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -3.5, 1e30, 0.5, -0.0, 255.7];
        for src_w in [1, 2, 3, 5, 9, 301] {
            for w in [1, 2, 3, 4, 7, 640] {
                for filter in [Filter::Bilinear, Filter::Lanczos3] {
                    let cols = weights(filter, src_w, w);
                    let mut line: Vec<f32> = (0..src_w * 3)
                        .map(|i| ((i * 2_654_435_761usize) >> 7) as f32 % 300.0 - 20.0)
                        .collect();
                    line.push(f32::NAN); // the padding lane: must never be stored
                    let (mut want, mut got) = (vec![0u8; w * 3], vec![0u8; w * 3]);
                    let mut sums = vec![0.0f32; w * 3 + 1];
                    columns::<u8, 3>(&line, &cols, &mut want);
                    columns3::<u8>(&line, &cols, &mut sums, &mut got);
                    assert_eq!(want, got, "u8 {src_w} -> {w} {filter:?}");
                    for (i, v) in line.iter_mut().take(src_w * 3).enumerate() {
                        *v = if i % 5 == 0 { specials[i / 5 % specials.len()] } else { *v / 255.0 };
                    }
                    let (mut want, mut got) = (vec![0f32; w * 3], vec![0f32; w * 3]);
                    columns::<f32, 3>(&line, &cols, &mut want);
                    columns3::<f32>(&line, &cols, &mut sums, &mut got);
                    // Every bit but a NaN's sign and payload, which Rust leaves to the
                    // compiler (which operand of an add it keeps): any NaN is one value here.
                    let bits = |v: &[f32]| {
                        v.iter()
                            .map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() })
                            .collect::<Vec<_>>()
                    };
                    assert_eq!(bits(&want), bits(&got), "f32 {src_w} -> {w} {filter:?}");
                }
            }
        }
    }

    /// Degenerate sizes: 1x1, one row, one column, to 1x1 and to 65535x1, both filters, `u8`
    /// and `f32`. A flat image stays flat (the weights sum to 1 at every edge, none is NaN)
    /// and nothing indexes past a row.
    #[test]
    fn degenerate_sizes_resize_a_flat_image_to_a_flat_image() {
        let shapes = [Shape::new(1, 1, 3), Shape::new(1, 9, 1), Shape::new(9, 1, 4)];
        let sizes = [(1, 1), (65_535, 1), (1, 300), (2, 3)];
        for s in shapes {
            for (w, h) in sizes {
                for filter in [Filter::Bilinear, Filter::Lanczos3] {
                    let img = Image::from_vec(s, vec![77u8; s.len()]).unwrap();
                    let out = resize(&img, w, h, filter).unwrap();
                    assert_eq!(out.shape(), Shape::new(h, w, s.c));
                    assert!(out.as_slice().iter().all(|&v| v == 77), "{s} -> {w}x{h} {filter:?}");
                    let img = Image::from_vec(s, vec![0.25f32; s.len()]).unwrap();
                    let out = resize(&img, w, h, filter).unwrap();
                    let ok = out.as_slice().iter().all(|v| (v - 0.25).abs() < 1e-6);
                    assert!(ok, "{s} -> {w}x{h} {filter:?} (f32)");
                }
            }
        }
    }
    /// A resize past what an allocation can ask for (over `isize::MAX` bytes) or whose length
    /// overflows fails with [`ImageError::TooLarge`] instead of aborting the process (an
    /// `alloc` failure aborts, taking every in-process caller with it). Sizes under that which
    /// the system refuses (3 TiB under the default overcommit) fail the same way; they are not
    /// tried here, as a system that overcommits everything would grant them.
    #[test]
    fn an_absurd_size_is_an_error_not_an_abort() {
        let img = Image::from_vec(Shape::new(2, 2, 3), vec![9u8; 12]).unwrap();
        for (w, h) in [(1 << 31, 1 << 31), (usize::MAX, 2), (1 << 40, 1 << 40)] {
            let e = resize(&img, w, h, Filter::Bilinear).unwrap_err();
            assert!(matches!(e, ImageError::TooLarge { .. }), "{w}x{h}: {e}");
            assert!(e.to_string().contains("smaller size"), "{e}");
        }
    }
}
