//! The blocked matrix multiply in a [`Pool`]: bands of rows of `C` in the workers, each running
//! the block kernel [`matmul_rows`] on its rows of `A` and all of `B`.
//!
//! A kernel job's arrays all have the job's length, and `A` (`m x k`), `B` (`k x n`) and `C`
//! (`m x n`) do not. So the operands live in a [`MatmulBuffers`]: one shared input array holding
//! `A` then `B`, one shared output array holding `C`, both padded to the same length
//! `max(m*k + k*n, m*n)`. The caller writes `A` and `B` in place and reads `C` in place: nothing
//! is copied. The job's chunks are whole rows of `C`; each reads the input array through a halo
//! as wide as the array (all of `A` and `B`), and chunks past `C`'s last row do nothing.

use shmpool::pool::Chunk;
use shmpool::{Pool, SharedArray};

use crate::float::Float;
use crate::matmul::{MatDims, band_rows, matmul_rows};

/// Nanoseconds per multiply-add of the block kernel on one core (`f64`, 512 x 512 x 512 in
/// 20.9 ms sequentially: `docs/benchmarks.md`), the product's work hint: a product's work grows
/// faster than its bytes, so the pool's inline rule weighs this rather than the bytes alone
/// ([`JobBuilder::cost_per_element`](shmpool::pool::JobBuilder::cost_per_element)).
const NS_PER_MULADD: f64 = 0.155;

/// The operands of a product in shared memory, laid out for [`matmul_pool`]: `A` (`m x k`) and
/// `B` (`k x n`) in one input array, `C` (`m x n`) in an output array, all row-major.
///
/// ```
/// use shmpool_kernels::{MatDims, MatmulBuffers};
/// let mut bufs = MatmulBuffers::<f64>::zeroed(MatDims::new(2, 3, 4))?;
/// let (a, b) = bufs.a_b_mut();
/// a.fill(1.0);
/// b.fill(2.0);
/// assert_eq!((bufs.a().len(), bufs.b().len(), bufs.c().len()), (6, 12, 8));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct MatmulBuffers<T: Float> {
    dims: MatDims,
    /// `A`, then `B`, then zeros up to the common length.
    ab: SharedArray<T>,
    /// `C`, then zeros up to the common length.
    c: SharedArray<T>,
}

impl<T: Float> MatmulBuffers<T> {
    /// Zeroed operands for `dims`, in two shared arrays (memfd) of
    /// `max(m*k + k*n, m*n)` elements each.
    ///
    /// # Errors
    ///
    /// The OS errors of [`SharedArray::zeroed`] ([`shmpool::Error::OutOfSpace`] when shared
    /// memory is short).
    ///
    /// ```
    /// let bufs = shmpool_kernels::MatmulBuffers::<f32>::zeroed(shmpool_kernels::MatDims::new(3, 3, 3))?;
    /// assert!(bufs.c().iter().all(|&x| x == 0.0));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn zeroed(dims: MatDims) -> shmpool::Result<MatmulBuffers<T>> {
        let len = (dims.a_len() + dims.b_len()).max(dims.c_len());
        Ok(MatmulBuffers { dims, ab: SharedArray::zeroed(len)?, c: SharedArray::zeroed(len)? })
    }

    /// The shape.
    ///
    /// ```
    /// use shmpool_kernels::{MatDims, MatmulBuffers};
    /// let bufs = MatmulBuffers::<f64>::zeroed(MatDims::new(1, 2, 3))?;
    /// assert_eq!(bufs.dims(), MatDims::new(1, 2, 3));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn dims(&self) -> MatDims {
        self.dims
    }

    /// `A`, row-major `m x k`.
    ///
    /// ```
    /// use shmpool_kernels::{MatDims, MatmulBuffers};
    /// let bufs = MatmulBuffers::<f64>::zeroed(MatDims::new(2, 5, 1))?;
    /// assert_eq!(bufs.a().len(), 10);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn a(&self) -> &[T] {
        &self.ab[..self.dims.a_len()]
    }

    /// `B`, row-major `k x n`.
    ///
    /// ```
    /// use shmpool_kernels::{MatDims, MatmulBuffers};
    /// let bufs = MatmulBuffers::<f64>::zeroed(MatDims::new(2, 5, 3))?;
    /// assert_eq!(bufs.b().len(), 15);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn b(&self) -> &[T] {
        let a = self.dims.a_len();
        &self.ab[a..a + self.dims.b_len()]
    }

    /// `A` and `B`, writable, to fill in place.
    ///
    /// ```
    /// use shmpool_kernels::{MatDims, MatmulBuffers};
    /// let mut bufs = MatmulBuffers::<f32>::zeroed(MatDims::new(2, 2, 2))?;
    /// let (a, b) = bufs.a_b_mut();
    /// a.copy_from_slice(&[1.0, 0.0, 0.0, 1.0]);
    /// b[3] = 7.0;
    /// assert_eq!(bufs.b()[3], 7.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn a_b_mut(&mut self) -> (&mut [T], &mut [T]) {
        let (a_len, b_len) = (self.dims.a_len(), self.dims.b_len());
        let (a, rest) = self.ab.split_at_mut(a_len);
        (a, &mut rest[..b_len])
    }

    /// `C`, row-major `m x n`: the product after [`matmul_pool`].
    ///
    /// ```
    /// use shmpool_kernels::{MatDims, MatmulBuffers};
    /// let bufs = MatmulBuffers::<f64>::zeroed(MatDims::new(2, 5, 3))?;
    /// assert_eq!(bufs.c().len(), 6);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn c(&self) -> &[T] {
        &self.c[..self.dims.c_len()]
    }
}

/// One chunk: the rows of `C` it holds, if any, from the same rows of `A` and all of `B`.
fn band<T: Float>(c: &Chunk<MatDims>) {
    let (m, k, n) = c.params().get();
    let (ab, _) = c.input_halo::<T>(0);
    let out = c.output::<T>(0);
    let start = c.range().start;
    let (r0, r1) = ((start / n).min(m), ((start + out.len()) / n).min(m));
    if r0 < r1 {
        let (a, b) = ab.split_at(m * k);
        matmul_rows(&a[r0 * k..r1 * k], &b[..k * n], &mut out[..(r1 - r0) * n], k, n);
    }
}

/// `C = A x B` in the pool's workers, over the operands in `bufs`: each chunk is a band of rows
/// of `C` (about eight per worker, a multiple of the 4-row register tile) and runs
/// [`matmul_rows`]. The result is identical bit for bit to [`matmul`](crate::matmul)'s.
/// Products under 2^17 multiply-adds run in the caller.
///
/// # Errors
///
/// The pool's: [`shmpool::Error::KernelPanicked`], [`shmpool::Error::WorkerDied`],
/// [`shmpool::Error::PoolNotRunning`].
///
/// ```
/// use shmpool_kernels::{MatDims, MatmulBuffers, matmul_pool};
/// let mut pool = shmpool::Pool::new(2)?;
/// let mut bufs = MatmulBuffers::<f64>::zeroed(MatDims::new(2, 2, 2))?;
/// let (a, b) = bufs.a_b_mut();
/// a.copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
/// b.copy_from_slice(&[5.0, 6.0, 7.0, 8.0]);
/// matmul_pool(&mut pool, &mut bufs)?;
/// assert_eq!(bufs.c(), [19.0, 22.0, 43.0, 50.0]);
/// # drop(pool);
/// # shmpool::process::shutdown_forkserver()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn matmul_pool<T: Float>(pool: &mut Pool, bufs: &mut MatmulBuffers<T>) -> shmpool::Result<()> {
    let (m, k, n) = bufs.dims.get();
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        bufs.c.fill(T::ZERO);
        return Ok(());
    }
    let len = bufs.ab.len();
    let rows = band_rows(m, pool.workers());
    pool.job(bufs.dims)
        .input(&bufs.ab)?
        .output(&mut bufs.c)?
        .chunk_size(rows * n)
        .cost_per_element((m * k * n) as f64 * NS_PER_MULADD / len as f64)
        .stage_halo(len, band::<T>)
        .run()
}
