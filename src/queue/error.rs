//! What each queue operation can fail with: one small type per operation (as
//! `crossbeam-channel`'s `err.rs` does), so a signature says what can go wrong and a `match`
//! over it is exhaustive.
//!
//! | operation | type | variants |
//! |---|---|---|
//! | [`Queue::get`](crate::Queue::get) | [`GetError`] | `Closed`, `PeerDied`, `SlotAbandoned`, `BadMessage` |
//! | [`Queue::get_timeout`](crate::Queue::get_timeout) | [`GetTimeoutError`] | `Timeout`, `Closed`, `PeerDied`, `SlotAbandoned`, `BadMessage` |
//! | [`Queue::get_nowait`](crate::Queue::get_nowait) | [`TryGetError`] | `Empty`, `Closed`, `Timeout`, `BadMessage` |
//! | [`Queue::put`](crate::Queue::put) | [`PutError`] | `Closed`, `PeerDied`, `SlotAbandoned`, `OutOfSpace`, `CannotGrow` |
//! | [`Queue::put_timeout`](crate::Queue::put_timeout) | [`PutTimeoutError`] | `Timeout`, `Closed`, `PeerDied`, `SlotAbandoned`, `OutOfSpace`, `CannotGrow` |
//! | [`Queue::put_nowait`](crate::Queue::put_nowait) | [`TryPutError`] | `Full`, `Closed`, `Timeout`, `OutOfSpace`, `CannotGrow` |
//! | [`JoinableQueue::task_done`](crate::JoinableQueue::task_done) | [`TaskDoneError`] | (one way) |
//! | [`JoinableQueue::join`](crate::JoinableQueue::join) | [`JoinError`] | `Closed`, `PeerDied` |
//! | [`JoinableQueue::join_timeout`](crate::JoinableQueue::join_timeout) | [`JoinTimeoutError`] | `Timeout`, `Closed`, `PeerDied` |
//! | [`MessageQueue::get`](crate::MessageQueue::get), [`get_bytes`](crate::MessageQueue::get_bytes) | [`MessageGetError`] | `Closed`, `PeerDied`, `BadMessage` |
//! | [`MessageQueue::get_timeout`](crate::MessageQueue::get_timeout) | [`MessageGetTimeoutError`] | `Timeout`, `Closed`, `PeerDied`, `BadMessage` |
//! | [`MessageQueue::get_nowait`](crate::MessageQueue::get_nowait) | [`MessageTryGetError`] | `Empty`, `Timeout`, `Closed`, `BadMessage` |
//! | [`MessageQueue::put`](crate::MessageQueue::put), [`put_bytes`](crate::MessageQueue::put_bytes) | [`MessagePutError`] | `Closed`, `PeerDied`, `TooLarge`, `BadMessage`, `OutOfSpace`, `CannotGrow` |
//! | [`MessageQueue::put_timeout`](crate::MessageQueue::put_timeout) | [`MessagePutTimeoutError`] | `Timeout`, `Closed`, `PeerDied`, `TooLarge`, `BadMessage`, `OutOfSpace`, `CannotGrow` |
//! | [`MessageQueue::put_nowait`](crate::MessageQueue::put_nowait) | [`MessageTryPutError`] | `Full`, `Timeout`, `Closed`, `TooLarge`, `BadMessage`, `OutOfSpace`, `CannotGrow` |
//!
//! A `MessageQueue`'s `_nowait` forms can report `Timeout`: they wait at most one sleep slice
//! (50 ms) for the ring lock, which another process may hold longer (stopped, or in another pid
//! namespace).
//!
//! `OutOfSpace` and `CannotGrow` come only from an unbounded queue (`MessageQueue::new()`, the
//! default, or `Queue::new()`), whose
//! put makes a new ring when the newest is full: `/dev/shm` had no room for it (converting into
//! `Error::OutOfSpace`), or the ring could not be made or mapped for another reason (into
//! `Error::Io`). A bounded queue's put waits for room instead. An unbounded `Queue`'s gets can
//! also report `BadMessage` (a ring corrupt or removed by another program), and its `_nowait`
//! forms `Timeout` (its lock held for a whole sleep slice), as a `MessageQueue`'s do.
//!
//! A failed put does not hand the item back: a `Queue` item is `Pod`, hence `Copy`, so the caller
//! still has it, and a `MessageQueue` put only borrows its message.
//!
//! Every type converts into the matching [`Error`] variant (`Timeout`, `Closed`, `PeerDied`, ...,
//! with the same fields and message), so `?` into [`shmpool::Result`](crate::Result) keeps
//! working, and `Display` prints that variant's message, which says the fix.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, human_bytes};

/// The queue was closed: what one attempt at any queue operation can report (crate-internal,
/// like the other outcomes below; each converts into the variant of that name in every
/// operation's type that has one).
pub(crate) struct Closed;

/// Every process of the other side has exited: their pids (`PeerDied`).
pub(crate) struct PeersGone(pub(crate) Vec<u32>);

/// A process of the other side died holding the slot at this ring position (`SlotAbandoned`).
pub(crate) struct SlotAbandoned(pub(crate) u64);

/// A message larger than the `MessageQueue`'s `max_message` (`TooLarge`).
pub(crate) struct TooLarge {
    pub(crate) len: u64,
    pub(crate) max: u64,
}

impl TooLarge {
    /// Refuses `bytes` over `max` (a queue's `max_message`) before anything is written.
    pub(crate) fn check(bytes: &[u8], max: u64) -> Result<(), TooLarge> {
        let len = bytes.len() as u64;
        if len > max { Err(TooLarge { len, max }) } else { Ok(()) }
    }
}

/// A frame a `MessageQueue` refuses to read or write, with the reason (`BadMessage`).
#[derive(Debug)]
pub(crate) struct BadFrame(pub(crate) String);

/// An unbounded `MessageQueue` could not make (or map) the ring a put needed
/// (`OutOfSpace` or `CannotGrow`).
pub(crate) struct GrowFailed(pub(crate) Error);

/// The fix an unbounded queue's `OutOfSpace` gives.
const GROW_FIX: &str = "mount a larger /dev/shm (docker: --shm-size), get from the queue sooner, \
    or create it with MessageQueue::bounded so that puts wait for room";

/// How long a wait may last: `None` for ever, or a timeout and the error that ends the wait when
/// it passes (the operation's `Timeout`).
pub(crate) type Limit<E> = Option<(Duration, E)>;

/// Why [`Queue::get_nowait`](crate::Queue::get_nowait) returned no item.
///
/// ```
/// use shmpool::queue::TryGetError;
/// let q = shmpool::Queue::<u8>::bounded(1)?;
/// assert_eq!(q.get_nowait(), Err(TryGetError::Empty));
/// q.close();
/// assert_eq!(q.get_nowait(), Err(TryGetError::Closed));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryGetError {
    /// The queue holds no item now.
    Empty,
    /// The queue was closed and is empty.
    Closed,
    /// Another process held an unbounded queue's lock for a whole 50 ms sleep slice.
    Timeout {
        /// The slice waited.
        after: Duration,
    },
    /// An unbounded queue's ring is corrupt or was removed by another program (the reason
    /// says which); nothing was taken.
    BadMessage {
        /// What is wrong.
        reason: String,
    },
}

/// Why [`Queue::get`](crate::Queue::get) returned no item.
///
/// ```
/// use shmpool::queue::GetError;
/// let q = shmpool::Queue::<u8>::bounded(1)?;
/// q.close();
/// assert_eq!(q.get(), Err(GetError::Closed));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetError {
    /// The queue was closed (by any process) and is empty.
    Closed,
    /// The queue is empty and every process that ever put into it has exited.
    PeerDied {
        /// The producers' pids.
        pids: Vec<u32>,
    },
    /// A producer died between claiming the slot at `pos` and publishing it: the queue cannot
    /// go past it.
    SlotAbandoned {
        /// The stuck ring position.
        pos: u64,
    },
    /// An unbounded queue's ring is corrupt or was removed by another program (the reason
    /// says which); nothing was taken.
    BadMessage {
        /// What is wrong.
        reason: String,
    },
}

/// Why [`Queue::get_timeout`](crate::Queue::get_timeout) returned no item.
///
/// ```
/// use std::time::Duration;
/// use shmpool::queue::GetTimeoutError;
/// let q = shmpool::Queue::<u8>::bounded(1)?;
/// let e = q.get_timeout(Duration::from_millis(5)).unwrap_err();
/// assert_eq!(e, GetTimeoutError::Timeout { after: Duration::from_millis(5) });
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetTimeoutError {
    /// No item came within the timeout.
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// As [`GetError::Closed`].
    Closed,
    /// As [`GetError::PeerDied`].
    PeerDied {
        /// The producers' pids.
        pids: Vec<u32>,
    },
    /// As [`GetError::SlotAbandoned`].
    SlotAbandoned {
        /// The stuck ring position.
        pos: u64,
    },
    /// An unbounded queue's ring is corrupt or was removed by another program (the reason
    /// says which); nothing was taken.
    BadMessage {
        /// What is wrong.
        reason: String,
    },
}

/// Why [`Queue::put_nowait`](crate::Queue::put_nowait) stored nothing.
///
/// ```
/// use shmpool::queue::TryPutError;
/// let q = shmpool::Queue::<u8>::bounded(1)?;
/// q.put_nowait(1)?;
/// assert_eq!(q.put_nowait(2), Err(TryPutError::Full { capacity: 1 }));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryPutError {
    /// The queue holds `capacity` items now.
    Full {
        /// The queue's capacity, in items.
        capacity: u64,
    },
    /// The queue was closed (by any process).
    Closed,
    /// Another process held an unbounded queue's lock for a whole 50 ms sleep slice.
    Timeout {
        /// The slice waited.
        after: Duration,
    },
    /// An unbounded queue needed a new ring and `/dev/shm` (or memory) has no room for it.
    OutOfSpace {
        /// Where the bytes were to come from ("/dev/shm").
        place: &'static str,
        /// Bytes the new ring needs.
        requested: u64,
        /// Bytes that were free.
        available: u64,
        /// What the user can do about it.
        fix: &'static str,
    },
    /// An unbounded queue needed a new ring and could not make it, or its chain is corrupt, for
    /// this reason.
    CannotGrow {
        /// Why, with the fix.
        reason: String,
    },
}

/// Why [`Queue::put`](crate::Queue::put) stored nothing.
///
/// ```
/// use shmpool::queue::PutError;
/// let q = shmpool::Queue::<u8>::bounded(1)?;
/// q.close();
/// assert_eq!(q.put(1), Err(PutError::Closed));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutError {
    /// The queue was closed (by any process).
    Closed,
    /// The queue is full and every process that ever got from it has exited.
    PeerDied {
        /// The consumers' pids.
        pids: Vec<u32>,
    },
    /// A consumer died between claiming the item at `pos` and freeing its slot: the queue cannot
    /// go past it.
    SlotAbandoned {
        /// The stuck ring position.
        pos: u64,
    },
    /// An unbounded queue needed a new ring and `/dev/shm` (or memory) has no room for it.
    OutOfSpace {
        /// Where the bytes were to come from ("/dev/shm").
        place: &'static str,
        /// Bytes the new ring needs.
        requested: u64,
        /// Bytes that were free.
        available: u64,
        /// What the user can do about it.
        fix: &'static str,
    },
    /// An unbounded queue needed a new ring and could not make it, or its chain is corrupt, for
    /// this reason.
    CannotGrow {
        /// Why, with the fix.
        reason: String,
    },
}

/// Why [`Queue::put_timeout`](crate::Queue::put_timeout) stored nothing.
///
/// ```
/// use std::time::Duration;
/// use shmpool::queue::PutTimeoutError;
/// let q = shmpool::Queue::<u8>::bounded(1)?;
/// q.put(1)?;
/// let e = q.put_timeout(2, Duration::from_millis(5)).unwrap_err();
/// assert!(matches!(e, PutTimeoutError::Timeout { .. }));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutTimeoutError {
    /// No room came within the timeout.
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// As [`PutError::Closed`].
    Closed,
    /// As [`PutError::PeerDied`].
    PeerDied {
        /// The consumers' pids.
        pids: Vec<u32>,
    },
    /// As [`PutError::SlotAbandoned`].
    SlotAbandoned {
        /// The stuck ring position.
        pos: u64,
    },
    /// An unbounded queue needed a new ring and `/dev/shm` (or memory) has no room for it.
    OutOfSpace {
        /// Where the bytes were to come from ("/dev/shm").
        place: &'static str,
        /// Bytes the new ring needs.
        requested: u64,
        /// Bytes that were free.
        available: u64,
        /// What the user can do about it.
        fix: &'static str,
    },
    /// An unbounded queue needed a new ring and could not make it, or its chain is corrupt, for
    /// this reason.
    CannotGrow {
        /// Why, with the fix.
        reason: String,
    },
}

/// [`JoinableQueue::task_done`](crate::JoinableQueue::task_done) was called more times than
/// items were put.
///
/// ```
/// let q = shmpool::JoinableQueue::<u8>::bounded(1)?;
/// assert_eq!(q.task_done(), Err(shmpool::queue::TaskDoneError));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDoneError;

/// Why [`JoinableQueue::join`](crate::JoinableQueue::join) returned with work unfinished.
///
/// ```
/// use shmpool::queue::JoinError;
/// let q = shmpool::JoinableQueue::<u8>::bounded(1)?;
/// q.put(1)?;
/// q.close();
/// assert_eq!(q.join(), Err(JoinError::Closed));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// The queue was closed (by any process) with items unfinished.
    Closed,
    /// Items are unfinished and every process that ever got from the queue has exited.
    PeerDied {
        /// The consumers' pids.
        pids: Vec<u32>,
    },
}

/// Why [`JoinableQueue::join_timeout`](crate::JoinableQueue::join_timeout) returned with work
/// unfinished.
///
/// ```
/// use std::time::Duration;
/// use shmpool::queue::JoinTimeoutError;
/// let q = shmpool::JoinableQueue::<u8>::bounded(1)?;
/// q.put(1)?;
/// let e = q.join_timeout(Duration::from_millis(5)).unwrap_err();
/// assert!(matches!(e, JoinTimeoutError::Timeout { .. }));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinTimeoutError {
    /// Items were still unfinished when the timeout passed.
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// As [`JoinError::Closed`].
    Closed,
    /// As [`JoinError::PeerDied`].
    PeerDied {
        /// The consumers' pids.
        pids: Vec<u32>,
    },
}

/// Why [`MessageQueue::get_nowait`](crate::MessageQueue::get_nowait) returned no message.
///
/// ```
/// use shmpool::queue::MessageTryGetError;
/// let q = shmpool::MessageQueue::bounded(64, 16)?;
/// assert_eq!(q.get_nowait::<u8>(), Err(MessageTryGetError::Empty));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageTryGetError {
    /// The queue holds no message now.
    Empty,
    /// Another process held the ring lock for a whole sleep slice (50 ms).
    Timeout {
        /// The slice that passed.
        after: Duration,
    },
    /// As [`MessageGetError::Closed`].
    Closed,
    /// As [`MessageGetError::BadMessage`].
    BadMessage {
        /// What is wrong.
        reason: String,
    },
}

/// Why [`MessageQueue::get`](crate::MessageQueue::get) or
/// [`get_bytes`](crate::MessageQueue::get_bytes) returned no message.
///
/// ```
/// use shmpool::queue::MessageGetError;
/// let q = shmpool::MessageQueue::bounded(64, 16)?;
/// q.put(&(1u8, 2u8))?;
/// assert!(matches!(q.get::<String>(), Err(MessageGetError::BadMessage { .. })));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageGetError {
    /// The queue was closed (by any process) and is empty.
    Closed,
    /// The queue is empty and every process that ever put into it has exited.
    PeerDied {
        /// The producers' pids.
        pids: Vec<u32>,
    },
    /// The next message was put as another type (it stays queued), does not decode as the type
    /// asked for (it is consumed), or the ring is corrupt.
    BadMessage {
        /// What is wrong.
        reason: String,
    },
}

/// Why [`MessageQueue::get_timeout`](crate::MessageQueue::get_timeout) returned no message.
///
/// ```
/// use std::time::Duration;
/// use shmpool::queue::MessageGetTimeoutError;
/// let q = shmpool::MessageQueue::bounded(64, 16)?;
/// let e = q.get_timeout::<u8>(Duration::from_millis(5)).unwrap_err();
/// assert!(matches!(e, MessageGetTimeoutError::Timeout { .. }));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageGetTimeoutError {
    /// No message came within the timeout.
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// As [`MessageGetError::Closed`].
    Closed,
    /// As [`MessageGetError::PeerDied`].
    PeerDied {
        /// The producers' pids.
        pids: Vec<u32>,
    },
    /// As [`MessageGetError::BadMessage`].
    BadMessage {
        /// What is wrong.
        reason: String,
    },
}

/// Why [`MessageQueue::put_nowait`](crate::MessageQueue::put_nowait) stored nothing.
///
/// ```
/// use shmpool::queue::MessageTryPutError;
/// let q = shmpool::MessageQueue::bounded(24, 8)?; // room for one frame of 8 bytes
/// q.put_nowait(&[1u8; 4])?;
/// assert_eq!(q.put_nowait(&[1u8; 4]), Err(MessageTryPutError::Full { capacity: 24 }));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageTryPutError {
    /// The ring has no room for the message now.
    Full {
        /// The ring's size in bytes.
        capacity: u64,
    },
    /// Another process held the ring lock for a whole sleep slice (50 ms).
    Timeout {
        /// The slice that passed.
        after: Duration,
    },
    /// As [`MessagePutError::Closed`].
    Closed,
    /// As [`MessagePutError::TooLarge`].
    TooLarge {
        /// The message's size in bytes.
        len: u64,
        /// The queue's `max_message`.
        max: u64,
    },
    /// As [`MessagePutError::BadMessage`].
    BadMessage {
        /// What is wrong.
        reason: String,
    },
    /// An unbounded queue needed a new ring and `/dev/shm` (or memory) has no room for it.
    OutOfSpace {
        /// Where the bytes were to come from ("/dev/shm").
        place: &'static str,
        /// Bytes the new ring needs.
        requested: u64,
        /// Bytes that were free.
        available: u64,
        /// What the user can do about it.
        fix: &'static str,
    },
    /// An unbounded queue needed a new ring and could not make it, for this reason.
    CannotGrow {
        /// Why, with the fix.
        reason: String,
    },
}

/// Why [`MessageQueue::put`](crate::MessageQueue::put) or
/// [`put_bytes`](crate::MessageQueue::put_bytes) stored nothing.
///
/// ```
/// use shmpool::queue::MessagePutError;
/// let q = shmpool::MessageQueue::bounded(64, 8)?;
/// let e = q.put_bytes(&[0; 9]).unwrap_err();
/// assert_eq!(e, MessagePutError::TooLarge { len: 9, max: 8 });
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagePutError {
    /// The queue was closed (by any process).
    Closed,
    /// The ring is full and every process that ever got from it has exited.
    PeerDied {
        /// The consumers' pids.
        pids: Vec<u32>,
    },
    /// The encoded message is larger than the queue's `max_message`.
    TooLarge {
        /// The message's size in bytes.
        len: u64,
        /// The queue's `max_message`.
        max: u64,
    },
    /// The message could not be encoded, or the ring is corrupt.
    BadMessage {
        /// What is wrong.
        reason: String,
    },
    /// An unbounded queue needed a new ring and `/dev/shm` (or memory) has no room for it.
    OutOfSpace {
        /// Where the bytes were to come from ("/dev/shm").
        place: &'static str,
        /// Bytes the new ring needs.
        requested: u64,
        /// Bytes that were free.
        available: u64,
        /// What the user can do about it.
        fix: &'static str,
    },
    /// An unbounded queue needed a new ring and could not make it, for this reason.
    CannotGrow {
        /// Why, with the fix.
        reason: String,
    },
}

/// Why [`MessageQueue::put_timeout`](crate::MessageQueue::put_timeout) stored nothing.
///
/// ```
/// use std::time::Duration;
/// use shmpool::queue::MessagePutTimeoutError;
/// let q = shmpool::MessageQueue::bounded(24, 8)?; // room for one frame of 8 bytes
/// q.put(&[1u8; 4])?;
/// let e = q.put_timeout(&[1u8; 4], Duration::from_millis(5)).unwrap_err();
/// assert!(matches!(e, MessagePutTimeoutError::Timeout { .. }));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagePutTimeoutError {
    /// No room came within the timeout.
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// As [`MessagePutError::Closed`].
    Closed,
    /// As [`MessagePutError::PeerDied`].
    PeerDied {
        /// The consumers' pids.
        pids: Vec<u32>,
    },
    /// As [`MessagePutError::TooLarge`].
    TooLarge {
        /// The message's size in bytes.
        len: u64,
        /// The queue's `max_message`.
        max: u64,
    },
    /// As [`MessagePutError::BadMessage`].
    BadMessage {
        /// What is wrong.
        reason: String,
    },
    /// An unbounded queue needed a new ring and `/dev/shm` (or memory) has no room for it.
    OutOfSpace {
        /// Where the bytes were to come from ("/dev/shm").
        place: &'static str,
        /// Bytes the new ring needs.
        requested: u64,
        /// Bytes that were free.
        available: u64,
        /// What the user can do about it.
        fix: &'static str,
    },
    /// An unbounded queue needed a new ring and could not make it, for this reason.
    CannotGrow {
        /// Why, with the fix.
        reason: String,
    },
}

/// Every way a queue operation can fail: each operation's type converts into this (variant for
/// variant, same fields), and this into [`Error`] as the operation's [`Side`] names it, so the
/// mapping onto [`Error`] is written once.
enum Failure {
    Empty,
    Full { capacity: u64 },
    Timeout { after: Duration },
    Closed,
    PeerDied { pids: Vec<u32> },
    SlotAbandoned { pos: u64 },
    TooLarge { len: u64, max: u64 },
    BadMessage { reason: String },
    OutOfSpace { place: &'static str, requested: u64, available: u64, fix: &'static str },
    CannotGrow { reason: String },
}

/// How one side of one queue flavour names its errors in [`Error`]: the object, the operation a
/// timeout names, the role of the processes whose death ends its waits, and the unit of its
/// capacity.
struct Side {
    what: &'static str,
    op: &'static str,
    role: &'static str,
    describe_capacity: fn(u64) -> String,
}

fn items(n: u64) -> String {
    format!("{n} items")
}

const GET: Side =
    Side { what: "queue", op: "Queue::get", role: "producer", describe_capacity: items };
const PUT: Side =
    Side { what: "queue", op: "Queue::put", role: "consumer", describe_capacity: items };
const JOIN: Side = Side {
    what: "joinable queue",
    op: "JoinableQueue::join",
    role: "consumer",
    describe_capacity: items,
};
const MESSAGE_GET: Side = Side {
    what: "message queue",
    op: "MessageQueue::get",
    role: "producer",
    describe_capacity: human_bytes,
};
const MESSAGE_PUT: Side = Side {
    what: "message queue",
    op: "MessageQueue::put",
    role: "consumer",
    describe_capacity: human_bytes,
};

impl Side {
    fn error(&self, failure: Failure) -> Error {
        let Side { what, role, .. } = *self;
        match failure {
            Failure::Empty => Error::Empty { what },
            Failure::Full { capacity } => {
                Error::Full { what, capacity: (self.describe_capacity)(capacity) }
            }
            Failure::Timeout { after } => Error::Timeout { what: self.op, after },
            Failure::Closed => Error::Closed { what },
            Failure::PeerDied { pids } => Error::PeerDied { what, role, pids },
            Failure::SlotAbandoned { pos } => Error::SlotAbandoned { what, role, pos },
            Failure::TooLarge { len, max } => Error::MessageTooLarge { what, len, max },
            Failure::BadMessage { reason } => Error::BadMessage { what, reason },
            Failure::OutOfSpace { place, requested, available, fix } => {
                Error::OutOfSpace { place, requested, available, fix }
            }
            Failure::CannotGrow { reason } => Error::Io {
                op: "growing an unbounded message queue",
                source: std::io::Error::other(reason),
            },
        }
    }
}

/// For an operation's error type `$t` with the listed variants: `From<$t> for Error` (through
/// [`Failure`], named as `$side` says), `Display` (that [`Error`]'s message, which says the fix)
/// and `std::error::Error`.
macro_rules! queue_error {
    ($t:ident, $side:ident: $($v:ident $({ $($f:ident),* })?),+ $(,)?) => {
        impl From<$t> for Failure {
            fn from(e: $t) -> Failure {
                match e {
                    $($t::$v $({ $($f),* })? => Failure::$v $({ $($f),* })?,)+
                }
            }
        }

        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                $side.error(e.into())
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&Error::from(self.clone()), f)
            }
        }

        impl std::error::Error for $t {}
    };
}

queue_error!(TryGetError, GET: Empty, Closed, Timeout { after }, BadMessage { reason });
queue_error!(GetError, GET: Closed, PeerDied { pids }, SlotAbandoned { pos },
    BadMessage { reason });
queue_error!(GetTimeoutError, GET: Timeout { after }, Closed, PeerDied { pids },
    SlotAbandoned { pos }, BadMessage { reason });
queue_error!(TryPutError, PUT: Full { capacity }, Closed, Timeout { after }, OutOfSpace { place, requested, available, fix }, CannotGrow { reason });
queue_error!(PutError, PUT: Closed, PeerDied { pids }, SlotAbandoned { pos }, OutOfSpace { place, requested, available, fix }, CannotGrow { reason });
queue_error!(PutTimeoutError, PUT: Timeout { after }, Closed, PeerDied { pids },
    SlotAbandoned { pos }, OutOfSpace { place, requested, available, fix }, CannotGrow { reason });
queue_error!(JoinError, JOIN: Closed, PeerDied { pids });
queue_error!(JoinTimeoutError, JOIN: Timeout { after }, Closed, PeerDied { pids });
queue_error!(MessageTryGetError, MESSAGE_GET: Empty, Timeout { after }, Closed,
    BadMessage { reason });
queue_error!(MessageGetError, MESSAGE_GET: Closed, PeerDied { pids }, BadMessage { reason });
queue_error!(MessageGetTimeoutError, MESSAGE_GET: Timeout { after }, Closed, PeerDied { pids },
    BadMessage { reason });
queue_error!(MessageTryPutError, MESSAGE_PUT: Full { capacity }, Timeout { after }, Closed,
    TooLarge { len, max }, BadMessage { reason }, OutOfSpace { place, requested, available, fix }, CannotGrow { reason });
queue_error!(MessagePutError, MESSAGE_PUT: Closed, PeerDied { pids }, TooLarge { len, max },
    BadMessage { reason }, OutOfSpace { place, requested, available, fix }, CannotGrow { reason });
queue_error!(MessagePutTimeoutError, MESSAGE_PUT: Timeout { after }, Closed, PeerDied { pids },
    TooLarge { len, max }, BadMessage { reason }, OutOfSpace { place, requested, available, fix }, CannotGrow { reason });

impl From<TaskDoneError> for Error {
    fn from(_: TaskDoneError) -> Error {
        Error::TaskDoneTooOften
    }
}

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Error::TaskDoneTooOften, f)
    }
}

impl std::error::Error for TaskDoneError {}

/// `From<outcome>` for each listed type, building `Self`'s variant of the outcome's name.
macro_rules! from_outcome {
    ($from:ty, |$p:pat_param| $body:expr => $($t:ty),+ $(,)?) => {$(
        impl From<$from> for $t {
            fn from($p: $from) -> Self {
                $body
            }
        }
    )+};
}

from_outcome!(Closed, |_| Self::Closed => TryGetError, GetError, GetTimeoutError, TryPutError,
    PutError, PutTimeoutError, JoinError, JoinTimeoutError, MessageTryGetError, MessageGetError,
    MessageGetTimeoutError, MessageTryPutError, MessagePutError, MessagePutTimeoutError);
from_outcome!(PeersGone, |PeersGone(pids)| Self::PeerDied { pids } => GetError, GetTimeoutError,
    PutError, PutTimeoutError, JoinError, JoinTimeoutError, MessageGetError,
    MessageGetTimeoutError, MessagePutError, MessagePutTimeoutError);
from_outcome!(SlotAbandoned, |SlotAbandoned(pos)| Self::SlotAbandoned { pos } => GetError,
    GetTimeoutError, PutError, PutTimeoutError);
from_outcome!(BadFrame, |BadFrame(reason)| Self::BadMessage { reason } => TryGetError, GetError,
    GetTimeoutError, MessageTryGetError,
    MessageGetError, MessageGetTimeoutError, MessageTryPutError, MessagePutError,
    MessagePutTimeoutError);
from_outcome!(TooLarge, |TooLarge { len, max }| Self::TooLarge { len, max } => MessageTryPutError,
    MessagePutError, MessagePutTimeoutError);

macro_rules! from_grow_failed {
    ($($t:ty),+) => {$(
        impl From<GrowFailed> for $t {
            fn from(GrowFailed(e): GrowFailed) -> Self {
                match e {
                    Error::OutOfSpace { place, requested, available, .. } => {
                        Self::OutOfSpace { place, requested, available, fix: GROW_FIX }
                    }
                    e => Self::CannotGrow { reason: e.to_string() },
                }
            }
        }
    )+};
}

from_grow_failed!(
    MessageTryPutError,
    MessagePutError,
    MessagePutTimeoutError,
    TryPutError,
    PutError,
    PutTimeoutError
);
// A `Queue` put has no `BadMessage` or `TooLarge`: in an unbounded `Queue` the first means a
// corrupt chain (a ring it could not write), the second cannot happen (every item has the size
// the queue was made for).
from_outcome!(BadFrame, |BadFrame(reason)| Self::CannotGrow { reason } => TryPutError, PutError,
    PutTimeoutError);
from_outcome!(TooLarge, |TooLarge { len, max }| Self::CannotGrow {
    reason: format!("an item of {len} bytes does not fit frames of {max}; the queue is corrupt")
} => TryPutError, PutError, PutTimeoutError);

#[cfg(test)]
mod tests {
    use super::*;

    /// Each narrow error converts into the umbrella variant (and message) the queues returned
    /// before they had types of their own.
    #[test]
    fn conversions_keep_the_umbrella_variants_and_messages() {
        let ms = Duration::from_millis(30);
        let e = Error::from(GetTimeoutError::Timeout { after: ms });
        assert!(matches!(e, Error::Timeout { what: "Queue::get", after } if after == ms));
        assert_eq!(GetTimeoutError::Timeout { after: ms }.to_string(), e.to_string());
        let e = Error::from(GetError::PeerDied { pids: vec![7] });
        assert!(matches!(e, Error::PeerDied { what: "queue", role: "producer", .. }), "{e}");
        let e = Error::from(PutError::SlotAbandoned { pos: 3 });
        assert!(matches!(e, Error::SlotAbandoned { role: "consumer", pos: 3, .. }), "{e}");
        let e = Error::from(TryPutError::Full { capacity: 4 });
        assert!(matches!(&e, Error::Full { capacity, .. } if capacity == "4 items"), "{e}");
        assert!(matches!(Error::from(TryGetError::Empty), Error::Empty { what: "queue" }));
        assert!(matches!(Error::from(TaskDoneError), Error::TaskDoneTooOften));
        let e = Error::from(JoinError::Closed);
        assert!(matches!(e, Error::Closed { what: "joinable queue" }), "{e}");
        let e = Error::from(JoinTimeoutError::Timeout { after: ms });
        assert!(matches!(e, Error::Timeout { what: "JoinableQueue::join", .. }), "{e}");
        let e = Error::from(MessageTryPutError::Full { capacity: 64 });
        assert!(
            matches!(&e, Error::Full { what: "message queue", capacity } if capacity == "64 B")
        );
        let e = Error::from(MessagePutError::TooLarge { len: 9, max: 8 });
        assert!(matches!(e, Error::MessageTooLarge { what: "message queue", len: 9, max: 8 }));
        let e = Error::from(MessageGetError::PeerDied { pids: vec![] });
        assert!(matches!(e, Error::PeerDied { what: "message queue", role: "producer", .. }));
        let e = Error::from(MessageTryGetError::Timeout { after: ms });
        assert!(matches!(e, Error::Timeout { what: "MessageQueue::get", .. }), "{e}");
        let e = Error::from(MessagePutTimeoutError::BadMessage { reason: "x".into() });
        assert!(matches!(&e, Error::BadMessage { what: "message queue", reason } if reason == "x"));
        assert_eq!(TaskDoneError.to_string(), Error::TaskDoneTooOften.to_string());
    }
}
