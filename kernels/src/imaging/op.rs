//! `Op`: one image operation with its parameters, parsed from and printed as `name=params`.

use super::blur::gaussian_blur;
use super::crop::crop;
use super::error::{ImageError, OpParseError};
use super::filter::Filter;
use super::geometry::{Flip, Rotation, flip, rotate};
use super::grayscale::grayscale;
use super::image::Image;
use super::resize::resize;
use super::sample::Sample;
use super::shape::Shape;
use super::sharpen::unsharp_mask;
use super::sobel::sobel;
use super::thumbnail::{thumbnail, thumbnail_size};
use super::tone::{Tone, adjust};

/// One operation and its parameters. Its text form (`FromStr` and `Display` agree):
///
/// | text | operation |
/// |---|---|
/// | `resize=640x480`, `resize=640x480,lanczos3` | [`resize`](super::resize) (bilinear unless named) |
/// | `thumbnail=128x128`, `thumbnail=128` | [`thumbnail`](super::thumbnail) |
/// | `crop=x,y,w,h` | [`crop`](super::crop) |
/// | `rotate=90`, `180`, `270` | [`rotate`](super::rotate) clockwise |
/// | `flip=h`, `flip=v` | [`flip`](super::flip) |
/// | `grayscale` | [`grayscale`](super::grayscale) |
/// | `brightness=0.1`, `contrast=1.2`, `gamma=2.2` | [`adjust`](super::adjust) |
/// | `blur=1.5` | [`gaussian_blur`](super::gaussian_blur), sigma in pixels |
/// | `sharpen=1.0`, `sharpen=sigma,amount,threshold` | [`unsharp_mask`](super::unsharp_mask) (amount 1, threshold 0 unless given) |
/// | `edges` (or `sobel`) | [`sobel`](super::sobel) |
///
/// ```
/// use shmpool_kernels::imaging::{Filter, Op};
/// let op: Op = "resize=640x480,lanczos3".parse()?;
/// assert_eq!(op, Op::Resize { w: 640, h: 480, filter: Filter::Lanczos3 });
/// assert_eq!(op.to_string(), "resize=640x480,lanczos3");
/// assert!("resize=640".parse::<Op>().is_err());
/// # Ok::<(), shmpool_kernels::imaging::OpParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Resample to exactly `w` x `h`.
    Resize {
        /// Width.
        w: usize,
        /// Height.
        h: usize,
        /// The filter.
        filter: Filter,
    },
    /// Fit in a `w` x `h` box, aspect ratio kept, never enlarged.
    Thumbnail {
        /// The box's width.
        w: usize,
        /// The box's height.
        h: usize,
    },
    /// Keep the `w` x `h` rectangle at `(x, y)`.
    Crop {
        /// Left column.
        x: usize,
        /// Top row.
        y: usize,
        /// Width.
        w: usize,
        /// Height.
        h: usize,
    },
    /// Rotate clockwise.
    Rotate(Rotation),
    /// Mirror.
    Flip(Flip),
    /// Luma only.
    Grayscale,
    /// Brightness, contrast or gamma.
    Tone(Tone),
    /// Gaussian blur of this sigma.
    Blur(f32),
    /// Unsharp mask.
    Sharpen {
        /// The blur's sigma.
        sigma: f32,
        /// How much of the difference is added.
        amount: f32,
        /// Differences at or below this (on `[0, 1]`) are left alone.
        threshold: f32,
    },
    /// Sobel edge strength.
    Edges,
}

impl Op {
    /// The operation's name, as its text starts.
    ///
    /// ```
    /// use shmpool_kernels::imaging::Op;
    /// assert_eq!(Op::Blur(2.0).name(), "blur");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Op::Resize { .. } => "resize",
            Op::Thumbnail { .. } => "thumbnail",
            Op::Crop { .. } => "crop",
            Op::Rotate(_) => "rotate",
            Op::Flip(_) => "flip",
            Op::Grayscale => "grayscale",
            Op::Tone(Tone::Brightness(_)) => "brightness",
            Op::Tone(Tone::Contrast(_)) => "contrast",
            Op::Tone(Tone::Gamma(_)) => "gamma",
            Op::Blur(_) => "blur",
            Op::Sharpen { .. } => "sharpen",
            Op::Edges => "edges",
        }
    }

    /// The shape the operation makes of an image of shape `s`, with the error [`apply`](Op::apply)
    /// would report, computed without touching a pixel: check sizes (against a memory budget, a
    /// pixel limit) before running a pipeline.
    ///
    /// # Errors
    ///
    /// As [`apply`](Op::apply): a crop outside the image, an empty size.
    ///
    /// ```
    /// use shmpool_kernels::imaging::{Op, Shape};
    /// let op: Op = "resize=1048576x1048576".parse()?;
    /// let s = op.output_shape(Shape::new(480, 640, 3))?;
    /// assert_eq!((s.w, s.h), (1 << 20, 1 << 20)); // nothing allocated
    /// assert!("crop=0,0,10,10".parse::<Op>()?.output_shape(Shape::new(5, 5, 1)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn output_shape(&self, s: Shape) -> Result<Shape, ImageError> {
        let empty = |op: &'static str, shape: Shape| ImageError::Empty { op, shape };
        Ok(match *self {
            Op::Resize { w, h, .. } => {
                if w == 0 || h == 0 {
                    return Err(empty("resize", Shape::new(h, w, s.c)));
                }
                Shape::new(h, w, s.c)
            }
            Op::Thumbnail { w, h } => {
                if w == 0 || h == 0 {
                    return Err(empty("thumbnail", s));
                }
                let (tw, th) = thumbnail_size(s, w, h);
                Shape::new(th, tw, s.c)
            }
            Op::Crop { x, y, w, h } => {
                if w == 0 || h == 0 {
                    return Err(empty("crop", Shape::new(h, w, s.c)));
                }
                if x.checked_add(w).is_none_or(|r| r > s.w)
                    || y.checked_add(h).is_none_or(|b| b > s.h)
                {
                    return Err(ImageError::CropOutside { shape: s, x, y, w, h });
                }
                Shape::new(h, w, s.c)
            }
            Op::Rotate(Rotation::Cw180) => s,
            Op::Rotate(Rotation::Cw90 | Rotation::Cw270) => Shape::new(s.w, s.h, s.c),
            Op::Grayscale if s.colour_channels() >= 3 => {
                Shape::new(s.h, s.w, if s.has_alpha() { 2 } else { 1 })
            }
            Op::Edges => Shape::new(s.h, s.w, 1),
            Op::Flip(_) | Op::Grayscale | Op::Tone(_) | Op::Blur(_) | Op::Sharpen { .. } => s,
        })
    }

    /// Runs the operation on `img`: in place for those that keep the shape.
    ///
    /// # Errors
    ///
    /// What the operation reports: a crop outside the image, an empty image.
    ///
    /// ```
    /// use shmpool_kernels::imaging::{Image, Op, Shape};
    /// let img = Image::<u8>::zeroed(Shape::new(10, 20, 3));
    /// let out = "rotate=90".parse::<Op>()?.apply(img)?;
    /// assert_eq!(out.shape(), Shape::new(20, 10, 3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply<T: Sample>(&self, mut img: Image<T>) -> Result<Image<T>, ImageError> {
        if self.runs_in_place() {
            let s = img.shape();
            self.apply_in_place(img.as_mut_slice(), s);
            return Ok(img);
        }
        Ok(match *self {
            Op::Resize { w, h, filter } => resize(&img, w, h, filter)?,
            Op::Thumbnail { w, h } => thumbnail(&img, w, h)?,
            Op::Crop { x, y, w, h } => crop(&img, x, y, w, h)?,
            Op::Rotate(r) => rotate(&img, r),
            Op::Grayscale => grayscale(&img),
            Op::Edges => sobel(&img),
            Op::Flip(_) | Op::Tone(_) | Op::Blur(_) | Op::Sharpen { .. } => {
                unreachable!("runs_in_place took these")
            }
        })
    }

    /// Whether the operation keeps the shape and runs on the samples in place (flip, tone,
    /// blur, sharpen): [`apply_in_place`](Op::apply_in_place) runs it on any slice.
    pub(crate) fn runs_in_place(&self) -> bool {
        matches!(self, Op::Flip(_) | Op::Tone(_) | Op::Blur(_) | Op::Sharpen { .. })
    }

    /// Runs an operation that [`runs_in_place`](Op::runs_in_place) on `px`, of shape `s`: the
    /// same code as [`apply`](Op::apply), on a slice the caller owns (a shared array's image).
    ///
    /// # Panics
    ///
    /// For another operation, or if `px.len()` is not `s.len()`.
    pub(crate) fn apply_in_place<T: Sample>(&self, px: &mut [T], s: Shape) {
        match *self {
            Op::Flip(d) => flip(px, s, d),
            Op::Tone(t) => adjust(px, s, t),
            Op::Blur(sigma) => gaussian_blur(px, s, sigma),
            Op::Sharpen { sigma, amount, threshold } => {
                unsharp_mask(px, s, sigma, amount, threshold);
            }
            _ => panic!("`{self}` does not run in place"),
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.name();
        match *self {
            Op::Resize { w, h, filter: Filter::Bilinear } => write!(f, "{name}={w}x{h}"),
            Op::Resize { w, h, filter: Filter::Lanczos3 } => write!(f, "{name}={w}x{h},lanczos3"),
            Op::Thumbnail { w, h } => write!(f, "{name}={w}x{h}"),
            Op::Crop { x, y, w, h } => write!(f, "{name}={x},{y},{w},{h}"),
            Op::Rotate(r) => {
                let deg = match r {
                    Rotation::Cw90 => 90,
                    Rotation::Cw180 => 180,
                    Rotation::Cw270 => 270,
                };
                write!(f, "{name}={deg}")
            }
            Op::Flip(Flip::Horizontal) => write!(f, "{name}=h"),
            Op::Flip(Flip::Vertical) => write!(f, "{name}=v"),
            Op::Grayscale | Op::Edges => write!(f, "{name}"),
            Op::Tone(Tone::Brightness(v) | Tone::Contrast(v) | Tone::Gamma(v)) | Op::Blur(v) => {
                write!(f, "{name}={v}")
            }
            Op::Sharpen { sigma, amount, threshold } => {
                write!(f, "{name}={sigma},{amount},{threshold}")
            }
        }
    }
}

/// The parts of one operation's text, for error messages.
struct Text<'a> {
    text: &'a str,
}

impl Text<'_> {
    fn err(&self, why: impl Into<String>, fix: &str) -> OpParseError {
        OpParseError { text: self.text.to_string(), why: why.into(), fix: fix.to_string() }
    }

    fn size(&self, v: &str, fix: &str) -> Result<(usize, usize), OpParseError> {
        let (w, h) = v.split_once(['x', 'X']).ok_or_else(|| self.err("no WxH size", fix))?;
        let w = self.count(w, fix)?;
        let h = self.count(h, fix)?;
        Ok((w, h))
    }

    fn count(&self, v: &str, fix: &str) -> Result<usize, OpParseError> {
        match v.trim().parse::<usize>() {
            Ok(n) if n > 0 && n <= 1 << 20 => Ok(n),
            _ => Err(self.err(format!("`{v}` is not a size from 1 to 1048576"), fix)),
        }
    }

    fn number(&self, v: &str, ok: impl Fn(f32) -> bool, fix: &str) -> Result<f32, OpParseError> {
        match v.trim().parse::<f32>() {
            Ok(x) if x.is_finite() && ok(x) => Ok(x),
            _ => Err(self.err(format!("`{v}` is out of range"), fix)),
        }
    }
}

impl std::str::FromStr for Op {
    type Err = OpParseError;

    fn from_str(s: &str) -> Result<Op, OpParseError> {
        let s = s.trim();
        let t = Text { text: s };
        let (name, value) = match s.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (s, None),
        };
        let need = |fix: &str| value.ok_or_else(|| t.err("it needs a value", fix));
        Ok(match name {
            "resize" => {
                let fix = "give resize=WxH or resize=WxH,lanczos3";
                let v = need(fix)?;
                let (size, filter) = match v.split_once(',') {
                    Some((size, f)) => (size, f.trim().parse().map_err(|e: String| t.err(e, fix))?),
                    None => (v, Filter::Bilinear),
                };
                let (w, h) = t.size(size, fix)?;
                Op::Resize { w, h, filter }
            }
            "thumbnail" => {
                let fix = "give thumbnail=WxH or thumbnail=N (an N x N box)";
                let v = need(fix)?;
                let (w, h) = if v.contains(['x', 'X']) {
                    t.size(v, fix)?
                } else {
                    let n = t.count(v, fix)?;
                    (n, n)
                };
                Op::Thumbnail { w, h }
            }
            "crop" => {
                let fix = "give crop=X,Y,W,H in pixels";
                let parts: Vec<&str> = need(fix)?.split(',').collect();
                let [x, y, w, h] = parts[..] else {
                    return Err(t.err("it needs four numbers", fix));
                };
                let pos = |v: &str| {
                    v.trim()
                        .parse::<usize>()
                        .map_err(|_| t.err(format!("`{v}` is not a pixel index"), fix))
                };
                Op::Crop { x: pos(x)?, y: pos(y)?, w: t.count(w, fix)?, h: t.count(h, fix)? }
            }
            "rotate" => {
                let fix = "give rotate=90, rotate=180 or rotate=270 (clockwise)";
                let deg = need(fix)?.parse::<u32>().ok().and_then(Rotation::from_degrees);
                Op::Rotate(deg.ok_or_else(|| t.err("only quarter turns are supported", fix))?)
            }
            "flip" => {
                let fix = "give flip=h (left-right) or flip=v (top-bottom)";
                match need(fix)? {
                    "h" | "horizontal" => Op::Flip(Flip::Horizontal),
                    "v" | "vertical" => Op::Flip(Flip::Vertical),
                    other => return Err(t.err(format!("unknown direction `{other}`"), fix)),
                }
            }
            "grayscale" | "greyscale" | "gray" | "grey" => Op::Grayscale,
            "edges" | "sobel" => Op::Edges,
            "brightness" => {
                let fix = "give brightness=B with B from -1 to 1 (0.1 brightens by 10%)";
                Op::Tone(Tone::Brightness(t.number(
                    need(fix)?,
                    |b| (-1.0..=1.0).contains(&b),
                    fix,
                )?))
            }
            "contrast" => {
                let fix = "give contrast=K with K from 0 to 100 (1 keeps the image)";
                Op::Tone(Tone::Contrast(t.number(
                    need(fix)?,
                    |k| (0.0..=100.0).contains(&k),
                    fix,
                )?))
            }
            "gamma" => {
                let fix = "give gamma=G with G above 0 and at most 100 (1 keeps the image)";
                Op::Tone(Tone::Gamma(t.number(need(fix)?, |g| g > 0.0 && g <= 100.0, fix)?))
            }
            "blur" => {
                let fix = "give blur=SIGMA in pixels, above 0 and at most 256";
                Op::Blur(t.number(need(fix)?, |s| s > 0.0 && s <= 256.0, fix)?)
            }
            "sharpen" => {
                let fix = "give sharpen=SIGMA or sharpen=SIGMA,AMOUNT,THRESHOLD (sigma 0 to 256, threshold 0 to 1)";
                let parts: Vec<&str> = need(fix)?.split(',').collect();
                if parts.len() > 3 {
                    return Err(t.err("it takes at most three numbers", fix));
                }
                let sigma = t.number(parts[0], |s| s > 0.0 && s <= 256.0, fix)?;
                let amount = match parts.get(1) {
                    Some(a) => t.number(a, |a| (0.0..=100.0).contains(&a), fix)?,
                    None => 1.0,
                };
                let threshold = match parts.get(2) {
                    Some(th) => t.number(th, |th| (0.0..=1.0).contains(&th), fix)?,
                    None => 0.0,
                };
                Op::Sharpen { sigma, amount, threshold }
            }
            other => {
                return Err(t.err(
                    format!("unknown operation `{other}`"),
                    "give one of resize, thumbnail, crop, rotate, flip, grayscale, brightness, \
                     contrast, gamma, blur, sharpen, edges",
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips() {
        for text in [
            "resize=640x480",
            "resize=64x32,lanczos3",
            "thumbnail=128x96",
            "crop=1,2,3,4",
            "rotate=90",
            "rotate=180",
            "rotate=270",
            "flip=h",
            "flip=v",
            "grayscale",
            "brightness=-0.25",
            "contrast=1.5",
            "gamma=2.2",
            "blur=1.5",
            "sharpen=1,0.5,0.1",
            "edges",
        ] {
            let op: Op = text.parse().unwrap();
            assert_eq!(op.to_string(), text);
            assert_eq!(op.to_string().parse::<Op>().unwrap(), op);
        }
    }

    #[test]
    fn bad_text_says_the_fix() {
        for (text, fix) in [
            ("resize=640", "resize=WxH"),
            ("resize=0x10", "resize=WxH"),
            ("resize=10x10,cubic", "bilinear or lanczos3"),
            ("crop=1,2,3", "crop=X,Y,W,H"),
            ("rotate=45", "rotate=90"),
            ("flip=d", "flip=h"),
            ("blur", "blur=SIGMA"),
            ("blur=nan", "blur=SIGMA"),
            ("gamma=0", "gamma=G"),
            ("sharpen=1,2,3,4", "sharpen=SIGMA"),
            ("posterize=4", "give one of"),
        ] {
            let e = text.parse::<Op>().unwrap_err().to_string();
            assert!(e.contains(fix), "{text}: {e}");
        }
    }
}
