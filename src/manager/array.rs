//! `ArrayProxy`: a typed array held by the manager's server in shared memory (Python's
//! `Manager().Array(typecode, sequence)`), which proxies on the server's machine map.

use std::marker::PhantomData;

use bytemuck::Pod;
use serde::{Deserialize, Serialize};

use super::proxy::proxy_common;
use super::session::{Object, unexpected};
use super::shared;
use super::wire::{Op, Reply};
use crate::error::{Error, Result};

/// A proxy to an array of `len` elements of `T` held by a [`Manager`](crate::Manager)'s server,
/// as bytes in shared memory under a robust lock. On the server's machine a proxy maps them:
/// [`get`](ArrayProxy::get) and [`set`](ArrayProxy::set) never cross the socket, and
/// [`with_local`](ArrayProxy::with_local) hands a closure the elements themselves, in place,
/// under the lock (bulk data is not copied). Elsewhere every call goes through the server. A
/// holder killed mid-write leaves the elements as it left them, as with any lock whose holder
/// died. `Clone` and serde, like every proxy.
///
/// ```
/// let m = shmpool::Manager::start()?;
/// let a = m.array_from(&[1.0f64, 2.0, 3.0])?;
/// a.set(0, 10.0)?;
/// assert_eq!(a.get(0)?, 10.0);
/// let total = a.with_local(|xs| xs.iter().sum::<f64>())?; // in place, no copy
/// assert_eq!(total, Some(15.0));
/// assert_eq!(a.to_vec()?, [10.0, 2.0, 3.0]);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ArrayProxy<T> {
    obj: Object,
    _t: PhantomData<fn() -> T>,
}

proxy_common!(ArrayProxy [T] "array::<f64>(4)");

fn out_of_range(i: usize, len: usize) -> Error {
    Error::InvalidArgument {
        what: "manager array index",
        reason: format!("index {i} is out of range for an array of {len} elements; check len()"),
    }
}

/// The elements whose bytes `b` holds (any alignment).
fn elements<T: Pod>(b: &[u8]) -> Vec<T> {
    b.chunks_exact(size_of::<T>()).map(bytemuck::pod_read_unaligned).collect()
}

impl<T: Pod> ArrayProxy<T> {
    const SIZE: usize = size_of::<T>();

    /// Refuses a zero-sized `T`: [`Manager::array`](crate::Manager::array) never makes one,
    /// but a proxy decoded (serde) as another element type could ask, and its bytes would
    /// divide by zero.
    fn sized() -> Result<()> {
        if Self::SIZE == 0 {
            return Err(Error::InvalidArgument {
                what: "manager array",
                reason: "a proxy whose element type has no size; decode it as the element type \
                         the array was made with"
                    .into(),
            });
        }
        Ok(())
    }

    /// How many elements it holds.
    ///
    /// ```no_run
    /// # let a = shmpool::Manager::start()?.array::<u32>(4)?;
    /// assert_eq!(a.len()?, 4);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        Self::sized()?;
        if let Some(r) = shared::local_array(&self.obj, |b| b.len()) {
            return Ok(r? / Self::SIZE);
        }
        Ok(self.obj.len()? / Self::SIZE)
    }

    /// Whether it holds no element.
    ///
    /// ```no_run
    /// # let a = shmpool::Manager::start()?.array::<u32>(0)?;
    /// assert!(a.is_empty()?);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Element `i`.
    ///
    /// ```no_run
    /// # let a = shmpool::Manager::start()?.array::<u32>(4)?;
    /// let x: u32 = a.get(3)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `i` is out of range.
    pub fn get(&self, i: usize) -> Result<T> {
        Self::sized()?;
        let at = i.checked_mul(Self::SIZE);
        let read = |b: &mut [u8]| {
            let len = b.len() / Self::SIZE;
            let r = at.and_then(|at| b.get(at..at.checked_add(Self::SIZE)?));
            r.map(bytemuck::pod_read_unaligned).ok_or_else(|| out_of_range(i, len))
        };
        if let Some(r) = shared::local_array(&self.obj, read) {
            return r?;
        }
        let at = at.ok_or_else(|| out_of_range(i, usize::MAX))?;
        let op = Op::ArrayRead { at: at as u64, len: Self::SIZE as u64 };
        match self.obj.call(op, None)? {
            Reply::Item(Some(b)) if b.len() == Self::SIZE => Ok(bytemuck::pod_read_unaligned(&b)),
            r => Err(unexpected(r)),
        }
    }

    /// Sets element `i` to `value`.
    ///
    /// ```no_run
    /// # let a = shmpool::Manager::start()?.array::<u32>(4)?;
    /// a.set(3, 7)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `i` is out of range.
    pub fn set(&self, i: usize, value: T) -> Result<()> {
        self.set_slice(i, std::slice::from_ref(&value))
    }

    /// Sets elements `start..start + values.len()`, in one call.
    ///
    /// ```no_run
    /// # let a = shmpool::Manager::start()?.array::<u32>(4)?;
    /// a.set_slice(1, &[5, 6])?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if the range is out of range.
    pub fn set_slice(&self, start: usize, values: &[T]) -> Result<()> {
        Self::sized()?;
        let bytes: &[u8] = bytemuck::cast_slice(values);
        let at = start.checked_mul(Self::SIZE);
        let write = |b: &mut [u8]| {
            let len = b.len() / Self::SIZE;
            let r = at.and_then(|at| b.get_mut(at..at.checked_add(bytes.len())?));
            r.map(|r| r.copy_from_slice(bytes)).ok_or_else(|| out_of_range(start, len))
        };
        if let Some(r) = shared::local_array(&self.obj, write) {
            return r?;
        }
        let at = at.ok_or_else(|| out_of_range(start, usize::MAX))?;
        self.obj.call_done(Op::ArrayWrite { at: at as u64, bytes: bytes.to_vec() }, None)
    }

    /// A copy of every element.
    ///
    /// ```no_run
    /// # let a = shmpool::Manager::start()?.array::<u32>(4)?;
    /// let xs: Vec<u32> = a.to_vec()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>> {
        Self::sized()?;
        if let Some(r) = shared::local_array(&self.obj, |b| elements(b)) {
            return r;
        }
        let len = self.obj.len()?;
        match self.obj.call(Op::ArrayRead { at: 0, len: len as u64 }, None)? {
            Reply::Item(Some(b)) => Ok(elements(&b)),
            r => Err(unexpected(r)),
        }
    }

    /// Runs `f` on the elements in place, under the array's lock, if this process can map them
    /// (the server's machine): `Ok(None)` where it cannot (use [`to_vec`](ArrayProxy::to_vec)
    /// and [`set_slice`](ArrayProxy::set_slice) there). Nothing is copied; every other user of
    /// the array waits until `f` returns, for 5 s at most (then its call fails with
    /// [`Error::Timeout`]), so keep `f` short. A fork inside `f` is refused while the lock is
    /// held.
    ///
    /// ```no_run
    /// # let a = shmpool::Manager::start()?.array::<f32>(1024)?;
    /// a.with_local(|xs| xs.iter_mut().for_each(|x| *x *= 2.0))?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn with_local<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> Result<Option<R>> {
        Self::sized()?;
        let typed = |b: &mut [u8]| {
            bytemuck::try_cast_slice_mut(b).map(f).map_err(|e| Error::InvalidArgument {
                what: "manager array",
                reason: format!("its bytes cannot be viewed as elements here ({e})"),
            })
        };
        shared::local_array(&self.obj, typed).map(|r| r?).transpose()
    }
}
