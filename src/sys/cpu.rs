//! CPU counts: online CPUs, this process's affinity mask, and the cgroup v2 CPU quota.

use std::io;

use super::cvt;

/// Logical CPUs online in the system.
pub(crate) fn online() -> Option<usize> {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    (n > 0).then_some(n as usize)
}

/// CPUs in this process's affinity mask.
pub(crate) fn affinity() -> io::Result<usize> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed, writable for the call.
    cvt(unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) })?;
    // SAFETY: CPU_COUNT only reads the set.
    Ok(unsafe { libc::CPU_COUNT(&set) } as usize)
}

/// The tightest cgroup v2 CPU quota on this process's cgroup and its ancestors, as a number
/// of CPUs rounded up; `None` where there is no cgroup v2 or no quota.
pub(crate) fn cgroup_quota() -> Option<usize> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?.trim().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let root = mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        post.starts_with("cgroup2 ").then(|| pre.split(' ').nth(4).map(str::to_string))?
    })?;
    let mut dir = std::path::PathBuf::from(format!("{root}{rel}"));
    let mut best: Option<usize> = None;
    loop {
        if let Ok(s) = std::fs::read_to_string(dir.join("cpu.max"))
            && let Some(n) = parse_cpu_max(&s)
        {
            best = Some(best.map_or(n, |b| b.min(n)));
        }
        if dir.as_os_str().len() <= root.len() || !dir.pop() {
            break;
        }
    }
    best
}

/// Parses cgroup v2 `cpu.max` ("max 100000" or "QUOTA PERIOD") into CPUs, rounded up, at least 1.
pub(crate) fn parse_cpu_max(s: &str) -> Option<usize> {
    let mut it = s.split_whitespace();
    let quota: u64 = it.next()?.parse().ok()?;
    let period: u64 = it.next().map_or(Some(100_000), |p| p.parse().ok())?;
    if period == 0 {
        return None;
    }
    Some((quota.div_ceil(period) as usize).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_parses_quota_and_ignores_max() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(2));
        assert_eq!(parse_cpu_max("200000 100000"), Some(2));
        assert_eq!(parse_cpu_max("1000 100000"), Some(1));
        assert_eq!(parse_cpu_max("garbage"), None);
        assert_eq!(parse_cpu_max("5 0"), None);
    }
}
