//! Queues in shared memory: [`Queue`] for `Pod` items, [`JoinableQueue`] with `task_done` and
//! `join`, and [`MessageQueue`] for variable-size serialized messages (Python's
//! `multiprocessing.Queue` and `JoinableQueue`), and the errors their operations return: one
//! small type per operation ([`GetTimeoutError`], [`TryPutError`], ...), each converting into
//! [`shmpool::Error`](crate::Error).
//!
//! A `MessageQueue` is unbounded by default ([`MessageQueue::new`], Python's `Queue()`: a put
//! never waits for room, the queue grows by chaining rings in shared memory) or bounded
//! ([`MessageQueue::bounded`], Python's `Queue(maxsize)`, in bytes). A [`Queue`] of `Pod` items
//! is unbounded ([`Queue::new`]) or bounded ([`Queue::bounded`]) the same way.
//!
//! One file per flavour: `bounded.rs` (the `Queue` ring and front end), `message.rs` (the bounded
//! byte ring and the `MessageQueue` front end), `unbounded.rs` (the chain of rings) and
//! `unbounded_pod.rs` (`Pod` items in it). `codec.rs` holds the frame format the message rings
//! share, `lock.rs` their ring lock, `error.rs` the error types, `wait.rs` the spin-then-futex
//! wake protocol every flavour uses, and `peers.rs` the registry that turns "every producer
//! died" into an error instead of a hang. `README.md` in this folder gives the layouts and the
//! argument for why no wake is lost.

pub(crate) mod bounded;
pub(crate) mod codec;
pub(crate) mod error;
pub(crate) mod joinable;
pub(crate) mod lock;
pub(crate) mod message;
pub(crate) mod peers;
pub(crate) mod unbounded;
pub(crate) mod unbounded_pod;
pub(crate) mod wait;

pub use bounded::Queue;
pub use error::{
    GetError, GetTimeoutError, JoinError, JoinTimeoutError, MessageGetError,
    MessageGetTimeoutError, MessagePutError, MessagePutTimeoutError, MessageTryGetError,
    MessageTryPutError, PutError, PutTimeoutError, TaskDoneError, TryGetError, TryPutError,
};
pub use joinable::JoinableQueue;
pub use message::MessageQueue;
