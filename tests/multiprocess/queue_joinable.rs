//! The unbounded `JoinableQueue` (the default, Python's `JoinableQueue()`) between processes:
//! Python's "join the producers, then consume, then `join` the queue" program under fork and
//! the default start method, with the unfinished count shared through the chain's anchor.

use std::time::Duration;

use shmpool::queue::{JoinTimeoutError, TaskDoneError};
use shmpool::{Context, JoinableQueue, SegmentHandle, StartMethod, get_context};

use crate::harness::{Tests, register};

pub fn tests() -> Tests {
    register! {
        join_producers_then_consume_then_join in [StartMethod::Fork],
        clean join_producers_then_consume_then_join_under_the_default_start_method,
    }
}

const PRODUCERS: u64 = 3;
const CONSUMERS: u64 = 3;
/// Together more than the first ring holds (64 KiB of 20-byte frames), so the chain grows.
const PER_PRODUCER: u64 = 5_000;
const TOTAL: u64 = PRODUCERS * PER_PRODUCER;
const PATIENCE: Duration = Duration::from_secs(20);

/// A producer: opens the queue by its handle and puts its items.
fn produce((h, p): (SegmentHandle, u64)) -> Result<(), String> {
    let q = JoinableQueue::<u64>::open_handle(&h).map_err(|e| e.to_string())?;
    (0..PER_PRODUCER).try_for_each(|i| q.put(p * PER_PRODUCER + i).map_err(|e| e.to_string()))
}

/// A second process's view of the counter: it must be `expected` (the parent's count).
fn check_counter((h, expected): (SegmentHandle, u64)) -> Result<(), String> {
    let q = JoinableQueue::<u64>::open_handle(&h).map_err(|e| e.to_string())?;
    match q.unfinished() {
        n if n == expected => Ok(()),
        n => Err(format!("the child sees {n} unfinished items, the parent {expected}")),
    }
}

/// A consumer: takes `n` items and marks each done.
fn consume((h, n): (SegmentHandle, u64)) -> Result<(), String> {
    let q = JoinableQueue::<u64>::open_handle(&h).map_err(|e| e.to_string())?;
    for _ in 0..n {
        q.get_timeout(PATIENCE).map_err(|e| e.to_string())?;
        q.task_done().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn run_to_the_end(ctx: &Context, mut p: shmpool::process::Process) {
    let st = p.join_timeout(PATIENCE).unwrap();
    let st = st.expect("a child did not finish (a producer waiting for room?)");
    assert!(st.success(), "{}: {st}", ctx.method());
}

fn join_producers_then_consume_then_join_with(ctx: Context) {
    let q = JoinableQueue::<u64>::new().unwrap();
    let producers: Vec<_> =
        (0..PRODUCERS).map(|p| ctx.start(produce, (q.handle(), p)).unwrap()).collect();
    for p in producers {
        run_to_the_end(&ctx, p);
    }
    assert_eq!(q.qsize() as u64, TOTAL);
    assert_eq!(q.unfinished(), TOTAL);
    run_to_the_end(&ctx, ctx.start(check_counter, (q.handle(), TOTAL)).unwrap());
    assert!(matches!(
        q.join_timeout(Duration::from_millis(50)),
        Err(JoinTimeoutError::Timeout { .. })
    ));
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| ctx.start(consume, (q.handle(), TOTAL / CONSUMERS)).unwrap())
        .collect();
    q.join_timeout(PATIENCE).expect("join returns once every item is marked done");
    for c in consumers {
        run_to_the_end(&ctx, c);
    }
    assert_eq!(q.unfinished(), 0);
    assert!(q.is_empty());
    run_to_the_end(&ctx, ctx.start(check_counter, (q.handle(), 0)).unwrap());
    assert!(matches!(q.task_done(), Err(TaskDoneError)));
    drop(q);
    if ctx.method() == StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().expect("the forkserver shuts down cleanly");
    }
}

fn join_producers_then_consume_then_join(m: StartMethod) {
    join_producers_then_consume_then_join_with(get_context(m));
}

fn join_producers_then_consume_then_join_under_the_default_start_method() {
    join_producers_then_consume_then_join_with(Context::default());
}
