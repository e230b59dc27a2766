//! The pool's control block: one `#[repr(C)]` struct of atomics in an anonymous shared mapping
//! (inherited by the forked workers, reachable through no file descriptor; a sealed memfd when
//! the workers are started by the forkserver or spawn, see `anon.rs`), read
//! and written by the parent and every worker. It holds the job descriptor, the claim cursor,
//! the completion counter and done bitmap, the error slot, the retry ring and one slot per worker.
//!
//! Only the parent writes the job descriptor, and only while no job is in flight; workers read
//! it after `job_id` (acquire) and prove their read was current by claiming a chunk with a
//! compare-and-swap on `cursor`, which carries the job id in its high 32 bits (see README.md).
//! Words that mean more than a number are newtypes, with their layout, in `words.rs`.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU32, AtomicU64, Ordering};

use super::words::{
    ArrayKind, AtomicArrayKind, AtomicFailKind, AtomicFlag, AtomicJobIndex, AtomicParentSleep,
    AtomicPhase, FailKind,
};
use crate::segment::handle::{Locator, SegmentHandle};
use crate::segment::object::ShmSafe;

/// Most workers a pool can have (one slot each in the control block).
pub(crate) const MAX_WORKERS: usize = 256;
/// Most chunks one job can have (bits in the done bitmap); the chunk size grows to fit.
pub(crate) const MAX_CHUNKS: usize = 1 << 22;
/// Arrays a kernel job ([`Pool::job`](crate::Pool::job)) may name, inputs and outputs together.
pub(crate) const MAX_JOB_ARRAYS: usize = 16;
/// The descriptor slot of a kernel job's parameter block (a scratch region).
pub(crate) const PARAMS_SLOT: usize = MAX_JOB_ARRAYS;
/// The descriptor slot of a kernel job's per-chunk partials (scratch region or array).
pub(crate) const PARTIALS_SLOT: usize = MAX_JOB_ARRAYS + 1;
/// Arrays a job descriptor holds: the user's arrays, then the parameter block and the partials.
/// (The older operations use slots 0 to 3: up to three arrays plus the per-chunk results.)
pub(crate) const MAX_ARRAYS: usize = MAX_JOB_ARRAYS + 2;
/// Stages one kernel job may have.
pub(crate) const MAX_STAGES: usize = 16;
/// Dimensions of a kernel job's shape.
pub(crate) const MAX_DIMS: usize = 8;
/// Bytes of a kernel job's parameter block (copied once per job into the scratch area).
pub(crate) const MAX_PARAMS_BYTES: usize = 4096;
/// Bytes of a named segment's name kept in a descriptor.
pub(crate) const NAME_BYTES: usize = 256;
/// Entries in the retry ring.
pub(crate) const RETRY_RING: usize = 64;
/// Bytes of the scratch area that carries small task arguments and results.
pub(crate) const SCRATCH_BYTES: usize = 64 * 1024;
/// Bytes of a panic message kept in the error slot.
pub(crate) const MESSAGE_BYTES: usize = 512;

/// Where one array of a job lives, in a form any process can resolve.
#[repr(C)]
pub(crate) struct ArrayRef {
    /// Where the array lives, which says which fields below mean something ([`ArrayKind`]).
    pub(crate) tag: AtomicArrayKind,
    pub(crate) pid: AtomicU32,
    pub(crate) fd: AtomicI32,
    pub(crate) name_len: AtomicU32,
    /// Set when the segment (a memfd or named one) is a byte region: elements of `elem_size`
    /// bytes from byte `offset` of its data, rather than a typed array.
    pub(crate) region: AtomicFlag,
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
        self.region.put(false, Ordering::Relaxed);
        let Some(h) = h else {
            self.tag.store(ArrayKind::UNUSED, Ordering::Relaxed);
            return;
        };
        self.nonce.store(h.nonce, Ordering::Relaxed);
        match &h.loc {
            Locator::Anonymous { pid, fd } => {
                self.tag.store(ArrayKind::MEMFD, Ordering::Relaxed);
                self.pid.store(*pid, Ordering::Relaxed);
                self.fd.store(*fd, Ordering::Relaxed);
            }
            Locator::Named(n) => {
                self.tag.store(ArrayKind::NAMED, Ordering::Relaxed);
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
        self.tag.store(ArrayKind::SCRATCH, Ordering::Relaxed);
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
        self.region.put(true, Ordering::Relaxed);
        self.offset.store(offset as u64, Ordering::Relaxed);
        self.elem_size.store(elem_size as u64, Ordering::Relaxed);
    }

    /// Reads the handle back (worker side); `None` for an unused slot.
    pub(crate) fn get(&self) -> Option<SegmentHandle> {
        let nonce = self.nonce.load(Ordering::Relaxed);
        let loc = match self.tag.load(Ordering::Relaxed) {
            ArrayKind::MEMFD => Locator::Anonymous {
                pid: self.pid.load(Ordering::Relaxed),
                fd: self.fd.load(Ordering::Relaxed),
            },
            ArrayKind::NAMED => {
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
    /// function (`process::code::to_offset`).
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
    /// Chunks whose arguments are in place: a worker claims chunk `i` only when `i < staged`.
    /// `chunks` for every job but a task job whose parent writes its arguments while its
    /// workers run the first chunks (README.md, "Arguments borrowed in place"); that parent
    /// raises it with release ([`ControlBlock::mark_staged`]), a worker loads it with acquire
    /// after it read the open cursor.
    pub(crate) staged: AtomicU64,
    /// Retries left for chunks whose worker died (0: fail the job instead).
    pub(crate) retries: AtomicU32,
    /// Set when the pool has a task timeout: workers then stamp each task's start in their
    /// slot ([`WorkerSlot::task_started`]) for the parent to check.
    pub(crate) timed: AtomicFlag,
    /// Jobs the parent has published so far, this one included: a 64-bit name for the
    /// descriptor's contents that never repeats (job ids wrap after 2^32), which keys the
    /// workers' cache of array views.
    pub(crate) generation: AtomicU64,
    /// The arrays, by handle.
    pub(crate) arrays: [ArrayRef; MAX_ARRAYS],
    /// A kernel job's stages ([`Pool::job`](crate::Pool::job)): see [`StageDesc`].
    pub(crate) stages: StageDesc,
}

/// The part of the descriptor only kernel jobs use (`job_builder.rs`): every stage of the job,
/// the stages this publish runs (a group of stages that fuse per chunk; the job is published
/// once per group, README.md "Kernel jobs"), the job's shape, and how its arrays split into
/// inputs and outputs. Zero for every other job.
#[repr(C)]
pub(crate) struct StageDesc {
    /// Each stage's `fn(&Chunk<P>)`, as an offset from the code anchor.
    pub(crate) kernels: [AtomicU64; MAX_STAGES],
    /// The first stage this publish runs, and how many.
    pub(crate) first: AtomicU32,
    pub(crate) count: AtomicU32,
    /// Arrays `0..inputs` are inputs (read-only), the next `outputs` outputs.
    pub(crate) inputs: AtomicU32,
    pub(crate) outputs: AtomicU32,
    /// The job's shape (C order; the outer axis first), `ndim` dimensions.
    pub(crate) dims: [AtomicU64; MAX_DIMS],
    pub(crate) ndim: AtomicU32,
    pub(crate) _pad: AtomicU32,
}

/// Which outputs a kernel job's chunks have written and which they have read with a halo, in
/// the current publish: an output may be one or the other within one group of stages, never
/// both, since a halo read reaches into chunks other workers write (`chunk.rs`). Each side sets
/// its bit, then checks the other side's (both `SeqCst`): of two conflicting accesses, at least
/// one sees the other and panics before it makes a reference.
#[repr(C)]
#[derive(Default)]
pub(crate) struct AccessMask {
    pub(crate) written: AtomicU32,
    pub(crate) halo_read: AtomicU32,
}

impl AccessMask {
    /// Records a write of output `j`; false if a chunk has read it with a halo.
    pub(crate) fn write(&self, j: usize) -> bool {
        self.written.fetch_or(1 << j, Ordering::SeqCst);
        self.halo_read.load(Ordering::SeqCst) & (1 << j) == 0
    }

    /// Records a halo read of output `j`; false if a chunk has written it.
    pub(crate) fn halo_read(&self, j: usize) -> bool {
        self.halo_read.fetch_or(1 << j, Ordering::SeqCst);
        self.written.load(Ordering::SeqCst) & (1 << j) == 0
    }

    /// [`write`](AccessMask::write) for a mask only the calling thread uses (a job run
    /// inline, chunk after chunk): the same bits, without the fences, which would cost more
    /// than a small job's whole kernel, and as a load and a store, not a locked
    /// read-modify-write (about 20 cycles even when relaxed).
    ///
    /// A load and a store lose an update if another write lands between them, so this is for
    /// a mask nothing else can write while the job runs, which holds for the only one it is
    /// used on (`JobCtx::local`): the mask `run_inline` (`job_builder.rs`) makes for each group
    /// on its own stack. Only the `Chunk`s of that group reach it, made one at a time on the
    /// calling thread; a `Chunk` is neither `Send` nor `Sync` and a stage gets `&Chunk` for
    /// its call only, so no other thread ever holds one; a job built inside a stage (on
    /// another pool: the builder running holds this one) gets buffers and a mask of its own;
    /// the workers never set `local` (`worker::job_ctx`) and write the control block's mask
    /// with `write`; a process forked from a stage writes its own copy. Nothing here is
    /// interrupted by a callback: the two calls below are the whole window.
    /// (Test: `kernels_api::a_job_inside_an_inline_kernel_has_its_own_buffers_and_access_mask`.)
    pub(crate) fn write_local(&self, j: usize) -> bool {
        let w = self.written.load(Ordering::Relaxed);
        self.written.store(w | 1 << j, Ordering::Relaxed);
        self.halo_read.load(Ordering::Relaxed) & (1 << j) == 0
    }

    /// [`halo_read`](AccessMask::halo_read) for a mask only the calling thread uses: see
    /// [`write_local`](AccessMask::write_local) for why nothing else writes it.
    pub(crate) fn halo_read_local(&self, j: usize) -> bool {
        let h = self.halo_read.load(Ordering::Relaxed);
        self.halo_read.store(h | 1 << j, Ordering::Relaxed);
        self.written.load(Ordering::Relaxed) & (1 << j) == 0
    }

    /// Forgets every access (parent side, before a publish).
    pub(crate) fn clear(&self) {
        self.written.store(0, Ordering::SeqCst);
        self.halo_read.store(0, Ordering::SeqCst);
    }
}

/// The first failure of the current job.
#[repr(C)]
pub(crate) struct ErrorSlot {
    /// Empty, being written, or the kind once written ([`FailKind`]).
    pub(crate) kind: AtomicFailKind,
    pub(crate) len: AtomicU32,
    pub(crate) chunk: AtomicU64,
    pub(crate) pid: AtomicU32,
    pub(crate) _pad: AtomicU32,
    pub(crate) message: [AtomicU8; MESSAGE_BYTES],
}

/// One worker's slot: one cache line (64 bytes, aligned), so that two workers writing their
/// own `held` and `completed` at every chunk never write the same line. (Its offset in the block
/// used to follow from the fields before it: at 8 bytes off a line, the slots of workers 0 and
/// 1 shared one.)
#[repr(C, align(64))]
pub(crate) struct WorkerSlot {
    /// The worker's pid (written by the parent after the fork, informational).
    pub(crate) pid: AtomicU32,
    /// Set once the worker has decided to exit after `maxtasksperchild` chunks.
    pub(crate) retiring: AtomicFlag,
    /// The chunk it is claiming or running, [`JobIndex::NOTHING`](super::words::JobIndex::NOTHING)
    /// otherwise. Stored before the claim's compare-and-swap, cleared after the chunk's done bit
    /// is set.
    pub(crate) held: AtomicJobIndex,
    /// Chunks it completed (all jobs).
    pub(crate) completed: AtomicU64,
    /// Set once the worker has finished the pool's initializer (cleared by the parent before
    /// it starts a worker in this slot). A worker that dies with this still clear counts towards
    /// giving up on a failing initializer; one killed after it does not.
    pub(crate) initialized: AtomicFlag,
    pub(crate) _pad32: AtomicU32,
    /// When the task it runs started (`CLOCK_MONOTONIC` nanoseconds, the same clock in every
    /// process), 0 when it runs none; written only in jobs with a task timeout
    /// ([`JobDesc::timed`]), before the task and cleared after it.
    pub(crate) task_started: AtomicU64,
    /// The index in its job of the task it runs (valid while `task_started` is not 0).
    pub(crate) task: AtomicU64,
    /// The same task's index in the whole call (a streaming call runs as several jobs).
    pub(crate) task_in_call: AtomicU64,
    /// Set by a worker that retires (`maxtasksperchild`) while it holds spilled results of the
    /// job in flight: it waits to exit until the parent cleared this (having opened its spill
    /// segments) or a new job was published (README.md, "Serialized tasks").
    pub(crate) keeping: AtomicFlag,
    pub(crate) _pad: AtomicU32,
}

// A slot is whole cache lines, so no two workers' slots share one.
const _: () = assert!(align_of::<WorkerSlot>() == 64 && size_of::<WorkerSlot>().is_multiple_of(64));

/// The whole control block.
#[repr(C)]
pub(crate) struct ControlBlock {
    /// Futex word the workers sleep on: bumped for a new job, a retry, close and terminate.
    pub(crate) wake_seq: AtomicU32,
    /// Workers inside (or about to enter) the futex wait on `wake_seq`.
    pub(crate) sleepers: AtomicU32,
    /// What the parent tells the workers about the pool's life ([`Phase`](super::words::Phase)).
    pub(crate) state: AtomicPhase,
    /// The current job's id (0: none yet). Published with release after the descriptor.
    pub(crate) job_id: AtomicU32,
    /// A random number the parent writes at start and passes to workers it does not fork, which
    /// check it after mapping the block through `/proc/<parent>/fd` (a descriptor number reused
    /// for another memfd of the same size is refused).
    pub(crate) nonce: AtomicU64,
    pub(crate) _pad0: [AtomicU64; 5],
    /// The job and its next chunk to claim ([`JobIndex`](super::words::JobIndex)); claims are
    /// compare-and-swaps. Own cache line.
    pub(crate) cursor: AtomicJobIndex,
    pub(crate) _pad1: [AtomicU64; 7],
    /// Chunks finished (successfully, panicked, or given up as lost). Own cache line.
    pub(crate) done: AtomicU64,
    pub(crate) _pad2: [AtomicU64; 7],
    /// Whether the parent is (about to be) asleep in `poll` on its wake pipe and the workers'
    /// exit descriptors, to be woken when the job completes or at every finished chunk
    /// ([`ParentSleep`](super::words::ParentSleep)).
    pub(crate) parent_sleeping: AtomicParentSleep,
    pub(crate) _pad3: [AtomicU64; 7],
    /// Retry ring: entries (job, chunk), pushed only by the parent, popped by workers
    /// ([`retry_entry`](ControlBlock::retry_entry)).
    pub(crate) retry_push: AtomicU64,
    pub(crate) retry_pop: AtomicU64,
    pub(crate) retry: [AtomicJobIndex; RETRY_RING],
    pub(crate) job: JobDesc,
    pub(crate) error: ErrorSlot,
    /// Outputs written / read with a halo by the current publish of a kernel job.
    pub(crate) access: AccessMask,
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

    /// The retry ring's entry for push or pop count `k`.
    pub(crate) fn retry_entry(&self, k: u64) -> &AtomicJobIndex {
        &self.retry[(k % RETRY_RING as u64) as usize]
    }

    /// Records the first failure of the job; later ones are dropped.
    pub(crate) fn record_error(&self, kind: FailKind, chunk: u64, pid: u32, message: &str) {
        if self
            .error
            .kind
            .compare_exchange(
                FailKind::NONE,
                FailKind::WRITING,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
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
    pub(crate) fn read_error(&self) -> Option<(FailKind, u64, u32, String)> {
        let kind = self.error.kind.load(Ordering::Acquire);
        if kind == FailKind::NONE || kind == FailKind::WRITING {
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

    /// Makes chunks `..staged` of the job in flight claimable, their arguments written: the
    /// release store orders those writes before any claim that reads it, and workers waiting
    /// for a chunk are woken.
    pub(crate) fn mark_staged(&self, staged: u64) {
        self.job.staged.store(staged, Ordering::Release);
        self.wake_workers();
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
