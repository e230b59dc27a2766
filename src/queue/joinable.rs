//! `JoinableQueue<T>`: a [`Queue`] that also counts unfinished items, for `task_done` / `join`.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use bytemuck::Pod;

use super::bounded::{Flavor, Inner, Queue};
use super::error::{JoinError, JoinTimeoutError, TaskDoneError};
use crate::error::{Error, Result};
use crate::segment::handle::{Locator, SegmentHandle};
use crate::segment::options::ShmOptions;

/// A [`Queue`] whose consumers report each item done, so that a producer can wait until all
/// the work it queued was handled (Python's `multiprocessing.JoinableQueue`).
///
/// Every successful put raises the count of unfinished items, [`task_done`](Self::task_done)
/// lowers it, and [`join`](Self::join) waits until it is zero. Everything else (put, get,
/// close, handles) is the [`Queue`] API, reached through `Deref`.
///
/// `join` ends with [`JoinError::Closed`] when the queue is closed first, and with
/// [`JoinError::PeerDied`] when every consumer that got from the queue has exited with work
/// left.
///
/// ```no_run
/// // (no_run: doctests run in a multi-threaded harness, where fork is refused.)
/// let q = shmpool::JoinableQueue::<u64>::new(64)?;
/// shmpool::scope(|s| -> shmpool::Result<()> {
///     s.fork(|| -> shmpool::Result<()> {
///         for _ in 0..10 {
///             let _job = q.get()?;
///             q.task_done()?;
///         }
///         Ok(())
///     })?;
///     (0..10).try_for_each(|i| q.put(i))?;
///     Ok(q.join()?) // returns once the child marked all 10 done
/// })??;
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct JoinableQueue<T: Pod> {
    queue: Queue<T>,
    /// The same ring as `queue`'s (always bounded: the unfinished count lives in its control
    /// block).
    inner: Arc<Inner<T>>,
}

impl<T: Pod> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue { queue: self.queue.clone(), inner: Arc::clone(&self.inner) }
    }
}

impl<T: Pod> JoinableQueue<T> {
    /// An anonymous joinable queue that holds at most `capacity` items.
    ///
    /// ```
    /// let q = shmpool::JoinableQueue::<u32>::new(8)?;
    /// q.put(1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// q.join()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new(capacity: usize) -> Result<JoinableQueue<T>> {
        Self::new_with(capacity, &ShmOptions::new())
    }

    /// A joinable queue created as `opts` says.
    ///
    /// ```
    /// use shmpool::{JoinableQueue, ShmOptions};
    /// let q = JoinableQueue::<u32>::new_with(8, &ShmOptions::new().generated_name())?;
    /// assert!(q.name().is_some());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(capacity: usize, opts: &ShmOptions) -> Result<JoinableQueue<T>> {
        Ok(Self::of(Inner::create(capacity, opts, true)?))
    }

    /// Opens a named joinable queue; a plain queue of that name is a
    /// [`KindMismatch`](Error::KindMismatch).
    ///
    /// ```
    /// use shmpool::{JoinableQueue, Queue, ShmOptions};
    /// let plain = Queue::<u8>::bounded_with(2, &ShmOptions::new().generated_name())?;
    /// assert!(JoinableQueue::<u8>::open(plain.name().unwrap()).is_err());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn open(name: &str) -> Result<JoinableQueue<T>> {
        Self::from_inner(Inner::open(&Locator::Named(name.to_string()), None)?, name)
    }

    /// Opens the joinable queue a handle refers to.
    ///
    /// ```
    /// let q = shmpool::JoinableQueue::<u8>::new(2)?;
    /// let other = shmpool::JoinableQueue::<u8>::open_handle(&q.handle())?;
    /// other.put(3)?;
    /// assert_eq!(q.unfinished(), 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn open_handle(handle: &SegmentHandle) -> Result<JoinableQueue<T>> {
        Self::from_inner(Inner::open(&handle.loc, Some(handle.nonce))?, &handle.to_string())
    }

    fn of(inner: Inner<T>) -> JoinableQueue<T> {
        let inner = Arc::new(inner);
        JoinableQueue { queue: Queue { flavor: Flavor::Bounded(Arc::clone(&inner)) }, inner }
    }

    fn from_inner(inner: Inner<T>, what: &str) -> Result<JoinableQueue<T>> {
        if !inner.is_joinable() {
            return Err(Error::KindMismatch {
                what: what.to_string(),
                expected: "joinable queue",
                found: "queue",
            });
        }
        Ok(Self::of(inner))
    }

    /// Marks one item got from the queue as handled.
    ///
    /// # Errors
    ///
    /// [`TaskDoneError`] when there is no unfinished item (it converts into
    /// [`Error::TaskDoneTooOften`]).
    ///
    /// ```
    /// let q = shmpool::JoinableQueue::<u8>::new(2)?;
    /// assert!(matches!(q.task_done(), Err(shmpool::queue::TaskDoneError)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn task_done(&self) -> std::result::Result<(), TaskDoneError> {
        self.inner.as_consumer();
        self.inner.task_done()
    }

    /// Waits until every item put has been marked done.
    ///
    /// # Errors
    ///
    /// [`JoinError::Closed`] when the queue is closed with items unfinished;
    /// [`JoinError::PeerDied`] when every consumer has exited with items unfinished.
    ///
    /// ```
    /// let q = shmpool::JoinableQueue::<u8>::new(2)?;
    /// q.join()?; // nothing was put: returns at once
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn join(&self) -> std::result::Result<(), JoinError> {
        self.inner.join(None)
    }

    /// Waits at most `timeout` for every item to be marked done; then
    /// [`JoinTimeoutError::Timeout`]. The other errors are [`join`](Self::join)'s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmpool::queue::JoinTimeoutError;
    /// let q = shmpool::JoinableQueue::<u8>::new(2)?;
    /// q.put(1)?;
    /// assert!(matches!(q.join_timeout(Duration::from_millis(5)), Err(JoinTimeoutError::Timeout { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> std::result::Result<(), JoinTimeoutError> {
        self.inner.join(Some((timeout, JoinTimeoutError::Timeout { after: timeout })))
    }

    /// Items put and not yet marked done (a snapshot).
    ///
    /// ```
    /// let q = shmpool::JoinableQueue::<u8>::new(2)?;
    /// q.put(1)?;
    /// assert_eq!(q.unfinished(), 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn unfinished(&self) -> u64 {
        self.inner.unfinished()
    }
}

impl<T: Pod> Deref for JoinableQueue<T> {
    type Target = Queue<T>;
    fn deref(&self) -> &Queue<T> {
        &self.queue
    }
}

impl<T: Pod> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("queue", &self.queue)
            .field("unfinished", &self.unfinished())
            .finish()
    }
}
