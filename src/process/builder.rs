//! `ProcessBuilder`: a process's name and daemon flag, set before it starts.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::child::ChildResult;
use super::context::{Context, StartMethod};
use super::entry::Job;
use super::handle::{self, Process};
use super::{fork, forkserver, spawn};
use crate::error::{Error, Result};
use crate::sys;

static COUNTER: AtomicUsize = AtomicUsize::new(1);

/// Options for one process; made by [`Context::process`].
///
/// ```no_run
/// # fn f(_: ()) {}
/// let mut p = shmpool::get_context(shmpool::StartMethod::Spawn).process().name("w").start(f, ())?;
/// p.join()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until start() or start_closure()"]
pub struct ProcessBuilder {
    ctx: Context,
    name: Option<String>,
    daemon: bool,
}

impl ProcessBuilder {
    pub(crate) fn new(ctx: Context) -> ProcessBuilder {
        ProcessBuilder { ctx, name: None, daemon: false }
    }

    /// The process's name (default `Process-N`, counting from 1 in this process).
    ///
    /// ```
    /// let b = shmpool::get_context(shmpool::StartMethod::Fork).process().name("reader");
    /// # let _ = b;
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> ProcessBuilder {
        self.name = Some(name.into());
        self
    }

    /// Whether it is a daemon child: one killed when its [`Process`] is dropped while it runs
    /// (others are detached then). Every child, daemon or not, dies with its parent process.
    ///
    /// ```
    /// let b = shmpool::get_context(shmpool::StartMethod::Fork).process().daemon(true);
    /// # let _ = b;
    /// ```
    pub fn daemon(mut self, daemon: bool) -> ProcessBuilder {
        self.daemon = daemon;
        self
    }

    fn take_name(&mut self) -> String {
        self.name
            .take()
            .unwrap_or_else(|| format!("Process-{}", COUNTER.fetch_add(1, Ordering::Relaxed)))
    }

    /// Starts the child running `f(args)`; see [`Context::start`].
    ///
    /// ```
    /// # fn f(n: u8) -> i32 { n.into() }
    /// let mut p = shmpool::get_context(shmpool::StartMethod::ForkServer).process().start(f, 7)?;
    /// assert_eq!(p.join()?.exitcode(), 7);
    /// shmpool::shutdown_forkserver()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn start<A, R>(mut self, f: fn(A) -> R, args: A) -> Result<Process>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: ChildResult + 'static,
    {
        handle::reap_detached();
        let name = self.take_name();
        let method = self.ctx.method();
        match method {
            StartMethod::Fork => {
                let (pid, report) = fork::start(self.ctx.threads_allowed(), move || f(args))?;
                Ok(Process::direct(pid, report, name, self.daemon, method))
            }
            StartMethod::Spawn => {
                // PR_SET_PDEATHSIG follows the starting thread: arm it only when that thread
                // lives as long as the process; the alive pipe guards the child either way. Each
                // child gets a secret of its own.
                let secret = sys::proc::random_u64();
                let job = Job::new(f, &args, &name, secret, sys::proc::is_main_thread())?;
                let (pid, report) = spawn::start(&job)?;
                Ok(Process::direct(pid, report, name, self.daemon, method))
            }
            StartMethod::ForkServer => {
                // The secret is the server's, filled in by `forkserver::start`.
                let job = Job::new(f, &args, &name, 0, true)?;
                let started = forkserver::start(job)?;
                Ok(Process::relayed(started, name, self.daemon))
            }
        }
    }

    /// Starts the child running the closure `f`; `fork` only, see [`Context::start_closure`].
    ///
    /// ```no_run
    /// let mut p = shmpool::get_context(shmpool::StartMethod::Fork).process().start_closure(|| 0)?;
    /// assert!(p.join()?.success());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn start_closure<F, R>(mut self, f: F) -> Result<Process>
    where
        F: FnOnce() -> R + Send + 'static,
        R: ChildResult,
    {
        let method = self.ctx.method();
        if method != StartMethod::Fork {
            return Err(Error::ClosureNeedsFork { method: method.name() });
        }
        handle::reap_detached();
        let name = self.take_name();
        let (pid, report) = fork::start(self.ctx.threads_allowed(), f)?;
        Ok(Process::direct(pid, report, name, self.daemon, method))
    }
}
