//! The Manager when things go wrong: a client killed while holding a lock, the server killed
//! while clients wait on it, a client dying in the middle of a request, garbage after the
//! handshake, 200 connections opened and dropped, and the connection limit.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use shmpool::connection::Client;
use shmpool::manager::{DictProxy, EventProxy, LockProxy, QueueProxy};
use shmpool::{Error, Manager, StartMethod, get_context};

use crate::harness::{Tests, register};

const PATIENCE: Duration = Duration::from_secs(20);

/// How soon a fault must show.
const PROMPTLY: Duration = Duration::from_secs(1);

pub fn tests() -> Tests {
    register! {
        a_client_killed_while_holding_a_lock_releases_it,
        a_killed_server_fails_every_call_within_a_second,
        a_client_dying_mid_request_leaves_the_server_consistent,
        garbage_after_the_handshake_ends_only_that_connection,
        two_hundred_connections_opened_and_dropped_leave_nothing_behind,
        connections_over_the_limit_are_closed_before_the_handshake,
    }
}

fn manager() -> Manager {
    Manager::builder().start_method(StartMethod::Fork).start().unwrap()
}

/// A child: takes the lock, says so, then sleeps until it is killed.
fn hold_the_lock(args: (LockProxy, EventProxy)) -> Result<(), String> {
    args.0.acquire().map_err(|e| e.to_string())?;
    args.1.set().map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(60));
    Err("was not killed".into())
}

fn a_client_killed_while_holding_a_lock_releases_it() {
    let m = manager();
    let (lock, held) = (m.lock().unwrap(), m.event().unwrap());
    let mut kid =
        get_context(StartMethod::Spawn).start(hold_the_lock, (lock.clone(), held.clone())).unwrap();
    assert!(held.wait_timeout(PATIENCE).unwrap(), "the child never took the lock");
    assert!(!lock.acquire_timeout(Duration::from_millis(50)).unwrap(), "the child's lock was free");
    kid.kill().unwrap();
    let st = kid.join().unwrap();
    assert!(!st.success(), "{st}");
    let t = Instant::now();
    assert!(lock.acquire_timeout(PATIENCE).unwrap(), "the dead child's lock was never released");
    assert!(t.elapsed() < PROMPTLY, "released after {:?}", t.elapsed());
    lock.release().unwrap();
    m.shutdown().unwrap();
}

/// A child: says it is ready, then waits on the queue; the server dies meanwhile, which must
/// end the wait with `ManagerGone`, well before the wait's own limit.
fn wait_on_a_dying_server(args: (QueueProxy<u32>, DictProxy<u8, u8>)) -> Result<(), String> {
    args.1.set(&0, &1).map_err(|e| e.to_string())?;
    let t = Instant::now();
    match args.0.get_timeout(PATIENCE) {
        Err(Error::ManagerGone { .. }) if t.elapsed() < PATIENCE / 2 => Ok(()),
        other => Err(format!("after {:?}: {other:?}", t.elapsed())),
    }
}

fn a_killed_server_fails_every_call_within_a_second() {
    let m = manager();
    let q = m.queue::<u32>().unwrap();
    let d = m.dict::<u8, u8>().unwrap();
    let mut kid = get_context(StartMethod::Spawn)
        .start(wait_on_a_dying_server, (q.clone(), d.clone()))
        .unwrap();
    let t = Instant::now();
    while d.get(&0).unwrap().is_none() {
        assert!(t.elapsed() < PATIENCE, "the child never got ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let its get reach the server.
    std::thread::sleep(Duration::from_millis(200));
    let pid = m.server_pid().unwrap();
    // SAFETY: kill only sends a signal, to the server process this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let t = Instant::now();
    let e = d.len().unwrap_err();
    assert!(matches!(e, Error::ManagerGone { .. }), "{e}");
    assert!(t.elapsed() < PROMPTLY, "the call failed after {:?}", t.elapsed());
    // Every later call too, including a new object.
    assert!(matches!(q.put(&1), Err(Error::ManagerGone { .. })));
    assert!(matches!(m.list::<u8>(), Err(Error::ManagerGone { .. })));
    let st = kid.join_timeout(Duration::from_secs(5)).unwrap().expect("the waiting child hung");
    assert!(st.success(), "{st}");
    m.shutdown().unwrap();
}

fn a_client_dying_mid_request_leaves_the_server_consistent() {
    let m = manager();
    let d = m.dict::<u32, u32>().unwrap();
    d.update((0..10).map(|i| (i, i))).unwrap();
    let lock = m.lock().unwrap();
    lock.acquire().unwrap();
    let (addr, key) = (m.address().clone(), m.authkey().to_vec());
    let mut kid = get_context(StartMethod::Fork)
        .start_closure(move || -> Result<(), String> {
            // Authenticated, then half a request frame: 64 bytes announced, 10 sent; then exit.
            let c = Client::connect(&addr, &key).map_err(|e| e.to_string())?;
            let mut raw = UnixStream::from(c.as_fd().try_clone_to_owned().unwrap());
            let frame = [&64u32.to_le_bytes()[..], &0u32.to_le_bytes(), &[2u8; 10]].concat();
            raw.write_all(&frame).map_err(|e| e.to_string())
        })
        .unwrap();
    assert!(kid.join().unwrap().success());
    // The server is unchanged and answers; the parent's lock stayed held by the parent.
    assert_eq!(d.items().unwrap(), (0..10).map(|i| (i, i)).collect::<Vec<_>>());
    assert!(!lock.acquire_timeout(Duration::ZERO).unwrap());
    lock.release().unwrap();
    d.set(&10, &10).unwrap();
    assert_eq!(d.len().unwrap(), 11);
    m.shutdown().unwrap();
}

fn garbage_after_the_handshake_ends_only_that_connection() {
    let m = manager();
    let v = m.value(&7u64).unwrap();
    let mut c = Client::connect(m.address(), m.authkey()).unwrap();
    // A whole frame that is no request (an unknown enum tag): the server hangs up on it.
    c.send_bytes(&[0xff; 32]).unwrap();
    let e = c.recv_bytes_timeout(PATIENCE).unwrap_err();
    assert!(matches!(e, Error::Disconnected { .. }), "{e}");
    // A frame over the server's limit: refused, hung up.
    let mut c = Client::connect(m.address(), m.authkey()).unwrap();
    let mut raw = UnixStream::from(c.as_fd().try_clone_to_owned().unwrap());
    raw.write_all(&[&u32::MAX.to_le_bytes()[..], &0u32.to_le_bytes()].concat()).unwrap();
    let t = Instant::now();
    assert!(c.recv_bytes_timeout(PATIENCE).is_err());
    assert!(t.elapsed() < PROMPTLY, "{:?}", t.elapsed());
    // Everyone else is served as before.
    assert_eq!(v.get().unwrap(), 7);
    m.shutdown().unwrap();
}

/// The server's open descriptors.
fn fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

fn two_hundred_connections_opened_and_dropped_leave_nothing_behind() {
    let m = manager();
    let d = m.dict::<u8, u8>().unwrap();
    d.set(&1, &1).unwrap();
    let pid = m.server_pid().unwrap();
    let before = fds_of(pid);
    for _ in 0..200 {
        drop(Client::connect(m.address(), m.authkey()).unwrap());
    }
    for _ in 0..20 {
        assert!(Client::connect(m.address(), b"wrong").is_err());
    }
    // Every connection's thread ends and closes its socket.
    let t = Instant::now();
    while fds_of(pid) > before {
        assert!(t.elapsed() < PATIENCE, "{} descriptors, {before} before", fds_of(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(d.get(&1).unwrap(), Some(1));
    m.shutdown().unwrap();
}

fn connections_over_the_limit_are_closed_before_the_handshake() {
    let m = Manager::builder().start_method(StartMethod::Fork).max_connections(3).start().unwrap();
    let mut held: Vec<Client> =
        (0..3).map(|_| Client::connect(m.address(), m.authkey()).unwrap()).collect();
    assert!(Client::connect(m.address(), m.authkey()).is_err(), "a 4th connection was served");
    held.clear();
    // Once they are gone, a proxy connects again.
    let t = Instant::now();
    let v = loop {
        match m.value(&1u8) {
            Ok(v) => break v,
            Err(e) => assert!(t.elapsed() < PATIENCE, "{e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(v.get().unwrap(), 1);
    m.shutdown().unwrap();
}
