//! `QueueProxy`: a FIFO queue held by the manager's server (Python's `Manager().Queue()`),
//! which, unlike the shared-memory queues, can be reached over TCP from another machine.

use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::proxy::proxy_common;
use super::session::{Object, decode, encode, millis, unexpected};
use super::shared;
use super::wire::{Op, Reply};
use crate::error::{Error, Result};

/// A proxy to a queue of `T` held by a [`Manager`](crate::Manager)'s server, unbounded or
/// bounded ([`Manager::bounded_queue`](crate::Manager::bounded_queue)), or a ring in shared
/// memory that proxies on the server's machine use directly
/// ([`Manager::queue_with_capacity`](crate::Manager::queue_with_capacity)). `put` and `get` wait at
/// most the proxy's call timeout; their `_timeout` forms say how long. `Clone` and serde, like
/// every proxy.
///
/// ```
/// let m = shmpool::Manager::start()?;
/// let q = m.queue::<String>()?;
/// q.put(&"job".to_string())?;
/// assert_eq!(q.get()?, "job");
/// assert_eq!(q.get_nowait()?, None);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct QueueProxy<T> {
    obj: Object,
    _t: PhantomData<fn() -> T>,
}

proxy_common!(QueueProxy [T] "queue::<u32>()");

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    /// Adds `item`, waiting for room (a bounded queue) up to the call timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the queue stayed full.
    ///
    /// ```no_run
    /// # let q = shmpool::Manager::start()?.queue::<u32>()?;
    /// q.put(&1)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn put(&self, item: &T) -> Result<()> {
        self.put_timeout(item, self.obj.timeout)
    }

    /// Adds `item`, waiting for room up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the queue stayed full.
    ///
    /// ```no_run
    /// # let q = shmpool::Manager::start()?.bounded_queue::<u32>(1)?;
    /// q.put_timeout(&1, std::time::Duration::from_millis(10))?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<()> {
        let item = encode(item)?;
        let fast = shared::local_queue(&self.obj, |q, alive| {
            shared::queue_put(q, &item, timeout, || alive.check())
        });
        let put = match fast {
            Some(r) => r?,
            None => {
                let op = Op::QueuePut { item, wait_ms: millis(timeout) };
                match self.obj.call(op, Some(timeout))? {
                    Reply::Bool(b) => b,
                    r => return Err(unexpected(r)),
                }
            }
        };
        if put { Ok(()) } else { Err(Error::Timeout { what: "manager queue put", after: timeout }) }
    }

    /// Takes the oldest item, waiting for one up to the call timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when none came.
    ///
    /// ```no_run
    /// # let q = shmpool::Manager::start()?.queue::<u32>()?;
    /// let item = q.get()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get(&self) -> Result<T> {
        self.get_timeout(self.obj.timeout)
    }

    /// Takes the oldest item, waiting for one up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when none came.
    ///
    /// ```no_run
    /// # let q = shmpool::Manager::start()?.queue::<u32>()?;
    /// let item = q.get_timeout(std::time::Duration::from_secs(1))?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.take(timeout)?.ok_or(Error::Timeout { what: "manager queue get", after: timeout })
    }

    /// Takes the oldest item if there is one, without waiting.
    ///
    /// ```no_run
    /// # let q = shmpool::Manager::start()?.queue::<u32>()?;
    /// if let Some(item) = q.get_nowait()? { println!("{item}"); }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_nowait(&self) -> Result<Option<T>> {
        self.take(Duration::ZERO)
    }

    fn take(&self, timeout: Duration) -> Result<Option<T>> {
        let fast = shared::local_queue(&self.obj, |q, alive| {
            shared::queue_get(q, timeout, || alive.check())
        });
        if let Some(r) = fast {
            return r?.map(|b| decode(&b)).transpose();
        }
        self.obj.call_item(Op::QueueGet { wait_ms: millis(timeout) }, Some(timeout))
    }

    /// How many items it holds (Python's `qsize()`).
    ///
    /// ```no_run
    /// # let q = shmpool::Manager::start()?.queue::<u32>()?;
    /// let n = q.len()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        if let Some(r) = shared::local_queue(&self.obj, |q, alive| {
            alive.check()?;
            Ok(q.qsize())
        }) {
            return r;
        }
        self.obj.len()
    }

    /// Whether it holds no item.
    ///
    /// ```no_run
    /// # let q = shmpool::Manager::start()?.queue::<u32>()?;
    /// assert!(q.is_empty()?);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}
