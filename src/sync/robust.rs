//! `RobustMutex`: the robust pthread mutex every shmpool lock is built on, with a short spin
//! before the blocking call (glibc's adaptive mutexes cannot be robust, so the spin is ours),
//! and a record of which process holds it, so that a holder *thread* that died while its
//! process lives on (it leaked its guard) is not mistaken for a dead holder.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::wait;
use crate::sys::peer;
use crate::sys::pthread::{LockStatus, MutexType, PthreadMutex, monotonic_deadline};

/// How long an owner-died outcome waits for a holder process that still looks alive to finish
/// dying: the kernel wakes the next locker as it walks the dying thread's robust list, which
/// comes before the process has torn down its memory and become a zombie.
const HOLDER_EXIT_GRACE: Duration = Duration::from_secs(2);

/// How long a lock call may wait.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// Not at all (`try_lock`).
    Try,
    /// Until the lock is acquired.
    Block,
    /// At most this long.
    Timeout(Duration),
}

/// A successful acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// The previous holder released it normally.
    Clean,
    /// The previous holder died holding it: the caller holds it now, and must make it
    /// consistent before releasing it, or it becomes unusable.
    OwnerDied,
}

/// Why a lock call did not acquire.
#[derive(Debug)]
pub(crate) enum Failed {
    NotRecoverable,
    WouldBlock,
    Timeout(Duration),
    WouldDeadlock,
    Io(io::Error),
}

/// A robust, process-shared mutex, to be placed in shared memory and initialised in place.
///
/// `holder` and `depth` are written only by the thread that holds `m` (plain atomic loads and
/// stores inside the critical section), so they cost no read-modify-write.
#[repr(C)]
pub(crate) struct RobustMutex {
    m: PthreadMutex,
    /// The `sys::peer` token (pid and start time) of the process whose thread holds `m`; 0 when
    /// free, or when the holder died between acquiring and recording (before any guard).
    holder: AtomicU64,
    /// How many times the holding thread acquired `m` (above 1 only for a recursive mutex).
    depth: AtomicU32,
}

impl RobustMutex {
    /// Initialises the mutex at `this`.
    ///
    /// # Safety
    ///
    /// As for [`PthreadMutex::init`]: `this` is writable, aligned, unused, never moves, and stays
    /// mapped while any thread holds it (a cell holding one reports
    /// [`held_in_this_process`](RobustMutex::held_in_this_process) from `ShmSafe::keep_mapped`).
    pub(crate) unsafe fn init(this: *mut RobustMutex, ty: MutexType) -> io::Result<()> {
        // SAFETY: forwarded from the caller, who makes `this` valid for writes and aligned.
        unsafe {
            (&raw mut (*this).holder).write(AtomicU64::new(0));
            (&raw mut (*this).depth).write(AtomicU32::new(0));
            PthreadMutex::init(&raw mut (*this).m, ty)
        }
    }

    /// Acquires the mutex: one attempt, then (unless `Wait::Try`) a short spin that watches the
    /// lock word and only tries when it looks free, then the blocking call.
    ///
    /// [`Acquired::OwnerDied`] only when the recorded holder process is gone: if it is this
    /// process, or another that still runs, a thread of it exited with the lock held, which
    /// safe code does only by leaking its guard, and a `&mut` taken from that guard may still
    /// be in use. Handing out a second guard would alias it, so the mutex is released without
    /// being made consistent (not recoverable from then on, for every process, as a leaked
    /// `std::sync::MutexGuard` leaves a std mutex locked forever) and the call fails with
    /// [`Failed::NotRecoverable`]. A holder process that looks alive is given
    /// [`HOLDER_EXIT_GRACE`] to finish dying first, so this can take that long.
    pub(crate) fn acquire(&self, how: Wait) -> Result<Acquired, Failed> {
        // Before the lock: the first call in a process reads /proc.
        let me = peer::me();
        let got = self.take(how);
        match got {
            Ok(Acquired::Clean) => {
                let depth = self.depth.load(Ordering::Relaxed);
                if depth == 0 {
                    self.holder.store(me, Ordering::Relaxed);
                }
                self.depth.store(depth + 1, Ordering::Relaxed);
                got
            }
            Ok(Acquired::OwnerDied) => {
                let was = self.holder.load(Ordering::Relaxed);
                if was != 0 && holder_may_still_write(was, me) {
                    self.depth.store(0, Ordering::Relaxed);
                    self.holder.store(0, Ordering::Relaxed);
                    // Unlocked without `consistent`: not recoverable for every later locker.
                    let _ = self.m.unlock();
                    return Err(Failed::NotRecoverable);
                }
                // glibc hands the owner-died mutex over with a count of 1, whatever the dead
                // holder's was.
                self.holder.store(me, Ordering::Relaxed);
                self.depth.store(1, Ordering::Relaxed);
                got
            }
            Err(_) => got,
        }
    }

    fn take(&self, how: Wait) -> Result<Acquired, Failed> {
        let deadline = match how {
            Wait::Timeout(d) => Some((d, monotonic_deadline(d))),
            _ => None,
        };
        match self.m.try_lock() {
            LockStatus::Busy => {}
            other => return outcome(other, Duration::ZERO),
        }
        if matches!(how, Wait::Try) {
            return Err(Failed::WouldBlock);
        }
        let spun = wait::spin(|| {
            if self.m.looks_locked() {
                return None;
            }
            match self.m.try_lock() {
                LockStatus::Busy => None,
                other => Some(other),
            }
        });
        if let Some(st) = spun {
            return outcome(st, Duration::ZERO);
        }
        match deadline {
            None => outcome(self.m.lock(), Duration::ZERO),
            Some((d, ts)) => outcome(self.m.lock_until(&ts), d),
        }
    }

    /// Releases one acquisition. Only the thread that holds the mutex may call it (guards check
    /// that they were made in this process; being `!Send`, they drop on their own thread).
    pub(crate) fn release(&self) {
        let depth = self.depth.load(Ordering::Relaxed);
        if depth <= 1 {
            self.depth.store(0, Ordering::Relaxed);
            self.holder.store(0, Ordering::Relaxed);
        } else {
            self.depth.store(depth - 1, Ordering::Relaxed);
        }
        let _ = self.m.unlock();
    }

    /// Whether a thread of this process holds the mutex, so that its memory must stay mapped
    /// (it is linked into that thread's robust list): what lock cells answer from
    /// [`ShmSafe::keep_mapped`](crate::segment::object::ShmSafe::keep_mapped).
    pub(crate) fn held_in_this_process(&self) -> bool {
        self.m.held_in_this_process()
    }

    /// The recorded holder's token (0: none).
    #[cfg(test)]
    pub(crate) fn holder_token(&self) -> u64 {
        self.holder.load(Ordering::Relaxed)
    }

    /// Marks a mutex acquired with [`Acquired::OwnerDied`] consistent, so that releasing it
    /// leaves it usable.
    pub(crate) fn make_consistent(&self) {
        let _ = self.m.consistent();
    }
}

/// Whether the process whose thread died holding a lock (token `was`) may still be using the
/// guard's data: it is this process, or one that is still alive after [`HOLDER_EXIT_GRACE`].
fn holder_may_still_write(was: u64, me: u64) -> bool {
    if was == me {
        return true;
    }
    let start = Instant::now();
    let mut nap = Duration::from_micros(50);
    while peer::alive(was) {
        if start.elapsed() >= HOLDER_EXIT_GRACE {
            return true;
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
    false
}

fn outcome(st: LockStatus, timeout: Duration) -> Result<Acquired, Failed> {
    match st {
        LockStatus::Acquired => Ok(Acquired::Clean),
        LockStatus::OwnerDied => Ok(Acquired::OwnerDied),
        LockStatus::NotRecoverable => Err(Failed::NotRecoverable),
        LockStatus::Busy => Err(Failed::WouldBlock),
        LockStatus::TimedOut => Err(Failed::Timeout(timeout)),
        LockStatus::Deadlock => Err(Failed::WouldDeadlock),
        LockStatus::Other(e) => Err(Failed::Io(e)),
    }
}
