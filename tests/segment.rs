//! Bad input to the segment layer: wrong types, foreign and corrupt segments, full memory,
//! taken and invalid names, stale handles. None of these may SIGBUS or leave a name behind.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use shmpool::{Error, SharedArray, ShmOptions};

/// Opens a named array. SAFETY for every use in this file: each test is the only user of its
/// segments, and views it opens are only read, or written while no other view is in use.
fn open<T: bytemuck::Pod>(name: &str) -> shmpool::Result<SharedArray<T>> {
    // SAFETY: see above.
    unsafe { SharedArray::open(name) }
}

fn open_handle<T: bytemuck::Pod>(h: &shmpool::SegmentHandle) -> shmpool::Result<SharedArray<T>> {
    // SAFETY: as for `open`.
    unsafe { SharedArray::open_handle(h) }
}

fn shm_path(name: &str) -> String {
    format!("/dev/shm/{name}")
}

fn unique(tag: &str) -> String {
    format!("shmpool-test-{tag}-{}-{:?}", std::process::id(), std::thread::current().id())
        .replace(['(', ')'], "")
}

/// A named array the test owns; dropped (and so unlinked) at the end of the test.
fn named<T: bytemuck::Pod>(values: &[T]) -> SharedArray<T> {
    SharedArray::from_slice_with(values, &ShmOptions::new().generated_name()).unwrap()
}

/// Overwrites `bytes` at `offset` of a named segment's file.
fn poke(name: &str, offset: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(shm_path(name)).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn wrong_element_type_is_refused() {
    let a = named(&[1.0f64, 2.0]);
    let name = a.name().unwrap();
    match open::<u64>(name) {
        Err(Error::TypeMismatch { expected, found, .. }) => {
            assert_eq!((expected.as_str(), found.as_str()), ("<u8", "<f8"))
        }
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
    assert!(matches!(open_handle::<f32>(&a.handle()), Err(Error::TypeMismatch { .. })));
    // Same size, different Rust type: caught by the type-name hash.
    #[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
    #[repr(C)]
    struct Pair(u32, u32);
    let p = named(&[Pair(1, 2)]);
    let e = open::<[u32; 2]>(p.name().unwrap()).unwrap_err();
    assert!(matches!(e, Error::TypeMismatch { .. }), "{e}");
    assert_eq!(open::<f64>(name).unwrap()[1], 2.0);
}

#[test]
fn foreign_and_empty_segments_are_not_shmpool() {
    let name = unique("foreign");
    std::fs::write(shm_path(&name), vec![0xAB; 4096]).unwrap();
    let r = open::<u8>(&name);
    std::fs::write(shm_path(&name), b"").unwrap();
    let empty = open::<u8>(&name);
    std::fs::remove_file(shm_path(&name)).unwrap();
    assert!(matches!(r, Err(Error::NotShmpool { .. })), "{r:?}");
    assert!(matches!(empty, Err(Error::NotShmpool { .. })), "{empty:?}");
}

#[test]
fn truncated_segments_are_corrupt_not_sigbus() {
    for keep in [64u64, 128 + 8] {
        let a = named(&[7u64; 512]);
        let name = a.name().unwrap();
        OpenOptions::new().write(true).open(shm_path(name)).unwrap().set_len(keep).unwrap();
        match open::<u64>(name) {
            Err(Error::CorruptHeader { reason, .. }) => {
                assert!(reason.contains("bytes"), "{reason}")
            }
            other => panic!("expected CorruptHeader for {keep} bytes, got {other:?}"),
        }
    }
}

#[test]
fn corrupt_header_fields_are_caught() {
    let a = named(&[0u32; 16]);
    let name = a.name().unwrap().to_string();
    let open = || open::<u32>(&name);
    // data_offset (at 56) pointing inside the header.
    poke(&name, 56, &8u64.to_le_bytes());
    assert!(matches!(open(), Err(Error::CorruptHeader { .. })));
    poke(&name, 56, &128u64.to_le_bytes());
    // len (at 48) disagreeing with data_bytes.
    poke(&name, 48, &17u64.to_le_bytes());
    assert!(matches!(open(), Err(Error::CorruptHeader { .. })));
    poke(&name, 48, &16u64.to_le_bytes());
    // An unknown kind (at 12).
    poke(&name, 12, &999u32.to_le_bytes());
    assert!(matches!(open(), Err(Error::CorruptHeader { .. })));
    poke(&name, 12, &1u32.to_le_bytes());
    // A future layout version (at 8).
    poke(&name, 8, &99u32.to_le_bytes());
    assert!(matches!(open(), Err(Error::VersionMismatch { found: 99, expected: 2, .. })));
    // The previous layout (version 1, before shapes): refused with the fix in the message.
    poke(&name, 8, &1u32.to_le_bytes());
    let e = open().unwrap_err();
    assert!(matches!(e, Error::VersionMismatch { found: 1, expected: 2, .. }), "{e}");
    assert!(e.to_string().contains("same shmpool version"), "{e}");
    poke(&name, 8, &2u32.to_le_bytes());
    // ndim (at 104) of 0, past the maximum, or 2 with no room for a shape block.
    for ndim in [0u32, 9, 2] {
        poke(&name, 104, &ndim.to_le_bytes());
        assert!(matches!(open(), Err(Error::CorruptHeader { .. })), "ndim {ndim}");
    }
    poke(&name, 104, &1u32.to_le_bytes());
    // A wrong magic.
    poke(&name, 0, b"NOTMINE!");
    assert!(matches!(open(), Err(Error::NotShmpool { .. })));
    poke(&name, 0, b"SHMPOOL\0");
    assert_eq!(open().unwrap().len(), 16, "repaired header opens again");
}

#[test]
fn more_than_dev_shm_holds_is_an_error_and_leaves_nothing() {
    let free = rustix_free("/dev/shm");
    let before = std::fs::read_dir("/dev/shm").unwrap().count();
    let want = (free / 8 + (1 << 27)) as usize; // u64 elements: about 1 GiB more than free
    match SharedArray::<u64>::zeroed_with(want, &ShmOptions::new().generated_name()) {
        Err(e @ Error::OutOfSpace { place: "/dev/shm", .. }) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with("/dev/shm has ")
                    && msg.contains("requested; mount a larger /dev/shm"),
                "{msg}"
            );
        }
        other => panic!("expected OutOfSpace, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_dir("/dev/shm").unwrap().count(),
        before,
        "a failed create left an entry"
    );
}

#[test]
fn more_than_memory_holds_is_an_error() {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    let want = (total_kb * 1024 / 8 + (1 << 27)) as usize;
    match SharedArray::<u64>::zeroed(want) {
        Err(e @ Error::OutOfSpace { place: "memory", .. }) => {
            assert!(e.to_string().contains("free"), "{e}")
        }
        other => panic!("expected OutOfSpace, got {other:?}"),
    }
}

fn rustix_free(path: &str) -> u64 {
    let c = std::ffi::CString::new(path).unwrap();
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: valid path string and out-pointer.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) }, 0);
    // SAFETY: statvfs succeeded.
    let st = unsafe { st.assume_init() };
    st.f_bavail * st.f_frsize
}

#[test]
fn a_taken_name_is_refused_and_the_first_segment_survives() {
    let name = unique("taken");
    let a =
        SharedArray::<u8>::from_slice_with(&[1, 2, 3], &ShmOptions::new().named(&name)).unwrap();
    assert_eq!(a.name(), Some(name.as_str()));
    let r = SharedArray::<u8>::zeroed_with(3, &ShmOptions::new().named(format!("/{name}")));
    assert!(matches!(r, Err(Error::AlreadyExists { .. })), "{r:?}");
    assert_eq!(open::<u8>(&name).unwrap()[2], 3);
    drop(a);
    assert!(!Path::new(&shm_path(&name)).exists());
}

#[test]
fn invalid_names_are_refused() {
    for bad in ["", "a/b", "x\0y", ".."] {
        let r = SharedArray::<u8>::zeroed_with(1, &ShmOptions::new().named(bad));
        assert!(matches!(r, Err(Error::InvalidName { .. })), "{bad:?}: {r:?}");
        assert!(matches!(open::<u8>(bad), Err(Error::InvalidName { .. })));
    }
}

#[test]
fn missing_names_are_not_found() {
    let r = open::<u8>(&unique("missing"));
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
}

#[test]
fn stale_handles_are_detected() {
    let a = SharedArray::<u8>::zeroed(4).unwrap();
    let h = a.handle();
    drop(a);
    // The descriptor is closed now (or reused by something that is not this memfd).
    let r = open_handle::<u8>(&h);
    assert!(matches!(r, Err(Error::StaleHandle { .. })), "{r:?}");
    // A handle whose nonce does not match what sits at that descriptor.
    let b = SharedArray::<u8>::zeroed(4).unwrap();
    let mut forged = serde_json_roundtrip(&b.handle());
    forged = forged.replace(&format!("{}", nonce_of(&b)), "12345");
    let forged: shmpool::SegmentHandle = serde_json::from_str(&forged).unwrap();
    assert!(matches!(open_handle::<u8>(&forged), Err(Error::StaleHandle { .. })));
}

fn serde_json_roundtrip(h: &shmpool::SegmentHandle) -> String {
    serde_json::to_string(h).unwrap()
}

fn nonce_of(a: &SharedArray<u8>) -> u64 {
    let v: serde_json::Value = serde_json::to_value(a.handle()).unwrap();
    v["nonce"].as_u64().unwrap()
}

#[test]
fn persist_keeps_the_name_and_unlink_removes_it() {
    let a = named(&[9u16; 4]);
    let name = a.name().unwrap().to_string();
    a.persist();
    drop(a);
    assert!(Path::new(&shm_path(&name)).exists());
    let b = open::<u16>(&name).unwrap();
    b.unlink().unwrap(); // an opener may remove it explicitly
    assert!(!Path::new(&shm_path(&name)).exists());
    assert_eq!(b[3], 9, "the mapping outlives the name");
    assert!(matches!(shmpool::segment::unlink(&name), Err(Error::NotFound { .. })));
}

#[test]
fn empty_arrays_work() {
    let a = SharedArray::<f64>::zeroed(0).unwrap();
    assert!(a.is_empty());
    let b = named::<u8>(&[]);
    assert_eq!(open::<u8>(b.name().unwrap()).unwrap().len(), 0);
}

#[test]
fn populate_and_layout_match_the_documented_header() {
    let a = SharedArray::<f32>::from_fn_with(
        1000,
        &ShmOptions::new().generated_name().populate(true),
        |i| i as f32,
    )
    .unwrap();
    let info = shmpool::segment::inspect(a.name().unwrap()).unwrap();
    assert_eq!(info.kind, "shared array");
    assert_eq!(
        (info.dtype.as_str(), info.len, info.elem_size, info.data_offset),
        ("<f4", 1000, 4, 128)
    );
    assert_eq!(info.segment_bytes, 128 + 4000);
    assert_eq!(info.creator_pid, std::process::id());
    assert!(info.creator_alive);
    assert_eq!(std::fs::metadata(shm_path(a.name().unwrap())).unwrap().len(), 4128);
    assert_eq!(a[999], 999.0);
}

#[test]
fn dropping_an_array_whose_name_was_reused_leaves_the_new_segment_alone() {
    let name = unique("reused");
    let first = SharedArray::from_slice_with(&[1u32, 2], &ShmOptions::new().named(&name)).unwrap();
    shmpool::segment::unlink(&name).unwrap();
    let second = SharedArray::from_slice_with(&[3u32, 4], &ShmOptions::new().named(&name)).unwrap();
    // The first array's name now belongs to the second: neither an explicit unlink through the
    // first nor its drop may remove it.
    assert!(matches!(first.unlink(), Err(Error::NotFound { .. })));
    drop(first);
    assert!(Path::new(&shm_path(&name)).exists(), "the second segment's name was removed");
    assert_eq!(&open::<u32>(&name).unwrap()[..], &[3, 4]);
    // Its own creator still removes it.
    drop(second);
    assert!(!Path::new(&shm_path(&name)).exists());
}

#[test]
fn shaped_arrays_record_their_shape_in_the_segment() {
    let a = SharedArray::<u8>::from_shape_fn_with(
        &[4, 6, 3],
        &ShmOptions::new().generated_name(),
        |ix| (ix[0] * 100 + ix[1] * 10 + ix[2]) as u8,
    )
    .unwrap();
    let name = a.name().unwrap();
    assert_eq!((a.shape(), a.ndim(), a.row_len(), a.len()), (&[4, 6, 3][..], 3, 18, 72));
    assert_eq!(a[18 + 3 * 2 + 1], 121); // [1][2][1]
    // Opened by name and by handle, the array has the stored shape.
    let b = open::<u8>(name).unwrap();
    assert_eq!((b.shape(), &b[..]), (&[4, 6, 3][..], &a[..]));
    assert_eq!(open_handle::<u8>(&a.handle()).unwrap().shape(), &[4, 6, 3]);
    // The documented layout: shape block at 128, data at 256.
    let info = shmpool::segment::inspect(name).unwrap();
    assert_eq!((info.shape, info.data_offset, info.segment_bytes), (vec![4, 6, 3], 256, 256 + 72));
    let raw = std::fs::read(shm_path(name)).unwrap();
    assert_eq!(u32::from_le_bytes(raw[104..108].try_into().unwrap()), 3);
    let dims: Vec<u64> = (0..3)
        .map(|i| u64::from_le_bytes(raw[128 + 8 * i..136 + 8 * i].try_into().unwrap()))
        .collect();
    assert_eq!(dims, [4, 6, 3]);
    // The wrong element type is still refused.
    assert!(matches!(open::<i8>(name), Err(Error::TypeMismatch { .. })));
    // 1-D arrays keep their old layout, shape [len].
    let flat = named(&[1u16, 2, 3]);
    let info = shmpool::segment::inspect(flat.name().unwrap()).unwrap();
    assert_eq!((info.shape, info.data_offset), (vec![3], 128));
    assert_eq!((flat.shape(), flat.row_len()), (&[3][..], 1));
}

#[test]
fn bad_shapes_are_typed_errors() {
    let invalid = |r: shmpool::Result<SharedArray<f32>>| match r {
        Err(Error::InvalidShape { reason, .. }) => {
            assert!(reason.contains(':') || reason.contains("use"), "{reason}")
        }
        other => panic!("expected InvalidShape, got {other:?}"),
    };
    invalid(SharedArray::zeroed_shape(&[]));
    invalid(SharedArray::zeroed_shape(&[1; 9]));
    invalid(SharedArray::zeroed_shape(&[usize::MAX, 2]));
    invalid(SharedArray::from_shape_fn(&[1 << 40, 1 << 40], |_| 0.0));
    // More than memory holds, but a valid shape: the segment layer's error.
    assert!(matches!(
        SharedArray::<f64>::zeroed_shape(&[1 << 31, 1 << 31]),
        Err(Error::TooLarge { .. } | Error::OutOfSpace { .. })
    ));
    // Zero-sized shapes are empty arrays, shape kept.
    for dims in [&[0usize, 5][..], &[3, 0, 2][..]] {
        let a = SharedArray::<f32>::zeroed_shape_with(dims, &ShmOptions::new().generated_name())
            .unwrap();
        assert!(a.is_empty());
        assert_eq!(open::<f32>(a.name().unwrap()).unwrap().shape(), dims);
    }
    // Reshape: same length only; the array keeps its shape on error.
    let mut a = SharedArray::<f32>::zeroed_shape(&[6, 4]).unwrap();
    a.reshape(&[2, 3, 4]).unwrap();
    assert_eq!((a.shape(), a.row_len()), (&[2, 3, 4][..], 12));
    let e = a.reshape(&[5, 5]).unwrap_err();
    assert!(
        matches!(e, Error::InvalidShape { .. }) && e.to_string().contains("product is 24"),
        "{e}"
    );
    assert!(matches!(a.reshape(&[]), Err(Error::InvalidShape { .. })));
    assert_eq!(a.shape(), &[2, 3, 4]);
}

#[test]
fn a_corrupt_shape_block_is_refused() {
    let a = SharedArray::<u32>::zeroed_shape_with(&[4, 5], &ShmOptions::new().generated_name())
        .unwrap();
    let name = a.name().unwrap().to_string();
    // A dimension that no longer multiplies to len.
    poke(&name, 128, &3u64.to_le_bytes());
    let e = open::<u32>(&name).unwrap_err();
    assert!(
        matches!(e, Error::CorruptHeader { ref reason, .. } if reason.contains("shape")),
        "{e}"
    );
    // Dimensions whose product wraps around to len: 2^32 * 2^32 * 20 = 20 (mod 2^64).
    poke(&name, 104, &3u32.to_le_bytes());
    for (i, d) in [1u64 << 32, 1 << 32, 20].iter().enumerate() {
        poke(&name, 128 + 8 * i as u64, &d.to_le_bytes());
    }
    assert!(matches!(open::<u32>(&name), Err(Error::CorruptHeader { .. })));
    // Repaired, it opens again.
    poke(&name, 104, &2u32.to_le_bytes());
    poke(&name, 128, &4u64.to_le_bytes());
    poke(&name, 136, &5u64.to_le_bytes());
    assert_eq!(open::<u32>(&name).unwrap().shape(), &[4, 5]);
}

#[test]
fn split_rows_mut_never_splits_a_row() {
    for (dims, parts) in
        [(&[5usize, 4, 3][..], 2usize), (&[7, 3], 3), (&[2, 5], 4), (&[10], 3), (&[0, 4], 2)]
    {
        let mut a = SharedArray::<u32>::from_shape_fn(dims, |ix| ix[0] as u32).unwrap();
        let row = a.row_len();
        let chunks = a.split_rows_mut(parts);
        assert_eq!(chunks.len(), parts);
        let mut next_row = 0;
        for c in chunks {
            assert!(
                c.len().is_multiple_of(row),
                "{dims:?}: a chunk of {} splits rows of {row}",
                c.len()
            );
            // Each chunk holds whole rows, in order: its first element is its first row's index.
            if let Some(&first) = c.first() {
                assert_eq!(first as usize, next_row);
            }
            next_row += c.len() / row;
        }
        assert_eq!(next_row, dims[0]);
    }
}
