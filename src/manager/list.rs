//! `ListProxy`: a typed list held by the manager's server (Python's `Manager().list()`).

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::proxy::proxy_common;
use super::session::{Object, decode, encode, unexpected};
use super::wire::{Op, Reply};
use crate::error::Result;

/// A proxy to a list of `T` held by a [`Manager`](crate::Manager)'s server. Indices may be
/// negative (from the end), as in Python. Iterate over a [`snapshot`](ListProxy::snapshot):
/// one request, a copy, unaffected by later changes. `Clone` and serde, like every proxy.
///
/// ```
/// let m = shmpool::Manager::start()?;
/// let l = m.list::<i32>()?;
/// l.extend([1, 2, 3])?;
/// l.append(&4)?;
/// assert_eq!(l.get(-1)?, Some(4));
/// assert_eq!(l.pop()?, Some(4));
/// assert_eq!(l.snapshot()?, [1, 2, 3]);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ListProxy<T> {
    obj: Object,
    _t: PhantomData<fn() -> T>,
}

proxy_common!(ListProxy [T] "list::<i32>()");

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Appends `item`.
    ///
    /// ```no_run
    /// # let l = shmpool::Manager::start()?.list::<i32>()?;
    /// l.append(&5)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn append(&self, item: &T) -> Result<()> {
        self.done(Op::ListAppend(encode(item)?))
    }

    /// Appends every item, in one request.
    ///
    /// ```no_run
    /// # let l = shmpool::Manager::start()?.list::<i32>()?;
    /// l.extend(0..10)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> Result<()> {
        let items = items.into_iter().map(|i| encode(&i)).collect::<Result<_>>()?;
        self.done(Op::ListExtend(items))
    }

    /// The item at `index` (negative: from the end), if there is one.
    ///
    /// ```no_run
    /// # let l = shmpool::Manager::start()?.list::<i32>()?;
    /// let first = l.get(0)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get(&self, index: i64) -> Result<Option<T>> {
        self.item(Op::ListGet(index))
    }

    /// Replaces the item at `index`.
    ///
    /// # Errors
    ///
    /// [`Error::ManagerRefused`](crate::Error::ManagerRefused) when `index` is out of range
    /// (Python's `IndexError`).
    ///
    /// ```no_run
    /// # let l = shmpool::Manager::start()?.list::<i32>()?;
    /// l.set(0, &9)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn set(&self, index: i64, item: &T) -> Result<()> {
        self.done(Op::ListSet(index, encode(item)?))
    }

    /// Removes and returns the last item, if any.
    ///
    /// ```no_run
    /// # let l = shmpool::Manager::start()?.list::<i32>()?;
    /// let last = l.pop()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn pop(&self) -> Result<Option<T>> {
        self.item(Op::ListPop(None))
    }

    /// Removes and returns the item at `index`, if there is one.
    ///
    /// ```no_run
    /// # let l = shmpool::Manager::start()?.list::<i32>()?;
    /// let first = l.pop_at(0)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn pop_at(&self, index: i64) -> Result<Option<T>> {
        self.item(Op::ListPop(Some(index)))
    }

    /// How many items it holds.
    ///
    /// ```no_run
    /// # let l = shmpool::Manager::start()?.list::<i32>()?;
    /// let n = l.len()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        self.obj.len()
    }

    /// Whether it holds no item.
    ///
    /// ```no_run
    /// # let l = shmpool::Manager::start()?.list::<i32>()?;
    /// assert!(l.is_empty()?);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A copy of every item, in one request: iterate over this.
    ///
    /// ```no_run
    /// # let l = shmpool::Manager::start()?.list::<i32>()?;
    /// for x in l.snapshot()? { println!("{x}"); }
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn snapshot(&self) -> Result<Vec<T>> {
        match self.obj.call(Op::ListSnapshot, None)? {
            Reply::Items(items) => items.iter().map(|i| decode(i)).collect(),
            r => Err(unexpected(r)),
        }
    }

    /// Removes every item.
    ///
    /// ```no_run
    /// # let l = shmpool::Manager::start()?.list::<i32>()?;
    /// l.clear()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.done(Op::Clear)
    }

    fn done(&self, op: Op) -> Result<()> {
        self.obj.call_done(op, None)
    }

    fn item(&self, op: Op) -> Result<Option<T>> {
        self.obj.call_item(op, None)
    }
}
