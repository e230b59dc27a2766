//! `Queue<T>`: a multi-producer multi-consumer queue of `Pod` items in shared memory. The front
//! end holds one of two flavours: the bounded ring of this file, or the unbounded chain
//! (`unbounded_pod.rs`, over `unbounded.rs`).
//!
//! The ring is Dmitry Vyukov's bounded MPMC queue: every slot carries a sequence number that
//! says whose turn it is (a producer's for position `p` when it equals `2p`, a consumer's when it
//! equals `2p + 1`; doubling keeps "published at p" apart from "free for p + 1" even with one
//! slot), so producers and consumers only contend on their own counter. Layout, wake
//! protocol and dead-peer rule: `README.md` in this folder.

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytemuck::Pod;

use super::error::{
    Closed, GetError, GetTimeoutError, Limit, PeersGone, PutError, PutTimeoutError, SlotAbandoned,
    TaskDoneError, TryGetError, TryPutError,
};
use super::peers::PeerTable;
use super::unbounded;
use super::unbounded_pod::Chain;
use super::wait::{WaitCell, wait_all_done, wait_for};
use crate::error::{Error, Result};
use crate::segment::Segment;
use crate::segment::handle::{Locator, SegmentHandle};
use crate::segment::header::{HEADER_SIZE, Kind, Layout, TypeDesc};
use crate::segment::options::ShmOptions;

/// Identifies a queue control block (and its layout version): `b"SPQUEUE1"`.
const TAG: u64 = u64::from_le_bytes(*b"SPQUEUE1");

/// A value alone on its cache line, so that producers and consumers do not false-share.
#[repr(C, align(64))]
struct Line<T>(T);

/// The control block, at offset 128 of the segment, followed by one sequence number per slot and
/// then (at `data_offset`) the slots' values.
#[repr(C)]
pub(crate) struct Control {
    /// Read-only after creation.
    info: Line<Info>,
    /// Next position a producer claims.
    tail: Line<AtomicU64>,
    /// Next position a consumer claims.
    head: Line<AtomicU64>,
    /// Bumped when an item is published; getters sleep on it.
    not_empty: Line<WaitCell>,
    /// Bumped when a slot is freed; putters sleep on it.
    not_full: Line<WaitCell>,
    /// Joinable queues: items put and not yet marked done, and the cell `join` sleeps on.
    unfinished: Line<(AtomicU64, WaitCell)>,
    producers: PeerTable,
    consumers: PeerTable,
}

#[repr(C)]
struct Info {
    tag: u64,
    capacity: u64,
    joinable: u32,
    closed: AtomicU32,
}

// The layout `README.md` (beside this file) and docs/architecture.md ("Messaging") describe.
const _: () = assert!(std::mem::size_of::<Control>() == 896);

/// Refuses item types whose slots the layout could not align (past `header::MAX_ALIGN`, as
/// `SharedArray` and pool tasks do). Every constructor and opener calls it before touching a
/// segment. A typed error rather than a post-monomorphization `const` assertion, so generic code
/// can match on it and `cargo check` accepts exactly what `cargo build` accepts.
pub(crate) fn check_item_type<T>() -> Result<()> {
    crate::segment::header::check_align(
        "queue item type",
        std::any::type_name::<T>(),
        std::mem::align_of::<T>(),
        "its slots would be misaligned; use a type aligned to at most 4096 (drop or lower its \
         `align(..)`)",
    )
}

/// Where the parts of a queue of `capacity` `T`s lie: (sequence numbers, data offset, total).
///
/// The data offset is a multiple of `max(64, align_of::<T>())`, and `size_of::<T>()` is a
/// multiple of `align_of::<T>()` (Rust guarantees it), so with `align_of::<T>() <=` 4096
/// ([`check_item_type`]) every slot `data + i * size` is aligned in the page-aligned mapping.
fn offsets<T>(capacity: usize) -> Option<(usize, usize, usize)> {
    let seqs = HEADER_SIZE + std::mem::size_of::<Control>();
    let seq_end = seqs.checked_add(capacity.checked_mul(8)?)?;
    let data = seq_end.checked_next_multiple_of(std::mem::align_of::<T>().max(64))?;
    let total = data.checked_add(capacity.checked_mul(std::mem::size_of::<T>())?)?;
    (total <= isize::MAX as usize).then_some((seqs, data, total))
}

/// The parts of a queue segment every handle in a process shares.
pub(crate) struct Inner<T> {
    seg: Segment,
    ctrl: NonNull<Control>,
    seqs: NonNull<AtomicU64>,
    data: NonNull<T>,
    cap: u64,
    /// The token this process registered as a producer / consumer with (0: not yet). After a
    /// fork the child's token differs, so the child registers itself on first use.
    producer_as: AtomicU64,
    consumer_as: AtomicU64,
    _t: PhantomData<T>,
}

// SAFETY: the shared state is reached only through atomics (control block, sequence numbers) and
// through slot values whose ownership the sequence protocol hands to one thread of one process at
// a time; values are `Pod + Send`, so moving them between threads is fine.
unsafe impl<T: Pod + Send> Send for Inner<T> {}
// SAFETY: as above; `&Inner` only performs those synchronised accesses.
unsafe impl<T: Pod + Send> Sync for Inner<T> {}

impl<T: Pod> Inner<T> {
    pub(crate) fn create(capacity: usize, opts: &ShmOptions, joinable: bool) -> Result<Inner<T>> {
        check_item_type::<T>()?;
        if capacity == 0 {
            return Err(Error::InvalidArgument {
                what: "queue capacity",
                reason: "a capacity of 0 could hold nothing; give at least 1".into(),
            });
        }
        let too_large = Error::TooLarge { len: capacity, elem_size: std::mem::size_of::<T>() };
        let (_, data, total) = offsets::<T>(capacity).ok_or(too_large)?;
        let layout = Layout {
            kind: Kind::Queue,
            ty: TypeDesc::of::<T>(),
            len: capacity as u64,
            data_offset: data as u64,
            segment_bytes: total as u64,
        };
        let seg = Segment::create(opts, &layout)?;
        let inner = Self::from_segment(seg, capacity)?;
        // SAFETY: the segment is fresh and unpublished: this process alone can reach it, and the
        // control block lies inside the mapping (offsets() put it before the data offset).
        let info = unsafe { &mut (*inner.ctrl.as_ptr()).info.0 };
        info.tag = TAG;
        info.capacity = capacity as u64;
        info.joinable = joinable as u32;
        for i in 0..capacity {
            inner.seq(i).store(2 * i as u64, Ordering::Relaxed);
        }
        inner.seg.publish();
        Ok(inner)
    }

    /// The bounded queue in an opened `Kind::Queue` segment of `T`.
    fn open_segment(seg: Segment, loc: &Locator) -> Result<Inner<T>> {
        let what = || match loc {
            Locator::Named(n) => format!("queue {n}"),
            Locator::Anonymous { pid, fd } => format!("queue {pid}/{fd}"),
        };
        let cap = seg.len();
        let corrupt = |reason: String| Error::CorruptHeader { what: what(), reason };
        let (_, data, total) =
            offsets::<T>(cap).ok_or_else(|| corrupt("capacity overflows".into()))?;
        if seg.header().data_offset != data as u64 || seg.header().segment_bytes != total as u64 {
            return Err(corrupt(format!("a queue of {cap} items does not have this layout")));
        }
        let inner = Self::from_segment(seg, cap)?;
        let info = &inner.ctrl().info.0;
        if info.tag != TAG || info.capacity != cap as u64 {
            return Err(corrupt(
                "the queue control block is damaged or from another version".into(),
            ));
        }
        Ok(inner)
    }

    fn from_segment(seg: Segment, cap: usize) -> Result<Inner<T>> {
        let (seqs, data, _) =
            offsets::<T>(cap).ok_or(Error::TooLarge { len: cap, elem_size: 0 })?;
        // The data pointer the segment computes from its header, checked against our layout.
        let base = seg.data_ptr().as_ptr().wrapping_sub(data);
        // SAFETY: `base` is the mapping's start (data_ptr = start + data_offset == start + `data`,
        // checked or written by us); the control block (offset 128) and `seqs` lie inside it before
        // `data`, 64- and 8-aligned (page-aligned mapping, offsets multiples of 64).
        let (ctrl, seqs) = unsafe {
            (
                NonNull::new_unchecked(base.add(HEADER_SIZE).cast::<Control>()),
                NonNull::new_unchecked(base.add(seqs).cast::<AtomicU64>()),
            )
        };
        let data = seg.data_ptr().cast::<T>();
        Ok(Inner {
            seg,
            ctrl,
            seqs,
            data,
            cap: cap as u64,
            producer_as: AtomicU64::new(0),
            consumer_as: AtomicU64::new(0),
            _t: PhantomData,
        })
    }

    pub(crate) fn ctrl(&self) -> &Control {
        // SAFETY: the control block lies inside the mapping `self.seg` keeps alive, was
        // initialised before publication (zeroes are valid for every atomic and the padding), and
        // is only mutated through atomics.
        unsafe { self.ctrl.as_ref() }
    }

    fn seq(&self, i: usize) -> &AtomicU64 {
        debug_assert!((i as u64) < self.cap);
        // SAFETY: `i < cap` and the mapping holds `cap` aligned sequence numbers at `seqs`.
        unsafe { &*self.seqs.as_ptr().add(i) }
    }

    pub(crate) fn is_joinable(&self) -> bool {
        self.ctrl().info.0.joinable != 0
    }

    fn closed(&self) -> bool {
        self.ctrl().info.0.closed.load(Ordering::Acquire) != 0
    }

    fn as_producer(&self) {
        self.ctrl().producers.register_cached(&self.producer_as);
    }

    pub(crate) fn as_consumer(&self) {
        self.ctrl().consumers.register_cached(&self.consumer_as);
    }

    /// One attempt to put: `Ok(true)` when stored, `Ok(false)` when full.
    fn try_put(&self, value: T) -> std::result::Result<bool, Closed> {
        let c = self.ctrl();
        if self.closed() {
            return Err(Closed);
        }
        let mut pos = c.tail.0.load(Ordering::Relaxed);
        loop {
            let i = (pos % self.cap) as usize;
            let seq = self.seq(i).load(Ordering::Acquire);
            let diff = seq.wrapping_sub(2 * pos) as i64;
            if diff == 0 {
                match c.tail.0.compare_exchange_weak(
                    pos,
                    pos + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        if self.is_joinable() {
                            c.unfinished.0.0.fetch_add(1, Ordering::Relaxed);
                        }
                        // SAFETY: winning the CAS for `pos` while seq == 2 pos makes this slot ours
                        // alone until we publish it below; `i < cap`, in bounds and aligned.
                        unsafe { self.data.as_ptr().add(i).write(value) };
                        self.seq(i).store(2 * pos + 1, Ordering::Release);
                        c.not_empty.0.notify();
                        return Ok(true);
                    }
                    Err(actual) => pos = actual,
                }
            } else if diff < 0 {
                return Ok(false);
            } else {
                pos = c.tail.0.load(Ordering::Relaxed);
            }
        }
    }

    /// One attempt to get: `Ok(None)` when empty (and not closed).
    fn try_get(&self) -> std::result::Result<Option<T>, Closed> {
        let c = self.ctrl();
        let mut pos = c.head.0.load(Ordering::Relaxed);
        loop {
            let i = (pos % self.cap) as usize;
            let seq = self.seq(i).load(Ordering::Acquire);
            let diff = seq.wrapping_sub(2 * pos + 1) as i64;
            if diff == 0 {
                match c.head.0.compare_exchange_weak(
                    pos,
                    pos + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: winning the CAS for `pos` while seq == 2 pos + 1 makes this
                        // published slot ours alone until we hand it back below; the acquire load
                        // of `seq` made the producer's write visible. Any bytes are a valid `T`.
                        let v = unsafe { self.data.as_ptr().add(i).read() };
                        self.seq(i).store(2 * (pos + self.cap), Ordering::Release);
                        c.not_full.0.notify();
                        return Ok(Some(v));
                    }
                    Err(actual) => pos = actual,
                }
            } else if diff < 0 {
                return if self.closed() { Err(Closed) } else { Ok(None) };
            } else {
                pos = c.head.0.load(Ordering::Relaxed);
            }
        }
    }

    /// The position a getter waits behind when a producer claimed it (moved `tail` past it)
    /// but has not published it.
    fn producer_hole(&self) -> Option<u64> {
        let c = self.ctrl();
        let head = c.head.0.load(Ordering::Acquire);
        let tail = c.tail.0.load(Ordering::Acquire);
        let seq = self.seq((head % self.cap) as usize).load(Ordering::Acquire);
        (tail > head && seq == 2 * head).then_some(head)
    }

    /// The position whose slot a putter waits for when a consumer claimed it (moved `head`
    /// past it) but has not freed it.
    fn consumer_hole(&self) -> Option<u64> {
        let c = self.ctrl();
        let tail = c.tail.0.load(Ordering::Acquire);
        let head = c.head.0.load(Ordering::Acquire);
        let prev = tail.checked_sub(self.cap)?;
        let seq = self.seq((tail % self.cap) as usize).load(Ordering::Acquire);
        (head > prev && seq == 2 * prev + 1).then_some(prev)
    }

    /// The dead-peer check a wait runs after each slice that ended with no wake: the other side
    /// all gone is `PeerDied`; a slot stuck at the same position for two such checks in a row
    /// while some process of the claiming side has exited is `SlotAbandoned` (the claimer died
    /// between its claim and its release, and nothing will ever release it).
    fn stuck_check<E: From<PeersGone> + From<SlotAbandoned>>(
        &self,
        producer_side: bool,
        last: &mut Option<u64>,
    ) -> std::result::Result<(), E> {
        let c = self.ctrl();
        let (table, hole) = if producer_side {
            (&c.producers, self.producer_hole())
        } else {
            (&c.consumers, self.consumer_hole())
        };
        table.check_gone::<E>()?;
        if let Some(pos) = hole
            && *last == Some(pos)
            && table.any_dead()
        {
            return Err(SlotAbandoned(pos).into());
        }
        *last = hole;
        Ok(())
    }

    /// Puts `value`, waiting for room as `limit` says ([`PutError`] or [`PutTimeoutError`]).
    pub(crate) fn put<E>(&self, value: T, limit: Limit<E>) -> std::result::Result<(), E>
    where
        E: From<Closed> + From<PeersGone> + From<SlotAbandoned>,
    {
        self.as_producer();
        let mut last = None;
        wait_for(
            &self.ctrl().not_full.0,
            limit,
            || Ok(self.try_put(value)?.then_some(())),
            || self.stuck_check(false, &mut last),
        )
    }

    /// Takes an item, waiting as `limit` says ([`GetError`] or [`GetTimeoutError`]).
    pub(crate) fn get<E>(&self, limit: Limit<E>) -> std::result::Result<T, E>
    where
        E: From<Closed> + From<PeersGone> + From<SlotAbandoned>,
    {
        self.as_consumer();
        let mut last = None;
        wait_for(
            &self.ctrl().not_empty.0,
            limit,
            || Ok(self.try_get()?),
            || self.stuck_check(true, &mut last),
        )
    }

    pub(crate) fn put_nowait(&self, value: T) -> std::result::Result<(), TryPutError> {
        self.as_producer();
        if self.try_put(value)? { Ok(()) } else { Err(TryPutError::Full { capacity: self.cap }) }
    }

    pub(crate) fn get_nowait(&self) -> std::result::Result<T, TryGetError> {
        self.as_consumer();
        self.try_get()?.ok_or(TryGetError::Empty)
    }

    pub(crate) fn qsize(&self) -> usize {
        let c = self.ctrl();
        // Read head first: it never passes tail, so the difference cannot go negative except
        // through a race with both moving, which the saturation absorbs.
        let head = c.head.0.load(Ordering::Acquire);
        let tail = c.tail.0.load(Ordering::Acquire);
        tail.saturating_sub(head).min(self.cap) as usize
    }

    pub(crate) fn close(&self) {
        let c = self.ctrl();
        c.info.0.closed.store(1, Ordering::SeqCst);
        c.not_empty.0.notify_all();
        c.not_full.0.notify_all();
        c.unfinished.0.1.notify_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap as usize
    }

    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    /// Joinable queues: marks one item done.
    pub(crate) fn task_done(&self) -> std::result::Result<(), TaskDoneError> {
        let (count, cell) = &self.ctrl().unfinished.0;
        let mut n = count.load(Ordering::Relaxed);
        loop {
            if n == 0 {
                return Err(TaskDoneError);
            }
            match count.compare_exchange_weak(n, n - 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => break,
                Err(actual) => n = actual,
            }
        }
        if n == 1 {
            cell.notify();
        }
        Ok(())
    }

    /// Joinable queues: waits until every item put was marked done, as `limit` says
    /// ([`JoinError`](super::error::JoinError) or
    /// [`JoinTimeoutError`](super::error::JoinTimeoutError)).
    pub(crate) fn join<E: From<Closed> + From<PeersGone>>(
        &self,
        limit: Limit<E>,
    ) -> std::result::Result<(), E> {
        let (count, cell) = &self.ctrl().unfinished.0;
        wait_all_done(cell, count, limit, || self.closed(), &self.ctrl().consumers)
    }

    pub(crate) fn unfinished(&self) -> u64 {
        self.ctrl().unfinished.0.0.load(Ordering::Acquire)
    }
}

/// A multi-producer multi-consumer queue of `Pod` items in shared memory, Python's
/// `multiprocessing.Queue` for plain data: unbounded by default ([`Queue::new`], Python's
/// `Queue()`, whose puts never wait for room, so "join the producers, then drain the queue"
/// works) or bounded ([`Queue::bounded`]`(capacity)`, Python's `Queue(maxsize)`, whose puts
/// wait for room, through lock-free slots: about 3x faster per item here). Unbounded items
/// travel as frames under a lock in a chain of rings that grows, as a
/// [`MessageQueue`](crate::MessageQueue)'s messages do.
///
/// A bounded queue's items are copied into a ring in a segment of its own; every process that
/// holds the queue (a forked child through a borrow or a clone, any process through
/// [`handle`](Queue::handle) and [`open_handle`](Queue::open_handle) or a name) puts and gets
/// without a lock or a syscall while the queue is neither empty nor full. A wait spins briefly,
/// then sleeps on a shared futex.
///
/// Every wait can end: [`put`](Queue::put) and [`get`](Queue::get) have `_timeout` and
/// `_nowait` forms; [`close`](Queue::close) ends every wait in every process with `Closed`;
/// and a getter whose producers have all exited (or a putter whose consumers have all exited)
/// gets `PeerDied` instead of waiting for ever. A process counts as a producer from its first
/// put, as a consumer from its first get. Each operation returns an error type of its own
/// ([`GetError`], [`PutTimeoutError`], ...: see [`shmpool::queue`](crate::queue)) that lists
/// exactly how it can fail and converts into [`Error`] for `?`.
///
/// `Queue` is a cheap handle: clones share one mapping.
///
/// ```no_run
/// // (no_run: doctests run in a multi-threaded harness, where fork is refused.)
/// use shmpool::Queue;
///
/// // Items are `Pod`: (producer, sequence number) pairs as arrays.
/// let q = Queue::<[u64; 2]>::bounded(1024)?;
/// shmpool::scope(|s| {
///     for p in 0..2u64 {
///         let q = &q;
///         s.fork(move || (0..1000u64).try_for_each(|i| q.put([p, i])))?;
///     }
///     let mut got = 0;
///     while got < 2000 {
///         q.get()?;
///         got += 1;
///     }
///     Ok::<(), shmpool::Error>(())
/// })??;
/// assert!(q.is_empty());
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct Queue<T: Pod> {
    pub(crate) flavor: Flavor<T>,
}

/// The two rings a `Queue` can be: this file's bounded ring, or the unbounded chain.
pub(crate) enum Flavor<T: Pod> {
    Bounded(Arc<Inner<T>>),
    Unbounded(Arc<Chain<T>>),
}

impl<T: Pod> Clone for Queue<T> {
    fn clone(&self) -> Self {
        let flavor = match &self.flavor {
            Flavor::Bounded(i) => Flavor::Bounded(Arc::clone(i)),
            Flavor::Unbounded(i) => Flavor::Unbounded(Arc::clone(i)),
        };
        Queue { flavor }
    }
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

impl<T: Pod> Queue<T> {
    /// An anonymous queue that holds at most `capacity` items.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a capacity of 0, or for an item type aligned to more than
    /// 4096 bytes (a mapping is only page-aligned, so its slots could not be aligned); this and
    /// every other constructor and opener check it.
    ///
    /// ```
    /// let q = shmpool::Queue::<u64>::bounded(16)?;
    /// q.put(7)?;
    /// assert_eq!(q.get()?, 7);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn bounded(capacity: usize) -> Result<Queue<T>> {
        Self::bounded_with(capacity, &ShmOptions::new())
    }

    /// A queue created as `opts` says (named, pre-faulted...).
    ///
    /// ```
    /// use shmpool::{Queue, ShmOptions};
    /// let q = Queue::<u32>::bounded_with(8, &ShmOptions::new().generated_name())?;
    /// let again = Queue::<u32>::open(q.name().unwrap())?;
    /// again.put(5)?;
    /// assert_eq!(q.get()?, 5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn bounded_with(capacity: usize, opts: &ShmOptions) -> Result<Queue<T>> {
        Ok(Queue { flavor: Flavor::Bounded(Arc::new(Inner::create(capacity, opts, false)?)) })
    }

    /// An anonymous unbounded queue, Python's `Queue()` for plain data: a put never waits for
    /// room (the queue grows by chaining rings in shared memory, see
    /// [`MessageQueue::new`](crate::MessageQueue::new)), so "join the producers, then drain the
    /// queue" works. Items travel as frames under a lock rather than through the bounded ring's
    /// lock-free slots. A put that finds `/dev/shm` full fails with [`PutError::OutOfSpace`].
    ///
    /// ```
    /// let q = shmpool::Queue::<[u32; 2]>::new()?;
    /// for i in 0..100_000 {
    ///     q.put([i, i * 2])?; // never waits
    /// }
    /// assert_eq!(q.get()?, [0, 0]);
    /// assert_eq!(q.qsize(), 99_999);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new() -> Result<Queue<T>> {
        Self::new_with(&ShmOptions::new())
    }

    /// An unbounded queue whose anchor segment is created as `opts` says; its rings are always
    /// named, as [`MessageQueue::new_with`](crate::MessageQueue::new_with)'s are.
    ///
    /// ```
    /// use shmpool::{Queue, ShmOptions};
    /// let q = Queue::<u64>::new_with(&ShmOptions::new().generated_name())?;
    /// let again = Queue::<u64>::open(q.name().unwrap())?;
    /// again.put(5)?;
    /// assert_eq!(q.get()?, 5);
    /// assert!(Queue::<u32>::open(q.name().unwrap()).is_err()); // wrong item type
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(opts: &ShmOptions) -> Result<Queue<T>> {
        check_item_type::<T>()?;
        Ok(Queue { flavor: Flavor::Unbounded(Arc::new(Chain::create(opts, false)?)) })
    }

    /// Opens the named queue another process created, checking the item type.
    ///
    /// ```
    /// use shmpool::{Queue, ShmOptions};
    /// let q = Queue::<u16>::bounded_with(4, &ShmOptions::new().generated_name())?;
    /// assert!(Queue::<u64>::open(q.name().unwrap()).is_err()); // wrong item type
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn open(name: &str) -> Result<Queue<T>> {
        Self::open_at(&Locator::Named(name.to_string()), None)
    }

    /// Opens the queue a [`SegmentHandle`] refers to, checking the item type.
    ///
    /// ```
    /// let q = shmpool::Queue::<i32>::bounded(4)?;
    /// let other = shmpool::Queue::<i32>::open_handle(&q.handle())?;
    /// other.put(-1)?;
    /// assert_eq!(q.get()?, -1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn open_handle(handle: &SegmentHandle) -> Result<Queue<T>> {
        Self::open_at(&handle.loc, Some(handle.nonce))
    }

    pub(crate) fn open_at(loc: &Locator, nonce: Option<u64>) -> Result<Queue<T>> {
        check_item_type::<T>()?;
        let seg = Segment::open_typed(loc, nonce, Kind::Queue, &TypeDesc::of::<T>())?;
        let flavor = if unbounded::control_tag(&seg) == unbounded::TAG {
            Flavor::Unbounded(Arc::new(Chain::open(seg, loc)?))
        } else {
            Flavor::Bounded(Arc::new(Inner::open_segment(seg, loc)?))
        };
        Ok(Queue { flavor })
    }

    /// A handle another process can open with [`open_handle`](Queue::open_handle).
    ///
    /// ```
    /// let q = shmpool::Queue::<u8>::bounded(1)?;
    /// println!("{}", q.handle());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn handle(&self) -> SegmentHandle {
        with_flavor!(self, i => i.segment().handle())
    }

    /// The segment's name, for named queues.
    ///
    /// ```
    /// assert_eq!(shmpool::Queue::<u8>::bounded(1)?.name(), None);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        with_flavor!(self, i => i.segment().name())
    }

    /// Puts `item`, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`PutError::Closed`] if the queue is or gets closed; [`PutError::PeerDied`] if every
    /// consumer that ever got from the queue has exited while it is full;
    /// [`PutError::SlotAbandoned`] if a consumer died holding the slot this put waits for. Each
    /// converts into the [`Error`] variant of that name.
    ///
    /// ```
    /// let q = shmpool::Queue::<u64>::bounded(2)?;
    /// q.put(1)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn put(&self, item: T) -> std::result::Result<(), PutError> {
        with_flavor!(self, i => i.put(item, None))
    }

    /// Puts `item`, waiting at most `timeout` for room; then [`PutTimeoutError::Timeout`]. The
    /// other errors are [`put`](Queue::put)'s.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shmpool::Queue::<u64>::bounded(1)?;
    /// q.put(1)?;
    /// let e = q.put_timeout(2, Duration::from_millis(10)).unwrap_err();
    /// assert!(matches!(e, shmpool::queue::PutTimeoutError::Timeout { .. }));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn put_timeout(
        &self,
        item: T,
        timeout: Duration,
    ) -> std::result::Result<(), PutTimeoutError> {
        let limit = Some((timeout, PutTimeoutError::Timeout { after: timeout }));
        with_flavor!(self, i => i.put(item, limit))
    }

    /// Puts `item` if there is room now, else fails with [`TryPutError::Full`]
    /// ([`TryPutError::Closed`] once closed).
    ///
    /// ```
    /// let q = shmpool::Queue::<u64>::bounded(1)?;
    /// q.put_nowait(1)?;
    /// assert!(matches!(q.put_nowait(2), Err(shmpool::queue::TryPutError::Full { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn put_nowait(&self, item: T) -> std::result::Result<(), TryPutError> {
        with_flavor!(self, i => i.put_nowait(item))
    }

    /// Takes the oldest item, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] once the queue is closed and empty (items put before `close` are
    /// still delivered); [`GetError::PeerDied`] if every producer that ever put has exited and
    /// the queue is empty; [`GetError::SlotAbandoned`] if a producer died between claiming the
    /// next slot and filling it. Each converts into the [`Error`] variant of that name.
    ///
    /// ```
    /// let q = shmpool::Queue::<u64>::bounded(2)?;
    /// q.put(9)?;
    /// assert_eq!(q.get()?, 9);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get(&self) -> std::result::Result<T, GetError> {
        with_flavor!(self, i => i.get(None))
    }

    /// Takes the oldest item, waiting at most `timeout`; then [`GetTimeoutError::Timeout`]. The
    /// other errors are [`get`](Queue::get)'s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmpool::queue::GetTimeoutError;
    /// let q = shmpool::Queue::<u64>::bounded(1)?;
    /// assert!(matches!(q.get_timeout(Duration::from_millis(5)), Err(GetTimeoutError::Timeout { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> std::result::Result<T, GetTimeoutError> {
        let limit = Some((timeout, GetTimeoutError::Timeout { after: timeout }));
        with_flavor!(self, i => i.get(limit))
    }

    /// Takes the oldest item if there is one now, else fails with [`TryGetError::Empty`]
    /// ([`TryGetError::Closed`] once closed and empty).
    ///
    /// ```
    /// let q = shmpool::Queue::<u64>::bounded(1)?;
    /// assert!(matches!(q.get_nowait(), Err(shmpool::queue::TryGetError::Empty)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_nowait(&self) -> std::result::Result<T, TryGetError> {
        with_flavor!(self, i => i.get_nowait())
    }

    /// How many items the queue holds (a snapshot: other processes may change it at once).
    ///
    /// ```
    /// let q = shmpool::Queue::<u8>::bounded(4)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// assert_eq!(q.qsize(), 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn qsize(&self) -> usize {
        with_flavor!(self, i => i.qsize())
    }

    /// Whether the queue holds no items (a snapshot). Python's `Queue.empty()`.
    ///
    /// ```
    /// assert!(shmpool::Queue::<u8>::bounded(4)?.is_empty());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[doc(alias = "empty")]
    pub fn is_empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether the queue holds `capacity` items (a snapshot). Python's `Queue.full()`.
    ///
    /// ```
    /// let q = shmpool::Queue::<u8>::bounded(1)?;
    /// q.put(0)?;
    /// assert!(q.is_full());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[doc(alias = "full")]
    pub fn is_full(&self) -> bool {
        self.qsize() >= self.capacity()
    }

    /// The most items the queue holds.
    ///
    /// ```
    /// assert_eq!(shmpool::Queue::<u8>::bounded(3)?.capacity(), 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn capacity(&self) -> usize {
        with_flavor!(self, i => i.capacity())
    }

    /// Closes the queue for every process: puts fail at once, gets deliver what is left and then
    /// fail, and every waiter (in any process) wakes with its operation's `Closed`
    /// ([`GetError::Closed`], [`PutError::Closed`], ...). Closing twice is harmless.
    ///
    /// ```
    /// use shmpool::queue::{GetError, PutError};
    /// let q = shmpool::Queue::<u8>::bounded(2)?;
    /// q.put(1)?;
    /// q.close();
    /// assert_eq!(q.put(2), Err(PutError::Closed));
    /// assert_eq!(q.get()?, 1);
    /// assert_eq!(q.get(), Err(GetError::Closed));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn close(&self) {
        with_flavor!(self, i => i.close())
    }

    /// Whether the queue was closed (by any process).
    ///
    /// ```
    /// let q = shmpool::Queue::<u8>::bounded(2)?;
    /// q.close();
    /// assert!(q.is_closed());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        with_flavor!(self, i => i.is_closed())
    }
}

impl<T: Pod> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("type", &TypeDesc::of::<T>().describe())
            .field("capacity", &self.capacity())
            .field("qsize", &self.qsize())
            .field("handle", &self.handle().to_string())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::ShmOptions;

    #[test]
    fn threads_deliver_every_item_once_in_producer_order() {
        const P: u64 = 4;
        const N: u64 = 5_000;
        let q = Queue::<[u64; 2]>::bounded(8).unwrap();
        let got: Vec<Vec<[u64; 2]>> = std::thread::scope(|s| {
            for p in 0..P {
                let q = q.clone();
                s.spawn(move || (0..N).for_each(|i| q.put([p, i]).unwrap()));
            }
            let consumers: Vec<_> = (0..3)
                .map(|_| {
                    let q = q.clone();
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        while let Ok(v) = q.get_timeout(Duration::from_millis(500)) {
                            mine.push(v);
                        }
                        mine
                    })
                })
                .collect();
            consumers.into_iter().map(|c| c.join().unwrap()).collect()
        });
        let mut count = vec![0u32; (P * N) as usize];
        for mine in &got {
            let mut last = [None; P as usize];
            for &[p, i] in mine {
                assert!(last[p as usize].is_none_or(|l| l < i), "producer {p} out of order");
                last[p as usize] = Some(i);
                count[(p * N + i) as usize] += 1;
            }
        }
        assert!(count.iter().all(|&c| c == 1));
    }

    /// A page-sized-and-more alignment: the mapping is only 4096-aligned, so no offset inside
    /// it can place such items correctly.
    #[repr(C, align(8192))]
    #[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
    struct OverAligned([[u8; 4096]; 2]);

    #[test]
    fn items_aligned_past_a_page_are_refused_by_every_constructor() {
        let refused = |r: Result<()>| match r {
            Err(Error::InvalidArgument { what: "queue item type", reason }) => {
                assert!(reason.contains("8192") && reason.contains("4096"), "{reason}")
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        };
        refused(Queue::<OverAligned>::bounded(1).map(drop));
        refused(
            Queue::<OverAligned>::bounded_with(1, &ShmOptions::new().generated_name()).map(drop),
        );
        refused(crate::JoinableQueue::<OverAligned>::bounded(1).map(drop));
        refused(crate::JoinableQueue::<OverAligned>::new().map(drop));
        // Opening checks the item type before the segment: the same error whatever is there.
        let other = Queue::<u8>::bounded_with(1, &ShmOptions::new().generated_name()).unwrap();
        refused(Queue::<OverAligned>::open(other.name().unwrap()).map(drop));
        refused(Queue::<OverAligned>::open_handle(&other.handle()).map(drop));
        refused(crate::JoinableQueue::<OverAligned>::open_handle(&other.handle()).map(drop));
    }

    #[repr(C, align(128))]
    #[derive(Clone, Copy, PartialEq, Debug, bytemuck::Zeroable, bytemuck::Pod)]
    struct Align128([u64; 16]);

    #[repr(C, align(256))]
    #[derive(Clone, Copy, PartialEq, Debug, bytemuck::Zeroable, bytemuck::Pod)]
    struct Align256([[u8; 256]; 2]);

    #[repr(C, align(4096))]
    #[derive(Clone, Copy, PartialEq, Debug, bytemuck::Zeroable, bytemuck::Pod)]
    struct Align4096([u8; 4096]);

    /// Puts and gets `mk(0..)` through a queue of 5 slots (the sequence numbers end at 1064, a
    /// multiple of none of the larger alignments), wrapping the ring, and checks that every
    /// mapping of it places the data at an aligned address.
    fn round_trips_aligned<T: Pod + PartialEq + fmt::Debug>(mk: impl Fn(u8) -> T) {
        let q = Queue::<T>::bounded(5).unwrap();
        let other = Queue::<T>::open_handle(&q.handle()).unwrap();
        for h in [&q, &other] {
            let Flavor::Bounded(inner) = &h.flavor else { panic!("a bounded queue") };
            let addr = inner.data.as_ptr() as usize;
            assert_eq!(addr % std::mem::align_of::<T>(), 0, "{}", std::any::type_name::<T>());
        }
        for i in 0..23u8 {
            q.put(mk(i)).unwrap();
            if i >= 3 {
                assert_eq!(other.get().unwrap(), mk(i - 3));
            }
        }
        for i in 20..23u8 {
            assert_eq!(other.get().unwrap(), mk(i));
        }
        assert!(q.is_empty());
    }

    #[test]
    fn items_of_every_alignment_up_to_a_page_round_trip() {
        round_trips_aligned(|_| ()); // no bytes: every slot sits at the end of the mapping
        round_trips_aligned(|i| [i; 3]); // 3 bytes: not a multiple of 8 or 64
        round_trips_aligned(|i| [u16::from(i) * 7; 5]);
        round_trips_aligned(|i| Align128([u64::from(i) << 40 | 3; 16]));
        round_trips_aligned(|i| Align256([[i; 256], [!i; 256]]));
        round_trips_aligned(|i| {
            let mut page = [i; 4096];
            page[4095] = !i;
            Align4096(page)
        });
    }

    #[test]
    fn capacity_zero_is_refused() {
        assert!(matches!(Queue::<u8>::bounded(0), Err(Error::InvalidArgument { .. })));
    }

    #[test]
    fn full_and_empty_and_qsize_follow_puts_and_gets() {
        let q = Queue::<u32>::bounded(3).unwrap();
        assert!(q.is_empty() && !q.is_full());
        for i in 0..3 {
            q.put_nowait(i).unwrap();
        }
        assert!(q.is_full());
        assert_eq!(q.qsize(), 3);
        assert!(matches!(q.put_nowait(9), Err(TryPutError::Full { .. })));
        // Wrap around the ring several times, keeping FIFO order.
        for i in 3..100 {
            assert_eq!(q.get_nowait().unwrap(), i - 3);
            q.put_nowait(i).unwrap();
        }
        assert_eq!([q.get().unwrap(), q.get().unwrap(), q.get().unwrap()], [97, 98, 99]);
        assert!(matches!(q.get_nowait(), Err(TryGetError::Empty)));
    }

    #[test]
    fn timeouts_fire_and_say_what_timed_out() {
        let q = Queue::<u64>::bounded(1).unwrap();
        let t0 = std::time::Instant::now();
        let e = q.get_timeout(Duration::from_millis(30)).unwrap_err();
        assert!(t0.elapsed() >= Duration::from_millis(30));
        assert!(e.to_string().contains("Queue::get timed out"), "{e}");
        q.put(1).unwrap();
        let e = q.put_timeout(2, Duration::from_millis(30));
        assert!(matches!(e, Err(PutTimeoutError::Timeout { .. })));
    }

    #[test]
    fn close_wakes_a_sleeping_thread_and_drains_first() {
        let q = Queue::<u64>::bounded(4).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| q.get());
            std::thread::sleep(Duration::from_millis(100));
            q.close();
            assert!(matches!(waiter.join().unwrap(), Err(GetError::Closed)));
        });
        let q = Queue::<u64>::bounded(4).unwrap();
        q.put(1).unwrap();
        q.close();
        assert!(matches!(q.put_nowait(2), Err(TryPutError::Closed)));
        assert_eq!(q.get().unwrap(), 1);
        assert!(matches!(q.get(), Err(GetError::Closed)));
    }

    #[test]
    fn opening_checks_type_kind_and_name() {
        let q = Queue::<u32>::bounded_with(4, &ShmOptions::new().generated_name()).unwrap();
        let name = q.name().unwrap().to_string();
        assert!(matches!(Queue::<i32>::open(&name), Err(Error::TypeMismatch { .. })));
        assert!(matches!(Queue::<u64>::open(&name), Err(Error::TypeMismatch { .. })));
        let arr =
            crate::SharedArray::<u32>::zeroed_with(4, &ShmOptions::new().generated_name()).unwrap();
        assert!(matches!(Queue::<u32>::open(arr.name().unwrap()), Err(Error::KindMismatch { .. })));
        let again = Queue::<u32>::open(&name).unwrap();
        again.put(3).unwrap();
        assert_eq!(q.get().unwrap(), 3);
        assert_eq!(again.capacity(), 4);
    }

    #[test]
    fn joinable_counts_and_join_waits_for_task_done() {
        joinable_counts(crate::JoinableQueue::<u8>::bounded(4).unwrap());
        joinable_counts(crate::JoinableQueue::<u8>::new().unwrap());
        for plain in [Queue::<u8>::bounded(1).unwrap(), Queue::<u8>::new().unwrap()] {
            assert!(matches!(
                crate::JoinableQueue::<u8>::open_handle(&plain.handle()),
                Err(Error::KindMismatch { .. })
            ));
        }
    }

    /// Both flavours: `join` waits for the last `task_done`, one too many is refused, and a
    /// plain `Queue` opened on the joinable segment still counts its puts.
    fn joinable_counts(q: crate::JoinableQueue<u8>) {
        q.put(1).unwrap();
        q.put(2).unwrap();
        assert_eq!(q.unfinished(), 2);
        std::thread::scope(|s| {
            let joiner = s.spawn(|| q.join_timeout(Duration::from_secs(10)));
            q.get().unwrap();
            q.task_done().unwrap();
            q.get().unwrap();
            std::thread::sleep(Duration::from_millis(50));
            assert!(!joiner.is_finished());
            q.task_done().unwrap();
            joiner.join().unwrap().unwrap();
        });
        assert!(matches!(q.task_done(), Err(TaskDoneError)));
        // A plain Queue opened on a joinable segment still counts its puts.
        let plain = Queue::<u8>::open_handle(&q.handle()).unwrap();
        plain.put(3).unwrap();
        assert_eq!(q.unfinished(), 1);
        assert!(matches!(
            q.join_timeout(Duration::from_millis(20)),
            Err(crate::queue::JoinTimeoutError::Timeout { .. })
        ));
        assert_eq!(q.get().unwrap(), 3);
        q.task_done().unwrap();
        q.join().unwrap();
        q.close();
    }
}
