//! A `Connection` (one end of a pipe) as a `Process` argument, under every start method: its
//! socket travels with the start (the forkserver request, or inherited by a spawn child), so
//! Python's `Process(target=f, args=(child_conn,))` ports as `ctx.start(f, child_conn)`.

use std::time::Duration;

use shmpool::{Connection, Error, StartMethod, get_context, pipe};

use crate::harness::{Tests, register};

const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn];

const PATIENCE: Duration = Duration::from_secs(10);

pub fn tests() -> Tests {
    register! {
        ping_pong_over_a_connection_argument in METHODS,
        two_connections_cross_in_a_tuple in METHODS,
        more_connections_than_a_child_takes_are_refused in [StartMethod::Spawn, StartMethod::ForkServer],
    }
}

fn shutdown(m: StartMethod) {
    if m == StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().expect("the forkserver shuts down cleanly");
    }
}

/// Answers each number with the next one, `rounds` times; exits 0, or 1 on a failure.
fn pong((mut conn, rounds): (Connection, u32)) -> i32 {
    for _ in 0..rounds {
        let Ok(n) = conn.recv_timeout::<u32>(PATIENCE) else { return 1 };
        if conn.send(&(n + 1)).is_err() {
            return 1;
        }
    }
    0
}

fn ping_pong_over_a_connection_argument(m: StartMethod) {
    let (mut mine, theirs) = pipe(true).unwrap();
    let mut p = get_context(m).start(pong, (theirs, 5)).unwrap();
    for i in 0..5u32 {
        mine.send(&(i * 10)).unwrap();
        assert_eq!(mine.recv_timeout::<u32>(PATIENCE).unwrap(), i * 10 + 1);
    }
    let status = p.join().unwrap();
    assert!(status.success(), "{status}");
    // The child's end lives nowhere else: once the child is gone, the peer sees the end.
    drop(p);
    assert!(matches!(mine.recv_timeout::<u32>(PATIENCE), Err(Error::Disconnected { .. })));
    shutdown(m);
}

/// Receives a string on the read end `rx` of a one-way pipe and sends it back reversed on the
/// duplex end `back`. Exits 0, or 1 on a failure.
fn relay((mut rx, mut back): (Connection, Connection)) -> i32 {
    let Ok(s) = rx.recv_timeout::<String>(PATIENCE) else { return 1 };
    // The read end of a one-way pipe still cannot send after crossing.
    if !matches!(rx.send(&"x"), Err(Error::Closed { .. })) {
        return 1;
    }
    let reversed: String = s.chars().rev().collect();
    if back.send(&reversed).is_err() {
        return 1;
    }
    0
}

fn two_connections_cross_in_a_tuple(m: StartMethod) {
    let (mut back, back_theirs) = pipe(true).unwrap();
    let (rx, mut to_child) = pipe(false).unwrap();
    let mut p = get_context(m).start(relay, (rx, back_theirs)).unwrap();
    to_child.send(&"shmpool").unwrap();
    assert_eq!(back.recv_timeout::<String>(PATIENCE).unwrap(), "loopmhs");
    let status = p.join().unwrap();
    assert!(status.success(), "{status}");
    shutdown(m);
}

fn three(_: (Connection, Connection, Connection)) -> i32 {
    0
}

/// Three connections are one more than a spawn or forkserver child takes; a connection encoded
/// anywhere but a start (a message, a queue, a task) is refused.
fn more_connections_than_a_child_takes_are_refused(m: StartMethod) {
    let (a, b) = pipe(true).unwrap();
    let (c, _d) = pipe(true).unwrap();
    let e = get_context(m).start(three, (a, b, c)).unwrap_err();
    assert!(matches!(&e, Error::Serialize { reason } if reason.contains("at most 2")), "{e:?}");
    let (mut x, y) = pipe(true).unwrap();
    assert!(postcard::to_stdvec(&y).is_err(), "a Connection outside a start");
    assert!(matches!(x.send(&y), Err(Error::BadMessage { .. })));
    shutdown(m);
}
