//! Shared values across forked children: locked values, lock-free atomics, raw values.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shmpool::{Event, ExitStatus, LockError, RawValue, SharedAtomic, SharedValue, scope};

use crate::harness::Test;

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "value::shared_value_increments_are_exact_across_processes",
            run: shared_value_increments,
        },
        Test {
            name: "value::shared_atomic_fetch_add_is_exact_across_processes",
            run: shared_atomic_increments,
        },
        Test {
            name: "value::raw_value_written_by_a_child_is_seen",
            run: raw_value_written_by_child,
        },
        Test {
            name: "value::shared_value_holder_killed_gives_owner_died",
            run: shared_value_owner_died,
        },
    ]
}

const N: u64 = 20_000;

/// Runs `work` in two children at once and asserts both exited with code 0.
fn in_two_children(work: impl Fn() + Copy + Send) {
    let statuses: Vec<ExitStatus> = scope(|s| -> shmpool::Result<Vec<ExitStatus>> {
        let a = s.fork(work)?;
        let b = s.fork(work)?;
        Ok(vec![a.join()?, b.join()?])
    })
    .unwrap()
    .unwrap();
    for st in statuses {
        assert!(st.success(), "a child failed: {st}");
    }
}

fn shared_value_increments() {
    let v = SharedValue::new(0u64).unwrap();
    in_two_children(|| {
        for _ in 0..N {
            *v.lock().unwrap() += 1;
        }
    });
    assert_eq!(v.get().unwrap(), 2 * N);
}

fn shared_atomic_increments() {
    let a = SharedAtomic::<AtomicU64>::new(0).unwrap();
    in_two_children(|| {
        for _ in 0..N {
            a.fetch_add(1, Ordering::Relaxed);
        }
    });
    assert_eq!(a.load(Ordering::SeqCst), 2 * N);
}

fn raw_value_written_by_child() {
    let mut rv = RawValue::new([0u32; 4]).unwrap();
    let st = scope(|s| s.fork_with(&mut *rv, |v| *v = [1, 2, 3, 4])?.join()).unwrap().unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(rv.get(), [1, 2, 3, 4]);
}

fn shared_value_owner_died() {
    let v = SharedValue::new(10u64).unwrap();
    let ready = Event::new().unwrap();
    scope(|s| -> shmpool::Result<()> {
        let child = s.fork(|| {
            let mut g = v.lock().unwrap();
            *g = 11;
            std::mem::forget(g);
            ready.set();
            std::thread::sleep(Duration::from_secs(30));
            1
        })?;
        assert!(ready.wait_timeout(Duration::from_secs(10)));
        child.kill()?;
        assert_eq!(child.join()?.signal(), Some(libc::SIGKILL));
        Ok(())
    })
    .unwrap()
    .unwrap();
    match v.get() {
        Err(LockError::OwnerDied(od)) => {
            let mut g = od.recover();
            assert_eq!(*g, 11);
            *g = 12;
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert_eq!(v.get().unwrap(), 12);
}
