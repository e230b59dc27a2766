//! # shmpool
//!
//! Python's `multiprocessing`, rebuilt in Rust around one idea: the data never moves.
//!
//! - [`SharedArray`]: typed arrays in shared memory (memfd by default, named POSIX shm when an
//!   unrelated process, Python included, must attach), reserved up front so a full `/dev/shm`
//!   is an [`Error::OutOfSpace`], never a SIGBUS.
//! - [`scope`]: fork children that borrow chunks of those arrays and work on them in place.
//! - [`Process`] and [`get_context`]: child processes under Python's `fork`, `forkserver` and
//!   `spawn` start methods, which die with their parent however it dies. Nothing needs adding to
//!   `main` (a constructor diverts re-executed children before it; [`init`] is the fallback).
//! - [`Pool`]: forked workers that run `fn` kernels in place on chunks of shared arrays (only
//!   chunk indices travel), plus Python's task API; panics and dead workers are errors, never
//!   hangs.
//! - Cross-process synchronisation that lives in shared memory and survives a dead holder.
//!
//! The root holds the names Python's `multiprocessing` namespace holds, so a port finds them
//! where it looks; the rest lives in the module for its domain, as in Python's
//! `multiprocessing.synchronize`, `.pool`, `.connection` and `.shared_memory`:
//!
//! | module | holds |
//! |---|---|
//! | [`sync`] | locks and their guards and errors, semaphores, events, conditions, barriers |
//! | [`process`] | `Process`, its builder and contexts, start methods, scoped forks and lending, exit statuses |
//! | [`pool`] | `Pool`, its builder, asynchronous results and iterators |
//! | [`queue`] | the queues and their per-operation errors |
//! | [`connection`] | `pipe` and `Connection` |
//! | [`segment`] | shared-memory segments: options, handles, cleanup of dead creators' segments |
//! | [`manager`] | the `Manager`'s builder, proxies and custom managed types (a server process holding objects) |
//! | [`shape`] | N-D shapes of shared arrays, and (feature `ndarray`) views of their row blocks |
//!
//! See `docs/architecture.md` for the layers, the segment layout and the ownership rules.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "shmpool runs on Linux only: it is built on memfd, pidfds, shared futexes, /proc, \
     MADV_DONTFORK and glibc's robust process-shared pthread mutexes"
);

mod array;
pub mod connection;
mod error;
mod frame;
mod listener;
pub mod manager;
pub mod pool;
pub mod process;
pub mod queue;
pub mod segment;
pub mod shape;
pub mod sync;
mod sys;
mod value;

// The root holds what Python's `multiprocessing` namespace holds (Process, Pool, Queue, Pipe,
// Lock, Value, Array, get_context, cpu_count, ...) and the data plane; guards, builders, results,
// per-operation errors and the rest live in the module named for their domain.
pub use array::{LockedArray, LockedArrayHandle, SharedArray};
pub use connection::{Connection, pipe};
pub use error::{Error, Result, human_bytes};
pub use manager::Manager;
pub use pool::Pool;
pub use process::{
    Context, Process, StartMethod, cpu_count, get_context, init, process_cpu_count, scope,
};
pub use process::{
    active_children, current_process, get_start_method, parent_process, set_start_method,
};
pub use queue::{JoinableQueue, MessageQueue, Queue};
pub use segment::{SegmentHandle, ShmOptions, clean_stale};
pub use sync::{Barrier, BoundedSemaphore, Condition, Event, Mutex, RLock, Semaphore};
pub use value::{AtomicCell, RawValue, SharedAtomic, SharedValue};
