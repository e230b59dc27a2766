//! Task trampolines as the worker runs them: `Pod` tasks (`fn(A) -> R`, `fn(A, B) -> R`) read
//! their arguments from and write their results to typed arrays; serialized tasks decode postcard
//! arguments from a byte region and encode results into another ([`codec`]'s layout), spilling
//! what does not fit into segments of the worker.

use std::marker::PhantomData;
use std::mem::size_of;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec;
use super::in_place::InPlace;
use super::kernel::{Span, Views, check_span, panic_text};
use super::star::StarArgs;
use super::task_clock;
use crate::error::Error;
use crate::segment::Segment;
use crate::segment::handle::Locator;
use crate::segment::header::{Kind, Layout, TypeDesc};
use crate::segment::options::ShmOptions;

/// Runs one task, turning a panic into one that names the task index.
///
/// Inlined, the `catch_unwind` is a call with a landing pad and costs nothing until a task
/// panics; out of line it was a call per task, about a tenth of a short task's cost.
#[inline(always)]
fn one_task<R>(i: usize, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => task_panicked(i, p),
    }
}

/// The panic of [`one_task`]: `task {i}: ` and the task's own message.
#[cold]
#[inline(never)]
fn task_panicked(i: usize, p: Box<dyn std::any::Any + Send>) -> ! {
    panic!("task {i}: {}", panic_text(&*p))
}

/// Array `i` of `views`, a byte region, as a pointer to plain `T`s, after checking that
/// elements `..end` lie inside it and that it is aligned for `T`. A mismatch panics, which the
/// worker reports as the chunk's error.
fn plain<T>(v: &Views, i: usize, end: usize) -> *mut T {
    let (p, len) = bytes(v, i);
    assert!(
        end.checked_mul(size_of::<T>()).is_some_and(|b| b <= len),
        "chunk reaches task {end} of array {i}, whose {len} bytes hold fewer of its type"
    );
    assert!(p.cast::<T>().is_aligned(), "array {i} of the job is not aligned for its type");
    p.cast::<T>()
}

/// Tasks `fn(A) -> R` on plain values: argument `i` from array 0, result `i` to array 2 (byte
/// regions), for `i` in the chunk.
///
/// # Safety
///
/// See [`Trampoline`](super::kernel::Trampoline); `A` and `R` are plain data (`Pod`, or types
/// [`is_plain`](super::staging::is_plain) accepts): any bytes are a valid value.
pub(crate) unsafe fn task<A, R>(kernel: usize, v: &Views, s: &Span) {
    // SAFETY: per the trampoline contract, `kernel` is a `fn(A) -> R`.
    let k = unsafe { std::mem::transmute::<usize, fn(A) -> R>(kernel) };
    check_span(s);
    let (a, out) = (plain::<A>(v, 0, s.end), plain::<R>(v, 2, s.end));
    task_clock::each_task(s.start..s.end, 0, |i| {
        // SAFETY: `i < s.end`, which lies inside both regions (checked); arguments are only
        // read, and any bytes are an `A` (plain); result `i` belongs to the chunk this worker
        // claimed. Both are aligned for their types (checked).
        unsafe { out.add(i).write(one_task(i, || k(a.add(i).read()))) }
    });
}

/// Tasks `fn(A, B) -> R` (`starmap_pod`): arguments from arrays 0 and 1, result to array 2.
///
/// # Safety
///
/// As for [`task`].
pub(crate) unsafe fn task2<A, B, R>(kernel: usize, v: &Views, s: &Span) {
    // SAFETY: per the trampoline contract, `kernel` is a `fn(A, B) -> R`.
    let k = unsafe { std::mem::transmute::<usize, fn(A, B) -> R>(kernel) };
    check_span(s);
    let (a, b, out) = (plain::<A>(v, 0, s.end), plain::<B>(v, 1, s.end), plain::<R>(v, 2, s.end));
    task_clock::each_task(s.start..s.end, 0, |i| {
        // SAFETY: as in `task`.
        unsafe { out.add(i).write(one_task(i, || k(a.add(i).read(), b.add(i).read()))) }
    });
}

/// Tasks `fn(A) -> R` on plain values of a call that runs as several jobs
/// ([`Pool::imap_buffered`](crate::Pool::imap_buffered)): as [`task`], with array 1 holding one
/// `u64`, the index in the whole call of the job's task 0, by which panics and the task clock
/// name tasks.
///
/// # Safety
///
/// As for [`task`].
pub(crate) unsafe fn task_from<A, R>(kernel: usize, v: &Views, s: &Span) {
    // SAFETY: per the trampoline contract, `kernel` is a `fn(A) -> R`.
    let k = unsafe { std::mem::transmute::<usize, fn(A) -> R>(kernel) };
    check_span(s);
    let (a, out) = (plain::<A>(v, 0, s.end), plain::<R>(v, 2, s.end));
    // SAFETY: array 1 holds at least one aligned `u64` (checked by `plain`), any bytes of which
    // are one.
    let first = unsafe { plain::<u64>(v, 1, 1).read() } as usize;
    task_clock::each_task(s.start..s.end, first, |i| {
        // SAFETY: as in `task`.
        unsafe { out.add(i).write(one_task(first.wrapping_add(i), || k(a.add(i).read()))) }
    });
}

/// Tasks `T::Fn<R>` on plain tuples ([`Pool::starmap`](crate::Pool::starmap) over tuples that
/// [`is_plain`](super::staging::is_plain) accepts): tuple `i` from array 0, spread over the
/// parameters, result `i` to array 2.
///
/// # Safety
///
/// See [`Trampoline`](super::kernel::Trampoline); `kernel` is a `T::Fn<R>`; `T` and `R` are plain data (as for [`task`]).
pub(crate) unsafe fn task_star<T: StarArgs, R>(kernel: usize, v: &Views, s: &Span) {
    assert_eq!(size_of::<T::Fn<R>>(), size_of::<usize>(), "a star fn is a fn pointer");
    // SAFETY: per the contract, `kernel` is a `T::Fn<R>`, a `fn` pointer type (`StarArgs` is
    // sealed to tuples whose `Fn` is one; the sizes match, checked above).
    let f = unsafe { std::mem::transmute_copy::<usize, T::Fn<R>>(&kernel) };
    check_span(s);
    let (a, out) = (plain::<T>(v, 0, s.end), plain::<R>(v, 2, s.end));
    task_clock::each_task(s.start..s.end, 0, |i| {
        // SAFETY: as in `task`: any bytes are a `T` (plain, the contract).
        unsafe { out.add(i).write(one_task(i, || T::call(f, a.add(i).read()))) }
    });
}

/// What a worker's panic says after `task {i}` when an argument of a plain-result task does not
/// deserialize ([`task_serial_plain`]), before serde's text in parentheses. A task's own panic
/// reads `task {i}: ...` ([`one_task`]), so it cannot pass for this.
const ARG_UNREADABLE: &str = "'s argument could not be deserialized";

/// The error of a chunk of plain-result tasks ([`task_serial_plain`]) as the caller sees it: a
/// panic that says a task's argument did not deserialize is [`Error::TaskValue`] naming the
/// task, as on the serialized path (which has an entry to carry it); any other error as it is.
pub(crate) fn typed_arg_failure(e: Error) -> Error {
    let Error::KernelPanicked { message, .. } = &e else { return e };
    let parsed = message.strip_prefix("task ").and_then(|m| m.split_once(ARG_UNREADABLE)).and_then(
        |(task, rest)| {
            // The control block's error slot may have cut the text short.
            let reason = rest.trim_start_matches(" (");
            Some((task.parse::<usize>().ok()?, reason.strip_suffix(')').unwrap_or(reason)))
        },
    );
    match parsed {
        Some((task, reason)) => Error::TaskValue {
            task,
            what: "argument",
            how: "deserialized",
            reason: reason.to_string(),
        },
        None => e,
    }
}

/// Tasks `fn(A) -> R` with serialized arguments and plain results: argument `i` decoded from
/// the region in array 0 ([`codec`]'s layout), result `i` written raw to array 2. An argument
/// that does not deserialize fails the chunk, as a panic naming the task (no entry to say so),
/// which the parent reads back as [`Error::TaskValue`] ([`typed_arg_failure`]).
///
/// # Safety
///
/// See [`Trampoline`](super::kernel::Trampoline); `kernel` is a `fn(A) -> R`; `R` is plain data (as for [`task`]) and not
/// zero-sized.
pub(crate) unsafe fn task_serial_plain<A: DeserializeOwned, R>(kernel: usize, v: &Views, s: &Span) {
    // SAFETY: per the trampoline contract, `kernel` is a `fn(A) -> R`.
    let k = unsafe { std::mem::transmute::<usize, fn(A) -> R>(kernel) };
    serial_plain(v, s, k);
}

/// [`task_serial_plain`] of `starmap`: `T::Fn<R>` over serialized tuples, plain results.
///
/// # Safety
///
/// See [`Trampoline`](super::kernel::Trampoline); `kernel` is a `T::Fn<R>`; `R` is plain data (as for [`task`]) and not
/// zero-sized.
pub(crate) unsafe fn task_star_serial_plain<T: StarArgs, R>(kernel: usize, v: &Views, s: &Span) {
    assert_eq!(size_of::<T::Fn<R>>(), size_of::<usize>(), "a star fn is a fn pointer");
    // SAFETY: as in `task_star`.
    let f = unsafe { std::mem::transmute_copy::<usize, T::Fn<R>>(&kernel) };
    serial_plain(v, s, |t: T| T::call(f, t));
}

/// The loop of [`task_serial_plain`]: `call` on each argument of the chunk, decoded from the
/// region in array 0, its result written raw to array 2.
///
/// `R` is plain data and not zero-sized (the callers' contract), so any value written is read
/// back as itself.
fn serial_plain<A: DeserializeOwned, R>(v: &Views, s: &Span, call: impl Fn(A) -> R) {
    check_span(s);
    let out = plain::<R>(v, 2, s.end);
    let (base, len) = bytes(v, 0);
    let n = bytes(v, 2).1 / size_of::<R>().max(1);
    let args = codec::Args { base, len, n };
    task_clock::each_task(s.start..s.end, 0, |i| {
        let a = postcard::from_bytes::<A>(args.get(i))
            .unwrap_or_else(|e| panic!("task {i}{ARG_UNREADABLE} ({e})"));
        // SAFETY: `i < s.end`, inside the result region (checked), aligned for `R` (checked);
        // result `i` belongs to the chunk this worker claimed.
        unsafe { out.add(i).write(one_task(i, || call(a))) }
    });
}

/// Tasks `fn(&B) -> R` on arguments borrowed in place ([`InPlace`]) with plain results:
/// argument `i` is a reference into the region in array 0 (raw bytes, [`codec`]'s offsets),
/// checked by `B` (UTF-8 for `str`), result `i` written raw to array 2. Nothing is decoded or
/// allocated per task. An argument that fails its check fails the chunk, as a panic naming the
/// task, which the parent reads back as [`Error::TaskValue`] ([`typed_arg_failure`]).
///
/// # Safety
///
/// See [`Trampoline`](super::kernel::Trampoline); `kernel` is a `fn(&B) -> R`; `R` is plain
/// data (as for [`task`]) and not zero-sized.
pub(crate) unsafe fn task_ref_plain<B: InPlace + ?Sized, R>(kernel: usize, v: &Views, s: &Span) {
    // SAFETY: per the trampoline contract, `kernel` is a `fn(&B) -> R` (higher-ranked: the
    // result cannot borrow from the argument, so nothing outlives the region's job).
    let k = unsafe { std::mem::transmute::<usize, fn(&B) -> R>(kernel) };
    ref_plain(v, s, k);
}

/// Tasks `fn(String) -> R` with plain results whose strings the parent copied in as raw bytes
/// (`map` of a `fn(String)`, the most common pool program): as [`task_ref_plain`] over `str`,
/// each `String` made from the checked bytes (one allocation, as decoding made), without
/// postcard's length prefix in the parent or its decoding here.
///
/// # Safety
///
/// See [`Trampoline`](super::kernel::Trampoline); `kernel` is a `fn(String) -> R`; `R` is
/// plain data (as for [`task`]) and not zero-sized.
pub(crate) unsafe fn task_string_plain<R>(kernel: usize, v: &Views, s: &Span) {
    // SAFETY: per the trampoline contract, `kernel` is a `fn(String) -> R`.
    let k = unsafe { std::mem::transmute::<usize, fn(String) -> R>(kernel) };
    ref_plain(v, s, |a: &str| k(a.to_owned()));
}

/// The loop of [`task_ref_plain`]: `call` on each argument of the chunk, borrowed from the
/// region in array 0, its result written raw to array 2.
///
/// `R` is plain data and not zero-sized (the callers' contract), so any value written is read
/// back as itself.
fn ref_plain<B: InPlace + ?Sized, R>(v: &Views, s: &Span, call: impl Fn(&B) -> R) {
    check_span(s);
    let out = plain::<R>(v, 2, s.end);
    let (base, len) = bytes(v, 0);
    let n = bytes(v, 2).1 / size_of::<R>().max(1);
    let args = codec::Args { base, len, n };
    let (run, at) = args.run(s.start, s.end);
    // One check of the chunk's bytes (UTF-8 for `str`), not one per task; on a failure, the
    // task whose own bytes fail it is named (the chunk's first if none does alone).
    let run = B::run(run).unwrap_or_else(|e| {
        let own = |i: usize| {
            let r = args.range(i);
            let piece = r.start.checked_sub(at).zip(r.end.checked_sub(at));
            piece.and_then(|(a, b)| run.get(a..b)).map(B::run)
        };
        let task = (s.start..s.end).find(|&i| matches!(own(i), Some(Err(_))));
        panic!("task {}{ARG_UNREADABLE} (in the chunk's arguments: {e})", task.unwrap_or(s.start))
    });
    if s.start >= s.end {
        return;
    }
    let table = args.table(s.start, s.end);
    task_clock::each_task(s.start..s.end, 0, |i| {
        let (lo, hi) = (table[i - s.start] as usize, table[i - s.start + 1] as usize);
        let arg = in_place_arg::<B>(run, lo..hi, at);
        let a = arg.unwrap_or_else(|| bad_arg::<B>(i, run, lo..hi, at));
        // SAFETY: `i < s.end`, inside the result region (checked), aligned for `R` (checked);
        // result `i` belongs to the chunk this worker claimed.
        unsafe { out.add(i).write(one_task(i, || call(a))) }
    });
}

/// The argument at `range` (offsets into the region's bytes) of a checked run that starts at
/// offset `at`, if it is one ([`bad_arg`] says why not).
#[inline(always)]
fn in_place_arg<'a, B: InPlace + ?Sized>(
    run: B::Run<'a>,
    range: std::ops::Range<usize>,
    at: usize,
) -> Option<&'a B> {
    B::piece(run, range.start.checked_sub(at)?..range.end.checked_sub(at)?)
}

/// The chunk error of task `i`, whose argument [`in_place_arg`] refused.
#[cold]
#[inline(never)]
fn bad_arg<B: InPlace + ?Sized>(
    i: usize,
    run: B::Run<'_>,
    range: std::ops::Range<usize>,
    at: usize,
) -> ! {
    let why = match (range.start.checked_sub(at), range.end.checked_sub(at)) {
        (Some(a), Some(b)) => B::why_not(run, a..b),
        _ => format!("its bytes {range:?} lie before its chunk's, at {at}"),
    };
    panic!("task {i}{ARG_UNREADABLE} ({why})")
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

/// `fn(&B) -> R` on an argument borrowed in place ([`InPlace`]): its raw bytes, checked.
pub(crate) struct Ref<B: ?Sized, R>(PhantomData<fn(&B) -> R>);

/// Appends `text` as the entry's bytes.
fn text(out: &mut Vec<u8>, t: u64, text: &str) -> (u64, usize) {
    out.extend_from_slice(text.as_bytes());
    (t, text.len())
}

/// Appends `r`'s postcard bytes, or records why not (serialization failed, over `limit`).
fn encode<R: Serialize>(r: &R, limit: usize, out: &mut Vec<u8>) -> (u64, usize) {
    match codec::encode_into(r, out, limit) {
        Ok(len) if len > limit => (codec::tag::TOO_LARGE, len),
        Ok(len) => (codec::tag::OK, len),
        Err(e) => text(out, codec::tag::SER_FAILED, &e.to_string()),
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

impl<B: InPlace + ?Sized, R: Serialize> SerialTask for Ref<B, R> {
    unsafe fn run(k: usize, i: usize, arg: &[u8], limit: usize, out: &mut Vec<u8>) -> (u64, usize) {
        // SAFETY: per the contract, `k` is a `fn(&B) -> R`.
        let f = unsafe { std::mem::transmute::<usize, fn(&B) -> R>(k) };
        let piece = |run| B::piece(run, 0..arg.len()).ok_or_else(|| B::why_not(run, 0..arg.len()));
        match B::run(arg).and_then(piece) {
            Ok(a) => encode(&one_task(i, || f(a)), limit, out),
            Err(e) => text(out, codec::tag::ARG_FAILED, &e),
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
/// See [`Trampoline`](super::kernel::Trampoline); `kernel` is a `fn` of the type `T` names.
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

/// Segments (`u8` arrays) holding results that did not fit their job's result region, kept
/// until this worker starts on the next job (the parent reads them before it publishes
/// another); `used` bytes of the last one are taken. Chunks share a segment, bump-allocated;
/// a full one is followed by one twice its size, so a job's spills take a few descriptors
/// (here and in the parent), never one per chunk: thousands of spilled chunks of one task each
/// ran out of descriptors under the usual limit of 1024.
struct Spills {
    segs: Vec<Segment>,
    used: usize,
}

static SPILLS: std::sync::Mutex<Spills> =
    std::sync::Mutex::new(Spills { segs: Vec::new(), used: 0 });

/// The smallest spill segment, in bytes.
const FIRST_SPILL: usize = 64 << 10;
/// The most a spill segment grows over the last one (a chunk's bytes may need more).
const MAX_SPILL: usize = 256 << 20;

/// Puts `bytes` into this job's spill segments ([`SPILLS`]), after what earlier chunks put
/// there, or into a new one; returns what the parent needs to open it (this process's pid, the
/// descriptor, the nonce) and where in its data the bytes start.
fn spill(bytes: &[u8]) -> ((u32, i32, u64), usize) {
    let mut s = SPILLS.lock().unwrap_or_else(|p| p.into_inner());
    let room = s.segs.last().map_or(0, |seg| seg.len().saturating_sub(s.used));
    if room < bytes.len() || s.segs.is_empty() {
        let last = s.segs.last().map_or(0, Segment::len);
        let size = last.saturating_mul(2).clamp(FIRST_SPILL, MAX_SPILL).max(bytes.len());
        let layout = Layout::new(Kind::Array, TypeDesc::of::<u8>(), size)
            .unwrap_or_else(|e| panic!("spilling {} bytes of results: {e}", bytes.len()));
        let seg = Segment::create(&ShmOptions::new(), &layout)
            .unwrap_or_else(|e| panic!("spilling {} bytes of results: {e}", bytes.len()));
        seg.publish();
        s.segs.push(seg);
        s.used = 0;
    }
    let at = s.used;
    let seg = s.segs.last().expect("one was made above if none was");
    // The bytes after `used` are this worker's alone: the parent reads a chunk's part only after
    // its done bit, and no part is written twice.
    // SAFETY: `at + bytes.len() <= seg.len()` (room checked, or the segment is new and that
    // large); a `u8` segment's data are `len` bytes, and those past `used` are ours (above).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), seg.data_ptr().as_ptr().add(at), bytes.len())
    };
    let h = seg.handle();
    let Locator::Anonymous { pid, fd } = h.loc else {
        panic!("a spill segment is a memfd");
    };
    s.used += bytes.len();
    ((pid, fd, h.nonce), at)
}

/// Whether this worker holds spill segments (of the job it last ran).
pub(crate) fn has_spills() -> bool {
    !SPILLS.lock().unwrap_or_else(|p| p.into_inner()).segs.is_empty()
}

/// Drops the spill segments of earlier jobs (the worker saw a new job).
pub(crate) fn drop_spills() {
    let mut s = SPILLS.lock().unwrap_or_else(|p| p.into_inner());
    if !s.segs.is_empty() {
        s.segs.clear();
        s.used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::kernel::{Span, Views};

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

    fn len(s: String) -> u64 {
        s.len() as u64
    }

    /// A task's own panic whose text is the worker's message for an unreadable argument, as
    /// [`one_task`] reports it.
    fn forged() -> String {
        let own = std::panic::catch_unwind(|| {
            one_task(4, || panic!("task 4's argument could not be deserialized (forged)"))
        });
        panic_text(&*own.expect_err("it panics"))
    }

    #[test]
    fn serialized_arguments_with_plain_results_fill_raw_slots() {
        let mut offsets = vec![0u64];
        let mut data = Vec::new();
        for a in ["ab", "", "xyz"] {
            data = postcard::to_extend(&a.to_string(), data).unwrap();
            offsets.push(data.len() as u64);
        }
        data.push(0xff); // a fourth argument: a string whose length runs past the region
        offsets.push(data.len() as u64);
        let a_len = codec::arg_region_bytes(4, data.len()).unwrap();
        let mut a = vec![0u64; a_len.div_ceil(8)];
        let mut r = [0u64; 4];
        // SAFETY: the buffer holds the region, 8-aligned, used by nobody else.
        unsafe { codec::write_args(a.as_mut_ptr().cast(), &offsets, &data) };
        let mut v = Views::default();
        (v.ptr[0], v.len[0], v.elem_size[0], v.expected_len[0]) =
            (a.as_mut_ptr().cast(), a_len, 1, a_len);
        (v.ptr[2], v.len[2], v.elem_size[2], v.expected_len[2]) =
            (r.as_mut_ptr().cast(), 32, 1, 32);
        let k = len as fn(String) -> u64 as usize;
        // SAFETY: `k` is a `fn(String) -> u64`, `u64` is plain; the views map live buffers.
        unsafe {
            task_serial_plain::<String, u64>(k, &v, &Span { index: 0, start: 0, end: 3, radius: 0 })
        };
        assert_eq!(r[..3], [2, 0, 3]);
        let bad = std::panic::catch_unwind(|| {
            // SAFETY: as above.
            unsafe {
                task_serial_plain::<String, u64>(
                    k,
                    &v,
                    &Span { index: 1, start: 3, end: 4, radius: 0 },
                )
            }
        });
        let text = panic_text(&*bad.expect_err("an argument that does not decode fails the chunk"));
        assert!(text.contains("task 3's argument could not be deserialized"), "{text}");
        let panicked = Error::KernelPanicked { chunk: 1, pid: 7, message: text };
        match typed_arg_failure(panicked) {
            Error::TaskValue { task: 3, what: "argument", how: "deserialized", reason } => {
                assert!(!reason.is_empty() && !reason.ends_with(')'), "{reason}")
            }
            other => panic!("expected a typed argument error, got {other:?}"),
        }
        // Cut short by the error slot, or any other panic: as it is / still typed.
        let cut = "task 12's argument could not be deserialized (Hit the end".to_string();
        let e = typed_arg_failure(Error::KernelPanicked { chunk: 0, pid: 1, message: cut });
        assert!(
            matches!(e, Error::TaskValue { task: 12, ref reason, .. } if reason == "Hit the end")
        );
        let e = typed_arg_failure(Error::KernelPanicked { chunk: 0, pid: 1, message: forged() });
        assert!(matches!(e, Error::KernelPanicked { .. }), "a task's own panic saying the same");
        let other = "task 2: boom".to_string();
        let e = typed_arg_failure(Error::KernelPanicked { chunk: 0, pid: 1, message: other });
        assert!(matches!(e, Error::KernelPanicked { .. }));
    }

    fn str_hash(s: &str) -> u64 {
        s.bytes().fold(s.len() as u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
    }

    /// Runs `task_ref_plain::<str, u64>` over a region holding `data` at `offsets`, tasks
    /// `start..end`, in this process.
    fn run_ref(offsets: &[u64], data: &[u8], start: usize, end: usize) -> Result<Vec<u64>, String> {
        run_in_place(str_hash, offsets, data, start..end, offsets.len() - 1)
    }

    /// Runs `task_ref_plain::<B, u64>` of `f` over a region holding `data` at `offsets`, tasks
    /// `span`, in this process, with `slots` result slots (the task count a worker infers).
    fn run_in_place<B: InPlace + ?Sized>(
        f: fn(&B) -> u64,
        offsets: &[u64],
        data: &[u8],
        span: std::ops::Range<usize>,
        slots: usize,
    ) -> Result<Vec<u64>, String> {
        let (start, end, n) = (span.start, span.end, slots);
        let a_len = codec::arg_region_bytes(offsets.len() - 1, data.len()).unwrap();
        let mut a = vec![0u64; a_len.div_ceil(8)];
        let mut r = vec![0u64; n.max(1)];
        // SAFETY: the buffer holds the region, 8-aligned, used by nobody else.
        unsafe { codec::write_args(a.as_mut_ptr().cast(), offsets, data) };
        let mut v = Views::default();
        (v.ptr[0], v.len[0], v.elem_size[0], v.expected_len[0]) =
            (a.as_mut_ptr().cast(), a_len, 1, a_len);
        (v.ptr[2], v.len[2], v.elem_size[2], v.expected_len[2]) =
            (r.as_mut_ptr().cast(), n * 8, 1, n * 8);
        let k = f as usize;
        let span = Span { index: 0, start, end, radius: 0 };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: `k` is a `fn(&B) -> u64`, `u64` is plain; the views map live buffers.
            unsafe { task_ref_plain::<B, u64>(k, &v, &span) }
        }))
        .map_err(|p| panic_text(&*p))?;
        Ok(r[start..end].to_vec())
    }

    fn words_sum(w: &[u64]) -> u64 {
        w.iter().fold(w.len() as u64, |h, &x| h.wrapping_mul(31).wrapping_add(x))
    }

    fn path_hash(p: &std::path::Path) -> u64 {
        use std::os::unix::ffi::OsStrExt;
        str_hash(&String::from_utf8_lossy(p.as_os_str().as_bytes()))
    }

    /// Hostile offsets in a region of `Pod` slices, paths and strings: a piece that is not a
    /// whole number of values, misaligned, reversed, out of its chunk's run, or a table longer
    /// than the region, fails the chunk naming a task; a worker never reads outside the region
    /// nor hands a task a misaligned slice.
    #[test]
    fn hostile_offsets_fail_the_chunk_and_are_never_read_past() {
        let words: Vec<u8> = [1u64, 2, 3].iter().flat_map(|w| w.to_ne_bytes()).collect();
        let ok = run_in_place(words_sum, &[0, 8, 24], &words, 0..2, 2).unwrap();
        assert_eq!(ok, [words_sum(&[1]), words_sum(&[2, 3])]);
        // Slop (4 bytes of a u64), a misaligned run (task 1 alone, from byte 4), reversed.
        let cases = [([0, 4, 24], 0..2, 0), ([0, 4, 12], 1..2, 1), ([0, 16, 8], 0..2, 0)];
        for (offsets, span, task) in cases {
            let e = run_in_place(words_sum, &offsets, &words, span, 2).unwrap_err();
            assert!(e.contains(&format!("task {task}'s argument")), "{offsets:?}: {e}");
        }
        // Any bytes are a path, but not bytes outside the chunk's run.
        let bytes = [0xffu8, b'a', b'b'];
        assert!(run_in_place(path_hash, &[0, 1, 3], &bytes, 0..2, 2).is_ok());
        let e = run_in_place(path_hash, &[0, 3, 1], &bytes, 0..2, 2).unwrap_err();
        assert!(e.contains("task 0's argument"), "{e}");
        let e = run_in_place(path_hash, &[0, 2, 1, 3], &bytes, 1..3, 3).unwrap_err();
        assert!(e.contains("task 1's argument") && e.contains("before"), "{e}");
        // More result slots than the table has offsets: the table would reach into the bytes,
        // past the region for a long job; refused before any offset is read.
        let e = run_in_place(str_hash, &[0, 1], b"a", 0..1, 64).unwrap_err();
        assert!(e.contains("argument table is corrupt"), "{e}");
        // Reversed offsets inside a valid run of strings.
        let e = run_in_place(str_hash, &[0, 5, 2, 8], b"abcdefgh", 0..3, 3).unwrap_err();
        assert!(e.contains("task 1's argument"), "{e}");
    }

    #[test]
    fn borrowed_strings_are_read_in_place_and_checked_once_per_chunk() {
        let strs = ["ab", "", "日本", "🦀x"];
        let mut offsets = vec![0u64];
        let mut data = Vec::new();
        for s in strs {
            data.extend_from_slice(s.as_bytes());
            offsets.push(data.len() as u64);
        }
        let want: Vec<u64> = strs.iter().map(|s| str_hash(s)).collect();
        assert_eq!(run_ref(&offsets, &data, 0, 4).unwrap(), want);
        assert_eq!(run_ref(&offsets, &data, 1, 3).unwrap(), want[1..3]);
        assert_eq!(run_ref(&offsets, &data, 2, 2).unwrap(), []);
        // An offset inside a character: the run is valid UTF-8, the piece is not.
        let mut cut = offsets.clone();
        cut[3] -= 1;
        let e = run_ref(&cut, &data, 0, 4).unwrap_err();
        assert!(e.contains("task 2's argument could not be deserialized"), "{e}");
        // Bytes that are not UTF-8 (in task 2's "日本"): the chunk's check fails, and the
        // error names the task whose bytes they are, not the chunk's first.
        let mut bad = data.clone();
        bad[4] = 0xff;
        let e = run_ref(&offsets, &bad, 1, 4).unwrap_err();
        assert!(e.contains("task 2's argument") && e.contains("utf-8"), "{e}");
        // Offsets going backwards or past the region: a chunk error, never a read outside.
        let mut back = offsets.clone();
        back[2] = 1;
        back[1] = 2;
        let e = run_ref(&back, &data, 1, 2).unwrap_err();
        assert!(e.contains("tasks 1..2"), "{e}");
        let mut past = offsets.clone();
        past[4] = 1 << 40;
        let e = run_ref(&past, &data, 0, 4).unwrap_err();
        assert!(e.contains("outside the region"), "{e}");
        let e = run_ref(&past, &data, 0, 3).map(|v| v.len());
        assert_eq!(e, Ok(3), "a chunk that does not reach the bad offset runs");
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
}
