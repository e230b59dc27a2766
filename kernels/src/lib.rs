//! Kernels that run in place on one chunk of a shared array. Each is a plain `fn` over slices,
//! so it can be handed to a forked child or a pool worker as is.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod elementwise;
mod image;
pub mod histogram;
mod lanes;
mod numeric;
pub mod reduce;
pub mod scan;

pub use image::{box_blur3x3, brighten};
pub use numeric::{mul, scale_add};
pub use reduce::chunk::{dot, sum};
