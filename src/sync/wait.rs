//! How every shmpool primitive waits: spin briefly (a peer on another core usually answers
//! within a microsecond or two, a futex round trip costs about 11 us), then sleep on a shared
//! futex until a deadline.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::sys::futex;

/// Spin rounds before sleeping; round `i` pauses `2^min(i, MAX_SHIFT)` times, a few
/// microseconds in all.
const SPIN_ROUNDS: u32 = 24;
const MAX_SHIFT: u32 = 5;

/// Calls `attempt` until it returns `Some`, pausing a little longer each time, for a few
/// microseconds at most. `None` if it never succeeded.
pub(crate) fn spin<R>(mut attempt: impl FnMut() -> Option<R>) -> Option<R> {
    for i in 0..SPIN_ROUNDS {
        if let Some(r) = attempt() {
            return Some(r);
        }
        for _ in 0..(1u32 << i.min(MAX_SHIFT)) {
            std::hint::spin_loop();
        }
    }
    attempt()
}

/// The instant `timeout` from now, or `None` (no deadline: wait as the untimed form does) when
/// it lies past the clock's range, as `Duration::MAX` does. Every `*_timeout` computes its
/// deadline here: `Instant::now() + timeout` panics on such a timeout.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// When a wait must give up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(Option<Instant>);

/// How long a wait may still sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Left {
    /// No deadline.
    Forever,
    /// This much longer.
    For(Duration),
    /// The deadline has passed.
    Expired,
}

impl Deadline {
    /// Never gives up.
    pub(crate) const NEVER: Deadline = Deadline(None);

    /// `timeout` from now (`None`: never). A timeout too large to represent means never.
    pub(crate) fn after(timeout: Option<Duration>) -> Deadline {
        Deadline(timeout.and_then(deadline_after))
    }

    /// How long is left.
    pub(crate) fn left(&self) -> Left {
        match self.0 {
            None => Left::Forever,
            Some(end) => match end.checked_duration_since(Instant::now()) {
                Some(d) if !d.is_zero() => Left::For(d),
                _ => Left::Expired,
            },
        }
    }
}

/// Waits until `done(word)` holds: spins first, then sleeps on the shared futex `word`. While
/// asleep it is counted in `waiters`, so wakers can skip the wake syscall when nobody sleeps
/// (a waker must change `word`, then read `waiters`, both `SeqCst`).
///
/// Returns false if the deadline passed first.
pub(crate) fn wait_for(
    word: &AtomicU32,
    waiters: Option<&AtomicU32>,
    deadline: Deadline,
    mut done: impl FnMut(u32) -> bool,
) -> bool {
    if spin(|| done(word.load(Ordering::Acquire)).then_some(())).is_some() {
        return true;
    }
    loop {
        let v = word.load(Ordering::SeqCst);
        if done(v) {
            return true;
        }
        let timeout = match deadline.left() {
            Left::Expired => return false,
            Left::Forever => None,
            Left::For(d) => Some(d),
        };
        if let Some(w) = waiters {
            w.fetch_add(1, Ordering::SeqCst);
        }
        // The kernel compares `word` with `v` atomically with going to sleep, after the waiter
        // count went up: a waker that changed `word` before reading the count either sees us
        // counted and wakes us, or changed `word` early enough that the comparison fails.
        futex::wait(word, v, timeout);
        if let Some(w) = waiters {
            w.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_expire_and_never_does_not() {
        assert_eq!(Deadline::NEVER.left(), Left::Forever);
        assert_eq!(Deadline::after(None).left(), Left::Forever);
        assert_eq!(Deadline::after(Some(Duration::ZERO)).left(), Left::Expired);
        assert!(matches!(Deadline::after(Some(Duration::from_secs(60))).left(), Left::For(_)));
        assert_eq!(Deadline::after(Some(Duration::MAX)).left(), Left::Forever);
    }

    #[test]
    fn wait_for_times_out_and_sees_a_ready_word() {
        let w = AtomicU32::new(0);
        let t0 = Instant::now();
        assert!(!wait_for(&w, None, Deadline::after(Some(Duration::from_millis(20))), |v| v != 0));
        assert!(t0.elapsed() >= Duration::from_millis(20));
        w.store(1, Ordering::SeqCst);
        assert!(wait_for(&w, None, Deadline::NEVER, |v| v != 0));
    }
}
