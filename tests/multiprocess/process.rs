//! `Process` under each start method: start, join, exit codes, signals, panics, multi-threaded
//! parents, orphan-proofing, handles to arrays made after the start, and bad markers.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shmpool::{Error, SegmentHandle, SharedArray, StartMethod, get_context};

use crate::harness::{Tests, register};

const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn];

// ---- functions the children run (fn items: they cross to spawn and forkserver children) ----

fn exit_with(code: i32) -> i32 {
    code
}

fn nap_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn boom(msg: String) {
    panic!("{msg}");
}

fn len_mod_200(s: String) -> i32 {
    (s.len() % 200) as i32
}

fn fails(why: String) -> Result<(), String> {
    Err(why)
}

/// Slot 0 of the mailbox: length of the JSON handle in slots 1.., 0 until it is posted.
const MAILBOX_SLOTS: usize = 64;

fn atomic_at(a: &mut SharedArray<u64>, i: usize) -> &AtomicU64 {
    assert!(i < a.len());
    // SAFETY: the element is in bounds and 8-aligned; every process touches mailbox slots only
    // through atomics, so there is no data race.
    unsafe { AtomicU64::from_ptr(a.as_mut_ptr().add(i)) }
}

fn post(mailbox: &mut SharedArray<u64>, h: &SegmentHandle) {
    let json = serde_json::to_vec(h).unwrap();
    assert!(json.len() <= (MAILBOX_SLOTS - 1) * 8, "handle too long for the mailbox");
    for (k, chunk) in json.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        atomic_at(mailbox, 1 + k).store(u64::from_le_bytes(w), Ordering::Relaxed);
    }
    atomic_at(mailbox, 0).store(json.len() as u64, Ordering::Release);
}

/// Counts itself in slot 0 of the array `ready`, then sleeps 30 s.
fn ready_then_nap(ready: SegmentHandle) {
    // SAFETY: the counter is only accessed through atomics.
    let mut c = unsafe { SharedArray::<u64>::open_handle(&ready) }.unwrap();
    atomic_at(&mut c, 0).fetch_add(1, Ordering::Release);
    std::thread::sleep(Duration::from_secs(30));
}

/// Waits for a handle in the mailbox, opens the array it names and fills it with 3*i.
fn fill_from_mailbox(mailbox: SegmentHandle) -> Result<(), String> {
    // SAFETY: the mailbox is only accessed through atomics (see `atomic_at`).
    let mut mb = unsafe { SharedArray::<u64>::open_handle(&mailbox) }.map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let len = loop {
        let len = atomic_at(&mut mb, 0).load(Ordering::Acquire) as usize;
        if len != 0 {
            break len;
        }
        if Instant::now() > deadline {
            return Err("no handle posted within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let mut bytes = Vec::new();
    for k in 0..len.div_ceil(8) {
        bytes.extend_from_slice(&atomic_at(&mut mb, 1 + k).load(Ordering::Relaxed).to_le_bytes());
    }
    let h: SegmentHandle = serde_json::from_slice(&bytes[..len]).map_err(|e| e.to_string())?;
    // SAFETY: the parent does not touch the array until it has joined this child.
    let mut data = unsafe { SharedArray::<u64>::open_handle(&h) }.map_err(|e| e.to_string())?;
    for (i, x) in data.iter_mut().enumerate() {
        *x = 3 * i as u64;
    }
    Ok(())
}

// ---- helpers ----

fn done(m: StartMethod) {
    if m == StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().expect("the forkserver shuts down cleanly");
    }
}

// ---- tests, each run for every start method ----

fn start_join_exit_codes(m: StartMethod) {
    let ctx = get_context(m);
    let mut p = ctx.process().name("seven").start(exit_with, 7).unwrap();
    assert_eq!(p.name(), "seven");
    assert_eq!(p.start_method(), m);
    assert!(p.pid() > 0);
    let st = p.join().unwrap();
    assert_eq!((st.code(), st.signal(), st.exitcode(), st.success()), (Some(7), None, 7, false));
    assert_eq!(p.exitcode(), Some(7));
    assert!(!p.is_alive());
    assert_eq!(p.join().unwrap(), st, "a second join returns the same status");
    p.terminate().unwrap(); // no-op once it ended

    let mut ok = ctx.start(exit_with, 0).unwrap();
    assert!(ok.name().starts_with("Process-"));
    assert!(ok.join().unwrap().success());

    // Arguments far larger than a pipe or socket buffer.
    let mut big = ctx.start(len_mod_200, "x".repeat(1_000_123)).unwrap();
    assert_eq!(big.join().unwrap().exitcode(), 123);

    let mut err = ctx.start(fails, "no input".to_string()).unwrap();
    assert_eq!(err.join().unwrap().exitcode(), 1);

    let table = [1, 2, 3];
    match ctx.start_closure(move || table.iter().sum::<i32>()) {
        Ok(mut p) => {
            assert_eq!(m, StartMethod::Fork);
            assert_eq!(p.join().unwrap().exitcode(), 6);
        }
        Err(e) => {
            assert_ne!(m, StartMethod::Fork);
            assert!(matches!(e, Error::ClosureNeedsFork { .. }), "{e}");
            assert!(e.to_string().contains("fn item"), "{e}");
        }
    }
    done(m);
}

fn terminate_and_kill(m: StartMethod) {
    let ctx = get_context(m);
    let mut p = ctx.start(nap_ms, 30_000).unwrap();
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    assert!(p.join_timeout(Duration::from_millis(50)).unwrap().is_none());
    p.terminate().unwrap();
    let st = p.join().unwrap();
    assert_eq!((st.exitcode(), st.signal(), st.code()), (-15, Some(libc::SIGTERM), None));
    assert!(st.to_string().contains("SIGTERM"), "{st}");

    let mut p = ctx.start(nap_ms, 30_000).unwrap();
    p.kill().unwrap();
    let st = p.join_timeout(Duration::from_secs(10)).unwrap().expect("SIGKILL ends it");
    assert_eq!(st.exitcode(), -9);
    assert_eq!(p.exitcode(), Some(-9));
    done(m);
}

fn panicking_child(m: StartMethod) {
    let mut p = get_context(m).start(boom, "boom 42".to_string()).unwrap();
    let st = p.join().unwrap();
    assert_eq!(st.exitcode(), 101);
    assert_eq!(st.panic_message(), Some("boom 42"));
    assert!(st.to_string().contains("panicked: boom 42"), "{st}");
    done(m);
}

fn multithreaded_parent(m: StartMethod) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || rx.recv().ok());
    let r = get_context(m).start(exit_with, 3);
    match m {
        StartMethod::Fork => match r {
            Err(Error::ForkWithThreads { threads }) => assert!(threads >= 2),
            other => panic!("fork from a multi-threaded parent must be refused, got {other:?}"),
        },
        _ => assert_eq!(r.unwrap().join().unwrap().exitcode(), 3),
    }
    // The explicit opt-in forks anyway (the child only returns a number).
    if m == StartMethod::Fork {
        // SAFETY: the child only returns a number: no lock, no stdio.
        let mut p = unsafe { get_context(m).allow_threads() }.start(exit_with, 4).unwrap();
        assert_eq!(p.join().unwrap().exitcode(), 4);
    }
    tx.send(()).unwrap();
    t.join().unwrap();
    // A child started from a thread that then exits must not die with that thread (under fork,
    // with the explicit opt-in).
    // SAFETY: the child only sleeps and returns.
    let ctx = unsafe { get_context(m).allow_threads() };
    let mut p = std::thread::spawn(move || ctx.start(nap_ms, 300).unwrap()).join().unwrap();
    assert_eq!(p.join().unwrap().exitcode(), 0, "the child outlived the thread that started it");
    done(m);
}

fn orphans_die_with_parent(m: StartMethod) {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only changes who adopts orphans (this process).
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }, 0);
    let ready = SharedArray::<u64>::zeroed(1).unwrap();
    let ready_h = ready.handle();
    let (r, w) = raw_pipe();
    let (r, mut w) = (std::fs::File::from(r), std::fs::File::from(w));
    let mut middle = get_context(StartMethod::Fork)
        .start_closure(move || {
            let ctx = get_context(m);
            let mut kids = vec![ctx.start(ready_then_nap, ready_h.clone()).unwrap()];
            // The second child is started from a thread that has exited by the time the parent
            // dies: its parent-death signal cannot be relied on, the alive pipe must do it.
            if m != StartMethod::Fork {
                let h = ready_h.clone();
                kids.push(
                    std::thread::spawn(move || ctx.start(ready_then_nap, h).unwrap())
                        .join()
                        .unwrap(),
                );
            } else {
                kids.push(ctx.start(ready_then_nap, ready_h.clone()).unwrap());
            }
            // Report only once both children run their own code, guards armed.
            // SAFETY: the counter is only accessed through atomics.
            let mut c = unsafe { SharedArray::<u64>::open_handle(&ready_h) }.unwrap();
            while atomic_at(&mut c, 0).load(Ordering::Acquire) < 2 {
                std::thread::sleep(Duration::from_millis(1));
            }
            for k in &kids {
                writeln!(w, "{}", k.pid()).unwrap();
            }
            drop(w);
            std::mem::forget(kids);
            std::thread::sleep(Duration::from_secs(30));
        })
        .unwrap();
    let pids: Vec<i32> =
        BufReader::new(r).lines().take(2).map(|l| l.unwrap().parse().unwrap()).collect();
    assert_eq!(pids.len(), 2, "the middle process reports both children");
    for &p in &pids {
        // SAFETY: signal 0 only checks that the process exists.
        assert_eq!(unsafe { libc::kill(p, 0) }, 0, "child {p} runs before its parent dies");
    }
    middle.kill().unwrap();
    assert_eq!(middle.join().unwrap().exitcode(), -9);
    // Orphans are adopted by this process (a subreaper): every child must be reaped, killed by
    // SIGKILL, within a second of its parent's death.
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut gone = Vec::new();
    while gone.len() < pids.len() && Instant::now() < deadline {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            if pids.contains(&pid) {
                // Killed by SIGKILL: the parent-death signal or the alive pipe.
                let killed = libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL;
                assert!(killed, "child {pid} ended otherwise: {status:#x}");
                gone.push(pid);
            }
        } else {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert_eq!(
        gone.len(),
        pids.len(),
        "children {pids:?} outlived their SIGKILLed parent (gone: {gone:?})"
    );
    // Reap whatever else the middle left (its forkserver), which dies the same way.
    let deadline = Instant::now() + Duration::from_secs(2);
    // SAFETY: as above; a null status pointer is allowed.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } >= 0
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn array_by_handle(m: StartMethod) {
    let mut mailbox = SharedArray::<u64>::zeroed(MAILBOX_SLOTS).unwrap();
    let mut p = get_context(m).start(fill_from_mailbox, mailbox.handle()).unwrap();
    // Created only now, after the child started: it can reach it only through its handle.
    let data = SharedArray::<u64>::zeroed(1000).unwrap();
    post(&mut mailbox, &data.handle());
    let st = p.join().unwrap();
    assert!(st.success(), "{st}");
    assert!(data.iter().enumerate().all(|(i, &x)| x == 3 * i as u64));
    done(m);
}

fn drop_while_running(m: StartMethod) {
    let ctx = get_context(m);
    // A daemon child is killed and reaped when its handle goes.
    let p = ctx.process().daemon(true).start(nap_ms, 30_000).unwrap();
    let pid = p.pid() as i32;
    drop(p);
    // The child was killed by the drop (a forkserver worker may stay a zombie for a moment:
    // the server reaps it right after reporting its end).
    assert!(is_dead(pid as u32), "daemon child {pid} survived its dropped handle");
    // A non-daemon child is detached: it finishes its work and is reaped by a later start.
    let p = ctx.start(nap_ms, 50).unwrap();
    drop(p);
    std::thread::sleep(Duration::from_millis(400));
    let mut q = ctx.start(exit_with, 0).unwrap();
    assert!(q.join().unwrap().success());
    done(m);
}

/// Whether `pid` is gone or a zombie (an orphan's zombie waits for whoever adopted it).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            matches!(stat.rsplit(')').next().unwrap().split_whitespace().next(), Some("Z" | "X"))
        }
    }
}

/// The forkserver is SIGKILLed under a running worker: the worker dies with it, its join says
/// so, and the next start launches a new server.
fn forkserver_death_is_reported_and_recovered() {
    let ctx = get_context(StartMethod::ForkServer);
    let mut p = ctx.start(nap_ms, 30_000).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", p.pid())).unwrap();
    let server: i32 =
        stat.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_ne!(server as u32, std::process::id(), "a forkserver worker is the server's child");
    // SAFETY: plain kill of the server, which is our child and not yet reaped.
    assert_eq!(unsafe { libc::kill(server, libc::SIGKILL) }, 0);
    match p.join() {
        Err(Error::ForkServer { reason }) => assert!(reason.contains("died"), "{reason}"),
        other => panic!("expected a ForkServer error, got {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while !is_dead(p.pid()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(is_dead(p.pid()), "the worker outlived its forkserver");
    let mut q = ctx.start(exit_with, 5).unwrap();
    assert_eq!(q.join().unwrap().exitcode(), 5, "a new server took over");
    // A shutdown with a worker still running times out; the server goes once the worker ends.
    let mut r = ctx.start(nap_ms, 300).unwrap();
    match shmpool::process::shutdown_forkserver_timeout(Duration::from_millis(20)) {
        Err(Error::Timeout { .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(r.join().unwrap().exitcode(), 0, "the worker finished its work");
    // The next start launches a new server and reaps the old one in passing.
    // (It exits right after reporting the worker's end; give a loaded machine some slack.)
    std::thread::sleep(Duration::from_millis(200));
    let mut q = ctx.start(exit_with, 6).unwrap();
    assert_eq!(q.join().unwrap().exitcode(), 6);
    shmpool::process::shutdown_forkserver_timeout(Duration::from_secs(10)).unwrap();
}

// ---- bad markers in a re-executed child's environment ----

fn run_with_marker(marker: &str) -> (i32, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--list")
        .env("SHMPOOL_WORKER", marker)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn raw_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: valid out-array; no O_CLOEXEC on purpose, so a re-executed child inherits both.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fresh descriptors owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn garbage_marker_exits_with_clear_error() {
    let cases = [
        ("garbage", "six fields"),
        ("2,spawn,3,4,5,0000000000000001", "version"),
        ("1,vfork,3,4,5,0000000000000001", "mode"),
        ("1,spawn,x,4,5,0000000000000001", "descriptor number"),
        ("1,spawn,900,901,902,0000000000000001", "not open"),
        ("1,forkserver,1,-1,2,0000000000000001", "standard stream"),
        ("1,spawn,3,4,5,zz", "secret"),
    ];
    for (marker, why) in cases {
        let (code, err) = run_with_marker(marker);
        assert_eq!(code, shmpool::process::BAD_MARKER_EXIT_CODE, "marker {marker:?}: {err}");
        assert!(err.contains("SHMPOOL_WORKER") && err.contains(why), "marker {marker:?}: {err}");
    }
    // Well-formed markers over real pipes, with forged jobs: refused before any address is used.
    // A job frame: 8 bytes of little-endian length, then the secret (8), a checksum (8) and the
    // postcard body, which starts with the build fingerprint (a length byte, then the text).
    let frame = |j: &[u8]| [&(j.len() as u64).to_le_bytes()[..], j].concat();
    let payload = |secret: u64, build: &str| {
        let mut p = [secret.to_le_bytes(), [0; 8]].concat();
        p.push(build.len() as u8);
        p.extend_from_slice(build.as_bytes());
        p.extend_from_slice(&[0; 20]);
        p
    };
    let wrong_secret = &payload(1, "0.0.0/1")[..];
    let other_build = &payload(2, "0.0.0/1")[..];
    let forged: [(Vec<u8>, bool, &str); 8] = [
        (frame(b"not a job frame"), false, "not readable"),
        (frame(&[&2u64.to_le_bytes()[..], &[0; 8], &[0xff; 9]].concat()), false, "not readable"),
        (frame(wrong_secret), false, "secret"),
        (frame(other_build), false, "another build"),
        // The test keeps the write end open, as a stray copy of it would: the child reads its
        // framed job and no further, instead of waiting for an end-of-file forever.
        (frame(wrong_secret), true, "secret"),
        ([frame(wrong_secret), b"{}".to_vec()].concat(), true, "trailing bytes"),
        (frame(wrong_secret)[..40].to_vec(), false, "closed after 32 of the"),
        (b"not a job frame".to_vec(), false, "more than"),
    ];
    for (job, keep_writer, why) in forged {
        let (job_r, job_w) = raw_pipe();
        let (rep_r, rep_w) = raw_pipe();
        let (alive_r, alive_w) = raw_pipe();
        let mut job_w = std::fs::File::from(job_w);
        job_w.write_all(&job).unwrap();
        if !keep_writer {
            drop(job_w);
            job_w = std::fs::File::open("/dev/null").unwrap();
        }
        let marker = format!(
            "1,spawn,{},{},{},{:016x}",
            job_r.as_raw_fd(),
            rep_w.as_raw_fd(),
            alive_r.as_raw_fd(),
            2
        );
        let (code, err) = run_with_marker(&marker);
        let shown = String::from_utf8_lossy(&job).into_owned();
        assert_eq!(code, shmpool::process::BAD_MARKER_EXIT_CODE, "job {shown:?}: {err}");
        assert!(err.contains(why), "job {shown:?}: {err}");
        drop((job_r, job_w, rep_r, rep_w, alive_r, alive_w));
    }
}

/// The parent of `pid`, from `/proc/<pid>/stat`.
fn ppid_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `init()` called while other threads run, with the marker set, refuses to touch the
/// environment (removing a variable then would race those threads' reads) and says why.
fn init_refuses_with_threads() {
    let (r, w) = raw_pipe();
    let mut p = get_context(StartMethod::Fork)
        .start_closure(move || {
            // SAFETY: dup2 onto stderr; the child owns both descriptors.
            unsafe { libc::dup2(w.as_raw_fd(), 2) };
            drop(w);
            // SAFETY: this forked child has a single thread at this point.
            unsafe { std::env::set_var("SHMPOOL_WORKER", "garbage") };
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let t = std::thread::spawn(move || rx.recv().ok());
            shmpool::init();
            drop((tx, t));
            0
        })
        .unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut err).unwrap();
    assert_eq!(p.join().unwrap().exitcode(), shmpool::process::BAD_MARKER_EXIT_CODE, "{err}");
    assert!(err.contains("2 threads already run") && err.contains("init()"), "{err}");
}

/// Running out of descriptors in the client is the client's error, and leaves a healthy
/// forkserver (and its workers) alone.
fn forkserver_local_error_keeps_the_server() {
    let mut p = get_context(StartMethod::Fork)
        .start_closure(|| {
            let ctx = get_context(StartMethod::ForkServer);
            // Children that live long enough for /proc/<pid>/stat to be read before they are reaped.
            let mut a = ctx.start(nap_ms, 300).unwrap();
            let server = ppid_of(a.pid());
            assert!(a.join().unwrap().success());
            let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: valid rlimit pointers; only this forked child's limit changes.
            unsafe {
                assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
                let none = libc::rlimit { rlim_cur: 0, rlim_max: lim.rlim_max };
                assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &none), 0);
            }
            let r = ctx.start(exit_with, 2);
            // SAFETY: as above, restoring the saved limit.
            unsafe { assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0) };
            match r {
                Err(Error::Io { op, source }) => {
                    assert!(op.contains("pipe"), "{op}: {source}");
                    assert_eq!(source.raw_os_error(), Some(libc::EMFILE));
                }
                other => panic!("expected the client's EMFILE, got {other:?}"),
            }
            let mut b = ctx.start(nap_ms, 300).unwrap();
            assert_eq!(ppid_of(b.pid()), server, "the healthy server was replaced");
            assert!(b.join().unwrap().success());
            shmpool::process::shutdown_forkserver().unwrap();
        })
        .unwrap();
    let st = p.join().unwrap();
    assert!(st.success(), "{st}");
}

/// A thread panicking (inside the panic hook, which holds std's hook lock) while another thread
/// forks: the child never takes that lock, so it runs and exits.
fn fork_while_a_thread_panics() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    let inside = Arc::new(AtomicBool::new(false));
    let flag = inside.clone();
    std::panic::set_hook(Box::new(move |_| {
        if std::thread::current().name() == Some("slow-panic") {
            flag.store(true, Ordering::Release);
            std::thread::sleep(Duration::from_secs(2));
        }
    }));
    // A first child, while single-threaded: shmpool's hook wraps the one above from now on.
    let mut first = get_context(StartMethod::Fork).start_closure(|| 0).unwrap();
    assert!(first.join().unwrap().success());
    let t =
        std::thread::Builder::new().name("slow-panic".into()).spawn(|| panic!("slowly")).unwrap();
    while !inside.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: the child only returns a number.
    let ctx = unsafe { get_context(StartMethod::Fork).allow_threads() };
    let mut c = ctx.start_closure(|| 7).unwrap();
    let st = c.join_timeout(Duration::from_secs(10)).unwrap();
    if st.is_none() {
        c.kill().unwrap();
        c.join().unwrap();
        panic!("the child hung on the panic hook's lock, held by a panicking thread at the fork");
    }
    assert_eq!(st.unwrap().exitcode(), 7);
    assert!(t.join().is_err());
}

/// A child forked (under `allow_threads`) while another thread holds the forkserver client's
/// lock closes its copy of the client socket anyway, so shutting the server down does not wait
/// for that child; the child itself gets an error from the forkserver API, not a deadlock.
fn forked_child_drops_forkserver_socket() {
    let ctx = get_context(StartMethod::ForkServer);
    // A child that lives long enough for its /proc entry to be read (one that exits at once can
    // be reaped by the server first).
    let mut a = ctx.start(nap_ms, 300).unwrap();
    let server = ppid_of(a.pid());
    assert!(a.join().unwrap().success());
    // A stopped server leaves the next request waiting for its reply, with the lock held.
    // SAFETY: plain kill of our own child.
    assert_eq!(unsafe { libc::kill(server as i32, libc::SIGSTOP) }, 0);
    let t = std::thread::spawn(|| {
        let mut w = get_context(StartMethod::ForkServer).start(exit_with, 4).unwrap();
        w.join().unwrap().exitcode()
    });
    // SAFETY: the children below only call shutdown_forkserver (which takes no lock in a child
    // that found the client's lock held) and sleep.
    let fork = unsafe { get_context(StartMethod::Fork).allow_threads() };
    let mut tries = 0;
    let mut child = loop {
        let mut c = fork
            .start_closure(|| match shmpool::process::shutdown_forkserver() {
                Err(Error::ForkServer { reason }) if reason.contains("forked child") => {
                    std::thread::sleep(Duration::from_secs(20));
                    0
                }
                _ => 3, // the lock was free at the fork: try again
            })
            .unwrap();
        match c.join_timeout(Duration::from_millis(300)).unwrap() {
            None => break c,
            Some(st) => {
                assert_eq!(st.exitcode(), 3, "{st}");
                tries += 1;
                assert!(tries < 100, "the requesting thread never held the lock");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(server as i32, libc::SIGCONT) }, 0);
    assert_eq!(t.join().unwrap(), 4);
    let r = shmpool::process::shutdown_forkserver_timeout(Duration::from_secs(5));
    child.kill().unwrap();
    assert_eq!(child.join().unwrap().exitcode(), -9);
    r.expect("the server saw its client go although a forked child had a copy of the socket");
}

/// In a spawn child or forkserver worker: 0 when stdin is `/dev/null` and no descriptor leads
/// to `link` (a pipe of the parent's, `pipe:[inode]`); 3 when one does, 4 for another stdin.
fn holds_none_of(link: String) -> i32 {
    let target = |fd: &str| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok();
    if target("0").is_none_or(|t| t != std::path::Path::new("/dev/null")) {
        return 4;
    }
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if target(&e.file_name().to_string_lossy()).is_some_and(|t| t.to_string_lossy() == link) {
            return 3;
        }
    }
    0
}

/// A spawn child (and a forkserver worker) is started without copying the parent and gets
/// only the descriptors it is given: none of the parent's (close-on-exec) pipes, stdin from
/// `/dev/null`. Also from a thread, and with both ends of the pipe open at the start.
fn children_get_only_their_descriptors(m: StartMethod) {
    let (r, w) = raw_pipe();
    for fd in [&r, &w] {
        // SAFETY: F_SETFD on our own descriptors; no memory is touched.
        assert_eq!(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) }, 0);
    }
    let link = std::fs::read_link(format!("/proc/self/fd/{}", r.as_raw_fd())).unwrap();
    let link = link.to_string_lossy().into_owned();
    assert!(link.starts_with("pipe:["), "{link}");
    let mut p = get_context(m).start(holds_none_of, link.clone()).unwrap();
    assert_eq!(p.join().unwrap().exitcode(), 0, "under {m}: a child held {link} or another stdin");
    let from_thread = std::thread::spawn(move || {
        let mut p = get_context(m).start(holds_none_of, link).unwrap();
        p.join().unwrap().exitcode()
    });
    assert_eq!(from_thread.join().unwrap(), 0, "under {m}, started from a thread");
    drop((r, w));
    done(m);
}

fn cpu_counts() {
    let (all, usable) = (shmpool::cpu_count(), shmpool::process_cpu_count());
    assert!(all >= 1 && usable >= 1 && usable <= all, "{usable} of {all}");
    // Pinning this process to one CPU must show in process_cpu_count, not in cpu_count. Done in
    // a forked child, so the test process keeps its affinity.
    let mut p = get_context(StartMethod::Fork)
        .start_closure(move || {
            // SAFETY: cpu_set_t is plain data; the calls get valid pointers and sizes.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
                let first =
                    (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &set)).unwrap();
                libc::CPU_ZERO(&mut set);
                libc::CPU_SET(first, &mut set);
                assert_eq!(
                    libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
                    0
                );
            }
            assert_eq!(shmpool::process_cpu_count(), 1);
            assert_eq!(shmpool::cpu_count(), all);
        })
        .unwrap();
    let st = p.join().unwrap();
    assert!(st.success(), "{st}");
}

// ---- arguments that JSON could not carry, under every start method ----

/// Floats compared through `to_bits`: NaNs with payloads and signs, infinities, zeros of both
/// signs, the extremes.
fn awkward_floats() -> (Vec<f64>, f32) {
    let f = vec![
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff8_0000_dead_beef),
        f64::from_bits(0xfff0_0000_0000_0001), // a signalling NaN, negative
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        f64::MAX,
        f64::from_bits(1), // the smallest subnormal
    ];
    (f, f32::from_bits(0x7fc0_1234))
}

/// Exit code 0 when the floats arrived bit for bit, else 10 + the index of the first that did
/// not (50: the f32, 99: the count).
fn check_floats((got, single): (Vec<f64>, f32)) -> i32 {
    let (want, want_single) = awkward_floats();
    if got.len() != want.len() {
        return 99;
    }
    if let Some(i) = got.iter().zip(&want).position(|(a, b)| a.to_bits() != b.to_bits()) {
        return 10 + i as i32;
    }
    if single.to_bits() != want_single.to_bits() { 50 } else { 0 }
}

type Maps = (HashMap<(u32, u32), String>, BTreeMap<u64, Vec<u8>>);

/// Maps whose keys are not strings (JSON refuses them).
fn awkward_maps() -> Maps {
    let pairs = (0..50u32).map(|i| ((i, u32::MAX - i), format!("v{i}"))).collect();
    let blobs = [(0, vec![]), (7, vec![1, 2, 3]), (u64::MAX, vec![0xff; 300])].into();
    (pairs, blobs)
}

fn check_maps(got: Maps) -> i32 {
    let (pairs, blobs) = awkward_maps();
    match (got.0 == pairs, got.1 == blobs) {
        (true, true) => 0,
        (false, _) => 11,
        (true, false) => 12,
    }
}

type Empties = (Vec<u32>, String, (), Option<u8>, BTreeMap<u64, Vec<u8>>);

/// Exit code 0 when every part arrived empty.
fn check_empties((v, s, (), o, m): Empties) -> i32 {
    if v.is_empty() && s.is_empty() && o.is_none() && m.is_empty() { 0 } else { 13 }
}

/// A function whose whole argument encodes to no bytes at all.
fn unit_arg(_: ()) -> i32 {
    21
}

const LARGE: usize = 4 << 20;

fn large_byte(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 12)) as u8
}

/// Exit code 0 when all 4 MiB arrived, byte for byte.
fn check_large(v: Vec<u8>) -> i32 {
    if v.len() != LARGE {
        return 14;
    }
    if v.iter().enumerate().all(|(i, &b)| b == large_byte(i)) { 0 } else { 15 }
}

fn args_floats_bit_exact(m: StartMethod) {
    let mut p = get_context(m).start(check_floats, awkward_floats()).unwrap();
    let st = p.join().unwrap();
    assert_eq!(st.exitcode(), 0, "NaN payloads, infinities and -0.0 under {m}: {st}");
    done(m);
}

fn args_non_string_map_keys(m: StartMethod) {
    let mut p = get_context(m).start(check_maps, awkward_maps()).unwrap();
    let st = p.join().unwrap();
    assert_eq!(st.exitcode(), 0, "maps with tuple and integer keys under {m}: {st}");
    done(m);
}

fn args_empty_and_large(m: StartMethod) {
    let ctx = get_context(m);
    let empties: Empties = (Vec::new(), String::new(), (), None, BTreeMap::new());
    let mut p = ctx.start(check_empties, empties).unwrap();
    let st = p.join().unwrap();
    assert_eq!(st.exitcode(), 0, "empty values under {m}: {st}");
    let mut p = ctx.start(unit_arg, ()).unwrap();
    let st = p.join().unwrap();
    assert_eq!(st.exitcode(), 21, "a unit argument under {m}: {st}");
    let big: Vec<u8> = (0..LARGE).map(large_byte).collect();
    let mut p = ctx.start(check_large, big).unwrap();
    let st = p.join().unwrap();
    assert_eq!(st.exitcode(), 0, "4 MiB of arguments under {m}: {st}");
    done(m);
}

/// An argument type that needs a self-describing format cannot cross to a re-executed child:
/// refused in the parent with a typed error that says what to use instead; fork moves it.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Loose {
    Number(u32),
    Text(String),
}

fn loose_code(l: Loose) -> i32 {
    match l {
        Loose::Number(n) => n as i32,
        Loose::Text(t) => t.len() as i32,
    }
}

fn args_needing_a_self_describing_format(m: StartMethod) {
    match get_context(m).start(loose_code, Loose::Number(6)) {
        Ok(mut p) => {
            assert_eq!(m, StartMethod::Fork, "a re-executed child cannot decode it");
            assert_eq!(p.join().unwrap().exitcode(), 6);
            let mut q = get_context(m).start(loose_code, Loose::Text("abc".into())).unwrap();
            assert_eq!(q.join().unwrap().exitcode(), 3);
        }
        Err(e) => {
            assert_ne!(m, StartMethod::Fork);
            assert!(matches!(&e, Error::Serialize { .. }), "{e}");
            let text = e.to_string();
            assert!(text.contains("untagged") && text.contains("fork"), "{text}");
        }
    }
    done(m);
}

// ---- SIGCHLD ignored, as inherited from a launcher ----

/// Sets SIGCHLD to SIG_IGN in this process (a forked test child only).
fn ignore_sigchld() {
    // SAFETY: installing SIG_IGN has no memory effects; only the calling test child is affected.
    let old = unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    assert_ne!(old, libc::SIG_ERR);
}

/// In a child with SIGCHLD ignored (set anew before each part, since shmpool resets it): a
/// scope's children, and a `Process` under every start method, are still joined with their
/// real status, never "waitpid: No child processes".
fn sigchld_ignored_by_the_launcher() {
    let mut p = get_context(StartMethod::Fork)
        .start_closure(|| {
            ignore_sigchld();
            let joined = shmpool::scope(|s| s.fork(|| 0)?.join());
            match joined {
                Ok(Ok(st)) => assert!(st.success(), "the scope child: {st}"),
                other => panic!("scope with SIGCHLD ignored, joined child: {other:?}"),
            }
            ignore_sigchld();
            let reaped = shmpool::scope(|s| s.fork(|| 0).map(drop));
            assert!(matches!(reaped, Ok(Ok(()))), "scope reaping its child: {reaped:?}");
            for m in [StartMethod::Spawn, StartMethod::ForkServer, StartMethod::Fork] {
                ignore_sigchld();
                let mut p = get_context(m).start(exit_with, 7).unwrap();
                // A status that never comes (a forkserver whose workers the kernel reaped
                // unseen) fails here, not at the watchdog.
                match p.join_timeout(Duration::from_secs(10)) {
                    Ok(Some(st)) => assert_eq!(st.exitcode(), 7, "under {m}: {st}"),
                    Ok(None) => panic!("under {m} with SIGCHLD ignored: no status within 10 s"),
                    Err(e) => panic!("under {m} with SIGCHLD ignored: {e}"),
                }
            }
            // A server launched while SIGCHLD was ignored is still shut down and reaped.
            ignore_sigchld();
            shmpool::process::shutdown_forkserver()
                .expect("the forkserver shuts down and is reaped");
        })
        .unwrap();
    let st = p.join().unwrap();
    assert!(st.success(), "{st}");
}

pub fn tests() -> Tests {
    register! {
        start_join_exit_codes in METHODS,
        terminate_and_kill in METHODS,
        panicking_child in METHODS,
        array_by_handle in METHODS,
        drop_while_running in METHODS,
        clean multithreaded_parent in METHODS,
        clean orphans_die_with_parent in METHODS,
        args_floats_bit_exact in METHODS,
        args_non_string_map_keys in METHODS,
        args_empty_and_large in METHODS,
        args_needing_a_self_describing_format in METHODS,
        children_get_only_their_descriptors in [StartMethod::Spawn, StartMethod::ForkServer],
        sigchld_ignored_by_the_launcher,
        garbage_marker_exits_with_clear_error,
        cpu_counts,
        init_refuses_with_threads,
        forkserver_local_error_keeps_the_server,
        clean fork_while_a_thread_panics,
        clean forked_child_drops_forkserver_socket,
        forkserver_death_is_reported_and_recovered,
        helpers: [ignore_sigchld],
    }
}
