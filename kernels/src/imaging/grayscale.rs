//! `grayscale`: luma from colour, alpha kept.

use super::image::Image;
use super::sample::Sample;
use super::shape::Shape;

/// The luma of `img` (Rec. 709: `0.2126 R + 0.7152 G + 0.0722 B`), one channel, or two with
/// alpha kept; a gray image comes back as it is.
///
/// ```
/// use shmpool_kernels::imaging::{Image, Shape, grayscale};
/// let img = Image::from_vec(Shape::new(1, 2, 3), vec![255u8, 255, 255, 0, 255, 0])?;
/// let g = grayscale(&img);
/// assert_eq!((g.shape(), g.as_slice()), (Shape::new(1, 2, 1), &[255u8, 182][..]));
/// # Ok::<(), shmpool_kernels::imaging::ImageError>(())
/// ```
pub fn grayscale<T: Sample>(img: &Image<T>) -> Image<T> {
    let s = img.shape();
    if s.colour_channels() < 3 {
        return img.clone();
    }
    let alpha = s.has_alpha();
    let out_shape = Shape::new(s.h, s.w, if alpha { 2 } else { 1 });
    let mut out = Vec::with_capacity(out_shape.len());
    for px in img.as_slice().chunks_exact(s.c) {
        let y = 0.2126 * px[0].to_f32() + 0.7152 * px[1].to_f32() + 0.0722 * px[2].to_f32();
        out.push(T::from_f32(y.clamp(0.0, T::MAX)));
        if alpha {
            out.push(px[3]);
        }
    }
    Image::from_vec(out_shape, out).expect("one or two samples per pixel")
}
