//! `DictProxy`: a typed map held by the manager's server (Python's `Manager().dict()`).

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::proxy::proxy_common;
use super::session::{Object, decode, encode, unexpected};
use super::shared;
use super::table::Table;
use super::wire::{Op, Reply};
use crate::error::{Error, Result};

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
        let k = encode(key)?;
        if let Some(r) = self.local(|t| t.get(&k)) {
            return r?.map(|v| decode(&v)).transpose();
        }
        self.obj.call_item(Op::DictGet(k), None)
    }

    /// Sets `key` to `value` (Python's `d[key] = value`).
    ///
    /// ```no_run
    /// # let d = shmpool::Manager::start()?.dict::<u32, String>()?;
    /// d.set(&7, &"seven".to_string())?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn set(&self, key: &K, value: &V) -> Result<()> {
        let (k, v) = (encode(key)?, encode(value)?);
        if let Some(r) = self.local(|t| t.set(&k, &v)) {
            return r?.map_err(|full| Error::ManagerRefused { reason: full.reason() });
        }
        self.obj.call_done(Op::DictSet(k, v), None)
    }

    /// Removes `key`, returning its value if it had one (Python's `d.pop(key, None)`).
    ///
    /// ```no_run
    /// # let d = shmpool::Manager::start()?.dict::<u32, String>()?;
    /// let old = d.remove(&7)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        let k = encode(key)?;
        if let Some(r) = self.local(|t| t.remove(&k)) {
            return r?.map(|v| decode(&v)).transpose();
        }
        self.obj.call_item(Op::DictRemove(k), None)
    }

    /// Whether `key` has a value (Python's `key in d`).
    ///
    /// ```no_run
    /// # let d = shmpool::Manager::start()?.dict::<u32, String>()?;
    /// let there = d.contains_key(&7)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        let k = encode(key)?;
        if let Some(r) = self.local(|t| t.contains(&k)) {
            return r;
        }
        self.obj.call_bool(Op::DictContains(k), None)
    }

    /// How many keys it holds.
    ///
    /// ```no_run
    /// # let d = shmpool::Manager::start()?.dict::<u32, String>()?;
    /// let n = d.len()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        if let Some(r) = self.local(|t| t.len() as usize) {
            return r;
        }
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
            .collect::<Result<Vec<_>>>()?;
        let set_all = |t: &mut Table<'_>| pairs.iter().try_for_each(|(k, v)| t.set(k, v));
        if let Some(r) = self.local(set_all) {
            return r?.map_err(|full| Error::ManagerRefused { reason: full.reason() });
        }
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
        if let Some(r) = self.local(|t| t.pairs()) {
            return r?.iter().map(|(k, _)| decode(k)).collect();
        }
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
        if let Some(r) = self.local(|t| t.pairs()) {
            return r?.iter().map(|(k, v)| Ok((decode(k)?, decode(v)?))).collect();
        }
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
        if let Some(r) = self.local(|t| t.clear()) {
            return r;
        }
        self.obj.call_done(Op::Clear, None)
    }

    /// Runs `f` on the dict's table in this process if it is a shared dict reachable from
    /// here (`None`: ask the server).
    fn local<R>(&self, f: impl FnOnce(&mut Table<'_>) -> R) -> Option<Result<R>> {
        shared::local(&self.obj, f)
    }
}
