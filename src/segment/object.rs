//! `ShmBox<T>`: a segment that holds one shared object (a lock, a semaphore, a queue's control
//! block), used through `&T` from every process that maps it.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;

use super::Segment;
use super::handle::{Locator, SegmentHandle};
use super::header::{Kind, Layout, TypeDesc};
use super::options::ShmOptions;
use crate::error::{Error, Result};

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
/// - not need `Drop` to run: the memory is unmapped, never dropped;
/// - stay mapped while any thread holds it: if a thread of this process can keep a pointer into
///   the object after every Rust borrow of it has ended (a locked robust pthread mutex is linked
///   into its holder's robust list through the mutex's own memory, and a forgotten guard leaves
///   it locked), [`keep_mapped`](ShmSafe::keep_mapped) must return true while that is so.
pub(crate) unsafe trait ShmSafe: Sync + 'static {
    /// Whether a thread of this process still points into this object's memory from outside
    /// Rust's borrows (for robust locks: the lock word's owner is one of our threads), so that
    /// dropping its [`ShmBox`] must leave the segment mapped rather than unmap it under them.
    fn keep_mapped(&self) -> bool {
        false
    }
}

/// One `T` in its own segment. Creating it initialises `T` before publishing the header, so an
/// opener never sees a half-built object.
///
/// Dropping it unmaps the segment, unless [`ShmSafe::keep_mapped`] says a thread of this process
/// still points into the object (a robust lock whose guard was forgotten): then the mapping and
/// the fd are leaked for the rest of the process's life, so that nothing is ever mapped where
/// glibc and the kernel will write.
pub(crate) struct ShmBox<T: ShmSafe> {
    /// Dropped in `Drop`, unless leaked.
    seg: ManuallyDrop<Segment>,
    ptr: NonNull<T>,
    /// The pid that created the segment through this box. A leaked segment's name is removed as
    /// `Segment`'s own drop would have done (its creator's handle unlinks it; object segments
    /// are never `persist`ed).
    created_by: Option<u32>,
    _t: PhantomData<T>,
}

// SAFETY: `T: ShmSafe` is `Sync` and built for use from many processes, hence from many threads;
// the segment itself (an fd and a mapping) may move between and be shared by threads.
unsafe impl<T: ShmSafe> Send for ShmBox<T> {}
// SAFETY: as above; `&ShmBox<T>` only hands out `&T`, and `T: Sync`.
unsafe impl<T: ShmSafe> Sync for ShmBox<T> {}

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
        Ok(ShmBox {
            seg: ManuallyDrop::new(seg),
            ptr,
            created_by: Some(crate::sys::proc::getpid()),
            _t: PhantomData,
        })
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
        // The shape check only makes the header agree with itself and the file: a crafted header
        // with the right kind and type but `len = 0` (and sizes to match) would let `deref` read
        // past the segment's end. An object segment holds exactly one `T`.
        if seg.len() != 1 {
            return Err(Error::CorruptHeader {
                what: match loc {
                    Locator::Named(n) => format!("segment {n}"),
                    Locator::Anonymous { pid, fd } => format!("anonymous segment {pid}/{fd}"),
                },
                reason: format!("it records {} elements; a shared object has exactly 1", seg.len()),
            });
        }
        let ptr = seg.data_ptr().cast::<T>();
        Ok(ShmBox { seg: ManuallyDrop::new(seg), ptr, created_by: None, _t: PhantomData })
    }

    /// The underlying segment (name, handle). Do not `persist` it: the leaking drop assumes
    /// an object segment is never persisted.
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

impl<T: ShmSafe> Drop for ShmBox<T> {
    fn drop(&mut self) {
        if (**self).keep_mapped() {
            // A thread of this process links into this memory (a forgotten guard of a robust
            // lock): unmapping would let glibc's next robust lock on that thread, and the kernel
            // at its exit, write into whatever is mapped here next. Leak the mapping and the fd.
            if self.created_by == Some(crate::sys::proc::getpid()) && self.seg.name().is_some() {
                let _ = self.seg.unlink();
            }
            return;
        }
        // SAFETY: `seg` is dropped exactly once, here, and `self` is never used again.
        unsafe { ManuallyDrop::drop(&mut self.seg) }
    }
}

impl<T: ShmSafe> std::fmt::Debug for ShmBox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmBox").field("handle", &self.seg.handle().to_string()).finish()
    }
}

/// Whether `addr` lies inside one of this process's mappings (`/proc/self/maps`).
#[cfg(test)]
pub(crate) fn is_mapped(addr: usize) -> bool {
    let maps = crate::sys::maps::read_self().unwrap();
    crate::sys::maps::parse(&maps).any(|m| (m.start..m.end).contains(&addr))
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::os::unix::fs::FileExt;

    use crate::{Error, Mutex, ShmOptions};

    fn poke(file: &std::fs::File, offset: u64, value: u64) {
        file.write_all_at(&value.to_le_bytes(), offset).unwrap();
    }

    #[test]
    fn an_object_header_claiming_no_elements_is_corrupt() {
        let m = Mutex::new_with(7u64, &ShmOptions::new().generated_name()).unwrap();
        let name = m.name().unwrap().to_string();
        let file =
            OpenOptions::new().read(true).write(true).open(format!("/dev/shm/{name}")).unwrap();
        let full = file.metadata().unwrap().len();
        let mut data_offset = [0u8; 8];
        file.read_exact_at(&mut data_offset, 56).unwrap();
        let data_offset = u64::from_le_bytes(data_offset);

        // len = 0 alone: the sizes no longer agree.
        poke(&file, 48, 0);
        assert!(matches!(Mutex::<u64>::open(&name), Err(Error::CorruptHeader { .. })));

        // len = 0 with every size made consistent (data_bytes 0, the file cut to the header):
        // only the object's own check catches it, or `deref` would read past the end.
        poke(&file, 64, 0);
        poke(&file, 72, data_offset);
        file.set_len(data_offset).unwrap();
        match Mutex::<u64>::open(&name) {
            Err(Error::CorruptHeader { reason, .. }) => assert!(reason.contains("exactly 1")),
            other => panic!("expected CorruptHeader, got {:?}", other.map(drop)),
        }

        // Put the segment back (the data comes back zeroed: an unlocked mutex) before `m`, whose
        // mapping covers the cut-off page, is dropped.
        file.set_len(full).unwrap();
        poke(&file, 48, 1);
        poke(&file, 64, full - data_offset);
        poke(&file, 72, full);
        assert!(Mutex::<u64>::open(&name).is_ok());
        drop(m);
    }
}
