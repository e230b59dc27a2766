//! Three elementwise stages over one shared `f64` array (`a*1.0001 + 0.5`, clamp to [0, 1],
//! `0.25a^2 - 0.5a + 1`), the kernels library's chunk kernels: shmpool fuses them in one kernel
//! job (each chunk goes through the three while it is in cache) in `pipeline`, and publishes
//! them as three jobs one after the other in `pipeline-3jobs`; rayon and sequential code run the
//! three on each chunk in turn in both.

use rayon::prelude::*;
use shmpool::pool::Chunk;
use shmpool::{Pool, SharedArray};
use shmpool_kernels::elementwise::chunk::{clamp, polyval};

use super::{Digest, Runner, Workload, array_digest, init, native, reset};
use crate::bench::contender::Contender;
use crate::bench::options::SizeClass;
use crate::bench::record::Unit;

/// The third stage's polynomial, highest degree first.
const QUAD: [f64; 3] = [0.25, -0.5, 1.0];

/// Elements per chunk for rayon and sequential code.
const CHUNK: usize = 1 << 15;

/// The pipeline workload: fused, or three jobs.
pub(crate) struct Pipeline {
    fused: bool,
}

/// The three stages in one job.
pub(crate) const PIPELINE: Pipeline = Pipeline { fused: true };
/// The three stages as three jobs.
pub(crate) const PIPELINE_3JOBS: Pipeline = Pipeline { fused: false };

fn stage1(c: &Chunk<()>) {
    shmpool_kernels::scale_add(c.output::<f64>(0));
}

fn stage2(c: &Chunk<()>) {
    clamp(0.0, 1.0, c.output::<f64>(0));
}

fn stage3(c: &Chunk<()>) {
    polyval(&QUAD, c.output::<f64>(0));
}

/// The three stages on one chunk, in order.
fn fused(x: &mut [f64]) {
    shmpool_kernels::scale_add(x);
    clamp(0.0, 1.0, x);
    polyval(&QUAD, x);
}

impl Workload for Pipeline {
    fn name(&self) -> &'static str {
        if self.fused { "pipeline" } else { "pipeline-3jobs" }
    }

    fn about(&self) -> &'static str {
        if self.fused {
            "3 elementwise stages over N f64, fused in one shmpool kernel job"
        } else {
            "the same 3 stages, shmpool publishing them as 3 jobs one after the other"
        }
    }

    fn size(&self, class: SizeClass) -> usize {
        class.pick(1 << 16, 1 << 22, 1 << 25)
    }

    fn unit(&self) -> Unit {
        Unit { label: "Melem/s", rate: true, scale: 1e-6 }
    }

    fn reference(&self, size: usize) -> Digest {
        let mut a: Vec<f64> = (0..size).map(init).collect();
        fused(&mut a);
        array_digest(&a)
    }

    fn native(
        &self,
        contender: Contender,
        size: usize,
        workers: usize,
    ) -> Option<Result<Box<dyn Runner>, String>> {
        let build = || -> Result<Box<dyn Runner>, String> {
            let err = |e: shmpool::Error| e.to_string();
            let data = SharedArray::<f64>::from_fn(size, init).map_err(err)?;
            let (pool, rayon) = native::pools(contender, workers)?;
            Ok(Box::new(PipelineRunner { fused: self.fused, data, pool, rayon }))
        };
        native::for_native(contender, build)
    }
}

/// One native contender's array and pool.
struct PipelineRunner {
    fused: bool,
    data: SharedArray<f64>,
    pool: Option<Pool>,
    rayon: Option<rayon::ThreadPool>,
}

impl PipelineRunner {
    fn once(&mut self) -> Result<(), String> {
        let err = |e: shmpool::Error| e.to_string();
        let data = &mut self.data;
        match (&mut self.pool, &self.rayon) {
            (Some(p), _) if self.fused => p
                .job(())
                .output(data)
                .map_err(err)?
                .stage(stage1)
                .stage(stage2)
                .stage(stage3)
                .run()
                .map_err(err)?,
            (Some(p), _) => {
                for s in [stage1, stage2, stage3] {
                    p.job(()).output(&mut *data).map_err(err)?.stage(s).run().map_err(err)?;
                }
            }
            (None, Some(r)) => r.install(|| data.par_chunks_mut(CHUNK).for_each(fused)),
            (None, None) => data.chunks_mut(CHUNK).for_each(fused),
        }
        Ok(())
    }
}

impl Runner for PipelineRunner {
    fn check(&mut self) -> Result<Digest, String> {
        reset(&mut self.data);
        self.once()?;
        Ok(array_digest(&self.data))
    }

    fn run(&mut self) -> Result<f64, String> {
        native::timed(|| self.once())
    }
}
