//! `ConditionProxy`: a condition variable and its reentrant lock, held by the manager's server
//! (Python's `Manager().Condition()`).

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::proxy::proxy_common;
use super::session::{Object, millis};
use super::wire::Op;
use crate::error::Result;

/// A proxy to a condition held by a [`Manager`](crate::Manager)'s server, with its own
/// reentrant lock (Python's default). The lock belongs to the thread that took it, as an
/// [`RLockProxy`](crate::manager::RLockProxy)'s; [`wait`](ConditionProxy::wait) and
/// [`notify`](ConditionProxy::notify) need it held, and a holder whose process dies releases
/// it. `Clone` and serde, like every proxy.
///
/// ```
/// let m = shmpool::Manager::start()?;
/// let c = m.condition()?;
/// c.acquire()?;
/// c.notify_all()?; // no waiter: nothing happens
/// assert!(!c.wait_timeout(std::time::Duration::from_millis(10))?); // nobody notifies
/// c.release()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
pub struct ConditionProxy {
    obj: Object,
    _t: PhantomData<()>,
}

proxy_common!(ConditionProxy [] "condition()");

impl ConditionProxy {
    /// Takes the lock (again, if this thread holds it), waiting up to the call timeout.
    ///
    /// ```no_run
    /// # let c = shmpool::Manager::start()?.condition()?;
    /// c.acquire()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<()> {
        self.obj.acquire("manager condition acquire")
    }

    /// Takes the lock, waiting up to `timeout`: whether it did.
    ///
    /// ```no_run
    /// # let c = shmpool::Manager::start()?.condition()?;
    /// let got = c.acquire_timeout(std::time::Duration::from_secs(1))?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.obj.acquire_timeout(timeout)
    }

    /// Releases the lock once.
    ///
    /// ```no_run
    /// # let c = shmpool::Manager::start()?.condition()?;
    /// # c.acquire()?;
    /// c.release()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        self.obj.call_done(Op::Release, None)
    }

    /// Releases the lock, waits for a notification up to the call timeout, and takes the lock
    /// back (with the count this thread held): whether it was notified.
    ///
    /// ```no_run
    /// # let c = shmpool::Manager::start()?.condition()?;
    /// # c.acquire()?;
    /// let notified = c.wait()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait(&self) -> Result<bool> {
        self.wait_timeout(self.obj.timeout)
    }

    /// As [`wait`](ConditionProxy::wait), waiting up to `timeout` for the notification (taking
    /// the lock back afterwards may take longer, as in Python).
    ///
    /// ```no_run
    /// # let c = shmpool::Manager::start()?.condition()?;
    /// # c.acquire()?;
    /// let notified = c.wait_timeout(std::time::Duration::from_secs(1))?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.obj.call_bool(Op::CondWait { wait_ms: millis(timeout) }, Some(timeout))
    }

    /// Waits until `ready()` is true, up to `timeout` in all (Python's `wait_for`): its last
    /// answer. Called with the lock held, and returns with it held.
    ///
    /// ```no_run
    /// # let m = shmpool::Manager::start()?;
    /// # let (c, v) = (m.condition()?, m.value(&0u32)?);
    /// c.acquire()?;
    /// let ok = c.wait_for(|| Ok(v.get()? > 0), std::time::Duration::from_secs(1))?;
    /// c.release()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_for(
        &self,
        mut ready: impl FnMut() -> Result<bool>,
        timeout: Duration,
    ) -> Result<bool> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if ready()? {
                return Ok(true);
            }
            let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Ok(false);
            }
            self.wait_timeout(left)?;
        }
    }

    /// Wakes one waiter.
    ///
    /// ```no_run
    /// # let c = shmpool::Manager::start()?.condition()?;
    /// # c.acquire()?;
    /// c.notify()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn notify(&self) -> Result<()> {
        self.notify_n(1)
    }

    /// Wakes up to `n` waiters, the longest waiting first.
    ///
    /// ```no_run
    /// # let c = shmpool::Manager::start()?.condition()?;
    /// # c.acquire()?;
    /// c.notify_n(3)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn notify_n(&self, n: u64) -> Result<()> {
        self.obj.call_done(Op::CondNotify(n), None)
    }

    /// Wakes every waiter.
    ///
    /// ```no_run
    /// # let c = shmpool::Manager::start()?.condition()?;
    /// # c.acquire()?;
    /// c.notify_all()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn notify_all(&self) -> Result<()> {
        self.notify_n(u64::MAX)
    }
}
