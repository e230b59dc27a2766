//! The forkserver: a small single-threaded copy of the program that forks workers on request.
//!
//! It is started, on first use, by re-executing the program with a marker (see `boot.rs`), so it
//! is clean (one thread, no locks held, none of the caller's state) even when the caller already
//! runs many threads, as every `cargo test` binary does. Each worker it forks is therefore a
//! safe fork of a single-threaded process.
//!
//! Protocol, over a Unix stream socket pair: the client sends a job frame (`entry.rs`: an 8-byte
//! length, then the secret, a checksum and the postcard body) with two descriptors attached to
//! its first bytes (the write ends of the worker's status pipe and panic-report pipe); the server
//! reads it whole (within [`REQUEST_TIMEOUT`]), decodes it with the same pure decoder as a spawn
//! child, and answers with 4 bytes: the worker's pid, minus an errno when it could not fork, or
//! [`JOB_REFUSED`] when the frame failed verification (it lacks the server's secret, made per
//! server at launch, comes from another build, or does not match its checksum).
//! When a worker ends, the server reaps it and writes how it ended (8 bytes) to its status pipe,
//! which is how the client joins it: workers are the server's children, not the client's.
//!
//! Deaths: the server exits once the client's socket is closed (the client shut it down, or died:
//! the kernel closes a dead process's descriptors) and all its workers have ended. It also arms
//! the alive pipe, so a SIGKILLed client takes it down at once. Workers arm both
//! `PR_SET_PDEATHSIG` (safe here: the server has one thread, so "the thread that forked" is the
//! server itself) and the client's alive pipe.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::alive;
use super::boot::{self, Marker, Mode};
use super::child;
use super::entry::{self, FRAME_PREFIX, Job};
use super::handle;
use super::spawn;
use super::status::ExitStatus;
use crate::error::{Error, Result};
use crate::sys::{self, proc::Exit};

/// A worker the server started, seen from the client.
pub(crate) struct Started {
    pub(crate) pid: u32,
    /// Readable once the worker ended: 8 bytes of status, or EOF if the server died first.
    pub(crate) status: File,
    pub(crate) report: File,
}

struct Client {
    owner: u32,
    server_pid: u32,
    /// The server's secret: every job sent to it must carry it.
    secret: u64,
    sock: UnixStream,
}

static CLIENT: Mutex<Option<Client>> = Mutex::new(None);

/// The raw descriptor of the current client's socket (-1: none), kept beside [`CLIENT`] so that
/// a forked child can close its copy without taking the mutex, which another thread of the
/// parent may have held at the fork.
static CLIENT_FD: AtomicI32 = AtomicI32::new(-1);

/// The pid of a forked child in which [`CLIENT`]'s mutex was held at the fork (0: none): there
/// the mutex stays locked forever, so the forkserver API refuses instead of blocking on it.
static CLIENT_STUCK_IN: AtomicU32 = AtomicU32::new(0);

/// The reply of a server that refused a job because it failed verification.
const JOB_REFUSED: i32 = i32::MIN;

/// Refuses in a forked child whose copy of [`CLIENT`]'s mutex is held by a thread that was not
/// copied.
fn check_not_stuck() -> Result<()> {
    if CLIENT_STUCK_IN.load(Ordering::Relaxed) == sys::proc::getpid() {
        return Err(Error::ForkServer {
            reason: "cannot be used from this forked child: another thread of its parent was \
                     talking to the forkserver at the fork, so the client's lock stays held here; \
                     start children from the parent, or fork only while no thread starts \
                     forkserver children"
                .into(),
        });
    }
    Ok(())
}

/// Takes the client out of `slot`, forgetting its descriptor number in [`CLIENT_FD`].
fn take_client(slot: &mut Option<Client>) -> Option<Client> {
    let c = slot.take();
    if c.is_some() {
        CLIENT_FD.store(-1, Ordering::Relaxed);
    }
    c
}

/// How long a request may wait on the server before it counts as hung.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks the forkserver (started on first use) to fork a worker running `job` (whose secret is
/// set to the server's here).
pub(crate) fn start(mut job: Job) -> Result<Started> {
    std::hint::black_box(&boot::BOOT);
    check_not_stuck()?;
    // The server is our child (and exits, to be reaped, when replaced or shut down): an ignored
    // SIGCHLD would let the kernel reap it behind our back. Reset before it is launched, it also
    // reaches the server itself, which reaps its workers (and resets it again, see `serve`).
    sys::signal::keep_children_waitable().map_err(Error::io("sigaction(SIGCHLD)"))?;
    let mut g = CLIENT.lock().unwrap_or_else(|p| p.into_inner());
    let me = sys::proc::getpid();
    if g.as_ref().is_some_and(|c| c.owner != me) {
        // Inherited through fork from a parent: its server is not ours to use (a forked child
        // already closed the descriptor, see `forget_in_forked_child`).
        std::mem::forget(take_client(&mut g));
    }
    // A server that died since the last request shows as a failed send: nothing reached it, so
    // no worker was forked, and it is safe to launch a new server and send once more. A failure
    // after the request was sent is not retried (the worker may exist).
    for attempt in 0..2 {
        if g.is_none() {
            let c = launch()?;
            CLIENT_FD.store(c.sock.as_raw_fd(), Ordering::Relaxed);
            *g = Some(c);
        }
        let c = g.as_mut().expect("set above");
        job.secret = c.secret;
        let failure = match request(&mut c.sock, &job) {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(code)) => return Err(refusal(c.server_pid, code)),
            // Nothing reached the server (a pipe for the worker could not be made here): the
            // server is fine and stays.
            Err(Failure::Local(e)) => return Err(e),
            Err(f) => f,
        };
        let dead = take_client(&mut g).expect("set above");
        drop(dead.sock);
        // Dead already (a closed socket), or hung past the timeouts: either way it goes.
        let _ = sys::proc::kill(dead.server_pid, libc::SIGKILL);
        let how = match sys::proc::waitpid(dead.server_pid) {
            Ok(exit) => ExitStatus { exit, panic: None }.to_string(),
            Err(_) => "is gone".to_string(),
        };
        match failure {
            Failure::Send(_) if attempt == 0 => continue,
            Failure::Local(e) => return Err(e),
            Failure::Send(e) | Failure::Reply(e) => {
                return Err(Error::ForkServer {
                    reason: format!("(pid {}) stopped answering ({e}) and {how}", dead.server_pid),
                });
            }
        }
    }
    unreachable!("the second attempt returns")
}

/// The error for a server's negative reply `code`.
fn refusal(server_pid: u32, code: i32) -> Error {
    if code == JOB_REFUSED {
        Error::ForkServer {
            reason: format!(
                "(pid {server_pid}) refused the job: it did not pass verification (the server's \
                 secret, or the same build of the program; see the server's message on stderr)"
            ),
        }
    } else {
        Error::io("fork (in the forkserver)")(std::io::Error::from_raw_os_error(-code))
    }
}

/// Where a request failed.
enum Failure {
    /// In this process, before anything was sent (making the worker's pipes): the server is
    /// not at fault.
    Local(Error),
    /// Before the whole request was sent: no worker exists.
    Send(std::io::Error),
    /// Waiting for the reply: a worker may exist.
    Reply(std::io::Error),
}

fn launch() -> Result<Client> {
    let (ours, theirs) = UnixStream::pair().map_err(Error::io("socketpair"))?;
    let alive = alive::read_end()?;
    let secret = sys::proc::random_u64();
    // posix_spawn, like a spawn child: launching the server costs the same however large this
    // process is (a fork would copy its page tables first).
    let server_pid = spawn::reexec(
        Mode::ForkServer,
        [theirs.as_raw_fd(), -1, alive],
        secret,
        "starting the forkserver (/proc/self/exe)",
    )?;
    drop(theirs);
    // A server that takes this long to read a request or to answer is hung: a request then
    // fails (and the server is replaced) instead of blocking its caller forever.
    ours.set_read_timeout(Some(REQUEST_TIMEOUT)).map_err(Error::io("setsockopt"))?;
    ours.set_write_timeout(Some(REQUEST_TIMEOUT)).map_err(Error::io("setsockopt"))?;
    Ok(Client { owner: sys::proc::getpid(), server_pid, secret, sock: ours })
}

/// One request; `Ok(Err(code))` when the server could not fork (minus an errno) or refused the
/// job ([`JOB_REFUSED`]).
fn request(
    sock: &mut UnixStream,
    job: &Job,
) -> std::result::Result<std::result::Result<Started, i32>, Failure> {
    let local = |e| Failure::Local(Error::io("pipe (for a forkserver worker)")(e));
    let (status_r, status_w) = sys::proc::pipe().map_err(local)?;
    let (report_r, report_w) = sys::proc::pipe().map_err(local)?;
    let frame = job.to_frame();
    let send = |sock: &mut UnixStream| -> std::io::Result<()> {
        let fds = [status_w.as_fd(), report_w.as_fd()];
        let sent = sys::fdpass::send_with_fds(sock.as_fd(), &frame[..FRAME_PREFIX], &fds)?;
        sys::fdpass::send_all(sock.as_fd(), &frame[sent..])
    };
    send(sock).map_err(Failure::Send)?;
    drop((status_w, report_w));
    let mut reply = [0u8; 4];
    sock.read_exact(&mut reply).map_err(Failure::Reply)?;
    let r = i32::from_le_bytes(reply);
    Ok(if r > 0 {
        Ok(Started { pid: r as u32, status: status_r, report: report_r })
    } else {
        Err(r)
    })
}

/// Encodes how a worker ended for its status pipe.
fn encode(exit: Exit) -> [u8; 8] {
    let (tag, v) = match exit {
        Exit::Code(c) => (0i32, c),
        Exit::Signal(s) => (1, s),
    };
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&tag.to_le_bytes());
    b[4..].copy_from_slice(&v.to_le_bytes());
    b
}

/// Decodes a status written by the server.
pub(crate) fn decode(b: [u8; 8]) -> Exit {
    let tag = i32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
    let v = i32::from_le_bytes(b[4..].try_into().expect("4 bytes"));
    if tag == 0 { Exit::Code(v) } else { Exit::Signal(v) }
}

/// Stops this process's forkserver, if it runs: closes the connection and waits until the
/// server has exited, which it does once every worker it started has ended. The next
/// forkserver start launches a new one.
///
/// Call it before the program ends only if you want the server gone early (a test harness that
/// checks for leftover children, say); otherwise it ends by itself with the program.
///
/// # Errors
///
/// [`Error::ForkServer`] when the server ended badly, or when called in a child forked while
/// another thread of its parent was talking to the forkserver (that child cannot use it);
/// [`Error::Io`] when waiting for it fails.
///
/// ```no_run
/// use shmpool::{StartMethod, get_context};
/// fn work(x: u32) -> i32 { x as i32 }
/// let mut p = get_context(StartMethod::ForkServer).start(work, 3)?;
/// assert_eq!(p.join()?.exitcode(), 3);
/// shmpool::shutdown_forkserver()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn shutdown_forkserver() -> Result<()> {
    shutdown(None)
}

/// Like [`shutdown_forkserver`], but waits at most `timeout` for the server's workers to end.
/// On [`Error::Timeout`] the server is gone from this process's point of view (the next start
/// launches a new one); it exits, and is reaped in the background, once its last worker ends.
///
/// ```no_run
/// use std::time::Duration;
/// shmpool::shutdown_forkserver_timeout(Duration::from_secs(5))?;
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn shutdown_forkserver_timeout(timeout: Duration) -> Result<()> {
    shutdown(Some(timeout))
}

fn shutdown(timeout: Option<Duration>) -> Result<()> {
    check_not_stuck()?;
    let c = take_client(&mut CLIENT.lock().unwrap_or_else(|p| p.into_inner()));
    let Some(c) = c else { return Ok(()) };
    if c.owner != sys::proc::getpid() {
        // A forked child's copy: its descriptor was closed already.
        std::mem::forget(c);
        return Ok(());
    }
    // The server exits once its socket closes: it must stay a zombie for us to reap.
    sys::signal::keep_children_waitable().map_err(Error::io("sigaction(SIGCHLD)"))?;
    drop(c.sock);
    let exit = match timeout {
        None => sys::proc::waitpid(c.server_pid).map_err(Error::io("waitpid (forkserver)"))?,
        Some(after) => {
            let deadline = Instant::now() + after;
            let mut nap = Duration::from_micros(50);
            loop {
                if let Some(exit) = sys::proc::try_waitpid(c.server_pid)
                    .map_err(Error::io("waitpid (forkserver)"))?
                {
                    break exit;
                }
                let now = Instant::now();
                if now >= deadline {
                    handle::detach(c.server_pid);
                    return Err(Error::Timeout {
                        what: "forkserver shutdown (its workers still run)",
                        after,
                    });
                }
                std::thread::sleep(nap.min(deadline - now));
                nap = (nap * 2).min(Duration::from_millis(5));
            }
        }
    };
    match exit {
        Exit::Code(0) => Ok(()),
        other => Err(Error::ForkServer {
            reason: format!(
                "(pid {}) ended badly: {}",
                c.server_pid,
                ExitStatus { exit: other, panic: None }
            ),
        }),
    }
}

/// In a child made by `fork`: close the parent's connection to its forkserver, so the child never
/// talks on it and never keeps the parent's server waiting for an EOF. Takes no blocking lock:
/// the descriptor is closed by its number, even when another thread of the parent held the
/// client's mutex at the fork (the forkserver API then refuses in this child).
pub(crate) fn forget_in_forked_child() {
    let fd = CLIENT_FD.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: `fd` is this child's copy of the parent's client socket, owned by the `Client`
        // in `CLIENT`, which this child never uses or drops: it is forgotten below, or stays
        // behind a mutex this child refuses to take.
        unsafe { libc::close(fd) };
    }
    match CLIENT.try_lock() {
        Ok(mut g) => std::mem::forget(g.take()),
        Err(std::sync::TryLockError::Poisoned(p)) => std::mem::forget(p.into_inner().take()),
        Err(std::sync::TryLockError::WouldBlock) => {
            CLIENT_STUCK_IN.store(sys::proc::getpid(), Ordering::Relaxed)
        }
    }
}

/// The server's main loop (never returns).
pub(crate) fn serve(m: Marker) -> ! {
    let server_pid = sys::proc::getpid();
    match sys::proc::thread_count() {
        Ok(1) => {}
        Ok(n) => boot::fail(&format!(
            "the forkserver must be single-threaded, and {n} threads run before main"
        )),
        Err(e) => boot::fail(&format!("its threads cannot be counted ({e})")),
    }
    if !alive::guard(m.alive) {
        sys::proc::exit_now(0);
    }
    // SIGCHLD ignored (a disposition that survives exec) would make the kernel reap workers
    // at once: `peek_dead_child` would find none and no worker's status would ever be written.
    match sys::signal::keep_children_waitable() {
        Ok(_) => {}
        Err(e) => boot::fail(&format!("SIGCHLD cannot be made waitable ({e})")),
    }
    let mut sock = UnixStream::from(boot::own(m.fd_a));
    // A request announced but not sent in full (the client stopped mid-send) fails after this
    // long instead of blocking the server; the client gives up on a reply after as long.
    if let Err(e) = sock.set_read_timeout(Some(REQUEST_TIMEOUT)) {
        boot::fail(&format!("its socket's timeout cannot be set ({e})"));
    }
    let alive_fd = boot::own(m.alive);
    // Workers inherit both through fork; neither may leak into what a worker execs.
    let _ = sys::fdpass::set_cloexec(sock.as_raw_fd());
    let _ = sys::fdpass::set_cloexec(alive_fd.as_raw_fd());
    let mask = sys::signal::block_sigchld()
        .unwrap_or_else(|e| boot::fail(&format!("SIGCHLD cannot be blocked ({e})")));
    let sigchld =
        sys::signal::sigchld_fd().unwrap_or_else(|e| boot::fail(&format!("signalfd failed ({e})")));
    // Installed here, once and single-threaded; each worker only flags itself (see `child.rs`).
    child::install_panic_hook();
    let mut workers: HashMap<u32, File> = HashMap::new();
    let mut open = true;
    loop {
        if !open && workers.is_empty() {
            sys::proc::exit_now(0);
        }
        let ready = if open {
            sys::fdpass::wait_any(&[sigchld.as_fd(), sock.as_fd()])
        } else {
            sys::fdpass::wait_any(&[sigchld.as_fd()])
        }
        .unwrap_or_else(|e| boot::fail(&format!("poll failed ({e})")));
        if ready[0] {
            sys::signal::drain(&sigchld);
            // The status is written before the worker is reaped: while it is unreadable, the
            // worker's pid is still its own (see `Process::signal`).
            while let Ok(Some((pid, exit))) = sys::signal::peek_dead_child() {
                if let Some(mut f) = workers.remove(&pid) {
                    let _ = f.write_all(&encode(exit));
                }
                let _ = sys::proc::waitpid(pid);
            }
        }
        if open && ready.get(1).copied().unwrap_or(false) {
            match read_request(&mut sock) {
                Ok(None) => open = false,
                Ok(Some((frame, status_w, report_w))) => {
                    let verified = entry::decode_frame(&frame, m.secret);
                    drop(frame);
                    let reply = match verified {
                        Err(reason) => {
                            eprintln!("shmpool forkserver: refusing a job: {reason}");
                            JOB_REFUSED
                        }
                        // SAFETY: this process is single-threaded (checked at start), so the
                        // worker may do anything after the fork.
                        Ok(job) => match unsafe { sys::proc::fork() } {
                            Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
                            Ok(sys::proc::Forked::Parent(pid)) => {
                                workers.insert(pid, File::from(status_w));
                                pid as i32
                            }
                            Ok(sys::proc::Forked::Child) => {
                                drop(sock);
                                drop(sigchld);
                                drop(status_w);
                                workers.clear();
                                sys::signal::restore_mask(&mask);
                                if !alive::guard(alive_fd.as_raw_fd()) {
                                    sys::proc::exit_now(child::PANIC_EXIT_CODE + 1);
                                }
                                drop(alive_fd);
                                child::run(server_pid, File::from(report_w), || job.call())
                            }
                        },
                    };
                    if sock.write_all(&reply.to_le_bytes()).is_err() {
                        open = false;
                    }
                }
                Err(e) => {
                    eprintln!("shmpool forkserver: dropping a malformed request and closing ({e})");
                    open = false;
                }
            }
            if !open {
                // Close now, so a client waiting for a reply sees EOF instead of hanging.
                let _ = sock.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// A request: the job frame, undecoded, and the worker's status and report pipes.
type Request = (Vec<u8>, OwnedFd, OwnedFd);

/// Reads one request: the frame's length prefix with the two descriptors attached, then exactly
/// the announced length, once `entry::frame_len` has bounded it. `Ok(None)` at end of file (the
/// client is gone). Decoding is separate: `entry::decode_frame`.
fn read_request(sock: &mut UnixStream) -> std::io::Result<Option<Request>> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut prefix = [0u8; FRAME_PREFIX];
    let (n, fds) = sys::fdpass::recv_with_fds(sock.as_fd(), &mut prefix)?;
    if n == 0 {
        return Ok(None);
    }
    sock.read_exact(&mut prefix[n..])?;
    let [status_w, report_w]: [OwnedFd; 2] =
        fds.try_into().map_err(|_| bad("expected two descriptors".into()))?;
    let len = entry::frame_len(prefix).map_err(|e| bad(e.to_string()))?;
    // Grown as the bytes arrive (read_to_end doubles its buffer), not allocated up front: a
    // frame that announces a gigabyte and sends ten bytes costs little.
    let mut frame = Vec::with_capacity(FRAME_PREFIX + len.min(4096));
    frame.extend_from_slice(&prefix);
    let got = (&mut *sock).take(len as u64).read_to_end(&mut frame)?;
    if got < len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the client closed after {got} of the {len} bytes of its job"),
        ));
    }
    Ok(Some((frame, status_w, report_w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_job_and_a_failed_fork_read_differently() {
        let e = refusal(42, JOB_REFUSED);
        assert!(
            matches!(&e, Error::ForkServer { reason } if reason.contains("refused the job")),
            "{e}"
        );
        let e = refusal(42, -libc::EAGAIN);
        assert!(matches!(&e, Error::Io { op, .. } if op.contains("fork")), "{e}");
        assert!(!e.to_string().contains("refused"), "{e}");
    }

    /// Sends `frame` the way a client does (the first bytes carry `fds` descriptors), closes the
    /// client's end unless `keep`, and reads one request the way the server does.
    fn request_through_socket(
        frame: &[u8],
        fds: usize,
        keep: bool,
    ) -> std::io::Result<Option<Request>> {
        let (client, mut server) = UnixStream::pair()?;
        // The server's guard against a request sent in part (see `serve`), shortened.
        server.set_read_timeout(Some(Duration::from_millis(50)))?;
        let pipes = [sys::proc::pipe()?, sys::proc::pipe()?];
        let all = [pipes[0].1.as_fd(), pipes[1].1.as_fd(), pipes[0].0.as_fd()];
        if !frame.is_empty() {
            let first = &frame[..frame.len().min(FRAME_PREFIX)];
            let sent = sys::fdpass::send_with_fds(client.as_fd(), first, &all[..fds])?;
            sys::fdpass::send_all(client.as_fd(), &frame[sent..])?;
        }
        let client = keep.then_some(client);
        let r = read_request(&mut server);
        drop(client);
        r
    }

    /// The server's whole intake, socket to decoder, on mutated and random frames and wrong
    /// descriptor counts: a typed refusal, never a panic or a hang, and only the unchanged
    /// frame with its two descriptors is accepted.
    #[test]
    fn mutated_requests_are_refused() {
        use proptest::prelude::*;

        use crate::process::entry::tests::{
            Mutation, SECRET, apply, decode_checked, meter, mutation, run,
        };
        fn eight(_: Vec<String>) -> i32 {
            8
        }
        let args = vec![String::new(), "forkserver".into()];
        let valid = Job::new(eight, &args, "served", SECRET, true).unwrap().to_frame();
        let strategy = (
            prop_oneof![
                proptest::collection::vec(mutation(), 0..4),
                proptest::collection::vec(any::<u8>(), 0..64)
                    .prop_map(|b| vec![Mutation::Truncate(0), Mutation::Append(b)]),
            ],
            prop_oneof![4 => Just(2usize), 1 => 0usize..=3],
        );
        run(200, strategy, |(ms, fds): (Vec<Mutation>, usize)| {
            let mut f = valid.clone();
            for m in &ms {
                apply(&mut f, m);
            }
            let (r, peak) = meter::peak_during(|| request_through_socket(&f, fds, false));
            assert!(peak <= 2 * f.len() + 2 * boot::READ_CHUNK, "{peak} bytes to read {}", f.len());
            match r {
                Ok(None) => assert!(f.is_empty()),
                Ok(Some((read, _, _))) => {
                    // A stream: what follows the announced length waits for the next request.
                    assert!(fds == 2 && f.starts_with(&read), "{read:?} read from {f:?}");
                    if let Ok(v) = decode_checked(&read, Some(&valid)) {
                        assert_eq!(v.call(), 8);
                    }
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        });
    }

    #[test]
    fn a_request_sent_in_part_times_out_instead_of_hanging() {
        fn nine(_: ()) -> i32 {
            9
        }
        let valid = Job::new(nine, &(), "x", 1, true).unwrap().to_frame();
        let t = Instant::now();
        for cut in [3, FRAME_PREFIX, valid.len() - 1] {
            let e = request_through_socket(&valid[..cut], 2, true).err().unwrap();
            assert!(matches!(e.kind(), std::io::ErrorKind::WouldBlock), "{e}");
        }
        assert!(t.elapsed() < Duration::from_secs(5));
        let absurd = [&u64::MAX.to_le_bytes()[..], &[0; 8]].concat();
        let e = request_through_socket(&absurd, 2, true).err().unwrap();
        assert!(e.to_string().contains("more than"), "{e}");
        // The most a frame may announce, and ten bytes sent: memory follows what arrived.
        let most = [&entry::MAX_JOB_BYTES.to_le_bytes()[..], &[0; 10]].concat();
        let (r, peak) =
            entry::tests::meter::peak_during(|| request_through_socket(&most, 2, false));
        assert!(r.err().unwrap().to_string().contains("closed after 10 of the"));
        assert!(peak < 4 * boot::READ_CHUNK, "{peak} bytes allocated for 18 received");
        let (read, ..) = request_through_socket(&valid, 2, true).unwrap().unwrap();
        assert_eq!(entry::decode_frame(&read, 1).ok().map(|v| v.call()), Some(9));
    }
}
