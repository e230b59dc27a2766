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
    /// Bit 0: the flag (1 set). Bits 1..: a generation, bumped by every `set` that sets the
    /// flag, so that a waiter woken by a set returns true even if the flag was cleared before
    /// it looked. The futex word waiters sleep on.
    word: AtomicU32,
    /// Waiters asleep on `flag`.
    waiters: AtomicU32,
}

/// The flag bit of [`EventCell::word`].
const FLAG: u32 = 1;
/// One generation in [`EventCell::word`].
const GEN: u32 = 2;

// SAFETY: `#[repr(C)]` atomics, mutated only through atomics and shared futexes; no pointers,
// no `Drop`.
unsafe impl ShmSafe for EventCell {}

/// A flag shared between processes: `set` wakes every waiter, `clear` resets it, `wait` blocks
/// until it is set.
///
/// A waiter returns true once the event was set after it began waiting, even if it was cleared
/// again before the waiter ran (a set-then-clear pulse wakes everyone, as in Python).
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
            EventCell { word: AtomicU32::new(0), waiters: AtomicU32::new(0) },
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
        // Clear -> set, one generation on (`| FLAG` then `+ GEN`); already set: no change.
        let was_clear = self
            .cell
            .word
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
                (w & FLAG == 0).then(|| (w | FLAG).wrapping_add(GEN))
            })
            .is_ok();
        if was_clear && self.cell.waiters.load(Ordering::SeqCst) > 0 {
            futex::wake_all(&self.cell.word);
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
        self.cell.word.fetch_and(!FLAG, Ordering::SeqCst);
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// assert!(!shmpool::Event::new()?.is_set());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_set(&self) -> bool {
        self.cell.word.load(Ordering::Acquire) & FLAG != 0
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
        self.wait_until(Deadline::NEVER);
    }

    /// Waits at most `timeout` for the flag; returns true if it is set or was set while waiting
    /// (even if cleared since), false if the time ran out (Python's `wait(timeout)`).
    ///
    /// ```
    /// let e = shmpool::Event::new()?;
    /// assert!(!e.wait_timeout(std::time::Duration::from_millis(5)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Deadline::after(Some(timeout)))
    }

    /// Waits until the flag is set, or a `set` happened since the call began (the generation
    /// moved on), or the deadline passed (false).
    fn wait_until(&self, deadline: Deadline) -> bool {
        let start = self.cell.word.load(Ordering::SeqCst);
        if start & FLAG != 0 {
            return true;
        }
        wait::wait_for(&self.cell.word, Some(&self.cell.waiters), deadline, |v| {
            v & FLAG != 0 || v >> 1 != start >> 1
        })
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

    #[test]
    fn a_set_then_clear_pulse_wakes_a_sleeping_waiter() {
        let e = Event::new().unwrap();
        std::thread::scope(|s| {
            let h = s.spawn(|| e.wait_timeout(Duration::from_secs(5)));
            while e.cell.waiters.load(Ordering::SeqCst) == 0 {
                std::thread::yield_now(); // until it sleeps in the kernel, its start recorded
            }
            e.set();
            e.clear();
            assert!(h.join().unwrap(), "the waiter missed the pulse");
        });
        assert!(!e.is_set());
        // A pulse before a wait began is not seen by it.
        assert!(!e.wait_timeout(Duration::from_millis(5)));
        e.set();
        e.set(); // already set: no new generation, still set
        assert!(e.is_set() && e.wait_timeout(Duration::ZERO));
    }
}
