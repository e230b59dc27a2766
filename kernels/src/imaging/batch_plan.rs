//! What a batch job needs before it runs: the images' shape read from an array's dimensions,
//! the shape a [`Pipeline`] makes of it, and the pipeline packed into the job's parameter block
//! (a `Pod`: stages are `fn`s that capture nothing, so the operations travel as data).

use bytemuck::{Pod, Zeroable};

use super::super::filter::Filter;
use super::super::geometry::{Flip, Rotation};
use super::super::op::Op;
use super::super::pipeline::Pipeline;
use super::super::shape::Shape;
use super::super::tone::Tone;
use super::error::BatchError;

/// The most operations one batch runs (what the job's 4096-byte parameter block holds).
pub(crate) const MAX_OPS: usize = 48;

/// Images as an array holds them: `n` images of `shape` (`batched` when the array has the
/// leading `n` axis, so the output gets one too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) n: usize,
    pub(crate) shape: Shape,
    pub(crate) batched: bool,
}

impl Layout {
    /// The images an array of `dims` holds.
    pub(crate) fn of(dims: &[usize]) -> Result<Layout, BatchError> {
        let not_images = || BatchError::NotImages { shape: dims.to_vec() };
        if dims.contains(&0) {
            return Err(not_images());
        }
        let layout = match *dims {
            [h, w, c] => Layout { n: 1, shape: Shape::new(h, w, c), batched: false },
            [n, h, w, c] => Layout { n, shape: Shape::new(h, w, c), batched: true },
            _ => return Err(not_images()),
        };
        if !matches!(layout.shape.c, 1 | 3 | 4) {
            return Err(BatchError::Channels { c: layout.shape.c });
        }
        layout.shape.len().checked_mul(layout.n).ok_or_else(not_images)?;
        Ok(layout)
    }

    /// The array dimensions of `n` images of `shape`, as this layout writes them.
    pub(crate) fn dims(&self, shape: Shape) -> Vec<usize> {
        if self.batched {
            vec![self.n, shape.h, shape.w, shape.c]
        } else {
            vec![shape.h, shape.w, shape.c]
        }
    }
}

/// Every shape the images take through `pipeline`, the input's first; each, for `n` images,
/// within the samples an allocation can hold.
pub(crate) fn shapes(
    pipeline: &Pipeline,
    input: Shape,
    n: usize,
) -> Result<Vec<Shape>, BatchError> {
    let ops = pipeline.ops();
    if ops.len() > MAX_OPS {
        return Err(BatchError::TooManyOps { count: ops.len(), max: MAX_OPS });
    }
    let mut out = Vec::with_capacity(ops.len() + 1);
    out.push(input);
    for (index, op) in ops.iter().enumerate() {
        let s = *out.last().expect("the input's shape is first");
        let next = op.output_shape(s).map_err(|source| BatchError::Op {
            index,
            op: op.to_string(),
            source,
        })?;
        let fits = [next.h, next.w, next.c]
            .into_iter()
            .try_fold(n, usize::checked_mul)
            .is_some_and(|len| len <= isize::MAX as usize);
        if !fits {
            let (h, w, c) = (next.h, next.w, next.c);
            return Err(BatchError::TooLarge {
                index,
                op: op.to_string(),
                shape: vec![n, h, w, c],
            });
        }
        out.push(next);
    }
    Ok(out)
}

/// One operation as plain data: a tag, its integer and its float parameters.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct OpCode {
    tag: u64,
    u: [u64; 4],
    f: [f32; 4],
}

impl OpCode {
    pub(crate) fn encode(op: &Op) -> OpCode {
        let mut c = OpCode::zeroed();
        let u = |v: usize| v as u64;
        match *op {
            Op::Resize { w, h, filter } => {
                c.tag = 1;
                c.u = [u(w), u(h), u64::from(filter == Filter::Lanczos3), 0];
            }
            Op::Thumbnail { w, h } => {
                c.tag = 2;
                c.u = [u(w), u(h), 0, 0];
            }
            Op::Crop { x, y, w, h } => {
                c.tag = 3;
                c.u = [u(x), u(y), u(w), u(h)];
            }
            Op::Rotate(r) => {
                c.tag = 4;
                c.u[0] = match r {
                    Rotation::Cw90 => 90,
                    Rotation::Cw180 => 180,
                    Rotation::Cw270 => 270,
                };
            }
            Op::Flip(d) => {
                c.tag = 5;
                c.u[0] = u64::from(d == Flip::Vertical);
            }
            Op::Grayscale => c.tag = 6,
            Op::Tone(t) => {
                c.tag = 7;
                (c.u[0], c.f[0]) = match t {
                    Tone::Brightness(v) => (0, v),
                    Tone::Contrast(v) => (1, v),
                    Tone::Gamma(v) => (2, v),
                };
            }
            Op::Blur(sigma) => {
                c.tag = 8;
                c.f[0] = sigma;
            }
            Op::Sharpen { sigma, amount, threshold } => {
                c.tag = 9;
                c.f[..3].copy_from_slice(&[sigma, amount, threshold]);
            }
            Op::Edges => c.tag = 10,
        }
        c
    }

    /// The operation [`encode`](OpCode::encode) packed.
    pub(crate) fn decode(&self) -> Op {
        let u = |i: usize| self.u[i] as usize;
        match self.tag {
            1 => Op::Resize {
                w: u(0),
                h: u(1),
                filter: if self.u[2] == 1 { Filter::Lanczos3 } else { Filter::Bilinear },
            },
            2 => Op::Thumbnail { w: u(0), h: u(1) },
            3 => Op::Crop { x: u(0), y: u(1), w: u(2), h: u(3) },
            4 => Op::Rotate(
                Rotation::from_degrees(self.u[0] as u32).expect("encode wrote a quarter turn"),
            ),
            5 => Op::Flip(if self.u[0] == 1 { Flip::Vertical } else { Flip::Horizontal }),
            6 => Op::Grayscale,
            7 => Op::Tone(match self.u[0] {
                0 => Tone::Brightness(self.f[0]),
                1 => Tone::Contrast(self.f[0]),
                _ => Tone::Gamma(self.f[0]),
            }),
            8 => Op::Blur(self.f[0]),
            9 => Op::Sharpen { sigma: self.f[0], amount: self.f[1], threshold: self.f[2] },
            10 => Op::Edges,
            t => panic!("batch parameter block holds operation tag {t}, which encode never writes"),
        }
    }
}

/// A batch job's parameter block.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct Params {
    /// The input images' `(h, w, c)`.
    pub(crate) input: [u64; 3],
    /// The output images' `(h, w, c)`.
    pub(crate) output: [u64; 3],
    /// Elements from one image to the next in the job's arrays (per-image jobs).
    pub(crate) stride: u64,
    /// Operations in `ops`.
    pub(crate) n_ops: u64,
    /// For a row job: the operation each stage runs (by stage index), and for blur and sharpen
    /// stages the scratch output (1 or 2) they write or read.
    pub(crate) stage_op: [u32; 16],
    pub(crate) stage_scratch: [u32; 16],
    pub(crate) ops: [OpCode; MAX_OPS],
}

fn dims(s: Shape) -> [u64; 3] {
    [s.h as u64, s.w as u64, s.c as u64]
}

fn shape(d: [u64; 3]) -> Shape {
    Shape::new(d[0] as usize, d[1] as usize, d[2] as usize)
}

impl Params {
    /// The block for `pipeline` (at most [`MAX_OPS`] operations, checked by [`shapes`]) taking
    /// `input` images to `output` ones, `stride` elements apart.
    pub(crate) fn new(pipeline: &Pipeline, input: Shape, output: Shape, stride: usize) -> Params {
        let mut p = Params::zeroed();
        p.input = dims(input);
        p.output = dims(output);
        p.stride = stride as u64;
        p.n_ops = pipeline.ops().len() as u64;
        for (slot, op) in p.ops.iter_mut().zip(pipeline.ops()) {
            *slot = OpCode::encode(op);
        }
        p
    }

    pub(crate) fn input(&self) -> Shape {
        shape(self.input)
    }

    pub(crate) fn output(&self) -> Shape {
        shape(self.output)
    }

    /// The pipeline the block carries.
    pub(crate) fn pipeline(&self) -> Pipeline {
        Pipeline::new(self.ops[..self.n_ops as usize].iter().map(OpCode::decode).collect())
    }

    /// The operation stage `stage` runs, in a row job.
    pub(crate) fn stage_op(&self, stage: usize) -> Op {
        self.ops[self.stage_op[stage] as usize].decode()
    }
}
