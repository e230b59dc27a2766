//! How a function crosses to a re-executed child (spawn) or a forkserver worker: as offsets from
//! a known function of the same executable, so address-space randomisation does not matter, plus
//! its arguments serialized with serde.
//!
//! A [`Job`] names two functions: the user's `fn(A) -> R`, and a monomorphised trampoline that
//! knows `A` and `R`, deserializes the arguments, calls the function and turns its result into an
//! exit code. Only a job that carries the secret of its child (spawn: a new one per child) or of
//! its forkserver (also handed over in the environment marker, see `boot.rs`) and this build's
//! fingerprint is ever called: anything else is rejected before a single address is used. Both
//! functions must lie in the main executable's own mappings (`Job::new` checks it), where an
//! offset names the same code in a re-executed copy.
//!
//! The secret guards against accidents (a stray or stale `SHMPOOL_WORKER`, a pipe mixed up), not
//! against a hostile process of the same user: such a process can read the marker from
//! `/proc/<pid>/environ` and ptrace the child anyway.

use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::child::ChildResult;
use crate::error::{Error, Result};

/// The function every offset is measured from.
#[inline(never)]
fn anchor() -> u64 {
    std::hint::black_box(0x5348_4d50_4f4f_4c31)
}

/// A second function, whose distance from [`anchor`] changes from build to build.
#[inline(never)]
fn fingerprint_probe() -> u64 {
    std::hint::black_box(0x4255_494c_4449_4431)
}

fn offset(addr: usize) -> i64 {
    addr as i64 - anchor as fn() -> u64 as usize as i64
}

fn address(off: i64) -> usize {
    (anchor as fn() -> u64 as usize as i64 + off) as usize
}

/// This build's fingerprint: the distance between two of its functions, and the crate version.
pub(crate) fn build_fingerprint() -> String {
    format!("{}/{}", env!("CARGO_PKG_VERSION"), offset(fingerprint_probe as fn() -> u64 as usize))
}

/// The address ranges where the main executable (`/proc/self/exe`, which spawn and the
/// forkserver re-execute) is mapped, read from `/proc/self/maps`; cached once read.
fn exe_ranges() -> std::result::Result<&'static [(usize, usize)], String> {
    static RANGES: OnceLock<Vec<(usize, usize)>> = OnceLock::new();
    if let Some(r) = RANGES.get() {
        return Ok(r);
    }
    // A failure to read (EMFILE, say) is not cached: it may pass.
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| format!("/proc/self/exe is unreadable ({e})"))?;
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map_err(|e| format!("/proc/self/maps is unreadable ({e})"))?;
    Ok(RANGES.get_or_init(|| mappings_of(&maps, &exe.to_string_lossy())))
}

/// The ranges of the mappings of the file `path` in a `/proc/<pid>/maps` text.
fn mappings_of(maps: &str, path: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|l| {
            let (range, rest) = l.split_once(' ')?;
            let (lo, hi) = range.split_once('-')?;
            let (lo, hi) =
                (usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?);
            // Fields after the range: perms, offset, dev, inode, then the path (may hold spaces).
            let p = rest.splitn(5, ' ').nth(4)?.trim_start();
            (p == path).then_some((lo, hi))
        })
        .collect()
}

/// Whether `addr` lies in one of `ranges`.
fn within(ranges: &[(usize, usize)], addr: usize) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= addr && addr < hi)
}

/// Checks that the code at `addr` (`what`, for the message) belongs to the main executable:
/// only there does an offset from [`anchor`] name the same code in a re-executed copy. Code in a
/// shared library (a Rust dylib dependency, a Python extension) is refused.
pub(crate) fn check_in_executable(addr: usize, what: &str) -> Result<()> {
    let ranges = exe_ranges().map_err(|reason| Error::SpawnUnavailable { reason })?;
    if within(ranges, addr) {
        Ok(())
    } else {
        Err(Error::SpawnUnavailable {
            reason: format!(
                "{what} (at {addr:#x}) is not in the program's own executable (a shared library?), \
                 so a re-executed copy could not find it"
            ),
        })
    }
}

/// Checks that shmpool's code lives in the main executable, which is what spawn and the
/// forkserver re-execute: from a shared library (a Python extension, say) `/proc/self/exe` is
/// another program, which would neither run the constructor nor know the functions.
/// Also refuses when no diversion path ran in this process (see `boot.rs`).
pub(crate) fn check_reexecutable() -> Result<()> {
    super::boot::check_diverted(super::boot::diverted())?;
    check_in_executable(anchor as fn() -> u64 as usize, "shmpool's own code")
}

type Trampoline = fn(usize, &str) -> i32;

/// What a re-executed child or forkserver worker runs.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    /// The run's secret; must equal the one in the child's marker.
    pub(crate) secret: u64,
    /// [`build_fingerprint`] of the parent.
    pub(crate) build: String,
    trampoline: i64,
    function: i64,
    /// The arguments, as serde JSON.
    args: String,
    /// The process's name.
    pub(crate) name: String,
    /// The pid the child's parent-death signal is checked against (spawn).
    pub(crate) parent_pid: u32,
    /// Whether the child may arm `PR_SET_PDEATHSIG`: only when the thread that starts it lives as
    /// long as the parent process (its main thread). Otherwise the alive pipe alone guards it.
    pub(crate) pdeathsig: bool,
}

fn trampoline<A: DeserializeOwned, R: ChildResult>(function: usize, args: &str) -> i32 {
    // SAFETY: `function` is a `fn(A) -> R` of this executable: `Job::new` took it from one with
    // these `A`, `R` (this trampoline is monomorphised for them); `Job::verify` accepted the job
    // only with this run's secret and build fingerprint. fn pointers and usize have one size.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(function) };
    let a: A = serde_json::from_str(args).unwrap_or_else(|e| {
        panic!("could not deserialize the arguments of the child's function: {e}")
    });
    f(a).exit_code()
}

impl Job {
    /// Describes a call of `f(args)` for another process.
    pub(crate) fn new<A, R>(
        f: fn(A) -> R,
        args: &A,
        name: &str,
        secret: u64,
        pdeathsig: bool,
    ) -> Result<Job>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: ChildResult + 'static,
    {
        check_reexecutable()?;
        let (t, f) = (trampoline::<A, R> as Trampoline as usize, f as usize);
        check_in_executable(f, "the child's function")?;
        check_in_executable(t, "the child's trampoline (monomorphised for its argument type)")?;
        let args =
            serde_json::to_string(args).map_err(|e| Error::Serialize { reason: e.to_string() })?;
        Ok(Job {
            secret,
            build: build_fingerprint(),
            trampoline: offset(t),
            function: offset(f),
            args,
            name: name.to_string(),
            parent_pid: crate::sys::proc::getpid(),
            pdeathsig,
        })
    }

    /// Serialized form.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a Job always serializes")
    }

    /// Parses and checks a job received from outside: it must carry `secret` and this build's
    /// fingerprint. Only a verified job can be run.
    pub(crate) fn verify(bytes: &[u8], secret: u64) -> std::result::Result<Verified, String> {
        let job: Job =
            serde_json::from_slice(bytes).map_err(|e| format!("the job is not readable ({e})"))?;
        if job.secret != secret {
            return Err("the job does not carry the secret of the marker".into());
        }
        if job.build != build_fingerprint() {
            return Err(format!(
                "the job comes from another build ({}, this is {})",
                job.build,
                build_fingerprint()
            ));
        }
        Ok(Verified(job))
    }
}

/// A job that passed [`Job::verify`].
pub(crate) struct Verified(pub(crate) Job);

impl Verified {
    /// Runs the function; returns its exit code (a panic unwinds to the caller, `child::finish`).
    pub(crate) fn call(self) -> i32 {
        let job = self.0;
        // SAFETY: the job was verified: its trampoline offset was taken by `Job::new` in a process
        // running this same build from `trampoline::<A, R>`, whose type is `Trampoline`.
        let t = unsafe { std::mem::transmute::<usize, Trampoline>(address(job.trampoline)) };
        t(address(job.function), &job.args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add((a, b): (i32, i32)) -> i32 {
        a + b
    }

    #[test]
    fn this_test_binary_can_be_reexecuted() {
        check_reexecutable().unwrap();
        check_in_executable(add as fn((i32, i32)) -> i32 as usize, "add").unwrap();
    }

    #[test]
    fn code_outside_the_executable_is_refused() {
        // getpid lives in libc.so, mapped from another file than the executable.
        let libc_fn = libc::getpid as unsafe extern "C" fn() -> libc::pid_t as usize;
        match check_in_executable(libc_fn, "getpid") {
            Err(Error::SpawnUnavailable { reason }) => {
                assert!(reason.contains("getpid") && reason.contains("shared library"), "{reason}")
            }
            other => panic!("an address in libc must be refused, got {other:?}"),
        }
        // Nor is a heap address an executable's code.
        let heap = Box::new(0u8);
        assert!(check_in_executable(&*heap as *const u8 as usize, "heap").is_err());
    }

    #[test]
    fn only_the_mappings_of_the_executable_count() {
        let maps = "\
00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/my prog
00651000-00652000 rw-p 00051000 08:02 173521      /usr/bin/my prog
7f0000000000-7f0000100000 r-xp 00000000 08:02 99  /usr/lib/libfoo.so
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0   [stack]
7ffe00000000-7ffe00001000 rw-p 00000000 00:00 0
";
        let r = mappings_of(maps, "/usr/bin/my prog");
        assert_eq!(r, [(0x400000, 0x452000), (0x651000, 0x652000)]);
        assert!(within(&r, 0x400000) && within(&r, 0x451fff) && within(&r, 0x651800));
        assert!(!within(&r, 0x452000) && !within(&r, 0x7f0000000010) && !within(&r, 0));
        assert!(mappings_of(maps, "/usr/lib/libfoo").is_empty());
    }

    #[test]
    fn a_verified_job_calls_the_function_with_its_arguments() {
        let job = Job::new(add, &(40, 2), "adder", 7, false).unwrap();
        let v = Job::verify(&job.to_bytes(), 7).unwrap();
        assert_eq!(v.0.name, "adder");
        assert_eq!(v.call(), 42);
    }

    #[test]
    fn a_job_without_the_secret_or_from_another_build_is_refused() {
        let job = Job::new(add, &(1, 2), "x", 7, false).unwrap();
        let err = Job::verify(&job.to_bytes(), 8).err().unwrap();
        assert!(err.contains("secret"), "{err}");
        let mut other = job;
        other.build = "0.0.0/123".into();
        let err = Job::verify(&other.to_bytes(), 7).err().unwrap();
        assert!(err.contains("another build"), "{err}");
        let err = Job::verify(b"{\"secret\":7}", 7).err().unwrap();
        assert!(err.contains("not readable"), "{err}");
    }
}
