//! Pool start per start method: start a pool of W workers, run a first tiny `map` on it, close
//! and join it, as Python's `with Pool(W) as p: p.map(...)`.

use shmpool::{Pool, StartMethod};

use super::{Digest, Runner, Workload, native};
use crate::bench::contender::Contender;
use crate::bench::options::SizeClass;
use crate::bench::record::Unit;

/// Pool start under one start method.
pub(crate) struct Start {
    method: StartMethod,
}

/// Pool start, fork.
pub(crate) const START_FORK: Start = Start { method: StartMethod::Fork };
/// Pool start, forkserver.
pub(crate) const START_FORKSERVER: Start = Start { method: StartMethod::ForkServer };
/// Pool start, spawn.
pub(crate) const START_SPAWN: Start = Start { method: StartMethod::Spawn };

fn plus_one(x: u64) -> u64 {
    x + 1
}

impl Workload for Start {
    fn name(&self) -> &'static str {
        match self.method {
            StartMethod::Fork => "start-fork",
            StartMethod::ForkServer => "start-forkserver",
            StartMethod::Spawn => "start-spawn",
        }
    }

    fn about(&self) -> &'static str {
        "Pool(W) start + first map(x+1) over N integers + close and join, per start method"
    }

    fn size(&self, class: SizeClass) -> usize {
        match class {
            SizeClass::Exact(n) => n,
            _ => 100,
        }
    }

    fn items(&self, _size: usize) -> f64 {
        1.0
    }

    fn unit(&self) -> Unit {
        Unit { label: "ms/start", rate: false, scale: 1e3 }
    }

    fn reference(&self, size: usize) -> Digest {
        vec![(0..size as u64).map(|x| plus_one(x) as f64).sum()]
    }

    fn native(
        &self,
        contender: Contender,
        size: usize,
        workers: usize,
    ) -> Option<Result<Box<dyn Runner>, String>> {
        (contender == Contender::Shmpool).then(|| {
            Ok(Box::new(StartRunner {
                method: self.method,
                workers,
                items: (0..size as u64).collect(),
            }) as Box<dyn Runner>)
        })
    }
}

/// Starts a fresh pool each round.
struct StartRunner {
    method: StartMethod,
    workers: usize,
    items: Vec<u64>,
}

impl StartRunner {
    fn once(&self) -> shmpool::Result<f64> {
        let mut pool = Pool::builder().workers(self.workers).start_method(self.method).build()?;
        let sum = pool.map_pod(plus_one, &self.items, None)?.iter().map(|&x| x as f64).sum();
        pool.close();
        pool.join()?;
        Ok(sum)
    }
}

impl Runner for StartRunner {
    fn check(&mut self) -> Result<Digest, String> {
        Ok(vec![self.once().map_err(|e| e.to_string())?])
    }

    fn run(&mut self) -> Result<f64, String> {
        native::timed(|| self.once().map_err(|e| e.to_string()))
    }
}
