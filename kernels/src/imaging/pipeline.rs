//! `Pipeline`: operations run one after the other, parsed from a small text file.

use super::error::{ImageError, OpParseError};
use super::image::Image;
use super::op::Op;
use super::sample::Sample;
use super::shape::Shape;

/// Operations in order. Its text form is one [`Op`] per line (or separated by `;`), with blank
/// lines and `#` comments ignored; `Display` writes one per line.
///
/// ```
/// use shmpool_kernels::imaging::{Op, Pipeline};
/// let p: Pipeline = "# web previews\nresize=640x480\nblur=1.5 ; sharpen=1.0".parse()?;
/// assert_eq!(p.ops().len(), 3);
/// assert_eq!(p.to_string(), "resize=640x480\nblur=1.5\nsharpen=1,1,0");
/// # Ok::<(), shmpool_kernels::imaging::OpParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipeline {
    ops: Vec<Op>,
}

impl Pipeline {
    /// A pipeline of `ops`.
    ///
    /// ```
    /// use shmpool_kernels::imaging::{Op, Pipeline};
    /// assert_eq!(Pipeline::new(vec![Op::Grayscale]).ops(), &[Op::Grayscale]);
    /// ```
    pub fn new(ops: Vec<Op>) -> Pipeline {
        Pipeline { ops }
    }

    /// The operations, in order.
    ///
    /// ```
    /// assert!(shmpool_kernels::imaging::Pipeline::default().ops().is_empty());
    /// ```
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Adds `op` at the end.
    ///
    /// ```
    /// use shmpool_kernels::imaging::{Op, Pipeline};
    /// let mut p = Pipeline::default();
    /// p.push(Op::Edges);
    /// assert_eq!(p.ops().len(), 1);
    /// ```
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// The shape of the image after each operation on an image of shape `input`, computed
    /// without touching a pixel ([`Op::output_shape`]): check them against a memory budget
    /// before [`apply`](Pipeline::apply) allocates them.
    ///
    /// # Errors
    ///
    /// The first operation's error, as [`apply`](Pipeline::apply) would report it.
    ///
    /// ```
    /// use shmpool_kernels::imaging::{Pipeline, Shape};
    /// let p: Pipeline = "resize=4000x3000; thumbnail=64; grayscale".parse()?;
    /// let shapes = p.shapes(Shape::new(480, 640, 3))?;
    /// assert_eq!(shapes, [Shape::new(3000, 4000, 3), Shape::new(48, 64, 3), Shape::new(48, 64, 1)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shapes(&self, input: Shape) -> Result<Vec<Shape>, ImageError> {
        let mut s = input;
        self.ops
            .iter()
            .map(|op| {
                s = op.output_shape(s)?;
                Ok(s)
            })
            .collect()
    }

    /// Runs every operation on `img`, in order.
    ///
    /// # Errors
    ///
    /// The first operation's error.
    ///
    /// ```
    /// use shmpool_kernels::imaging::{Image, Pipeline, Shape};
    /// let p: Pipeline = "crop=0,0,2,2; rotate=90".parse()?;
    /// let out = p.apply(Image::<f32>::zeroed(Shape::new(4, 4, 1)))?;
    /// assert_eq!(out.shape(), Shape::new(2, 2, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply<T: Sample>(&self, img: Image<T>) -> Result<Image<T>, ImageError> {
        self.ops.iter().try_fold(img, |img, op| op.apply(img))
    }
}

impl std::str::FromStr for Pipeline {
    type Err = OpParseError;

    fn from_str(s: &str) -> Result<Pipeline, OpParseError> {
        let ops = s
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .flat_map(|l| l.split(';'))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        Ok(Pipeline { ops })
    }
}

impl std::fmt::Display for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, op) in self.ops.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{op}")?;
        }
        Ok(())
    }
}
