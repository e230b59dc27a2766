//! `SharedArray<T>`: a typed array in shared memory that processes work on in place (Python's
//! `RawArray`), and `LockedArray<T>`, the same behind a cross-process lock (Python's `Array`
//! with `lock=True`).

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::time::Duration;

use bytemuck::Pod;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::segment::Segment;
use crate::segment::handle::{Locator, SegmentHandle};
use crate::segment::header::{Kind, Layout, TypeDesc};
use crate::segment::options::ShmOptions;
use crate::shape::Shape;
use crate::sync::lock_error::{LockError, LockResult, OwnerDied};
use crate::sync::mutex::{Mutex, MutexGuard};

/// A fixed-length array of `T` in shared memory.
///
/// The memory is reserved when the array is created (a request that does not fit fails then,
/// with [`Error::OutOfSpace`](crate::Error::OutOfSpace), never later with SIGBUS), zeroed, and
/// starts at a 128-byte offset inside its segment, after the header (256 for an array of 2 or
/// more dimensions, whose [`shape`](SharedArray::shape) the segment records after the header).
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
    /// This view's shape (C order); its product is `len`.
    shape: Shape,
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

    /// An anonymous array of zeros with shape `shape` (C order, outer axis first).
    ///
    /// # Errors
    ///
    /// [`InvalidShape`](crate::Error::InvalidShape) for no dimension, more than
    /// [`MAX_DIMS`](crate::shape::MAX_DIMS), or a product that overflows; as
    /// [`zeroed`](SharedArray::zeroed) otherwise.
    ///
    /// ```
    /// let img = shmpool::SharedArray::<u8>::zeroed_shape(&[480, 640, 3])?;
    /// assert_eq!((img.shape(), img.len()), (&[480, 640, 3][..], 480 * 640 * 3));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn zeroed_shape(shape: &[usize]) -> Result<SharedArray<T>> {
        Self::zeroed_shape_with(shape, &ShmOptions::new())
    }

    /// An array of zeros with shape `shape`, created as `opts` says (named for Python to
    /// attach, where it is a NumPy array of that shape).
    ///
    /// ```
    /// use shmpool::{SharedArray, ShmOptions};
    /// let a = SharedArray::<f64>::zeroed_shape_with(&[3, 4], &ShmOptions::new().generated_name())?;
    /// assert_eq!(a.row_len(), 4);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn zeroed_shape_with(shape: &[usize], opts: &ShmOptions) -> Result<SharedArray<T>> {
        Self::build_shaped(Shape::new(shape)?, opts, |_| {})
    }

    /// An anonymous array of shape `shape` whose element at multi-index `ix` (one index per
    /// dimension) is `f(ix)`.
    ///
    /// ```
    /// let a = shmpool::SharedArray::from_shape_fn(&[2, 3], |ix| (10 * ix[0] + ix[1]) as u32)?;
    /// assert_eq!(&a[..], &[0, 1, 2, 10, 11, 12]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn from_shape_fn(shape: &[usize], f: impl FnMut(&[usize]) -> T) -> Result<SharedArray<T>> {
        Self::from_shape_fn_with(shape, &ShmOptions::new(), f)
    }

    /// Element `ix` is `f(ix)`, shape `shape`, created as `opts` says.
    ///
    /// ```
    /// use shmpool::{SharedArray, ShmOptions};
    /// let a = SharedArray::from_shape_fn_with(&[2, 2], &ShmOptions::new(), |ix| ix[1] as i8)?;
    /// assert_eq!(&a[..], &[0, 1, 0, 1]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn from_shape_fn_with(
        shape: &[usize],
        opts: &ShmOptions,
        mut f: impl FnMut(&[usize]) -> T,
    ) -> Result<SharedArray<T>> {
        let shape = Shape::new(shape)?;
        Self::build_shaped(shape, opts, |s| {
            let dims = shape.dims();
            let mut ix = [0usize; crate::shape::MAX_DIMS];
            for x in s.iter_mut() {
                *x = f(&ix[..dims.len()]);
                // Next index in C order: bump the last axis, carrying into the outer ones.
                for d in (0..dims.len()).rev() {
                    ix[d] += 1;
                    if ix[d] < dims[d] {
                        break;
                    }
                    ix[d] = 0;
                }
            }
        })
    }

    /// The same elements seen with another shape of the same length (NumPy's `reshape` on a
    /// C-order array: nothing moves). Only this view changes: the shape recorded in the
    /// segment, which [`open`](SharedArray::open) and Python see, stays the one it was created
    /// with (create it with [`zeroed_shape_with`](SharedArray::zeroed_shape_with) or
    /// [`from_shape_fn_with`](SharedArray::from_shape_fn_with) for them to see a shape).
    ///
    /// # Errors
    ///
    /// [`InvalidShape`](crate::Error::InvalidShape) when `shape` is not a valid shape or its
    /// product is not [`len`](SharedArray::len); the array keeps its shape then.
    ///
    /// ```
    /// let mut a = shmpool::SharedArray::<u8>::zeroed(12)?;
    /// a.reshape(&[3, 4])?;
    /// assert_eq!((a.shape(), a.row_len()), (&[3, 4][..], 4));
    /// assert!(a.reshape(&[5, 2]).is_err());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn reshape(&mut self, shape: &[usize]) -> Result<()> {
        let new = Shape::new(shape)?;
        if new.len() != self.len {
            return Err(Error::InvalidShape {
                shape: shape.to_vec(),
                reason: format!(
                    "{} elements, but the array holds {}: use a shape whose product is {}",
                    new.len(),
                    self.len,
                    self.len
                ),
            });
        }
        self.shape = new;
        Ok(())
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
        Self::build_shaped(Shape::flat(len), opts, fill)
    }

    fn build_shaped(
        shape: Shape,
        opts: &ShmOptions,
        fill: impl FnOnce(&mut [T]),
    ) -> Result<SharedArray<T>> {
        let layout = Layout::shaped(Kind::Array, TypeDesc::of::<T>(), &shape)?;
        let mut a = Self::from_segment(Segment::create_shaped(opts, &layout, shape)?);
        fill(&mut a);
        a.seg.publish();
        Ok(a)
    }

    /// Opens the named array another process created (a Rust program, or Python through
    /// `python/shmpool_shm.py`), checking the element type and the header. The array has the
    /// [`shape`](SharedArray::shape) its segment records.
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
        let shape = seg.shape();
        SharedArray { seg, ptr, len, shape, _t: PhantomData }
    }

    /// The shape (C order, outer axis first); `[len]` for an array made without one.
    ///
    /// ```
    /// let a = shmpool::SharedArray::<f32>::zeroed_shape(&[2, 3])?;
    /// assert_eq!(a.shape(), &[2, 3]);
    /// assert_eq!(shmpool::SharedArray::<f32>::zeroed(5)?.shape(), &[5]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn shape(&self) -> &[usize] {
        self.shape.dims()
    }

    /// Number of dimensions (`shape().len()`).
    ///
    /// ```
    /// assert_eq!(shmpool::SharedArray::<u8>::zeroed_shape(&[2, 3, 3])?.ndim(), 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn ndim(&self) -> usize {
        self.shape.dims().len()
    }

    /// Elements per outer index (per row of a 2-D array, per plane of a 3-D one): the product
    /// of every dimension but the first; 1 for a 1-D array. Chunks made of whole rows are
    /// multiples of it.
    ///
    /// ```
    /// let img = shmpool::SharedArray::<u8>::zeroed_shape(&[480, 640, 3])?;
    /// assert_eq!(img.row_len(), 640 * 3);
    /// assert_eq!(img.len() / img.row_len(), 480);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn row_len(&self) -> usize {
        self.shape.row_len()
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

    /// Stops this process with the reason when it holds this array only by inheritance
    /// through fork, as [`handle`](SharedArray::handle) does; for pool calls that run in the
    /// caller and so never ask for a handle.
    pub(crate) fn assert_given(&self) {
        self.seg.assert_given();
    }

    /// Its segment's nonce (what [`handle`](SharedArray::handle) carries), without making a
    /// handle: how a kernel job tells two views of one segment apart from two segments.
    pub(crate) fn nonce(&self) -> u64 {
        self.seg.header().nonce
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

    /// Like [`split_mut`](SharedArray::split_mut), in whole rows: `parts` disjoint chunks of
    /// nearly equal numbers of rows (outer indices; the first `rows % parts` get one more), so
    /// each chunk is a C-order array of shape `[rows, shape[1..]...]` (for a 1-D array, the
    /// same chunks as `split_mut`).
    ///
    /// ```
    /// let mut img = shmpool::SharedArray::<u8>::zeroed_shape(&[5, 4, 3])?;
    /// let lens: Vec<usize> = img.split_rows_mut(2).iter().map(|c| c.len()).collect();
    /// assert_eq!(lens, [3 * 12, 2 * 12]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn split_rows_mut(&mut self, parts: usize) -> Vec<&mut [T]> {
        let (rows, row) = (self.shape()[0], self.row_len());
        let parts = parts.max(1);
        let (base, extra) = (rows / parts, rows % parts);
        let mut rest = self.as_mut_slice();
        (0..parts)
            .map(|i| {
                let take = (base + usize::from(i < extra)) * row;
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(take);
                rest = tail;
                head
            })
            .collect()
    }
}

/// N-D views (feature `ndarray`).
#[cfg(feature = "ndarray")]
impl<T: Pod> SharedArray<T> {
    /// The elements as an `ndarray` view of [`shape`](SharedArray::shape) (C order), as NumPy
    /// sees the same segment.
    ///
    /// ```
    /// let a = shmpool::SharedArray::from_shape_fn(&[2, 3], |ix| (10 * ix[0] + ix[1]) as u16)?;
    /// let v = a.view();
    /// assert_eq!(v.shape(), &[2, 3]);
    /// assert_eq!(v[[1, 2]], 12);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn view(&self) -> ndarray::ArrayViewD<'_, T> {
        ndarray::ArrayViewD::from_shape(self.shape(), self.as_slice())
            .expect("a SharedArray's shape multiplies to its length")
    }

    /// The elements as a mutable `ndarray` view of [`shape`](SharedArray::shape).
    ///
    /// ```
    /// let mut img = shmpool::SharedArray::<u8>::zeroed_shape(&[4, 4, 3])?;
    /// img.view_mut().slice_mut(ndarray::s![.., .., 0]).fill(255); // red channel
    /// assert_eq!(&img[..6], &[255, 0, 0, 255, 0, 0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn view_mut(&mut self) -> ndarray::ArrayViewMutD<'_, T> {
        let shape = self.shape;
        ndarray::ArrayViewMutD::from_shape(shape.dims(), self.as_mut_slice())
            .expect("a SharedArray's shape multiplies to its length")
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
            .field("shape", &self.shape)
            .field("handle", &self.seg.handle_text())
            .finish()
    }
}

/// A shared array behind a cross-process lock (Python's `Array(type, n, lock=True)`, whose
/// [`get_lock`](LockedArray::get_lock) it has): every access takes the lock, so processes that
/// open the same array by handle can update it without losing an update.
///
/// The elements are reached only through a guard ([`lock`](LockedArray::lock)), which holds the
/// lock for as long as it lives: `arr.lock()?[0] += 1` is one atomic increment, as Python's
/// `with arr.get_lock(): arr[0] += 1`. [`get`](LockedArray::get), [`set`](LockedArray::set) and
/// [`to_vec`](LockedArray::to_vec) take the lock once each, like Python's per-item access. The
/// lock is a [`Mutex`](crate::Mutex), with its rules (a holder that dies gives
/// [`LockError::OwnerDied`](crate::sync::LockError::OwnerDied); no fork while a guard exists).
///
/// Because no view reaches the elements without the lock, opening another view by handle
/// ([`open_handle`](LockedArray::open_handle)) is safe, unlike
/// [`SharedArray::open_handle`]. Pass [`handle`](LockedArray::handle) to a child (it is serde)
/// and open it there, under any start method; a fork child does not inherit the elements (see
/// [`SharedArray`], "Aliasing across processes").
///
/// ```
/// let arr = shmpool::LockedArray::<i64>::from_slice(&[1, 2, 3])?;
/// arr.lock()?[0] += 10;
/// {
///     let mut g = arr.lock()?; // held for the whole block
///     let total: i64 = g.iter().sum();
///     g[2] = total;
/// }
/// assert_eq!(arr.to_vec()?, [11, 2, 16]);
/// assert_eq!(arr.get(1)?, 2);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct LockedArray<T: Pod + Send> {
    lock: Mutex<()>,
    /// `len` elements, then [`binding_elems`] more holding the binding to `lock`; typed as
    /// [`Locked`] so that no `SharedArray<T>` opens it, nor passes for it.
    data: SharedArray<Locked<T>>,
    len: usize,
}

/// A locked array's element as its segment's header types it: a type no code outside this file
/// can name, so a segment made by [`SharedArray`] (whose elements safe code reaches without the
/// lock) never opens as a locked array's elements, and theirs never open as a `SharedArray<T>`.
#[derive(Clone, Copy)]
#[repr(transparent)]
struct Locked<T>(T);

// SAFETY: `Locked<T>` is `repr(transparent)` over `T: Pod`: same size, alignment and bit
// validity (every pattern valid, all-zero included), no padding.
unsafe impl<T: Pod> bytemuck::Zeroable for Locked<T> {}
// SAFETY: as above.
unsafe impl<T: Pod> Pod for Locked<T> {}

/// Bytes after a locked array's elements that bind them to their lock: a magic word and the
/// lock segment's nonce. A handle pairing the elements with any other lock (bytes a process
/// decoded are not trusted) is refused, so the elements are reached through their own lock only.
const BINDING: usize = 16;
/// The binding's magic word.
const BINDING_MAGIC: [u8; 8] = *b"shmpLKAR";

/// Elements of `T` after the array's own that hold the [`BINDING`] (none for a zero-sized `T`,
/// whose elements hold no bytes to race on).
fn binding_elems<T>() -> usize {
    match std::mem::size_of::<T>() {
        0 => 0,
        size => BINDING.div_ceil(size),
    }
}

/// The binding to the lock whose segment has this nonce.
fn binding_bytes(nonce: u64) -> [u8; BINDING] {
    let mut b = [0u8; BINDING];
    b[..8].copy_from_slice(&BINDING_MAGIC);
    b[8..].copy_from_slice(&nonce.to_le_bytes());
    b
}

/// What another process needs to open a [`LockedArray`]: the handles of its lock and its
/// elements. Serde, so it crosses as a child's or task's argument.
///
/// ```
/// let arr = shmpool::LockedArray::<u32>::zeroed(4)?;
/// let h: shmpool::LockedArrayHandle = arr.handle();
/// let again = shmpool::LockedArray::<u32>::open_handle(&h)?;
/// again.set(0, 7)?;
/// assert_eq!(arr.get(0)?, 7);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LockedArrayHandle {
    lock: SegmentHandle,
    data: SegmentHandle,
}

impl<T: Pod + Send> LockedArray<T> {
    /// An anonymous locked array of `len` zeros.
    ///
    /// ```
    /// let a = shmpool::LockedArray::<f64>::zeroed(3)?;
    /// assert_eq!(a.to_vec()?, [0.0; 3]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn zeroed(len: usize) -> Result<LockedArray<T>> {
        Self::build(len, |_| {})
    }

    /// An anonymous locked array holding a copy of `values`.
    ///
    /// ```
    /// let a = shmpool::LockedArray::from_slice(&[1u8, 2])?;
    /// assert_eq!(a.len(), 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn from_slice(values: &[T]) -> Result<LockedArray<T>> {
        Self::build(values.len(), |s| s.copy_from_slice(values))
    }

    /// Puts a copy of `data` behind a new lock (Python's `Array(..., lock=True)` around a
    /// `RawArray`'s values). The elements move to a new anonymous segment that also records
    /// which lock guards them, so `data`'s own segment (and any handle of it) never becomes a
    /// locked view; taking `data` by value means no unlocked view of this process remains.
    ///
    /// ```
    /// let raw = shmpool::SharedArray::<u16>::from_fn(4, |i| i as u16)?;
    /// let a = shmpool::LockedArray::with_lock(raw)?;
    /// assert_eq!(a.get(3)?, 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn with_lock(data: SharedArray<T>) -> Result<LockedArray<T>> {
        Self::build(data.len(), |s| s.copy_from_slice(&data))
    }

    /// A new lock and a segment of `len` elements (filled by `fill`) followed by the binding
    /// to that lock.
    fn build(len: usize, fill: impl FnOnce(&mut [T])) -> Result<LockedArray<T>> {
        let lock = Mutex::new(())?;
        let k = binding_elems::<T>();
        let total = len
            .checked_add(k)
            .ok_or(Error::TooLarge { len, elem_size: std::mem::size_of::<T>() })?;
        let binding = binding_bytes(lock.handle().nonce);
        let data = SharedArray::<Locked<T>>::build(total, &ShmOptions::new(), |s| {
            let (elems, tail) = s.split_at_mut(len);
            fill(bytemuck::cast_slice_mut::<Locked<T>, T>(elems));
            if k > 0 {
                bytemuck::cast_slice_mut::<Locked<T>, u8>(tail)[..BINDING]
                    .copy_from_slice(&binding);
            }
        })?;
        Ok(LockedArray { lock, data, len })
    }

    /// Opens the locked array `handle` refers to (made by [`handle`](LockedArray::handle) in
    /// this or another process), checking the element type.
    ///
    /// # Errors
    ///
    /// As [`SharedArray::open_handle`] and [`Mutex::open_handle`](crate::Mutex::open_handle):
    /// [`StaleHandle`](crate::Error::StaleHandle), [`KindMismatch`](crate::Error::KindMismatch),
    /// [`TypeMismatch`](crate::Error::TypeMismatch).
    ///
    /// ```
    /// let a = shmpool::LockedArray::<i32>::zeroed(2)?;
    /// let b = shmpool::LockedArray::<i32>::open_handle(&a.handle())?; // as a child would
    /// b.lock()?[1] = 5;
    /// assert_eq!(a.get(1)?, 5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn open_handle(handle: &LockedArrayHandle) -> Result<LockedArray<T>> {
        let lock = Mutex::open_handle(&handle.lock)?;
        // SAFETY: the elements of a locked array are reached only through a guard of its lock
        // (`lock`, `get`, `set`, `to_vec`), in every view, so no element is written by one view
        // while another reads or writes it.
        let data = unsafe { SharedArray::<Locked<T>>::open_handle(&handle.data)? };
        let k = binding_elems::<T>();
        let refused = || Error::InvalidArgument {
            what: "locked array handle",
            reason: "its elements are not bound to its lock (a plain SharedArray, or another \
                     locked array's lock): open the handle LockedArray::handle gave, unchanged"
                .into(),
        };
        let len = data.len.checked_sub(k).ok_or_else(refused)?;
        if k > 0 {
            let mut found = [0u8; BINDING];
            // SAFETY: elements `len..len + k` (at least `BINDING` bytes) lie inside the mapping;
            // they are written once, by the creator before any handle exists, and never reached
            // through a guard, so nothing writes them now.
            unsafe {
                let tail = data.ptr.as_ptr().add(len).cast::<u8>();
                std::ptr::copy_nonoverlapping(tail, found.as_mut_ptr(), BINDING);
            }
            if found != binding_bytes(handle.lock.nonce) {
                return Err(refused());
            }
        }
        Ok(LockedArray { lock, data, len })
    }

    /// A handle another process can pass to [`open_handle`](LockedArray::open_handle).
    ///
    /// ```
    /// let a = shmpool::LockedArray::<u8>::zeroed(1)?;
    /// let json = serde_json::to_string(&a.handle()).unwrap(); // any serde format
    /// # let _ = json;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn handle(&self) -> LockedArrayHandle {
        LockedArrayHandle { lock: self.lock.handle(), data: self.data.handle() }
    }

    /// The lock (Python's `get_lock()`): the one every access of this array takes, in every
    /// process. Lock it to exclude the array's other users while doing something else (it guards
    /// no data of its own); to read or write the elements, use [`lock`](LockedArray::lock),
    /// which takes this same lock.
    ///
    /// ```
    /// let a = shmpool::LockedArray::<u8>::zeroed(1)?;
    /// let held = a.get_lock().lock()?;
    /// assert!(a.try_lock().is_err()); // the array's lock is taken
    /// drop(held);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_lock(&self) -> &Mutex<()> {
        &self.lock
    }

    /// Takes the lock, waiting as long as it takes; the guard derefs to the elements.
    ///
    /// # Errors
    ///
    /// As [`Mutex::lock`](crate::Mutex::lock): [`LockError::OwnerDied`] (holding the lock; call
    /// [`OwnerDied::recover`](crate::sync::OwnerDied) on it), `NotRecoverable`,
    /// `WouldDeadlock`, `TooManyHeld`.
    ///
    /// ```
    /// let a = shmpool::LockedArray::<u64>::zeroed(2)?;
    /// a.lock()?[1] += 1;
    /// assert_eq!(a.get(1)?, 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn lock(&self) -> LockResult<LockedArrayGuard<'_, T>> {
        self.guard(self.lock.lock())
    }

    /// Takes the lock, waiting at most `timeout` ([`LockError::Timeout`] then).
    ///
    /// ```
    /// let a = shmpool::LockedArray::<u64>::zeroed(2)?;
    /// a.lock_timeout(std::time::Duration::from_millis(100))?[0] = 3;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<LockedArrayGuard<'_, T>> {
        self.guard(self.lock.lock_timeout(timeout))
    }

    /// Takes the lock if it is free ([`LockError::WouldBlock`] otherwise).
    ///
    /// ```
    /// let a = shmpool::LockedArray::<u64>::zeroed(2)?;
    /// assert!(a.try_lock().is_ok());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_lock(&self) -> LockResult<LockedArrayGuard<'_, T>> {
        self.guard(self.lock.try_lock())
    }

    fn guard<'a>(
        &'a self,
        r: LockResult<MutexGuard<'a, ()>>,
    ) -> LockResult<LockedArrayGuard<'a, T>> {
        let wrap = |lock| LockedArrayGuard { lock, ptr: self.data.ptr.cast::<T>(), len: self.len };
        match r {
            Ok(g) => Ok(wrap(g)),
            Err(LockError::OwnerDied(od)) => {
                Err(LockError::OwnerDied(OwnerDied { guard: wrap(od.guard), what: od.what }))
            }
            Err(LockError::NotRecoverable) => Err(LockError::NotRecoverable),
            Err(LockError::WouldBlock) => Err(LockError::WouldBlock),
            Err(LockError::Timeout(d)) => Err(LockError::Timeout(d)),
            Err(LockError::WouldDeadlock) => Err(LockError::WouldDeadlock),
            Err(LockError::TooManyHeld) => Err(LockError::TooManyHeld),
            Err(LockError::Io(e)) => Err(LockError::Io(e)),
        }
    }

    /// Element `i`, read under the lock (Python's `arr[i]`).
    ///
    /// # Errors
    ///
    /// As [`lock`](LockedArray::lock); [`Error::InvalidArgument`](crate::Error::InvalidArgument)
    /// when `i` is out of bounds.
    ///
    /// ```
    /// assert_eq!(shmpool::LockedArray::from_slice(&[4u8, 5])?.get(1)?, 5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get(&self, i: usize) -> Result<T> {
        let g = self.lock()?;
        g.get(i).copied().ok_or_else(|| out_of_bounds(i, g.len()))
    }

    /// Writes element `i` under the lock (Python's `arr[i] = v`).
    ///
    /// # Errors
    ///
    /// As [`get`](LockedArray::get).
    ///
    /// ```
    /// let a = shmpool::LockedArray::<u8>::zeroed(2)?;
    /// a.set(1, 9)?;
    /// assert!(a.set(2, 9).is_err());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn set(&self, i: usize, value: T) -> Result<()> {
        let mut g = self.lock()?;
        let len = g.len();
        *g.get_mut(i).ok_or_else(|| out_of_bounds(i, len))? = value;
        Ok(())
    }

    /// A copy of all elements, read under the lock (Python's `arr[:]`).
    ///
    /// ```
    /// assert_eq!(shmpool::LockedArray::from_slice(&[1u8, 2])?.to_vec()?, [1, 2]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>> {
        Ok(self.lock()?.to_vec())
    }

    /// Number of elements (needs no lock: it never changes).
    ///
    /// ```
    /// assert_eq!(shmpool::LockedArray::<u8>::zeroed(3)?.len(), 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    ///
    /// ```
    /// assert!(shmpool::LockedArray::<u8>::zeroed(0)?.is_empty());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn out_of_bounds(i: usize, len: usize) -> Error {
    Error::InvalidArgument {
        what: "element index",
        reason: format!(
            "{i} is out of bounds for a locked array of {len}: use an index below {len}"
        ),
    }
}

impl<T: Pod + Send> fmt::Debug for LockedArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockedArray")
            .field("type", &TypeDesc::of::<T>().describe())
            .field("len", &self.len)
            .field("lock", &self.lock)
            .field("handle", &self.data.seg.handle_text())
            .finish()
    }
}

/// The elements of a [`LockedArray`], with its lock held until the guard is dropped.
///
/// ```
/// let a = shmpool::LockedArray::<u32>::zeroed(3)?;
/// let mut g: shmpool::sync::LockedArrayGuard<'_, u32> = a.lock()?;
/// g.fill(7);
/// assert_eq!(g[2], 7);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct LockedArrayGuard<'a, T: Pod + Send> {
    lock: MutexGuard<'a, ()>,
    ptr: NonNull<T>,
    len: usize,
}

impl<'a, T: Pod + Send> OwnerDied<LockedArrayGuard<'a, T>> {
    /// Marks the lock consistent again and returns the guard: the caller vouches for the
    /// elements (check them, repair them through the guard), as
    /// [`OwnerDied::recover`](crate::sync::OwnerDied) for a [`Mutex`](crate::Mutex).
    ///
    /// ```
    /// fn fix(od: shmpool::sync::OwnerDied<shmpool::sync::LockedArrayGuard<'_, u64>>) {
    ///     od.recover().fill(0); // start over
    /// }
    /// ```
    pub fn recover(self) -> LockedArrayGuard<'a, T> {
        let OwnerDied { guard, what } = self;
        let LockedArrayGuard { lock, ptr, len } = guard;
        LockedArrayGuard { lock: OwnerDied { guard: lock, what }.recover(), ptr, len }
    }
}

impl<T: Pod + Send> Deref for LockedArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // Checks that the guard is used in the process that took it.
        let () = *self.lock;
        // SAFETY: `ptr` and `len` are the array's mapping, which outlives the borrow `'a` of the
        // array; every view of the elements reaches them only through a guard of this lock, which
        // this guard holds, so nothing else reads or writes them meanwhile.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Pod + Send> DerefMut for LockedArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        let () = *self.lock;
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow through this guard.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Pod + Send + fmt::Debug> fmt::Debug for LockedArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LockedArrayGuard").field(&&**self).finish()
    }
}
