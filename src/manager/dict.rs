//! `DictProxy`: a typed map held by the manager's server (Python's `Manager().dict()`).

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::proxy::proxy_common;
use super::session::{Object, decode, encode, unexpected};
use super::wire::{Op, Reply};
use crate::error::Result;

/// A proxy to a map from `K` to `V` held by a [`Manager`](crate::Manager)'s server.
///
/// Keys are compared as their postcard bytes, so equal keys must encode equally (true of
/// numbers, strings, tuples and derived structs; not of floats that differ only in NaN bits, or
/// of a `HashMap` inside a key); [`keys`](DictProxy::keys) and [`items`](DictProxy::items) come
/// in the order of those bytes. `Clone`, and serde (it carries the manager's address and key),
/// so it can be a `Process` argument under every start method.
///
/// ```
/// let m = shmpool::Manager::start()?;
/// let d = m.dict::<String, u64>()?;
/// d.set(&"a".to_string(), &1)?;
/// assert_eq!(d.get(&"a".to_string())?, Some(1));
/// assert_eq!(d.len()?, 1);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct DictProxy<K, V> {
    obj: Object,
    _t: PhantomData<fn() -> (K, V)>,
}

proxy_common!(DictProxy [K, V] "dict::<String, u64>()");

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// The value of `key`, if it has one (Python's `d.get(key)`).
    ///
    /// ```no_run
    /// # let d = shmpool::Manager::start()?.dict::<u32, String>()?;
    /// let v: Option<String> = d.get(&7)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        self.obj.call_item(Op::DictGet(encode(key)?), None)
    }

    /// Sets `key` to `value` (Python's `d[key] = value`).
    ///
    /// ```no_run
    /// # let d = shmpool::Manager::start()?.dict::<u32, String>()?;
    /// d.set(&7, &"seven".to_string())?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn set(&self, key: &K, value: &V) -> Result<()> {
        self.obj.call_done(Op::DictSet(encode(key)?, encode(value)?), None)
    }

    /// Removes `key`, returning its value if it had one (Python's `d.pop(key, None)`).
    ///
    /// ```no_run
    /// # let d = shmpool::Manager::start()?.dict::<u32, String>()?;
    /// let old = d.remove(&7)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        self.obj.call_item(Op::DictRemove(encode(key)?), None)
    }

    /// Whether `key` has a value (Python's `key in d`).
    ///
    /// ```no_run
    /// # let d = shmpool::Manager::start()?.dict::<u32, String>()?;
    /// let there = d.contains_key(&7)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        self.obj.call_bool(Op::DictContains(encode(key)?), None)
    }

    /// How many keys it holds.
    ///
    /// ```no_run
    /// # let d = shmpool::Manager::start()?.dict::<u32, String>()?;
    /// let n = d.len()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        self.obj.len()
    }

    /// Whether it holds no key.
    ///
    /// ```no_run
    /// # let d = shmpool::Manager::start()?.dict::<u32, String>()?;
    /// assert!(d.is_empty()?);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Sets every pair, in one request (Python's `d.update(pairs)`).
    ///
    /// ```no_run
    /// # let d = shmpool::Manager::start()?.dict::<u32, String>()?;
    /// d.update([(1, "one".to_string()), (2, "two".to_string())])?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn update(&self, pairs: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        let pairs = pairs
            .into_iter()
            .map(|(k, v)| Ok((encode(&k)?, encode(&v)?)))
            .collect::<Result<_>>()?;
        self.obj.call_done(Op::DictUpdate(pairs), None)
    }

    /// A snapshot of the keys.
    ///
    /// ```no_run
    /// # let d = shmpool::Manager::start()?.dict::<u32, String>()?;
    /// let keys: Vec<u32> = d.keys()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn keys(&self) -> Result<Vec<K>> {
        match self.obj.call(Op::DictKeys, None)? {
            Reply::Items(ks) => ks.iter().map(|k| decode(k)).collect(),
            r => Err(unexpected(r)),
        }
    }

    /// A snapshot of the pairs.
    ///
    /// ```no_run
    /// # let d = shmpool::Manager::start()?.dict::<u32, String>()?;
    /// for (k, v) in d.items()? { println!("{k}: {v}"); }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        match self.obj.call(Op::DictItems, None)? {
            Reply::Pairs(ps) => ps.iter().map(|(k, v)| Ok((decode(k)?, decode(v)?))).collect(),
            r => Err(unexpected(r)),
        }
    }

    /// Removes every key.
    ///
    /// ```no_run
    /// # let d = shmpool::Manager::start()?.dict::<u32, String>()?;
    /// d.clear()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.obj.call_done(Op::Clear, None)
    }
}
