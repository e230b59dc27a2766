//! What image operations and their parser report.

use super::shape::Shape;

/// An operation that cannot run on the image it was given.
///
/// ```
/// use shmpool_kernels::imaging::{Image, ImageError, Shape, crop};
/// let img = Image::<u8>::zeroed(Shape::new(4, 4, 1));
/// assert!(matches!(crop(&img, 2, 2, 4, 4), Err(ImageError::CropOutside { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// A buffer's length is not `h * w * c` of its shape.
    #[error("a {shape} image needs {} samples, got {len}; allocate shape.len() samples", shape.len())]
    Length {
        /// The shape asked for.
        shape: Shape,
        /// The buffer's length.
        len: usize,
    },
    /// A crop rectangle reaches past the image.
    #[error(
        "crop={x},{y},{w},{h} reaches past the {}x{} image; give a rectangle inside it",
        shape.w, shape.h
    )]
    CropOutside {
        /// The image's shape.
        shape: Shape,
        /// Left column.
        x: usize,
        /// Top row.
        y: usize,
        /// Width.
        w: usize,
        /// Height.
        h: usize,
    },
    /// An operation was asked for an image with no pixel, or to make one.
    #[error("{op} cannot make or take an empty image ({shape}); give sizes of at least 1")]
    Empty {
        /// The operation.
        op: &'static str,
        /// The shape it met.
        shape: Shape,
    },
    /// An operation would make an image larger than memory can hold (the allocation failed, or
    /// its size overflows).
    #[error(
        "{op} to {w}x{h} with {c} channels would need more memory than can be allocated; give \
         a smaller size"
    )]
    TooLarge {
        /// The operation.
        op: &'static str,
        /// The width asked for.
        w: usize,
        /// The height asked for.
        h: usize,
        /// Channels.
        c: usize,
    },
}

/// An operation's text (`resize=640x480`, `blur=1.5`) that does not parse.
///
/// ```
/// use shmpool_kernels::imaging::Op;
/// let e = "blur=-1".parse::<Op>().unwrap_err();
/// assert!(e.to_string().contains("blur"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad operation `{text}`: {why}; {fix}")]
pub struct OpParseError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub why: String,
    /// What to give instead.
    pub fix: String,
}
