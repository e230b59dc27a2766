//! The pool: worker processes (started by the forkserver by default, or forked or spawned) that
//! run kernels in place on chunks of shared arrays: [`Pool`], its [`PoolBuilder`], and the
//! handles of work in flight ([`AsyncResult`], [`IMap`], [`IMapUnordered`], [`IMapBuffered`],
//! [`ApplyQueue`] and its [`Pending`] results, [`JobHandle`]).
//!
//! Inside, one file per concept, in layers (each file uses only those before it in this list):
//! `words` (the control block's packed and state words), `control` (the shared control
//! block), `anon` (its mapping), `star` (the tuples `starmap` spreads), `in_place` (the argument types a task borrows
//! in place), `codec` (the byte
//! layout of serialized tasks), `task_clock` (when a worker's task started, for task
//! timeouts), `kernel` (type-erased data-parallel trampolines), `task_kernel` (task trampolines), `liveness` (a
//! worker's life as the parent sees it), `wake` (the parent's wake pipe), `active` (the job
//! in flight), `worker` (the worker loop and its single start step), `state` (the `Pool`
//! itself, its owner check and `terminate`), `failure` (waiting for a job and noticing dead
//! workers), `cancel` (cancelling unclaimed chunks), `publish` (publishing a job), `staging`
//! (task arguments in, results out), `shutdown` (`close`, `join`), `builder`
//! (configuration), `job` (the asynchronous job handle), `async_result` and `imap` (task
//! results), `apply_queue` (many `apply_async` calls in flight), `parallel` (the data-parallel
//! operations), `tasks` (Python's task API).
//! `README.md` beside this file explains the protocol.

pub(crate) mod active;
pub(crate) mod anon;
pub(crate) mod apply_queue;
pub(crate) mod async_result;
pub(crate) mod builder;
pub(crate) mod cancel;
pub(crate) mod chunk;
pub(crate) mod codec;
pub(crate) mod control;
pub(crate) mod failure;
pub(crate) mod imap;
pub(crate) mod in_place;
pub(crate) mod job;
pub(crate) mod job_builder;
pub(crate) mod kernel;
pub(crate) mod liveness;
pub(crate) mod parallel;
pub(crate) mod publish;
pub(crate) mod shutdown;
pub(crate) mod stage;
pub(crate) mod staging;
pub(crate) mod star;
pub(crate) mod state;
pub(crate) mod task_clock;
pub(crate) mod task_kernel;
pub(crate) mod tasks;
pub(crate) mod wake;
pub(crate) mod words;
pub(crate) mod worker;

pub use apply_queue::{ApplyQueue, Pending};
pub use async_result::AsyncResult;
pub use builder::{Affinity, PoolBuilder};
pub use chunk::Chunk;
pub use imap::{IMap, IMapBuffered, IMapUnordered};
pub use in_place::InPlace;
pub use job::JobHandle;
pub use job_builder::JobBuilder;
pub use star::StarArgs;
pub use state::Pool;
