//! How the parent learns that a worker ended, and how it kills and reaps one, whatever started
//! it: a forked worker is our child (`waitpid`); a forkserver or spawn worker is a
//! [`Process`](crate::Process) handle (its status through `join_timeout`: `waitpid` for a spawn
//! child, the server's status pipe for a forkserver worker, which the server reaps).

use std::fs::File;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::process::child;
use crate::process::handle::Process;
use crate::sys;
use crate::sys::proc::Exit;

/// The parent's record of one worker.
pub(crate) struct WorkerProc {
    pub(crate) pid: u32,
    /// False once it was seen to end (and was reaped).
    pub(crate) alive: bool,
    pub(crate) how: Liveness,
}

/// What tells the parent a worker's status.
pub(crate) enum Liveness {
    /// A forked child of this process, with the read end of its panic report pipe.
    Forked(Option<File>),
    /// A worker started by the process layer (forkserver or spawn).
    Started(Box<Process>),
}

impl WorkerProc {
    /// A forked worker.
    pub(crate) fn forked(pid: u32, report: File) -> WorkerProc {
        WorkerProc { pid, alive: true, how: Liveness::Forked(Some(report)) }
    }

    /// A worker started by the process layer.
    pub(crate) fn started(p: Process) -> WorkerProc {
        WorkerProc { pid: p.pid(), alive: true, how: Liveness::Started(Box::new(p)) }
    }

    /// If the worker has ended: how, and the panic message it reported, if any. It is reaped
    /// then, and no longer `alive`. `Ok(None)` while it runs.
    pub(crate) fn try_exit(&mut self) -> Result<Option<(Exit, Option<String>)>> {
        if !self.alive {
            return Ok(None);
        }
        let ended = match &mut self.how {
            Liveness::Forked(report) => sys::proc::try_waitpid(self.pid)
                .map_err(Error::io("waitpid"))?
                .map(|exit| (exit, report.take().and_then(child::read_report))),
            Liveness::Started(p) => p.join_timeout(Duration::ZERO)?.map(|st| (st.exit, st.panic)),
        };
        if ended.is_some() {
            self.alive = false;
        }
        Ok(ended)
    }

    /// Sends SIGKILL (nothing once it was reaped).
    pub(crate) fn kill(&self) {
        if !self.alive {
            return;
        }
        match &self.how {
            Liveness::Forked(_) => {
                let _ = sys::proc::kill(self.pid, libc::SIGKILL);
            }
            Liveness::Started(p) => {
                let _ = p.kill();
            }
        }
    }

    /// Waits for it to end and reaps it (a forkserver worker: until the server reported it).
    pub(crate) fn reap(&mut self) {
        if !self.alive {
            return;
        }
        match &mut self.how {
            Liveness::Forked(report) => {
                let _ = sys::proc::waitpid(self.pid);
                *report = None;
            }
            Liveness::Started(p) => {
                let _ = p.join();
            }
        }
        self.alive = false;
    }
}
