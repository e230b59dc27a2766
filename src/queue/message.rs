//! `MessageQueue`: variable-size serialized messages in a byte ring in shared memory.
//!
//! Frames are a little-endian `u32` length followed by that many bytes (postcard-encoded for the
//! serde API), written contiguously modulo the ring size. A small lock whose word holds the
//! holder's token (pid and start time, see `sys::peer`) guards the ring; each critical section
//! commits with one final store (`tail` for a put, `head` for a get), so a holder that died
//! mid-copy left the ring consistent and the next locker may take the lock over. Every length
//! read from shared memory is bounded before use, so a corrupt segment is an error, never an
//! out-of-bounds copy. Details: `README.md` in this folder.

use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::peers::PeerTable;
use super::wait::{SLICE, WaitCell, wait_for};
use crate::error::{Error, Result, human_bytes};
use crate::segment::Segment;
use crate::segment::handle::{Locator, SegmentHandle};
use crate::segment::header::{HEADER_SIZE, Kind, Layout, TypeDesc};
use crate::segment::options::ShmOptions;
use crate::sys::peer;

/// Identifies a message queue control block and its layout version: `b"SPMSGQ02"` (02: the
/// lock holds a full token and sleepers use a `WaitCell`).
const TAG: u64 = u64::from_le_bytes(*b"SPMSGQ02");
/// Bytes of the length prefix of every frame.
const PREFIX: usize = 4;
const WHAT: &str = "message queue";

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

/// The ring lock.
#[repr(C)]
struct Lock {
    /// 0 when free, else the holder's token (`sys::peer`: pid and start time), so that a
    /// reused pid never looks like the holder, and a live holder is never taken over.
    owner: AtomicU64,
    /// Where lockers sleep; an unlock notifies it (the `WaitCell` protocol, README.md).
    cell: WaitCell,
}

#[repr(C)]
struct Control {
    info: Line<Info>,
    lock: Line<Lock>,
    ring: Line<Ring>,
    not_empty: Line<WaitCell>,
    not_full: Line<WaitCell>,
    producers: PeerTable,
    consumers: PeerTable,
}

const DATA_OFFSET: usize = HEADER_SIZE + std::mem::size_of::<Control>();
// The layout README.md and docs/messaging.md describe.
const _: () = assert!(DATA_OFFSET == 960);

struct Inner {
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

/// Held ring lock; releases on drop.
struct Guard<'a> {
    lock: &'a Lock,
    /// The token this guard holds the lock as.
    me: u64,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // A CAS, not a store: should another process ever have taken the lock over (it can only
        // believe us dead across pid namespaces, see README.md), we must not free its lock.
        let _ = self.lock.owner.compare_exchange(self.me, 0, Ordering::Release, Ordering::Relaxed);
        // Its fence orders the release before the check for sleepers (README.md).
        self.lock.cell.notify();
    }
}

/// The error for a ring whose shared state breaks its own invariants.
fn corrupt_ring(reason: String) -> Error {
    Error::BadMessage { what: WHAT, reason: format!("{reason}; the queue is corrupt") }
}

impl Inner {
    fn create(capacity: usize, max_message: usize, opts: &ShmOptions) -> Result<Inner> {
        let bad =
            |reason: String| Err(Error::InvalidArgument { what: "message queue size", reason });
        if max_message == 0 || max_message > u32::MAX as usize {
            return bad(format!("the largest message must be 1 byte to 4 GiB, not {max_message}"));
        }
        match capacity.checked_sub(PREFIX) {
            Some(room) if room >= max_message => {}
            _ => {
                return bad(format!(
                    "a ring of {} cannot hold one message of {} plus its 4-byte length; give at least {} bytes",
                    human_bytes(capacity as u64),
                    human_bytes(max_message as u64),
                    max_message + PREFIX
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

    fn open(loc: &Locator, nonce: Option<u64>) -> Result<Inner> {
        let seg = Segment::open_typed(loc, nonce, Kind::MessageQueue, &TypeDesc::of::<u8>())?;
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
            || info.max_message > inner.cap.saturating_sub(PREFIX as u64)
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

    fn register(&self, producer: bool) {
        let me = peer::me();
        let (mine, table) = if producer {
            (&self.producer_as, &self.ctrl().producers)
        } else {
            (&self.consumer_as, &self.ctrl().consumers)
        };
        if mine.load(Ordering::Relaxed) != me {
            table.register(me);
            mine.store(me, Ordering::Relaxed);
        }
    }

    /// Takes the ring lock, taking it over from a holder that died. Fails with a timeout when
    /// `deadline` passes first.
    ///
    /// The holder is named by its full token, so the takeover check (after a sleep slice with no
    /// wake) cannot be fooled by a reused pid, and a live holder is never taken over (within one
    /// pid namespace: see README.md). The takeover frees the lock with a CAS from the dead token,
    /// then competes for it like any locker, so two lockers that both saw the dead holder cannot
    /// both win.
    fn lock(
        &self,
        deadline: Option<Instant>,
        what: &'static str,
        timeout: Duration,
    ) -> Result<Guard<'_>> {
        let lock = &self.ctrl().lock.0;
        let me = peer::me();
        let try_lock = || {
            lock.owner
                .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
                .then_some(())
        };
        if try_lock().is_some() {
            return Ok(Guard { lock, me });
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let r = wait_for(
            &lock.cell,
            left,
            what,
            || Ok(try_lock()),
            || {
                let holder = lock.owner.load(Ordering::Relaxed);
                if holder != 0 && holder != me && !peer::alive(holder) {
                    // Every critical section commits with its last store, so what the dead
                    // holder left is either a whole frame or nothing. Free the lock; the next
                    // attempt takes it (or another locker does, and wakes us when done).
                    let _ = lock.owner.compare_exchange(
                        holder,
                        0,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                Ok(())
            },
        );
        match r {
            Ok(()) => Ok(Guard { lock, me }),
            Err(Error::Timeout { what, .. }) => Err(Error::Timeout { what, after: timeout }),
            Err(e) => Err(e),
        }
    }

    fn copy_in(&self, pos: u64, bytes: &[u8]) -> Result<()> {
        if bytes.len() as u64 > self.cap {
            return Err(corrupt_ring(format!("{} bytes cannot fit the ring", bytes.len())));
        }
        let off = (pos % self.cap) as usize;
        let first = bytes.len().min(self.cap as usize - off);
        // SAFETY: the caller holds the ring lock, so these ring bytes are ours; `off + first <=
        // cap`, and `bytes.len() <= cap` (checked above) gives `bytes.len() - first <= off`, so
        // both copies stay inside the ring.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.data.as_ptr().add(off), first);
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr().add(first),
                self.data.as_ptr(),
                bytes.len() - first,
            );
        }
        Ok(())
    }

    fn copy_out(&self, pos: u64, out: &mut [u8]) -> Result<()> {
        if out.len() as u64 > self.cap {
            return Err(corrupt_ring(format!(
                "a frame of {} bytes cannot fit the ring",
                out.len()
            )));
        }
        let off = (pos % self.cap) as usize;
        let first = out.len().min(self.cap as usize - off);
        // SAFETY: as in `copy_in` (the length is checked against `cap` above): the lock is held
        // and both ranges lie inside the ring, whose bytes are plain `u8`s (any value is valid).
        unsafe {
            std::ptr::copy_nonoverlapping(self.data.as_ptr().add(off), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(
                self.data.as_ptr(),
                out.as_mut_ptr().add(first),
                out.len() - first,
            );
        }
        Ok(())
    }

    fn try_put(&self, bytes: &[u8], deadline: Option<Instant>, timeout: Duration) -> Result<bool> {
        if self.closed() {
            return Err(Error::Closed { what: WHAT });
        }
        let g = self.lock(deadline, "MessageQueue::put", timeout)?;
        let ring = &self.ctrl().ring.0;
        let (head, tail) = (ring.head.load(Ordering::Relaxed), ring.tail.load(Ordering::Relaxed));
        let need = (PREFIX + bytes.len()) as u64;
        // Saturating: a corrupt ring (tail - head > cap) reads as full, not as room.
        if self.cap.saturating_sub(tail.wrapping_sub(head)) < need {
            return Ok(false);
        }
        self.copy_in(tail, &(bytes.len() as u32).to_le_bytes())?;
        self.copy_in(tail.wrapping_add(PREFIX as u64), bytes)?;
        ring.tail.store(tail.wrapping_add(need), Ordering::Release); // the commit
        ring.count.fetch_add(1, Ordering::Relaxed);
        drop(g);
        self.ctrl().not_empty.0.notify();
        Ok(true)
    }

    fn try_get(&self, deadline: Option<Instant>, timeout: Duration) -> Result<Option<Vec<u8>>> {
        let g = self.lock(deadline, "MessageQueue::get", timeout)?;
        let ring = &self.ctrl().ring.0;
        let (head, tail) = (ring.head.load(Ordering::Relaxed), ring.tail.load(Ordering::Relaxed));
        if head == tail {
            drop(g);
            return if self.closed() { Err(Error::Closed { what: WHAT }) } else { Ok(None) };
        }
        // Both positions live in writable shared memory: bound everything read from there.
        let used = tail.wrapping_sub(head);
        if used > self.cap || used < PREFIX as u64 {
            return Err(corrupt_ring(format!(
                "the ring claims to hold {used} bytes in a ring of {}",
                self.cap
            )));
        }
        let mut len = [0u8; PREFIX];
        self.copy_out(head, &mut len)?;
        let len = u32::from_le_bytes(len) as u64;
        if len > self.max || PREFIX as u64 + len > used {
            return Err(corrupt_ring(format!(
                "a frame claims {len} bytes, more than the ring holds or a message may have"
            )));
        }
        let mut out = vec![0u8; len as usize];
        self.copy_out(head.wrapping_add(PREFIX as u64), &mut out)?;
        ring.head.store(head.wrapping_add(PREFIX as u64 + len), Ordering::Release); // the commit
        let _ = ring.count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_sub(1));
        drop(g);
        // A freed frame may make room for a putter waiting for more than one frame's worth:
        // wake them all, each re-checks.
        self.ctrl().not_full.0.notify();
        Ok(Some(out))
    }

    fn put(&self, bytes: &[u8], timeout: Option<Duration>, nowait: bool) -> Result<()> {
        if bytes.len() as u64 > self.max {
            return Err(Error::MessageTooLarge {
                what: WHAT,
                len: bytes.len() as u64,
                max: self.max,
            });
        }
        self.register(true);
        if nowait {
            let deadline = Instant::now() + SLICE;
            return if self.try_put(bytes, Some(deadline), SLICE)? {
                Ok(())
            } else {
                Err(Error::Full { what: WHAT, capacity: human_bytes(self.cap) })
            };
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let t = timeout.unwrap_or_default();
        wait_for(
            &self.ctrl().not_full.0,
            timeout,
            "MessageQueue::put",
            || Ok(self.try_put(bytes, deadline, t)?.then_some(())),
            || match self.ctrl().consumers.all_gone() {
                Some(pids) => Err(Error::PeerDied { what: WHAT, role: "consumer", pids }),
                None => Ok(()),
            },
        )
    }

    fn get(&self, timeout: Option<Duration>, nowait: bool) -> Result<Vec<u8>> {
        self.register(false);
        if nowait {
            return self
                .try_get(Some(Instant::now() + SLICE), SLICE)?
                .ok_or(Error::Empty { what: WHAT });
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let t = timeout.unwrap_or_default();
        wait_for(
            &self.ctrl().not_empty.0,
            timeout,
            "MessageQueue::get",
            || self.try_get(deadline, t),
            || match self.ctrl().producers.all_gone() {
                Some(pids) => Err(Error::PeerDied { what: WHAT, role: "producer", pids }),
                None => Ok(()),
            },
        )
    }
}

fn encode<M: Serialize + ?Sized>(msg: &M) -> Result<Vec<u8>> {
    postcard::to_stdvec(msg)
        .map_err(|e| Error::BadMessage { what: WHAT, reason: format!("cannot encode: {e}") })
}

fn decode<M: DeserializeOwned>(bytes: &[u8]) -> Result<M> {
    postcard::from_bytes(bytes)
        .map_err(|e| Error::BadMessage { what: WHAT, reason: format!("cannot decode: {e}") })
}

/// A bounded multi-producer multi-consumer queue of variable-size messages in shared memory, for
/// the items that are not `Pod`: anything serde can serialize (encoded with postcard), or raw
/// bytes.
///
/// The queue is a byte ring of `capacity` bytes; each message takes its encoded size plus 4
/// bytes. Messages larger than `max_message` (fixed at creation) are refused with
/// [`Error::MessageTooLarge`] on put, so a get never allocates more than `max_message` bytes.
/// Waits, close and dead peers behave as for [`Queue`](crate::Queue).
///
/// ```
/// use shmpool::MessageQueue;
///
/// let q = MessageQueue::new(64 * 1024, 4096)?;
/// q.put(&("resize", vec![640u32, 480]))?;
/// let (op, dims): (String, Vec<u32>) = q.get()?;
/// assert_eq!((op.as_str(), dims), ("resize", vec![640, 480]));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Clone)]
pub struct MessageQueue {
    inner: Arc<Inner>,
}

impl MessageQueue {
    /// An anonymous queue with a ring of `capacity` bytes, taking messages of at most
    /// `max_message` encoded bytes (`capacity` must be at least `max_message + 4`).
    ///
    /// ```
    /// let q = shmpool::MessageQueue::new(1024, 100)?;
    /// assert!(shmpool::MessageQueue::new(100, 100).is_err()); // no room for the length prefix
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new(capacity: usize, max_message: usize) -> Result<MessageQueue> {
        Self::new_with(capacity, max_message, &ShmOptions::new())
    }

    /// A queue created as `opts` says.
    ///
    /// ```
    /// use shmpool::{MessageQueue, ShmOptions};
    /// let q = MessageQueue::new_with(1024, 100, &ShmOptions::new().generated_name())?;
    /// let again = MessageQueue::open(q.name().unwrap())?;
    /// again.put("hi")?;
    /// assert_eq!(q.get::<String>()?, "hi");
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(
        capacity: usize,
        max_message: usize,
        opts: &ShmOptions,
    ) -> Result<MessageQueue> {
        Ok(MessageQueue { inner: Arc::new(Inner::create(capacity, max_message, opts)?) })
    }

    /// Opens a named message queue.
    ///
    /// ```
    /// use shmpool::{MessageQueue, ShmOptions};
    /// let q = MessageQueue::new_with(64, 8, &ShmOptions::new().generated_name())?;
    /// assert_eq!(MessageQueue::open(q.name().unwrap())?.max_message(), 8);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn open(name: &str) -> Result<MessageQueue> {
        Ok(MessageQueue { inner: Arc::new(Inner::open(&Locator::Named(name.to_string()), None)?) })
    }

    /// Opens the message queue a handle refers to.
    ///
    /// ```
    /// let q = shmpool::MessageQueue::new(64, 8)?;
    /// let other = shmpool::MessageQueue::open_handle(&q.handle())?;
    /// other.put(&7u8)?;
    /// assert_eq!(q.get::<u8>()?, 7);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn open_handle(handle: &SegmentHandle) -> Result<MessageQueue> {
        Ok(MessageQueue { inner: Arc::new(Inner::open(&handle.loc, Some(handle.nonce))?) })
    }

    /// A handle another process can open with [`open_handle`](MessageQueue::open_handle).
    ///
    /// ```
    /// println!("{}", shmpool::MessageQueue::new(64, 8)?.handle());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn handle(&self) -> SegmentHandle {
        self.inner.seg.handle()
    }

    /// The segment's name, for named queues.
    ///
    /// ```
    /// assert_eq!(shmpool::MessageQueue::new(64, 8)?.name(), None);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.inner.seg.name()
    }

    /// Serializes `msg` and puts it, waiting while there is no room.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] when the encoding exceeds `max_message`; [`Error::Closed`];
    /// [`Error::PeerDied`] when the ring is full and every consumer has exited.
    ///
    /// ```
    /// let q = shmpool::MessageQueue::new(64, 8)?;
    /// assert!(matches!(q.put(&"a string longer than eight bytes"), Err(shmpool::Error::MessageTooLarge { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn put<M: Serialize + ?Sized>(&self, msg: &M) -> Result<()> {
        self.inner.put(&encode(msg)?, None, false)
    }

    /// As [`put`](MessageQueue::put), waiting at most `timeout`; then [`Error::Timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shmpool::MessageQueue::new(12, 8)?;
    /// q.put_timeout(&[1u8; 4], Duration::from_millis(5))?;
    /// assert!(q.put_timeout(&[1u8; 4], Duration::from_millis(5)).is_err()); // ring full
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn put_timeout<M: Serialize + ?Sized>(&self, msg: &M, timeout: Duration) -> Result<()> {
        self.inner.put(&encode(msg)?, Some(timeout), false)
    }

    /// As [`put`](MessageQueue::put) if there is room now, else [`Error::Full`].
    ///
    /// ```
    /// let q = shmpool::MessageQueue::new(12, 8)?;
    /// q.put_nowait(&1u64)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn put_nowait<M: Serialize + ?Sized>(&self, msg: &M) -> Result<()> {
        self.inner.put(&encode(msg)?, None, true)
    }

    /// Puts raw bytes (a frame of exactly these bytes; [`get_bytes`](MessageQueue::get_bytes)
    /// returns them).
    ///
    /// ```
    /// let q = shmpool::MessageQueue::new(64, 16)?;
    /// q.put_bytes(b"raw")?;
    /// assert_eq!(q.get_bytes()?, b"raw");
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.inner.put(bytes, None, false)
    }

    /// Takes the oldest message and deserializes it as `M`, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`Error::BadMessage`] when the bytes do not decode as `M` (the message is consumed);
    /// [`Error::Closed`] once closed and empty; [`Error::PeerDied`] when empty and every
    /// producer has exited.
    ///
    /// ```
    /// let q = shmpool::MessageQueue::new(64, 16)?;
    /// q.put(&Some(3i16))?;
    /// assert_eq!(q.get::<Option<i16>>()?, Some(3));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get<M: DeserializeOwned>(&self) -> Result<M> {
        decode(&self.inner.get(None, false)?)
    }

    /// As [`get`](MessageQueue::get), waiting at most `timeout`; then [`Error::Timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shmpool::MessageQueue::new(64, 16)?;
    /// assert!(q.get_timeout::<u8>(Duration::from_millis(5)).is_err());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_timeout<M: DeserializeOwned>(&self, timeout: Duration) -> Result<M> {
        decode(&self.inner.get(Some(timeout), false)?)
    }

    /// As [`get`](MessageQueue::get) if a message is there now, else [`Error::Empty`].
    ///
    /// ```
    /// let q = shmpool::MessageQueue::new(64, 16)?;
    /// assert!(matches!(q.get_nowait::<u8>(), Err(shmpool::Error::Empty { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_nowait<M: DeserializeOwned>(&self) -> Result<M> {
        decode(&self.inner.get(None, true)?)
    }

    /// Takes the oldest message as raw bytes (at most `max_message` of them).
    ///
    /// ```
    /// let q = shmpool::MessageQueue::new(64, 16)?;
    /// q.put(&1u8)?;
    /// assert_eq!(q.get_bytes()?, [1]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_bytes(&self) -> Result<Vec<u8>> {
        self.inner.get(None, false)
    }

    /// How many messages the queue holds (a snapshot).
    ///
    /// ```
    /// let q = shmpool::MessageQueue::new(64, 16)?;
    /// q.put(&1u8)?;
    /// assert_eq!(q.qsize(), 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn qsize(&self) -> usize {
        self.inner.ctrl().ring.0.count.load(Ordering::Relaxed) as usize
    }

    /// Whether the queue holds no message (a snapshot).
    ///
    /// ```
    /// assert!(shmpool::MessageQueue::new(64, 16)?.empty());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn empty(&self) -> bool {
        let ring = &self.inner.ctrl().ring.0;
        ring.head.load(Ordering::Acquire) == ring.tail.load(Ordering::Acquire)
    }

    /// The largest encoded message the queue takes, in bytes.
    ///
    /// ```
    /// assert_eq!(shmpool::MessageQueue::new(64, 16)?.max_message(), 16);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn max_message(&self) -> usize {
        self.inner.max as usize
    }

    /// The ring's size in bytes.
    ///
    /// ```
    /// assert_eq!(shmpool::MessageQueue::new(64, 16)?.capacity(), 64);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.inner.cap as usize
    }

    /// Closes the queue for every process, as [`Queue::close`](crate::Queue::close) does.
    ///
    /// ```
    /// let q = shmpool::MessageQueue::new(64, 16)?;
    /// q.close();
    /// assert!(matches!(q.put(&1u8), Err(shmpool::Error::Closed { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn close(&self) {
        let c = self.inner.ctrl();
        c.info.0.closed.store(1, Ordering::SeqCst);
        c.not_empty.0.notify_all();
        c.not_full.0.notify_all();
    }

    /// Whether the queue was closed (by any process).
    ///
    /// ```
    /// let q = shmpool::MessageQueue::new(64, 16)?;
    /// assert!(!q.is_closed());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.closed()
    }
}

impl fmt::Debug for MessageQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageQueue")
            .field("capacity", &self.capacity())
            .field("max_message", &self.max_message())
            .field("qsize", &self.qsize())
            .field("handle", &self.handle().to_string())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_wrap_around_the_ring_intact() {
        let q = MessageQueue::new(100, 40).unwrap(); // two frames of at most 40 B fit
        for round in 0..200u32 {
            let msg: Vec<u8> = (0..(round % 37) as u8).collect();
            q.put_timeout(&msg, Duration::from_secs(5)).unwrap();
            if round % 2 == 1 {
                let prev: Vec<u8> = (0..((round - 1) % 37) as u8).collect();
                assert_eq!(q.get::<Vec<u8>>().unwrap(), prev);
                assert_eq!(q.get::<Vec<u8>>().unwrap(), msg);
            }
        }
        assert!(q.empty());
        assert_eq!(q.qsize(), 0);
    }

    #[test]
    fn full_ring_refuses_nowait_and_times_out() {
        let q = MessageQueue::new(16, 8).unwrap();
        q.put_bytes(&[1; 8]).unwrap();
        assert!(matches!(q.put_nowait(&[1u8; 4]), Err(Error::Full { .. })));
        assert!(matches!(
            q.put_timeout(&[1u8; 4], Duration::from_millis(20)),
            Err(Error::Timeout { .. })
        ));
        assert_eq!(q.get_bytes().unwrap(), [1; 8]);
        assert!(matches!(
            q.get_timeout::<u8>(Duration::from_millis(20)),
            Err(Error::Timeout { .. })
        ));
    }

    #[test]
    fn oversize_and_undecodable_messages_are_errors() {
        let q = MessageQueue::new(64, 8).unwrap();
        assert!(matches!(q.put_bytes(&[0; 9]), Err(Error::MessageTooLarge { len: 9, max: 8, .. })));
        q.put_bytes(&[0xff, 0xff]).unwrap();
        assert!(matches!(q.get::<String>(), Err(Error::BadMessage { .. })));
        assert!(q.empty(), "a message that fails to decode is still consumed");
    }

    fn owner(q: &MessageQueue) -> &AtomicU64 {
        &q.inner.ctrl().lock.0.owner
    }

    #[test]
    fn lock_held_by_a_dead_process_is_taken_over() {
        let q = MessageQueue::new(64, 8).unwrap();
        // A pid above the kernel's limit (2^22) can belong to no process.
        owner(&q).store(peer::pack((1 << 22) + 7, 5), Ordering::Relaxed);
        q.put_timeout(&5u8, Duration::from_secs(5)).unwrap();
        assert_eq!(q.get::<u8>().unwrap(), 5);
        assert_eq!(owner(&q).load(Ordering::Relaxed), 0);
    }

    #[test]
    fn lock_whose_holder_pid_was_reused_is_taken_over() {
        let q = MessageQueue::new(64, 8).unwrap();
        // The holder had our pid but another start time: it died and its pid now names us (or
        // any live process). A pid-only check would wait for ever.
        let me = peer::me();
        owner(&q).store(peer::pack(peer::token_pid(me), me.wrapping_add(1)), Ordering::Relaxed);
        q.put_timeout(&6u8, Duration::from_secs(5)).unwrap();
        assert_eq!(q.get::<u8>().unwrap(), 6);
    }

    #[test]
    fn lock_held_by_a_live_process_times_out() {
        let q = MessageQueue::new(64, 8).unwrap();
        let parent = crate::sys::proc::getppid();
        let holder = peer::pack(parent, peer::start_time(parent).unwrap());
        owner(&q).store(holder, Ordering::Relaxed);
        assert!(matches!(
            q.put_timeout(&5u8, Duration::from_millis(150)),
            Err(Error::Timeout { after, .. }) if after == Duration::from_millis(150)
        ));
        assert_eq!(owner(&q).load(Ordering::Relaxed), holder, "a live holder keeps the lock");
    }

    #[test]
    fn corrupt_lengths_in_the_ring_are_errors_not_copies() {
        let q = MessageQueue::new(64, 8).unwrap();
        let ring = &q.inner.ctrl().ring.0;
        // A frame prefix larger than max_message.
        q.put_bytes(&[1, 2]).unwrap();
        // SAFETY: the ring's first 4 bytes are the frame's prefix; no other thread uses `q`.
        unsafe { q.inner.data.as_ptr().cast::<[u8; 4]>().write(u32::MAX.to_le_bytes()) };
        assert!(matches!(q.get_bytes(), Err(Error::BadMessage { .. })));
        // A tail far past head (more bytes than the ring holds).
        ring.tail.store(ring.head.load(Ordering::Relaxed) + 1000, Ordering::Relaxed);
        assert!(matches!(q.get_bytes(), Err(Error::BadMessage { .. })));
        assert!(matches!(q.put_nowait(&1u8), Err(Error::Full { .. })));
        // Out-of-range copies are refused even if a caller got past the frame checks.
        assert!(q.inner.copy_out(0, &mut [0u8; 65]).is_err());
        assert!(q.inner.copy_in(0, &[0u8; 65]).is_err());
        assert_eq!(owner(&q).load(Ordering::Relaxed), 0, "errors release the lock");
    }

    #[test]
    fn threads_share_one_queue() {
        let q = MessageQueue::new(256, 64).unwrap();
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
