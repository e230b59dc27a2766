//! What each queue operation can fail with: one small type per operation (as
//! `crossbeam-channel`'s `err.rs` does), so a signature says what can go wrong and a `match`
//! over it is exhaustive.
//!
//! | operation | type | variants |
//! |---|---|---|
//! | [`Queue::get`](crate::Queue::get) | [`GetError`] | `Closed`, `PeerDied`, `SlotAbandoned` |
//! | [`Queue::get_timeout`](crate::Queue::get_timeout) | [`GetTimeoutError`] | `Timeout`, `Closed`, `PeerDied`, `SlotAbandoned` |
//! | [`Queue::get_nowait`](crate::Queue::get_nowait) | [`TryGetError`] | `Empty`, `Closed` |
//! | [`Queue::put`](crate::Queue::put) | [`PutError`] | `Closed`, `PeerDied`, `SlotAbandoned` |
//! | [`Queue::put_timeout`](crate::Queue::put_timeout) | [`PutTimeoutError`] | `Timeout`, `Closed`, `PeerDied`, `SlotAbandoned` |
//! | [`Queue::put_nowait`](crate::Queue::put_nowait) | [`TryPutError`] | `Full`, `Closed` |
//! | [`JoinableQueue::task_done`](crate::JoinableQueue::task_done) | [`TaskDoneError`] | (one way) |
//! | [`JoinableQueue::join`](crate::JoinableQueue::join) | [`JoinError`] | `Closed`, `PeerDied` |
//! | [`JoinableQueue::join_timeout`](crate::JoinableQueue::join_timeout) | [`JoinTimeoutError`] | `Timeout`, `Closed`, `PeerDied` |
//! | every [`MessageQueue`](crate::MessageQueue) get | [`MessageGetError`] | `Empty`, `Timeout`, `Closed`, `PeerDied`, `BadMessage` |
//! | every [`MessageQueue`](crate::MessageQueue) put | [`MessagePutError`] | `Full`, `Timeout`, `Closed`, `PeerDied`, `TooLarge`, `BadMessage` |
//!
//! A `MessageQueue` has one type per direction rather than per operation: every form can refuse
//! a frame (`BadMessage`), and even the `_nowait` forms wait a slice for the ring lock (then
//! `Timeout`), so per-operation types would differ by a variant or two; each method's
//! documentation says which variants it returns.
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

/// A frame a `MessageQueue` refuses to read or write, with the reason (`BadMessage`).
#[derive(Debug)]
pub(crate) struct BadFrame(pub(crate) String);

/// How long a wait may last: `None` for ever, or a timeout and the error that ends the wait when
/// it passes.
pub(crate) type Limit<E> = Option<(Duration, fn(Duration) -> E)>;

/// Why [`Queue::get_nowait`](crate::Queue::get_nowait) returned no item.
///
/// ```
/// use shmpool::queue::TryGetError;
/// let q = shmpool::Queue::<u8>::new(1)?;
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
}

/// Why [`Queue::get`](crate::Queue::get) returned no item.
///
/// ```
/// use shmpool::queue::GetError;
/// let q = shmpool::Queue::<u8>::new(1)?;
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
}

/// Why [`Queue::get_timeout`](crate::Queue::get_timeout) returned no item.
///
/// ```
/// use std::time::Duration;
/// use shmpool::queue::GetTimeoutError;
/// let q = shmpool::Queue::<u8>::new(1)?;
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
}

/// Why [`Queue::put_nowait`](crate::Queue::put_nowait) stored nothing.
///
/// ```
/// use shmpool::queue::TryPutError;
/// let q = shmpool::Queue::<u8>::new(1)?;
/// q.put_nowait(1)?;
/// assert_eq!(q.put_nowait(2), Err(TryPutError::Full { capacity: 1 }));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryPutError {
    /// The queue holds `capacity` items now.
    Full {
        /// The queue's capacity, in items.
        capacity: usize,
    },
    /// The queue was closed (by any process).
    Closed,
}

/// Why [`Queue::put`](crate::Queue::put) stored nothing.
///
/// ```
/// use shmpool::queue::PutError;
/// let q = shmpool::Queue::<u8>::new(1)?;
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
}

/// Why [`Queue::put_timeout`](crate::Queue::put_timeout) stored nothing.
///
/// ```
/// use std::time::Duration;
/// use shmpool::queue::PutTimeoutError;
/// let q = shmpool::Queue::<u8>::new(1)?;
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
}

/// [`JoinableQueue::task_done`](crate::JoinableQueue::task_done) was called more times than
/// items were put.
///
/// ```
/// let q = shmpool::JoinableQueue::<u8>::new(1)?;
/// assert_eq!(q.task_done(), Err(shmpool::queue::TaskDoneError));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDoneError;

/// Why [`JoinableQueue::join`](crate::JoinableQueue::join) returned with work unfinished.
///
/// ```
/// use shmpool::queue::JoinError;
/// let q = shmpool::JoinableQueue::<u8>::new(1)?;
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
/// let q = shmpool::JoinableQueue::<u8>::new(1)?;
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

/// Why a [`MessageQueue`](crate::MessageQueue) get (`get`, `get_timeout`, `get_nowait`,
/// `get_bytes`) returned no message. Each method's documentation says which variants it returns.
///
/// ```
/// use shmpool::queue::MessageGetError;
/// let q = shmpool::MessageQueue::new(64, 16)?;
/// assert_eq!(q.get_nowait::<u8>(), Err(MessageGetError::Empty));
/// q.put(&(1u8, 2u8))?;
/// assert!(matches!(q.get::<String>(), Err(MessageGetError::BadMessage { .. })));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageGetError {
    /// `get_nowait`: the queue holds no message now.
    Empty,
    /// `get_timeout`: no message came within the timeout; `get_nowait`: another process held
    /// the ring lock for a whole sleep slice (50 ms).
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
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

/// Why a [`MessageQueue`](crate::MessageQueue) put (`put`, `put_timeout`, `put_nowait`,
/// `put_bytes`) stored nothing. Each method's documentation says which variants it returns.
///
/// ```
/// use shmpool::queue::MessagePutError;
/// let q = shmpool::MessageQueue::new(64, 8)?;
/// let e = q.put_bytes(&[0; 9]).unwrap_err();
/// assert_eq!(e, MessagePutError::TooLarge { len: 9, max: 8 });
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagePutError {
    /// `put_nowait`: the ring has no room for the message now.
    Full {
        /// The ring's size in bytes.
        capacity: u64,
    },
    /// `put_timeout`: no room came within the timeout; `put_nowait`: another process held the
    /// ring lock for a whole sleep slice (50 ms).
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
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
}

/// The names one side of one queue flavour gives its errors in [`Error`]: the object, the
/// operation a timeout names, and the role of the processes whose death ends its waits.
struct Side {
    what: &'static str,
    op: &'static str,
    role: &'static str,
}

const GET: Side = Side { what: "queue", op: "Queue::get", role: "producer" };
const PUT: Side = Side { what: "queue", op: "Queue::put", role: "consumer" };
const JOIN: Side = Side { what: "joinable queue", op: "JoinableQueue::join", role: "consumer" };
const MESSAGE_GET: Side = Side { what: "message queue", op: "MessageQueue::get", role: "producer" };
const MESSAGE_PUT: Side = Side { what: "message queue", op: "MessageQueue::put", role: "consumer" };

impl Side {
    fn timeout(&self, after: Duration) -> Error {
        Error::Timeout { what: self.op, after }
    }

    fn closed(&self) -> Error {
        Error::Closed { what: self.what }
    }

    fn peer_died(&self, pids: Vec<u32>) -> Error {
        Error::PeerDied { what: self.what, role: self.role, pids }
    }

    fn slot_abandoned(&self, pos: u64) -> Error {
        Error::SlotAbandoned { what: self.what, role: self.role, pos }
    }

    fn bad_message(&self, reason: String) -> Error {
        Error::BadMessage { what: self.what, reason }
    }
}

impl From<TryGetError> for Error {
    fn from(e: TryGetError) -> Error {
        match e {
            TryGetError::Empty => Error::Empty { what: GET.what },
            TryGetError::Closed => GET.closed(),
        }
    }
}

impl From<TryPutError> for Error {
    fn from(e: TryPutError) -> Error {
        match e {
            TryPutError::Full { capacity } => {
                Error::Full { what: PUT.what, capacity: format!("{capacity} items") }
            }
            TryPutError::Closed => PUT.closed(),
        }
    }
}

/// The conversions of a waiting `Queue` operation's two types: the blocking one into the one
/// with a timeout (the same variants), and both into [`Error`], named as `side` says.
macro_rules! waiting_conversions {
    ($side:ident: $blocking:ident, $timeout:ident) => {
        impl From<$timeout> for Error {
            fn from(e: $timeout) -> Error {
                match e {
                    $timeout::Timeout { after } => $side.timeout(after),
                    $timeout::Closed => $side.closed(),
                    $timeout::PeerDied { pids } => $side.peer_died(pids),
                    $timeout::SlotAbandoned { pos } => $side.slot_abandoned(pos),
                }
            }
        }

        impl From<$blocking> for $timeout {
            fn from(e: $blocking) -> $timeout {
                match e {
                    $blocking::Closed => $timeout::Closed,
                    $blocking::PeerDied { pids } => $timeout::PeerDied { pids },
                    $blocking::SlotAbandoned { pos } => $timeout::SlotAbandoned { pos },
                }
            }
        }

        impl From<$blocking> for Error {
            fn from(e: $blocking) -> Error {
                $timeout::from(e).into()
            }
        }
    };
}

waiting_conversions!(GET: GetError, GetTimeoutError);
waiting_conversions!(PUT: PutError, PutTimeoutError);

impl From<TaskDoneError> for Error {
    fn from(_: TaskDoneError) -> Error {
        Error::TaskDoneTooOften
    }
}

impl From<JoinTimeoutError> for Error {
    fn from(e: JoinTimeoutError) -> Error {
        match e {
            JoinTimeoutError::Timeout { after } => JOIN.timeout(after),
            JoinTimeoutError::Closed => JOIN.closed(),
            JoinTimeoutError::PeerDied { pids } => JOIN.peer_died(pids),
        }
    }
}

impl From<JoinError> for JoinTimeoutError {
    fn from(e: JoinError) -> JoinTimeoutError {
        match e {
            JoinError::Closed => JoinTimeoutError::Closed,
            JoinError::PeerDied { pids } => JoinTimeoutError::PeerDied { pids },
        }
    }
}

impl From<JoinError> for Error {
    fn from(e: JoinError) -> Error {
        JoinTimeoutError::from(e).into()
    }
}

impl From<MessageGetError> for Error {
    fn from(e: MessageGetError) -> Error {
        let side = MESSAGE_GET;
        match e {
            MessageGetError::Empty => Error::Empty { what: side.what },
            MessageGetError::Timeout { after } => side.timeout(after),
            MessageGetError::Closed => side.closed(),
            MessageGetError::PeerDied { pids } => side.peer_died(pids),
            MessageGetError::BadMessage { reason } => side.bad_message(reason),
        }
    }
}

impl From<MessagePutError> for Error {
    fn from(e: MessagePutError) -> Error {
        let side = MESSAGE_PUT;
        match e {
            MessagePutError::Full { capacity } => {
                Error::Full { what: side.what, capacity: human_bytes(capacity) }
            }
            MessagePutError::Timeout { after } => side.timeout(after),
            MessagePutError::Closed => side.closed(),
            MessagePutError::PeerDied { pids } => side.peer_died(pids),
            MessagePutError::TooLarge { len, max } => {
                Error::MessageTooLarge { what: side.what, len, max }
            }
            MessagePutError::BadMessage { reason } => side.bad_message(reason),
        }
    }
}

/// `Display` (the message of the [`Error`] variant the type converts into, which says the fix)
/// and `std::error::Error` for each queue error type.
macro_rules! display_as_error {
    ($($t:ty),* $(,)?) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&Error::from(self.clone()), f)
            }
        }

        impl std::error::Error for $t {}
    )*};
}

display_as_error!(
    TryGetError,
    GetError,
    GetTimeoutError,
    TryPutError,
    PutError,
    PutTimeoutError,
    TaskDoneError,
    JoinError,
    JoinTimeoutError,
    MessageGetError,
    MessagePutError,
);

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
    PutError, PutTimeoutError, JoinError, JoinTimeoutError, MessageGetError, MessagePutError);
from_outcome!(PeersGone, |PeersGone(pids)| Self::PeerDied { pids } => GetError, GetTimeoutError,
    PutError, PutTimeoutError, JoinError, JoinTimeoutError, MessageGetError, MessagePutError);
from_outcome!(SlotAbandoned, |SlotAbandoned(pos)| Self::SlotAbandoned { pos } => GetError,
    GetTimeoutError, PutError, PutTimeoutError);
from_outcome!(BadFrame, |BadFrame(reason)| Self::BadMessage { reason } => MessageGetError,
    MessagePutError);

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
        let e = Error::from(MessagePutError::Full { capacity: 64 });
        assert!(
            matches!(&e, Error::Full { what: "message queue", capacity } if capacity == "64 B")
        );
        let e = Error::from(MessagePutError::TooLarge { len: 9, max: 8 });
        assert!(matches!(e, Error::MessageTooLarge { what: "message queue", len: 9, max: 8 }));
        let e = Error::from(MessageGetError::PeerDied { pids: vec![] });
        assert!(matches!(e, Error::PeerDied { what: "message queue", role: "producer", .. }));
        let e = Error::from(MessageGetError::Timeout { after: ms });
        assert!(matches!(e, Error::Timeout { what: "MessageQueue::get", .. }), "{e}");
    }
}
