//! Shared-memory file descriptors: memfd, POSIX shm, reservation, sealing, size.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{cvt, cvt_retry};

/// Creates an anonymous, sealable, close-on-exec memfd.
pub(crate) fn memfd_create(debug_name: &str) -> io::Result<File> {
    let name =
        CString::new(debug_name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `name` is a valid NUL-terminated string for the call's duration.
    let fd = cvt(unsafe {
        libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
    })?;
    // SAFETY: memfd_create returned a fresh descriptor that nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Forbids the memfd from ever shrinking or growing again, so no process can truncate it under
/// a mapping (which would turn later accesses into SIGBUS).
pub(crate) fn seal_size(file: &File) -> io::Result<()> {
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: F_ADD_SEALS takes an int argument and touches no memory of ours.
    cvt(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) }).map(drop)
}

/// How `shm_open` should treat an existing name.
pub(crate) enum OpenMode {
    /// Create a new segment; fail with `AlreadyExists` if the name is taken.
    CreateExclusive,
    /// Open an existing segment read-write.
    Existing,
}

/// Opens or creates the POSIX shared-memory object `name` (which starts with '/'), mode 0600.
pub(crate) fn shm_open(name: &str, mode: OpenMode) -> io::Result<File> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let flags = libc::O_RDWR
        | libc::O_CLOEXEC
        | match mode {
            OpenMode::CreateExclusive => libc::O_CREAT | libc::O_EXCL,
            OpenMode::Existing => 0,
        };
    // SAFETY: `cname` is a valid NUL-terminated string for the call's duration.
    let fd = cvt_retry(|| unsafe { libc::shm_open(cname.as_ptr(), flags, 0o600) })?;
    // SAFETY: shm_open returned a fresh descriptor that nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Removes the name `name`; mappings and descriptors that are open stay valid.
pub(crate) fn shm_unlink(name: &str) -> io::Result<()> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `cname` is a valid NUL-terminated string for the call's duration.
    cvt(unsafe { libc::shm_unlink(cname.as_ptr()) }).map(drop)
}

/// Whether `path` leads to the file `file` is open on (same device and inode). `Ok(false)` when
/// nothing is there any more.
pub(crate) fn is_same_file(path: &str, file: &File) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let mine = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.dev() == mine.dev() && m.ino() == mine.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sets the file's size and reserves every page of it, so that no later first touch can fail
/// with SIGBUS. Fails with ENOSPC (or ENOMEM, EFBIG) up front instead.
pub(crate) fn reserve(file: &File, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: fallocate takes scalar arguments and touches no memory of ours.
    cvt_retry(|| unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) }).map(drop)
}

/// The file's current size in bytes.
pub(crate) fn size(file: &File) -> io::Result<u64> {
    Ok(file.metadata()?.len())
}

/// Free bytes in the filesystem holding `file` (for /dev/shm: its tmpfs size limit less use),
/// or `None` where the filesystem reports no limit.
pub(crate) fn fs_available(file: &File) -> io::Result<Option<u64>> {
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `st` is a valid out-pointer of the right type for the call's duration.
    cvt(unsafe { libc::fstatvfs(file.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstatvfs succeeded, so it filled the whole struct (and it was zeroed before).
    let st = unsafe { st.assume_init() };
    if st.f_blocks == 0 {
        return Ok(None);
    }
    Ok(Some(st.f_bavail.saturating_mul(st.f_frsize)))
}

/// Free bytes in the filesystem at `path`, or `None` where it reports no limit.
pub(crate) fn path_available(path: &str) -> io::Result<Option<u64>> {
    fs_available(&File::open(path)?)
}

/// Opens another descriptor's file through `/proc/PID/fd/FD`, read-write.
pub(crate) fn open_proc_fd(pid: u32, fd: i32) -> io::Result<File> {
    std::fs::OpenOptions::new().read(true).write(true).open(format!("/proc/{pid}/fd/{fd}"))
}
