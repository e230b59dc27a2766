//! `sobel`: edge strength from the Sobel gradient of the luma.

use super::grayscale::grayscale;
use super::image::Image;
use super::sample::Sample;
use super::shape::Shape;

/// The edge strength of `img`: the magnitude `sqrt(gx^2 + gy^2)` of the 3x3 Sobel gradient of
/// its luma ([`grayscale`], alpha dropped), edges clamped, scaled by 1/4 so a full-range step
/// maps to full intensity, clamped; one channel.
///
/// ```
/// use shmpool_kernels::imaging::{Image, Shape, sobel};
/// let img = Image::from_fn(Shape::new(3, 4, 1), |_, x, _| if x < 2 { 0u8 } else { 255 });
/// let e = sobel(&img);
/// assert_eq!(e.shape(), Shape::new(3, 4, 1));
/// assert_eq!(e.pixel(1, 0), &[0]);
/// assert_eq!(e.pixel(1, 1), &[255]);
/// ```
pub fn sobel<T: Sample>(img: &Image<T>) -> Image<T> {
    let g = grayscale(img);
    let s = g.shape();
    let luma: Vec<f32> = g.as_slice().iter().step_by(s.c).map(|v| v.to_f32()).collect();
    let out_shape = Shape::new(s.h, s.w, 1);
    let at = |y: isize, x: isize| {
        let y = y.clamp(0, s.h as isize - 1) as usize;
        let x = x.clamp(0, s.w as isize - 1) as usize;
        luma[y * s.w + x]
    };
    let mut out = Vec::with_capacity(out_shape.len());
    for y in 0..s.h as isize {
        for x in 0..s.w as isize {
            let gx = (at(y - 1, x + 1) + 2.0 * at(y, x + 1) + at(y + 1, x + 1))
                - (at(y - 1, x - 1) + 2.0 * at(y, x - 1) + at(y + 1, x - 1));
            let gy = (at(y + 1, x - 1) + 2.0 * at(y + 1, x) + at(y + 1, x + 1))
                - (at(y - 1, x - 1) + 2.0 * at(y - 1, x) + at(y - 1, x + 1));
            let m = (gx * gx + gy * gy).sqrt() / 4.0;
            out.push(T::from_f32(m.clamp(0.0, T::MAX)));
        }
    }
    Image::from_vec(out_shape, out).expect("one sample per pixel")
}
