//! `BarrierProxy`: a barrier held by the manager's server (Python's `Manager().Barrier()`).

use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::proxy::proxy_common;
use super::session::{Object, millis, unexpected};
use super::wire::{Op, Reply};
use crate::error::{Error, Result};

/// A proxy to a barrier held by a [`Manager`](crate::Manager)'s server: each of its `parties`
/// waits until all have arrived, then all go on. As in Python, a party whose wait times out
/// breaks the barrier, and so does a party whose process dies while waiting (its connection
/// closes), so the others get [`Error::BrokenBarrier`] at once instead of waiting for it.
/// `Clone` and serde, like every proxy.
///
/// ```
/// let m = shmpool::Manager::start()?;
/// let b = m.barrier(1)?;
/// assert_eq!(b.wait()?, 0); // the only party: the round completes at once
/// assert_eq!(b.parties()?, 1);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
pub struct BarrierProxy {
    obj: Object,
    _t: PhantomData<()>,
}

proxy_common!(BarrierProxy [] "barrier(2)");

impl BarrierProxy {
    /// Waits for every party, up to the call timeout: this party's arrival index (0 for the
    /// first, `parties - 1` for the last), as Python's `wait()` returns.
    ///
    /// ```no_run
    /// # let b = shmpool::Manager::start()?.barrier(2)?;
    /// let i = b.wait()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::BrokenBarrier`] if the barrier is or becomes broken (a timeout, a dead party,
    /// [`abort`](BarrierProxy::abort), [`reset`](BarrierProxy::reset) while waiting).
    pub fn wait(&self) -> Result<u64> {
        self.wait_timeout(self.obj.timeout)
    }

    /// As [`wait`](BarrierProxy::wait), up to `timeout`, after which the barrier breaks (for
    /// every party, as in Python) and this returns [`Error::BrokenBarrier`].
    ///
    /// ```no_run
    /// # let b = shmpool::Manager::start()?.barrier(2)?;
    /// let i = b.wait_timeout(std::time::Duration::from_secs(5))?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u64> {
        match self.obj.call(Op::BarrierWait { wait_ms: millis(timeout) }, Some(timeout))? {
            Reply::Len(index) => Ok(index),
            Reply::Bool(false) => Err(Error::BrokenBarrier),
            r => Err(unexpected(r)),
        }
    }

    /// Breaks the barrier: its waiters and later arrivals get [`Error::BrokenBarrier`] until
    /// [`reset`](BarrierProxy::reset).
    ///
    /// ```no_run
    /// # let b = shmpool::Manager::start()?.barrier(2)?;
    /// b.abort()?;
    /// assert!(b.is_broken()?);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn abort(&self) -> Result<()> {
        self.obj.call_done(Op::BarrierAbort, None)
    }

    /// Makes the barrier whole and empty again; parties waiting now get
    /// [`Error::BrokenBarrier`].
    ///
    /// ```no_run
    /// # let b = shmpool::Manager::start()?.barrier(2)?;
    /// b.reset()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn reset(&self) -> Result<()> {
        self.obj.call_done(Op::BarrierReset, None)
    }

    /// How many parties a round takes.
    ///
    /// ```no_run
    /// # let b = shmpool::Manager::start()?.barrier(2)?;
    /// assert_eq!(b.parties()?, 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn parties(&self) -> Result<u64> {
        self.count(Op::BarrierParties)
    }

    /// How many parties are waiting in the current round (Python's `n_waiting`).
    ///
    /// ```no_run
    /// # let b = shmpool::Manager::start()?.barrier(2)?;
    /// let n = b.n_waiting()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn n_waiting(&self) -> Result<u64> {
        self.count(Op::Len)
    }

    /// Whether the barrier is broken (Python's `broken`).
    ///
    /// ```no_run
    /// # let b = shmpool::Manager::start()?.barrier(2)?;
    /// let broken = b.is_broken()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_broken(&self) -> Result<bool> {
        self.obj.call_bool(Op::BarrierBroken, None)
    }

    fn count(&self, op: Op) -> Result<u64> {
        match self.obj.call(op, None)? {
            Reply::Len(n) => Ok(n),
            r => Err(unexpected(r)),
        }
    }
}
