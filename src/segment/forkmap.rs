//! Fork-private mappings: segments whose contents safe code may write through `&mut` (arrays,
//! raw values) are kept out of every forked child, and reach one only when lent explicitly.
//!
//! Why: `fork` copies every process-local owner and lock (a `std::sync::Mutex`, an `Arc`'s
//! count, a `static`) but not `MAP_SHARED` pages. A child that inherited a `SharedArray` through
//! any of them would hold "exclusive" access the parent holds too. So each such mapping is
//! advised `MADV_DONTFORK` (not mapped in any child) and recorded in a table, and `fork`
//! handlers (`pthread_atfork`, so every fork through glibc is covered, shmpool's or not):
//!
//! 1. lock the table before the fork and unlock it after, on both sides, so the child's copy is
//!    consistent even when another thread was registering;
//! 2. in the child, before anything else runs, fill each hole with an inaccessible reservation:
//!    a stale pointer into it faults (SIGSEGV, reported as a dead child) instead of reaching
//!    memory mapped there later; then empty the child's table, since none of those mappings is
//!    the child's: a slice into one can never be lent on, and a copy of the `Segment` is dead
//!    (see `Segment::is_inherited`);
//! 3. in the parent, [`find`] gives the segment file and offset behind a slice lent to a child,
//!    which the child then maps anew at an address nothing else points to (`process::lend`).
//!
//! Lock-protected data (`Mutex<T>`, `SharedValue<T>`) is recorded too, as [`Policy::Guarded`]:
//! children keep it, unless the fork happens while this process holds a lock guard (only a fork
//! made outside shmpool can: shmpool's refuse), in which case the child loses it the same way.
//!
//! Not covered: `vfork`, `posix_spawn` and raw `clone` run no fork handlers; the first two exec
//! at once, the last is `unsafe` and the caller's to keep sound.

use std::cell::UnsafeCell;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

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
    /// What a fork does with it.
    policy: Policy,
}

/// What a fork does with a registered mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Data safe code writes through `&mut` (arrays, raw values): never in a child.
    Private,
    /// Data behind a process-shared lock (`Mutex<T>`, `SharedValue<T>`): shared with children,
    /// except by a fork made while this process holds a lock guard, which shmpool's own forks
    /// refuse (`ForkWhileLocked`) and a foreign fork cannot: there the child loses it, since a
    /// `&mut` taken from the guard is a copy nothing can check.
    Guarded,
}

/// The table and its lock. Not a `std::sync::Mutex`: the fork handlers take the lock in one
/// function and release it in another (on each side of the fork), which a guard cannot express.
struct Table {
    busy: AtomicBool,
    entries: UnsafeCell<Vec<Entry>>,
}

// SAFETY: `entries` is only touched by whoever holds `busy` (`Locked`, or a fork handler between
// `prepare` and `parent`/`child`), which makes accesses from different threads exclusive.
unsafe impl Sync for Table {}

static TABLE: Table = Table { busy: AtomicBool::new(false), entries: UnsafeCell::new(Vec::new()) };

/// Exclusive access to the table, released on drop. Critical sections are a few instructions
/// (a push, a scan), so waiting spins and yields.
struct Locked(());

impl Locked {
    fn acquire() -> Locked {
        while TABLE.busy.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
            std::thread::yield_now();
        }
        Locked(())
    }

    fn entries(&mut self) -> &mut Vec<Entry> {
        // SAFETY: this value holds `busy`, so no other access to `entries` runs meanwhile; the
        // borrow ends before the lock is released (it is tied to `&mut self`).
        unsafe { &mut *TABLE.entries.get() }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        TABLE.busy.store(false, Release);
    }
}

extern "C" fn before_fork() {
    // Held across the fork; `after_fork_in_parent` and `after_fork_in_child` release it.
    std::mem::forget(Locked::acquire());
}

extern "C" fn after_fork_in_parent() {
    TABLE.busy.store(false, Release);
}

extern "C" fn after_fork_in_child() {
    // SAFETY: `before_fork` took the lock in the forking thread, the only thread of this child.
    let entries = unsafe { &mut *TABLE.entries.get() };
    let page = sys::map::page_size();
    // Guards copied into this child (and any `&mut` taken from them) would write the data of a
    // lock the parent holds: the guarded mappings go too. Atomics only: async-signal-safe.
    let guards = crate::sync::held_guards() != 0;
    sys::map::clear_holes();
    let mut holes = 0;
    for e in entries.iter() {
        let len = e.len.next_multiple_of(page);
        let sealed = match e.policy {
            // SAFETY: a hole MADV_DONTFORK left in this new child, page-aligned.
            Policy::Private => unsafe { sys::map::reserve_hole(e.start, len) },
            // SAFETY: our inherited mapping of lock-protected data, page-aligned; what points
            // into it is exactly what must not be used here.
            Policy::Guarded if guards => unsafe {
                sys::map::replace_with_reservation(e.start, len)
            },
            Policy::Guarded => continue,
        };
        if sealed.is_err() {
            // A hole that cannot be reserved could be reused: run nothing of the child's.
            sys::proc::exit_now(crate::process::child::SEAL_FAILED_EXIT_CODE);
        }
        sys::map::note_hole(holes, e.start, e.start + len);
        holes += 1;
    }
    // A fork-private mapping is not the child's (its copies of their `Segment`s are dead): it
    // must never resolve a lent slice, nor be reserved again in a grandchild (it already is).
    // Guarded mappings the child kept are its own, as inherited.
    entries.retain(|e| e.policy == Policy::Guarded && !guards);
    TABLE.busy.store(false, Release);
}

/// Registers the fork handlers, once per process. Called before `main` by shmpool's constructor
/// (`process::boot`, single-threaded), and again before every registration as a fallback. No
/// `Once`: a fork while another thread ran it would leave the child's `Once` stuck for good.
pub(crate) fn install_fork_handlers() {
    static HANDLERS: sys::proc::AtForkOnce = sys::proc::AtForkOnce::new();
    let r =
        HANDLERS.register(Some(before_fork), Some(after_fork_in_parent), Some(after_fork_in_child));
    // Busy: another thread is installing them right now. Failed (ENOMEM): without the handlers
    // nothing keeps children sound.
    assert_ne!(
        r,
        sys::proc::AtFork::Failed,
        "pthread_atfork failed: cannot keep arrays out of forks"
    );
}

/// Records `[start, start + len)`, a mapping of file `fd` from `offset` (page-aligned), for
/// forks to treat as `policy` says; a [`Policy::Private`] one is kept out of children at once.
/// Call right after mapping; [`unregister`] before unmapping.
pub(crate) fn register(
    start: NonNull<u8>,
    len: usize,
    fd: RawFd,
    offset: u64,
    policy: Policy,
) -> std::io::Result<()> {
    install_fork_handlers();
    if policy == Policy::Private {
        sys::map::dont_fork(start, len)?;
    }
    let e = Entry { start: start.as_ptr() as usize, len, fd, offset, policy };
    Locked::acquire().entries().push(e);
    Ok(())
}

/// Forgets the mapping that starts at `start` (before it is unmapped).
pub(crate) fn unregister(start: NonNull<u8>) {
    let start = start.as_ptr() as usize;
    let mut t = Locked::acquire();
    let entries = t.entries();
    if let Some(i) = entries.iter().position(|e| e.start == start) {
        entries.swap_remove(i);
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

/// The segment file range behind `[addr, addr + bytes)`, if that range lies inside one
/// fork-private mapping this process made; `None` otherwise (private memory, a segment shared
/// by design, or a mapping inherited from a parent, which is a sealed hole here).
pub(crate) fn find(addr: usize, bytes: usize) -> Option<FileRange> {
    find_in(Locked::acquire().entries(), addr, bytes)
}

fn find_in(entries: &[Entry], addr: usize, bytes: usize) -> Option<FileRange> {
    let end = addr.checked_add(bytes)?;
    let e = entries
        .iter()
        .find(|e| e.policy == Policy::Private && e.start <= addr && end <= e.start + e.len)?;
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
        let t = [Entry { start, len: 3 * page + 100, fd: 42, offset: 0, policy: Policy::Private }];
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
        let t = [Entry {
            start,
            len: 2 * page,
            fd: 7,
            offset: 5 * page as u64,
            policy: Policy::Private,
        }];
        let r = find_in(&t, start + page + 1, 1).unwrap();
        assert_eq!((r.offset, r.len, r.delta), (6 * page as u64, page, 1));
        // Lock-protected data is never lent: the lock, not a borrow, guards it.
        let t = [Entry { start, len: 2 * page, fd: 7, offset: 0, policy: Policy::Guarded }];
        assert!(find_in(&t, start + 1, 1).is_none());
    }
}
