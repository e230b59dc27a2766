//! A whole distributed array to one rank (`gather`) and from one rank (`scatter`), by
//! `MPI_Gatherv`/`MPI_Scatterv` of the own rows.

use bytemuck::Pod;
use mpi::datatype::{Equivalence, Partition, PartitionMut};
use mpi::traits::{Communicator, Root};

use crate::dist_array::DistArray;
use crate::error::DistError;
use crate::split::RowSplit;

/// Elements per rank and where each rank's rows start, for a `*v` collective.
fn counts_displs(split: &RowSplit, row_len: usize) -> (Vec<i32>, Vec<i32>) {
    // Every count and offset fits: `zeroed` checked the largest block, and the offsets are
    // checked by the caller against the whole length.
    let counts = (0..split.ranks()).map(|r| (split.rows_of(r) * row_len) as i32).collect();
    let displs = (0..split.ranks()).map(|r| (split.first_row(r) * row_len) as i32).collect();
    (counts, displs)
}

/// Checks that `root` is a rank of `comm` (the same verdict on every rank).
fn check_root<C: Communicator>(comm: &C, root: i32) -> Result<(), DistError> {
    if (0..comm.size()).contains(&root) {
        Ok(())
    } else {
        Err(DistError::BadRoot { root, ranks: comm.size() as usize })
    }
}

/// Checks that the whole array's element count fits MPI's 32-bit offsets.
fn check_total(split: &RowSplit, row_len: usize) -> Result<(), DistError> {
    let count = split.rows() * row_len;
    match i32::try_from(count) {
        Ok(_) => Ok(()),
        Err(_) => Err(DistError::CountTooLarge { what: "the whole array", count }),
    }
}

impl<T: Pod + Equivalence> DistArray<T> {
    /// The whole array, row-major, at rank `root` (`Some`), `None` on every other rank: each
    /// rank's own rows gathered in rank order. Collective. For results too large for one
    /// node's memory, write per-rank files instead ([`write_parts`](DistArray::write_parts)).
    ///
    /// # Errors
    ///
    /// [`DistError::BadRoot`] when `root` is not a rank of the communicator;
    /// [`DistError::CountTooLarge`] when the whole array has more elements than MPI's 32-bit
    /// offsets hold (every rank returns these; nothing is sent).
    ///
    /// ```no_run
    /// use shmpool_mpi::mpi::traits::Communicator;
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let world = universe.world();
    /// let a = shmpool_mpi::DistArray::<u64>::from_fn(&world, &[100], 0, |i| i as u64)?;
    /// if let Some(all) = a.gather(0)? {
    ///     assert_eq!(all, (0..100).collect::<Vec<u64>>());
    /// }
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn gather(&self, root: i32) -> Result<Option<Vec<T>>, DistError> {
        check_root(&self.comm, root)?;
        check_total(&self.split, self.row_len)?;
        let root_process = self.comm.process_at_rank(root);
        if self.comm.rank() != root {
            root_process.gather_varcount_into(self.own());
            return Ok(None);
        }
        let (counts, displs) = counts_displs(&self.split, self.row_len);
        let mut all = vec![T::zeroed(); self.split.rows() * self.row_len];
        let mut part = PartitionMut::new(&mut all[..], counts, displs);
        root_process.gather_varcount_into_root(self.own(), &mut part);
        Ok(Some(all))
    }

    /// A distributed array of global `shape` over `comm` filled from the whole array `whole`
    /// held at rank `root` (row-major; other ranks pass `None`), ghost rows included (the halos
    /// are exchanged once after the scatter). Collective.
    ///
    /// # Errors
    ///
    /// As [`zeroed`](DistArray::zeroed); [`DistError::BadRoot`] as for
    /// [`gather`](DistArray::gather); [`DistError::ScatterLength`] on every rank when the
    /// root's `whole` is missing or not the global shape's length (the root says so to every
    /// rank before anything is sent, so no rank waits for rows that will not come);
    /// [`DistError::CountTooLarge`] as for [`gather`](DistArray::gather).
    ///
    /// ```no_run
    /// use shmpool_mpi::mpi::traits::Communicator;
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let world = universe.world();
    /// let whole: Vec<f64> = (0..64).map(f64::from).collect();
    /// let at_root = (world.rank() == 0).then_some(&whole[..]);
    /// let a = shmpool_mpi::DistArray::scatter(&world, &[16, 4], 1, 0, at_root)?;
    /// assert_eq!(a.own()[0], (a.own_rows().start * 4) as f64);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn scatter<C: Communicator>(
        comm: &C,
        shape: &[usize],
        halo: usize,
        root: i32,
        whole: Option<&[T]>,
    ) -> Result<DistArray<T>, DistError> {
        check_root(comm, root)?;
        let mut a = DistArray::zeroed(comm, shape, halo)?;
        check_total(&a.split, a.row_len)?;
        let want = a.split.rows() * a.row_len;
        let root_process = a.comm.process_at_rank(root);
        // The root's verdict on `whole`, to every rank, before any row moves.
        let mut got =
            if a.comm.rank() == root { whole.map_or(u64::MAX, |w| w.len() as u64) } else { 0 };
        root_process.broadcast_into(&mut got);
        if got != want as u64 {
            let got = if got == u64::MAX { 0 } else { got as usize };
            return Err(DistError::ScatterLength { got, want });
        }
        let (counts, displs) = counts_displs(&a.split, a.row_len);
        let (start, len) = a.own_span();
        let DistArray { comm, local, .. } = &mut a;
        let own = &mut local[start..start + len];
        let root_process = comm.process_at_rank(root);
        match whole {
            Some(whole) if comm.rank() == root => {
                root_process.scatter_varcount_into_root(&Partition::new(whole, counts, displs), own)
            }
            _ => root_process.scatter_varcount_into(own),
        }
        a.exchange_halos();
        Ok(a)
    }
}
