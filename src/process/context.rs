//! Start methods and contexts, as Python's `multiprocessing.get_context`.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::builder::ProcessBuilder;
use super::child::ChildResult;
use super::handle::Process;
use crate::error::Result;

/// How a child process is started (Python's start methods).
///
/// | method | child starts as | runs | cost here (start + join; in a pool: start, replacement) |
/// |---|---|---|---|
/// | `Fork` | a copy of the caller | any `'static` closure | 0.2 ms in a small caller, plus ~20 ms per GiB of its private memory (its page tables are copied) and as much again at the child's exit; refused in a multi-threaded caller unless opted in |
/// | `ForkServer` | a fork of a clean single-threaded server | a `fn(A) -> R` with serde arguments | ~0.25 ms however large the caller, after one launch of the server (~2 ms) |
/// | `Spawn` | a fresh run of the program | a `fn(A) -> R` with serde arguments | ~1.2-2 ms (an exec, started with `posix_spawn`), however large the caller |
///
/// The default, for [`Context::default`] and [`Pool`](crate::Pool) alike, is `ForkServer`, as in
/// Python 3.14 on Linux: constant in the caller's size, safe in a multi-threaded caller, and its
/// children inherit nothing. Choose `Fork` for a small single-threaded program that wants the
/// fastest start or closures; avoid it in a parent that holds gigabytes (`docs/benchmarks.md`).
///
/// ```
/// use shmpool::StartMethod;
/// assert_eq!(StartMethod::from_name("spawn"), Some(StartMethod::Spawn));
/// assert_eq!(StartMethod::default(), StartMethod::ForkServer); // as Python 3.14 on Linux
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StartMethod {
    /// `fork()` the caller: fastest while the caller is small, but the fork copies the page
    /// tables of all its private memory (~20 ms per GiB here, as much again at the child's exit);
    /// refused while it has other threads. Prefer `ForkServer` (the default) in a large parent.
    Fork,
    /// Ask the forkserver to fork a worker (the default, as in Python 3.14 on Linux).
    #[default]
    ForkServer,
    /// Re-execute the program as a worker.
    Spawn,
}

impl StartMethod {
    /// Python's name for it: `"fork"`, `"forkserver"` or `"spawn"`.
    ///
    /// ```
    /// assert_eq!(shmpool::StartMethod::Fork.name(), "fork");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Fork => "fork",
            StartMethod::ForkServer => "forkserver",
            StartMethod::Spawn => "spawn",
        }
    }

    /// The method of that Python name.
    ///
    /// ```
    /// assert_eq!(shmpool::StartMethod::from_name("fork"), Some(shmpool::StartMethod::Fork));
    /// assert_eq!(shmpool::StartMethod::from_name("vfork"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<StartMethod> {
        match name {
            "fork" => Some(StartMethod::Fork),
            "forkserver" => Some(StartMethod::ForkServer),
            "spawn" => Some(StartMethod::Spawn),
            _ => None,
        }
    }
}

impl fmt::Display for StartMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A start method and its options; starts processes (Python's `get_context(...)`).
///
/// ```no_run
/// use shmpool::{StartMethod, get_context};
///
/// fn work((a, b): (u64, u64)) -> i32 { (a + b) as i32 }
///
/// for m in [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn] {
///     let mut p = get_context(m).start(work, (2, 3))?;
///     assert_eq!(p.join()?.exitcode(), 5);
/// }
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    method: StartMethod,
    allow_threads: bool,
}

/// A context for `method` (Python's `multiprocessing.get_context`).
///
/// ```
/// let ctx = shmpool::get_context(shmpool::StartMethod::Spawn);
/// assert_eq!(ctx.method(), shmpool::StartMethod::Spawn);
/// ```
pub fn get_context(method: StartMethod) -> Context {
    Context { method, allow_threads: false }
}

impl Default for Context {
    fn default() -> Context {
        get_context(StartMethod::default())
    }
}

impl Context {
    /// The start method.
    ///
    /// ```
    /// assert_eq!(shmpool::Context::default().method(), shmpool::StartMethod::ForkServer);
    /// ```
    pub fn method(&self) -> StartMethod {
        self.method
    }

    /// Under `fork`, accept the risk of forking while this process has other threads (otherwise
    /// refused with [`Error::ForkWithThreads`](crate::Error::ForkWithThreads)). Other methods
    /// never fork a multi-threaded process, and ignore this.
    ///
    /// # Safety
    ///
    /// After a fork in a multi-threaded process, POSIX allows the child only async-signal-safe
    /// calls: a lock another thread holds at the fork (stdout's, any `std::sync::Mutex`, a rayon
    /// registry's) stays locked forever in the child. The caller promises that children started
    /// under `fork` from this context touch nothing but shared memory, their own stack and
    /// glibc's `malloc`.
    ///
    /// ```
    /// // SAFETY: no process is started from this context here.
    /// let ctx = unsafe { shmpool::get_context(shmpool::StartMethod::Fork).allow_threads() };
    /// # let _ = ctx;
    /// ```
    pub unsafe fn allow_threads(mut self) -> Context {
        self.allow_threads = true;
        self
    }

    pub(crate) fn threads_allowed(&self) -> bool {
        self.allow_threads
    }

    /// A builder to set the process's name and daemon flag before starting it.
    ///
    /// ```no_run
    /// # fn f(_: ()) {}
    /// let mut p = shmpool::get_context(shmpool::StartMethod::ForkServer)
    ///     .process()
    ///     .name("loader")
    ///     .daemon(true)
    ///     .start(f, ())?;
    /// p.join()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn process(&self) -> ProcessBuilder {
        ProcessBuilder::new(self.clone())
    }

    /// Starts a child running `f(args)`, under any start method. Under `fork` the arguments are
    /// moved into the child; under `forkserver` and `spawn` they cross encoded with postcard (a
    /// binary serde format: NaN payloads, infinities and non-string map keys arrive bit for bit)
    /// and the function as an offset within the executable. Shared memory crosses as handles
    /// ([`SharedArray::handle`](crate::SharedArray::handle)).
    ///
    /// # Errors
    ///
    /// Under `forkserver` and `spawn`, [`Error::Serialize`](crate::Error::Serialize) when the
    /// arguments do not survive the trip: postcard is not self-describing, so a type that needs
    /// that (`#[serde(untagged)]`, `#[serde(flatten)]`, `serde_json::Value`) is refused here,
    /// before any process starts; [`Error::InvalidArgument`](crate::Error::InvalidArgument) when
    /// they encode to more than a job may carry (1 GiB: pass large data as a handle).
    ///
    /// ```
    /// // (spawn and forkserver never fork this multi-threaded doctest; they re-execute it.)
    /// fn hello(who: String) { println!("hello, {who}"); }
    /// let mut p = shmpool::get_context(shmpool::StartMethod::Spawn).start(hello, "world".to_string())?;
    /// assert!(p.join()?.success());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn start<A, R>(&self, f: fn(A) -> R, args: A) -> Result<Process>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: ChildResult + 'static,
    {
        self.process().start(f, args)
    }

    /// Starts a child running the closure `f`: `fork` only (the child gets a copy of this
    /// process's memory, so the closure needs no serializing); other methods refuse with
    /// [`Error::ClosureNeedsFork`](crate::Error::ClosureNeedsFork).
    ///
    /// ```no_run
    /// let table = vec![1, 2, 3];
    /// let mut p = shmpool::get_context(shmpool::StartMethod::Fork)
    ///     .start_closure(move || table.iter().sum::<i32>())?;
    /// assert_eq!(p.join()?.exitcode(), 6);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn start_closure<F, R>(&self, f: F) -> Result<Process>
    where
        F: FnOnce() -> R + Send + 'static,
        R: ChildResult,
    {
        self.process().start_closure(f)
    }
}
