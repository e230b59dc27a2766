//! How a global array's outer axis (its rows) is split over ranks: contiguous blocks, the first
//! `rows % ranks` ranks one row more than the rest.

use std::ops::Range;

use crate::error::DistError;

/// The split of `rows` rows over `ranks` ranks: rank `r` holds the contiguous rows
/// [`range(r)`](RowSplit::range), `rows / ranks` of them plus one for the first
/// `rows % ranks` ranks. Every rank holds at least `max(halo, 1)` rows, so a rank's halo
/// comes from its neighbour alone.
///
/// ```
/// let s = shmpool_mpi::RowSplit::new(10, 3, 1)?;
/// assert_eq!((s.range(0), s.range(1), s.range(2)), (0..4, 4..7, 7..10));
/// assert_eq!(s.owner_of(6), 1);
/// # Ok::<(), shmpool_mpi::DistError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowSplit {
    rows: usize,
    ranks: usize,
}

impl RowSplit {
    /// The split of `rows` rows over `ranks` ranks, each needing at least `max(halo, 1)` rows.
    ///
    /// # Errors
    ///
    /// [`DistError::TooFewRows`] when `ranks` is 0 or some rank would hold fewer than
    /// `max(halo, 1)` rows.
    ///
    /// ```
    /// assert!(shmpool_mpi::RowSplit::new(5, 3, 2).is_err()); // a rank of 1 row, halo 2
    /// assert!(shmpool_mpi::RowSplit::new(6, 3, 2).is_ok());
    /// ```
    pub fn new(rows: usize, ranks: usize, halo: usize) -> Result<RowSplit, DistError> {
        if ranks == 0 || rows / ranks < halo.max(1) {
            return Err(DistError::TooFewRows { rows, ranks, halo });
        }
        Ok(RowSplit { rows, ranks })
    }

    /// Rows in the whole array.
    ///
    /// ```
    /// assert_eq!(shmpool_mpi::RowSplit::new(10, 3, 0)?.rows(), 10);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Ranks the rows are split over.
    ///
    /// ```
    /// assert_eq!(shmpool_mpi::RowSplit::new(10, 3, 0)?.ranks(), 3);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn ranks(&self) -> usize {
        self.ranks
    }

    /// Rows held by `rank`.
    ///
    /// ```
    /// let s = shmpool_mpi::RowSplit::new(10, 3, 0)?;
    /// assert_eq!([s.rows_of(0), s.rows_of(1), s.rows_of(2)], [4, 3, 3]);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn rows_of(&self, rank: usize) -> usize {
        self.rows / self.ranks + usize::from(rank < self.rows % self.ranks)
    }

    /// The first (global) row held by `rank`.
    ///
    /// ```
    /// assert_eq!(shmpool_mpi::RowSplit::new(10, 3, 0)?.first_row(2), 7);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn first_row(&self, rank: usize) -> usize {
        rank * (self.rows / self.ranks) + rank.min(self.rows % self.ranks)
    }

    /// The (global) rows held by `rank`.
    ///
    /// ```
    /// assert_eq!(shmpool_mpi::RowSplit::new(10, 3, 0)?.range(1), 4..7);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn range(&self, rank: usize) -> Range<usize> {
        let first = self.first_row(rank);
        first..first + self.rows_of(rank)
    }

    /// The rank holding global row `row` (the last rank for a row past the end).
    ///
    /// ```
    /// let s = shmpool_mpi::RowSplit::new(10, 3, 0)?;
    /// assert_eq!([s.owner_of(0), s.owner_of(3), s.owner_of(4), s.owner_of(9)], [0, 0, 1, 2]);
    /// # Ok::<(), shmpool_mpi::DistError>(())
    /// ```
    pub fn owner_of(&self, row: usize) -> usize {
        let (base, extra) = (self.rows / self.ranks, self.rows % self.ranks);
        let big = extra * (base + 1);
        let rank = if row < big { row / (base + 1) } else { extra + (row - big) / base };
        rank.min(self.ranks - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::RowSplit;

    #[test]
    fn ranges_tile_the_rows_for_every_split() {
        for rows in 1..40 {
            for ranks in 1..=rows {
                let s = RowSplit::new(rows, ranks, 1).unwrap();
                let mut next = 0;
                for r in 0..ranks {
                    let range = s.range(r);
                    assert_eq!(range.start, next, "{rows} rows over {ranks}");
                    assert!(range.len() == rows / ranks || range.len() == rows / ranks + 1);
                    for row in range.clone() {
                        assert_eq!(s.owner_of(row), r, "row {row} of {rows} over {ranks}");
                    }
                    next = range.end;
                }
                assert_eq!(next, rows);
            }
        }
    }

    #[test]
    fn refuses_ranks_that_cannot_hold_their_halo() {
        assert!(RowSplit::new(3, 0, 0).is_err());
        assert!(RowSplit::new(2, 3, 0).is_err());
        assert!(RowSplit::new(7, 4, 2).is_err());
        assert!(RowSplit::new(8, 4, 2).is_ok());
    }
}
