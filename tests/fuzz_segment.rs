//! Segment headers another process wrote, fuzzed end to end: random and mutated 128-byte headers
//! and shape blocks in real `/dev/shm` files of random sizes, opened with `segment::inspect` and
//! `SharedArray::open`. Every open gives a typed error, or an array whose elements all lie inside
//! the file (the test reads every one: a read past the end of the file would be a SIGBUS, which
//! ends this binary). The header is built here from the documented layout (docs/architecture.md,
//! "Segment layout"), so the layout itself is checked too.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use shmpool::{Error, SharedArray};

const HEADER: usize = 128;
/// The header and the largest shape block (8 dimensions of 8 bytes, at offset 128).
const RAW: usize = HEADER + 8 * 8;
/// The layout version the header says.
const LAYOUT_VERSION: u64 = 2;
/// Offsets of the header's fields.
const VERSION: usize = 8;
const KIND: usize = 12;
const DTYPE: usize = 16;
const ELEM_SIZE: usize = 32;
const ELEM_ALIGN: usize = 40;
const LEN: usize = 48;
const DATA_OFFSET: usize = 56;
const DATA_BYTES: usize = 64;
const SEGMENT_BYTES: usize = 72;
const CREATOR_PID: usize = 80;
const NONCE: usize = 88;
const NDIM: usize = 104;
/// Where the shape block starts.
const SHAPE: usize = 128;
/// (offset, width) of every field; the dtype and the reserved bytes in 8-byte pieces.
const FIELDS: [(usize, usize); 18] = [
    (0, 8),
    (8, 4),
    (12, 4),
    (16, 8),
    (24, 8),
    (32, 8),
    (40, 8),
    (48, 8),
    (56, 8),
    (64, 8),
    (72, 8),
    (80, 4),
    (84, 4),
    (88, 8),
    (96, 8),
    (104, 8),
    (112, 8),
    (120, 8),
];
/// The largest file a case writes: small, so thousands of cases take a few seconds.
const MAX_FILE: u64 = 72 * 1024;

/// A header and its shape block, as the first bytes of a file.
type Header = [u8; RAW];

fn get(h: &Header, at: usize) -> u64 {
    u64::from_le_bytes(h[at..at + 8].try_into().unwrap())
}

fn put(h: &mut Header, at: usize, width: usize, v: u64) {
    h[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
}

/// A published header for `len` f64 elements, created by this (live) process.
fn f64_header(len: u64) -> Header {
    let mut h = [0u8; RAW];
    h[..8].copy_from_slice(b"SHMPOOL\0");
    put(&mut h, VERSION, 4, LAYOUT_VERSION);
    put(&mut h, KIND, 4, 1); // array
    h[DTYPE..DTYPE + 3].copy_from_slice(b"<f8");
    put(&mut h, ELEM_SIZE, 8, 8);
    put(&mut h, ELEM_ALIGN, 8, 8);
    put(&mut h, LEN, 8, len);
    put(&mut h, DATA_OFFSET, 8, HEADER as u64);
    put(&mut h, DATA_BYTES, 8, len * 8);
    put(&mut h, SEGMENT_BYTES, 8, HEADER as u64 + len * 8);
    put(&mut h, CREATOR_PID, 4, std::process::id() as u64);
    put(&mut h, NONCE, 8, 0x5eed_f00d_1234_5678);
    put(&mut h, NDIM, 4, 1);
    h
}

/// A published header for an f64 array of shape `dims` (2 or more), data at 256; its file size.
fn f64_shaped_header(dims: &[u64]) -> (Header, u64) {
    let len: u64 = dims.iter().product();
    let mut h = f64_header(len);
    put(&mut h, NDIM, 4, dims.len() as u64);
    for (i, &d) in dims.iter().enumerate() {
        put(&mut h, SHAPE + 8 * i, 8, d);
    }
    put(&mut h, DATA_OFFSET, 8, 256);
    put(&mut h, SEGMENT_BYTES, 8, 256 + len * 8);
    (h, 256 + len * 8)
}

/// A file in /dev/shm that this test made; removed on drop, so even a failing case leaks
/// nothing.
struct ShmFile {
    name: String,
    /// The header and shape block it was written with.
    header: Header,
}

impl ShmFile {
    /// A file holding `header` (cut to `size` if shorter), then a byte pattern up to `size`.
    fn new(header: &Header, size: u64) -> ShmFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name =
            format!("shmpool-fuzz-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let guard = ShmFile { name, header: *header };
        let mut f = File::create_new(guard.path()).unwrap();
        let size = size as usize;
        let mut bytes = header[..size.min(RAW)].to_vec();
        bytes.extend((RAW..size).map(pattern));
        f.write_all(&bytes).unwrap();
        guard
    }

    fn path(&self) -> String {
        format!("/dev/shm/{}", self.name)
    }
}

impl Drop for ShmFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
    }
}

/// The byte written at file offset `at` (past the header and shape block).
fn pattern(at: usize) -> u8 {
    (at as u8).wrapping_mul(31) ^ (at >> 8) as u8
}

/// The byte a file made from `header` holds at `at`: the header's, then the pattern. (Data may
/// start inside the 192 bytes written from `header` when the shape block is shorter.)
fn expected_byte(header: &Header, at: usize) -> u8 {
    if at < RAW { header[at] } else { pattern(at) }
}

fn assert_typed(e: &Error, type_checked: bool) {
    let ok = match e {
        Error::NotShmpool { .. } | Error::VersionMismatch { .. } | Error::CorruptHeader { .. } => {
            true
        }
        Error::KindMismatch { .. } | Error::TypeMismatch { .. } => type_checked,
        _ => false,
    };
    assert!(ok, "unexpected error {e:?}");
    assert!(!e.to_string().is_empty());
}

/// Opens the file every way a user can and checks each answer; returns whether the array
/// opened as f64.
fn open_all_ways(file: &ShmFile, size: u64) -> bool {
    match shmpool::segment::inspect(&file.name) {
        Ok(info) => {
            let data = info.len.checked_mul(info.elem_size).expect("len * elem_size overflows");
            let end = info.data_offset.checked_add(data).expect("data end overflows");
            assert!(end <= size, "inspect accepted data up to {end} in a {size}-byte file");
            assert!(info.data_offset >= HEADER as u64);
            assert_eq!(info.segment_bytes, size);
            let dims = info.shape.len();
            assert!((1..=8).contains(&dims), "accepted {dims} dimensions");
            assert!(dims == 1 || info.data_offset >= (SHAPE + 8 * dims) as u64);
            let product = info.shape.iter().try_fold(1u64, |p, &d| p.checked_mul(d as u64));
            assert_eq!(product, Some(info.len), "shape {:?} for len {}", info.shape, info.len);
        }
        Err(e) => assert_typed(&e, false),
    }
    // SAFETY: this test is the only user of the file, and the views are only read.
    match unsafe { SharedArray::<u8>::open(&file.name) } {
        Ok(a) => {
            let start = size as usize - a.len();
            assert_eq!(a.shape().iter().product::<usize>(), a.len());
            for (i, &x) in a.iter().enumerate() {
                assert_eq!(x, expected_byte(&file.header, start + i));
            }
        }
        Err(e) => assert_typed(&e, true),
    }
    // SAFETY: as above.
    match unsafe { SharedArray::<f64>::open(&file.name) } {
        Ok(a) => {
            // Every element is read, and must be the bytes at its place in the file.
            let start = size as usize - a.len() * 8;
            assert!(start >= HEADER && start.is_multiple_of(8), "data at {start}");
            assert!(a.ndim() == 1 || start >= SHAPE + 8 * a.ndim(), "data at {start}");
            assert_eq!(a.shape().iter().product::<usize>(), a.len());
            for (i, x) in a.iter().enumerate() {
                let at = start + i * 8;
                let want: [u8; 8] = std::array::from_fn(|k| expected_byte(&file.header, at + k));
                assert_eq!(x.to_le_bytes(), want, "element {i}");
            }
            true
        }
        Err(e) => {
            assert_typed(&e, true);
            false
        }
    }
}

fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value)) {
    // No regression files: they would land in the source tree.
    let mut runner =
        TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    if let Err(e) = runner.run(&strategy, |v| {
        test(v);
        Ok(())
    }) {
        panic!("{e}");
    }
}

/// Values near the edges where size arithmetic breaks.
fn edgy() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(HEADER as u64),
        Just(u32::MAX as u64),
        Just(i64::MAX as u64),
        Just(i64::MAX as u64 + 1),
        (0u64..256).prop_map(|k| u64::MAX - k),
        (0u32..64).prop_map(|s| 1u64 << s),
        (1u32..64).prop_map(|s| (1u64 << s) - 1),
        0u64..MAX_FILE,
        any::<u64>(),
    ]
}

/// One way a header can be written wrong.
#[derive(Debug, Clone)]
enum Mutation {
    /// Overwrite one field with a value.
    Field(usize, u64),
    /// Flip bits in one byte.
    Flip(Index, u8),
    /// `len` and `elem_size` given, the other sizes made to agree with wrapping arithmetic.
    Consistent(u64, u64),
    /// A dtype string from NumPy's vocabulary (or not), with a matching size.
    Dtype(&'static str, u64),
    /// Overwrite one dimension of the shape block.
    Dim(usize, u64),
    /// Set `ndim` (the data offset moved past the shape block when `bool`).
    Ndim(u32, bool),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let dtypes = prop_oneof![
        Just(("|u1", 1u64)),
        Just(("<f8", 8)),
        Just(("<f4", 4)),
        Just(("|V8", 8)),
        Just(("<f8\u{1}", 8)),
        Just(("\u{ff}\u{fe}", 8)),
        Just(("", 0)),
    ];
    prop_oneof![
        3 => (0..FIELDS.len(), edgy()).prop_map(|(i, v)| Mutation::Field(i, v)),
        1 => (any::<Index>(), 1u8..).prop_map(|(at, x)| Mutation::Flip(at, x)),
        2 => (edgy(), edgy()).prop_map(|(l, s)| Mutation::Consistent(l, s)),
        1 => dtypes.prop_map(|(d, s)| Mutation::Dtype(d, s)),
        2 => (0usize..8, edgy()).prop_map(|(i, v)| Mutation::Dim(i, v)),
        1 => (prop_oneof![Just(0u32), 1u32..=9, any::<u32>()], any::<bool>())
            .prop_map(|(n, moved)| Mutation::Ndim(n, moved)),
    ]
}

fn apply(h: &mut Header, m: &Mutation) {
    match *m {
        Mutation::Field(i, v) => put(h, FIELDS[i].0, FIELDS[i].1, v),
        Mutation::Flip(at, x) => h[at.index(RAW)] ^= x,
        Mutation::Dim(i, v) => put(h, SHAPE + 8 * i, 8, v),
        Mutation::Ndim(n, moved) => {
            put(h, NDIM, 4, n.into());
            if moved {
                let data = get(h, DATA_BYTES);
                put(h, DATA_OFFSET, 8, 256);
                put(h, SEGMENT_BYTES, 8, data.wrapping_add(256));
            }
        }
        Mutation::Consistent(len, size) => {
            put(h, LEN, 8, len);
            put(h, ELEM_SIZE, 8, size);
            put(h, DATA_BYTES, 8, len.wrapping_mul(size));
            put(h, SEGMENT_BYTES, 8, get(h, DATA_OFFSET).wrapping_add(len.wrapping_mul(size)));
        }
        Mutation::Dtype(d, size) => {
            h[DTYPE..DTYPE + 16].fill(0);
            h[DTYPE..DTYPE + d.len()].copy_from_slice(d.as_bytes());
            put(h, ELEM_SIZE, 8, size);
            put(h, ELEM_ALIGN, 8, size.max(1));
            let len = get(h, LEN);
            put(h, DATA_BYTES, 8, len.wrapping_mul(size));
            put(h, SEGMENT_BYTES, 8, get(h, DATA_OFFSET).wrapping_add(len.wrapping_mul(size)));
        }
    }
}

/// The file's size: what the (mutated) header claims, near it, or anything small.
fn file_size() -> impl Strategy<Value = (u8, u64)> {
    prop_oneof![
        3 => Just((0u8, 0u64)),
        2 => (1u64..5000).prop_map(|d| (1, d)),
        1 => (1u64..5000).prop_map(|d| (2, d)),
        1 => (0u64..HEADER as u64 + 1).prop_map(|v| (3, v)),
        1 => (0..MAX_FILE).prop_map(|v| (3, v)),
    ]
}

fn size_for(claimed: u64, (how, v): (u8, u64)) -> u64 {
    let s = match how {
        0 => claimed,
        1 => claimed.wrapping_sub(v),
        2 => claimed.wrapping_add(v),
        _ => v,
    };
    // Claims past what a case writes get a file of some other (small) size: still a mismatch.
    if s > MAX_FILE { s % MAX_FILE } else { s }
}

#[test]
fn valid_shaped_headers_open_with_their_shape() {
    let dims = vec(0u64..7, 2..=8);
    run(300, dims, |dims| {
        let (h, size) = f64_shaped_header(&dims);
        let file = ShmFile::new(&h, size);
        assert!(open_all_ways(&file, size), "a valid shaped header was refused: {dims:?}");
        let info = shmpool::segment::inspect(&file.name).unwrap();
        let want: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
        assert_eq!(info.shape, want);
        // SAFETY: this test is the only user of the file, and only reads.
        let a = unsafe { SharedArray::<f64>::open(&file.name) }.unwrap();
        assert_eq!((a.shape(), a.row_len()), (&want[..], want[1..].iter().product()));
        // A dimension changed so the product misses len: refused, never read.
        let mut bad = h;
        put(&mut bad, SHAPE, 8, dims[0] + 1);
        if dims[1..].iter().all(|&d| d > 0) {
            let file = ShmFile::new(&bad, size);
            // SAFETY: as above.
            let e = unsafe { SharedArray::<f64>::open(&file.name) }.unwrap_err();
            assert!(matches!(e, Error::CorruptHeader { .. }), "{e}");
        }
    });
}

#[test]
fn valid_headers_open_and_their_data_is_where_the_header_says() {
    run(300, (0u64..4000, 0u64..200), |(len, extra)| {
        let h = f64_header(len);
        let size = HEADER as u64 + len * 8;
        let file = ShmFile::new(&h, size);
        assert!(open_all_ways(&file, size), "a valid header was refused");
        let info = shmpool::segment::inspect(&file.name).unwrap();
        assert_eq!((info.kind, info.dtype.as_str(), info.len), ("shared array", "<f8", len));
        assert!(info.creator_alive);
        // Any other file size: refused.
        for other in [size + 1 + extra, size.saturating_sub(1 + extra)] {
            let file = ShmFile::new(&h, other);
            assert!(!open_all_ways(&file, other), "{other}-byte file for a {size}-byte header");
        }
    });
}

#[test]
fn mutated_headers_in_real_files_are_refused_or_read_in_bounds() {
    let opened = AtomicU64::new(0);
    let muts = vec(mutation(), 0..4);
    run(1500, (0u64..4000, muts, file_size(), any::<bool>()), |(len, muts, size, shaped)| {
        // A 1-D header, or a shaped one ([len / 3, 3]) with its shape block.
        let mut h = if shaped { f64_shaped_header(&[len / 3, 3]).0 } else { f64_header(len) };
        for m in &muts {
            apply(&mut h, m);
        }
        let size = size_for(get(&h, SEGMENT_BYTES), size);
        let file = ShmFile::new(&h, size);
        if open_all_ways(&file, size) {
            opened.fetch_add(1, Ordering::Relaxed);
        }
    });
    // The accepting path ran too (unmutated cases, harmless mutations such as the nonce).
    assert!(opened.load(Ordering::Relaxed) > 50);
}

#[test]
fn random_headers_in_real_files_are_refused_or_read_in_bounds() {
    let bytes = prop::array::uniform::<_, RAW>(any::<u8>());
    run(1000, (bytes, any::<bool>(), file_size()), |(mut h, published, size)| {
        if published {
            // Past the magic and version, so the other checks see random fields; a small ndim
            // most of the time, so the shape block's random dimensions are read.
            h[..8].copy_from_slice(b"SHMPOOL\0");
            put(&mut h, VERSION, 4, LAYOUT_VERSION);
            if h[NDIM + 1] < 200 {
                let ndim = u64::from(h[NDIM] % 10);
                put(&mut h, NDIM, 4, ndim);
            }
        }
        let size = size_for(get(&h, SEGMENT_BYTES), size);
        open_all_ways(&ShmFile::new(&h, size), size);
    });
}

#[test]
fn a_header_claiming_more_than_the_file_is_refused_before_any_read() {
    // A million elements claimed, eight bytes of data present: reading them would be a SIGBUS.
    let h = f64_header(1 << 20);
    for size in [HEADER as u64 + 8, 4096, 8192 + 1] {
        let file = ShmFile::new(&h, size);
        // SAFETY: this test is the only user of the file.
        let e = unsafe { SharedArray::<f64>::open(&file.name) }.unwrap_err();
        assert!(matches!(e, Error::CorruptHeader { .. }), "{e}");
        assert!(e.to_string().contains("truncated or resized"), "{e}");
    }
    // Shorter than a header: corrupt; empty (as a segment being created looks): not ours.
    let short = ShmFile::new(&h, 50);
    let e = shmpool::segment::inspect(&short.name).unwrap_err();
    assert!(matches!(e, Error::CorruptHeader { .. }), "{e}");
    let empty = ShmFile::new(&h, 0);
    let e = shmpool::segment::inspect(&empty.name).unwrap_err();
    assert!(matches!(e, Error::NotShmpool { .. }), "{e}");
}
