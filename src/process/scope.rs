//! `scope`: fork children that borrow from the parent, as `std::thread::scope` does for threads.
//!
//! Why this is sound: a forked child runs on a copy of the parent's memory, so every reference it
//! captured points at valid (copied) data; the pages of a shared mapping are the same pages in
//! both processes, so writes through a captured `&mut` chunk of a [`SharedArray`] land where the
//! parent will read them. The borrow checker keeps the parent away from anything it lent for the
//! whole of `'scope`, and `'scope` ends only after every child has been reaped.
//!
//! [`SharedArray`]: crate::SharedArray

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

use super::child::{self, ChildResult};
use super::status::ExitStatus;
use crate::error::{Error, Result};
use crate::sys::{self, proc::Forked};

/// Runs `f` with a [`Scope`] whose children may borrow anything that outlives the call; reaps
/// every child before returning.
///
/// Returns `f`'s result, or the first failure of a child that was not joined explicitly (exit
/// code other than 0, a signal, a panic) as [`Error::ChildFailed`]. Forking is refused with
/// [`Error::ForkWithThreads`] while the process has other threads, unless
/// [`Scope::allow_threads`] was called.
///
/// ```no_run
/// // (no_run: doctests run inside a multi-threaded harness, where fork is refused.)
/// let mut data = shmpool::SharedArray::<u64>::zeroed(1000)?;
/// shmpool::scope(|s| {
///     for (k, chunk) in data.split_mut(4).into_iter().enumerate() {
///         s.fork(move || chunk.iter_mut().for_each(|x| *x = k as u64))?;
///     }
///     Ok::<(), shmpool::Error>(())
/// })??;
/// assert_eq!(data[999], 3); // written in place by the children
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn scope<'env, F, R>(f: F) -> Result<R>
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    let scope = Scope {
        pending: RefCell::new(Vec::new()),
        allow_threads: Cell::new(false),
        parent_pid: sys::proc::getpid(),
        _scope: PhantomData,
        _env: PhantomData,
    };
    let out = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    let reaped = scope.reap_all();
    match out {
        Err(panic) => resume_unwind(panic),
        Ok(r) => reaped.map(|()| r),
    }
}

/// A scope to fork children in; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    pending: RefCell<Vec<(u32, Option<File>)>>,
    allow_threads: Cell<bool>,
    parent_pid: u32,
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Accept the risk of forking while this process has other threads.
    ///
    /// A lock another thread holds at the fork (stdout's, the allocator's if it has no fork
    /// handlers, any `std::sync::Mutex`) stays locked forever in the child. Call this only when
    /// the children touch nothing but shared memory, their own stack and glibc's `malloc`.
    pub fn allow_threads(&self) -> &Self {
        self.allow_threads.set(true);
        self
    }

    /// Forks a child that runs `f` and exits with its result's code (see [`ChildResult`]); a
    /// panic in `f` becomes exit code 101 with the message readable from the [`ExitStatus`].
    pub fn fork<F, R>(&'scope self, f: F) -> Result<ScopedChild<'scope, 'env>>
    where
        F: FnOnce() -> R + 'scope,
        R: ChildResult,
    {
        if !self.allow_threads.get() {
            let threads = sys::proc::thread_count().map_err(Error::io("counting threads"))?;
            if threads > 1 {
                return Err(Error::ForkWithThreads { threads });
            }
        }
        let (report_r, report_w) = sys::proc::pipe().map_err(Error::io("pipe"))?;
        // SAFETY: either the process is single-threaded (checked above), or the caller accepted
        // the multi-threaded risk through `allow_threads`, whose contract limits what `f` does.
        match unsafe { sys::proc::fork() }.map_err(Error::io("fork"))? {
            Forked::Child => {
                drop(report_r);
                child::run(self.parent_pid, report_w, f)
            }
            Forked::Parent(pid) => {
                drop(report_w);
                Ok(ScopedChild { pid, report: Some(report_r), done: false, scope: self })
            }
        }
    }

    fn reap_all(&self) -> Result<()> {
        let mut first_err = None;
        for (pid, report) in self.pending.borrow_mut().drain(..) {
            match reap(pid, report) {
                Ok(st) if st.success() => {}
                Ok(st) => {
                    first_err.get_or_insert(Error::ChildFailed { pid, how: st.to_string() });
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn reap(pid: u32, report: Option<File>) -> Result<ExitStatus> {
    let exit = sys::proc::waitpid(pid).map_err(Error::io("waitpid"))?;
    Ok(ExitStatus { exit, panic: report.and_then(child::read_report) })
}

/// A child forked by [`Scope::fork`]. Join it to see how it ended; one dropped unjoined is reaped
/// (and its failure reported) when the scope ends.
pub struct ScopedChild<'scope, 'env> {
    pid: u32,
    report: Option<File>,
    done: bool,
    scope: &'scope Scope<'scope, 'env>,
}

impl ScopedChild<'_, '_> {
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the child to end and returns how it ended.
    pub fn join(mut self) -> Result<ExitStatus> {
        self.done = true;
        reap(self.pid, self.report.take())
    }

    /// Waits at most `timeout` for the child; `Ok(None)` if it still runs (it stays joinable).
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        let mut nap = Duration::from_micros(50);
        loop {
            if let Some(exit) = sys::proc::try_waitpid(self.pid).map_err(Error::io("waitpid"))? {
                self.done = true;
                return Ok(Some(ExitStatus {
                    exit,
                    panic: self.report.take().and_then(child::read_report),
                }));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(nap.min(deadline - now));
            nap = (nap * 2).min(Duration::from_millis(10));
        }
    }

    /// Sends SIGKILL (Python's `Process.kill`).
    pub fn kill(&self) -> Result<()> {
        sys::proc::kill(self.pid, libc::SIGKILL).map_err(Error::io("kill"))
    }

    /// Sends SIGTERM (Python's `Process.terminate`).
    pub fn terminate(&self) -> Result<()> {
        sys::proc::kill(self.pid, libc::SIGTERM).map_err(Error::io("kill"))
    }
}

impl Drop for ScopedChild<'_, '_> {
    fn drop(&mut self) {
        if !self.done {
            self.scope.pending.borrow_mut().push((self.pid, self.report.take()));
        }
    }
}
