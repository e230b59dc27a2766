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
//! collection. Whichever diversion path runs also records that it ran ([`diverted`]): a parent in
//! which neither the constructor nor [`init`] ran refuses to start spawn and forkserver children,
//! because in its re-executed copy nothing would divert them and `main` would run again (a fork
//! bomb if `main` starts children).
//!
//! A worker diverted by the constructor runs *inside* `.init_array`, before the Rust runtime's
//! own setup: constructors after shmpool's never run, and neither does what std does before
//! `main` (the main thread's stack-overflow guard and its name "main", for example). The worker
//! code keeps to what works there (std's I/O, allocation, serde, unwinding all do).
//!
//! A spawn child's job arrives on its job pipe as one frame (see `entry.rs`): an 8-byte
//! little-endian length and exactly that many bytes; the child reads exactly that much, within
//! [`JOB_TIMEOUT`], and refuses a job followed by more bytes. So a stray holder of the pipe's
//! write end (a sibling forked by another thread) can neither keep it waiting for an end-of-file
//! nor append to its job. Reading is separate from decoding: the frame's bytes then go to
//! `entry::decode_frame`, a pure function, which checks them before anything is used.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::alive;
use super::child;
use super::entry::{self, FRAME_PREFIX};
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

/// How long a spawn child waits for its whole job (the parent writes it right after the start).
pub(crate) const JOB_TIMEOUT: Duration = Duration::from_secs(30);

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
    // Before main, with one thread: the fork handlers that keep arrays out of children.
    crate::segment::forkmap::install_fork_handlers();
    divert();
}

/// Set by either diversion path (the constructor or [`init`]) when it runs.
static DIVERTED: AtomicBool = AtomicBool::new(false);

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
/// parent, exits here with [`BAD_MARKER_EXIT_CODE`] and says why on stderr. So does a process
/// with the variable set that already runs more than one thread when `init` is called: the
/// variable is removed from the environment, which is only sound while no other thread can read
/// the environment (call `init` before anything starts a thread). Without the variable, `init`
/// reads the environment only, which is safe from any thread at any time.
///
/// ```
/// // The first statement of `main`:
/// shmpool::init();
/// // ... the program ...
/// ```
pub fn init() {
    crate::segment::forkmap::install_fork_handlers();
    divert();
}

fn divert() {
    DIVERTED.store(true, Ordering::Relaxed);
    let Some(raw) = std::env::var_os(MARKER) else { return };
    match sys::proc::thread_count() {
        Ok(1) => {}
        Ok(n) => fail(&format!(
            "{n} threads already run: the marker can only be taken out of the environment while \
             the process is single-threaded (call shmpool::init() before any thread starts)"
        )),
        Err(e) => fail(&format!("its threads cannot be counted ({e})")),
    }
    // SAFETY: the process has a single thread (counted just above; a new thread can only come
    // from this one), so no other thread can read or write the environment concurrently.
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
    let frame = read_job(File::from(own(m.fd_a)), JOB_TIMEOUT).unwrap_or_else(|r| fail(&r));
    let report = File::from(own(m.fd_b));
    let job = entry::decode_frame(&frame, m.secret).unwrap_or_else(|e| fail(&e.to_string()));
    drop(frame);
    child::install_panic_hook();
    let (pdeathsig, parent) = (job.pdeathsig(), job.parent_pid());
    if pdeathsig {
        child::run(parent, report, || job.call())
    } else {
        child::finish(report, || job.call())
    }
}

/// Bytes a job reader takes at a time; its buffer grows with what arrived, never ahead of it.
pub(crate) const READ_CHUNK: usize = 64 << 10;

/// Reads one job frame (see `entry::Job::to_frame`) from `r`: its length prefix, then exactly
/// the announced length (bounded by `entry::frame_len`), within `timeout`, and nothing after
/// it. Returns the whole frame, prefix included, undecoded. Memory follows the bytes that
/// arrive (at most twice them, plus a chunk), not the length announced: a frame that announces
/// a gigabyte and sends ten bytes costs ten bytes and a chunk.
pub(crate) fn read_job(mut r: File, timeout: Duration) -> Result<Vec<u8>, String> {
    sys::fdpass::set_nonblocking(r.as_raw_fd())
        .map_err(|e| format!("its job pipe cannot be made non-blocking ({e})"))?;
    let deadline = Instant::now() + timeout;
    // Reads at least one byte into `buf`, waiting up to the deadline; `got` and `want` (of the
    // part being read) are for the messages.
    let mut some = |buf: &mut [u8], got: usize, want: usize, what: &str| -> Result<usize, String> {
        loop {
            match r.read(buf) {
                Ok(0) => {
                    return Err(format!(
                        "its job pipe closed after {got} of the {want} bytes of its {what}"
                    ));
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let ready = sys::fdpass::wait_readable(r.as_fd(), Some(left))
                        .map_err(|e| format!("its job pipe cannot be polled ({e})"))?;
                    if !ready {
                        return Err(format!(
                            "its {what} did not arrive within {timeout:?} ({got} of {want} bytes)"
                        ));
                    }
                }
                Err(e) => return Err(format!("its job could not be read ({e})")),
            }
        }
    };
    let mut prefix = [0u8; FRAME_PREFIX];
    let mut got = 0;
    while got < FRAME_PREFIX {
        got += some(&mut prefix[got..], got, FRAME_PREFIX, "job's length")?;
    }
    let len = entry::frame_len(prefix).map_err(|e| e.to_string())?;
    let total = FRAME_PREFIX + len;
    let mut job = Vec::with_capacity(total.min(FRAME_PREFIX + 4096));
    job.extend_from_slice(&prefix);
    let mut chunk = vec![0u8; len.min(READ_CHUNK)];
    while job.len() < total {
        let want = (total - job.len()).min(chunk.len());
        let n = some(&mut chunk[..want], job.len() - FRAME_PREFIX, len, "job")?;
        if job.capacity() - job.len() < n {
            // Doubling, but never past the announced total.
            job.reserve_exact(job.len().max(n).min(total - job.len()));
        }
        job.extend_from_slice(&chunk[..n]);
    }
    let mut extra = [0u8; 1];
    match r.read(&mut extra) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok(_) => return Err("its job pipe holds trailing bytes after the job".into()),
        Err(e) => return Err(format!("its job could not be read ({e})")),
    }
    Ok(job)
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

    fn job_through_pipe(bytes: &[u8], keep_writer: bool) -> Result<Vec<u8>, String> {
        use std::io::Write;
        let (r, mut w) = sys::proc::pipe().unwrap();
        w.write_all(bytes).unwrap();
        if !keep_writer {
            drop(w);
            return read_job(r, Duration::from_millis(50));
        }
        let r = read_job(r, Duration::from_millis(50));
        drop(w);
        r
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        [&(body.len() as u64).to_le_bytes()[..], body].concat()
    }

    #[test]
    fn a_job_is_read_to_its_length_never_to_end_of_file() {
        let framed = frame(b"{\"x\":1}");
        // The writer stays open (a stray copy of it): the job is still complete.
        assert_eq!(job_through_pipe(&framed, true).unwrap(), framed);
        assert_eq!(job_through_pipe(&framed, false).unwrap(), framed);
        let mut trailing = framed.clone();
        trailing.push(b' ');
        assert!(job_through_pipe(&trailing, true).unwrap_err().contains("trailing"));
        let short = &framed[..framed.len() - 1];
        assert!(job_through_pipe(short, false).unwrap_err().contains("closed after 6 of the 7"));
        assert!(job_through_pipe(short, true).unwrap_err().contains("did not arrive"));
        assert!(job_through_pipe(&framed[..3], true).unwrap_err().contains("length"));
        let huge = (entry::MAX_JOB_BYTES + 1).to_le_bytes();
        assert!(job_through_pipe(&huge, true).unwrap_err().contains("more than"));
        // The most a frame may announce, and ten bytes sent: memory follows what arrived.
        let most = [&entry::MAX_JOB_BYTES.to_le_bytes()[..], &[0; 10]].concat();
        let (r, peak) = entry::tests::meter::peak_during(|| job_through_pipe(&most, false));
        assert!(r.unwrap_err().contains("closed after 10 of the 1073741824"));
        assert!(peak < 4 * READ_CHUNK, "{peak} bytes allocated for 18 received");
    }

    /// The spawn child's whole intake, pipe to decoder, on mutated and random frames: a typed
    /// refusal, never a panic or a hang (the writer is closed, as a dead parent's would be), and
    /// only the unchanged frame is accepted.
    #[test]
    fn mutated_frames_through_the_job_pipe_are_refused() {
        use entry::tests::{Mutation, SECRET, apply, decode_checked, meter, mutation, run};
        use proptest::prelude::*;
        let valid = {
            fn seven(_: (f64, String)) -> i32 {
                7
            }
            let args = (f64::NAN, "x".repeat(100));
            let job = entry::Job::new(seven, &args, "piped", SECRET, false).unwrap();
            job.to_frame()
        };
        let strategy = prop_oneof![
            proptest::collection::vec(mutation(), 0..4),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| vec![Mutation::Append(b)]),
        ];
        run(200, strategy, |ms: Vec<Mutation>| {
            let mut f = valid.clone();
            for m in &ms {
                apply(&mut f, m);
            }
            // Pipe buffers hold 64 KiB: these frames fit, so writing before reading is fine.
            let (r, peak) = meter::peak_during(|| job_through_pipe(&f, false));
            assert!(peak <= 2 * f.len() + 2 * READ_CHUNK, "{peak} bytes to read {}", f.len());
            match r {
                Err(reason) => assert!(!reason.is_empty()),
                Ok(read) => {
                    assert_eq!(read, f, "the frame read is the one written");
                    if let Ok(v) = decode_checked(&read, Some(&valid)) {
                        assert_eq!(v.call(), 7);
                    }
                }
            }
        });
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
