//! Cross-process locks, semaphores, events, conditions and barriers, with real forked children
//! (and real SIGKILLs for the robustness tests).

use std::cell::RefCell;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmpool::sync::{LockError, MutexGuard};
use shmpool::{
    Barrier, BoundedSemaphore, Condition, Error, Event, Mutex, RLock, Semaphore, SharedAtomic,
    ShmOptions, scope,
};

use crate::harness::{Tests, register};

pub fn tests() -> Tests {
    register! {
        mutex_counts_exactly_across_processes,
        mutex_holder_killed_gives_owner_died_then_recover,
        mutex_holder_killed_unrecovered_gives_not_recoverable,
        mutex_waiter_asleep_in_the_kernel_is_woken_by_the_death,
        rlock_holder_killed_gives_owner_died,
        semaphore_of_two_limits_four_processes,
        barrier_of_three_releases_three_processes,
        barrier_timeout_breaks_it_and_reset_repairs_it,
        barrier_party_killed_while_waiting_breaks_it,
        event_wakes_a_waiter_in_another_process,
        event_set_then_clear_pulse_wakes_a_waiter_in_another_process,
        condition_notify_wakes_a_waiter_in_another_process,
        condition_relock_reports_a_dead_holder,
        timeouts_fire_while_another_process_holds,
        bad_opens_and_over_release_fail_in_a_child,
        a_guard_kept_in_a_thread_local_refuses_forks_until_dropped,
        a_guard_leaked_behind_a_static_refuses_forks_for_good,
        a_forgotten_guard_refuses_forks_for_good,
        a_thread_leaking_its_guard_in_a_live_process_leaves_the_lock_unusable,
        a_guard_copied_by_a_fork_outside_shmpool_is_refused_in_the_child,
        a_killed_holder_of_2048_locks_releases_them_all_and_could_take_no_more,
        a_slowly_dying_big_holder_gives_owner_died_to_a_blocked_waiter,
        try_lock_during_a_slowly_dying_holders_teardown_returns_promptly,
        a_leaked_guard_in_a_process_whose_main_thread_exited_is_not_recoverable,
        helpers: [bump_through_thread_local],
    }
}

const LONG: Duration = Duration::from_secs(10);

/// Forks a child that runs `hold` (which takes a lock and keeps it), waits until the child says
/// it holds it, SIGKILLs it and checks that the signal is what ended it.
fn kill_while_holding(hold: impl FnOnce() + Send) {
    let ready = Event::new().unwrap();
    scope(|s| -> shmpool::Result<()> {
        let child = s.fork(|| {
            hold();
            ready.set();
            for _ in 0..600 {
                std::thread::sleep(Duration::from_millis(50));
            }
            1 // never killed: the parent's assertions fail
        })?;
        assert!(ready.wait_timeout(LONG), "the child never took the lock");
        child.kill()?;
        let st = child.join()?;
        assert_eq!(st.signal(), Some(libc::SIGKILL), "the child ended another way: {st}");
        Ok(())
    })
    .unwrap()
    .unwrap();
}

/// Asserts every child exited with code 0.
fn all_ok(statuses: Vec<shmpool::process::ExitStatus>) {
    for st in statuses {
        assert!(st.success(), "a child failed: {st}");
    }
}

fn mutex_counts_exactly_across_processes() {
    const N: u64 = 20_000;
    let m = Mutex::new_with(0u64, &ShmOptions::new().generated_name()).unwrap();
    let name = m.name().unwrap().to_string();
    let statuses = scope(|s| -> shmpool::Result<Vec<shmpool::process::ExitStatus>> {
        // One child uses the mutex it inherited, the other opens it by name.
        let a = s.fork(|| {
            for _ in 0..N {
                *m.lock().unwrap() += 1;
            }
        })?;
        let b = s.fork(|| -> shmpool::Result<()> {
            let mine = Mutex::<u64>::open(&name)?;
            for _ in 0..N {
                *mine.lock()? += 1;
            }
            Ok(())
        })?;
        Ok(vec![a.join()?, b.join()?])
    })
    .unwrap()
    .unwrap();
    all_ok(statuses);
    assert_eq!(*m.lock().unwrap(), 2 * N);
}

fn mutex_holder_killed_gives_owner_died_then_recover() {
    let m = Mutex::new(7u64).unwrap();
    kill_while_holding(|| {
        let mut g = m.lock().unwrap();
        *g = 8;
        std::mem::forget(g);
    });
    let t0 = Instant::now();
    let mut g = match m.lock_timeout(Duration::from_secs(1)) {
        Err(LockError::OwnerDied(od)) => {
            assert!(t0.elapsed() < Duration::from_secs(1));
            assert_eq!(**od.guard(), 8, "the dead holder's write is visible");
            od.recover()
        }
        other => panic!("expected OwnerDied, got {:?}", other.map(|_| ())),
    };
    *g = 9;
    drop(g);
    assert_eq!(*m.lock().unwrap(), 9);
    assert_eq!(*m.try_lock().unwrap(), 9);
}

fn mutex_holder_killed_unrecovered_gives_not_recoverable() {
    let m = Mutex::new(7u64).unwrap();
    kill_while_holding(|| std::mem::forget(m.lock().unwrap()));
    let first = m.lock().map(|_| ());
    assert!(matches!(first, Err(LockError::OwnerDied(_))), "{first:?}");
    drop(first); // not recovered
    assert!(matches!(m.lock(), Err(LockError::NotRecoverable)));
    assert!(matches!(m.try_lock(), Err(LockError::NotRecoverable)));
    assert!(matches!(m.lock_timeout(Duration::from_millis(10)), Err(LockError::NotRecoverable)));
    // Another process sees the same.
    let st = scope(|s| {
        s.fork(|| if matches!(m.lock(), Err(LockError::NotRecoverable)) { 0 } else { 1 })?.join()
    })
    .unwrap()
    .unwrap();
    assert!(st.success(), "{st}");
}

fn mutex_waiter_asleep_in_the_kernel_is_woken_by_the_death() {
    let m = Mutex::new(0u64).unwrap();
    let (held, asleep) = (Event::new().unwrap(), Event::new().unwrap());
    let st = scope(|s| -> shmpool::Result<shmpool::process::ExitStatus> {
        let holder = s.fork(|| {
            std::mem::forget(m.lock().unwrap());
            held.set();
            std::thread::sleep(LONG);
            1
        })?;
        assert!(held.wait_timeout(LONG));
        let waiter = s.fork(|| {
            asleep.set();
            let t0 = Instant::now();
            // Blocks in pthread_mutex_clocklock until the kernel reports the holder's death.
            match m.lock_timeout(LONG) {
                Err(LockError::OwnerDied(od)) if t0.elapsed() < LONG / 2 => {
                    *od.recover() = 1;
                    0
                }
                Err(LockError::OwnerDied(_)) => 2,
                _ => 3,
            }
        })?;
        assert!(asleep.wait_timeout(LONG));
        std::thread::sleep(Duration::from_millis(50)); // the waiter is past its spin by now
        holder.kill()?;
        assert_eq!(holder.join()?.signal(), Some(libc::SIGKILL));
        waiter.join()
    })
    .unwrap()
    .unwrap();
    assert!(st.success(), "the blocked waiter must get OwnerDied and recover: {st}");
    assert_eq!(*m.lock().unwrap(), 1);
}

fn rlock_holder_killed_gives_owner_died() {
    let kept = RLock::new().unwrap();
    kill_while_holding(|| {
        std::mem::forget(kept.acquire().unwrap());
        std::mem::forget(kept.acquire().unwrap()); // twice: reentrant
    });
    let t0 = Instant::now();
    let g = match kept.acquire_timeout(Duration::from_secs(1)) {
        Err(LockError::OwnerDied(od)) => od.recover(),
        other => panic!("expected OwnerDied, got {:?}", other.map(|_| ())),
    };
    assert!(t0.elapsed() < Duration::from_secs(1));
    let again = kept.try_acquire().unwrap(); // still reentrant after recovery
    drop((again, g));
    drop(kept.acquire().unwrap());

    let lost = RLock::new().unwrap();
    kill_while_holding(|| std::mem::forget(lost.acquire().unwrap()));
    let first = lost.acquire().map(|_| ());
    assert!(first.as_ref().is_err_and(LockError::is_owner_died), "{first:?}");
    drop(first);
    assert!(matches!(lost.acquire(), Err(LockError::NotRecoverable)));
    assert!(matches!(lost.try_acquire(), Err(LockError::NotRecoverable)));
}

fn semaphore_of_two_limits_four_processes() {
    let sem = Semaphore::new(2).unwrap();
    let current = SharedAtomic::<AtomicU32>::new(0).unwrap();
    let peak = SharedAtomic::<AtomicU32>::new(0).unwrap();
    let statuses = scope(|s| -> shmpool::Result<Vec<shmpool::process::ExitStatus>> {
        let children = (0..4)
            .map(|_| {
                s.fork(|| {
                    for _ in 0..30 {
                        if !sem.acquire_timeout(LONG) {
                            return 2;
                        }
                        let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(500));
                        current.fetch_sub(1, Ordering::SeqCst);
                        if sem.release().is_err() {
                            return 3;
                        }
                    }
                    0
                })
            })
            .collect::<shmpool::Result<Vec<_>>>()?;
        children.into_iter().map(|c| c.join()).collect()
    })
    .unwrap()
    .unwrap();
    all_ok(statuses);
    assert_eq!(peak.load(Ordering::SeqCst), 2, "at most 2 holders, and 2 were reached");
    assert_eq!(sem.value(), 2);
}

fn barrier_of_three_releases_three_processes() {
    const ROUNDS: u32 = 5;
    let b = Barrier::new(3).unwrap();
    let leaders = SharedAtomic::<AtomicU32>::new(0).unwrap();
    let arrivals = SharedAtomic::<AtomicU32>::new(0).unwrap(); // bit 3*round + index
    let statuses = scope(|s| -> shmpool::Result<Vec<shmpool::process::ExitStatus>> {
        let children = (0..3)
            .map(|_| {
                s.fork(|| -> shmpool::Result<()> {
                    for round in 0..ROUNDS {
                        let r = b.wait_timeout(LONG)?;
                        if r.is_leader() {
                            leaders.fetch_add(1, Ordering::SeqCst);
                        }
                        arrivals.fetch_or(1 << (3 * round + r.index()), Ordering::SeqCst);
                    }
                    Ok(())
                })
            })
            .collect::<shmpool::Result<Vec<_>>>()?;
        children.into_iter().map(|c| c.join()).collect()
    })
    .unwrap()
    .unwrap();
    all_ok(statuses);
    assert_eq!(leaders.load(Ordering::SeqCst), ROUNDS, "exactly one leader per round");
    assert_eq!(
        arrivals.load(Ordering::SeqCst),
        (1 << (3 * ROUNDS)) - 1,
        "indexes 0, 1, 2 in every round"
    );
    assert!(!b.is_broken());
}

fn barrier_timeout_breaks_it_and_reset_repairs_it() {
    let b = Barrier::new(3).unwrap();
    let st = scope(|s| -> shmpool::Result<shmpool::process::ExitStatus> {
        let child = s.fork(|| match b.wait_timeout(LONG) {
            Err(Error::BrokenBarrier) => 0,
            Err(Error::Timeout { .. }) => 2,
            _ => 1,
        })?;
        let deadline = Instant::now() + LONG;
        while b.n_waiting() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let t0 = Instant::now();
        assert!(matches!(b.wait_timeout(Duration::from_millis(50)), Err(Error::Timeout { .. })));
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(50) && took < Duration::from_secs(5), "{took:?}");
        child.join()
    })
    .unwrap()
    .unwrap();
    assert!(st.success(), "the other party must see BrokenBarrier: {st}");
    assert!(b.is_broken());
    assert!(matches!(b.wait_timeout(LONG), Err(Error::BrokenBarrier)), "broken until reset");
    b.reset().unwrap();
    let statuses = scope(|s| -> shmpool::Result<Vec<shmpool::process::ExitStatus>> {
        let children = (0..2)
            .map(|_| s.fork(|| b.wait_timeout(LONG).map(drop)))
            .collect::<shmpool::Result<Vec<_>>>()?;
        b.wait_timeout(LONG)?;
        children.into_iter().map(|c| c.join()).collect()
    })
    .unwrap()
    .unwrap();
    all_ok(statuses);
}

fn barrier_party_killed_while_waiting_breaks_it() {
    let b = Barrier::new(3).unwrap();
    let wait_for_waiting = |n: u32| {
        let deadline = Instant::now() + LONG;
        while b.n_waiting() < n {
            assert!(Instant::now() < deadline, "parties never arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    scope(|s| -> shmpool::Result<()> {
        let doomed = s.fork(|| {
            let _ = b.wait();
            1
        })?;
        wait_for_waiting(1);
        // No timeout anywhere: only the dead-party check can end this wait.
        let mut survivor = s.fork(|| match b.wait() {
            Err(Error::BrokenBarrier) => 0,
            _ => 2,
        })?;
        wait_for_waiting(2);
        doomed.kill()?; // not reaped yet: a zombie must count as dead
        let st = match survivor.join_timeout(LONG)? {
            Some(st) => st,
            None => {
                survivor.kill()?;
                panic!("the surviving party was never told the barrier broke");
            }
        };
        assert!(st.success(), "{st}");
        assert_eq!(doomed.join()?.signal(), Some(libc::SIGKILL));
        Ok(())
    })
    .unwrap()
    .unwrap();
    assert!(b.is_broken());
    assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
    b.reset().unwrap();
    assert!(!b.is_broken());
}

fn event_wakes_a_waiter_in_another_process() {
    let go = Event::new().unwrap();
    let woke = Event::new().unwrap();
    let st = scope(|s| -> shmpool::Result<shmpool::process::ExitStatus> {
        let child = s.fork(|| {
            if !go.wait_timeout(LONG) {
                return 1;
            }
            woke.set();
            0
        })?;
        std::thread::sleep(Duration::from_millis(30)); // let it fall asleep in the kernel
        assert!(!woke.is_set());
        go.set();
        assert!(woke.wait_timeout(LONG));
        child.join()
    })
    .unwrap()
    .unwrap();
    assert!(st.success(), "{st}");
}

/// Whether process `pid` is asleep (state `S` in `/proc/<pid>/stat`).
fn sleeping(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next()) == Some('S')
}

fn event_set_then_clear_pulse_wakes_a_waiter_in_another_process() {
    let pulse = Event::new().unwrap();
    let ready = Event::new().unwrap();
    let st = scope(|s| -> shmpool::Result<shmpool::process::ExitStatus> {
        let child = s.fork(|| {
            ready.set();
            // A regression (the pulse lost) returns false after 5 s rather than hanging.
            if pulse.wait_timeout(Duration::from_secs(5)) { 0 } else { 1 }
        })?;
        assert!(ready.wait_timeout(LONG), "the child never started");
        // After `ready`, the only place the child sleeps is the event wait.
        let deadline = Instant::now() + LONG;
        while !sleeping(child.pid()) {
            assert!(Instant::now() < deadline, "the child never fell asleep");
            std::thread::sleep(Duration::from_millis(1));
        }
        pulse.set();
        pulse.clear();
        child.join()
    })
    .unwrap()
    .unwrap();
    assert!(st.success(), "the waiter must return true after a set-then-clear pulse: {st}");
    assert!(!pulse.is_set());
}

fn condition_notify_wakes_a_waiter_in_another_process() {
    let m = Mutex::new(0u32).unwrap();
    let cv = Condition::new().unwrap();
    let st = scope(|s| -> shmpool::Result<shmpool::process::ExitStatus> {
        let child = s.fork(|| -> Result<(), String> {
            let mut g = m.lock().map_err(|e| e.to_string())?;
            *g = 1; // "waiting"
            let mut g = cv.wait_while(g, |v| *v != 2).map_err(|e| e.to_string())?;
            *g = 3;
            Ok(())
        })?;
        // The child publishes 1 and then waits, which releases the lock.
        let deadline = Instant::now() + LONG;
        loop {
            let mut g = m.lock().unwrap();
            if *g == 1 {
                std::thread::sleep(Duration::from_millis(20)); // it is asleep by now
                *g = 2;
                cv.notify_one();
                break;
            }
            drop(g);
            assert!(Instant::now() < deadline, "the child never started waiting");
            std::thread::sleep(Duration::from_millis(1));
        }
        child.join()
    })
    .unwrap()
    .unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(*m.lock().unwrap(), 3);
}

fn condition_relock_reports_a_dead_holder() {
    let m = Mutex::new(0u32).unwrap();
    let cv = Condition::new().unwrap();
    let (a_waits, b_holds) = (Event::new().unwrap(), Event::new().unwrap());
    let st = scope(|s| -> shmpool::Result<shmpool::process::ExitStatus> {
        let waiter = s.fork(|| {
            let g = m.lock().unwrap();
            a_waits.set(); // `b` can lock only once the wait below has released the lock
            match cv.wait_timeout(g, LONG) {
                Err(LockError::OwnerDied(_)) => 42,
                Ok(_) => 1,
                Err(_) => 2,
            }
        })?;
        let holder = s.fork(|| {
            if !a_waits.wait_timeout(LONG) {
                return 3;
            }
            std::mem::forget(m.lock().unwrap());
            b_holds.set();
            std::thread::sleep(LONG);
            4
        })?;
        assert!(b_holds.wait_timeout(LONG));
        holder.kill()?;
        assert_eq!(holder.join()?.signal(), Some(libc::SIGKILL));
        cv.notify_all();
        waiter.join()
    })
    .unwrap()
    .unwrap();
    assert_eq!(st.code(), Some(42), "the waiter must get OwnerDied on re-locking: {st}");
    // It dropped the outcome unrecovered.
    assert!(matches!(m.lock(), Err(LockError::NotRecoverable)));
}

fn timeouts_fire_while_another_process_holds() {
    let m = Mutex::new(0u64).unwrap();
    let r = RLock::new().unwrap();
    let (held, release) = (Event::new().unwrap(), Event::new().unwrap());
    let st = scope(|s| -> shmpool::Result<shmpool::process::ExitStatus> {
        let child = s.fork(|| {
            let g = m.lock().unwrap();
            let h = r.acquire().unwrap();
            held.set();
            let ok = release.wait_timeout(LONG);
            drop((g, h));
            if ok { 0 } else { 1 }
        })?;
        assert!(held.wait_timeout(LONG));
        let timed = |f: &dyn Fn() -> bool| {
            let t0 = Instant::now();
            assert!(f(), "expected a timeout");
            let took = t0.elapsed();
            assert!(
                took >= Duration::from_millis(50) && took < Duration::from_secs(5),
                "took {took:?}"
            );
        };
        let d = Duration::from_millis(50);
        timed(&|| matches!(m.lock_timeout(d), Err(LockError::Timeout(t)) if t == d));
        timed(&|| matches!(r.acquire_timeout(d), Err(LockError::Timeout(_))));
        assert!(matches!(m.try_lock(), Err(LockError::WouldBlock)));
        assert!(matches!(r.try_acquire(), Err(LockError::WouldBlock)));
        let sem = Semaphore::new(0).unwrap();
        timed(&|| !sem.acquire_timeout(d));
        let ev = Event::new().unwrap();
        timed(&|| !ev.wait_timeout(d));
        let b = Barrier::new(2).unwrap();
        timed(&|| matches!(b.wait_timeout(d), Err(Error::Timeout { .. })));
        let cv = Condition::new().unwrap();
        let other = Mutex::new(0u8).unwrap();
        timed(&|| cv.wait_timeout(other.lock().unwrap(), d).is_ok_and(|(_, w)| w.timed_out()));
        release.set();
        child.join()
    })
    .unwrap()
    .unwrap();
    assert!(st.success(), "{st}");
    *m.lock_timeout(LONG).unwrap() += 1; // free again
}

fn bad_opens_and_over_release_fail_in_a_child() {
    let m32 = Mutex::new(1u32).unwrap();
    let sem = Semaphore::new(1).unwrap();
    let bounded = BoundedSemaphore::new(1).unwrap();
    let st = scope(|s| {
        s.fork(|| -> Result<(), String> {
            match Mutex::<u64>::open_handle(&sem.handle()) {
                Err(Error::KindMismatch { .. }) => {}
                other => return Err(format!("semaphore opened as a mutex: {:?}", other.map(drop))),
            }
            match Mutex::<u64>::open_handle(&m32.handle()) {
                Err(Error::TypeMismatch { .. }) => {}
                other => {
                    return Err(format!("Mutex<u32> opened as Mutex<u64>: {:?}", other.map(drop)));
                }
            }
            let mine = Mutex::<u32>::open_handle(&m32.handle()).map_err(|e| e.to_string())?;
            *mine.lock().map_err(|e| e.to_string())? = 5;
            match bounded.release() {
                Err(Error::OverRelease { value: 1 }) => Ok(()),
                other => Err(format!("over-release: {other:?}")),
            }
        })?
        .join()
    })
    .unwrap()
    .unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(*m32.lock().unwrap(), 5);
    assert_eq!(bounded.value(), 1);
}

// ---- Lock guards and fork: a guard (or a `&mut` taken from one) must not reach a child ----

/// The reviewer's program (a): a guard kept in a thread-local, the mutex in a static. Had the
/// fork gone ahead, the child's copy of the guard and the parent's original would both write.
static TL_MUTEX: LazyLock<Mutex<u64>> = LazyLock::new(|| Mutex::new(0).unwrap());

thread_local! {
    static TL_GUARD: RefCell<Option<MutexGuard<'static, u64>>> = const { RefCell::new(None) };
}

/// The reviewer's program (b): a `&'static mut` taken from a leaked guard, kept in a static.
static LEAKED: std::sync::Mutex<Option<&'static mut u64>> = std::sync::Mutex::new(None);

/// Increments through the thread-local guard (what both processes would have done).
fn bump_through_thread_local() {
    TL_GUARD.with(|g| **g.borrow_mut().as_mut().expect("the guard is kept") += 1);
}

fn a_guard_kept_in_a_thread_local_refuses_forks_until_dropped() {
    TL_GUARD.with(|g| *g.borrow_mut() = Some(TL_MUTEX.lock().unwrap()));
    let before = TL_GUARD.with(|g| **g.borrow().as_ref().unwrap());
    let refused = scope(|s| {
        s.fork(|| {
            for _ in 0..1000 {
                bump_through_thread_local();
            }
        })
        .map(drop)
    })
    .unwrap();
    assert!(matches!(refused, Err(Error::ForkWhileLocked { held: 1 })), "{refused:?}");
    let msg = refused.unwrap_err().to_string();
    assert!(msg.contains("drop"), "the message says the fix: {msg}");
    // A second guard, on a value this time: the count is exact.
    let v = shmpool::SharedValue::new(0u32).unwrap();
    let second = v.lock().unwrap();
    let refused = scope(|s| s.fork(|| ()).map(drop)).unwrap();
    assert!(matches!(refused, Err(Error::ForkWhileLocked { held: 2 })), "{refused:?}");
    drop(second);
    bump_through_thread_local(); // the parent's guard works as before
    // Dropped before the fork: the fork proceeds, and both processes count exactly.
    TL_GUARD.with(|g| g.borrow_mut().take());
    const N: u64 = 5000;
    let st = scope(|s| -> shmpool::Result<shmpool::process::ExitStatus> {
        let child = s.fork(|| {
            for _ in 0..N {
                *TL_MUTEX.lock().unwrap() += 1;
            }
        })?;
        for _ in 0..N {
            *TL_MUTEX.lock().unwrap() += 1;
        }
        child.join()
    })
    .unwrap()
    .unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(*TL_MUTEX.lock().unwrap(), before + 1 + 2 * N);
}

/// Runs `body` in a scope child (so that what it leaks stays there) and asserts it succeeded;
/// then checks that this process can still fork.
fn in_a_child_that_leaks(body: impl FnOnce() + Send) {
    let st = scope(|s| s.fork(body)?.join()).unwrap().unwrap();
    assert!(st.success(), "{st}");
    let after = scope(|s| s.fork(|| ())?.join()).unwrap().unwrap();
    assert!(after.success(), "this process must still fork: {after}");
}

fn a_guard_leaked_behind_a_static_refuses_forks_for_good() {
    in_a_child_that_leaks(|| {
        let m: &'static Mutex<u64> = Box::leak(Box::new(Mutex::new(0u64).unwrap()));
        let g: &'static mut MutexGuard<'static, u64> = Box::leak(Box::new(m.lock().unwrap()));
        let r: &'static mut u64 = g;
        *LEAKED.lock().unwrap() = Some(r);
        let bump = || **LEAKED.lock().unwrap().as_mut().unwrap() += 1;
        let refused = scope(|s| {
            s.fork(|| {
                for _ in 0..1000 {
                    bump();
                }
            })
            .map(drop)
        })
        .unwrap();
        assert!(matches!(refused, Err(Error::ForkWhileLocked { held: 1 })), "{refused:?}");
        // A guard held for a while adds one, and dropping it does not make the leak go away.
        let other = Mutex::new(0u8).unwrap();
        let g = other.lock().unwrap();
        let refused = scope(|s| s.fork(|| ()).map(drop)).unwrap();
        assert!(matches!(refused, Err(Error::ForkWhileLocked { held: 2 })), "{refused:?}");
        drop(g);
        let refused = scope(|s| s.fork(|| ()).map(drop)).unwrap();
        assert!(matches!(refused, Err(Error::ForkWhileLocked { held: 1 })), "{refused:?}");
        bump();
        assert_eq!(**LEAKED.lock().unwrap().as_ref().unwrap(), 1);
        // The lock itself stays held by the leak: this thread cannot lock it again.
        assert!(matches!(m.try_lock(), Err(LockError::WouldDeadlock)));
    });
}

fn a_forgotten_guard_refuses_forks_for_good() {
    in_a_child_that_leaks(|| {
        let m = Mutex::new(0u64).unwrap();
        std::mem::forget(m.lock().unwrap());
        for _ in 0..2 {
            let refused = scope(|s| s.fork(|| ()).map(drop)).unwrap();
            assert!(matches!(refused, Err(Error::ForkWhileLocked { held: 1 })), "{refused:?}");
        }
        // Even once the mutex is dropped: the guard is not.
        drop(m);
        let refused = scope(|s| s.fork(|| ()).map(drop)).unwrap();
        assert!(matches!(refused, Err(Error::ForkWhileLocked { held: 1 })), "{refused:?}");
    });
}

/// Issue 7, lock guards: a thread that exits with its guard leaked (returning a `&mut` into the
/// value) while its process lives on must not let the next locker have a second `&mut`.
fn a_thread_leaking_its_guard_in_a_live_process_leaves_the_lock_unusable() {
    let m = Mutex::new(7u64).unwrap();
    let (leaked, checked) = (Event::new().unwrap(), Event::new().unwrap());
    let st = scope(|s| -> shmpool::Result<shmpool::process::ExitStatus> {
        let child = s.fork(|| {
            let kept: &mut u64 = std::thread::scope(|t| {
                t.spawn(|| &mut **Box::leak(Box::new(m.lock().unwrap()))).join().unwrap()
            });
            leaked.set();
            assert!(checked.wait_timeout(LONG), "the parent never checked");
            assert!(matches!(m.try_lock(), Err(LockError::NotRecoverable)));
            *kept += 1; // still the only `&mut`
            assert_eq!(*kept, 8);
        })?;
        assert!(leaked.wait_timeout(LONG), "the child never leaked its guard");
        // The first locker since the thread died: the kernel says "owner died", but the owner's
        // process runs on (after a grace period for a dying one), so no guard is handed out.
        let t0 = Instant::now();
        let r = m.lock().map(|_| ());
        let took = t0.elapsed();
        checked.set();
        assert!(matches!(r, Err(LockError::NotRecoverable)), "{r:?}");
        assert!(took >= Duration::from_secs(1), "the holder process was checked for: {took:?}");
        child.join()
    })
    .unwrap()
    .unwrap();
    assert!(st.success(), "{st}");
    assert!(matches!(m.lock(), Err(LockError::NotRecoverable)));
}

/// Belt and braces: a fork made outside shmpool cannot be refused, so the child's copy of a
/// guard must refuse to give access there (and dropping it must not unlock anything).
fn a_guard_copied_by_a_fork_outside_shmpool_is_refused_in_the_child() {
    let m = Mutex::new(5u64).unwrap();
    let mut g = m.lock().unwrap();
    // SAFETY: this process is single-threaded (the runner's main thread only); the child only
    // runs the code below and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        std::panic::set_hook(Box::new(|_| {}));
        let deref = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *g));
        let deref_mut = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *g += 1));
        let said = |r: &std::thread::Result<_>| {
            r.as_ref().err().and_then(|p| p.downcast_ref::<String>()).is_some_and(|m| {
                m.contains("fork made outside shmpool") && m.contains("lock the mutex again")
            })
        };
        let ok = said(&deref.map(drop)) && said(&deref_mut);
        drop(g); // must not release the parent's lock
        // SAFETY: _exit ends the child at once, running nothing of the parent's.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer; `pid` is our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "status {status:#x}");
    // Still held by this thread (no thread is spawned to ask: the next test forks), and still
    // usable through the original.
    assert!(matches!(m.try_lock(), Err(LockError::WouldDeadlock)));
    *g += 1;
    drop(g);
    assert_eq!(*m.lock().unwrap(), 6);
}

/// Raises this process's soft limit on open descriptors to at least `n` (each shmpool object
/// keeps one), within the hard limit.
fn allow_descriptors(n: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid out-pointer for the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur < n {
        assert!(lim.rlim_max >= n, "the hard limit on open files ({}) is below {n}", lim.rlim_max);
        lim.rlim_cur = n;
        // SAFETY: `lim` is a valid, initialised rlimit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
}

/// Issue 7 follow-up: the kernel releases at most 2048 robust locks of a dying thread (its
/// `ROBUST_LIST_LIMIT`, newest first), so a thread that held more left the oldest locked
/// forever. Taking the 2049th is refused, so that every lock a killed holder held is released.
fn a_killed_holder_of_2048_locks_releases_them_all_and_could_take_no_more() {
    const LIMIT: usize = 2048;
    allow_descriptors(LIMIT as u64 + 256);
    let t0 = Instant::now();
    let locks: Vec<Mutex<u64>> = (0..=LIMIT as u64).map(|i| Mutex::new(i).unwrap()).collect();
    let made = t0.elapsed();
    // 0: not checked yet, 1: the 2049th lock was refused on every path, 2: it was not.
    let refused = SharedAtomic::<AtomicU32>::new(0).unwrap();
    kill_while_holding(|| {
        for m in &locks[..LIMIT] {
            std::mem::forget(m.lock().unwrap());
        }
        let last = &locks[LIMIT];
        let all = matches!(last.try_lock(), Err(LockError::TooManyHeld))
            && matches!(last.lock_timeout(Duration::from_secs(1)), Err(LockError::TooManyHeld))
            && matches!(last.lock(), Err(LockError::TooManyHeld));
        refused.store(if all { 1 } else { 2 }, Ordering::SeqCst);
    });
    assert_eq!(refused.load(Ordering::SeqCst), 1, "the 2049th lock was not refused");
    // Every lock the killed child held is released to the next locker, the oldest included.
    let t1 = Instant::now();
    for (i, m) in locks[..LIMIT].iter().enumerate() {
        match m.lock_timeout(Duration::from_secs(5)) {
            Err(LockError::OwnerDied(od)) => assert_eq!(*od.recover(), i as u64),
            other => panic!("lock {i}: expected OwnerDied, got {:?}", other.map(|_| ())),
        }
    }
    assert_eq!(*locks[LIMIT].try_lock().unwrap(), LIMIT as u64, "never taken");
    let checked = t1.elapsed();
    assert!(made + checked < Duration::from_secs(10), "made in {made:?}, checked in {checked:?}");
}

/// The first CPU this process may run on.
fn first_cpu() -> usize {
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set, filled in by the call.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size given.
    let r = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(r, 0, "sched_getaffinity");
    // SAFETY: CPU_ISSET only reads the set, within CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).find(|&c| unsafe { libc::CPU_ISSET(c, &set) }).unwrap()
}

/// Pins the calling (single-threaded) process to `cpu`; with `idle`, also gives it the lowest
/// scheduling class (SCHED_IDLE), which an unprivileged process may always choose.
fn pin(cpu: usize, idle: bool) {
    // SAFETY: as in `first_cpu`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (it came from `first_cpu`).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size given.
    let r = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(r, 0, "sched_setaffinity");
    if idle {
        let p = libc::sched_param { sched_priority: 0 };
        // SAFETY: `p` is a valid sched_param; SCHED_IDLE takes priority 0.
        assert_eq!(unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &p) }, 0);
    }
}

/// Bytes of private memory the slowly dying holder touches.
const BIG: usize = 512 << 20;

/// What the test does while the holder dies.
#[derive(Clone, Copy, PartialEq)]
enum WhileDying {
    /// A child blocked in `lock()` before the kill must get OwnerDied.
    BlockedWaiter,
    /// The parent calls `try_lock` until it gets the lock: every call must return promptly.
    TryLock,
}

/// A holder whose exit takes seconds after the kernel hands its lock over: it holds a mutex and
/// 512 MiB of touched memory, and runs at SCHED_IDLE on a CPU that another child keeps busy, so
/// tearing its memory down (about 70 ms of CPU per GiB) crawls: it became a zombie 25 s after
/// the kill with 1 GiB (measured with SHMPOOL_MEASURE_TEARDOWN=1), as a 28 GiB process would
/// on an idle machine. Checks that the lock is handed on with OwnerDied, promptly, while the
/// holder is still tearing down; the hog then stops and the holder finishes dying at once.
fn slowly_dying_holder(how: WhileDying) {
    let m = Mutex::new(7u64).unwrap();
    let cpu = first_cpu();
    let (held, asleep) = (Event::new().unwrap(), Event::new().unwrap());
    let stop = SharedAtomic::<AtomicU32>::new(0).unwrap();
    scope(|s| -> shmpool::Result<()> {
        let hog = s.fork(|| {
            pin(cpu, false);
            while stop.load(Ordering::Relaxed) == 0 {
                std::hint::spin_loop();
            }
        })?;
        // Whatever happens below, the hog stops (the scope reaps it).
        struct Stop<'a>(&'a SharedAtomic<AtomicU32>);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(1, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        let holder = s.fork(|| {
            let mut big = vec![0u8; BIG];
            for i in (0..BIG).step_by(4096) {
                big[i] = 1;
            }
            std::hint::black_box(&big);
            std::mem::forget(m.lock().unwrap());
            pin(cpu, true);
            held.set();
            std::thread::sleep(LONG);
            std::mem::forget(big);
        })?;
        assert!(held.wait_timeout(LONG), "the holder never took the lock");
        let waiter = match how {
            WhileDying::BlockedWaiter => {
                let w = s.fork(|| {
                    asleep.set();
                    match m.lock() {
                        Err(LockError::OwnerDied(od)) => {
                            *od.recover() = 8;
                            0
                        }
                        Err(LockError::NotRecoverable) => 2,
                        _ => 3,
                    }
                })?;
                assert!(asleep.wait_timeout(LONG));
                std::thread::sleep(Duration::from_millis(50)); // asleep in the kernel by now
                Some(w)
            }
            WhileDying::TryLock => None,
        };
        let pid = holder.pid();
        let t0 = Instant::now();
        holder.kill()?;
        match waiter {
            Some(mut w) => {
                let st = w.join_timeout(LONG)?.expect("the blocked waiter never returned");
                assert_eq!(st.code(), Some(0), "the waiter must get OwnerDied (2: NotRecoverable)");
                assert_eq!(*m.try_lock().unwrap(), 8);
            }
            None => {
                let mut tries = 0;
                loop {
                    let t = Instant::now();
                    let r = m.try_lock();
                    let took = t.elapsed();
                    assert!(took < Duration::from_millis(50), "try_lock took {took:?}");
                    match r {
                        Err(LockError::WouldBlock) => {}
                        Err(LockError::OwnerDied(od)) => {
                            *od.recover() = 8;
                            break;
                        }
                        other => {
                            panic!("expected WouldBlock then OwnerDied: {:?}", other.map(drop))
                        }
                    }
                    tries += 1;
                    assert!(t0.elapsed() < LONG, "never OwnerDied after {tries} tries");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        let handed_on = t0.elapsed();
        assert!(
            !matches!(state_of(pid), Some('Z') | None),
            "the holder finished dying {handed_on:?} after the kill, before the lock was handed \
             on: the test did not slow its teardown down"
        );
        if std::env::var_os("SHMPOOL_MEASURE_TEARDOWN").is_some() {
            while !matches!(state_of(pid), Some('Z') | None) {
                std::thread::sleep(Duration::from_millis(1));
            }
            eprintln!("handed on after {handed_on:?}, zombie after {:?}", t0.elapsed());
        }
        stop.store(1, Ordering::Relaxed);
        assert_eq!(holder.join()?.signal(), Some(libc::SIGKILL));
        assert!(hog.join()?.success());
        Ok(())
    })
    .unwrap()
    .unwrap();
    assert_eq!(*m.lock().unwrap(), 8);
}

/// The state letter of process `pid` (`None`: gone).
fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next())
}

/// Issue 7 follow-up: the kernel hands a dead holder's lock to the next locker as it walks the
/// robust list, before it tears the process's memory down; a big holder (or one on a busy
/// machine) took longer than the 2 s the locker gave it to become a zombie, and the lock
/// became NotRecoverable for good. A holder all of whose threads are exiting can never run
/// again: OwnerDied, at once.
fn a_slowly_dying_big_holder_gives_owner_died_to_a_blocked_waiter() {
    slowly_dying_holder(WhileDying::BlockedWaiter);
}

/// Issue 7 follow-up: `try_lock` slept (up to 2 s) while a dead holder's process tore down.
fn try_lock_during_a_slowly_dying_holders_teardown_returns_promptly() {
    slowly_dying_holder(WhileDying::TryLock);
}

/// A thread that exits holding a lock (its guard leaked, a `&mut` kept) while its process lives
/// on must not let the next locker have a second `&mut`, even when the process's main thread
/// has exited: `/proc/<pid>/stat` then describes a zombie, and the holder process looked dead.
/// Its other threads say otherwise.
fn a_leaked_guard_in_a_process_whose_main_thread_exited_is_not_recoverable() {
    let m = Mutex::new(7u64).unwrap();
    let handle = m.handle();
    let (leaked, checked) = (Event::new().unwrap(), Event::new().unwrap());
    // SAFETY: this process is single-threaded (the runner's main thread only); the child runs
    // only the code below and leaves with _exit or the exit system call.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let m: &'static Mutex<u64> = Box::leak(Box::new(Mutex::open_handle(&handle).unwrap()));
        // The locking thread returns a `&mut` into the value and exits with the lock held.
        let kept: &'static mut u64 =
            std::thread::spawn(move || &mut **Box::leak(Box::new(m.lock().unwrap())))
                .join()
                .unwrap();
        let (leaked, checked): &'static (Event, Event) = Box::leak(Box::new((leaked, checked)));
        std::thread::spawn(move || {
            let ok = checked.wait_timeout(LONG)
                && matches!(m.try_lock(), Err(LockError::NotRecoverable));
            *kept += 1; // still the only `&mut`
            // SAFETY: ends the whole process at once, running nothing else.
            unsafe { libc::_exit(if ok && *kept == 8 { 0 } else { 1 }) };
        });
        leaked.set();
        // The main thread exits alone (the exit system call, not exit_group): the process lives
        // on in the thread above, with a zombie main thread.
        // SAFETY: ends only this thread, whose stack the other thread does not borrow from.
        unsafe { libc::syscall(libc::SYS_exit, 0) };
        unreachable!();
    }
    let pid = pid as u32;
    assert!(leaked.wait_timeout(LONG), "the child never leaked its guard");
    let deadline = Instant::now() + LONG;
    while state_of(pid) != Some('Z') {
        assert!(Instant::now() < deadline, "the child's main thread never exited");
        std::thread::sleep(Duration::from_millis(1));
    }
    let r = m.lock().map(drop);
    checked.set();
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer; `pid` is our child.
    assert_eq!(unsafe { libc::waitpid(pid as i32, &mut status, 0) }, pid as i32);
    assert!(matches!(r, Err(LockError::NotRecoverable)), "{r:?}");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "status {status:#x}");
}
