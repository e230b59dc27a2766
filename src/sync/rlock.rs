//! `RLock`: a reentrant robust lock (Python's `multiprocessing.RLock`).

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use super::lock_error::{LockError, LockResult, OwnerDied};
use super::object_methods;
use super::robust::{RobustMutex, Wait};
use crate::error::{Error, Result};
use crate::segment::header::Kind;
use crate::segment::object::{ShmBox, ShmSafe};
use crate::segment::options::ShmOptions;
use crate::sys::proc::getpid;
use crate::sys::pthread::MutexType;

/// The shared part of an [`RLock`].
#[repr(C)]
pub(crate) struct RLockCell {
    lock: RobustMutex,
}

// SAFETY: a `#[repr(C)]` process-shared recursive pthread mutex: used through `&self` by pthread
// calls that synchronise internally, no pointers, no `Drop`; `keep_mapped` is true while a
// thread of ours holds the lock, the only time one links into the cell.
unsafe impl ShmSafe for RLockCell {
    fn keep_mapped(&self) -> bool {
        self.lock.held_in_this_process()
    }
}

const WHAT: &str = "reentrant lock";

/// A reentrant lock shared between processes: the thread that holds it may acquire it again,
/// and it is free once every guard is dropped. Robust like [`Mutex`](crate::Mutex): when the
/// holder's process dies, the next acquirer gets [`LockError::OwnerDied`]; when only the
/// holding *thread* exited (it leaked its guards) and its process lives on, the next acquirer
/// gets [`LockError::NotRecoverable`] and the lock stays unusable, as for a `Mutex`.
///
/// Unlike a [`MutexGuard`](crate::sync::MutexGuard), an [`RLockGuard`] gives access to no memory, so
/// holding one does not stop shmpool from forking.
///
/// ```
/// let r = shmpool::RLock::new()?;
/// let outer = r.acquire()?;
/// let inner = r.acquire()?; // same thread: fine
/// drop(inner);
/// drop(outer);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct RLock {
    cell: ShmBox<RLockCell>,
}

impl RLock {
    /// An anonymous reentrant lock.
    ///
    /// ```
    /// let r = shmpool::RLock::new()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new() -> Result<RLock> {
        Self::new_with(&ShmOptions::new())
    }

    /// A reentrant lock created as `opts` says.
    ///
    /// ```
    /// use shmpool::{RLock, ShmOptions};
    /// let r = RLock::new_with(&ShmOptions::new().generated_name())?;
    /// assert!(r.name().is_some());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(opts: &ShmOptions) -> Result<RLock> {
        // SAFETY: the closure initialises the zeroed, aligned, exclusively owned cell's only
        // field at its final address.
        let cell = unsafe {
            ShmBox::new_in_place(Kind::RLock, opts, |p: std::ptr::NonNull<RLockCell>| {
                RobustMutex::init(&raw mut (*p.as_ptr()).lock, MutexType::Recursive)
                    .map_err(Error::io("pthread_mutex_init"))
            })?
        };
        Ok(RLock { cell })
    }

    object_methods!(
        Kind::RLock,
        "reentrant lock",
        "shmpool::RLock",
        "shmpool::RLock::new_with(&opts)?"
    );

    fn acquire_how(&self, how: Wait) -> LockResult<RLockGuard<'_>> {
        LockError::lift(self.cell.lock.acquire(how), WHAT, || RLockGuard {
            cell: &self.cell,
            pid: getpid(),
            _not_send: PhantomData,
        })
    }

    /// Acquires, waiting as long as it takes; immediate if this thread holds it already.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`], [`LockError::NotRecoverable`], [`LockError::Io`] (`EAGAIN`:
    /// acquired too many times), [`LockError::TooManyHeld`] (this thread holds 2048 robust
    /// locks already; re-entering this one adds none, and is allowed).
    ///
    /// ```
    /// let r = shmpool::RLock::new()?;
    /// let _g = r.acquire()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn acquire(&self) -> LockResult<RLockGuard<'_>> {
        self.acquire_how(Wait::Block)
    }

    /// Acquires, waiting at most `timeout`; [`LockError::Timeout`] after that.
    ///
    /// ```
    /// let r = shmpool::RLock::new()?;
    /// let _g = r.acquire_timeout(std::time::Duration::from_millis(10))?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> LockResult<RLockGuard<'_>> {
        self.acquire_how(Wait::Timeout(timeout))
    }

    /// Acquires if free or already held by this thread; [`LockError::WouldBlock`] otherwise.
    ///
    /// ```
    /// let r = shmpool::RLock::new()?;
    /// let a = r.try_acquire()?;
    /// let b = r.try_acquire()?; // reentrant
    /// # drop((a, b));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_acquire(&self) -> LockResult<RLockGuard<'_>> {
        self.acquire_how(Wait::Try)
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock").field("handle", &self.handle().to_string()).finish()
    }
}

/// One acquisition of an [`RLock`]; dropping it releases that acquisition. Not `Send`.
///
/// A copy of a guard that a fork made outside shmpool (`libc::fork`) left in a child holds
/// nothing there: dropping it does nothing.
///
/// ```
/// let r = shmpool::RLock::new()?;
/// let g: shmpool::sync::RLockGuard<'_> = r.acquire()?;
/// drop(g);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct RLockGuard<'a> {
    cell: &'a RLockCell,
    /// The process that acquired it: only there does dropping release.
    pid: u32,
    _not_send: PhantomData<*const ()>,
}

impl<'a> OwnerDied<RLockGuard<'a>> {
    /// Marks the lock consistent again and returns the guard. (The outcome exists only when the
    /// holder's process is gone; see [`RLock`].)
    ///
    /// ```
    /// fn take(od: shmpool::sync::OwnerDied<shmpool::sync::RLockGuard<'_>>) -> shmpool::sync::RLockGuard<'_> {
    ///     od.recover()
    /// }
    /// ```
    pub fn recover(self) -> RLockGuard<'a> {
        self.guard.cell.lock.make_consistent();
        self.guard
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        if self.pid == getpid() {
            self.cell.lock.release();
        }
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RLockGuard")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reenters_on_one_thread_and_excludes_others() {
        let r = RLock::new().unwrap();
        let a = r.acquire().unwrap();
        let b = r.try_acquire().unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(matches!(r.try_acquire(), Err(LockError::WouldBlock)));
                assert!(matches!(
                    r.acquire_timeout(Duration::from_millis(20)),
                    Err(LockError::Timeout(_))
                ));
            });
        });
        drop(a);
        std::thread::scope(|s| {
            s.spawn(|| assert!(matches!(r.try_acquire(), Err(LockError::WouldBlock))));
        });
        drop(b);
        std::thread::scope(|s| {
            s.spawn(|| drop(r.try_acquire().unwrap()));
        });
    }

    #[test]
    fn a_thread_that_exits_holding_it_leaves_it_not_recoverable() {
        let r = RLock::new().unwrap();
        std::thread::scope(|s| {
            // join (pthread_join): wait for the thread's exit, robust list processed.
            s.spawn(|| {
                std::mem::forget(r.acquire().unwrap());
                std::mem::forget(r.acquire().unwrap());
            })
            .join()
            .unwrap();
        });
        // Its process (this one) lives on: no OwnerDied, no second holder.
        assert!(matches!(r.acquire(), Err(LockError::NotRecoverable)));
        assert!(matches!(r.try_acquire(), Err(LockError::NotRecoverable)));
        std::thread::scope(|s| {
            s.spawn(|| assert!(matches!(r.acquire(), Err(LockError::NotRecoverable))));
        });
    }

    #[test]
    fn nested_acquisitions_keep_it_held_until_the_last_release() {
        let r = RLock::new().unwrap();
        let outer = r.acquire().unwrap();
        drop(r.acquire().unwrap());
        // The inner release must not have forgotten who holds it.
        std::thread::scope(|s| {
            s.spawn(|| assert!(matches!(r.try_acquire(), Err(LockError::WouldBlock))));
        });
        assert_ne!(r.cell.lock.holder_token(), 0);
        drop(outer);
        assert_eq!(r.cell.lock.holder_token(), 0);
    }

    #[test]
    fn a_forgotten_acquisition_keeps_it_mapped() {
        let r = RLock::new().unwrap();
        assert!(!r.cell.keep_mapped());
        std::mem::forget(r.acquire().unwrap());
        assert!(r.cell.keep_mapped());
        let addr = &raw const *r.cell as usize;
        drop(r);
        assert!(crate::segment::object::is_mapped(addr));
    }

    #[test]
    fn opening_a_mutex_as_an_rlock_is_a_kind_mismatch() {
        let m = crate::Mutex::new(0u8).unwrap();
        assert!(matches!(RLock::open_handle(&m.handle()), Err(Error::KindMismatch { .. })));
    }
}
