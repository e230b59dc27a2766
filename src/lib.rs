//! # shmpool
//!
//! Python's `multiprocessing`, rebuilt in Rust around one idea: the data never moves.
//!
//! - [`SharedArray`]: typed arrays in shared memory (memfd by default, named POSIX shm when an
//!   unrelated process, Python included, must attach), reserved up front so a full `/dev/shm`
//!   is an [`Error::OutOfSpace`], never a SIGBUS.
//! - [`scope`]: fork children that borrow chunks of those arrays and work on them in place.
//! - [`Pool`]: forked workers that run `fn` kernels in place on chunks of shared arrays (only
//!   chunk indices travel), plus Python's task API; panics and dead workers are errors, never
//!   hangs.
//! - Cross-process synchronisation that lives in shared memory and survives a dead holder.
//!
//! See `docs/architecture.md` for the segment layout and the ownership rules.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod array;
mod error;
mod pool;
mod process;
pub mod segment;
mod sys;

pub use array::SharedArray;
pub use error::{Error, Result, human_bytes};
pub use pool::{AsyncResult, IMap, IMapUnordered, JobHandle, Pool, PoolBuilder};
pub use process::child::ChildResult;
pub use process::scope::{Scope, ScopedChild, scope};
pub use process::status::ExitStatus;
pub use segment::{SegmentHandle, ShmOptions, clean_stale};
