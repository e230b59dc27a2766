//! # shmpool-mpi
//!
//! shmpool across machines: one MPI rank per node, each rank's block of a global array a
//! [`shmpool::SharedArray`] worked on in place by that rank's [`shmpool::Pool`], with only halo
//! rows and reduction partials crossing between ranks, over MPI (the `mpi` crate, rsmpi).
//!
//! The same kernels run on one machine and on N ranks: a program changes how the array is
//! created (`DistArray` instead of [`SharedArray`](shmpool::SharedArray)) and adds one
//! `DistArray::exchange_halos` per stencil step and one reduction across ranks (module
//! `reduce`) after the local one (these need the feature `mpi`).
//!
//! **Feature `mpi`.** Everything that talks MPI is behind the feature `mpi` (it needs the
//! system's MPI, found through `mpicc`, and libclang to build). Without it the crate holds only
//! what needs no MPI: how rows are split over ranks ([`RowSplit`]) and the reader of per-rank
//! output files ([`parts::read_parts`]), so `cargo build --workspace` works on a machine
//! without MPI.
//!
//! See `docs/mpi.md` for the architecture, the halo layout, what is deterministic, what happens
//! when a rank or a worker dies, and how it maps to a cluster.
//!
//! ```
//! let split = shmpool_mpi::RowSplit::new(10, 3, 1)?;
//! assert_eq!(split.rows_of(0), 4); // the first 10 % 3 ranks get one more row
//! # Ok::<(), shmpool_mpi::DistError>(())
//! ```

#[cfg(feature = "mpi")]
mod abort;
#[cfg(feature = "mpi")]
mod dist_array;
mod error;
#[cfg(feature = "mpi")]
mod gather;
#[cfg(feature = "mpi")]
mod halo;
pub mod parts;
#[cfg(feature = "mpi")]
pub mod reduce;
mod split;

#[cfg(feature = "mpi")]
pub use abort::OrAbort;
#[cfg(feature = "mpi")]
pub use dist_array::DistArray;
pub use error::DistError;
/// rsmpi, re-exported so a program uses the same version as this crate (feature `mpi`).
///
/// ```no_run
/// use shmpool_mpi::mpi::traits::Communicator;
/// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
/// println!("rank {} of {}", universe.world().rank(), universe.world().size());
/// ```
#[cfg(feature = "mpi")]
pub use mpi;
pub use split::RowSplit;
