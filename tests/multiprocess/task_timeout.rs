//! Per-task timeouts (`PoolBuilder::task_timeout`): a task in an endless loop has its worker
//! killed and replaced, its result is `Error::TaskTimedOut` naming it, the other tasks' results
//! are right and the pool goes on; in a chunk of several tasks the others report the kill. And a
//! worker that retires (`maxtasksperchild`) right after spilling its results keeps them until
//! the parent has read them. Each under the default start method (the forkserver) and fork.

use std::time::{Duration, Instant};

use shmpool::{Error, Pool, StartMethod};

use crate::harness::{POOL_METHODS as METHODS, Tests, close_pool, register};

const TIMEOUT: Duration = Duration::from_millis(200);

pub fn tests() -> Tests {
    register! {
        a_task_in_an_endless_loop_times_out_and_the_pool_goes_on in METHODS,
        a_timed_out_chunk_of_several_tasks_fails_as_one in METHODS,
        pod_tasks_time_out_too in METHODS,
        a_retiring_worker_keeps_its_spilled_results in METHODS,
        a_timed_out_task_of_a_later_raw_bytes_batch_is_named_in_the_whole_input in METHODS,
    }
}

fn pool(m: StartMethod) -> Pool {
    Pool::builder().workers(2).start_method(m).task_timeout(TIMEOUT).build().unwrap()
}

/// Spins forever when `stuck`, else returns `x + 1`.
fn spin_if(stuck: bool, x: u32) -> u32 {
    while std::hint::black_box(stuck) {
        std::hint::spin_loop();
    }
    x + 1
}

/// `x + 1`, except for 3: an endless loop.
fn stuck_at_3(x: u32) -> u32 {
    spin_if(x == 3, x)
}

/// `x + 1`, except for 4: an endless loop.
fn stuck_at_4(x: u32) -> u32 {
    spin_if(x == 4, x)
}

fn a_task_in_an_endless_loop_times_out_and_the_pool_goes_on(m: StartMethod) {
    let mut pool = pool(m);
    let pids = pool.worker_pids();
    let t0 = Instant::now();
    let mut it = pool.imap(stuck_at_3, 0..6u32, Some(1)).unwrap();
    for i in 0..3u32 {
        assert_eq!(it.next().unwrap().unwrap(), i + 1);
    }
    match it.next().unwrap() {
        Err(Error::TaskTimedOut { task: 3, pid, after }) => {
            let took = t0.elapsed();
            assert!(took >= TIMEOUT && took < Duration::from_millis(300), "took {took:?}");
            assert!(pids.contains(&pid), "{pid} is not one of {pids:?}");
            assert_eq!(after, TIMEOUT);
        }
        other => panic!("expected task 3 to time out, got {other:?}"),
    }
    assert_eq!(it.next().unwrap().unwrap(), 5);
    assert_eq!(it.next().unwrap().unwrap(), 6);
    assert!(it.next().is_none());
    drop(it);
    // `map` fails with the timeout; the killed worker was replaced.
    match pool.map(stuck_at_3, 0..8u32, Some(1)) {
        Err(e @ Error::TaskTimedOut { task: 3, .. }) => {
            assert!(e.to_string().contains("task 3 ran past the pool's task timeout"), "{e}");
        }
        other => panic!("expected task 3 to time out, got {other:?}"),
    }
    // Each timed-out task's worker was replaced.
    let now = pool.worker_pids();
    assert_eq!(now.len(), 2);
    assert!(now.iter().any(|p| !pids.contains(p)), "no worker was replaced: {now:?}");
    // The pool goes on.
    assert_eq!(
        pool.map(|x: u32| x * 2, 0..10u32, None).unwrap(),
        (0..10).map(|x| x * 2).collect::<Vec<_>>()
    );
    assert_eq!(pool.apply(|x: u32| x + 1, 41).unwrap(), 42);
    close_pool(pool, m);
}

fn a_timed_out_chunk_of_several_tasks_fails_as_one(m: StartMethod) {
    let mut pool = pool(m);
    // Chunks of 3: tasks 3, 4, 5 share a chunk; task 4 loops.
    let got: Vec<_> = pool.imap(stuck_at_4, 0..9u32, Some(3)).unwrap().collect();
    for (i, r) in got.iter().enumerate() {
        match (i, r) {
            (4, Err(Error::TaskTimedOut { task: 4, .. })) => {}
            (3 | 5, Err(Error::WorkerDied { how, chunk: 1, .. })) => {
                assert!(
                    how.contains("task 4 of the same chunk ran past the task timeout"),
                    "{how}"
                );
            }
            (0..3 | 6..9, Ok(v)) => assert_eq!(*v, i as u32 + 1),
            _ => panic!("task {i}: unexpected {r:?}"),
        }
    }
    assert!(matches!(
        pool.map(stuck_at_4, 0..9u32, Some(3)),
        Err(Error::TaskTimedOut { task: 4, .. })
    ));
    // With a retry, the chunk runs again on another worker (and times out again).
    let mut pool2 = Pool::builder()
        .workers(2)
        .start_method(m)
        .task_timeout(TIMEOUT)
        .retries(1)
        .build()
        .unwrap();
    let t0 = Instant::now();
    assert!(matches!(
        pool2.map(stuck_at_4, 0..9u32, Some(3)),
        Err(Error::TaskTimedOut { task: 4, .. })
    ));
    assert!(t0.elapsed() >= 2 * TIMEOUT, "the retry ran too: {:?}", t0.elapsed());
    assert_eq!(pool2.map(|x: u32| x + 1, 0..9u32, Some(3)).unwrap(), (1..10).collect::<Vec<_>>());
    drop(pool2);
    assert_eq!(pool.map(|x: u32| x + 1, 0..9u32, Some(3)).unwrap(), (1..10).collect::<Vec<_>>());
    close_pool(pool, m);
}

fn pod_tasks_time_out_too(m: StartMethod) {
    let mut pool = pool(m);
    match pool.apply_pod(stuck_at_3, 3) {
        Err(Error::TaskTimedOut { task: 0, .. }) => {}
        other => panic!("expected the task to time out, got {other:?}"),
    }
    assert_eq!(pool.map_pod(stuck_at_3, &[0, 1, 2, 5], Some(1)).unwrap(), [1, 2, 3, 6]);
    // A task under the timeout is not killed, however the job runs.
    let slow = |x: u32| {
        std::thread::sleep(Duration::from_millis(50));
        x
    };
    assert_eq!(pool.map_pod(slow, &[1, 2, 3, 4, 5, 6], Some(3)).unwrap(), [1, 2, 3, 4, 5, 6]);
    close_pool(pool, m);
}

fn a_retiring_worker_keeps_its_spilled_results(m: StartMethod) {
    let mut pool = Pool::builder().workers(2).start_method(m).maxtasksperchild(1).build().unwrap();
    // Tiny results first: the next call's region is sized from them, so the big results do
    // not fit it and go through the workers' spill segments, by workers that then retire.
    assert_eq!(pool.map(|x: u32| x + 1, 0..4u32, Some(1)).unwrap(), [1, 2, 3, 4]);
    let big = |i: u32| vec![i; 4096];
    for round in 0..3 {
        let got = pool.map(big, 0..8u32, Some(1)).unwrap();
        assert!(got.iter().enumerate().all(|(i, v)| *v == big(i as u32)), "round {round}");
    }
    // Streaming: read while the job runs and its workers retire.
    let got: Vec<Vec<u32>> =
        pool.imap(big, 0..8u32, Some(1)).unwrap().map(Result::unwrap).collect();
    assert!(got.iter().enumerate().all(|(i, v)| *v == big(i as u32)));
    close_pool(pool, m);
}

/// `imap_buffered` over plain values (raw bytes, `task_from`) in batches of 2: task 3 is the
/// second of the second batch, and its timeout names it 3 (its index in the whole input, which
/// the worker's task clock stamps), not 1; the tasks after it run in later batches.
fn a_timed_out_task_of_a_later_raw_bytes_batch_is_named_in_the_whole_input(m: StartMethod) {
    let mut pool = pool(m);
    let got: Vec<_> = pool.imap_buffered(stuck_at_3, 0..8u32, 2).unwrap().collect();
    assert_eq!(got.len(), 8);
    for (i, r) in got.into_iter().enumerate() {
        match r {
            Ok(v) => assert!(i != 3 && v == i as u32 + 1, "task {i}: {v}"),
            Err(Error::TaskTimedOut { task: 3, after, .. }) if i == 3 => assert_eq!(after, TIMEOUT),
            Err(e) => panic!("task {i}: {e:?}"),
        }
    }
    close_pool(pool, m);
}
