//! The one place where shmpool talks to the operating system.
//!
//! Everything above this module works with safe wrappers: owned file descriptors, `Result`s
//! carrying `io::Error`, and `Duration`s. Each file here covers one family of calls.

pub(crate) mod anon;
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
