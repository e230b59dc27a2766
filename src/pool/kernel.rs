//! Kernels as the worker sees them: type-erased trampolines, one monomorphised per operation and
//! element type, that rebuild typed slices from the mapped arrays and call the user's `fn`.
//!
//! The parent stores two addresses in the job descriptor: the trampoline's and the kernel's.
//! Both are code addresses in the same executable, valid in every forked worker.

use std::mem::size_of;

use bytemuck::Pod;

/// The function code offsets are measured from. Offsets rather than addresses make the job
/// descriptor independent of where the executable is loaded: a forked worker would accept raw
/// addresses, but a re-executed one (spawn, forkserver) has its own address-space layout.
#[inline(never)]
fn anchor() -> u64 {
    std::hint::black_box(0x504f_4f4c_414e_4348)
}

/// A code address as an offset from [`anchor`], for the job descriptor.
pub(crate) fn to_offset(addr: usize) -> u64 {
    (addr as i64).wrapping_sub(anchor as fn() -> u64 as usize as i64) as u64
}

/// The code address an offset from [`to_offset`] stands for in this process.
pub(crate) fn from_offset(off: u64) -> usize {
    (anchor as fn() -> u64 as usize as i64).wrapping_add(off as i64) as usize
}

/// Raw views of a job's arrays as mapped in one worker.
#[derive(Clone, Copy)]
pub(crate) struct Views {
    pub(crate) ptr: [*mut u8; 4],
    /// Elements the mapped header records.
    pub(crate) len: [usize; 4],
    /// Bytes per element the mapped header records.
    pub(crate) elem_size: [usize; 4],
    /// Elements the parent said the job covers.
    pub(crate) expected_len: [usize; 4],
}

impl Default for Views {
    fn default() -> Views {
        Views {
            ptr: [std::ptr::null_mut(); 4],
            len: [0; 4],
            elem_size: [0; 4],
            expected_len: [0; 4],
        }
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
/// the trampoline was monomorphised for; `views` map the job's arrays (alive for the call);
/// `span` is a chunk claimed exclusively by the caller, inside the iteration space; array 2
/// (the output) and, for `for_each`, array 0 are written only inside `span` by this call.
pub(crate) type Trampoline = unsafe fn(kernel: usize, views: &Views, span: &Span);

/// Array `i` of `views` as a pointer to `T`, after checking the mapped header matches `T` and
/// covers the job's length (a mismatch panics, which the worker reports as the chunk's error).
fn array<T: Pod>(v: &Views, i: usize) -> *mut T {
    assert!(
        v.elem_size[i] == size_of::<T>() && v.len[i] >= v.expected_len[i] && !v.ptr[i].is_null(),
        "array {i} of the job does not match its element type or length in this worker"
    );
    v.ptr[i].cast::<T>()
}

/// `for_each_chunk`: `fn(&mut [T])` on array 0.
///
/// # Safety
///
/// See [`Trampoline`].
pub(crate) unsafe fn for_each<T: Pod>(kernel: usize, v: &Views, s: &Span) {
    // SAFETY: per the trampoline contract, `kernel` is a `fn(&mut [T])` of this image.
    let k = unsafe { std::mem::transmute::<usize, fn(&mut [T])>(kernel) };
    let p = array::<T>(v, 0);
    // SAFETY: `array` checked that the mapping holds at least the job's length of `T`s and
    // `s.start..s.end` lies inside it; the chunk is exclusively ours and the parent holds `&mut`
    // on (or owns) the array for the whole job, so nothing else reads or writes these elements.
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
    let (a, b, c) = (array::<A>(v, 0), array::<B>(v, 1), array::<C>(v, 2));
    let n = s.end - s.start;
    // SAFETY: each mapping holds at least the job's length (checked); inputs are only read while
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
    let (a, out) = (array::<T>(v, 0), array::<R>(v, 3));
    assert!((s.index as usize) < v.len[3], "partial index outside the results array");
    // SAFETY: the input is only read while the parent holds `&` on it; element `index` of the
    // results array (checked in bounds) is written only by the worker that claimed the chunk.
    unsafe {
        let r = k(std::slice::from_raw_parts(a.add(s.start), s.end - s.start));
        out.add(s.index as usize).write(r);
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
    let (a, c) = (array::<T>(v, 0), array::<U>(v, 2));
    let lo = s.start.saturating_sub(s.radius);
    let hi = s.end.saturating_add(s.radius).min(v.expected_len[0]);
    // SAFETY: `lo..hi` lies inside the input's checked length and is only read (the parent holds
    // `&` on it); the output chunk is exclusively ours (the parent holds `&mut` on the output).
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

/// Runs one task, turning a panic into one that names the task index.
fn one_task<R>(i: usize, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => panic!("task {i}: {}", panic_text(&*p)),
    }
}

/// Tasks `fn(A) -> R`: argument `i` from array 0, result `i` to array 2, for `i` in the chunk.
///
/// # Safety
///
/// See [`Trampoline`].
pub(crate) unsafe fn task<A: Pod, R: Pod>(kernel: usize, v: &Views, s: &Span) {
    // SAFETY: per the trampoline contract, `kernel` is a `fn(A) -> R`.
    let k = unsafe { std::mem::transmute::<usize, fn(A) -> R>(kernel) };
    let (a, out) = (array::<A>(v, 0), array::<R>(v, 2));
    for i in s.start..s.end {
        // SAFETY: `i` lies inside both arrays' checked lengths; arguments are only read, and
        // result `i` belongs to the chunk this worker claimed. Both are aligned for their types.
        unsafe { out.add(i).write(one_task(i, || k(a.add(i).read()))) }
    }
}

/// Tasks `fn(A, B) -> R` (starmap): arguments from arrays 0 and 1, result to array 2.
///
/// # Safety
///
/// See [`Trampoline`].
pub(crate) unsafe fn task2<A: Pod, B: Pod, R: Pod>(kernel: usize, v: &Views, s: &Span) {
    // SAFETY: per the trampoline contract, `kernel` is a `fn(A, B) -> R`.
    let k = unsafe { std::mem::transmute::<usize, fn(A, B) -> R>(kernel) };
    let (a, b, out) = (array::<A>(v, 0), array::<B>(v, 1), array::<R>(v, 2));
    for i in s.start..s.end {
        // SAFETY: as in `task`.
        unsafe { out.add(i).write(one_task(i, || k(a.add(i).read(), b.add(i).read()))) }
    }
}
