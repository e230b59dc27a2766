//! The wake protocol every queue wait uses: spin briefly, then sleep on a shared futex without
//! ever losing a wake. See `README.md` in this folder for the argument.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
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
/// syscall when nobody sleeps, and the epoch the latest sleeper registered at (`armed`), so that
/// only the first notifier after a sleeper arrived pays for a wake: later ones see the epoch has
/// moved past `armed` and know every sleeper is already awake.
#[repr(C)]
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
        let e = self.epoch.load(Ordering::Relaxed);
        if force {
            self.epoch.fetch_add(1, Ordering::SeqCst);
        } else if self.armed.load(Ordering::Relaxed) != e
            || self
                .epoch
                .compare_exchange(e, e.wrapping_add(1), Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
        {
            // Nobody registered since the last bump (whose wake reached every sleeper), or
            // another notifier is bumping and waking right now.
            return;
        }
        futex::wake_all(&self.epoch);
    }

    /// Registers a sleeper and returns the epoch to sleep on. The caller re-checks its condition
    /// after this and before [`WaitCell::sleep`], and calls [`WaitCell::done`] afterwards.
    fn sleep_prepare(&self) -> u32 {
        let epoch = self.epoch.load(Ordering::Acquire);
        self.armed.store(epoch, Ordering::SeqCst);
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

/// Calls `attempt` until it yields a value or an error: spinning at first (pausing, then
/// yielding the CPU between attempts), then sleeping on
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
