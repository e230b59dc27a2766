//! Rotations by quarter turns and mirror flips: exact, no resampling.

use super::image::Image;
use super::sample::Sample;
use super::shape::Shape;

/// A clockwise rotation by a multiple of 90 degrees.
///
/// ```
/// use shmpool_kernels::imaging::Rotation;
/// assert_eq!(Rotation::from_degrees(270), Some(Rotation::Cw270));
/// assert_eq!(Rotation::from_degrees(45), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rotation {
    /// A quarter turn clockwise.
    Cw90,
    /// A half turn.
    Cw180,
    /// Three quarter turns clockwise (a quarter turn anticlockwise).
    Cw270,
}

impl Rotation {
    /// The rotation of `deg` degrees clockwise, for 90, 180 and 270.
    ///
    /// ```
    /// use shmpool_kernels::imaging::Rotation;
    /// assert_eq!(Rotation::from_degrees(90), Some(Rotation::Cw90));
    /// ```
    pub fn from_degrees(deg: u32) -> Option<Rotation> {
        match deg {
            90 => Some(Rotation::Cw90),
            180 => Some(Rotation::Cw180),
            270 => Some(Rotation::Cw270),
            _ => None,
        }
    }
}

/// `img` rotated clockwise by `r`: a quarter turn swaps width and height.
///
/// ```
/// use shmpool_kernels::imaging::{Image, Rotation, Shape, rotate};
/// // 1 2 3        4 1
/// // 4 5 6   ->   5 2
/// //              6 3
/// let img = Image::from_vec(Shape::new(2, 3, 1), vec![1u8, 2, 3, 4, 5, 6])?;
/// assert_eq!(rotate(&img, Rotation::Cw90).as_slice(), &[4, 1, 5, 2, 6, 3]);
/// # Ok::<(), shmpool_kernels::imaging::ImageError>(())
/// ```
pub fn rotate<T: Sample>(img: &Image<T>, r: Rotation) -> Image<T> {
    let s = img.shape();
    let src = img.as_slice();
    let out_shape = match r {
        Rotation::Cw180 => s,
        Rotation::Cw90 | Rotation::Cw270 => Shape::new(s.w, s.h, s.c),
    };
    let mut out = Vec::with_capacity(s.len());
    for oy in 0..out_shape.h {
        for ox in 0..out_shape.w {
            let (y, x) = match r {
                Rotation::Cw90 => (s.h - 1 - ox, oy),
                Rotation::Cw180 => (s.h - 1 - oy, s.w - 1 - ox),
                Rotation::Cw270 => (ox, s.w - 1 - oy),
            };
            let i = s.index(y, x, 0);
            out.extend_from_slice(&src[i..i + s.c]);
        }
    }
    Image::from_vec(out_shape, out).expect("a rotation keeps the number of samples")
}

/// A mirror flip.
///
/// ```
/// use shmpool_kernels::imaging::Flip;
/// assert_ne!(Flip::Horizontal, Flip::Vertical);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flip {
    /// Left and right swap.
    Horizontal,
    /// Top and bottom swap.
    Vertical,
}

/// Flips an image of `shape` in place.
///
/// # Panics
///
/// If `px.len()` is not `shape.len()`.
///
/// ```
/// use shmpool_kernels::imaging::{Flip, Shape, flip};
/// let mut px = [1u8, 2, 3, 4, 5, 6];
/// flip(&mut px, Shape::new(2, 3, 1), Flip::Horizontal);
/// assert_eq!(px, [3, 2, 1, 6, 5, 4]);
/// flip(&mut px, Shape::new(2, 3, 1), Flip::Vertical);
/// assert_eq!(px, [6, 5, 4, 3, 2, 1]);
/// ```
pub fn flip<T: Sample>(px: &mut [T], shape: Shape, dir: Flip) {
    assert_eq!(px.len(), shape.len(), "flip: the buffer is not {shape}");
    let (row, c) = (shape.row_len(), shape.c);
    if row == 0 {
        return;
    }
    match dir {
        Flip::Horizontal => {
            for line in px.chunks_exact_mut(row) {
                for x in 0..shape.w / 2 {
                    let (l, r) = (x * c, (shape.w - 1 - x) * c);
                    for ch in 0..c {
                        line.swap(l + ch, r + ch);
                    }
                }
            }
        }
        Flip::Vertical => {
            for y in 0..shape.h / 2 {
                let (top, bottom) = px.split_at_mut((shape.h - 1 - y) * row);
                top[y * row..(y + 1) * row].swap_with_slice(&mut bottom[..row]);
            }
        }
    }
}
