//! `MessageQueue`: variable-size serialized messages in shared memory. The front end holds one
//! of two flavours: the bounded byte ring of this file, or the unbounded chain of rings of
//! `unbounded.rs` (the default), which share the frame format (`codec.rs`) and the ring lock
//! (`lock.rs`).
//!
//! Frames are a little-endian `u32` payload length, a little-endian `u64` type tag, then the
//! payload (postcard-encoded for the serde API, as given for raw bytes), written contiguously
//! modulo the ring size. The tag is a hash of the message's type name (or [`RAW`] for
//! `put_bytes`), checked by `get::<M>` before anything is consumed, so a message is never decoded
//! as a type it was not put as. A small lock whose word holds the
//! holder's token (pid and start time, see `sys::peer`) guards the ring; each critical section
//! commits with one final store (`tail` for a put, `head` for a get), so a holder that died
//! mid-copy left the ring consistent and the next locker may take the lock over. Every length
//! read from shared memory is bounded before use ([`decode_frame`], the one reader of frames), so
//! a corrupt segment is an error, never an out-of-bounds copy or an allocation over
//! `max_message`. Details: `README.md` in this folder.

use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{
    FRAME_HEADER, RAW, RawRing, RingRead, Want, decode, decode_frame, encode, frame_header,
    type_tag,
};
use super::error::{
    BadFrame, Closed, Limit, MessageGetError, MessageGetTimeoutError, MessagePutError,
    MessagePutTimeoutError, MessageTryGetError, MessageTryPutError, PeersGone, TooLarge,
};
use super::lock::{Guard, RingLock};
use super::peers::PeerTable;
use super::unbounded;
use super::wait::{SLICE, WaitCell, lock_deadline, wait_for};
use crate::error::{Error, Result, human_bytes};
use crate::segment::Segment;
use crate::segment::handle::{Locator, SegmentHandle};
use crate::segment::header::{HEADER_SIZE, Kind, Layout, TypeDesc};
use crate::segment::options::ShmOptions;

/// Identifies a message queue control block and its layout version: `b"SPMSGQ03"` (02: the
/// lock holds a full token and sleepers use a `WaitCell`; 03: every frame carries a type tag).
const TAG: u64 = u64::from_le_bytes(*b"SPMSGQ03");

#[repr(C, align(64))]
struct Line<T>(T);

#[repr(C)]
struct Info {
    tag: u64,
    capacity: u64,
    max_message: u64,
    closed: AtomicU32,
}

#[repr(C)]
struct Ring {
    /// Byte position of the oldest frame (monotonic; the offset is `head % capacity`).
    head: AtomicU64,
    /// Byte position after the newest frame.
    tail: AtomicU64,
    /// Frames held: statistics for `qsize`, not used for correctness.
    count: AtomicU64,
}

#[repr(C)]
struct Control {
    info: Line<Info>,
    lock: Line<RingLock>,
    ring: Line<Ring>,
    not_empty: Line<WaitCell>,
    not_full: Line<WaitCell>,
    producers: PeerTable,
    consumers: PeerTable,
}

const DATA_OFFSET: usize = HEADER_SIZE + std::mem::size_of::<Control>();
// The layout `README.md` (beside this file) and docs/architecture.md ("Messaging") describe.
const _: () = assert!(DATA_OFFSET == 960);

pub(crate) struct Inner {
    seg: Segment,
    ctrl: NonNull<Control>,
    data: NonNull<u8>,
    cap: u64,
    max: u64,
    producer_as: AtomicU64,
    consumer_as: AtomicU64,
}

// SAFETY: the control block is used only through atomics; ring bytes are read and written only
// while holding the ring lock (one thread of one process at a time).
unsafe impl Send for Inner {}
// SAFETY: as above.
unsafe impl Sync for Inner {}

impl Inner {
    fn create(capacity: usize, max_message: usize, opts: &ShmOptions) -> Result<Inner> {
        let bad =
            |reason: String| Err(Error::InvalidArgument { what: "message queue size", reason });
        if max_message == 0 || max_message > u32::MAX as usize {
            return bad(format!("the largest message must be 1 byte to 4 GiB, not {max_message}"));
        }
        match capacity.checked_sub(FRAME_HEADER) {
            Some(room) if room >= max_message => {}
            _ => {
                return bad(format!(
                    "a ring of {} cannot hold one message of {} plus its {FRAME_HEADER}-byte frame header; give at least {} bytes",
                    human_bytes(capacity as u64),
                    human_bytes(max_message as u64),
                    max_message + FRAME_HEADER
                ));
            }
        }
        let total = DATA_OFFSET
            .checked_add(capacity)
            .filter(|t| *t <= isize::MAX as usize)
            .ok_or(Error::TooLarge { len: capacity, elem_size: 1 })?;
        let layout = Layout {
            kind: Kind::MessageQueue,
            ty: TypeDesc::of::<u8>(),
            len: capacity as u64,
            data_offset: DATA_OFFSET as u64,
            segment_bytes: total as u64,
        };
        let seg = Segment::create(opts, &layout)?;
        let inner = Self::from_segment(seg, max_message as u64);
        // SAFETY: the segment is fresh and unpublished, so nothing else reaches the control block,
        // which lies inside the mapping at offset 128.
        let info = unsafe { &mut (*inner.ctrl.as_ptr()).info.0 };
        info.tag = TAG;
        info.capacity = capacity as u64;
        info.max_message = max_message as u64;
        inner.seg.publish();
        Ok(inner)
    }

    /// The bounded queue in an opened segment whose control block has [`TAG`].
    fn open(seg: Segment, loc: &Locator) -> Result<Inner> {
        let corrupt = |reason: &str| Error::CorruptHeader {
            what: match loc {
                Locator::Named(n) => format!("message queue {n}"),
                Locator::Anonymous { pid, fd } => format!("message queue {pid}/{fd}"),
            },
            reason: reason.to_string(),
        };
        if seg.header().data_offset != DATA_OFFSET as u64 {
            return Err(corrupt("the data offset is not the message queue layout's"));
        }
        let mut inner = Self::from_segment(seg, 0);
        let info = &inner.ctrl().info.0;
        if info.tag != TAG || info.capacity != inner.cap {
            return Err(corrupt(
                "the message queue control block is damaged or from another version",
            ));
        }
        // Saturating: a crafted max_message near u64::MAX must not wrap into a small number.
        if info.max_message == 0
            || info.max_message > u32::MAX as u64
            || info.max_message > inner.cap.saturating_sub(FRAME_HEADER as u64)
        {
            return Err(corrupt("the largest message size does not fit the ring"));
        }
        inner.max = info.max_message;
        Ok(inner)
    }

    fn from_segment(seg: Segment, max: u64) -> Inner {
        let data = seg.data_ptr();
        // SAFETY: data_ptr is the mapping start + DATA_OFFSET (checked or written by us), so the
        // control block at offset 128 lies inside the mapping, 64-aligned like the mapping.
        let ctrl =
            unsafe { NonNull::new_unchecked(data.as_ptr().sub(DATA_OFFSET - HEADER_SIZE).cast()) };
        let cap = seg.len() as u64;
        Inner {
            seg,
            ctrl,
            data,
            cap,
            max,
            producer_as: AtomicU64::new(0),
            consumer_as: AtomicU64::new(0),
        }
    }

    fn ctrl(&self) -> &Control {
        // SAFETY: inside the mapping `self.seg` keeps alive; initialised before publication
        // (all-zero atomics are valid) and only mutated through atomics afterwards.
        unsafe { self.ctrl.as_ref() }
    }

    fn closed(&self) -> bool {
        self.ctrl().info.0.closed.load(Ordering::Acquire) != 0
    }

    fn max(&self) -> u64 {
        self.max
    }

    fn segment(&self) -> &Segment {
        &self.seg
    }

    fn close(&self) {
        let c = self.ctrl();
        c.info.0.closed.store(1, Ordering::SeqCst);
        c.not_empty.0.notify_all();
        c.not_full.0.notify_all();
    }

    fn qsize(&self) -> usize {
        // Bounded: the count lives in shared memory, and no ring holds more frames than this.
        let most = self.cap / FRAME_HEADER as u64;
        self.ctrl().ring.0.count.load(Ordering::Relaxed).min(most) as usize
    }

    fn is_empty(&self) -> bool {
        let ring = &self.ctrl().ring.0;
        ring.head.load(Ordering::Acquire) == ring.tail.load(Ordering::Acquire)
    }

    fn register(&self, producer: bool) {
        if producer {
            self.ctrl().producers.register_cached(&self.producer_as);
        } else {
            self.ctrl().consumers.register_cached(&self.consumer_as);
        }
    }

    /// Takes the ring lock (see [`RingLock::lock`]).
    fn lock<E>(&self, limit: Option<(Instant, E)>) -> std::result::Result<Guard<'_>, E> {
        self.ctrl().lock.0.lock(limit)
    }

    /// The ring's bytes.
    fn ring(&self) -> RawRing {
        // SAFETY: `data` is the mapping's ring of `cap` bytes (`from_segment`), alive as long as
        // `self`; every copy is made under the ring lock (every put and get holds it).
        unsafe { RawRing::new(self.data, self.cap) }
    }

    fn copy_in(&self, pos: u64, bytes: &[u8]) -> std::result::Result<(), BadFrame> {
        self.ring().copy_in(pos, bytes)
    }

    /// One attempt to put: `Ok(false)` when the ring has no room. Waits for the ring lock until
    /// `lock_limit`'s deadline, then fails with its error (`None`: for as long as it takes).
    fn try_put<E: From<Closed> + From<BadFrame>>(
        &self,
        tag: u64,
        bytes: &[u8],
        lock_limit: Option<(Instant, E)>,
    ) -> std::result::Result<bool, E> {
        if self.closed() {
            return Err(Closed.into());
        }
        let g = self.lock(lock_limit)?;
        let ring = &self.ctrl().ring.0;
        let (head, tail) = (ring.head.load(Ordering::Relaxed), ring.tail.load(Ordering::Relaxed));
        let need = (FRAME_HEADER + bytes.len()) as u64;
        // Saturating: a corrupt ring (tail - head > cap) reads as full, not as room.
        if self.cap.saturating_sub(tail.wrapping_sub(head)) < need {
            return Ok(false);
        }
        // `TooLarge::check` made sure `bytes.len() <= max <= u32::MAX`.
        self.copy_in(tail, &frame_header(bytes.len() as u32, tag))?;
        self.copy_in(tail.wrapping_add(FRAME_HEADER as u64), bytes)?;
        ring.tail.store(tail.wrapping_add(need), Ordering::Release); // the commit
        ring.count.fetch_add(1, Ordering::Relaxed);
        drop(g);
        self.ctrl().not_empty.0.notify();
        Ok(true)
    }

    /// One attempt to get: `Ok(None)` when the ring is empty (and the queue not closed). Waits
    /// for the ring lock as [`try_put`](Inner::try_put) does.
    fn try_get<E: From<Closed> + From<BadFrame>>(
        &self,
        want: Want,
        lock_limit: Option<(Instant, E)>,
    ) -> std::result::Result<Option<Vec<u8>>, E> {
        let g = self.lock(lock_limit)?;
        let ring = &self.ctrl().ring.0;
        let (head, tail) = (ring.head.load(Ordering::Relaxed), ring.tail.load(Ordering::Relaxed));
        // Everything read from the ring is checked there; an error consumes nothing.
        let Some(frame) = decode_frame(self, head, tail, self.max, want)? else {
            drop(g);
            return if self.closed() { Err(Closed.into()) } else { Ok(None) };
        };
        ring.head.store(frame.next, Ordering::Release); // the commit
        let _ = ring.count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_sub(1));
        drop(g);
        // A freed frame may make room for a putter waiting for more than one frame's worth:
        // wake them all, each re-checks.
        self.ctrl().not_full.0.notify();
        Ok(Some(frame.payload))
    }

    /// Puts a frame, waiting for room (and for the ring lock) as `limit` says.
    fn put<E>(&self, tag: u64, bytes: &[u8], limit: Limit<E>) -> std::result::Result<(), E>
    where
        E: From<Closed> + From<PeersGone> + From<BadFrame> + From<TooLarge> + Clone,
    {
        TooLarge::check(bytes, self.max)?;
        self.register(true);
        let lock_limit = lock_deadline(limit.clone());
        wait_for(
            &self.ctrl().not_full.0,
            limit,
            || Ok(self.try_put(tag, bytes, lock_limit.clone())?.then_some(())),
            || self.ctrl().consumers.check_gone(),
        )
    }

    /// Puts a frame if there is room now, waiting at most one sleep slice for the ring lock.
    fn put_nowait(&self, tag: u64, bytes: &[u8]) -> std::result::Result<(), MessageTryPutError> {
        TooLarge::check(bytes, self.max)?;
        self.register(true);
        let lock_limit = lock_deadline(Some((SLICE, MessageTryPutError::Timeout { after: SLICE })));
        if self.try_put(tag, bytes, lock_limit)? {
            Ok(())
        } else {
            Err(MessageTryPutError::Full { capacity: self.cap })
        }
    }

    /// Takes the oldest frame `want` accepts, waiting for one (and for the ring lock) as `limit`
    /// says.
    fn get<E>(&self, want: Want, limit: Limit<E>) -> std::result::Result<Vec<u8>, E>
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

    /// Takes the oldest frame if there is one now, waiting at most one sleep slice for the ring
    /// lock.
    fn get_nowait(&self, want: Want) -> std::result::Result<Vec<u8>, MessageTryGetError> {
        self.register(false);
        let lock_limit = lock_deadline(Some((SLICE, MessageTryGetError::Timeout { after: SLICE })));
        self.try_get(want, lock_limit)?.ok_or(MessageTryGetError::Empty)
    }
}

impl RingRead for Inner {
    fn ring_size(&self) -> u64 {
        self.cap
    }

    fn read_at(&self, pos: u64, out: &mut [u8]) -> std::result::Result<(), BadFrame> {
        self.ring().read_at(pos, out)
    }
}

/// A multi-producer multi-consumer queue of variable-size messages in shared memory, Python's
/// `multiprocessing.Queue`: anything serde can serialize (encoded with postcard), or raw bytes.
///
/// [`MessageQueue::new`] makes an unbounded queue, as Python's `Queue()`: a put never waits for
/// room, so Python's "join the producers, then drain the queue" works; the queue grows by
/// chaining rings in shared memory and gives them back as they drain, and a put that finds
/// `/dev/shm` full fails with [`MessagePutError::OutOfSpace`]. [`MessageQueue::bounded`] makes
/// one byte ring of `capacity` bytes whose puts wait while it is full (Python's
/// `Queue(maxsize)`, counted in bytes). Either way each message takes its encoded size plus 12
/// bytes (its length and a type tag), and messages larger than `max_message` (fixed at
/// creation) are refused with [`MessagePutError::TooLarge`] on put, so a get never allocates
/// more than `max_message` bytes. Waits, close and dead peers behave as for
/// [`Queue`](crate::Queue).
///
/// Every message carries a tag of the type it was put as (a 64-bit hash of its type name), and
/// [`get::<M>`](MessageQueue::get) takes only a message put as `M`: anything else is a
/// [`BadMessage`](MessageGetError::BadMessage) that names both types and leaves the message
/// queued. Borrowed and owned
/// forms that serde encodes alike count as one type: put `&str`, get `String`; put `&[T]` or
/// `Vec<T>`, get `Vec<T>`; `&T`, `Box<T>`, `Rc<T>`, `Arc<T>` and `Cow<T>` count as `T`, also
/// inside tuples, arrays and generic arguments. Other pairs serde would accept (a `Vec<T>`
/// and a `VecDeque<T>`, two structs with the same fields) do not: get the type you put. Type
/// names are compared as this build of the program spells them, so both ends should be the same
/// program (as with every start method) or built by the same compiler from the same types.
/// Raw bytes ([`put_bytes`](MessageQueue::put_bytes)) have a tag of their own.
///
/// ```
/// use shmpool::MessageQueue;
///
/// let q = MessageQueue::new()?;
/// q.put(&("resize", vec![640u32, 480]))?;
/// let (op, dims): (String, Vec<u32>) = q.get()?;
/// assert_eq!((op.as_str(), dims), ("resize", vec![640, 480]));
///
/// q.put(&(1u8, 2u8))?;
/// assert!(matches!(q.get::<String>(), Err(shmpool::queue::MessageGetError::BadMessage { .. })));
/// assert_eq!(q.get::<(u8, u8)>()?, (1, 2)); // still there
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Clone)]
pub struct MessageQueue {
    pub(crate) flavor: Flavor,
}

/// The two rings a `MessageQueue` can be: one of fixed size, or a chain that grows.
#[derive(Clone)]
pub(crate) enum Flavor {
    Bounded(Arc<Inner>),
    Unbounded(Arc<unbounded::Inner>),
}

/// Runs `$body` with `$i` bound to the queue's flavour, whichever it is.
macro_rules! with_flavor {
    ($q:expr, $i:ident => $body:expr) => {
        match &$q.flavor {
            Flavor::Bounded($i) => $body,
            Flavor::Unbounded($i) => $body,
        }
    };
}

impl MessageQueue {
    /// An anonymous unbounded queue, Python's `multiprocessing.Queue()`: a put never waits for
    /// room (the queue grows by chaining rings in shared memory), and a message may be up to
    /// 256 MiB encoded. A put that cannot grow the queue because `/dev/shm` is full fails with
    /// [`MessagePutError::OutOfSpace`] (never SIGBUS). For a queue whose puts wait for room, see
    /// [`bounded`](MessageQueue::bounded).
    ///
    /// ```
    /// let q = shmpool::MessageQueue::new()?;
    /// for i in 0..10_000u32 {
    ///     q.put(&(i, "no consumer yet"))?; // never waits
    /// }
    /// assert_eq!(q.qsize(), 10_000);
    /// assert_eq!(q.get::<(u32, String)>()?.0, 0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new() -> Result<MessageQueue> {
        Self::new_with(&ShmOptions::new())
    }

    /// An unbounded queue whose anchor segment is created as `opts` says (named, so that an
    /// unrelated process can [`open`](MessageQueue::open) it). Its rings are always named
    /// (`shmpool-<pid>-<random>-r<n>`), whatever `opts` says, so that every process reaches
    /// them; this handle removes their names when it drops.
    ///
    /// ```
    /// use shmpool::{MessageQueue, ShmOptions};
    /// let q = MessageQueue::new_with(&ShmOptions::new().generated_name())?;
    /// let again = MessageQueue::open(q.name().unwrap())?;
    /// again.put("hi")?;
    /// assert_eq!(q.get::<String>()?, "hi");
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(opts: &ShmOptions) -> Result<MessageQueue> {
        let inner = unbounded::Inner::create(unbounded::DEFAULT_MAX_MESSAGE, opts)?;
        Ok(MessageQueue { flavor: Flavor::Unbounded(Arc::new(inner)) })
    }

    /// An anonymous bounded queue with a ring of `capacity` bytes, taking messages of at most
    /// `max_message` encoded bytes (`capacity` must be at least `max_message + 12`: every frame
    /// starts with its length and type tag). Its puts wait while the ring is full (Python's
    /// `Queue(maxsize)`, in bytes).
    ///
    /// ```
    /// let q = shmpool::MessageQueue::bounded(1024, 100)?;
    /// assert!(shmpool::MessageQueue::bounded(111, 100).is_err()); // no room for the frame header
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn bounded(capacity: usize, max_message: usize) -> Result<MessageQueue> {
        Self::bounded_with(capacity, max_message, &ShmOptions::new())
    }

    /// A bounded queue created as `opts` says.
    ///
    /// ```
    /// use shmpool::{MessageQueue, ShmOptions};
    /// let q = MessageQueue::bounded_with(1024, 100, &ShmOptions::new().generated_name())?;
    /// let again = MessageQueue::open(q.name().unwrap())?;
    /// again.put("hi")?;
    /// assert_eq!(q.get::<String>()?, "hi");
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn bounded_with(
        capacity: usize,
        max_message: usize,
        opts: &ShmOptions,
    ) -> Result<MessageQueue> {
        let inner = Inner::create(capacity, max_message, opts)?;
        Ok(MessageQueue { flavor: Flavor::Bounded(Arc::new(inner)) })
    }

    /// Opens a named message queue (bounded or unbounded).
    ///
    /// ```
    /// use shmpool::{MessageQueue, ShmOptions};
    /// let q = MessageQueue::bounded_with(64, 8, &ShmOptions::new().generated_name())?;
    /// assert_eq!(MessageQueue::open(q.name().unwrap())?.max_message(), 8);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn open(name: &str) -> Result<MessageQueue> {
        Self::open_at(&Locator::Named(name.to_string()), None)
    }

    /// Opens the message queue a handle refers to.
    ///
    /// ```
    /// let q = shmpool::MessageQueue::new()?;
    /// let other = shmpool::MessageQueue::open_handle(&q.handle())?;
    /// other.put(&7u8)?;
    /// assert_eq!(q.get::<u8>()?, 7);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn open_handle(handle: &SegmentHandle) -> Result<MessageQueue> {
        Self::open_at(&handle.loc, Some(handle.nonce))
    }

    /// The bounded ring, for the tests that reach into it.
    #[cfg(test)]
    fn bounded_inner(&self) -> &Inner {
        match &self.flavor {
            Flavor::Bounded(i) => i,
            Flavor::Unbounded(_) => panic!("an unbounded queue"),
        }
    }

    fn open_at(loc: &Locator, nonce: Option<u64>) -> Result<MessageQueue> {
        let seg = Segment::open_typed(loc, nonce, Kind::MessageQueue, &TypeDesc::of::<u8>())?;
        let flavor = if unbounded::control_tag(&seg) == unbounded::TAG {
            Flavor::Unbounded(Arc::new(unbounded::Inner::open(seg, loc)?))
        } else {
            Flavor::Bounded(Arc::new(Inner::open(seg, loc)?))
        };
        Ok(MessageQueue { flavor })
    }

    /// A handle another process can open with [`open_handle`](MessageQueue::open_handle).
    ///
    /// ```
    /// println!("{}", shmpool::MessageQueue::bounded(64, 8)?.handle());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn handle(&self) -> SegmentHandle {
        with_flavor!(self, i => i.segment().handle())
    }

    /// The segment's name, for named queues.
    ///
    /// ```
    /// assert_eq!(shmpool::MessageQueue::bounded(64, 8)?.name(), None);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        with_flavor!(self, i => i.segment().name())
    }

    /// Serializes `msg` and puts it, waiting while there is no room.
    ///
    /// # Errors
    ///
    /// [`MessagePutError::TooLarge`] when the encoding exceeds `max_message`;
    /// [`MessagePutError::Closed`]; [`MessagePutError::PeerDied`] when the ring is full and every
    /// consumer has exited; [`MessagePutError::BadMessage`] when `msg` cannot be encoded or the
    /// ring is corrupt.
    ///
    /// ```
    /// use shmpool::queue::MessagePutError;
    /// let q = shmpool::MessageQueue::bounded(64, 8)?;
    /// assert!(matches!(q.put(&"a string longer than eight bytes"), Err(MessagePutError::TooLarge { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn put<M: Serialize + ?Sized>(&self, msg: &M) -> std::result::Result<(), MessagePutError> {
        let bytes = encode(msg)?;
        with_flavor!(self, i => i.put(type_tag::<M>(), &bytes, None))
    }

    /// As [`put`](MessageQueue::put), waiting at most `timeout`; then
    /// [`MessagePutTimeoutError::Timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shmpool::MessageQueue::bounded(24, 8)?; // room for one 16-byte frame
    /// q.put_timeout(&[1u8; 4], Duration::from_millis(5))?;
    /// assert!(q.put_timeout(&[1u8; 4], Duration::from_millis(5)).is_err()); // ring full
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn put_timeout<M: Serialize + ?Sized>(
        &self,
        msg: &M,
        timeout: Duration,
    ) -> std::result::Result<(), MessagePutTimeoutError> {
        let timed_out = MessagePutTimeoutError::Timeout { after: timeout };
        let bytes = encode(msg)?;
        with_flavor!(self, i => i.put(type_tag::<M>(), &bytes, Some((timeout, timed_out))))
    }

    /// As [`put`](MessageQueue::put) if there is room now, else [`MessageTryPutError::Full`]
    /// ([`MessageTryPutError::Timeout`] if another process held the ring lock for a whole 50 ms
    /// sleep slice).
    ///
    /// ```
    /// let q = shmpool::MessageQueue::bounded(20, 8)?;
    /// q.put_nowait(&1u64)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn put_nowait<M: Serialize + ?Sized>(
        &self,
        msg: &M,
    ) -> std::result::Result<(), MessageTryPutError> {
        let bytes = encode(msg)?;
        with_flavor!(self, i => i.put_nowait(type_tag::<M>(), &bytes))
    }

    /// Puts raw bytes: a frame of exactly these bytes, tagged as raw bytes (of no type).
    /// [`get_bytes`](MessageQueue::get_bytes) returns them; [`get::<M>`](MessageQueue::get)
    /// refuses them with [`MessageGetError::BadMessage`] and leaves them queued, whatever they
    /// encode (even a postcard encoding of `M`), since nothing says which type they were meant
    /// as. Errors as [`put`](MessageQueue::put)'s.
    ///
    /// ```
    /// let q = shmpool::MessageQueue::bounded(64, 16)?;
    /// q.put_bytes(b"raw")?;
    /// assert!(matches!(q.get::<Vec<u8>>(), Err(shmpool::queue::MessageGetError::BadMessage { .. })));
    /// assert_eq!(q.get_bytes()?, b"raw");
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn put_bytes(&self, bytes: &[u8]) -> std::result::Result<(), MessagePutError> {
        with_flavor!(self, i => i.put(RAW, bytes, None))
    }

    /// Takes the oldest message and deserializes it as `M`, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`MessageGetError::BadMessage`] when the oldest message was put as another type than `M`
    /// or as raw bytes (it stays queued: get it as its type, or take it with
    /// [`get_bytes`](MessageQueue::get_bytes)), when its bytes do not decode as `M` although its
    /// tag says `M` (it is consumed: the sender's `M` differs from ours), or when the queue is
    /// corrupt; [`MessageGetError::Closed`] once closed and empty; [`MessageGetError::PeerDied`]
    /// when empty and every producer has exited.
    ///
    /// ```
    /// let q = shmpool::MessageQueue::bounded(64, 16)?;
    /// q.put(&Some(3i16))?;
    /// assert_eq!(q.get::<Option<i16>>()?, Some(3));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get<M: DeserializeOwned>(&self) -> std::result::Result<M, MessageGetError> {
        let bytes = with_flavor!(self, i => i.get::<MessageGetError>(Want::of::<M>(), None))?;
        Ok(decode(&bytes)?)
    }

    /// As [`get`](MessageQueue::get), waiting at most `timeout`; then
    /// [`MessageGetTimeoutError::Timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shmpool::MessageQueue::bounded(64, 16)?;
    /// assert!(q.get_timeout::<u8>(Duration::from_millis(5)).is_err());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_timeout<M: DeserializeOwned>(
        &self,
        timeout: Duration,
    ) -> std::result::Result<M, MessageGetTimeoutError> {
        let timed_out = MessageGetTimeoutError::Timeout { after: timeout };
        let limit = Some((timeout, timed_out));
        let bytes = with_flavor!(self, i => i.get(Want::of::<M>(), limit))?;
        Ok(decode(&bytes)?)
    }

    /// As [`get`](MessageQueue::get) if a message is there now, else
    /// [`MessageTryGetError::Empty`] ([`MessageTryGetError::Timeout`] if another process held the
    /// ring lock for a whole 50 ms
    /// sleep slice).
    ///
    /// ```
    /// let q = shmpool::MessageQueue::bounded(64, 16)?;
    /// assert!(matches!(q.get_nowait::<u8>(), Err(shmpool::queue::MessageTryGetError::Empty)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_nowait<M: DeserializeOwned>(&self) -> std::result::Result<M, MessageTryGetError> {
        let bytes = with_flavor!(self, i => i.get_nowait(Want::of::<M>()))?;
        Ok(decode(&bytes)?)
    }

    /// Takes the oldest message, whatever its type, as raw bytes (at most `max_message` of them):
    /// what [`put_bytes`](MessageQueue::put_bytes) put, or the postcard encoding of what
    /// [`put`](MessageQueue::put) put. Errors as [`get`](MessageQueue::get)'s, except that a
    /// message of any type is taken.
    ///
    /// ```
    /// let q = shmpool::MessageQueue::bounded(64, 16)?;
    /// q.put(&1u8)?;
    /// assert_eq!(q.get_bytes()?, [1]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_bytes(&self) -> std::result::Result<Vec<u8>, MessageGetError> {
        with_flavor!(self, i => i.get(Want::Any, None))
    }

    /// How many messages the queue holds (a snapshot).
    ///
    /// ```
    /// let q = shmpool::MessageQueue::bounded(64, 16)?;
    /// q.put(&1u8)?;
    /// assert_eq!(q.qsize(), 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn qsize(&self) -> usize {
        with_flavor!(self, i => i.qsize())
    }

    /// Whether the queue holds no message (a snapshot). Python's `Queue.empty()`.
    ///
    /// ```
    /// assert!(shmpool::MessageQueue::bounded(64, 16)?.is_empty());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[doc(alias = "empty")]
    pub fn is_empty(&self) -> bool {
        with_flavor!(self, i => i.is_empty())
    }

    /// The largest encoded message the queue takes, in bytes.
    ///
    /// ```
    /// assert_eq!(shmpool::MessageQueue::bounded(64, 16)?.max_message(), 16);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn max_message(&self) -> usize {
        with_flavor!(self, i => i.max()) as usize
    }

    /// The ring's size in bytes.
    ///
    /// ```
    /// assert_eq!(shmpool::MessageQueue::bounded(64, 16)?.capacity(), 64);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn capacity(&self) -> usize {
        match &self.flavor {
            Flavor::Bounded(i) => i.cap as usize,
            Flavor::Unbounded(_) => usize::MAX,
        }
    }

    /// Closes the queue for every process, as [`Queue::close`](crate::Queue::close) does.
    ///
    /// ```
    /// let q = shmpool::MessageQueue::bounded(64, 16)?;
    /// q.close();
    /// assert!(matches!(q.put(&1u8), Err(shmpool::queue::MessagePutError::Closed)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn close(&self) {
        with_flavor!(self, i => i.close())
    }

    /// Whether the queue was closed (by any process).
    ///
    /// ```
    /// let q = shmpool::MessageQueue::bounded(64, 16)?;
    /// assert!(!q.is_closed());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        with_flavor!(self, i => i.closed())
    }
}

impl fmt::Debug for MessageQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("MessageQueue");
        match &self.flavor {
            Flavor::Bounded(i) => d.field("capacity", &i.cap),
            Flavor::Unbounded(i) => {
                d.field("rings", &i.rings()).field("ring_bytes", &i.ring_bytes())
            }
        };
        d.field("max_message", &self.max_message())
            .field("qsize", &self.qsize())
            .field("handle", &self.handle().to_string())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::mem::offset_of;

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::super::codec::{Frame, canonical_type_name};
    use super::*;
    use crate::sys::peer;

    // Offsets in the segment of control block fields another process could scribble over.
    const INFO_TAG: u64 = (HEADER_SIZE + offset_of!(Control, info.0.tag)) as u64;
    const INFO_CAPACITY: u64 = (HEADER_SIZE + offset_of!(Control, info.0.capacity)) as u64;
    const INFO_MAX: u64 = (HEADER_SIZE + offset_of!(Control, info.0.max_message)) as u64;
    const INFO_CLOSED: u64 = (HEADER_SIZE + offset_of!(Control, info.0.closed)) as u64;
    const LOCK_OWNER: u64 = (HEADER_SIZE + offset_of!(Control, lock.0.owner)) as u64;
    const RING_HEAD: u64 = (HEADER_SIZE + offset_of!(Control, ring.0.head)) as u64;
    const RING_TAIL: u64 = (HEADER_SIZE + offset_of!(Control, ring.0.tail)) as u64;
    const RING_COUNT: u64 = (HEADER_SIZE + offset_of!(Control, ring.0.count)) as u64;
    const FIELDS: [u64; 7] =
        [INFO_TAG, INFO_CAPACITY, INFO_MAX, INFO_CLOSED, RING_HEAD, RING_TAIL, RING_COUNT];

    /// Writes `bytes` at `offset` of an anonymous queue's segment through its descriptor, as
    /// another process with the segment open could: no pointer into the mapping involved.
    fn poke(q: &MessageQueue, offset: u64, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        let Locator::Anonymous { fd, .. } = q.handle().loc else { panic!("a named queue") };
        let f = std::fs::OpenOptions::new().write(true).open(format!("/proc/self/fd/{fd}"));
        f.unwrap().write_all_at(bytes, offset).unwrap();
    }

    /// What a frame at `head` must decode to, computed the naive way (byte by byte, modulo the
    /// ring): `None` for an error, else what `decode_frame` must return.
    fn oracle(ring: &[u8], head: u64, tail: u64, max: u64, want: Want) -> Option<Option<Frame>> {
        if head == tail {
            return Some(None);
        }
        let size = ring.len() as u64;
        let used = tail.wrapping_sub(head);
        if used > size || used < 12 {
            return None;
        }
        // A frame lies at offsets `head % size + k`, modulo the size (what `wrap` computes).
        let byte = |k: u64| ring[((head % size + k) % size) as usize];
        let len = (0..4).map(|k| u64::from(byte(k)) << (8 * k)).sum::<u64>();
        let tag = (0..8).map(|k| u64::from(byte(4 + k)) << (8 * k)).sum::<u64>();
        if len > max || 12 + len > used {
            return None;
        }
        if let Want::Type { tag: t, .. } = want
            && t != tag
        {
            return None;
        }
        let payload = (0..len).map(|k| byte(12 + k)).collect();
        Some(Some(Frame { tag, payload, next: head.wrapping_add(12 + len) }))
    }

    /// Runs `decode_frame` and checks it against the oracle: same frame, or an error (always a
    /// `BadMessage`) exactly when the oracle has none. Returns the frame.
    fn decode_checked(ring: &[u8], head: u64, tail: u64, max: u64, want: Want) -> Option<Frame> {
        let got = decode_frame(ring, head, tail, max, want);
        match (got, oracle(ring, head, tail, max, want)) {
            (Ok(f), Some(expected)) => {
                assert_eq!(f, expected);
                if let Some(f) = &f {
                    assert!(f.payload.len() as u64 <= max.min(ring.len() as u64));
                }
                f
            }
            (Err(BadFrame(_)), None) => None,
            (got, expected) => panic!("decode_frame gave {got:?}, expected {expected:?}"),
        }
    }

    fn write_ring(ring: &mut [u8], pos: u64, bytes: &[u8]) {
        let size = ring.len();
        for (k, b) in bytes.iter().enumerate() {
            ring[((pos % size as u64) as usize + k) % size] = *b;
        }
    }

    fn want() -> impl Strategy<Value = Want> {
        prop_oneof![
            Just(Want::Any),
            (0u64..3).prop_map(|tag| Want::Type { tag, name: "T" }),
            any::<u64>().prop_map(|tag| Want::Type { tag, name: "T" }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Random rings, positions and limits: a frame exactly when one is there, else a typed
        /// error; never a panic, an out-of-bounds read or a payload over `max`.
        #[test]
        fn decode_frame_of_random_bytes_is_a_whole_frame_or_an_error(
            ring in vec(any::<u8>(), 0..80),
            head in prop_oneof![any::<u64>(), (u64::MAX - 100)..=u64::MAX, 0u64..200],
            used in prop_oneof![0u64..100, any::<u64>()],
            max in prop_oneof![0u64..100, any::<u64>()],
            want in want(),
        ) {
            decode_checked(&ring, head, head.wrapping_add(used), max, want);
        }

        /// Well-formed rings (frames written as `try_put` writes them, wrapping around the ring)
        /// read back exactly; then the same rings with bytes and positions
        /// mutated still give a frame or a typed error at every step.
        #[test]
        fn decode_frame_reads_written_frames_back_and_survives_their_mutation(
            size in 12usize..160,
            start in prop_oneof![0u64..1000, any::<u64>()],
            msgs in vec((0u64..3, vec(any::<u8>(), 0..40)), 0..8),
            flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            nudge in prop_oneof![Just((0i64, 0i64)), (-20i64..20, -20i64..20)],
        ) {
            let max = (size - 12) as u64;
            // Positions only grow, and would need 2^64 bytes to wrap: start below that.
            let start = start.min(u64::MAX - 1000);
            let mut ring = vec![0u8; size];
            let (head, mut tail, mut sent) = (start, start, Vec::new());
            for (tag, payload) in msgs {
                let need = (12 + payload.len()) as u64;
                if payload.len() as u64 > max || tail.wrapping_sub(head) + need > size as u64 {
                    continue;
                }
                write_ring(&mut ring, tail, &frame_header(payload.len() as u32, tag));
                write_ring(&mut ring, tail.wrapping_add(12), &payload);
                tail = tail.wrapping_add(need);
                sent.push((tag, payload));
            }
            // Unmutated: every frame, in order, then empty.
            let mut pos = head;
            for (tag, payload) in &sent {
                let f = decode_checked(&ring, pos, tail, max, Want::Any).unwrap();
                prop_assert_eq!((f.tag, &f.payload), (*tag, payload));
                // Asked for another type: refused, and nothing moves.
                let other = Want::Type { tag: tag + 1, name: "T" };
                prop_assert!(decode_frame(&ring[..], pos, tail, max, other).is_err());
                pos = f.next;
            }
            prop_assert_eq!(pos, tail);
            prop_assert!(decode_checked(&ring, pos, tail, max, Want::Any).is_none());
            // Mutated: walk the ring as a getter would, until empty or an error.
            for (at, b) in flips {
                ring[at.index(size)] = b;
            }
            let mut pos = head.wrapping_add_signed(nudge.0);
            let tail = tail.wrapping_add_signed(nudge.1);
            for _ in 0..=size / 12 {
                match decode_checked(&ring, pos, tail, max, Want::Any) {
                    Some(f) => pos = f.next,
                    None => break,
                }
            }
        }
    }

    /// A value for one field of the control block: small (near the real ones) or any.
    fn field() -> impl Strategy<Value = u64> {
        prop_oneof![0u64..300, any::<u64>()]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// A real queue whose control block fields and ring bytes another process scribbled
        /// over: every call gives a value within bounds or a typed error, and none hangs.
        #[test]
        fn a_scribbled_queue_gives_values_or_typed_errors(
            size in 13usize..200,
            max_frac in 1usize..=100,
            puts in vec(vec(any::<u8>(), 0..30), 0..5),
            fields in vec((0usize..7, field()), 0..5),
            bytes in vec((0u64..1200, vec(any::<u8>(), 1..9)), 0..6),
        ) {
            let max = ((size - 12) * max_frac / 100).max(1);
            let q = MessageQueue::bounded(size, max).unwrap();
            for p in &puts {
                let _ = q.put_nowait(p);
            }
            for (which, v) in fields {
                poke(&q, FIELDS[which], &v.to_le_bytes());
            }
            // Anywhere in the control block or the ring (the file ends at DATA_OFFSET + size).
            for (at, b) in bytes {
                let at = HEADER_SIZE as u64 + at % (DATA_OFFSET - HEADER_SIZE + size) as u64;
                let n = b.len().min(DATA_OFFSET + size - at as usize);
                poke(&q, at, &b[..n]);
            }
            // A lock held by a scribbled token is the takeover path (tested above), which
            // costs a sleep slice per call: keep the lock free.
            poke(&q, LOCK_OWNER, &0u64.to_le_bytes());
            let mut handles = vec![q.clone()];
            match MessageQueue::open_handle(&q.handle()) {
                Ok(other) => {
                    prop_assert!(other.max_message() <= size - 12 && other.max_message() >= 1);
                    handles.push(other);
                }
                Err(Error::CorruptHeader { .. }) => {}
                Err(e) => prop_assert!(false, "open: {e}"),
            }
            let ok = |e: Error| matches!(e, Error::BadMessage { .. } | Error::Empty { .. }
                | Error::Closed { .. } | Error::Timeout { .. } | Error::PeerDied { .. }
                | Error::Full { .. } | Error::MessageTooLarge { .. });
            for h in &handles {
                prop_assert!(h.qsize() <= size / 12);
                let _ = h.is_empty();
                match h.get_nowait::<Vec<u8>>() {
                    Ok(v) => prop_assert!(v.len() <= h.max_message()),
                    Err(e) => prop_assert!(ok(e.clone().into()), "get_nowait: {e}"),
                }
                let ms = Duration::from_millis(1);
                match h.bounded_inner().get(Want::Any, Some((ms, MessageGetTimeoutError::Timeout { after: ms }))) {
                    Ok(v) => prop_assert!(v.len() <= h.max_message()),
                    Err(e) => prop_assert!(ok(e.clone().into()), "get_bytes: {e}"),
                }
                match h.get_timeout::<String>(Duration::from_millis(1)) {
                    Ok(v) => prop_assert!(v.len() <= h.max_message()),
                    Err(e) => prop_assert!(ok(e.clone().into()), "get_timeout: {e}"),
                }
                if let Err(e) = h.put_nowait(&[1u8, 2, 3][..]) {
                    prop_assert!(ok(e.clone().into()), "put_nowait: {e}");
                }
            }
        }
    }

    #[test]
    fn frames_wrap_around_the_ring_intact() {
        let q = MessageQueue::bounded(104, 40).unwrap(); // two frames of at most 40 B fit
        for round in 0..200u32 {
            let msg: Vec<u8> = (0..(round % 37) as u8).collect();
            q.put_timeout(&msg, Duration::from_secs(5)).unwrap();
            if round % 2 == 1 {
                let prev: Vec<u8> = (0..((round - 1) % 37) as u8).collect();
                assert_eq!(q.get::<Vec<u8>>().unwrap(), prev);
                assert_eq!(q.get::<Vec<u8>>().unwrap(), msg);
            }
        }
        assert!(q.is_empty());
        assert_eq!(q.qsize(), 0);
    }

    #[test]
    fn full_ring_refuses_nowait_and_times_out() {
        let q = MessageQueue::bounded(24, 8).unwrap(); // a frame of 8 leaves 4 bytes free
        q.put_bytes(&[1; 8]).unwrap();
        assert!(matches!(q.put_nowait(&[1u8; 4]), Err(MessageTryPutError::Full { .. })));
        assert!(matches!(
            q.put_timeout(&[1u8; 4], Duration::from_millis(20)),
            Err(MessagePutTimeoutError::Timeout { .. })
        ));
        assert_eq!(q.get_bytes().unwrap(), [1; 8]);
        assert!(matches!(
            q.get_timeout::<u8>(Duration::from_millis(20)),
            Err(MessageGetTimeoutError::Timeout { .. })
        ));
    }

    #[test]
    fn oversize_and_undecodable_messages_are_errors() {
        let q = MessageQueue::bounded(64, 8).unwrap();
        assert!(matches!(q.put_bytes(&[0; 9]), Err(MessagePutError::TooLarge { len: 9, max: 8 })));
        // Tagged as a String, but not one (say, another build's String): consumed.
        q.bounded_inner()
            .put::<MessagePutError>(type_tag::<String>(), &[0xff, 0xff], None)
            .unwrap();
        assert!(matches!(q.get::<String>(), Err(MessageGetError::BadMessage { .. })));
        assert!(q.is_empty(), "a message of the right tag that fails to decode is consumed");
    }

    #[test]
    fn a_message_put_as_one_type_is_not_got_as_another() {
        let q = MessageQueue::bounded(256, 64).unwrap();
        q.put(&(1u8, 2u8)).unwrap();
        // postcard would read (1, 2) as the string "\u{2}": the tag stops it first.
        let e = q.get::<String>().unwrap_err();
        match &e {
            MessageGetError::BadMessage { reason } => {
                assert!(reason.contains("alloc::string::String"), "{reason}");
                assert!(reason.contains("stays queued"), "{reason}");
            }
            other => panic!("expected BadMessage, got {other:?}"),
        }
        // Every get form refuses, the blocking ones without waiting, and nothing is consumed.
        assert!(matches!(q.get_nowait::<u16>(), Err(MessageTryGetError::BadMessage { .. })));
        assert!(matches!(
            q.get_timeout::<(u8, u8, u8)>(Duration::from_secs(5)),
            Err(MessageGetTimeoutError::BadMessage { .. })
        ));
        assert!(matches!(q.get::<(i8, u8)>(), Err(MessageGetError::BadMessage { .. })));
        assert_eq!(q.qsize(), 1);
        assert_eq!(q.get::<(u8, u8)>().unwrap(), (1, 2));
        assert!(q.is_empty());
    }

    #[test]
    fn raw_bytes_and_typed_messages_interoperate_only_through_get_bytes() {
        let q = MessageQueue::bounded(256, 64).unwrap();
        // Even the exact postcard encoding of a u8, put as bytes, has no type.
        q.put_bytes(&[7]).unwrap();
        let e = q.get::<u8>().unwrap_err();
        assert!(e.to_string().contains("raw bytes (put_bytes)"), "{e}");
        assert_eq!(q.get_bytes().unwrap(), [7]);
        // A typed message's bytes are its postcard encoding.
        q.put(&(300u16, "ab")).unwrap();
        assert_eq!(q.get_bytes().unwrap(), postcard::to_stdvec(&(300u16, "ab")).unwrap());
        // Zero-byte messages are whole frames too.
        q.put_bytes(&[]).unwrap();
        q.put(&()).unwrap();
        assert!(matches!(q.get::<()>(), Err(MessageGetError::BadMessage { .. })));
        assert_eq!(q.get_bytes().unwrap(), []);
        q.get::<()>().unwrap();
        assert!(q.is_empty());
    }

    #[test]
    fn borrowed_and_owned_forms_get_as_each_other() {
        use std::borrow::Cow;
        use std::rc::Rc;
        use std::sync::Arc;
        let q = MessageQueue::bounded(1024, 128).unwrap();
        q.put("hi").unwrap();
        assert_eq!(q.get::<String>().unwrap(), "hi");
        q.put(&String::from("hi")).unwrap();
        assert_eq!(&*q.get::<Box<str>>().unwrap(), "hi");
        q.put(&("resize", vec![640u32, 480])).unwrap();
        assert_eq!(q.get::<(String, Vec<u32>)>().unwrap(), ("resize".into(), vec![640, 480]));
        q.put(&[1u8, 2, 3][..]).unwrap();
        assert_eq!(q.get::<Vec<u8>>().unwrap(), [1, 2, 3]);
        q.put(&Some(Cow::Borrowed("x"))).unwrap();
        assert_eq!(q.get::<Option<String>>().unwrap().as_deref(), Some("x"));
        q.put(&vec![Box::new(5u32), Box::new(6)]).unwrap();
        assert_eq!(q.get::<Vec<u32>>().unwrap(), [5, 6]);
        q.put(&Box::new(&&7i64)).unwrap();
        assert_eq!(q.get::<i64>().unwrap(), 7);
        // (`Rc` and `Arc` serialize only with serde's `rc` feature; their names are dropped
        // all the same.)
        assert_eq!(type_tag::<Rc<[u8]>>(), type_tag::<Vec<u8>>());
        assert_eq!(type_tag::<Arc<str>>(), type_tag::<String>());
        q.put(&[&"a", &"b"]).unwrap();
        assert_eq!(q.get::<[String; 2]>().unwrap(), ["a", "b"]);
        // An array is a tuple to serde, a slice a sequence: they stay apart.
        q.put(&[1u8, 2]).unwrap();
        assert!(matches!(q.get::<Vec<u8>>(), Err(MessageGetError::BadMessage { .. })));
        assert_eq!(q.get::<[u8; 2]>().unwrap(), [1, 2]);
    }

    #[test]
    fn canonical_type_names_drop_only_what_serde_does_not_see() {
        let c = canonical_type_name;
        assert_eq!(c(std::any::type_name::<&str>()), "alloc::string::String");
        assert_eq!(
            c(std::any::type_name::<&mut [&str]>()),
            "alloc::vec::Vec<alloc::string::String>"
        );
        assert_eq!(
            c(std::any::type_name::<(u8, &[u16; 3], std::borrow::Cow<'static, [u8]>)>()),
            "(u8, [u16; 3], alloc::vec::Vec<u8>)"
        );
        assert_eq!(
            c(std::any::type_name::<std::collections::HashMap<&str, Box<str>>>()),
            "std::collections::hash::map::HashMap<alloc::string::String, alloc::string::String>"
        );
        assert_eq!(c("(u8,)"), "(u8, )");
        assert_eq!(c("()"), "()");
        // Unbalanced or odd names are kept as they are (deterministic, which is all it needs).
        assert_eq!(c("a<b"), "a<b");
        assert_eq!(c("x>(y"), "x>(y");
        assert_ne!(type_tag::<&str>(), RAW);
        assert_eq!(type_tag::<str>(), type_tag::<String>());
        assert_ne!(type_tag::<(u8, u8)>(), type_tag::<String>());
    }

    #[test]
    fn a_queue_of_the_untagged_frame_format_is_refused_at_open() {
        let q = MessageQueue::bounded(64, 8).unwrap();
        poke(&q, INFO_TAG, b"SPMSGQ02");
        let e = MessageQueue::open_handle(&q.handle()).unwrap_err();
        assert!(matches!(e, Error::CorruptHeader { .. }), "{e}");
        poke(&q, INFO_TAG, b"SPMSGQ03");
        MessageQueue::open_handle(&q.handle()).unwrap();
    }

    fn owner(q: &MessageQueue) -> &AtomicU64 {
        &q.bounded_inner().ctrl().lock.0.owner
    }

    #[test]
    fn lock_held_by_a_dead_process_is_taken_over() {
        let q = MessageQueue::bounded(64, 8).unwrap();
        // A pid above the kernel's limit (2^22) can belong to no process.
        owner(&q).store(peer::pack((1 << 22) + 7, 5), Ordering::Relaxed);
        q.put_timeout(&5u8, Duration::from_secs(5)).unwrap();
        assert_eq!(q.get::<u8>().unwrap(), 5);
        assert_eq!(owner(&q).load(Ordering::Relaxed), 0);
    }

    #[test]
    fn lock_whose_holder_pid_was_reused_is_taken_over() {
        let q = MessageQueue::bounded(64, 8).unwrap();
        // The holder had our pid but another start time: it died and its pid now names us (or
        // any live process). A pid-only check would wait for ever.
        let me = peer::me();
        owner(&q).store(peer::pack(peer::token_pid(me), me.wrapping_add(1)), Ordering::Relaxed);
        q.put_timeout(&6u8, Duration::from_secs(5)).unwrap();
        assert_eq!(q.get::<u8>().unwrap(), 6);
    }

    #[test]
    fn lock_held_by_a_live_process_times_out() {
        let q = MessageQueue::bounded(64, 8).unwrap();
        let parent = crate::sys::proc::getppid();
        let holder = peer::pack(parent, peer::start_time(parent).unwrap());
        owner(&q).store(holder, Ordering::Relaxed);
        assert!(matches!(
            q.put_timeout(&5u8, Duration::from_millis(150)),
            Err(MessagePutTimeoutError::Timeout { after }) if after == Duration::from_millis(150)
        ));
        assert_eq!(owner(&q).load(Ordering::Relaxed), holder, "a live holder keeps the lock");
    }

    #[test]
    fn corrupt_lengths_in_the_ring_are_errors_not_copies() {
        let q = MessageQueue::bounded(64, 8).unwrap();
        let ring = &q.bounded_inner().ctrl().ring.0;
        // A frame prefix larger than max_message.
        q.put_bytes(&[1, 2]).unwrap();
        // SAFETY: the ring's first 4 bytes are the frame's prefix; no other thread uses `q`.
        unsafe { q.bounded_inner().data.as_ptr().cast::<[u8; 4]>().write(u32::MAX.to_le_bytes()) };
        assert!(matches!(q.get_bytes(), Err(MessageGetError::BadMessage { .. })));
        // A tail far past head (more bytes than the ring holds).
        ring.tail.store(ring.head.load(Ordering::Relaxed) + 1000, Ordering::Relaxed);
        assert!(matches!(q.get_bytes(), Err(MessageGetError::BadMessage { .. })));
        assert!(matches!(q.put_nowait(&1u8), Err(MessageTryPutError::Full { .. })));
        // Out-of-range copies are refused even if a caller got past the frame checks.
        assert!(q.bounded_inner().read_at(0, &mut [0u8; 65]).is_err());
        assert!(q.bounded_inner().copy_in(0, &[0u8; 65]).is_err());
        assert_eq!(owner(&q).load(Ordering::Relaxed), 0, "errors release the lock");
    }

    #[test]
    fn threads_share_one_queue() {
        let q = MessageQueue::bounded(256, 64).unwrap();
        std::thread::scope(|s| {
            for t in 0..3u32 {
                let q = q.clone();
                s.spawn(move || (0..500u32).for_each(|i| q.put(&(t, i, format!("{i}"))).unwrap()));
            }
            let mut next = [0u32; 3];
            for _ in 0..1500 {
                let (t, i, text): (u32, u32, String) =
                    q.get_timeout(Duration::from_secs(10)).unwrap();
                assert_eq!(i, next[t as usize]);
                assert_eq!(text, i.to_string());
                next[t as usize] += 1;
            }
        });
    }
}
