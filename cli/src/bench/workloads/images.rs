//! A batch of small images, each resized and blurred by `shmpool_kernels::imaging`: N
//! deterministic 256x256 RGB images made in memory (a smooth integer pattern, the same in the
//! Python contender), each resized to 128x128 (bilinear) and blurred (Gaussian, sigma 1). One
//! task per image: `Pool::map` over the image indices for shmpool, a parallel iterator for
//! rayon, a loop for sequential code, `multiprocessing.Pool.map` with Pillow for python-pool.
//!
//! The digest is pixel sums (the batch's and five images'). The native contenders run the same
//! code and agree exactly; Pillow resamples and blurs with its own rounding (its Gaussian blur
//! is a box-blur approximation), so results are accepted within [`TOLERANCE`].

use rayon::prelude::*;
use shmpool::Pool;
use shmpool_kernels::imaging::{Filter, Image, Shape, gaussian_blur, resize};

use super::{Digest, Runner, Workload, array_digest, native};
use crate::bench::contender::Contender;
use crate::bench::options::SizeClass;
use crate::bench::record::Unit;

/// Each source image's side, in pixels.
const SIDE: usize = 256;
/// The resized side.
const OUT: usize = 128;
/// The blur's standard deviation, in pixels.
const SIGMA: f32 = 1.0;
/// The relative tolerance of the digest check: Pillow's pixels differ from ours by rounding
/// (measured: pixel sums within 0.1%); a wrong image (another size, no blur, garbage) is off by
/// far more.
pub(crate) const TOLERANCE: f64 = 1e-2;

/// The images workload.
pub(crate) struct Images;

/// The images workload.
pub(crate) const IMAGES: Images = Images;

/// Image `i`'s sample at row `y`, column `x`, channel `c`: a triangle wave of period 510 along
/// a diagonal, shifted per channel and per image (integers only, so NumPy makes the same bytes).
fn sample(i: usize, y: usize, x: usize, c: usize) -> u8 {
    let v = (2 * x + y + 40 * c + 13 * i) % 510;
    (if v < 255 { v } else { 510 - v }) as u8
}

/// Makes image `i`, resizes and blurs it; returns the sum of its pixels. A task of `Pool::map`.
fn process(i: u64) -> u64 {
    let i = i as usize;
    let img = Image::from_fn(Shape::new(SIDE, SIDE, 3), |y, x, c| sample(i, y, x, c));
    let Ok(mut small) = resize(&img, OUT, OUT, Filter::Bilinear) else {
        return u64::MAX; // unreachable for a non-empty image and size; fails the digest
    };
    let shape = small.shape();
    gaussian_blur(small.as_mut_slice(), shape, SIGMA);
    small.as_slice().iter().map(|&p| u64::from(p)).sum()
}

/// The digest of the per-image sums: their total and five sampled ones.
fn digest(sums: &[u64]) -> Digest {
    array_digest(&sums.iter().map(|&s| s as f64).collect::<Vec<_>>())
}

impl Workload for Images {
    fn name(&self) -> &'static str {
        "images"
    }

    fn about(&self) -> &'static str {
        "N 256x256 RGB images made in memory, each resized to 128x128 and blurred, one task each"
    }

    fn size(&self, class: SizeClass) -> usize {
        class.pick(8, 64, 512)
    }

    fn unit(&self) -> Unit {
        Unit { label: "images/s", rate: true, scale: 1.0 }
    }

    fn tolerance(&self) -> f64 {
        TOLERANCE
    }

    fn reference(&self, size: usize) -> Digest {
        digest(&(0..size as u64).map(process).collect::<Vec<_>>())
    }

    fn native(
        &self,
        contender: Contender,
        size: usize,
        workers: usize,
    ) -> Option<Result<Box<dyn Runner>, String>> {
        let build = || -> Result<Box<dyn Runner>, String> {
            let (pool, rayon) = native::pools(contender, workers)?;
            Ok(Box::new(ImagesRunner { count: size as u64, pool, rayon }))
        };
        native::for_native(contender, build)
    }
}

/// One native contender's batch size and pool.
struct ImagesRunner {
    count: u64,
    pool: Option<Pool>,
    rayon: Option<rayon::ThreadPool>,
}

impl ImagesRunner {
    fn once(&mut self) -> Result<Vec<u64>, String> {
        let n = self.count;
        Ok(match (&mut self.pool, &self.rayon) {
            (Some(p), _) => p.map(process, 0..n, Some(1)).map_err(|e| e.to_string())?,
            (None, Some(r)) => r.install(|| (0..n).into_par_iter().map(process).collect()),
            (None, None) => (0..n).map(process).collect(),
        })
    }
}

impl Runner for ImagesRunner {
    fn check(&mut self) -> Result<Digest, String> {
        Ok(digest(&self.once()?))
    }

    fn run(&mut self) -> Result<f64, String> {
        native::timed(|| self.once())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_a_triangle_wave_and_pillow_agrees_within_the_tolerance() {
        assert_eq!((sample(0, 0, 0, 0), sample(0, 0, 127, 0), sample(0, 0, 128, 0)), (0, 254, 254));
        assert_eq!(sample(0, 0, 255, 0), 0);
        // Image 0's pixel sum from cli/python/bench_contenders.py (Pillow 13): ours is close.
        let (ours, pillow) = (process(0) as f64, 6_295_410.0);
        assert!((ours - pillow).abs() <= TOLERANCE * pillow / 10.0, "{ours} vs {pillow}");
    }
}
