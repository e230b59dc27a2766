//! Image operations over `(h, w, c)` buffers of `u8` or `f32` samples: resize (bilinear and
//! Lanczos3), crop, rotate, flip, grayscale, brightness/contrast/gamma, Gaussian blur, unsharp
//! mask, Sobel edges and thumbnails, and [`Op`]/[`Pipeline`], their parsed form
//! (`resize=640x480`, `blur=1.5`, ...).
//!
//! Every operation is a pure function over a slice and its [`Shape`] (row-major, channels
//! interleaved: sample `(y, x, ch)` is at `(y * w + x) * c + ch`), so it runs as well on a
//! `Vec`, an [`Image`] or a shaped shared array. Those that keep the shape work in place
//! (`&mut [T]`); those that change it return a new [`Image`]. Decoding and encoding files is
//! not here: the `shmpool images` command does it with the `image` crate.
//!
//! ```
//! use shmpool_kernels::imaging::{Image, Pipeline, Shape};
//! let img = Image::<u8>::from_fn(Shape::new(4, 6, 3), |y, x, c| (y * 40 + x * 10 + c) as u8);
//! let out = "resize=3x2\nflip=h\ngrayscale".parse::<Pipeline>()?.apply(img)?;
//! assert_eq!(out.shape(), Shape::new(2, 3, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod batch;
mod blur;
mod crop;
mod error;
mod filter;
mod geometry;
mod grayscale;
mod image;
mod op;
mod pipeline;
mod resize;
mod sample;
mod shape;
mod sharpen;
mod simd;
mod sobel;
mod thumbnail;
mod tone;

pub use blur::{gaussian_blur, gaussian_kernel};
pub use crop::crop;
pub use error::{ImageError, OpParseError};
pub use filter::Filter;
pub use geometry::{Flip, Rotation, flip, rotate};
pub use grayscale::grayscale;
pub use image::Image;
pub use op::Op;
pub use pipeline::Pipeline;
pub use resize::resize;
pub use sample::Sample;
pub use shape::Shape;
pub use sharpen::unsharp_mask;
pub use sobel::sobel;
pub use thumbnail::{thumbnail, thumbnail_size};
pub use tone::{Tone, adjust};
