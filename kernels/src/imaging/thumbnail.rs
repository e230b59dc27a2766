//! `thumbnail`: the largest size within a box that keeps the aspect ratio.

use super::error::ImageError;
use super::filter::Filter;
use super::image::Image;
use super::resize::resize;
use super::sample::Sample;
use super::shape::Shape;

/// The size `(w, h)` an image of `shape` takes in a `max_w` x `max_h` box, aspect ratio kept
/// (rounded, at least 1 pixel each way), never larger than the image.
///
/// ```
/// use shmpool_kernels::imaging::{Shape, thumbnail_size};
/// assert_eq!(thumbnail_size(Shape::new(768, 1024, 3), 128, 128), (128, 96));
/// assert_eq!(thumbnail_size(Shape::new(10, 10, 3), 128, 128), (10, 10));
/// ```
pub fn thumbnail_size(shape: Shape, max_w: usize, max_h: usize) -> (usize, usize) {
    let scale = (max_w as f64 / shape.w as f64).min(max_h as f64 / shape.h as f64).min(1.0);
    let w = ((shape.w as f64 * scale).round() as usize).clamp(1, max_w.max(1));
    let h = ((shape.h as f64 * scale).round() as usize).clamp(1, max_h.max(1));
    (w, h)
}

/// `img` scaled down to fit a `max_w` x `max_h` box ([`thumbnail_size`]), with the bilinear
/// filter widened over every source pixel it covers (area-averaging, no aliasing).
///
/// # Errors
///
/// [`ImageError::Empty`] for an empty image or box.
///
/// ```
/// use shmpool_kernels::imaging::{Image, Shape, thumbnail};
/// let img = Image::<u8>::zeroed(Shape::new(300, 400, 3));
/// assert_eq!(thumbnail(&img, 100, 100)?.shape(), Shape::new(75, 100, 3));
/// # Ok::<(), shmpool_kernels::imaging::ImageError>(())
/// ```
pub fn thumbnail<T: Sample>(
    img: &Image<T>,
    max_w: usize,
    max_h: usize,
) -> Result<Image<T>, ImageError> {
    let s = img.shape();
    if s.is_empty() || max_w == 0 || max_h == 0 {
        return Err(ImageError::Empty { op: "thumbnail", shape: s });
    }
    let (w, h) = thumbnail_size(s, max_w, max_h);
    resize(img, w, h, Filter::Bilinear)
}
