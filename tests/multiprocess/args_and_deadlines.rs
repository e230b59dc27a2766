//! Queues as `Process` arguments, and timeouts too large for the clock.
//!
//! - Every queue flavour (`Queue` bounded and unbounded, `JoinableQueue`, `MessageQueue` bounded
//!   and unbounded) passed to a child target under each start method arrives open: the child
//!   takes what the parent put and puts an answer back, and exits 0.
//! - Every `*_timeout` given `Duration::MAX` waits as its untimed form does (it used to panic
//!   adding the timeout to `Instant::now()`): at once on a ready object, and until the item
//!   comes on an object that becomes ready later.

use std::time::{Duration, Instant};

use shmpool::{
    Barrier, BoundedSemaphore, Condition, Event, JoinableQueue, MessageQueue, Mutex, Queue, RLock,
    Semaphore, StartMethod, get_context, scope,
};

use crate::harness::{Tests, register};

const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer];

/// How long a wait on a ready object may take, generously.
const AT_ONCE: Duration = Duration::from_secs(2);

/// How long a test waits for a child's answer before failing.
const PATIENCE: Duration = Duration::from_secs(20);

pub fn tests() -> Tests {
    register! {
        every_queue_flavour_crosses_to_a_child_and_back in METHODS,
        timeouts_of_duration_max_on_ready_queues_return_at_once,
        timeouts_of_duration_max_on_ready_sync_objects_return_at_once,
        timeouts_of_duration_max_wait_for_an_item_that_comes_later,
        process_join_timeout_of_duration_max_returns_the_status in METHODS,
        scoped_join_timeout_of_duration_max_returns_the_status,
        forkserver_shutdown_with_duration_max_returns_at_once,
    }
}

/// Every queue flavour a child can be given.
type Queues = (Queue<u64>, Queue<u64>, JoinableQueue<u64>, MessageQueue, MessageQueue);

fn queues() -> Queues {
    (
        Queue::bounded(4).unwrap(),
        Queue::new().unwrap(),
        JoinableQueue::bounded(4).unwrap(),
        MessageQueue::bounded(1024, 128).unwrap(),
        MessageQueue::new().unwrap(),
    )
}

/// The child: takes one item from each queue and puts back one more than it (a string, for the
/// message queues); the joinable queue's item is marked done.
fn answer_each(qs: Queues) -> Result<(), String> {
    let (bounded, unbounded, joinable, messages, unbounded_messages) = qs;
    for q in [&bounded, &unbounded] {
        let n = q.get_timeout(PATIENCE).map_err(|e| e.to_string())?;
        q.put(n + 1).map_err(|e| e.to_string())?;
    }
    let n = joinable.get_timeout(PATIENCE).map_err(|e| e.to_string())?;
    joinable.task_done().map_err(|e| e.to_string())?;
    joinable.put(n + 1).map_err(|e| e.to_string())?;
    for q in [&messages, &unbounded_messages] {
        let s: String = q.get_timeout(PATIENCE).map_err(|e| e.to_string())?;
        q.put(&format!("{s}+1")).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn every_queue_flavour_crosses_to_a_child_and_back(m: StartMethod) {
    let qs = queues();
    let (bounded, unbounded, joinable, messages, unbounded_messages) = &qs;
    bounded.put(10).unwrap();
    unbounded.put(20).unwrap();
    joinable.put(30).unwrap();
    messages.put("forty").unwrap();
    unbounded_messages.put("fifty").unwrap();
    let mut p = get_context(m).start(answer_each, qs.clone()).unwrap();
    let st = p.join_timeout(PATIENCE).unwrap().expect("the child ends");
    assert!(st.success(), "{m}: {st}");
    // The child's puts came after its gets, so each queue now holds exactly the answer.
    assert_eq!(bounded.get_nowait().unwrap(), 11, "{m}");
    assert_eq!(unbounded.get_nowait().unwrap(), 21, "{m}");
    assert_eq!(joinable.get_nowait().unwrap(), 31, "{m}");
    joinable.task_done().unwrap();
    joinable.join_timeout(AT_ONCE).expect("every item was marked done");
    assert_eq!(messages.get_nowait::<String>().unwrap(), "forty+1", "{m}");
    assert_eq!(unbounded_messages.get_nowait::<String>().unwrap(), "fifty+1", "{m}");
    drop(p);
    drop(qs);
    if m == StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().expect("the forkserver shuts down cleanly");
    }
}

/// Runs `f` and checks it returned within [`AT_ONCE`].
fn at_once<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let t0 = Instant::now();
    let r = f();
    assert!(t0.elapsed() < AT_ONCE, "{what} with Duration::MAX took {:?}", t0.elapsed());
    r
}

fn timeouts_of_duration_max_on_ready_queues_return_at_once() {
    let (bounded, unbounded, joinable, messages, unbounded_messages) = queues();
    for (name, q) in [("Queue", &bounded), ("unbounded Queue", &unbounded)] {
        at_once(name, || q.put_timeout(1, Duration::MAX)).unwrap();
        assert_eq!(at_once(name, || q.get_timeout(Duration::MAX)).unwrap(), 1);
    }
    at_once("JoinableQueue::join_timeout", || joinable.join_timeout(Duration::MAX)).unwrap();
    for (name, q) in [("MessageQueue", &messages), ("unbounded MessageQueue", &unbounded_messages)]
    {
        at_once(name, || q.put_timeout("x", Duration::MAX)).unwrap();
        let got: String = at_once(name, || q.get_timeout(Duration::MAX)).unwrap();
        assert_eq!(got, "x");
    }
}

fn timeouts_of_duration_max_on_ready_sync_objects_return_at_once() {
    let e = Event::new().unwrap();
    e.set();
    assert!(at_once("Event::wait_timeout", || e.wait_timeout(Duration::MAX)));
    let s = Semaphore::new(1).unwrap();
    assert!(at_once("Semaphore::acquire_timeout", || s.acquire_timeout(Duration::MAX)));
    let b = BoundedSemaphore::new(1).unwrap();
    assert!(at_once("BoundedSemaphore::acquire_timeout", || b.acquire_timeout(Duration::MAX)));
    let r = RLock::new().unwrap();
    drop(at_once("RLock::acquire_timeout", || r.acquire_timeout(Duration::MAX)).unwrap());
    let m = Mutex::new(3u32).unwrap();
    let g = at_once("Mutex::lock_timeout", || m.lock_timeout(Duration::MAX)).unwrap();
    let c = Condition::new().unwrap();
    let (g, r) = at_once("Condition::wait_timeout_while", || {
        c.wait_timeout_while(g, Duration::MAX, |v| *v != 3)
    })
    .unwrap();
    assert!(!r.timed_out() && *g == 3);
    drop(g);
    let barrier = Barrier::new(1).unwrap();
    at_once("Barrier::wait_timeout", || barrier.wait_timeout(Duration::MAX)).unwrap();
}

/// A child (forked) that puts into each queue after a nap, long enough for the parent's waits to
/// be past their spinning, where the deadline is used.
fn put_later(qs: (Queue<u64>, Queue<u64>, MessageQueue, MessageQueue)) {
    std::thread::sleep(Duration::from_millis(50));
    qs.0.put(1).unwrap();
    qs.1.put(2).unwrap();
    qs.2.put(&3u8).unwrap();
    qs.3.put(&4u8).unwrap();
}

fn timeouts_of_duration_max_wait_for_an_item_that_comes_later() {
    let (bounded, unbounded, _, messages, unbounded_messages) = queues();
    let qs = (bounded, unbounded, messages, unbounded_messages);
    let mut p = get_context(StartMethod::Fork).start(put_later, qs.clone()).unwrap();
    let (bounded, unbounded, messages, unbounded_messages) = &qs;
    assert_eq!(bounded.get_timeout(Duration::MAX).unwrap(), 1);
    assert_eq!(unbounded.get_timeout(Duration::MAX).unwrap(), 2);
    assert_eq!(messages.get_timeout::<u8>(Duration::MAX).unwrap(), 3);
    assert_eq!(unbounded_messages.get_timeout::<u8>(Duration::MAX).unwrap(), 4);
    let st = p.join_timeout(PATIENCE).unwrap().expect("the child ends");
    assert!(st.success(), "{st}");
}

fn exit_with(code: i32) -> i32 {
    code
}

fn process_join_timeout_of_duration_max_returns_the_status(m: StartMethod) {
    let mut p = get_context(m).start(exit_with, 5).unwrap();
    // Not ready yet at first, perhaps: Duration::MAX waits as `join` does.
    let st = p.join_timeout(Duration::MAX).unwrap().expect("a wait without deadline ends");
    assert_eq!(st.code(), Some(5), "{m}: {st}");
    // Ready now: at once, the same status.
    let again = at_once("Process::join_timeout", || p.join_timeout(Duration::MAX)).unwrap();
    assert_eq!(again.and_then(|s| s.code()), Some(5), "{m}");
    drop(p);
    if m == StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().expect("the forkserver shuts down cleanly");
    }
}

fn scoped_join_timeout_of_duration_max_returns_the_status() {
    let st = scope(|s| {
        let mut child = s.fork(|| 6i32).unwrap();
        child.join_timeout(Duration::MAX).unwrap().expect("a wait without deadline ends")
    })
    .unwrap();
    assert_eq!(st.code(), Some(6), "{st}");
}

fn forkserver_shutdown_with_duration_max_returns_at_once() {
    let mut p = get_context(StartMethod::ForkServer).start(exit_with, 0).unwrap();
    assert!(p.join_timeout(PATIENCE).unwrap().expect("the child ends").success());
    drop(p);
    at_once("shutdown_forkserver_timeout", || {
        shmpool::process::shutdown_forkserver_timeout(Duration::MAX)
    })
    .expect("the forkserver shuts down cleanly");
}
