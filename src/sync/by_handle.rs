//! Shared objects as arguments: every object made for sharing (locks, semaphores, events,
//! conditions, barriers, [`SharedValue`], [`SharedAtomic`], [`LockedArray`], and the queues:
//! [`Queue`], [`JoinableQueue`], [`MessageQueue`], bounded or unbounded) is serde, encoded
//! as its handle and decoded by opening that handle, so it can be passed to a `Process` target
//! (or anything that takes serde arguments) under every start method and arrives open.
//!
//! - Under `spawn` and `forkserver`, the argument crosses encoded; the [`Process`] keeps the
//!   parent's value until the child has ended, since an anonymous (memfd) object's handle names
//!   the parent's descriptor, which must stay open until the child has opened it. The parent
//!   also decodes the arguments once before starting (to refuse a type that cannot cross), which
//!   opens and closes each object once.
//! - Under `fork`, the argument is moved into the child's copy of memory, where locks,
//!   semaphores, events, values, atomics and queues keep working. A [`LockedArray`]'s elements
//!   are not inherited by a fork (they are array memory, kept out of every child): under `fork`
//!   pass its [`handle`](LockedArray::handle) and open it in the child.
//! - Decoding fails (a serde error naming the cause, `StaleHandle` or `KindMismatch`) when the
//!   object is gone or the handle names something else.
//!
//! A [`Connection`] (one end of a [`pipe`](crate::pipe)) is an argument too, though it is a
//! socket, not shared memory: it encodes as the index of its descriptor among those the job
//! passes, and the descriptor itself travels beside the job (`process::entry::pass_fd`): with
//! the forkserver request (`SCM_RIGHTS`), or inherited by a spawn child at a number its job
//! names. Under `fork` it is moved, as every argument. At most two per child; encoding one
//! anywhere else (a queue, a pipe message, a pool task) is a serde error saying so.
//!
//! Raw shared memory ([`SharedArray`](crate::SharedArray), [`RawValue`](crate::RawValue)) is not
//! serde: a second view opened that way would alias the first with no lock between them, which
//! is why their `open_handle` is `unsafe`.
//!
//! [`Process`]: crate::Process
//!
//! ```
//! fn set_it(e: shmpool::Event) { e.set(); }
//! let done = shmpool::Event::new()?;
//! let theirs = shmpool::Event::open_handle(&done.handle())?; // a second handle, to give away
//! let mut p = shmpool::get_context(shmpool::StartMethod::Spawn).start(set_it, theirs)?;
//! assert!(p.join()?.success());
//! assert!(done.is_set());
//! # Ok::<(), shmpool::Error>(())
//! ```

use bytemuck::Pod;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::barrier::Barrier;
use super::condition::Condition;
use super::event::Event;
use super::mutex::Mutex;
use super::rlock::RLock;
use super::semaphore::{BoundedSemaphore, Semaphore};
use crate::array::{LockedArray, LockedArrayHandle};
use crate::connection::Connection;
use crate::process::entry;
use crate::queue::{JoinableQueue, MessageQueue, Queue};
use crate::segment::handle::SegmentHandle;
use crate::value::{AtomicCell, SharedAtomic, SharedValue};

/// Serialize as `handle()`, deserialize through `open_handle` (`$handle` the handle's type).
macro_rules! by_handle {
    ([$($gen:tt)*] $ty:ty, $handle:ty) => {
        impl<$($gen)*> Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.handle().serialize(s)
            }
        }

        impl<'de, $($gen)*> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let handle = <$handle>::deserialize(d)?;
                <$ty>::open_handle(&handle).map_err(D::Error::custom)
            }
        }
    };
}

by_handle!([] Event, SegmentHandle);
by_handle!([] RLock, SegmentHandle);
by_handle!([] Semaphore, SegmentHandle);
by_handle!([] BoundedSemaphore, SegmentHandle);
by_handle!([] Condition, SegmentHandle);
by_handle!([] Barrier, SegmentHandle);
by_handle!([T: Pod + Send] Mutex<T>, SegmentHandle);
by_handle!([T: Pod + Send] SharedValue<T>, SegmentHandle);
by_handle!([A: AtomicCell] SharedAtomic<A>, SegmentHandle);
by_handle!([T: Pod + Send] LockedArray<T>, LockedArrayHandle);
// An unbounded queue's handle names its anchor segment, which names its rings: opening it
// reaches the whole chain.
by_handle!([T: Pod] Queue<T>, SegmentHandle);
by_handle!([T: Pod] JoinableQueue<T>, SegmentHandle);
by_handle!([] MessageQueue, SegmentHandle);

/// What a [`Connection`] argument encodes: its descriptor's index among the job's, its
/// directions and its message limit.
#[derive(Serialize, Deserialize)]
struct ConnectionArg {
    fd: u32,
    readable: bool,
    writable: bool,
    max: u64,
}

impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let (fd, readable, writable, max) = self.crossing().map_err(S::Error::custom)?;
        let fd = entry::pass_fd(fd).map_err(S::Error::custom)?;
        ConnectionArg { fd, readable, writable, max }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let a = ConnectionArg::deserialize(d)?;
        let fd = entry::take_fd(a.fd).map_err(D::Error::custom)?;
        Connection::arrived(fd, a.readable, a.writable, a.max).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each object survives a postcard round trip as a second handle to the same memory.
    #[test]
    fn objects_round_trip_as_their_handles() {
        let v = SharedValue::new(5u64).unwrap();
        let bytes = postcard::to_stdvec(&v).unwrap();
        let w: SharedValue<u64> = postcard::from_bytes(&bytes).unwrap();
        w.set(9).unwrap();
        assert_eq!(v.get().unwrap(), 9);

        let a = LockedArray::<u32>::zeroed(3).unwrap();
        let b: LockedArray<u32> = postcard::from_bytes(&postcard::to_stdvec(&a).unwrap()).unwrap();
        b.set(2, 4).unwrap();
        assert_eq!(a.get(2).unwrap(), 4);

        let e = Event::new().unwrap();
        let f: Event = postcard::from_bytes(&postcard::to_stdvec(&e).unwrap()).unwrap();
        f.set();
        assert!(e.is_set());
    }

    /// Each queue flavour survives a postcard round trip as a second handle to the same queue.
    #[test]
    fn queues_round_trip_as_their_handles() {
        for q in [Queue::<u32>::bounded(4).unwrap(), Queue::<u32>::new().unwrap()] {
            let r: Queue<u32> = postcard::from_bytes(&postcard::to_stdvec(&q).unwrap()).unwrap();
            r.put(7).unwrap();
            assert_eq!(q.get().unwrap(), 7);
        }
        let j = JoinableQueue::<u8>::bounded(2).unwrap();
        let k: JoinableQueue<u8> = postcard::from_bytes(&postcard::to_stdvec(&j).unwrap()).unwrap();
        k.put(3).unwrap();
        assert_eq!(j.get().unwrap(), 3);
        j.task_done().unwrap();
        assert_eq!(k.unfinished(), 0);
        for m in [MessageQueue::bounded(256, 64).unwrap(), MessageQueue::new().unwrap()] {
            let n: MessageQueue = postcard::from_bytes(&postcard::to_stdvec(&m).unwrap()).unwrap();
            n.put("hello").unwrap();
            assert_eq!(m.get::<String>().unwrap(), "hello");
        }
        // A queue of another item type is refused.
        let q = Queue::<u32>::bounded(1).unwrap();
        assert!(postcard::from_bytes::<Queue<u64>>(&postcard::to_stdvec(&q).unwrap()).is_err());
    }

    /// A handle to one kind does not open as another.
    #[test]
    fn a_handle_of_another_kind_is_refused() {
        let e = Event::new().unwrap();
        let bytes = postcard::to_stdvec(&e).unwrap();
        let err = postcard::from_bytes::<Semaphore>(&bytes).unwrap_err();
        assert!(matches!(err, postcard::Error::SerdeDeCustom), "{err:?}");
    }
}
