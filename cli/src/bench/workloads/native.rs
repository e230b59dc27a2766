//! What every native runner shares: the pool each native contender runs on (a shmpool [`Pool`],
//! a rayon pool, or none for sequential code) and the timing of one round.

use std::hint::black_box;
use std::time::Instant;

use shmpool::Pool;

use super::{Runner, secs};
use crate::bench::contender::Contender;

/// The pools of one native contender: a shmpool pool of `workers` for [`Contender::Shmpool`], a
/// rayon pool of `workers` threads for [`Contender::Rayon`], neither for any other.
pub(crate) fn pools(
    contender: Contender,
    workers: usize,
) -> Result<(Option<Pool>, Option<rayon::ThreadPool>), String> {
    Ok(match contender {
        Contender::Shmpool => (Some(Pool::new(workers).map_err(|e| e.to_string())?), None),
        Contender::Rayon => (None, Some(super::rayon_pool(workers)?)),
        _ => (None, None),
    })
}

/// `build`'s runner for the three native contenders (shmpool, rayon, sequential), `None` for
/// the others: what [`super::Workload::native`] returns for a workload every one of them runs.
pub(crate) fn for_native(
    contender: Contender,
    build: impl FnOnce() -> Result<Box<dyn Runner>, String>,
) -> Option<Result<Box<dyn Runner>, String>> {
    matches!(contender, Contender::Shmpool | Contender::Rayon | Contender::Sequential).then(build)
}

/// The seconds one round `once` takes; its result is kept from the optimizer, then dropped.
pub(crate) fn timed<T>(once: impl FnOnce() -> Result<T, String>) -> Result<f64, String> {
    let t = Instant::now();
    black_box(once()?);
    Ok(secs(t))
}
