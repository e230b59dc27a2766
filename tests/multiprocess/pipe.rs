//! Pipes between forked processes: round trips, limits, bad frames, closed and dead peers,
//! and segment handles passed over the socket.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use shmpool::connection::pipe_with;
use shmpool::{Error, Queue, SharedArray, pipe, scope};

use crate::harness::{Tests, register};

pub fn tests() -> Tests {
    register! {
        round_trips_with_a_child,
        oversized_message_is_refused_and_skipped,
        stalled_oversized_message_times_out,
        truncated_frame_is_detected,
        closed_peer_ends_recv,
        dead_peer_ends_recv,
        handles_passed_over_the_pipe_are_opened_and_written,
        truncated_descriptors_break_the_stream,
    }
}

const UNEXPECTED: i32 = 4;

/// A raw byte stream over a duplicate of a connection's socket, for writing bad frames.
fn raw(c: &impl AsFd) -> UnixStream {
    UnixStream::from(c.as_fd().try_clone_to_owned().unwrap())
}

fn round_trips_with_a_child() {
    let (mut parent, mut child) = pipe(true).unwrap();
    scope(|s| {
        let kid = s
            .fork(move || -> shmpool::Result<()> {
                // An echo server: doubles numbers, reverses strings, until "stop".
                loop {
                    let (word, n): (String, u64) = child.recv()?;
                    if word == "stop" {
                        return Ok(());
                    }
                    child.send(&(word.chars().rev().collect::<String>(), n * 2))?;
                }
            })
            .unwrap();
        for i in 0..200u64 {
            let word = format!("msg{i}");
            parent.send(&(word.clone(), i)).unwrap();
            let (back, n): (String, u64) = parent.recv().unwrap();
            assert_eq!(back, word.chars().rev().collect::<String>());
            assert_eq!(n, 2 * i);
        }
        // Bytes and recv_bytes_into on the same connection.
        parent.send(&("stop".to_string(), 0u64)).unwrap();
        let st = kid.join().unwrap();
        assert!(st.success(), "{st}");
        // The child is gone, and its end with it.
        assert!(matches!(parent.recv_bytes(), Err(Error::Disconnected { .. })));
    })
    .unwrap();
}

/// A data frame as a foreign sender writes it (`u32` LE length, tag 0, payload), announcing
/// `len` bytes whatever `payload` holds.
fn data_frame(len: u32, payload: &[u8]) -> Vec<u8> {
    [&len.to_le_bytes()[..], &0u32.to_le_bytes(), payload].concat()
}

fn oversized_message_is_refused_and_skipped() {
    let (mut parent, child) = pipe_with(true, 1024).unwrap();
    scope(|s| {
        let kid = s
            .fork(move || {
                let mut w = raw(&child);
                // A foreign sender ignoring the limit: a 100 KiB frame, then a good one.
                let bad = data_frame(100 * 1024, &[0xAB; 100 * 1024]);
                let good = data_frame(3, b"ok!");
                if w.write_all(&bad).and_then(|()| w.write_all(&good)).is_err() {
                    return UNEXPECTED;
                }
                0
            })
            .unwrap();
        let e = parent.recv_bytes().unwrap_err();
        assert!(matches!(e, Error::MessageTooLarge { len: 102400, max: 1024, .. }), "{e}");
        // The connection stayed in sync: the next message arrives whole.
        assert_eq!(parent.recv_bytes().unwrap(), b"ok!");
        // The sender side refuses before writing anything.
        assert!(matches!(parent.send_bytes(&[0; 1025]), Err(Error::MessageTooLarge { .. })));
        let st = kid.join().unwrap();
        assert!(st.success(), "{st}");
    })
    .unwrap();
}

/// A foreign sender announces a message over the limit, sends a little of it, and stalls while
/// alive. A receive with a timeout must end with `Timeout` by its deadline (skipping the refused
/// bytes used to ignore the deadline and wait for the sender), and the connection then reports
/// that it lost its framing.
fn stalled_oversized_message_times_out() {
    let (mut parent, child) = pipe_with(true, 16).unwrap();
    scope(|s| {
        let kid = s
            .fork(move || {
                let mut w = raw(&child);
                let frame = data_frame(1_000_000, &[9; 10]);
                if w.write_all(&frame).is_err() {
                    return UNEXPECTED;
                }
                std::thread::sleep(Duration::from_secs(30));
                0
            })
            .unwrap();
        let start = Instant::now();
        let e = parent.recv_bytes_timeout(Duration::from_millis(200)).unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
        let e = parent.recv_bytes_timeout(Duration::from_millis(10)).unwrap_err();
        assert!(
            matches!(&e, Error::BadMessage { reason, .. } if reason.contains("framing")),
            "{e}"
        );
        kid.kill().unwrap();
        assert_eq!(kid.join().unwrap().signal(), Some(libc::SIGKILL));
    })
    .unwrap();
}

fn truncated_frame_is_detected() {
    let (mut parent, child) = pipe(true).unwrap();
    scope(|s| {
        let kid = s
            .fork(move || {
                let mut w = raw(&child);
                let frame = data_frame(100, &[7; 10]); // 10 of the 100 promised bytes, then exit
                if w.write_all(&frame).is_err() {
                    return UNEXPECTED;
                }
                0
            })
            .unwrap();
        let st = kid.join().unwrap();
        assert!(st.success(), "{st}");
        let e = parent.recv_bytes().unwrap_err();
        assert!(matches!(e, Error::TruncatedFrame { expected: 108, got: 18, .. }), "{e}");
    })
    .unwrap();
}

fn closed_peer_ends_recv() {
    let (mut parent, child) = pipe(true).unwrap();
    scope(|s| {
        let kid = s
            .fork(move || {
                child.close();
                // Stay alive: the end must read as closed because of close, not of exit.
                std::thread::sleep(Duration::from_millis(500));
            })
            .unwrap();
        let e = parent.recv_bytes_timeout(Duration::from_secs(10)).unwrap_err();
        assert!(matches!(e, Error::Disconnected { .. }), "{e}");
        assert!(matches!(parent.send_bytes(b"x"), Err(Error::Disconnected { .. })));
        let st = kid.join().unwrap();
        assert!(st.success(), "{st}");
    })
    .unwrap();
}

fn dead_peer_ends_recv() {
    let (mut parent, child) = pipe(true).unwrap();
    scope(|s| {
        let kid = s
            .fork(move || {
                let _keep = child;
                std::thread::sleep(Duration::from_secs(50));
            })
            .unwrap();
        assert!(!parent.poll(Duration::from_millis(100)).unwrap());
        kid.kill().unwrap();
        let e = parent.recv_bytes_timeout(Duration::from_secs(10)).unwrap_err();
        assert!(matches!(e, Error::Disconnected { .. }), "{e}");
        assert_eq!(kid.join().unwrap().signal(), Some(libc::SIGKILL));
    })
    .unwrap();
}

fn handles_passed_over_the_pipe_are_opened_and_written() {
    let (mut parent, mut child) = pipe(true).unwrap();
    scope(|s| {
        let kid = s
            .fork(move || -> shmpool::Result<()> {
                // Both objects were created after this child was forked: only the pipe brings them.
                let got = child.recv_handle()?;
                // SAFETY: the parent does not touch the array until this child acknowledges.
                let mut arr = unsafe { SharedArray::<u64>::open_handle(got.handle())? };
                for (i, x) in arr.iter_mut().enumerate() {
                    *x = i as u64 * 3;
                }
                let got = child.recv_handle()?;
                let q = Queue::<u32>::open_handle(got.handle())?;
                q.put(77)?;
                child.send(&"done")
            })
            .unwrap();
        let arr = SharedArray::<u64>::zeroed(1000).unwrap();
        let q = Queue::<u32>::bounded(4).unwrap();
        parent.send_handle(&arr.handle()).unwrap();
        parent.send_handle(&q.handle()).unwrap();
        assert_eq!(parent.recv::<String>().unwrap(), "done");
        assert!(arr.iter().enumerate().all(|(i, &x)| x == i as u64 * 3));
        assert_eq!(q.get_timeout(Duration::from_secs(5)).unwrap(), 77);
        let st = kid.join().unwrap();
        assert!(st.success(), "{st}");
    })
    .unwrap();
}

/// Child exit codes for `truncated_descriptors_break_the_stream`.
const HANDLE_ARRIVED: i32 = 5;
const PARSED_MID_FRAME: i32 = 6;

fn truncated_descriptors_break_the_stream() {
    let (mut a, b) = pipe(true).unwrap();
    let arr = SharedArray::from_slice(&[7u8]).unwrap();
    a.send_handle(&arr.handle()).unwrap();
    a.send_bytes(b"after").unwrap();
    scope(|s| {
        let mut b = b;
        let kid = s
            .fork(move || {
                // Make the lowest free descriptor number the limit, so the memfd that arrives
                // with the handle cannot be installed: recvmsg reports MSG_CTRUNC.
                // SAFETY: dup/close/setrlimit on plain integers and a local struct.
                unsafe {
                    let free = libc::dup(0);
                    libc::close(free);
                    let lim = libc::rlimit { rlim_cur: free as libc::rlim_t, rlim_max: 1 << 20 };
                    let mut old = std::mem::zeroed::<libc::rlimit>();
                    libc::getrlimit(libc::RLIMIT_NOFILE, &mut old);
                    let lim = libc::rlimit { rlim_max: old.rlim_max, ..lim };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return UNEXPECTED;
                    }
                }
                if b.recv_handle().is_ok() {
                    return HANDLE_ARRIVED;
                }
                match b.recv_bytes() {
                    Err(Error::BadMessage { reason, .. })
                        if reason.contains("lost its framing") =>
                    {
                        0
                    }
                    _ => PARSED_MID_FRAME,
                }
            })
            .unwrap();
        let st = kid.join().unwrap();
        assert_eq!(st.code(), Some(0), "{st}");
    })
    .unwrap();
}
