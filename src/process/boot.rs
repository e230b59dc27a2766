//! How a re-executed copy of the program becomes a worker (spawn) or the forkserver before any of
//! the user's code runs.
//!
//! The parent starts `/proc/self/exe` with the environment variable [`MARKER`] set to
//! `1,<mode>,<fd>,<fd>,<alive fd>,<secret>`. A constructor in `.init_array` (run by the dynamic
//! loader before `main`) or an explicit [`init`] call at the top of `main` sees it, removes it
//! from the environment and diverts the process: it never returns to the program. A marker that
//! does not parse, names descriptors that are not open or not of the expected kind, or whose job
//! does not carry the marker's secret ends the process with [`BAD_MARKER_EXIT_CODE`] and a
//! message on stderr; no address from it is ever used.
//!
//! The constructor is linked into every binary that can start spawn or forkserver children: the
//! code that starts them refers to the static [`BOOT`] (a static in an object file the linker
//! would otherwise leave out of the final binary), and `#[used]` keeps it through section garbage
//! collection.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::alive;
use super::child;
use super::entry::Job;
use super::forkserver;
use crate::sys::{self, fdpass::FdKind};

/// The environment variable that marks a re-executed child.
pub(crate) const MARKER: &str = "SHMPOOL_WORKER";

/// The exit code of a process whose `SHMPOOL_WORKER` environment variable was malformed or did not
/// come from a shmpool parent (its stderr says why).
///
/// ```
/// assert_eq!(shmpool::BAD_MARKER_EXIT_CODE, 120);
/// ```
pub const BAD_MARKER_EXIT_CODE: i32 = 120;

/// Exit code of a child that found its parent already gone before it started.
const PARENT_GONE_EXIT_CODE: i32 = child::PANIC_EXIT_CODE + 1;

/// Largest job (serialized arguments included) a child accepts.
pub(crate) const MAX_JOB_BYTES: u64 = 1 << 30;

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

/// The constructor the dynamic loader runs before `main` in every binary that links it.
#[used]
#[unsafe(link_section = ".init_array")]
pub(crate) static BOOT: extern "C" fn() = boot_from_constructor;

extern "C" fn boot_from_constructor() {
    divert();
}

/// Diverts a re-executed shmpool child into its worker loop; returns at once in any other
/// process.
///
/// You normally do not need it: shmpool registers a constructor in `.init_array` that does the
/// same before `main` runs, in user binaries and test binaries alike. Call it first thing in
/// `main` if your target or linker setup drops `.init_array` constructors (for example a custom
/// linker script); it is harmless to call it anyway. Everything `main` does before it (including
/// starting threads) also runs in every spawn child and in the forkserver.
///
/// A process whose `SHMPOOL_WORKER` environment variable is malformed, or not from a shmpool
/// parent, exits here with [`BAD_MARKER_EXIT_CODE`] and says why on stderr.
///
/// ```
/// // The first statement of `main`:
/// shmpool::init();
/// // ... the program ...
/// ```
pub fn init() {
    divert();
}

fn divert() {
    let Some(raw) = std::env::var_os(MARKER) else { return };
    // SAFETY: this runs in a freshly executed process before `main` (or as `main`'s first
    // statement, as `init` documents), when no other thread exists to read the environment.
    unsafe { std::env::remove_var(MARKER) };
    let marker = match raw
        .to_str()
        .ok_or_else(|| "its value is not UTF-8".to_string())
        .and_then(Marker::parse)
    {
        Ok(m) => m,
        Err(reason) => fail(&reason),
    };
    sys::signal::ignore_sigpipe();
    match marker.mode {
        Mode::Spawn => run_spawned(marker),
        Mode::ForkServer => forkserver::serve(marker),
    }
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

fn run_spawned(m: Marker) -> ! {
    // Guard first: a parent already gone means there is nothing to do.
    if !alive::guard(m.alive) {
        sys::proc::exit_now(PARENT_GONE_EXIT_CODE);
    }
    drop(own(m.alive));
    let mut bytes = Vec::new();
    if let Err(e) = File::from(own(m.fd_a)).take(MAX_JOB_BYTES).read_to_end(&mut bytes) {
        fail(&format!("its job could not be read ({e})"));
    }
    let report = File::from(own(m.fd_b));
    let job = Job::verify(&bytes, m.secret).unwrap_or_else(|reason| fail(&reason));
    let (pdeathsig, parent) = (job.0.pdeathsig, job.0.parent_pid);
    if pdeathsig {
        child::run(parent, report, || job.call())
    } else {
        child::finish(report, || job.call())
    }
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
}
