//! Robust, process-shared pthread mutexes, and the monotonic clock their timed locks use.
//!
//! A [`PthreadMutex`] lives in shared memory and is initialised in place with
//! `PTHREAD_PROCESS_SHARED` and `PTHREAD_MUTEX_ROBUST`: when the thread holding it dies (its
//! process killed, say), the kernel walks the dead thread's robust list, marks the lock word
//! `FUTEX_OWNER_DIED` and wakes a waiter, so the next locker gets `EOWNERDEAD` at once.
//! glibc re-registers the robust list in a child after `fork`, so forked children are covered.
//!
//! Every method is safe: a `PthreadMutex` can only be made by [`PthreadMutex::init`], and a
//! robust mutex checks ownership itself (unlocking one you do not hold returns `EPERM` and does
//! nothing), so no call here can corrupt it.

use std::cell::UnsafeCell;
use std::io;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

unsafe extern "C" {
    /// glibc >= 2.30. `libc` does not declare it yet.
    fn pthread_mutex_clocklock(
        mutex: *mut libc::pthread_mutex_t,
        clockid: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// The type of a mutex: whether the holding thread may lock it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MutexType {
    /// Locking it again from the holding thread fails with `EDEADLK` instead of hanging.
    ErrorCheck,
    /// The holding thread may lock it again; it is released after as many unlocks.
    Recursive,
}

/// What a lock attempt came to.
#[derive(Debug)]
pub(crate) enum LockStatus {
    /// The caller holds the mutex.
    Acquired,
    /// The caller holds the mutex, but its previous holder died while holding it (`EOWNERDEAD`).
    /// Call [`PthreadMutex::consistent`] before unlocking, or the mutex becomes unusable.
    OwnerDied,
    /// An earlier owner-died outcome was unlocked without being made consistent.
    NotRecoverable,
    /// `trylock`: another thread holds it.
    Busy,
    /// The deadline passed.
    TimedOut,
    /// The calling thread holds it already (error-checking mutex).
    Deadlock,
    /// Anything else (`EAGAIN`: too many recursive locks; `EINVAL`).
    Other(io::Error),
}

fn status(rc: libc::c_int) -> LockStatus {
    match rc {
        0 => LockStatus::Acquired,
        libc::EOWNERDEAD => LockStatus::OwnerDied,
        libc::ENOTRECOVERABLE => LockStatus::NotRecoverable,
        libc::EBUSY => LockStatus::Busy,
        libc::ETIMEDOUT => LockStatus::TimedOut,
        libc::EDEADLK => LockStatus::Deadlock,
        e => LockStatus::Other(io::Error::from_raw_os_error(e)),
    }
}

/// A robust, process-shared pthread mutex, to be placed in shared memory.
#[repr(transparent)]
pub(crate) struct PthreadMutex(UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: a process-shared pthread mutex is built to be used from many threads and processes at
// once; every access goes through pthread calls that synchronise internally.
unsafe impl Sync for PthreadMutex {}
// SAFETY: the mutex holds no thread-local state; which thread owns it is recorded inside it.
unsafe impl Send for PthreadMutex {}

/// Destroys an initialised attribute object on every path out of `init`.
struct Attr(MaybeUninit<libc::pthread_mutexattr_t>);

impl Attr {
    fn ptr(&mut self) -> *mut libc::pthread_mutexattr_t {
        self.0.as_mut_ptr()
    }
}

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: an `Attr` exists only after pthread_mutexattr_init succeeded on it.
        unsafe { libc::pthread_mutexattr_destroy(self.0.as_mut_ptr()) };
    }
}

/// The owner-tid bits of a robust futex lock word (the rest are `FUTEX_WAITERS` and
/// `FUTEX_OWNER_DIED`).
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(rc)) }
}

impl PthreadMutex {
    /// Initialises a robust, process-shared mutex of type `ty` at `this`.
    ///
    /// # Safety
    ///
    /// `this` must be valid for writes, aligned, and not in use by any thread or process (not
    /// initialised, or no longer used); the mutex must not move afterwards (it is linked into
    /// its holders' robust lists by address), and its memory must stay mapped while any thread
    /// holds it: a held robust mutex is linked into its holder's robust list *through its own
    /// memory*, so unmapping it lets glibc's next robust lock on that thread, and the kernel at
    /// that thread's exit, write through a dangling pointer into whatever is mapped there next
    /// ([`PthreadMutex::held_in_this_process`] tells when that is the case).
    pub(crate) unsafe fn init(this: *mut PthreadMutex, ty: MutexType) -> io::Result<()> {
        let mut raw = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: pthread_mutexattr_init initialises the attribute object it is given; nothing
        // reads it before that.
        check(unsafe { libc::pthread_mutexattr_init(raw.as_mut_ptr()) })?;
        let mut attr = Attr(raw);
        let kind = match ty {
            MutexType::ErrorCheck => libc::PTHREAD_MUTEX_ERRORCHECK,
            MutexType::Recursive => libc::PTHREAD_MUTEX_RECURSIVE,
        };
        // SAFETY: `attr` was initialised above and is exclusively ours (as for the next two).
        check(unsafe { libc::pthread_mutexattr_settype(attr.ptr(), kind) })?;
        // SAFETY: as above.
        check(unsafe {
            libc::pthread_mutexattr_setpshared(attr.ptr(), libc::PTHREAD_PROCESS_SHARED)
        })?;
        // SAFETY: as above.
        check(unsafe {
            libc::pthread_mutexattr_setrobust(attr.ptr(), libc::PTHREAD_MUTEX_ROBUST)
        })?;
        // SAFETY: the caller guarantees `this` is writable, aligned and unused; `attr` is a valid
        // initialised attribute object. `UnsafeCell::raw_get` makes no reference to the
        // uninitialised memory.
        check(unsafe {
            libc::pthread_mutex_init(UnsafeCell::raw_get(&raw const (*this).0), attr.ptr())
        })
    }

    fn raw(&self) -> *mut libc::pthread_mutex_t {
        self.0.get()
    }

    /// Blocks until the mutex is acquired (or fails).
    pub(crate) fn lock(&self) -> LockStatus {
        // SAFETY: `self` is an initialised mutex (the only way to make one is `init`).
        status(unsafe { libc::pthread_mutex_lock(self.raw()) })
    }

    /// Acquires the mutex if it is free, without blocking.
    pub(crate) fn try_lock(&self) -> LockStatus {
        // SAFETY: as in `lock`.
        let st = status(unsafe { libc::pthread_mutex_trylock(self.raw()) });
        if let LockStatus::NotRecoverable = st {
            self.undo_failed_trylock();
        }
        st
    }

    /// Works around a glibc bug (present in 2.36): `pthread_mutex_trylock` on a robust mutex in
    /// the not-recoverable state takes the lock word (compare-and-swap 0 -> our tid), sees the
    /// not-recoverable owner, and returns `ENOTRECOVERABLE` without giving the word back (its
    /// `if (oldval == id) lll_unlock` never fires, `oldval` being the swapped-out 0). The mutex
    /// then looks held by this thread forever. The mutex was not linked into our robust list
    /// (that happens after the check), so handing the word back is all there is to undo: put 0
    /// back and wake whoever queued meanwhile (they then see not-recoverable themselves).
    fn undo_failed_trylock(&self) {
        const FUTEX_WAITERS: u32 = 0x8000_0000;
        let tid = super::proc::gettid();
        let word = self.lock_word();
        if word.load(Ordering::SeqCst) & FUTEX_TID_MASK == tid
            && word.swap(0, Ordering::Release) & FUTEX_WAITERS != 0
        {
            super::futex::wake_all(word);
        }
    }

    /// glibc's lock word: `int __lock`, the first field of `struct __pthread_mutex_s` on every
    /// architecture (it is ABI), zero when free, else the holder's tid plus the
    /// `FUTEX_WAITERS`/`FUTEX_OWNER_DIED` bits; glibc and the kernel only access it atomically.
    fn lock_word(&self) -> &AtomicU32 {
        // SAFETY: see above; the pointer is aligned (the mutex is 8-byte aligned) and valid as
        // long as `self`.
        unsafe { &*self.raw().cast::<AtomicU32>() }
    }

    /// Blocks until the mutex is acquired or the monotonic clock reaches `deadline`.
    pub(crate) fn lock_until(&self, deadline: &libc::timespec) -> LockStatus {
        // SAFETY: as in `lock`; `deadline` is a valid timespec for the call's duration.
        status(unsafe { pthread_mutex_clocklock(self.raw(), libc::CLOCK_MONOTONIC, deadline) })
    }

    /// Releases the mutex. Returns `EPERM` if the calling thread does not hold it (and then
    /// changes nothing).
    pub(crate) fn unlock(&self) -> io::Result<()> {
        // SAFETY: as in `lock`; robust mutexes check that the caller owns them.
        check(unsafe { libc::pthread_mutex_unlock(self.raw()) })
    }

    /// Marks a mutex acquired with [`LockStatus::OwnerDied`] consistent again.
    pub(crate) fn consistent(&self) -> io::Result<()> {
        // SAFETY: as in `lock`; the call fails with EINVAL unless the caller holds the mutex in
        // the owner-died state.
        check(unsafe { libc::pthread_mutex_consistent(self.raw()) })
    }

    /// Whether the lock word names a thread of this process as the holder, so that the mutex is
    /// linked into that thread's robust list and its memory must stay mapped (see
    /// [`PthreadMutex::init`]). A mutex held by another process, or whose holder died, is not in
    /// any list of ours.
    pub(crate) fn held_in_this_process(&self) -> bool {
        let tid = self.lock_word().load(Ordering::SeqCst) & FUTEX_TID_MASK;
        tid != 0 && is_own_thread(tid)
    }

    /// Whether the lock word says someone holds the mutex, read without writing the cache
    /// line: spinners watch this, and only try to take the lock when it looks free.
    pub(crate) fn looks_locked(&self) -> bool {
        self.lock_word().load(Ordering::Relaxed) != 0
    }
}

/// Whether `tid` is a live thread of this process (`/proc/self/task/<tid>` exists). Errs towards
/// yes when it cannot tell (no `/proc`, or one from another PID namespace): callers use a yes to
/// keep memory mapped, and a needless leak is harmless where a wrong no is not.
pub(crate) fn is_own_thread(tid: u32) -> bool {
    if tid == super::proc::gettid() {
        return true;
    }
    match std::fs::symlink_metadata(format!("/proc/self/task/{tid}")) {
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::symlink_metadata("/proc/self/task").is_err()
        }
        Err(_) => true,
    }
}

/// The monotonic clock's reading `after` from now, as a deadline for [`PthreadMutex::lock_until`].
pub(crate) fn monotonic_deadline(after: Duration) -> libc::timespec {
    let now = super::clock::monotonic();
    let nanos = now.tv_nsec as u64 + u64::from(after.subsec_nanos());
    let secs =
        (now.tv_sec as u64).saturating_add(after.as_secs()).saturating_add(nanos / 1_000_000_000);
    libc::timespec {
        tv_sec: secs.min(i64::MAX as u64) as libc::time_t,
        tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_threads_are_recognised_and_other_processes_are_not() {
        let me = crate::sys::proc::gettid();
        assert!(is_own_thread(me));
        assert!(is_own_thread(std::process::id())); // the main thread
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            tx.send(crate::sys::proc::gettid()).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        assert!(tid != me && is_own_thread(tid), "a live thread of ours");
        drop(done_tx);
        other.join().unwrap();
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let alive = is_own_thread(child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!alive, "another process's pid is no thread of ours");
    }
}
