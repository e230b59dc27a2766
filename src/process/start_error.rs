//! What starting a child can fail with: [`StartError`], the one error type of the parent-side
//! start methods (`fork.rs`, `spawn.rs`, `forkserver.rs`, `reexec.rs`, `jobpipe.rs`), so their
//! signatures say what can go wrong. Each case converts into the umbrella [`Error`] variant it
//! was before it had a type of its own, with the same fields and message (the pattern of
//! `sync::lock_error::LockError` and `queue::error`), so `?` into `shmpool::Result` keeps working.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::error::Error;

/// Why a child process could not be started.
#[derive(Debug)]
pub(crate) enum StartError {
    /// `fork` refused: the process has other threads ([`Error::ForkWithThreads`]).
    ForkWithThreads {
        /// Threads counted.
        threads: usize,
    },
    /// `fork` refused: the process holds lock guards ([`Error::ForkWhileLocked`]).
    ForkWhileLocked {
        /// Guards held.
        held: usize,
    },
    /// The forkserver failed, refused the job, or cannot be used here ([`Error::ForkServer`]).
    ForkServer {
        /// What went wrong.
        reason: String,
    },
    /// A spawned child did not take its job in time ([`Error::Timeout`]).
    JobNotTaken {
        /// How long the parent waited.
        after: Duration,
    },
    /// A system call failed ([`Error::Io`]).
    Io {
        /// The operation, in words.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl StartError {
    /// A `map_err` adapter for a failed system call `op`, as [`Error::io`].
    pub(crate) fn io(op: &'static str) -> impl FnOnce(io::Error) -> StartError {
        move |source| StartError::Io { op, source }
    }

    /// The umbrella error with this one's fields, the OS error rebuilt from its kind and text
    /// (for `Display`, which must not consume `self`).
    fn to_umbrella(&self) -> Error {
        match self {
            StartError::ForkWithThreads { threads } => Error::ForkWithThreads { threads: *threads },
            StartError::ForkWhileLocked { held } => Error::ForkWhileLocked { held: *held },
            StartError::ForkServer { reason } => Error::ForkServer { reason: reason.clone() },
            StartError::JobNotTaken { after } => {
                Error::Timeout { what: JOB_NOT_TAKEN, after: *after }
            }
            StartError::Io { op, source } => {
                Error::Io { op, source: io::Error::new(source.kind(), source.to_string()) }
            }
        }
    }
}

/// What a [`StartError::JobNotTaken`] waited for, in the umbrella's `Timeout`.
const JOB_NOT_TAKEN: &str = "a spawned worker reading its job";

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_umbrella(), f)
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<StartError> for Error {
    fn from(e: StartError) -> Error {
        match e {
            StartError::Io { op, source } => Error::Io { op, source },
            other => other.to_umbrella(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case converts into the umbrella variant (and message) the start methods returned
    /// before they had a type of their own.
    #[test]
    fn conversions_keep_the_umbrella_variants_and_messages() {
        let cases = [
            StartError::ForkWithThreads { threads: 3 },
            StartError::ForkWhileLocked { held: 1 },
            StartError::ForkServer { reason: "(pid 9) stopped answering".into() },
            StartError::JobNotTaken { after: Duration::from_secs(30) },
            StartError::io("pipe")(io::Error::from_raw_os_error(libc::EMFILE)),
        ];
        for e in cases {
            let text = e.to_string();
            let umbrella = Error::from(e);
            assert_eq!(umbrella.to_string(), text);
        }
        let e = Error::from(StartError::ForkWithThreads { threads: 3 });
        assert!(matches!(e, Error::ForkWithThreads { threads: 3 }));
        let e = Error::from(StartError::JobNotTaken { after: Duration::from_secs(1) });
        assert!(matches!(e, Error::Timeout { what: JOB_NOT_TAKEN, .. }), "{e}");
        let e = Error::from(StartError::io("fork")(io::Error::from_raw_os_error(libc::EAGAIN)));
        let eagain = |s: &io::Error| s.raw_os_error() == Some(libc::EAGAIN);
        assert!(matches!(&e, Error::Io { op: "fork", source } if eagain(source)), "{e}");
    }
}
