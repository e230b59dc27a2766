//! Putting a task call's arguments into shared memory and reading its results back: `Pod`
//! values as raw slots (the fast path), anything serializable through the [`codec`] layout.
//! Both use the control block's scratch area when they fit, else the pool's task arena (a
//! memfd reused from call to call, grown by doubling, kept mapped by the workers).

use std::borrow::Borrow;
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::mem::{align_of, size_of, size_of_val};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{self, tag};
use super::control::{MAX_CHUNKS, SCRATCH_BYTES};
use super::in_place::InPlace;
use super::publish::{ArraySpec, JobSpec};
use super::state::Pool;
use crate::error::{Error, Result};
use crate::segment::Segment;
use crate::segment::handle::Locator;
use crate::segment::header::{Kind, Layout, TypeDesc};
use crate::segment::options::ShmOptions;

/// Where a task job's results live.
enum Store {
    /// In the control block's scratch area, at this byte offset.
    Scratch(usize),
    /// In the pool's arena segment, at this byte offset.
    Arena(usize),
}

impl Store {
    fn base(&self, pool: &Pool) -> *const u8 {
        match self {
            Store::Scratch(off) => {
                // SAFETY: the offset was checked to fit the scratch area when staging.
                unsafe { pool.ctl.scratch_ptr().add(*off) }
            }
            Store::Arena(off) => {
                let seg = pool.arena.as_ref().expect("the arena outlives the job using it");
                // SAFETY: the arena was sized to hold the results at `off` when staging, and is
                // replaced only while staging a later job, which needs the pool borrowed
                // mutably, so never while these results can be read.
                unsafe { seg.data_ptr().as_ptr().add(*off) }
            }
        }
    }
}

/// How the parent reads result `i` of a finished chunk.
pub(crate) trait ResultSource<R> {
    /// Result `i`. The caller has seen the done bit of `i`'s chunk set (SeqCst) and the chunk
    /// not failed, which orders the worker's writes before this read.
    fn read(&self, pool: &Pool, i: usize) -> Result<R>;

    /// Results `0..n`, in order; the first (lowest-index) error. The caller has seen every
    /// chunk done and none failed.
    fn read_all(&self, pool: &Pool, n: usize) -> Result<Vec<R>> {
        (0..n).map(|i| self.read(pool, i)).collect()
    }
}

/// A plain task job's results: `n` values of `R`. Made only by [`Pool::stage_pod`], whose
/// contract makes `R` plain data.
pub(crate) struct PodResults<R> {
    store: Store,
    pub(crate) n: usize,
    _r: PhantomData<fn() -> R>,
}

impl<R> ResultSource<R> for PodResults<R> {
    fn read(&self, pool: &Pool, i: usize) -> Result<R> {
        assert!(i < self.n);
        let base = self.store.base(pool).cast::<R>();
        debug_assert!(base.is_aligned());
        // SAFETY: `i < n` and the store holds `n` aligned values of `R`; nothing writes the
        // slot after its chunk's done bit (see the trait), and any bytes there are a valid `R`
        // (plain data: `stage_pod`'s contract, the one way to make this).
        Ok(unsafe { base.add(i).read() })
    }

    /// One copy of the slots (not a read, a bounds check and a `Result` per value).
    fn read_all(&self, pool: &Pool, n: usize) -> Result<Vec<R>> {
        assert!(n <= self.n);
        let base = self.store.base(pool).cast::<R>();
        let mut out = Vec::with_capacity(n);
        // SAFETY: the store holds `self.n >= n` aligned values of `R`, done and written no
        // more (see the trait), and any bytes there are a valid `R` (as in `read`); `out` has
        // room for `n`, which the copy initialises.
        unsafe {
            std::ptr::copy_nonoverlapping(base, out.as_mut_ptr(), n);
            out.set_len(n);
        }
        Ok(out)
    }
}

/// Whether values of `T` take the raw-bytes path of the task calls without a `Pod` bound: the
/// primitive numbers (`u8`..`u128`, `i8`..`i128`, `usize`, `isize`, `f32`, `f64`), arrays
/// of them of 1 to 32 elements or a power of two up to 4096, and tuples of 1 to 4 of one of
/// them (`starmap`'s `(f64, f64)`). Each is `Pod` (no padding: a tuple's fields are all of one
/// type, checked by a test; every bit pattern valid, no pointers); `bool` and `char` are not,
/// and take the serialized path, as do tuples of mixed types (which may have padding).
///
/// *Why a `repr(Rust)` tuple may travel as bytes.* Rust promises nothing about a tuple's field
/// order, so the argument rests on two facts, not on a layout rule:
/// - no padding: a tuple of `k` fields of one primitive `P` is `k * size_of::<P>()` bytes (the
///   unit test checks each listed tuple), so its fields cover every byte whatever their order,
///   and any bytes make a valid tuple (each field is a primitive number, valid for any bits);
/// - one layout on both sides: the parent copies the tuple's bytes and the worker reads them as
///   the same type compiled into the same executable (a forked worker is this process; spawn
///   and forkserver workers re-execute `/proc/self/exe`, the very file, and the worker accepts
///   only trampolines inside its own code: `process::code`). A type has one layout within one
///   compilation, which every crate of the binary shares (a `&(f64, f64)` passed between crates
///   relies on the same). Nothing else reads these bytes: no other program, no Python.
///
/// Decided by `TypeId`, whose values are constants of each monomorphisation.
pub(crate) fn is_plain<T: 'static>() -> bool {
    use std::any::TypeId;
    let t = TypeId::of::<T>();
    macro_rules! arrays_of {
        ($p:ty; $($n:literal)*) => { $( t == TypeId::of::<[$p; $n]>() )||* };
    }
    macro_rules! any_of {
        ($($p:ty),*) => {
            $(
                t == TypeId::of::<$p>()
                    || arrays_of!($p; 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23
                        24 25 26 27 28 29 30 31 32 64 128 256 512 1024 2048 4096)
                    || t == TypeId::of::<($p,)>()
                    || t == TypeId::of::<($p, $p)>()
                    || t == TypeId::of::<($p, $p, $p)>()
                    || t == TypeId::of::<($p, $p, $p, $p)>()
            )||*
        };
    }
    any_of!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64)
}

/// Copies `values` of a plain `T` ([`is_plain`]) into a `Vec`, however they are borrowed.
///
/// # Safety
///
/// [`is_plain::<T>()`](is_plain) holds.
pub(crate) unsafe fn copy_plain<T>(values: impl IntoIterator<Item = impl Borrow<T>>) -> Vec<T> {
    debug_assert!(!std::mem::needs_drop::<T>());
    // SAFETY: `T` is a primitive number, or an array or tuple of them (the contract): `Copy`,
    // with no drop glue, so a bitwise read of a live value is a copy of it.
    values.into_iter().map(|v| unsafe { std::ptr::read(v.borrow()) }).collect()
}

/// A spill segment as a chunk's spill record names it: the worker's pid, the descriptor there,
/// the nonce.
type SpillKey = (u32, i32, u64);

/// A serialized task job's results ([`codec`]'s result region), with the spill segments of
/// chunks whose results did not fit, opened as needed.
pub(crate) struct SerialResults<R> {
    store: Store,
    pub(crate) n: usize,
    /// The index of task 0 in the whole call (a streaming call runs as several jobs).
    first: usize,
    limit: usize,
    chunk_size: usize,
    /// Bytes of results the region holds (the parent's copy, not the shared header's).
    capacity: usize,
    /// Spill segments opened so far, by (pid, descriptor, nonce): a worker's chunks share them.
    spills: RefCell<Vec<(SpillKey, Segment)>>,
    _r: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned> ResultSource<R> for SerialResults<R> {
    fn read(&self, pool: &Pool, i: usize) -> Result<R> {
        assert!(i < self.n);
        let base = self.store.base(pool);
        // SAFETY: the region was initialised for `n` tasks, and the chunk of `i` is finished
        // without error (see the trait).
        let (t, bytes) =
            unsafe { codec::read_result(base, self.n, self.chunk_size, self.capacity, i) };
        let Some(bytes) = bytes else {
            return Err(Error::TaskValue {
                task: self.first + i,
                what: "result",
                how: "read",
                reason: "its entry names bytes outside the result region (the region was \
                         overwritten by another process; run the job again)"
                    .into(),
            });
        };
        // A result over the limit has no bytes, in the region or in its chunk's spill segment
        // (whose flag its entry carries too: `failure.rs` reads a chunk's first entry to know
        // it spilled): its length is its size, not a span of the segment.
        match t & !codec::SPILLED {
            codec::tag::TOO_LARGE => self.decode(base, i, codec::tag::TOO_LARGE, &[]),
            untagged if t & codec::SPILLED != 0 => self.decode_spilled(pool, base, i, untagged),
            _ => self.decode(base, i, t, bytes),
        }
    }
}

impl<R: DeserializeOwned> SerialResults<R> {
    /// The value, or the error, that entry `i` (tag `t`, bytes `bytes`) records.
    fn decode(&self, base: *const u8, i: usize, t: u64, bytes: &[u8]) -> Result<R> {
        let text = || String::from_utf8_lossy(bytes).into_owned();
        let task = self.first + i;
        let value = |how, reason| Error::TaskValue { task, what: "result", how, reason };
        match t {
            tag::OK => {
                postcard::from_bytes(bytes).map_err(|e| value("deserialized", e.to_string()))
            }
            tag::TASK_ERR => Err(Error::TaskFailed { task, message: text() }),
            tag::SER_FAILED => Err(value("serialized", text())),
            tag::ARG_FAILED => Err(Error::TaskValue {
                task,
                what: "argument",
                how: "deserialized",
                reason: text(),
            }),
            tag::TOO_LARGE => Err(Error::TaskValueTooLarge {
                task,
                what: "result",
                // SAFETY: as in `read`.
                bytes: unsafe { codec::entry_span(base, i) }.1,
                limit: self.limit,
            }),
            t => Err(value("read", format!("its entry has tag {t}, which no worker writes"))),
        }
    }

    /// [`decode`](Self::decode) of entry `i` (tag `t`), whose bytes are in its chunk's spill
    /// segment, a memfd the worker made and keeps open until it starts on the next job.
    fn decode_spilled(&self, pool: &Pool, base: *const u8, i: usize, t: u64) -> Result<R> {
        let chunk = i / self.chunk_size;
        let task = self.first + i;
        let value = |reason| Error::TaskValue { task, what: "result", how: "read", reason };
        // SAFETY: as in `read`: the entry of `i` and its chunk's spill record are written.
        let ((pid, fd, nonce), (off, len)) =
            unsafe { (codec::spill_of(base, self.n, chunk), codec::entry_span(base, i)) };
        let key = (pid, fd, nonce);
        let mut spills = self.spills.borrow_mut();
        let pos = match spills.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                // A worker that retired after this chunk handed its segment over first
                // (`failure.rs`); otherwise the worker still holds it.
                let mut adopted = pool.adopted.borrow_mut();
                let seg = match adopted.iter().position(|(k, _)| *k == key) {
                    Some(k) => adopted.swap_remove(k).1,
                    None => {
                        let loc = Locator::Anonymous { pid, fd };
                        Segment::open(&loc, Some(nonce), false).map_err(|e| {
                            value(format!(
                                "its chunk's results outgrew the result region and went to a \
                                 segment of worker {pid}, which could not be opened ({e})"
                            ))
                        })?
                    }
                };
                spills.push((key, seg));
                spills.len() - 1
            }
        };
        let seg = &spills[pos].1;
        let bytes = seg.len().saturating_mul(seg.header().elem_size as usize);
        if off.checked_add(len).is_none_or(|end| end > bytes) {
            return Err(value(format!("its spilled bytes {off}..+{len} lie past the segment")));
        }
        // SAFETY: `off + len` lies inside the segment's data (checked); the worker wrote it
        // before the chunk's done bit and writes it no more.
        let spilled = unsafe { std::slice::from_raw_parts(seg.data_ptr().as_ptr().add(off), len) };
        self.decode(base, i, t, spilled)
    }
}

/// A staged task job: its spec and where its results will be.
pub(crate) struct Staged<S> {
    pub(crate) spec: JobSpec,
    pub(crate) results: S,
    /// Where the arguments go when they are written after the job is published, chunk by chunk
    /// as workers start (`spec.streamed`): the region's address in this process.
    pub(crate) deferred: Option<usize>,
}

/// The most alignment a task argument or result type may have: the task arena's data starts on
/// a page boundary in every process that maps it (a mapping guarantees no more).
const MAX_TASK_ALIGN: usize = crate::segment::header::MAX_ALIGN;

/// One page of the task arena: its element type, so that the arena's data starts at a page
/// boundary (the header puts data at a multiple of the element's alignment) and regions at
/// multiples of any alignment up to [`MAX_TASK_ALIGN`] are aligned in every process.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct ArenaPage([u8; MAX_TASK_ALIGN]);

/// The staging layout of `n` tasks: byte offsets of the second arguments and the results, and
/// the bytes in all, each region starting at a multiple of `align` (a power of two) and of 64;
/// [`Error::TooLarge`] when a size does not fit in `usize` (zero-sized arguments let `n` be
/// anything).
fn staging_layout(
    n: usize,
    a_bytes: usize,
    b_bytes: usize,
    r_size: usize,
    align: usize,
) -> Result<(usize, usize, usize)> {
    let too_large = || Error::TooLarge { len: n, elem_size: r_size };
    let step = align.max(64);
    let r_bytes = n.checked_mul(r_size).ok_or_else(too_large)?;
    let b_off = a_bytes.checked_next_multiple_of(step).ok_or_else(too_large)?;
    let r_off = b_bytes
        .checked_next_multiple_of(step)
        .and_then(|b| b_off.checked_add(b))
        .ok_or_else(too_large)?;
    let end = r_off.checked_add(r_bytes).ok_or_else(too_large)?;
    Ok((b_off, r_off, end))
}

/// [`Error::InvalidArgument`] unless a task argument or result type of alignment `align` can
/// be staged.
fn check_task_align(align: usize) -> Result<()> {
    crate::segment::header::check_align(
        "task argument or result type",
        "the type",
        align,
        "use a less aligned type, or put the data in a SharedArray and pass indices",
    )
}

/// Serializes every argument: the offsets (`n + 1`) and the bytes, each value checked against
/// the limit.
pub(crate) fn serialize_args<A: Serialize>(
    args: impl IntoIterator<Item = impl Borrow<A>>,
    limit: usize,
    first: usize,
) -> Result<(Vec<u64>, Vec<u8>)> {
    let mut buffers = (Vec::new(), Vec::new());
    serialize_args_into(args, limit, first, &mut buffers)?;
    Ok(buffers)
}

/// [`serialize_args`] into `(offsets, data)`, cleared first (their capacity is reused).
fn serialize_args_into<A: Serialize>(
    args: impl IntoIterator<Item = impl Borrow<A>>,
    limit: usize,
    first: usize,
    (offsets, data): &mut (Vec<u64>, Vec<u8>),
) -> Result<()> {
    let args = args.into_iter();
    let hint = args.size_hint().0.min(16 << 20);
    offsets.clear();
    data.clear();
    offsets.reserve(hint + 1);
    // 16 bytes a value to begin with: a short string or a few numbers, without a reallocation.
    data.reserve(hint * 16);
    offsets.push(0);
    for (i, a) in args.enumerate() {
        let i = first + i;
        let bytes = codec::encode_into(a.borrow(), data, limit).map_err(|e| Error::TaskValue {
            task: i,
            what: "argument",
            how: "serialized",
            reason: e.to_string(),
        })?;
        if bytes > limit {
            return Err(Error::TaskValueTooLarge { task: i, what: "argument", bytes, limit });
        }
        offsets.push(data.len() as u64);
    }
    Ok(())
}

/// A job's argument region as the parent writes it ([`codec`]'s layout: `n + 1` offsets, then
/// the bytes of every argument).
pub(crate) trait ArgSource {
    /// The number of tasks and the bytes their arguments take.
    fn sizes(&self) -> (usize, usize);

    /// Writes the region.
    ///
    /// # Safety
    ///
    /// `dst` is valid for writes of [`codec::arg_region_bytes`] of [`sizes`](Self::sizes)
    /// bytes, 8-aligned, and nobody else reads or writes it meanwhile.
    unsafe fn write(&self, dst: *mut u8) -> Result<()>;

    /// Writes the region in chunks of `chunk_size` tasks (`> 0`), calling `staged(k)` once the
    /// arguments of chunks `..k` are in place: their offsets (the table's entries up to
    /// `k * chunk_size`, the last chunk's end included) and their bytes. A source that cannot
    /// write part of its region writes it all, then says so once.
    ///
    /// # Safety
    ///
    /// As for [`write`](Self::write), except that others may read the chunks already reported
    /// staged (this writes none of their bytes again).
    unsafe fn write_chunks(
        &self,
        dst: *mut u8,
        chunk_size: usize,
        staged: &mut dyn FnMut(usize),
    ) -> Result<()> {
        // SAFETY: the contract, with nobody reading before `staged` is called.
        unsafe { self.write(dst)? };
        staged(self.sizes().0.div_ceil(chunk_size.max(1)));
        Ok(())
    }
}

/// Arguments serialized already: `offsets` (`n + 1`) into `data`, copied as they are.
struct Encoded<'a> {
    offsets: &'a [u64],
    data: &'a [u8],
}

impl ArgSource for Encoded<'_> {
    fn sizes(&self) -> (usize, usize) {
        (self.offsets.len() - 1, self.data.len())
    }

    unsafe fn write(&self, dst: *mut u8) -> Result<()> {
        // SAFETY: per this function's contract, which is `write_args`'s.
        unsafe { codec::write_args(dst, self.offsets, self.data) };
        Ok(())
    }
}

/// Arguments a task borrows in place ([`InPlace`]): each value's bytes copied straight from
/// the caller's values into the region, no serialization, no intermediate buffer. Made by
/// [`Borrowed::new`], which measured them (and checked each against the limit).
pub(crate) struct Borrowed<'a, B: ?Sized, S> {
    args: &'a [S],
    data: usize,
    first: usize,
    limit: usize,
    counted: fn(usize) -> usize,
    /// The longest raw value within the limit (`None`: not even an empty one), so that each
    /// value is checked by a comparison, not a call of `counted`.
    raw_limit: Option<usize>,
    _b: PhantomData<fn(&B)>,
}

impl<'a, B: InPlace + ?Sized, S: AsRef<B>> Borrowed<'a, B, S> {
    /// Measures `args`: [`Error::InvalidArgument`] if `B` cannot be staged,
    /// [`Error::TaskValueTooLarge`] naming the first argument over `limit` bytes (task indices
    /// from `first`), [`Error::TooLarge`] if their lengths sum past `usize::MAX`.
    pub(crate) fn new(args: &'a [S], limit: usize, first: usize) -> Result<Self> {
        Self::counted(args, limit, first, |n| n)
    }

    /// [`new`](Borrowed::new), the limit applied to `counted(n)` for a value of `n` bytes (the
    /// size of its serialized form, where the same value takes the serialized path elsewhere:
    /// one limit whichever path a value takes).
    pub(crate) fn counted(
        args: &'a [S],
        limit: usize,
        first: usize,
        counted: fn(usize) -> usize,
    ) -> Result<Self> {
        if let Some(reason) = B::refused() {
            return Err(Error::InvalidArgument { what: "task argument type", reason });
        }
        // `counted(n)` grows with `n` and adds at most 10 bytes (a varint length prefix).
        let raw_limit = (0..=10).map(|d| limit.saturating_sub(d)).find(|&n| counted(n) <= limit);
        let mut data = 0usize;
        for (i, a) in args.iter().enumerate() {
            let raw = a.as_ref().raw().len();
            if raw_limit.is_none_or(|r| raw > r) {
                let (task, bytes) = (first + i, counted(raw));
                return Err(Error::TaskValueTooLarge { task, what: "argument", bytes, limit });
            }
            // Values need not be distinct (many elements may borrow one string), so their sum
            // can pass `usize::MAX`.
            // (`ok_or_else`: an eager `ok_or` built and dropped an `Error` per value.)
            let too_large = || Error::TooLarge { len: args.len(), elem_size: 1 };
            data = data.checked_add(raw).ok_or_else(too_large)?;
        }
        Ok(Borrowed { args, data, first, limit, counted, raw_limit, _b: PhantomData })
    }
}

impl<B: InPlace + ?Sized, S: AsRef<B>> ArgSource for Borrowed<'_, B, S> {
    fn sizes(&self) -> (usize, usize) {
        (self.args.len(), self.data)
    }

    unsafe fn write(&self, dst: *mut u8) -> Result<()> {
        // SAFETY: the contract, which is `write_chunks`'s with nobody reading.
        unsafe { self.write_chunks(dst, self.args.len().max(1), &mut |_| {}) }
    }

    /// One pass, chunk after chunk: each offset, then each value's bytes (a few-byte copy for
    /// a short string). A user's `AsRef` that returns other values than when [`Borrowed::new`]
    /// measured them is refused before a byte past the region is written, or a value past the
    /// limit: [`Error::InvalidArgument`] if the values outgrow the measured total,
    /// [`Error::TaskValueTooLarge`] for one over the limit; the chunks staged before stay
    /// staged (the caller cancels the rest).
    unsafe fn write_chunks(
        &self,
        dst: *mut u8,
        chunk_size: usize,
        staged: &mut dyn FnMut(usize),
    ) -> Result<()> {
        let n = self.args.len();
        let table = dst.cast::<u64>();
        // SAFETY: per the contract, `dst` holds `n + 1` offsets and then `self.data` bytes.
        let data = unsafe { dst.add((n + 1) * 8) };
        let mut at = 0usize;
        // SAFETY: offset 0 lies inside the region, which starts 8-aligned (the contract), and
        // no chunk is staged yet.
        unsafe { table.write(0) };
        let chunk_size = chunk_size.max(1);
        for (k, chunk) in self.args.chunks(chunk_size).enumerate() {
            for (j, a) in chunk.iter().enumerate() {
                let i = k * chunk_size + j;
                let bytes = a.as_ref().raw();
                // The limit again: a value measured short may come back long while another one
                // shrank, the total unchanged.
                if self.raw_limit.is_none_or(|r| bytes.len() > r) {
                    let counted = (self.counted)(bytes.len());
                    let (task, limit) = (self.first + i, self.limit);
                    return Err(Error::TaskValueTooLarge {
                        task,
                        what: "argument",
                        bytes: counted,
                        limit,
                    });
                }
                if bytes.len() > self.data - at {
                    return Err(Error::InvalidArgument {
                        what: "task argument",
                        reason: format!(
                            "the arguments up to {} grew between two calls of their AsRef, past the bytes \
                             measured (it must return the same value each time)",
                            self.first + i
                        ),
                    });
                }
                // SAFETY: `at + bytes.len() <= self.data` (checked), in the region; offset `i + 1 <= n`
                // is in the table, 8-aligned. The caller's value cannot overlap the region: the pool's
                // own mapping (scratch or arena), lent to no caller, while this call holds the pool.
                unsafe {
                    copy_short(bytes, data.add(at));
                    at += bytes.len();
                    table.add(i + 1).write(at as u64);
                }
            }
            // Chunk `k`'s offsets (its end included, entry `(k + 1) * chunk_size` or `n`) and
            // bytes are written; none of them is written again.
            staged(k + 1);
        }
        // A value that shrank leaves the rest unused; the offsets say where each one ends.
        Ok(())
    }
}

/// Copies `src` to `dst`: a value of 4 to 32 bytes (a file name) as two overlapping loads and
/// stores, inline, where a `memcpy` call per value cost about as much as the rest of staging
/// it; anything else through `copy_nonoverlapping`.
///
/// # Safety
///
/// `dst` is valid for `src.len()` bytes of writes and does not overlap `src`.
#[inline(always)]
unsafe fn copy_short(src: &[u8], dst: *mut u8) {
    let (n, s) = (src.len(), src.as_ptr());
    // SAFETY: each read lies in `src` (`n >= 16` for the `u128`s at `0` and `n - 16`, and so
    // on down), each write at the same offsets of `dst`, valid for `n` bytes (the contract);
    // unaligned accesses of plain integers. Overlapping writes write the same bytes twice.
    unsafe {
        if (16..=32).contains(&n) {
            let (a, b) =
                (s.cast::<u128>().read_unaligned(), s.add(n - 16).cast::<u128>().read_unaligned());
            dst.cast::<u128>().write_unaligned(a);
            dst.add(n - 16).cast::<u128>().write_unaligned(b);
        } else if (8..16).contains(&n) {
            let (a, b) =
                (s.cast::<u64>().read_unaligned(), s.add(n - 8).cast::<u64>().read_unaligned());
            dst.cast::<u64>().write_unaligned(a);
            dst.add(n - 8).cast::<u64>().write_unaligned(b);
        } else if (4..8).contains(&n) {
            let (a, b) =
                (s.cast::<u32>().read_unaligned(), s.add(n - 4).cast::<u32>().read_unaligned());
            dst.cast::<u32>().write_unaligned(a);
            dst.add(n - 4).cast::<u32>().write_unaligned(b);
        } else {
            std::ptr::copy_nonoverlapping(s, dst, n);
        }
    }
}

/// A `map` argument that is a `String` however it is passed (owned, or borrowed: `Borrow<A>`
/// with `A` = `String`), as `&str` for [`Borrowed`]: `map(process_file, &paths)` copies the
/// strings' bytes in as they are. Made only where `A` is `String`; any other `A` reads as an
/// empty string.
pub(crate) struct StringArg<T, A>(pub(crate) T, pub(crate) PhantomData<fn() -> A>);

/// The bytes postcard encodes a string of `n` bytes into: a varint length, then the bytes.
pub(crate) fn postcard_str_len(n: usize) -> usize {
    let mut prefix = 1u32;
    while n.checked_shr(7 * prefix).is_some_and(|rest| rest != 0) {
        prefix += 1;
    }
    n.saturating_add(prefix as usize)
}

impl<A: 'static, T: Borrow<A>> AsRef<str> for StringArg<T, A> {
    fn as_ref(&self) -> &str {
        (self.0.borrow() as &dyn std::any::Any).downcast_ref::<String>().map_or("", String::as_str)
    }
}

/// The most bytes of argument buffers [`ARG_BUFFERS`] keeps from one call to the next.
const KEEP_ARG_BUFFERS: usize = 64 << 20;

thread_local! {
    /// The buffers a staged call serialized its arguments into, kept for the next call on this
    /// thread (up to [`KEEP_ARG_BUFFERS`]): a `map` over 100,000 strings then neither allocates
    /// nor faults in 3 MB of fresh pages each time. Taken out while in use, so a `Serialize`
    /// impl that stages another pool's call gets fresh ones instead of a borrow panic, and a
    /// panic while serializing or staging drops them (the next call starts empty).
    ///
    /// Kept buffers are ordinary heap memory of this thread: a process forked later (a `Fork`
    /// pool's worker, a scope child) shares their pages copy-on-write, so they cost it no
    /// memory until it stages a call of its own (its RSS counts them while shared); spawn and
    /// forkserver children do not have them. A thread that staged one big call holds up to
    /// 64 MiB until it ends; a call whose buffers grew past that drops them.
    static ARG_BUFFERS: Cell<(Vec<u64>, Vec<u8>)> = const { Cell::new((Vec::new(), Vec::new())) };
}

/// Serializes `args` into this thread's reused buffers ([`ARG_BUFFERS`]) and calls `then`
/// with the offsets and bytes.
fn with_serialized_args<A: Serialize, T>(
    args: impl IntoIterator<Item = impl Borrow<A>>,
    limit: usize,
    first: usize,
    then: impl FnOnce(&[u64], &[u8]) -> Result<T>,
) -> Result<T> {
    let mut buffers = ARG_BUFFERS.take();
    let out = serialize_args_into(args, limit, first, &mut buffers)
        .and_then(|()| then(&buffers.0, &buffers.1));
    if buffers.0.capacity() * 8 + buffers.1.capacity() <= KEEP_ARG_BUFFERS {
        ARG_BUFFERS.set(buffers);
    }
    out
}

impl Pool {
    /// The chunk size of `n` tasks asked for `chunksize` (the done bitmap caps the chunks).
    fn task_chunk_size(n: usize, chunksize: usize) -> usize {
        chunksize.max(1).max(n.div_ceil(MAX_CHUNKS))
    }

    /// A pointer to `need` bytes of the task arena, created or grown (doubling, from 1 MiB) as
    /// needed. No job may be in flight.
    fn arena_for(&mut self, need: usize, too_large: impl Fn() -> Error) -> Result<*mut u8> {
        let page = size_of::<ArenaPage>();
        if self.arena.as_ref().is_none_or(|seg| seg.len().saturating_mul(page) < need) {
            let pages =
                need.div_ceil(page).checked_next_power_of_two().ok_or_else(too_large)?.max(256);
            let layout = Layout::new(Kind::Array, TypeDesc::of::<ArenaPage>(), pages)?;
            let seg = Segment::create(&ShmOptions::new(), &layout)?;
            seg.publish();
            self.arena = Some(seg);
        }
        Ok(self.arena.as_ref().expect("set above").data_ptr().as_ptr())
    }

    /// Puts plain arguments in shared memory as raw bytes and describes the job (three byte
    /// regions: `a`, `b`, the results). No job may be in flight.
    ///
    /// # Safety
    ///
    /// `A`, `B` and `R` are plain data: `Pod`, or types [`is_plain`] accepts (which are `Pod`
    /// without saying so to the compiler), so their bytes may be copied, and any bytes a worker
    /// leaves in a result slot are a valid `R`.
    pub(crate) unsafe fn stage_pod<A, B, R>(
        &mut self,
        trampoline: usize,
        kernel: usize,
        a: &[A],
        b: Option<&[B]>,
        chunksize: usize,
    ) -> Result<Staged<PodResults<R>>> {
        self.check_running()?;
        let align = align_of::<A>().max(align_of::<B>()).max(align_of::<R>());
        check_task_align(align)?;
        self.finish_active()?;
        let n = a.len();
        let chunk_size = Self::task_chunk_size(n, chunksize);
        let (a_bytes, b_bytes) = (size_of_val(a), b.map_or(0, size_of_val));
        let (b_off, r_off, end) = staging_layout(n, a_bytes, b_bytes, size_of::<R>(), align)?;
        // The scratch area is 8-aligned; the arena's data page-aligned; regions start at
        // multiples of `align` (and of 64).
        let fits = end <= SCRATCH_BYTES && align <= 8;
        let mut spec = JobSpec::tasks(trampoline, kernel, n, chunk_size);
        let base = if fits {
            self.ctl.scratch_ptr()
        } else {
            self.arena_for(end.max(1), || Error::TooLarge { len: n, elem_size: size_of::<R>() })?
        };
        // SAFETY: no job is in flight (finish_active above), so no worker reads the scratch area
        // or the arena; the regions lie inside it (`fits`, or the arena was sized to `end`),
        // and the sources are plain bytes (this function's contract).
        unsafe {
            std::ptr::copy_nonoverlapping(a.as_ptr().cast::<u8>(), base, a_bytes);
            if let Some(b) = b {
                std::ptr::copy_nonoverlapping(b.as_ptr().cast::<u8>(), base.add(b_off), b_bytes);
            }
        }
        // Byte regions: the trampoline (`task_kernel::task`) checks each against its type.
        let region = |off, bytes| match &self.arena {
            Some(seg) if !fits => ArraySpec::Region(seg.handle(), off, bytes, 1),
            _ => ArraySpec::Scratch(off, bytes, 1),
        };
        spec.arrays[0] = region(0, a_bytes);
        if b.is_some() {
            spec.arrays[1] = region(b_off, b_bytes);
        }
        spec.arrays[2] = region(r_off, end - r_off);
        let store = if fits { Store::Scratch(r_off) } else { Store::Arena(r_off) };
        Ok(Staged { spec, results: PodResults { store, n, _r: PhantomData }, deferred: None })
    }

    /// Serializes the arguments into shared memory ([`codec`]'s argument region), prepares a
    /// result region sized from the results of earlier calls, and describes the job. Waits for
    /// the job in flight, if any, after serializing.
    pub(crate) fn stage_serial<A: Serialize, R>(
        &mut self,
        trampoline: usize,
        kernel: usize,
        args: impl IntoIterator<Item = impl Borrow<A>>,
        chunksize: Option<usize>,
        first: usize,
    ) -> Result<Staged<SerialResults<R>>> {
        self.check_running()?;
        with_serialized_args::<A, _>(args, self.max_task_bytes, first, |offsets, data| {
            self.stage_serialized(trampoline, kernel, offsets, data, chunksize, first)
        })
    }

    /// [`stage_serial`](Pool::stage_serial) of arguments already serialized: `offsets`
    /// (`n + 1` of them) into `data`.
    pub(crate) fn stage_serialized<R>(
        &mut self,
        trampoline: usize,
        kernel: usize,
        offsets: &[u64],
        data: &[u8],
        chunksize: Option<usize>,
        first: usize,
    ) -> Result<Staged<SerialResults<R>>> {
        let args = Encoded { offsets, data };
        self.stage_region(trampoline, kernel, args, chunksize, first)
    }

    /// [`stage_serialized`](Pool::stage_serialized) of any argument region.
    pub(crate) fn stage_region<R>(
        &mut self,
        trampoline: usize,
        kernel: usize,
        args: impl ArgSource,
        chunksize: Option<usize>,
        first: usize,
    ) -> Result<Staged<SerialResults<R>>> {
        self.check_running()?;
        let limit = self.max_task_bytes;
        let (n, data_len) = args.sizes();
        let chunk_size =
            Self::task_chunk_size(n, chunksize.unwrap_or_else(|| self.default_map_chunksize(n)));
        self.finish_active()?;
        let mut spec = JobSpec::tasks(trampoline, kernel, n, chunk_size);
        let too_large = || Error::TooLarge { len: n, elem_size: 1 };
        let capacity = codec::result_capacity(n, self.result_hint.get(), limit);
        let a_bytes = codec::arg_region_bytes(n, data_len).ok_or_else(too_large)?;
        let r_off = a_bytes.checked_next_multiple_of(64).ok_or_else(too_large)?;
        let r_bytes = codec::result_region_bytes(n, chunk_size, capacity).ok_or_else(too_large)?;
        let end = r_off.checked_add(r_bytes).ok_or_else(too_large)?;
        let fits = end <= SCRATCH_BYTES;
        let base = if fits { self.ctl.scratch_ptr() } else { self.arena_for(end, too_large)? };
        // SAFETY: no job is in flight (finish_active above), so no worker reads the scratch area
        // or the arena; both regions lie inside it (`fits`, or the arena was sized to `end`),
        // and start at multiples of 64 of an 8-aligned base.
        unsafe {
            args.write(base)?;
            codec::init_results(base.add(r_off), limit, capacity, n, chunk_size, first);
        }
        let region = |off, len| match &self.arena {
            Some(seg) if !fits => ArraySpec::Region(seg.handle(), off, len, 1),
            _ => ArraySpec::Scratch(off, len, 1),
        };
        if n > 0 {
            spec.arrays[0] = region(0, a_bytes);
            spec.arrays[2] = region(r_off, r_bytes);
            // SAFETY: inside the region written above.
            spec.results = Some((unsafe { base.add(r_off) } as usize, n, chunk_size));
        }
        let store = if fits { Store::Scratch(r_off) } else { Store::Arena(r_off) };
        let results = SerialResults {
            store,
            n,
            first,
            limit,
            chunk_size,
            capacity,
            spills: RefCell::new(Vec::new()),
            _r: PhantomData,
        };
        Ok(Staged { spec, results, deferred: None })
    }

    /// Serializes the arguments into shared memory ([`codec`]'s argument region) and puts `n`
    /// raw result slots of a plain `R` after them (no entries, no encoding: a result is 8
    /// bytes or so where an entry alone takes 24), and describes the job. No job may be in
    /// flight.
    ///
    /// # Safety
    ///
    /// `R` is plain data and not zero-sized ([`stage_pod`](Pool::stage_pod)'s contract).
    pub(crate) unsafe fn stage_serial_plain<A: Serialize, R>(
        &mut self,
        trampoline: usize,
        kernel: usize,
        args: impl IntoIterator<Item = impl Borrow<A>>,
        chunksize: Option<usize>,
    ) -> Result<Staged<PodResults<R>>> {
        self.check_running()?;
        let align = align_of::<R>();
        check_task_align(align)?;
        with_serialized_args::<A, _>(args, self.max_task_bytes, 0, |offsets, data| {
            let args = Encoded { offsets, data };
            // SAFETY: this function's contract.
            unsafe { self.stage_region_plain(trampoline, kernel, &args, chunksize, false) }
        })
    }

    /// [`stage_serial_plain`](Pool::stage_serial_plain) of any argument region. With `stream`,
    /// a job of several chunks in the task arena is described as `streamed` and its arguments
    /// are left to write once it is published ([`Staged::deferred`]), so that workers start on
    /// the first chunks while the parent writes the others.
    ///
    /// # Safety
    ///
    /// As for [`stage_serial_plain`](Pool::stage_serial_plain).
    pub(crate) unsafe fn stage_region_plain<R>(
        &mut self,
        trampoline: usize,
        kernel: usize,
        args: &impl ArgSource,
        chunksize: Option<usize>,
        stream: bool,
    ) -> Result<Staged<PodResults<R>>> {
        self.check_running()?;
        let align = align_of::<R>();
        check_task_align(align)?;
        let (n, data_len) = args.sizes();
        let chunk_size =
            Self::task_chunk_size(n, chunksize.unwrap_or_else(|| self.default_map_chunksize(n)));
        self.finish_active()?;
        let too_large = || Error::TooLarge { len: n, elem_size: size_of::<R>() };
        let a_bytes = codec::arg_region_bytes(n, data_len).ok_or_else(too_large)?;
        let (_, r_off, end) = staging_layout(n, a_bytes, 0, size_of::<R>(), align)?;
        let fits = end <= SCRATCH_BYTES && align <= 8;
        let base = if fits { self.ctl.scratch_ptr() } else { self.arena_for(end, too_large)? };
        let mut spec = JobSpec::tasks(trampoline, kernel, n, chunk_size);
        // Streaming pays a wake per chunk; a job in the scratch area (64 KiB) is written in
        // microseconds anyway.
        spec.streamed = stream && !fits && n > chunk_size;
        if !spec.streamed {
            // SAFETY: no job is in flight (finish_active above), so no worker reads the scratch
            // area or the arena; the argument region lies inside it (`fits`, or the arena was
            // sized to `end`), at an 8-aligned base.
            unsafe { args.write(base)? };
        }
        let region = |off, bytes| match &self.arena {
            Some(seg) if !fits => ArraySpec::Region(seg.handle(), off, bytes, 1),
            _ => ArraySpec::Scratch(off, bytes, 1),
        };
        if n > 0 {
            spec.arrays[0] = region(0, a_bytes);
            spec.arrays[2] = region(r_off, end - r_off);
        }
        let store = if fits { Store::Scratch(r_off) } else { Store::Arena(r_off) };
        let deferred = spec.streamed.then_some(base as usize);
        Ok(Staged { spec, results: PodResults { store, n, _r: PhantomData }, deferred })
    }

    /// Learns from a finished serialized job how many bytes its results took, for sizing the
    /// next job's result region.
    pub(crate) fn learn_result_size<R>(&self, results: &SerialResults<R>) {
        if results.n > 0 {
            // SAFETY: the region was initialised for this job, which is over.
            let used = unsafe { codec::used_bytes(results.store.base(self)) };
            self.result_hint.set(used.div_ceil(results.n).max(codec::MIN_RESULT_HINT));
        }
    }

    /// Python's default `map` chunk size: `ceil(n / (4 * workers))`.
    pub(crate) fn default_map_chunksize(&self, n: usize) -> usize {
        n.div_ceil(4 * self.workers()).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_sizes_that_overflow_are_too_large() {
        // Zero-sized arguments let a task list be as long as `usize` allows.
        assert!(matches!(staging_layout(usize::MAX, 0, 0, 8, 8), Err(Error::TooLarge { .. })));
        assert!(matches!(staging_layout(usize::MAX / 8, 64, 0, 8, 8), Err(Error::TooLarge { .. })));
        assert!(matches!(staging_layout(4, usize::MAX - 10, 0, 8, 8), Err(Error::TooLarge { .. })));
        assert_eq!(staging_layout(3, 24, 6, 8, 8).unwrap(), (64, 128, 152));
    }

    #[test]
    fn regions_start_at_multiples_of_the_alignment() {
        // Three 128-aligned arguments of 128 bytes; results of 256 bytes, 256-aligned.
        assert_eq!(staging_layout(3, 384, 0, 256, 256).unwrap(), (512, 512, 512 + 768));
        assert_eq!(staging_layout(1, 4096, 4096, 4096, 4096).unwrap(), (4096, 8192, 12288));
        assert!(check_task_align(4096).is_ok());
        let e = check_task_align(8192).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument { reason, .. } if reason.contains("8192")),
            "{e}"
        );
        assert_eq!(std::mem::align_of::<ArenaPage>(), MAX_TASK_ALIGN);
    }

    #[test]
    fn plain_types_are_the_primitive_numbers_and_their_arrays() {
        assert!(is_plain::<u8>() && is_plain::<i64>() && is_plain::<f32>() && is_plain::<usize>());
        assert!(is_plain::<[u8; 3]>() && is_plain::<[f64; 32]>() && is_plain::<[u16; 4096]>());
        // Invalid bit patterns, padding or pointers: serialized.
        assert!(!is_plain::<bool>() && !is_plain::<char>() && !is_plain::<[bool; 2]>());
        assert!(!is_plain::<String>() && !is_plain::<(u8, u64)>() && !is_plain::<Option<u8>>());
        assert!(!is_plain::<()>() && !is_plain::<[u8; 33]>() && !is_plain::<&'static u8>());
        // Tuples of one type: plain, and without padding (the claim `is_plain` rests on).
        assert!(is_plain::<(f64, f64)>() && is_plain::<(u8,)>() && is_plain::<(i16, i16, i16)>());
        assert!(!is_plain::<(u8, u8, u8, u8, u8)>() && !is_plain::<(bool, bool)>());
        macro_rules! no_padding {
            ($($p:ty),*) => {$(
                assert_eq!(size_of::<($p,)>(), size_of::<$p>());
                assert_eq!(size_of::<($p, $p)>(), 2 * size_of::<$p>());
                assert_eq!(size_of::<($p, $p, $p)>(), 3 * size_of::<$p>());
                assert_eq!(size_of::<($p, $p, $p, $p)>(), 4 * size_of::<$p>());
            )*};
        }
        no_padding!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);
        // SAFETY: `u16` is plain.
        let copied = unsafe { copy_plain::<u16>([&1u16, &2, &3]) };
        assert_eq!(copied, [1, 2, 3]);
    }

    /// A `Serialize` impl that stages another call on this thread gets fresh buffers, and
    /// neither call sees the other's bytes, then or in the next call.
    #[test]
    fn reused_argument_buffers_survive_a_nested_call() {
        fn copy(o: &[u64], d: &[u8]) -> Result<(Vec<u64>, Vec<u8>)> {
            Ok((o.to_vec(), d.to_vec()))
        }
        struct Nested;
        impl Serialize for Nested {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let inner = with_serialized_args::<u8, _>([1u8, 2], 10, 0, copy).unwrap();
                assert_eq!(inner, (vec![0, 1, 2], vec![1, 2]));
                s.serialize_u8(9)
            }
        }
        let got = with_serialized_args::<Nested, _>([Nested, Nested], 10, 0, copy).unwrap();
        assert_eq!(got, (vec![0, 1, 2], vec![9, 9]));
        let got = with_serialized_args::<u8, _>([5u8], 10, 0, copy).unwrap();
        assert_eq!(got, (vec![0, 1], vec![5]));
        // A failed call leaves nothing behind for the next either.
        let args = ["x".repeat(20)];
        assert!(with_serialized_args::<String, _>(&args, 10, 0, copy).is_err());
        assert_eq!(
            with_serialized_args::<u8, _>([6u8], 10, 0, copy).unwrap(),
            (vec![0, 1], vec![6])
        );
        // Nor does a panic while serializing, or in the staging step after it: the buffers
        // taken out are dropped, and the next call starts empty.
        struct Bomb;
        impl Serialize for Bomb {
            fn serialize<S: serde::Serializer>(
                &self,
                _: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                panic!("bomb")
            }
        }
        let args = [Bomb];
        let bomb = std::panic::catch_unwind(|| with_serialized_args::<Bomb, _>(&args, 10, 0, copy));
        assert!(bomb.is_err());
        let late = std::panic::catch_unwind(|| {
            with_serialized_args::<u8, ()>([1u8, 2, 3], 10, 0, |_, _| panic!("late"))
        });
        assert!(late.is_err());
        assert_eq!(
            with_serialized_args::<u8, _>([7u8], 10, 0, copy).unwrap(),
            (vec![0, 1], vec![7])
        );
    }

    /// The region `Borrowed` writes: the offsets and the bytes back to back, as the codec's
    /// `Args` reads them.
    fn borrowed_region<B: InPlace + ?Sized, S: AsRef<B>>(
        args: &[S],
        limit: usize,
    ) -> Result<Vec<u64>> {
        let b = Borrowed::<B, S>::new(args, limit, 10)?;
        let (n, data) = b.sizes();
        let mut buf = vec![0u64; codec::arg_region_bytes(n, data).unwrap().div_ceil(8)];
        // SAFETY: the buffer holds the region, 8-aligned, used by nobody else.
        unsafe { b.write(buf.as_mut_ptr().cast())? };
        Ok(buf)
    }

    /// A caller's values need not be distinct: a million elements may all be `AsRef` of one
    /// huge string, whose lengths sum past `usize::MAX`. The sum is a typed error, never a
    /// wrapped (release) or panicking (debug) count.
    /// The limit is checked on raw lengths against the longest raw value within it: for the
    /// postcard-counted path (`map` of a `fn(String)`) and the raw one, a value passes exactly
    /// when its counted size is within the limit, at every varint step and at `usize::MAX`.
    #[test]
    fn the_raw_limit_passes_exactly_the_values_whose_counted_size_fits() {
        let limits = [0, 1, 2, 3, 127, 128, 129, 130, 131, 16_384, 16_385, 16_386, usize::MAX];
        for limit in limits {
            // Around the limit, or the first few lengths under a limit too large to reach.
            let from = if limit > 20_000 { 0 } else { limit.saturating_sub(4) };
            for n in from..limit.saturating_add(3).min(20_000).max(from + 3) {
                let s = ["x".repeat(n)];
                let counted = |c: fn(usize) -> usize| Borrowed::<str, _>::counted(&s, limit, 0, c);
                let fits = |c: fn(usize) -> usize| counted(c).is_ok();
                assert_eq!(fits(postcard_str_len), postcard_str_len(n) <= limit, "{n} in {limit}");
                assert_eq!(fits(|n| n), n <= limit, "{n} raw in {limit}");
                if let Err(Error::TaskValueTooLarge { bytes, .. }) = counted(postcard_str_len) {
                    assert_eq!(bytes, postcard_str_len(n), "the error counts as the limit does");
                }
            }
        }
    }

    #[test]
    fn borrowed_lengths_that_sum_past_usize_are_too_large() {
        const HUGE: usize = 1 << 44; // 16 TiB of address space, never touched
        // SAFETY: an anonymous private mapping, reserved and readable; nothing else uses it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                HUGE,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            eprintln!("skipped: no 16 TiB of address space to map");
            return;
        }
        struct Huge(*const u8);
        impl AsRef<[u8]> for Huge {
            fn as_ref(&self) -> &[u8] {
                // SAFETY: `HUGE` readable bytes (zero pages) mapped at `self.0` until the
                // `munmap` below, after the last use.
                unsafe { std::slice::from_raw_parts(self.0, HUGE) }
            }
        }
        let args: Vec<Huge> = (0..(1 << 20) + 1).map(|_| Huge(p.cast())).collect();
        let measured = Borrowed::<[u8], _>::new(&args, usize::MAX, 0).map(|b| b.sizes());
        // SAFETY: the mapping made above; `args` reads it no more.
        unsafe { libc::munmap(p, HUGE) };
        assert!(matches!(measured, Err(Error::TooLarge { .. })), "{measured:?}");
    }

    /// An `AsRef` that moves bytes from one value to the next between the measuring pass and
    /// the writing pass keeps the total but would put a value past the limit in the region:
    /// refused at the write, naming the task, as at the measure.
    #[test]
    fn a_value_grown_past_the_limit_between_passes_is_refused() {
        use std::cell::Cell;
        struct Swaps(Cell<bool>, [&'static str; 2]);
        impl AsRef<str> for Swaps {
            fn as_ref(&self) -> &str {
                self.1[usize::from(self.0.replace(true))]
            }
        }
        let sixteen = "0123456789abcdef";
        let args = [
            Swaps(Cell::new(false), [sixteen, ""]),
            Swaps(Cell::new(false), ["x", "0123456789abcdefg"]),
        ];
        match borrowed_region::<str, _>(&args, 16) {
            Err(Error::TaskValueTooLarge { task: 11, what: "argument", bytes: 17, limit: 16 }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn borrowed_arguments_are_copied_back_to_back_and_measured_against_the_limit() {
        let args = ["ab", "", "héllo"];
        let buf = borrowed_region::<str, _>(&args, 6).unwrap();
        let len = buf.len() * 8;
        let region = codec::Args { base: buf.as_ptr().cast(), len, n: 3 };
        assert_eq!(buf[..4], [0, 2, 2, 8]);
        assert_eq!(region.get(2), "héllo".as_bytes());
        assert_eq!(region.run(0, 3), ("abhéllo".as_bytes(), 0));
        assert_eq!(region.run(1, 3), ("héllo".as_bytes(), 2));
        match borrowed_region::<str, _>(&args, 5) {
            Err(Error::TaskValueTooLarge { task: 12, what: "argument", bytes: 6, limit: 5 }) => {}
            other => panic!("{other:?}"),
        }
        match borrowed_region::<[u128], _>(&[vec![1u128]], 100) {
            Err(Error::InvalidArgument { reason, .. }) => assert!(reason.contains("aligned to 16")),
            other => panic!("{other:?}"),
        }
    }

    /// A user's `AsRef` that returns more bytes the second time (when the region is written)
    /// than the first (when it was measured) is refused before it writes past the region.
    #[test]
    fn an_as_ref_that_grows_between_calls_is_refused() {
        struct Growing(Cell<usize>, String);
        impl AsRef<str> for Growing {
            fn as_ref(&self) -> &str {
                let k = self.0.get();
                self.0.set(k + 1);
                &self.1[..(k * 4).min(self.1.len())]
            }
        }
        let args = [Growing(Cell::new(1), "x".repeat(64))];
        match borrowed_region::<str, _>(&args, 100) {
            Err(Error::InvalidArgument { reason, .. }) => assert!(reason.contains("up to 10 grew")),
            other => panic!("{other:?}"),
        }
        // One that shrinks leaves its offsets saying where it ends.
        struct Shrinking(Cell<usize>);
        impl AsRef<[u8]> for Shrinking {
            fn as_ref(&self) -> &[u8] {
                let k = self.0.replace(1);
                &[7, 7, 7][..k]
            }
        }
        let buf = borrowed_region::<[u8], _>(&[Shrinking(Cell::new(3))], 100).unwrap();
        assert_eq!(buf[..2], [0, 1]);
    }

    #[test]
    fn postcard_string_lengths_match_postcard() {
        for n in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000, 2_097_152] {
            let s = "x".repeat(n);
            assert_eq!(postcard_str_len(n), postcard::to_allocvec(&s).unwrap().len(), "{n}");
        }
    }

    #[test]
    fn an_argument_over_the_limit_names_its_task() {
        let args = [String::from("ab"), "x".repeat(100), String::new()];
        match serialize_args::<String>(&args, 50, 0) {
            Err(Error::TaskValueTooLarge { task: 1, what: "argument", bytes: 101, limit: 50 }) => {}
            other => panic!("{other:?}"),
        }
        let (offsets, data) = serialize_args::<String>(&args[..1], 50, 0).unwrap();
        assert_eq!((offsets, data), (vec![0, 3], vec![2, b'a', b'b']));
    }
}
