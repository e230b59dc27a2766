//! The one place where shmpool talks to the operating system.
//!
//! Everything above this module works with safe wrappers: owned file descriptors, `Result`s
//! carrying `io::Error`, and `Duration`s. Each file here covers one family of calls.
//!
//! Calls go through `rustix` where it has a safe wrapper (memfd and seals, `shm_open`,
//! `fallocate`, futexes, `poll`, `sendmsg`/`recvmsg` with `SCM_RIGHTS`, pidfds, pids, `waitpid`,
//! `kill`, pipes, `fcntl` flags on an owned descriptor), so no `unsafe` is written for them here.
//! On Linux rustix makes the system calls itself (no libc, no `errno`), which is as
//! async-signal-safe as the calls, and it copies a `&CStr` path nowhere: the forked-child paths
//! (`fds::detach_inherited`, `proc::getpid`, `proc::die_with_parent`) use it. `libc` stays for
//! what rustix lacks or cannot do safely here:
//!
//! - `fork`, `pthread_atfork`, `_exit`, robust process-shared pthread mutexes, `posix_spawn`,
//!   signal dispositions and masks, `signalfd`, `waitid` (rustix's result has no pid),
//!   `F_SETOWN`/`F_SETSIG`, and `sched_getaffinity` beyond 1024 CPUs;
//! - `mmap`/`munmap`/`madvise`, which rustix also marks `unsafe` (nothing to gain);
//! - calls on a raw descriptor number that nothing owns (`fds`, `fdpass::dup_cloexec`,
//!   `fd_kind`, `poke`): rustix takes `AsFd`, and borrowing a number that may be closed is not
//!   sound;
//! - `sysconf` for the page size and `clock_gettime`: rustix reads the auxiliary vector (for
//!   the page size and the vDSO) lazily, on its first such call, through `PR_GET_AUXV` or
//!   `/proc/self/auxv`, which may allocate, and that first call could be in a forked child
//!   (`segment::forkmap`'s child handler asks for the page size);
//! - `pidfd_send_signal`: rustix's `Signal` has no 0, the probe a pidfd is checked with.
//!   (`proc::kill` sends 0 through `test_kill_process` and the standard signals through
//!   rustix, and refuses real-time ones with `EINVAL`: shmpool sends none.)

pub(crate) mod affinity;
pub(crate) mod anon;
pub(crate) mod clock;
pub(crate) mod cpu;
pub(crate) mod fdpass;
pub(crate) mod fds;
pub(crate) mod futex;
pub(crate) mod liveness;
pub(crate) mod map;
pub(crate) mod maps;
pub(crate) mod mem;
pub(crate) mod peer;
pub(crate) mod proc;
pub(crate) mod pthread;
pub(crate) mod shm;
pub(crate) mod signal;
pub(crate) mod socket;
pub(crate) mod spawn;

use std::io;

/// Turns a libc return value of -1 into the thread's `errno` as an `io::Error`.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// Like [`cvt`], retrying while the call was interrupted by a signal.
pub(crate) fn cvt_retry(mut f: impl FnMut() -> libc::c_int) -> io::Result<libc::c_int> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
