//! The child-boot marker: the environment variable that tells a re-executed copy of the program
//! what to become (a spawn child or the forkserver), with the descriptors it inherits and its
//! secret, and the record that a diversion path ran in this process. Its text format and checks
//! are in `README.md` beside this file ("Child boot"). A leaf: the parent side writes a marker
//! (`reexec.rs`), the child side reads it (`boot.rs`).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys::{self, fdpass::FdKind};

/// The environment variable that marks a re-executed child.
pub(crate) const MARKER: &str = "SHMPOOL_WORKER";

/// The exit code of a process whose `SHMPOOL_WORKER` environment variable was malformed or did not
/// come from a shmpool parent (its stderr says why).
///
/// ```
/// assert_eq!(shmpool::process::BAD_MARKER_EXIT_CODE, 120);
/// ```
pub const BAD_MARKER_EXIT_CODE: i32 = 120;

/// What a re-executed child is to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Run one job read from `fd_a`, reporting a panic to `fd_b`.
    Spawn,
    /// Serve fork requests arriving on the socket `fd_a`.
    ForkServer,
}

/// The parsed marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) mode: Mode,
    pub(crate) fd_a: RawFd,
    pub(crate) fd_b: RawFd,
    pub(crate) alive: RawFd,
    pub(crate) secret: u64,
}

impl Marker {
    /// The marker's text.
    pub(crate) fn format(&self) -> String {
        let mode = match self.mode {
            Mode::Spawn => "spawn",
            Mode::ForkServer => "forkserver",
        };
        format!("1,{mode},{},{},{},{:016x}", self.fd_a, self.fd_b, self.alive, self.secret)
    }

    /// Parses and checks a marker: the descriptors must be open and of the kinds the mode needs.
    pub(crate) fn parse(s: &str) -> Result<Marker, String> {
        let parts: Vec<&str> = s.split(',').collect();
        let [version, mode, a, b, alive, secret] = parts[..] else {
            return Err(format!(
                "its value {s:?} does not have the six fields 1,MODE,FD,FD,FD,SECRET"
            ));
        };
        if version != "1" {
            return Err(format!(
                "its version {version:?} is not 1 (parent and child from different shmpool versions?)"
            ));
        }
        let mode = match mode {
            "spawn" => Mode::Spawn,
            "forkserver" => Mode::ForkServer,
            other => return Err(format!("its mode {other:?} is neither spawn nor forkserver")),
        };
        let fd =
            |t: &str| t.parse::<RawFd>().map_err(|_| format!("{t:?} is not a descriptor number"));
        let (fd_a, fd_b, alive) = (fd(a)?, fd(b)?, fd(alive)?);
        if secret.len() != 16 {
            return Err("its secret is not 16 hex digits".into());
        }
        let secret = u64::from_str_radix(secret, 16)
            .map_err(|_| "its secret is not 16 hex digits".to_string())?;
        let expect = |fd: RawFd, kind: FdKind, what: &str| -> Result<(), String> {
            // Standard streams are never ours: refusing them keeps stderr for the message.
            if fd < 3 {
                return Err(format!("its {what} descriptor {fd} is a standard stream"));
            }
            match sys::fdpass::fd_kind(fd) {
                Some(k) if k == kind => Ok(()),
                Some(_) => Err(format!("its {what} descriptor {fd} is not a {kind:?}")),
                None => Err(format!("its {what} descriptor {fd} is not open")),
            }
        };
        match mode {
            Mode::Spawn => {
                expect(fd_a, FdKind::Pipe, "job")?;
                expect(fd_b, FdKind::Pipe, "report")?;
            }
            Mode::ForkServer => expect(fd_a, FdKind::Socket, "request")?,
        }
        expect(alive, FdKind::Pipe, "alive")?;
        if fd_a == alive || (mode == Mode::Spawn && (fd_b == fd_a || fd_b == alive)) {
            return Err("it names one descriptor twice".into());
        }
        Ok(Marker { mode, fd_a, fd_b, alive, secret })
    }
}

/// Set by either diversion path (the constructor or `init`, see `boot.rs`) when it runs.
static DIVERTED: AtomicBool = AtomicBool::new(false);

/// Records that a diversion path runs in this process.
pub(crate) fn record_diversion() {
    DIVERTED.store(true, Ordering::Relaxed);
}

/// Whether a diversion path ran in this process: then it runs first in a re-executed copy too.
pub(crate) fn diverted() -> bool {
    DIVERTED.load(Ordering::Relaxed)
}

/// Refuses to start re-executed children when no diversion path ran in this process (`ran`).
pub(crate) fn check_diverted(ran: bool) -> crate::error::Result<()> {
    if ran {
        return Ok(());
    }
    Err(crate::error::Error::SpawnUnavailable {
        reason: "shmpool's constructor did not run in this program (its .init_array entry was \
                 dropped by the target or linker setup) and shmpool::init() was not called, so a \
                 re-executed copy would run main again instead of the child's function; call \
                 shmpool::init() as the first statement of main"
            .into(),
    })
}

/// Ends a process whose marker was bad, saying why.
pub(crate) fn fail(reason: &str) -> ! {
    eprintln!(
        "shmpool: this process was started as a shmpool worker ({MARKER} is set in its environment), \
         but {reason}; it exits with code {BAD_MARKER_EXIT_CODE}. If you set {MARKER} yourself, unset it."
    );
    sys::proc::exit_now(BAD_MARKER_EXIT_CODE)
}

/// Takes ownership of a descriptor named by a checked marker.
pub(crate) fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: `Marker::parse` checked that `fd` is open and not a standard stream; it was
    // inherited across exec for this purpose, and nothing else in this fresh process owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn a_marker_round_trips_and_its_descriptors_are_checked() {
        let (a, b) = sys::proc::pipe().unwrap();
        let (alive, _w) = sys::proc::pipe().unwrap();
        let m = Marker {
            mode: Mode::Spawn,
            fd_a: a.as_raw_fd(),
            fd_b: b.as_raw_fd(),
            alive: alive.as_raw_fd(),
            secret: 0xfeed,
        };
        assert_eq!(Marker::parse(&m.format()), Ok(m));
        // A pipe is not the socket a forkserver marker needs.
        let fs = Marker { mode: Mode::ForkServer, fd_b: -1, ..m };
        assert!(Marker::parse(&fs.format()).unwrap_err().contains("Socket"));
        let twice = Marker { fd_b: m.fd_a, ..m };
        assert!(Marker::parse(&twice.format()).unwrap_err().contains("twice"));
        assert!(Marker::parse("1,spawn,3,4,5").unwrap_err().contains("six fields"));
    }

    #[test]
    fn spawning_needs_a_diversion_path_that_ran() {
        // The test binary links the constructor, which ran before main.
        assert!(diverted());
        check_diverted(true).unwrap();
        let e = check_diverted(false).unwrap_err();
        assert!(e.to_string().contains("shmpool::init()"), "{e}");
    }
}
