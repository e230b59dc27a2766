//! Queue throughput: one producer process puts N `u64`s on a bounded queue of 1024 slots, the
//! bench process gets them (Python: a `multiprocessing.Queue` and a producer `Process`).

use shmpool::{Pool, Queue, SegmentHandle};

use super::{Digest, Runner, Workload, native};
use crate::bench::contender::Contender;
use crate::bench::options::SizeClass;
use crate::bench::record::Unit;

/// The queue workload.
pub(crate) struct QueueThroughput;

/// The queue workload.
pub(crate) const QUEUE: QueueThroughput = QueueThroughput;

/// The producer, run by a pool worker: opens the queue and puts `0..n` on it. Returns `n`, or
/// `u64::MAX` when the queue cannot be opened or a put fails (the parent's gets then time out).
fn produce((queue, n): (SegmentHandle, u64)) -> u64 {
    let Ok(q) = Queue::<u64>::open_handle(&queue) else { return u64::MAX };
    for i in 0..n {
        if q.put(i).is_err() {
            return u64::MAX;
        }
    }
    n
}

impl Workload for QueueThroughput {
    fn name(&self) -> &'static str {
        "queue"
    }

    fn about(&self) -> &'static str {
        "N u64 messages from one producer process to this one through a queue (workers unused)"
    }

    fn size(&self, class: SizeClass) -> usize {
        class.pick(2_000, 50_000, 1_000_000)
    }

    fn unit(&self) -> Unit {
        Unit { label: "Mmsg/s", rate: true, scale: 1e-6 }
    }

    fn reference(&self, size: usize) -> Digest {
        vec![(0..size as u64).map(|x| x as f64).sum()]
    }

    fn native(
        &self,
        contender: Contender,
        size: usize,
        _workers: usize,
    ) -> Option<Result<Box<dyn Runner>, String>> {
        (contender == Contender::Shmpool).then(|| {
            let err = |e: shmpool::Error| e.to_string();
            let pool = Pool::new(1).map_err(err)?;
            let queue = Queue::<u64>::bounded(1024).map_err(err)?;
            Ok(Box::new(QueueRunner { pool, queue, n: size as u64 }) as Box<dyn Runner>)
        })
    }
}

/// A one-worker pool as the producer, and the queue.
struct QueueRunner {
    pool: Pool,
    queue: Queue<u64>,
    n: u64,
}

impl QueueRunner {
    fn once(&mut self) -> Result<f64, String> {
        let err = |e: shmpool::Error| e.to_string();
        let timeout = std::time::Duration::from_secs(60);
        let mut producer =
            self.pool.apply_async(produce, (self.queue.handle(), self.n)).map_err(err)?;
        let mut sum = 0.0;
        for _ in 0..self.n {
            let v = self.queue.get_timeout(timeout).map_err(|e| format!("queue get: {e}"))?;
            sum += v as f64;
        }
        let put = producer.get_timeout(timeout).map_err(err)?;
        if put != self.n {
            return Err("the producer could not open the queue or put on it".into());
        }
        Ok(sum)
    }
}

impl Runner for QueueRunner {
    fn check(&mut self) -> Result<Digest, String> {
        Ok(vec![self.once()?])
    }

    fn run(&mut self) -> Result<f64, String> {
        native::timed(|| self.once())
    }
}
