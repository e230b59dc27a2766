//! The byte layout of serialized tasks (postcard, the crate's one format) in shared memory:
//! the argument region the parent fills and workers read, and the result region workers fill
//! and the parent reads. Both live in the pool's task arena; `README.md` ("Serialized tasks")
//! argues the design.
//!
//! ```text
//! arguments: offsets: (n + 1) x u64 | bytes          argument i = bytes[off[i]..off[i + 1]]
//! results:   header: cursor, limit, capacity, n (u64 each, 64 bytes)
//!            entries: n x (tag, offset, len) u64     written by the worker that ran task i
//!            bytes: capacity                         bump-allocated per chunk (cursor)
//! ```

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use postcard::ser_flavors::Flavor;
use serde::Serialize;

/// An entry's tag: what the bytes at (offset, len) hold.
pub(crate) mod tag {
    /// The task's result, postcard.
    pub(crate) const OK: u64 = 1;
    /// A `try_*` task's `Err`: its `Display` text, UTF-8.
    pub(crate) const TASK_ERR: u64 = 2;
    /// The result's serialization failed: serde's message, UTF-8.
    pub(crate) const SER_FAILED: u64 = 3;
    /// The result was over the limit: `len` is its size, no bytes.
    pub(crate) const TOO_LARGE: u64 = 4;
    /// The argument could not be deserialized: serde's message, UTF-8.
    pub(crate) const ARG_FAILED: u64 = 5;
}

/// Added to an entry's tag when its chunk's bytes went to a spill segment instead of the
/// region (the chunk's spill record says which).
pub(crate) const SPILLED: u64 = 0x100;

/// Bytes before the result entries: cursor, limit, capacity, n, chunk size, the index of the
/// first task in the whole call (u64 each; a streaming call runs as several jobs).
pub(crate) const RESULT_HEADER: usize = 64;
/// Bytes per result entry: tag, offset, len.
pub(crate) const ENTRY_BYTES: usize = 24;
/// Bytes per chunk's spill record: the worker's pid, the segment's descriptor there, its nonce.
pub(crate) const SPILL_BYTES: usize = 24;
/// The most bytes of results a region holds; a chunk that finds it full spills.
pub(crate) const MAX_RESULT_CAPACITY: usize = 256 << 20;
/// The smallest per-result size assumed when sizing a region.
pub(crate) const MIN_RESULT_HINT: usize = 8;

/// Bytes of an argument region of `n` tasks whose arguments take `data` bytes.
pub(crate) fn arg_region_bytes(n: usize, data: usize) -> Option<usize> {
    n.checked_add(1)?.checked_mul(8)?.checked_add(data)
}

/// Capacity of the result bytes for `n` tasks whose results took `hint` bytes each in the last
/// call: twice that, at least 4 KiB, at most [`MAX_RESULT_CAPACITY`] and `n * limit`.
pub(crate) fn result_capacity(n: usize, hint: usize, limit: usize) -> usize {
    n.saturating_mul(hint.max(MIN_RESULT_HINT).saturating_mul(2))
        .min(n.saturating_mul(limit))
        .clamp(4096, MAX_RESULT_CAPACITY)
}

/// Bytes of a result region of `n` tasks in chunks of `chunk_size`, with `capacity` bytes of
/// results.
pub(crate) fn result_region_bytes(n: usize, chunk_size: usize, capacity: usize) -> Option<usize> {
    let spills = n.div_ceil(chunk_size.max(1)).checked_mul(SPILL_BYTES)?;
    n.checked_mul(ENTRY_BYTES)?
        .checked_add(RESULT_HEADER)?
        .checked_add(spills)?
        .checked_add(capacity)
}

/// Where the bytes of a result region of `n` tasks in chunks of `chunk_size` start.
fn data_offset(n: usize, chunk_size: usize) -> usize {
    RESULT_HEADER + n * ENTRY_BYTES + n.div_ceil(chunk_size.max(1)) * SPILL_BYTES
}

/// Appends `value`'s postcard bytes to `out`, a slice at a time, and returns how many there
/// are. If they come to more than `limit`, or serialization fails, `out` is left as it was:
/// past the limit the bytes are only counted, not stored, so a value of gigabytes is refused
/// holding at most `limit` bytes of it (and the count is still its whole size, for the error).
/// (postcard's `to_extend` goes through `Extend` a byte at a time: 140 instructions for a
/// 20-byte `String`, more than cloning it, and the largest part of the parent's cost of a `map`
/// over strings.)
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
    limit: usize,
) -> postcard::Result<usize> {
    let start = out.len();
    let mut flavor = Append { out, room: limit, past: 0 };
    let result = postcard::serialize_with_flavor(value, &mut flavor);
    let (stored, past) = (flavor.out.len() - start, flavor.past);
    if result.is_err() || past > 0 {
        flavor.out.truncate(start);
    }
    result.map(|()| stored.saturating_add(past))
}

/// The [`Flavor`] of [`encode_into`]: stores up to `room` more bytes, then counts the rest.
struct Append<'a> {
    out: &'a mut Vec<u8>,
    /// Bytes that may still be stored; 0 once a write did not fit.
    room: usize,
    /// Bytes counted but not stored, from the first write that did not fit on.
    past: usize,
}

impl Append<'_> {
    /// A write of `n` bytes that does not fit: from here on, bytes are only counted.
    #[cold]
    #[inline(never)]
    fn past(&mut self, n: usize) {
        self.room = 0;
        self.past = self.past.saturating_add(n);
    }
}

impl Flavor for &mut Append<'_> {
    type Output = ();

    #[inline(always)]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        if self.room > 0 {
            self.room -= 1;
            self.out.push(byte);
        } else {
            self.past(1);
        }
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        if bytes.len() > self.room {
            self.past(bytes.len());
            return Ok(());
        }
        self.room -= bytes.len();
        // A one-byte varint (every length under 128) without a call to `memcpy`.
        match bytes {
            [b] => self.out.push(*b),
            _ => self.out.extend_from_slice(bytes),
        }
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Writes an argument region: offsets then bytes. `offsets` has `n + 1` entries.
///
/// # Safety
///
/// `dst` is valid for writes of [`arg_region_bytes`]`(n, data.len())` bytes, 8-aligned, and
/// nobody else reads or writes it meanwhile.
pub(crate) unsafe fn write_args(dst: *mut u8, offsets: &[u64], data: &[u8]) {
    // SAFETY: per the contract, the region holds the offsets (8-aligned) and then the bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(offsets.as_ptr(), dst.cast::<u64>(), offsets.len());
        std::ptr::copy_nonoverlapping(data.as_ptr(), dst.add(offsets.len() * 8), data.len());
    }
}

/// Initialises a result region's header for a job (before it is published).
///
/// # Safety
///
/// `dst` is valid for writes of [`RESULT_HEADER`] bytes, 8-aligned, and no worker reads it
/// (no job is in flight).
pub(crate) unsafe fn init_results(
    dst: *mut u8,
    limit: usize,
    capacity: usize,
    n: usize,
    chunk_size: usize,
    first: usize,
) {
    let h = dst.cast::<u64>();
    // SAFETY: per the contract.
    unsafe {
        h.write(0);
        h.add(1).write(limit as u64);
        h.add(2).write(capacity as u64);
        h.add(3).write(n as u64);
        h.add(4).write(chunk_size as u64);
        h.add(5).write(first as u64);
    }
}

/// Bytes of results the job's chunks asked for (after its job; spilled ones included).
///
/// # Safety
///
/// `base` is a result region initialised by [`init_results`] whose job is over.
pub(crate) unsafe fn used_bytes(base: *const u8) -> usize {
    // SAFETY: per the contract; no worker writes the cursor any more.
    usize::try_from(unsafe { base.cast::<u64>().read() }).unwrap_or(usize::MAX)
}

/// A worker's view of an argument region of `n` tasks (`len` bytes mapped at `base`).
pub(crate) struct Args {
    pub(crate) base: *const u8,
    pub(crate) len: usize,
    pub(crate) n: usize,
}

impl Args {
    /// Argument `i`'s bytes; panics (a chunk error) on offsets outside the region.
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        let table = (self.n + 1) * 8;
        assert!(i < self.n && table <= self.len, "task {i}: the argument table is corrupt");
        // SAFETY: `i + 1 <= n` and the table's `n + 1` u64 lie inside the mapped region
        // (checked); the base is 8-aligned (a region start); nobody writes it during the job.
        let (a, b) = unsafe {
            let t = self.base.cast::<u64>();
            (t.add(i).read() as usize, t.add(i + 1).read() as usize)
        };
        assert!(a <= b && b <= self.len - table, "task {i}: its argument lies outside the region");
        // SAFETY: `table + a ..= table + b <= len` (checked), inside the mapping.
        unsafe { std::slice::from_raw_parts(self.base.add(table + a), b - a) }
    }

    /// Argument `i`'s offsets into the bytes, as the table says (bounded by nothing: a caller
    /// cuts them out of a [`run`](Args::run), which checks); `i < n`, else a chunk error.
    pub(crate) fn range(&self, i: usize) -> std::ops::Range<usize> {
        assert!(
            i < self.n && (self.n + 1) * 8 <= self.len,
            "task {i}: the argument table is corrupt"
        );
        // SAFETY: `i + 1 <= n` and the table's `n + 1` u64 lie inside the mapped region
        // (checked); the base is 8-aligned (a region start); nobody writes it during the job.
        unsafe {
            let t = self.base.cast::<u64>();
            t.add(i).read() as usize..t.add(i + 1).read() as usize
        }
    }

    /// The offsets of arguments `start..end` (`start < end`): `end - start + 1` entries, argument
    /// `i`'s bytes at `table[i - start]..table[i - start + 1]` (bounded by nothing: a caller
    /// cuts them out of a [`run`](Args::run), which checks); panics (a chunk error) when the
    /// entries lie outside the region. One check per chunk where [`range`](Args::range) makes
    /// one per task.
    pub(crate) fn table(&self, start: usize, end: usize) -> &[u64] {
        assert!(
            start < end && end <= self.n && (self.n + 1) * 8 <= self.len,
            "tasks {start}..{end}: the argument table is corrupt"
        );
        // SAFETY: entries `start..=end <= n` of the table's `n + 1` u64 lie inside the mapped
        // region (checked); the base is 8-aligned (a region start); nobody writes it during the
        // job.
        unsafe { std::slice::from_raw_parts(self.base.cast::<u64>().add(start), end - start + 1) }
    }

    /// The bytes of arguments `start..end` back to back (a chunk's: `range(start).start` to
    /// `range(end - 1).end`), and their first byte's offset; panics (a chunk error) when they
    /// lie outside the region. Empty for an empty span.
    pub(crate) fn run(&self, start: usize, end: usize) -> (&[u8], usize) {
        if start >= end {
            return (&[], 0);
        }
        let (a, b) = (self.range(start).start, self.range(end - 1).end);
        let table = (self.n + 1) * 8;
        assert!(
            a <= b && b <= self.len - table,
            "tasks {start}..{end}: their arguments lie outside the region"
        );
        // SAFETY: `table + a ..= table + b <= len` (checked), inside the mapping.
        (unsafe { std::slice::from_raw_parts(self.base.add(table + a), b - a) }, a)
    }
}

/// A worker's view of a result region (`len` bytes mapped at `base`, 8-aligned).
pub(crate) struct Results {
    pub(crate) base: *mut u8,
    pub(crate) len: usize,
}

impl Results {
    fn header(&self, k: usize) -> u64 {
        assert!(self.len >= RESULT_HEADER, "the result region is smaller than its header");
        // SAFETY: the header lies inside the region (checked), 8-aligned; the parent wrote it
        // before publishing and nobody writes it but through the atomic cursor (word 0).
        unsafe { self.base.cast::<u64>().add(k).read() }
    }

    /// Tasks in the job.
    pub(crate) fn n(&self) -> usize {
        self.header(3) as usize
    }

    /// The index, in the whole call, of the job's first task.
    pub(crate) fn first(&self) -> usize {
        self.header(5) as usize
    }

    /// The per-result limit the parent set.
    pub(crate) fn limit(&self) -> usize {
        self.header(1) as usize
    }

    /// Stores one chunk's results: `entries[k]` is `(tag, offset in bytes, len)` of task
    /// `first + k`. Allocates `bytes.len()` bytes of the region with one atomic add; when the
    /// region is full, calls `spill(bytes)` (which puts them in a segment of this worker and
    /// returns its pid, descriptor and nonce, and where in its data they start), records that
    /// for the chunk and marks the entries [`SPILLED`], their offsets in the segment.
    pub(crate) fn commit(
        &self,
        first: usize,
        entries: &[(u64, usize, usize)],
        bytes: &[u8],
        spill: impl FnOnce(&[u8]) -> ((u32, i32, u64), usize),
    ) {
        let (capacity, n, cs) =
            (self.header(2) as usize, self.header(3) as usize, self.header(4) as usize);
        let data = (cs > 0)
            .then(|| n.checked_mul(ENTRY_BYTES + SPILL_BYTES)?.checked_add(RESULT_HEADER))
            .flatten()
            .map(|_| data_offset(n, cs))
            .filter(|&d| d.checked_add(capacity).is_some_and(|end| end <= self.len))
            .expect("the result region's header is corrupt");
        assert!(first + entries.len() <= n, "tasks {first}.. lie past the result table");
        // SAFETY: word 0 lies inside the mapping (checked in `header`), is 8-aligned, and is
        // only ever accessed atomically while a job runs (the parent reset it before publishing).
        let cursor = unsafe { AtomicU64::from_ptr(self.base.cast::<u64>()) };
        let at = cursor.fetch_add(bytes.len() as u64, Relaxed) as usize;
        let fits = at.checked_add(bytes.len()).is_some_and(|end| end <= capacity);
        let (at, flag) = if fits {
            // SAFETY: `data + at .. + bytes.len()` lies inside the region (checked above) and
            // was allocated to this chunk alone by the atomic add.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(data + at), bytes.len())
            };
            (at, 0)
        } else {
            let ((pid, fd, nonce), at) = spill(bytes);
            let record = RESULT_HEADER + n * ENTRY_BYTES + (first / cs) * SPILL_BYTES;
            // SAFETY: the chunk's record lies before `data` (inside the region), 8-aligned, and
            // belongs to the chunk this worker claimed.
            unsafe {
                let r = self.base.add(record).cast::<u64>();
                r.write(pid as u64);
                r.add(1).write(fd as u32 as u64);
                r.add(2).write(nonce);
            }
            (at, SPILLED)
        };
        // SAFETY: entries `first..first + len <= n` lie inside the region (checked) and belong
        // to the chunk this worker claimed. The parent reads them only after the chunk's done
        // bit.
        unsafe {
            let table = self.base.add(RESULT_HEADER).cast::<u64>();
            for (k, &(t, off, len)) in entries.iter().enumerate() {
                let e = table.add((first + k) * 3);
                e.write(t | flag);
                e.add(1).write((at + off) as u64);
                e.add(2).write(len as u64);
            }
        }
    }
}

/// The parent's read of entry `i`: its tag, and its bytes in the region (empty for a
/// [`SPILLED`] or [`tag::TOO_LARGE`] entry, whose bytes are in its chunk's spill segment:
/// [`entry_span`]); `None` when the entry's bytes lie outside the region's `capacity` bytes.
/// The layout (`n`, `chunk_size`, `capacity`) is the parent's own copy, never the header's:
/// the region is shared memory, and what a worker wrote there is bounded before it is read.
///
/// # Safety
///
/// `base` is a result region of [`result_region_bytes`]`(n, chunk_size, capacity)` bytes with
/// `n > i` entries, initialised by [`init_results`], and task `i`'s chunk finished without
/// error (its done bit seen, SeqCst), so nothing but a misbehaving process writes it any more.
pub(crate) unsafe fn read_result<'a>(
    base: *const u8,
    n: usize,
    chunk_size: usize,
    capacity: usize,
    i: usize,
) -> (u64, Option<&'a [u8]>) {
    // SAFETY: per the contract, entry `i` lies inside the region.
    let (t, off, len) = unsafe { entry(base, i) };
    if t & SPILLED != 0 || t == tag::TOO_LARGE {
        return (t, Some(&[]));
    }
    if off.checked_add(len).is_none_or(|end| end > capacity) {
        return (t, None);
    }
    let at = data_offset(n, chunk_size) + off;
    // SAFETY: `off + len <= capacity` (checked), and the region's `capacity` bytes of results
    // start at `data_offset(n, chunk_size)`, inside the region (the contract).
    let bytes = unsafe { std::slice::from_raw_parts(base.add(at), len) };
    (t, Some(bytes))
}

/// Entry `i`'s tag alone.
///
/// # Safety
///
/// As for [`read_result`].
pub(crate) unsafe fn entry_tag(base: *const u8, i: usize) -> u64 {
    // SAFETY: per the contract.
    unsafe { entry(base, i) }.0
}

/// Entry `i`: tag, offset, len.
///
/// # Safety
///
/// As for [`read_result`].
unsafe fn entry(base: *const u8, i: usize) -> (u64, usize, usize) {
    // SAFETY: per the contract.
    unsafe {
        let e = base.add(RESULT_HEADER).cast::<u64>().add(i * 3);
        (e.read(), e.add(1).read() as usize, e.add(2).read() as usize)
    }
}

/// The offset and length entry `i` records (for `TOO_LARGE`, the length is the result's size).
///
/// # Safety
///
/// As for [`read_result`].
pub(crate) unsafe fn entry_span(base: *const u8, i: usize) -> (usize, usize) {
    // SAFETY: per the contract.
    let (_, off, len) = unsafe { entry(base, i) };
    (off, len)
}

/// Chunk `chunk`'s spill record: the worker's pid, the descriptor there, the nonce.
///
/// # Safety
///
/// As for [`read_result`], for a task of `chunk` whose entry is [`SPILLED`].
pub(crate) unsafe fn spill_of(base: *const u8, n: usize, chunk: usize) -> (u32, i32, u64) {
    // SAFETY: per the contract: the record lies inside the region and was written.
    unsafe {
        let r = base.add(RESULT_HEADER + n * ENTRY_BYTES + chunk * SPILL_BYTES).cast::<u64>();
        (r.read() as u32, r.add(1).read() as u32 as i32, r.add(2).read())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_into_appends_what_postcard_encodes() {
        #[derive(serde::Serialize)]
        enum E {
            A(String, Vec<u16>),
            B { x: f64, y: Option<i64> },
        }
        let values = [
            E::A("/data/file-1.csv".into(), vec![1, 300, u16::MAX]),
            E::B { x: -0.5, y: Some(i64::MIN) },
            E::A("x".repeat(200), Vec::new()),
        ];
        let mut out = vec![7u8];
        let mut want = vec![7u8];
        for v in &values {
            assert_eq!(
                encode_into(v, &mut out, usize::MAX).unwrap(),
                postcard::to_stdvec(v).unwrap().len()
            );
            want.extend(postcard::to_stdvec(v).unwrap());
        }
        assert_eq!(out, want);
    }

    /// Serializes as `n` byte strings of 1 MiB each (one static slice): gigabytes of postcard
    /// bytes, none of them in memory.
    struct Huge(usize);

    impl serde::Serialize for Huge {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeTuple;
            struct Mib;
            impl serde::Serialize for Mib {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    static ZEROS: [u8; 1 << 20] = [0; 1 << 20];
                    s.serialize_bytes(&ZEROS)
                }
            }
            let mut t = s.serialize_tuple(self.0)?;
            for _ in 0..self.0 {
                t.serialize_element(&Mib)?;
            }
            t.end()
        }
    }

    /// Fails after writing `0` bytes of itself.
    struct FailsAfter(usize);

    impl serde::Serialize for FailsAfter {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::{Error, SerializeTuple};
            let mut t = s.serialize_tuple(self.0 + 1)?;
            for _ in 0..self.0 {
                t.serialize_element(&7u8)?;
            }
            Err(S::Error::custom("refused on purpose"))
        }
    }

    #[test]
    fn a_value_over_the_limit_is_counted_whole_and_never_stored() {
        // 4 GiB of postcard bytes (each 1 MiB string with its 3-byte length) against a 4 KiB
        // limit: the count is exact, `out` is as it was, and it never held more than the limit.
        let mut out = vec![9u8; 5];
        let n = encode_into(&Huge(4096), &mut out, 4096).unwrap();
        assert_eq!(n, 4096 * ((1 << 20) + 3));
        assert_eq!(out, [9; 5]);
        assert!(out.capacity() <= 5 + 2 * 4096, "grew to {} bytes", out.capacity());
    }

    #[test]
    fn the_limit_is_inclusive_and_an_error_leaves_out_as_it_was() {
        let v = "x".repeat(100); // 101 bytes: a 1-byte length and the text
        for (limit, stored) in [(101, true), (100, false), (0, false), (usize::MAX, true)] {
            let mut out = vec![1u8];
            assert_eq!(encode_into(&v, &mut out, limit).unwrap(), 101, "limit {limit}");
            assert_eq!(out.len(), if stored { 102 } else { 1 }, "limit {limit}");
        }
        for (written, limit) in [(10, 100), (10, 5), (0, 0)] {
            let mut out = vec![1u8, 2];
            assert!(encode_into(&FailsAfter(written), &mut out, limit).is_err());
            assert_eq!(out, [1, 2], "{written} bytes written, limit {limit}");
        }
    }

    /// An 8-aligned buffer of `bytes` bytes.
    fn region(bytes: usize) -> Vec<u64> {
        vec![0; bytes.div_ceil(8)]
    }

    #[test]
    fn chunks_bump_allocate_and_spill_when_full() {
        let (n, cs, capacity) = (4, 2, 8);
        let len = result_region_bytes(n, cs, capacity).unwrap();
        let mut buf = region(len);
        let base = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: `buf` holds `len` bytes, 8-aligned, used by nobody else.
        unsafe { init_results(base, 100, capacity, n, cs, 10) };
        let r = Results { base, len };
        assert_eq!((r.n(), r.limit(), r.first()), (4, 100, 10));
        // Chunk 0: 6 bytes fit.
        r.commit(0, &[(tag::OK, 0, 2), (tag::TASK_ERR, 2, 4)], b"abwxyz", |_| unreachable!());
        // Chunk 1: 6 more do not (8 bytes of capacity): they spill.
        let mut spilled = Vec::new();
        r.commit(2, &[(tag::OK, 0, 3), (tag::OK, 3, 3)], b"123456", |b| {
            spilled.extend_from_slice(b);
            ((42, 7, 99), 1000)
        });
        assert_eq!(spilled, b"123456");
        // SAFETY: every entry and record was written above; nothing writes any more.
        unsafe {
            assert_eq!(read_result(base, n, cs, capacity, 0), (tag::OK, Some(&b"ab"[..])));
            assert_eq!(read_result(base, n, cs, capacity, 1), (tag::TASK_ERR, Some(&b"wxyz"[..])));
            assert_eq!(read_result(base, n, cs, capacity, 3), (tag::OK | SPILLED, Some(&[][..])));
            assert_eq!(entry_span(base, 3), (1003, 3), "at its place in the spill segment");
            assert_eq!(spill_of(base, n, 1), (42, 7, 99));
            // The cursor counts what every chunk asked for, spilled bytes included.
            assert_eq!(used_bytes(base), 12);
        }
    }

    #[test]
    fn argument_offsets_outside_the_region_are_refused() {
        let data = b"hello";
        let mut buf = region(arg_region_bytes(2, data.len()).unwrap());
        let base = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: `buf` holds the region, 8-aligned.
        unsafe { write_args(base, &[0, 2, 5], data) };
        let args = Args { base, len: 24 + 5, n: 2 };
        assert_eq!((args.get(0), args.get(1)), (&b"he"[..], &b"llo"[..]));
        buf[2] = 500; // task 1's end, corrupted
        let args = Args { base: buf.as_ptr().cast(), len: 24 + 5, n: 2 };
        let refused = std::panic::catch_unwind(|| args.get(1).len());
        assert!(refused.is_err());
    }

    #[test]
    fn the_capacity_follows_the_last_results_within_bounds() {
        assert_eq!(result_capacity(1, 8, 1 << 20), 4096);
        assert_eq!(result_capacity(10_000, 100, 1 << 20), 2_000_000);
        // Never more than n * limit, nor more than the cap.
        assert_eq!(result_capacity(10_000, 100, 10), 100_000);
        assert_eq!(result_capacity(usize::MAX / 2, 64, 1 << 20), MAX_RESULT_CAPACITY);
    }

    #[test]
    fn a_scribbled_entry_is_refused_not_read_past_the_region() {
        let (n, cs, capacity) = (2, 2, 8);
        let len = result_region_bytes(n, cs, capacity).unwrap();
        let mut buf = region(len);
        let base = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: `buf` holds `len` bytes, 8-aligned, used by nobody else.
        unsafe { init_results(base, 100, capacity, n, cs, 0) };
        let r = Results { base, len };
        r.commit(0, &[(tag::OK, 0, 2), (tag::OK, 2, 2)], b"abcd", |_| unreachable!());
        // Another process scribbles entry 0's offset, entry 1's length, and the header's chunk
        // size (which the parent must not use to place the bytes).
        let words = RESULT_HEADER / 8;
        buf[words + 1] = 1 << 40;
        buf[words + 3 + 2] = u64::MAX;
        buf[4] = 1;
        let base = buf.as_ptr().cast::<u8>();
        // SAFETY: the region was initialised for `n` tasks in chunks of `cs`; nothing writes it.
        unsafe {
            assert_eq!(read_result(base, n, cs, capacity, 0), (tag::OK, None));
            assert_eq!(read_result(base, n, cs, capacity, 1), (tag::OK, None));
            assert_eq!(entry_tag(base, 1), tag::OK);
        }
    }
}
