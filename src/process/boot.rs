//! The child-side dispatcher: how a re-executed copy of the program becomes a spawn child
//! (`spawned.rs`) or the forkserver (`server.rs`) before any of the user's code runs. It only
//! reads the marker (`marker.rs`) and dispatches; the runtimes do the rest.
//!
//! The parent starts `/proc/self/exe` with the environment variable `SHMPOOL_WORKER` set (the
//! marker; its format is in `README.md` beside this file, "Child boot"). A constructor in
//! `.init_array` (run by the dynamic loader before `main`) or an explicit [`init`] call at the top
//! of `main` sees it, removes it from the environment and diverts the process: it never returns to
//! the program. A marker that does not parse, names descriptors that are not open or not of the
//! expected kind, or whose job does not carry the marker's secret ends the process with
//! [`BAD_MARKER_EXIT_CODE`](crate::process::BAD_MARKER_EXIT_CODE) and a message on stderr; no address from
//! it is ever used.
//!
//! The constructor is linked into every binary that can start spawn or forkserver children: the
//! code that starts them refers to the static [`BOOT`] (a static in an object file the linker
//! would otherwise leave out of the final binary), and `#[used]` keeps it through section garbage
//! collection. Whichever diversion path runs also records that it ran (`marker::diverted`): a
//! parent in which neither the constructor nor [`init`] ran refuses to start spawn and forkserver
//! children, because in its re-executed copy nothing would divert them and `main` would run again
//! (a fork bomb if `main` starts children).
//!
//! A worker diverted by the constructor runs *inside* `.init_array`, before the Rust runtime's
//! own setup: constructors after shmpool's never run, and neither does what std does before
//! `main` (the main thread's stack-overflow guard and its name "main", for example). The worker
//! code keeps to what works there (std's I/O, allocation, serde, unwinding all do).

use super::marker::{self, MARKER, Marker, Mode, fail};
use super::{server, spawned};
use crate::sys;

/// The constructor the dynamic loader runs before `main` in every binary that links it.
#[used]
#[unsafe(link_section = ".init_array")]
pub(crate) static BOOT: extern "C" fn() = boot_from_constructor;

extern "C" fn boot_from_constructor() {
    // Before main, with one thread: the fork handlers that keep arrays out of children.
    crate::segment::forkmap::install_fork_handlers();
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
/// parent, exits here with [`BAD_MARKER_EXIT_CODE`](crate::process::BAD_MARKER_EXIT_CODE) and says why on
/// stderr. So does a process with the variable set that already runs more than one thread when
/// `init` is called: the variable is removed from the environment, which is only sound while no
/// other thread can read the environment (call `init` before anything starts a thread). Without the
/// variable, `init` reads the environment only, which is safe from any thread at any time.
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
    marker::record_diversion();
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
        Mode::Spawn => spawned::run_spawned(marker),
        Mode::ForkServer => server::serve(marker),
    }
}
