//! The process-global default start method: Python's `set_start_method` and `get_start_method`.
//! A leaf beside `method.rs`: one atomic word, read by whatever starts children without naming a
//! method ([`Context::default`](crate::Context::default), and the pool when its builder was given
//! none).
//!
//! As in Python, the default is fixed the first time it is used or read: by `set_start_method`,
//! by `get_start_method`, by `Context::default()`, or by a start that took the default. Setting
//! it after that fails ([`StartMethodAlreadySet`]), unless forced (Python's `force=True`). A
//! method chosen explicitly (`get_context(method)`, `PoolBuilder::start_method`) neither reads
//! nor fixes the default, and the default never overrides it.

use std::sync::atomic::{AtomicU8, Ordering};

use super::method::StartMethod;

/// 0 while unset; otherwise 1 + the method's index in [`METHODS`].
static DEFAULT: AtomicU8 = AtomicU8::new(0);

const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn];

fn encode(m: StartMethod) -> u8 {
    1 + METHODS.iter().position(|&x| x == m).expect("every method is listed") as u8
}

fn decode(word: u8) -> Option<StartMethod> {
    word.checked_sub(1).map(|i| METHODS[usize::from(i)])
}

/// [`set_start_method`] was refused: the default start method is already fixed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the default start method is already fixed as {current}, set earlier or used by a start that \
     took the default (as Python's set_start_method raises \"context has already been set\"): \
     call shmpool::set_start_method once, first thing in main, choose a method per start with \
     shmpool::get_context(method), or replace it with shmpool::process::force_start_method"
)]
pub struct StartMethodAlreadySet {
    /// The method already fixed.
    pub current: StartMethod,
}

/// The default start method for this process, fixed from now on: the one set, else
/// [`StartMethod::default`] (the forkserver, as Python 3.14 on Linux). For the crate's
/// starters that were given no method (`Context::default`, `PoolBuilder::build`).
pub(crate) fn default_start_method() -> StartMethod {
    let fallback = encode(StartMethod::default());
    match DEFAULT.compare_exchange(0, fallback, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => StartMethod::default(),
        Err(word) => decode(word).unwrap_or_default(),
    }
}

/// Sets the default start method of this process (Python's
/// `multiprocessing.set_start_method(method)`): the one [`Context::default`](crate::Context::default)
/// and a [`Pool`](crate::Pool) built without a method use. Call it once, first thing in `main`.
///
/// # Errors
///
/// [`StartMethodAlreadySet`] when the default was already set or used (by this function, by
/// [`get_start_method`], or by a start that took the default), as Python raises
/// `RuntimeError("context has already been set")`; [`force_start_method`] is Python's
/// `force=True`.
///
/// ```
/// use shmpool::{StartMethod, get_start_method, set_start_method};
/// set_start_method(StartMethod::Spawn)?;
/// assert_eq!(get_start_method(), StartMethod::Spawn);
/// assert_eq!(shmpool::Context::default().method(), StartMethod::Spawn);
/// // A second call is refused, as in Python.
/// assert!(set_start_method(StartMethod::Fork).is_err());
/// // An explicit choice ignores the default.
/// assert_eq!(shmpool::get_context(StartMethod::Fork).method(), StartMethod::Fork);
/// # Ok::<(), shmpool::process::StartMethodAlreadySet>(())
/// ```
pub fn set_start_method(method: StartMethod) -> Result<(), StartMethodAlreadySet> {
    match DEFAULT.compare_exchange(0, encode(method), Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Ok(()),
        Err(word) => Err(StartMethodAlreadySet { current: decode(word).unwrap_or_default() }),
    }
}

/// Sets the default start method even if it was already set or used (Python's
/// `set_start_method(method, force=True)`). Children already started keep the method they were
/// started with.
///
/// ```
/// use shmpool::{StartMethod, get_start_method};
/// shmpool::process::force_start_method(StartMethod::Fork);
/// assert_eq!(get_start_method(), StartMethod::Fork);
/// ```
pub fn force_start_method(method: StartMethod) {
    DEFAULT.store(encode(method), Ordering::Release);
}

/// The default start method (Python's `multiprocessing.get_start_method()`): the one set with
/// [`set_start_method`], else the forkserver. As in Python, reading it fixes it: a later
/// [`set_start_method`] is refused.
///
/// ```
/// assert_eq!(shmpool::get_start_method(), shmpool::StartMethod::ForkServer);
/// assert!(shmpool::set_start_method(shmpool::StartMethod::Spawn).is_err()); // fixed by reading
/// ```
pub fn get_start_method() -> StartMethod {
    default_start_method()
}
