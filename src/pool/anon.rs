//! `AnonBox<T>`: one shared object in an anonymous shared mapping, the home of the pool's
//! control block.
//!
//! Workers (and their replacements) are forked, so they inherit the mapping; nothing else needs
//! to reach it. Unlike a memfd segment there is no descriptor that another process of the same
//! user could open through `/proc/<pid>/fd` to rewrite the job descriptor (and with it the code
//! addresses the workers call).

use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

use crate::error::{Error, Result};
use crate::segment::object::ShmSafe;
use crate::sys;

/// One `T` in a `MAP_SHARED | MAP_ANONYMOUS` mapping, shared with children forked afterwards.
pub(crate) struct AnonBox<T: ShmSafe> {
    ptr: NonNull<T>,
    _t: PhantomData<T>,
}

// SAFETY: `T: ShmSafe` is `Sync` and built for use from many processes, hence many threads; the
// box only hands out `&T`, and the mapping may be unmapped from any thread.
unsafe impl<T: ShmSafe> Send for AnonBox<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Sync for AnonBox<T> {}

impl<T: ShmSafe> AnonBox<T> {
    /// A zeroed `T`.
    ///
    /// # Safety
    ///
    /// The all-zero bit pattern must be a valid `T`.
    pub(crate) unsafe fn zeroed() -> Result<AnonBox<T>> {
        const { assert!(std::mem::align_of::<T>() <= 4096) };
        let p = sys::anon::map_shared(size_of::<T>()).map_err(Error::io("mmap"))?;
        Ok(AnonBox { ptr: p.cast::<T>(), _t: PhantomData })
    }
}

impl<T: ShmSafe> Deref for AnonBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the mapping is page-aligned (checked against `T`'s alignment above), zeroed,
        // which the constructor's caller promised is a valid `T`, and lives as long as `self`;
        // `T: ShmSafe` makes shared access from several processes sound.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ShmSafe> Drop for AnonBox<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `zeroed` for one `T` and `self`, its only user in this
        // process, is going away (a forked child's copy is its own mapping of the same pages).
        unsafe { sys::anon::unmap(self.ptr.cast::<u8>(), size_of::<T>()) }
    }
}
