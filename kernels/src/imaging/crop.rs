//! `crop`: a rectangle of an image.

use super::error::ImageError;
use super::image::Image;
use super::sample::Sample;
use super::shape::Shape;

/// The `w` x `h` rectangle of `img` whose top-left pixel is `(x, y)`.
///
/// # Errors
///
/// [`ImageError::CropOutside`] if the rectangle reaches past the image,
/// [`ImageError::Empty`] if it has no pixel.
///
/// ```
/// use shmpool_kernels::imaging::{Image, Shape, crop};
/// let img = Image::from_fn(Shape::new(3, 3, 1), |y, x, _| (y * 3 + x) as u8);
/// assert_eq!(crop(&img, 1, 1, 2, 2)?.as_slice(), &[4, 5, 7, 8]);
/// # Ok::<(), shmpool_kernels::imaging::ImageError>(())
/// ```
pub fn crop<T: Sample>(
    img: &Image<T>,
    x: usize,
    y: usize,
    w: usize,
    h: usize,
) -> Result<Image<T>, ImageError> {
    let s = img.shape();
    if w == 0 || h == 0 {
        return Err(ImageError::Empty { op: "crop", shape: Shape::new(h, w, s.c) });
    }
    if x.checked_add(w).is_none_or(|r| r > s.w) || y.checked_add(h).is_none_or(|b| b > s.h) {
        return Err(ImageError::CropOutside { shape: s, x, y, w, h });
    }
    let src = img.as_slice();
    let mut out = Vec::with_capacity(w * h * s.c);
    for row in y..y + h {
        out.extend_from_slice(&src[s.index(row, x, 0)..s.index(row, x + w, 0)]);
    }
    Image::from_vec(Shape::new(h, w, s.c), out)
}
