//! The unbounded flavour of `MessageQueue`: a chain of byte rings, each in a named segment of its
//! own, under one lock in a small anchor segment. A put that finds the newest ring full creates
//! the next one (twice the size, up to [`MAX_RING`], or the size of the frame) and writes there,
//! so a put never waits for room; a get that drains a ring older than the newest removes its name
//! and moves on. Rings are found by name (`shmpool-<creator pid>-<nonce>-r<index>`), so any
//! process that holds the anchor reaches every ring whoever created it and whether that process
//! still runs. The names belong to the queue's creating handle, which removes every ring still in
//! the chain when it drops. The protocol and its failure cases: "Unbounded `MessageQueue`" in
//! `README.md`.

use std::mem::offset_of;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::codec::{FRAME_HEADER, RawRing, Want, decode_frame, frame_header};
use super::error::{
    BadFrame, Closed, GrowFailed, Limit, MessageTryGetError, MessageTryPutError, PeersGone,
    TaskDoneError, TooLarge,
};
use super::lock::{Guard, RingLock};
use super::peers::PeerTable;
use super::wait::{SLICE, WaitCell, lock_deadline, wait_all_done, wait_for};
use crate::error::{Error, Result};
use crate::segment::Segment;
use crate::segment::handle::Locator;
use crate::segment::header::{HEADER_SIZE, Header, Kind, Layout, TypeDesc};
use crate::segment::name::PREFIX;
use crate::segment::options::ShmOptions;
use crate::sys::proc;

/// Identifies an unbounded queue's anchor control block: `b"SPMSGU01"`.
pub(crate) const TAG: u64 = u64::from_le_bytes(*b"SPMSGU01");
/// Identifies one ring of the chain: `b"SPMSGR01"`.
const RING_TAG: u64 = u64::from_le_bytes(*b"SPMSGR01");
/// The largest message an unbounded queue takes by default (its gets allocate at most this).
pub(crate) const DEFAULT_MAX_MESSAGE: usize = 256 << 20;
/// The first ring's size in bytes.
const FIRST_RING: u64 = 64 << 10;
/// The largest ring made by doubling; a larger frame gets a ring of its own size.
const MAX_RING: u64 = 16 << 20;
/// The most rings one get walks past before it reports "empty for now" (a corrupt chain index
/// must not make it loop for ever).
const MAX_HOPS: u32 = 64;

#[repr(C, align(64))]
struct Line<T>(T);

#[repr(C)]
struct Info {
    tag: u64,
    max_message: u64,
    /// The creator's pid and a random number: the ring names' stem.
    creator_pid: u64,
    nonce: u64,
    closed: AtomicU32,
    /// Set when the creating handle dropped and removed the rings' names: no ring can be added
    /// or opened any more.
    orphaned: AtomicU32,
    /// 1 for a `JoinableQueue`'s chain: puts count `Chain::unfinished`.
    joinable: AtomicU32,
}

/// The chain, read and written under the lock.
#[repr(C)]
struct Chain {
    /// Index of the ring gets read from (rings are numbered from 1).
    head: AtomicU64,
    /// Index of the ring puts write to (`>= head`); 0 before the first put.
    tail: AtomicU64,
    /// Frames held: statistics for `qsize`, `is_empty`.
    count: AtomicU64,
    /// Ring bytes in the chain.
    bytes: AtomicU64,
    /// `k + 1` while a get removes drained ring `k`'s name and moves the head past it; else 0.
    removing: AtomicU64,
    /// Joinable chains: items put and not yet marked done (raised under the lock by the put
    /// that stores the item, lowered by `task_done`).
    unfinished: AtomicU64,
    /// The cell `join` sleeps on.
    done: WaitCell,
}

#[repr(C)]
struct Control {
    info: Line<Info>,
    lock: Line<RingLock>,
    chain: Line<Chain>,
    not_empty: Line<WaitCell>,
    producers: PeerTable,
    consumers: PeerTable,
}

const ANCHOR_BYTES: usize = HEADER_SIZE + std::mem::size_of::<Control>();
// The layout `README.md` (beside this file) describes.
const _: () = assert!(ANCHOR_BYTES == 896);

/// A ring segment's control block, at offset 128; its bytes follow at [`RING_DATA`].
#[repr(C)]
struct RingControl {
    info: Line<RingInfo>,
    /// Byte positions of the oldest frame and after the newest, as in a bounded ring.
    head: Line<AtomicU64>,
    tail: AtomicU64,
}

#[repr(C)]
struct RingInfo {
    tag: u64,
    capacity: u64,
    index: u64,
    nonce: u64,
}

const RING_DATA: usize = HEADER_SIZE + std::mem::size_of::<RingControl>();
const _: () = assert!(RING_DATA == 320);

/// One ring this process has mapped.
struct Ring {
    index: u64,
    ctrl: NonNull<RingControl>,
    raw: RawRing,
    cap: u64,
    /// Keeps the mapping alive (never unlinks on drop: [`Segment::persist`] at creation).
    _seg: Segment,
}

impl Ring {
    fn ctrl(&self) -> &RingControl {
        // SAFETY: inside the mapping `_seg` keeps alive; written before the ring was linked into
        // the chain and only changed through atomics afterwards.
        unsafe { self.ctrl.as_ref() }
    }

    fn from_segment(seg: Segment, index: u64) -> Ring {
        let data = seg.data_ptr();
        // SAFETY: data_ptr is the mapping start + RING_DATA (written or checked by the caller),
        // so the control block at offset 128 lies inside the mapping, 64-aligned like it.
        let ctrl = unsafe {
            NonNull::new_unchecked(data.as_ptr().sub(RING_DATA - HEADER_SIZE).cast::<RingControl>())
        };
        let cap = seg.len() as u64;
        // SAFETY: the ring's `cap` bytes follow RING_DATA inside the mapping `_seg` keeps alive;
        // every copy is made under the anchor's lock (every put and get holds it).
        let raw = unsafe { RawRing::new(data, cap) };
        Ring { index, ctrl, raw, cap, _seg: seg }
    }

    /// The first ring byte.
    fn raw_data(&self) -> NonNull<u8> {
        self._seg.data_ptr()
    }

    /// Bytes free.
    fn room(&self) -> u64 {
        let c = self.ctrl();
        let used = c.tail.load(Ordering::Relaxed).wrapping_sub(c.head.0.load(Ordering::Relaxed));
        // Saturating: a corrupt ring (tail - head > cap) reads as full.
        self.cap.saturating_sub(used)
    }

    /// Writes one frame at the tail; the caller checked the room.
    fn write(&self, tag: u64, bytes: &[u8]) -> std::result::Result<(), BadFrame> {
        let tail = self.ctrl().tail.load(Ordering::Relaxed);
        self.raw.copy_in(tail, &frame_header(bytes.len() as u32, tag))?;
        self.raw.copy_in(tail.wrapping_add(FRAME_HEADER as u64), bytes)?;
        let need = (FRAME_HEADER + bytes.len()) as u64;
        self.ctrl().tail.store(tail.wrapping_add(need), Ordering::Release); // the commit
        Ok(())
    }
}

/// The unbounded queue as one process sees it.
pub(crate) struct Inner {
    seg: Segment,
    ctrl: NonNull<Control>,
    max: u64,
    /// The rings this process mapped (at most the head's and the tail's, and a ring it just
    /// made).
    rings: Mutex<Vec<Ring>>,
    /// Set in the creating handle: its drop (in the creating process) removes the rings' names.
    creator_pid: Option<u32>,
    producer_as: AtomicU64,
    consumer_as: AtomicU64,
}

// SAFETY: the control blocks are used only through atomics; ring bytes are read and written only
// while holding the anchor's lock; the mapped rings are behind a `Mutex`.
unsafe impl Send for Inner {}
// SAFETY: as above.
unsafe impl Sync for Inner {}

impl Inner {
    /// An unbounded `MessageQueue`'s anchor.
    pub(crate) fn create(max_message: usize, opts: &ShmOptions) -> Result<Inner> {
        Self::create_as(Kind::MessageQueue, TypeDesc::of::<u8>(), max_message, opts, false)
    }

    /// An anchor whose segment header says `kind` and `ty` (what an opener checks: an unbounded
    /// `Queue<T>` is a `Kind::Queue` of `T`, so that opening it as another item type fails as a
    /// bounded one does). A `joinable` chain counts unfinished items (`JoinableQueue::new`).
    pub(crate) fn create_as(
        kind: Kind,
        ty: TypeDesc,
        max_message: usize,
        opts: &ShmOptions,
        joinable: bool,
    ) -> Result<Inner> {
        if max_message == 0 || max_message > u32::MAX as usize {
            return Err(Error::InvalidArgument {
                what: "message queue size",
                reason: format!("the largest message must be 1 byte to 4 GiB, not {max_message}"),
            });
        }
        let layout = Layout {
            kind,
            ty,
            len: 0,
            data_offset: ANCHOR_BYTES as u64,
            segment_bytes: ANCHOR_BYTES as u64,
        };
        let seg = Segment::create(opts, &layout)?;
        let mut inner = Self::from_segment(seg);
        // SAFETY: the segment is fresh and unpublished, so nothing else reaches the control block,
        // which lies inside the mapping at offset 128.
        let info = unsafe { &mut (*inner.ctrl.as_ptr()).info.0 };
        info.tag = TAG;
        info.max_message = max_message as u64;
        info.creator_pid = u64::from(proc::getpid());
        info.nonce = proc::random_u64();
        info.joinable = AtomicU32::new(joinable as u32);
        inner.max = max_message as u64;
        inner.creator_pid = Some(proc::getpid());
        inner.seg.publish();
        Ok(inner)
    }

    /// The unbounded queue in an opened segment whose control block has [`TAG`].
    pub(crate) fn open(seg: Segment, loc: &Locator) -> Result<Inner> {
        let corrupt = |reason: &str| Error::CorruptHeader {
            what: match loc {
                Locator::Named(n) => format!("message queue {n}"),
                Locator::Anonymous { pid, fd } => format!("message queue {pid}/{fd}"),
            },
            reason: reason.to_string(),
        };
        if seg.header().data_offset != ANCHOR_BYTES as u64 || seg.len() != 0 {
            return Err(corrupt("the data offset is not the unbounded message queue layout's"));
        }
        let mut inner = Self::from_segment(seg);
        let info = &inner.ctrl().info.0;
        if info.tag != TAG || info.creator_pid > u64::from(u32::MAX) {
            return Err(corrupt(
                "the message queue control block is damaged or from another version",
            ));
        }
        if info.max_message == 0 || info.max_message > u64::from(u32::MAX) {
            return Err(corrupt("the largest message size is out of range"));
        }
        inner.max = info.max_message;
        Ok(inner)
    }

    fn from_segment(seg: Segment) -> Inner {
        // SAFETY: data_ptr is the mapping start + ANCHOR_BYTES (written or checked by us), so the
        // control block at offset 128 lies inside the mapping, 64-aligned like the mapping.
        let ctrl = unsafe {
            NonNull::new_unchecked(
                seg.data_ptr().as_ptr().sub(ANCHOR_BYTES - HEADER_SIZE).cast::<Control>(),
            )
        };
        Inner {
            seg,
            ctrl,
            max: 0,
            rings: Mutex::new(Vec::new()),
            creator_pid: None,
            producer_as: AtomicU64::new(0),
            consumer_as: AtomicU64::new(0),
        }
    }

    fn ctrl(&self) -> &Control {
        // SAFETY: inside the mapping `self.seg` keeps alive; initialised before publication
        // (all-zero atomics are valid) and only mutated through atomics afterwards.
        unsafe { self.ctrl.as_ref() }
    }

    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    pub(crate) fn closed(&self) -> bool {
        self.ctrl().info.0.closed.load(Ordering::Acquire) != 0
    }

    fn orphaned(&self) -> bool {
        self.ctrl().info.0.orphaned.load(Ordering::Acquire) != 0
    }

    pub(crate) fn close(&self) {
        let c = self.ctrl();
        c.info.0.closed.store(1, Ordering::SeqCst);
        c.not_empty.0.notify_all();
        c.chain.0.done.notify_all();
    }

    /// Whether puts count unfinished items (a `JoinableQueue`'s chain).
    pub(crate) fn is_joinable(&self) -> bool {
        self.ctrl().info.0.joinable.load(Ordering::Acquire) != 0
    }

    /// Registers this process as a consumer (`task_done` does, so that `join` can tell when
    /// every consumer has exited).
    pub(crate) fn as_consumer(&self) {
        self.register(false);
    }

    /// Joinable chains: marks one item done.
    pub(crate) fn task_done(&self) -> std::result::Result<(), TaskDoneError> {
        let chain = &self.ctrl().chain.0;
        let mut n = chain.unfinished.load(Ordering::Relaxed);
        loop {
            if n == 0 {
                return Err(TaskDoneError);
            }
            match chain.unfinished.compare_exchange_weak(
                n,
                n - 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => n = actual,
            }
        }
        if n == 1 {
            chain.done.notify_all();
        }
        Ok(())
    }

    /// Joinable chains: waits until every item put was marked done, as `limit` says (the
    /// bounded queue's `join`, over the chain's counter).
    pub(crate) fn join<E: From<Closed> + From<PeersGone>>(
        &self,
        limit: Limit<E>,
    ) -> std::result::Result<(), E> {
        let chain = &self.ctrl().chain.0;
        wait_all_done(
            &chain.done,
            &chain.unfinished,
            limit,
            || self.closed(),
            &self.ctrl().consumers,
        )
    }

    /// Joinable chains: items put and not yet marked done (a snapshot).
    pub(crate) fn unfinished(&self) -> u64 {
        self.ctrl().chain.0.unfinished.load(Ordering::Acquire)
    }

    pub(crate) fn qsize(&self) -> usize {
        self.ctrl().chain.0.count.load(Ordering::Relaxed).min(usize::MAX as u64) as usize
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ctrl().chain.0.count.load(Ordering::Acquire) == 0
    }

    /// Ring bytes the chain holds now (every ring from the head's to the tail's).
    pub(crate) fn ring_bytes(&self) -> u64 {
        self.ctrl().chain.0.bytes.load(Ordering::Relaxed)
    }

    /// How many rings the chain holds now.
    pub(crate) fn rings(&self) -> u64 {
        let chain = &self.ctrl().chain.0;
        let (head, tail) = (chain.head.load(Ordering::Relaxed), chain.tail.load(Ordering::Relaxed));
        if tail == 0 { 0 } else { tail.wrapping_sub(head).wrapping_add(1) }
    }

    /// The name of ring `index`.
    fn ring_name(&self, index: u64) -> String {
        let info = &self.ctrl().info.0;
        format!("{PREFIX}{}-{:016x}-r{index}", info.creator_pid, info.nonce)
    }

    fn register(&self, producer: bool) {
        if producer {
            self.ctrl().producers.register_cached(&self.producer_as);
        } else {
            self.ctrl().consumers.register_cached(&self.consumer_as);
        }
    }

    fn lock<E>(&self, limit: Option<(Instant, E)>) -> std::result::Result<Guard<'_>, E> {
        self.ctrl().lock.0.lock(limit)
    }

    /// Creates ring `index` of `cap` bytes, named and kept after this handle drops (the chain
    /// owns it). Under the lock: a name left by a grower that died before linking its ring is
    /// an orphan nobody can reach, so it is removed and made again.
    fn create_ring(&self, index: u64, cap: u64) -> Result<Ring> {
        let name = self.ring_name(index);
        let layout = Layout {
            kind: Kind::MessageQueue,
            ty: TypeDesc::of::<u8>(),
            len: cap,
            data_offset: RING_DATA as u64,
            segment_bytes: RING_DATA as u64 + cap,
        };
        let opts = ShmOptions::new().named(name.clone());
        let seg = match Segment::create(&opts, &layout) {
            Err(Error::AlreadyExists { .. }) => {
                let _ = crate::segment::unlink(&name);
                Segment::create(&opts, &layout)?
            }
            other => other?,
        };
        seg.persist();
        let ring = Ring::from_segment(seg, index);
        let creator = self.ctrl().info.0.creator_pid as u32;
        // The ring belongs to the queue's creator, not to this process (which may exit while the
        // queue lives): tools that remove segments of dead creators (`clean_stale`, test
        // harnesses) must judge the ring by the creator of the queue.
        //
        // SAFETY: fresh, unpublished segment (no other process reaches it); its header starts the
        // mapping, RING_DATA bytes before the data; `creator_pid` is a 4-aligned u32 field of it.
        unsafe {
            let base = ring.raw_data().as_ptr().sub(RING_DATA);
            base.add(offset_of!(Header, creator_pid)).cast::<u32>().write(creator);
        }
        // SAFETY: as above; the control block lies inside the mapping at offset 128.
        let info = unsafe { &mut (*ring.ctrl.as_ptr()).info.0 };
        info.tag = RING_TAG;
        info.capacity = cap;
        info.index = index;
        info.nonce = self.ctrl().info.0.nonce;
        ring._seg.publish();
        Ok(ring)
    }

    /// Maps ring `index` by its name, checking that it is that ring of this queue.
    fn open_ring(&self, index: u64) -> Result<Ring> {
        let loc = Locator::Named(self.ring_name(index));
        let seg = Segment::open_typed(&loc, None, Kind::MessageQueue, &TypeDesc::of::<u8>())?;
        let name = self.ring_name(index);
        let corrupt = |reason: &str| Error::CorruptHeader {
            what: format!("message queue ring {name}"),
            reason: reason.to_string(),
        };
        if seg.header().data_offset != RING_DATA as u64 || seg.len() == 0 {
            return Err(corrupt("not a ring of an unbounded message queue"));
        }
        let ring = Ring::from_segment(seg, index);
        let info = &ring.ctrl().info.0;
        if info.tag != RING_TAG
            || info.capacity != ring.cap
            || info.index != index
            || info.nonce != self.ctrl().info.0.nonce
        {
            return Err(corrupt("the ring's control block is damaged or of another queue"));
        }
        Ok(ring)
    }

    /// The mapped ring `index` (mapping it if need be) from `rings`, after dropping the
    /// mappings of every ring but the chain's ends `head` and `tail` (the only ones a put or a
    /// get uses), so that a process maps at most two rings however long the chain grows.
    fn ring_at<'a>(
        rings: &'a mut Vec<Ring>,
        (head, tail): (u64, u64),
        index: u64,
        this: &Inner,
    ) -> Result<&'a Ring> {
        rings.retain(|r| r.index == head || r.index == tail);
        let at = match rings.iter().position(|r| r.index == index) {
            Some(at) => at,
            None => {
                rings.push(this.open_ring(index)?);
                rings.len() - 1
            }
        };
        Ok(&rings[at])
    }

    /// The next ring's size: twice the tail's up to [`MAX_RING`], and at least one frame of
    /// `need` bytes (rounded up to a page).
    fn next_ring_size(tail_cap: u64, need: u64) -> u64 {
        let doubled = tail_cap.saturating_mul(2).clamp(FIRST_RING, MAX_RING);
        doubled.max(need.next_multiple_of(4096))
    }

    /// One put, under the lock: in the tail ring if the frame fits, else in a new ring linked
    /// after it. Waits for the lock until `lock_limit`'s deadline.
    /// Joinable chains: one more unfinished item. Called under the lock by the put that stored
    /// it, so no get (which takes the lock) can take the item before it is counted.
    fn count_unfinished(&self) {
        if self.is_joinable() {
            self.ctrl().chain.0.unfinished.fetch_add(1, Ordering::Release);
        }
    }

    fn try_put<E>(
        &self,
        tag: u64,
        bytes: &[u8],
        lock_limit: Option<(Instant, E)>,
    ) -> std::result::Result<(), E>
    where
        E: From<Closed> + From<BadFrame> + From<GrowFailed>,
    {
        if self.closed() {
            return Err(Closed.into());
        }
        let g = self.lock(lock_limit)?;
        let chain = &self.ctrl().chain.0;
        let (head, tail) = (chain.head.load(Ordering::Relaxed), chain.tail.load(Ordering::Relaxed));
        let need = (FRAME_HEADER + bytes.len()) as u64;
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        let tail_cap = if tail == 0 {
            // No ring yet (rings are numbered from 1): the first put makes ring 1.
            None
        } else {
            let ring = Self::ring_at(&mut rings, (head, tail), tail, self).map_err(GrowFailed)?;
            if ring.room() >= need {
                ring.write(tag, bytes)?;
                self.count_unfinished();
                chain.count.fetch_add(1, Ordering::Relaxed);
                drop(rings);
                drop(g);
                self.ctrl().not_empty.0.notify();
                return Ok(());
            }
            Some(ring.cap)
        };
        if self.orphaned() {
            let what = "message queue (its creating handle was dropped, and its rings' names)";
            return Err(GrowFailed(Error::Closed { what }).into());
        }
        let Some(index) = tail.checked_add(1) else {
            return Err(BadFrame(
                "the chain's tail index is at its end; the queue is corrupt".into(),
            )
            .into());
        };
        let cap = Self::next_ring_size(tail_cap.unwrap_or(0), need);
        let ring = self.create_ring(index, cap).map_err(GrowFailed)?;
        ring.write(tag, bytes)?;
        chain.bytes.fetch_add(cap, Ordering::Relaxed);
        if tail == 0 {
            // Head first: dying between the two stores leaves "no ring yet" (tail 0), which the
            // next put repairs by making ring 1 again; the other order would leave a head (0)
            // with no ring before a tail.
            chain.head.store(index, Ordering::Release);
        }
        chain.tail.store(index, Ordering::Release); // the commit: the ring is in the chain
        self.count_unfinished();
        chain.count.fetch_add(1, Ordering::Relaxed);
        rings.push(ring);
        drop(rings);
        drop(g);
        self.ctrl().not_empty.0.notify();
        Ok(())
    }

    /// One get, under the lock: the oldest frame `want` accepts, walking past drained rings
    /// (removing their names); `Ok(None)` when empty.
    fn try_get<E>(
        &self,
        want: Want,
        lock_limit: Option<(Instant, E)>,
    ) -> std::result::Result<Option<Vec<u8>>, E>
    where
        E: From<Closed> + From<BadFrame>,
    {
        let g = self.lock(lock_limit)?;
        let chain = &self.ctrl().chain.0;
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..MAX_HOPS {
            let (head, tail) =
                (chain.head.load(Ordering::Relaxed), chain.tail.load(Ordering::Relaxed));
            if tail == 0 {
                break; // no ring yet
            }
            let ring = match Self::ring_at(&mut rings, (head, tail), head, self) {
                Ok(ring) => ring,
                // A getter that removed this drained ring's name died before moving the head on.
                Err(Error::NotFound { .. })
                    if head < tail && chain.removing.load(Ordering::Relaxed) == head + 1 =>
                {
                    chain.head.store(head + 1, Ordering::Release);
                    chain.removing.store(0, Ordering::Relaxed);
                    continue;
                }
                Err(Error::NotFound { .. }) if self.orphaned() => return Err(Closed.into()),
                Err(e) => {
                    return Err(BadFrame(format!("cannot map the queue's ring {head}: {e}")).into());
                }
            };
            let c = ring.ctrl();
            let (h, t) = (c.head.0.load(Ordering::Relaxed), c.tail.load(Ordering::Relaxed));
            if let Some(frame) = decode_frame(&ring.raw, h, t, self.max, want)? {
                c.head.0.store(frame.next, Ordering::Release); // the commit
                let _ = chain
                    .count
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                return Ok(Some(frame.payload));
            }
            if head >= tail {
                break;
            }
            // Drained, and a newer ring exists: nobody writes here any more. Remove the name
            // first, then move the head: dying in between leaves a head whose ring is gone and
            // `removing` saying so, which the next getter skips (above). A ring gone without
            // that (removed by another program) is an error, not a silent loss.
            let cap = ring.cap;
            chain.removing.store(head + 1, Ordering::Relaxed);
            let _ = crate::segment::unlink(&self.ring_name(head));
            let _ = chain
                .bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(cap));
            chain.head.store(head + 1, Ordering::Release);
            chain.removing.store(0, Ordering::Relaxed);
        }
        drop(rings);
        drop(g);
        if self.closed() { Err(Closed.into()) } else { Ok(None) }
    }

    /// Puts a frame: never waits for room, only for the lock (as `limit` says).
    pub(crate) fn put<E>(
        &self,
        tag: u64,
        bytes: &[u8],
        limit: Limit<E>,
    ) -> std::result::Result<(), E>
    where
        E: From<Closed> + From<BadFrame> + From<TooLarge> + From<GrowFailed>,
    {
        TooLarge::check(bytes, self.max)?;
        self.register(true);
        self.try_put(tag, bytes, lock_deadline(limit))
    }

    /// Puts a frame, waiting at most one sleep slice for the lock.
    pub(crate) fn put_nowait(
        &self,
        tag: u64,
        bytes: &[u8],
    ) -> std::result::Result<(), MessageTryPutError> {
        self.put_soon(tag, bytes, MessageTryPutError::Timeout { after: SLICE })
    }

    /// Puts a frame, waiting at most one sleep slice for the lock; then `timed_out`.
    pub(crate) fn put_soon<E>(
        &self,
        tag: u64,
        bytes: &[u8],
        timed_out: E,
    ) -> std::result::Result<(), E>
    where
        E: From<Closed> + From<BadFrame> + From<TooLarge> + From<GrowFailed>,
    {
        self.put(tag, bytes, Some((SLICE, timed_out)))
    }

    /// Takes the oldest frame `want` accepts, waiting for one (and for the lock) as `limit` says.
    pub(crate) fn get<E>(&self, want: Want, limit: Limit<E>) -> std::result::Result<Vec<u8>, E>
    where
        E: From<Closed> + From<PeersGone> + From<BadFrame> + Clone,
    {
        self.register(false);
        let lock_limit = lock_deadline(limit.clone());
        wait_for(
            &self.ctrl().not_empty.0,
            limit,
            || self.try_get(want, lock_limit.clone()),
            || self.ctrl().producers.check_gone(),
        )
    }

    /// Takes the oldest frame if there is one now, waiting at most one sleep slice for the lock.
    pub(crate) fn get_nowait(
        &self,
        want: Want,
    ) -> std::result::Result<Vec<u8>, MessageTryGetError> {
        self.get_soon(want, MessageTryGetError::Timeout { after: SLICE })?
            .ok_or(MessageTryGetError::Empty)
    }

    /// Takes the oldest frame if there is one now (`None` if not), waiting at most one sleep
    /// slice for the lock; then `timed_out`.
    pub(crate) fn get_soon<E>(
        &self,
        want: Want,
        timed_out: E,
    ) -> std::result::Result<Option<Vec<u8>>, E>
    where
        E: From<Closed> + From<BadFrame>,
    {
        self.register(false);
        self.try_get(want, lock_deadline(Some((SLICE, timed_out))))
    }
}

/// The tag at the start of an opened queue segment's control block (offset 128), which says
/// which flavour's layout follows ([`TAG`]: this one); 0 when the segment is too short to have
/// one.
pub(crate) fn control_tag(seg: &Segment) -> u64 {
    let off = seg.header().data_offset as usize;
    if off < HEADER_SIZE + 8 {
        return 0;
    }
    let base = seg.data_ptr().as_ptr().wrapping_sub(off);
    // Any bytes are a valid u64, read atomically since another process may write them.
    // SAFETY: `base` is the mapping's start (data_offset was bounded by check_shape); bytes
    // 128..136 lie before data_offset inside it, 8-aligned in the page-aligned mapping.
    unsafe { (*base.add(HEADER_SIZE).cast::<AtomicU64>()).load(Ordering::Acquire) }
}

impl Drop for Inner {
    /// The creating handle, in the creating process, removes the names of every ring still in
    /// the chain (and of one past it, which a grower that died may have left unlinked), and marks
    /// the queue orphaned: other processes keep the rings they mapped, but no ring can be added
    /// or opened by name any more.
    fn drop(&mut self) {
        if self.creator_pid != Some(proc::getpid()) {
            return;
        }
        let c = self.ctrl();
        c.info.0.orphaned.store(1, Ordering::SeqCst);
        // The lock keeps a grower from linking a ring after we read the tail. A holder that is
        // alive but stuck does not keep the names for ever: after a second they go anyway.
        let deadline = lock_deadline(Some((Duration::from_secs(1), ())));
        let g = self.lock(deadline).ok();
        let (head, tail) =
            (c.chain.0.head.load(Ordering::Relaxed), c.chain.0.tail.load(Ordering::Relaxed));
        // Bounded however the indices were scribbled over.
        for index in head..=tail.saturating_add(1).min(head.saturating_add(1 << 16)) {
            let _ = crate::segment::unlink(&self.ring_name(index));
        }
        c.chain.0.bytes.store(0, Ordering::Relaxed);
        drop(g);
        c.not_empty.0.notify_all();
        c.chain.0.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessageQueue;
    use crate::queue::{MessageGetError, MessagePutError, MessageTryGetError};

    fn ring_exists(q: &Inner, index: u64) -> bool {
        std::path::Path::new(&format!("/dev/shm/{}", q.ring_name(index))).exists()
    }

    fn unbounded(q: &MessageQueue) -> &Inner {
        match &q.flavor {
            super::super::message::Flavor::Unbounded(i) => i,
            _ => panic!("a bounded queue"),
        }
    }

    #[test]
    fn grows_past_several_rings_in_order_and_removes_drained_ones() {
        let q = MessageQueue::new().unwrap();
        let inner = unbounded(&q);
        assert_eq!((inner.ring_bytes(), inner.rings()), (0, 0), "no ring before the first put");
        let msg = vec![7u8; 1000];
        // 64 KiB + 128 KiB + 256 KiB + 512 KiB: at least four rings.
        for i in 0..1000u32 {
            q.put(&(i, &msg)).unwrap();
        }
        assert!(inner.rings() >= 4, "{} rings", inner.rings());
        assert!(inner.rings.lock().unwrap().len() <= 3, "a putter maps only the chain's ends");
        assert!((1..=inner.rings()).all(|i| ring_exists(inner, i)));
        assert_eq!(q.qsize(), 1000);
        for i in 0..1000u32 {
            let (j, m): (u32, Vec<u8>) = q.get().unwrap();
            assert_eq!((j, m.len()), (i, 1000));
        }
        assert!(q.is_empty());
        assert!(matches!(q.get_nowait::<u8>(), Err(MessageTryGetError::Empty)));
        // Drained rings are gone; the newest stays for the next put.
        let last = inner.ctrl().chain.0.tail.load(Ordering::Relaxed);
        assert!((1..last).all(|i| !ring_exists(inner, i)));
        assert!(ring_exists(inner, last));
        assert_eq!(inner.rings(), 1);
        drop(q);
    }

    #[test]
    fn the_creating_handle_removes_every_ring_name_when_it_drops() {
        let q = MessageQueue::new().unwrap();
        for i in 0..100u32 {
            q.put(&vec![i as u8; 4000]).unwrap();
        }
        let inner = unbounded(&q);
        let names: Vec<String> = (1..=inner.rings()).map(|i| inner.ring_name(i)).collect();
        assert!(names.len() >= 3);
        let other = MessageQueue::open_handle(&q.handle()).unwrap();
        assert_eq!(other.get::<Vec<u8>>().unwrap(), vec![0u8; 4000]);
        drop(other); // an opener never removes names
        assert!(names.iter().all(|n| std::path::Path::new(&format!("/dev/shm/{n}")).exists()));
        drop(q);
        assert!(names.iter().all(|n| !std::path::Path::new(&format!("/dev/shm/{n}")).exists()));
    }

    #[test]
    fn a_large_message_gets_a_ring_of_its_own_and_the_limit_holds() {
        let q = MessageQueue::new().unwrap();
        q.put(&1u8).unwrap();
        let big = vec![3u8; 1 << 20];
        q.put_bytes(&big).unwrap();
        q.put(&2u8).unwrap();
        assert_eq!(q.get::<u8>().unwrap(), 1);
        assert_eq!(q.get_bytes().unwrap(), big);
        assert_eq!(q.get::<u8>().unwrap(), 2);
        assert_eq!(q.max_message(), DEFAULT_MAX_MESSAGE);
        assert_eq!(q.capacity(), usize::MAX);
        let e = Inner::next_ring_size(MAX_RING, 40 << 20);
        assert_eq!(e, 40 << 20);
        assert_eq!(Inner::next_ring_size(0, 10), FIRST_RING);
        assert_eq!(Inner::next_ring_size(FIRST_RING, 10), 2 * FIRST_RING);
        assert_eq!(Inner::next_ring_size(MAX_RING, 10), MAX_RING);
        drop(big);
        let q = MessageQueue {
            flavor: super::super::message::Flavor::Unbounded(std::sync::Arc::new(
                Inner::create(8, &ShmOptions::new()).unwrap(),
            )),
        };
        assert!(matches!(q.put_bytes(&[0; 9]), Err(MessagePutError::TooLarge { len: 9, max: 8 })));
    }

    #[test]
    fn typed_gets_close_and_named_anchors_behave_as_the_bounded_queue() {
        let q = MessageQueue::new_with(&ShmOptions::new().generated_name()).unwrap();
        let again = MessageQueue::open(q.name().unwrap()).unwrap();
        again.put(&(1u8, 2u8)).unwrap();
        assert!(matches!(q.get::<String>(), Err(MessageGetError::BadMessage { .. })));
        assert_eq!(q.get::<(u8, u8)>().unwrap(), (1, 2));
        q.put("left").unwrap();
        again.close();
        assert!(matches!(q.put(&1u8), Err(MessagePutError::Closed)));
        assert_eq!(q.get::<String>().unwrap(), "left", "puts before close are delivered");
        assert!(matches!(q.get::<String>(), Err(MessageGetError::Closed)));
        assert!(format!("{q:?}").contains("rings"));
    }

    #[test]
    fn a_ring_name_left_by_a_grower_that_died_is_replaced_and_a_missing_head_skipped() {
        let q = MessageQueue::new().unwrap();
        let inner = unbounded(&q);
        q.put(&0u32).unwrap();
        // A grower that died between creating ring 2 and linking it left its name behind.
        let orphan = inner.create_ring(2, FIRST_RING).unwrap();
        drop(orphan);
        for i in 1..40_000u32 {
            q.put(&i).unwrap();
        }
        assert!(inner.rings() >= 2);
        // A ring removed by another program is an error, not a silent skip.
        let _ = crate::segment::unlink(&inner.ring_name(1));
        inner.rings.lock().unwrap().clear();
        assert!(matches!(q.get::<u32>(), Err(MessageGetError::BadMessage { .. })));
        // A getter that removed drained ring 1's name died before moving the head on.
        inner.ctrl().chain.0.removing.store(2, Ordering::Relaxed);
        let first: u32 = q.get().unwrap();
        assert!(first > 0, "ring 1's items went with it; the rest arrive in order");
        let mut prev = first;
        while let Ok(i) = q.get_nowait::<u32>() {
            assert_eq!(i, prev + 1);
            prev = i;
        }
        assert_eq!(prev, 39_999);
    }

    #[test]
    fn a_ring_counts_as_the_queue_creators_whoever_made_it() {
        let q = MessageQueue::new().unwrap();
        let inner = unbounded(&q);
        // As if another process created the queue and this one grows it.
        let parent = proc::getppid();
        // SAFETY: a test-only write to a plain field no other thread or process uses meanwhile.
        unsafe { (*inner.ctrl.as_ptr()).info.0.creator_pid = u64::from(parent) };
        q.put(&1u8).unwrap();
        let info = crate::segment::inspect(&inner.ring_name(1)).unwrap();
        assert_eq!(info.creator_pid, parent, "judged by the grower, a ring dies with it");
        assert!(inner.ring_name(1).starts_with(&format!("shmpool-{parent}-")));
    }

    #[test]
    fn a_scribbled_chain_gives_typed_errors_not_panics_or_hangs() {
        use crate::queue::{MessageTryGetError, MessageTryPutError};
        let big = [0, 1, 2, 3, 1 << 20, u64::MAX - 1, u64::MAX];
        for (i, &head) in big.iter().enumerate() {
            for &tail in &big[i % 3..] {
                let q = MessageQueue::new().unwrap();
                q.put(&1u8).unwrap();
                let inner = unbounded(&q);
                let chain = &inner.ctrl().chain.0;
                chain.head.store(head, Ordering::Relaxed);
                chain.tail.store(tail, Ordering::Relaxed);
                chain.removing.store(head.wrapping_add(1), Ordering::Relaxed);
                chain.count.store(tail, Ordering::Relaxed);
                inner.rings.lock().unwrap().clear();
                let t0 = Instant::now();
                match q.get_nowait::<u8>() {
                    Ok(v) => assert_eq!(v, 1),
                    Err(MessageTryGetError::Empty | MessageTryGetError::BadMessage { .. }) => {}
                    Err(e) => panic!("get ({head}, {tail}): {e}"),
                }
                match q.put_nowait(&2u8) {
                    Ok(())
                    | Err(
                        MessageTryPutError::CannotGrow { .. }
                        | MessageTryPutError::BadMessage { .. },
                    ) => {}
                    Err(e) => panic!("put ({head}, {tail}): {e}"),
                }
                let _ = (q.qsize(), q.is_empty(), format!("{q:?}"));
                // Put the chain back, so that the drop finds ring 1 (a scribbled chain leaks).
                chain.head.store(1, Ordering::Relaxed);
                chain.tail.store(tail.clamp(1, 2), Ordering::Relaxed);
                drop(q);
                assert!(t0.elapsed() < Duration::from_secs(5), "({head}, {tail}) took long");
            }
        }
    }

    #[test]
    fn a_full_dev_shm_is_out_of_space_with_the_queues_fix() {
        let full = Error::OutOfSpace {
            place: "/dev/shm",
            requested: 32 << 20,
            available: 1 << 20,
            fix: "an array's fix",
        };
        let e = MessagePutError::from(GrowFailed(full));
        assert!(
            matches!(e, MessagePutError::OutOfSpace { requested, .. } if requested == 32 << 20)
        );
        let text = e.to_string();
        assert!(text.contains("/dev/shm has 1 MiB free, 32 MiB requested"), "{text}");
        assert!(text.contains("MessageQueue::bounded"), "{text}");
        assert!(matches!(Error::from(e), Error::OutOfSpace { .. }));
    }
}
