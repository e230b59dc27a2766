//! Cross-process synchronisation that lives in shared memory: robust locks (a dead holder is
//! reported, never a hang), semaphores, events, conditions and barriers. See `README.md` in
//! this folder for the protocols.

pub(crate) mod barrier;
pub(crate) mod by_handle;
pub(crate) mod condition;
pub(crate) mod event;
pub(crate) mod held;
pub(crate) mod lock_error;
pub(crate) mod mutex;
pub(crate) mod rlock;
pub(crate) mod robust;
pub(crate) mod semaphore;
pub(crate) mod wait;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condition::{Condition, WaitTimeoutResult};
pub use event::Event;
pub(crate) use held::held_guards;
pub use lock_error::{LockError, LockResult, OwnerDied};
pub use mutex::{Mutex, MutexGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore};
// A locked array's guard lives with the other guards; the array itself is in the data plane.
pub use crate::array::LockedArrayGuard;

/// Generates `open`, `open_handle`, `handle` and `name` for a type whose only field `cell` is a
/// `ShmBox` of kind `$kind`, with doc examples: `$ty` names the type in a path, `$make` builds one
/// from an `opts: ShmOptions` binding.
macro_rules! object_methods {
    ($kind:expr, $what:literal, $ty:literal, $make:literal) => {
        #[doc = concat!(
            "Opens the named ", $what, " another process created (see [`ShmOptions::named`]",
            "(crate::ShmOptions::named)), checking what the segment holds.\n\n",
            "# Errors\n\n[`NotFound`](crate::Error::NotFound), [`KindMismatch`](crate::Error::KindMismatch) ",
            "(it holds something else), [`TypeMismatch`](crate::Error::TypeMismatch), ",
            "[`NotShmpool`](crate::Error::NotShmpool).\n\n",
            "```\nlet opts = shmpool::ShmOptions::new().generated_name();\nlet a = ", $make, ";\n",
            "let b = ", $ty, "::open(a.name().unwrap())?;\nassert_eq!(b.name(), a.name());\n",
            "# Ok::<(), shmpool::Error>(())\n```"
        )]
        pub fn open(name: &str) -> $crate::Result<Self> {
            Ok(Self { cell: $crate::segment::object::ShmBox::open_named(name, $kind)? })
        }

        #[doc = concat!(
            "Opens the ", $what, " a [`SegmentHandle`](crate::SegmentHandle) refers to (anonymous ",
            "or named), checking what the segment holds.\n\n",
            "# Errors\n\n[`StaleHandle`](crate::Error::StaleHandle), [`KindMismatch`](crate::Error::KindMismatch), ",
            "[`TypeMismatch`](crate::Error::TypeMismatch).\n\n",
            "```\nlet opts = shmpool::ShmOptions::new();\nlet a = ", $make, ";\n",
            "let b = ", $ty, "::open_handle(&a.handle())?; // what a forked child or a pool worker does\n",
            "# Ok::<(), shmpool::Error>(())\n```"
        )]
        pub fn open_handle(handle: &$crate::SegmentHandle) -> $crate::Result<Self> {
            Ok(Self { cell: $crate::segment::object::ShmBox::open_handle(handle, $kind)? })
        }

        #[doc = concat!(
            "A handle another process can pass to `open_handle`.\n\n",
            "```\nlet opts = shmpool::ShmOptions::new();\nlet a = ", $make, ";\n",
            "println!(\"{}\", a.handle()); // memfd:<pid>/<fd>#<nonce>\n",
            "# Ok::<(), shmpool::Error>(())\n```"
        )]
        pub fn handle(&self) -> $crate::SegmentHandle {
            self.cell.segment().handle()
        }

        #[doc = concat!(
            "The segment's name (without a leading '/') if the ", $what, " is named; `None` for ",
            "anonymous ones.\n\n",
            "```\nlet opts = shmpool::ShmOptions::new();\nlet a = ", $make, ";\n",
            "assert_eq!(a.name(), None);\n# Ok::<(), shmpool::Error>(())\n```"
        )]
        pub fn name(&self) -> Option<&str> {
            self.cell.segment().name()
        }
    };
}
pub(crate) use object_methods;
