//! A 2-D five-point stencil (Jacobi relaxation of the heat equation) over several steps, on a
//! square `f64` grid stored flat: each step reads one grid and writes the other, each interior
//! point becoming `((up + down) + (left + right)) * 0.25`, the boundary held fixed. Every native
//! contender runs the kernels library's drivers: `jacobi_pool` (one kernel job of 10 halo
//! stages), `jacobi_rayon` and the sequential `jacobi`.

use shmpool::{Pool, SharedArray};
use shmpool_kernels::{GridDims, jacobi, jacobi_pool, jacobi_rayon};

use super::{Digest, Runner, Workload, array_digest, init, native, reset};
use crate::bench::contender::Contender;
use crate::bench::options::SizeClass;
use crate::bench::record::Unit;

/// Steps per round.
pub(crate) const STEPS: usize = 10;

/// The grid sides the workload runs (the Python and C contenders pick the same).
const SIDES: [usize; 7] = [64, 128, 256, 512, 1024, 2048, 4096];

/// The stencil workload.
pub(crate) struct Stencil;

/// The stencil workload.
pub(crate) const STENCIL: Stencil = Stencil;

/// The grid side for a size: the largest supported side whose square fits in it.
pub(crate) fn side(size: usize) -> usize {
    SIDES.iter().copied().filter(|s| s * s <= size).max().unwrap_or(SIDES[0])
}

impl Workload for Stencil {
    fn name(&self) -> &'static str {
        "stencil"
    }

    fn about(&self) -> &'static str {
        "2-D 5-point Jacobi stencil (shmpool_kernels::jacobi*), 10 steps, square f64 grid of N cells (side 64..4096)"
    }

    fn size(&self, class: SizeClass) -> usize {
        let n = class.pick(128 * 128, 1024 * 1024, 4096 * 4096);
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
        let mut a: Vec<f64> = (0..s * s).map(init).collect();
        let mut b = vec![0.0; s * s];
        jacobi(&mut a, &mut b, GridDims::new(s, s), STEPS);
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
            let (pool, rayon) = native::pools(contender, workers)?;
            Ok(Box::new(StencilRunner { dims: GridDims::new(s, s), a, b, pool, rayon }))
        };
        native::for_native(contender, build)
    }
}

/// One native contender's two grids and pool.
struct StencilRunner {
    dims: GridDims,
    a: SharedArray<f64>,
    b: SharedArray<f64>,
    pool: Option<Pool>,
    rayon: Option<rayon::ThreadPool>,
}

impl StencilRunner {
    /// [`STEPS`] steps, the result in `a`.
    fn steps(&mut self) -> Result<(), String> {
        let (a, b, dims) = (&mut self.a, &mut self.b, self.dims);
        match (&mut self.pool, &self.rayon) {
            (Some(p), _) => {
                jacobi_pool(p, a, b, dims, STEPS).map_err(|e| e.to_string())?;
            }
            (None, Some(r)) => {
                r.install(|| jacobi_rayon(&mut a[..], &mut b[..], dims, STEPS))
                    .map_err(|e| e.to_string())?;
            }
            (None, None) => {
                jacobi(&mut a[..], &mut b[..], dims, STEPS);
            }
        }
        Ok(())
    }
}

impl Runner for StencilRunner {
    fn check(&mut self) -> Result<Digest, String> {
        reset(&mut self.a);
        self.steps()?;
        Ok(array_digest(&self.a))
    }

    fn run(&mut self) -> Result<f64, String> {
        native::timed(|| self.steps())
    }
}
