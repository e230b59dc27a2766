//! Array shapes: the N-D shape (C order, outer axis first) a [`SharedArray`](crate::SharedArray)
//! records in its segment, and, with the `ndarray` feature, N-D views of an array's row blocks.
//!
//! A shape has 1 to [`MAX_DIMS`] dimensions whose product is the array's length; a dimension of
//! 0 makes an empty array. The outer axis is the one shmpool chunks along: a *row* is one outer
//! index, [`row_len`](crate::SharedArray::row_len) elements long, so a chunk made of whole rows
//! is itself a C-order array of shape `[rows, shape[1..]...]`. With the `ndarray` feature,
//! `rows_view` and `rows_view_mut` view such a chunk (a slice a kernel is handed) as that
//! N-D array, and `SharedArray::view`/`view_mut` view a whole array.
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

/// A validated shape: 1..=MAX_DIMS dimensions whose non-zero ones multiply to at most
/// `isize::MAX` (NumPy's and ndarray's rule), so the product fits in `usize`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Shape {
    ndim: usize,
    dims: [usize; MAX_DIMS],
}

impl Shape {
    /// `dims` as a shape, or [`Error::InvalidShape`] when it has no dimension, more than
    /// [`MAX_DIMS`], or non-zero dimensions whose product exceeds `isize::MAX`.
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
        // As NumPy and ndarray: the axes that are not zero must multiply to at most isize::MAX,
        // even when another axis is zero and the array empty ([0, usize::MAX] is refused).
        let mut nonzero = dims.iter().filter(|&&d| d != 0);
        let fits = nonzero
            .try_fold(1usize, |p, &d| p.checked_mul(d))
            .filter(|&p| p <= isize::MAX as usize);
        if fits.is_none() {
            return Err(invalid(
                "the product of the non-zero dimensions exceeds isize::MAX: use a smaller shape"
                    .into(),
            ));
        }
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

/// The shape of a block of whole rows of an array of shape `shape`, `elems` long:
/// `[elems / row_len, shape[1..]...]`.
#[cfg(feature = "ndarray")]
fn rows_shape(elems: usize, shape: &[usize]) -> Result<Vec<usize>> {
    let s = Shape::new(shape)?;
    let row = s.row_len();
    let rows = match (elems, row) {
        (0, _) => 0,
        (_, 0) => usize::MAX, // never whole rows: refused below
        (n, r) => n / r,
    };
    if rows == usize::MAX || rows * row != elems {
        return Err(Error::InvalidShape {
            shape: shape.to_vec(),
            reason: format!(
                "a block of {elems} elements is not whole rows of {row} elements: chunk the \
                 array along its outer axis (chunk lengths that are multiples of row_len())"
            ),
        });
    }
    let mut dims = shape.to_vec();
    dims[0] = rows;
    Ok(dims)
}

/// A block of whole rows of an array of shape `shape` (a chunk a pool kernel is handed, or
/// part of [`SharedArray::as_slice`](crate::SharedArray::as_slice)) as an N-D view of shape
/// `[rows, shape[1..]...]`.
///
/// # Errors
///
/// [`Error::InvalidShape`] when `shape` is not a valid shape, or `rows` is not a whole number
/// of rows (`shape[1..]` multiplied).
///
/// ```
/// let img = shmpool::SharedArray::from_shape_fn(&[4, 2, 3], |ix| ix[0] as u8)?;
/// let block = &img[2 * img.row_len()..]; // rows 2 and 3
/// let v = shmpool::shape::rows_view(block, img.shape())?;
/// assert_eq!(v.shape(), &[2, 2, 3]);
/// assert_eq!(v[[1, 0, 0]], 3);
/// assert!(shmpool::shape::rows_view(&img[..5], img.shape()).is_err()); // not whole rows
/// # Ok::<(), shmpool::Error>(())
/// ```
#[cfg(feature = "ndarray")]
pub fn rows_view<'a, T>(rows: &'a [T], shape: &[usize]) -> Result<ndarray::ArrayViewD<'a, T>> {
    let dims = rows_shape(rows.len(), shape)?;
    Ok(ndarray::ArrayViewD::from_shape(dims, rows).expect("the dimensions multiply to the length"))
}

/// [`rows_view`], mutably: a block of whole rows as a writable N-D view.
///
/// # Errors
///
/// As [`rows_view`].
///
/// ```
/// let mut grid = shmpool::SharedArray::<f64>::zeroed_shape(&[4, 5])?;
/// let shape = grid.shape().to_vec();
/// let (top, bottom) = grid.split_at_mut(2 * 5);
/// shmpool::shape::rows_view_mut(bottom, &shape)?.index_axis_mut(ndarray::Axis(1), 0).fill(1.0);
/// # let _ = top;
/// assert_eq!(grid[2 * 5], 1.0);
/// assert_eq!(grid[5], 0.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[cfg(feature = "ndarray")]
pub fn rows_view_mut<'a, T>(
    rows: &'a mut [T],
    shape: &[usize],
) -> Result<ndarray::ArrayViewMutD<'a, T>> {
    let dims = rows_shape(rows.len(), shape)?;
    Ok(ndarray::ArrayViewMutD::from_shape(dims, rows)
        .expect("the dimensions multiply to the length"))
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

    /// An empty shape with a huge axis ([0, usize::MAX]) multiplies to 0, but NumPy and ndarray
    /// refuse any shape whose non-zero axes multiply past isize::MAX: accepted, it made `view`
    /// and `rows_view` panic on an array opened from a hostile header or reshaped in place.
    #[test]
    fn huge_axes_are_refused_even_when_another_is_zero() {
        let big = isize::MAX as usize;
        for bad in [&[0, usize::MAX][..], &[usize::MAX, 0], &[0, big, 2], &[big + 1], &[2, 0, big]]
        {
            assert!(matches!(Shape::new(bad), Err(Error::InvalidShape { .. })), "{bad:?}");
        }
        assert_eq!(Shape::new(&[0, big]).unwrap().len(), 0);
        assert_eq!(Shape::new(&[big]).unwrap().len(), big);
        let mut empty = crate::SharedArray::<u8>::zeroed(0).unwrap();
        assert!(empty.reshape(&[0, usize::MAX]).is_err());
        assert_eq!(empty.shape(), &[0]);
    }

    #[cfg(feature = "ndarray")]
    #[test]
    fn views_of_empty_and_one_row_arrays() {
        use crate::SharedArray;
        let mut empty = SharedArray::<f32>::zeroed(0).unwrap();
        empty.reshape(&[0, 3, 4]).unwrap();
        assert_eq!(empty.view().shape(), &[0, 3, 4]);
        assert_eq!(empty.view_mut().shape(), &[0, 3, 4]);
        assert!(empty.split_rows_mut(3).iter().all(|c| c.is_empty()));
        assert!(rows_view(&empty[..], &[0, usize::MAX]).is_err());
        let mut one = SharedArray::<u8>::zeroed_shape(&[1, 5]).unwrap();
        let parts = one.split_rows_mut(4);
        assert_eq!(parts.iter().map(|c| c.len()).collect::<Vec<_>>(), [5, 0, 0, 0]);
        assert_eq!(rows_view(&one[..], &[1, 5]).unwrap().shape(), &[1, 5]);
        let mut flat_rows = SharedArray::<u8>::zeroed_shape(&[4, 0]).unwrap();
        assert_eq!(flat_rows.split_rows_mut(2).iter().map(|c| c.len()).sum::<usize>(), 0);
        assert_eq!(flat_rows.view().shape(), &[4, 0]);
    }

    #[cfg(feature = "ndarray")]
    #[test]
    fn views_match_the_shape_and_refuse_partial_rows() {
        use crate::SharedArray;
        let mut a =
            SharedArray::from_shape_fn(&[3, 4, 2], |ix| (ix[0] * 100 + ix[1] * 10 + ix[2]) as i32)
                .unwrap();
        let v = a.view();
        assert_eq!(v.shape(), &[3, 4, 2]);
        assert!(v.indexed_iter().all(|(ix, &x)| x == (ix[0] * 100 + ix[1] * 10 + ix[2]) as i32));
        a.view_mut()[[2, 3, 1]] = -1;
        assert_eq!(a[a.len() - 1], -1);
        // Every block of whole rows views as [rows, 4, 2], starting at its first row.
        for (start, end) in [(0, 1), (1, 3), (0, 3), (2, 2)] {
            let r = a.row_len();
            let v = rows_view(&a[start * r..end * r], a.shape()).unwrap();
            assert_eq!(v.shape(), &[end - start, 4, 2]);
            if end > start {
                assert_eq!(v[[0, 1, 1]], (start * 100 + 11) as i32);
            }
        }
        let shape = a.shape().to_vec();
        rows_view_mut(&mut a[8..16], &shape).unwrap().fill(7);
        assert!(a[8..16].iter().all(|&x| x == 7) && a[7] != 7 && a[16] != 7);
        // Partial rows, bad shapes, zero-sized rows.
        for (len, shape) in [(5, &[3, 4, 2][..]), (9, &[3, 4, 2]), (3, &[][..]), (2, &[2, 0])] {
            let e = rows_view(&a[..len], shape).unwrap_err();
            assert!(matches!(e, Error::InvalidShape { .. }), "{e}");
        }
        assert_eq!(rows_view(&a[..0], &[5, 0]).unwrap().shape(), &[0, 0]);
        // A 1-D array's rows are its elements.
        assert_eq!(rows_view(&a[..5], &[24]).unwrap().shape(), &[5]);
    }
}
