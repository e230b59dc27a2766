//! The crate's error: what went wrong with a distributed array, and how to fix it.

use std::path::PathBuf;

/// Everything that can go wrong creating, exchanging, gathering or writing a distributed array.
///
/// ```
/// let e = shmpool_mpi::RowSplit::new(2, 4, 1).unwrap_err();
/// assert!(e.to_string().contains("fewer ranks"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DistError {
    /// Some rank would hold fewer rows than its halo (or none at all).
    #[error(
        "{rows} rows cannot be split over {ranks} ranks with a halo of {halo} rows: every rank \
         needs at least max(halo, 1) rows; run fewer ranks (mpirun -np N) or use a smaller halo"
    )]
    TooFewRows {
        /// Rows of the global array.
        rows: usize,
        /// Ranks asked for.
        ranks: usize,
        /// Halo rows asked for.
        halo: usize,
    },
    /// The global shape has no axis.
    #[error(
        "a distributed array needs a shape with at least one axis (rows); pass e.g. &[rows] or &[rows, cols]"
    )]
    NoAxis,
    /// A count that MPI carries as a 32-bit `int` is larger than it.
    #[error(
        "{what} is {count} elements, more than MPI's 32-bit counts hold; run more ranks so each \
         rank's block is smaller"
    )]
    CountTooLarge {
        /// What was being counted.
        what: &'static str,
        /// The count.
        count: usize,
    },
    /// The whole array given to `DistArray::scatter` at the root does not
    /// have the global shape's length.
    #[error(
        "scatter's root gave {got} elements for a global array of {want}; pass the whole \
         array, row-major, at the root"
    )]
    ScatterLength {
        /// Elements given at the root.
        got: usize,
        /// Elements of the global shape.
        want: usize,
    },
    /// Creating the rank's shared array failed.
    #[error("the rank's shared array: {0}")]
    Shm(#[from] shmpool::Error),
    /// Reading or writing a part or index file failed.
    #[error("{}: {source}; check that the directory exists and is writable on every node", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An index file (of [`parts`](crate::parts)) is not one this crate wrote.
    #[error("{}: {reason}; pass the .index file that write_parts wrote, with its part files beside it", path.display())]
    BadIndex {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}
