//! Regression tests for the scope's ownership rules (found in review): each process drops its
//! own copy of what a child captured (the parent right after the fork, so captured descriptors
//! close there); a leaked `ScopedChild` is still reaped before the scope returns;
//! a reaped child is never signalled or waited for again.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use shmpool::{SharedArray, SharedAtomic, scope};

use crate::harness::{Tests, register};

pub fn tests() -> Tests {
    register! {
        each_process_drops_its_own_copy_of_the_captures,
        forgotten_child_is_still_reaped_before_return,
        status_is_cached_and_reaped_children_are_not_signalled,
    }
}

struct BumpOnDrop<'a>(&'a AtomicU32);

impl Drop for BumpOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn each_process_drops_its_own_copy_of_the_captures() {
    let drops = SharedAtomic::<AtomicU32>::new(0).unwrap();
    let (r, w) = std::io::pipe().unwrap();
    let st = scope(|s| {
        let bump = BumpOnDrop(&drops);
        let mut child = s
            .fork(move || {
                let _b = bump; // the child's copy, dropped here
                std::io::Write::write_all(&mut &w, b"hi").unwrap();
            })
            .unwrap();
        // The parent's copy was dropped at the fork: its write end is closed, so this read ends
        // at the child's exit instead of waiting forever.
        let mut got = String::new();
        std::io::Read::read_to_string(&mut &r, &mut got).unwrap();
        assert_eq!(got, "hi");
        child.join_timeout(Duration::from_secs(5)).unwrap().unwrap()
    })
    .unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(drops.load(Ordering::SeqCst), 2, "each process drops its own copy exactly once");
}

fn forgotten_child_is_still_reaped_before_return() {
    let mut a = SharedArray::<u64>::zeroed(1).unwrap();
    scope(|s| {
        let child = s
            .fork_with(&mut a[..], |slot| {
                std::thread::sleep(Duration::from_millis(100));
                slot[0] = 1009;
            })
            .unwrap();
        #[allow(clippy::forget_non_drop)] // the point: a leaked handle must not matter
        std::mem::forget(child);
    })
    .unwrap();
    // The scope waited for the child even though its handle was leaked: its write is there, and
    // the parent's own write afterwards is not overwritten by a child still running.
    assert_eq!(a[0], 1009);
    a[0] = 7;
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(a[0], 7);
}

fn status_is_cached_and_reaped_children_are_not_signalled() {
    scope(|s| {
        let mut c = s.fork(|| 9).unwrap();
        let first = loop {
            if let Some(st) = c.join_timeout(Duration::from_millis(200)).unwrap() {
                break st;
            }
        };
        assert_eq!(first.code(), Some(9));
        // Reaped: kill and terminate must not signal whatever now has that pid.
        c.kill().unwrap();
        c.terminate().unwrap();
        // join returns the same status instead of waiting on a pid that is gone (ECHILD).
        assert_eq!(c.join().unwrap(), first);
        // A deadline too far to represent means "no deadline", not a panic.
        let mut d = s.fork(|| 0).unwrap();
        assert!(d.join_timeout(Duration::MAX).unwrap().unwrap().success());
    })
    .unwrap();
}
