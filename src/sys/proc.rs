//! Process-level calls: pids, liveness, thread count, fork, wait, exit, randomness.

use std::io;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use rustix::io::{Errno, retry_on_intr};
use rustix::process::{Pid, Signal, WaitOptions};

use super::cvt;

/// A pid as rustix takes it: `pid` must name one process. 0 and numbers above `i32::MAX` (which
/// `kill` and `waitpid` would take for a process group, or for every child) are the error
/// `none`.
fn one_pid(pid: u32, none: Errno) -> Result<Pid, Errno> {
    i32::try_from(pid).ok().and_then(Pid::from_raw).ok_or(none)
}

/// A raw pid from rustix.
fn raw(pid: Pid) -> u32 {
    pid.as_raw_nonzero().get() as u32
}

/// This process's pid, cached: glibc no longer caches it, and ownership checks (a pool's, a
/// segment's) ask on every call. A `pthread_atfork` child handler clears the cache in every
/// child that glibc's `fork` makes; children made by a raw `clone` or `vfork` must exec (or
/// call only async-signal-safe functions) before they could ask.
#[inline]
pub(crate) fn getpid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => getpid_slow(),
        cached => cached,
    }
}

/// The first call in a process (or after a fork): ask the kernel, and cache the answer.
#[cold]
#[inline(never)]
fn getpid_slow() -> u32 {
    let pid = raw(rustix::process::getpid());
    // Cache only once the reset handler is surely registered; otherwise a fork in between
    // could hand the child our pid.
    if HOOK.register(None, None, Some(forget_pid)) == AtFork::Registered {
        PID.store(pid, Ordering::Relaxed);
    }
    pid
}

static HOOK: AtForkOnce = AtForkOnce::new();
static PID: AtomicU32 = AtomicU32::new(0);

/// Fork handlers registered at most once per process. Not a `std::sync::Once`: a fork while
/// another thread ran one would leave the child's `Once` in progress for good.
pub(crate) struct AtForkOnce(AtomicU8);

/// What [`AtForkOnce::register`] found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AtFork {
    /// The handlers are registered (now, or before).
    Registered,
    /// Another thread is registering them right now.
    Busy,
    /// `pthread_atfork` failed (out of memory); a later call tries again.
    Failed,
}

type Handler = Option<unsafe extern "C" fn()>;

impl AtForkOnce {
    const NONE: u8 = 0;
    const BUSY: u8 = 1;
    const READY: u8 = 2;

    pub(crate) const fn new() -> AtForkOnce {
        AtForkOnce(AtomicU8::new(Self::NONE))
    }

    /// Registers the handlers unless they already are. Each must live for the whole program
    /// and, in the child, be async-signal-safe.
    pub(crate) fn register(&self, prepare: Handler, parent: Handler, child: Handler) -> AtFork {
        match self.0.compare_exchange(Self::NONE, Self::BUSY, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                // SAFETY: registering handlers has no effect but their later calls, which the
                // caller made sound (program-long, async-signal-safe in the child).
                let r = unsafe { libc::pthread_atfork(prepare, parent, child) };
                let (state, outcome) = if r == 0 {
                    (Self::READY, AtFork::Registered)
                } else {
                    (Self::NONE, AtFork::Failed)
                };
                self.0.store(state, Ordering::Release);
                outcome
            }
            Err(Self::READY) => AtFork::Registered,
            Err(_) => AtFork::Busy,
        }
    }
}

extern "C" fn forget_pid() {
    PID.store(0, Ordering::Relaxed);
}

/// The parent's pid (1 or a subreaper's pid once the parent died).
pub(crate) fn getppid() -> u32 {
    // `None`: the parent is outside our pid namespace, for which getppid(2) says 0.
    rustix::process::getppid().map_or(0, raw)
}

/// The calling thread's id (what the lock word of a pthread mutex it holds records).
pub(crate) fn gettid() -> u32 {
    raw(rustix::thread::gettid())
}

/// Whether the calling thread is the process's main thread (whose exit ends the process).
pub(crate) fn is_main_thread() -> bool {
    gettid() == getpid()
}

/// Whether a process with this pid exists (it may be a zombie, or a reused pid).
pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = one_pid(pid, Errno::SRCH) else { return false };
    // Signal 0: only the existence and permission checks.
    matches!(rustix::process::test_kill_process(pid), Ok(()) | Err(Errno::PERM))
}

/// How many threads this process has, read from `/proc/self/task`.
pub(crate) fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// The result of [`fork`], seen from each side.
pub(crate) enum Forked {
    /// In the parent, with the child's pid.
    Parent(u32),
    /// In the child.
    Child,
}

/// Forks the calling process.
///
/// # Safety
///
/// After `fork` in a process that has other threads, the child may only make async-signal-safe
/// calls until it execs or exits: any lock another thread held at the fork stays held forever in
/// the child. The caller must have checked that the process is single-threaded, or must confine
/// the child to code that takes no lock another thread could hold.
pub(crate) unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: the caller upholds the threading contract above; fork itself has no memory effects
    // on this process.
    let pid = cvt(unsafe { libc::fork() })?;
    Ok(if pid == 0 { Forked::Child } else { Forked::Parent(pid as u32) })
}

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It called exit with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

pub(crate) fn decode(status: libc::c_int) -> Exit {
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

/// Blocks until child `pid` has ended, and reaps it.
pub(crate) fn waitpid(pid: u32) -> io::Result<Exit> {
    let pid = one_pid(pid, Errno::CHILD)?;
    match retry_on_intr(|| rustix::process::waitpid(Some(pid), WaitOptions::empty()))? {
        Some((_, status)) => Ok(decode(status.as_raw())),
        // Only a WNOHANG wait returns without a status.
        None => Err(Errno::CHILD.into()),
    }
}

/// Reaps child `pid` if it has ended; `None` while it still runs.
pub(crate) fn try_waitpid(pid: u32) -> io::Result<Option<Exit>> {
    let pid = one_pid(pid, Errno::CHILD)?;
    let r = retry_on_intr(|| rustix::process::waitpid(Some(pid), WaitOptions::NOHANG))?;
    Ok(r.map(|(_, status)| decode(status.as_raw())))
}

/// Sends `sig` to process `pid`: 0 (only checks that it could), or a signal rustix names
/// ([`named_signal`]).
pub(crate) fn kill(pid: u32, sig: i32) -> io::Result<()> {
    let pid = one_pid(pid, Errno::SRCH)?;
    if sig == 0 {
        return Ok(rustix::process::test_kill_process(pid)?);
    }
    Ok(rustix::process::kill_process(pid, named_signal(sig)?)?)
}

/// `sig` as a rustix [`Signal`]: the standard signals (`SIGKILL`, `SIGTERM`, ...), which are all
/// shmpool sends; a real-time or unknown number is `EINVAL`, as the kernel answers for the latter.
fn named_signal(sig: i32) -> io::Result<Signal> {
    Signal::from_named_raw(sig).ok_or_else(|| Errno::INVAL.into())
}

/// Ends the calling process at once with `code`: no destructors, no atexit handlers, no stdio
/// flush. This is how a forked child leaves, so it never runs the parent's cleanup twice.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// Eight bytes from the kernel's random source.
pub(crate) fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) if n > 0 => filled += n,
            Err(Errno::INTR) => {}
            _ => {
                // getrandom cannot fail for 8 bytes on any kernel with the syscall; fall back to
                // a value that is still unique per process and moment rather than panicking.
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                return t ^ ((getpid() as u64) << 32);
            }
        }
    }
    u64::from_ne_bytes(buf)
}

/// Asks the kernel to SIGKILL this process when its parent thread exits, then closes the race
/// with a parent that died before the request: returns false if the parent is already gone.
pub(crate) fn die_with_parent(parent_pid: u32) -> bool {
    // Cannot fail for a valid signal.
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    getppid() == parent_pid
}

/// A close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(std::fs::File, std::fs::File)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    Ok((r.into(), w.into()))
}

/// The conventional name of a signal, for messages.
pub(crate) fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_pid_is_this_processes_and_a_fork_child_sees_its_own() {
        assert_eq!(getpid(), std::process::id());
        assert_eq!(getpid(), std::process::id()); // cached now
        // SAFETY: the child only calls getpid (an atomic load or the syscall), compares and
        // _exits: nothing another thread of the test harness could hold a lock on.
        match unsafe { fork() }.unwrap() {
            Forked::Child => {
                // The system call, to compare against the cache.
                let real = raw(rustix::process::getpid());
                exit_now(if getpid() == real { 0 } else { 1 })
            }
            Forked::Parent(pid) => assert_eq!(waitpid(pid).unwrap(), Exit::Code(0)),
        }
    }

    /// 0 and pids above `i32::MAX` name no one process: `kill` and `waitpid` refuse them rather
    /// than signal or reap a whole process group (or any child).
    #[test]
    fn pids_that_name_a_group_are_refused() {
        for pid in [0, u32::MAX, i32::MAX as u32 + 1] {
            assert_eq!(kill(pid, libc::SIGTERM).unwrap_err().raw_os_error(), Some(libc::ESRCH));
            assert_eq!(waitpid(pid).unwrap_err().raw_os_error(), Some(libc::ECHILD));
            assert_eq!(try_waitpid(pid).unwrap_err().raw_os_error(), Some(libc::ECHILD));
            assert!(!pid_alive(pid));
        }
        kill(getpid(), 0).unwrap();
        let e = kill(getpid(), 40).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "a real-time signal: {e}");
    }
}
