//! The distributed array: a global shape split by rows over the ranks of a communicator, each
//! rank's block (with its ghost rows) one shaped [`SharedArray`] for that rank's pool.

use std::ops::Range;

use bytemuck::Pod;
use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};
use shmpool::SharedArray;

use crate::error::DistError;
use crate::split::RowSplit;

/// A global array of `shape` split along its outer axis (rows) over the ranks of a
/// communicator ([`RowSplit`]: contiguous blocks, the first `rows % ranks` ranks one row more).
///
/// Each rank holds its block in one [`SharedArray`] of shape
/// `[ghosts above + own rows + ghosts below, rest of shape...]` ([`local`](DistArray::local)):
/// `halo` ghost rows above unless it is the first rank, `halo` below unless it is the last. The
/// ghost rows are copies of the neighbours' edge rows, refreshed by
/// [`exchange_halos`](DistArray::exchange_halos). So a stencil kernel written for one machine
/// runs unchanged on the local array: the first rank's first row and the last rank's last row
/// are the global boundary, and every other edge row of a block is a ghost, which a stencil
/// treats as a boundary it reads and does not compute.
///
/// A panic on a rank while it holds a `DistArray` aborts the whole MPI job when the array is
/// dropped (see `docs/mpi.md`, failure behaviour): otherwise the other ranks would wait in a
/// halo exchange or a reduction for a rank that is gone.
///
/// ```no_run
/// use shmpool_mpi::DistArray;
/// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
/// let world = universe.world();
/// // 100 x 64, one ghost row each side; element = its global flat index.
/// let a = DistArray::<f64>::from_fn(&world, &[100, 64], 1, |i| i as f64)?;
/// let first = a.own_rows().start;
/// assert_eq!(a.own()[0], (first * 64) as f64);
/// # Ok::<(), shmpool_mpi::DistError>(())
/// ```
pub struct DistArray<T: Pod + Equivalence> {
    pub(crate) comm: SimpleCommunicator,
    pub(crate) shape: Vec<usize>,
    pub(crate) row_len: usize,
    pub(crate) split: RowSplit,
    pub(crate) halo: usize,
    /// Ghost rows above and below the own rows in `local` (`halo` or 0).
    pub(crate) ghosts: (usize, usize),
    pub(crate) local: SharedArray<T>,
}

impl<T: Pod + Equivalence> DistArray<T> {
    /// A zeroed array of global `shape` over the ranks of `comm` (a duplicate of it, so the
    /// array's messages never match the caller's), with `halo` ghost rows each side.
    /// Collective: every rank of `comm` calls it with the same arguments.
    ///
    /// # Errors
    ///
    /// [`DistError::NoAxis`] for an empty shape, [`DistError::TooFewRows`] when some rank
    /// would hold fewer than `max(halo, 1)` rows, [`DistError::CountTooLarge`] when a rank's
    /// block would exceed MPI's 32-bit counts (all of these on every rank, before any message);
    /// [`DistError::Shm`] on a rank whose shared array cannot be created, and then
    /// [`DistError::OtherRank`] on every other rank (the ranks agree on it, so none is left
    /// waiting for the one that failed).
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let a = shmpool_mpi::DistArray::<u32>::zeroed(&universe.world(), &[1000], 0)?;
    /// assert!(a.own().iter().all(|&x| x == 0));
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn zeroed<C: Communicator>(
        comm: &C,
        shape: &[usize],
        halo: usize,
    ) -> Result<DistArray<T>, DistError> {
        let (&rows, rest) = shape.split_first().ok_or(DistError::NoAxis)?;
        let (rank, ranks) = (comm.rank() as usize, comm.size() as usize);
        let split = RowSplit::new(rows, ranks, halo)?;
        let ghosts = (if rank > 0 { halo } else { 0 }, if rank + 1 < ranks { halo } else { 0 });
        let too_large = DistError::CountTooLarge { what: "a rank's block", count: usize::MAX };
        // Checked throughout: a halo near usize::MAX passes RowSplit on one rank.
        let row_len = rest.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let largest = split.rows_of(0).checked_add(halo).and_then(|r| r.checked_add(halo));
        let count = row_len.zip(largest).and_then(|(w, r)| w.checked_mul(r));
        let (Some(row_len), Some(count)) = (row_len, count) else { return Err(too_large) };
        if i32::try_from(count).is_err() {
            return Err(DistError::CountTooLarge { what: "a rank's block", count });
        }
        let mut local_shape = shape.to_vec();
        // At most `largest`, checked above.
        local_shape[0] = ghosts.0 + split.rows_of(rank) + ghosts.1;
        // Every error above is the same on every rank (same arguments); the allocation can fail
        // on one rank alone (its node's memory), so the ranks agree on it before returning,
        // and none is left waiting in a collective for a rank that gave up.
        let comm = comm.duplicate();
        let local = SharedArray::zeroed_shape(&local_shape);
        let failed = i32::from(local.is_err());
        let mut any_failed = 0;
        comm.all_reduce_into(&failed, &mut any_failed, SystemOperation::max());
        let local = local?;
        if any_failed != 0 {
            return Err(DistError::OtherRank { what: "create its block's shared array" });
        }
        Ok(DistArray { comm, shape: shape.to_vec(), row_len, split, halo, ghosts, local })
    }

    /// An array of global `shape` whose element at global row-major index `i` is `f(i)`,
    /// ghost rows included (so no exchange is needed before the first step). Collective.
    ///
    /// # Errors
    ///
    /// As [`zeroed`](DistArray::zeroed).
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let a = shmpool_mpi::DistArray::<f64>::from_fn(&universe.world(), &[8, 8], 1, |i| i as f64)?;
    /// assert_eq!(a.local()[0], (a.local_rows().start * 8) as f64);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn from_fn<C: Communicator>(
        comm: &C,
        shape: &[usize],
        halo: usize,
        mut f: impl FnMut(usize) -> T,
    ) -> Result<DistArray<T>, DistError> {
        let mut a = DistArray::zeroed(comm, shape, halo)?;
        let start = a.local_rows().start * a.row_len;
        for (k, x) in a.local.iter_mut().enumerate() {
            *x = f(start + k);
        }
        Ok(a)
    }

    /// A zeroed array with the same shape, split, halo and communicator as this one (a scratch
    /// buffer for a stencil's other half-step). Collective.
    ///
    /// # Errors
    ///
    /// [`DistError::Shm`] on a rank whose shared array cannot be created, and
    /// [`DistError::OtherRank`] on every other rank.
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let u = shmpool_mpi::DistArray::<f64>::zeroed(&universe.world(), &[64, 64], 1)?;
    /// let v = u.zeroed_like()?;
    /// assert_eq!(u.local_shape(), v.local_shape());
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn zeroed_like(&self) -> Result<DistArray<T>, DistError> {
        DistArray::zeroed(&self.comm, &self.shape, self.halo)
    }

    /// The array's communicator (a duplicate of the one it was created on), for the
    /// reductions in [`reduce`](crate::reduce).
    ///
    /// ```no_run
    /// use shmpool_mpi::mpi::traits::Communicator;
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let a = shmpool_mpi::DistArray::<f64>::zeroed(&universe.world(), &[64], 0)?;
    /// assert_eq!(a.comm().size(), universe.world().size());
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn comm(&self) -> &SimpleCommunicator {
        &self.comm
    }

    /// The global shape.
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let a = shmpool_mpi::DistArray::<f64>::zeroed(&universe.world(), &[64, 32], 1)?;
    /// assert_eq!(a.shape(), &[64, 32]);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// How the rows are split over the ranks.
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let a = shmpool_mpi::DistArray::<f64>::zeroed(&universe.world(), &[64], 0)?;
    /// assert_eq!(a.split().rows(), 64);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn split(&self) -> RowSplit {
        self.split
    }

    /// Ghost rows each side of a block (fewer at the global edges).
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let a = shmpool_mpi::DistArray::<f64>::zeroed(&universe.world(), &[64, 8], 2)?;
    /// assert_eq!(a.halo(), 2);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn halo(&self) -> usize {
        self.halo
    }

    /// The global rows this rank owns (computes).
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let a = shmpool_mpi::DistArray::<f64>::zeroed(&universe.world(), &[64, 8], 1)?;
    /// assert!(a.own_rows().end <= 64);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn own_rows(&self) -> Range<usize> {
        self.split.range(self.comm.rank() as usize)
    }

    /// The global rows the local array holds: the own rows and the ghost rows around them.
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let a = shmpool_mpi::DistArray::<f64>::zeroed(&universe.world(), &[64, 8], 1)?;
    /// assert_eq!(a.local_rows().len() * 8, a.local().len());
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn local_rows(&self) -> Range<usize> {
        let own = self.own_rows();
        own.start - self.ghosts.0..own.end + self.ghosts.1
    }

    /// The local array's shape: `[local_rows().len(), shape()[1..]...]`.
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let a = shmpool_mpi::DistArray::<f64>::zeroed(&universe.world(), &[64, 8], 1)?;
    /// assert_eq!(a.local_shape()[1], 8);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn local_shape(&self) -> &[usize] {
        self.local.shape()
    }

    /// The rank's block with its ghost rows: the shared array its pool works on, shaped
    /// [`local_shape`](DistArray::local_shape).
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let mut pool = shmpool::Pool::new(2)?;
    /// let a = shmpool_mpi::DistArray::<f64>::from_fn(&universe.world(), &[1 << 16], 0, |i| i as f64)?;
    /// let local_max = shmpool_kernels::reduce::max(&mut pool, a.local())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local(&self) -> &SharedArray<T> {
        &self.local
    }

    /// The rank's block with its ghost rows, to write (an output of a pool job).
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let mut a = shmpool_mpi::DistArray::<f64>::zeroed(&universe.world(), &[64], 0)?;
    /// a.local_mut().fill(1.0);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn local_mut(&mut self) -> &mut SharedArray<T> {
        &mut self.local
    }

    /// The own rows of the local array (without ghosts), row-major.
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let a = shmpool_mpi::DistArray::<u8>::zeroed(&universe.world(), &[64, 4], 1)?;
    /// assert_eq!(a.own().len(), a.own_rows().len() * 4);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn own(&self) -> &[T] {
        let (start, len) = self.own_span();
        &self.local[start..start + len]
    }

    /// The own rows of the local array, to write.
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let mut a = shmpool_mpi::DistArray::<u8>::zeroed(&universe.world(), &[64, 4], 1)?;
    /// a.own_mut().fill(7);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn own_mut(&mut self) -> &mut [T] {
        let (start, len) = self.own_span();
        &mut self.local[start..start + len]
    }

    /// Where the own rows start in the local array, and how many elements they hold.
    pub(crate) fn own_span(&self) -> (usize, usize) {
        (self.ghosts.0 * self.row_len, self.own_rows().len() * self.row_len)
    }

    /// Swaps the contents of two arrays of the same layout (a stencil's two buffers), without
    /// copying: the local shared arrays are exchanged.
    ///
    /// # Panics
    ///
    /// When the two arrays' local shapes differ (arrays of different distributions).
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let mut u = shmpool_mpi::DistArray::<f64>::from_fn(&universe.world(), &[64], 0, |_| 1.0)?;
    /// let mut v = u.zeroed_like()?;
    /// u.swap(&mut v);
    /// assert_eq!(v.own()[0], 1.0);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn swap(&mut self, other: &mut DistArray<T>) {
        assert_eq!(
            self.local_shape(),
            other.local_shape(),
            "swap needs two arrays of the same distribution (make one with zeroed_like)"
        );
        std::mem::swap(&mut self.local, &mut other.local);
    }
}

impl<T: Pod + Equivalence> Drop for DistArray<T> {
    /// Dropped while its thread panics: the rank can no longer take its part in the array's
    /// collectives, and the other ranks would wait for it forever (unwinding also reaches
    /// `MPI_Finalize`, which waits for them), so the whole job is aborted (`MPI_Abort`), as
    /// [`OrAbort`](crate::OrAbort) does for an error.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "rank {}: panicked holding a distributed array; aborting the MPI job so that \
                 no rank waits for this one",
                self.comm.rank()
            );
            self.comm.abort(1);
        }
    }
}
