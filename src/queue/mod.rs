//! Queues in shared memory: [`Queue`](crate::Queue) for `Pod` items,
//! [`JoinableQueue`](crate::JoinableQueue) with `task_done` and `join`, and
//! [`MessageQueue`](crate::MessageQueue) for variable-size serialized messages.
//!
//! One file per flavour; `wait.rs` holds the spin-then-futex wake protocol they share, and
//! `peers.rs` the registry that turns "every producer died" into an error instead of a hang.
//! `README.md` in this folder gives the layouts and the argument for why no wake is lost.

pub(crate) mod bounded;
pub(crate) mod joinable;
pub(crate) mod message;
pub(crate) mod peers;
pub(crate) mod wait;
