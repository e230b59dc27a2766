//! Publishing a job: what the parent writes into the control block for one job, and the order
//! it writes it in (README.md, "Publishing a job" and "Memory ordering").

use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};

use super::active::Active;
use super::control::{self, MAX_ARRAYS};
use super::state::Pool;
use super::words::{FailKind, JobIndex};
use crate::error::Result;
use crate::process::code;
use crate::process::context::StartMethod;
use crate::segment::handle::SegmentHandle;

/// What the parent publishes for one job.
pub(crate) struct JobSpec {
    pub(crate) trampoline: usize,
    pub(crate) kernel: usize,
    pub(crate) len: usize,
    pub(crate) chunk_size: usize,
    pub(crate) radius: usize,
    pub(crate) arrays: [ArraySpec; MAX_ARRAYS],
    /// A serialized task job's result region in this process: (address, tasks, chunk size),
    /// where the parent finds the spill records of a retiring worker (`failure.rs`).
    pub(crate) results: Option<(usize, usize, usize)>,
    /// A kernel job's stages, shape and arrays (`job_builder.rs`); `None` for other jobs.
    pub(crate) stages: Option<StageSpec>,
    /// Published before its arguments are written: no chunk is claimable until the parent
    /// marks it staged (`ControlBlock::mark_staged`). `false` for every job but a task job
    /// that streams its arguments in (`Pool::launch_writing`).
    pub(crate) streamed: bool,
}

/// What a kernel job adds to its descriptor (`control::StageDesc`).
#[derive(Clone, Default)]
pub(crate) struct StageSpec {
    /// Every stage's `fn(&Chunk<P>)` address.
    pub(crate) kernels: Vec<usize>,
    /// The stages this publish runs.
    pub(crate) first: usize,
    pub(crate) count: usize,
    pub(crate) inputs: usize,
    pub(crate) outputs: usize,
    /// The job's shape.
    pub(crate) dims: Vec<usize>,
}

impl JobSpec {
    /// A task job: `len` tasks in chunks of `chunk_size`, its arrays and result region still
    /// to be placed.
    pub(crate) fn tasks(
        trampoline: usize,
        kernel: usize,
        len: usize,
        chunk_size: usize,
    ) -> JobSpec {
        JobSpec {
            trampoline,
            kernel,
            len,
            chunk_size,
            radius: 0,
            arrays: Default::default(),
            results: None,
            stages: None,
            streamed: false,
        }
    }
}

/// The descriptor's arrays with `first` in slots 0 to 3 and none after (the older
/// operations' layout).
pub(crate) fn first_arrays(first: [ArraySpec; 4]) -> [ArraySpec; MAX_ARRAYS] {
    let mut all: [ArraySpec; MAX_ARRAYS] = Default::default();
    for (dst, a) in all.iter_mut().zip(first) {
        *dst = a;
    }
    all
}

/// Where one array of a job lives.
#[derive(Default)]
pub(crate) enum ArraySpec {
    /// No array in this position.
    #[default]
    None,
    /// A shared array segment, with the number of elements the job covers.
    Handle(SegmentHandle, usize),
    /// A region of the control block's scratch area: byte offset, elements, element size.
    Scratch(usize, usize, usize),
    /// A region of a byte segment (the task arena): byte offset, elements, element size.
    Region(SegmentHandle, usize, usize, usize),
}

impl Pool {
    /// Publishes a job (after the previous one, if any, finished). Returns its id.
    pub(crate) fn publish(&mut self, spec: &JobSpec) -> Result<u32> {
        self.check_running()?;
        self.finish_active()?;
        self.check_workers()?;
        if self.launch.method != StartMethod::Fork {
            // A worker that is not a fork of this process finds code by its offset from an
            // anchor, which names the same code only inside the executable (not a shared
            // library mapped elsewhere there).
            use code::{Receiver, check_sendable};
            check_sendable(spec.trampoline, "the job's trampoline", Receiver::Reexecuted)?;
            check_sendable(spec.kernel, "the job's kernel", Receiver::Reexecuted)?;
            for &k in spec.stages.iter().flat_map(|s| &s.kernels) {
                check_sendable(k, "a stage of the job", Receiver::Reexecuted)?;
            }
        }
        let chunks = Self::chunks_of(spec.len, spec.chunk_size) as u64;
        debug_assert!(chunks as usize <= control::MAX_CHUNKS);
        self.next_job = self.next_job.wrapping_add(1).max(1);
        self.generation += 1;
        let job = self.next_job;
        let c = &*self.ctl;
        c.cursor.store(JobIndex::closed(job), SeqCst);
        c.done.store(0, SeqCst);
        let words = (chunks as usize).div_ceil(64);
        for w in c.done_bits[..words].iter().chain(&c.failed_bits[..words]) {
            w.store(0, Relaxed);
        }
        c.error.kind.store(FailKind::NONE, Relaxed);
        let d = &c.job;
        d.trampoline.store(code::to_offset(spec.trampoline), Relaxed);
        d.kernel.store(code::to_offset(spec.kernel), Relaxed);
        d.len.store(spec.len as u64, Relaxed);
        d.chunk_size.store(spec.chunk_size as u64, Relaxed);
        d.radius.store(spec.radius as u64, Relaxed);
        // Ordered before the release store of `chunks` below, so a worker that claims from
        // this job's cursor reads this job's count or a later one.
        d.staged.store(if spec.streamed { 0 } else { chunks }, Relaxed);
        d.retries.store(self.retries, Relaxed);
        d.timed.put(self.task_timeout.is_some(), Relaxed);
        d.generation.store(self.generation, Relaxed);
        for (slot, a) in d.arrays.iter().zip(&spec.arrays) {
            match a {
                ArraySpec::Handle(h, len) => slot.set(Some(h), *len),
                ArraySpec::Scratch(off, len, elem) => slot.set_scratch(*off, *len, *elem),
                ArraySpec::Region(h, off, len, elem) => slot.set_region(h, *off, *len, *elem),
                ArraySpec::None => slot.set(None, 0),
            }
        }
        // `chunks` is the one field a worker reads before its claim's compare-and-swap. Release
        // orders the closing cursor store above before it: a worker that sees this job's count
        // (acquire) also sees the cursor closed for the old job, so its CAS on the old job's
        // cursor value fails (README.md, "Memory ordering").
        let st = &d.stages;
        let stages = spec.stages.clone().unwrap_or_default();
        for (i, k) in st.kernels.iter().enumerate() {
            k.store(stages.kernels.get(i).map_or(0, |&a| code::to_offset(a)), Relaxed);
        }
        st.first.store(stages.first as u32, Relaxed);
        st.count.store(stages.count as u32, Relaxed);
        st.inputs.store(stages.inputs as u32, Relaxed);
        st.outputs.store(stages.outputs as u32, Relaxed);
        for (i, n) in st.dims.iter().enumerate() {
            n.store(stages.dims.get(i).map_or(0, |&n| n as u64), Relaxed);
        }
        st.ndim.store(stages.dims.len() as u32, Relaxed);
        c.access.clear();
        d.chunks.store(chunks, Release);
        c.job_id.store(job, Release);
        c.cursor.store(JobIndex::new(job, 0), SeqCst);
        c.wake_workers();
        self.adopted.get_mut().clear(); // the earlier job's results were read
        let mut active = Active::new(job, chunks, self.retries);
        active.results = spec.results;
        self.active = Some(active);
        Ok(job)
    }
}
