//! `Mutex<T>`: a robust lock and the value it protects, together in their own segment.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use bytemuck::Pod;

use super::held::Held;
use super::lock_error::{LockError, LockResult, OwnerDied};
use super::object_methods;
use super::robust::{RobustMutex, Wait};
use crate::error::{Error, Result};
use crate::segment::header::{Kind, TypeDesc};
use crate::segment::object::{ShmBox, ShmSafe};
use crate::segment::options::ShmOptions;
use crate::sys::pthread::MutexType;

/// The shared part of a [`Mutex`] or [`SharedValue`](crate::SharedValue): the robust lock, then
/// the value.
#[repr(C)]
pub(crate) struct MutexCell<T> {
    lock: RobustMutex,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is only reached through a `MutexGuard`, which exists only while the robust
// mutex is held, so one thread at a time (in any process) touches it; `T: Send` because the
// value moves between threads (and processes) with the lock.
unsafe impl<T: Pod + Send> Sync for MutexCell<T> {}
// SAFETY: `#[repr(C)]` process-shared pthread mutex + `Pod` value: no pointers other processes
// could not use, every mutation under the process-shared lock, no `Drop` needed; `keep_mapped` is
// true while a thread of ours holds the lock, the only time one links into the cell.
unsafe impl<T: Pod + Send> ShmSafe for MutexCell<T> {
    fn keep_mapped(&self) -> bool {
        self.lock.held_in_this_process()
    }
}

impl<T: Pod + Send> MutexCell<T> {
    /// A new segment of kind `kind` holding an initialised lock and `value`.
    pub(crate) fn create(kind: Kind, opts: &ShmOptions, value: T) -> Result<ShmBox<MutexCell<T>>> {
        // SAFETY: the closure initialises both fields of the zeroed, aligned, exclusively owned
        // cell at its final address (the pthread mutex must not move after init).
        unsafe {
            ShmBox::new_in_place(kind, opts, |p| {
                let p: *mut MutexCell<T> = p.as_ptr();
                RobustMutex::init(&raw mut (*p).lock, MutexType::ErrorCheck)
                    .map_err(Error::io("pthread_mutex_init"))?;
                UnsafeCell::raw_get(&raw const (*p).value).write(value);
                Ok(())
            })
        }
    }

    /// Locks, waiting as `how` says.
    #[inline(always)]
    pub(crate) fn lock(&self, how: Wait, owner: Owner) -> LockResult<MutexGuard<'_, T>> {
        LockError::lift(self.lock.acquire(how), owner.what(), || MutexGuard {
            cell: self,
            owner,
            held: Held::new(),
            _not_send: PhantomData,
        })
    }
}

/// Which type a [`MutexCell`] belongs to, for messages (one byte in the guard, not a `&str`:
/// a guard of 16 bytes keeps the lock call's result small).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A [`Mutex`].
    Mutex,
    /// A [`SharedValue`](crate::SharedValue).
    Value,
}

impl Owner {
    /// What the lock is called in messages.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Owner::Mutex => "mutex",
            Owner::Value => "locked value",
        }
    }
}

/// A value of type `T` behind a robust, process-shared lock, in its own segment.
///
/// Any process that has the mutex (inherited across `fork`, or opened by handle or name) locks
/// it to read or write the value. When a process dies while holding the lock, the next
/// locker gets [`LockError::OwnerDied`] at once (the kernel reports it; nothing polls), decides
/// whether the value is intact, and calls [`OwnerDied::recover`]; a locker that does not
/// recover leaves the lock [`NotRecoverable`](LockError::NotRecoverable).
///
/// A *thread* that exits holding the lock while its process lives on (it leaked its guard with
/// `mem::forget` or `Box::leak`, so a `&mut` into the value may still be in use) is not a dead
/// holder: the next locker gets [`LockError::NotRecoverable`], never a second guard, and the
/// lock stays unusable, as a leaked `std::sync::MutexGuard` leaves a std mutex locked forever.
///
/// The guard is not `Send`: a pthread mutex belongs to the thread that locked it. Locking it
/// twice from one thread fails with [`LockError::WouldDeadlock`] (use an
/// [`RLock`](crate::RLock) for reentrancy). While a guard exists in a process (a leaked one for
/// good), shmpool refuses to fork it ([`Error::ForkWhileLocked`]): the child would get a copy
/// of the guard, or of a `&mut` kept from it, and write while the parent does.
///
/// ```
/// use shmpool::Mutex;
///
/// let m = Mutex::new(0u64)?;
/// *m.lock()? += 5;
/// assert_eq!(*m.lock()?, 5);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct Mutex<T: Pod + Send> {
    cell: ShmBox<MutexCell<T>>,
}

impl<T: Pod + Send> Mutex<T> {
    /// An anonymous mutex holding `value`.
    ///
    /// ```
    /// let m = shmpool::Mutex::new([0u8; 16])?;
    /// assert_eq!(m.lock()?.len(), 16);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new(value: T) -> Result<Mutex<T>> {
        Self::new_with(value, &ShmOptions::new())
    }

    /// A mutex holding `value`, created as `opts` says (anonymous or named).
    ///
    /// ```
    /// use shmpool::{Mutex, ShmOptions};
    /// let m = Mutex::new_with(1.5f64, &ShmOptions::new().generated_name())?;
    /// assert!(m.name().is_some());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(value: T, opts: &ShmOptions) -> Result<Mutex<T>> {
        Ok(Mutex { cell: MutexCell::create(Kind::Mutex, opts, value)? })
    }

    object_methods!(
        Kind::Mutex,
        "mutex",
        "shmpool::Mutex::<u64>",
        "shmpool::Mutex::new_with(7u64, &opts)?"
    );

    /// Locks, waiting as long as it takes (spinning briefly, then sleeping in the kernel).
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] (the previous holder died: recover or not),
    /// [`LockError::NotRecoverable`], [`LockError::WouldDeadlock`] (this thread holds it),
    /// [`LockError::TooManyHeld`] (this thread holds 2048 robust locks already).
    ///
    /// ```
    /// let m = shmpool::Mutex::new(1u32)?;
    /// let mut g = m.lock()?;
    /// *g *= 10;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[inline]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.cell.lock(Wait::Block, Owner::Mutex)
    }

    /// Locks, waiting at most `timeout`; [`LockError::Timeout`] after that.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = shmpool::Mutex::new(1u32)?;
    /// assert_eq!(*m.lock_timeout(Duration::from_millis(10))?, 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[inline]
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<MutexGuard<'_, T>> {
        self.cell.lock(Wait::Timeout(timeout), Owner::Mutex)
    }

    /// Locks if nobody holds the lock; [`LockError::WouldBlock`] otherwise.
    ///
    /// ```
    /// let m = shmpool::Mutex::new(1u32)?;
    /// let g = m.try_lock()?;
    /// assert!(m.try_lock().is_err()); // held (by this very thread: WouldDeadlock)
    /// # drop(g);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[inline]
    pub fn try_lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.cell.lock(Wait::Try, Owner::Mutex)
    }
}

impl<T: Pod + Send> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("type", &TypeDesc::of::<T>().describe())
            .field("handle", &self.handle().to_string())
            .finish()
    }
}

/// Access to a [`Mutex`]'s (or [`SharedValue`](crate::SharedValue)'s) value while its lock is
/// held; dropping it unlocks. Not `Send`: the lock belongs to the thread that took it.
///
/// Every guard is counted while it exists, and shmpool's forks ([`scope`](crate::scope),
/// `Process`, pools) fail with [`Error::ForkWhileLocked`] while the count is not zero: drop
/// guards before forking. A guard leaked with `mem::forget` or `Box::leak` stays counted, so it
/// keeps this process from forking for good (its `&'static mut` could otherwise reach the
/// child). A copy of a guard that a fork made outside shmpool (`libc::fork`) left in a child
/// holds no lock there: using it (`Deref`, `DerefMut`, a [`Condition`](crate::Condition) wait)
/// panics, and dropping it does nothing.
///
/// ```
/// let m = shmpool::Mutex::new([1u32, 2])?;
/// let mut g = m.lock()?;
/// g[0] += g[1];
/// assert_eq!(*g, [3, 2]);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct MutexGuard<'a, T: Pod + Send> {
    pub(crate) cell: &'a MutexCell<T>,
    pub(crate) owner: Owner,
    /// Counts the guard (forks are refused while any exists) and knows its process.
    pub(crate) held: Held,
    _not_send: PhantomData<*const ()>,
}

impl<'a, T: Pod + Send> OwnerDied<MutexGuard<'a, T>> {
    /// Marks the lock consistent again and returns the guard: the caller vouches for the value
    /// (check it, repair it through the guard).
    ///
    /// An `OwnerDied` outcome exists only when the process that held the lock is gone, so no
    /// guard or `&mut` of the dead holder can still be in use: a thread that exited with the lock
    /// while its process lives on gives [`LockError::NotRecoverable`] instead (see [`Mutex`]).
    ///
    /// ```
    /// fn fix(od: shmpool::sync::OwnerDied<shmpool::sync::MutexGuard<'_, u64>>) {
    ///     let mut g = od.recover();
    ///     *g = 0; // start over
    /// }
    /// ```
    pub fn recover(self) -> MutexGuard<'a, T> {
        self.guard.cell.lock.make_consistent();
        self.guard
    }
}

impl<T: Pod + Send> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.held.check(self.owner.what());
        // SAFETY: a guard of this process (checked) exists only while its thread holds the robust
        // mutex, which excludes every other thread and process; the cell is initialised and
        // mapped for as long as the borrow of its owner lasts.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T: Pod + Send> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.held.check(self.owner.what());
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow through this guard.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T: Pod + Send> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // A copy left in a child by a fork made outside shmpool holds nothing here.
        if self.held.here() {
            self.cell.lock.release();
        }
    }
}

impl<T: Pod + Send + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MutexGuard").field(&**self).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_and_relocks() {
        let m = Mutex::new(41u64).unwrap();
        *m.lock().unwrap() += 1;
        assert_eq!(*m.try_lock().unwrap(), 42);
        assert_eq!(*m.lock_timeout(Duration::from_millis(5)).unwrap(), 42);
    }

    #[test]
    fn relocking_on_the_same_thread_is_an_error_not_a_hang() {
        let m = Mutex::new(0u32).unwrap();
        let _g = m.lock().unwrap();
        assert!(matches!(m.try_lock(), Err(LockError::WouldDeadlock)));
        assert!(matches!(m.lock(), Err(LockError::WouldDeadlock)));
        assert!(matches!(m.lock_timeout(Duration::from_millis(5)), Err(LockError::WouldDeadlock)));
    }

    #[test]
    fn another_thread_times_out_while_held() {
        let m = Mutex::new(0u32).unwrap();
        let g = m.lock().unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                let t0 = std::time::Instant::now();
                assert!(matches!(
                    m.lock_timeout(Duration::from_millis(30)),
                    Err(LockError::Timeout(_))
                ));
                assert!(t0.elapsed() >= Duration::from_millis(30));
                assert!(matches!(m.try_lock(), Err(LockError::WouldBlock)));
            });
        });
        drop(g);
    }

    #[test]
    fn threads_increment_exactly() {
        let m = Mutex::new(0u64).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..5000 {
                        *m.lock().unwrap() += 1;
                    }
                });
            }
        });
        assert_eq!(*m.lock().unwrap(), 20_000);
    }

    #[test]
    fn a_thread_that_exits_with_a_leaked_guard_never_lets_a_second_guard_out() {
        let m = Mutex::new(7u64).unwrap();
        // The thread leaks its guard and returns a `&mut` into the value, then exits: the robust
        // mutex reports its owner dead, but the `&mut` lives on in this process.
        let kept: &mut u64 = std::thread::scope(|s| {
            // join (pthread_join), not the scope's end: the scope returns when the closure is
            // done, before the kernel has processed the dying thread's robust list.
            s.spawn(|| &mut **Box::leak(Box::new(m.lock().unwrap()))).join().unwrap()
        });
        assert!(!m.cell.keep_mapped(), "a dead holder links into nothing of ours");
        let t0 = std::time::Instant::now();
        // Never OwnerDied (whose recover() would alias `kept`): not recoverable, on every path,
        // twice (glibc's trylock used to leave a not-recoverable mutex held), at once.
        for _ in 0..2 {
            let r = m.lock();
            assert!(matches!(r, Err(LockError::NotRecoverable)), "{:?}", r.map(|_| ()));
            assert!(matches!(m.try_lock(), Err(LockError::NotRecoverable)));
            assert!(matches!(
                m.lock_timeout(Duration::from_millis(5)),
                Err(LockError::NotRecoverable)
            ));
        }
        assert!(t0.elapsed() < Duration::from_secs(1), "the holder is this process: no grace");
        std::thread::scope(|s| {
            s.spawn(|| assert!(matches!(m.lock(), Err(LockError::NotRecoverable))));
        });
        let msg = Error::from(m.lock().map(|_| ()).unwrap_err()).to_string();
        assert!(msg.contains("create a new one"), "{msg}");
        *kept += 1; // still the only `&mut`
        assert_eq!(*kept, 8);
    }

    #[test]
    fn dropping_a_mutex_whose_guard_was_forgotten_leaves_it_mapped() {
        let m = Mutex::new(0u64).unwrap();
        assert!(!m.cell.keep_mapped());
        std::mem::forget(m.lock().unwrap());
        assert!(m.cell.keep_mapped());
        let addr = &raw const *m.cell as usize;
        drop(m);
        assert!(crate::segment::object::is_mapped(addr), "the held mutex was unmapped");
        // The same size as the mutex's segment, so that it would fill the hole had it been
        // unmapped; then a robust lock on this thread makes glibc link the new mutex in front of
        // the forgotten one, writing a pointer into the forgotten one's memory.
        let n = std::mem::size_of::<MutexCell<u64>>() / 8;
        let pattern = |i: usize| 0x5a5a_0000_0000_0000 | i as u64;
        let a = crate::SharedArray::from_fn(n, pattern).unwrap();
        let other = Mutex::new(1u64).unwrap();
        let g = other.lock().unwrap();
        let untouched = a.as_slice().iter().enumerate().all(|(i, &v)| v == pattern(i));
        drop(g);
        assert!(untouched, "an unrelated array changed: {:x?}", a.as_slice());
        assert!(a.as_slice().iter().enumerate().all(|(i, &v)| v == pattern(i)));
    }

    #[test]
    fn a_leaked_named_mutex_loses_its_name_only_when_its_creator_drops() {
        let m = Mutex::new_with(0u8, &ShmOptions::new().generated_name()).unwrap();
        let name = m.name().unwrap().to_string();
        let opened = Mutex::<u8>::open(&name).unwrap();
        std::mem::forget(opened.lock().unwrap());
        drop(opened); // leaked, but an opener never removes the name
        assert!(Mutex::<u8>::open(&name).is_ok());
        assert!(m.cell.keep_mapped(), "the lock word is shared by every mapping");
        drop(m); // leaked too; the creator removes the name as usual
        assert!(matches!(Mutex::<u8>::open(&name), Err(Error::NotFound { .. })));
    }

    #[test]
    fn a_thread_at_the_robust_lock_limit_gets_a_typed_error_from_every_lock_until_it_drops_one() {
        use super::super::robust::tests::Many;
        use super::super::robust::{ROBUST_LIST_LIMIT, held_by_this_thread};
        use crate::{Barrier, Condition, RLock, SharedValue};

        // A thread of its own: the count is per thread.
        std::thread::spawn(|| {
            let (m, other, v) =
                (Mutex::new(1u64).unwrap(), Mutex::new(2u64).unwrap(), SharedValue::new(3u32));
            let v = v.unwrap();
            let (r, fresh) = (RLock::new().unwrap(), RLock::new().unwrap());
            let (cv, b) = (Condition::new().unwrap(), Barrier::new(1).unwrap());
            let r1 = r.acquire().unwrap();
            let g = m.lock().unwrap();
            // Heap-held robust mutexes for the rest (segments would cost an fd each).
            let fill = Many::new(ROBUST_LIST_LIMIT as usize - 2, MutexType::ErrorCheck);
            for i in 0..fill.len() {
                assert!(fill.get(i).acquire(Wait::Try).is_ok());
            }
            assert_eq!(held_by_this_thread(), ROBUST_LIST_LIMIT);
            let t0 = std::time::Instant::now();
            let refused =
                |r: LockResult<MutexGuard<'_, u64>>| matches!(r, Err(LockError::TooManyHeld));
            assert!(refused(other.lock()));
            assert!(refused(other.try_lock()));
            assert!(refused(other.lock_timeout(Duration::from_secs(5))));
            assert!(matches!(v.lock(), Err(LockError::TooManyHeld)));
            assert!(matches!(v.get(), Err(LockError::TooManyHeld)));
            assert!(matches!(fresh.acquire(), Err(LockError::TooManyHeld)));
            assert!(matches!(b.wait(), Err(Error::TooManyLocksHeld { held: 2048 })));
            assert!(t0.elapsed() < Duration::from_secs(1), "refused at once");
            let msg = Error::from(other.lock().map(drop).unwrap_err()).to_string();
            assert!(msg.contains("2048") && msg.contains("drop a guard"), "{msg}");
            // What adds no entry is allowed: re-entering the RLock it holds (counted once), a
            // condition wait (it releases the mutex before locking it again), relocking a held
            // mutex (WouldDeadlock, as ever).
            let r2 = r.try_acquire().unwrap();
            drop(r2);
            let (g, waited) = cv.wait_timeout(g, Duration::from_millis(1)).unwrap();
            assert!(waited.timed_out());
            assert!(matches!(m.try_lock(), Err(LockError::WouldDeadlock)));
            assert_eq!(held_by_this_thread(), ROBUST_LIST_LIMIT);
            // One dropped, one more allowed.
            drop(g);
            *other.lock().unwrap() += 1;
            drop(r1);
            let got = v.get().unwrap();
            assert_eq!(got, 3);
            for i in 0..fill.len() {
                fill.get(i).release();
            }
            assert_eq!(held_by_this_thread(), 0);
            b.wait().unwrap();
            drop(fresh.acquire().unwrap());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn opening_checks_kind_and_type() {
        let m = Mutex::new_with(1u32, &ShmOptions::new().generated_name()).unwrap();
        assert!(matches!(Mutex::<u64>::open(m.name().unwrap()), Err(Error::TypeMismatch { .. })));
        assert!(matches!(Mutex::<u64>::open_handle(&m.handle()), Err(Error::TypeMismatch { .. })));
        let same = Mutex::<u32>::open_handle(&m.handle()).unwrap();
        *same.lock().unwrap() = 9;
        assert_eq!(*m.lock().unwrap(), 9);
        let sem = crate::Semaphore::new(1).unwrap();
        assert!(matches!(
            Mutex::<u32>::open_handle(&sem.handle()),
            Err(Error::KindMismatch { .. })
        ));
    }
}
