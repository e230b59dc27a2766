//! `AnonBox<T>`: one shared object in a shared mapping of its own, the home of the pool's
//! control block.
//!
//! Under the fork start method the mapping is anonymous (`MAP_SHARED | MAP_ANONYMOUS`): workers
//! and their replacements inherit it, nothing else needs to reach it, and there is no descriptor
//! that another process of the same user could open through `/proc/<pid>/fd` to rewrite the job
//! descriptor (and with it the code addresses the workers call).
//!
//! Workers started by the forkserver or by spawn are not forks of the parent, so they cannot
//! inherit an anonymous mapping: for them the object lives in a sealed memfd that the parent
//! keeps open (for replacement workers) and each worker opens through `/proc/<parent>/fd/<fd>`,
//! maps, and closes at once ([`AnonBox::open_memfd`]). README.md, "Who can write the control
//! block", weighs the trade-off.

use std::fs::File;
use std::marker::PhantomData;
use std::ops::Deref;
use std::os::fd::{AsRawFd, RawFd};
use std::ptr::NonNull;

use memmap2::{MmapOptions, MmapRaw};

use crate::error::{Error, Result};
use crate::segment::object::ShmSafe;
use crate::sys;

/// One `T` in a shared mapping: anonymous (shared with children forked afterwards) or of a
/// memfd (reachable by any process that can open the creator's descriptor).
pub(crate) struct AnonBox<T: ShmSafe> {
    ptr: NonNull<T>,
    /// The memfd mapping, unmapped by its own drop; `None`: an anonymous mapping, unmapped by
    /// ours.
    map: Option<MmapRaw>,
    /// The memfd, kept open by the creator only (workers close theirs right after mapping).
    file: Option<File>,
    _t: PhantomData<T>,
}

// SAFETY: `T: ShmSafe` is `Sync` and built for use from many processes, hence many threads; the
// box only hands out `&T`, and the mapping may be unmapped from any thread.
unsafe impl<T: ShmSafe> Send for AnonBox<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Sync for AnonBox<T> {}

impl<T: ShmSafe> AnonBox<T> {
    /// A zeroed `T` in an anonymous shared mapping.
    ///
    /// # Safety
    ///
    /// The all-zero bit pattern must be a valid `T`.
    pub(crate) unsafe fn zeroed() -> Result<AnonBox<T>> {
        const { assert!(std::mem::align_of::<T>() <= 4096) };
        let p = sys::anon::map_shared(size_of::<T>()).map_err(Error::io("mmap"))?;
        Ok(AnonBox { ptr: p.cast::<T>(), map: None, file: None, _t: PhantomData })
    }

    /// A zeroed `T` in a new memfd of exactly `size_of::<T>()` bytes, reserved and sealed
    /// against resizing; the box keeps the descriptor open ([`fd`](AnonBox::fd)).
    ///
    /// # Safety
    ///
    /// The all-zero bit pattern must be a valid `T`.
    pub(crate) unsafe fn zeroed_memfd(debug_name: &str) -> Result<AnonBox<T>> {
        const { assert!(std::mem::align_of::<T>() <= 4096) };
        let file = sys::shm::memfd_create(debug_name).map_err(Error::io("memfd_create"))?;
        sys::shm::reserve(&file, size_of::<T>() as u64).map_err(Error::io("fallocate"))?;
        sys::shm::seal_size(&file).map_err(Error::io("sealing a memfd"))?;
        let map =
            MmapOptions::new().len(size_of::<T>()).map_raw(&file).map_err(Error::io("mmap"))?;
        let ptr = NonNull::new(map.as_mut_ptr().cast::<T>()).ok_or_else(|| {
            Error::io("mmap")(std::io::Error::other("the mapping is at address 0"))
        })?;
        Ok(AnonBox { ptr, map: Some(map), file: Some(file), _t: PhantomData })
    }

    /// Maps the `T` in the memfd that process `pid` holds at descriptor `fd` (made by
    /// [`zeroed_memfd`](AnonBox::zeroed_memfd)) and closes the descriptor it opened: the mapping
    /// stays, no descriptor does. The file must be a memfd of exactly `size_of::<T>()` bytes; the
    /// caller checks that it is the right one (a nonce inside `T`).
    ///
    /// # Safety
    ///
    /// Every bit pattern of `size_of::<T>()` bytes must be a valid `T` (the file's contents are
    /// whatever its writers made them).
    pub(crate) unsafe fn open_memfd(pid: u32, fd: RawFd) -> Result<AnonBox<T>> {
        const { assert!(std::mem::align_of::<T>() <= 4096) };
        let what = format!("the pool's control block (descriptor {fd} of process {pid})");
        let stale = |reason: String| Error::StaleHandle { what: what.clone(), reason };
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
            .map_err(|e| stale(format!("it cannot be looked up ({e}); has the parent exited?")))?;
        if !target.to_string_lossy().starts_with("/memfd:") {
            return Err(stale(format!("it is {}, not a memfd", target.display())));
        }
        let file =
            sys::shm::open_proc_fd(pid, fd).map_err(Error::io("opening /proc/<pid>/fd/<fd>"))?;
        let bytes = sys::shm::size(&file).map_err(Error::io("fstat"))?;
        if bytes != size_of::<T>() as u64 {
            return Err(stale(format!("it is {bytes} bytes, not {}", size_of::<T>())));
        }
        let map =
            MmapOptions::new().len(size_of::<T>()).map_raw(&file).map_err(Error::io("mmap"))?;
        drop(file);
        let ptr = NonNull::new(map.as_mut_ptr().cast::<T>()).ok_or_else(|| {
            Error::io("mmap")(std::io::Error::other("the mapping is at address 0"))
        })?;
        Ok(AnonBox { ptr, map: Some(map), file: None, _t: PhantomData })
    }

    /// The memfd's descriptor, in the process that created a memfd-backed box.
    pub(crate) fn fd(&self) -> Option<RawFd> {
        self.file.as_ref().map(|f| f.as_raw_fd())
    }
}

impl<T: ShmSafe> Deref for AnonBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: page-aligned (>= align_of::<T>()), size_of::<T>() bytes holding a valid `T`
        // (zeroed or any bytes, as the constructors' callers promised), mapped as long as `self`;
        // `T: ShmSafe` makes shared access from several processes sound.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ShmSafe> Drop for AnonBox<T> {
    fn drop(&mut self) {
        if self.map.is_some() {
            return; // the `MmapRaw` unmaps itself
        }
        // SAFETY: the anonymous mapping was made by `zeroed` for one `T` and `self`, its only
        // user in this process, is going away (a forked child's copy is its own mapping of the
        // same pages).
        unsafe { sys::anon::unmap(self.ptr.cast::<u8>(), size_of::<T>()) }
    }
}
