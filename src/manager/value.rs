//! `ValueProxy`: one typed value held by the manager's server (Python's `Manager().Value()`,
//! and its `Namespace` as a typed record).

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::proxy::proxy_common;
use super::session::{Object, decode, encode, unexpected};
use super::wire::{Op, Reply};
use crate::error::Result;

/// A proxy to one value of type `T` held by a [`Manager`](crate::Manager)'s server.
///
/// Python's `Namespace` (attributes set and read by any process) is a `ValueProxy` of a struct
/// of your own: a typed record, read and replaced whole. `Clone` and serde, like every proxy.
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
/// struct Settings { x: i32, name: String }
///
/// let m = shmpool::Manager::start()?;
/// let ns = m.value(&Settings { x: 1, name: "a".into() })?;
/// let mut s = ns.get()?;
/// s.x += 1;
/// ns.set(&s)?;
/// assert_eq!(ns.get()?.x, 2);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ValueProxy<T> {
    obj: Object,
    _t: PhantomData<fn() -> T>,
}

proxy_common!(ValueProxy [T] "value(&0u64)");

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// The value.
    ///
    /// ```no_run
    /// # let v = shmpool::Manager::start()?.value(&0u64)?;
    /// let n: u64 = v.get()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get(&self) -> Result<T> {
        match self.obj.call(Op::ValueGet, None)? {
            Reply::Item(Some(b)) => decode(&b),
            r => Err(unexpected(r)),
        }
    }

    /// Replaces the value.
    ///
    /// ```no_run
    /// # let v = shmpool::Manager::start()?.value(&0u64)?;
    /// v.set(&5)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn set(&self, value: &T) -> Result<()> {
        match self.obj.call(Op::ValueSet(encode(value)?), None)? {
            Reply::Done => Ok(()),
            r => Err(unexpected(r)),
        }
    }
}
