//! The wake protocol every queue wait uses: spin briefly, then sleep on a shared futex without
//! ever losing a wake. See `README.md` in this folder for the argument.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sys::futex::{self, Wake};

/// Attempts made while spinning before the first sleep.
const SPINS: u32 = 24;
/// The longest run of `pause` hints between two spinning attempts.
const MAX_PAUSES: u32 = 32;
/// The longest single sleep: after a sleep this long with no wake, the waiter checks its peers.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// A futex word (`epoch`) that notifiers bump, and a count of sleepers so that notifiers skip
/// the syscall when nobody sleeps.
#[repr(C)]
pub(crate) struct WaitCell {
    epoch: AtomicU32,
    waiters: AtomicU32,
}

impl WaitCell {
    /// Wakes one sleeper, if any. Call after the state change a sleeper waits for is visible.
    pub(crate) fn notify_one(&self) {
        // Pairs with the fence in `sleep_prepare`: either the sleeper's re-check sees our state
        // change, or we see its registration here.
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            futex::wake(&self.epoch, 1);
        }
    }

    /// Wakes every sleeper.
    pub(crate) fn notify_all(&self) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            futex::wake_all(&self.epoch);
        }
    }

    /// Registers a sleeper and returns the epoch to sleep on. The caller re-checks its condition
    /// after this and before [`WaitCell::sleep`], and calls [`WaitCell::done`] afterwards.
    fn sleep_prepare(&self) -> u32 {
        let epoch = self.epoch.load(Ordering::Acquire);
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

/// Pauses between two spinning attempts, longer each round up to [`MAX_PAUSES`].
fn pause(round: u32) {
    for _ in 0..(1u32 << round.min(31)).min(MAX_PAUSES) {
        spin_loop();
    }
}

/// Calls `attempt` until it yields a value or an error: spinning at first, then sleeping on
/// `cell` in slices of at most [`SLICE`]. After a slice that ended with no wake, `idle` runs
/// (the dead-peer check); its error ends the wait, after one last attempt.
///
/// `timeout` of `None` waits for ever (or until `attempt` or `idle` fail); when it passes, the
/// wait ends with [`Error::Timeout`] naming `what`.
pub(crate) fn wait_for<R>(
    cell: &WaitCell,
    timeout: Option<Duration>,
    what: &'static str,
    mut attempt: impl FnMut() -> Result<Option<R>>,
    mut idle: impl FnMut() -> Result<()>,
) -> Result<R> {
    let start = Instant::now();
    for round in 0..SPINS {
        if let Some(r) = attempt()? {
            return Ok(r);
        }
        pause(round);
    }
    let deadline = timeout.map(|t| start + t);
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
        let slice = match deadline {
            Some(d) if now >= d => {
                cell.done();
                return Err(Error::Timeout { what, after: timeout.unwrap_or_default() });
            }
            Some(d) => (d - now).min(SLICE),
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
