//! The pool's control block: one `#[repr(C)]` struct of atomics in an anonymous shared mapping
//! (inherited by the forked workers, reachable through no file descriptor; a sealed memfd when
//! the workers are started by the forkserver or spawn, see `anon.rs`), read
//! and written by the parent and every worker. It holds the job descriptor, the claim cursor,
//! the completion counter and done bitmap, the error slot, the retry ring and one slot per worker.
//!
//! Only the parent writes the job descriptor, and only while no job is in flight; workers read
//! it after `job_id` (acquire) and prove their read was current by claiming a chunk with a
//! compare-and-swap on `cursor`, which carries the job id in its high 32 bits (see README.md).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU32, AtomicU64, Ordering};

use crate::segment::handle::{Locator, SegmentHandle};
use crate::segment::object::ShmSafe;

/// Most workers a pool can have (one slot each in the control block).
pub(crate) const MAX_WORKERS: usize = 256;
/// Most chunks one job can have (bits in the done bitmap); the chunk size grows to fit.
pub(crate) const MAX_CHUNKS: usize = 1 << 22;
/// Arrays a job can name: up to three user arrays plus the per-chunk results array.
pub(crate) const MAX_ARRAYS: usize = 4;
/// Bytes of a named segment's name kept in a descriptor.
pub(crate) const NAME_BYTES: usize = 256;
/// Entries in the retry ring.
pub(crate) const RETRY_RING: usize = 64;
/// Bytes of the scratch area that carries small task arguments and results.
pub(crate) const SCRATCH_BYTES: usize = 64 * 1024;
/// Bytes of a panic message kept in the error slot.
pub(crate) const MESSAGE_BYTES: usize = 512;

/// The cursor's index half when claiming is closed (no job, or a job being written).
pub(crate) const CLOSED: u64 = u32::MAX as u64;
/// A worker slot's `held` when it holds no chunk.
pub(crate) const NOTHING: u64 = u64::MAX;

/// Pool states (`ControlBlock::state`).
pub(crate) const RUNNING: u32 = 0;
/// `close` was called: workers exit once idle.
pub(crate) const CLOSING: u32 = 1;
/// `terminate` was called: workers exit at once.
pub(crate) const TERMINATING: u32 = 2;

/// `parent_sleeping` when the parent wants a wake at every finished chunk (streaming results),
/// rather than only when the job completes (1).
pub(crate) const WAKE_EACH_CHUNK: u32 = 2;

/// What ended a chunk badly (`ErrorSlot::kind`).
pub(crate) const ERR_NONE: u32 = 0;
/// The kernel panicked.
pub(crate) const ERR_PANIC: u32 = 1;
/// The slot is being written.
pub(crate) const ERR_WRITING: u32 = 2;

/// Packs a job id and a chunk index into one word (cursor values, `held`, retry entries).
pub(crate) fn pack(job: u32, index: u64) -> u64 {
    ((job as u64) << 32) | (index & CLOSED)
}

/// The inverse of [`pack`].
pub(crate) fn unpack(v: u64) -> (u32, u64) {
    ((v >> 32) as u32, v & CLOSED)
}

/// Where one array of a job lives, in a form any process can resolve.
#[repr(C)]
pub(crate) struct ArrayRef {
    /// 0: unused, 1: anonymous memfd (pid, fd), 2: named, 3: the control block's scratch area
    /// at byte `offset`, elements of `elem_size` bytes.
    pub(crate) tag: AtomicU32,
    pub(crate) pid: AtomicU32,
    pub(crate) fd: AtomicI32,
    pub(crate) name_len: AtomicU32,
    /// 1 when the segment (tag 1 or 2) is a byte region: elements of `elem_size` bytes from
    /// byte `offset` of its data, rather than a typed array.
    pub(crate) region: AtomicU32,
    pub(crate) _pad: AtomicU32,
    pub(crate) nonce: AtomicU64,
    /// Elements the kernel may touch (checked against the mapped header by the worker).
    pub(crate) len: AtomicU64,
    pub(crate) offset: AtomicU64,
    pub(crate) elem_size: AtomicU64,
    pub(crate) name: [AtomicU8; NAME_BYTES],
}

impl ArrayRef {
    /// Records `h` (parent side, before publishing the job).
    pub(crate) fn set(&self, h: Option<&SegmentHandle>, len: usize) {
        self.len.store(len as u64, Ordering::Relaxed);
        self.region.store(0, Ordering::Relaxed);
        let Some(h) = h else {
            self.tag.store(0, Ordering::Relaxed);
            return;
        };
        self.nonce.store(h.nonce, Ordering::Relaxed);
        match &h.loc {
            Locator::Anonymous { pid, fd } => {
                self.tag.store(1, Ordering::Relaxed);
                self.pid.store(*pid, Ordering::Relaxed);
                self.fd.store(*fd, Ordering::Relaxed);
            }
            Locator::Named(n) => {
                self.tag.store(2, Ordering::Relaxed);
                let b = n.as_bytes();
                let len = b.len().min(NAME_BYTES);
                for (dst, src) in self.name.iter().zip(&b[..len]) {
                    dst.store(*src, Ordering::Relaxed);
                }
                self.name_len.store(len as u32, Ordering::Relaxed);
            }
        }
    }

    /// Records a region of the scratch area (parent side, before publishing the job).
    pub(crate) fn set_scratch(&self, offset: usize, len: usize, elem_size: usize) {
        self.tag.store(3, Ordering::Relaxed);
        self.offset.store(offset as u64, Ordering::Relaxed);
        self.len.store(len as u64, Ordering::Relaxed);
        self.elem_size.store(elem_size as u64, Ordering::Relaxed);
    }

    /// Records a region of a shared byte segment (the pool's task arena): elements of
    /// `elem_size` bytes from byte `offset` of the segment's data.
    pub(crate) fn set_region(
        &self,
        h: &SegmentHandle,
        offset: usize,
        len: usize,
        elem_size: usize,
    ) {
        self.set(Some(h), len);
        self.region.store(1, Ordering::Relaxed);
        self.offset.store(offset as u64, Ordering::Relaxed);
        self.elem_size.store(elem_size as u64, Ordering::Relaxed);
    }

    /// Reads the handle back (worker side); `None` for an unused slot.
    pub(crate) fn get(&self) -> Option<SegmentHandle> {
        let nonce = self.nonce.load(Ordering::Relaxed);
        let loc = match self.tag.load(Ordering::Relaxed) {
            1 => Locator::Anonymous {
                pid: self.pid.load(Ordering::Relaxed),
                fd: self.fd.load(Ordering::Relaxed),
            },
            2 => {
                let len = (self.name_len.load(Ordering::Relaxed) as usize).min(NAME_BYTES);
                let bytes: Vec<u8> =
                    self.name[..len].iter().map(|b| b.load(Ordering::Relaxed)).collect();
                Locator::Named(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => return None,
        };
        Some(SegmentHandle { loc, nonce })
    }
}

/// The job descriptor: everything a worker needs to run any chunk of the current job.
#[repr(C)]
pub(crate) struct JobDesc {
    /// The monomorphised trampoline that knows the element types, as an offset from a known
    /// function (`kernel::to_offset`).
    pub(crate) trampoline: AtomicU64,
    /// The user's kernel `fn`, as an offset likewise.
    pub(crate) kernel: AtomicU64,
    /// Elements in the iteration space (the length of the array being chunked).
    pub(crate) len: AtomicU64,
    /// Elements per chunk (the last chunk may be shorter).
    pub(crate) chunk_size: AtomicU64,
    /// Chunks in the job. Stored with release after the cursor is closed, loaded with acquire
    /// before a claim (README.md, "Memory ordering").
    pub(crate) chunks: AtomicU64,
    /// Neighbours on each side a halo kernel may read.
    pub(crate) radius: AtomicU64,
    /// Retries left for chunks whose worker died (0: fail the job instead).
    pub(crate) retries: AtomicU32,
    pub(crate) _pad: AtomicU32,
    /// Jobs the parent has published so far, this one included: a 64-bit name for the
    /// descriptor's contents that never repeats (job ids wrap after 2^32), which keys the
    /// workers' cache of array views.
    pub(crate) generation: AtomicU64,
    /// The arrays, by handle.
    pub(crate) arrays: [ArrayRef; MAX_ARRAYS],
}

/// The first failure of the current job.
#[repr(C)]
pub(crate) struct ErrorSlot {
    /// ERR_NONE, ERR_WRITING while being filled, or the kind once written.
    pub(crate) kind: AtomicU32,
    pub(crate) len: AtomicU32,
    pub(crate) chunk: AtomicU64,
    pub(crate) pid: AtomicU32,
    pub(crate) _pad: AtomicU32,
    pub(crate) message: [AtomicU8; MESSAGE_BYTES],
}

/// One worker's slot.
#[repr(C)]
pub(crate) struct WorkerSlot {
    /// The worker's pid (written by the parent after the fork, informational).
    pub(crate) pid: AtomicU32,
    /// 1 once the worker has decided to exit after `maxtasksperchild` chunks.
    pub(crate) retiring: AtomicU32,
    /// `pack(job, chunk)` of the chunk it is claiming or running, [`NOTHING`] otherwise. Stored
    /// before the claim's compare-and-swap, cleared after the chunk's done bit is set.
    pub(crate) held: AtomicU64,
    /// Chunks it completed (all jobs).
    pub(crate) completed: AtomicU64,
    /// 1 once the worker has finished the pool's initializer (reset to 0 by the parent before
    /// it starts a worker in this slot). A worker that dies with this still 0 counts towards
    /// giving up on a failing initializer; one killed after it does not.
    pub(crate) initialized: AtomicU32,
    pub(crate) _pad32: AtomicU32,
    pub(crate) _pad: [AtomicU64; 4],
}

/// The whole control block.
#[repr(C)]
pub(crate) struct ControlBlock {
    /// Futex word the workers sleep on: bumped for a new job, a retry, close and terminate.
    pub(crate) wake_seq: AtomicU32,
    /// Workers inside (or about to enter) the futex wait on `wake_seq`.
    pub(crate) sleepers: AtomicU32,
    /// [`RUNNING`], [`CLOSING`] or [`TERMINATING`].
    pub(crate) state: AtomicU32,
    /// The current job's id (0: none yet). Published with release after the descriptor.
    pub(crate) job_id: AtomicU32,
    /// A random number the parent writes at start and passes to workers it does not fork, which
    /// check it after mapping the block through `/proc/<parent>/fd` (a descriptor number reused
    /// for another memfd of the same size is refused).
    pub(crate) nonce: AtomicU64,
    pub(crate) _pad0: [AtomicU64; 5],
    /// `pack(job_id, next chunk)`; claims are compare-and-swaps. Own cache line.
    pub(crate) cursor: AtomicU64,
    pub(crate) _pad1: [AtomicU64; 7],
    /// Chunks finished (successfully, panicked, or given up as lost). Own cache line.
    pub(crate) done: AtomicU64,
    pub(crate) _pad2: [AtomicU64; 7],
    /// Non-zero while the parent is (about to be) asleep in `poll` on its wake pipe and the
    /// workers' exit descriptors: 1 to be woken when the job completes, [`WAKE_EACH_CHUNK`] at
    /// every finished chunk.
    pub(crate) parent_sleeping: AtomicU32,
    pub(crate) _pad3: [AtomicU64; 7],
    /// Retry ring: entries `pack(job, chunk)`, pushed only by the parent, popped by workers.
    pub(crate) retry_push: AtomicU64,
    pub(crate) retry_pop: AtomicU64,
    pub(crate) retry: [AtomicU64; RETRY_RING],
    pub(crate) job: JobDesc,
    pub(crate) error: ErrorSlot,
    pub(crate) workers: [WorkerSlot; MAX_WORKERS],
    /// One bit per chunk of the current job: set when the chunk is finished.
    pub(crate) done_bits: [AtomicU64; MAX_CHUNKS / 64],
    /// One bit per chunk of the current job: set when the chunk failed (panic or lost).
    pub(crate) failed_bits: [AtomicU64; MAX_CHUNKS / 64],
    /// Small task arguments and results (plain bytes; see the `Sync` impl for the rules).
    pub(crate) scratch: UnsafeCell<[u64; SCRATCH_BYTES / 8]>,
}

// Every field but `scratch` is an atomic. `scratch` follows the job protocol: the parent writes
// arguments only while no job is in flight (before the release store of `job_id`), each worker
// writes only the result elements of the chunk it claimed, and the parent reads results only
// after every chunk is done (acquire on `done`).
// SAFETY: by that protocol no two processes or threads ever access the same scratch byte
// concurrently with a write; everything else is atomic.
unsafe impl Sync for ControlBlock {}

// SAFETY: `#[repr(C)]`, made of atomics and plain bytes (no pointers or process-local values);
// atomics are mutated through `&self`, the scratch bytes under the protocol described at the
// `Sync` impl; it needs no `Drop`.
unsafe impl ShmSafe for ControlBlock {}

impl ControlBlock {
    /// Whether chunk `i` of the current job is finished.
    pub(crate) fn is_done(&self, i: u64) -> bool {
        self.done_bits[(i / 64) as usize].load(Ordering::SeqCst) & (1 << (i % 64)) != 0
    }

    /// Marks chunk `i` finished; false if it already was.
    pub(crate) fn mark_done(&self, i: u64) -> bool {
        let bit = 1 << (i % 64);
        self.done_bits[(i / 64) as usize].fetch_or(bit, Ordering::SeqCst) & bit == 0
    }

    /// Chunks of a job of `chunks` chunks known to be finished. The `done` counter is exact
    /// while every worker lives; a worker killed between setting its chunk's done bit and
    /// counting it leaves the counter one short for good, so once a worker died during the job
    /// (`recount`) a short counter is checked against the done bitmap, which is set first.
    pub(crate) fn finished(&self, chunks: u64, recount: bool) -> u64 {
        let counted = self.done.load(Ordering::SeqCst);
        if counted >= chunks || !recount {
            return counted.min(chunks);
        }
        let words = (chunks as usize).div_ceil(64).min(self.done_bits.len());
        let set: u64 = self.done_bits[..words]
            .iter()
            .map(|w| w.load(Ordering::SeqCst).count_ones() as u64)
            .sum();
        set.max(counted).min(chunks)
    }

    /// Marks chunk `i` failed.
    pub(crate) fn mark_failed(&self, i: u64) {
        self.failed_bits[(i / 64) as usize].fetch_or(1 << (i % 64), Ordering::SeqCst);
    }

    /// Whether chunk `i` of the current job failed.
    pub(crate) fn is_failed(&self, i: u64) -> bool {
        self.failed_bits[(i / 64) as usize].load(Ordering::SeqCst) & (1 << (i % 64)) != 0
    }

    /// The scratch area's first byte.
    pub(crate) fn scratch_ptr(&self) -> *mut u8 {
        self.scratch.get().cast::<u8>()
    }

    /// Records the first failure of the job; later ones are dropped.
    pub(crate) fn record_error(&self, kind: u32, chunk: u64, pid: u32, message: &str) {
        if self
            .error
            .kind
            .compare_exchange(ERR_NONE, ERR_WRITING, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let b = message.as_bytes();
        let len = b.len().min(MESSAGE_BYTES);
        for (dst, src) in self.error.message.iter().zip(&b[..len]) {
            dst.store(*src, Ordering::Relaxed);
        }
        self.error.len.store(len as u32, Ordering::Relaxed);
        self.error.chunk.store(chunk, Ordering::Relaxed);
        self.error.pid.store(pid, Ordering::Relaxed);
        self.error.kind.store(kind, Ordering::Release);
    }

    /// The recorded failure, if any: (kind, chunk, pid, message).
    pub(crate) fn read_error(&self) -> Option<(u32, u64, u32, String)> {
        let kind = self.error.kind.load(Ordering::Acquire);
        if kind == ERR_NONE || kind == ERR_WRITING {
            return None;
        }
        let len = (self.error.len.load(Ordering::Relaxed) as usize).min(MESSAGE_BYTES);
        let bytes: Vec<u8> =
            self.error.message[..len].iter().map(|b| b.load(Ordering::Relaxed)).collect();
        Some((
            kind,
            self.error.chunk.load(Ordering::Relaxed),
            self.error.pid.load(Ordering::Relaxed),
            String::from_utf8_lossy(&bytes).into_owned(),
        ))
    }

    /// Bumps `wake_seq` and wakes every sleeping worker.
    pub(crate) fn wake_workers(&self) {
        self.wake_seq.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            crate::sys::futex::wake_all(&self.wake_seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::anon::AnonBox;

    #[test]
    fn a_lost_done_increment_is_recovered_from_the_bitmap() {
        // SAFETY: an all-zero `ControlBlock` is valid (atomics and bytes).
        let c = unsafe { AnonBox::<ControlBlock>::zeroed() }.unwrap();
        // 70 chunks (two bitmap words), all done; the worker of chunk 69 was killed between
        // its done bit and the counter.
        for i in 0..70 {
            assert!(c.mark_done(i));
        }
        c.done.store(69, Ordering::SeqCst);
        assert_eq!(c.finished(70, false), 69);
        assert_eq!(c.finished(70, true), 70);
        // Bits of chunks past the job's end (none are set by the protocol) never count.
        c.done_bits[2].store(u64::MAX, Ordering::SeqCst);
        assert_eq!(c.finished(70, true), 70);
        // An unfinished chunk stays unfinished.
        c.done_bits[0].fetch_and(!1, Ordering::SeqCst);
        assert_eq!(c.finished(70, true), 69);
    }
}
