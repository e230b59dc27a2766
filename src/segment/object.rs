//! `ShmBox<T>`: a segment that holds one shared object (a lock, a semaphore, a queue's control
//! block), used through `&T` from every process that maps it.

use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

use super::Segment;
use super::handle::{Locator, SegmentHandle};
use super::header::{Kind, Layout, TypeDesc};
use super::options::ShmOptions;
use crate::error::Result;

/// Types that may live in shared memory and be used through `&T` by several processes at once.
///
/// # Safety
///
/// An implementor must:
/// - be `#[repr(C)]` (or otherwise have one layout in every process running the same binary)
///   and contain no pointers, references, file descriptors or other process-local values;
/// - perform every mutation through `&self` with atomics or process-shared primitives (shared
///   futexes, `PTHREAD_PROCESS_SHARED` pthread objects), never std's locks, which use private
///   futexes;
/// - not need `Drop` to run: the memory is unmapped, never dropped.
pub(crate) unsafe trait ShmSafe: Sync + 'static {}

/// One `T` in its own segment. Creating it initialises `T` before publishing the header, so an
/// opener never sees a half-built object.
pub(crate) struct ShmBox<T: ShmSafe> {
    seg: Segment,
    ptr: NonNull<T>,
    _t: PhantomData<T>,
}

// SAFETY: `T: ShmSafe` is `Sync` and built for use from many processes, hence from many threads;
// the segment itself (an fd and a mapping) may move between and be shared by threads.
unsafe impl<T: ShmSafe> Send for ShmBox<T> {}
// SAFETY: as above; `&ShmBox<T>` only hands out `&T`, and `T: Sync`.
unsafe impl<T: ShmSafe> Sync for ShmBox<T> {}

#[allow(dead_code)] // open_*, new and segment are used by the sync and queue modules as they land
impl<T: ShmSafe> ShmBox<T> {
    /// Creates a segment holding `value`.
    pub(crate) fn new(kind: Kind, opts: &ShmOptions, value: T) -> Result<ShmBox<T>> {
        // SAFETY: the closure writes a whole, valid `T` to the properly aligned, exclusively
        // owned slot it is given.
        unsafe {
            Self::new_in_place(kind, opts, |p| {
                p.as_ptr().write(value);
                Ok(())
            })
        }
    }

    /// Creates a segment and lets `init` build the object at its final address (for objects,
    /// such as pthread mutexes, that must not be moved once initialised).
    ///
    /// # Safety
    ///
    /// `init` receives a pointer to zeroed, aligned, exclusively owned memory for one `T`; when it
    /// returns `Ok`, that memory must hold a valid `T`.
    pub(crate) unsafe fn new_in_place(
        kind: Kind,
        opts: &ShmOptions,
        init: impl FnOnce(NonNull<T>) -> Result<()>,
    ) -> Result<ShmBox<T>> {
        let layout = Layout::new(kind, TypeDesc::of::<T>(), 1)?;
        let seg = Segment::create(opts, &layout)?;
        let ptr = seg.data_ptr().cast::<T>();
        init(ptr)?;
        seg.publish();
        Ok(ShmBox { seg, ptr, _t: PhantomData })
    }

    /// Opens the object a handle refers to, checking kind and type.
    pub(crate) fn open_handle(h: &SegmentHandle, kind: Kind) -> Result<ShmBox<T>> {
        Self::open_loc(&h.loc, Some(h.nonce), kind)
    }

    /// Opens a named object, checking kind and type.
    pub(crate) fn open_named(name: &str, kind: Kind) -> Result<ShmBox<T>> {
        Self::open_loc(&Locator::Named(name.to_string()), None, kind)
    }

    fn open_loc(loc: &Locator, nonce: Option<u64>, kind: Kind) -> Result<ShmBox<T>> {
        let seg = Segment::open_typed(loc, nonce, kind, &TypeDesc::of::<T>())?;
        let ptr = seg.data_ptr().cast::<T>();
        Ok(ShmBox { seg, ptr, _t: PhantomData })
    }

    /// The underlying segment (name, handle, persist, unlink).
    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }
}

impl<T: ShmSafe> Deref for ShmBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the type check at open (or construction) guarantees a published, initialised
        // `T` at this aligned address for as long as the mapping (owned by `self.seg`) lives;
        // `T: ShmSafe` makes shared access from several processes sound.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ShmSafe> std::fmt::Debug for ShmBox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmBox").field("handle", &self.seg.handle().to_string()).finish()
    }
}
