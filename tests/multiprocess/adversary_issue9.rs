//! Attacks on what issue 9's start-up work added, across processes: a party killed while it
//! runs a barrier's action must break the round for the others (and for a party arriving
//! late), promptly, not leave them waiting for their timeouts or forever.

use std::time::{Duration, Instant};

use shmpool::{Barrier, Error, StartMethod, get_context};

use crate::harness::{Tests, register};

const METHODS: [StartMethod; 2] = [StartMethod::Fork, StartMethod::Spawn];

/// Far longer than the break may take: a waiter that sees it only at its timeout fails.
const PATIENCE: Duration = Duration::from_secs(20);

pub fn tests() -> Tests {
    register! {
        a_party_killed_while_running_the_action_breaks_the_round in METHODS,
        helpers: [stalls],
    }
}

/// An action that never finishes in time: its party is killed while it runs.
fn stalls() {
    std::thread::sleep(Duration::from_secs(60));
}

/// A party: 2 if the round broke (`BrokenBarrier`) within 5 s, 3 for anything else (printed).
fn party(b: Barrier) -> i32 {
    let start = Instant::now();
    match b.wait_timeout(PATIENCE) {
        Err(Error::BrokenBarrier) if start.elapsed() < Duration::from_secs(5) => 2,
        other => {
            eprintln!("party: {other:?} after {:?}", start.elapsed());
            3
        }
    }
}

/// Waits until `b` has `n` parties waiting, or panics after 10 s (aborting it first).
fn until_waiting(b: &Barrier, n: u32) {
    let start = Instant::now();
    while b.n_waiting() < n {
        if start.elapsed() > Duration::from_secs(10) {
            b.abort().unwrap();
            panic!("{} parties wait, not {n}", b.n_waiting());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn a_party_killed_while_running_the_action_breaks_the_round(m: StartMethod) {
    let b = Barrier::with_action(2, stalls).unwrap();
    let ctx = get_context(m);
    let mut waiter = ctx.start(party, Barrier::open_handle(&b.handle()).unwrap()).unwrap();
    until_waiting(&b, 1);
    // The second party arrives last, so it runs the action; it counts as waiting while it does.
    let mut runner = ctx.start(party, Barrier::open_handle(&b.handle()).unwrap()).unwrap();
    until_waiting(&b, 2);
    runner.kill().unwrap();
    let killed = runner.join().unwrap();
    assert_eq!(killed.signal(), Some(libc::SIGKILL), "{killed}");
    let status = waiter.join().unwrap();
    assert_eq!(status.exitcode(), 2, "the waiter did not see the round break: {status}");
    // A party arriving now (the runner's `acting` mark is still set) is told, not parked.
    let start = Instant::now();
    let late = b.wait_timeout(PATIENCE);
    assert!(matches!(late, Err(Error::BrokenBarrier)), "{late:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    b.reset().unwrap();
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.is_broken());
}
