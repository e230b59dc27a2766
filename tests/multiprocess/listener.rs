//! `connection::Listener` and `Client` between processes: the authkey handshake (right key,
//! wrong key on both sides), bytes that are not the handshake (garbage, a frame claiming 4 GiB)
//! refused before anything is decoded, stalled peers timing out on both sides, and Unix and
//! TCP addresses.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use shmpool::connection::{Address, Client, Listener};
use shmpool::{Error, scope};

use crate::harness::{Tests, register};

pub fn tests() -> Tests {
    register! {
        right_key_round_trips_over_tcp,
        right_key_round_trips_over_a_unix_socket,
        wrong_key_is_refused_on_both_sides_and_the_listener_goes_on,
        garbage_before_the_handshake_is_refused_undecoded,
        a_frame_claiming_4_gib_is_refused_without_reading_it,
        an_oversized_message_after_the_handshake_is_refused_and_skipped,
        a_client_that_stalls_in_the_handshake_times_out,
        a_listener_that_never_answers_times_out_the_client,
    }
}

const KEY: &[u8] = b"listener test key";

/// An echo exchange from a forked child; returns the child's exit status.
fn echo_with_a_child(l: Listener) {
    let addr = l.address().clone();
    scope(|s| {
        let kid = s
            .fork(move || -> shmpool::Result<()> {
                let mut c = Client::connect(&addr, KEY)?;
                for i in 0..50u32 {
                    c.send(&(i, format!("n{i}")))?;
                    let back: (u32, String) = c.recv_timeout(Duration::from_secs(10))?;
                    if back != (i * 2, format!("n{i}!")) {
                        return Err(Error::BadMessage {
                            what: "test",
                            reason: format!("{back:?}"),
                        });
                    }
                }
                Ok(())
            })
            .unwrap();
        let mut conn = l.accept_timeout(Duration::from_secs(10)).unwrap();
        for _ in 0..50 {
            let (n, s): (u32, String) = conn.recv_timeout(Duration::from_secs(10)).unwrap();
            conn.send(&(n * 2, format!("{s}!"))).unwrap();
        }
        assert!(kid.join().unwrap().success());
        // The child is gone: its end of the stream closed.
        let e = conn.recv_bytes_timeout(Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, Error::Disconnected { .. }), "{e}");
    })
    .unwrap();
}

fn right_key_round_trips_over_tcp() {
    echo_with_a_child(Listener::bind(&Address::localhost(0), KEY).unwrap());
}

fn right_key_round_trips_over_a_unix_socket() {
    let dir = std::env::temp_dir().join(format!("shmpool-listener-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let l = Listener::bind(&Address::Unix(path.clone()), KEY).unwrap();
    assert!(l.address().is_unix());
    echo_with_a_child(l);
    // Dropping the listener removed its socket file.
    assert!(!path.exists());
    std::fs::remove_dir(&dir).unwrap();
}

fn wrong_key_is_refused_on_both_sides_and_the_listener_goes_on() {
    let l = Listener::bind(&Address::localhost(0), KEY).unwrap();
    let addr = l.address().clone();
    scope(|s| {
        let wrong = s
            .fork(move || -> Result<(), String> {
                match Client::connect(&addr, b"another key") {
                    Err(Error::AuthenticationFailed { .. }) => {}
                    other => return Err(format!("wrong key gave {other:?}")),
                }
                // Then the right key, on the same listener.
                let mut c = Client::connect(&addr, KEY).map_err(|e| e.to_string())?;
                c.send(&7u8).map_err(|e| e.to_string())
            })
            .unwrap();
        let e = l.accept_timeout(Duration::from_secs(10)).unwrap_err();
        assert!(matches!(e, Error::AuthenticationFailed { .. }), "{e}");
        assert!(e.to_string().contains("another key"), "{e}");
        let mut ok = l.accept_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(ok.recv_timeout::<u8>(Duration::from_secs(10)).unwrap(), 7);
        let st = wrong.join().unwrap();
        assert!(st.success(), "{st}");
    })
    .unwrap();
}

/// A raw TCP peer that reads the challenge, writes `bytes`, then waits for the listener to
/// close the stream (exit 0 when it did within 10 s).
fn raw_peer(addr: Address, bytes: Vec<u8>) -> impl FnOnce() -> Result<(), String> + Send {
    move || {
        let Address::Tcp(a) = addr else { return Err("not TCP".into()) };
        let mut s = TcpStream::connect(a).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        let mut challenge = [0u8; 8 + 27 + 32];
        s.read_exact(&mut challenge).map_err(|e| e.to_string())?;
        s.write_all(&bytes).map_err(|e| e.to_string())?;
        let mut rest = Vec::new();
        // The listener closes the connection: end of stream (possibly after a REFUSED frame).
        let _ = s.read_to_end(&mut rest);
        Ok(())
    }
}

fn garbage_before_the_handshake_is_refused_undecoded() {
    let l = Listener::bind(&Address::localhost(0), KEY).unwrap();
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
    scope(|s| {
        let kid = s.fork(raw_peer(l.address().clone(), garbage)).unwrap();
        let e = l.accept_timeout(Duration::from_secs(10)).unwrap_err();
        assert!(matches!(e, Error::AuthenticationFailed { .. }), "{e}");
        assert!(kid.join().unwrap().success());
    })
    .unwrap();
}

fn a_frame_claiming_4_gib_is_refused_without_reading_it() {
    let l = Listener::bind(&Address::localhost(0), KEY).unwrap();
    // A response header announcing u32::MAX bytes, and only 16 of them.
    let frame = [&u32::MAX.to_le_bytes()[..], &17u32.to_le_bytes(), &[0u8; 16]].concat();
    scope(|s| {
        let kid = s.fork(raw_peer(l.address().clone(), frame)).unwrap();
        let t = Instant::now();
        let e = l.accept_timeout(Duration::from_secs(10)).unwrap_err();
        assert!(matches!(e, Error::AuthenticationFailed { .. }), "{e}");
        // Refused on the header, not after waiting for the body to arrive.
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert!(kid.join().unwrap().success());
    })
    .unwrap();
}

fn an_oversized_message_after_the_handshake_is_refused_and_skipped() {
    let l = Listener::builder(Address::localhost(0), KEY).max_message(1024).bind().unwrap();
    let addr = l.address().clone();
    scope(|s| {
        let kid = s
            .fork(move || -> shmpool::Result<()> {
                let mut c = Client::connect_with(&addr, KEY, Duration::from_secs(5), 1 << 20)?;
                c.send_bytes(&vec![1u8; 4096])?; // over the listener's limit
                c.send_bytes(b"after")
            })
            .unwrap();
        let mut conn = l.accept_timeout(Duration::from_secs(10)).unwrap();
        let e = conn.recv_bytes_timeout(Duration::from_secs(10)).unwrap_err();
        assert!(matches!(e, Error::MessageTooLarge { len: 4096, max: 1024, .. }), "{e}");
        assert_eq!(conn.recv_bytes_timeout(Duration::from_secs(10)).unwrap(), b"after");
        assert!(kid.join().unwrap().success());
    })
    .unwrap();
}

fn a_client_that_stalls_in_the_handshake_times_out() {
    let l = Listener::builder(Address::localhost(0), KEY)
        .handshake_timeout(Duration::from_millis(300))
        .bind()
        .unwrap();
    let Address::Tcp(a) = l.address().clone() else { unreachable!() };
    scope(|s| {
        let kid = s
            .fork(move || -> Result<(), String> {
                // Connects, reads nothing, answers nothing, until the listener hangs up.
                let mut s = TcpStream::connect(a).map_err(|e| e.to_string())?;
                s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
                let mut all = Vec::new();
                let _ = s.read_to_end(&mut all);
                Ok(())
            })
            .unwrap();
        let t = Instant::now();
        let e = l.accept_timeout(Duration::from_secs(10)).unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert!(kid.join().unwrap().success());
    })
    .unwrap();
}

fn a_listener_that_never_answers_times_out_the_client() {
    // A plain TCP socket that accepts (the kernel's backlog) but never says a word.
    let mute = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = Address::Tcp(mute.local_addr().unwrap());
    let t = Instant::now();
    let e = Client::connect_with(&addr, KEY, Duration::from_millis(300), 1024).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}
