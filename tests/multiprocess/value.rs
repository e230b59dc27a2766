//! Shared values across forked children: locked values, lock-free atomics, raw values.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shmpool::process::ExitStatus;
use shmpool::sync::LockError;
use shmpool::{Error, Event, RawValue, SharedAtomic, SharedValue, scope};

use crate::harness::{Tests, register};

pub fn tests() -> Tests {
    register! {
        shared_value_increments_are_exact_across_processes,
        shared_atomic_fetch_add_is_exact_across_processes,
        raw_value_written_by_a_child_is_seen,
        shared_value_holder_killed_gives_owner_died,
        a_shared_value_guard_refuses_forks_and_get_set_leave_none,
        a_thread_leaking_a_shared_value_guard_gives_no_second_one,
    }
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

fn shared_value_increments_are_exact_across_processes() {
    let v = SharedValue::new(0u64).unwrap();
    in_two_children(|| {
        for _ in 0..N {
            *v.lock().unwrap() += 1;
        }
    });
    assert_eq!(v.get().unwrap(), 2 * N);
}

fn shared_atomic_fetch_add_is_exact_across_processes() {
    let a = SharedAtomic::<AtomicU64>::new(0).unwrap();
    in_two_children(|| {
        for _ in 0..N {
            a.fetch_add(1, Ordering::Relaxed);
        }
    });
    assert_eq!(a.load(Ordering::SeqCst), 2 * N);
}

fn raw_value_written_by_a_child_is_seen() {
    let mut rv = RawValue::new([0u32; 4]).unwrap();
    let st = scope(|s| s.fork_with(&mut *rv, |v| *v = [1, 2, 3, 4])?.join()).unwrap().unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(rv.get(), [1, 2, 3, 4]);
}

fn shared_value_holder_killed_gives_owner_died() {
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

fn a_shared_value_guard_refuses_forks_and_get_set_leave_none() {
    let v = SharedValue::new(1u64).unwrap();
    let g = v.lock().unwrap();
    let refused = scope(|s| s.fork(|| ()).map(drop)).unwrap();
    assert!(matches!(refused, Err(Error::ForkWhileLocked { held: 1 })), "{refused:?}");
    drop(g);
    // `get` and `set` lock and unlock inside: nothing is held after them.
    v.set(2).unwrap();
    assert_eq!(v.get().unwrap(), 2);
    let st = scope(|s| s.fork(|| v.set(3).map_err(|e| e.to_string()))?.join()).unwrap().unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(v.get().unwrap(), 3);
}

/// A thread that exits with a leaked guard (returning a `&mut` into the value) while its
/// process lives on: no second guard, and the leak keeps the process from forking. In a child,
/// so that the leak stays there.
fn a_thread_leaking_a_shared_value_guard_gives_no_second_one() {
    let v = SharedValue::new(10u64).unwrap();
    let st = scope(|s| {
        s.fork(|| {
            let kept: &mut u64 = std::thread::scope(|t| {
                // join (pthread_join): the thread has exited, its robust list walked.
                t.spawn(|| &mut **Box::leak(Box::new(v.lock().unwrap()))).join().unwrap()
            });
            let got = v.get();
            assert!(matches!(got, Err(LockError::NotRecoverable)), "{got:?}");
            assert!(matches!(v.set(0), Err(LockError::NotRecoverable)));
            *kept += 1; // still the only `&mut`
            assert_eq!(*kept, 11);
            // The exited thread's leaked guard still counts.
            let refused = scope(|s| s.fork(|| ()).map(drop)).unwrap();
            assert!(matches!(refused, Err(Error::ForkWhileLocked { held: 1 })), "{refused:?}");
        })?
        .join()
    })
    .unwrap()
    .unwrap();
    assert!(st.success(), "{st}");
    assert!(matches!(v.get(), Err(LockError::NotRecoverable)));
}
