//! Starting a program without copying this process: `posix_spawn`. glibc runs the child on a
//! `clone(CLONE_VM | CLONE_VFORK)` that shares this process's memory until it execs, so no page
//! table is copied and the cost does not grow with this process's size (a `fork` copies the
//! page tables of every private page first: about 65 ms per GiB here). No fork handlers run in
//! the child, which execs at once.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;

/// The numbers a child gets for descriptors `keep` (in that order): consecutive numbers above
/// every one of them, so that duplicating each onto its new number (what [`spawn`] does in the
/// child) never overwrites another one still to be duplicated.
pub(crate) fn child_numbers(keep: &[RawFd]) -> Vec<RawFd> {
    let base = keep.iter().copied().max().unwrap_or(2).max(2) + 1;
    (0..keep.len() as RawFd).map(|i| base + i).collect()
}

/// This process's environment with `var` set to `value` (replacing any value it had).
pub(crate) fn environment_with(var: &str, value: &str) -> Vec<CString> {
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k.as_bytes() != var.as_bytes())
        .filter_map(|(k, v)| CString::new([k.as_bytes(), b"=", v.as_bytes()].concat()).ok())
        .collect();
    env.push(CString::new(format!("{var}={value}")).expect("no NUL in a marker"));
    env
}

/// Starts `path` with `argv` and `env`, without copying this process (see the module docs).
/// In the child: stdin is `/dev/null`; each `(fd, at)` of `fds` is duplicated from `fd` onto
/// `at` (numbers from [`child_numbers`]), and the duplicate, which is not close-on-exec,
/// survives exec; stdout, stderr and descriptors without close-on-exec are inherited, every
/// other descriptor closes at exec. The signal mask is emptied and SIGPIPE reset to its default
/// (what std's `Command` does). Returns the child's pid once it has exec'd; a failed exec is an
/// error and leaves no child.
pub(crate) fn spawn(
    path: &CStr,
    argv: &[&CStr],
    env: &[CString],
    fds: &[(RawFd, RawFd)],
) -> io::Result<u32> {
    let mut argv_p: Vec<*mut libc::c_char> = argv.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv_p.push(std::ptr::null_mut());
    let mut env_p: Vec<*mut libc::c_char> = env.iter().map(|e| e.as_ptr().cast_mut()).collect();
    env_p.push(std::ptr::null_mut());
    let mut actions = FileActions::new()?;
    actions.open(0, c"/dev/null", libc::O_RDONLY)?;
    for &(fd, at) in fds {
        debug_assert!(at > 2 && !fds.iter().any(|&(other, _)| other == at), "see child_numbers");
        actions.dup2(fd, at)?;
    }
    let attr = Attr::new()?;
    let mut pid: libc::pid_t = 0;
    // SAFETY: `path` and the strings behind `argv_p`/`env_p` are NUL-terminated and outlive the
    // call, both arrays end with a null pointer, and `actions`/`attr` were initialised above.
    let r = unsafe {
        libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            &actions.0,
            &attr.0,
            argv_p.as_ptr(),
            env_p.as_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(pid as u32)
}

/// `posix_spawn_file_actions_t`, destroyed on drop.
struct FileActions(libc::posix_spawn_file_actions_t);

impl FileActions {
    fn new() -> io::Result<Box<FileActions>> {
        // SAFETY: an all-zero value is only storage; `init` below makes it a valid object, and
        // it is boxed so its address stays put (glibc keeps pointers into it).
        let mut a = Box::new(FileActions(unsafe { std::mem::zeroed() }));
        // SAFETY: `a.0` is writable storage for the object.
        nz(unsafe { libc::posix_spawn_file_actions_init(&mut a.0) })?;
        Ok(a)
    }

    fn open(&mut self, fd: RawFd, path: &'static CStr, flags: libc::c_int) -> io::Result<()> {
        // SAFETY: `self.0` was initialised in `new`; glibc copies the (static) path.
        nz(unsafe {
            libc::posix_spawn_file_actions_addopen(&mut self.0, fd, path.as_ptr(), flags, 0)
        })
    }

    fn dup2(&mut self, fd: RawFd, at: RawFd) -> io::Result<()> {
        // SAFETY: `self.0` was initialised in `new`.
        nz(unsafe { libc::posix_spawn_file_actions_adddup2(&mut self.0, fd, at) })
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once here.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

/// `posix_spawnattr_t` with an empty signal mask and SIGPIPE at its default, destroyed on drop.
struct Attr(libc::posix_spawnattr_t);

impl Attr {
    fn new() -> io::Result<Box<Attr>> {
        // SAFETY: as for `FileActions::new`.
        let mut a = Box::new(Attr(unsafe { std::mem::zeroed() }));
        // SAFETY: `a.0` is writable storage for the object.
        nz(unsafe { libc::posix_spawnattr_init(&mut a.0) })?;
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
        // SAFETY: `set` is a valid sigset_t out-pointer; the attribute calls copy from it into
        // the initialised `a.0`.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            nz(libc::posix_spawnattr_setsigmask(&mut a.0, set.as_ptr()))?;
            libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
            nz(libc::posix_spawnattr_setsigdefault(&mut a.0, set.as_ptr()))?;
            let flags = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
            nz(libc::posix_spawnattr_setflags(&mut a.0, flags as libc::c_short))?;
        }
        Ok(a)
    }
}

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once here.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

/// The posix_spawn family returns an error number instead of setting errno.
fn nz(r: libc::c_int) -> io::Result<()> {
    if r == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(r)) }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn child_numbers_lie_above_every_kept_descriptor() {
        assert_eq!(child_numbers(&[7, 3, 5]), vec![8, 9, 10]);
        assert_eq!(child_numbers(&[]), Vec::<RawFd>::new());
        assert_eq!(child_numbers(&[0]), vec![3]);
    }

    #[test]
    fn the_environment_carries_the_marker_once() {
        let env = environment_with("SHMPOOL_TEST_SPAWN_VAR", "a,b");
        let ours: Vec<_> =
            env.iter().filter(|e| e.as_bytes().starts_with(b"SHMPOOL_TEST_SPAWN_VAR=")).collect();
        assert_eq!(ours, [&CString::new("SHMPOOL_TEST_SPAWN_VAR=a,b").unwrap()]);
    }

    /// The child keeps exactly the listed descriptors (at their new numbers) and stdio, with
    /// stdin from /dev/null; the close-on-exec originals are gone.
    #[test]
    fn a_spawned_child_keeps_only_what_it_is_given() {
        // Made first, so its number lies below the kept ones and the numbers they get.
        let (other, _w2) = crate::sys::proc::pipe().unwrap();
        let (r, w) = crate::sys::proc::pipe().unwrap();
        let keep = [r.as_raw_fd(), w.as_raw_fd()];
        let at = child_numbers(&keep);
        let script = format!(
            "test -p /proc/self/fd/{a} && test -p /proc/self/fd/{b} \
             && ! test -e /proc/self/fd/{r} && ! test -e /proc/self/fd/{w} \
             && ! test -e /proc/self/fd/{o} && test \"$(readlink /proc/self/fd/0)\" = /dev/null",
            a = at[0],
            b = at[1],
            r = keep[0],
            w = keep[1],
            o = other.as_raw_fd(),
        );
        let script = CString::new(script).unwrap();
        let argv = [c"sh", c"-c", script.as_c_str()];
        let env = environment_with("SHMPOOL_TEST_SPAWN_VAR", "1");
        let pairs: Vec<_> = keep.iter().copied().zip(at).collect();
        let pid = spawn(c"/bin/sh", &argv, &env, &pairs).unwrap();
        assert_eq!(crate::sys::proc::waitpid(pid).unwrap(), crate::sys::proc::Exit::Code(0));
        let e = spawn(c"/nonexistent/shmpool", &argv, &env, &[]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
    }
}
