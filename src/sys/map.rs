//! Mapping calls behind fork-private segments: keep a mapping out of forked children
//! (`MADV_DONTFORK`), fill the hole it leaves in a child with an inaccessible reservation, and map
//! a page range of a segment file anew (what a child is lent).

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize};

use super::cvt;

/// The page size (4096 on every Linux target shmpool runs on; read once from the kernel).
pub(crate) fn page_size() -> usize {
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

/// Maps `[addr, addr + len)`, which must be free (a hole), as inaccessible, private,
/// unreserved memory: any access faults (SIGSEGV), and no later mapping can be placed there.
/// Fails, replacing nothing, if anything is mapped there. Async-signal-safe (system calls only),
/// for a forked child.
///
/// # Safety
///
/// `addr` is page-aligned; the range is a hole that stale pointers may point into.
pub(crate) unsafe fn reserve_hole(addr: usize, len: usize) -> io::Result<()> {
    let flags =
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED_NOREPLACE;
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; it maps fresh memory.
    let p = unsafe { libc::mmap(addr as *mut libc::c_void, len, libc::PROT_NONE, flags, -1, 0) };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    if p as usize != addr {
        // A kernel before 4.17 took the flag as a hint and placed it elsewhere.
        // SAFETY: `p` is the fresh mapping of `len` bytes just made; nothing uses it.
        unsafe { libc::munmap(p, len) };
        return Err(io::Error::from(io::ErrorKind::AddrInUse));
    }
    Ok(())
}

/// Replaces the mapping at `[addr, addr + len)` with inaccessible, private, unreserved memory:
/// any access faults from now on, and nothing else can be mapped there. Async-signal-safe.
///
/// # Safety
///
/// `addr` is page-aligned, and nothing may use the memory mapped there now, ever again.
pub(crate) unsafe fn replace_with_reservation(addr: usize, len: usize) -> io::Result<()> {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED;
    // SAFETY: MAP_FIXED replaces the range, which the caller guarantees nothing may use.
    let p = unsafe { libc::mmap(addr as *mut libc::c_void, len, libc::PROT_NONE, flags, -1, 0) };
    if p == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Maps `len` bytes of file `fd` from `offset` (a multiple of the page size), shared, at an
/// address of the kernel's choosing, read-only unless `writable`. Pages are faulted in on first
/// touch, several at a time (the kernel's fault-around): measured faster than `MAP_POPULATE`
/// for a child that goes over its whole chunk (`shmpool demo`: 13.2 against 17.8 ms).
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
        libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, offset as libc::off_t)
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// How many sealed holes the fault explanation knows (a child of a process with more fork-private
/// mappings still dies on them; only the message is left out for the rest).
const HOLE_SLOTS: usize = 256;
static HOLES: [AtomicUsize; 2 * HOLE_SLOTS] = [const { AtomicUsize::new(0) }; 2 * HOLE_SLOTS];
static HOLE_COUNT: AtomicUsize = AtomicUsize::new(0);
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);
/// The SIGSEGV action that was in place before [`explain_faults`] (std's stack-overflow handler,
/// or the default), put back by the handler before it returns.
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(std::ptr::null_mut());

/// Records sealed hole number `i` (`[start, end)`) for the fault explanation.
pub(crate) fn note_hole(i: usize, start: usize, end: usize) {
    if i < HOLE_SLOTS {
        HOLES[2 * i].store(start, Relaxed);
        HOLES[2 * i + 1].store(end, Relaxed);
        HOLE_COUNT.store(i + 1, Relaxed);
    }
}

/// Forgets every noted hole (before noting a child's own).
pub(crate) fn clear_holes() {
    HOLE_COUNT.store(0, Relaxed);
}

/// In a forked child with noted holes: a SIGSEGV at an address inside one writes what happened
/// to `report_fd` (read by the parent as the child's message) before the child dies of it as it
/// would have anyway; any other SIGSEGV goes to the action that was in place.
pub(crate) fn explain_faults(report_fd: RawFd) -> io::Result<()> {
    if HOLE_COUNT.load(Relaxed) == 0 {
        return Ok(());
    }
    REPORT_FD.store(report_fd, Relaxed);
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `old`, a valid out-pointer.
    cvt(unsafe { libc::sigaction(libc::SIGSEGV, std::ptr::null(), old.as_mut_ptr()) })?;
    // SAFETY: sigaction succeeded and filled `old`.
    let old = unsafe { old.assume_init() };
    if old.sa_sigaction == on_fault as *const () as usize {
        return Ok(()); // inherited from a parent that was itself a forked child
    }
    PREVIOUS.store(Box::into_raw(Box::new(old)), Relaxed);
    // SAFETY: all-zero is a valid sigaction (empty mask, no flags); filled in below.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = on_fault as *const () as usize;
    act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `act` is a valid sigaction whose handler is async-signal-safe (`on_fault`).
    cvt(unsafe { libc::sigaction(libc::SIGSEGV, &act, std::ptr::null_mut()) }).map(drop)
}

extern "C" fn on_fault(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel hands a SA_SIGINFO handler a valid siginfo.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // A SIGSEGV sent by a process (`kill`, `raise`: si_code <= 0) carries no fault address and
    // will not come again by itself: hand it to the previous action, re-raised below.
    let sent = code <= 0;
    let n = HOLE_COUNT.load(Relaxed).min(HOLE_SLOTS);
    let hit = !sent
        && (0..n)
            .any(|i| HOLES[2 * i].load(Relaxed) <= addr && addr < HOLES[2 * i + 1].load(Relaxed));
    if hit {
        let mut buf = [0u8; 512];
        let mut len = 0;
        let mut put = |b: &[u8]| {
            let k = b.len().min(buf.len() - len);
            buf[len..len + k].copy_from_slice(&b[..k]);
            len += k;
        };
        put(b"touched shared-array memory at 0x");
        let mut hex = [0u8; 16];
        for (i, h) in hex.iter_mut().enumerate() {
            *h = b"0123456789abcdef"[(addr >> (60 - 4 * i)) & 0xf];
        }
        put(&hex);
        put(b" that it was not given: a forked child inherits no SharedArray or RawValue (not \
through a capture, a static, an Arc or a std lock); lend the chunk it works on with \
Scope::fork_with, or pass a handle");
        // SAFETY: write(2) is async-signal-safe; `buf[..len]` is initialised.
        unsafe { libc::write(REPORT_FD.load(Relaxed), buf.as_ptr().cast(), len) };
    }
    let prev = PREVIOUS.load(Relaxed);
    // SAFETY: sigaction and raise are async-signal-safe; `prev` is null or a leaked, valid
    // sigaction. On return a fault happens again (a sent signal is raised again, pending until
    // this handler returns) and the restored action deals with it as it would have without us.
    unsafe {
        if prev.is_null() {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        } else {
            libc::sigaction(libc::SIGSEGV, prev, std::ptr::null_mut());
        }
        if sent {
            libc::raise(libc::SIGSEGV);
        }
    }
}
