//! The workload registry. A workload is one file's worth of code: a [`Workload`] that names
//! itself, sizes its data, computes the sequential reference result and builds a [`Runner`] for
//! each native (Rust) contender. The Python and C contenders implement the same workload by
//! name in their own programs (`cli/python/bench_contenders.py`, `bench_openmp.c`).
//!
//! To add a workload: write a file here with a `Workload`, add it to [`all`], and (if the
//! external contenders should run it) a branch in the Python script and the C source.

mod dot;
mod elementwise;
mod images;
mod matmul;
mod native;
mod pipeline;
mod queue;
mod start;
mod stencil;
mod tasks;

use super::contender::Contender;
use super::options::SizeClass;
use super::record::Unit;

/// A few numbers that identify a result: sums and sampled elements. Compared with a relative
/// tolerance, as contenders may sum in another order.
pub(crate) type Digest = Vec<f64>;

/// One contender's instance of one workload, with its data and its pool set up.
pub(crate) trait Runner {
    /// Runs the workload once from its initial data (untimed) and returns the result's digest,
    /// which must match the sequential reference before any round is timed.
    fn check(&mut self) -> Result<Digest, String>;
    /// Runs the workload once and returns the seconds it took.
    fn run(&mut self) -> Result<f64, String>;
}

/// A named workload.
pub(crate) trait Workload: Sync {
    /// The name used by `--workloads`, the tables and the JSON.
    fn name(&self) -> &'static str;
    /// One line saying what it does.
    fn about(&self) -> &'static str;
    /// Its size parameter for a size class.
    fn size(&self, class: SizeClass) -> usize;
    /// Work items per round (the numerator of a rate), for a size.
    fn items(&self, size: usize) -> f64 {
        size as f64
    }
    /// How its figure reads.
    fn unit(&self) -> Unit;
    /// The relative tolerance within which a contender's digest must match the reference.
    fn tolerance(&self) -> f64 {
        1e-9
    }
    /// The sequential result's digest, computed here in plain Rust.
    fn reference(&self, size: usize) -> Digest;
    /// A runner for a native contender, or `None` when the workload does not fit it.
    fn native(
        &self,
        contender: Contender,
        size: usize,
        workers: usize,
    ) -> Option<Result<Box<dyn Runner>, String>>;
}

/// Every workload, in the order they run: the pool starts first, while the bench process has
/// no thread yet (a fork start is refused in a process with threads, and rayon's stay).
pub(crate) fn all() -> &'static [&'static dyn Workload] {
    &[
        &start::START_FORK,
        &start::START_FORKSERVER,
        &start::START_SPAWN,
        &elementwise::INPLACE,
        &elementwise::SUM,
        &dot::DOT,
        &stencil::STENCIL,
        &elementwise::POLY,
        &pipeline::PIPELINE,
        &pipeline::PIPELINE_3JOBS,
        &matmul::MATMUL,
        &images::IMAGES,
        &tasks::TINY,
        &tasks::TINY_CHUNK1,
        &tasks::APPLY,
        &queue::QUEUE,
        &tasks::STRINGS,
    ]
}

/// True when `got` matches `want` element by element within the relative tolerance `tol`
/// (absolute near zero).
pub(crate) fn digest_matches(got: &[f64], want: &[f64], tol: f64) -> bool {
    got.len() == want.len()
        && got.iter().zip(want).all(|(g, w)| (g - w).abs() <= tol * w.abs().max(1.0))
}

/// The initial value of element `i` of every array workload: `(i % 1000) * 0.001`, which the
/// Python and C contenders compute bit for bit alike.
pub(crate) fn init(i: usize) -> f64 {
    (i % 1000) as f64 * 0.001
}

/// Puts every element of `a` back to its initial value, [`init`] of its index.
pub(crate) fn reset(a: &mut [f64]) {
    a.iter_mut().enumerate().for_each(|(i, x)| *x = init(i));
}

/// The digest of an array result: its sum and five sampled elements.
pub(crate) fn array_digest(a: &[f64]) -> Digest {
    let n = a.len();
    let mut d = vec![a.iter().sum::<f64>()];
    if n > 0 {
        d.extend([0, n / 4, n / 2, 3 * n / 4, n - 1].map(|i| a[i]));
    }
    d
}

/// Seconds since `t`.
pub(crate) fn secs(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// A rayon pool of `workers` threads, its error as a string.
pub(crate) fn rayon_pool(workers: usize) -> Result<rayon::ThreadPool, String> {
    rayon::ThreadPoolBuilder::new().num_threads(workers).build().map_err(|e| e.to_string())
}
