//! Kernels that run in place on one chunk of a shared array. Each is a plain `fn` over slices,
//! so it can be handed to a forked child or a pool worker as is.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod image;
mod numeric;

pub use image::{box_blur3x3, brighten};
pub use numeric::{dot, mul, scale_add, sum};
