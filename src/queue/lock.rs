//! The ring lock of a `MessageQueue` (bounded or unbounded): a word holding the holder's token
//! (pid and start time, see `sys::peer`) and a `WaitCell` lockers sleep on, taken over from a
//! holder that died. Every critical section it guards commits with one final store, so what a
//! dead holder left is either whole or absent. The argument: "The ring lock" in `README.md`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::wait::{WaitCell, wait_for};
use crate::sys::peer;

/// The lock word and its sleepers, in shared memory (all-zero is a free lock).
#[repr(C)]
pub(crate) struct RingLock {
    /// 0 when free, else the holder's token (`sys::peer`: pid and start time), so that a
    /// reused pid never looks like the holder, and a live holder is never taken over.
    pub(crate) owner: AtomicU64,
    /// Where lockers sleep; an unlock notifies it (the `WaitCell` protocol, README.md).
    cell: WaitCell,
}

/// Held ring lock; releases on drop.
pub(crate) struct Guard<'a> {
    lock: &'a RingLock,
    /// The token this guard holds the lock as.
    me: u64,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // A CAS, not a store: should another process ever have taken the lock over (it can only
        // believe us dead across pid namespaces, see README.md), we must not free its lock.
        let _ = self.lock.owner.compare_exchange(self.me, 0, Ordering::Release, Ordering::Relaxed);
        // Its fence orders the release before the check for sleepers (README.md).
        self.lock.cell.notify();
    }
}

impl RingLock {
    /// Takes the lock, taking it over from a holder that died; when `limit`'s deadline passes
    /// first, fails with its error (`None`: waits for as long as it takes).
    ///
    /// The holder is named by its full token, so the takeover check (after a sleep slice with no
    /// wake) cannot be fooled by a reused pid, and a live holder is never taken over (within one
    /// pid namespace: see README.md). The takeover frees the lock with a CAS from the dead token,
    /// then competes for it like any locker, so two lockers that both saw the dead holder cannot
    /// both win.
    pub(crate) fn lock<E>(&self, limit: Option<(Instant, E)>) -> Result<Guard<'_>, E> {
        let me = peer::me();
        let try_lock = || {
            self.owner
                .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
                .then_some(())
        };
        if try_lock().is_some() {
            return Ok(Guard { lock: self, me });
        }
        let now = Instant::now();
        let waited = wait_for(
            &self.cell,
            limit.map(|(deadline, timed_out)| (deadline.saturating_duration_since(now), timed_out)),
            || Ok(try_lock()),
            || {
                self.free_if_holder_died(me);
                Ok(())
            },
        );
        match waited {
            Ok(()) => Ok(Guard { lock: self, me }),
            // The deadline passed. A wait shorter than one sleep slice (`get_nowait`, a zero
            // timeout) never reached the check after a slice, so a lock left by a dead holder
            // read as busy for every such caller, for ever: items stayed unseen by a consumer
            // that only polls. Look once before giving up.
            Err(timed_out) => {
                self.free_if_holder_died(me);
                try_lock().map(|()| Guard { lock: self, me }).ok_or(timed_out)
            }
        }
    }

    /// Frees the lock if its holder (not `me`) has died. Every critical section commits with
    /// its last store, so what the dead holder left is either whole or nothing; the next
    /// attempt takes the lock (or another locker does, and wakes the others when done).
    ///
    /// The holder is judged thread by thread (`peer::fate`), not by its main thread's state: a
    /// process whose main thread exited reads as a zombie while another thread of it may hold
    /// the lock mid-copy, and a holder whose `/proc` entry cannot be read is not known dead.
    fn free_if_holder_died(&self, me: u64) {
        let holder = self.owner.load(Ordering::Relaxed);
        if holder != 0 && holder != me && peer::fate(holder) == peer::Fate::Over {
            let _ = self.owner.compare_exchange(holder, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A free lock (all zero, as in a fresh segment).
    fn free() -> RingLock {
        RingLock { owner: AtomicU64::new(0), cell: WaitCell::default() }
    }

    #[test]
    fn a_zero_timeout_takes_over_a_dead_holder_and_never_a_live_one() {
        let lock = free();
        // A pid past the kernel's limit (2^22): no such process, so a dead holder.
        lock.owner.store(peer::pack(1 << 30, 12345), Ordering::Relaxed);
        let got = lock.lock(Some((Instant::now(), "timed out")));
        assert!(got.is_ok(), "a dead holder's lock read as busy: {:?}", got.err());
        drop(got);
        assert_eq!(lock.owner.load(Ordering::Relaxed), 0, "released on drop");
        // A live holder (the process that runs the tests) keeps it.
        let ppid = std::os::unix::process::parent_id();
        let live = peer::pack(ppid, peer::start_time(ppid).unwrap());
        lock.owner.store(live, Ordering::Relaxed);
        assert!(peer::alive(live));
        let t = Instant::now();
        let deadline = Some((t + std::time::Duration::from_millis(20), "timed out"));
        assert!(matches!(lock.lock(deadline), Err("timed out")));
        assert_eq!(lock.owner.load(Ordering::Relaxed), live, "a live holder was taken over");
    }
}
