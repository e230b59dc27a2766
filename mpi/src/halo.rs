//! Halo exchange: each rank's edge rows to its neighbours' ghost rows, by non-blocking
//! point-to-point messages (`MPI_Isend`/`MPI_Irecv`).

use bytemuck::Pod;
use mpi::datatype::Equivalence;
use mpi::traits::{Communicator, Destination, Source};

use crate::dist_array::DistArray;

/// Tag of a message carrying a rank's first own rows up, into its upper neighbour's ghosts below.
const TAG_UP: i32 = 0x5e01;
/// Tag of a message carrying a rank's last own rows down, into its lower neighbour's ghosts above.
const TAG_DOWN: i32 = 0x5e02;

impl<T: Pod + Equivalence> DistArray<T> {
    /// Refreshes the ghost rows from the neighbours: this rank's first `halo` own rows go to
    /// the rank above (its ghosts below), its last `halo` own rows to the rank below (its
    /// ghosts above), and the ghosts here are received from both, all four messages posted at
    /// once and then waited for. Collective over the array's communicator: every rank calls
    /// it, after the step that wrote its own rows. With one rank or no halo it does nothing.
    ///
    /// A neighbour that died never sends: MPI's default error handler then aborts the job
    /// (mpirun kills every rank), so this wait ends with the job; see `docs/mpi.md`.
    ///
    /// ```no_run
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let world = universe.world();
    /// let mut a = shmpool_mpi::DistArray::<f64>::zeroed(&world, &[64, 64], 1)?;
    /// a.own_mut().fill(1.0);
    /// a.exchange_halos();
    /// assert!(a.local().iter().all(|&x| x == 1.0)); // ghosts included
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn exchange_halos(&mut self) {
        let (rank, ranks) = (self.comm.rank(), self.comm.size());
        if self.halo == 0 || ranks == 1 {
            return;
        }
        let w = self.row_len;
        let edge = self.halo * w;
        let own = self.split.rows_of(rank as usize) * w;
        let (above, below) = self.ghosts;
        let DistArray { comm, local, .. } = self;
        let (ghost_up, rest) = local.split_at_mut(above * w);
        let (mine, ghost_down) = rest.split_at_mut(own);
        let mine: &[T] = mine;
        debug_assert_eq!(ghost_down.len(), below * w);
        mpi::request::scope(|scope| {
            let mut requests = Vec::with_capacity(4);
            if above > 0 {
                let up = comm.process_at_rank(rank - 1);
                requests.push(up.immediate_receive_into_with_tag(scope, ghost_up, TAG_DOWN));
                requests.push(up.immediate_send_with_tag(scope, &mine[..edge], TAG_UP));
            }
            if below > 0 {
                let down = comm.process_at_rank(rank + 1);
                requests.push(down.immediate_receive_into_with_tag(scope, ghost_down, TAG_UP));
                requests.push(down.immediate_send_with_tag(scope, &mine[own - edge..], TAG_DOWN));
            }
            for r in requests {
                r.wait();
            }
        });
    }
}
