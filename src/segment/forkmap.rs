//! Fork-private mappings: segments whose contents safe code may write through `&mut` (arrays,
//! raw values) are kept out of every forked child, and reach one only when lent explicitly.
//!
//! Why: `fork` copies every process-local owner and lock (a `std::sync::Mutex`, an `Arc`'s
//! count, a `static`) but not `MAP_SHARED` pages. A child that inherited a `SharedArray` through
//! any of them would hold "exclusive" access the parent holds too. So each such mapping is
//! advised `MADV_DONTFORK` (not mapped in any child), and recorded here, so that shmpool's own
//! fork path can:
//!
//! 1. in the child, fill each hole with an inaccessible reservation ([`ForkLock::seal_child`]):
//!    a stale pointer into it faults (SIGSEGV, reported as a dead child) instead of reaching
//!    memory the kernel later places there;
//! 2. in the parent, find the segment file and offset behind a slice lent to a child
//!    ([`ForkLock::find`]), which the child then maps anew at an address nothing else points to.
//!
//! The table's lock is held across the fork (taken right before, released on both sides right
//! after), so a child sees a consistent table even when another thread was registering.

use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::sys;

/// One fork-private mapping of this process.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// First byte (page-aligned).
    start: usize,
    /// Length in bytes, as mapped.
    len: usize,
    /// The segment's descriptor, open for as long as the entry is registered.
    fd: RawFd,
    /// The file offset mapped at `start` (page-aligned; 0 for a whole segment).
    offset: u64,
}

static MAPS: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn table() -> MutexGuard<'static, Vec<Entry>> {
    // The table is consistent after every statement: a panic elsewhere cannot poison its data.
    MAPS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps `[start, start + len)`, a mapping of file `fd` from `offset` (page-aligned), out of
/// forked children and records it. Call right after mapping; [`unregister`] before unmapping.
pub(crate) fn register(
    start: NonNull<u8>,
    len: usize,
    fd: RawFd,
    offset: u64,
) -> std::io::Result<()> {
    sys::map::dont_fork(start, len)?;
    table().push(Entry { start: start.as_ptr() as usize, len, fd, offset });
    Ok(())
}

/// Forgets the mapping that starts at `start` (before it is unmapped).
pub(crate) fn unregister(start: NonNull<u8>) {
    let start = start.as_ptr() as usize;
    let mut t = table();
    if let Some(i) = t.iter().position(|e| e.start == start) {
        t.swap_remove(i);
    }
}

/// Where a lent byte range lies in its segment file, for a child to map it anew.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileRange {
    /// The segment's descriptor (open in the parent, inherited by the child).
    pub(crate) fd: RawFd,
    /// Offset in the file of the first page to map (page-aligned).
    pub(crate) offset: u64,
    /// Bytes to map (whole pages, within the mapping).
    pub(crate) len: usize,
    /// Offset of the lent range's first byte from the first mapped page.
    pub(crate) delta: usize,
}

/// The table, locked: taken right before a fork and held across it.
pub(crate) struct ForkLock(MutexGuard<'static, Vec<Entry>>);

impl ForkLock {
    /// Locks the table. Never hold it while calling anything that may create or drop a segment.
    pub(crate) fn acquire() -> ForkLock {
        ForkLock(table())
    }

    /// The segment file range behind `[addr, addr + bytes)`, if that range lies inside one
    /// fork-private mapping of this process; `None` otherwise (private memory, or a segment
    /// that is shared by design).
    pub(crate) fn find(&self, addr: usize, bytes: usize) -> Option<FileRange> {
        find_in(&self.0, addr, bytes)
    }

    /// In a freshly forked child: puts an inaccessible reservation where each fork-private
    /// mapping of the parent was (the kernel left a hole there), arranges for a fault in one to
    /// be explained on `report_fd`, then unlocks the child's copy of the table. Only system
    /// calls and atomics: safe in the child of a multi-threaded process. On failure the child
    /// must not run user code (a hole could be reused).
    pub(crate) fn seal_child(self, report_fd: RawFd) -> std::io::Result<()> {
        let page = sys::map::page_size();
        sys::map::clear_holes();
        for (i, e) in self.0.iter().enumerate() {
            let len = e.len.next_multiple_of(page);
            // SAFETY: the child just forked: the range is a hole left by MADV_DONTFORK (nothing of
            // the child's is there), and `start` is page-aligned (it came from mmap).
            unsafe { sys::map::reserve_fixed(e.start, len)? };
            sys::map::note_hole(i, e.start, e.start + len);
        }
        if !self.0.is_empty() {
            sys::map::explain_faults(report_fd)?;
        }
        Ok(())
    }
}

fn find_in(entries: &[Entry], addr: usize, bytes: usize) -> Option<FileRange> {
    let end = addr.checked_add(bytes)?;
    let e = entries.iter().find(|e| e.start <= addr && end <= e.start + e.len)?;
    let page = sys::map::page_size();
    let first = (addr - e.start) / page * page;
    // Round up to whole pages, but never past the mapping (its last page may be partial; mapping
    // that page of the file is fine, as the creator's mapping did).
    let last = (end - e.start).next_multiple_of(page).min(e.len.next_multiple_of(page));
    Some(FileRange {
        fd: e.fd,
        offset: e.offset + first as u64,
        len: last - first,
        delta: addr - e.start - first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_rounds_to_pages_inside_the_mapping() {
        let page = sys::map::page_size();
        // `find_in` only does arithmetic: a made-up entry is enough.
        let start = 0x7000_0000_0000usize;
        let t = [Entry { start, len: 3 * page + 100, fd: 42, offset: 0 }];
        let r = find_in(&t, start + page + 8, 16).unwrap();
        assert_eq!((r.fd, r.offset, r.len, r.delta), (42, page as u64, page, 8));
        // Spanning into the partial last page: rounded up to it, not beyond.
        let r = find_in(&t, start + 2 * page + 10, page + 90).unwrap();
        assert_eq!((r.offset, r.len, r.delta), (2 * page as u64, 2 * page, 10));
        // One byte past the mapping: not inside it.
        assert!(find_in(&t, start + 3 * page, 101).is_none());
        assert!(find_in(&t, start - 1, 2).is_none());
        assert!(find_in(&t, usize::MAX - 4, 8).is_none());
        // A mapping of a later part of a file (a range lent to a child, lent on again).
        let t = [Entry { start, len: 2 * page, fd: 7, offset: 5 * page as u64 }];
        let r = find_in(&t, start + page + 1, 1).unwrap();
        assert_eq!((r.offset, r.len, r.delta), (6 * page as u64, page, 1));
    }
}
