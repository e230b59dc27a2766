//! The Manager's `Barrier` and `Condition` proxies from several processes under each start
//! method, and their faults: timeouts, `abort`, a party or a lock holder killed.

use std::time::{Duration, Instant};

use shmpool::manager::{BarrierProxy, ConditionProxy, QueueProxy, ValueProxy};
use shmpool::{Error, Manager, StartMethod, get_context};

use crate::harness::{Tests, register};

const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer];

const CHILDREN: u64 = 3;
const PATIENCE: Duration = Duration::from_secs(20);
const PROMPTLY: Duration = Duration::from_secs(1);

pub fn tests() -> Tests {
    register! {
        a_barrier_holds_children_until_all_arrive in METHODS,
        a_barrier_breaks_on_a_timeout_an_abort_and_a_dead_party,
        a_condition_wakes_waiting_children in METHODS,
        a_condition_needs_its_lock_and_a_dead_holder_frees_it,
        a_notified_waiter_that_dies_passes_its_notification_on,
    }
}

fn finish(m: Manager) {
    m.shutdown().unwrap();
    shmpool::process::shutdown_forkserver().unwrap();
}

/// A child: two rounds at the barrier, reporting its arrival index after each.
fn two_rounds(args: (BarrierProxy, QueueProxy<(u64, u64)>)) -> Result<(), String> {
    let (b, out) = args;
    let e = |e: Error| e.to_string();
    for round in 0..2 {
        let i = b.wait_timeout(PATIENCE).map_err(e)?;
        out.put(&(round, i)).map_err(e)?;
    }
    Ok(())
}

fn a_barrier_holds_children_until_all_arrive(method: StartMethod) {
    let m = Manager::builder().start_method(method).start().unwrap();
    let b = m.barrier(CHILDREN + 1).unwrap();
    let out = m.queue::<(u64, u64)>().unwrap();
    let ctx = get_context(method);
    let mut kids: Vec<_> =
        (0..CHILDREN).map(|_| ctx.start(two_rounds, (b.clone(), out.clone())).unwrap()).collect();
    let t = Instant::now();
    while b.n_waiting().unwrap() < CHILDREN {
        assert!(t.elapsed() < PATIENCE, "the children never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(out.len().unwrap(), 0, "a child passed the barrier before the last party");
    let mut indices = vec![b.wait().unwrap()];
    indices.extend((0..CHILDREN).map(|_| out.get_timeout(PATIENCE).unwrap().1));
    indices.sort_unstable();
    assert_eq!(indices, (0..=CHILDREN).collect::<Vec<_>>());
    b.wait().unwrap();
    for k in &mut kids {
        let st = k.join().unwrap();
        assert!(st.success(), "{st}");
    }
    let second: Vec<u64> = (0..CHILDREN).map(|_| out.get_nowait().unwrap().unwrap().0).collect();
    assert_eq!(second, vec![1; CHILDREN as usize]);
    assert!(!b.is_broken().unwrap());
    assert_eq!(b.parties().unwrap(), CHILDREN + 1);
    assert!(m.barrier(0).is_err());
    finish(m);
}

/// A child: waits at the barrier; succeeds if the wait ends broken.
fn wait_broken(b: BarrierProxy) -> Result<(), String> {
    match b.wait_timeout(PATIENCE) {
        Err(Error::BrokenBarrier) => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

fn a_barrier_breaks_on_a_timeout_an_abort_and_a_dead_party() {
    let m = Manager::builder().start_method(StartMethod::Fork).start().unwrap();
    let b = m.barrier(2).unwrap();
    let is_broken = |r: Result<u64, Error>| matches!(r, Err(Error::BrokenBarrier));
    // A timeout breaks it for everyone, until reset.
    assert!(is_broken(b.wait_timeout(Duration::from_millis(50))));
    assert!(b.is_broken().unwrap());
    assert!(is_broken(b.wait_timeout(PATIENCE)));
    b.reset().unwrap();
    assert!(!b.is_broken().unwrap());
    let arrived = |b: &BarrierProxy| {
        let t = Instant::now();
        while b.n_waiting().unwrap() < 1 {
            assert!(t.elapsed() < PATIENCE, "the child never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    // An abort ends a waiting party's wait.
    let ctx = get_context(StartMethod::Spawn);
    let mut kid = ctx.start(wait_broken, b.clone()).unwrap();
    arrived(&b);
    b.abort().unwrap();
    let st = kid.join().unwrap();
    assert!(st.success(), "{st}");
    b.reset().unwrap();
    // A party killed while waiting breaks it: the others learn at once.
    let mut kid = ctx.start(wait_broken, b.clone()).unwrap();
    arrived(&b);
    kid.kill().unwrap();
    assert!(!kid.join().unwrap().success());
    // (Its connection's thread notices the hang-up within 50 ms; an arrival before that would
    // complete the round with the dead party, as in Python.)
    let t = Instant::now();
    while !b.is_broken().unwrap() {
        assert!(t.elapsed() < PROMPTLY, "not broken after {:?}", t.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(is_broken(b.wait_timeout(PATIENCE)));
    m.shutdown().unwrap();
}

type CondArgs = (ConditionProxy, ValueProxy<u64>, ValueProxy<bool>);

/// A child: under the condition's lock, says it arrived, then waits for `go`.
fn arrive_and_wait(args: CondArgs) -> Result<(), String> {
    let (c, arrived, go) = args;
    let e = |e: Error| e.to_string();
    c.acquire().map_err(e)?;
    arrived.set(&(arrived.get().map_err(e)? + 1)).map_err(e)?;
    c.notify_all().map_err(e)?;
    let ok = c.wait_for(|| go.get(), PATIENCE).map_err(e)?;
    c.release().map_err(e)?;
    if ok { Ok(()) } else { Err("go never came".into()) }
}

fn a_condition_wakes_waiting_children(method: StartMethod) {
    let m = Manager::builder().start_method(method).start().unwrap();
    let (c, arrived, go) =
        (m.condition().unwrap(), m.value(&0u64).unwrap(), m.value(&false).unwrap());
    let ctx = get_context(method);
    let t = Instant::now();
    let mut kids: Vec<_> = (0..CHILDREN)
        .map(|_| ctx.start(arrive_and_wait, (c.clone(), arrived.clone(), go.clone())).unwrap())
        .collect();
    c.acquire().unwrap();
    assert!(c.wait_for(|| Ok(arrived.get()? == CHILDREN), PATIENCE).unwrap());
    go.set(&true).unwrap();
    c.notify_all().unwrap();
    c.release().unwrap();
    for k in &mut kids {
        let st = k.join().unwrap();
        assert!(st.success(), "{st}");
    }
    // Woken by notifications, not by their 20 s limit.
    assert!(t.elapsed() < PATIENCE / 2, "took {:?}", t.elapsed());
    finish(m);
}

/// A child: takes the condition's lock twice, says so, and sleeps until killed.
fn hold(args: (ConditionProxy, ValueProxy<bool>)) -> Result<(), String> {
    let (c, held) = args;
    c.acquire().map_err(|e| e.to_string())?;
    c.acquire().map_err(|e| e.to_string())?;
    held.set(&true).map_err(|e| e.to_string())?;
    std::thread::sleep(PATIENCE);
    Err("was not killed".into())
}

fn a_condition_needs_its_lock_and_a_dead_holder_frees_it() {
    let m = Manager::builder().start_method(StartMethod::Fork).start().unwrap();
    let c = m.condition().unwrap();
    let refused = |r: Result<(), Error>| matches!(r, Err(Error::ManagerRefused { .. }));
    assert!(refused(c.notify()));
    assert!(matches!(c.wait_timeout(Duration::ZERO), Err(Error::ManagerRefused { .. })));
    assert!(refused(c.release()));
    // Reentrant: a wait gives up both levels and takes both back.
    c.acquire().unwrap();
    c.acquire().unwrap();
    assert!(!c.wait_timeout(Duration::from_millis(20)).unwrap());
    c.release().unwrap();
    c.release().unwrap();
    assert!(refused(c.release()));
    let held = m.value(&false).unwrap();
    let mut kid = get_context(StartMethod::Spawn).start(hold, (c.clone(), held.clone())).unwrap();
    let t = Instant::now();
    while !held.get().unwrap() {
        assert!(t.elapsed() < PATIENCE, "the child never took the lock");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!c.acquire_timeout(Duration::from_millis(50)).unwrap());
    kid.kill().unwrap();
    assert!(!kid.join().unwrap().success());
    let t = Instant::now();
    assert!(c.acquire_timeout(PATIENCE).unwrap(), "the dead holder's lock was never released");
    assert!(t.elapsed() < PROMPTLY, "released after {:?}", t.elapsed());
    c.release().unwrap();
    m.shutdown().unwrap();
}

/// A child: under the condition's lock, says it arrived, then waits once; succeeds if notified.
fn wait_once(args: (ConditionProxy, ValueProxy<u64>)) -> Result<(), String> {
    let (c, arrived) = args;
    let e = |e: Error| e.to_string();
    c.acquire().map_err(e)?;
    arrived.set(&(arrived.get().map_err(e)? + 1)).map_err(e)?;
    let notified = c.wait_timeout(Duration::from_secs(5)).map_err(e)?;
    c.release().map_err(e)?;
    if notified { Ok(()) } else { Err("never notified".into()) }
}

fn a_notified_waiter_that_dies_passes_its_notification_on() {
    // notify(1) picks the oldest waiter; killed before it takes the lock back, it must not take
    // the notification with it, or the other waiter sleeps on (forever, without a timeout).
    let m = Manager::builder().start_method(StartMethod::Fork).start().unwrap();
    let (c, arrived) = (m.condition().unwrap(), m.value(&0u64).unwrap());
    let ctx = get_context(StartMethod::Fork);
    let mut kids = Vec::new();
    for n in 1..=2 {
        kids.push(ctx.start(wait_once, (c.clone(), arrived.clone())).unwrap());
        // A child counts itself under the lock and lets it go only by waiting: once this holds
        // the lock and sees the count, the child is waiting (the first one first).
        let t = Instant::now();
        loop {
            c.acquire().unwrap();
            if arrived.get().unwrap() == n {
                break;
            }
            c.release().unwrap();
            assert!(t.elapsed() < PATIENCE, "child {n} never waited");
            std::thread::sleep(Duration::from_millis(5));
        }
        if n == 1 {
            c.release().unwrap();
        }
    }
    c.notify().unwrap(); // the first child, the oldest waiter
    kids[0].kill().unwrap();
    assert!(!kids[0].join().unwrap().success());
    // Still holding the lock, so the dead waiter cannot have taken it; the server notices the
    // hang-up within its 50 ms recheck.
    std::thread::sleep(Duration::from_millis(300));
    c.release().unwrap();
    let st = kids[1].join().unwrap();
    assert!(st.success(), "the second waiter was not notified: {st}");
    m.shutdown().unwrap();
}
