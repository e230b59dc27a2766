//! `RobustMutex`: the robust pthread mutex every shmpool lock is built on, with a short spin
//! before the blocking call (glibc's adaptive mutexes cannot be robust, so the spin is ours).

use std::io;
use std::time::Duration;

use super::wait;
use crate::sys::pthread::{LockStatus, MutexType, PthreadMutex, monotonic_deadline};

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
#[repr(C)]
pub(crate) struct RobustMutex {
    m: PthreadMutex,
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
        // SAFETY: forwarded from the caller; `m` is the only field, so its address is `this`'s.
        unsafe { PthreadMutex::init(&raw mut (*this).m, ty) }
    }

    /// Acquires the mutex: one attempt, then (unless `Wait::Try`) a short spin that watches the
    /// lock word and only tries when it looks free, then the blocking call.
    pub(crate) fn acquire(&self, how: Wait) -> Result<Acquired, Failed> {
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

    /// Releases the mutex; does nothing if the calling thread does not hold it.
    pub(crate) fn release(&self) {
        let _ = self.m.unlock();
    }

    /// Whether a thread of this process holds the mutex, so that its memory must stay mapped
    /// (it is linked into that thread's robust list): what lock cells answer from
    /// [`ShmSafe::keep_mapped`](crate::segment::object::ShmSafe::keep_mapped).
    pub(crate) fn held_in_this_process(&self) -> bool {
        self.m.held_in_this_process()
    }

    /// Marks a mutex acquired with [`Acquired::OwnerDied`] consistent, so that releasing it
    /// leaves it usable.
    pub(crate) fn make_consistent(&self) {
        let _ = self.m.consistent();
    }
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
