//! `CLOCK_MONOTONIC`, the one clock every process of a machine shares (futex and robust-lock
//! deadlines, task stamps another process compares). glibc's, not rustix's: rustix finds the
//! vDSO lazily (reading the auxiliary vector, which may allocate) on its first clock call, which
//! could be in a forked child.

/// `CLOCK_MONOTONIC` now. Were the call to fail (the clock always exists on Linux), zero.
pub(crate) fn monotonic() -> libc::timespec {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid out-pointer for the call's duration.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now
}

/// [`monotonic`] in nanoseconds.
pub(crate) fn monotonic_ns() -> u64 {
    let t = monotonic();
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}
