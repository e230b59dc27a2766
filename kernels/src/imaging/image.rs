//! `Image`: an owned `(h, w, c)` buffer of samples.

use super::error::ImageError;
use super::sample::Sample;
use super::shape::Shape;

/// An owned image: samples in a `Vec`, row-major, channels interleaved, with its [`Shape`].
///
/// ```
/// use shmpool_kernels::imaging::{Image, Shape};
/// let img = Image::from_vec(Shape::new(1, 2, 3), vec![1u8, 2, 3, 4, 5, 6])?;
/// assert_eq!(img.pixel(0, 1), &[4, 5, 6]);
/// # Ok::<(), shmpool_kernels::imaging::ImageError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Image<T> {
    shape: Shape,
    data: Vec<T>,
}

impl<T: Sample> Image<T> {
    /// An image of `shape` holding `data`.
    ///
    /// # Errors
    ///
    /// [`ImageError::Length`] if `data.len()` is not `shape.len()`.
    ///
    /// ```
    /// use shmpool_kernels::imaging::{Image, Shape};
    /// assert!(Image::from_vec(Shape::new(2, 2, 1), vec![0u8; 3]).is_err());
    /// ```
    pub fn from_vec(shape: Shape, data: Vec<T>) -> Result<Image<T>, ImageError> {
        if data.len() != shape.len() {
            return Err(ImageError::Length { shape, len: data.len() });
        }
        Ok(Image { shape, data })
    }

    /// An image of `shape` with every sample 0.
    ///
    /// ```
    /// use shmpool_kernels::imaging::{Image, Shape};
    /// assert_eq!(Image::<f32>::zeroed(Shape::new(2, 2, 3)).as_slice().len(), 12);
    /// ```
    pub fn zeroed(shape: Shape) -> Image<T> {
        Image { shape, data: vec![T::default(); shape.len()] }
    }

    /// An image of `shape` whose sample `(y, x, ch)` is `f(y, x, ch)`.
    ///
    /// ```
    /// use shmpool_kernels::imaging::{Image, Shape};
    /// let img = Image::from_fn(Shape::new(2, 2, 1), |y, x, _| (y * 2 + x) as u8);
    /// assert_eq!(img.as_slice(), &[0, 1, 2, 3]);
    /// ```
    pub fn from_fn(shape: Shape, mut f: impl FnMut(usize, usize, usize) -> T) -> Image<T> {
        let mut data = Vec::with_capacity(shape.len());
        for y in 0..shape.h {
            for x in 0..shape.w {
                for ch in 0..shape.c {
                    data.push(f(y, x, ch));
                }
            }
        }
        Image { shape, data }
    }

    /// The image's shape.
    ///
    /// ```
    /// use shmpool_kernels::imaging::{Image, Shape};
    /// assert_eq!(Image::<u8>::zeroed(Shape::new(2, 3, 1)).shape(), Shape::new(2, 3, 1));
    /// ```
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The samples.
    ///
    /// ```
    /// use shmpool_kernels::imaging::{Image, Shape};
    /// assert_eq!(Image::<u8>::zeroed(Shape::new(1, 1, 3)).as_slice(), &[0, 0, 0]);
    /// ```
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The samples, writable.
    ///
    /// ```
    /// use shmpool_kernels::imaging::{Image, Shape};
    /// let mut img = Image::<u8>::zeroed(Shape::new(1, 1, 1));
    /// img.as_mut_slice()[0] = 7;
    /// assert_eq!(img.as_slice(), &[7]);
    /// ```
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The samples, taken out.
    ///
    /// ```
    /// use shmpool_kernels::imaging::{Image, Shape};
    /// assert_eq!(Image::<u8>::zeroed(Shape::new(1, 2, 1)).into_vec(), vec![0, 0]);
    /// ```
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The `c` samples of pixel `(y, x)`.
    ///
    /// ```
    /// use shmpool_kernels::imaging::{Image, Shape};
    /// let img = Image::from_fn(Shape::new(2, 2, 2), |y, x, c| (y * 10 + x * 2 + c) as u8);
    /// assert_eq!(img.pixel(1, 1), &[12, 13]);
    /// ```
    pub fn pixel(&self, y: usize, x: usize) -> &[T] {
        let i = self.shape.index(y, x, 0);
        &self.data[i..i + self.shape.c]
    }
}
