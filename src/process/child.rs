//! What every forked child runs: guard against an orphaned life, run the body, turn a panic into
//! exit code 101 and a message for the parent, flush what it printed, and leave with `_exit`
//! (never unwinding into the parent's code, never running its destructors or atexit handlers
//! twice).
//!
//! # A child's output
//!
//! Rust's `stdout` is line-buffered in the process (std's `LineWriter`), so a `print!` without a
//! newline sits in memory until a newline, a flush or the end of `main`; `_exit` would drop it.
//! As Python's `BaseProcess._bootstrap` does (`util._flush_std_streams()` before `os._exit`),
//! [`finish`] flushes stdout and stderr after the body, however it ended:
//!
//! | the body ends by | its output |
//! |---|---|
//! | returning (any [`ChildResult`], an `Err` too) | flushed by [`finish`] |
//! | panicking (unwinding) | flushed by [`finish`] after the panic is caught |
//! | `std::process::exit` | flushed by std itself (it runs std's runtime cleanup, which flushes stdout, before libc's `exit`) |
//! | `libc::_exit`, `std::process::abort`, a panic under `panic = "abort"`, SIGTERM, SIGKILL, any fatal signal | lost: nothing of the process runs after them (Python loses it as well) |
//!
//! stderr is unbuffered in Rust, so `eprint!` reaches its file at once. The parent flushes its
//! own stdout before each fork (`fork.rs`), so the child's buffer starts empty and nothing is
//! printed twice. One exception: a child forked from a multi-threaded parent
//! ([`Context::allow_threads`](crate::Context::allow_threads)) does not flush, since another
//! thread of the parent may have held stdout's lock at the fork, and it stays held in the child.

use std::fs::File;
use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys;

/// The exit code of a child whose body panicked (Rust's own convention).
pub(crate) const PANIC_EXIT_CODE: i32 = 101;

/// The exit code of a forked child that could not seal off the parent's fork-private mappings
/// (see `segment::forkmap`; an `mmap` failed, out of memory) and so ran none of its body.
pub(crate) const SEAL_FAILED_EXIT_CODE: i32 = 103;

/// What a child's body may return: its exit code.
pub trait ChildResult {
    /// The exit code this value stands for.
    fn exit_code(self) -> i32;
}

impl ChildResult for () {
    fn exit_code(self) -> i32 {
        0
    }
}

impl ChildResult for i32 {
    fn exit_code(self) -> i32 {
        self
    }
}

impl<E: std::fmt::Display> ChildResult for Result<(), E> {
    fn exit_code(self) -> i32 {
        match self {
            Ok(()) => 0,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "child {}: {e}", sys::proc::getpid());
                1
            }
        }
    }
}

/// Set in a child (by [`finish`]): the panic hook installed by [`install_panic_hook`] stays
/// silent there, since the message goes to the parent through the report pipe.
static IN_CHILD: AtomicBool = AtomicBool::new(false);

/// Cleared in a child forked while its parent had other threads: [`finish`] then leaves stdout
/// alone (its lock may be held forever; see the module docs).
static FLUSH_AT_EXIT: AtomicBool = AtomicBool::new(true);

/// Called in a child forked from a multi-threaded parent, before its body: it will not flush
/// stdout when it ends.
pub(crate) fn skip_flush_at_exit() {
    FLUSH_AT_EXIT.store(false, Ordering::Relaxed);
}

/// Flushes std's stdout and stderr buffers, unless [`skip_flush_at_exit`] was called. A stream
/// that cannot be written (a closed pipe, a full disk) is left as it is: the child is ending.
fn flush_std_streams() {
    if FLUSH_AT_EXIT.load(Ordering::Relaxed) {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
    }
}

/// Installs, once per process, a panic hook that is silent in children and otherwise calls the
/// hook it replaced. Call it in the parent before forking (and in a fresh single-threaded
/// worker): a forked child must never touch the hook itself, since `set_hook` takes std's hook
/// lock, which another thread of the parent may hold (it is panicking) at the fork and which
/// then stays held forever in the child. A hook the program sets later replaces this one; its
/// children then print their panics to stderr as well.
pub(crate) fn install_panic_hook() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    // Changing the hook while panicking (a destructor starting a child during unwinding) would
    // itself panic: leave it for a later start then.
    if INSTALLED.get().is_some() || std::thread::panicking() {
        return;
    }
    INSTALLED.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CHILD.load(Ordering::Relaxed) {
                previous(info);
            }
        }));
    });
}

/// Runs `body` as the child side of a fork and exits. `report` receives a panic message.
pub(crate) fn run<R: ChildResult>(parent_pid: u32, report: File, body: impl FnOnce() -> R) -> ! {
    if !sys::proc::die_with_parent(parent_pid) {
        sys::proc::exit_now(PANIC_EXIT_CODE + 1);
    }
    finish(report, body)
}

/// Runs `body` and exits, like [`run`] but without arming the parent-death signal (for a child
/// whose starting thread may exit before its parent process does; see `alive.rs`).
pub(crate) fn finish<R: ChildResult>(mut report: File, body: impl FnOnce() -> R) -> ! {
    // The panic message goes to the parent through `report`; the hook would also print it to
    // this process's stderr, which is the parent's terminal or test log. The hook installed
    // before the fork (`install_panic_hook`) keeps quiet once this flag is set; the hook lock
    // itself is never touched here.
    IN_CHILD.store(true, Ordering::Relaxed);
    let code = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => catch_unwind(AssertUnwindSafe(|| r.exit_code())).unwrap_or(PANIC_EXIT_CODE),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(panic payload is not a string)".to_string());
            // A pipe holds 64 KiB; a longer message would block the child here.
            let _ = report.write_all(&msg.as_bytes()[..msg.len().min(4096)]);
            // Dropping a payload can itself panic; forget it instead, we exit next.
            std::mem::forget(payload);
            PANIC_EXIT_CODE
        }
    };
    drop(report);
    // Python flushes too (`util._flush_std_streams()` before `os._exit`): a `print!` without a
    // newline is still in std's buffer, and `_exit` would drop it.
    flush_std_streams();
    sys::proc::exit_now(code)
}

/// Reads what a child wrote to its report pipe (after it ended), up to 64 KiB. Non-blocking: a
/// sibling forked at the same moment by another thread may hold the write end open too, so EOF
/// may never come; everything the dead child wrote is already in the pipe.
pub(crate) fn read_report(mut r: File) -> Option<String> {
    let mut buf = Vec::new();
    if sys::fdpass::set_nonblocking(&r).is_err() {
        return None;
    }
    let _ = (&mut r).take(64 * 1024).read_to_end(&mut buf);
    if buf.is_empty() { None } else { Some(String::from_utf8_lossy(&buf).into_owned()) }
}
