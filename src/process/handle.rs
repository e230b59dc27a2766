//! `Process`: a started child process, whatever its start method.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::child;
use super::children;
use super::forkserver;
use super::method::StartMethod;
use super::reaper::{self, Kept};
use super::status::{self, ExitStatus};
use super::wait;
use crate::error::{Error, Result};
use crate::sync::wait::deadline_after;
use crate::sys::{self, proc::Exit};

/// How the parent learns that the child ended.
enum Waiter {
    /// The child is ours: `waitpid`, with a pidfd (readable once the child ended) where the
    /// kernel has them (Linux 5.3+), so a wait with a timeout sleeps until the death itself.
    Direct(Option<OwnedFd>),
    /// The child is the forkserver's: it writes the status to this pipe.
    Relay(File),
}

/// A child process started by [`Context::start`](crate::Context::start) or
/// [`Context::start_closure`](crate::Context::start_closure) (Python's `multiprocessing.Process`
/// after `start()`).
///
/// Its status follows Python's conventions: [`exitcode`](Process::exitcode) is `None` while it
/// runs, its exit code once it exited, and minus the signal number when a signal killed it. A
/// panic in the child becomes exit code 101 with the message in
/// [`ExitStatus::panic_message`]; it never unwinds into the parent.
///
/// # Dropping a running `Process`
///
/// - a daemon child ([`ProcessBuilder::daemon`](crate::process::ProcessBuilder::daemon)) is killed
///   (SIGKILL) and reaped;
/// - any other child is detached, like a dropped `std::thread::JoinHandle`: it keeps running and
///   is reaped in the background (at the next start in this process), so it leaves no zombie.
///
/// Either way every child dies with its parent process, however the parent dies (see
/// `docs/architecture.md`, "Process model"): a child never outlives the program that started it.
///
/// ```no_run
/// use shmpool::{StartMethod, get_context};
///
/// fn square_exit(x: i32) -> i32 { x * x }
///
/// let mut p = get_context(StartMethod::Spawn).process().name("squarer").start(square_exit, 3)?;
/// assert_eq!(p.join()?.exitcode(), 9);
/// assert_eq!(p.exitcode(), Some(9));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct Process {
    pid: u32,
    name: String,
    daemon: bool,
    method: StartMethod,
    waiter: Waiter,
    report: Option<File>,
    /// The arguments the child was started with, kept until it ends (see `reaper::Kept`).
    kept: Option<Kept>,
    status: Option<ExitStatus>,
    /// The process that started it (a forked copy of this handle in a child must not act).
    owner: u32,
}

impl Process {
    pub(crate) fn direct(
        pid: u32,
        report: File,
        name: String,
        daemon: bool,
        method: StartMethod,
    ) -> Process {
        // Our child, not reaped yet: the pid names it, and so does the pidfd.
        let pidfd = sys::signal::pidfd_open(pid).ok().flatten();
        let p = Process {
            pid,
            name,
            daemon,
            method,
            waiter: Waiter::Direct(pidfd),
            report: Some(report),
            kept: None,
            status: None,
            owner: sys::proc::getpid(),
        };
        children::register(pid, &p.name, daemon, p.exit_fd());
        p
    }

    /// Keeps `kept` (the child's arguments) until the child has ended: see `reaper::Kept`.
    pub(crate) fn keeping(mut self, kept: Kept) -> Process {
        self.kept = Some(kept);
        self
    }

    pub(crate) fn relayed(started: forkserver::Started, name: String, daemon: bool) -> Process {
        let p = Process {
            pid: started.pid,
            name,
            daemon,
            method: StartMethod::ForkServer,
            waiter: Waiter::Relay(started.status),
            report: Some(started.report),
            kept: None,
            status: None,
            owner: sys::proc::getpid(),
        };
        children::register(p.pid, &p.name, daemon, p.exit_fd());
        p
    }

    /// The child's pid.
    ///
    /// ```no_run
    /// # fn f(_: ()) {}
    /// let mut p = shmpool::get_context(shmpool::StartMethod::Fork).start(f, ())?;
    /// assert!(p.pid() > 0);
    /// p.join()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The process's name (`Process-N` unless one was given).
    ///
    /// ```no_run
    /// # fn f(_: ()) {}
    /// let mut p = shmpool::get_context(shmpool::StartMethod::Fork).process().name("w1").start(f, ())?;
    /// assert_eq!(p.name(), "w1");
    /// p.join()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is a daemon child (killed when its `Process` is dropped while it runs).
    ///
    /// ```no_run
    /// # fn f(_: ()) {}
    /// let p = shmpool::get_context(shmpool::StartMethod::Fork).process().daemon(true).start(f, ())?;
    /// assert!(p.daemon());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn daemon(&self) -> bool {
        self.daemon
    }

    /// The start method it was started with.
    ///
    /// ```no_run
    /// # fn f(_: ()) {}
    /// use shmpool::{StartMethod, get_context};
    /// let mut p = get_context(StartMethod::Spawn).start(f, ())?;
    /// assert_eq!(p.start_method(), StartMethod::Spawn);
    /// p.join()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// Waits for the child to end and returns how it ended. Calling it again returns the same
    /// status.
    ///
    /// # Errors
    ///
    /// [`Error::ForkServer`] when a forkserver child's server died before reporting (the child
    /// then died too); [`Error::Io`] when waiting fails.
    ///
    /// ```no_run
    /// # fn f(_: ()) -> i32 { 4 }
    /// let mut p = shmpool::get_context(shmpool::StartMethod::Fork).start(f, ())?;
    /// assert_eq!(p.join()?.code(), Some(4));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn join(&mut self) -> Result<ExitStatus> {
        if let Some(st) = &self.status {
            return Ok(st.clone());
        }
        let exit = match &mut self.waiter {
            Waiter::Direct(_) => sys::proc::waitpid(self.pid).map_err(Error::io("waitpid"))?,
            Waiter::Relay(f) => read_relayed(self.pid, f)?,
        };
        Ok(self.finish(exit))
    }

    /// Waits at most `timeout` for the child to end: `Ok(None)` if it still runs (it stays
    /// joinable).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # fn nap(_: ()) { std::thread::sleep(Duration::from_secs(5)) }
    /// let mut p = shmpool::get_context(shmpool::StartMethod::Fork).start(nap, ())?;
    /// assert!(p.join_timeout(Duration::from_millis(10))?.is_none());
    /// p.kill()?;
    /// assert_eq!(p.join()?.exitcode(), -9);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        if let Some(st) = &self.status {
            return Ok(Some(st.clone()));
        }
        // A timeout past the clock's range is no deadline: wait as `join` does.
        let Some(deadline) = deadline_after(timeout) else {
            return self.join().map(Some);
        };
        let exit = match &mut self.waiter {
            Waiter::Relay(f) => {
                if !sys::fdpass::wait_readable(f.as_fd(), Some(timeout))
                    .map_err(Error::io("poll"))?
                {
                    return Ok(None);
                }
                read_relayed(self.pid, f)?
            }
            Waiter::Direct(Some(pidfd)) => {
                if !sys::fdpass::wait_readable(pidfd.as_fd(), Some(timeout))
                    .map_err(Error::io("poll"))?
                {
                    return Ok(None);
                }
                match sys::proc::try_waitpid(self.pid).map_err(Error::io("waitpid"))? {
                    Some(exit) => exit,
                    // A readable pidfd means the child ended: reaped at once.
                    None => sys::proc::waitpid(self.pid).map_err(Error::io("waitpid"))?,
                }
            }
            Waiter::Direct(None) => {
                match wait::waitpid_until(self.pid, deadline, Duration::from_millis(5))
                    .map_err(Error::io("waitpid"))?
                {
                    Some(exit) => exit,
                    None => return Ok(None),
                }
            }
        };
        Ok(Some(self.finish(exit)))
    }

    /// Whether the child still runs (reaps it if it ended).
    ///
    /// ```no_run
    /// # fn f(_: ()) {}
    /// let mut p = shmpool::get_context(shmpool::StartMethod::Fork).start(f, ())?;
    /// p.join()?;
    /// assert!(!p.is_alive());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_alive(&mut self) -> bool {
        matches!(self.join_timeout(Duration::ZERO), Ok(None))
    }

    /// Python's `exitcode`: `None` while the child runs, else its exit code, or minus the number
    /// of the signal that killed it.
    ///
    /// ```no_run
    /// # fn f(_: ()) -> i32 { 2 }
    /// let mut p = shmpool::get_context(shmpool::StartMethod::Fork).start(f, ())?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(2));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn exitcode(&mut self) -> Option<i32> {
        self.join_timeout(Duration::ZERO).ok().flatten().map(|st| st.exitcode())
    }

    /// Sends SIGTERM (Python's `terminate`); does nothing once the child has ended.
    ///
    /// ```no_run
    /// # fn nap(_: ()) { std::thread::sleep(std::time::Duration::from_secs(5)) }
    /// let mut p = shmpool::get_context(shmpool::StartMethod::Fork).start(nap, ())?;
    /// p.terminate()?;
    /// assert_eq!(p.join()?.exitcode(), -15);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn terminate(&self) -> Result<()> {
        self.signal(libc::SIGTERM)
    }

    /// Sends SIGKILL (Python's `kill`); does nothing once the child has ended.
    ///
    /// ```no_run
    /// # fn nap(_: ()) { std::thread::sleep(std::time::Duration::from_secs(5)) }
    /// let mut p = shmpool::get_context(shmpool::StartMethod::Fork).start(nap, ())?;
    /// p.kill()?;
    /// assert_eq!(p.join()?.signal(), Some(9));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn kill(&self) -> Result<()> {
        self.signal(libc::SIGKILL)
    }

    /// A descriptor that becomes readable once the child has ended (then [`join`](Process::join)
    /// does not block): its pidfd, or a forkserver child's status pipe (readable too when the
    /// server died first). `None` for a child of ours on a kernel without pidfds, or once the
    /// status is known.
    pub(crate) fn exit_fd(&self) -> Option<BorrowedFd<'_>> {
        if self.status.is_some() {
            return None;
        }
        match &self.waiter {
            Waiter::Direct(pidfd) => pidfd.as_ref().map(|p| p.as_fd()),
            Waiter::Relay(f) => Some(f.as_fd()),
        }
    }

    fn signal(&self, sig: i32) -> Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        // A direct child stays a zombie until we reap it, so its pid cannot be reused yet. A
        // forkserver child is reaped by the server right after it writes the child's status.
        // So: pin the pid with a pidfd first, then look at the status; unreadable means the
        // worker was not reaped when the pidfd was made, which therefore names the worker, and
        // signalling through it stays right even if the server reaps it meanwhile.
        if let Waiter::Relay(f) = &self.waiter {
            let pidfd = match sys::signal::pidfd_open(self.pid) {
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(()),
                other => other.map_err(Error::io("pidfd_open"))?,
            };
            if sys::fdpass::wait_readable(f.as_fd(), Some(Duration::ZERO))
                .map_err(Error::io("poll"))?
            {
                return Ok(());
            }
            if let Some(fd) = pidfd {
                return match sys::signal::pidfd_send_signal(&fd, sig) {
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
                    other => other.map_err(Error::io("pidfd_send_signal")),
                };
            }
            // Kernels without pidfds: a window remains between the look and the kill.
        }
        match sys::proc::kill(self.pid, sig) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            other => other.map_err(Error::io("kill")),
        }
    }

    fn finish(&mut self, exit: Exit) -> ExitStatus {
        // The child wrote its message before exiting: read what is there without waiting (a
        // sibling forked meanwhile may still hold the write end).
        let panic = self.report.take().and_then(|r| {
            let _ = sys::fdpass::set_nonblocking(r.as_fd());
            child::read_report(r)
        });
        let st = ExitStatus { exit, panic };
        self.status = Some(st.clone());
        self.kept = None;
        children::forget(self.pid);
        st
    }
}

fn read_relayed(pid: u32, f: &mut File) -> Result<Exit> {
    let mut b = [0u8; 8];
    match f.read_exact(&mut b) {
        Ok(()) => Ok(status::decode(b)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Error::ForkServer {
            reason: format!(
                "died before reporting how worker {pid} ended (the worker died with it)"
            ),
        }),
        Err(e) => Err(Error::io("reading a worker's status")(e)),
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("name", &self.name)
            .field("daemon", &self.daemon)
            .field("method", &self.method)
            .field("status", &self.status)
            .finish()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.owner != sys::proc::getpid() {
            // A forked copy: what it keeps is the parent's to drop.
            std::mem::forget(self.kept.take());
            return;
        }
        if self.status.is_some() || !self.is_alive() {
            return;
        }
        if self.daemon {
            let _ = self.kill();
            let _ = self.join();
            return;
        }
        let relay = match std::mem::replace(&mut self.waiter, Waiter::Direct(None)) {
            Waiter::Relay(f) => Some(f),
            Waiter::Direct(_) => None,
        };
        reaper::detach(self.pid, relay, self.kept.take());
    }
}
