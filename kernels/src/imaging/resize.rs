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
/// [`ImageError::Empty`] if `img` or the size asked for has no pixel.
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
    let src = img.as_slice();
    let c = s.c;
    // Rows: h output rows of the source's width, in f32.
    let rows = weights(filter, s.h, h);
    let mut mid = vec![0.0f32; h * s.w * c];
    let row_len = s.row_len();
    for (oy, (first, ws)) in rows.iter().enumerate() {
        let out = &mut mid[oy * row_len..(oy + 1) * row_len];
        for (k, wgt) in ws.iter().enumerate() {
            let line = &src[(first + k) * row_len..(first + k + 1) * row_len];
            for (o, v) in out.iter_mut().zip(line) {
                *o += wgt * v.to_f32();
            }
        }
    }
    // Columns, with the channel count known to the compiler for the common cases.
    let cols = weights(filter, s.w, w);
    let mut out = Vec::with_capacity(h * w * c);
    match c {
        1 => columns::<T, 1>(&mid, row_len, &cols, &mut out),
        2 => columns::<T, 2>(&mid, row_len, &cols, &mut out),
        3 => columns::<T, 3>(&mid, row_len, &cols, &mut out),
        4 => columns::<T, 4>(&mid, row_len, &cols, &mut out),
        _ => columns_any::<T>(&mid, row_len, c, &cols, &mut out),
    }
    Image::from_vec(Shape::new(h, w, c), out)
}

/// The column pass of `C`-channel rows of `row_len` samples: each output pixel the weighted
/// sum of its input pixels, stored as `T`.
fn columns<T: Sample, const C: usize>(
    mid: &[f32],
    row_len: usize,
    cols: &[(usize, Vec<f32>)],
    out: &mut Vec<T>,
) {
    for line in mid.chunks_exact(row_len) {
        for (first, ws) in cols {
            let mut acc = [0.0f32; C];
            let src = &line[first * C..(first + ws.len()) * C];
            for (wgt, px) in ws.iter().zip(src.chunks_exact(C)) {
                for ch in 0..C {
                    acc[ch] += wgt * px[ch];
                }
            }
            out.extend(acc.iter().map(|&a| T::from_f32(a.clamp(0.0, T::MAX))));
        }
    }
}

/// [`columns`] for any channel count.
fn columns_any<T: Sample>(
    mid: &[f32],
    row_len: usize,
    c: usize,
    cols: &[(usize, Vec<f32>)],
    out: &mut Vec<T>,
) {
    let mut acc = vec![0.0f32; c];
    for line in mid.chunks_exact(row_len) {
        for (first, ws) in cols {
            acc.iter_mut().for_each(|a| *a = 0.0);
            let src = &line[first * c..(first + ws.len()) * c];
            for (wgt, px) in ws.iter().zip(src.chunks_exact(c)) {
                for (a, v) in acc.iter_mut().zip(px) {
                    *a += wgt * v;
                }
            }
            out.extend(acc.iter().map(|&a| T::from_f32(a.clamp(0.0, T::MAX))));
        }
    }
}
