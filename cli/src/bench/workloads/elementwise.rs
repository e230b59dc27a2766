//! The elementwise family over one shared `f64` array: the in-place kernel
//! `a = a * 1.0001 + 0.5` (memory-bound), a map-reduce sum, and a degree-16 polynomial in place
//! (compute-bound). The sum and the polynomial run the kernels library's drivers: the 16-lane
//! `shmpool_kernels::reduce` (a kernel job in the pool, `run_rayon`, `run_sequential`) and
//! `shmpool_kernels::elementwise`'s `polyval` (a kernel job), `polyval_rayon` and the chunk kernel.

use rayon::prelude::*;
use shmpool::{Pool, SharedArray};

use super::{Digest, Runner, Workload, array_digest, init, native, reset};
use crate::bench::contender::Contender;
use crate::bench::options::SizeClass;
use crate::bench::record::Unit;

/// Which elementwise kernel.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    InPlace,
    Sum,
    Poly,
}

/// One elementwise workload.
pub(crate) struct Elementwise {
    kind: Kind,
}

/// `a = a * 1.0001 + 0.5` in place.
pub(crate) const INPLACE: Elementwise = Elementwise { kind: Kind::InPlace };
/// Map-reduce sum.
pub(crate) const SUM: Elementwise = Elementwise { kind: Kind::Sum };
/// Degree-16 polynomial in place.
pub(crate) const POLY: Elementwise = Elementwise { kind: Kind::Poly };

/// The polynomial's coefficients, `c[k] = 0.5 * (-0.5)^k` (exact in binary): it maps [0, 1]
/// into [1/3, 1/2], so repeated rounds stay finite.
const COEF: [f64; 17] = {
    let mut c = [0.0; 17];
    let mut k = 0;
    let mut x = 0.5;
    while k < 17 {
        c[k] = x;
        x *= -0.5;
        k += 1;
    }
    c
};

/// The coefficients highest degree first, as `shmpool_kernels::elementwise` takes them.
const COEF_HIGH_FIRST: [f64; 17] = {
    let mut c = [0.0; 17];
    let mut k = 0;
    while k < 17 {
        c[k] = COEF[16 - k];
        k += 1;
    }
    c
};

/// The polynomial in place: the kernels library's chunk kernel (Horner's rule, as the Python and
/// C contenders), the one every native contender runs on its chunks.
fn poly(a: &mut [f64]) {
    shmpool_kernels::elementwise::chunk::polyval(&COEF_HIGH_FIRST, a);
}

const RAYON_CHUNK: usize = 1 << 16;

impl Workload for Elementwise {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::InPlace => "inplace",
            Kind::Sum => "sum",
            Kind::Poly => "poly",
        }
    }

    fn about(&self) -> &'static str {
        match self.kind {
            Kind::InPlace => "a = a*1.0001 + 0.5 in place over N f64 (memory-bound)",
            Kind::Sum => "map-reduce sum over N f64",
            Kind::Poly => "degree-16 polynomial (Horner) in place over N f64 (compute-bound)",
        }
    }

    fn size(&self, class: SizeClass) -> usize {
        match (class, self.kind) {
            (SizeClass::Exact(n), _) => n,
            (SizeClass::Small, _) => 1 << 16,
            (SizeClass::Default, Kind::Poly) => 1 << 21,
            (SizeClass::Default, _) => 1 << 22,
            (SizeClass::Large, _) => 1 << 25,
        }
    }

    fn unit(&self) -> Unit {
        Unit { label: "Melem/s", rate: true, scale: 1e-6 }
    }

    fn reference(&self, size: usize) -> Digest {
        let mut a: Vec<f64> = (0..size).map(init).collect();
        match self.kind {
            Kind::InPlace => shmpool_kernels::scale_add(&mut a),
            Kind::Poly => poly(&mut a),
            Kind::Sum => return vec![shmpool_kernels::sum(&a)],
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
            let data = SharedArray::<f64>::from_fn(size, init).map_err(|e| e.to_string())?;
            let (pool, rayon) = native::pools(contender, workers)?;
            Ok(Box::new(ElemRunner { kind: self.kind, data, pool, rayon }))
        };
        native::for_native(contender, build)
    }
}

/// One native contender's array and pool.
struct ElemRunner {
    kind: Kind,
    data: SharedArray<f64>,
    pool: Option<Pool>,
    rayon: Option<rayon::ThreadPool>,
}

impl ElemRunner {
    /// One pass; returns the sum for [`Kind::Sum`], else 0.
    fn once(&mut self) -> Result<f64, String> {
        use shmpool_kernels::reduce::{self, Sum};
        let err = |e: shmpool::Error| e.to_string();
        let kernel: fn(&mut [f64]) = match self.kind {
            Kind::InPlace => shmpool_kernels::scale_add,
            Kind::Poly => {
                match (&mut self.pool, &self.rayon) {
                    (Some(p), _) => {
                        shmpool_kernels::elementwise::polyval(p, &COEF_HIGH_FIRST, &mut self.data)
                            .map_err(err)?
                    }
                    (None, Some(r)) => {
                        let data = &mut self.data;
                        r.install(|| {
                            shmpool_kernels::elementwise::polyval_rayon(
                                &COEF_HIGH_FIRST,
                                data,
                                RAYON_CHUNK,
                            )
                        });
                    }
                    (None, None) => poly(&mut self.data),
                }
                return Ok(0.0);
            }
            Kind::Sum => {
                return Ok(match (&mut self.pool, &self.rayon) {
                    (Some(p), _) => reduce::sum(p, &self.data).map_err(err)?,
                    (None, Some(r)) => {
                        r.install(|| reduce::run_rayon::<Sum>(&self.data, RAYON_CHUNK))
                    }
                    (None, None) => reduce::run_sequential::<Sum>(&self.data, RAYON_CHUNK),
                });
            }
        };
        match (&mut self.pool, &self.rayon) {
            (Some(p), _) => p.for_each_chunk(&mut self.data, kernel).map_err(|e| e.to_string())?,
            (None, Some(r)) => {
                let data = &mut self.data;
                r.install(|| data.par_chunks_mut(RAYON_CHUNK).for_each(kernel));
            }
            (None, None) => kernel(&mut self.data),
        }
        Ok(0.0)
    }
}

impl Runner for ElemRunner {
    fn check(&mut self) -> Result<Digest, String> {
        reset(&mut self.data);
        let s = self.once()?;
        Ok(if self.kind == Kind::Sum { vec![s] } else { array_digest(&self.data) })
    }

    fn run(&mut self) -> Result<f64, String> {
        native::timed(|| self.once())
    }
}
