//! How the parent learns that a worker ended, and how it kills and reaps one, whatever started
//! it: a forked worker is our child (`waitpid`); a forkserver or spawn worker is a
//! [`Process`] handle (its status through `join_timeout`: `waitpid` for a spawn
//! child, the server's status pipe for a forkserver worker, which the server reaps).
//!
//! A forkserver worker dies with its server (parent-death signal). The server then never writes
//! its status: the status pipe reads EOF. That is not the worker's failure, and not a reason to
//! stop the pool: the worker is reported as having died with the server, with the server's own
//! exit status as the cause, and the pool replaces it (the process layer launches a new server
//! at the next start).

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::process::child;
use crate::process::handle::Process;
use crate::process::status::ExitStatus;
use crate::sys;
use crate::sys::proc::Exit;

/// How long the parent waits for a forkserver worker to die after its server died (it has the
/// parent-death signal, SIGKILL, so this is microseconds in practice).
const DIE_WITH_SERVER: Duration = Duration::from_secs(2);

/// The parent's record of one worker.
pub(crate) struct WorkerProc {
    pub(crate) pid: u32,
    /// False once it was seen to end (and was reaped).
    pub(crate) alive: bool,
    pub(crate) how: Liveness,
}

/// What tells the parent a worker's status.
pub(crate) enum Liveness {
    /// A forked child of this process, with the read end of its panic report pipe and a pidfd
    /// (readable once it ended; `None` on kernels without pidfds).
    Forked(Option<File>, Option<OwnedFd>),
    /// A worker started by the process layer (forkserver or spawn).
    Started(Box<Process>, Option<ServerSide>),
}

/// What the parent keeps of a forkserver worker to tell how it ended if the server dies first.
pub(crate) struct ServerSide {
    /// The server's pid (the worker's parent when it started); 0 if it could not be read.
    server: u32,
    /// A pidfd of the worker, opened while the server had not yet reported it (so it names the
    /// worker even once the pid is reused); `None` without pidfds or if that could not be
    /// established.
    pidfd: Option<OwnedFd>,
}

/// How a worker ended.
pub(crate) struct Ended {
    pub(crate) exit: Exit,
    /// The message it reported, if it panicked.
    pub(crate) panic: Option<String>,
    /// Set when the worker died with its forkserver: what happened to the server, in words
    /// ("the forkserver (pid 1234) died: killed by signal 9 (SIGKILL)").
    pub(crate) server_died: Option<String>,
}

impl Ended {
    /// How it ended, in words, after "worker N".
    pub(crate) fn how(&self) -> String {
        match &self.server_died {
            Some(cause) => format!("died with the pool's forkserver ({cause})"),
            None => ExitStatus { exit: self.exit, panic: self.panic.clone() }.to_string(),
        }
    }

    /// The signal that killed it, if one did.
    pub(crate) fn signal(&self) -> Option<i32> {
        match self.exit {
            Exit::Signal(s) => Some(s),
            Exit::Code(_) => None,
        }
    }
}

/// The last forkserver death seen by a pool: (server pid, cause in words). Kept because the
/// process layer reaps the dead server (at the next start), after which its exit status can no
/// longer be read, while other workers that died with it may still be found later.
pub(crate) type ServerDeath = Option<(u32, String)>;

impl WorkerProc {
    /// A forked worker.
    pub(crate) fn forked(pid: u32, report: File) -> WorkerProc {
        // Our child, not reaped yet: the pid names it, and so does the pidfd.
        let pidfd = sys::signal::pidfd_open(pid).ok().flatten();
        WorkerProc { pid, alive: true, how: Liveness::Forked(Some(report), pidfd) }
    }

    /// A descriptor that becomes readable when the worker ends (a pidfd, or a forkserver
    /// worker's status pipe, which also reads when the server died), for the parent to sleep
    /// on; `None` once it was seen to end, or where none exists (kernels without pidfds), in
    /// which case the parent checks it at least every `failure::SLICE`.
    pub(crate) fn exit_fd(&self) -> Option<BorrowedFd<'_>> {
        if !self.alive {
            return None;
        }
        match &self.how {
            Liveness::Forked(_, pidfd) => pidfd.as_ref().map(|p| p.as_fd()),
            Liveness::Started(p, _) => p.exit_fd(),
        }
    }

    /// A worker started by the process layer; `via_server` for a forkserver worker.
    pub(crate) fn started(mut p: Process, via_server: bool) -> WorkerProc {
        let pid = p.pid();
        let side = via_server.then(|| {
            let server = sys::peer::parent_of(pid).unwrap_or(0);
            let pidfd = sys::signal::pidfd_open(pid).ok().flatten();
            // The server writes a worker's status before reaping it: while it is unwritten (and
            // the server lives), the pid is the worker's, so the pidfd opened above names it, and
            // the parent read above was the server.
            match p.join_timeout(Duration::ZERO) {
                Ok(None) => ServerSide { server, pidfd },
                _ => ServerSide { server, pidfd: None },
            }
        });
        WorkerProc { pid, alive: true, how: Liveness::Started(Box::new(p), side) }
    }

    /// If the worker has ended: how. It is reaped then, and no longer `alive`. `Ok(None)` while
    /// it runs. `deaths` keeps the cause of the last forkserver death (see [`ServerDeath`]).
    pub(crate) fn try_exit(&mut self, deaths: &mut ServerDeath) -> Result<Option<Ended>> {
        if !self.alive {
            return Ok(None);
        }
        let ended = match &mut self.how {
            Liveness::Forked(report, _) => {
                sys::proc::try_waitpid(self.pid).map_err(Error::io("waitpid"))?.map(|exit| Ended {
                    exit,
                    panic: report.take().and_then(child::read_report),
                    server_died: None,
                })
            }
            Liveness::Started(p, side) => match p.join_timeout(Duration::ZERO) {
                Ok(st) => st.map(|st| Ended { exit: st.exit, panic: st.panic, server_died: None }),
                // A forkserver worker whose status never came: the server died (its end of the
                // status pipe closed), and the worker dies with it.
                Err(Error::ForkServer { .. }) if side.is_some() => {
                    let side = side.as_ref().expect("checked");
                    Some(died_with_server(self.pid, side, deaths))
                }
                Err(e) => return Err(e),
            },
        };
        if ended.is_some() {
            self.alive = false;
        }
        Ok(ended)
    }

    /// Whether it still runs, looked at without reaping it (a worker that ended but was not yet
    /// noticed by the pool counts as gone).
    pub(crate) fn running(&self) -> bool {
        if !self.alive {
            return false;
        }
        if let Liveness::Started(_, Some(ServerSide { pidfd: Some(fd), .. })) = &self.how {
            // A pidfd is readable once its process has ended.
            return !sys::fdpass::wait_readable(fd.as_fd(), Some(Duration::ZERO)).unwrap_or(false);
        }
        sys::liveness::pid_running(self.pid)
    }

    /// Sends SIGKILL (nothing once it was reaped).
    pub(crate) fn kill(&self) {
        if !self.alive {
            return;
        }
        match &self.how {
            // Our unreaped child: its pid cannot have been reused.
            Liveness::Forked(..) => {
                let _ = sys::proc::kill(self.pid, libc::SIGKILL);
            }
            Liveness::Started(p, _) => {
                let _ = p.kill();
            }
        }
    }

    /// Waits for it to end and reaps it (a forkserver worker: until the server reported it, or
    /// died).
    pub(crate) fn reap(&mut self) {
        if !self.alive {
            return;
        }
        match &mut self.how {
            Liveness::Forked(report, _) => {
                let _ = sys::proc::waitpid(self.pid);
                *report = None;
            }
            Liveness::Started(p, _) => {
                let _ = p.join();
            }
        }
        self.alive = false;
    }
}

/// A forkserver worker whose server died before reporting it: makes sure it is dead (it has the
/// parent-death signal; through its pidfd, it is killed if it lingers), and names the server's
/// death as the cause.
fn died_with_server(pid: u32, side: &ServerSide, deaths: &mut ServerDeath) -> Ended {
    match &side.pidfd {
        Some(fd) => {
            let ended = |t| sys::fdpass::wait_readable(fd.as_fd(), Some(t)).unwrap_or(true);
            if !ended(DIE_WITH_SERVER) {
                let _ = sys::signal::pidfd_send_signal(fd, libc::SIGKILL);
                let _ = ended(DIE_WITH_SERVER);
            }
        }
        None => {
            // No pidfd: the pid may be reused once init reaps the worker, so only wait (a bounded
            // time) for it to go; never signal it.
            let t0 = Instant::now();
            while sys::liveness::pid_running(pid) && t0.elapsed() < DIE_WITH_SERVER {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let cause = match deaths {
        Some((server, cause)) if *server == side.server => cause.clone(),
        _ => {
            let cause = server_cause(side.server);
            *deaths = Some((side.server, cause.clone()));
            cause
        }
    };
    // The parent-death signal the process layer arms (`sys::proc::die_with_parent`).
    Ended { exit: Exit::Signal(libc::SIGKILL), panic: None, server_died: Some(cause) }
}

/// How the forkserver `server` (a child of this process) ended, in words. Until the process
/// layer reaps it (at the next forkserver start, or `shutdown_forkserver`) it is a zombie whose
/// `/proc/<pid>/stat` still holds its wait status (field 52, Linux 3.5+).
fn server_cause(server: u32) -> String {
    if server == 0 {
        return "the pool's forkserver died".to_string();
    }
    let fields = sys::peer::stat_fields(server);
    let status = fields.as_ref().and_then(|f| {
        let zombie = f.first().is_some_and(|s| s == "Z");
        // `fields` starts at field 3 (the state), so field 52 is at index 49.
        zombie.then(|| f.get(49)?.parse::<i32>().ok()).flatten()
    });
    match status.map(sys::proc::decode) {
        Some(sys::proc::Exit::Signal(sig)) => {
            let name = sys::proc::signal_name(sig);
            format!("the forkserver (pid {server}) died: killed by signal {sig} ({name})")
        }
        Some(sys::proc::Exit::Code(code)) => {
            format!("the forkserver (pid {server}) died: exited with code {code}")
        }
        None if fields.is_some() => {
            format!("the forkserver (pid {server}) lost track of it: its status pipe closed")
        }
        None => format!("the forkserver (pid {server}) died (its exit status was already read)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_of_this_process() {
        let f = sys::peer::stat_fields(std::process::id()).unwrap();
        assert!(matches!(f[0].as_str(), "R" | "S" | "D"), "{f:?}");
        assert_eq!(sys::peer::parent_of(std::process::id()), Some(sys::proc::getppid()));
        assert!(sys::peer::stat_fields(0).is_none());
    }

    #[test]
    fn an_unknown_server_is_named_as_such() {
        assert_eq!(server_cause(0), "the pool's forkserver died");
        // This process is no zombie: its status cannot be read.
        let me = std::process::id();
        assert!(server_cause(me).contains("lost track"), "{}", server_cause(me));
    }
}
