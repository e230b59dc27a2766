//! A 2-D five-point stencil (Jacobi relaxation of the heat equation) over several steps, on a
//! square `f64` grid stored flat: each step reads one grid and writes the other, the boundary
//! held fixed.

use std::time::Instant;

use rayon::prelude::*;
use shmpool::{Pool, SharedArray};

use super::{Digest, Runner, Workload, array_digest, init, rayon_pool, secs};
use crate::bench::contender::Contender;
use crate::bench::options::SizeClass;
use crate::bench::record::Unit;

/// Steps per round.
pub(crate) const STEPS: usize = 10;

/// The grid sides the kernel is built for (a kernel is a plain `fn`: the width is a const).
const SIDES: [usize; 7] = [64, 128, 256, 512, 1024, 2048, 4096];

/// The stencil workload.
pub(crate) struct Stencil;

/// The stencil workload.
pub(crate) const STENCIL: Stencil = Stencil;

/// The grid side for a size: the largest supported side whose square fits in it.
pub(crate) fn side(size: usize) -> usize {
    SIDES.iter().copied().filter(|s| s * s <= size).max().unwrap_or(SIDES[0])
}

/// One step over the rows of `out`, as a pool stencil: `win` holds the input from one row above
/// the chunk to one row below (clipped at the grid's first and last rows), `off` is the index in
/// `win` of the chunk's first cell, and the chunk starts on a row boundary.
fn jacobi<const W: usize>(win: &[f64], off: usize, out: &mut [f64]) {
    for (k, o) in out.iter_mut().enumerate() {
        let i = off + k;
        let col = k % W;
        let c = win[i];
        // No row above in the window is the grid's first row; none below is its last.
        *o = if col == 0 || col == W - 1 || i < W || i + W >= win.len() {
            c
        } else {
            c + 0.2 * ((((win[i - W] + win[i + W]) + win[i - 1]) + win[i + 1]) - 4.0 * c)
        };
    }
}

type Kernel = fn(&[f64], usize, &mut [f64]);

fn kernel_for(side: usize) -> Kernel {
    match side {
        64 => jacobi::<64>,
        128 => jacobi::<128>,
        256 => jacobi::<256>,
        512 => jacobi::<512>,
        1024 => jacobi::<1024>,
        2048 => jacobi::<2048>,
        _ => jacobi::<4096>,
    }
}

impl Workload for Stencil {
    fn name(&self) -> &'static str {
        "stencil"
    }

    fn about(&self) -> &'static str {
        "2-D 5-point Jacobi stencil, 10 steps, on a square f64 grid of N cells (side 64..4096)"
    }

    fn size(&self, class: SizeClass) -> usize {
        let n = match class {
            SizeClass::Exact(n) => n,
            SizeClass::Small => 128 * 128,
            SizeClass::Default => 1024 * 1024,
            SizeClass::Large => 4096 * 4096,
        };
        side(n) * side(n)
    }

    fn items(&self, size: usize) -> f64 {
        (size * STEPS) as f64
    }

    fn unit(&self) -> Unit {
        Unit { label: "Mcell/s", rate: true, scale: 1e-6 }
    }

    fn reference(&self, size: usize) -> Digest {
        let s = side(size);
        let k = kernel_for(s);
        let mut a: Vec<f64> = (0..s * s).map(init).collect();
        let mut b = vec![0.0; s * s];
        for _ in 0..STEPS {
            k(&a, 0, &mut b);
            std::mem::swap(&mut a, &mut b);
        }
        array_digest(&a)
    }

    fn native(
        &self,
        contender: Contender,
        size: usize,
        workers: usize,
    ) -> Option<Result<Box<dyn Runner>, String>> {
        let build = || -> Result<Box<dyn Runner>, String> {
            let s = side(size);
            let err = |e: shmpool::Error| e.to_string();
            let a = SharedArray::<f64>::from_fn(s * s, init).map_err(err)?;
            let b = SharedArray::<f64>::zeroed(s * s).map_err(err)?;
            // Chunks of whole rows, about four per worker.
            let rows = (s / (4 * workers)).max(1);
            let (mut pool, mut rayon) = (None, None);
            match contender {
                Contender::Shmpool => {
                    let mut p = Pool::new(workers).map_err(err)?;
                    p.set_chunk_size(Some(rows * s));
                    pool = Some(p);
                }
                Contender::Rayon => rayon = Some(rayon_pool(workers)?),
                _ => {}
            }
            Ok(Box::new(StencilRunner { side: s, rows, kernel: kernel_for(s), a, b, pool, rayon }))
        };
        matches!(contender, Contender::Shmpool | Contender::Rayon | Contender::Sequential)
            .then(build)
    }
}

/// One native contender's two grids and pool.
struct StencilRunner {
    side: usize,
    rows: usize,
    kernel: Kernel,
    a: SharedArray<f64>,
    b: SharedArray<f64>,
    pool: Option<Pool>,
    rayon: Option<rayon::ThreadPool>,
}

impl StencilRunner {
    fn steps(&mut self) -> Result<(), String> {
        let (w, k) = (self.side, self.kernel);
        let cs = self.rows * w;
        for _ in 0..STEPS {
            match (&mut self.pool, &self.rayon) {
                (Some(p), _) => p.stencil(&self.a, &mut self.b, w, k).map_err(|e| e.to_string())?,
                (None, Some(r)) => {
                    let (a, b) = (&self.a, &mut self.b);
                    let n = a.len();
                    r.install(|| {
                        b.par_chunks_mut(cs).enumerate().for_each(|(j, out)| {
                            let start = j * cs;
                            let lo = start.saturating_sub(w);
                            let hi = (start + out.len() + w).min(n);
                            k(&a[lo..hi], start - lo, out);
                        })
                    });
                }
                (None, None) => k(&self.a, 0, &mut self.b),
            }
            std::mem::swap(&mut self.a, &mut self.b);
        }
        Ok(())
    }
}

impl Runner for StencilRunner {
    fn check(&mut self) -> Result<Digest, String> {
        self.a.iter_mut().enumerate().for_each(|(i, x)| *x = init(i));
        self.steps()?;
        Ok(array_digest(&self.a))
    }

    fn run(&mut self) -> Result<f64, String> {
        let t = Instant::now();
        self.steps()?;
        Ok(secs(t))
    }
}
