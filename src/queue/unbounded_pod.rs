//! The unbounded flavour of `Queue<T>` (`Queue::new()`): each `Pod` item is one frame of
//! exactly `size_of::<T>()` bytes, tagged with `T`'s type, in the chain of rings of
//! `unbounded.rs`. Puts never wait for room; the item type is checked when the queue is opened
//! (its anchor is a `Kind::Queue` of `T`, as a bounded queue's segment is) and again on every get
//! (the frame's tag and length). Protocol: "Unbounded `MessageQueue`" in `README.md`; this file
//! only turns items into frames and back.

use std::marker::PhantomData;

use bytemuck::Pod;

use super::codec::{Want, type_tag};
use super::error::{
    BadFrame, Closed, GrowFailed, Limit, PeersGone, TaskDoneError, TooLarge, TryGetError,
    TryPutError,
};
use super::unbounded;
use super::wait::SLICE;
use crate::error::Result;
use crate::segment::Segment;
use crate::segment::handle::Locator;
use crate::segment::header::{Kind, TypeDesc};
use crate::segment::options::ShmOptions;

/// An unbounded queue of `T`s as one process sees it.
pub(crate) struct Chain<T> {
    inner: unbounded::Inner,
    _t: PhantomData<fn() -> T>,
}

impl<T: Pod> Chain<T> {
    /// A new queue (the caller checked `T`'s alignment, as for a bounded queue); a `joinable`
    /// one counts unfinished items (`JoinableQueue::new`).
    pub(crate) fn create(opts: &ShmOptions, joinable: bool) -> Result<Chain<T>> {
        let size = std::mem::size_of::<T>().max(1);
        let ty = TypeDesc::of::<T>();
        let inner = unbounded::Inner::create_as(Kind::Queue, ty, size, opts, joinable)?;
        Ok(Chain { inner, _t: PhantomData })
    }

    /// The queue in an opened `Kind::Queue` segment of `T` whose control block has
    /// [`unbounded::TAG`].
    pub(crate) fn open(seg: Segment, loc: &Locator) -> Result<Chain<T>> {
        Ok(Chain { inner: unbounded::Inner::open(seg, loc)?, _t: PhantomData })
    }

    pub(crate) fn segment(&self) -> &Segment {
        self.inner.segment()
    }

    /// The item in a frame's payload: exactly `size_of::<T>()` bytes (the tag said `T`).
    fn item(bytes: &[u8]) -> std::result::Result<T, BadFrame> {
        if bytes.len() != std::mem::size_of::<T>() {
            return Err(BadFrame(format!(
                "a frame tagged as {} holds {} bytes, not {}; the queue is corrupt",
                std::any::type_name::<T>(),
                bytes.len(),
                std::mem::size_of::<T>()
            )));
        }
        // A zero-sized item has no bytes to read (and `pod_read_unaligned` wants its size).
        Ok(if bytes.is_empty() { T::zeroed() } else { bytemuck::pod_read_unaligned(bytes) })
    }

    /// Puts `value`; waits only for the lock, as `limit` says.
    pub(crate) fn put<E>(&self, value: T, limit: Limit<E>) -> std::result::Result<(), E>
    where
        E: From<Closed> + From<BadFrame> + From<TooLarge> + From<GrowFailed>,
    {
        self.inner.put(type_tag::<T>(), bytemuck::bytes_of(&value), limit)
    }

    pub(crate) fn put_nowait(&self, value: T) -> std::result::Result<(), TryPutError> {
        let timed_out = TryPutError::Timeout { after: SLICE };
        self.inner.put_soon(type_tag::<T>(), bytemuck::bytes_of(&value), timed_out)
    }

    /// Takes the oldest item, waiting as `limit` says.
    pub(crate) fn get<E>(&self, limit: Limit<E>) -> std::result::Result<T, E>
    where
        E: From<Closed> + From<PeersGone> + From<BadFrame> + Clone,
    {
        Ok(Self::item(&self.inner.get(Want::of::<T>(), limit)?)?)
    }

    pub(crate) fn get_nowait(&self) -> std::result::Result<T, TryGetError> {
        let timed_out = TryGetError::Timeout { after: SLICE };
        match self.inner.get_soon(Want::of::<T>(), timed_out)? {
            Some(bytes) => Ok(Self::item(&bytes)?),
            None => Err(TryGetError::Empty),
        }
    }

    pub(crate) fn qsize(&self) -> usize {
        self.inner.qsize()
    }

    pub(crate) fn close(&self) {
        self.inner.close()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.inner.closed()
    }

    pub(crate) fn is_joinable(&self) -> bool {
        self.inner.is_joinable()
    }

    pub(crate) fn as_consumer(&self) {
        self.inner.as_consumer()
    }

    pub(crate) fn task_done(&self) -> std::result::Result<(), TaskDoneError> {
        self.inner.task_done()
    }

    pub(crate) fn join<E: From<Closed> + From<PeersGone>>(
        &self,
        limit: Limit<E>,
    ) -> std::result::Result<(), E> {
        self.inner.join(limit)
    }

    pub(crate) fn unfinished(&self) -> u64 {
        self.inner.unfinished()
    }

    /// No bound: `usize::MAX`.
    pub(crate) fn capacity(&self) -> usize {
        usize::MAX
    }
}

#[cfg(test)]
mod tests {
    use crate::queue::{GetError, PutError, TryGetError};
    use crate::{Error, JoinableQueue, Queue, ShmOptions};

    #[test]
    fn items_pass_through_several_rings_in_order() {
        let q = Queue::<[u64; 4]>::new().unwrap();
        let other = Queue::<[u64; 4]>::open_handle(&q.handle()).unwrap();
        // 44-byte frames: 64 KiB + 128 KiB + 256 KiB + 512 KiB need more than 20,000 of them.
        for i in 0..30_000u64 {
            other.put([i, i + 1, i + 2, i + 3]).unwrap();
        }
        assert_eq!(q.qsize(), 30_000);
        assert!(!q.is_full());
        assert_eq!(q.capacity(), usize::MAX);
        for i in 0..30_000u64 {
            assert_eq!(q.get().unwrap(), [i, i + 1, i + 2, i + 3]);
        }
        assert_eq!(q.get_nowait(), Err(TryGetError::Empty));
        q.close();
        assert_eq!(other.put([0; 4]), Err(PutError::Closed));
        assert_eq!(other.get(), Err(GetError::Closed));
    }

    #[test]
    fn the_item_type_is_checked_at_open_and_joinable_opens_are_refused() {
        let q = Queue::<u64>::new_with(&ShmOptions::new().generated_name()).unwrap();
        let name = q.name().unwrap();
        assert!(matches!(Queue::<u32>::open(name), Err(Error::TypeMismatch { .. })));
        assert!(JoinableQueue::<u64>::open(name).is_err());
        Queue::<u64>::open(name).unwrap().put(7).unwrap();
        assert_eq!(q.get().unwrap(), 7);
        assert!(format!("{q:?}").contains("capacity"));
    }

    #[test]
    fn zero_sized_items_count() {
        let q = Queue::<()>::new().unwrap();
        for _ in 0..5 {
            q.put(()).unwrap();
        }
        assert_eq!(q.qsize(), 5);
        while q.get_nowait().is_ok() {}
        assert!(q.is_empty());
    }
}
