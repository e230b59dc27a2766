//! The stages of batch jobs: whole images per chunk (any pipeline), or bands of rows of one
//! image (tone, horizontal flip, blur and sharpen, the last two with a halo for their vertical
//! pass). Each calls the single-image operation's own code (on an image, a band, or a band
//! widened by its halo), so the results are equal bit for bit whatever that code's arithmetic.

use shmpool::pool::Chunk;

use super::super::blur::{gaussian_blur, gaussian_kernel};
use super::super::error::ImageError;
use super::super::geometry::{Flip, flip};
use super::super::image::Image;
use super::super::op::Op;
use super::super::resize::resize_into;
use super::super::sample::Sample;
use super::super::shape::Shape;
use super::super::sharpen::unsharp_mask;
use super::super::tone::adjust;
use super::plan::Params;

/// Runs the pipeline on `src` (an image of the input shape) and writes the result into `dst`
/// (the output shape's length), with the single-image code of each operation and as few copies
/// as it allows: the operations after the last that changes the shape (flip, tone, blur,
/// sharpen) run on `dst` itself; a resize that is the last to change the shape resamples
/// straight into `dst`, from `src` itself when it comes first. Only a pipeline with other
/// shape changes makes owned images (from a copy of `src`), as [`Pipeline::apply`] does.
/// (Each image was copied into an owned image and the result copied back: about a third of a
/// worker's time on `resize=640x480; blur=1.5` of 1024x768 RGB, with the scratch's pages.)
///
/// [`Pipeline::apply`]: super::super::Pipeline::apply
fn one_image<T: Sample>(p: &Params, src: &[T], dst: &mut [T]) {
    let pipeline = p.pipeline();
    let ops = pipeline.ops();
    let tail = ops.iter().rposition(|op| !op.runs_in_place()).map_or(0, |last| last + 1);
    let (head, in_place) = ops.split_at(tail);
    // The plan checked every shape; what is left to fail is an allocation the system refuses
    // (`ImageError::TooLarge`): the chunk panics with its message, which says the fix.
    let failed = |e: ImageError| panic!("{e}");
    match head.split_last() {
        None => dst.copy_from_slice(src),
        Some((&Op::Resize { w, h, filter }, before)) => {
            let owned;
            let (from, s) = if before.is_empty() {
                (src, p.input())
            } else {
                let img = Image::from_vec(p.input(), src.to_vec()).expect("one input image");
                owned = before.iter().try_fold(img, |img, op| op.apply(img)).unwrap_or_else(failed);
                (owned.as_slice(), owned.shape())
            };
            resize_into(from, s, dst, w, h, filter);
        }
        Some(_) => {
            let img = Image::from_vec(p.input(), src.to_vec()).expect("one input image");
            let out = head.iter().try_fold(img, |img, op| op.apply(img)).unwrap_or_else(failed);
            assert_eq!(out.shape(), p.output(), "the pipeline made another shape than planned");
            dst.copy_from_slice(out.as_slice());
        }
    }
    for op in in_place {
        op.apply_in_place(dst, p.output());
    }
}

/// Whole images: the chunk's images of input 0 through the pipeline into output 0, each image
/// `stride` elements from the last.
pub(crate) fn images<T: Sample + bytemuck::Pod>(c: &Chunk<Params>) {
    let p = c.params();
    let (stride, n_in, n_out) = (p.stride as usize, p.input().len(), p.output().len());
    let (src, dst) = (c.input::<T>(0), c.output::<T>(0));
    for (s, d) in src.chunks_exact(stride).zip(dst.chunks_exact_mut(stride)) {
        one_image(p, &s[..n_in], &mut d[..n_out]);
    }
}

/// Whole images, in place in output 0 (the pipeline keeps the shape): a pipeline of in-place
/// operations only runs on the image itself; another reads a copy.
pub(crate) fn images_in_place<T: Sample + bytemuck::Pod>(c: &Chunk<Params>) {
    let p = c.params();
    let stride = p.stride as usize;
    let pipeline = p.pipeline();
    let direct = pipeline.ops().iter().all(Op::runs_in_place);
    for img in c.output::<T>(0).chunks_exact_mut(stride) {
        if direct {
            pipeline.ops().iter().for_each(|op| op.apply_in_place(img, p.input()));
        } else {
            let src = img.to_vec();
            one_image(p, &src, img);
        }
    }
}

/// Rows: input 0 copied into output 0 (the first stage of a row job that does not run in place).
pub(crate) fn copy_rows<T: Sample + bytemuck::Pod>(c: &Chunk<Params>) {
    c.output::<T>(0).copy_from_slice(c.input::<T>(0));
}

/// The chunk's rows of output 0 as an image shape.
fn band(c: &Chunk<Params>) -> Shape {
    let s = c.params().input();
    Shape::new(c.rows().len(), s.w, s.c)
}

/// Rows: a tone curve ([`adjust`]) or a horizontal flip, which touch one row at a time.
pub(crate) fn row_local<T: Sample + bytemuck::Pod>(c: &Chunk<Params>) {
    let px = c.output::<T>(0);
    match c.params().stage_op(c.stage()) {
        Op::Tone(t) => adjust(px, band(c), t),
        Op::Flip(Flip::Horizontal) => flip(px, band(c), Flip::Horizontal),
        op => panic!("`{op}` is not a row-local operation; the batch planned it wrong"),
    }
}

/// The radius (rows of halo) a blur or sharpen of `op` reads each side: its Gaussian's
/// ([`gaussian_kernel`]); 0 where it leaves the image as it is (a sigma of 0 or less, or NaN).
pub(crate) fn radius_of(op: &Op) -> usize {
    match *op {
        Op::Blur(s) | Op::Sharpen { sigma: s, .. } if s.is_nan() || s <= 0.0 => 0,
        Op::Blur(s) | Op::Sharpen { sigma: s, .. } => gaussian_kernel(s).len() / 2,
        _ => 0,
    }
}

/// Rows, first half of a blur or sharpen: the chunk's rows of output 0 copied into the stage's
/// scratch output, for the second half to read through its halo.
pub(crate) fn to_scratch<T: Sample + bytemuck::Pod>(c: &Chunk<Params>) {
    let scratch = c.params().stage_scratch[c.stage()] as usize;
    c.output::<T>(scratch).copy_from_slice(c.output::<T>(0));
}

/// Rows, second half of a blur or sharpen (a stage with a halo of [`radius_of`] rows): the
/// operation run, as the single-image code runs it, on the band of the scratch copy widened by
/// the halo, and the band's own rows stored into output 0. The halo reaches every row the
/// band's rows read, and where it is clipped it is clipped at the image's edge, where the
/// operation clamps too: the band's rows come out as the whole image's would.
pub(crate) fn band_filter<T: Sample + bytemuck::Pod>(c: &Chunk<Params>) {
    let p = c.params();
    let s = p.input();
    let (win, off) = c.output_halo::<T>(p.stage_scratch[c.stage()] as usize);
    let mut band = win.to_vec();
    let shape = Shape::new(band.len() / s.row_len(), s.w, s.c);
    match p.stage_op(c.stage()) {
        Op::Blur(sigma) => gaussian_blur(&mut band, shape, sigma),
        Op::Sharpen { sigma, amount, threshold } => {
            unsharp_mask(&mut band, shape, sigma, amount, threshold);
        }
        op => panic!("`{op}` is not a blur; the batch planned it wrong"),
    }
    let out = c.output::<T>(0);
    let n = out.len();
    out.copy_from_slice(&band[off..off + n]);
}
