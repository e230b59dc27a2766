//! `Pipeline`: operations run one after the other, parsed from a small text file.

use super::error::{ImageError, OpParseError};
use super::image::Image;
use super::op::Op;
use super::sample::Sample;

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
