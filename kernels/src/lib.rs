//! Kernels that run in place on one chunk of a shared array. Each is a plain `fn` over slices,
//! so it can be handed to a forked child or a pool worker as is.
//!
//! The numeric modules pair each chunk kernel (in their `chunk` submodule) with drivers that run
//! it over a whole array: sequentially, on rayon, or in a [`shmpool::Pool`]'s workers through
//! [`Pool::job`](shmpool::Pool::job), with the same chunks and the same results:
//! [`reduce`] (sum, compensated sum, dot, min, max, argmin, argmax, at memory bandwidth, in a
//! fixed combination order), [`elementwise`] (axpy, scale, clamp, fused multiply-add,
//! polynomial), [`histogram`] and [`scan`] (two-pass prefix sums).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod dims_error;
pub mod elementwise;
mod float;
pub mod histogram;
mod image;
pub mod imaging;
mod lanes;
mod matmul;
mod matmul_pool;
mod numeric;
pub mod reduce;
pub mod scan;
mod sort;
mod sort_pool;
mod stencil;
mod stencil_pool;

pub use image::{box_blur3x3, brighten};
pub use numeric::{mul, scale_add};
pub use reduce::chunk::{dot, sum};

pub use dims_error::{DimsError, DriverError};
pub use float::Float;
pub use matmul::{MatDims, matmul, matmul_rayon, matmul_rows};
pub use matmul_pool::{MatmulBuffers, matmul_pool};
pub use sort::{SortKey, merge_ranks, rank_split, sort, sort_rayon, sort_run};
pub use sort_pool::sort_pool;
pub use stencil::{GridDims, jacobi, jacobi_rayon, jacobi_rows, jacobi_step, jacobi_step_rayon};
pub use stencil_pool::{jacobi_pool, jacobi_step_pool};
