//! Shared-memory segments: creation with reserved memory, mapping, headers, ownership.
//!
//! A segment is an fd (memfd or POSIX shm) mapped `MAP_SHARED` in full, starting with a
//! 128-byte header and, for an array of 2 or more dimensions, its shape block (layout in
//! `docs/architecture.md`). Typed views ([`crate::SharedArray`], the
//! sync objects) sit on top.
//!
//! Ownership rules, which nothing above this module can change:
//! - the process that created a named segment unlinks its name when its creating view drops,
//!   unless it was persisted ([`crate::SharedArray::persist`]), and only while the name still
//!   names that segment; a forked child holding a copy never unlinks;
//! - opening (by name or handle) never unlinks;
//! - [`unlink`] (or `unlink()` on a view) removes the name at once; mappings stay valid until
//!   dropped;
//! - the mappings of arrays and raw values are kept out of forked children (`forkmap.rs`).
//!
//! The public part of this module is small: [`unlink`] and [`inspect`] by name, plus the
//! [`ShmOptions`] and [`SegmentHandle`] types re-exported at the crate root.

pub(crate) mod forkmap;
pub(crate) mod handle;
pub(crate) mod header;
pub(crate) mod name;
pub(crate) mod object;
pub(crate) mod options;
pub(crate) mod stale;

use std::fs::File;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::sys;
use handle::Locator;
pub use handle::SegmentHandle;
use header::{HEADER_SIZE, Header, Kind, Layout, TypeDesc};
use options::Naming;
pub use options::ShmOptions;
pub use stale::clean_stale;

/// How many generated names are tried before giving up on collisions.
const NAME_ATTEMPTS: usize = 16;

/// A mapped shared-memory segment.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Unmapped on drop, except in a process that inherited this copy (see `is_inherited`).
    map: ManuallyDrop<MmapRaw>,
    file: File,
    /// Bare name (no leading '/') for named segments.
    name: Option<String>,
    /// Set for the creating handle of a named segment until `persist` or `unlink`.
    unlink_on_drop: AtomicBool,
    /// The process that made this mapping (created or opened the segment): the only one allowed
    /// to unlink on drop (for a creating handle), and the only one in which a fork-private
    /// mapping exists at all.
    owner_pid: u32,
    /// A validated private copy of the header; pointers are computed from it alone.
    hdr: Header,
    /// The shape, copied out of the shape block and validated with the header.
    shape: Shape,
    /// How forks treat the mapping (registered in [`forkmap`]): arrays and raw values, whose
    /// contents safe code reaches through `&mut`, are kept out of children; lock-protected data
    /// is shared with them unless a guard is held at the fork; the rest (atomics, queues,
    /// events...) is made for sharing and not registered.
    fork_policy: Option<forkmap::Policy>,
}

/// How forks treat segments of this kind; see [`forkmap`].
fn fork_policy(kind: Kind) -> Option<forkmap::Policy> {
    match kind {
        Kind::Array | Kind::RawValue => Some(forkmap::Policy::Private),
        Kind::Mutex | Kind::Value => Some(forkmap::Policy::Guarded),
        _ => None,
    }
}

/// Registers a mapping with the fork handlers, if its kind needs it; see [`forkmap`].
fn register_for_forks(map: &MmapRaw, file: &File, policy: Option<forkmap::Policy>) -> Result<()> {
    let Some(policy) = policy else { return Ok(()) };
    let start = NonNull::new(map.as_mut_ptr()).expect("a mapping is never at address 0");
    forkmap::register(start, map.len(), file.as_raw_fd(), 0, policy)
        .map_err(Error::io("madvise(MADV_DONTFORK)"))
}

impl Segment {
    /// Creates a segment for `layout`, with every byte reserved and zeroed, the header written
    /// but not yet published. The caller initialises the data, then calls [`Segment::publish`].
    pub(crate) fn create(opts: &ShmOptions, layout: &Layout) -> Result<Segment> {
        Segment::create_shaped(opts, layout, Shape::flat(layout.len as usize))
    }

    /// [`Segment::create`] for an array of `shape`, whose `layout` is
    /// [`Layout::shaped`](header::Layout::shaped) of that shape (room for its shape block).
    pub(crate) fn create_shaped(
        opts: &ShmOptions,
        layout: &Layout,
        shape: Shape,
    ) -> Result<Segment> {
        let ndim = shape.dims().len();
        assert!(
            shape.len() as u64 == layout.len
                && layout.data_offset >= (HEADER_SIZE + header::shape_block_bytes(ndim)) as u64,
            "Segment::create_shaped needs Layout::shaped of the same shape"
        );
        let bytes = layout.segment_bytes;
        let (file, name) = match &opts.naming {
            Naming::Anonymous => {
                check_room(bytes, None)?;
                (sys::shm::memfd_create("shmpool").map_err(Error::io("memfd_create"))?, None)
            }
            Naming::Given(n) => {
                let bare = name::validate(n)?;
                check_room(bytes, Some(&bare))?;
                (create_named(&bare)?, Some(bare))
            }
            Naming::Generated => {
                check_room(bytes, Some("shmpool-"))?;
                let mut attempt = 0;
                loop {
                    let bare = name::generate();
                    match create_named(&bare) {
                        Ok(f) => break (f, Some(bare)),
                        Err(Error::AlreadyExists { .. }) if attempt + 1 < NAME_ATTEMPTS => {
                            attempt += 1
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        // From here on, a failure must not leave the name behind.
        let remove_name = |e: Error| {
            if let Some(n) = &name {
                let _ = sys::shm::shm_unlink(&name::os_name(n));
            }
            e
        };
        sys::shm::reserve(&file, bytes)
            .map_err(|e| remove_name(reserve_error(e, bytes, name.is_some())))?;
        if name.is_none() {
            sys::shm::seal_size(&file)
                .map_err(|e| remove_name(Error::io("sealing the memfd size")(e)))?;
        }
        let map = map_file(&file, bytes, opts.populate).map_err(remove_name)?;
        let fork_policy = fork_policy(layout.kind);
        register_for_forks(&map, &file, fork_policy).map_err(remove_name)?;
        let owner_pid = sys::proc::getpid();
        let hdr = Header::new(layout, ndim, owner_pid, sys::proc::random_u64());
        // SAFETY: the mapping is at least HEADER_SIZE bytes, page-aligned, and not published: no
        // other process can see it yet (memfd) or will read past a zero magic (named).
        unsafe { hdr.write_to(map.as_mut_ptr()) };
        // SAFETY: as above; the mapping holds the shape block (`Layout::shaped`, asserted).
        unsafe { Header::write_shape(map.as_mut_ptr(), &shape) };
        Ok(Segment {
            map: ManuallyDrop::new(map),
            file,
            unlink_on_drop: AtomicBool::new(name.is_some()),
            name,
            owner_pid,
            hdr,
            shape,
            fork_policy,
        })
    }

    /// Maps an existing segment and checks its header's shape (magic, version, sizes).
    pub(crate) fn open(loc: &Locator, nonce: Option<u64>, populate: bool) -> Result<Segment> {
        let what = describe(loc);
        match loc {
            Locator::Named(n) => {
                let bare = name::validate(n)?;
                let file = sys::shm::shm_open(&name::os_name(&bare), sys::shm::OpenMode::Existing)
                    .map_err(|e| {
                        if e.kind() == io::ErrorKind::NotFound {
                            Error::NotFound { name: bare.clone() }
                        } else {
                            Error::io("shm_open")(e)
                        }
                    })?;
                Segment::map_existing(file, Some(bare), &what, nonce, populate)
            }
            Locator::Anonymous { pid, fd } => {
                // The creator's table first (an unrelated process needs the creator alive); then
                // our own, where a forked child finds the descriptor it inherited even after the
                // creator exited or reused that number for another memfd.
                let me = sys::proc::getpid();
                let mut last = None;
                for p in if *pid == me { vec![me] } else { vec![*pid, me] } {
                    let Some(file) = open_memfd(p, *fd)? else { continue };
                    match Segment::map_existing(file, None, &what, nonce, populate) {
                        Err(e @ Error::StaleHandle { .. }) => last = Some(e),
                        other => return other,
                    }
                }
                Err(last.unwrap_or_else(|| Error::StaleHandle {
                    what,
                    reason: format!(
                        "process {pid} holds no memfd at descriptor {fd} (has it exited?), and neither does this one"
                    ),
                }))
            }
        }
    }

    /// Maps an opened segment file, copies and validates its header, checks the nonce.
    fn map_existing(
        file: File,
        name: Option<String>,
        what: &str,
        nonce: Option<u64>,
        populate: bool,
    ) -> Result<Segment> {
        let bytes = sys::shm::size(&file).map_err(Error::io("fstat"))?;
        if bytes < HEADER_SIZE as u64 {
            return Err(if bytes == 0 {
                Error::NotShmpool { what: what.to_string() }
            } else {
                Error::CorruptHeader {
                    what: what.to_string(),
                    reason: format!(
                        "the segment is {bytes} bytes, smaller than the {HEADER_SIZE}-byte header"
                    ),
                }
            });
        }
        let map = map_file(&file, bytes, populate)?;
        // SAFETY: the mapping is at least HEADER_SIZE bytes (checked above) and page-aligned.
        let hdr = unsafe { Header::read_from(map.as_ptr()) };
        hdr.check_shape(what, bytes)?;
        // SAFETY: check_shape compared the header with the file's size, which the mapping
        // spans: data_offset <= bytes, so `data_offset` bytes are readable; page-aligned.
        let shape = unsafe { hdr.read_shape(what, map.as_ptr()) }?;
        if let Some(expected) = nonce
            && hdr.nonce != expected
        {
            return Err(Error::StaleHandle {
                what: what.to_string(),
                reason: "the segment found there is a different one (its nonce differs)".into(),
            });
        }
        let fork_policy = fork_policy(hdr.kind());
        register_for_forks(&map, &file, fork_policy)?;
        let owner_pid = sys::proc::getpid();
        Ok(Segment {
            map: ManuallyDrop::new(map),
            file,
            name,
            unlink_on_drop: AtomicBool::new(false),
            owner_pid,
            hdr,
            shape,
            fork_policy,
        })
    }

    /// Opens by locator and checks kind and element type.
    pub(crate) fn open_typed(
        loc: &Locator,
        nonce: Option<u64>,
        kind: Kind,
        ty: &TypeDesc,
    ) -> Result<Segment> {
        let seg = Segment::open(loc, nonce, false)?;
        seg.header().check_type(&describe(loc), kind, ty)?;
        Ok(seg)
    }

    /// The validated private copy of the header (see [`Header`] for why a copy).
    pub(crate) fn header(&self) -> &Header {
        &self.hdr
    }

    /// Makes the segment openable by others. Call after initialising the data.
    pub(crate) fn publish(&self) {
        // SAFETY: `create` wrote the header at the start of this live mapping.
        unsafe { Header::publish(self.map.as_mut_ptr()) }
    }

    /// Pointer to the first data byte (aligned to the element type).
    pub(crate) fn data_ptr(&self) -> NonNull<u8> {
        let off = self.header().data_offset as usize;
        // SAFETY: `hdr` is a private copy that check_shape (open) or Layout (create) validated:
        // data_offset <= segment size == mapping length, so the result stays inside (or one
        // past the end of) the mapping, which is non-null.
        unsafe { NonNull::new_unchecked(self.map.as_mut_ptr().add(off)) }
    }

    /// Number of elements the header records.
    pub(crate) fn len(&self) -> usize {
        self.header().len as usize
    }

    /// The shape the header and shape block record (`[len]` for 1-D).
    pub(crate) fn shape(&self) -> Shape {
        self.shape
    }

    /// Bare name for named segments.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// A handle other processes can open.
    ///
    /// # Panics
    ///
    /// On a copy of a fork-private segment inherited through fork (see
    /// [`is_inherited`](Segment::is_inherited)): the handle would let this process (or a pool
    /// it starts) map memory the parent still holds exclusively.
    pub(crate) fn handle(&self) -> SegmentHandle {
        self.assert_given();
        let loc = match &self.name {
            Some(n) => Locator::Named(n.clone()),
            None => Locator::Anonymous { pid: sys::proc::getpid(), fd: self.file.as_raw_fd() },
        };
        SegmentHandle { loc, nonce: self.header().nonce }
    }

    /// Stops this process with the reason when it holds this segment only by inheritance
    /// through fork (see [`is_inherited`](Segment::is_inherited)): whatever would use it
    /// (a handle for another process, a job run in the caller) must refuse before touching it.
    ///
    /// # Panics
    ///
    /// On such an inherited copy.
    pub(crate) fn assert_given(&self) {
        if self.is_inherited() {
            panic!(
                "this process got a shared array by inheritance through fork (a capture, a static, \
                 an Arc or a std lock), and it is not usable here: lend the chunk a child works on \
                 with Scope::fork_with, or pass a handle made in the parent"
            );
        }
    }

    /// Keep the name after this handle drops (the segment outlives the process).
    pub(crate) fn persist(&self) {
        self.unlink_on_drop.store(false, Ordering::Relaxed);
    }

    /// Removes the name now. Already-open mappings stay valid; new opens fail with NotFound.
    ///
    /// Only while the name still names this segment: once it was removed and reused for another
    /// segment (by name, by anyone), that one is left alone and this is `NotFound`.
    pub(crate) fn unlink(&self) -> Result<()> {
        self.unlink_on_drop.store(false, Ordering::Relaxed);
        match &self.name {
            Some(n) if !self.still_named() => Err(Error::NotFound { name: n.clone() }),
            Some(n) => match sys::shm::shm_unlink(&name::os_name(n)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    Err(Error::NotFound { name: n.clone() })
                }
                Err(e) => Err(Error::io("shm_unlink")(e)),
            },
            None => Ok(()),
        }
    }
}

impl Segment {
    /// The handle as text, for `Debug`: never panics, saying so for an inherited copy instead.
    pub(crate) fn handle_text(&self) -> String {
        if self.is_inherited() {
            "(inherited through fork: not mapped here)".to_string()
        } else {
            self.handle().to_string()
        }
    }

    /// Whether `loc` still leads to this segment's file (same device and inode): false once the
    /// process named there closed the descriptor, or the name was removed or reused.
    pub(crate) fn is_file_at(&self, loc: &Locator) -> bool {
        let path = match loc {
            Locator::Named(n) => format!("/dev/shm/{n}"),
            Locator::Anonymous { pid, fd } => format!("/proc/{pid}/fd/{fd}"),
        };
        sys::shm::is_same_file(&path, &self.file).unwrap_or(false)
    }

    /// Whether this is a forked copy of a fork-private segment: its mapping was kept out of this
    /// process (`MADV_DONTFORK`, then sealed), so its data pointer faults, its handle is refused,
    /// and dropping it leaves the sealed range reserved.
    pub(crate) fn is_inherited(&self) -> bool {
        self.fork_policy == Some(forkmap::Policy::Private) && self.owner_pid != sys::proc::getpid()
    }

    /// Whether this segment's name still names this segment's file (same device and inode), so
    /// that removing the name removes ours and not a newer segment that took the name after
    /// ours was unlinked. A check then a removal: a process that removes and re-creates the
    /// name between the two still loses its new segment's name (Linux has no "unlink if this
    /// inode"); shmpool's own creators never reuse a name (generated names are random).
    fn still_named(&self) -> bool {
        match &self.name {
            Some(n) => self.is_file_at(&Locator::Named(n.clone())),
            None => false,
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.is_inherited() {
            // Not ours: the range is a sealed reservation a stale pointer may still point into.
            // Leave it mapped (and out of the table, which never had it).
        } else {
            if self.fork_policy.is_some() {
                let start =
                    NonNull::new(self.map.as_mut_ptr()).expect("a mapping is never at address 0");
                forkmap::unregister(start);
            }
            // SAFETY: dropped once, here, and `self.map` is not used after this point.
            unsafe { ManuallyDrop::drop(&mut self.map) };
        }
        if self.unlink_on_drop.load(Ordering::Relaxed)
            && self.owner_pid == sys::proc::getpid()
            && let Some(n) = &self.name
            && self.still_named()
        {
            let _ = sys::shm::shm_unlink(&name::os_name(n));
        }
    }
}

fn describe(loc: &Locator) -> String {
    match loc {
        Locator::Named(n) => format!("segment {n}"),
        Locator::Anonymous { pid, fd } => format!("anonymous segment {pid}/{fd}"),
    }
}

fn create_named(bare: &str) -> Result<File> {
    sys::shm::shm_open(&name::os_name(bare), sys::shm::OpenMode::CreateExclusive).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            Error::AlreadyExists { name: bare.to_string() }
        } else {
            Error::io("shm_open")(e)
        }
    })
}

/// Refuses up front a request that cannot fit, before touching a page: a memfd fallocate larger
/// than memory would push the machine into the OOM killer instead of failing cleanly.
fn check_room(bytes: u64, named: Option<&str>) -> Result<()> {
    let (place, fix, avail) = match named {
        Some(_) => (
            "/dev/shm",
            "mount a larger /dev/shm (docker: --shm-size) or use a smaller array",
            sys::shm::path_available("/dev/shm").ok().flatten(),
        ),
        None => (
            "memory",
            "free memory, raise the cgroup memory limit, or use a smaller array",
            sys::mem::available(),
        ),
    };
    match avail {
        Some(available) if bytes > available => {
            Err(Error::OutOfSpace { place, requested: bytes, available, fix })
        }
        _ => Ok(()),
    }
}

fn reserve_error(e: io::Error, bytes: u64, named: bool) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::ENOMEM) | Some(libc::EFBIG) => {
            let (place, fix, available) = if named {
                (
                    "/dev/shm",
                    "mount a larger /dev/shm (docker: --shm-size) or use a smaller array",
                    sys::shm::path_available("/dev/shm").ok().flatten().unwrap_or(0),
                )
            } else {
                (
                    "memory",
                    "free memory, raise the cgroup memory limit, or use a smaller array",
                    sys::mem::available().unwrap_or(0),
                )
            };
            Error::OutOfSpace { place, requested: bytes, available, fix }
        }
        _ => Error::io("fallocate")(e),
    }
}

fn map_file(file: &File, bytes: u64, populate: bool) -> Result<MmapRaw> {
    let mut o = MmapOptions::new();
    o.len(bytes as usize);
    if populate {
        o.populate();
    }
    o.map_raw(file).map_err(Error::io("mmap"))
}

/// Opens descriptor `fd` of process `pid` through `/proc`, if it is a memfd; `None` if it is not
/// (closed, another kind of file, or the process is gone).
fn open_memfd(pid: u32, fd: i32) -> Result<Option<File>> {
    let is_memfd = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|t| t.to_string_lossy().starts_with("/memfd:"))
        .unwrap_or(false);
    if !is_memfd {
        return Ok(None);
    }
    match sys::shm::open_proc_fd(pid, fd) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None), // closed meanwhile
        Err(e) => Err(Error::io("opening /proc/<pid>/fd/<fd>")(e)),
    }
}

/// Removes the named segment `name` (leading '/' optional). Processes that have it open keep
/// their mappings; new opens fail with [`Error::NotFound`].
///
/// ```
/// use shmpool::{SharedArray, ShmOptions};
/// let a = SharedArray::<u8>::zeroed_with(1, &ShmOptions::new().generated_name())?;
/// shmpool::segment::unlink(a.name().unwrap())?;
/// assert!(shmpool::segment::unlink(a.name().unwrap()).is_err()); // already gone
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn unlink(name: &str) -> Result<()> {
    let bare = name::validate(name)?;
    sys::shm::shm_unlink(&name::os_name(&bare)).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::NotFound { name: bare.clone() }
        } else {
            Error::io("shm_unlink")(e)
        }
    })
}

/// What a segment's header says, for tools and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// What the segment holds ("shared array", "mutex", ...).
    pub kind: &'static str,
    /// NumPy type string of the element (`<f8`, `|V24`).
    pub dtype: String,
    /// Number of elements.
    pub len: u64,
    /// The shape (C order, outer axis first; `[len]` for anything but a shaped array).
    pub shape: Vec<usize>,
    /// Bytes per element.
    pub elem_size: u64,
    /// Where the data starts, from the segment's first byte.
    pub data_offset: u64,
    /// The segment's size in bytes.
    pub segment_bytes: u64,
    /// The pid of the process that created it.
    pub creator_pid: u32,
    /// Whether that process still exists.
    pub creator_alive: bool,
}

/// Reads the header of the named segment without caring what it holds.
///
/// ```
/// use shmpool::{SharedArray, ShmOptions};
/// let a = SharedArray::<f64>::zeroed_with(10, &ShmOptions::new().generated_name())?;
/// let info = shmpool::segment::inspect(a.name().unwrap())?;
/// assert_eq!((info.dtype.as_str(), info.len, info.data_offset), ("<f8", 10, 128));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn inspect(name: &str) -> Result<SegmentInfo> {
    let seg = Segment::open(&Locator::Named(name.to_string()), None, false)?;
    let h = seg.header();
    Ok(SegmentInfo {
        kind: h.kind().name(),
        dtype: h.type_desc().describe(),
        len: h.len,
        shape: seg.shape().dims().to_vec(),
        elem_size: h.elem_size,
        data_offset: h.data_offset,
        segment_bytes: h.segment_bytes,
        creator_pid: h.creator_pid,
        creator_alive: sys::proc::pid_alive(h.creator_pid),
    })
}
