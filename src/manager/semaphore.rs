//! `SemaphoreProxy`: a counter held by the manager's server (Python's `Manager().Semaphore(n)`).

use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::proxy::proxy_common;
use super::session::Object;
use super::wire::Op;
use crate::error::Result;

/// A proxy to a semaphore held by a [`Manager`](crate::Manager)'s server. A semaphore has no
/// owner: a process that dies after acquiring never gives its unit back (as in Python). `Clone`
/// and serde, like every proxy.
///
/// ```
/// let m = shmpool::Manager::start()?;
/// let s = m.semaphore(1)?;
/// s.acquire()?;
/// assert!(!s.acquire_timeout(std::time::Duration::ZERO)?);
/// s.release()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
pub struct SemaphoreProxy {
    obj: Object,
    _t: PhantomData<()>,
}

proxy_common!(SemaphoreProxy [] "semaphore(2)");

impl SemaphoreProxy {
    /// Takes a unit, waiting up to the call timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::Error::Timeout) when none came free.
    ///
    /// ```no_run
    /// # let s = shmpool::Manager::start()?.semaphore(1)?;
    /// s.acquire()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<()> {
        self.obj.acquire("manager semaphore acquire")
    }

    /// Takes a unit, waiting up to `timeout`: whether it did.
    ///
    /// ```no_run
    /// # let s = shmpool::Manager::start()?.semaphore(1)?;
    /// let got = s.acquire_timeout(std::time::Duration::from_millis(50))?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.obj.acquire_timeout(timeout)
    }

    /// Gives a unit back.
    ///
    /// ```no_run
    /// # let s = shmpool::Manager::start()?.semaphore(0)?;
    /// s.release()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        self.obj.call_done(Op::Release, None)
    }
}
