//! Kernels as the worker sees them: type-erased trampolines, one monomorphised per operation and
//! element type, that rebuild typed slices from the mapped arrays and call the user's `fn`.
//!
//! The parent stores two addresses in the job descriptor, the trampoline's and the kernel's, as
//! offsets from the one code anchor (`process::code`, which also says which addresses a worker
//! that is not a fork may be sent); a worker checks both are code before it calls them.

use std::marker::PhantomData;
use std::mem::size_of;

use bytemuck::Pod;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec;
use super::star::StarArgs;
use super::task_clock;
use crate::segment::Segment;
use crate::segment::handle::Locator;
use crate::segment::header::{Kind, Layout, TypeDesc};
use crate::segment::options::ShmOptions;

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
fn array<T: Pod>(v: &Views, i: usize, end: usize) -> *mut T {
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
fn check_span(s: &Span) {
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
    check_span(s);
    let (a, out) = (array::<A>(v, 0, s.end), array::<R>(v, 2, s.end));
    task_clock::each_task(s.start..s.end, 0, |i| {
        // SAFETY: `i < s.end`, which lies inside both mappings (checked); arguments are only read, and
        // result `i` belongs to the chunk this worker claimed. Both are aligned for their types.
        unsafe { out.add(i).write(one_task(i, || k(a.add(i).read()))) }
    });
}

/// Tasks `fn(A, B) -> R` (`starmap_pod`): arguments from arrays 0 and 1, result to array 2.
///
/// # Safety
///
/// See [`Trampoline`].
pub(crate) unsafe fn task2<A: Pod, B: Pod, R: Pod>(kernel: usize, v: &Views, s: &Span) {
    // SAFETY: per the trampoline contract, `kernel` is a `fn(A, B) -> R`.
    let k = unsafe { std::mem::transmute::<usize, fn(A, B) -> R>(kernel) };
    check_span(s);
    let (a, b, out) = (array::<A>(v, 0, s.end), array::<B>(v, 1, s.end), array::<R>(v, 2, s.end));
    task_clock::each_task(s.start..s.end, 0, |i| {
        // SAFETY: as in `task`.
        unsafe { out.add(i).write(one_task(i, || k(a.add(i).read(), b.add(i).read()))) }
    });
}

/// How one serialized task is run: its argument deserialized, the user's `fn` called, its
/// outcome encoded (see [`codec`]).
pub(crate) trait SerialTask {
    /// Runs task `i` of the `fn` at `kernel` on the postcard bytes `arg`, appending what its
    /// entry points at to `out`; returns the entry's tag and recorded length.
    ///
    /// # Safety
    ///
    /// `kernel` is the address of a `fn` of the type this implementation names.
    unsafe fn run(
        kernel: usize,
        i: usize,
        arg: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> (u64, usize);
}

/// `fn(A) -> R`.
pub(crate) struct Plain<A, R>(PhantomData<fn(A) -> R>);
/// `fn(A) -> Result<R, E>`: an `Err` is the task's error.
pub(crate) struct Fallible<A, R, E>(PhantomData<fn(A) -> Result<R, E>>);
/// `T::Fn<R>`: the tuple `T` spread over the parameters.
pub(crate) struct Star<T, R>(PhantomData<fn(T) -> R>);

/// `Extend<u8>` into a borrowed `Vec` (postcard's `to_extend` takes its writer by value).
struct Sink<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Sink<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter)
    }
}

/// Appends `text` as the entry's bytes.
fn text(out: &mut Vec<u8>, t: u64, text: &str) -> (u64, usize) {
    out.extend_from_slice(text.as_bytes());
    (t, text.len())
}

/// Appends `r`'s postcard bytes, or records why not (serialization failed, over `limit`).
fn encode<R: Serialize>(r: &R, limit: usize, out: &mut Vec<u8>) -> (u64, usize) {
    let start = out.len();
    let encoded = postcard::to_extend(r, Sink(out)).map(drop);
    match encoded {
        Ok(()) if out.len() - start > limit => {
            let len = out.len() - start;
            out.truncate(start);
            (codec::tag::TOO_LARGE, len)
        }
        Ok(()) => (codec::tag::OK, out.len() - start),
        Err(e) => {
            out.truncate(start);
            text(out, codec::tag::SER_FAILED, &e.to_string())
        }
    }
}

/// Deserializes an argument, or records why it could not be.
fn decode<A: DeserializeOwned>(arg: &[u8], out: &mut Vec<u8>) -> Result<A, (u64, usize)> {
    postcard::from_bytes(arg).map_err(|e| text(out, codec::tag::ARG_FAILED, &e.to_string()))
}

impl<A: DeserializeOwned, R: Serialize> SerialTask for Plain<A, R> {
    unsafe fn run(k: usize, i: usize, arg: &[u8], limit: usize, out: &mut Vec<u8>) -> (u64, usize) {
        // SAFETY: per the contract, `k` is a `fn(A) -> R`.
        let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(k) };
        match decode::<A>(arg, out) {
            Ok(a) => encode(&one_task(i, || f(a)), limit, out),
            Err(e) => e,
        }
    }
}

impl<A, R, E> SerialTask for Fallible<A, R, E>
where
    A: DeserializeOwned,
    R: Serialize,
    E: std::fmt::Display,
{
    unsafe fn run(k: usize, i: usize, arg: &[u8], limit: usize, out: &mut Vec<u8>) -> (u64, usize) {
        // SAFETY: per the contract, `k` is a `fn(A) -> Result<R, E>`.
        let f = unsafe { std::mem::transmute::<usize, fn(A) -> Result<R, E>>(k) };
        match decode::<A>(arg, out).map(|a| one_task(i, || f(a))) {
            Ok(Ok(r)) => encode(&r, limit, out),
            Ok(Err(e)) => text(out, codec::tag::TASK_ERR, &e.to_string()),
            Err(e) => e,
        }
    }
}

impl<T: StarArgs, R: Serialize> SerialTask for Star<T, R> {
    unsafe fn run(k: usize, i: usize, arg: &[u8], limit: usize, out: &mut Vec<u8>) -> (u64, usize) {
        assert_eq!(size_of::<T::Fn<R>>(), size_of::<usize>(), "a star fn is a fn pointer");
        // SAFETY: per the contract, `k` is a `T::Fn<R>`, a `fn` pointer type (`StarArgs` is
        // sealed to tuples whose `Fn` is one; the sizes match, checked above).
        let f = unsafe { std::mem::transmute_copy::<usize, T::Fn<R>>(&k) };
        match decode::<T>(arg, out) {
            Ok(a) => encode(&one_task(i, || T::call(f, a)), limit, out),
            Err(e) => e,
        }
    }
}

/// Array `i` of `views` as bytes: its pointer and the length both the mapping and the job
/// cover, after checking it is a byte region aligned to 8 (a region start).
fn bytes(v: &Views, i: usize) -> (*mut u8, usize) {
    assert!(
        v.elem_size[i] == 1 && !v.ptr[i].is_null() && v.ptr[i].cast::<u64>().is_aligned(),
        "array {i} of the job is not a byte region in this worker"
    );
    (v.ptr[i], v.len[i].min(v.expected_len[i]))
}

/// Serialized tasks: arguments from the region in array 0, results to the region in array 2
/// ([`codec`]'s layout), for every task of the chunk.
///
/// # Safety
///
/// See [`Trampoline`]; `kernel` is a `fn` of the type `T` names.
pub(crate) unsafe fn task_serial<T: SerialTask>(kernel: usize, v: &Views, s: &Span) {
    check_span(s);
    let (args, results) = (bytes(v, 0), bytes(v, 2));
    let results = codec::Results { base: results.0, len: results.1 };
    let args = codec::Args { base: args.0, len: args.1, n: results.n() };
    let (limit, first) = (results.limit(), results.first());
    let mut out = Vec::new();
    let mut entries = Vec::with_capacity(s.end - s.start);
    task_clock::each_task(s.start..s.end, first, |i| {
        let start = out.len();
        // SAFETY: per this function's contract.
        let (t, len) =
            unsafe { T::run(kernel, first.wrapping_add(i), args.get(i), limit, &mut out) };
        entries.push((t, start, len));
    });
    results.commit(s.start, &entries, &out, spill);
}

/// Segments holding results that did not fit their job's result region, kept until this worker
/// starts on the next job (the parent reads them before it publishes another).
static SPILLS: std::sync::Mutex<Vec<Segment>> = std::sync::Mutex::new(Vec::new());

/// Puts `bytes` into a new memfd segment of this worker, kept in [`SPILLS`]; returns what the
/// parent needs to open it: this process's pid, the descriptor, the nonce.
fn spill(bytes: &[u8]) -> (u32, i32, u64) {
    let layout = Layout::new(Kind::Array, TypeDesc::of::<u8>(), bytes.len().max(1))
        .unwrap_or_else(|e| panic!("spilling {} bytes of results: {e}", bytes.len()));
    let seg = Segment::create(&ShmOptions::new(), &layout)
        .unwrap_or_else(|e| panic!("spilling {} bytes of results: {e}", bytes.len()));
    // SAFETY: the segment is new, ours alone, and holds at least `bytes.len()` bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), seg.data_ptr().as_ptr(), bytes.len()) };
    seg.publish();
    let h = seg.handle();
    let Locator::Anonymous { pid, fd } = h.loc else {
        panic!("a spill segment is a memfd");
    };
    SPILLS.lock().unwrap_or_else(|p| p.into_inner()).push(seg);
    (pid, fd, h.nonce)
}

/// Whether this worker holds spill segments (of the job it last ran).
pub(crate) fn has_spills() -> bool {
    !SPILLS.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
}

/// Drops the spill segments of earlier jobs (the worker saw a new job).
pub(crate) fn drop_spills() {
    let mut s = SPILLS.lock().unwrap_or_else(|p| p.into_inner());
    if !s.is_empty() {
        s.clear();
    }
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
        v.expected_len = expected;
        v
    }

    fn rejected(f: impl FnOnce()) -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err()
    }

    fn shout(s: String) -> String {
        s.to_uppercase()
    }

    fn checked(s: String) -> Result<usize, String> {
        if s.is_empty() { Err("empty".into()) } else { Ok(s.len()) }
    }

    /// Runs serialized tasks `T` over `args` in this process, as one chunk; the entries read
    /// back (tag, bytes).
    fn run_serial<T: SerialTask>(
        kernel: usize,
        args: &[String],
        limit: usize,
    ) -> Vec<(u64, Vec<u8>)> {
        let n = args.len();
        let mut offsets = vec![0u64];
        let mut data = Vec::new();
        for a in args {
            data = postcard::to_extend(a, data).unwrap();
            offsets.push(data.len() as u64);
        }
        let a_len = codec::arg_region_bytes(n, data.len()).unwrap();
        let r_len = codec::result_region_bytes(n, n, 4096).unwrap();
        let (mut a, mut r) = (vec![0u64; a_len.div_ceil(8)], vec![0u64; r_len.div_ceil(8)]);
        let (ap, rp) = (a.as_mut_ptr().cast::<u8>(), r.as_mut_ptr().cast::<u8>());
        // SAFETY: both buffers hold their regions, 8-aligned, used by nobody else.
        unsafe {
            codec::write_args(ap, &offsets, &data);
            codec::init_results(rp, limit, 4096, n, n, 0);
        }
        let mut v = Views::default();
        (v.ptr[0], v.len[0], v.elem_size[0], v.expected_len[0]) = (ap, a_len, 1, a_len);
        (v.ptr[2], v.len[2], v.elem_size[2], v.expected_len[2]) = (rp, r_len, 1, r_len);
        // SAFETY: `kernel` is the fn `T` names; the views map live buffers of their lengths.
        unsafe { task_serial::<T>(kernel, &v, &Span { index: 0, start: 0, end: n, radius: 0 }) };
        // SAFETY: the chunk ran to the end above; nothing writes the region any more.
        (0..n)
            .map(|i| unsafe { codec::read_result(rp, n, n, 4096, i) })
            .map(|(t, b)| (t, b.expect("inside the region").to_vec()))
            .collect()
    }

    #[test]
    fn serialized_tasks_encode_results_errors_and_oversized_results() {
        let args = ["ab".to_string(), "c".repeat(40), String::new()];
        let out =
            run_serial::<Plain<String, String>>(shout as fn(String) -> String as usize, &args, 20);
        assert_eq!(out[0].0, codec::tag::OK);
        assert_eq!(postcard::from_bytes::<String>(&out[0].1).unwrap(), "AB");
        assert_eq!(out[1], (codec::tag::TOO_LARGE, vec![]), "41 bytes over a limit of 20");
        assert_eq!(postcard::from_bytes::<String>(&out[2].1).unwrap(), "");
        let f = checked as fn(String) -> Result<usize, String> as usize;
        let out = run_serial::<Fallible<String, usize, String>>(f, &args, 100);
        assert_eq!(postcard::from_bytes::<usize>(&out[1].1).unwrap(), 40);
        assert_eq!(out[2], (codec::tag::TASK_ERR, b"empty".to_vec()));
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
