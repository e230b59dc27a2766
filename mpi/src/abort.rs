//! Ending the whole MPI job, with the error's message, when a rank cannot go on.

use std::fmt::Display;

use mpi::traits::Communicator;

/// `or_abort`: the value, or the error printed (with the rank) and the whole job aborted with
/// `MPI_Abort`.
///
/// A rank whose pool lost a worker ([`shmpool::Error::WorkerDied`]) cannot finish its block,
/// and its neighbours would wait for its halos forever: aborting ends every rank, and mpirun
/// exits non-zero with the message on stderr.
///
/// ```no_run
/// use shmpool_mpi::OrAbort;
/// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
/// let world = universe.world();
/// let pool = shmpool::Pool::new(2).or_abort(&world);
/// # drop(pool);
/// ```
pub trait OrAbort<T> {
    /// The value, or: print `rank R: <error>; aborting the MPI job` on stderr and call
    /// `MPI_Abort(comm, 1)`, which does not return.
    ///
    /// ```no_run
    /// use shmpool_mpi::OrAbort;
    /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    /// let world = universe.world();
    /// let n: usize = "12".parse::<usize>().or_abort(&world);
    /// assert_eq!(n, 12);
    /// ```
    fn or_abort<C: Communicator>(self, comm: &C) -> T;
}

impl<T, E: Display> OrAbort<T> for Result<T, E> {
    fn or_abort<C: Communicator>(self, comm: &C) -> T {
        match self {
            Ok(v) => v,
            Err(e) => {
                eprintln!("rank {}: {e}; aborting the MPI job", comm.rank());
                comm.abort(1)
            }
        }
    }
}
