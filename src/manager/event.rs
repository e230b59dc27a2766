//! `EventProxy`: a flag held by the manager's server (Python's `Manager().Event()`).

use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::proxy::proxy_common;
use super::session::{Object, millis};
use super::wire::Op;
use crate::error::Result;

/// A proxy to an event held by a [`Manager`](crate::Manager)'s server: processes wait until
/// one sets it. `Clone` and serde, like every proxy.
///
/// ```
/// let m = shmpool::Manager::start()?;
/// let e = m.event()?;
/// assert!(!e.wait_timeout(std::time::Duration::from_millis(10))?);
/// e.set()?;
/// assert!(e.is_set()?);
/// assert!(e.wait()?);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
pub struct EventProxy {
    obj: Object,
    _t: PhantomData<()>,
}

proxy_common!(EventProxy [] "event()");

impl EventProxy {
    /// Sets the flag, waking every waiter.
    ///
    /// ```no_run
    /// # let e = shmpool::Manager::start()?.event()?;
    /// e.set()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn set(&self) -> Result<()> {
        self.done(Op::EventSet)
    }

    /// Clears the flag.
    ///
    /// ```no_run
    /// # let e = shmpool::Manager::start()?.event()?;
    /// e.clear()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.done(Op::EventClear)
    }

    /// Whether the flag is set.
    ///
    /// ```no_run
    /// # let e = shmpool::Manager::start()?.event()?;
    /// let set = e.is_set()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_set(&self) -> Result<bool> {
        self.flag(Op::EventIsSet, None)
    }

    /// Waits for the flag up to the call timeout: whether it was set.
    ///
    /// ```no_run
    /// # let e = shmpool::Manager::start()?.event()?;
    /// let set = e.wait()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait(&self) -> Result<bool> {
        self.wait_timeout(self.obj.timeout)
    }

    /// Waits for the flag up to `timeout`: whether it was set.
    ///
    /// ```no_run
    /// # let e = shmpool::Manager::start()?.event()?;
    /// let set = e.wait_timeout(std::time::Duration::from_secs(1))?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.flag(Op::EventWait { wait_ms: millis(timeout) }, Some(timeout))
    }

    fn flag(&self, op: Op, wait: Option<Duration>) -> Result<bool> {
        self.obj.call_bool(op, wait)
    }

    fn done(&self, op: Op) -> Result<()> {
        self.obj.call_done(op, None)
    }
}
