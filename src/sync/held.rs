//! How many lock guards that hand out `&mut` to shared data exist in this process, so that a
//! fork can be refused while one does: the child would get a copy of the guard (or of a `&mut`
//! taken from it, kept in a `static` or a thread-local) and write while the parent does.
//!
//! A counted guard carries a [`Held`] token: made when the guard is, dropped with it. A guard
//! that is never dropped (`mem::forget`, `Box::leak`) keeps the count up for good, which is the
//! point: a `&'static mut` taken from it may live anywhere.
//!
//! The count is kept per thread, so that locking costs a plain load and store on a cache line
//! of the thread's own rather than a locked read-modify-write (two of those cost 4 ns on a lock
//! that takes 12): each thread that makes a guard claims one of [`SLOTS`] slots (threads past
//! that many share [`SHARED`], with atomic adds), and gives it back when it exits, moving what
//! is left in it (guards it leaked) to [`SHARED`], where it stays. [`held`] sums them all.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::sys::proc::getpid;

/// One thread's count. A cache line each, so threads do not slow each other down.
#[repr(align(64))]
struct Slot {
    /// Guards of the thread that claimed the slot; only that thread writes it.
    count: AtomicUsize,
    /// Whether a live thread owns the slot.
    taken: AtomicBool,
}

/// Enough for the threads of any program that locks from many at once; more share [`SHARED`].
const SLOTS: usize = 128;

static SLOT: [Slot; SLOTS] =
    [const { Slot { count: AtomicUsize::new(0), taken: AtomicBool::new(false) } }; SLOTS];

/// Guards of threads without a slot (too many threads, or a thread whose slot was given back
/// as it exited), and those leaked by exited threads.
static SHARED: AtomicUsize = AtomicUsize::new(0);

/// A thread's claim on a slot (`None`: it counts in [`SHARED`]).
struct Claim(Option<&'static Slot>);

impl Claim {
    fn new() -> Claim {
        Claim(SLOT.iter().find(|s| {
            !s.taken.load(Ordering::Relaxed)
                && s.taken
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
        }))
    }
}

impl Drop for Claim {
    /// The thread is exiting: what its slot still counts (leaked guards, or guards that other
    /// thread-local destructors will drop later) moves to [`SHARED`], before the slot reads 0,
    /// so that a concurrent [`held`] may count them twice but never miss them.
    fn drop(&mut self) {
        if let Some(slot) = self.0 {
            let left = slot.count.load(Ordering::Relaxed);
            if left != 0 {
                SHARED.fetch_add(left, Ordering::SeqCst);
            }
            slot.count.store(0, Ordering::SeqCst);
            slot.taken.store(false, Ordering::Release);
        }
    }
}

thread_local! {
    static MINE: Claim = Claim::new();
}

#[inline]
fn add(up: bool) {
    let counted = MINE.try_with(|c| match c.0 {
        Some(slot) => {
            let n = slot.count.load(Ordering::Relaxed);
            slot.count.store(if up { n + 1 } else { n.saturating_sub(1) }, Ordering::Relaxed);
        }
        None => shared_add(up),
    });
    if counted.is_err() {
        // This thread's claim is gone already (a guard made or dropped by another
        // thread-local's destructor): its count went to SHARED.
        shared_add(up);
    }
}

#[cold]
fn shared_add(up: bool) {
    if up {
        SHARED.fetch_add(1, Ordering::SeqCst);
    } else {
        SHARED.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How many lock guards that hand out `&mut` to shared data ([`MutexGuard`](crate::sync::MutexGuard),
/// of a [`Mutex`](crate::Mutex) or a [`SharedValue`](crate::SharedValue)) exist in this process,
/// on any thread, counting for good those leaked with `mem::forget` or `Box::leak` (also by
/// threads that have exited). A fork must be refused while it is not zero: the child would get a
/// copy of the guard, or of a `&'static mut` kept from one, and write while the parent does
/// (`process::fork::start` refuses; the fork handlers of `segment::forkmap` seal instead).
///
/// Counted: made and not yet dropped, on any thread, including those leaked by threads that have
/// exited. It lives here, below the segment layer, because `segment::forkmap` reads it.
pub(crate) fn held_guards() -> usize {
    // Slots first, then SHARED: an exiting thread adds to SHARED before zeroing its slot, so a
    // slot read as 0 here means its guards are in the SHARED read below.
    let in_slots: usize = SLOT.iter().map(|s| s.count.load(Ordering::SeqCst)).sum();
    in_slots + SHARED.load(Ordering::SeqCst)
}

/// The token a counted guard carries: counts the guard from its making to its drop, and
/// remembers which process made it, so that a copy in a forked child (made by a fork outside
/// shmpool, which cannot refuse) is recognised and refused.
pub(crate) struct Held {
    pid: u32,
    /// Not `Send`: the count is the making thread's (and so is the lock).
    _not_send: PhantomData<*const ()>,
}

impl Held {
    /// Counts a new guard. Call once the lock is held.
    #[inline]
    pub(crate) fn new() -> Held {
        add(true);
        Held { pid: getpid(), _not_send: PhantomData }
    }

    /// Whether the guard was made in this process (and so holds its lock).
    #[inline]
    pub(crate) fn here(&self) -> bool {
        self.pid == getpid()
    }

    /// Panics unless the guard was made in this process: a copy that a fork made outside
    /// shmpool left in the child holds no lock there, and must not reach the data.
    #[inline]
    pub(crate) fn check(&self, what: &'static str) {
        if !self.here() {
            foreign(what, self.pid);
        }
    }
}

#[cold]
#[inline(never)]
fn foreign(what: &'static str, made_in: u32) -> ! {
    panic!(
        "a guard of a {what} made in process {made_in} was used in process {}: it is a copy a \
         fork made outside shmpool (libc::fork, say) left in the child, and holds no lock here; \
         lock the {what} again in this process instead",
        getpid()
    )
}

impl Drop for Held {
    #[inline]
    fn drop(&mut self) {
        add(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Other tests in this binary make guards on their own threads at the same time, so these
    // check this thread's own slot rather than the process-wide sum.
    fn mine() -> Option<usize> {
        MINE.with(|c| c.0.map(|s| s.count.load(Ordering::Relaxed)))
    }

    #[test]
    fn a_guard_counts_until_dropped_and_a_forgotten_one_for_good() {
        let before = mine();
        let a = Held::new();
        let b = Held::new();
        assert_eq!(mine(), before.map(|n| n + 2));
        assert!(held_guards() >= 2);
        drop(a);
        assert_eq!(mine(), before.map(|n| n + 1));
        std::mem::forget(b);
        assert_eq!(mine(), before.map(|n| n + 1), "a forgotten guard stays counted");
    }

    #[test]
    fn an_exiting_thread_hands_its_leaked_guards_to_the_shared_count() {
        let shared = SHARED.load(Ordering::SeqCst);
        std::thread::spawn(|| {
            std::mem::forget(Held::new());
            drop(Held::new());
        })
        .join()
        .unwrap();
        assert!(SHARED.load(Ordering::SeqCst) > shared, "the leaked guard left with the thread");
        let t = std::thread::spawn(|| {
            let g = Held::new();
            assert!(g.here());
            g.check("mutex");
        });
        t.join().unwrap();
    }
}
