//! How a function crosses to a re-executed child (spawn) or a forkserver worker: as offsets from
//! a known function of the same executable (`code.rs`, the one code-transport scheme), so
//! address-space randomisation does not matter, plus its arguments encoded with postcard (a
//! binary serde format: NaN payloads, infinities, non-string map keys and empty values cross
//! bit-exactly; JSON carried none of them).
//!
//! A [`Job`] names two functions: the user's `fn(A) -> R`, and a monomorphised trampoline that
//! knows `A` and `R`, decodes the arguments, calls the function and turns its result into an
//! exit code. Both functions must lie in the main executable's own mappings (`Job::new` checks
//! it with `code::check_sendable`), where an offset names the same code in a re-executed copy.
//!
//! Spawn (on the job pipe) and the forkserver (on its request socket) carry a job as one frame
//! of the [`JOB`](crate::frame::JOB) format, read by the same pure decoder, [`decode_frame`]; its
//! byte layout is in `README.md` beside this file ("Job frame").
//!
//! Only a frame with the right length, secret, build and checksum becomes a [`Verified`] job,
//! the only kind that is ever called: anything else is refused before a single address or
//! argument byte is used. A reader allocates what the length announces only once it is within
//! the bound, and the decoder copies out no more than the frame holds.
//!
//! The secret and checksum guard against accidents (a stray or stale `SHMPOOL_WORKER`, a pipe
//! mixed up, a corrupted frame), not against a hostile process of the same user: such a process
//! can read the marker from `/proc/<pid>/environ` and ptrace the child anyway.

use std::cell::RefCell;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::child::ChildResult;
use super::code::{self, Receiver, build_fingerprint};
use super::identity;
use crate::error::{Error, Result};
use crate::frame::{self, JOB};
use crate::sys;

/// Checks that this process can start re-executed children: a diversion path ran in it (see
/// `boot.rs`) and shmpool's code lives in the main executable (`code::check_own_code_reexecutable`).
pub(crate) fn check_reexecutable() -> Result<()> {
    super::marker::check_diverted(super::marker::diverted())?;
    code::check_own_code_reexecutable()
}

type Trampoline = fn(usize, &[u8]) -> i32;

/// Largest job frame (arguments included) a child or the forkserver accepts, after the 8-byte
/// length that announces it: the [`JOB`] format's maximum.
pub(crate) const MAX_JOB_BYTES: u64 = JOB.max;

/// Bytes of a frame's length prefix: the [`JOB`] format's header.
pub(crate) const FRAME_PREFIX: usize = frame::HEADER_LEN;

/// Bytes after the prefix that precede the body: the secret and the checksum.
const FRAME_HEADER: usize = 16;

/// What a re-executed child or forkserver worker runs.
#[derive(Debug)]
pub(crate) struct Job {
    /// The run's secret; must equal the one in the child's marker.
    pub(crate) secret: u64,
    /// [`build_fingerprint`] of the parent.
    pub(crate) build: String,
    /// Offsets of the trampoline and the function (`code::to_offset`).
    trampoline: u64,
    function: u64,
    /// The arguments, in postcard.
    args: Vec<u8>,
    /// The process's name.
    pub(crate) name: String,
    /// The pid the child's parent-death signal is checked against (spawn); also its
    /// `parent_process()`.
    pub(crate) parent_pid: u32,
    /// The starting process's name, for the child's `parent_process()`.
    pub(crate) parent_name: String,
    /// Whether the child is a daemon, for its `current_process()`.
    pub(crate) daemon: bool,
    /// Whether the child may arm `PR_SET_PDEATHSIG`: only when the thread that starts it lives as
    /// long as the parent process (its main thread). Otherwise the alive pipe alone guards it.
    pub(crate) pdeathsig: bool,
    /// Descriptors the arguments carry (a `Connection`'s socket, see [`pass_fd`]): in the parent,
    /// duplicates to hand over; in the child, those that arrived.
    fds: Vec<OwnedFd>,
    /// Where a spawn child finds them (inherited across exec at these numbers); -1 each when
    /// they come with the forkserver request instead.
    fd_numbers: Vec<i32>,
}

/// Most descriptors one job's arguments may carry: a forkserver request carries the worker's two
/// pipes and these in one message of at most `sys::fdpass::MAX_FDS`.
pub(crate) const MAX_JOB_FDS: usize = sys::fdpass::MAX_FDS - 2;

thread_local! {
    /// While a job's arguments are encoded: the descriptors they pass ([`pass_fd`]).
    static PASSING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    /// Why [`pass_fd`] last refused, for the error (postcard keeps no custom message).
    static REFUSED: RefCell<Option<String>> = const { RefCell::new(None) };
    /// While a job's arguments are decoded: the descriptors that came with them ([`take_fd`]).
    static ARRIVED: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
}

/// For the `Serialize` of an argument that is a descriptor (a `Connection`): adds a duplicate of
/// `fd` to the job being encoded and returns its index there, which the argument encodes. Fails
/// outside a job's arguments (a descriptor crosses only with a `Process` start, not in a queue,
/// a pipe message or a pool task) and past [`MAX_JOB_FDS`].
pub(crate) fn pass_fd(fd: BorrowedFd<'_>) -> std::result::Result<u32, String> {
    let r = PASSING.with(|p| {
        let mut p = p.borrow_mut();
        let Some(list) = p.as_mut() else {
            return Err(
                "a Connection crosses only as an argument of a Process started with spawn \
                        or forkserver (or inside a fork's closure), not in a message, a queue or \
                        a pool task"
                    .into(),
            );
        };
        if list.len() >= MAX_JOB_FDS {
            return Err(format!(
                "a child's arguments may carry at most {MAX_JOB_FDS} Connections; send more \
                 through one of them (Connection::send_handle passes shared memory) or start the \
                 child under fork"
            ));
        }
        let dup = fd.try_clone_to_owned().map_err(|e| format!("cannot duplicate it ({e})"))?;
        list.push(dup);
        Ok(list.len() as u32 - 1)
    });
    if let Err(e) = &r {
        REFUSED.set(Some(e.clone()));
    }
    r
}

/// For the `Deserialize` of an argument that is a descriptor: takes descriptor `index` of those
/// that came with the job's arguments (each can be taken once).
pub(crate) fn take_fd(index: u32) -> std::result::Result<OwnedFd, String> {
    ARRIVED.with(|a| {
        let mut a = a.borrow_mut();
        let Some(list) = a.as_mut() else {
            return Err("a Connection decodes only from a child's arguments, where its socket \
                        came with them"
                .into());
        };
        list.get_mut(index as usize).and_then(Option::take).ok_or_else(|| {
            format!(
                "descriptor {index} of the child's arguments did not arrive, or was taken twice"
            )
        })
    })
}

/// Runs `f` with `fds` offered to [`take_fd`]; those not taken are closed afterwards.
fn with_arrived<T>(fds: Vec<OwnedFd>, f: impl FnOnce() -> T) -> T {
    let before = ARRIVED.replace(Some(fds.into_iter().map(Some).collect()));
    let r = f();
    ARRIVED.set(before);
    r
}

/// Runs `f` collecting what [`pass_fd`] is given; returns its result and the descriptors.
fn passing<T>(f: impl FnOnce() -> T) -> (T, Vec<OwnedFd>) {
    let before = PASSING.replace(Some(Vec::new()));
    let r = f();
    let fds = PASSING.replace(before).unwrap_or_default();
    (r, fds)
}

/// The fields of a job after the build fingerprint, as postcard writes them; borrowed from the
/// frame when decoded, so decoding allocates nothing.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    trampoline: u64,
    function: u64,
    #[serde(serialize_with = "as_bytes")]
    args: &'a [u8],
    name: &'a str,
    parent_pid: u32,
    parent_name: &'a str,
    daemon: bool,
    pdeathsig: bool,
    /// Where a spawn child finds the argument's descriptors (-1 each: in the forkserver request).
    fds: Vec<i32>,
}

fn as_bytes<S: serde::Serializer>(b: &&[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_bytes(b)
}

/// Why a job frame was refused. Nothing from a refused frame is ever used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JobRefused {
    /// Fewer than the 8 bytes of the length prefix.
    NoPrefix { got: usize },
    /// The prefix announces more than [`MAX_JOB_BYTES`].
    TooLong { announced: u64 },
    /// The prefix announces another length than what follows it.
    LengthMismatch { announced: u64, got: usize },
    /// Shorter than the secret and checksum every job starts with.
    TooShort { got: usize },
    /// The secret is not the one of the marker (or of the forkserver).
    Secret,
    /// The job comes from another build of the program.
    Build { theirs: String, ours: String },
    /// The checksum does not match the secret and body: corrupted, or cut from another job.
    Checksum,
    /// The body does not decode as a job.
    Unreadable { reason: String },
}

impl std::fmt::Display for JobRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobRefused::NoPrefix { got } => {
                write!(f, "its job has {got} bytes, fewer than the 8 of its length")
            }
            JobRefused::TooLong { announced } => write!(
                f,
                "its job announces {announced} bytes, more than the {MAX_JOB_BYTES} allowed"
            ),
            JobRefused::LengthMismatch { announced, got } => {
                write!(f, "its job announces {announced} bytes but {got} follow")
            }
            JobRefused::TooShort { got } => write!(
                f,
                "the job is not readable (its {got} bytes are fewer than the {FRAME_HEADER} of \
                 a job's secret and checksum)"
            ),
            JobRefused::Secret => f.write_str("the job does not carry the secret of the marker"),
            JobRefused::Build { theirs, ours } => {
                write!(f, "the job comes from another build ({theirs}, this is {ours})")
            }
            JobRefused::Checksum => f.write_str(
                "the job's checksum does not match its bytes (corrupted, or mixed with another \
                 job)",
            ),
            JobRefused::Unreadable { reason } => write!(f, "the job is not readable ({reason})"),
        }
    }
}

/// The length a frame's prefix announces, refused above [`MAX_JOB_BYTES`]: a reader allocates
/// only what this returns.
pub(crate) fn frame_len(prefix: [u8; FRAME_PREFIX]) -> std::result::Result<usize, JobRefused> {
    let announced = JOB.decode(prefix).len;
    JOB.check(announced).map_err(|_| JobRefused::TooLong { announced })
}

/// The checksum of a job body: SipHash (std's `DefaultHasher`, the same in every process of one
/// build) of the secret and the body. It catches corruption and mix-ups, and ties the body to
/// the secret; it is not a cryptographic MAC (see the module's threat model).
fn checksum(secret: u64, body: &[u8]) -> u64 {
    use std::hash::{DefaultHasher, Hasher};
    let mut h = DefaultHasher::new();
    h.write_u64(secret);
    h.write(body);
    h.finish()
}

/// Encodes a child's arguments with postcard and decodes them back once, so a type that cannot
/// cross (one that needs a self-describing format) is refused in the parent rather than
/// panicking in the child. Spawn and forkserver send arguments this way; fork moves them.
pub(crate) fn encode_args<A: Serialize + DeserializeOwned>(args: &A) -> Result<Vec<u8>> {
    encode_args_passing(args, false).map(|(bytes, _)| bytes)
}

/// As [`encode_args`]; with `fds`, arguments may pass descriptors ([`pass_fd`]), returned with
/// the bytes (and offered again, duplicated, to the check that decodes them back).
fn encode_args_passing<A: Serialize + DeserializeOwned>(
    args: &A,
    fds: bool,
) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
    REFUSED.set(None);
    let (bytes, passed) = if fds {
        passing(|| postcard::to_stdvec(args))
    } else {
        (postcard::to_stdvec(args), Vec::new())
    };
    let refused = REFUSED.take();
    let bytes = bytes.map_err(|e| Error::Serialize {
        reason: match refused {
            Some(why) => why,
            None => format!("{e} (postcard, the format of every start method but fork)"),
        },
    })?;
    let again = passed
        .iter()
        .map(|fd| fd.try_clone())
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(Error::io("duplicating a Connection's descriptor"))?;
    with_arrived(again, || decode_args::<A>(&bytes)).map_err(|e| Error::Serialize {
        reason: format!(
            "they do not decode back from postcard, the format of every start method but fork \
             ({e}); a type that needs a self-describing format (#[serde(untagged)], \
             #[serde(flatten)], serde_json::Value, anything using deserialize_any) cannot \
             cross: use plain structs and enums"
        ),
    })?;
    Ok((bytes, passed))
}

/// Decodes postcard arguments, refusing bytes left over.
pub(crate) fn decode_args<A: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<A, String> {
    let (a, rest) = postcard::take_from_bytes::<A>(bytes).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes follow the arguments", rest.len()));
    }
    Ok(a)
}

fn trampoline<A: DeserializeOwned, R: ChildResult>(function: usize, args: &[u8]) -> i32 {
    // SAFETY: `function` is a `fn(A) -> R` of this executable: `Job::new` took it from one with
    // these `A`, `R` (this trampoline is monomorphised for them); `decode_frame` accepted the job
    // only with this run's secret, build fingerprint and checksum. fn pointers and usize match.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(function) };
    let a: A = decode_args(args).unwrap_or_else(|e| {
        panic!("could not deserialize the arguments of the child's function: {e}")
    });
    // Descriptors the arguments did not take are closed before the function runs.
    ARRIVED.set(None);
    f(a).exit_code()
}

impl Job {
    /// Describes a call of `f(args)` for another process. The arguments are encoded with
    /// postcard and decoded back once here, so a type that cannot cross (one that needs a
    /// self-describing format) is refused in the parent rather than panicking in the child.
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
        code::check_sendable(f, "the child's function", Receiver::Reexecuted)?;
        let what = "the child's trampoline (monomorphised for its argument type)";
        code::check_sendable(t, what, Receiver::Reexecuted)?;
        let (args, fds) = encode_args_passing(args, true)?;
        let parent_name = identity::current_name();
        // Room for the other fields: two names, a fingerprint and a few numbers.
        let limit = MAX_JOB_BYTES as usize - FRAME_HEADER - name.len() - parent_name.len() - 256;
        if args.len() > limit {
            return Err(Error::InvalidArgument {
                what: "child arguments",
                reason: format!(
                    "they take {} bytes encoded, more than the {limit} a job may carry; pass \
                     large data through shared memory (a SharedArray's handle)",
                    args.len()
                ),
            });
        }
        Ok(Job {
            secret,
            build: build_fingerprint(),
            trampoline: code::to_offset(t),
            function: code::to_offset(f),
            args,
            name: name.to_string(),
            parent_pid: crate::sys::proc::getpid(),
            parent_name,
            daemon: false,
            pdeathsig,
            fd_numbers: vec![-1; fds.len()],
            fds,
        })
    }

    /// The descriptors the arguments pass, to send with the job (the forkserver request) or to
    /// have the child inherit (spawn, at the numbers given to [`to_frame_placing`](Job::to_frame_placing)).
    pub(crate) fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.fds.iter().map(AsFd::as_fd).collect()
    }

    /// As [`to_frame`](Job::to_frame), for a child that inherits the argument's descriptors
    /// ([`fds`](Job::fds)) at the numbers `at` (spawn).
    pub(crate) fn to_frame_placing(&self, at: &[RawFd]) -> Vec<u8> {
        assert_eq!(at.len(), self.fds.len(), "a number for each descriptor");
        self.frame_with(at)
    }

    /// The job as one frame: the length of the rest (8 bytes, little-endian), the secret (8),
    /// the checksum of the body (8), then the body: the build fingerprint and the other fields,
    /// in postcard. See [`decode_frame`].
    pub(crate) fn to_frame(&self) -> Vec<u8> {
        self.frame_with(&self.fd_numbers)
    }

    fn frame_with(&self, fds: &[RawFd]) -> Vec<u8> {
        let wire = Wire {
            trampoline: self.trampoline,
            function: self.function,
            args: &self.args,
            name: &self.name,
            parent_pid: self.parent_pid,
            parent_name: &self.parent_name,
            daemon: self.daemon,
            pdeathsig: self.pdeathsig,
            fds: fds.to_vec(),
        };
        let start = FRAME_PREFIX + FRAME_HEADER;
        let mut v = Vec::with_capacity(start + self.build.len() + self.args.len() + 64);
        v.resize(start, 0);
        // Writing into a Vec cannot fail, and every field has a postcard encoding.
        let v = postcard::to_extend(self.build.as_str(), v).expect("a str encodes");
        let mut v = postcard::to_extend(&wire, v).expect("a job encodes");
        let sum = checksum(self.secret, &v[start..]);
        let len = (v.len() - FRAME_PREFIX) as u64;
        v[..FRAME_PREFIX].copy_from_slice(&JOB.encode(len, 0));
        v[8..16].copy_from_slice(&self.secret.to_le_bytes());
        v[16..24].copy_from_slice(&sum.to_le_bytes());
        v
    }
}

/// Decodes and checks one job frame (see [`Job::to_frame`]) received from outside, a pure
/// function of its bytes. In order, each before anything further is read: the announced length
/// (at most [`MAX_JOB_BYTES`], equal to what follows), the secret (`secret`, the marker's or the
/// forkserver's), the build fingerprint, the checksum, then the rest of the body. Only a frame
/// that passes all of them becomes a [`Verified`] job, the only kind that can run. Allocates no
/// more than the frame's length (the name and arguments, copied out).
pub(crate) fn decode_frame(frame: &[u8], secret: u64) -> std::result::Result<Verified, JobRefused> {
    let Some((prefix, rest)) = frame.split_first_chunk::<FRAME_PREFIX>() else {
        return Err(JobRefused::NoPrefix { got: frame.len() });
    };
    let announced = frame_len(*prefix)?;
    if announced != rest.len() {
        return Err(JobRefused::LengthMismatch { announced: announced as u64, got: rest.len() });
    }
    let Some((theirs, rest)) = rest.split_first_chunk::<8>() else {
        return Err(JobRefused::TooShort { got: rest.len() });
    };
    let Some((sum, body)) = rest.split_first_chunk::<8>() else {
        return Err(JobRefused::TooShort { got: rest.len() + 8 });
    };
    if u64::from_le_bytes(*theirs) != secret {
        return Err(JobRefused::Secret);
    }
    let unreadable = |e: postcard::Error| JobRefused::Unreadable { reason: e.to_string() };
    let (build, fields) = postcard::take_from_bytes::<&str>(body).map_err(unreadable)?;
    let ours = build_fingerprint();
    if build != ours {
        // A message, not a copy of whatever the frame holds: at most 64 characters of it.
        let theirs: String = build.chars().take(64).collect();
        return Err(JobRefused::Build { theirs, ours });
    }
    if u64::from_le_bytes(*sum) != checksum(secret, body) {
        return Err(JobRefused::Checksum);
    }
    let (w, left) = postcard::take_from_bytes::<Wire>(fields).map_err(unreadable)?;
    if !left.is_empty() {
        return Err(JobRefused::Unreadable { reason: format!("{} bytes follow it", left.len()) });
    }
    Ok(Verified(Job {
        secret,
        build: ours,
        trampoline: w.trampoline,
        function: w.function,
        args: w.args.to_vec(),
        name: w.name.to_string(),
        parent_pid: w.parent_pid,
        parent_name: w.parent_name.to_string(),
        daemon: w.daemon,
        pdeathsig: w.pdeathsig,
        fds: Vec::new(),
        fd_numbers: w.fds,
    }))
}

/// A job that passed [`decode_frame`]; nothing else makes one.
pub(crate) struct Verified(Job);

impl Verified {
    /// The pid the child's parent-death signal is checked against.
    pub(crate) fn parent_pid(&self) -> u32 {
        self.0.parent_pid
    }

    /// Whether the child may arm `PR_SET_PDEATHSIG` (only when started from the parent's main
    /// thread).
    pub(crate) fn pdeathsig(&self) -> bool {
        self.0.pdeathsig
    }

    /// Hands the job the descriptors that came with the forkserver request, one for each its
    /// arguments pass; a count that differs is refused.
    pub(crate) fn with_fds(mut self, fds: Vec<OwnedFd>) -> std::result::Result<Verified, String> {
        if fds.len() != self.0.fd_numbers.len() {
            return Err(format!(
                "the job passes {} descriptors, {} came with it",
                self.0.fd_numbers.len(),
                fds.len()
            ));
        }
        self.0.fds = fds;
        Ok(self)
    }

    /// Takes the descriptors a spawn child inherited for its arguments, at the numbers the job
    /// names: each must be an open socket, not a standard stream, and not one of `marker_fds` (the
    /// ones the marker names); they become close-on-exec.
    pub(crate) fn adopt_inherited(
        mut self,
        marker_fds: &[RawFd],
    ) -> std::result::Result<Verified, String> {
        let numbers = &self.0.fd_numbers;
        for (i, &n) in numbers.iter().enumerate() {
            if n <= 2 || marker_fds.contains(&n) || numbers[..i].contains(&n) {
                return Err(format!(
                    "the job names descriptor {n} for its arguments, a reserved one"
                ));
            }
            if sys::fdpass::fd_kind(n) != Some(sys::fdpass::FdKind::Socket) {
                return Err(format!("descriptor {n} of the job's arguments is not an open socket"));
            }
        }
        let fds = numbers
            .iter()
            .map(|&n| {
                // The verified job (this run's secret, build and checksum) names `n` as a
                // descriptor the parent had `posix_spawn` duplicate into this process for the
                // arguments; it is open, a socket, distinct from the marker's and from the
                // others (checked above), and nothing else in this fresh process owns it.
                // SAFETY: so this is its one owner.
                let fd = unsafe { OwnedFd::from_raw_fd(n) };
                sys::fdpass::set_cloexec(&fd).map(|()| fd)
            })
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| format!("the descriptors of the job's arguments: {e}"))?;
        self.0.fds = fds;
        Ok(self)
    }

    /// Runs the function; returns its exit code (a panic unwinds to the caller, `child::finish`).
    /// Records first who this child is (`identity.rs`), for `current_process()`.
    pub(crate) fn call(self) -> i32 {
        let mut job = self.0;
        assert_eq!(
            job.fds.len(),
            job.fd_numbers.len(),
            "the descriptors of the child's arguments did not arrive"
        );
        ARRIVED.set(Some(std::mem::take(&mut job.fds).into_iter().map(Some).collect()));
        identity::become_child(job.name, job.daemon, job.parent_pid, job.parent_name);
        // SAFETY: the job was verified: its trampoline offset was taken by `Job::new` in a process
        // running this same build from `trampoline::<A, R>`, whose type is `Trampoline`.
        let t =
            unsafe { std::mem::transmute::<usize, Trampoline>(code::from_offset(job.trampoline)) };
        t(code::from_offset(job.function), &job.args)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn add((a, b): (i32, i32)) -> i32 {
        a + b
    }

    #[test]
    fn this_test_binary_can_be_reexecuted() {
        check_reexecutable().unwrap();
    }

    /// The secret of the fuzzed frames.
    pub(crate) const SECRET: u64 = 0x5eed_5eed_5eed_5eed;

    fn frame_of<A>(args: &A) -> Vec<u8>
    where
        A: Serialize + DeserializeOwned + 'static,
    {
        fn zero<A>(_: A) -> i32 {
            0
        }
        Job::new(zero::<A>, args, "fuzzed", SECRET, true).unwrap().to_frame()
    }

    #[test]
    fn a_verified_job_calls_the_function_with_its_arguments() {
        let job = Job::new(add, &(40, 2), "adder", 7, false).unwrap();
        let v = decode_frame(&job.to_frame(), 7).unwrap();
        assert_eq!((v.0.name.as_str(), v.pdeathsig()), ("adder", false));
        assert_eq!(v.parent_pid(), crate::sys::proc::getpid());
        assert_eq!(v.call(), 42);
    }

    fn bits((floats, x): (Vec<f64>, f32)) -> i32 {
        let want = [f64::NAN, -f64::NAN, f64::from_bits(0x7ff8_dead_beef_0001), f64::INFINITY];
        let same = floats.len() == want.len()
            && floats.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits())
            && x.to_bits() == f32::NEG_INFINITY.to_bits();
        if same { 0 } else { 1 }
    }

    #[test]
    fn nan_payloads_and_infinities_cross_bit_exactly() {
        let floats =
            vec![f64::NAN, -f64::NAN, f64::from_bits(0x7ff8_dead_beef_0001), f64::INFINITY];
        let job = Job::new(bits, &(floats, f32::NEG_INFINITY), "bits", 3, false).unwrap();
        assert_eq!(decode_frame(&job.to_frame(), 3).unwrap().call(), 0);
    }

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Loose {
        N(u32),
        S(String),
    }

    fn loose(_: Loose) {}

    #[test]
    fn arguments_that_need_a_self_describing_format_are_refused_in_the_parent() {
        let _ = Loose::S(String::new());
        match Job::new(loose, &Loose::N(1), "loose", 1, false) {
            Err(Error::Serialize { reason }) => assert!(reason.contains("untagged"), "{reason}"),
            other => panic!("expected a Serialize error, got {other:?}"),
        }
    }

    #[test]
    fn a_job_without_the_secret_or_from_another_build_is_refused() {
        let job = Job::new(add, &(1, 2), "x", 7, false).unwrap();
        let e = decode_frame(&job.to_frame(), 8).err().unwrap();
        assert_eq!(e, JobRefused::Secret);
        assert!(e.to_string().contains("secret"), "{e}");
        let mut other = job;
        other.build = "0.0.0/123".into();
        let e = decode_frame(&other.to_frame(), 7).err().unwrap();
        assert!(matches!(&e, JobRefused::Build { theirs, .. } if theirs == "0.0.0/123"), "{e:?}");
        assert!(e.to_string().contains("another build"), "{e}");
        let garbage = [&19u64.to_le_bytes()[..], &7u64.to_le_bytes(), b"{\"secret\":7"].concat();
        let e = decode_frame(&garbage, 7).err().unwrap();
        assert!(e.to_string().contains("not readable"), "{e}");
        // A body changed after the checksum was taken.
        let mut frame = Job::new(add, &(1, 2), "x", 7, false).unwrap().to_frame();
        *frame.last_mut().unwrap() ^= 1;
        assert_eq!(decode_frame(&frame, 7).err(), Some(JobRefused::Checksum));
    }

    /// Answers the one number it is sent with the next one; 0 when that worked.
    fn echo_next(mut c: crate::Connection) -> i32 {
        let Ok(n) = c.recv_timeout::<u32>(std::time::Duration::from_secs(5)) else { return 1 };
        if c.send(&(n + 1)).is_ok() { 0 } else { 2 }
    }

    fn two_ends(_: (crate::Connection, crate::Connection)) -> i32 {
        0
    }

    /// A spawn child takes the descriptors of its arguments at the numbers its verified frame
    /// names: a number that is a standard stream, one of the marker's, named twice, closed, or
    /// not a socket (a pipe the child holds for something else) is refused, never owned.
    #[test]
    fn a_spawn_frame_cannot_hand_the_child_a_descriptor_it_was_not_given() {
        use std::os::fd::{AsRawFd, IntoRawFd};
        let (mut mine, theirs) = crate::pipe(true).unwrap();
        let job = Job::new(echo_next, &theirs, "conn", 5, false).unwrap();
        let adopt = |at: &[RawFd], marker: &[RawFd]| {
            decode_frame(&job.to_frame_placing(at), 5).unwrap().adopt_inherited(marker)
        };
        let (pipe_r, _pipe_w) = crate::sys::proc::pipe().unwrap();
        let closed = job.fds()[0].try_clone_to_owned().unwrap().into_raw_fd();
        // SAFETY: `closed` was just made by this test and is owned by nothing else.
        drop(unsafe { OwnedFd::from_raw_fd(closed) });
        let socket = job.fds()[0].as_raw_fd();
        for (at, marker) in
            [(0, -1), (2, -1), (pipe_r.as_raw_fd(), -1), (closed, -1), (socket, socket), (-1, -1)]
        {
            let r = adopt(&[at], &[marker]);
            assert!(r.is_err(), "descriptor {at} (marker {marker}) was adopted");
        }
        let (c, d) = crate::pipe(true).unwrap();
        let two = Job::new(two_ends, &(c, d), "two", 5, false).unwrap();
        let n = two.fds()[0].as_raw_fd();
        let r = decode_frame(&two.to_frame_placing(&[n, n]), 5).unwrap().adopt_inherited(&[]);
        assert!(r.is_err(), "one descriptor adopted as two ends");
        // What a real spawn child gets: a fresh descriptor of the end, at the number named.
        let given = job.fds()[0].try_clone_to_owned().unwrap().into_raw_fd();
        let v = adopt(&[given], &[pipe_r.as_raw_fd()]).unwrap();
        mine.send(&41u32).unwrap();
        assert_eq!(v.call(), 0);
        assert_eq!(mine.recv_timeout::<u32>(std::time::Duration::from_secs(5)).unwrap(), 42);
    }

    #[test]
    fn a_frame_announcing_more_than_the_bound_is_refused_before_any_allocation() {
        assert_eq!(frame_len((MAX_JOB_BYTES).to_le_bytes()), Ok(MAX_JOB_BYTES as usize));
        for absurd in [MAX_JOB_BYTES + 1, u64::MAX, 1 << 63] {
            let (r, peak) = meter::peak_during(|| frame_len(absurd.to_le_bytes()));
            assert_eq!(r, Err(JobRefused::TooLong { announced: absurd }));
            assert_eq!(peak, 0);
        }
        let e = decode_frame(&u64::MAX.to_le_bytes(), 1).err().unwrap();
        assert!(e.to_string().contains("more than"), "{e}");
        assert_eq!(decode_frame(&[1, 2, 3], 1).err(), Some(JobRefused::NoPrefix { got: 3 }));
    }

    /// Counts what the calling thread allocates while armed: the global allocator of this test
    /// binary (the only one: a binary has one), delegating to the system's.
    pub(crate) mod meter {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        struct Meter;

        thread_local! {
            static ARMED: Cell<bool> = const { Cell::new(false) };
            static NOW: Cell<isize> = const { Cell::new(0) };
            static PEAK: Cell<isize> = const { Cell::new(0) };
        }

        fn count(delta: isize) {
            // `try_with`: never panics, even while the thread is being torn down.
            let _ = ARMED.try_with(|armed| {
                if armed.get() {
                    let now = NOW.get() + delta;
                    NOW.set(now);
                    PEAK.set(PEAK.get().max(now));
                }
            });
        }

        // SAFETY: every call is forwarded unchanged to `System`, which upholds GlobalAlloc's
        // contract; the bookkeeping touches only const-initialised thread-locals.
        unsafe impl GlobalAlloc for Meter {
            unsafe fn alloc(&self, l: Layout) -> *mut u8 {
                count(l.size() as isize);
                // SAFETY: the caller's layout is passed on as given.
                unsafe { System.alloc(l) }
            }
            unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
                count(l.size() as isize);
                // SAFETY: as for alloc (the system's zeroed pages stay untouched until used).
                unsafe { System.alloc_zeroed(l) }
            }
            unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
                count(-(l.size() as isize));
                // SAFETY: `p` came from `System` with this layout (every allocation here does).
                unsafe { System.dealloc(p, l) }
            }
            unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
                count(new as isize - l.size() as isize);
                // SAFETY: as for dealloc; `new` is the caller's valid new size.
                unsafe { System.realloc(p, l, new) }
            }
        }

        #[global_allocator]
        static GLOBAL: Meter = Meter;

        /// Runs `f`; returns its result and the most bytes this thread held allocated at once
        /// during it, beyond what it held before.
        pub(crate) fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
            NOW.set(0);
            PEAK.set(0);
            ARMED.set(true);
            let r = f();
            ARMED.set(false);
            (r, PEAK.get().max(0) as usize)
        }
    }

    // ---- property tests: job frames another process wrote, random and mutated ----

    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// Runs `test` on `cases` values of `strategy`; a panic fails the test with the smallest
    /// input proptest shrinks it to. No regression files: they would land in the source tree.
    pub(crate) fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value)) {
        let mut runner =
            TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
        if let Err(e) = runner.run(&strategy, |v| {
            test(v);
            Ok(())
        }) {
            panic!("{e}");
        }
    }

    /// One change to a frame's bytes (positions wrap around its length).
    #[derive(Debug, Clone)]
    pub(crate) enum Mutation {
        Flip(usize, u8),
        Set(usize, u8),
        Insert(usize, Vec<u8>),
        Delete(usize, usize),
        Truncate(usize),
        Append(Vec<u8>),
        /// Replace the length prefix.
        Prefix(u64),
    }

    pub(crate) fn mutation() -> impl Strategy<Value = Mutation> {
        let absurd = prop_oneof![
            Just(0),
            Just(MAX_JOB_BYTES),
            Just(MAX_JOB_BYTES + 1),
            Just(u64::MAX),
            Just(1 << 63),
            any::<u64>(),
            0u64..4096,
        ];
        prop_oneof![
            3 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
            2 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Set(at, b)),
            1 => (any::<usize>(), vec(any::<u8>(), 1..16))
                .prop_map(|(at, b)| Mutation::Insert(at, b)),
            1 => (any::<usize>(), 1usize..16).prop_map(|(at, n)| Mutation::Delete(at, n)),
            1 => any::<usize>().prop_map(Mutation::Truncate),
            1 => vec(any::<u8>(), 1..16).prop_map(Mutation::Append),
            1 => absurd.prop_map(Mutation::Prefix),
        ]
    }

    pub(crate) fn apply(frame: &mut Vec<u8>, m: &Mutation) {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match m {
            Mutation::Flip(i, bit) if !frame.is_empty() => {
                let i = at(*i, frame.len());
                frame[i] ^= 1 << bit;
            }
            Mutation::Set(i, b) if !frame.is_empty() => {
                let i = at(*i, frame.len());
                frame[i] = *b;
            }
            Mutation::Insert(i, b) => {
                let i = at(*i, frame.len() + 1);
                frame.splice(i..i, b.iter().copied());
            }
            Mutation::Delete(i, n) if !frame.is_empty() => {
                let i = at(*i, frame.len());
                frame.drain(i..(i + n).min(frame.len()));
            }
            Mutation::Truncate(n) => frame.truncate(at(*n, frame.len() + 1)),
            Mutation::Append(b) => frame.extend_from_slice(b),
            Mutation::Prefix(len) if frame.len() >= FRAME_PREFIX => {
                frame[..FRAME_PREFIX].copy_from_slice(&len.to_le_bytes())
            }
            _ => {}
        }
    }

    /// Valid frames of a few shapes: small, with awkward floats and maps, and with 64 KiB of
    /// arguments.
    fn valid_frames() -> Vec<Vec<u8>> {
        use std::collections::BTreeMap;
        let map: BTreeMap<(u32, i8), Vec<u8>> =
            [((1, -1), vec![]), ((u32::MAX, 0), vec![7; 9])].into();
        vec![
            frame_of(&(40i32, 2i32)),
            frame_of(&()),
            frame_of(&(vec![f64::NAN, -0.0, f64::INFINITY], map, String::new())),
            frame_of(&vec![0xa5u8; 64 << 10]),
        ]
    }

    /// What the decoder may allocate beyond the frame's own length: its messages.
    const SLACK: usize = 4096;

    /// Decodes under the meter; checks the allocation bound, and that an accepted job is exactly
    /// what `original` (if any) carried.
    pub(crate) fn decode_checked(
        frame: &[u8],
        original: Option<&[u8]>,
    ) -> std::result::Result<Verified, JobRefused> {
        let (r, peak) = meter::peak_during(|| decode_frame(frame, SECRET));
        assert!(
            peak <= frame.len() + SLACK,
            "{peak} bytes allocated for a {}-byte frame",
            frame.len()
        );
        if let (Ok(_), Some(o)) = (&r, original) {
            assert_eq!(frame, o, "a mutated frame was accepted");
        }
        r
    }

    #[test]
    fn mutated_frames_are_refused_never_run() {
        let frames = valid_frames();
        let strategy = (0..frames.len(), vec(mutation(), 1..6));
        run(3000, strategy, |(k, ms)| {
            let mut f = frames[k].clone();
            for m in &ms {
                apply(&mut f, m);
            }
            match decode_checked(&f, Some(&frames[k])) {
                Ok(v) => assert_eq!(v.call(), 0, "the unchanged job runs"),
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        });
    }

    #[test]
    fn random_frames_are_refused() {
        let prefixed = vec(any::<u8>(), 0..512).prop_map(|b| {
            // A correct length and secret, then random bytes.
            let mut f = ((b.len() + 8) as u64).to_le_bytes().to_vec();
            f.extend_from_slice(&SECRET.to_le_bytes());
            f.extend_from_slice(&b);
            f
        });
        let strategy = prop_oneof![vec(any::<u8>(), 0..512), prefixed];
        run(3000, strategy, |f| {
            assert!(decode_checked(&f, None).is_err(), "random bytes were accepted: {f:?}");
        });
    }

    #[test]
    fn garbage_behind_a_valid_checksum_decodes_or_fails_cleanly() {
        // A body this build would checksum itself: only the decoder of the fields stands
        // between it and a job. Whatever comes out must fit in the frame.
        let build = postcard::to_stdvec(build_fingerprint().as_str()).unwrap();
        let wire = frame_of(&(1u8, 2u8))[FRAME_PREFIX + FRAME_HEADER + build.len()..].to_vec();
        let fields = prop_oneof![
            vec(any::<u8>(), 0..256),
            vec(mutation(), 1..6).prop_map(move |ms| {
                let mut w = wire.clone();
                for m in &ms {
                    apply(&mut w, m);
                }
                w
            }),
        ];
        run(3000, fields, |fields| {
            let body = [&build[..], &fields].concat();
            let mut f = ((body.len() + FRAME_HEADER) as u64).to_le_bytes().to_vec();
            f.extend_from_slice(&SECRET.to_le_bytes());
            f.extend_from_slice(&checksum(SECRET, &body).to_le_bytes());
            f.extend_from_slice(&body);
            if let Ok(v) = decode_checked(&f, None) {
                assert!(v.0.args.len() + v.0.name.len() <= f.len());
                assert_eq!(v.0.build, build_fingerprint());
            }
        });
    }
}
