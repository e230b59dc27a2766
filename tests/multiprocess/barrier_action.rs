//! `Barrier::with_action` across processes, under every start method: the action runs exactly
//! once per round, before any party is released, in one of the parties; an action that panics
//! breaks the barrier, with `BarrierActionPanicked` for the party that ran it and
//! `BrokenBarrier` for the others.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shmpool::{Barrier, Error, SharedAtomic, StartMethod, get_context};

use crate::harness::{Tests, register};

const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn];

const ROUNDS: u64 = 20;

/// Generous: a round waits for the slowest start (spawn) at most.
const PATIENCE: Duration = Duration::from_secs(20);

pub fn tests() -> Tests {
    register! {
        clean the_action_runs_once_per_round_before_anyone_is_released in METHODS,
        a_panicking_action_breaks_the_barrier_for_every_party in METHODS,
        helpers: [count_action, panicking_action],
    }
}

fn shutdown(m: StartMethod) {
    if m == StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().expect("the forkserver shuts down cleanly");
    }
}

/// The shared counter the action bumps, opened in each process before its first wait (once per
/// process: the test runs `clean`, in a fresh copy of the binary).
static ACTIONS: OnceLock<SharedAtomic<AtomicU64>> = OnceLock::new();

fn count_action() {
    ACTIONS.get().expect("the counter is set before the first wait").fetch_add(1, Ordering::SeqCst);
}

/// Waits `ROUNDS` rounds; after round `r` the action must have run exactly `r + 1` times (it
/// runs before the release, and the next round cannot start without this party). Returns the
/// number of rounds it led, or fails with 100 + the round that went wrong.
fn party(b: &Barrier, actions: &SharedAtomic<AtomicU64>) -> Result<u64, String> {
    let mut led = 0;
    for r in 0..ROUNDS {
        let w = b.wait_timeout(PATIENCE).map_err(|e| format!("round {r}: {e}"))?;
        led += u64::from(w.is_leader());
        let seen = actions.load(Ordering::SeqCst);
        if seen != r + 1 {
            return Err(format!("after round {r} the action had run {seen} times"));
        }
    }
    Ok(led)
}

/// A child party: exits with the rounds it led, or 100 on a failure (printed).
fn child_party((b, actions): (Barrier, SharedAtomic<AtomicU64>)) -> i32 {
    let mine = SharedAtomic::<AtomicU64>::open_handle(&actions.handle()).unwrap();
    let _ = ACTIONS.set(mine);
    match party(&b, &actions) {
        Ok(led) => led as i32,
        Err(e) => {
            eprintln!("child party: {e}");
            100
        }
    }
}

fn the_action_runs_once_per_round_before_anyone_is_released(m: StartMethod) {
    let b = Barrier::with_action(3, count_action).unwrap();
    assert!(b.has_action());
    let actions = SharedAtomic::<AtomicU64>::new(0).unwrap();
    let mine = SharedAtomic::<AtomicU64>::open_handle(&actions.handle()).unwrap();
    assert!(ACTIONS.set(mine).is_ok(), "the test runs once per process");
    let ctx = get_context(m);
    let mut children: Vec<_> = (0..2)
        .map(|_| {
            let b2 = Barrier::open_handle(&b.handle()).unwrap();
            let a2 = SharedAtomic::<AtomicU64>::open_handle(&actions.handle()).unwrap();
            ctx.start(child_party, (b2, a2)).unwrap()
        })
        .collect();
    let mine = party(&b, &actions);
    if mine.is_err() {
        b.abort().unwrap(); // let the children go before failing
    }
    let mut led = mine.unwrap();
    for p in &mut children {
        let status = p.join().unwrap();
        let code = status.exitcode();
        assert!((0..=ROUNDS as i32).contains(&code), "child failed: {status}");
        led += code as u64;
    }
    assert_eq!(actions.load(Ordering::SeqCst), ROUNDS, "exactly one action per round");
    assert_eq!(led, ROUNDS, "exactly one leader per round");
    drop(children);
    shutdown(m);
}

fn panicking_action() {
    panic!("the action failed on purpose");
}

/// A child party of a barrier whose action panics: 1 if it ran the action (and got
/// `BarrierActionPanicked`), 2 if it got `BrokenBarrier`, 3 otherwise.
fn child_of_a_panicking_barrier(b: Barrier) -> i32 {
    match b.wait_timeout(PATIENCE) {
        Err(Error::BarrierActionPanicked { message }) => {
            assert!(message.contains("on purpose"), "{message}");
            1
        }
        Err(Error::BrokenBarrier) => 2,
        other => {
            eprintln!("child party: {other:?}");
            3
        }
    }
}

fn a_panicking_action_breaks_the_barrier_for_every_party(m: StartMethod) {
    let b = Barrier::with_action(3, panicking_action).unwrap();
    let ctx = get_context(m);
    let mut children: Vec<_> = (0..2)
        .map(|_| {
            let b2 = Barrier::open_handle(&b.handle()).unwrap();
            ctx.start(child_of_a_panicking_barrier, b2).unwrap()
        })
        .collect();
    let mut outcomes = vec![match b.wait_timeout(PATIENCE) {
        Err(Error::BarrierActionPanicked { .. }) => 1,
        Err(Error::BrokenBarrier) => 2,
        other => panic!("the parent party got {other:?}"),
    }];
    for p in &mut children {
        let status = p.join().unwrap();
        outcomes.push(status.exitcode());
    }
    outcomes.sort();
    assert_eq!(outcomes, [1, 2, 2], "one party ran the action, the others saw the break");
    assert!(b.is_broken());
    assert!(matches!(b.wait_timeout(Duration::from_secs(1)), Err(Error::BrokenBarrier)));
    b.reset().unwrap();
    assert!(!b.is_broken());
    drop(children);
    shutdown(m);
}
