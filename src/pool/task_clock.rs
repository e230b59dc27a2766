//! The task clock: how a worker tells the parent when the task it runs started, so the parent
//! can kill a worker whose task runs past the pool's task timeout
//! (`PoolBuilder::task_timeout`). Only jobs published with a timeout
//! ([`JobDesc::timed`](super::control::JobDesc::timed)) pay for it: one clock read and three
//! stores per task.
//!
//! The worker stamps its slot's `task_started` (`CLOCK_MONOTONIC`, one clock for every process
//! on the machine) and the task's indices before the task, and clears the stamp after it; the
//! parent reads them while it waits (`failure.rs`).

use std::sync::atomic::AtomicPtr;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::Duration;

use super::control::WorkerSlot;

/// This worker's slot while it runs a chunk of a timed job; null otherwise (and always in the
/// parent).
static WATCHED: AtomicPtr<WorkerSlot> = AtomicPtr::new(std::ptr::null_mut());

/// `CLOCK_MONOTONIC` now, in nanoseconds (never 0: 0 means "no task").
pub(crate) fn now_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid out-pointer for the call; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64).max(1)
}

/// Makes the tasks run from now on stamp `slot` (`None`: stamp nothing). The worker calls this
/// around each chunk; `slot` lives in the control block, which the worker keeps mapped until it
/// exits.
pub(crate) fn watch(slot: Option<&WorkerSlot>) {
    let p = slot.map_or(std::ptr::null_mut(), |s| std::ptr::from_ref(s).cast_mut());
    WATCHED.store(p, Relaxed);
}

/// Calls `task(i)` for every `i` in `range` (task indices in the job; `first` more in the whole
/// call), stamping each task's start when this chunk is watched. The check is made once per
/// chunk, so an untimed job runs the plain loop it ran before timeouts existed (no atomic load
/// per task in the way of the compiler on tiny `Pod` tasks).
pub(crate) fn each_task(range: std::ops::Range<usize>, first: usize, mut task: impl FnMut(usize)) {
    let p = WATCHED.load(Relaxed);
    if p.is_null() {
        return range.for_each(task);
    }
    // SAFETY: `watch` stored a pointer to a slot of the control block, which stays mapped for
    // the rest of this process's life (see `watch`).
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
    if started == 0 || now.saturating_sub(started) < timeout.as_nanos() as u64 {
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
