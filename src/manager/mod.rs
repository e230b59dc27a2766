//! The `Manager`: a server process holding objects that other processes, local or remote,
//! reach through typed proxies (Python's `multiprocessing.managers`). See `docs/manager.md`
//! for the architecture, the wire format and what the authentication protects.
//!
//! One file per concept: `wire` (requests and replies), `store` (the server's objects and
//! operations), `server` (the process: listener and one thread per connection), `session`
//! (a proxy's connections and calls), `builder` (`Manager`, `ManagerBuilder`), `custom`
//! (`Managed` types, their registry and proxy), `table` and `shared` (the fast path: a
//! dict in shared memory the local proxies map), `named` (objects found by name), `proxy` (what every proxy shares), and one
//! file per proxy kind.

pub(crate) mod array;
pub(crate) mod barrier;
pub(crate) mod builder;
pub(crate) mod condition;
pub(crate) mod custom;
pub(crate) mod dict;
pub(crate) mod event;
pub(crate) mod list;
pub(crate) mod lock;
pub(crate) mod named;
pub(crate) mod proxy;
pub(crate) mod queue;
pub(crate) mod semaphore;
pub(crate) mod server;
pub(crate) mod session;
pub(crate) mod shared;
pub(crate) mod store;
pub(crate) mod table;
pub(crate) mod value;
pub(crate) mod wire;

pub use array::ArrayProxy;
pub use barrier::BarrierProxy;
pub use builder::{Manager, ManagerBuilder};
pub use condition::ConditionProxy;
pub use custom::{CustomProxy, Managed, Registry};
pub use dict::DictProxy;
pub use event::EventProxy;
pub use list::ListProxy;
pub use lock::{LockProxy, ManagedGuard, Plain, RLockProxy, Reentrant};
pub use named::Named;
pub use queue::QueueProxy;
pub use semaphore::SemaphoreProxy;
pub use session::DEFAULT_CALL_TIMEOUT;
pub use value::ValueProxy;
