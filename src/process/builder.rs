//! `ProcessBuilder`: a process's name and daemon flag, set before it starts; it picks the start
//! method's parent side (`fork.rs`, `spawn.rs`, `forkserver.rs`) and wraps what that returns in a
//! `Process`. Below `context.rs`, which makes builders: it holds the context's method and options,
//! not the `Context` itself.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::child::ChildResult;
use super::entry::Job;
use super::handle::Process;
use super::identity;
use super::method::StartMethod;
use super::reaper;
use super::{fork, forkserver, spawn};
use crate::error::{Error, Result};
use crate::sys;

static COUNTER: AtomicUsize = AtomicUsize::new(1);

/// Options for one process; made by [`Context::process`](crate::Context::process).
///
/// ```no_run
/// # fn f(_: ()) {}
/// let mut p = shmpool::get_context(shmpool::StartMethod::Spawn).process().name("w").start(f, ())?;
/// p.join()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until start() or start_closure()"]
pub struct ProcessBuilder {
    /// The context's start method.
    method: StartMethod,
    /// The context's `allow_threads` (see `Context::allow_threads`).
    allow_threads: bool,
    name: Option<String>,
    daemon: bool,
}

impl fmt::Debug for ProcessBuilder {
    /// As the derived form when the builder held its `Context`: `ctx: Context { .. }` first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Ctx<'a>(&'a ProcessBuilder);
        impl fmt::Debug for Ctx<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("Context")
                    .field("method", &self.0.method)
                    .field("allow_threads", &self.0.allow_threads)
                    .finish()
            }
        }
        f.debug_struct("ProcessBuilder")
            .field("ctx", &Ctx(self))
            .field("name", &self.name)
            .field("daemon", &self.daemon)
            .finish()
    }
}

impl ProcessBuilder {
    /// A builder for a context of `method`; `allow_threads` as the context's.
    pub(crate) fn new(method: StartMethod, allow_threads: bool) -> ProcessBuilder {
        ProcessBuilder { method, allow_threads, name: None, daemon: false }
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

    /// Starts the child running `f(args)`; see [`Context::start`](crate::Context::start).
    ///
    /// ```
    /// # fn f(n: u8) -> i32 { n.into() }
    /// let mut p = shmpool::get_context(shmpool::StartMethod::ForkServer).process().start(f, 7)?;
    /// assert_eq!(p.join()?.exitcode(), 7);
    /// shmpool::process::shutdown_forkserver()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn start<A, R>(mut self, f: fn(A) -> R, args: A) -> Result<Process>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: ChildResult + 'static,
    {
        reaper::reap_detached();
        let name = self.take_name();
        let method = self.method;
        match method {
            StartMethod::Fork => {
                let (own_name, daemon) = (name.clone(), self.daemon);
                let (pid, report) = fork::start(self.allow_threads, move || {
                    identity::rename_child(own_name, daemon);
                    f(args)
                })?;
                Ok(Process::direct(pid, report, name, self.daemon, method))
            }
            StartMethod::Spawn => {
                // PR_SET_PDEATHSIG follows the starting thread: arm it only when that thread
                // lives as long as the process; the alive pipe guards the child either way. Each
                // child gets a secret of its own.
                let secret = sys::proc::random_u64();
                let mut job = Job::new(f, &args, &name, secret, sys::proc::is_main_thread())?;
                job.daemon = self.daemon;
                let (pid, report) = spawn::start(&job)?;
                // Kept until the child ends: a shmpool object among them crosses as a handle
                // that names this process's descriptor, which must stay open until the child
                // has opened it.
                Ok(Process::direct(pid, report, name, self.daemon, method).keeping(Box::new(args)))
            }
            StartMethod::ForkServer => {
                // The secret is the server's, filled in by `forkserver::start`.
                let mut job = Job::new(f, &args, &name, 0, true)?;
                job.daemon = self.daemon;
                let started = forkserver::start(job)?;
                Ok(Process::relayed(started, name, self.daemon).keeping(Box::new(args)))
            }
        }
    }

    /// Starts the child running the closure `f`; `fork` only, see
    /// [`Context::start_closure`](crate::Context::start_closure).
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
        let method = self.method;
        if method != StartMethod::Fork {
            return Err(Error::ClosureNeedsFork { method: method.name() });
        }
        reaper::reap_detached();
        let name = self.take_name();
        let (own_name, daemon) = (name.clone(), self.daemon);
        let (pid, report) = fork::start(self.allow_threads, move || {
            identity::rename_child(own_name, daemon);
            f()
        })?;
        Ok(Process::direct(pid, report, name, self.daemon, method))
    }
}
