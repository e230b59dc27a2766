//! `BatchError`: what running a [`Pipeline`](super::super::Pipeline) on shared image arrays
//! reports.

use super::super::error::ImageError;

/// A batch that cannot run, or that failed in the pool.
///
/// ```
/// use shmpool::SharedArray;
/// use shmpool_kernels::imaging::batch::{self, BatchError};
/// let flat = SharedArray::<u8>::zeroed(12)?;
/// let e = batch::output_shape(&"flip=h".parse()?, flat.shape()).unwrap_err();
/// assert!(matches!(e, BatchError::NotImages { .. }));
/// assert!(e.to_string().contains("zeroed_shape"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The array is not shaped `(h, w, c)` or `(n, h, w, c)` with every dimension at least 1.
    #[error(
        "images must be an array of shape (h, w, c) or (n, h, w, c) with every dimension at \
         least 1, not {shape:?}; create it with SharedArray::zeroed_shape(&[h, w, c]) (or \
         [n, h, w, c] for a batch of same-sized images), or reshape it"
    )]
    NotImages {
        /// The array's shape.
        shape: Vec<usize>,
    },
    /// The images have a channel count other than 1, 3 or 4.
    #[error("images have {c} channels; give 1 (gray), 3 (RGB) or 4 (RGBA) as the last dimension")]
    Channels {
        /// The channel count found.
        c: usize,
    },
    /// An operation cannot run on the images it would get (a crop outside them, an empty size).
    #[error("operation {index} (`{op}`) cannot run on these images: {source}")]
    Op {
        /// Its position in the pipeline, from 0.
        index: usize,
        /// The operation, as text.
        op: String,
        /// What the operation reports.
        source: ImageError,
    },
    /// An operation would make images of more samples than an address space holds.
    #[error(
        "operation {index} (`{op}`) would make {shape:?} samples, more than memory can hold; \
         give smaller sizes"
    )]
    TooLarge {
        /// Its position in the pipeline, from 0.
        index: usize,
        /// The operation, as text.
        op: String,
        /// The `(n, h, w, c)` it would make.
        shape: Vec<usize>,
    },
    /// The output array's shape is not the one the pipeline makes.
    #[error(
        "the output array has shape {found:?}, but the pipeline makes {expected:?}; create it \
         with the shape batch::output_shape returns (or call batch::apply, which does)"
    )]
    OutputShape {
        /// The output array's shape.
        found: Vec<usize>,
        /// The shape the pipeline makes.
        expected: Vec<usize>,
    },
    /// An in-place run was asked of a pipeline that changes the images' shape.
    #[error(
        "the pipeline turns {from:?} images into {to:?}, so it cannot run in place; use \
         batch::apply or batch::apply_into with an output of batch::output_shape"
    )]
    NotInPlace {
        /// The images' shape.
        from: Vec<usize>,
        /// The shape the pipeline makes.
        to: Vec<usize>,
    },
    /// The pipeline has more operations than one job's parameter block holds.
    #[error(
        "the pipeline has {count} operations, a batch runs at most {max}; split it into \
         pipelines of at most {max} run one after the other"
    )]
    TooManyOps {
        /// Operations in the pipeline.
        count: usize,
        /// The most a batch runs.
        max: usize,
    },
    /// The pool failed: a worker died, an operation panicked, the pool is closed.
    #[error(transparent)]
    Pool(#[from] shmpool::Error),
}
