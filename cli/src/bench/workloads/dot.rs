//! The dot product of two shared `f64` arrays through `shmpool_kernels::reduce`: a kernel job in
//! the pool (`reduce::dot`), `dot_rayon` and `dot_sequential`, each the same 16-lane chunk kernel.

use shmpool::{Pool, SharedArray};
use shmpool_kernels::reduce;

use super::{Digest, Runner, Workload, init, native};
use crate::bench::contender::Contender;
use crate::bench::options::SizeClass;
use crate::bench::record::Unit;

/// Elements per chunk for rayon and sequential code (the pool picks its own).
const CHUNK: usize = 1 << 16;

/// The dot workload.
pub(crate) struct Dot;

/// The dot workload.
pub(crate) const DOT: Dot = Dot;

/// Element `i` of the second operand: `(i % 997) * 0.001`, which the Python and C contenders
/// compute bit for bit alike.
pub(crate) fn second(i: usize) -> f64 {
    (i % 997) as f64 * 0.001
}

impl Workload for Dot {
    fn name(&self) -> &'static str {
        "dot"
    }

    fn about(&self) -> &'static str {
        "dot product of two arrays of N f64 (shmpool_kernels::reduce, 16 lanes)"
    }

    fn size(&self, class: SizeClass) -> usize {
        class.pick(1 << 16, 1 << 22, 1 << 25)
    }

    fn unit(&self) -> Unit {
        Unit { label: "Melem/s", rate: true, scale: 1e-6 }
    }

    fn reference(&self, size: usize) -> Digest {
        let a: Vec<f64> = (0..size).map(init).collect();
        let b: Vec<f64> = (0..size).map(second).collect();
        vec![shmpool_kernels::dot(&a, &b)]
    }

    fn native(
        &self,
        contender: Contender,
        size: usize,
        workers: usize,
    ) -> Option<Result<Box<dyn Runner>, String>> {
        let build = || -> Result<Box<dyn Runner>, String> {
            let err = |e: shmpool::Error| e.to_string();
            let a = SharedArray::<f64>::from_fn(size, init).map_err(err)?;
            let b = SharedArray::<f64>::from_fn(size, second).map_err(err)?;
            let (pool, rayon) = native::pools(contender, workers)?;
            Ok(Box::new(DotRunner { a, b, pool, rayon }))
        };
        native::for_native(contender, build)
    }
}

/// One native contender's operands and pool.
struct DotRunner {
    a: SharedArray<f64>,
    b: SharedArray<f64>,
    pool: Option<Pool>,
    rayon: Option<rayon::ThreadPool>,
}

impl DotRunner {
    fn once(&mut self) -> Result<f64, String> {
        let (a, b) = (&self.a, &self.b);
        let r = match (&mut self.pool, &self.rayon) {
            (Some(p), _) => reduce::dot(p, a, b),
            (None, Some(r)) => r.install(|| reduce::dot_rayon(a, b, CHUNK)),
            (None, None) => reduce::dot_sequential(a, b, CHUNK),
        };
        r.map_err(|e| e.to_string())
    }
}

impl Runner for DotRunner {
    fn check(&mut self) -> Result<Digest, String> {
        Ok(vec![self.once()?])
    }

    fn run(&mut self) -> Result<f64, String> {
        native::timed(|| self.once())
    }
}
