//! Array shapes: the N-D shape (C order, outer axis first) a [`SharedArray`](crate::SharedArray)
//! records in its segment, and, with the `ndarray` feature, N-D views of an array's row blocks.
//!
//! A shape has 1 to [`MAX_DIMS`] dimensions whose product is the array's length; a dimension of
//! 0 makes an empty array. The outer axis is the one shmpool chunks along: a *row* is one outer
//! index, [`row_len`](crate::SharedArray::row_len) elements long, so a chunk made of whole rows
//! is itself a C-order array of shape `[rows, shape[1..]...]`.
//!
//! ```
//! let img = shmpool::SharedArray::<u8>::zeroed_shape(&[4, 6, 3])?;
//! assert_eq!((img.shape(), img.ndim(), img.row_len()), (&[4, 6, 3][..], 3, 18));
//! # Ok::<(), shmpool::Error>(())
//! ```

use crate::error::{Error, Result};

/// The most dimensions a shared array's shape can have (NumPy allows 64; shmpool's segment
/// header has room for 8, which covers images, volumes and batched tensors).
///
/// ```
/// let dims = [1usize; shmpool::shape::MAX_DIMS + 1];
/// assert!(shmpool::SharedArray::<u8>::zeroed_shape(&dims).is_err());
/// ```
pub const MAX_DIMS: usize = 8;

/// A validated shape: 1..=MAX_DIMS dimensions whose product fits in `usize`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Shape {
    ndim: usize,
    dims: [usize; MAX_DIMS],
}

impl Shape {
    /// `dims` as a shape, or [`Error::InvalidShape`] when it has no dimension, more than
    /// [`MAX_DIMS`], or a product that overflows `usize`.
    pub(crate) fn new(dims: &[usize]) -> Result<Shape> {
        let invalid = |reason: String| Error::InvalidShape { shape: dims.to_vec(), reason };
        if dims.is_empty() {
            return Err(invalid(
                "a shared array has at least one dimension: use [1] for a single element".into(),
            ));
        }
        if dims.len() > MAX_DIMS {
            return Err(invalid(format!(
                "{} dimensions, more than the {MAX_DIMS} a segment header records: merge \
                 adjacent axes (reshape) before sharing",
                dims.len()
            )));
        }
        dims.iter().try_fold(1usize, |p, &d| p.checked_mul(d)).ok_or_else(|| {
            invalid("the product of the dimensions overflows usize: use a smaller shape".into())
        })?;
        let mut all = [0; MAX_DIMS];
        all[..dims.len()].copy_from_slice(dims);
        Ok(Shape { ndim: dims.len(), dims: all })
    }

    /// The 1-D shape `[len]`.
    pub(crate) fn flat(len: usize) -> Shape {
        let mut dims = [0; MAX_DIMS];
        dims[0] = len;
        Shape { ndim: 1, dims }
    }

    /// The dimensions, outer first.
    pub(crate) fn dims(&self) -> &[usize] {
        &self.dims[..self.ndim]
    }

    /// Number of elements (the product of the dimensions; checked in [`Shape::new`]).
    pub(crate) fn len(&self) -> usize {
        self.dims().iter().product()
    }

    /// Elements per outer index: the product of every dimension but the first (1 for 1-D).
    pub(crate) fn row_len(&self) -> usize {
        self.dims()[1..].iter().product()
    }
}

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.dims().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_validate_and_measure() {
        let s = Shape::new(&[4, 6, 3]).unwrap();
        assert_eq!((s.dims(), s.len(), s.row_len()), (&[4, 6, 3][..], 72, 18));
        assert_eq!(Shape::flat(5).row_len(), 1);
        assert_eq!(Shape::new(&[3, 0, 2]).unwrap().len(), 0);
        for bad in [&[][..], &[1; MAX_DIMS + 1][..], &[usize::MAX, 2][..]] {
            assert!(matches!(Shape::new(bad), Err(Error::InvalidShape { .. })), "{bad:?}");
        }
    }
}
