//! Handles: small, serializable references to a segment that another process resolves.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a segment can be found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum Locator {
    /// A named POSIX shm segment (bare name, no leading '/').
    Named(String),
    /// An anonymous memfd: descriptor `fd` of process `pid` (the creator). Resolved through
    /// `/proc/<pid>/fd/<fd>`, or through the same descriptor inherited by a forked child.
    Anonymous {
        /// The process that holds the descriptor.
        pid: u32,
        /// The descriptor number in that process.
        fd: i32,
    },
}

/// A reference to a shared segment that can cross to another process (by value, by serde, or
/// inside a `Pod` message via its parts) and be opened there.
///
/// A handle carries the segment's random nonce, so opening a handle whose segment is gone and
/// whose descriptor number or name was reused fails with
/// [`Error::StaleHandle`](crate::Error::StaleHandle) instead of mapping the wrong memory.
///
/// ```
/// use shmpool::SharedArray;
///
/// let a = SharedArray::from_slice(&[1u32, 2, 3])?;
/// let h = a.handle();
/// // SAFETY: no process writes `a` while `b` is in use (both only read here).
/// let b = unsafe { SharedArray::<u32>::open_handle(&h)? };
/// assert_eq!(&b[..], &[1, 2, 3]);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SegmentHandle {
    pub(crate) loc: Locator,
    pub(crate) nonce: u64,
}

impl SegmentHandle {
    /// The segment's name, if it is a named segment.
    pub fn name(&self) -> Option<&str> {
        match &self.loc {
            Locator::Named(n) => Some(n),
            Locator::Anonymous { .. } => None,
        }
    }
}

impl fmt::Display for SegmentHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Locator::Named(n) => write!(f, "shm:{n}#{:016x}", self.nonce),
            Locator::Anonymous { pid, fd } => write!(f, "memfd:{pid}/{fd}#{:016x}", self.nonce),
        }
    }
}
