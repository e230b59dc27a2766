//! `Condition`: a condition variable for shmpool's [`Mutex`](crate::Mutex) (Python's
//! `multiprocessing.Condition`), a futex on a sequence counter.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytemuck::Pod;

use super::lock_error::{LockError, LockResult};
use super::mutex::MutexGuard;
use super::object_methods;
use super::robust::Wait;
use super::wait::{self, Deadline};
use crate::error::Result;
use crate::segment::header::Kind;
use crate::segment::object::{ShmBox, ShmSafe};
use crate::segment::options::ShmOptions;
use crate::sys::futex;

/// What a timed wait returns: the guard and whether time ran out, or why re-locking failed.
type TimedResult<'a, T> =
    Result<(MutexGuard<'a, T>, WaitTimeoutResult), LockError<MutexGuard<'a, T>>>;

/// The shared part of a [`Condition`].
#[repr(C)]
pub(crate) struct CondCell {
    /// Bumped by every notify; the futex word waiters sleep on.
    seq: AtomicU32,
    /// Waiters between registering and waking up.
    waiters: AtomicU32,
}

// SAFETY: `#[repr(C)]` atomics, mutated only through atomics and shared futexes; no pointers,
// no `Drop`.
unsafe impl ShmSafe for CondCell {}

/// Whether a timed condition wait returned because its time ran out.
///
/// ```
/// let m = shmpool::Mutex::new(0u32)?;
/// let c = shmpool::Condition::new()?;
/// let (_g, r) = c.wait_timeout(m.lock()?, std::time::Duration::from_millis(1))?;
/// assert!(r.timed_out());
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the wait ended because the timeout passed (it may still have been notified at
    /// the last moment; check the condition).
    ///
    /// ```
    /// let m = shmpool::Mutex::new(0u32)?;
    /// let c = shmpool::Condition::new()?;
    /// c.notify_all(); // before the wait: not seen by it
    /// let (_g, r) = c.wait_timeout(m.lock()?, std::time::Duration::ZERO)?;
    /// assert!(r.timed_out());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A condition variable shared between processes, used with the guard of a shmpool
/// [`Mutex`](crate::Mutex) or [`SharedValue`](crate::SharedValue).
///
/// `wait` releases the lock, sleeps until notified, and locks again before returning. Wakeups
/// can be spurious (and `notify_one` may wake more than one waiter), so wait in a loop on the
/// condition you care about, or use [`wait_while`](Condition::wait_while). If the lock's
/// holder died while the waiter slept, re-locking returns
/// [`LockError::OwnerDied`](crate::sync::LockError::OwnerDied) rather than hiding it. If the process
/// that was to notify dies, `wait` waits on: use the timeout variants where that can happen.
///
/// ```
/// use shmpool::{Condition, Mutex};
///
/// let ready = Mutex::new(false as u8)?;
/// let cv = Condition::new()?;
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         *ready.lock().unwrap() = 1;
///         cv.notify_all();
///     });
///     let g = cv.wait_while(ready.lock().unwrap(), |r| *r == 0).unwrap();
///     assert_eq!(*g, 1);
/// });
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct Condition {
    cell: ShmBox<CondCell>,
}

impl Condition {
    /// An anonymous condition variable.
    ///
    /// ```
    /// let c = shmpool::Condition::new()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new() -> Result<Condition> {
        Self::new_with(&ShmOptions::new())
    }

    /// A condition variable created as `opts` says.
    ///
    /// ```
    /// use shmpool::{Condition, ShmOptions};
    /// let c = Condition::new_with(&ShmOptions::new().generated_name())?;
    /// assert!(c.name().is_some());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(opts: &ShmOptions) -> Result<Condition> {
        let cell = ShmBox::new(
            Kind::Condition,
            opts,
            CondCell { seq: AtomicU32::new(0), waiters: AtomicU32::new(0) },
        )?;
        Ok(Condition { cell })
    }

    object_methods!(
        Kind::Condition,
        "condition",
        "shmpool::Condition",
        "shmpool::Condition::new_with(&opts)?"
    );

    fn wait_inner<'a, T: Pod + Send>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Deadline,
    ) -> TimedResult<'a, T> {
        guard.held.check(guard.owner.what());
        let (cell, owner) = (guard.cell, guard.owner);
        // Registered and sequence read while the lock is held: a notifier that changes the
        // state under the lock and then notifies bumps `seq` after this read, so the wait below
        // cannot miss it.
        self.cell.waiters.fetch_add(1, Ordering::SeqCst);
        let seen = self.cell.seq.load(Ordering::SeqCst);
        drop(guard);
        let notified = wait::wait_for(&self.cell.seq, None, deadline, |v| v != seen);
        self.cell.waiters.fetch_sub(1, Ordering::SeqCst);
        cell.lock(Wait::Block, owner).map(|g| (g, WaitTimeoutResult(!notified)))
    }

    /// Releases the lock, waits for a notification, and locks again.
    ///
    /// # Errors
    ///
    /// Re-locking can fail like [`Mutex::lock`](crate::Mutex::lock): in particular
    /// [`LockError::OwnerDied`](crate::sync::LockError::OwnerDied) when a holder died meanwhile.
    ///
    /// ```no_run
    /// // (no_run: it would wait for a notification nobody sends.)
    /// let m = shmpool::Mutex::new(0u32)?;
    /// let c = shmpool::Condition::new()?;
    /// let g = c.wait(m.lock()?)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait<'a, T: Pod + Send>(
        &self,
        guard: MutexGuard<'a, T>,
    ) -> LockResult<MutexGuard<'a, T>> {
        self.wait_inner(guard, Deadline::NEVER).map(|(g, _)| g)
    }

    /// Like [`wait`](Condition::wait), but gives up waiting for a notification after
    /// `timeout` (re-locking afterwards is not limited by it).
    ///
    /// ```
    /// let m = shmpool::Mutex::new(0u32)?;
    /// let c = shmpool::Condition::new()?;
    /// let (g, r) = c.wait_timeout(m.lock()?, std::time::Duration::from_millis(1))?;
    /// assert!(r.timed_out() && *g == 0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_timeout<'a, T: Pod + Send>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> TimedResult<'a, T> {
        self.wait_inner(guard, Deadline::after(Some(timeout)))
    }

    /// Waits while `condition` holds for the value, re-checking after every wakeup.
    ///
    /// ```
    /// let m = shmpool::Mutex::new(5u32)?;
    /// let c = shmpool::Condition::new()?;
    /// let g = c.wait_while(m.lock()?, |v| *v < 5)?; // already false: returns at once
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_while<'a, T: Pod + Send>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<MutexGuard<'a, T>> {
        while condition(&mut guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Like [`wait_while`](Condition::wait_while), giving up after `timeout` in all; the
    /// result says whether it did.
    ///
    /// ```
    /// let m = shmpool::Mutex::new(0u32)?;
    /// let c = shmpool::Condition::new()?;
    /// let (g, r) = c.wait_timeout_while(m.lock()?, std::time::Duration::from_millis(2), |v| *v == 0)?;
    /// assert!(r.timed_out());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_timeout_while<'a, T: Pod + Send>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> TimedResult<'a, T> {
        let deadline = Deadline::after(Some(timeout));
        while condition(&mut guard) {
            if matches!(deadline.left(), wait::Left::Expired) {
                return Ok((guard, WaitTimeoutResult(true)));
            }
            guard = self.wait_inner(guard, deadline)?.0;
        }
        Ok((guard, WaitTimeoutResult(false)))
    }

    /// Wakes one waiter (possibly more: a waiter still spinning sees every notification).
    ///
    /// ```
    /// shmpool::Condition::new()?.notify_one(); // nobody waits: no effect
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn notify_one(&self) {
        self.cell.seq.fetch_add(1, Ordering::SeqCst);
        if self.cell.waiters.load(Ordering::SeqCst) > 0 {
            futex::wake(&self.cell.seq, 1);
        }
    }

    /// Wakes every waiter.
    ///
    /// ```
    /// shmpool::Condition::new()?.notify_all();
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn notify_all(&self) {
        self.cell.seq.fetch_add(1, Ordering::SeqCst);
        if self.cell.waiters.load(Ordering::SeqCst) > 0 {
            futex::wake_all(&self.cell.seq);
        }
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition").field("handle", &self.handle().to_string()).finish()
    }
}
