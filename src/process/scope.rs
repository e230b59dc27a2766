//! `scope`: fork children that borrow from the parent, as `std::thread::scope` does for threads.
//!
//! Why this is sound: a forked child runs on a copy of the parent's *private* memory, so every
//! reference it captured points at valid data of its own. Shared memory that safe code can write
//! through `&mut` ([`SharedArray`], [`RawValue`]) is not inherited at all (`segment::forkmap`):
//! it reaches the child only as the value lent to [`Scope::fork_with`], whose slices the child
//! maps anew, so a `std::sync::Mutex`, `Arc` or `static` copied by the fork cannot hand the
//! child memory the parent is writing. The borrow checker keeps the parent away from what it
//! lent for the whole of `'scope`, and `'scope` ends only after every child has been reaped.
//!
//! [`SharedArray`]: crate::SharedArray
//! [`RawValue`]: crate::RawValue

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

use super::child::{self, ChildResult};
use super::lend::{Lend, LendPlan};
use super::status::ExitStatus;
use super::wait;
use crate::error::{Error, Result};
use crate::sync::wait::deadline_after;
use crate::sys;

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
///         s.fork_with(chunk, move |chunk| chunk.iter_mut().for_each(|x| *x = k as u64))?;
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
        slots: RefCell::new(Vec::new()),
        allow_threads: Cell::new(false),
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

/// One forked child, recorded the moment it exists: the scope reaps it even if its
/// [`ScopedChild`] was leaked with `mem::forget`.
struct Slot {
    pid: u32,
    report: Option<File>,
    status: Option<ExitStatus>,
    /// The user saw the status through `join`/`join_timeout`; the scope does not report it again.
    joined: bool,
}

/// A scope to fork children in; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    slots: RefCell<Vec<Slot>>,
    allow_threads: Cell<bool>,
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Accept the risk of forking while this process has other threads.
    ///
    /// # Safety
    ///
    /// After a fork in a multi-threaded process, POSIX allows the child only async-signal-safe
    /// calls: any lock another thread held at the fork (stdout's, the panic hook's, a
    /// `std::sync::Mutex`, a non-glibc allocator's) stays locked forever in the child. The caller
    /// promises that the children forked in this scope touch nothing but shared memory, their
    /// own stack, glibc's `malloc`, and locks no other thread of this process can hold.
    pub unsafe fn allow_threads(&self) -> &Self {
        self.allow_threads.set(true);
        self
    }

    /// Forks a child that runs `f` and exits with its result's code (see [`ChildResult`]); a
    /// panic in `f` becomes exit code 101 with the message readable from the [`ExitStatus`].
    ///
    /// The child gets a copy of this process's private memory, and the shared objects that are
    /// made for sharing ([`Mutex`](crate::Mutex), queues, events, [`SharedValue`](crate::SharedValue)
    /// ...) keep working in it. It gets no shared array: a [`SharedArray`](crate::SharedArray) or
    /// [`RawValue`](crate::RawValue) that `f` reaches by capture, through a `static`, an `Arc`
    /// or a `std::sync::Mutex` is not mapped in the child, and touching it kills the child with
    /// SIGSEGV (reported as its exit status), never a silent race. Lend the slices a child
    /// works on with [`fork_with`](Scope::fork_with).
    ///
    /// The parent drops its copy of `f` right after the fork (so it closes its copies of captured
    /// descriptors, for example); each process drops its own copy of what `f` captured. `f` must
    /// be `Send`, which keeps thread-bound values out: a lock guard released by the parent would
    /// end the child's exclusive access while the child still runs.
    ///
    /// ```compile_fail
    /// let m = shmpool::Mutex::new(0u64).unwrap();
    /// let g = m.lock().unwrap();
    /// shmpool::scope(|s| s.fork(move || drop(g)).map(drop)).unwrap().unwrap(); // guard is !Send
    /// ```
    pub fn fork<F, R>(&'scope self, f: F) -> Result<ScopedChild<'scope, 'env>>
    where
        F: FnOnce() -> R + Send + 'scope,
        R: ChildResult,
    {
        let (pid, report) = super::fork::start(self.allow_threads.get(), f)?;
        Ok(self.record(pid, report))
    }

    /// Forks a child that runs `f(lent)`: the way to hand a child chunks of shared arrays to
    /// work on in place. Each slice in `lent` (see [`Lend`]: `&mut [T]`, `&[T]`, `&mut T`,
    /// tuples, `Vec`s and arrays of them) is mapped anew in the child, which reaches that
    /// memory, and no other shared array memory, through the value `f` receives. Writes through
    /// a lent `&mut` chunk land in the parent's array; the parent cannot touch the chunk until
    /// the scope has reaped the child.
    ///
    /// Otherwise as [`fork`](Scope::fork): `f` may capture (its captures are the child's copy);
    /// a captured shared array is not mapped in the child.
    ///
    /// # Errors
    ///
    /// [`Error::NotShared`] when a mutable slice in `lent` is not in shared memory (the child
    /// would write its own copy); [`Error::ForkWithThreads`]; an `Io` error if the fork fails.
    /// A child that cannot map what it was lent (out of memory) panics with the reason.
    ///
    /// ```no_run
    /// // (no_run: doctests run inside a multi-threaded harness, where fork is refused.)
    /// let mut a = shmpool::SharedArray::<f64>::from_fn(1 << 16, |i| i as f64)?;
    /// let factor = 2.0;
    /// shmpool::scope(|s| {
    ///     let (left, right) = a.split_at_mut(1 << 15);
    ///     s.fork_with(left, move |c| c.iter_mut().for_each(|x| *x *= factor))?;
    ///     s.fork_with(right, move |c| c.iter_mut().for_each(|x| *x *= factor))?;
    ///     Ok::<(), shmpool::Error>(())
    /// })??;
    /// assert_eq!(a[3], 6.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    ///
    /// A mutable slice of private memory is refused:
    ///
    /// ```no_run
    /// let mut v = vec![0u64; 4];
    /// let r = shmpool::scope(|s| s.fork_with(&mut v[..], |c| c[0] = 1).map(drop)).unwrap();
    /// assert!(matches!(r, Err(shmpool::Error::NotShared { .. })));
    /// ```
    pub fn fork_with<L, F, R>(&'scope self, lent: L, f: F) -> Result<ScopedChild<'scope, 'env>>
    where
        L: Lend + 'scope,
        F: FnOnce(L) -> R + Send + 'scope,
        R: ChildResult,
    {
        let plan = LendPlan::new(&lent)?;
        let (pid, report) = super::fork::start(self.allow_threads.get(), move || {
            let mut at = match plan.map_in_child() {
                Ok(at) => at,
                Err(e) => panic!("the child could not map the memory lent to it: {e}"),
            };
            // SAFETY: `at` holds, in order, the new (or, for private memory, original) address
            // of every region `plan` was made from, which are `lent`'s regions.
            let lent = unsafe { lent.relocate(&mut at) };
            f(lent)
        })?;
        Ok(self.record(pid, report))
    }

    fn record(&'scope self, pid: u32, report: File) -> ScopedChild<'scope, 'env> {
        let mut slots = self.slots.borrow_mut();
        slots.push(Slot { pid, report: Some(report), status: None, joined: false });
        ScopedChild { idx: slots.len() - 1, pid, scope: self }
    }

    /// The child's status, waiting for it until `deadline` (`None`: as long as it takes);
    /// `Ok(None)` if it still runs at the deadline. A child is reaped exactly once.
    fn wait_slot(&self, idx: usize, deadline: Option<Instant>) -> Result<Option<ExitStatus>> {
        let pid = {
            let slots = self.slots.borrow();
            if let Some(st) = &slots[idx].status {
                return Ok(Some(st.clone()));
            }
            slots[idx].pid
        };
        let exit = match deadline {
            None => sys::proc::waitpid(pid).map_err(Error::io("waitpid"))?,
            Some(deadline) => {
                match wait::waitpid_until(pid, deadline, Duration::from_millis(10))
                    .map_err(Error::io("waitpid"))?
                {
                    Some(exit) => exit,
                    None => return Ok(None),
                }
            }
        };
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[idx];
        let st = ExitStatus { exit, panic: slot.report.take().and_then(child::read_report) };
        slot.status = Some(st.clone());
        Ok(Some(st))
    }

    fn reap_all(&self) -> Result<()> {
        let mut first_err = None;
        let n = self.slots.borrow().len();
        for idx in 0..n {
            match self.wait_slot(idx, None) {
                Ok(Some(st)) if !st.success() && !self.slots.borrow()[idx].joined => {
                    let pid = self.slots.borrow()[idx].pid;
                    first_err.get_or_insert(Error::ChildFailed { pid, how: st.to_string() });
                }
                Ok(_) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// A child forked by [`Scope::fork`]. Join it to see how it ended; one never joined is reaped
/// (and its failure reported) when the scope ends, even if this handle was leaked.
pub struct ScopedChild<'scope, 'env> {
    idx: usize,
    pid: u32,
    scope: &'scope Scope<'scope, 'env>,
}

impl ScopedChild<'_, '_> {
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the child to end and returns how it ended.
    pub fn join(self) -> Result<ExitStatus> {
        let st = self
            .scope
            .wait_slot(self.idx, None)?
            .expect("a wait without deadline ends with a status");
        self.scope.slots.borrow_mut()[self.idx].joined = true;
        Ok(st)
    }

    /// Waits at most `timeout` for the child; `Ok(None)` if it still runs (it stays joinable).
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let st = self.scope.wait_slot(self.idx, deadline_after(timeout))?;
        if st.is_some() {
            self.scope.slots.borrow_mut()[self.idx].joined = true;
        }
        Ok(st)
    }

    fn signal(&self, sig: i32) -> Result<()> {
        // A reaped pid may already belong to an unrelated process: never signal it.
        if self.scope.slots.borrow()[self.idx].status.is_some() {
            return Ok(());
        }
        sys::proc::kill(self.pid, sig).map_err(Error::io("kill"))
    }

    /// Sends SIGKILL (Python's `Process.kill`); does nothing once the child has been reaped.
    pub fn kill(&self) -> Result<()> {
        self.signal(libc::SIGKILL)
    }

    /// Sends SIGTERM (Python's `Process.terminate`); does nothing once the child has been reaped.
    pub fn terminate(&self) -> Result<()> {
        self.signal(libc::SIGTERM)
    }
}
