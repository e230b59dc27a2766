//! How much memory this process could still get: /proc/meminfo and the cgroup v2 limit.

use std::fs;

/// Bytes the kernel reports as available (`MemAvailable`), lowered to the room left under this
/// process's cgroup v2 `memory.max` when there is one. `None` when neither can be read.
pub(crate) fn available() -> Option<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    match (meminfo, cgroup_room()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn cgroup_room() -> Option<u64> {
    // "0::/path" is the cgroup v2 line of /proc/self/cgroup.
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = format!("/sys/fs/cgroup{}", rel.trim_end());
    let max = fs::read_to_string(format!("{dir}/memory.max")).ok()?;
    let max: u64 = max.trim().parse().ok()?; // "max" means no limit: parse fails, None.
    let cur: u64 = fs::read_to_string(format!("{dir}/memory.current")).ok()?.trim().parse().ok()?;
    Some(max.saturating_sub(cur))
}
