//! `SharedArray<T>`: a typed array in shared memory that processes work on in place.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use bytemuck::Pod;

use crate::error::Result;
use crate::segment::Segment;
use crate::segment::handle::{Locator, SegmentHandle};
use crate::segment::header::{Kind, Layout, TypeDesc};
use crate::segment::options::ShmOptions;

/// A fixed-length array of `T` in shared memory.
///
/// The memory is reserved when the array is created (a request that does not fit fails then,
/// with [`Error::OutOfSpace`](crate::Error::OutOfSpace), never later with SIGBUS), zeroed, and
/// starts at a 128-byte offset inside its segment, after the header.
///
/// # Aliasing across processes
///
/// Within one process a `SharedArray` behaves like a `Box<[T]>`: `&self` reads, `&mut self`
/// writes, and the borrow checker keeps them apart. Across processes the rule is the same and
/// the safe API keeps it, because an array reaches another process only through what that
/// process is given, never by inheritance:
///
/// - the mapping is kept out of every forked child (`MADV_DONTFORK`): a child that reaches the
///   array through a copied `std::sync::Mutex`, `Arc`, `static` or capture finds nothing
///   mapped there and dies with SIGSEGV (reported to the parent), instead of sharing an
///   "exclusive" borrow with the parent;
/// - a scoped child is *lent* chunks ([`Scope::fork_with`](crate::process::Scope::fork_with)), which it
///   maps anew: the parent cannot touch what it lent mutably until the child has been reaped,
///   and children given disjoint `&mut` chunks never overlap;
/// - pool workers map the arrays of a job by handle and get disjoint chunks from the job
///   protocol, while the caller's `&mut` borrow of the array lasts as long as the job.
///
/// The one way around that is a second, independent view opened by name or handle
/// ([`open`](SharedArray::open), [`open_handle`](SharedArray::open_handle)), which is why those
/// are `unsafe`: the caller promises that no process writes an element while another process
/// reads or writes it, coordinating with a [`Mutex`](crate::Mutex),
/// [`Barrier`](crate::Barrier) or [`Event`](crate::Event) where needed.
///
/// ```
/// use shmpool::SharedArray;
///
/// let mut a = SharedArray::<f64>::from_fn(8, |i| i as f64)?;
/// for x in a.iter_mut() {
///     *x = *x * 2.0 + 1.0;
/// }
/// assert_eq!(a[3], 7.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct SharedArray<T: Pod> {
    seg: Segment,
    ptr: NonNull<T>,
    len: usize,
    _t: PhantomData<T>,
}

// SAFETY: the array owns its mapping like a `Box<[T]>` owns its heap block; sending it to another
// thread is sound when `T` is `Send`.
unsafe impl<T: Pod + Send> Send for SharedArray<T> {}
// SAFETY: `&SharedArray` only hands out `&[T]`; sharing it between threads is sound when `T: Sync`.
unsafe impl<T: Pod + Sync> Sync for SharedArray<T> {}

impl<T: Pod> SharedArray<T> {
    /// An anonymous array of `len` zeros.
    ///
    /// ```
    /// let a = shmpool::SharedArray::<u32>::zeroed(4)?;
    /// assert_eq!(&a[..], &[0, 0, 0, 0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn zeroed(len: usize) -> Result<SharedArray<T>> {
        Self::zeroed_with(len, &ShmOptions::new())
    }

    /// An array of `len` zeros, created as `opts` says (named, pre-faulted...).
    ///
    /// ```
    /// use shmpool::{SharedArray, ShmOptions};
    /// let a = SharedArray::<u8>::zeroed_with(100, &ShmOptions::new().populate(true))?;
    /// assert_eq!(a.len(), 100);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn zeroed_with(len: usize, opts: &ShmOptions) -> Result<SharedArray<T>> {
        let layout = Layout::new(Kind::Array, TypeDesc::of::<T>(), len)?;
        let seg = Segment::create(opts, &layout)?;
        // Reserved tmpfs/memfd pages read as zero, and all-zero is a valid `T: Pod`.
        seg.publish();
        Ok(Self::from_segment(seg))
    }

    /// An anonymous array holding a copy of `values`.
    ///
    /// ```
    /// let a = shmpool::SharedArray::from_slice(&[1.5f32, 2.5])?;
    /// assert_eq!(a[1], 2.5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn from_slice(values: &[T]) -> Result<SharedArray<T>> {
        Self::from_slice_with(values, &ShmOptions::new())
    }

    /// A copy of `values`, created as `opts` says.
    ///
    /// ```
    /// use shmpool::{SharedArray, ShmOptions};
    /// let a = SharedArray::from_slice_with(&[7u16; 3], &ShmOptions::new().generated_name())?;
    /// assert!(a.name().is_some());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn from_slice_with(values: &[T], opts: &ShmOptions) -> Result<SharedArray<T>> {
        Self::build(values.len(), opts, |s| s.copy_from_slice(values))
    }

    /// An anonymous array whose element `i` is `f(i)`.
    ///
    /// ```
    /// let a = shmpool::SharedArray::from_fn(5, |i| (i * i) as u64)?;
    /// assert_eq!(a[4], 16);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn from_fn(len: usize, f: impl FnMut(usize) -> T) -> Result<SharedArray<T>> {
        Self::from_fn_with(len, &ShmOptions::new(), f)
    }

    /// Element `i` is `f(i)`, created as `opts` says.
    ///
    /// ```
    /// use shmpool::{SharedArray, ShmOptions};
    /// let a = SharedArray::from_fn_with(3, &ShmOptions::new(), |i| i as i8 - 1)?;
    /// assert_eq!(&a[..], &[-1, 0, 1]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn from_fn_with(
        len: usize,
        opts: &ShmOptions,
        mut f: impl FnMut(usize) -> T,
    ) -> Result<SharedArray<T>> {
        Self::build(len, opts, |s| s.iter_mut().enumerate().for_each(|(i, x)| *x = f(i)))
    }

    fn build(len: usize, opts: &ShmOptions, fill: impl FnOnce(&mut [T])) -> Result<SharedArray<T>> {
        let layout = Layout::new(Kind::Array, TypeDesc::of::<T>(), len)?;
        let mut a = Self::from_segment(Segment::create(opts, &layout)?);
        fill(&mut a);
        a.seg.publish();
        Ok(a)
    }

    /// Opens the named array another process created (a Rust program, or Python through
    /// `python/shmpool_shm.py`), checking the element type and the header.
    ///
    /// # Errors
    ///
    /// [`NotFound`](crate::Error::NotFound), [`NotShmpool`](crate::Error::NotShmpool),
    /// [`TypeMismatch`](crate::Error::TypeMismatch), [`KindMismatch`](crate::Error::KindMismatch),
    /// [`CorruptHeader`](crate::Error::CorruptHeader), [`InvalidName`](crate::Error::InvalidName).
    ///
    /// # Safety
    ///
    /// The returned array is a second view of memory other processes (or other views in this
    /// one) can write. The caller must make sure that no element is written by one view while
    /// another view reads or writes it: a data race is undefined behaviour even across processes.
    ///
    /// ```
    /// use shmpool::{SharedArray, ShmOptions};
    /// let a = SharedArray::from_slice_with(&[1i64, 2], &ShmOptions::new().generated_name())?;
    /// // SAFETY: nothing writes `a` while `b` lives.
    /// let b = unsafe { SharedArray::<i64>::open(a.name().unwrap())? };
    /// assert_eq!(&b[..], &[1, 2]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub unsafe fn open(name: &str) -> Result<SharedArray<T>> {
        let seg = Segment::open_typed(
            &Locator::Named(name.to_string()),
            None,
            Kind::Array,
            &TypeDesc::of::<T>(),
        )?;
        Ok(Self::from_segment(seg))
    }

    /// Like [`open`](SharedArray::open), honouring `opts.populate` (pre-fault every page of the
    /// mapping now, so the first pass over the data pays no page faults); naming options are
    /// ignored.
    ///
    /// # Safety
    ///
    /// As for [`open`](SharedArray::open).
    ///
    /// ```
    /// use shmpool::{SharedArray, ShmOptions};
    /// let a = SharedArray::<u8>::zeroed_with(4096, &ShmOptions::new().generated_name())?;
    /// // SAFETY: nothing writes `a` while `b` lives.
    /// let b = unsafe { SharedArray::<u8>::open_with(a.name().unwrap(), &ShmOptions::new().populate(true))? };
    /// assert_eq!(b.len(), 4096);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub unsafe fn open_with(name: &str, opts: &ShmOptions) -> Result<SharedArray<T>> {
        let loc = Locator::Named(name.to_string());
        let seg = Segment::open(&loc, None, opts.populate)?;
        seg.header().check_type(&format!("segment {name}"), Kind::Array, &TypeDesc::of::<T>())?;
        Ok(Self::from_segment(seg))
    }

    /// Opens the array a [`SegmentHandle`] refers to (named or anonymous).
    ///
    /// # Safety
    ///
    /// As for [`open`](SharedArray::open): no element may be written through one view while
    /// another reads or writes it.
    ///
    /// ```
    /// let a = shmpool::SharedArray::from_slice(&[3u8, 4])?;
    /// // SAFETY: nothing writes `a` while `b` lives.
    /// let b = unsafe { shmpool::SharedArray::<u8>::open_handle(&a.handle())? };
    /// assert_eq!(b[1], 4);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub unsafe fn open_handle(handle: &SegmentHandle) -> Result<SharedArray<T>> {
        let seg = Segment::open_typed(
            &handle.loc,
            Some(handle.nonce),
            Kind::Array,
            &TypeDesc::of::<T>(),
        )?;
        Ok(Self::from_segment(seg))
    }

    fn from_segment(seg: Segment) -> SharedArray<T> {
        let len = seg.len();
        let ptr = seg.data_ptr().cast::<T>();
        SharedArray { seg, ptr, len, _t: PhantomData }
    }

    /// Number of elements.
    ///
    /// ```
    /// assert_eq!(shmpool::SharedArray::<u8>::zeroed(9)?.len(), 9);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    ///
    /// ```
    /// assert!(shmpool::SharedArray::<u8>::zeroed(0)?.is_empty());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The name (without leading '/') of a named array; `None` for anonymous ones.
    ///
    /// ```
    /// use shmpool::{SharedArray, ShmOptions};
    /// assert_eq!(SharedArray::<u8>::zeroed(1)?.name(), None);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.seg.name()
    }

    /// A handle another process can open with [`open_handle`](SharedArray::open_handle).
    ///
    /// # Panics
    ///
    /// In a forked child, on a copy of an array it inherited (through a capture, a `static`, an
    /// `Arc` or a lock) rather than was given: that array is not mapped in the child, and a
    /// handle would let the child (or a pool it starts) reach memory its parent holds.
    ///
    /// ```
    /// let a = shmpool::SharedArray::<u8>::zeroed(1)?;
    /// println!("{}", a.handle()); // memfd:<pid>/<fd>#<nonce>
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn handle(&self) -> SegmentHandle {
        self.seg.handle()
    }

    /// Keep the named segment after this array drops, for another process to open later.
    /// Remove it later with [`crate::segment::unlink`] or [`crate::clean_stale`].
    ///
    /// ```
    /// use shmpool::{SharedArray, ShmOptions};
    /// let a = SharedArray::<u8>::zeroed_with(1, &ShmOptions::new().generated_name())?;
    /// a.persist();
    /// let name = a.name().unwrap().to_string();
    /// drop(a);
    /// shmpool::segment::unlink(&name)?; // the name survived the drop
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn persist(&self) {
        self.seg.persist()
    }

    /// Remove the name now; this array and other open views stay valid.
    ///
    /// ```
    /// use shmpool::{SharedArray, ShmOptions};
    /// let a = SharedArray::<u8>::zeroed_with(1, &ShmOptions::new().generated_name())?;
    /// a.unlink()?;
    /// // SAFETY: only reads.
    /// assert!(unsafe { SharedArray::<u8>::open(a.name().unwrap()) }.is_err());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn unlink(&self) -> Result<()> {
        self.seg.unlink()
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: aligned (offset % align == 0, page-aligned map), valid for `len` Pod elements
        // while `self.seg` maps it; no child inherits the mapping (forkmap), so other writers are
        // only views opened by `open*`, whose callers promised not to race this one.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The elements, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`; `&mut self` rules out other borrows in this process, and no
        // forked copy of this `SharedArray` (or of a lock around it) has the mapping.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Splits the array into `parts` disjoint mutable chunks of nearly equal length (the first
    /// `len % parts` are one longer), for handing one to each child process.
    ///
    /// ```
    /// let mut a = shmpool::SharedArray::<u8>::zeroed(10)?;
    /// let lens: Vec<usize> = a.split_mut(3).iter().map(|c| c.len()).collect();
    /// assert_eq!(lens, [4, 3, 3]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn split_mut(&mut self, parts: usize) -> Vec<&mut [T]> {
        let parts = parts.max(1);
        let (base, extra) = (self.len / parts, self.len % parts);
        let mut rest = self.as_mut_slice();
        (0..parts)
            .map(|i| {
                let (head, tail) =
                    std::mem::take(&mut rest).split_at_mut(base + usize::from(i < extra));
                rest = tail;
                head
            })
            .collect()
    }
}

impl<T: Pod> Deref for SharedArray<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Pod> DerefMut for SharedArray<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T: Pod> fmt::Debug for SharedArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedArray")
            .field("type", &TypeDesc::of::<T>().describe())
            .field("len", &self.len)
            .field("handle", &self.seg.handle_text())
            .finish()
    }
}
