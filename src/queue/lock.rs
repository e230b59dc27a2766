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
        wait_for(
            &self.cell,
            limit.map(|(deadline, timed_out)| (deadline.saturating_duration_since(now), timed_out)),
            || Ok(try_lock()),
            || {
                let holder = self.owner.load(Ordering::Relaxed);
                if holder != 0 && holder != me && !peer::alive(holder) {
                    // Every critical section commits with its last store, so what the dead
                    // holder left is either whole or nothing. Free the lock; the next attempt
                    // takes it (or another locker does, and wakes us when done).
                    let _ = self.owner.compare_exchange(
                        holder,
                        0,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                Ok(())
            },
        )
        .map(|()| Guard { lock: self, me })
    }
}
