//! `LockError` and `OwnerDied`: what a lock call returns when it could not simply hand out a
//! guard. The owner-died outcome carries the guard, because the caller does hold the lock.

use std::fmt;
use std::io;
use std::time::Duration;

use super::robust::{Acquired, Failed};
use crate::error::Error;

/// The result of locking a [`Mutex`](crate::Mutex), [`RLock`](crate::RLock) or
/// [`SharedValue`](crate::SharedValue): a guard, or why there is none.
pub type LockResult<G> = Result<G, LockError<G>>;

/// Why a lock call did not return a plain guard.
///
/// Converting it into [`Error`] (with `?`) is fine for every variant, but note what that does to
/// [`OwnerDied`](LockError::OwnerDied): the outcome is dropped unrecovered, so the lock becomes
/// permanently unusable ([`NotRecoverable`](LockError::NotRecoverable) for every later locker).
///
/// ```
/// use shmpool::Mutex;
/// use shmpool::sync::LockError;
///
/// let m = Mutex::new(0u32)?;
/// let held = m.lock()?;
/// // This thread holds it already; another thread would get `WouldBlock`.
/// assert!(matches!(m.try_lock(), Err(LockError::WouldDeadlock)));
/// drop(held);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub enum LockError<G> {
    /// The previous holder's process died while holding the lock. The caller holds it now; the
    /// data may be half-written. Call [`OwnerDied::recover`] to get the guard and keep the lock
    /// usable.
    OwnerDied(OwnerDied<G>),
    /// The lock is unusable, for good: a previous holder died and the next locker did not
    /// recover, or a holding *thread* exited while its process lived on (it leaked its guard,
    /// so a `&mut` taken from it may still be in use, and no second guard may be handed out).
    NotRecoverable,
    /// `try_lock`/`try_acquire`: someone else holds the lock.
    WouldBlock,
    /// The timeout passed before the lock was acquired.
    Timeout(Duration),
    /// The calling thread holds this (non-reentrant) lock already.
    WouldDeadlock,
    /// The calling thread holds 2048 robust locks already ([`Mutex`](crate::Mutex),
    /// [`RLock`](crate::RLock), [`SharedValue`](crate::SharedValue) guards, a barrier's internal
    /// lock), the most the kernel releases when a thread dies: a lock taken past that would
    /// stay locked forever if the thread died. Release one first. (Acquiring an `RLock` this
    /// thread holds already adds nothing, and is allowed.)
    TooManyHeld,
    /// An unexpected error from the operating system.
    Io(io::Error),
}

impl<G> LockError<G> {
    /// Whether this is the owner-died outcome.
    ///
    /// ```
    /// let e = shmpool::sync::LockError::<()>::NotRecoverable;
    /// assert!(!e.is_owner_died());
    /// ```
    pub fn is_owner_died(&self) -> bool {
        matches!(self, LockError::OwnerDied(_))
    }

    /// Turns a lock outcome into a guard or this error; `make` builds the guard once the lock
    /// is held.
    #[inline(always)]
    pub(crate) fn lift(
        r: Result<Acquired, Failed>,
        what: &'static str,
        make: impl FnOnce() -> G,
    ) -> LockResult<G> {
        match r {
            Ok(Acquired::Clean) => Ok(make()),
            Ok(Acquired::OwnerDied) => Err(LockError::OwnerDied(OwnerDied { guard: make(), what })),
            Err(Failed::NotRecoverable) => Err(LockError::NotRecoverable),
            Err(Failed::WouldBlock) => Err(LockError::WouldBlock),
            Err(Failed::Timeout(d)) => Err(LockError::Timeout(d)),
            Err(Failed::WouldDeadlock) => Err(LockError::WouldDeadlock),
            Err(Failed::TooManyHeld) => Err(LockError::TooManyHeld),
            Err(Failed::Io(e)) => Err(LockError::Io(e)),
        }
    }
}

/// The owner-died outcome: the caller holds the lock, but its previous holder died holding it.
///
/// Only a holder whose whole *process* can never run again (gone, a zombie, or every thread of
/// it exiting) leads here, so recovering cannot alias a guard that is still in use. A holding
/// thread that exited while its process lived on leaked its guard, and a `&mut` from it may
/// still be in use: that gives [`LockError::NotRecoverable`] instead. The kernel hands the
/// lock over as the holder dies; a holder process that is still dying (a thread with `SIGKILL`
/// pending, not yet exiting) is waited for, and one with a thread still running is watched for
/// up to two seconds before it counts as alive. `lock` waits for that as long as it takes;
/// `try_lock` and `lock_timeout` do not wait past their own deadline, but give
/// [`LockError::WouldBlock`] or [`LockError::Timeout`] and leave the decision to a later call.
///
/// Inspect and repair the protected data, then call `recover` (defined for each guard type:
/// [`MutexGuard`](crate::sync::MutexGuard), [`RLockGuard`](crate::sync::RLockGuard)) to mark the lock
/// consistent and get the guard. Dropping this value instead releases the lock in the
/// not-recoverable state: every later lock call fails with [`LockError::NotRecoverable`].
///
/// ```no_run
/// // (no_run: it forks, and doctests run in a multi-threaded harness.)
/// use shmpool::Mutex;
/// use shmpool::sync::LockError;
///
/// let m = Mutex::new(0u64)?;
/// shmpool::scope(|s| {
///     // The child ends while holding the lock (children leave with `_exit`, no destructors).
///     s.fork(|| std::mem::forget(m.lock()))?.join()
/// })??;
/// match m.lock() {
///     Err(LockError::OwnerDied(od)) => {
///         let mut g = od.recover(); // the data is ours to check
///         *g = 0;
///     }
///     other => drop(other),
/// }
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct OwnerDied<G> {
    pub(crate) guard: G,
    pub(crate) what: &'static str,
}

impl<G> OwnerDied<G> {
    /// Reads the guarded state without recovering (the lock stays held by the caller; dropping
    /// the outcome afterwards still leaves it not recoverable).
    ///
    /// ```
    /// fn check(od: &shmpool::sync::OwnerDied<shmpool::sync::MutexGuard<'_, u64>>) -> bool {
    ///     **od.guard() < 1000
    /// }
    /// ```
    pub fn guard(&self) -> &G {
        &self.guard
    }
}

impl<G> fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerDied").field("what", &self.what).finish_non_exhaustive()
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(od) => f.debug_tuple("OwnerDied").field(od).finish(),
            LockError::NotRecoverable => f.write_str("NotRecoverable"),
            LockError::WouldBlock => f.write_str("WouldBlock"),
            LockError::Timeout(d) => f.debug_tuple("Timeout").field(d).finish(),
            LockError::WouldDeadlock => f.write_str("WouldDeadlock"),
            LockError::TooManyHeld => f.write_str("TooManyHeld"),
            LockError::Io(e) => f.debug_tuple("Io").field(e).finish(),
        }
    }
}

impl<G> LockError<G> {
    fn to_error_ref(&self) -> Error {
        const WHAT: &str = "lock";
        match self {
            LockError::OwnerDied(od) => Error::OwnerDied { what: od.what },
            LockError::NotRecoverable => Error::NotRecoverable { what: WHAT },
            LockError::WouldBlock => Error::WouldBlock { what: WHAT },
            LockError::Timeout(after) => Error::Timeout { what: "acquiring a lock", after: *after },
            LockError::WouldDeadlock => Error::WouldDeadlock { what: WHAT },
            LockError::TooManyHeld => super::robust::too_many_held(),
            LockError::Io(e) => {
                Error::Io { op: "locking", source: io::Error::new(e.kind(), e.to_string()) }
            }
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_error_ref(), f)
    }
}

impl<G> std::error::Error for LockError<G> {}

impl<G> From<LockError<G>> for Error {
    /// Note: an [`OwnerDied`] converted this way is dropped unrecovered, which leaves the lock
    /// not recoverable.
    fn from(e: LockError<G>) -> Error {
        match e {
            LockError::Io(source) => Error::Io { op: "locking", source },
            other => other.to_error_ref(),
        }
    }
}
