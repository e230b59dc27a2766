//! Regression tests for the scope's ownership rules (found in review): what a child captured is
//! released once, by the child; a leaked `ScopedChild` is still reaped before the scope returns;
//! a reaped child is never signalled or waited for again.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use shmpool::{SharedArray, SharedAtomic, scope};

use crate::harness::Test;

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "scope::captures_are_dropped_once_by_the_child",
            run: captures_are_dropped_once_by_the_child,
        },
        Test {
            name: "scope::forgotten_child_is_still_reaped_before_return",
            run: forgotten_child_is_still_reaped_before_return,
        },
        Test {
            name: "scope::status_is_cached_and_reaped_children_are_not_signalled",
            run: status_is_cached_and_reaped_children_are_not_signalled,
        },
    ]
}

struct BumpOnDrop<'a>(&'a AtomicU32);

impl Drop for BumpOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn captures_are_dropped_once_by_the_child() {
    let drops = SharedAtomic::<AtomicU32>::new(0).unwrap();
    let st = scope(|s| {
        let guard = BumpOnDrop(&drops);
        s.fork(move || {
            let _g = guard; // dropped here, in the child
        })
        .unwrap()
        .join()
        .unwrap()
    })
    .unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the parent dropped what it handed to the child");
}

fn forgotten_child_is_still_reaped_before_return() {
    let mut a = SharedArray::<u64>::zeroed(1).unwrap();
    scope(|s| {
        let slot = &mut a[..];
        let child = s
            .fork(move || {
                std::thread::sleep(Duration::from_millis(100));
                slot[0] = 1009;
            })
            .unwrap();
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
