//! The unbounded `MessageQueue` (the default, Python's `Queue()`) between processes: Python's
//! "join the producers, then drain the queue" program under every start method, growth past
//! several rings made by children that then exit, and dead producers and consumers.

use std::time::{Duration, Instant};

use shmpool::queue::MessageGetTimeoutError;
use shmpool::{Context, MessageQueue, Queue, SegmentHandle, StartMethod, get_context, scope};

use crate::harness::{Tests, register};

pub fn tests() -> Tests {
    register! {
        join_then_drain in [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn],
        clean join_then_drain_under_the_default_start_method,
        pod_queue_join_then_drain in [StartMethod::Fork, StartMethod::Spawn],
        a_bounded_queue_would_have_blocked_the_producers,
        consumer_reads_while_producers_grow_the_queue,
        killed_producer_that_grew_the_queue_leaves_it_usable,
        killed_consumer_does_not_stop_puts_or_other_gets,
    }
}

const PRODUCERS: u32 = 3;
/// Enough that each producer's items alone fill the first rings several times over.
const PER_PRODUCER: u32 = 20_000;

/// One item: (producer, sequence number, text), as a Python program would put a tuple.
type Item = (u32, u32, String);

fn item(p: u32, i: u32) -> Item {
    (p, i, format!("item {i} of producer {p}"))
}

/// A producer process: opens the queue by its handle (every start method) and puts its items.
fn produce((h, p, n): (SegmentHandle, u32, u32)) -> Result<(), String> {
    let q = MessageQueue::open_handle(&h).map_err(|e| e.to_string())?;
    for i in 0..n {
        q.put(&item(p, i)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The ring segments this process's queues hold now (`shmpool-<pid>-<nonce>-r<n>`). Each must
/// count as this process's (the queue's creator's) whichever process made it, or tools that
/// remove the segments of dead creators would take a live queue's rings.
fn rings_of_this_process() -> usize {
    let prefix = format!("shmpool-{}-", std::process::id());
    let names: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix) && n.contains("-r"))
        .collect();
    for n in &names {
        let info = shmpool::segment::inspect(n).unwrap();
        assert_eq!(info.creator_pid, std::process::id(), "ring {n}");
    }
    names.len()
}

/// Takes every item, checking each producer's order, and that nothing more is there.
fn drain(q: &MessageQueue, producers: u32, per: u32) {
    let mut next = vec![0u32; producers as usize];
    for _ in 0..producers * per {
        let (p, i, text): Item = q.get_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(i, next[p as usize], "producer {p}'s items out of order");
        assert_eq!(text, item(p, i).2);
        next[p as usize] += 1;
    }
    assert!(next.iter().all(|&n| n == per), "{next:?}");
    assert!(q.is_empty());
}

/// Python's program: start the producers, join them, THEN drain. With a queue that waits for
/// room this hangs (the producers wait for a consumer that waits for them); here the joins must
/// end within seconds and every item arrive.
fn join_then_drain_with(ctx: Context) {
    let q = MessageQueue::new().unwrap();
    let mut children: Vec<_> = (0..PRODUCERS)
        .map(|p| ctx.start(produce, (q.handle(), p, PER_PRODUCER)).unwrap())
        .collect();
    for c in &mut children {
        let st = c.join_timeout(Duration::from_secs(20)).unwrap();
        let st = st.expect("a producer did not finish: its puts waited for room");
        assert!(st.success(), "{st}");
    }
    assert_eq!(q.qsize(), (PRODUCERS * PER_PRODUCER) as usize);
    // The children made the rings after the first and have exited; the rings are still there.
    assert!(rings_of_this_process() >= 4, "{} rings", rings_of_this_process());
    drain(&q, PRODUCERS, PER_PRODUCER);
    drop(q);
    assert_eq!(rings_of_this_process(), 0, "ring names left behind");
    if ctx.method() == StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().expect("the forkserver shuts down cleanly");
    }
}

fn join_then_drain(m: StartMethod) {
    join_then_drain_with(get_context(m));
}

fn join_then_drain_under_the_default_start_method() {
    join_then_drain_with(Context::default());
}

/// A producer of plain items into an unbounded `Queue<[u32; 2]>`.
fn produce_pod((h, p, n): (SegmentHandle, u32, u32)) -> Result<(), String> {
    let q = Queue::<[u32; 2]>::open_handle(&h).map_err(|e| e.to_string())?;
    (0..n).try_for_each(|i| q.put([p, i]).map_err(|e| e.to_string()))
}

/// The same program with `Pod` items: `Queue::new()`.
fn pod_queue_join_then_drain(m: StartMethod) {
    let q = Queue::<[u32; 2]>::new().unwrap();
    let ctx = get_context(m);
    let mut children: Vec<_> = (0..PRODUCERS)
        .map(|p| ctx.start(produce_pod, (q.handle(), p, PER_PRODUCER)).unwrap())
        .collect();
    for c in &mut children {
        let st = c.join_timeout(Duration::from_secs(20)).unwrap();
        let st = st.expect("a producer did not finish: its puts waited for room");
        assert!(st.success(), "{st}");
    }
    assert!(rings_of_this_process() >= 3, "{} rings", rings_of_this_process());
    let mut next = [0u32; PRODUCERS as usize];
    for _ in 0..PRODUCERS * PER_PRODUCER {
        let [p, i] = q.get_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(i, next[p as usize], "producer {p}'s items out of order");
        next[p as usize] += 1;
    }
    assert!(q.is_empty());
    drop(q);
    assert_eq!(rings_of_this_process(), 0, "ring names left behind");
}

/// The same program with a bounded queue: the producers cannot finish before someone drains.
/// (What the unbounded default is for; it also shows the test above can fail.)
fn a_bounded_queue_would_have_blocked_the_producers() {
    let q = MessageQueue::bounded(64 * 1024, 1024).unwrap();
    let mut c = get_context(StartMethod::Fork).start(produce_bounded, q.handle()).unwrap();
    assert!(c.join_timeout(Duration::from_millis(500)).unwrap().is_none(), "did not block");
    drain(&q, 1, PER_PRODUCER);
    let st = c.join_timeout(Duration::from_secs(10)).unwrap().expect("still blocked");
    assert!(st.success(), "{st}");
}

fn produce_bounded(h: SegmentHandle) -> Result<(), String> {
    produce((h, 0, PER_PRODUCER))
}

/// Producers and a consumer at once: the consumer walks rings as producers add them.
fn consumer_reads_while_producers_grow_the_queue() {
    let q = MessageQueue::new().unwrap();
    scope(|s| {
        let q = &q;
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                s.fork(move || {
                    (0..PER_PRODUCER)
                        .try_for_each(|i| q.put(&item(p, i)).map_err(|e| e.to_string()))
                })
                .unwrap()
            })
            .collect();
        drain(q, PRODUCERS, PER_PRODUCER);
        for c in producers {
            let st = c.join().unwrap();
            assert!(st.success(), "{st}");
        }
    })
    .unwrap();
    drop(q);
    assert_eq!(rings_of_this_process(), 0);
}

/// A producer killed while it puts (and grows the queue, maybe holding its lock, maybe between
/// making a ring and linking it): what it put before arrives in order, then the getter learns
/// that every producer died; a new producer can still put; nothing is left in /dev/shm.
fn killed_producer_that_grew_the_queue_leaves_it_usable() {
    let q = MessageQueue::new().unwrap();
    scope(|s| {
        let q2 = &q;
        let producer = s
            .fork(move || {
                let big = "x".repeat(3000);
                for i in 0u32.. {
                    q2.put(&(i, &big)).unwrap();
                }
            })
            .unwrap();
        // Let it grow the queue past its first rings.
        let start = Instant::now();
        while q.qsize() < 2000 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(2));
        }
        producer.kill().unwrap();
        let mut next = 0u32;
        let e = loop {
            match q.get_timeout::<(u32, String)>(Duration::from_secs(10)) {
                Ok((i, text)) => {
                    assert_eq!(i, next);
                    assert_eq!(text.len(), 3000);
                    next += 1;
                }
                Err(e) => break e,
            }
        };
        assert!(matches!(e, MessageGetTimeoutError::PeerDied { .. }), "{e}");
        assert!(next >= 2000, "only {next} items arrived");
        assert_eq!(producer.join().unwrap().signal(), Some(libc::SIGKILL));
        // The queue still works: the lock, if the producer died holding it, is taken over.
        let again = s.fork(move || q2.put(&(u32::MAX, String::new())).map_err(|e| e.to_string()));
        let st = again.unwrap().join().unwrap();
        assert!(st.success(), "{st}");
        assert_eq!(q.get_timeout::<(u32, String)>(Duration::from_secs(5)).unwrap().0, u32::MAX);
    })
    .unwrap();
    drop(q);
    assert_eq!(rings_of_this_process(), 0, "a ring the dead producer made was left behind");
}

/// A consumer killed while it drains: puts never wait on it, and another getter takes the rest
/// in order.
fn killed_consumer_does_not_stop_puts_or_other_gets() {
    let q = MessageQueue::new().unwrap();
    for i in 0..50_000u32 {
        q.put(&i).unwrap();
    }
    scope(|s| {
        let q2 = &q;
        let consumer = s.fork(move || while q2.get::<u32>().is_ok() {}).unwrap();
        let start = Instant::now();
        while q.qsize() > 30_000 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        consumer.kill().unwrap();
        assert_eq!(consumer.join().unwrap().signal(), Some(libc::SIGKILL));
        // More puts, then the rest in order (the dead consumer took a prefix).
        for i in 50_000..60_000u32 {
            q.put_timeout(&i, Duration::from_secs(5)).unwrap();
        }
        let mut prev: u32 = q.get_timeout(Duration::from_secs(5)).unwrap();
        while let Ok(i) = q.get_nowait::<u32>() {
            assert_eq!(i, prev + 1);
            prev = i;
        }
        assert_eq!(prev, 59_999);
    })
    .unwrap();
}
