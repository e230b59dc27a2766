//! Stopping a pool gently: `close` (no more work; workers exit once idle) and `join` (wait for
//! them to exit). `terminate`, which needs no waiting, is in `state.rs`.

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use super::state::{Pool, PoolState};
use super::words::Phase;
use crate::error::{Error, Result};

impl Pool {
    /// Stops taking work; workers exit once idle. Follow with [`join`](Pool::join).
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// pool.close();
    /// pool.join()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn close(&mut self) {
        if self.check_owner().is_err() {
            return; // a forked copy: the workers are not ours to stop
        }
        if self.state == PoolState::Running {
            let _ = self.finish_active();
            self.state = PoolState::Closed;
            self.ctl.state.store(Phase::CLOSING, SeqCst);
            self.ctl.wake_workers();
        }
    }

    /// Waits for every worker to exit, after [`close`](Pool::close) or
    /// [`terminate`](Pool::terminate).
    ///
    /// # Errors
    ///
    /// [`Error::PoolStillRunning`] if neither was called, [`Error::PoolNotOwned`] outside the
    /// creating process.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// assert!(pool.join().is_err()); // still running
    /// pool.close();
    /// pool.join()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn join(&mut self) -> Result<()> {
        match self.join_timeout(Duration::MAX)? {
            true => Ok(()),
            false => unreachable!("an unbounded join returns only when every worker exited"),
        }
    }

    /// Like [`join`](Pool::join), waiting at most `timeout`; `Ok(false)` if some worker still
    /// runs then.
    ///
    /// ```no_run
    /// let mut pool = shmpool::Pool::new(2)?;
    /// pool.close();
    /// assert!(pool.join_timeout(std::time::Duration::from_secs(5))?);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<bool> {
        self.check_owner()?;
        if self.state == PoolState::Running {
            return Err(Error::PoolStillRunning);
        }
        let deadline = Instant::now().checked_add(timeout);
        loop {
            for w in &mut self.slots {
                w.try_exit(&mut self.server_death)?;
            }
            if self.slots.iter().all(|w| !w.alive) {
                return Ok(true);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(false);
            }
            // Until a worker ends (its exit descriptor), or a slice where one has none.
            let nap = self.nap();
            self.sleep(deadline.map_or(nap, |d| nap.min(d - now)));
        }
    }
}
