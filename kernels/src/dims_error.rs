//! What the matrix, grid and sort drivers report: arrays whose lengths do not fit the shape they
//! were given, or the pool's own errors.

use crate::matmul::MatDims;
use crate::stencil::GridDims;

/// Arrays whose lengths do not match the shape of the computation.
///
/// ```
/// use shmpool_kernels::{DimsError, GridDims};
/// let err = GridDims::new(3, 4).check(&[0.0f64; 12], &[0.0; 11]).unwrap_err();
/// assert!(matches!(err, DimsError::Grid { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DimsError {
    /// `A`, `B` or `C` of a product has the wrong number of elements.
    #[error(
        "a {}x{} times {}x{} product needs A, B and C of {} {} {} elements, got {lens:?}; \
         allocate them with MatDims::a_len, b_len and c_len",
        dims.m, dims.k, dims.k, dims.n, dims.a_len(), dims.b_len(), dims.c_len()
    )]
    Matmul {
        /// The shape asked for.
        dims: MatDims,
        /// The lengths of `A`, `B` and `C`.
        lens: [usize; 3],
    },
    /// A grid or its second buffer does not have `h * w` elements.
    #[error(
        "a {}x{} grid needs {} elements in each array, got {lens:?}; allocate both with \
         GridDims::len",
        dims.h, dims.w, dims.len()
    )]
    Grid {
        /// The shape asked for.
        dims: GridDims,
        /// The lengths of the grid and of its second buffer.
        lens: [usize; 2],
    },
}

/// The error of a parallel driver: the shape check before anything runs, or the pool.
///
/// ```
/// use shmpool_kernels::{DriverError, GridDims};
/// let err: DriverError = GridDims::new(3, 4).check(&[0.0f64; 12], &[0.0; 11]).unwrap_err().into();
/// assert!(matches!(err, DriverError::Dims(_)));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The arrays do not fit the shape; nothing ran.
    #[error(transparent)]
    Dims(#[from] DimsError),
    /// The pool failed to run a step (a kernel panicked, a worker died, the pool is closed).
    #[error(transparent)]
    Pool(#[from] shmpool::Error),
}
