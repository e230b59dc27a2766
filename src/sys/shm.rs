//! Shared-memory file descriptors: memfd, POSIX shm, reservation, sealing, size.

use std::ffi::CString;
use std::fs::File;
use std::io;

use rustix::fs::{FallocateFlags, MemfdFlags, Mode, SealFlags};
use rustix::io::{Errno, retry_on_intr};
use rustix::shm;

/// `name` as a C string; a NUL byte inside is `InvalidInput` (no OS error code, as before any
/// call is made).
fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Creates an anonymous, sealable, close-on-exec memfd.
pub(crate) fn memfd_create(debug_name: &str) -> io::Result<File> {
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    Ok(rustix::fs::memfd_create(c_name(debug_name)?.as_c_str(), flags)?.into())
}

/// Forbids the memfd from ever shrinking or growing again, so no process can truncate it under
/// a mapping (which would turn later accesses into SIGBUS).
pub(crate) fn seal_size(file: &File) -> io::Result<()> {
    Ok(rustix::fs::fcntl_add_seals(file, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?)
}

/// How `shm_open` should treat an existing name.
pub(crate) enum OpenMode {
    /// Create a new segment; fail with `AlreadyExists` if the name is taken.
    CreateExclusive,
    /// Open an existing segment read-write.
    Existing,
}

/// Opens or creates the POSIX shared-memory object `name` (which starts with '/'), mode 0600,
/// close-on-exec, as glibc's `shm_open` does: `/dev/shm/<name>` opened with `O_NOFOLLOW`, and a
/// directory there is `EINVAL`. rustix's `shm::open` adds `O_CLOEXEC` but not `O_NOFOLLOW`, so
/// it is passed here (`shm::OFlags` lets any `O_*` bit through to `open`). The names reaching
/// here passed `segment::name::validate`, so rustix's own name checks never disagree with glibc's.
pub(crate) fn shm_open(name: &str, mode: OpenMode) -> io::Result<File> {
    let cname = c_name(name)?;
    let flags = shm::OFlags::RDWR
        | shm::OFlags::from_bits_retain(rustix::fs::OFlags::NOFOLLOW.bits())
        | match mode {
            OpenMode::CreateExclusive => shm::OFlags::CREATE | shm::OFlags::EXCL,
            OpenMode::Existing => shm::OFlags::empty(),
        };
    let mode = Mode::RUSR | Mode::WUSR;
    match retry_on_intr(|| shm::open(cname.as_c_str(), flags, mode)) {
        Ok(fd) => Ok(fd.into()),
        Err(Errno::ISDIR) => Err(Errno::INVAL.into()),
        Err(e) => Err(e.into()),
    }
}

/// Removes the name `name`; mappings and descriptors that are open stay valid. As glibc's
/// `shm_unlink`, `EPERM` (another user's segment in the sticky `/dev/shm`) is `EACCES`.
pub(crate) fn shm_unlink(name: &str) -> io::Result<()> {
    match shm::unlink(c_name(name)?.as_c_str()) {
        Err(Errno::PERM) => Err(Errno::ACCESS.into()),
        other => Ok(other?),
    }
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
    Ok(retry_on_intr(|| rustix::fs::fallocate(file, FallocateFlags::empty(), 0, len))?)
}

/// The file's current size in bytes.
pub(crate) fn size(file: &File) -> io::Result<u64> {
    Ok(file.metadata()?.len())
}

/// Free bytes in the filesystem holding `file` (for /dev/shm: its tmpfs size limit less use),
/// or `None` where the filesystem reports no limit.
pub(crate) fn fs_available(file: &File) -> io::Result<Option<u64>> {
    let st = rustix::fs::fstatvfs(file)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What glibc's `shm_open` did and rustix's alone would not: a symlink at the name is not
    /// followed, and a directory there is `EINVAL`. `shm_unlink` of a missing name is `ENOENT`.
    #[test]
    fn shm_open_refuses_links_and_directories_as_glibc_does() {
        let bare = format!(
            "shmpool-test-sys-{}-{:x}",
            std::process::id(),
            super::super::proc::random_u64()
        );
        let (name, path) = (format!("/{bare}"), format!("/dev/shm/{bare}"));
        std::os::unix::fs::symlink("/dev/null", &path).unwrap();
        let followed = shm_open(&name, OpenMode::Existing).map(drop);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(followed.unwrap_err().raw_os_error(), Some(libc::ELOOP));
        std::fs::create_dir(&path).unwrap();
        let dir = shm_open(&name, OpenMode::Existing).map(drop);
        std::fs::remove_dir(&path).unwrap();
        assert_eq!(dir.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        let f = shm_open(&name, OpenMode::CreateExclusive).unwrap();
        let again = shm_open(&name, OpenMode::CreateExclusive).map(drop);
        assert_eq!(again.unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert!(is_same_file(&path, &f).unwrap());
        shm_unlink(&name).unwrap();
        assert_eq!(shm_unlink(&name).unwrap_err().raw_os_error(), Some(libc::ENOENT));
    }
}
