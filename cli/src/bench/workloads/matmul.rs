//! Square matrix product `C = A x B` of `f64` matrices through the kernels library:
//! `matmul_pool` (a kernel job, bands of rows of `C` per chunk), `matmul_rayon` and the
//! sequential `matmul`, each the same register-tiled row kernel.

use shmpool::Pool;
use shmpool_kernels::{MatDims, MatmulBuffers, matmul, matmul_pool, matmul_rayon};

use super::{Digest, Runner, Workload, array_digest, dot::second, init, native, reset};
use crate::bench::contender::Contender;
use crate::bench::options::SizeClass;
use crate::bench::record::Unit;

/// The matmul workload.
pub(crate) struct Matmul;

/// The matmul workload.
pub(crate) const MATMUL: Matmul = Matmul;

impl Workload for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn about(&self) -> &'static str {
        "C = A x B, N x N f64 (512 by default; --size N gives side floor(sqrt(N)))"
    }

    fn size(&self, class: SizeClass) -> usize {
        match class {
            SizeClass::Exact(n) => n.isqrt().max(1),
            SizeClass::Small => 64,
            SizeClass::Default => 512,
            SizeClass::Large => 1024,
        }
    }

    /// Floating-point operations: a multiply and an add per term.
    fn items(&self, size: usize) -> f64 {
        2.0 * (size as f64).powi(3)
    }

    fn unit(&self) -> Unit {
        Unit { label: "GFLOP/s", rate: true, scale: 1e-9 }
    }

    fn reference(&self, size: usize) -> Digest {
        let dims = MatDims::new(size, size, size);
        let a: Vec<f64> = (0..dims.a_len()).map(init).collect();
        let b: Vec<f64> = (0..dims.b_len()).map(second).collect();
        let mut c = vec![0.0; dims.c_len()];
        matmul(&a, &b, &mut c, dims);
        array_digest(&c)
    }

    fn native(
        &self,
        contender: Contender,
        size: usize,
        workers: usize,
    ) -> Option<Result<Box<dyn Runner>, String>> {
        let build = || -> Result<Box<dyn Runner>, String> {
            let dims = MatDims::new(size, size, size);
            let err = |e: shmpool::Error| e.to_string();
            let mut bufs = MatmulBuffers::<f64>::zeroed(dims).map_err(err)?;
            let (a, b) = bufs.a_b_mut();
            reset(a);
            b.iter_mut().enumerate().for_each(|(i, x)| *x = second(i));
            let (pool, rayon) = native::pools(contender, workers)?;
            let c = vec![0.0; dims.c_len()];
            Ok(Box::new(MatmulRunner { dims, bufs, c, pool, rayon }))
        };
        native::for_native(contender, build)
    }
}

/// One native contender's operands (in shared memory, which the pool needs and the others
/// read as slices), its result and pool.
struct MatmulRunner {
    dims: MatDims,
    bufs: MatmulBuffers<f64>,
    /// The product for rayon and sequential code (the pool's is in `bufs`).
    c: Vec<f64>,
    pool: Option<Pool>,
    rayon: Option<rayon::ThreadPool>,
}

impl MatmulRunner {
    /// One product; returns `C`.
    fn once(&mut self) -> Result<&[f64], String> {
        let (bufs, c, dims) = (&mut self.bufs, &mut self.c, self.dims);
        match (&mut self.pool, &self.rayon) {
            (Some(p), _) => {
                matmul_pool(p, bufs).map_err(|e| e.to_string())?;
                return Ok(self.bufs.c());
            }
            (None, Some(r)) => r
                .install(|| matmul_rayon(bufs.a(), bufs.b(), c, dims))
                .map_err(|e| e.to_string())?,
            (None, None) => matmul(bufs.a(), bufs.b(), c, dims),
        }
        Ok(&self.c)
    }
}

impl Runner for MatmulRunner {
    fn check(&mut self) -> Result<Digest, String> {
        Ok(array_digest(self.once()?))
    }

    fn run(&mut self) -> Result<f64, String> {
        native::timed(|| self.once())
    }
}
