//! What Python users type: a child's unflushed output reaching the terminal however the child
//! ends, under every start method, for `Process`, scope children and pool workers.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use shmpool::{Pool, StartMethod, get_context};

use crate::harness::{Tests, register};

const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn];

pub fn tests() -> Tests {
    register! {
        unflushed_output_survives_every_ending in METHODS,
        scope_child_output_is_flushed,
        pool_worker_output_is_flushed in METHODS,
    }
}

// ---- functions the children run (fn items: they cross to spawn and forkserver children) ----

fn say(tag: &str) {
    print!("out:{tag}");
    eprint!("err:{tag}");
}

fn say_and_return(tag: String) -> i32 {
    say(&tag);
    4
}

fn say_and_panic(tag: String) {
    say(&tag);
    panic!("after printing");
}

fn say_and_exit(tag: String) {
    say(&tag);
    std::process::exit(5);
}

fn say_and_fail(tag: String) -> Result<(), String> {
    say(&tag);
    Err("it failed".into())
}

fn say_in_pool(x: u64) -> u64 {
    print!("pool:{x}");
    x + 1
}

// ---- capturing this process's stdout and stderr, which children inherit ----

/// Standard stream `fd` redirected into a pipe until [`Captured::finish`].
struct Captured {
    fd: i32,
    saved: OwnedFd,
    read: File,
}

fn pipe() -> (File, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) }, 0);
    // SAFETY: both descriptors were just made and are owned by nobody else.
    unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn capture(fd: i32) -> Captured {
    // SAFETY: dup only makes a new descriptor for `fd`, which is open (a standard stream).
    let saved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    assert!(saved >= 0);
    let (read, write) = pipe();
    // A child inherits the standard streams; the pipe's write end must not be close-on-exec
    // there, and dup2 gives `fd` a descriptor without the flag.
    // SAFETY: dup2 replaces `fd` with the pipe's write end; `saved` keeps the original.
    assert!(unsafe { libc::dup2(write.as_raw_fd(), fd) } >= 0);
    // SAFETY: `saved` was just made and is owned by nobody else.
    Captured { fd, saved: unsafe { OwnedFd::from_raw_fd(saved) }, read }
}

impl Captured {
    /// Restores the stream; returns what was written to it (everything: the writers have ended).
    fn finish(mut self) -> String {
        // SAFETY: dup2 puts the original stream back on `fd`.
        assert!(unsafe { libc::dup2(self.saved.as_raw_fd(), self.fd) } >= 0);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.read.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("reading the captured stream: {e}"),
            }
        }
        String::from_utf8(out).unwrap()
    }
}

/// Runs `body` with stdout and stderr captured, the forkserver started afresh inside (a running
/// one keeps the streams it was launched with); returns what was written to each.
fn captured(body: impl FnOnce()) -> (String, String) {
    shmpool::process::shutdown_forkserver().unwrap();
    let (out, err) = (capture(1), capture(2));
    body();
    // The forkserver launched inside holds the pipes as its streams: gone before reading.
    let stopped = shmpool::process::shutdown_forkserver();
    let (out, err) = (out.finish(), err.finish());
    stopped.unwrap();
    (out, err)
}

// ---- tests ----

/// A `print!` and an `eprint!` without a newline reach the parent's streams when the child
/// returns, returns an error, panics or calls `std::process::exit`; each exactly once (the
/// parent's buffer is flushed before a fork, not copied into the child).
fn unflushed_output_survives_every_ending(m: StartMethod) {
    let ctx = get_context(m);
    let (out, err) = captured(|| {
        let mut p = ctx.start(say_and_return, "return;".into()).unwrap();
        assert_eq!(p.join().unwrap().exitcode(), 4);
        let mut p = ctx.start(say_and_fail, "error;".into()).unwrap();
        assert_eq!(p.join().unwrap().exitcode(), 1);
        let mut p = ctx.start(say_and_panic, "panic;".into()).unwrap();
        let status = p.join().unwrap();
        assert_eq!(status.exitcode(), 101);
        assert_eq!(status.panic_message(), Some("after printing"));
        let mut p = ctx.start(say_and_exit, "exit;".into()).unwrap();
        assert_eq!(p.join().unwrap().exitcode(), 5);
    });
    assert_eq!(out, "out:return;out:error;out:panic;out:exit;", "stdout under {m}");
    for tag in ["return;", "error;", "panic;", "exit;"] {
        assert_eq!(err.matches(&format!("err:{tag}")).count(), 1, "stderr under {m}: {err:?}");
    }
    assert!(err.contains(": it failed"), "the child's error goes to stderr: {err:?}");
}

/// A scope child's `print!` without a newline reaches stdout when it ends.
fn scope_child_output_is_flushed() {
    let (out, _) = captured(|| {
        shmpool::scope(|s| {
            let c = s.fork(|| print!("scoped")).unwrap();
            assert!(c.join().unwrap().success());
        })
        .unwrap();
    });
    assert_eq!(out, "scoped");
}

/// A pool worker's `print!` without a newline reaches stdout when the pool ends.
fn pool_worker_output_is_flushed(m: StartMethod) {
    let (out, _) = captured(|| {
        let mut pool = Pool::builder().workers(1).start_method(m).build().unwrap();
        assert_eq!(pool.apply(say_in_pool, 41u64).unwrap(), 42);
        pool.close();
        pool.join().unwrap();
    });
    assert_eq!(out, "pool:41", "under {m}");
}
