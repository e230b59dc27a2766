//! Telling one process's life from another's: a cheap cached identity for this process, and a
//! liveness check for another that neither a zombie nor a reused pid can fool.
//!
//! A process is identified by its *token*: its pid and its start time (clock ticks since boot,
//! field 22 of `/proc/<pid>/stat`), packed into one `u64` so it can be stored and compared with a
//! single atomic operation in shared memory. A pid that was reused by a newer process has another
//! start time, so its token differs.
//!
//! Tokens assume every process involved lives in the same pid namespace: a pid from another
//! namespace names an unrelated process here (or none), so a peer there can look dead while it
//! runs. `PeerDied` detection and the `MessageQueue` lock takeover inherit that assumption.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use super::proc::getpid;

/// Bits of the start time kept in a token (the pid takes the 22 bits above them; Linux's
/// `pid_max` is at most 2^22). At 100 ticks per second, 2^41 ticks is 697 years of uptime.
const START_BITS: u32 = 41;
const START_MASK: u64 = (1 << START_BITS) - 1;

/// This process's token, or 0 when it must be (re)computed: after a fork the child's handler
/// clears it, so no caller ever sees the parent's identity in the child.
static ME: AtomicU64 = AtomicU64::new(0);
/// Whether the child handler that clears [`ME`] is registered: 0 no, 1 being registered, 2 yes.
/// No `Once`: a fork while another thread ran it would leave the child's `Once` stuck for good.
static HOOK: AtomicU8 = AtomicU8::new(0);

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
    match HOOK.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // SAFETY: the handler is an `extern "C" fn()` that lives for the whole program and
            // only performs an atomic store; the other two handlers are "none".
            let r = unsafe { libc::pthread_atfork(None, None, Some(child_after_fork)) };
            HOOK.store(if r == 0 { 2 } else { 0 }, Ordering::Release);
            if r == 0 {
                ME.store(t, Ordering::Relaxed);
            }
        }
        Err(2) => ME.store(t, Ordering::Relaxed),
        Err(_) => {} // another thread is registering: answer uncached this once
    }
    t
}

/// What `/proc/<pid>/stat` says about a process: (state letter, start time).
fn stat(pid: u32) -> Option<(u8, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.bytes().next()?;
    // `rest` starts at field 3 (state); start time is field 22, so 19 fields further on.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
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
}
