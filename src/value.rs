//! Single shared values: [`SharedValue`] (behind a robust lock, Python's `Value`), [`RawValue`]
//! (no lock, Python's `RawValue`) and [`SharedAtomic`] (a lock-free atomic integer).

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, AtomicUsize};
use std::time::Duration;

use bytemuck::Pod;

use crate::error::Result;
use crate::segment::Segment;
use crate::segment::handle::{Locator, SegmentHandle};
use crate::segment::header::{Kind, Layout, TypeDesc};
use crate::segment::object::{ShmBox, ShmSafe};
use crate::segment::options::ShmOptions;
use crate::sync::lock_error::{LockError, LockResult};
use crate::sync::mutex::{MutexCell, MutexGuard, Owner};
use crate::sync::object_methods;
use crate::sync::robust::Wait;

/// One `T` behind a robust lock, in its own segment (Python's `Value(type, v, lock=True)`).
///
/// [`get`](SharedValue::get) and [`set`](SharedValue::set) each take the lock once; a
/// read-modify-write must hold it across, through [`lock`](SharedValue::lock):
/// `*v.lock()? += 1` is one atomic increment, `v.set(v.get()? + 1)` is two separate steps that
/// can lose updates. The lock is the same robust lock as [`Mutex`](crate::Mutex)'s, with the same
/// rules: [`LockError::OwnerDied`] when a holder's process dies, [`LockError::NotRecoverable`]
/// (never a second guard) when a holding thread exited with its guard leaked while its process
/// lives on, and no fork while a guard exists in the process
/// ([`ForkWhileLocked`](crate::Error::ForkWhileLocked); a leaked guard refuses forks for good).
///
/// ```
/// let v = shmpool::SharedValue::new(1.5f64)?;
/// *v.lock()? *= 2.0;
/// assert_eq!(v.get()?, 3.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct SharedValue<T: Pod + Send> {
    cell: ShmBox<MutexCell<T>>,
}

impl<T: Pod + Send> SharedValue<T> {
    /// An anonymous value, initially `value`.
    ///
    /// ```
    /// let v = shmpool::SharedValue::new(0i64)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new(value: T) -> Result<SharedValue<T>> {
        Self::new_with(value, &ShmOptions::new())
    }

    /// A value created as `opts` says.
    ///
    /// ```
    /// use shmpool::{SharedValue, ShmOptions};
    /// let v = SharedValue::new_with(7u32, &ShmOptions::new().generated_name())?;
    /// assert!(v.name().is_some());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(value: T, opts: &ShmOptions) -> Result<SharedValue<T>> {
        Ok(SharedValue { cell: MutexCell::create(Kind::Value, opts, value)? })
    }

    object_methods!(
        Kind::Value,
        "locked value",
        "shmpool::SharedValue::<u64>",
        "shmpool::SharedValue::new_with(7u64, &opts)?"
    );

    /// A copy of the value, read under the lock.
    ///
    /// ```
    /// assert_eq!(shmpool::SharedValue::new(4u8)?.get()?, 4);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[inline]
    pub fn get(&self) -> std::result::Result<T, LockError<MutexGuard<'_, T>>> {
        self.lock().map(|g| *g)
    }

    /// Replaces the value, under the lock.
    ///
    /// ```
    /// let v = shmpool::SharedValue::new(4u8)?;
    /// v.set(5)?;
    /// assert_eq!(v.get()?, 5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[inline]
    pub fn set(&self, value: T) -> std::result::Result<(), LockError<MutexGuard<'_, T>>> {
        self.lock().map(|mut g| *g = value)
    }

    /// Locks the value for a read-modify-write (Python's `get_lock()`).
    ///
    /// ```
    /// let v = shmpool::SharedValue::new(1u64)?;
    /// {
    ///     let mut g = v.lock()?;
    ///     *g = *g * 10 + 1;
    /// }
    /// assert_eq!(v.get()?, 11);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[inline]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.cell.lock(Wait::Block, Owner::Value)
    }

    /// Locks, waiting at most `timeout`.
    ///
    /// ```
    /// let v = shmpool::SharedValue::new(1u64)?;
    /// assert_eq!(*v.lock_timeout(std::time::Duration::from_millis(5))?, 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[inline]
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<MutexGuard<'_, T>> {
        self.cell.lock(Wait::Timeout(timeout), Owner::Value)
    }

    /// Locks if nobody holds the lock.
    ///
    /// ```
    /// let v = shmpool::SharedValue::new(1u64)?;
    /// let g = v.try_lock()?;
    /// assert!(v.try_lock().is_err());
    /// # drop(g);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[inline]
    pub fn try_lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.cell.lock(Wait::Try, Owner::Value)
    }
}

impl<T: Pod + Send> fmt::Debug for SharedValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedValue")
            .field("type", &TypeDesc::of::<T>().describe())
            .field("handle", &self.handle().to_string())
            .finish()
    }
}

/// One `T` in shared memory with no lock (Python's `RawValue`).
///
/// Like a [`SharedArray`](crate::SharedArray) of one element, it behaves like a `Box<T>`:
/// `&self` reads, `&mut self` writes, and a forked child that borrows it (see
/// [`scope`](crate::scope)) keeps the parent away while it holds the borrow.
///
/// # Aliasing across processes
///
/// A second, independent view opened by name or handle ([`open`](RawValue::open),
/// [`open_handle`](RawValue::open_handle)) escapes the borrow checker, which is why those are
/// `unsafe`: the caller promises that no process writes the value while another reads or writes
/// it. For a value several processes update, use [`SharedValue`] or [`SharedAtomic`].
///
/// ```
/// let mut v = shmpool::RawValue::new(3u32)?;
/// *v += 1;
/// assert_eq!(v.get(), 4);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct RawValue<T: Pod> {
    seg: Segment,
    ptr: NonNull<T>,
    _t: PhantomData<T>,
}

// SAFETY: the value owns its mapping like a `Box<T>` owns its heap block; sending it to another
// thread is sound when `T` is `Send`.
unsafe impl<T: Pod + Send> Send for RawValue<T> {}
// SAFETY: `&RawValue` only hands out `&T`; sharing it between threads is sound when `T: Sync`.
unsafe impl<T: Pod + Sync> Sync for RawValue<T> {}

impl<T: Pod> RawValue<T> {
    /// An anonymous raw value, initially `value`.
    ///
    /// ```
    /// let v = shmpool::RawValue::new(0.5f32)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new(value: T) -> Result<RawValue<T>> {
        Self::new_with(value, &ShmOptions::new())
    }

    /// A raw value created as `opts` says.
    ///
    /// ```
    /// use shmpool::{RawValue, ShmOptions};
    /// let v = RawValue::new_with(1u16, &ShmOptions::new().generated_name())?;
    /// assert!(v.name().is_some());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(value: T, opts: &ShmOptions) -> Result<RawValue<T>> {
        let layout = Layout::new(Kind::RawValue, TypeDesc::of::<T>(), 1)?;
        let mut v = Self::from_segment(Segment::create(opts, &layout)?);
        *v = value;
        v.seg.publish();
        Ok(v)
    }

    fn from_segment(seg: Segment) -> RawValue<T> {
        let ptr = seg.data_ptr().cast::<T>();
        RawValue { seg, ptr, _t: PhantomData }
    }

    /// Opens the named raw value another process created, checking kind and type.
    ///
    /// # Errors
    ///
    /// [`NotFound`](crate::Error::NotFound), [`KindMismatch`](crate::Error::KindMismatch),
    /// [`TypeMismatch`](crate::Error::TypeMismatch).
    ///
    /// # Safety
    ///
    /// The result is a second view of memory other processes (or views) can write: the caller
    /// makes sure nobody writes the value through one view while another reads or writes it.
    ///
    /// ```
    /// use shmpool::{RawValue, ShmOptions};
    /// let a = RawValue::new_with(9u64, &ShmOptions::new().generated_name())?;
    /// // SAFETY: nothing writes `a` while `b` lives.
    /// let b = unsafe { RawValue::<u64>::open(a.name().unwrap())? };
    /// assert_eq!(b.get(), 9);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub unsafe fn open(name: &str) -> Result<RawValue<T>> {
        let seg = Segment::open_typed(
            &Locator::Named(name.to_string()),
            None,
            Kind::RawValue,
            &TypeDesc::of::<T>(),
        )?;
        Ok(Self::from_segment(seg))
    }

    /// Opens the raw value a handle refers to, checking kind and type.
    ///
    /// # Safety
    ///
    /// As for [`open`](RawValue::open).
    ///
    /// ```
    /// let a = shmpool::RawValue::new(9u64)?;
    /// // SAFETY: nothing writes `a` while `b` lives.
    /// let b = unsafe { shmpool::RawValue::<u64>::open_handle(&a.handle())? };
    /// assert_eq!(*b, 9);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub unsafe fn open_handle(handle: &SegmentHandle) -> Result<RawValue<T>> {
        let seg = Segment::open_typed(
            &handle.loc,
            Some(handle.nonce),
            Kind::RawValue,
            &TypeDesc::of::<T>(),
        )?;
        Ok(Self::from_segment(seg))
    }

    /// A copy of the value.
    ///
    /// ```
    /// assert_eq!(shmpool::RawValue::new(2u8)?.get(), 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get(&self) -> T {
        **self
    }

    /// Replaces the value.
    ///
    /// ```
    /// let mut v = shmpool::RawValue::new(2u8)?;
    /// v.set(3);
    /// assert_eq!(v.get(), 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn set(&mut self, value: T) {
        **self = value;
    }

    /// A handle another process can open with [`open_handle`](RawValue::open_handle).
    ///
    /// # Panics
    ///
    /// In a forked child, on a copy it inherited rather than was lent, as
    /// [`SharedArray::handle`](crate::SharedArray::handle) does.
    ///
    /// ```
    /// let v = shmpool::RawValue::new(2u8)?;
    /// println!("{}", v.handle());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn handle(&self) -> SegmentHandle {
        self.seg.handle()
    }

    /// The segment's name if it is named.
    ///
    /// ```
    /// assert_eq!(shmpool::RawValue::new(2u8)?.name(), None);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.seg.name()
    }
}

impl<T: Pod> Deref for RawValue<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `ptr` is aligned (data_offset % align_of::<T>() == 0) and valid for one `T` (any
        // bytes are a valid `Pod`) while `self.seg` maps it; writers elsewhere are excluded by the
        // aliasing contract (safe constructors) or by `open`'s caller.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Pod> DerefMut for RawValue<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` rules out other borrows in this process.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T: Pod> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawValue")
            .field("type", &TypeDesc::of::<T>().describe())
            .field("handle", &self.seg.handle_text())
            .finish()
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The atomic integer types a [`SharedAtomic`] can hold: `AtomicU32`, `AtomicU64`, `AtomicI32`,
/// `AtomicI64`, `AtomicUsize`. Sealed: only these, whose layout is the plain integer's and
/// whose operations are lock-free, so they work across processes.
pub trait AtomicCell: sealed::Sealed + Send + Sync + 'static {
    /// The plain integer type.
    type Value: Copy;
    /// A new atomic holding `v` (what [`SharedAtomic::new`] stores).
    ///
    /// ```
    /// use shmpool::AtomicCell;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// assert_eq!(AtomicU32::new_atomic(3).load(Ordering::Relaxed), 3);
    /// ```
    fn new_atomic(v: Self::Value) -> Self;
}

macro_rules! atomic_cell {
    ($($a:ty => $v:ty),* $(,)?) => {$(
        impl sealed::Sealed for $a {}
        impl AtomicCell for $a {
            type Value = $v;
            fn new_atomic(v: $v) -> $a {
                <$a>::new(v)
            }
        }
    )*};
}
atomic_cell!(AtomicU32 => u32, AtomicU64 => u64, AtomicI32 => i32, AtomicI64 => i64, AtomicUsize => usize);

/// The shared part of a [`SharedAtomic`].
#[repr(transparent)]
pub(crate) struct AtomicSlot<A>(A);

// SAFETY: one lock-free atomic integer (same layout as the integer, no pointers, no `Drop`),
// mutated only through its atomic operations, which work across processes on shared pages.
unsafe impl<A: AtomicCell> ShmSafe for AtomicSlot<A> {}

/// A lock-free atomic integer in its own segment, for counters and flags several processes
/// update at once. It dereferences to the atomic, so every std atomic operation is there.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// let hits = shmpool::SharedAtomic::<AtomicU64>::new(0)?;
/// hits.fetch_add(3, Ordering::Relaxed);
/// assert_eq!(hits.load(Ordering::Relaxed), 3);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct SharedAtomic<A: AtomicCell> {
    cell: ShmBox<AtomicSlot<A>>,
}

impl<A: AtomicCell> SharedAtomic<A> {
    /// An anonymous atomic, initially `value`.
    ///
    /// ```
    /// let a = shmpool::SharedAtomic::<std::sync::atomic::AtomicI32>::new(-1)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new(value: A::Value) -> Result<SharedAtomic<A>> {
        Self::new_with(value, &ShmOptions::new())
    }

    /// An atomic created as `opts` says.
    ///
    /// ```
    /// use shmpool::{SharedAtomic, ShmOptions};
    /// let a = SharedAtomic::<std::sync::atomic::AtomicU32>::new_with(0, &ShmOptions::new().generated_name())?;
    /// assert!(a.name().is_some());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(value: A::Value, opts: &ShmOptions) -> Result<SharedAtomic<A>> {
        Ok(SharedAtomic {
            cell: ShmBox::new(Kind::Atomic, opts, AtomicSlot(A::new_atomic(value)))?,
        })
    }

    object_methods!(
        Kind::Atomic,
        "atomic",
        "shmpool::SharedAtomic::<std::sync::atomic::AtomicU64>",
        "shmpool::SharedAtomic::<std::sync::atomic::AtomicU64>::new_with(0, &opts)?"
    );
}

impl<A: AtomicCell> Deref for SharedAtomic<A> {
    type Target = A;
    fn deref(&self) -> &A {
        &self.cell.0
    }
}

impl<A: AtomicCell + fmt::Debug> fmt::Debug for SharedAtomic<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedAtomic")
            .field("value", &**self)
            .field("handle", &self.handle().to_string())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use std::sync::atomic::Ordering;

    #[test]
    fn shared_value_gets_sets_and_locks() {
        let v = SharedValue::new(5u64).unwrap();
        v.set(6).unwrap();
        *v.lock().unwrap() += 1;
        assert_eq!(v.get().unwrap(), 7);
        let g = v.lock().unwrap();
        assert!(matches!(v.try_lock(), Err(LockError::WouldDeadlock)));
        std::thread::scope(|s| {
            s.spawn(|| assert!(matches!(v.try_lock(), Err(LockError::WouldBlock))));
        });
        drop(g);
    }

    #[test]
    fn shared_value_is_not_a_mutex_and_checks_its_type() {
        let v = SharedValue::new_with(5u64, &ShmOptions::new().generated_name()).unwrap();
        assert!(matches!(
            crate::Mutex::<u64>::open_handle(&v.handle()),
            Err(Error::KindMismatch { .. })
        ));
        assert!(matches!(
            SharedValue::<i64>::open(v.name().unwrap()),
            Err(Error::TypeMismatch { .. })
        ));
        assert_eq!(SharedValue::<u64>::open(v.name().unwrap()).unwrap().get().unwrap(), 5);
    }

    #[test]
    fn raw_value_reads_writes_and_opens_checked() {
        let mut v = RawValue::new([1u8, 2, 3]).unwrap();
        v.set([4, 5, 6]);
        assert_eq!(v.get(), [4, 5, 6]);
        // SAFETY: only reads while `v` is not written.
        let w = unsafe { RawValue::<[u8; 3]>::open_handle(&v.handle()) }.unwrap();
        assert_eq!(*w, [4, 5, 6]);
        // SAFETY: the open fails; nothing is read.
        let wrong = unsafe { RawValue::<[u8; 4]>::open_handle(&v.handle()) };
        assert!(matches!(wrong, Err(Error::TypeMismatch { .. })));
    }

    #[test]
    fn shared_atomics_count_across_threads_and_check_their_type() {
        let a = SharedAtomic::<AtomicU64>::new(0).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        a.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(a.load(Ordering::Relaxed), 40_000);
        assert!(matches!(
            SharedAtomic::<AtomicI64>::open_handle(&a.handle()),
            Err(Error::TypeMismatch { .. })
        ));
        let b = SharedAtomic::<AtomicU64>::open_handle(&a.handle()).unwrap();
        b.store(1, Ordering::Relaxed);
        assert_eq!(a.load(Ordering::Relaxed), 1);
        let i = SharedAtomic::<AtomicI32>::new(-5).unwrap();
        assert_eq!(i.fetch_sub(1, Ordering::Relaxed), -5);
    }
}
