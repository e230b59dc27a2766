//! What Python users type: a child's unflushed output reaching the terminal however the child
//! ends, under every start method, for `Process`, scope children and pool workers;
//! `current_process`, `parent_process`, `active_children`, `set_start_method` and
//! `get_start_method`; `LockedArray` (Python's `Array(..., lock=True)`) across processes;
//! shmpool objects as a child's arguments.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use shmpool::{
    Context, Event, LockedArray, LockedArrayHandle, Mutex, Pool, Semaphore, SharedValue,
    StartMethod, get_context,
};

use crate::harness::{Tests, register};

const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn];

pub fn tests() -> Tests {
    register! {
        unflushed_output_survives_every_ending in METHODS,
        scope_child_output_is_flushed,
        pool_worker_output_is_flushed in METHODS,
        current_and_parent_process_in_a_child in METHODS,
        a_forked_child_without_a_name_is_named_by_its_pid,
        active_children_lists_the_live_unjoined_ones in METHODS,
        clean set_start_method_sets_the_default_once,
        clean get_start_method_fixes_the_default,
        locked_array_increments_lose_no_update in METHODS,
        shared_objects_arrive_open_as_arguments in METHODS,
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

/// What a child found: 0 when `current_process()` and `parent_process()` say what `expected`
/// does (name, daemon flag, parent pid), else a code naming the first mismatch.
fn check_identity((name, daemon, parent): (String, bool, u32)) -> i32 {
    let me = shmpool::current_process();
    if me.name() != name {
        return 10;
    }
    if me.pid() != std::process::id() || me.ident() != me.pid() {
        return 11;
    }
    if me.daemon() != daemon {
        return 12;
    }
    match shmpool::parent_process() {
        None => 13,
        Some(p) if p.pid() != parent => 14,
        Some(p) if p.name() != "MainProcess" => 15,
        Some(_) => 0,
    }
}

fn nap_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Adds 1 to element 0 of the locked array `n` times, each a slow read-modify-write under the
/// lock that also checks, through element 1, that no other process got in meanwhile; returns
/// the number of intrusions seen (0 under a working lock).
fn increment_locked((h, n, me): (LockedArrayHandle, u64, u64)) -> i32 {
    let arr = LockedArray::<u64>::open_handle(&h).unwrap();
    let mut intrusions = 0;
    for _ in 0..n {
        let mut g = arr.lock().unwrap();
        g[1] = me;
        let v = g[0];
        std::thread::yield_now();
        g[0] = v + 1;
        intrusions += i32::from(g[1] != me);
    }
    intrusions
}

/// What a child is given: an event, a mutex, a locked value and a semaphore.
type Objects = (Event, Mutex<u64>, SharedValue<u64>, Semaphore);

/// Uses each object it was given, then sets the event.
fn use_objects((done, m, v, sem): Objects) -> Result<(), String> {
    *m.lock().map_err(|e| e.to_string())? += 1;
    *v.lock().map_err(|e| e.to_string())? += 2;
    sem.release().map_err(|e| e.to_string())?;
    done.set();
    Ok(())
}

/// As [`use_objects`], with a locked array too (not under fork: see `increment_in`).
fn use_objects_and_array((objects, arr): (Objects, LockedArray<u64>)) -> Result<(), String> {
    arr.lock().map_err(|e| e.to_string())?[0] += 3;
    use_objects(objects)
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

/// A child's `current_process()` has the name and daemon flag it was started with and its own
/// pid; its `parent_process()` is this process (under forkserver too, not the server). This
/// process is `MainProcess` and has no parent.
fn current_and_parent_process_in_a_child(m: StartMethod) {
    let me = shmpool::current_process();
    assert_eq!((me.name(), me.pid(), me.daemon()), ("MainProcess", std::process::id(), false));
    assert_eq!(shmpool::parent_process(), None);
    let ctx = get_context(m);
    for daemon in [false, true] {
        let args = ("worker-7".to_string(), daemon, std::process::id());
        let mut p = ctx.process().name("worker-7").daemon(daemon).start(check_identity, args);
        let p = p.as_mut().unwrap();
        assert_eq!(p.join().unwrap().exitcode(), 0, "under {m}, daemon {daemon}");
    }
    // A default name crosses too.
    let mut p = ctx.start(check_identity, ("wrong".into(), false, std::process::id())).unwrap();
    assert_eq!(p.join().unwrap().exitcode(), 10, "a mismatch is seen");
    if m == StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().unwrap();
    }
}

/// A scope child has no builder: it is `Child-<pid>`, and its parent is this process.
fn a_forked_child_without_a_name_is_named_by_its_pid() {
    let parent = std::process::id();
    shmpool::scope(|s| {
        let c = s
            .fork(move || {
                let name = format!("Child-{}", std::process::id());
                check_identity((name, false, parent))
            })
            .unwrap();
        assert_eq!(c.join().unwrap().exitcode(), 0);
    })
    .unwrap();
}

/// `active_children()` lists the children started and not joined, by name and pid, in start
/// order; a joined one is gone, a finished one is gone without taking its status from its handle,
/// and a detached one (handle dropped) is listed until it ends, then reaped.
fn active_children_lists_the_live_unjoined_ones(m: StartMethod) {
    let ctx = get_context(m);
    assert!(shmpool::active_children().is_empty());
    let mut a = ctx.process().name("a").start(nap_ms, 10_000).unwrap();
    let b = ctx.process().name("b").start(nap_ms, 300).unwrap();
    let mut c = ctx.process().name("c").start(nap_ms, 0).unwrap();
    let b_pid = b.pid();
    let listed = |want: &[(&str, u32)]| {
        let live = shmpool::active_children();
        let got: Vec<(&str, u32)> = live.iter().map(|p| (p.name(), p.pid())).collect();
        assert_eq!(got, want, "under {m}");
    };
    // `c` ends at once: unlisted once it has, and its handle still has its status.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shmpool::active_children().len() == 3 {
        assert!(Instant::now() < deadline, "c never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
    listed(&[("a", a.pid()), ("b", b_pid)]);
    assert!(c.join().unwrap().success(), "the handle keeps the status");
    drop(b); // detached: still a child, still listed while it runs
    listed(&[("a", a.pid()), ("b", b_pid)]);
    a.kill().unwrap();
    assert_eq!(a.join().unwrap().exitcode(), -libc::SIGKILL);
    listed(&[("b", b_pid)]);
    while !shmpool::active_children().is_empty() {
        assert!(Instant::now() < deadline, "b never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
    if m == StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().unwrap();
    }
}

/// `set_start_method` sets the default that `Context::default()` and `Pool` use, once;
/// `get_context(method)` ignores it; `force_start_method` replaces it (Python's `force=True`).
fn set_start_method_sets_the_default_once() {
    shmpool::set_start_method(StartMethod::Spawn).unwrap();
    assert_eq!(shmpool::get_start_method(), StartMethod::Spawn);
    assert_eq!(Context::default().method(), StartMethod::Spawn);
    let mut p = Context::default().start(nap_ms, 0).unwrap();
    assert_eq!(p.start_method(), StartMethod::Spawn);
    assert!(p.join().unwrap().success());
    let mut pool = Pool::builder().workers(1).build().unwrap();
    assert_eq!(
        pool.start_method(),
        StartMethod::Spawn,
        "a pool built without a method takes the default"
    );
    assert_eq!(pool.apply_pod(double, 21u64).unwrap(), 42);
    drop(pool);
    let refused = shmpool::set_start_method(StartMethod::Fork).unwrap_err();
    assert_eq!(refused.current, StartMethod::Spawn);
    assert!(refused.to_string().contains("force_start_method"), "{refused}");
    assert_eq!(get_context(StartMethod::Fork).method(), StartMethod::Fork);
    assert_eq!(shmpool::get_start_method(), StartMethod::Spawn, "a refused set changes nothing");
    shmpool::process::force_start_method(StartMethod::Fork);
    assert_eq!(Context::default().method(), StartMethod::Fork);
}

fn double(x: u64) -> u64 {
    x * 2
}

/// Reading the default fixes it, as in Python: a later `set_start_method` is refused.
fn get_start_method_fixes_the_default() {
    assert_eq!(shmpool::get_start_method(), StartMethod::ForkServer);
    let refused = shmpool::set_start_method(StartMethod::Spawn).unwrap_err();
    assert_eq!(refused.current, StartMethod::ForkServer);
    assert_eq!(shmpool::get_start_method(), StartMethod::ForkServer);
}

/// Two children and this process each add 1 to a locked array's element many times, every add
/// a read-modify-write with a yield in the middle: the total is exact (no update lost), and no
/// process ever saw another inside its critical section.
fn locked_array_increments_lose_no_update(m: StartMethod) {
    const N: u64 = 3_000;
    let arr = LockedArray::<u64>::zeroed(2).unwrap();
    let ctx = get_context(m);
    let mut kids: Vec<_> =
        (1..=2).map(|id| ctx.start(increment_locked, (arr.handle(), N, id)).unwrap()).collect();
    // This process takes part too, through the same lock (`get_lock` is it).
    for _ in 0..N {
        let mut g = arr.lock().unwrap();
        g[1] = 0;
        let v = g[0];
        std::thread::yield_now();
        g[0] = v + 1;
        assert_eq!(g[1], 0, "another process got in under {m}");
    }
    for k in &mut kids {
        assert_eq!(k.join().unwrap().exitcode(), 0, "intrusions seen by a child under {m}");
    }
    assert_eq!(arr.get(0).unwrap(), 3 * N, "updates lost under {m}");
    let held = arr.get_lock().lock().unwrap();
    assert!(arr.try_lock().is_err(), "get_lock() is the array's lock");
    drop(held);
    if m == StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().unwrap();
    }
}

/// Second handles to `done`, `m`, `v` and `sem`, to give away (this process keeps the first).
fn second_handles(done: &Event, m: &Mutex<u64>, v: &SharedValue<u64>, sem: &Semaphore) -> Objects {
    (
        Event::open_handle(&done.handle()).unwrap(),
        Mutex::open_handle(&m.handle()).unwrap(),
        SharedValue::open_handle(&v.handle()).unwrap(),
        Semaphore::open_handle(&sem.handle()).unwrap(),
    )
}

/// An event, a mutex, a locked value, a semaphore and (but under fork) a locked array passed by
/// value to a child arrive open there, under every start method. Each is a second handle that
/// this process drops with the child's `Process` right after the start, so the child can open it
/// only because the dropped (detached) `Process` keeps its arguments until the child ends.
fn shared_objects_arrive_open_as_arguments(m: StartMethod) {
    let (done, mx, v, sem) = (
        Event::new().unwrap(),
        Mutex::new(0u64).unwrap(),
        SharedValue::new(0u64).unwrap(),
        Semaphore::new(0).unwrap(),
    );
    let arr = LockedArray::<u64>::zeroed(1).unwrap();
    let ctx = get_context(m);
    let objects = second_handles(&done, &mx, &v, &sem);
    let p = if m == StartMethod::Fork {
        ctx.start(use_objects, objects).unwrap()
    } else {
        let theirs = LockedArray::open_handle(&arr.handle()).unwrap();
        ctx.start(use_objects_and_array, (objects, theirs)).unwrap()
    };
    drop(p); // detached: keeps running, its arguments kept until it ends
    assert!(done.wait_timeout(Duration::from_secs(10)), "the child never set the event under {m}");
    assert!(sem.acquire_timeout(Duration::from_secs(1)), "the semaphore was not released");
    assert_eq!(*mx.lock().unwrap(), 1);
    assert_eq!(v.get().unwrap(), 2);
    let want = if m == StartMethod::Fork { 0 } else { 3 };
    assert_eq!(arr.get(0).unwrap(), want, "the locked array under {m}");
    // The detached child is reaped once it has ended (active_children reaps such children).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shmpool::active_children().is_empty() {
        assert!(Instant::now() < deadline, "the child never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
    if m == StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().unwrap();
    }
}
