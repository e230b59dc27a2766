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
    /// A root rank that is not a rank of the communicator.
    #[error(
        "root rank {root} is not a rank of this communicator (0..{ranks}); pass a root below \
         the number of ranks"
    )]
    BadRoot {
        /// The root asked for.
        root: i32,
        /// Ranks of the communicator.
        ranks: usize,
    },
    /// A name that cannot name part files (`DistArray::write_parts`).
    #[error(
        "`{name}` cannot name part files: use a non-empty name of letters, digits, '.', '-' and \
         '_' (no '/', no whitespace, not `.` or `..`); put directories in `dir`"
    )]
    BadName {
        /// The name given.
        name: String,
    },
    /// Another rank failed a collective step this rank completed; every rank returns an error
    /// so that none waits for a rank that gave up.
    #[error(
        "another rank could not {what} (that rank's own error says why); every rank stopped \
         here so that none waits for it"
    )]
    OtherRank {
        /// What the other rank could not do.
        what: &'static str,
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
