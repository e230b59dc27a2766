//! The task family: many tiny tasks through `map_pod` (default chunking, and one task per
//! chunk), back-to-back `apply` round trips, and a serialized-task `map` over short strings.

use std::hint::black_box;

use rayon::prelude::*;
use shmpool::Pool;

use super::{Digest, Runner, Workload, native};
use crate::bench::contender::Contender;
use crate::bench::options::SizeClass;
use crate::bench::record::Unit;

/// Which task workload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tiny,
    TinyChunk1,
    Apply,
    Strings,
}

/// One task workload.
pub(crate) struct Tasks {
    kind: Kind,
}

/// `map` of `x + 1` over N integers, default chunking.
pub(crate) const TINY: Tasks = Tasks { kind: Kind::Tiny };
/// The same with one task per chunk.
pub(crate) const TINY_CHUNK1: Tasks = Tasks { kind: Kind::TinyChunk1 };
/// N `apply(x + 1)` round trips, one after another.
pub(crate) const APPLY: Tasks = Tasks { kind: Kind::Apply };
/// `map(len)` over N short strings, serialized there and back.
pub(crate) const STRINGS: Tasks = Tasks { kind: Kind::Strings };

fn plus_one(x: u64) -> u64 {
    x + 1
}

fn str_len(s: String) -> u64 {
    s.len() as u64
}

/// The strings of [`STRINGS`]: `/data/file-{i}.csv`, as `benches/python_tasks.py`.
fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("/data/file-{i}.csv")).collect()
}

impl Workload for Tasks {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Tiny => "tiny",
            Kind::TinyChunk1 => "tiny-chunk1",
            Kind::Apply => "apply",
            Kind::Strings => "strings",
        }
    }

    fn about(&self) -> &'static str {
        match self.kind {
            Kind::Tiny => "map(x+1) over N integers, default chunking (map_pod)",
            Kind::TinyChunk1 => "map(x+1) over N integers, chunk size 1 (map_pod)",
            Kind::Apply => "N apply(x+1) round trips, back to back (apply_pod)",
            Kind::Strings => "map(len) over N short strings, serialized tasks (map)",
        }
    }

    fn size(&self, class: SizeClass) -> usize {
        match (class, self.kind) {
            (SizeClass::Exact(n), _) => n,
            (SizeClass::Small, Kind::Apply | Kind::TinyChunk1) => 200,
            (SizeClass::Small, _) => 2_000,
            (SizeClass::Default, Kind::Apply) => 2_000,
            (SizeClass::Default, Kind::TinyChunk1) => 10_000,
            (SizeClass::Default, _) => 100_000,
            (SizeClass::Large, Kind::Apply | Kind::TinyChunk1) => 20_000,
            (SizeClass::Large, _) => 1_000_000,
        }
    }

    fn unit(&self) -> Unit {
        match self.kind {
            Kind::Apply => Unit { label: "us/call", rate: false, scale: 1e6 },
            _ => Unit { label: "Mtask/s", rate: true, scale: 1e-6 },
        }
    }

    fn reference(&self, size: usize) -> Digest {
        match self.kind {
            Kind::Strings => vec![names(size).iter().map(|s| s.len() as f64).sum()],
            _ => vec![(0..size as u64).map(|x| plus_one(x) as f64).sum()],
        }
    }

    fn native(
        &self,
        contender: Contender,
        size: usize,
        workers: usize,
    ) -> Option<Result<Box<dyn Runner>, String>> {
        let build = || -> Result<Box<dyn Runner>, String> {
            let (pool, rayon) = native::pools(contender, workers)?;
            let (ints, strings) = match self.kind {
                Kind::Strings => (Vec::new(), names(size)),
                _ => ((0..size as u64).collect(), Vec::new()),
            };
            Ok(Box::new(TaskRunner { kind: self.kind, ints, strings, pool, rayon }))
        };
        // A round trip to another worker has no sequential counterpart.
        let fits = match contender {
            Contender::Shmpool | Contender::Rayon => true,
            Contender::Sequential => self.kind != Kind::Apply,
            _ => false,
        };
        fits.then(build)
    }
}

/// One native contender's inputs and pool.
struct TaskRunner {
    kind: Kind,
    ints: Vec<u64>,
    strings: Vec<String>,
    pool: Option<Pool>,
    rayon: Option<rayon::ThreadPool>,
}

impl TaskRunner {
    /// One pass; returns the sum of the results.
    fn once(&mut self) -> Result<f64, String> {
        let err = |e: shmpool::Error| e.to_string();
        let sum = |v: Vec<u64>| v.iter().map(|&x| x as f64).sum::<f64>();
        let ints = &self.ints;
        Ok(match (self.kind, &mut self.pool, &self.rayon) {
            (Kind::Tiny, Some(p), _) => sum(p.map_pod(plus_one, ints, None).map_err(err)?),
            (Kind::TinyChunk1, Some(p), _) => {
                sum(p.map_pod(plus_one, ints, Some(1)).map_err(err)?)
            }
            (Kind::Apply, Some(p), _) => {
                let mut s = 0.0;
                for &i in ints {
                    s += p.apply_pod(plus_one, i).map_err(err)? as f64;
                }
                s
            }
            (Kind::Strings, Some(p), _) => sum(p.map(str_len, &self.strings, None).map_err(err)?),
            (Kind::Tiny, None, Some(r)) => {
                sum(r.install(|| ints.par_iter().map(|&x| plus_one(x)).collect()))
            }
            (Kind::TinyChunk1, None, Some(r)) => {
                sum(r.install(|| ints.par_iter().with_max_len(1).map(|&x| plus_one(x)).collect()))
            }
            (Kind::Apply, None, Some(r)) => {
                ints.iter().map(|&i| r.install(|| plus_one(i)) as f64).sum()
            }
            (Kind::Strings, None, Some(r)) => sum(r.install(|| {
                self.strings.par_iter().map(|s| str_len(black_box(s.clone()))).collect()
            })),
            (Kind::Strings, None, None) => {
                sum(self.strings.iter().map(|s| str_len(black_box(s.clone()))).collect())
            }
            (_, None, None) => sum(ints.iter().map(|&x| black_box(plus_one)(x)).collect()),
        })
    }
}

impl Runner for TaskRunner {
    fn check(&mut self) -> Result<Digest, String> {
        Ok(vec![self.once()?])
    }

    fn run(&mut self) -> Result<f64, String> {
        native::timed(|| self.once())
    }
}
