//! Contexts, as Python's `multiprocessing.get_context`: a start method and its options, on top of
//! the process module (it names the builder and the `Process` handle; nothing below names it).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::builder::ProcessBuilder;
use super::child::ChildResult;
use super::default_method::default_start_method;
use super::handle::Process;
pub use super::method::StartMethod;
use crate::error::Result;

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

/// The context of the process-global default start method (Python's `get_context()` without a
/// method): the one [`set_start_method`](crate::set_start_method) chose, else the forkserver.
/// As in Python, this fixes the default: a later `set_start_method` is refused.
impl Default for Context {
    fn default() -> Context {
        get_context(default_start_method())
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
        ProcessBuilder::new(self.method, self.allow_threads)
    }

    /// Starts a child running `f(args)`, under any start method. Under `fork` the arguments are
    /// moved into the child; under `forkserver` and `spawn` they cross encoded with postcard (a
    /// binary serde format: NaN payloads, infinities and non-string map keys arrive bit for bit)
    /// and the function as an offset within the executable. Shared memory crosses as handles
    /// ([`SharedArray::handle`](crate::SharedArray::handle)); shmpool's shared objects (locks,
    /// semaphores, events, conditions, barriers, [`SharedValue`](crate::SharedValue),
    /// [`LockedArray`](crate::LockedArray), ...) are serde themselves, encoded as their handles,
    /// and arrive open. The returned [`Process`] keeps the arguments until the child has ended
    /// (even when dropped), since an anonymous object's handle names this process's descriptor.
    /// Under `fork` a [`LockedArray`](crate::LockedArray)'s elements are not inherited: pass its
    /// handle there.
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
