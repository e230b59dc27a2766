//! The task clock: how a worker tells the parent when the task it runs started, so the parent
//! can kill a worker whose task runs past the pool's task timeout
//! (`PoolBuilder::task_timeout`). Only jobs published with a timeout
//! ([`JobDesc::timed`](super::control::JobDesc::timed)) pay for it: one clock read and three
//! stores per task.
//!
//! The worker stamps its slot's `task_started` (`CLOCK_MONOTONIC`, one clock for every process
//! on the machine) and the task's indices before the task, and clears the stamp after it; the
//! parent reads them while it waits (`failure.rs`).

use std::cell::Cell;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use super::control::WorkerSlot;

thread_local! {
    /// This worker's slot while its thread runs a chunk of a timed job; null otherwise (and
    /// always in the parent). Per thread: the chunk and its tasks run on the thread that watches.
    static WATCHED: Cell<*const WorkerSlot> = const { Cell::new(std::ptr::null()) };
}

/// `CLOCK_MONOTONIC` now, in nanoseconds (never 0: 0 means "no task").
pub(crate) fn now_ns() -> u64 {
    crate::sys::clock::monotonic_ns().max(1)
}

/// Makes the tasks this thread runs from now on stamp `slot` (`None`: stamp nothing). The
/// worker calls this around each chunk of a timed job; `slot` is its slot in the control block.
///
/// # Safety
///
/// `slot` stays valid until this thread calls `watch(None)` (or ends): [`each_task`] reads it.
pub(crate) unsafe fn watch(slot: Option<&WorkerSlot>) {
    WATCHED.set(slot.map_or(std::ptr::null(), std::ptr::from_ref));
}

/// Calls `task(i)` for every `i` in `range` (task indices in the job; `first` more in the whole
/// call), stamping each task's start when this chunk is watched. The check is made once per
/// chunk, so an untimed job runs the plain loop it ran before timeouts existed (no thread-local
/// read per task in the way of the compiler on tiny `Pod` tasks).
pub(crate) fn each_task(range: std::ops::Range<usize>, first: usize, mut task: impl FnMut(usize)) {
    let p = WATCHED.get();
    if p.is_null() {
        return range.for_each(task);
    }
    // SAFETY: `watch` stored a pointer to a slot that stays valid until `watch(None)` (its
    // contract), and this thread has not called that since.
    let s: &WorkerSlot = unsafe { &*p };
    for i in range {
        s.task.store(i as u64, SeqCst);
        s.task_in_call.store(first.wrapping_add(i) as u64, SeqCst);
        s.task_started.store(now_ns(), SeqCst);
        let _clear = Cleared(s);
        task(i);
    }
}

/// Clears a slot's stamp when dropped: after the task, also when it panics.
struct Cleared<'a>(&'a WorkerSlot);

impl Drop for Cleared<'_> {
    fn drop(&mut self) {
        self.0.task_started.store(0, SeqCst);
    }
}

/// The task `slot`'s worker runs, as (index in the job, index in the call), if it has run for
/// at least `timeout` by `now` (a [`now_ns`] reading).
pub(crate) fn overdue(slot: &WorkerSlot, timeout: Duration, now: u64) -> Option<(u64, u64)> {
    let started = slot.task_started.load(SeqCst);
    // A timeout past `u64` nanoseconds (584 years) never expires: cut with `as`, 2^63 s read
    // as zero.
    let limit = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    if started == 0 || now.saturating_sub(started) < limit {
        return None;
    }
    let (task, in_call) = (slot.task.load(SeqCst), slot.task_in_call.load(SeqCst));
    // The same stamp after reading the indices: they belong to the task that started then.
    (slot.task_started.load(SeqCst) == started).then_some((task, in_call))
}

/// How long until the task `slot`'s worker runs reaches `timeout` (`None`: it runs none).
pub(crate) fn time_left(slot: &WorkerSlot, timeout: Duration, now: u64) -> Option<Duration> {
    let started = slot.task_started.load(SeqCst);
    (started != 0).then(|| {
        let ran = Duration::from_nanos(now.saturating_sub(started));
        timeout.saturating_sub(ran)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_tasks_are_stamped_with_their_indices_and_cleared_after() {
        // SAFETY: a `WorkerSlot` is atomics only; all zero is a valid (idle) slot.
        let slot: WorkerSlot = unsafe { std::mem::zeroed() };
        let mut seen = Vec::new();
        each_task(0..3, 10, |i| seen.push((i, overdue(&slot, Duration::ZERO, now_ns()))));
        assert_eq!(seen, [(0, None), (1, None), (2, None)], "an unwatched chunk is not stamped");
        // SAFETY: `slot` outlives the `watch(None)` below.
        unsafe { watch(Some(&slot)) };
        let mut seen = Vec::new();
        each_task(4..6, 10, |i| {
            let now = now_ns();
            seen.push((overdue(&slot, Duration::ZERO, now), overdue(&slot, Duration::MAX, now)));
            assert!(
                time_left(&slot, Duration::from_secs(1), now).is_some_and(|d| d > Duration::ZERO)
            );
            let _ = i;
        });
        // SAFETY: clearing is always sound.
        unsafe { watch(None) };
        assert_eq!(seen, [(Some((4, 14)), None), (Some((5, 15)), None)]);
        assert_eq!(slot.task_started.load(SeqCst), 0, "the stamp is cleared after the task");
        assert_eq!(time_left(&slot, Duration::from_secs(1), now_ns()), None);
    }

    #[test]
    fn a_timeout_past_u64_nanoseconds_never_expires() {
        // SAFETY: a `WorkerSlot` is atomics only; all zero is a valid (idle) slot.
        let slot: WorkerSlot = unsafe { std::mem::zeroed() };
        // 2^63 s is 2^63 * 10^9 ns, a multiple of 2^64: cut to `u64` it read as zero, and a
        // call asking for "practically forever" killed every task at once.
        let forever = [Duration::from_secs(1 << 63), Duration::from_secs(18_446_744_074)];
        slot.task_started.store(now_ns(), SeqCst);
        std::thread::sleep(Duration::from_millis(1));
        for d in forever {
            assert_eq!(overdue(&slot, d, now_ns()), None, "{d:?}");
        }
        assert!(overdue(&slot, Duration::from_micros(1), now_ns()).is_some());
    }
}
