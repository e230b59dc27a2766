//! How a function crosses to a re-executed child (spawn) or a forkserver worker: as offsets from
//! a known function of the same executable, so address-space randomisation does not matter, plus
//! its arguments serialized with serde.
//!
//! A [`Job`] names two functions: the user's `fn(A) -> R`, and a monomorphised trampoline that
//! knows `A` and `R`, deserializes the arguments, calls the function and turns its result into an
//! exit code. Only a job that carries this run's secret (also handed to the child in its
//! environment marker, see `boot.rs`) and this build's fingerprint is ever called: anything else
//! is rejected before a single address is used.

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

/// Checks (once) that shmpool's code lives in the main executable, which is what spawn and the
/// forkserver re-execute: from a shared library (a Python extension, say) `/proc/self/exe` is
/// another program, which would neither run the constructor nor know the functions.
pub(crate) fn check_reexecutable() -> Result<()> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let r = CHECKED.get_or_init(|| {
        let exe = std::fs::read_link("/proc/self/exe")
            .map_err(|e| format!("/proc/self/exe is unreadable ({e})"))?;
        let exe = exe.to_string_lossy().into_owned();
        let maps = std::fs::read_to_string("/proc/self/maps")
            .map_err(|e| format!("/proc/self/maps is unreadable ({e})"))?;
        let addr = anchor as fn() -> u64 as usize;
        let path = maps.lines().find_map(|l| {
            let (range, rest) = l.split_once(' ')?;
            let (lo, hi) = range.split_once('-')?;
            let (lo, hi) =
                (usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?);
            // Fields after the range: perms, offset, dev, inode, then the path (may hold spaces).
            (lo <= addr && addr < hi)
                .then(|| rest.splitn(5, ' ').nth(4).unwrap_or("").trim().to_string())
        });
        match path {
            Some(p) if p == exe => Ok(()),
            Some(p) => Err(format!(
                "shmpool's code runs from {p}, not from the program {exe} (a shared library?)"
            )),
            None => Err("shmpool's code is in no file mapping".into()),
        }
    });
    r.clone().map_err(|reason| Error::SpawnUnavailable { reason })
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
    // SAFETY: `function` is the address of a `fn(A) -> R` of this very executable: `Job::new` took
    // it from such a function with these same `A` and `R` (this trampoline is monomorphised for
    // them and paired with it in the job), and `Job::verify` accepted the job only if it carried
    // this run's secret and this build's fingerprint. Function pointers and usize have one size.
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
        let args =
            serde_json::to_string(args).map_err(|e| Error::Serialize { reason: e.to_string() })?;
        Ok(Job {
            secret,
            build: build_fingerprint(),
            trampoline: offset(trampoline::<A, R> as Trampoline as usize),
            function: offset(f as usize),
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
