//! The start-method enum (Python's `fork`, `forkserver`, `spawn`): a leaf every layer of the
//! process module may name without importing the layer that implements a method.

use std::fmt;

/// How a child process is started (Python's start methods).
///
/// | method | child starts as | runs | cost here (start + join; in a pool: start, replacement) |
/// |---|---|---|---|
/// | `Fork` | a copy of the caller | any `'static` closure | 0.2 ms in a small caller, plus ~20 ms per GiB of its private memory (its page tables are copied) and as much again at the child's exit; refused in a multi-threaded caller unless opted in |
/// | `ForkServer` | a fork of a clean single-threaded server | a `fn(A) -> R` with serde arguments | ~0.25 ms however large the caller, after one launch of the server (~2 ms) |
/// | `Spawn` | a fresh run of the program | a `fn(A) -> R` with serde arguments | ~1.2-2 ms (an exec, started with `posix_spawn`), however large the caller |
///
/// The default, for [`Context::default`](crate::Context::default) and [`Pool`](crate::Pool) alike,
/// is the one [`set_start_method`](crate::set_start_method) chose, else `ForkServer` (this
/// type's `Default`), as in Python 3.14 on Linux: constant in the caller's size, safe in a
/// multi-threaded caller, and its children inherit nothing. Choose `Fork` for a small
/// single-threaded program that wants the fastest start or closures; avoid it in a parent that
/// holds gigabytes (`docs/benchmarks.md`).
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
