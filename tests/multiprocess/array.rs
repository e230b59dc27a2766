//! Shared arrays across forked children: in-place writes, panics, signals, the thread check,
//! attach from a child, unlink ownership, stale cleanup, and the fallocate failure path.

use std::time::Duration;

use shmpool::{Error, SharedArray, ShmOptions, scope};

use crate::harness::{Tests, register};

pub fn tests() -> Tests {
    register! {
        children_fill_disjoint_chunks_in_place,
        child_panic_is_exit_101_with_message,
        child_exit_codes_and_signals,
        unjoined_failing_child_fails_the_scope,
        fork_refused_while_threads_run,
        child_opens_named_array_and_writes,
        child_opens_anonymous_handle,
        only_the_creator_unlinks,
        clean_stale_removes_dead_creators_segments,
        fallocate_failure_is_an_error_and_leaves_nothing,
    }
}

fn children_fill_disjoint_chunks_in_place() {
    let n = 1_000_003; // not a multiple of the child count
    let mut a = SharedArray::<u64>::zeroed(n).unwrap();
    let statuses = scope(|s| {
        let children: Vec<_> = a
            .split_mut(4)
            .into_iter()
            .enumerate()
            .map(|(k, chunk)| {
                s.fork_with(chunk, move |chunk| {
                    for x in chunk.iter_mut() {
                        *x = (k as u64 + 1) << 32 | std::process::id() as u64;
                    }
                })
                .unwrap()
            })
            .collect();
        let pids: Vec<u32> = children.iter().map(|c| c.pid()).collect();
        let st: Vec<_> = children.into_iter().map(|c| c.join().unwrap()).collect();
        (pids, st)
    })
    .unwrap();
    let (pids, st) = statuses;
    assert!(st.iter().all(|s| s.success()), "{st:?}");
    // Every element written, by the child that owned its chunk.
    let mut start = 0;
    for (k, pid) in pids.iter().enumerate() {
        let len = n / 4 + usize::from(k < n % 4);
        assert!(
            a[start..start + len].iter().all(|&x| x == (k as u64 + 1) << 32 | *pid as u64),
            "chunk {k}"
        );
        start += len;
    }
    assert_eq!(start, n);
}

fn child_panic_is_exit_101_with_message() {
    let st = scope(|s| {
        s.fork(|| -> () { panic!("kernel failed on chunk {}", 7) }).unwrap().join().unwrap()
    })
    .unwrap();
    assert_eq!(st.code(), Some(101));
    assert_eq!(st.panic_message(), Some("kernel failed on chunk 7"));
    assert!(st.to_string().contains("panicked: kernel failed on chunk 7"));
}

fn child_exit_codes_and_signals() {
    scope(|s| {
        assert_eq!(s.fork(|| 0).unwrap().join().unwrap().exitcode(), 0);
        assert_eq!(s.fork(|| 42).unwrap().join().unwrap().exitcode(), 42);
        let err: Result<(), String> = Err("bad input".into());
        assert_eq!(s.fork(move || err).unwrap().join().unwrap().exitcode(), 1);

        let mut sleeper = s.fork(|| std::thread::sleep(Duration::from_secs(30))).unwrap();
        assert_eq!(sleeper.join_timeout(Duration::from_millis(20)).unwrap(), None, "still running");
        sleeper.kill().unwrap();
        let st = sleeper.join().unwrap();
        assert_eq!((st.signal(), st.exitcode()), (Some(libc::SIGKILL), -9));
        assert!(st.to_string().contains("SIGKILL"));

        let t = s.fork(|| std::thread::sleep(Duration::from_secs(30))).unwrap();
        t.terminate().unwrap();
        assert_eq!(t.join().unwrap().exitcode(), -libc::SIGTERM);
    })
    .unwrap();
}

fn unjoined_failing_child_fails_the_scope() {
    let r = scope(|s| {
        s.fork(|| 0).unwrap();
        s.fork(|| 3).unwrap();
    });
    match r {
        Err(Error::ChildFailed { how, .. }) => assert_eq!(how, "exited with code 3"),
        other => panic!("expected ChildFailed, got {other:?}"),
    }
}

fn fork_refused_while_threads_run() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || rx.recv().ok());
    let r = scope(|s| s.fork(|| 0).map(|c| c.join()));
    assert!(matches!(r, Ok(Err(Error::ForkWithThreads { threads })) if threads >= 2), "{r:?}");
    // The explicit opt-in forks anyway.
    let st = scope(|s| {
        // SAFETY: the child only returns a code: no lock, no stdio, no allocation.
        unsafe { s.allow_threads() };
        s.fork(|| 5).unwrap().join().unwrap()
    })
    .unwrap();
    assert_eq!(st.code(), Some(5));
    drop(tx);
    t.join().unwrap();
}

fn child_opens_named_array_and_writes() {
    let a = SharedArray::<i32>::zeroed_with(100, &ShmOptions::new().generated_name()).unwrap();
    let name = a.name().unwrap().to_string();
    let st = scope(|s| {
        s.fork(|| {
            // SAFETY: the parent does not touch the array until this child is joined.
            let mut b = unsafe { SharedArray::<i32>::open(&name) }.unwrap();
            b.iter_mut().enumerate().for_each(|(i, x)| *x = -(i as i32));
            // Opening with the wrong type fails in the child too.
            // SAFETY: the open fails on the type check before any element is accessed.
            let wrong = unsafe { SharedArray::<f32>::open(&name) };
            assert!(matches!(wrong, Err(Error::TypeMismatch { .. })));
        })
        .unwrap()
        .join()
        .unwrap()
    })
    .unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(a[99], -99);
    // The child's view dropped without unlinking: the parent still opens it by name.
    // SAFETY: nothing writes while `c` lives.
    assert_eq!(unsafe { SharedArray::<i32>::open(&name) }.unwrap()[5], -5);
}

fn child_opens_anonymous_handle() {
    let a = SharedArray::<f64>::from_fn(10, |i| i as f64).unwrap();
    let h = a.handle();
    let st = scope(|s| {
        s.fork(|| {
            // SAFETY: the parent only reads `a` after joining this child.
            let mut b = unsafe { SharedArray::<f64>::open_handle(&h) }.unwrap();
            b[0] = 100.0;
        })
        .unwrap()
        .join()
        .unwrap()
    })
    .unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(a[0], 100.0);
}

fn only_the_creator_unlinks() {
    let a = SharedArray::<u8>::zeroed_with(16, &ShmOptions::new().generated_name()).unwrap();
    let name = a.name().unwrap().to_string();
    // A child that opens and drops its own view, then exits normally, must not unlink.
    let st = scope(|s| {
        s.fork(|| {
            // SAFETY: read-only use.
            let b = unsafe { SharedArray::<u8>::open(&name) }.unwrap();
            drop(b);
        })
        .unwrap()
        .join()
        .unwrap()
    })
    .unwrap();
    assert!(st.success());
    assert!(
        std::path::Path::new(&format!("/dev/shm/{name}")).exists(),
        "child unlinked the segment"
    );
    drop(a);
    assert!(
        !std::path::Path::new(&format!("/dev/shm/{name}")).exists(),
        "creator did not unlink on drop"
    );
}

fn clean_stale_removes_dead_creators_segments() {
    // A child creates a named segment, persists it and exits: its creator is then dead.
    let (r, w) = std::io::pipe().unwrap();
    let st = scope(|s| {
        s.fork(move || {
            let a = SharedArray::<u8>::zeroed_with(8, &ShmOptions::new().generated_name()).unwrap();
            a.persist();
            std::io::Write::write_all(&mut &w, a.name().unwrap().as_bytes()).unwrap();
        })
        .unwrap()
        .join()
        .unwrap()
    })
    .unwrap();
    assert!(st.success());
    let mut name = String::new();
    std::io::Read::read_to_string(&mut &r, &mut name).unwrap();
    assert!(
        std::path::Path::new(&format!("/dev/shm/{name}")).exists(),
        "persisted segment missing"
    );
    // A live process's segment must survive the clean-up.
    let mine = SharedArray::<u8>::zeroed_with(8, &ShmOptions::new().generated_name()).unwrap();
    let removed = shmpool::clean_stale().unwrap();
    assert!(removed.contains(&name), "{removed:?} lacks {name}");
    assert!(!removed.iter().any(|n| n == mine.name().unwrap()));
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}

/// fallocate itself refusing (here: RLIMIT_FSIZE, which tmpfs and memfd both honour) must be an
/// OutOfSpace error with no SIGBUS and no name left behind; run in a child so the limit stays
/// there.
fn fallocate_failure_is_an_error_and_leaves_nothing() {
    let st = scope(|s| {
        s.fork(|| {
            let lim = libc::rlimit { rlim_cur: 1 << 20, rlim_max: 1 << 20 };
            // SAFETY: setrlimit and signal only change this child's own limits and dispositions;
            // SIGXFSZ is ignored so the over-limit fallocate returns EFBIG instead of killing us.
            unsafe {
                libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            }
            let before: Vec<_> =
                std::fs::read_dir("/dev/shm").unwrap().flatten().map(|e| e.file_name()).collect();
            for opts in [ShmOptions::new(), ShmOptions::new().generated_name()] {
                match SharedArray::<u8>::zeroed_with(4 << 20, &opts) {
                    Err(Error::OutOfSpace { requested, .. }) => {
                        assert_eq!(requested, (4 << 20) + 128)
                    }
                    other => panic!("expected OutOfSpace, got {other:?}"),
                }
            }
            let after: Vec<_> =
                std::fs::read_dir("/dev/shm").unwrap().flatten().map(|e| e.file_name()).collect();
            assert_eq!(before, after, "a failed create left a name behind");
            // Under the limit it still works.
            assert_eq!(SharedArray::<u8>::zeroed(1000).unwrap().len(), 1000);
        })
        .unwrap()
        .join()
        .unwrap()
    })
    .unwrap();
    assert!(st.success(), "{st}");
}
