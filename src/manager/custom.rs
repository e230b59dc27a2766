//! Custom managed types (Python's `BaseManager.register`): a type with typed requests and
//! replies, registered on the [`ManagerBuilder`](super::ManagerBuilder), held by the server and
//! reached through a [`CustomProxy`]. Registration is by type, not by value: the builder's
//! type records what is registered ([`Registry`]), so the server's entry function is a plain
//! `fn` that every start method can run, and nothing but data ever crosses.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::session::Object;
use super::wire::{Op, Reply};
use crate::error::Result;

/// A type the manager's server can hold, with the requests it answers.
///
/// The server makes it with `Default`, and calls [`handle`](Managed::handle) for each request
/// a [`CustomProxy`] sends, one at a time (under the server's table lock: keep it short and
/// never block in it). A panic in `handle` refuses that request
/// ([`Error::ManagerRefused`](crate::Error::ManagerRefused)) and leaves the object as the
/// panic left it.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use shmpool::manager::Managed;
///
/// #[derive(Default)]
/// struct Counter(i64);
///
/// #[derive(Serialize, Deserialize)]
/// enum CounterOp { Add(i64), Get }
///
/// impl Managed for Counter {
///     const NAME: &'static str = "Counter";
///     type Request = CounterOp;
///     type Reply = i64;
///     fn handle(&mut self, op: CounterOp) -> i64 {
///         if let CounterOp::Add(n) = op { self.0 += n; }
///         self.0
///     }
/// }
///
/// let m = shmpool::Manager::builder().register::<Counter>().start()?;
/// let c = m.custom::<Counter>()?;
/// c.call(CounterOp::Add(2))?;
/// assert_eq!(c.call(CounterOp::Get)?, 2);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub trait Managed: Default + Send + 'static {
    /// The name the type is registered and created under (unique within one manager).
    const NAME: &'static str;
    /// What a proxy asks.
    type Request: Serialize + DeserializeOwned;
    /// What the object answers.
    type Reply: Serialize + DeserializeOwned;
    /// Answers one request.
    fn handle(&mut self, request: Self::Request) -> Self::Reply;
}

/// A custom object as the server holds it: requests and replies as bytes.
pub(crate) trait Erased: Send {
    /// Decodes a request, handles it, encodes the reply; why not, otherwise.
    fn handle_bytes(&mut self, request: &[u8]) -> std::result::Result<Vec<u8>, String>;
}

impl<T: Managed> Erased for T {
    fn handle_bytes(&mut self, request: &[u8]) -> std::result::Result<Vec<u8>, String> {
        let req: T::Request = postcard::from_bytes(request)
            .map_err(|e| format!("a request for {} does not decode ({e})", T::NAME))?;
        let reply = catch_unwind(AssertUnwindSafe(|| self.handle(req)))
            .map_err(|_| format!("{}::handle panicked on this request", T::NAME))?;
        postcard::to_stdvec(&reply)
            .map_err(|e| format!("{}'s reply does not encode ({e})", T::NAME))
    }
}

/// The custom types registered on a manager, as a type: `()` for none, `(T, R)` for `T` and
/// those of `R`. Built by [`ManagerBuilder::register`](super::ManagerBuilder::register); not
/// meant to be implemented by hand.
///
/// ```
/// fn names<R: shmpool::manager::Registry>() -> Vec<&'static str> { R::names() }
/// assert!(names::<()>().is_empty());
/// ```
pub trait Registry: Send + 'static {
    /// The registered names.
    fn names() -> Vec<&'static str>;
    /// A new object of the type registered as `name`, if one is.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn create(name: &str) -> Option<Box<dyn Erased>>;
}

impl Registry for () {
    fn names() -> Vec<&'static str> {
        Vec::new()
    }

    #[allow(private_interfaces)]
    fn create(_: &str) -> Option<Box<dyn Erased>> {
        None
    }
}

impl<T: Managed, R: Registry> Registry for (T, R) {
    fn names() -> Vec<&'static str> {
        let mut n = R::names();
        n.push(T::NAME);
        n
    }

    #[allow(private_interfaces)]
    fn create(name: &str) -> Option<Box<dyn Erased>> {
        if name == T::NAME { Some(Box::new(T::default())) } else { R::create(name) }
    }
}

/// A proxy to a custom object of type `T` held by a manager's server: [`call`](CustomProxy::call)
/// sends a `T::Request` and returns its `T::Reply`. `Clone`, and serde (it carries the
/// manager's address and key), so it can be a `Process` argument under every start method.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Default)] struct Log(Vec<String>);
/// # impl shmpool::manager::Managed for Log {
/// #     const NAME: &'static str = "Log"; type Request = String; type Reply = usize;
/// #     fn handle(&mut self, line: String) -> usize { self.0.push(line); self.0.len() }
/// # }
/// let m = shmpool::Manager::builder().register::<Log>().start()?;
/// let log = m.custom::<Log>()?;
/// assert_eq!(log.call("started".to_string())?, 1);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct CustomProxy<T: Managed> {
    obj: Object,
    _t: PhantomData<fn() -> T>,
}

impl<T: Managed> Clone for CustomProxy<T> {
    fn clone(&self) -> Self {
        CustomProxy { obj: self.obj.clone(), _t: PhantomData }
    }
}

impl<T: Managed> std::fmt::Debug for CustomProxy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomProxy").field("type", &T::NAME).field("object", &self.obj).finish()
    }
}

impl<T: Managed> CustomProxy<T> {
    pub(crate) fn new(obj: Object) -> Self {
        CustomProxy { obj, _t: PhantomData }
    }

    /// Sends `request` to the object and returns its reply.
    ///
    /// # Errors
    ///
    /// [`Error::ManagerRefused`](crate::Error::ManagerRefused) when the handler panicked or the
    /// request did not decode there; the errors of every proxy call
    /// ([`Error::ManagerGone`](crate::Error::ManagerGone), [`Error::Timeout`](crate::Error::Timeout)).
    ///
    /// ```no_run
    /// # #[derive(Default)] struct Log(Vec<String>);
    /// # impl shmpool::manager::Managed for Log {
    /// #     const NAME: &'static str = "Log"; type Request = String; type Reply = usize;
    /// #     fn handle(&mut self, line: String) -> usize { self.0.push(line); self.0.len() }
    /// # }
    /// # let m = shmpool::Manager::builder().register::<Log>().start()?;
    /// let n = m.custom::<Log>()?.call("a line".to_string())?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn call(&self, request: T::Request) -> Result<T::Reply> {
        let bytes = super::session::encode(&request)?;
        match self.obj.call(Op::Custom(bytes), None)? {
            Reply::Custom(r) => super::session::decode(&r),
            other => Err(super::session::unexpected(other)),
        }
    }

    /// This proxy with another limit on each call (default
    /// [`DEFAULT_CALL_TIMEOUT`](super::DEFAULT_CALL_TIMEOUT)).
    ///
    /// ```no_run
    /// # #[derive(Default)] struct Log(Vec<String>);
    /// # impl shmpool::manager::Managed for Log {
    /// #     const NAME: &'static str = "Log"; type Request = String; type Reply = usize;
    /// #     fn handle(&mut self, line: String) -> usize { self.0.push(line); self.0.len() }
    /// # }
    /// # let m = shmpool::Manager::builder().register::<Log>().start()?;
    /// let log = m.custom::<Log>()?.with_timeout(std::time::Duration::from_secs(1));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.obj.timeout = timeout;
        self
    }
}
