//! The versioned header at the start of every shmpool segment.
//!
//! 128 bytes, little-endian on every platform shmpool runs on (Python's `struct` format
//! `<8sII16sQQQQQQIIQQI20x`), followed, for an array of 2 or more dimensions, by its shape block
//! (`ndim` u64s at offset 128). The field table, the kind numbers and the order in which opening
//! checks them are written once, in `docs/architecture.md` ("Segment layout"), which
//! `python/shmpool_shm.py` follows; [`Header`] is that table in code, and the property test
//! below mutates each field at its documented offset.

use std::any::TypeId;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::shape::{MAX_DIMS, Shape};

/// `b"SHMPOOL\0"` read as a little-endian u64.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"SHMPOOL\0");
/// The layout version this build writes and accepts. Version 2 added `ndim` and the shape
/// block; a version 1 segment (made by an older shmpool or `shmpool_shm.py`) is refused with
/// [`Error::VersionMismatch`].
pub(crate) const VERSION: u32 = 2;
/// Bytes taken by the header; data never starts before this offset.
pub(crate) const HEADER_SIZE: usize = 128;

/// What a segment holds. Stored as a u32 in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
#[allow(dead_code)] // some kinds are created by modules that are still growing
pub(crate) enum Kind {
    /// `SharedArray<T>`: `len` elements.
    Array = 1,
    /// `RawValue<T>`: one element, no lock.
    RawValue = 2,
    /// `SharedValue<T>`: one element behind a robust lock.
    Value = 3,
    /// `SharedAtomic<A>`: one atomic integer.
    Atomic = 4,
    /// `Mutex<T>`.
    Mutex = 5,
    /// `RLock`.
    RLock = 6,
    /// `Semaphore` or `BoundedSemaphore`.
    Semaphore = 7,
    /// `Event`.
    Event = 8,
    /// `Condition`.
    Condition = 9,
    /// `Barrier`.
    Barrier = 10,
    /// A queue of `Pod` items.
    Queue = 11,
    /// A queue of serialized messages.
    MessageQueue = 12,
    /// A pool's control block.
    PoolControl = 13,
}

impl Kind {
    pub(crate) fn from_u32(v: u32) -> Option<Kind> {
        use Kind::*;
        [
            Array,
            RawValue,
            Value,
            Atomic,
            Mutex,
            RLock,
            Semaphore,
            Event,
            Condition,
            Barrier,
            Queue,
            MessageQueue,
            PoolControl,
        ]
        .into_iter()
        .find(|k| *k as u32 == v)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Array => "shared array",
            Kind::RawValue => "raw value",
            Kind::Value => "locked value",
            Kind::Atomic => "atomic cell",
            Kind::Mutex => "mutex",
            Kind::RLock => "reentrant lock",
            Kind::Semaphore => "semaphore",
            Kind::Event => "event",
            Kind::Condition => "condition",
            Kind::Barrier => "barrier",
            Kind::Queue => "queue",
            Kind::MessageQueue => "message queue",
            Kind::PoolControl => "pool control block",
        }
    }
}

/// The element type as the header records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeDesc {
    pub(crate) dtype: [u8; 16],
    pub(crate) type_hash: u64,
    pub(crate) size: u64,
    pub(crate) align: u64,
}

impl TypeDesc {
    /// The description of `T`: a NumPy type string for primitives, `|V<size>` plus a hash of the
    /// Rust type name for everything else.
    pub(crate) fn of<T: 'static>() -> TypeDesc {
        let (dtype, hashed) = match numpy_typestr::<T>() {
            Some(s) => (s.to_string(), false),
            None => (format!("|V{}", std::mem::size_of::<T>()), true),
        };
        let mut buf = [0u8; 16];
        let n = dtype.len().min(16);
        buf[..n].copy_from_slice(&dtype.as_bytes()[..n]);
        TypeDesc {
            dtype: buf,
            type_hash: if hashed { fnv1a(std::any::type_name::<T>().as_bytes()) } else { 0 },
            size: std::mem::size_of::<T>() as u64,
            align: std::mem::align_of::<T>() as u64,
        }
    }

    /// The type string without padding.
    pub(crate) fn dtype_str(&self) -> &str {
        let end = self.dtype.iter().position(|&b| b == 0).unwrap_or(16);
        std::str::from_utf8(&self.dtype[..end]).unwrap_or("?")
    }

    pub(crate) fn describe(&self) -> String {
        if self.type_hash == 0 {
            self.dtype_str().to_string()
        } else {
            format!("{} (Rust type #{:016x})", self.dtype_str(), self.type_hash)
        }
    }
}

fn numpy_typestr<T: 'static>() -> Option<&'static str> {
    let id = TypeId::of::<T>();
    let table: [(TypeId, &'static str); 12] = [
        (TypeId::of::<u8>(), "|u1"),
        (TypeId::of::<i8>(), "|i1"),
        (TypeId::of::<u16>(), "<u2"),
        (TypeId::of::<i16>(), "<i2"),
        (TypeId::of::<u32>(), "<u4"),
        (TypeId::of::<i32>(), "<i4"),
        (TypeId::of::<u64>(), "<u8"),
        (TypeId::of::<i64>(), "<i8"),
        (TypeId::of::<usize>(), "<u8"),
        (TypeId::of::<isize>(), "<i8"),
        (TypeId::of::<f32>(), "<f4"),
        (TypeId::of::<f64>(), "<f8"),
    ];
    table.iter().find(|(t, _)| *t == id).map(|(_, s)| *s)
}

/// FNV-1a, 64-bit: a stable hash (std's hashers are seeded per process).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The header, as it sits at offset 0 of the mapping, and as a private copy of it.
///
/// Code never works from the shared bytes directly: [`Header::read_from`] copies them once
/// (after an acquire load of `magic`), the copy is validated, and every pointer is computed from
/// the validated copy. A peer that rewrites the shared header later cannot move a slice out of the
/// mapping.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
pub(crate) struct Header {
    pub(crate) magic: u64,
    pub(crate) version: u32,
    pub(crate) kind: u32,
    pub(crate) dtype: [u8; 16],
    pub(crate) elem_size: u64,
    pub(crate) elem_align: u64,
    pub(crate) len: u64,
    pub(crate) data_offset: u64,
    pub(crate) data_bytes: u64,
    pub(crate) segment_bytes: u64,
    pub(crate) creator_pid: u32,
    pub(crate) flags: u32,
    pub(crate) nonce: u64,
    pub(crate) type_hash: u64,
    /// Number of dimensions, 1..=[`MAX_DIMS`]; past 1, the shape block holds them.
    pub(crate) ndim: u32,
    pub(crate) reserved: [u8; 20],
}

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_SIZE);

/// Bytes of the shape block after the header: the dimensions of a shape of 2 or more, as u64s;
/// none for 1-D (the shape is `[len]`).
pub(crate) fn shape_block_bytes(ndim: usize) -> usize {
    if ndim > 1 { 8 * ndim } else { 0 }
}

/// Where data goes for an element type of this alignment and a shape of `ndim` dimensions:
/// past the header and the shape block, on a multiple of 128 (which keeps data 64-byte, cache
/// line and AVX-512, aligned) and of the alignment. 1-D data starts 128 bytes in (or at the
/// alignment, if larger), shaped data at 256.
pub(crate) fn data_offset_for_shape(align: usize, ndim: usize) -> usize {
    (HEADER_SIZE + shape_block_bytes(ndim)).next_multiple_of(align.max(HEADER_SIZE))
}

/// What a header promises about a segment, checked against the file it sits in.
pub(crate) struct Layout {
    pub(crate) kind: Kind,
    pub(crate) ty: TypeDesc,
    pub(crate) len: u64,
    pub(crate) data_offset: u64,
    pub(crate) segment_bytes: u64,
}

/// The most alignment anything placed in a segment may ask for: a mapping starts on a page, and
/// a page is at least 4096 bytes, so an offset that is a multiple of the alignment only lands on
/// an aligned address up to that.
pub(crate) const MAX_ALIGN: usize = 4096;

/// [`Error::InvalidArgument`] for `what` (a type named `name`, aligned to `align`) unless
/// `align <= MAX_ALIGN`; `fix` says what to do instead. Arrays, queues and pool tasks share it.
pub(crate) fn check_align(what: &'static str, name: &str, align: usize, fix: &str) -> Result<()> {
    if align <= MAX_ALIGN {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        what,
        reason: format!(
            "{name} is aligned to {align} bytes, more than the {MAX_ALIGN}-byte alignment a \
             mapping guarantees; {fix}"
        ),
    })
}

impl Layout {
    /// The layout for `len` elements of `ty`, or `TooLarge` if it overflows.
    pub(crate) fn new(kind: Kind, ty: TypeDesc, len: usize) -> Result<Layout> {
        Layout::shaped(kind, ty, &Shape::flat(len))
    }

    /// The layout for an array of `shape` (room for its shape block included), or `TooLarge`.
    /// Create its segment with [`Segment::create_shaped`](crate::segment::Segment::create_shaped).
    pub(crate) fn shaped(kind: Kind, ty: TypeDesc, shape: &Shape) -> Result<Layout> {
        let len = shape.len();
        let too_large = || Error::TooLarge { len, elem_size: ty.size as usize };
        check_align(
            "element type",
            "the element type",
            ty.align as usize,
            "use a type aligned to at most 4096",
        )?;
        // Past isize::MAX elements no slice or view fits, even of zero-sized ones.
        if len > isize::MAX as usize {
            return Err(too_large());
        }
        let data_offset = data_offset_for_shape(ty.align as usize, shape.dims().len()) as u64;
        let data_bytes = (len as u64).checked_mul(ty.size).ok_or_else(too_large)?;
        let total = data_offset.checked_add(data_bytes).ok_or_else(too_large)?;
        if total > isize::MAX as u64 {
            return Err(too_large());
        }
        Ok(Layout { kind, ty, len: len as u64, data_offset, segment_bytes: total })
    }
}

impl Header {
    /// The header for `layout` and `ndim` dimensions, magic still zero (not yet published).
    pub(crate) fn new(layout: &Layout, ndim: usize, creator_pid: u32, nonce: u64) -> Header {
        Header {
            magic: 0,
            version: VERSION,
            kind: layout.kind as u32,
            dtype: layout.ty.dtype,
            elem_size: layout.ty.size,
            elem_align: layout.ty.align,
            len: layout.len,
            data_offset: layout.data_offset,
            data_bytes: layout.len * layout.ty.size,
            segment_bytes: layout.segment_bytes,
            creator_pid,
            flags: 0,
            nonce,
            type_hash: layout.ty.type_hash,
            ndim: ndim as u32,
            reserved: [0; 20],
        }
    }

    /// Writes `shape`'s block (nothing for 1-D) after the header of a new mapping.
    ///
    /// # Safety
    ///
    /// `base` must be valid for writes of `HEADER_SIZE + shape_block_bytes(ndim)` bytes (a
    /// mapping made for a [`Layout`] of this shape is), 8-byte aligned, and not yet published.
    pub(crate) unsafe fn write_shape(base: *mut u8, shape: &Shape) {
        let dims = shape.dims();
        if dims.len() < 2 {
            return;
        }
        for (i, &d) in dims.iter().enumerate() {
            // SAFETY: offset 128 + 8 i lies inside the block the caller vouched for, 8-aligned.
            unsafe { base.add(HEADER_SIZE + 8 * i).cast::<u64>().write((d as u64).to_le()) };
        }
    }

    /// Copies the shape out of the shape block (after [`Header::check_shape`] passed on this
    /// copy) and checks it: every dimension fits in `usize`, their product is `len`.
    ///
    /// # Safety
    ///
    /// `base` must be valid for reads of `data_offset` bytes (a mapping of the file whose size
    /// `check_shape` compared is) and 8-byte aligned.
    pub(crate) unsafe fn read_shape(&self, what: &str, base: *const u8) -> Result<Shape> {
        let ndim = self.ndim as usize;
        let corrupt = |reason: String| Error::CorruptHeader { what: what.to_string(), reason };
        if ndim < 2 {
            // A length past isize::MAX fits no slice of a sized type nor any view; only a
            // zero-sized element type gets this far with one.
            let len = usize::try_from(self.len).ok().filter(|&n| n <= isize::MAX as usize);
            return len
                .map(Shape::flat)
                .ok_or_else(|| corrupt(format!("{} elements, more than isize::MAX", self.len)));
        }
        let mut raw = [0u64; MAX_DIMS];
        for (i, d) in raw[..ndim].iter_mut().enumerate() {
            // SAFETY: check_shape made data_offset >= 128 + 8 ndim, and the caller guarantees
            // `data_offset` readable bytes; a volatile copy, since another process may write
            // them: only the copy is validated and used.
            *d = u64::from_le(unsafe {
                std::ptr::read_volatile(base.add(HEADER_SIZE + 8 * i).cast::<u64>())
            });
        }
        let dims: Vec<usize> = raw[..ndim]
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                corrupt(format!("a dimension of shape {:?} overflows usize", &raw[..ndim]))
            })?;
        let shape = Shape::new(&dims)
            .map_err(|e| corrupt(format!("shape {dims:?} is impossible ({e})")))?;
        if shape.len() as u64 != self.len {
            return Err(corrupt(format!(
                "shape {dims:?} holds {} elements but the header says {}",
                shape.len(),
                self.len
            )));
        }
        Ok(shape)
    }

    /// Writes this header, except `magic`, to the start of a new mapping.
    ///
    /// # Safety
    ///
    /// `base` must be valid for writes of [`HEADER_SIZE`] bytes, 8-byte aligned, and not yet
    /// published (no other process reads it as a header yet).
    pub(crate) unsafe fn write_to(&self, base: *mut u8) {
        let mut unpublished = *self;
        unpublished.magic = 0;
        // SAFETY: the caller guarantees `base` is valid, aligned and unshared; Header is Pod.
        unsafe { base.cast::<Header>().write(unpublished) };
    }

    /// Makes the header at `base` valid for openers: stores the magic with release ordering,
    /// after every write to the segment that came before.
    ///
    /// # Safety
    ///
    /// `base` must point to a header written by [`Header::write_to`] in a live mapping.
    pub(crate) unsafe fn publish(base: *mut u8) {
        // SAFETY: `base` is 8-aligned and valid (caller); other processes only access the magic
        // atomically (acquire loads), so an atomic view of it is sound.
        unsafe { AtomicU64::from_ptr(base.cast::<u64>()) }.store(MAGIC, Ordering::Release);
    }

    /// Copies the header out of shared memory: the magic with an acquire load (so a published
    /// header's fields are visible), then the rest.
    ///
    /// # Safety
    ///
    /// `base` must be valid for reads of [`HEADER_SIZE`] bytes and 8-byte aligned for the call.
    pub(crate) unsafe fn read_from(base: *const u8) -> Header {
        // SAFETY: aligned and valid (caller); writers store the magic atomically.
        let magic =
            unsafe { AtomicU64::from_ptr(base.cast::<u64>().cast_mut()) }.load(Ordering::Acquire);
        // SAFETY: valid and aligned (caller); any 128 bytes are a valid `Header` (Pod). A volatile
        // copy, because other processes may write these bytes: the copy is validated afterwards
        // and only the copy is used.
        let mut h = unsafe { std::ptr::read_volatile(base.cast::<Header>()) };
        h.magic = magic;
        h
    }

    /// Checks the fields that do not depend on what the caller expects: magic, version, and that
    /// the sizes agree with each other and with the file's size.
    pub(crate) fn check_shape(&self, what: &str, file_bytes: u64) -> Result<()> {
        if self.magic != MAGIC {
            return Err(Error::NotShmpool { what: what.to_string() });
        }
        if self.version != VERSION {
            return Err(Error::VersionMismatch {
                what: what.to_string(),
                found: self.version,
                expected: VERSION,
            });
        }
        let corrupt = |reason: String| Err(Error::CorruptHeader { what: what.to_string(), reason });
        if Kind::from_u32(self.kind).is_none() {
            return corrupt(format!("unknown kind {}", self.kind));
        }
        if self.ndim == 0 || self.ndim as usize > MAX_DIMS {
            return corrupt(format!("{} dimensions, not 1 to {MAX_DIMS}", self.ndim));
        }
        if self.ndim > 1 && self.kind() != Kind::Array {
            return corrupt(format!("a {} with {} dimensions", self.kind().name(), self.ndim));
        }
        if self.elem_align == 0 || !self.elem_align.is_power_of_two() || self.elem_align > 4096 {
            return corrupt(format!(
                "element alignment {} is not a power of two up to 4096",
                self.elem_align
            ));
        }
        let data_start = (HEADER_SIZE + shape_block_bytes(self.ndim as usize)) as u64;
        if self.data_offset < data_start || !self.data_offset.is_multiple_of(self.elem_align) {
            return corrupt(format!(
                "data offset {} is inside the header (or shape block) or misaligned for \
                 alignment {}",
                self.data_offset, self.elem_align
            ));
        }
        if self.len.checked_mul(self.elem_size) != Some(self.data_bytes) {
            return corrupt(format!(
                "{} elements of {} bytes do not make {} data bytes",
                self.len, self.elem_size, self.data_bytes
            ));
        }
        if self.data_offset.checked_add(self.data_bytes) != Some(self.segment_bytes) {
            return corrupt(format!(
                "data offset {} + data bytes {} != segment size {}",
                self.data_offset, self.data_bytes, self.segment_bytes
            ));
        }
        if self.segment_bytes != file_bytes {
            return corrupt(format!(
                "the header says {} bytes but the segment is {} bytes (truncated or resized)",
                self.segment_bytes, file_bytes
            ));
        }
        Ok(())
    }

    /// The kind, after [`Header::check_shape`] passed.
    pub(crate) fn kind(&self) -> Kind {
        Kind::from_u32(self.kind).unwrap_or(Kind::Array)
    }

    /// The element type as recorded.
    pub(crate) fn type_desc(&self) -> TypeDesc {
        TypeDesc {
            dtype: self.dtype,
            type_hash: self.type_hash,
            size: self.elem_size,
            align: self.elem_align,
        }
    }

    /// Checks kind and element type against what the caller expects.
    pub(crate) fn check_type(&self, what: &str, kind: Kind, ty: &TypeDesc) -> Result<()> {
        if self.kind() != kind {
            return Err(Error::KindMismatch {
                what: what.to_string(),
                expected: kind.name(),
                found: self.kind().name(),
            });
        }
        let found = self.type_desc();
        if found != *ty {
            return Err(Error::TypeMismatch {
                what: what.to_string(),
                expected: ty.describe(),
                found: found.describe(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_get_numpy_typestrings() {
        assert_eq!(TypeDesc::of::<f64>().dtype_str(), "<f8");
        assert_eq!(TypeDesc::of::<u8>().dtype_str(), "|u1");
        assert_eq!(TypeDesc::of::<i32>().type_hash, 0);
    }

    #[test]
    fn other_types_are_void_with_a_name_hash() {
        #[derive(Clone, Copy)]
        #[allow(dead_code)]
        struct Px([u8; 3]);
        let d = TypeDesc::of::<Px>();
        assert_eq!(d.dtype_str(), "|V3");
        assert_ne!(d.type_hash, 0);
        assert_ne!(d, TypeDesc::of::<[u8; 3]>());
    }

    #[test]
    fn data_offset_is_at_least_128_and_aligned() {
        assert_eq!(data_offset_for_shape(1, 1), 128);
        assert_eq!(data_offset_for_shape(64, 1), 128);
        assert_eq!(data_offset_for_shape(256, 1), 256);
        assert_eq!(data_offset_for_shape(8, 2), 256);
        assert_eq!(data_offset_for_shape(8, MAX_DIMS), 256);
        assert_eq!(data_offset_for_shape(512, 3), 512);
    }

    #[test]
    fn layout_rejects_overflow() {
        assert!(matches!(
            Layout::new(Kind::Array, TypeDesc::of::<u64>(), usize::MAX / 4),
            Err(Error::TooLarge { .. })
        ));
    }

    // Property tests: the header is bytes another process wrote. Whatever they are, the checks an
    // open runs (`read_from`, `check_shape`, `check_type`) give a typed error, or a header whose
    // derived data range lies inside the file and is aligned for the element type.

    use proptest::prelude::*;
    use proptest::test_runner::Config;

    /// Bytes a fuzzed header and its shape block take.
    const RAW: usize = HEADER_SIZE + 8 * MAX_DIMS;

    /// A header and shape block's bytes, as aligned as the start of a mapping needs to be for
    /// `read_from`.
    #[repr(C, align(8))]
    struct Raw([u8; RAW]);

    fn config(cases: u32) -> Config {
        // No regression files: they would land in the source tree.
        Config { cases, failure_persistence: None, ..Config::default() }
    }

    /// Runs what opening a segment runs on its header: copy it out, check its shape against the
    /// file's size, then (when the caller expects something) its kind and element type.
    fn open_checks(
        bytes: &[u8; RAW],
        file: u64,
        want: Option<(Kind, TypeDesc)>,
    ) -> Result<(Header, Shape)> {
        let raw = Raw(*bytes);
        // SAFETY: `raw` is RAW bytes, 8-aligned, and only this thread sees it.
        let h = unsafe { Header::read_from(raw.0.as_ptr()) };
        h.check_shape("fuzzed segment", file)?;
        // The shape block is all `read_shape` reads past the header: check_shape made
        // data_offset >= 128 + 8 ndim, and ndim <= MAX_DIMS, so it lies inside `raw`.
        assert!(HEADER_SIZE + shape_block_bytes(h.ndim as usize) <= RAW);
        // SAFETY: as above; 8-aligned, only this thread sees it.
        let shape = unsafe { h.read_shape("fuzzed segment", raw.0.as_ptr()) }?;
        if let Some((kind, ty)) = want {
            h.check_type("fuzzed segment", kind, &ty)?;
        }
        Ok((h, shape))
    }

    /// A header (and shape block) as the bytes a file holds.
    fn to_raw(h: &Header, dims: &[u64]) -> [u8; RAW] {
        let mut raw = [0u8; RAW];
        raw[..HEADER_SIZE].copy_from_slice(bytemuck::bytes_of(h));
        for (i, d) in dims.iter().enumerate() {
            raw[HEADER_SIZE + 8 * i..HEADER_SIZE + 8 * i + 8].copy_from_slice(&d.to_le_bytes());
        }
        raw
    }

    /// An accepted header: every pointer and length derived from it stays inside the file.
    fn assert_sound(h: &Header, shape: &Shape, file: u64, want: Option<(Kind, TypeDesc)>) {
        assert_eq!(h.magic, MAGIC);
        let dims = shape.dims();
        assert_eq!(dims.len(), h.ndim as usize, "shape {dims:?} for ndim {}", h.ndim);
        assert!((1..=MAX_DIMS).contains(&dims.len()));
        let product = dims.iter().try_fold(1u64, |p, &d| p.checked_mul(d as u64));
        assert_eq!(product, Some(h.len), "accepted shape {dims:?} for len {}", h.len);
        let nonzero = dims.iter().filter(|&&d| d != 0).try_fold(1usize, |p, &d| p.checked_mul(d));
        assert!(nonzero.is_some_and(|p| p <= isize::MAX as usize), "accepted shape {dims:?}");
        assert!(h.data_offset >= (HEADER_SIZE + shape_block_bytes(dims.len())) as u64);
        assert!(dims.len() == 1 || h.kind() == Kind::Array);
        assert_eq!(h.version, VERSION);
        assert!(Kind::from_u32(h.kind).is_some(), "accepted unknown kind {}", h.kind);
        assert!(
            h.elem_align.is_power_of_two() && h.elem_align <= 4096,
            "accepted alignment {}",
            h.elem_align
        );
        // The mapping starts page-aligned, so an aligned offset gives aligned elements.
        assert!(h.data_offset >= HEADER_SIZE as u64 && h.data_offset.is_multiple_of(h.elem_align));
        let data = h.len.checked_mul(h.elem_size).expect("accepted len * elem_size overflowing");
        let end = h.data_offset.checked_add(data).expect("accepted data_offset + data overflowing");
        assert!(end <= file, "data ends at {end}, past the {file}-byte file");
        assert_eq!(h.segment_bytes, file);
        if let Some((kind, ty)) = want {
            assert_eq!(h.kind(), kind);
            assert_eq!((h.elem_size, h.elem_align), (ty.size, ty.align));
        }
    }

    /// A rejection must be one of the typed header errors, with a message that formats.
    fn assert_typed(e: &Error) {
        assert!(
            matches!(
                e,
                Error::NotShmpool { .. }
                    | Error::VersionMismatch { .. }
                    | Error::CorruptHeader { .. }
                    | Error::KindMismatch { .. }
                    | Error::TypeMismatch { .. }
            ),
            "unexpected error {e:?}"
        );
        assert!(!e.to_string().is_empty());
    }

    fn check(bytes: &[u8; RAW], file: u64, want: Option<(Kind, TypeDesc)>) -> bool {
        match open_checks(bytes, file, want) {
            Ok((h, shape)) => {
                assert_sound(&h, &shape, file, want);
                true
            }
            Err(e) => {
                assert_typed(&e);
                false
            }
        }
    }

    #[derive(Clone, Copy, Debug)]
    #[allow(dead_code)] // only its size and alignment matter
    #[repr(C, align(128))]
    struct Wide([u8; 128]);

    #[derive(Clone, Copy, Debug)]
    #[allow(dead_code)]
    #[repr(C, align(4096))]
    struct Paged(u8);

    fn kinds() -> impl Strategy<Value = Kind> {
        (1u32..=13).prop_map(|k| Kind::from_u32(k).unwrap())
    }

    fn types() -> impl Strategy<Value = TypeDesc> {
        prop_oneof![
            Just(TypeDesc::of::<u8>()),
            Just(TypeDesc::of::<u16>()),
            Just(TypeDesc::of::<f64>()),
            Just(TypeDesc::of::<[u8; 3]>()),
            Just(TypeDesc::of::<[u64; 3]>()),
            Just(TypeDesc::of::<Wide>()),
            Just(TypeDesc::of::<Paged>()),
            Just(TypeDesc::of::<()>()),
        ]
    }

    /// Values near the edges where size arithmetic breaks.
    fn edgy() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(HEADER_SIZE as u64),
            Just(u32::MAX as u64),
            Just(isize::MAX as u64),
            Just(isize::MAX as u64 + 1),
            (0u64..256).prop_map(|k| u64::MAX - k),
            (0u32..64).prop_map(|s| 1u64 << s),
            (0u32..64).prop_map(|s| (1u64 << s).wrapping_add(1)),
            (1u32..64).prop_map(|s| (1u64 << s) - 1),
            0u64..70_000,
            any::<u64>(),
        ]
    }

    /// A published, valid header for `len` elements of `ty`, and its file size.
    fn valid(kind: Kind, ty: TypeDesc, len: usize) -> (Header, u64) {
        let (h, _, file) = valid_shaped(kind, ty, &[len]);
        (h, file)
    }

    /// A published, valid header (and shape block) for an array of `dims`, and its file size.
    fn valid_shaped(kind: Kind, ty: TypeDesc, dims: &[usize]) -> (Header, Vec<u64>, u64) {
        let shape = Shape::new(dims).unwrap();
        let layout = Layout::shaped(kind, ty, &shape).unwrap();
        let mut h = Header::new(&layout, dims.len(), 4242, 0x0123_4567_89ab_cdef);
        h.magic = MAGIC;
        let block = if dims.len() > 1 { dims.iter().map(|&d| d as u64).collect() } else { vec![] };
        (h, block, layout.segment_bytes)
    }

    /// Small shapes of 1 to MAX_DIMS dimensions (zeros included), at most 100,000 elements.
    fn shapes() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(0usize..6, 1..=MAX_DIMS).prop_flat_map(|dims| {
            (0usize..20_000).prop_map(move |outer| {
                let mut dims = dims.clone();
                dims[0] = outer.min(100_000 / dims[1..].iter().product::<usize>().max(1));
                dims
            })
        })
    }

    /// One way another process could have written a header wrong.
    #[derive(Clone, Debug)]
    enum Mutation {
        /// Overwrite one field (by byte offset and width) with a value.
        Field(usize, usize, u64),
        /// Flip bits in one byte.
        Flip(usize, u8),
        /// A `len` whose product with `elem_size` wraps, every other size agreeing with the
        /// wrapped product.
        WrapLen(u64),
        /// A data offset near `u64::MAX`, aligned, whose sum with `data_bytes` wraps, the segment
        /// size agreeing with the wrapped sum.
        WrapOffset(u64),
        /// Sizes rewritten to agree with each other: `len` and `elem_size` given, the rest
        /// derived with wrapping arithmetic.
        Consistent(u64, u64),
        /// Overwrite one dimension of the shape block.
        Dim(usize, u64),
        /// Set `ndim`.
        Ndim(u32),
        /// Dimensions whose product wraps to the header's `len` (or near it), `ndim` agreeing.
        WrapDims(u64),
    }

    /// (offset, width) of every header field, the dtype and reserved bytes in 8-byte pieces.
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

    fn mutations() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            3 => ((0..FIELDS.len()), edgy()).prop_map(|(i, v)| Mutation::Field(FIELDS[i].0, FIELDS[i].1, v)),
            1 => ((0..HEADER_SIZE), 1u8..).prop_map(|(at, x)| Mutation::Flip(at, x)),
            1 => (0u64..1000).prop_map(Mutation::WrapLen),
            1 => (0u64..1000).prop_map(Mutation::WrapOffset),
            1 => (edgy(), edgy()).prop_map(|(l, e)| Mutation::Consistent(l, e)),
            2 => ((0..MAX_DIMS), edgy()).prop_map(|(i, v)| Mutation::Dim(i, v)),
            1 => prop_oneof![Just(0u32), 1u32..=MAX_DIMS as u32 + 1, any::<u32>()].prop_map(Mutation::Ndim),
            1 => (0u64..4).prop_map(Mutation::WrapDims),
        ]
    }

    fn apply(h: &mut Header, dims: &mut [u64; MAX_DIMS], m: &Mutation) {
        match *m {
            Mutation::Dim(i, v) => dims[i] = v,
            Mutation::Ndim(n) => h.ndim = n,
            Mutation::WrapDims(k) => {
                // 2^32 * 2^32 wraps to 0; times (len + k) in a third dimension.
                h.ndim = 3;
                *dims = [1 << 32, 1 << 32, h.len.wrapping_add(k), 0, 0, 0, 0, 0];
            }
            Mutation::Field(at, width, v) => {
                bytemuck::bytes_of_mut(h)[at..at + width].copy_from_slice(&v.to_le_bytes()[..width])
            }
            Mutation::Flip(at, x) => bytemuck::bytes_of_mut(h)[at] ^= x,
            Mutation::WrapLen(k) => {
                let size = h.elem_size.max(2);
                h.elem_size = size;
                h.len = (u64::MAX / size).saturating_add(1 + k);
                h.data_bytes = h.len.wrapping_mul(size);
                h.segment_bytes = h.data_offset.wrapping_add(h.data_bytes);
            }
            Mutation::WrapOffset(k) => {
                let align = h.elem_align.clamp(1, 4096).next_power_of_two();
                // 2^64 - align * (k + 1): a multiple of any power-of-two alignment up to 4096.
                h.data_offset = 0u64.wrapping_sub(align.wrapping_mul(k + 1));
                h.data_bytes = h.len.wrapping_mul(h.elem_size).max(align * (k + 2));
                h.len = h.data_bytes / h.elem_size.max(1);
                h.data_bytes = h.len.wrapping_mul(h.elem_size);
                h.segment_bytes = h.data_offset.wrapping_add(h.data_bytes);
            }
            Mutation::Consistent(len, size) => {
                h.len = len;
                h.elem_size = size;
                h.data_bytes = len.wrapping_mul(size);
                h.segment_bytes = h.data_offset.wrapping_add(h.data_bytes);
            }
        }
    }

    /// What the file's size is, relative to what the (mutated) header claims.
    fn file_sizes() -> impl Strategy<Value = (u8, u64)> {
        prop_oneof![
            3 => Just((0u8, 0u64)),            // exactly what the header claims
            2 => (1u64..5000).prop_map(|d| (1, d)), // claimed - d (the file is shorter)
            1 => (1u64..5000).prop_map(|d| (2, d)), // claimed + d
            1 => edgy().prop_map(|v| (3, v)),       // anything
        ]
    }

    fn file_size(claimed: u64, (how, v): (u8, u64)) -> u64 {
        match how {
            0 => claimed,
            1 => claimed.wrapping_sub(v),
            2 => claimed.wrapping_add(v),
            _ => v,
        }
    }

    /// Runs `test` on `cases` values of `strategy`; a panic fails the test with the smallest
    /// input proptest can shrink it to.
    fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value)) {
        let mut runner = proptest::test_runner::TestRunner::new(config(cases));
        if let Err(e) = runner.run(&strategy, |v| {
            test(v);
            Ok(())
        }) {
            panic!("{e}");
        }
    }

    #[test]
    fn valid_shaped_headers_are_accepted_with_their_shape() {
        run(2000, (types(), shapes()), |(ty, dims)| {
            let (h, block, file) = valid_shaped(Kind::Array, ty, &dims);
            let bytes = to_raw(&h, &block);
            let (_, shape) = open_checks(&bytes, file, Some((Kind::Array, ty))).unwrap();
            assert_eq!(shape.dims(), &dims[..]);
            check(&bytes, file, Some((Kind::Array, ty)));
            if dims.len() > 1 {
                // The same header as another kind is corrupt: only arrays have shapes.
                let mut queue = h;
                queue.kind = Kind::Queue as u32;
                let e = open_checks(&to_raw(&queue, &block), file, None).unwrap_err();
                assert!(matches!(e, Error::CorruptHeader { .. }), "{e}");
                // A dimension one larger no longer multiplies to len (unless a zero hides it).
                let mut bigger = block.clone();
                bigger[0] += 1;
                let r = open_checks(&to_raw(&h, &bigger), file, None);
                assert_eq!(r.is_ok(), dims[1..].contains(&0), "{dims:?}");
            }
        });
    }

    #[test]
    fn valid_headers_are_accepted_and_sound() {
        run(2000, (kinds(), types(), 0usize..1 << 20), |(kind, ty, len)| {
            let (h, file) = valid(kind, ty, len);
            let bytes = to_raw(&h, &[]);
            assert!(check(&bytes, file, Some((kind, ty))));
            // The same bytes, expected as another kind or type, are refused with the right error.
            let other = Kind::from_u32(kind as u32 % 13 + 1).unwrap();
            let e = open_checks(&bytes, file, Some((other, ty))).unwrap_err();
            assert!(matches!(e, Error::KindMismatch { .. }), "{e}");
            let wrong = TypeDesc { type_hash: ty.type_hash ^ 1, ..ty };
            let e = open_checks(&bytes, file, Some((kind, wrong))).unwrap_err();
            assert!(matches!(e, Error::TypeMismatch { .. }), "{e}");
            // Unpublished (magic still zero) is not a shmpool segment yet.
            let mut unpublished = h;
            unpublished.magic = 0;
            let e = open_checks(&to_raw(&unpublished, &[]), file, None).unwrap_err();
            assert!(matches!(e, Error::NotShmpool { .. }), "{e}");
            // A file of any other size is refused.
            for f in [0, file - 1, file + 1, file + 4096, u64::MAX] {
                let e = open_checks(&bytes, f, None).unwrap_err();
                assert!(matches!(e, Error::CorruptHeader { .. }), "{e}");
            }
        });
    }

    #[test]
    fn random_bytes_are_refused_or_sound() {
        let bytes = prop::array::uniform::<_, RAW>(any::<u8>());
        run(5000, (bytes, edgy()), |(bytes, file)| {
            check(&bytes, file, None);
            check(&bytes, file, Some((Kind::Array, TypeDesc::of::<f64>())));
            // Behind a valid magic and version, so the size checks see the random fields.
            let mut behind = bytes;
            behind[..8].copy_from_slice(&MAGIC.to_le_bytes());
            behind[8..12].copy_from_slice(&VERSION.to_le_bytes());
            let claimed = u64::from_le_bytes(behind[72..80].try_into().unwrap());
            check(&behind, file, None);
            check(&behind, claimed, None);
            check(&behind, claimed, Some((Kind::Array, TypeDesc::of::<u8>())));
            // And with a small ndim, so the shape block's random dimensions are read.
            behind[104..108].copy_from_slice(&(u32::from(bytes[0]) % 10).to_le_bytes());
            check(&behind, claimed, None);
        });
    }

    #[test]
    fn mutated_headers_are_refused_or_sound() {
        let accepted = std::cell::Cell::new(0u32);
        let muts = prop::collection::vec(mutations(), 1..4);
        run(6000, (kinds(), types(), shapes(), muts, file_sizes()), |case| {
            let (kind, ty, dims, muts, size) = case;
            let kind = if dims.len() > 1 { Kind::Array } else { kind };
            let (mut h, block, _) = valid_shaped(kind, ty, &dims);
            let mut block8 = [0u64; MAX_DIMS];
            block8[..block.len()].copy_from_slice(&block);
            for m in &muts {
                apply(&mut h, &mut block8, m);
            }
            let file = file_size(h.segment_bytes, size);
            let bytes = to_raw(&h, &block8);
            if check(&bytes, file, None) {
                accepted.set(accepted.get() + 1);
            }
            check(&bytes, file, Some((kind, ty)));
            check(&bytes, file, Some((Kind::Array, TypeDesc::of::<f64>())));
        });
        // Some mutations (the nonce, the creator pid, reserved bytes) leave a valid header: the
        // accepting path must have been exercised too, or the soundness checks proved nothing.
        let accepted = accepted.get();
        assert!(accepted > 100, "only {accepted} mutated headers were accepted");
    }

    #[test]
    fn wrapping_sizes_are_refused() {
        for ty in [TypeDesc::of::<u16>(), TypeDesc::of::<f64>(), TypeDesc::of::<Wide>()] {
            for m in [Mutation::WrapLen(0), Mutation::WrapLen(7), Mutation::WrapOffset(0)] {
                let (mut h, _) = valid(Kind::Array, ty, 10);
                apply(&mut h, &mut [0; MAX_DIMS], &m);
                let bytes = to_raw(&h, &[]);
                let e = open_checks(&bytes, h.segment_bytes, Some((Kind::Array, ty))).unwrap_err();
                assert!(matches!(e, Error::CorruptHeader { .. }), "{m:?}: {e}");
            }
        }
        // Dimensions whose product wraps to len (2^32 * 2^32 * len) are refused.
        let (mut h, _) = valid(Kind::Array, TypeDesc::of::<u8>(), 0);
        let mut dims = [0; MAX_DIMS];
        apply(&mut h, &mut dims, &Mutation::WrapDims(0));
        h.data_offset = 256;
        h.segment_bytes = 256;
        let e = open_checks(&to_raw(&h, &dims), 256, None).unwrap_err();
        assert!(matches!(e, Error::CorruptHeader { .. }), "{e}");
    }

    /// A zero-sized element type takes no bytes however long the array, so the byte limit never
    /// stopped a length past isize::MAX, which no view can have (`SharedArray::<()>::view`
    /// panicked) and which `open` refuses.
    #[test]
    fn a_length_past_isize_max_is_too_large_even_for_zero_sized_elements() {
        let unit = TypeDesc::of::<()>();
        let e = Layout::new(Kind::Array, unit, isize::MAX as usize + 1).err();
        assert!(matches!(e, Some(Error::TooLarge { .. })), "{e:?}");
        assert!(Layout::new(Kind::Array, unit, isize::MAX as usize).is_ok());
        let big = crate::SharedArray::<()>::zeroed(usize::MAX).err();
        assert!(matches!(big, Some(Error::TooLarge { .. })), "{big:?}");
    }

    /// An empty array with a huge axis multiplies to the header's len of 0, but no NumPy or
    /// ndarray view can have that shape: accepted, `SharedArray::view` panicked on it.
    #[test]
    fn an_empty_shape_with_a_huge_axis_is_refused() {
        let ty = TypeDesc::of::<f32>();
        for dims in [[0, 1 << 63], [1 << 63, 0], [0, u64::MAX], [0, 0], [1 << 62, 0]] {
            let (h, _, file) = valid_shaped(Kind::Array, ty, &[0, 3]);
            let r = open_checks(&to_raw(&h, &dims), file, Some((Kind::Array, ty)));
            if dims[0] < 1 << 63 && dims[1] < 1 << 63 {
                let want = dims.map(|d| d as usize);
                assert_eq!(r.unwrap().1.dims(), &want);
            } else {
                let e = r.unwrap_err();
                assert!(matches!(e, Error::CorruptHeader { .. }), "{dims:?}: {e}");
            }
        }
    }
}
