//! The wake protocol every queue wait uses: spin briefly, then sleep on a shared futex without
//! ever losing a wake. See `README.md` in this folder for the argument.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::{Duration, Instant};

use super::error::{Closed, Limit, PeersGone};
use super::peers::PeerTable;
use crate::sync::wait::deadline_after;
use crate::sys::futex::{self, Wake};

/// Attempts made while spinning before the first sleep.
const SPINS: u32 = 24;
/// Spinning attempts after which the waiter yields its CPU between attempts instead of pausing:
/// on a machine with fewer free cores than busy processes, the peer it waits for may need this
/// very core to make progress.
const PAUSE_ROUNDS: u32 = 10;
/// The longest run of `pause` hints between two spinning attempts.
const MAX_PAUSES: u32 = 32;
/// The longest single sleep: after a sleep this long with no wake, the waiter checks its peers.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// A futex word (`epoch`) that notifiers bump, a count of sleepers so that notifiers skip the
/// syscall when nobody sleeps, and a dirty flag (`armed`) that every sleeper sets when it
/// registers and the notifier that bumps the epoch clears, so that only the first notifier after
/// a sleeper arrived pays for a wake: later ones find the flag clear and know every sleeper is
/// already awake.
///
/// `armed` is a flag, not an epoch number: a sleeper that read the epoch late can only set it
/// (again), never move it back, so a stale sleeper cannot hide a newer one from the notifiers.
#[repr(C)]
#[derive(Default)]
pub(crate) struct WaitCell {
    epoch: AtomicU32,
    waiters: AtomicU32,
    armed: AtomicU32,
}

impl WaitCell {
    /// Wakes the sleepers, if any still sleep unwoken. Call after the state change a sleeper
    /// waits for is visible.
    pub(crate) fn notify(&self) {
        self.wake(false)
    }

    /// Wakes every sleeper, whatever `armed` says (for `close`).
    pub(crate) fn notify_all(&self) {
        self.wake(true)
    }

    fn wake(&self, force: bool) {
        // Pairs with the fence in `sleep_prepare`: either the sleeper's re-check sees our state
        // change, or we see its registration (`waiters`, `armed`) here.
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) == 0 {
            return;
        }
        // Whoever clears the flag bumps and wakes; the swap's acquire half pairs with the
        // sleeper's release half, so the sleeper read the epoch before our bump. The plain load
        // first keeps the common "nobody new" case free of a read-modify-write: after the fence
        // it sees the sleeper's 1 or a later value, and a later 0 means a later notifier took
        // that 1 and is waking.
        if !force
            && (self.armed.load(Ordering::Relaxed) == 0
                || self.armed.swap(0, Ordering::AcqRel) == 0)
        {
            // Nobody registered since the last bump (whose wake reached every sleeper that had
            // registered before it), or another notifier cleared the flag and is waking now.
            return;
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&self.epoch);
    }

    /// Registers a sleeper and returns the epoch to sleep on. The caller re-checks its condition
    /// after this and before [`WaitCell::sleep`], and calls [`WaitCell::done`] afterwards.
    fn sleep_prepare(&self) -> u32 {
        let epoch = self.epoch.load(Ordering::Acquire);
        // Set after reading the epoch: a notifier that clears this mark bumps the epoch past
        // the value we read, so our futex wait returns at once or is woken.
        self.armed.swap(1, Ordering::SeqCst);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        epoch
    }

    fn sleep(&self, epoch: u32, timeout: Duration) -> Wake {
        futex::wait(&self.epoch, epoch, Some(timeout))
    }

    fn done(&self) {
        self.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Pauses between two spinning attempts, longer each round up to [`MAX_PAUSES`], then yields.
fn pause(round: u32) {
    if round >= PAUSE_ROUNDS {
        std::thread::yield_now();
        return;
    }
    for _ in 0..(1u32 << round).min(MAX_PAUSES) {
        spin_loop();
    }
}

/// `limit`'s deadline from now (for [`wait_for`], and for a lock taken along the way): `None`
/// (wait as long as it takes) when there is no limit or its timeout lies past the clock's range.
pub(crate) fn lock_deadline<E>(limit: Limit<E>) -> Option<(Instant, E)> {
    limit.and_then(|(t, timed_out)| Some((deadline_after(t)?, timed_out)))
}

/// Calls `attempt` until it yields a value or an error: spinning at first (pausing, then
/// yielding the CPU between attempts), then sleeping on
/// `cell` in slices of at most [`SLICE`]. After a slice that ended with no wake, `idle` runs
/// (the dead-peer check); its error ends the wait, after one last attempt.
///
/// `limit` of `None` waits for ever (or until `attempt` or `idle` fail); with `Some((timeout,
/// timed_out))`, the wait ends with the error `timed_out` when the timeout passes. The error type
/// is the operation's own (`GetTimeoutError`, ...), so a wait without a timeout cannot report
/// one.
pub(crate) fn wait_for<R, E>(
    cell: &WaitCell,
    limit: Limit<E>,
    mut attempt: impl FnMut() -> Result<Option<R>, E>,
    mut idle: impl FnMut() -> Result<(), E>,
) -> Result<R, E> {
    // From the call; a timeout past the clock's range is no deadline.
    let mut deadline = lock_deadline(limit);
    for round in 0..SPINS {
        if let Some(r) = attempt()? {
            return Ok(r);
        }
        pause(round);
    }
    loop {
        let epoch = cell.sleep_prepare();
        match attempt() {
            Ok(None) => {}
            Ok(Some(r)) => {
                cell.done();
                return Ok(r);
            }
            Err(e) => {
                cell.done();
                return Err(e);
            }
        }
        let now = Instant::now();
        let slice = match deadline.take() {
            Some((d, timed_out)) if now >= d => {
                cell.done();
                return Err(timed_out);
            }
            Some((d, timed_out)) => {
                deadline = Some((d, timed_out));
                (d - now).min(SLICE)
            }
            None => SLICE,
        };
        let woke = cell.sleep(epoch, slice);
        cell.done();
        if woke == Wake::TimedOut
            && let Err(e) = idle()
        {
            return attempt()?.ok_or(e);
        }
    }
}

/// A joinable queue's `join`: waits on `cell` until `unfinished` reads 0, as `limit` says; ends
/// with `Closed` once `closed()` says the queue was closed, and with `PeersGone` once every
/// process registered in `consumers` has exited (nobody is left to mark the rest done). The
/// bounded ring and the unbounded chain keep their counters in different control blocks.
pub(crate) fn wait_all_done<E: From<Closed> + From<PeersGone>>(
    cell: &WaitCell,
    unfinished: &std::sync::atomic::AtomicU64,
    limit: Limit<E>,
    closed: impl Fn() -> bool,
    consumers: &PeerTable,
) -> Result<(), E> {
    wait_for(
        cell,
        limit,
        || {
            if unfinished.load(Ordering::Acquire) == 0 {
                Ok(Some(()))
            } else if closed() {
                Err(Closed.into())
            } else {
                Ok(None)
            }
        },
        || consumers.check_gone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell() -> WaitCell {
        WaitCell { epoch: AtomicU32::new(0), waiters: AtomicU32::new(0), armed: AtomicU32::new(0) }
    }

    #[test]
    fn a_late_sleeper_cannot_hide_a_newer_one_from_the_next_notifier() {
        let c = cell();
        // Sleeper A reads the epoch, then is delayed before it registers.
        let a_epoch = c.epoch.load(Ordering::Acquire);
        // Meanwhile an earlier sleeper is woken: the epoch moves on.
        c.waiters.fetch_add(1, Ordering::SeqCst);
        c.armed.swap(1, Ordering::SeqCst);
        c.notify();
        c.done();
        assert_ne!(c.epoch.load(Ordering::Relaxed), a_epoch);
        // Sleeper B registers at the new epoch, then A's late registration lands.
        let b_epoch = c.sleep_prepare();
        c.armed.swap(1, Ordering::SeqCst);
        c.waiters.fetch_add(1, Ordering::SeqCst);
        // A's futex wait returns at once (stale epoch); B sleeps on b_epoch. The next
        // notifier must still wake B.
        c.notify();
        assert_ne!(c.epoch.load(Ordering::Relaxed), b_epoch, "B would sleep a whole slice");
        // And a notifier with nobody newly registered skips the wake.
        let e = c.epoch.load(Ordering::Relaxed);
        c.notify();
        assert_eq!(c.epoch.load(Ordering::Relaxed), e);
    }

    #[test]
    fn notify_all_wakes_even_when_nobody_newly_registered() {
        let c = cell();
        c.sleep_prepare();
        c.notify();
        let e = c.epoch.load(Ordering::Relaxed);
        c.notify_all();
        assert_ne!(c.epoch.load(Ordering::Relaxed), e);
    }
}
