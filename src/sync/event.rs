//! `Event`: a flag that processes wait on (Python's `multiprocessing.Event`).

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::object_methods;
use super::wait::{self, Deadline};
use crate::error::Result;
use crate::segment::header::Kind;
use crate::segment::object::{ShmBox, ShmSafe};
use crate::segment::options::ShmOptions;
use crate::sys::futex;

/// The shared part of an [`Event`].
#[repr(C)]
pub(crate) struct EventCell {
    /// 0 clear, 1 set; the futex word waiters sleep on.
    flag: AtomicU32,
    /// Waiters asleep on `flag`.
    waiters: AtomicU32,
}

// SAFETY: `#[repr(C)]` atomics, mutated only through atomics and shared futexes; no pointers,
// no `Drop`.
unsafe impl ShmSafe for EventCell {}

/// A flag shared between processes: `set` wakes every waiter, `clear` resets it, `wait` blocks
/// until it is set.
///
/// Nobody owns an event: if the process that was to set it dies, waiters wait on. Use
/// [`wait_timeout`](Event::wait_timeout) where that can happen.
///
/// ```
/// let e = shmpool::Event::new()?;
/// assert!(!e.is_set());
/// e.set();
/// e.wait(); // returns at once
/// assert!(e.wait_timeout(std::time::Duration::ZERO));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct Event {
    cell: ShmBox<EventCell>,
}

impl Event {
    /// An anonymous event, clear.
    ///
    /// ```
    /// let e = shmpool::Event::new()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new() -> Result<Event> {
        Self::new_with(&ShmOptions::new())
    }

    /// A clear event, created as `opts` says.
    ///
    /// ```
    /// use shmpool::{Event, ShmOptions};
    /// let e = Event::new_with(&ShmOptions::new().generated_name())?;
    /// assert!(e.name().is_some());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(opts: &ShmOptions) -> Result<Event> {
        let cell = ShmBox::new(
            Kind::Event,
            opts,
            EventCell { flag: AtomicU32::new(0), waiters: AtomicU32::new(0) },
        )?;
        Ok(Event { cell })
    }

    object_methods!(Kind::Event, "event", "shmpool::Event", "shmpool::Event::new_with(&opts)?");

    /// Sets the flag and wakes every waiter.
    ///
    /// ```
    /// let e = shmpool::Event::new()?;
    /// e.set();
    /// assert!(e.is_set());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn set(&self) {
        if self.cell.flag.swap(1, Ordering::SeqCst) == 0
            && self.cell.waiters.load(Ordering::SeqCst) > 0
        {
            futex::wake_all(&self.cell.flag);
        }
    }

    /// Clears the flag.
    ///
    /// ```
    /// let e = shmpool::Event::new()?;
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn clear(&self) {
        self.cell.flag.store(0, Ordering::SeqCst);
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// assert!(!shmpool::Event::new()?.is_set());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_set(&self) -> bool {
        self.cell.flag.load(Ordering::Acquire) != 0
    }

    /// Waits until the flag is set (at once if it is).
    ///
    /// ```
    /// let e = shmpool::Event::new()?;
    /// e.set();
    /// e.wait();
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait(&self) {
        wait::wait_for(&self.cell.flag, Some(&self.cell.waiters), Deadline::NEVER, |v| v != 0);
    }

    /// Waits at most `timeout` for the flag; returns whether it is set (Python's
    /// `wait(timeout)`).
    ///
    /// ```
    /// let e = shmpool::Event::new()?;
    /// assert!(!e.wait_timeout(std::time::Duration::from_millis(5)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        wait::wait_for(
            &self.cell.flag,
            Some(&self.cell.waiters),
            Deadline::after(Some(timeout)),
            |v| v != 0,
        )
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .field("handle", &self.handle().to_string())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn times_out_when_clear_and_wakes_a_sleeping_thread() {
        let e = Event::new().unwrap();
        let t0 = Instant::now();
        assert!(!e.wait_timeout(Duration::from_millis(30)));
        assert!(t0.elapsed() >= Duration::from_millis(30));
        std::thread::scope(|s| {
            let h = s.spawn(|| e.wait_timeout(Duration::from_secs(10)));
            std::thread::sleep(Duration::from_millis(20));
            e.set();
            assert!(h.join().unwrap());
        });
        e.clear();
        assert!(!e.wait_timeout(Duration::ZERO));
    }
}
