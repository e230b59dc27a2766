//! Queues between forked processes: delivery, order, wakes, close, join, dead peers.

use std::time::{Duration, Instant};

use shmpool::queue::{
    GetError, GetTimeoutError, JoinTimeoutError, MessageGetError, MessageGetTimeoutError,
    MessagePutError, PutError, PutTimeoutError, TaskDoneError, TryGetError,
};
use shmpool::{Error, JoinableQueue, MessageQueue, Queue, SharedArray, ShmOptions, scope};

use crate::harness::{Tests, register};

pub fn tests() -> Tests {
    register! {
        mpmc_delivers_every_item_once_in_producer_order,
        mpmc_through_a_single_slot_keeps_order_and_count,
        blocked_consumer_wakes_when_a_producer_puts,
        blocked_producer_wakes_when_a_consumer_gets,
        close_wakes_every_waiter_with_an_error,
        timeouts_fire_in_a_child,
        joinable_join_returns_after_every_task_done,
        consumer_gets_peer_died_when_the_producer_is_killed,
        producer_gets_peer_died_when_the_consumer_is_killed,
        join_gets_peer_died_when_the_consumer_is_killed,
        child_opens_queue_by_handle_and_type_is_checked,
        message_queue_carries_variable_messages_between_processes,
        message_queue_consumer_gets_peer_died,
        getter_reports_a_slot_a_dead_producer_claimed,
        putter_reports_a_slot_a_dead_consumer_claimed,
        message_queue_open_rejects_a_crafted_header,
        message_queue_get_rejects_a_crafted_length_prefix,
        message_queue_type_tags_agree_across_processes,
    }
}

const PRODUCERS: u32 = 3;
const CONSUMERS: usize = 2;
const PER_PRODUCER: u32 = 20_000;
const STOP: u32 = u32::MAX;

/// Exit codes the children use to say what went wrong.
const ORDER_BROKEN: i32 = 3;
const UNEXPECTED: i32 = 4;

fn mpmc_delivers_every_item_once_in_producer_order() {
    // A small ring, so producers and consumers both block and wake many times.
    mpmc(64, PER_PRODUCER);
}

fn mpmc_through_a_single_slot_keeps_order_and_count() {
    // One slot (the capacity where the textbook sequence encoding breaks): nearly every put and
    // get waits for the other side, so the sleep/wake path runs constantly under contention.
    mpmc(1, 3_000);
}

fn mpmc(capacity: usize, per_producer: u32) {
    let q = Queue::<[u32; 2]>::bounded(capacity).unwrap();
    let total = (PRODUCERS * per_producer) as usize;
    let mut seen = SharedArray::<u32>::zeroed(total * CONSUMERS).unwrap();
    scope(|s| {
        let mut producers = Vec::new();
        for p in 0..PRODUCERS {
            let q = &q;
            producers.push(
                s.fork(move || {
                    (0..per_producer)
                        .try_for_each(|i| q.put_timeout([p, i], Duration::from_secs(20)))
                })
                .unwrap(),
            );
        }
        let mut consumers = Vec::new();
        for mine in seen.split_mut(CONSUMERS) {
            let q = &q;
            consumers.push(
                s.fork_with(mine, move |mine| {
                    let mut last = [None::<u32>; PRODUCERS as usize];
                    loop {
                        let [p, i] = match q.get_timeout(Duration::from_secs(20)) {
                            Ok(item) => item,
                            Err(_) => return UNEXPECTED,
                        };
                        if p == STOP {
                            return 0;
                        }
                        if last[p as usize].is_some_and(|prev| prev >= i) {
                            return ORDER_BROKEN;
                        }
                        last[p as usize] = Some(i);
                        mine[(p * per_producer + i) as usize] += 1;
                    }
                })
                .unwrap(),
            );
        }
        for c in producers {
            let st = c.join().unwrap();
            assert!(st.success(), "producer: {st}");
        }
        for _ in 0..CONSUMERS {
            q.put([STOP, 0]).unwrap();
        }
        for c in consumers {
            let st = c.join().unwrap();
            assert!(st.success(), "consumer: {st}");
        }
    })
    .unwrap();
    let (a, b) = seen.split_at(total);
    for k in 0..total {
        assert_eq!(a[k] + b[k], 1, "item {k} delivered {} times", a[k] + b[k]);
    }
    assert!(q.is_empty());
}

fn blocked_consumer_wakes_when_a_producer_puts() {
    let q = Queue::<u64>::bounded(4).unwrap();
    scope(|s| {
        let q2 = &q;
        let child = s.fork(move || match q2.get() {
            Ok(v) => v as i32,
            Err(_) => UNEXPECTED,
        });
        let child = child.unwrap();
        // Give the child time to spin out and fall asleep on the futex.
        std::thread::sleep(Duration::from_millis(150));
        q.put(42).unwrap();
        let st = child.join().unwrap();
        assert_eq!(st.code(), Some(42), "{st}");
    })
    .unwrap();
}

fn blocked_producer_wakes_when_a_consumer_gets() {
    let q = Queue::<u64>::bounded(1).unwrap();
    q.put(1).unwrap();
    scope(|s| {
        let q2 = &q;
        let child = s
            .fork(move || match q2.put(2) {
                Ok(()) => 0,
                Err(_) => UNEXPECTED,
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(q.get().unwrap(), 1);
        let st = child.join().unwrap();
        assert!(st.success(), "{st}");
        assert_eq!(q.get().unwrap(), 2);
    })
    .unwrap();
}

const GOT_CLOSED: i32 = 7;

fn close_wakes_every_waiter_with_an_error() {
    let empty = Queue::<u64>::bounded(4).unwrap();
    let full = Queue::<u64>::bounded(1).unwrap();
    full.put(0).unwrap();
    let mq = MessageQueue::bounded(256, 64).unwrap();
    let t0 = Instant::now();
    scope(|s| {
        let mut kids = Vec::new();
        for _ in 0..3 {
            let q = &empty;
            kids.push(
                s.fork(move || match q.get() {
                    Err(GetError::Closed) => GOT_CLOSED,
                    _ => UNEXPECTED,
                })
                .unwrap(),
            );
        }
        let mq = &mq;
        kids.push(
            s.fork(move || match mq.get::<String>() {
                Err(MessageGetError::Closed) => GOT_CLOSED,
                _ => UNEXPECTED,
            })
            .unwrap(),
        );
        for _ in 0..2 {
            let q = &full;
            kids.push(
                s.fork(move || match q.put(1) {
                    Err(PutError::Closed) => GOT_CLOSED,
                    _ => UNEXPECTED,
                })
                .unwrap(),
            );
        }
        std::thread::sleep(Duration::from_millis(150));
        empty.close();
        full.close();
        mq.close();
        for k in kids {
            let st = k.join().unwrap();
            assert_eq!(st.code(), Some(GOT_CLOSED), "{st}");
        }
    })
    .unwrap();
    // The waits ended because of close, not because of some later timeout.
    assert!(t0.elapsed() < Duration::from_secs(30));
}

fn timeouts_fire_in_a_child() {
    let q = Queue::<u64>::bounded(1).unwrap();
    scope(|s| {
        let q = &q;
        let st = s
            .fork(move || {
                let t0 = Instant::now();
                let got = q.get_timeout(Duration::from_millis(80));
                if !matches!(got, Err(GetTimeoutError::Timeout { .. }))
                    || t0.elapsed() < Duration::from_millis(80)
                {
                    return UNEXPECTED;
                }
                q.put(1).unwrap();
                let t0 = Instant::now();
                let put = q.put_timeout(2, Duration::from_millis(80));
                if !matches!(put, Err(PutTimeoutError::Timeout { .. }))
                    || t0.elapsed() < Duration::from_millis(80)
                {
                    return UNEXPECTED;
                }
                0
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(st.success(), "{st}");
    })
    .unwrap();
    assert_eq!(q.get_nowait().unwrap(), 1);
}

fn joinable_join_returns_after_every_task_done() {
    const N: u64 = 500;
    let q = JoinableQueue::<u64>::bounded(16).unwrap();
    let mut done = SharedArray::<u64>::zeroed(CONSUMERS).unwrap();
    scope(|s| {
        let mut kids = Vec::new();
        for slot in done.split_mut(CONSUMERS) {
            let q = &q;
            kids.push(
                s.fork_with(slot, move |slot| -> shmpool::Result<()> {
                    loop {
                        let v = q.get()?;
                        if v == u64::MAX {
                            q.task_done()?;
                            return Ok(());
                        }
                        slot[0] += 1;
                        q.task_done()?;
                    }
                })
                .unwrap(),
            );
        }
        for i in 0..N {
            q.put(i).unwrap();
        }
        for _ in 0..CONSUMERS {
            q.put(u64::MAX).unwrap();
        }
        q.join_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(q.unfinished(), 0);
        for k in kids {
            let st = k.join().unwrap();
            assert!(st.success(), "{st}");
        }
    })
    .unwrap();
    assert_eq!(done.iter().sum::<u64>(), N);
    assert!(matches!(q.task_done(), Err(TaskDoneError)));
}

const GOT_PEER_DIED: i32 = 9;

fn consumer_gets_peer_died_when_the_producer_is_killed() {
    let q = Queue::<u64>::bounded(4).unwrap();
    scope(|s| {
        let qp = &q;
        let producer = s
            .fork(move || {
                qp.put(5).unwrap();
                std::thread::sleep(Duration::from_secs(50));
            })
            .unwrap();
        let qc = &q;
        let mut consumer = s
            .fork(move || {
                if qc.get().ok() != Some(5) {
                    return UNEXPECTED;
                }
                match qc.get() {
                    Err(GetError::PeerDied { .. }) => GOT_PEER_DIED,
                    _ => UNEXPECTED,
                }
            })
            .unwrap();
        // Let the consumer take the item and fall asleep on the empty queue.
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            consumer.join_timeout(Duration::ZERO).unwrap().is_none(),
            "the consumer should be waiting"
        );
        producer.kill().unwrap();
        let st =
            consumer.join_timeout(Duration::from_secs(10)).unwrap().expect("the consumer hung");
        assert_eq!(st.code(), Some(GOT_PEER_DIED), "{st}");
        assert_eq!(producer.join().unwrap().signal(), Some(libc::SIGKILL));
    })
    .unwrap();
}

fn producer_gets_peer_died_when_the_consumer_is_killed() {
    let q = Queue::<u64>::bounded(1).unwrap();
    scope(|s| {
        let qc = &q;
        let consumer = s
            .fork(move || {
                qc.get().unwrap();
                std::thread::sleep(Duration::from_secs(50));
            })
            .unwrap();
        let qp = &q;
        let mut producer = s
            .fork(move || {
                // The first fills the ring after the consumer took one; the last must wait.
                for i in 0..3 {
                    match qp.put(i) {
                        Ok(()) => {}
                        Err(PutError::PeerDied { .. }) => return GOT_PEER_DIED,
                        Err(_) => return UNEXPECTED,
                    }
                }
                UNEXPECTED
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            producer.join_timeout(Duration::ZERO).unwrap().is_none(),
            "the producer should be waiting"
        );
        consumer.kill().unwrap();
        let st =
            producer.join_timeout(Duration::from_secs(10)).unwrap().expect("the producer hung");
        assert_eq!(st.code(), Some(GOT_PEER_DIED), "{st}");
        assert_eq!(consumer.join().unwrap().signal(), Some(libc::SIGKILL));
    })
    .unwrap();
}

fn join_gets_peer_died_when_the_consumer_is_killed() {
    let q = JoinableQueue::<u64>::bounded(4).unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    scope(|s| {
        let qc = &q;
        let consumer = s
            .fork(move || {
                qc.get().unwrap();
                qc.task_done().unwrap();
                std::thread::sleep(Duration::from_secs(50)); // never handles the second item
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        consumer.kill().unwrap();
        let e = q.join_timeout(Duration::from_secs(10)).unwrap_err();
        assert!(matches!(e, JoinTimeoutError::PeerDied { .. }), "{e}");
        assert_eq!(consumer.join().unwrap().signal(), Some(libc::SIGKILL));
    })
    .unwrap();
    assert_eq!(q.unfinished(), 1);
}

fn child_opens_queue_by_handle_and_type_is_checked() {
    let q = Queue::<[u16; 3]>::bounded(8).unwrap();
    let h = q.handle();
    scope(|s| {
        let h = &h;
        let st = s
            .fork(move || {
                if Queue::<u64>::open_handle(h).is_ok() {
                    return UNEXPECTED; // wrong item type must be refused
                }
                let mine = Queue::<[u16; 3]>::open_handle(h).unwrap();
                mine.put([1, 2, 3]).unwrap();
                0
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(st.success(), "{st}");
    })
    .unwrap();
    assert_eq!(q.get().unwrap(), [1, 2, 3]);
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Job {
    id: u32,
    name: String,
    payload: Vec<u8>,
}

fn job(id: u32) -> Job {
    Job { id, name: format!("job-{id}"), payload: vec![id as u8; (id as usize * 37) % 700] }
}

fn message_queue_carries_variable_messages_between_processes() {
    const N: u32 = 2000;
    // A ring much smaller than the data, so frames wrap around its end many times.
    let q = MessageQueue::bounded(4096, 1024).unwrap();
    scope(|s| {
        let q2 = &q;
        let child = s
            .fork(move || -> shmpool::Result<()> {
                for id in 0..N {
                    q2.put(&job(id))?;
                }
                match q2.put_bytes(&[0u8; 1025]) {
                    Err(MessagePutError::TooLarge { .. }) => Ok(()),
                    other => panic!("oversize message was not refused: {other:?}"),
                }
            })
            .unwrap();
        for id in 0..N {
            let got: Job = q.get_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(got, job(id));
        }
        let st = child.join().unwrap();
        assert!(st.success(), "{st}");
    })
    .unwrap();
    assert!(q.is_empty());
}

fn message_queue_consumer_gets_peer_died() {
    let q = MessageQueue::bounded(1024, 64).unwrap();
    scope(|s| {
        let q2 = &q;
        let producer = s
            .fork(move || {
                q2.put("only one").unwrap();
                std::thread::sleep(Duration::from_secs(50));
            })
            .unwrap();
        assert_eq!(q.get::<String>().unwrap(), "only one");
        producer.kill().unwrap();
        // The producer is a zombie until joined: it must still count as dead.
        let e = q.get_timeout::<String>(Duration::from_secs(10)).unwrap_err();
        assert!(matches!(e, MessageGetTimeoutError::PeerDied { .. }), "{e}");
        assert_eq!(producer.join().unwrap().signal(), Some(libc::SIGKILL));
    })
    .unwrap();
}

/// Writes `bytes` at `offset` of the named segment's file, as a crashed or hostile process could.
fn poke(name: &str, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm/{name}")).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

// Queue control block offsets (README.md): tail's line at 192, head's at 256.
const QUEUE_TAIL: u64 = 192;
const QUEUE_HEAD: u64 = 256;

fn getter_reports_a_slot_a_dead_producer_claimed() {
    let q = Queue::<u64>::bounded_with(4, &ShmOptions::new().generated_name()).unwrap();
    let name = q.name().unwrap().to_string();
    scope(|s| {
        let qc = &q;
        let st = s.fork(move || qc.put(10).unwrap()).unwrap().join().unwrap();
        assert!(st.success(), "{st}");
    })
    .unwrap();
    assert_eq!(q.get().unwrap(), 10);
    // The dead producer claimed position 1 (moved tail) and died before publishing it.
    poke(&name, QUEUE_TAIL, &2u64.to_le_bytes());
    // A live producer puts behind the hole.
    q.put(20).unwrap();
    let t0 = Instant::now();
    let e = q.get_timeout(Duration::from_secs(10)).unwrap_err();
    assert!(matches!(e, GetTimeoutError::SlotAbandoned { pos: 1 }), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5), "reported only after {:?}", t0.elapsed());
    // The queue stays stuck (no repair), and says so again instead of hanging.
    assert!(matches!(q.get(), Err(GetError::SlotAbandoned { .. })));
}

fn putter_reports_a_slot_a_dead_consumer_claimed() {
    let q = Queue::<u64>::bounded_with(2, &ShmOptions::new().generated_name()).unwrap();
    let name = q.name().unwrap().to_string();
    q.put(1).unwrap();
    q.put(2).unwrap();
    scope(|s| {
        let qc = &q;
        let st = s.fork(move || assert_eq!(qc.get().unwrap(), 1)).unwrap().join().unwrap();
        assert!(st.success(), "{st}");
    })
    .unwrap();
    // The dead consumer claimed position 1 (moved head) and died before freeing its slot.
    poke(&name, QUEUE_HEAD, &2u64.to_le_bytes());
    // This process becomes a live consumer too, then fills the one free slot.
    assert!(matches!(q.get_nowait(), Err(TryGetError::Empty)));
    q.put(3).unwrap();
    let e = q.put_timeout(4, Duration::from_secs(10)).unwrap_err();
    assert!(matches!(e, PutTimeoutError::SlotAbandoned { pos: 1 }), "{e}");
}

// MessageQueue control block: info {tag, capacity, max_message} at 128; the ring at 960.
// Frames: u32 LE length, u64 LE type tag, payload.
const MQ_MAX_MESSAGE: u64 = 144;
const MQ_RING: u64 = 960;

fn message_queue_open_rejects_a_crafted_header() {
    let q = MessageQueue::bounded_with(64, 8, &ShmOptions::new().generated_name()).unwrap();
    let name = q.name().unwrap().to_string();
    // u64::MAX - 2 + 12 would wrap to 9 and pass an unchecked `max + 12 > capacity`; 53 leaves
    // no room for the 12-byte frame header in 64 bytes.
    for bad in [0, u64::MAX - 2, u64::MAX - 10, u64::MAX, 53, 61, 1 << 40] {
        poke(&name, MQ_MAX_MESSAGE, &bad.to_le_bytes());
        let e = MessageQueue::open(&name).unwrap_err();
        assert!(matches!(e, Error::CorruptHeader { .. }), "max_message {bad}: {e}");
    }
    poke(&name, MQ_MAX_MESSAGE, &52u64.to_le_bytes());
    assert_eq!(MessageQueue::open(&name).unwrap().max_message(), 52);
}

fn message_queue_get_rejects_a_crafted_length_prefix() {
    let q = MessageQueue::bounded_with(64, 8, &ShmOptions::new().generated_name()).unwrap();
    let name = q.name().unwrap().to_string();
    for (i, bad) in [9u32, 53, u32::MAX].into_iter().enumerate() {
        q.put_bytes(&[1, 2, 3]).unwrap();
        // Each earlier round consumed one 15-byte frame.
        let prefix = MQ_RING + 15 * i as u64;
        poke(&name, prefix, &bad.to_le_bytes());
        let other = MessageQueue::open(&name).unwrap();
        let e = other.get_bytes().unwrap_err();
        assert!(matches!(e, MessageGetError::BadMessage { .. }), "prefix {bad}: {e}");
        // The frame stays (nothing was consumed); fix the prefix and it reads whole.
        poke(&name, prefix, &3u32.to_le_bytes());
        assert_eq!(q.get_bytes().unwrap(), [1, 2, 3]);
    }
}

fn message_queue_type_tags_agree_across_processes() {
    let q = MessageQueue::bounded(4096, 256).unwrap();
    scope(|s| {
        let q2 = &q;
        let producer = s
            .fork(move || -> shmpool::Result<()> {
                q2.put(&(1u8, 2u8))?;
                q2.put("borrowed")?;
                q2.put_bytes(b"raw")?;
                Ok(q2.put(&(7u32, vec!["a", "b"]))?)
            })
            .unwrap();
        let st = producer.join().unwrap();
        assert!(st.success(), "{st}");
        // The case: read as a String, (1, 2) would be "\u{2}". Refused and kept.
        let e = q.get::<String>().unwrap_err();
        assert!(
            matches!(&e, MessageGetError::BadMessage { reason } if reason.contains("stays queued")),
            "{e}"
        );
        assert_eq!(q.get::<(u8, u8)>().unwrap(), (1, 2));
        // The child's tag for &str is the parent's for String.
        assert_eq!(q.get::<String>().unwrap(), "borrowed");
        assert!(matches!(q.get::<Vec<u8>>(), Err(MessageGetError::BadMessage { .. })));
        assert_eq!(q.get_bytes().unwrap(), b"raw");
        // The child's last message is still queued; the parent puts the same, and a child gets
        // both as the owned type.
        q.put(&(7u32, vec!["a", "b"])).unwrap();
        let consumer = s
            .fork(move || {
                let want = (7, vec!["a".to_string(), "b".to_string()]);
                for _ in 0..2 {
                    let got = q2.get_timeout::<(u32, Vec<String>)>(Duration::from_secs(20));
                    assert_eq!(got.unwrap(), want);
                }
            })
            .unwrap();
        let st = consumer.join().unwrap();
        assert!(st.success(), "{st}");
    })
    .unwrap();
    assert!(q.is_empty());
}
