//! `cpu_count` and `process_cpu_count`, as in Python's `os` and `multiprocessing`.

use crate::sys;

/// Logical CPUs online in the system (Python's `os.cpu_count()`), at least 1.
///
/// ```
/// assert!(shmpool::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    sys::cpu::online().unwrap_or(1).max(1)
}

/// CPUs this process may actually use: those in its affinity mask (`sched_getaffinity`, as
/// Python's `os.process_cpu_count()`), further limited by a cgroup v2 CPU quota (`cpu.max` of
/// its cgroup and every ancestor, rounded up), as containers set it. At least 1. This is the
/// right default number of worker processes.
///
/// ```
/// let n = shmpool::process_cpu_count();
/// assert!(n >= 1 && n <= shmpool::cpu_count());
/// ```
pub fn process_cpu_count() -> usize {
    let total = cpu_count();
    let affinity = sys::cpu::affinity().unwrap_or(total).clamp(1, total);
    sys::cpu::cgroup_quota().map_or(affinity, |q| q.min(affinity)).max(1)
}
