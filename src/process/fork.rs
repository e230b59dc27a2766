//! The fork start method: the child is a copy of the parent at the moment of the call, so it can
//! run any `'static` closure without serializing anything.

use std::fs::File;

use super::alive;
use super::child::{self, ChildResult};
use super::forkserver;
use super::identity;
use super::start_error::StartError;
use crate::sys::{self, proc::Forked};

/// Forks a child running `f`; returns its pid and the read end of its panic report pipe.
///
/// Refuses with `StartError::ForkWithThreads` while the process has other threads, unless
/// `allow_threads`. The child arms the alive pipe, and `PR_SET_PDEATHSIG` too when it was forked
/// from the main thread (the signal fires when the forking *thread* exits).
///
/// `f` may borrow (`'a`): the scoped API reaps the child before those borrows end; `Process`
/// requires `'static`. In the parent, `f` is dropped right after the fork, closing its copies of
/// captured descriptors; `Send` keeps thread-bound values (lock guards) out, whose release by the
/// parent would end the child's exclusive access while it still runs.
pub(crate) fn start<'a, F, R>(allow_threads: bool, f: F) -> Result<(u32, File), StartError>
where
    F: FnOnce() -> R + Send + 'a,
    R: ChildResult,
{
    // Anything buffered would otherwise be printed twice, once by each process.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    // A lock guard (or a `&mut` taken from one) copied into the child would let both processes
    // write what one lock protects; a leaked guard keeps forks refused for good.
    let held = crate::sync::held_guards();
    if held != 0 {
        return Err(StartError::ForkWhileLocked { held });
    }
    let threads = sys::proc::thread_count().map_err(StartError::io("counting threads"))?;
    if threads > 1 && !allow_threads {
        return Err(StartError::ForkWithThreads { threads });
    }
    // An ignored SIGCHLD (inherited from a launcher) would let the kernel reap the child behind
    // our back: waitpid would fail, and a pid we still mean to signal could be reused.
    sys::signal::keep_children_waitable().map_err(StartError::io("sigaction(SIGCHLD)"))?;
    // The alive pipe must exist before the fork, for the child to inherit its read end.
    alive::read_end()?;
    // The child's panic hook is set up here, in the parent: the child must not take the hook lock.
    child::install_panic_hook();
    let (report_r, report_w) = sys::proc::pipe().map_err(StartError::io("pipe"))?;
    let parent = sys::proc::getpid();
    // PR_SET_PDEATHSIG follows the forking thread: arm it only when that thread lives as long as
    // the process; the alive pipe guards the child either way.
    let pdeathsig = sys::proc::is_main_thread();
    // SAFETY: either the process is single-threaded (checked above), or the caller accepted the
    // multi-threaded risk through `Context::allow_threads`, whose contract limits what `f` does.
    match unsafe { sys::proc::fork() }.map_err(StartError::io("fork"))? {
        Forked::Child => {
            // The fork handlers (`segment::forkmap`) sealed the parent's array mappings already;
            // a fault in one explains itself to the parent. Failing that, it just faults.
            let _ = sys::map::explain_faults(std::os::fd::AsRawFd::as_raw_fd(&report_w));
            drop(report_r);
            forkserver::forget_in_forked_child();
            if threads > 1 {
                // Another thread may have held stdout's lock at the fork: never take it here.
                child::skip_flush_at_exit();
            }
            // The record read here is the parent's, copied by the fork: its name is the parent's.
            let child_name = format!("Child-{}", sys::proc::getpid());
            identity::become_child(child_name, false, parent, identity::current_name());
            if !alive::guard_forked_child() {
                sys::proc::exit_now(child::PANIC_EXIT_CODE + 1);
            }
            if pdeathsig { child::run(parent, report_w, f) } else { child::finish(report_w, f) }
        }
        Forked::Parent(pid) => {
            drop(report_w);
            Ok((pid, report_r))
        }
    }
}
