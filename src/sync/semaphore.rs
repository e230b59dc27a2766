//! `Semaphore` and `BoundedSemaphore`: a counter on a shared futex (Python's
//! `multiprocessing.Semaphore` / `BoundedSemaphore`).

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::object_methods;
use super::wait::{self, Deadline};
use crate::error::{Error, Result};
use crate::segment::header::Kind;
use crate::segment::object::{ShmBox, ShmSafe};
use crate::segment::options::ShmOptions;
use crate::sys::futex;

/// The shared part of a semaphore. `BOUNDED` is part of the type, so a bounded semaphore's
/// segment cannot be opened as an unbounded one or the other way round.
#[repr(C)]
pub(crate) struct SemCell<const BOUNDED: bool> {
    /// The value; the futex word acquirers sleep on while it is 0.
    count: AtomicU32,
    /// Acquirers asleep on `count`.
    waiters: AtomicU32,
    /// The most `count` may reach: the initial value if bounded, `u32::MAX` otherwise.
    bound: u32,
}

// SAFETY: `#[repr(C)]` atomics and a constant, mutated only through atomics and shared futexes;
// no pointers, no `Drop`.
unsafe impl<const B: bool> ShmSafe for SemCell<B> {}

impl<const B: bool> SemCell<B> {
    fn create(value: u32, opts: &ShmOptions) -> Result<ShmBox<SemCell<B>>> {
        let bound = if B { value } else { u32::MAX };
        ShmBox::new(
            Kind::Semaphore,
            opts,
            SemCell { count: AtomicU32::new(value), waiters: AtomicU32::new(0), bound },
        )
    }

    fn try_take(&self) -> bool {
        let mut c = self.count.load(Ordering::Relaxed);
        while c > 0 {
            match self.count.compare_exchange_weak(c, c - 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => c = now,
            }
        }
        false
    }

    fn acquire(&self, deadline: Deadline) -> bool {
        loop {
            if self.try_take() {
                return true;
            }
            if !wait::wait_for(&self.count, Some(&self.waiters), deadline, |v| v > 0) {
                // One last look: a release may have landed just as time ran out.
                return self.try_take();
            }
        }
    }

    fn release(&self) -> Result<()> {
        let mut c = self.count.load(Ordering::Relaxed);
        loop {
            if c >= self.bound {
                return Err(Error::OverRelease { value: c });
            }
            match self.count.compare_exchange_weak(c, c + 1, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => c = now,
            }
        }
        if self.waiters.load(Ordering::SeqCst) > 0 {
            futex::wake(&self.count, 1);
        }
        Ok(())
    }
}

/// Generates the methods `Semaphore` and `BoundedSemaphore` share.
macro_rules! semaphore_methods {
    ($ty:literal) => {
        /// Takes one unit, waiting as long as it takes (spinning briefly, then sleeping).
        ///
        /// A semaphore has no owner: if a process dies between `acquire` and `release`, its
        /// unit is gone. Use [`acquire_timeout`](Self::acquire_timeout) where that can happen.
        #[doc = concat!("\n```\nlet s = ", $ty, "::new(1)?;\ns.acquire();\nassert_eq!(s.value(), 0);\n# Ok::<(), shmpool::Error>(())\n```")]
        pub fn acquire(&self) {
            self.cell.acquire(Deadline::NEVER);
        }

        /// Takes one unit, waiting at most `timeout`; returns whether it got one.
        #[doc = concat!("\n```\nlet s = ", $ty, "::new(0)?;\nassert!(!s.acquire_timeout(std::time::Duration::from_millis(5)));\n# Ok::<(), shmpool::Error>(())\n```")]
        pub fn acquire_timeout(&self, timeout: Duration) -> bool {
            self.cell.acquire(Deadline::after(Some(timeout)))
        }

        /// Takes one unit if one is free, without waiting; returns whether it got one.
        #[doc = concat!("\n```\nlet s = ", $ty, "::new(1)?;\nassert!(s.try_acquire());\nassert!(!s.try_acquire());\n# Ok::<(), shmpool::Error>(())\n```")]
        pub fn try_acquire(&self) -> bool {
            self.cell.try_take()
        }

        /// The current value (a snapshot: other processes may change it at any moment).
        #[doc = concat!("\n```\nassert_eq!(", $ty, "::new(3)?.value(), 3);\n# Ok::<(), shmpool::Error>(())\n```")]
        pub fn value(&self) -> u32 {
            self.cell.count.load(Ordering::Relaxed)
        }
    };
}

/// A counting semaphore shared between processes. `acquire` takes a unit (waiting while there
/// is none), `release` gives one back and wakes one waiter; any process may release.
///
/// ```
/// let s = shmpool::Semaphore::new(2)?;
/// assert!(s.try_acquire() && s.try_acquire() && !s.try_acquire());
/// s.release()?;
/// assert_eq!(s.value(), 1);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct Semaphore {
    cell: ShmBox<SemCell<false>>,
}

impl Semaphore {
    /// An anonymous semaphore with `value` units.
    ///
    /// ```
    /// let s = shmpool::Semaphore::new(4)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new(value: u32) -> Result<Semaphore> {
        Self::new_with(value, &ShmOptions::new())
    }

    /// A semaphore with `value` units, created as `opts` says.
    ///
    /// ```
    /// use shmpool::{Semaphore, ShmOptions};
    /// let s = Semaphore::new_with(1, &ShmOptions::new().generated_name())?;
    /// assert!(s.name().is_some());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(value: u32, opts: &ShmOptions) -> Result<Semaphore> {
        Ok(Semaphore { cell: SemCell::create(value, opts)? })
    }

    object_methods!(
        Kind::Semaphore,
        "semaphore",
        "shmpool::Semaphore",
        "shmpool::Semaphore::new_with(1, &opts)?"
    );
    semaphore_methods!("shmpool::Semaphore");

    /// Gives one unit back and wakes one waiter.
    ///
    /// # Errors
    ///
    /// [`Error::OverRelease`] if the value is already `u32::MAX`.
    ///
    /// ```
    /// let s = shmpool::Semaphore::new(0)?;
    /// s.release()?;
    /// assert!(s.try_acquire());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        self.cell.release()
    }
}

/// A semaphore that refuses to be released above its initial value (Python's
/// `BoundedSemaphore`): an extra `release` is a bug, reported as [`Error::OverRelease`].
///
/// ```
/// let s = shmpool::BoundedSemaphore::new(1)?;
/// assert!(s.release().is_err()); // nothing was acquired
/// s.acquire();
/// s.release()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct BoundedSemaphore {
    cell: ShmBox<SemCell<true>>,
}

impl BoundedSemaphore {
    /// An anonymous bounded semaphore with `value` units, which is also its bound.
    ///
    /// ```
    /// let s = shmpool::BoundedSemaphore::new(2)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new(value: u32) -> Result<BoundedSemaphore> {
        Self::new_with(value, &ShmOptions::new())
    }

    /// A bounded semaphore with `value` units, created as `opts` says.
    ///
    /// ```
    /// use shmpool::{BoundedSemaphore, ShmOptions};
    /// let s = BoundedSemaphore::new_with(1, &ShmOptions::new().generated_name())?;
    /// assert!(s.name().is_some());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(value: u32, opts: &ShmOptions) -> Result<BoundedSemaphore> {
        Ok(BoundedSemaphore { cell: SemCell::create(value, opts)? })
    }

    object_methods!(
        Kind::Semaphore,
        "bounded semaphore",
        "shmpool::BoundedSemaphore",
        "shmpool::BoundedSemaphore::new_with(1, &opts)?"
    );
    semaphore_methods!("shmpool::BoundedSemaphore");

    /// Gives one unit back and wakes one waiter.
    ///
    /// # Errors
    ///
    /// [`Error::OverRelease`] if the value is already at its bound (the initial value).
    ///
    /// ```
    /// let s = shmpool::BoundedSemaphore::new(1)?;
    /// s.acquire();
    /// s.release()?;
    /// assert!(matches!(s.release(), Err(shmpool::Error::OverRelease { value: 1 })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        self.cell.release()
    }

    /// The bound: the value it was created with.
    ///
    /// ```
    /// assert_eq!(shmpool::BoundedSemaphore::new(3)?.bound(), 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn bound(&self) -> u32 {
        self.cell.bound
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .field("handle", &self.handle().to_string())
            .finish()
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.value())
            .field("bound", &self.bound())
            .field("handle", &self.handle().to_string())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn counts_and_times_out() {
        let s = Semaphore::new(1).unwrap();
        assert!(s.try_acquire());
        let t0 = Instant::now();
        assert!(!s.acquire_timeout(Duration::from_millis(30)));
        assert!(t0.elapsed() >= Duration::from_millis(30));
        s.release().unwrap();
        s.release().unwrap();
        assert_eq!(s.value(), 2);
    }

    #[test]
    fn a_release_wakes_a_sleeping_thread() {
        let s = Semaphore::new(0).unwrap();
        std::thread::scope(|sc| {
            let h = sc.spawn(|| s.acquire_timeout(Duration::from_secs(10)));
            std::thread::sleep(Duration::from_millis(20));
            s.release().unwrap();
            assert!(h.join().unwrap());
        });
        assert_eq!(s.value(), 0);
    }

    #[test]
    fn bounded_refuses_over_release() {
        let s = BoundedSemaphore::new(2).unwrap();
        assert!(matches!(s.release(), Err(Error::OverRelease { value: 2 })));
        s.acquire();
        s.release().unwrap();
        let e = s.release().unwrap_err();
        assert!(e.to_string().contains("release only what was acquired"), "{e}");
        assert_eq!(s.value(), 2);
    }

    #[test]
    fn bounded_and_plain_do_not_open_as_each_other() {
        let b = BoundedSemaphore::new(1).unwrap();
        assert!(matches!(Semaphore::open_handle(&b.handle()), Err(Error::TypeMismatch { .. })));
        let p = Semaphore::new(1).unwrap();
        assert!(matches!(
            BoundedSemaphore::open_handle(&p.handle()),
            Err(Error::TypeMismatch { .. })
        ));
        assert!(matches!(
            Semaphore::open_handle(&crate::Event::new().unwrap().handle()),
            Err(Error::KindMismatch { .. })
        ));
    }
}
