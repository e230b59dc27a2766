//! CPU counts.

/// CPUs this process may run on (its affinity mask), at least 1: Python's `process_cpu_count()`.
pub(crate) fn process_cpu_count() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, and sched_getaffinity writes at most
    // `size_of::<cpu_set_t>()` bytes into it.
    let n = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            libc::CPU_COUNT(&set) as usize
        } else {
            0
        }
    };
    if n > 0 { n } else { std::thread::available_parallelism().map_or(1, |n| n.get()) }
}
