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
//! See `docs/architecture.md` for the segment layout and the ownership rules.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "shmpool runs on Linux only: it is built on memfd, pidfds, shared futexes, /proc, \
     MADV_DONTFORK and glibc's robust process-shared pthread mutexes"
);

mod array;
mod error;
mod frame;
mod pipe;
mod pool;
mod process;
pub mod queue;
pub mod segment;
mod sync;
mod sys;
mod value;

pub use array::SharedArray;
pub use error::{Error, Result, human_bytes};
pub use pipe::{Connection, DEFAULT_MAX_MESSAGE, ReceivedHandle, pipe, pipe_with};
pub use pool::{AsyncResult, IMap, IMapUnordered, JobHandle, Pool, PoolBuilder};
pub use process::boot::init;
pub use process::builder::ProcessBuilder;
pub use process::child::ChildResult;
pub use process::context::{Context, get_context};
pub use process::cpu::{cpu_count, process_cpu_count};
pub use process::forkserver::{shutdown_forkserver, shutdown_forkserver_timeout};
pub use process::handle::Process;
pub use process::lend::Lend;
pub use process::marker::BAD_MARKER_EXIT_CODE;
pub use process::method::StartMethod;
pub use process::scope::{Scope, ScopedChild, scope};
pub use process::status::ExitStatus;
pub use queue::{JoinableQueue, MessageQueue, Queue};
pub use segment::{SegmentHandle, ShmOptions, clean_stale};
pub use sync::barrier::{Barrier, BarrierWaitResult};
pub use sync::condition::{Condition, WaitTimeoutResult};
pub use sync::event::Event;
pub use sync::lock_error::{LockError, LockResult, OwnerDied};
pub use sync::mutex::{Mutex, MutexGuard};
pub use sync::rlock::{RLock, RLockGuard};
pub use sync::semaphore::{BoundedSemaphore, Semaphore};
pub use value::{AtomicCell, RawValue, SharedAtomic, SharedValue};
