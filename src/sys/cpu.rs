//! CPU counts: online CPUs, this process's affinity mask, and the cgroup v2 CPU quota.

use std::io;

/// Logical CPUs online in the system.
pub(crate) fn online() -> Option<usize> {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    (n > 0).then_some(n as usize)
}

/// CPUs in this process's affinity mask (read as [`affinity::allowed`](super::affinity::allowed)
/// reads it, the buffer grown until the kernel's mask fits).
pub(crate) fn affinity() -> io::Result<usize> {
    super::affinity::allowed().map(|cpus| cpus.len())
}

/// The tightest cgroup v2 CPU quota on this process's cgroup and its ancestors, as a number
/// of CPUs rounded up; `None` where there is no cgroup v2 or no quota.
pub(crate) fn cgroup_quota() -> Option<usize> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?.trim().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (root, mount) = mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mut f = pre.split(' ');
        let (root, mount) = (f.nth(3)?, f.next()?);
        post.starts_with("cgroup2 ").then(|| (root.to_string(), mount.to_string()))
    })?;
    let mut dir = cgroup_dir(&rel, &root, &mount)?;
    let mut best: Option<usize> = None;
    loop {
        if let Ok(s) = std::fs::read_to_string(dir.join("cpu.max"))
            && let Some(n) = parse_cpu_max(&s)
        {
            best = Some(best.map_or(n, |b| b.min(n)));
        }
        if dir.as_os_str().len() <= mount.len() || !dir.pop() {
            break;
        }
    }
    best
}

/// Where the cgroup `rel` (from `/proc/self/cgroup`) lies under a cgroup2 mount at `mount` whose
/// mountinfo root field is `root` (the part of the hierarchy it shows: not `/` when a container
/// mounts only its own subtree). `None` when the cgroup is outside what the mount shows.
pub(crate) fn cgroup_dir(rel: &str, root: &str, mount: &str) -> Option<std::path::PathBuf> {
    let inside = if root == "/" {
        rel
    } else {
        let r = rel.strip_prefix(root)?;
        if !(r.is_empty() || r.starts_with('/')) {
            return None;
        }
        r
    };
    Some(std::path::PathBuf::from(format!("{}{}", mount.trim_end_matches('/'), inside)))
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
    fn affinity_counts_this_process_cpus() {
        let n = affinity().unwrap();
        // SAFETY: cpu_set_t is plain data; the call gets a valid pointer and size.
        let fixed = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set), 0);
            libc::CPU_COUNT(&set) as usize
        };
        assert_eq!(n, fixed);
    }

    #[test]
    fn a_cgroup_is_found_under_its_mount_root() {
        let d = |rel, root, mount| cgroup_dir(rel, root, mount).map(|p| p.display().to_string());
        assert_eq!(
            d("/user.slice/a", "/", "/sys/fs/cgroup").unwrap(),
            "/sys/fs/cgroup/user.slice/a"
        );
        // A container that mounts only its own subtree: the root field is that subtree.
        assert_eq!(d("/docker/abc", "/docker/abc", "/sys/fs/cgroup").unwrap(), "/sys/fs/cgroup");
        assert_eq!(
            d("/docker/abc/x", "/docker/abc", "/sys/fs/cgroup/").unwrap(),
            "/sys/fs/cgroup/x"
        );
        assert_eq!(d("/docker/abcd", "/docker/abc", "/sys/fs/cgroup"), None);
        assert_eq!(d("/other", "/docker/abc", "/sys/fs/cgroup"), None);
    }

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
