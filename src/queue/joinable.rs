//! `JoinableQueue<T>`: a [`Queue`] that also counts unfinished items, for `task_done` / `join`.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use bytemuck::Pod;

use super::bounded::{Flavor, Inner, Queue, check_item_type};
use super::error::{JoinError, JoinTimeoutError, TaskDoneError};
use super::unbounded_pod::Chain;
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
/// let q = shmpool::JoinableQueue::<u64>::new()?;
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
    /// A joinable queue of either flavour: the unfinished count lives in its shared control
    /// block (the bounded ring's, or the chain's anchor).
    queue: Queue<T>,
}

impl<T: Pod> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue { queue: self.queue.clone() }
    }
}

/// Runs `$body` with `$i` bound to the queue's flavour (both have `task_done`, `join`, ...).
macro_rules! counter {
    ($q:expr, $i:ident => $body:expr) => {
        match &$q.queue.flavor {
            Flavor::Bounded($i) => $body,
            Flavor::Unbounded($i) => $body,
        }
    };
}

impl<T: Pod> JoinableQueue<T> {
    /// An anonymous unbounded joinable queue (Python's `JoinableQueue()`): a put never waits
    /// for room, so "join the producers, then drain" cannot hang. Its items live in a chain of
    /// rings, as [`Queue::new`]'s do.
    ///
    /// ```
    /// let q = shmpool::JoinableQueue::<u32>::new()?;
    /// (0..10_000).try_for_each(|i| q.put(i))?; // more than any small bound
    /// assert_eq!(q.unfinished(), 10_000);
    /// while q.get_nowait().is_ok() {
    ///     q.task_done()?;
    /// }
    /// q.join()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new() -> Result<JoinableQueue<T>> {
        Self::new_with(&ShmOptions::new())
    }

    /// An unbounded joinable queue whose anchor segment is created as `opts` says.
    ///
    /// ```
    /// use shmpool::{JoinableQueue, ShmOptions};
    /// let q = JoinableQueue::<u32>::new_with(&ShmOptions::new().generated_name())?;
    /// let again = JoinableQueue::<u32>::open(q.name().unwrap())?;
    /// again.put(1)?;
    /// assert_eq!(q.unfinished(), 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new_with(opts: &ShmOptions) -> Result<JoinableQueue<T>> {
        check_item_type::<T>()?;
        let chain = Chain::create(opts, true)?;
        Ok(JoinableQueue { queue: Queue { flavor: Flavor::Unbounded(Arc::new(chain)) } })
    }

    /// An anonymous joinable queue that holds at most `capacity` items (Python's
    /// `JoinableQueue(maxsize)`): puts wait for room.
    ///
    /// ```
    /// let q = shmpool::JoinableQueue::<u32>::bounded(8)?;
    /// q.put(1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// q.join()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn bounded(capacity: usize) -> Result<JoinableQueue<T>> {
        Self::bounded_with(capacity, &ShmOptions::new())
    }

    /// A bounded joinable queue created as `opts` says.
    ///
    /// ```
    /// use shmpool::{JoinableQueue, ShmOptions};
    /// let q = JoinableQueue::<u32>::bounded_with(8, &ShmOptions::new().generated_name())?;
    /// assert!(q.name().is_some());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn bounded_with(capacity: usize, opts: &ShmOptions) -> Result<JoinableQueue<T>> {
        let inner = Inner::create(capacity, opts, true)?;
        Ok(JoinableQueue { queue: Queue { flavor: Flavor::Bounded(Arc::new(inner)) } })
    }

    /// Opens a named joinable queue of either flavour; a plain queue of that name is a
    /// [`KindMismatch`](Error::KindMismatch).
    ///
    /// ```
    /// use shmpool::{JoinableQueue, Queue, ShmOptions};
    /// let plain = Queue::<u8>::bounded_with(2, &ShmOptions::new().generated_name())?;
    /// assert!(JoinableQueue::<u8>::open(plain.name().unwrap()).is_err());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn open(name: &str) -> Result<JoinableQueue<T>> {
        Self::from_queue(Queue::open_at(&Locator::Named(name.to_string()), None)?, name)
    }

    /// Opens the joinable queue a handle refers to, of either flavour.
    ///
    /// ```
    /// let q = shmpool::JoinableQueue::<u8>::new()?;
    /// let other = shmpool::JoinableQueue::<u8>::open_handle(&q.handle())?;
    /// other.put(3)?;
    /// assert_eq!(q.unfinished(), 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn open_handle(handle: &SegmentHandle) -> Result<JoinableQueue<T>> {
        Self::from_queue(Queue::open_at(&handle.loc, Some(handle.nonce))?, &handle.to_string())
    }

    fn from_queue(queue: Queue<T>, what: &str) -> Result<JoinableQueue<T>> {
        let joinable = JoinableQueue { queue };
        if !counter!(joinable, i => i.is_joinable()) {
            return Err(Error::KindMismatch {
                what: what.to_string(),
                expected: "joinable queue",
                found: "queue",
            });
        }
        Ok(joinable)
    }

    /// Marks one item got from the queue as handled.
    ///
    /// # Errors
    ///
    /// [`TaskDoneError`] when there is no unfinished item (it converts into
    /// [`Error::TaskDoneTooOften`]).
    ///
    /// ```
    /// let q = shmpool::JoinableQueue::<u8>::new()?;
    /// assert!(matches!(q.task_done(), Err(shmpool::queue::TaskDoneError)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn task_done(&self) -> std::result::Result<(), TaskDoneError> {
        counter!(self, i => {
            i.as_consumer();
            i.task_done()
        })
    }

    /// Waits until every item put has been marked done.
    ///
    /// # Errors
    ///
    /// [`JoinError::Closed`] when the queue is closed with items unfinished;
    /// [`JoinError::PeerDied`] when every consumer has exited with items unfinished.
    ///
    /// ```
    /// let q = shmpool::JoinableQueue::<u8>::new()?;
    /// q.join()?; // nothing was put: returns at once
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn join(&self) -> std::result::Result<(), JoinError> {
        counter!(self, i => i.join(None))
    }

    /// Waits at most `timeout` for every item to be marked done; then
    /// [`JoinTimeoutError::Timeout`]. The other errors are [`join`](Self::join)'s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmpool::queue::JoinTimeoutError;
    /// let q = shmpool::JoinableQueue::<u8>::new()?;
    /// q.put(1)?;
    /// assert!(matches!(q.join_timeout(Duration::from_millis(5)), Err(JoinTimeoutError::Timeout { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> std::result::Result<(), JoinTimeoutError> {
        counter!(self, i => i.join(Some((timeout, JoinTimeoutError::Timeout { after: timeout }))))
    }

    /// Items put and not yet marked done (a snapshot).
    ///
    /// ```
    /// let q = shmpool::JoinableQueue::<u8>::new()?;
    /// q.put(1)?;
    /// assert_eq!(q.unfinished(), 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn unfinished(&self) -> u64 {
        counter!(self, i => i.unfinished())
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
