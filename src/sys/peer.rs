//! Telling one process's life from another's: a cheap cached identity for this process, a
//! liveness check for another that neither a zombie nor a reused pid can fool, and, for a lock
//! whose holder died, whether its process can still run code at all ([`fate`], judged thread by
//! thread from `/proc`).
//!
//! A process is identified by its *token*: its pid and its start time (clock ticks since boot,
//! field 22 of `/proc/<pid>/stat`), packed into one `u64` so it can be stored and compared with a
//! single atomic operation in shared memory. A pid that was reused by a newer process has another
//! start time, so its token differs.
//!
//! Tokens assume every process involved lives in the same pid namespace: a pid from another
//! namespace names an unrelated process here (or none), so a peer there can look dead while it
//! runs. `PeerDied` detection and the `MessageQueue` lock takeover inherit that assumption.

use std::sync::atomic::{AtomicU64, Ordering};

use super::proc::{AtFork, AtForkOnce, getpid};

/// Bits of the start time kept in a token (the pid takes the 22 bits above them; Linux's
/// `pid_max` is at most 2^22). At 100 ticks per second, 2^41 ticks is 697 years of uptime.
const START_BITS: u32 = 41;
const START_MASK: u64 = (1 << START_BITS) - 1;

/// This process's token, or 0 when it must be (re)computed: after a fork the child's handler
/// clears it, so no caller ever sees the parent's identity in the child.
static ME: AtomicU64 = AtomicU64::new(0);
/// The child handler that clears [`ME`], registered once.
static HOOK: AtForkOnce = AtForkOnce::new();

extern "C" fn child_after_fork() {
    // Async-signal-safe: one atomic store.
    ME.store(0, Ordering::Relaxed);
}

/// Packs a pid and a start time into a token. Never 0 for a real process (pids start at 1).
pub(crate) fn pack(pid: u32, start: u64) -> u64 {
    ((pid as u64) << START_BITS) | (start & START_MASK)
}

/// The pid inside a token.
pub(crate) fn token_pid(token: u64) -> u32 {
    (token >> START_BITS) as u32
}

/// This process's token. After the first call it costs one relaxed atomic load.
#[inline]
pub(crate) fn me() -> u64 {
    match ME.load(Ordering::Relaxed) {
        0 => me_slow(),
        t => t,
    }
}

/// The first call in a process (or after a fork): read our start time, and cache the token.
#[cold]
#[inline(never)]
fn me_slow() -> u64 {
    let pid = getpid();
    let t = pack(pid, start_time(pid).unwrap_or(0));
    // Cache only once the reset handler is surely registered (as `proc::getpid` does).
    if HOOK.register(None, None, Some(child_after_fork)) == AtFork::Registered {
        ME.store(t, Ordering::Relaxed);
    }
    t
}

/// What a `stat` file of `/proc` says about a process or thread.
struct Stat {
    /// The state letter (field 3): `R`, `S`, `D`, `Z`...
    state: u8,
    /// The kernel's `PF_*` flags (field 9).
    flags: u64,
    /// The start time in clock ticks since boot (field 22).
    start: u64,
}

/// Reads and parses a `stat` file of `/proc` (`/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat`).
fn read_stat(path: &str) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

/// What a `stat` file says, for a judgement that must not take "cannot read" for "gone":
/// `Ok(None)` when the file does not exist (the process or thread is gone), `Err` when it
/// exists but cannot be read or parsed (`hidepid`, another user's process).
fn read_stat_strict(path: &str) -> Result<Option<Stat>, ()> {
    match std::fs::read_to_string(path) {
        Ok(s) => parse_stat(&s).map(Some).ok_or(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(_) => Err(()),
    }
}

/// The fields of a `stat` file from field 3 (the state) on: the command name (field 2) before
/// them is in parentheses and may itself hold spaces or ')'.
fn fields_after_comm(s: &str) -> Option<std::str::SplitAsciiWhitespace<'_>> {
    Some(s[s.rfind(')')? + 1..].split_ascii_whitespace())
}

/// The fields of `/proc/<pid>/stat` from field 3 (the state) on; `None` if it cannot be read.
pub(crate) fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(fields_after_comm(&s)?.map(str::to_string).collect())
}

/// The parent of process `pid` (field 4 of `/proc/<pid>/stat`).
pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

fn parse_stat(s: &str) -> Option<Stat> {
    let mut fields = fields_after_comm(s)?;
    let state = fields.next()?.bytes().next()?;
    // `rest` starts at field 3 (state): flags (9) is 6 fields further on, start time (22) 13
    // after that.
    let flags = fields.nth(5)?.parse().ok()?;
    let start = fields.nth(12)?.parse().ok()?;
    Some(Stat { state, flags, start })
}

/// What `/proc/<pid>/stat` says about a process: (state letter, start time).
fn stat(pid: u32) -> Option<(u8, u64)> {
    read_stat(&format!("/proc/{pid}/stat")).map(|s| (s.state, s.start))
}

/// Start time of `pid` in clock ticks since boot, if it exists.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Whether the process a token names still runs: it exists, is not a zombie (dead but not yet
/// reaped, which `kill(pid, 0)` would call alive) and is not a newer process that reused the pid.
pub(crate) fn alive(token: u64) -> bool {
    let pid = token_pid(token);
    if pid == 0 {
        return false;
    }
    match stat(pid) {
        None => false,
        Some((b'Z' | b'X' | b'x', _)) => false,
        // A token recorded without a start time (unreadable /proc) cannot detect reuse.
        Some((_, start)) => token & START_MASK == 0 || start & START_MASK == token & START_MASK,
    }
}

/// Whether a process can still run code, judged thread by thread: what a locker needs to know
/// before it takes over a lock whose holder died (see [`fate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// It will never run user code or finish a system call again: there is no such process (it
    /// exited and was reaped, or its pid now names a newer process), it is a zombie, or every
    /// thread of it is past the point of no return of the kernel's exit path (`PF_EXITING`,
    /// set before the kernel releases a dying thread's robust locks and tears down its memory).
    Over,
    /// Every thread is exiting or has a `SIGKILL` pending: none will run user code again, but a
    /// thread may still be finishing a system call (one that writes memory, say). It will be
    /// [`Over`](Fate::Over) soon; how soon depends on the kernel (a thread in an uninterruptible
    /// sleep finishes it first).
    Dying,
    /// A thread of it neither exits nor has a `SIGKILL` pending: it may run user code again.
    Running,
}

/// `PF_EXITING` in a task's kernel flags (field 9 of its `stat`): set by `do_exit` before the
/// thread releases its robust locks and memory; the thread never returns to user space.
const PF_EXITING: u64 = 0x4;

/// `SIGKILL`'s bit in the `SigPnd`/`ShdPnd` masks of `/proc/<pid>/task/<tid>/status`.
const SIGKILL_PENDING: u64 = 1 << (libc::SIGKILL - 1);

/// Whether `SIGKILL` is pending for a thread (its own or its process's pending signals), which
/// it cannot block, catch or ignore: it will exit before it runs user code again.
fn sigkill_pending(pid: u32, tid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))
        .is_ok_and(|s| kill_pending_in(&s))
}

/// Whether a `status` file of `/proc` lists `SIGKILL` among the pending signals.
fn kill_pending_in(status: &str) -> bool {
    status
        .lines()
        .filter_map(|l| l.strip_prefix("SigPnd:").or_else(|| l.strip_prefix("ShdPnd:")))
        .filter_map(|v| u64::from_str_radix(v.trim(), 16).ok())
        .any(|mask| mask & SIGKILL_PENDING != 0)
}

/// Judges the process a token names by its threads (`/proc/<pid>/task/*/stat` and `status`):
/// [`Fate::Over`] once it can never touch memory from user code or a system call again, which
/// comes before the kernel has torn down its memory and made it a zombie (a large process takes
/// about 70 ms per GiB to get there, longer when the machine is busy).
///
/// A token recorded without a start time (unreadable `/proc`) cannot tell a reused pid; `/proc`
/// that is not mounted makes every process look [`Over`](Fate::Over), as [`alive`] does. A
/// `stat` file that exists but cannot be read (`hidepid`, another user's process) is
/// [`Running`](Fate::Running): "cannot tell" must never hand out a second guard.
pub(crate) fn fate(token: u64) -> Fate {
    let pid = token_pid(token);
    if pid == 0 {
        return Fate::Over;
    }
    // The process itself, not its state: `/proc/<pid>/stat` describes the main thread, which
    // may have exited (`pthread_exit`, a zombie) while other threads run on.
    let start = match read_stat_strict(&format!("/proc/{pid}/stat")) {
        Ok(Some(st)) => st.start,
        Ok(None) => return Fate::Over,
        Err(()) => return Fate::Running, // cannot tell: assume the worst
    };
    if token & START_MASK != 0 && start & START_MASK != token & START_MASK {
        return Fate::Over; // a newer process reused the pid
    }
    // Checked first, so that the threads listed below are the token's process. A pid reused
    // between the check and the listing lists the new process's threads: `Running`, which the
    // next judgement (a later call, or the next poll of a blocking lock) corrects.
    let tasks = match std::fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Fate::Over,
        Err(_) => return Fate::Running, // cannot tell: assume the worst
    };
    let mut dying = false;
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // A thread that vanished between the listing and here has exited; one that cannot be
        // read cannot be judged.
        let st = match read_stat_strict(&format!("/proc/{pid}/task/{tid}/stat")) {
            Ok(Some(st)) => st,
            Ok(None) => continue,
            Err(()) => return Fate::Running,
        };
        if matches!(st.state, b'Z' | b'X' | b'x') || st.flags & PF_EXITING != 0 {
            continue;
        }
        if sigkill_pending(pid, tid) {
            dying = true;
            continue;
        }
        return Fate::Running;
    }
    if dying { Fate::Dying } else { Fate::Over }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_token_is_alive_and_round_trips_the_pid() {
        let t = me();
        assert_eq!(token_pid(t), getpid());
        assert!(alive(t));
        assert_eq!(me(), t);
    }

    #[test]
    fn reused_or_missing_pids_are_dead() {
        let t = me();
        // Same pid, other start time: a newer process that reused the pid.
        assert!(!alive(pack(getpid(), (t & START_MASK) + 1)));
        // pid_max is at most 2^22, so this pid cannot exist.
        assert!(!alive(pack((1 << 22) + 5, 5)));
        assert!(!alive(0));
    }

    #[test]
    fn stat_fields_are_read_past_a_command_name_with_spaces_and_parentheses() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194564 100 0 0 0 1 2 0 0 20 0 3 0 987654 \
                    1000 100 18446744073709551615";
        let st = parse_stat(line).unwrap();
        assert_eq!((st.state, st.flags, st.start), (b'S', 4_194_564, 987_654));
        assert_ne!(st.flags & PF_EXITING, 0);
    }

    #[test]
    fn this_process_runs_and_gone_or_reused_ones_are_over() {
        let t = me();
        assert_eq!(fate(t), Fate::Running);
        assert_eq!(fate(pack(getpid(), (t & START_MASK) + 1)), Fate::Over, "a reused pid");
        assert_eq!(fate(pack((1 << 22) + 5, 5)), Fate::Over);
        assert_eq!(fate(0), Fate::Over);
        // A child that exited and is not yet reaped (a zombie) runs nothing.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let token = pack(child.id(), start_time(child.id()).unwrap_or(0));
        while stat(child.id()).is_some_and(|(s, _)| s != b'Z') {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(fate(token), Fate::Over);
        child.wait().unwrap();
        assert_eq!(fate(token), Fate::Over);
    }

    #[test]
    fn a_pending_sigkill_is_read_from_either_mask() {
        let status = |sig: &str, shd: &str| format!("Name:\tx\nSigPnd:\t{sig}\nShdPnd:\t{shd}\n");
        assert!(!kill_pending_in(&status("0000000000000000", "0000000000000000")));
        assert!(!kill_pending_in(&status("0000000000004002", "0000000000000080")));
        assert!(kill_pending_in(&status("0000000000000100", "0000000000000000")));
        assert!(kill_pending_in(&status("0000000000000000", "0000000000000100")));
        // Nothing is pending for this thread, and a missing thread has nothing pending.
        let tid = crate::sys::proc::gettid();
        assert!(!sigkill_pending(getpid(), tid));
        assert!(!sigkill_pending(getpid(), u32::MAX));
    }
}
