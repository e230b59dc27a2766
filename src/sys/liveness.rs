//! Whether a process still runs: exists and is not a zombie waiting to be reaped.

/// True if process `pid` exists and has not exited. Unlike a bare `kill(pid, 0)`, a zombie (dead,
/// not yet reaped by its parent) counts as gone; a pid reused by a new process counts as running.
pub(crate) fn pid_running(pid: u32) -> bool {
    if !super::proc::pid_alive(pid) {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
        Ok(stat) => !matches!(
            stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next()),
            Some('Z' | 'X' | 'x')
        ),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_pid_zero_does_not() {
        assert!(pid_running(std::process::id()));
        assert!(!pid_running(0));
        assert!(!pid_running(u32::MAX));
    }
}
