//! Kernels as the worker sees them: type-erased trampolines, one monomorphised per operation and
//! element type, that rebuild typed slices from the mapped arrays and call the user's `fn`.
//!
//! The parent stores two addresses in the job descriptor, the trampoline's and the kernel's, as
//! offsets from the one code anchor (`process::code`, which also says which addresses a worker
//! that is not a fork may be sent); a worker checks both are code before it calls them.

use std::mem::size_of;

use bytemuck::Pod;

use super::control::{AccessMask, MAX_ARRAYS, MAX_DIMS, MAX_STAGES};
use crate::segment::header::TypeDesc;

/// Raw views of a job's arrays as mapped in one worker (or, for a kernel job run inline, in
/// the caller), with what a kernel job's chunks need besides.
#[derive(Clone, Copy)]
pub(crate) struct Views {
    pub(crate) ptr: [*mut u8; MAX_ARRAYS],
    /// Elements the mapped header records.
    pub(crate) len: [usize; MAX_ARRAYS],
    /// Bytes per element the mapped header records.
    pub(crate) elem_size: [usize; MAX_ARRAYS],
    /// Elements the parent said the job covers.
    pub(crate) expected_len: [usize; MAX_ARRAYS],
    /// The element type the mapped header records (`None` for scratch and arena regions,
    /// which have no header: their trampolines check the size only).
    pub(crate) ty: [Option<TypeDesc>; MAX_ARRAYS],
    /// For a job run inline, the element type of the caller's array instead of `ty`: its
    /// `TypeId` (a kernel asking for the same type passes at the cost of one comparison) and
    /// how to describe it (for a kernel asking for another type, which then passes only if
    /// the descriptions agree, as `ty` would). `None` in the workers.
    pub(crate) tid: [Option<ElemType>; MAX_ARRAYS],
    /// A kernel job's stages, shape and arrays (zero for other jobs).
    pub(crate) job: JobCtx,
}

impl Default for Views {
    fn default() -> Views {
        Views {
            ptr: [std::ptr::null_mut(); MAX_ARRAYS],
            len: [0; MAX_ARRAYS],
            elem_size: [0; MAX_ARRAYS],
            expected_len: [0; MAX_ARRAYS],
            ty: [None; MAX_ARRAYS],
            tid: [None; MAX_ARRAYS],
            job: JobCtx::default(),
        }
    }
}

/// An element type as the caller's own array has it: its `TypeId`, and its description.
pub(crate) type ElemType = (std::any::TypeId, fn() -> TypeDesc);

/// What a kernel job's chunk needs besides its arrays, read once per publish (the descriptor's
/// `StageDesc`, code offsets turned into addresses of this process).
#[derive(Clone, Copy)]
pub(crate) struct JobCtx {
    /// Every stage's `fn(&Chunk<P>)` (addresses in this process; 0 past the last).
    pub(crate) stages: [usize; MAX_STAGES],
    /// The stages this publish runs.
    pub(crate) first: usize,
    pub(crate) count: usize,
    /// Arrays `0..inputs` are inputs, `inputs..inputs + outputs` outputs.
    pub(crate) inputs: usize,
    pub(crate) outputs: usize,
    /// The job's shape, `ndim` dimensions (outer axis first).
    pub(crate) dims: [usize; MAX_DIMS],
    pub(crate) ndim: usize,
    /// The outputs written and read with a halo in this publish, shared by every chunk (the
    /// control block's, or the caller's own when the job runs inline); null for other jobs.
    pub(crate) access: *const AccessMask,
    /// The mask is the calling thread's own (a job run inline): no other thread or process
    /// reaches it, so its bits need no fences.
    pub(crate) local: bool,
}

impl Default for JobCtx {
    fn default() -> JobCtx {
        JobCtx {
            stages: [0; MAX_STAGES],
            first: 0,
            count: 0,
            inputs: 0,
            outputs: 0,
            dims: [0; MAX_DIMS],
            ndim: 0,
            access: std::ptr::null(),
            local: false,
        }
    }
}

impl JobCtx {
    /// The stages this publish runs, as addresses.
    #[inline]
    pub(crate) fn running(&self) -> &[usize] {
        let first = self.first.min(MAX_STAGES);
        &self.stages[first..self.first.saturating_add(self.count).min(MAX_STAGES)]
    }

    /// Elements per row of the outer axis (1 for a 1-D job; 0 when a dimension is 0).
    pub(crate) fn row_len(&self) -> usize {
        self.dims[..self.ndim.clamp(1, MAX_DIMS)].iter().skip(1).product()
    }
}

/// The chunk a trampoline runs.
pub(crate) struct Span {
    /// Chunk index.
    pub(crate) index: u64,
    /// First element.
    pub(crate) start: usize,
    /// One past the last element.
    pub(crate) end: usize,
    /// Halo radius.
    pub(crate) radius: usize,
}

/// A type-erased kernel runner.
///
/// Safety contract for every trampoline: `kernel` is the address of a `fn` of exactly the type
/// the trampoline was monomorphised for; each non-null `views.ptr[i]` points to mapped memory of
/// at least `views.len[i] * views.elem_size[i]` bytes, aligned for its element type and alive
/// for the call; no other process or thread writes the elements of `span` in the arrays this
/// trampoline writes, nor writes the arrays it reads while the job runs (the caller claimed the
/// chunk exclusively and the parent holds the borrows). The span itself need not be trusted:
/// every trampoline checks it against each array's mapped and expected lengths (through
/// [`array()`]) before building a slice, and panics (a job error) when it does not fit.
pub(crate) type Trampoline = unsafe fn(kernel: usize, views: &Views, span: &Span);

/// Array `i` of `views` as a pointer to `T`, after checking that the mapped header matches `T`,
/// that the pointer is aligned for `T`, and that elements `..end` lie inside both the mapping
/// and the job's length for the array. A mismatch panics, which the worker reports as the
/// chunk's error: never a slice past the end or a misaligned one.
#[inline]
pub(crate) fn array<T: Pod>(v: &Views, i: usize, end: usize) -> *mut T {
    assert!(
        v.elem_size[i] == size_of::<T>() && !v.ptr[i].is_null(),
        "array {i} of the job does not match its element type in this worker"
    );
    assert!(
        v.ptr[i].cast::<T>().is_aligned(),
        "array {i} of the job is not aligned for its element type ({} bytes) in this worker",
        std::mem::align_of::<T>()
    );
    assert!(
        end <= v.len[i] && end <= v.expected_len[i],
        "chunk reaches element {end} of array {i}, which has {} elements mapped and {} in the job",
        v.len[i],
        v.expected_len[i]
    );
    v.ptr[i].cast::<T>()
}

/// Checks that a span is an ordinary range (the worker computes `start <= end`; a corrupt
/// descriptor must still never make a slice of negative length).
#[inline]
pub(crate) fn check_span(s: &Span) {
    assert!(s.start <= s.end, "chunk span {}..{} is reversed", s.start, s.end);
}

/// `for_each_chunk`: `fn(&mut [T])` on array 0.
///
/// # Safety
///
/// See [`Trampoline`].
pub(crate) unsafe fn for_each<T: Pod>(kernel: usize, v: &Views, s: &Span) {
    // SAFETY: per the trampoline contract, `kernel` is a `fn(&mut [T])` of this image.
    let k = unsafe { std::mem::transmute::<usize, fn(&mut [T])>(kernel) };
    check_span(s);
    let p = array::<T>(v, 0, s.end);
    // SAFETY: `array` checked that `..s.end` lies inside the mapping (and `check_span` that
    // `s.start <= s.end`); the chunk is exclusively ours and the parent holds `&mut` on (or
    // owns) the array for the whole job, so nothing else reads or writes these elements.
    let chunk = unsafe { std::slice::from_raw_parts_mut(p.add(s.start), s.end - s.start) };
    k(chunk)
}

/// `zip`: `fn(&[A], &[B], &mut [C])` over arrays 0 and 1 into array 2.
///
/// # Safety
///
/// See [`Trampoline`].
pub(crate) unsafe fn zip<A: Pod, B: Pod, C: Pod>(kernel: usize, v: &Views, s: &Span) {
    // SAFETY: per the trampoline contract, `kernel` is a `fn(&[A], &[B], &mut [C])`.
    let k = unsafe { std::mem::transmute::<usize, fn(&[A], &[B], &mut [C])>(kernel) };
    check_span(s);
    let (a, b, c) = (array::<A>(v, 0, s.end), array::<B>(v, 1, s.end), array::<C>(v, 2, s.end));
    let n = s.end - s.start;
    // SAFETY: `s.start..s.end` lies inside each mapping (checked); inputs are only read while
    // the parent holds shared borrows of them; the output chunk is exclusively ours (the parent
    // holds `&mut` on the output array, so it cannot alias an input).
    let (a, b, c) = unsafe {
        (
            std::slice::from_raw_parts(a.add(s.start), n),
            std::slice::from_raw_parts(b.add(s.start), n),
            std::slice::from_raw_parts_mut(c.add(s.start), n),
        )
    };
    k(a, b, c)
}

/// `map_reduce`: `fn(&[T]) -> R` on array 0; the partial goes to element `index` of array 3.
///
/// # Safety
///
/// See [`Trampoline`].
pub(crate) unsafe fn map<T: Pod, R: Pod>(kernel: usize, v: &Views, s: &Span) {
    // SAFETY: per the trampoline contract, `kernel` is a `fn(&[T]) -> R`.
    let k = unsafe { std::mem::transmute::<usize, fn(&[T]) -> R>(kernel) };
    check_span(s);
    let index = usize::try_from(s.index).unwrap_or(usize::MAX);
    let (a, out) = (array::<T>(v, 0, s.end), array::<R>(v, 3, index.saturating_add(1)));
    // SAFETY: `s.start..s.end` lies inside the input's mapping and `index` inside the results
    // array's (both checked); the input is only read while the parent holds `&` on it; element
    // `index` of the results is written only by the worker that claimed the chunk.
    unsafe {
        let r = k(std::slice::from_raw_parts(a.add(s.start), s.end - s.start));
        out.add(index).write(r);
    }
}

/// `stencil`: `fn(&[T], usize, &mut [U])`: the input window (the chunk plus up to `radius`
/// neighbours each side), the offset of the chunk's first element in it, and the output chunk.
///
/// # Safety
///
/// See [`Trampoline`].
pub(crate) unsafe fn stencil<T: Pod, U: Pod>(kernel: usize, v: &Views, s: &Span) {
    // SAFETY: per the trampoline contract, `kernel` is a `fn(&[T], usize, &mut [U])`.
    let k = unsafe { std::mem::transmute::<usize, fn(&[T], usize, &mut [U])>(kernel) };
    check_span(s);
    let (a, c) = (array::<T>(v, 0, s.end), array::<U>(v, 2, s.end));
    // `s.end <= len` for the input was checked, so `lo <= s.start <= s.end <= hi <= len`.
    let lo = s.start.saturating_sub(s.radius);
    let hi = s.end.saturating_add(s.radius).min(v.expected_len[0]).min(v.len[0]);
    // SAFETY: `lo..hi` lies inside the input's mapping (see above) and is only read (the parent
    // holds `&` on it); `s.start..s.end` lies inside the output's mapping (checked) and is
    // exclusively ours (the parent holds `&mut` on the output).
    let (win, out) = unsafe {
        (
            std::slice::from_raw_parts(a.add(lo), hi - lo),
            std::slice::from_raw_parts_mut(c.add(s.start), s.end - s.start),
        )
    };
    k(win, s.start - lo, out)
}

/// The message of a panic payload.
pub(crate) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(panic payload is not a string)".to_string())
}

/// The message of a caught panic, and the payload dropped without letting a panic in its
/// `Drop` unwind out of the catch (the kernel's panic is then still the chunk's error, not a
/// second one that ends the worker or the caller): such a second payload is leaked.
pub(crate) fn take_panic(p: Box<dyn std::any::Any + Send>) -> String {
    let text = panic_text(&*p);
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(p)));
    if let Err(again) = dropped {
        std::mem::forget(again);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touches_nothing(_: &mut [u64]) {}
    fn reads_nothing(_: &[u64], _: usize, _: &mut [u64]) {}
    fn sums(c: &[u64]) -> u64 {
        c.iter().sum()
    }

    /// Views of `bufs` (array `i` of `len` mapped elements; the job says `expected`).
    fn views(bufs: &mut [Vec<u64>], expected: [usize; 4]) -> Views {
        let mut v = Views::default();
        for (i, b) in bufs.iter_mut().enumerate() {
            v.ptr[i] = b.as_mut_ptr().cast();
            v.len[i] = b.len();
            v.elem_size[i] = 8;
        }
        v.expected_len[..4].copy_from_slice(&expected);
        v
    }

    fn rejected(f: impl FnOnce()) -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err()
    }

    #[test]
    fn a_span_past_the_mapping_is_a_job_error_not_a_slice() {
        let mut bufs = vec![vec![0u64; 10]];
        let v = views(&mut bufs, [16, 0, 0, 0]); // the job claims 16, 10 are mapped
        let s = Span { index: 1, start: 8, end: 16, radius: 0 };
        // SAFETY: the views map live, aligned buffers of the lengths they state, used by nobody
        // else; the span is out of range on purpose, which the trampoline must refuse.
        assert!(rejected(|| unsafe {
            for_each::<u64>(touches_nothing as fn(&mut [u64]) as usize, &v, &s)
        }));
        let ok = Span { index: 0, start: 0, end: 10, radius: 0 };
        // SAFETY: as above, with an in-range span.
        assert!(!rejected(|| unsafe {
            for_each::<u64>(touches_nothing as fn(&mut [u64]) as usize, &v, &ok)
        }));
    }

    #[test]
    fn a_span_past_the_jobs_length_is_refused_even_when_mapped() {
        let mut bufs = vec![vec![0u64; 10], vec![], vec![0u64; 4]];
        let v = views(&mut bufs, [10, 0, 4, 0]);
        let s = Span { index: 0, start: 0, end: 8, radius: 1 };
        // SAFETY: as in the test above: the output (array 2) is shorter than the span.
        assert!(rejected(|| unsafe {
            stencil::<u64, u64>(reads_nothing as fn(&[u64], usize, &mut [u64]) as usize, &v, &s)
        }));
    }

    #[test]
    fn stencil_with_a_short_input_does_not_wrap() {
        // The input's job length is below the chunk's start: `hi - lo` used to wrap.
        let mut bufs = vec![vec![0u64; 16], vec![], vec![0u64; 16]];
        let v = views(&mut bufs, [4, 0, 16, 0]);
        let s = Span { index: 1, start: 8, end: 12, radius: 2 };
        // SAFETY: as above.
        assert!(rejected(|| unsafe {
            stencil::<u64, u64>(reads_nothing as fn(&[u64], usize, &mut [u64]) as usize, &v, &s)
        }));
    }

    #[test]
    fn a_misaligned_array_is_a_job_error_not_a_slice() {
        let mut bufs = vec![vec![0u64; 10]];
        let mut v = views(&mut bufs, [9, 0, 0, 0]);
        // SAFETY: one byte into a live buffer of 80 bytes.
        v.ptr[0] = unsafe { v.ptr[0].add(1) };
        let s = Span { index: 0, start: 0, end: 1, radius: 0 };
        // SAFETY: as above; the pointer is misaligned on purpose, which the trampoline must
        // refuse before it makes a slice.
        assert!(rejected(|| unsafe {
            for_each::<u64>(touches_nothing as fn(&mut [u64]) as usize, &v, &s)
        }));
    }

    #[test]
    fn a_partial_index_past_the_results_is_refused() {
        let mut bufs = vec![vec![1u64; 10], vec![], vec![], vec![0u64; 2]];
        let v = views(&mut bufs, [10, 0, 0, 2]);
        let s = Span { index: 2, start: 0, end: 5, radius: 0 };
        // SAFETY: as above: result slot 2 of 2 is out of range.
        assert!(rejected(|| unsafe {
            map::<u64, u64>(sums as fn(&[u64]) -> u64 as usize, &v, &s)
        }));
        let s = Span { index: 1, start: 5, end: 10, radius: 0 };
        // SAFETY: as above, in range.
        unsafe { map::<u64, u64>(sums as fn(&[u64]) -> u64 as usize, &v, &s) };
        assert_eq!(bufs[3][1], 5);
    }
}
