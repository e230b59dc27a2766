//! The forkserver start method, client side: launch the server on first use (re-executing the
//! program, `reexec.rs`), send it a request per worker (`request.rs`) and hand back the worker's
//! pid and pipes; shut it down. A parent-side start method: it returns a [`Started`], never a
//! `Process`. The server loop is `server.rs`.
//!
//! The server is clean (one thread, no locks held, none of the caller's state) even when the
//! caller already runs many threads, as every `cargo test` binary does: each worker it forks is
//! a safe fork of a single-threaded process. Workers are the server's children, not the
//! client's: the server writes how each ended to its status pipe, which is how the client joins
//! it.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::Duration;

use super::alive;
use super::entry::Job;
use super::marker::Mode;
use super::reaper;
use super::reexec::reexec;
use super::request::{self, JOB_REFUSED, REQUEST_TIMEOUT};
use super::start_error::StartError;
use super::status::ExitStatus;
use super::wait;
use crate::error::{Error, Result};
use crate::sync::wait::deadline_after;
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

/// Refuses in a forked child whose copy of [`CLIENT`]'s mutex is held by a thread that was not
/// copied.
fn check_not_stuck() -> Result<(), StartError> {
    if CLIENT_STUCK_IN.load(Ordering::Relaxed) == sys::proc::getpid() {
        return Err(StartError::ForkServer {
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

/// Asks the forkserver (started on first use) to fork a worker running `job` (whose secret is
/// set to the server's here).
pub(crate) fn start(mut job: Job) -> Result<Started, StartError> {
    check_not_stuck()?;
    // The server is our child (and exits, to be reaped, when replaced or shut down): an ignored
    // SIGCHLD would let the kernel reap it behind our back. Reset before it is launched, it also
    // reaches the server itself, which reaps its workers (and resets it again, see `serve`).
    sys::signal::keep_children_waitable().map_err(StartError::io("sigaction(SIGCHLD)"))?;
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
                return Err(StartError::ForkServer {
                    reason: format!("(pid {}) stopped answering ({e}) and {how}", dead.server_pid),
                });
            }
        }
    }
    unreachable!("the second attempt returns")
}

/// The error for a server's negative reply `code`.
fn refusal(server_pid: u32, code: i32) -> StartError {
    if code == JOB_REFUSED {
        StartError::ForkServer {
            reason: format!(
                "(pid {server_pid}) refused the job: it did not pass verification (the server's \
                 secret, or the same build of the program; see the server's message on stderr)"
            ),
        }
    } else {
        StartError::io("fork (in the forkserver)")(std::io::Error::from_raw_os_error(-code))
    }
}

/// Where a request failed.
enum Failure {
    /// In this process, before anything was sent (making the worker's pipes): the server is
    /// not at fault.
    Local(StartError),
    /// Before the whole request was sent: no worker exists.
    Send(std::io::Error),
    /// Waiting for the reply: a worker may exist.
    Reply(std::io::Error),
}

fn launch() -> Result<Client, StartError> {
    let (ours, theirs) = UnixStream::pair().map_err(StartError::io("socketpair"))?;
    let alive = alive::read_end()?;
    let secret = sys::proc::random_u64();
    // posix_spawn, like a spawn child: launching the server costs the same however large this
    // process is (a fork would copy its page tables first).
    let server_pid = reexec(
        Mode::ForkServer,
        [theirs.as_raw_fd(), -1, alive],
        secret,
        "starting the forkserver (/proc/self/exe)",
    )?;
    drop(theirs);
    // A server that takes this long to read a request or to answer is hung: a request then
    // fails (and the server is replaced) instead of blocking its caller forever.
    ours.set_read_timeout(Some(REQUEST_TIMEOUT)).map_err(StartError::io("setsockopt"))?;
    ours.set_write_timeout(Some(REQUEST_TIMEOUT)).map_err(StartError::io("setsockopt"))?;
    Ok(Client { owner: sys::proc::getpid(), server_pid, secret, sock: ours })
}

/// One request; `Ok(Err(code))` when the server could not fork (minus an errno) or refused the
/// job ([`JOB_REFUSED`]).
fn request(
    sock: &mut UnixStream,
    job: &Job,
) -> std::result::Result<std::result::Result<Started, i32>, Failure> {
    let local = |e| Failure::Local(StartError::io("pipe (for a forkserver worker)")(e));
    let (status_r, status_w) = sys::proc::pipe().map_err(local)?;
    let (report_r, report_w) = sys::proc::pipe().map_err(local)?;
    let frame = job.to_frame();
    request::send_request(sock, &frame, [status_w.as_fd(), report_w.as_fd()], &job.fds())
        .map_err(Failure::Send)?;
    drop((status_w, report_w));
    let reply = request::read_reply(sock).map_err(Failure::Reply)?;
    Ok(reply.map(|pid| Started { pid, status: status_r, report: report_r }))
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
/// shmpool::process::shutdown_forkserver()?;
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
/// shmpool::process::shutdown_forkserver_timeout(Duration::from_secs(5))?;
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
    // A timeout past the clock's range is no deadline: wait as the untimed form does.
    let exit = match timeout.and_then(|after| Some((after, deadline_after(after)?))) {
        None => sys::proc::waitpid(c.server_pid).map_err(Error::io("waitpid (forkserver)"))?,
        Some((after, deadline)) => {
            match wait::waitpid_until(c.server_pid, deadline, Duration::from_millis(5))
                .map_err(Error::io("waitpid (forkserver)"))?
            {
                Some(exit) => exit,
                None => {
                    reaper::detach(c.server_pid, None, None);
                    return Err(Error::Timeout {
                        what: "forkserver shutdown (its workers still run)",
                        after,
                    });
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_job_and_a_failed_fork_read_differently() {
        let e = Error::from(refusal(42, JOB_REFUSED));
        assert!(
            matches!(&e, Error::ForkServer { reason } if reason.contains("refused the job")),
            "{e}"
        );
        let e = Error::from(refusal(42, -libc::EAGAIN));
        assert!(matches!(&e, Error::Io { op, .. } if op.contains("fork")), "{e}");
        assert!(!e.to_string().contains("refused"), "{e}");
    }
}
