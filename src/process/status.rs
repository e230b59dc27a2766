//! How a child process ended, and the 8-byte codec a forkserver uses to say so.

use std::fmt;

use crate::sys::proc::{Exit, signal_name};

/// The way a child process ended, with Python's `exitcode` convention available.
///
/// ```
/// let st = shmpool::scope(|s| s.fork(|| 3)?.join())??;
/// assert_eq!(st.code(), Some(3));
/// assert_eq!(st.exitcode(), 3);
/// assert!(!st.success());
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    pub(crate) exit: Exit,
    pub(crate) panic: Option<String>,
}

impl ExitStatus {
    /// Whether the child exited with code 0.
    pub fn success(&self) -> bool {
        self.exit == Exit::Code(0)
    }

    /// The exit code, if the child exited (rather than being killed).
    pub fn code(&self) -> Option<i32> {
        match self.exit {
            Exit::Code(c) => Some(c),
            Exit::Signal(_) => None,
        }
    }

    /// The signal that killed the child, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.exit {
            Exit::Signal(s) => Some(s),
            Exit::Code(_) => None,
        }
    }

    /// Python's `Process.exitcode`: the exit code, or minus the signal number.
    pub fn exitcode(&self) -> i32 {
        match self.exit {
            Exit::Code(c) => c,
            Exit::Signal(s) => -s,
        }
    }

    /// The panic message, if the child panicked (it then exits with code 101).
    pub fn panic_message(&self) -> Option<&str> {
        self.panic.as_deref()
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.panic, self.exit) {
            // A child killed by a signal may have said why first (a fault in memory it was not
            // given explains itself on the report pipe).
            (Some(msg), Exit::Signal(s)) => {
                write!(f, "was killed by signal {s} ({}): {msg}", signal_name(s))
            }
            (Some(msg), _) => write!(f, "panicked: {msg}"),
            (None, Exit::Code(c)) => write!(f, "exited with code {c}"),
            (None, Exit::Signal(s)) => write!(f, "was killed by signal {s} ({})", signal_name(s)),
        }
    }
}

/// How a worker ended, as the forkserver writes it to the worker's status pipe: 8 bytes, a tag
/// (0: exit code, 1: signal) and the value, each an `i32` little-endian.
pub(crate) fn encode(exit: Exit) -> [u8; 8] {
    let (tag, v) = match exit {
        Exit::Code(c) => (0i32, c),
        Exit::Signal(s) => (1, s),
    };
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&tag.to_le_bytes());
    b[4..].copy_from_slice(&v.to_le_bytes());
    b
}

/// Decodes a status [`encode`] wrote.
pub(crate) fn decode(b: [u8; 8]) -> Exit {
    let tag = i32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
    let v = i32::from_le_bytes(b[4..].try_into().expect("4 bytes"));
    if tag == 0 { Exit::Code(v) } else { Exit::Signal(v) }
}
