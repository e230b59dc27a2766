//! `LockProxy` and `RLockProxy`: locks held by the manager's server (Python's
//! `Manager().Lock()` and `.RLock()`), each held by the thread that took it and released by the
//! server when that thread's connection ends (the thread or its process died).

use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::proxy::proxy_common;
use super::session::Object;
use super::wire::Op;
use crate::error::Result;

/// A proxy to a lock held by a [`Manager`](crate::Manager)'s server: any thread may release it
/// (as Python's `Lock`). When the process (or thread) holding it dies, the server sees its
/// connection close and releases the lock, so the next locker gets it at once; what the lock
/// protected may be half-updated then, as with any lock whose holder died. `Clone` and serde,
/// like every proxy.
///
/// ```
/// let m = shmpool::Manager::start()?;
/// let l = m.lock()?;
/// {
///     let _held = l.guard()?;
///     assert!(!l.acquire_timeout(std::time::Duration::ZERO)?);
/// }
/// assert!(l.acquire_timeout(std::time::Duration::ZERO)?);
/// l.release()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct LockProxy<M = Plain> {
    obj: Object,
    _t: PhantomData<fn() -> M>,
}

/// A proxy to a reentrant lock held by a [`Manager`](crate::Manager)'s server: the thread
/// holding it may take it again, and only that thread may release it, once per acquire. As
/// [`LockProxy`] otherwise.
///
/// ```
/// let m = shmpool::Manager::start()?;
/// let r = m.rlock()?;
/// r.acquire()?;
/// r.acquire()?; // again, by the same thread
/// r.release()?;
/// r.release()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
pub type RLockProxy = LockProxy<Reentrant>;

/// Marks a [`LockProxy`] to a plain lock.
#[derive(Debug, Clone, Copy)]
pub enum Plain {}

/// Marks a [`LockProxy`] to a reentrant lock ([`RLockProxy`]).
#[derive(Debug, Clone, Copy)]
pub enum Reentrant {}

proxy_common!(LockProxy [M] "lock()");

/// Holds a manager lock; releases it when dropped (an error then is ignored: a lost server
/// released it anyway). From [`LockProxy::guard`].
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct ManagedGuard<'a, M> {
    lock: &'a LockProxy<M>,
}

impl<M> Drop for ManagedGuard<'_, M> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

impl<M> LockProxy<M> {
    /// Acquires it, waiting up to the call timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::Error::Timeout) when it stayed held.
    ///
    /// ```no_run
    /// # let l = shmpool::Manager::start()?.lock()?;
    /// l.acquire()?;
    /// l.release()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<()> {
        self.obj.acquire("manager lock acquire")
    }

    /// Acquires it, waiting up to `timeout`: whether it did (Python's
    /// `acquire(timeout=...)`; `Duration::ZERO` is `acquire(blocking=False)`).
    ///
    /// ```no_run
    /// # let l = shmpool::Manager::start()?.lock()?;
    /// if l.acquire_timeout(std::time::Duration::from_millis(100))? { l.release()?; }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.obj.acquire_timeout(timeout)
    }

    /// Acquires it (as [`acquire`](LockProxy::acquire)) and returns a guard that releases it.
    ///
    /// ```no_run
    /// # let l = shmpool::Manager::start()?.lock()?;
    /// let held = l.guard()?;
    /// drop(held);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn guard(&self) -> Result<ManagedGuard<'_, M>> {
        self.acquire()?;
        Ok(ManagedGuard { lock: self })
    }

    /// Releases it.
    ///
    /// # Errors
    ///
    /// [`Error::ManagerRefused`](crate::Error::ManagerRefused) when it is not held (a plain lock), or not held by this thread
    /// (a reentrant one).
    ///
    /// ```no_run
    /// # let l = shmpool::Manager::start()?.lock()?;
    /// l.acquire()?;
    /// l.release()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        self.obj.call_done(Op::Release, None)
    }
}
