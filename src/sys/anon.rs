//! Anonymous shared memory: a `MAP_SHARED | MAP_ANONYMOUS` mapping. Forked children share it;
//! no file descriptor names it, so no other process can open it through `/proc/<pid>/fd`.

use std::io;
use std::ptr::NonNull;

/// Maps `len` bytes of zeroed memory shared with every child forked afterwards.
pub(crate) fn map_shared(len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing touches no
    // existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len.max(1),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// Unmaps a mapping made by [`map_shared`].
///
/// # Safety
///
/// `ptr` and `len` are those of one [`map_shared`] call whose mapping was not unmapped yet, and
/// nothing uses the memory afterwards.
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: per the contract, this is a live mapping of `len` bytes nobody uses any more.
    unsafe { libc::munmap(ptr.as_ptr().cast(), len.max(1)) };
}
