//! Mapping calls behind fork-private segments: keep a mapping out of forked children
//! (`MADV_DONTFORK`), fill the hole it leaves in a child with an inaccessible reservation, and map
//! a page range of a segment file anew (what a child is lent).

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;

use super::cvt;

/// The page size (4096 on every Linux target shmpool runs on; read once from the kernel).
pub(crate) fn page_size() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    match PAGE.load(Relaxed) {
        0 => {
            // SAFETY: sysconf reads a constant of the system; no memory is touched.
            let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            let p = if p > 0 { p as usize } else { 4096 };
            PAGE.store(p, Relaxed);
            p
        }
        p => p,
    }
}

/// Keeps the mapping `[addr, addr + len)` out of every child forked from now on: in a child the
/// range is simply not mapped.
pub(crate) fn dont_fork(addr: NonNull<u8>, len: usize) -> io::Result<()> {
    // SAFETY: madvise(MADV_DONTFORK) changes only how a later fork treats this range of our own
    // mappings; it does not touch the memory or its contents.
    cvt(unsafe { libc::madvise(addr.as_ptr().cast(), len, libc::MADV_DONTFORK) }).map(drop)
}

/// Maps `[addr, addr + len)` as inaccessible, private, unreserved memory, replacing whatever is
/// mapped there: any access faults (SIGSEGV), and no later mapping can be placed there.
/// Async-signal-safe (one system call), for a forked child.
///
/// # Safety
///
/// Nothing may use memory in the range afterwards (it is gone); `addr` is page-aligned.
pub(crate) unsafe fn reserve_fixed(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: MAP_FIXED replaces the range; the caller guarantees nothing uses it any more.
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Maps `len` bytes of file `fd` from `offset` (a multiple of the page size), shared, at an
/// address of the kernel's choosing, with every page faulted in up front; read-only unless
/// `writable`.
pub(crate) fn map_fd_range(
    fd: RawFd,
    offset: u64,
    len: usize,
    writable: bool,
) -> io::Result<NonNull<u8>> {
    let prot = if writable { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_READ };
    // SAFETY: a new mapping at an address the kernel chooses replaces nothing; the caller owns
    // the file descriptor for the call's duration.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd,
            offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))
}
