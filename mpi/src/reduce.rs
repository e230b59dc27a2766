//! Reductions across ranks, after each rank's local (pool) reduction: `MPI_Allreduce` for the
//! exact operations, and an ordered fold of gathered partials for a float sum whose bits do not
//! depend on the number of ranks.
//!
//! # What is deterministic
//!
//! - [`allreduce_max`], [`allreduce_min`] and [`allreduce_counts`] are exact: the same answer
//!   for any number of ranks and any reduction order. (Max and min travel as totally ordered
//!   integer keys, so a NaN anywhere wins, as in the single-node kernels, instead of whatever
//!   the MPI library's `MPI_MAX` does with NaN.)
//! - [`allreduce_sum`] is `MPI_SUM` over one `f64` per rank: the MPI library chooses the order
//!   of the additions, which is fixed for a given library, rank count and message size (Open
//!   MPI's algorithms are), so reruns with the same rank count agree bit for bit, but a
//!   different rank count can change the last bits.
//! - [`allreduce_ordered`] gathers every rank's per-chunk partials to every rank, in rank
//!   order (so in global chunk order), and folds them left to right from an identity: with
//!   chunks that are the same global pieces of the array whatever the split (for example one
//!   row each), the result is bit for bit the single-node fold of the same chunks, for any rank
//!   count.

use bytemuck::Pod;
use mpi::collective::SystemOperation;
use mpi::datatype::{Equivalence, PartitionMut};
use mpi::traits::{Communicator, CommunicatorCollectives};

use crate::error::DistError;

/// A key whose unsigned order is `f64`'s total order with every NaN (made positive) on top.
fn key(x: f64) -> u64 {
    let bits = if x.is_nan() { f64::NAN.to_bits() } else { x.to_bits() };
    if bits >> 63 == 1 { !bits } else { bits | 1 << 63 }
}

/// The `f64` of a [`key`].
fn unkey(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// Where each rank's partials start in the gathered vector, and the total: MPI carries the
/// offsets as 32-bit `int`s, so a total past `i32::MAX` is refused (on every rank alike: they
/// all hold the same counts) rather than wrapped into offsets before the buffer.
fn displacements(counts: &[i32]) -> Result<(Vec<i32>, usize), DistError> {
    let mut displs = Vec::with_capacity(counts.len());
    let mut at = 0i32;
    for (i, &c) in counts.iter().enumerate() {
        displs.push(at);
        at = at.checked_add(c).ok_or_else(|| DistError::CountTooLarge {
            what: "every rank's partials together",
            count: counts[..=i].iter().map(|&c| c as usize).sum(),
        })?;
    }
    Ok((displs, at as usize))
}

/// The largest of every rank's `x` (NaN if any is NaN), on every rank. Exact. Collective.
///
/// ```no_run
/// use shmpool_mpi::mpi::traits::Communicator;
/// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
/// let world = universe.world();
/// let m = shmpool_mpi::reduce::allreduce_max(&world, world.rank() as f64);
/// assert_eq!(m, (world.size() - 1) as f64);
/// ```
pub fn allreduce_max<C: Communicator>(comm: &C, x: f64) -> f64 {
    let mut out = 0u64;
    comm.all_reduce_into(&key(x), &mut out, SystemOperation::max());
    unkey(out)
}

/// The smallest of every rank's `x` (NaN if any is NaN), on every rank. Exact. Collective.
///
/// ```no_run
/// use shmpool_mpi::mpi::traits::Communicator;
/// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
/// let world = universe.world();
/// assert_eq!(shmpool_mpi::reduce::allreduce_min(&world, world.rank() as f64), 0.0);
/// ```
pub fn allreduce_min<C: Communicator>(comm: &C, x: f64) -> f64 {
    // min(x) = -max(-x) exactly, NaN included (a NaN stays a NaN).
    -allreduce_max(comm, -x)
}

/// The sum of every rank's `x`, on every rank (`MPI_SUM`): reproducible for a fixed rank count,
/// not across rank counts (see the [module](self) docs; [`allreduce_ordered`] is). Collective.
///
/// ```no_run
/// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
/// let world = universe.world();
/// use shmpool_mpi::mpi::traits::Communicator;
/// assert_eq!(shmpool_mpi::reduce::allreduce_sum(&world, 1.0), world.size() as f64);
/// ```
pub fn allreduce_sum<C: Communicator>(comm: &C, x: f64) -> f64 {
    let mut out = 0.0;
    comm.all_reduce_into(&x, &mut out, SystemOperation::sum());
    out
}

/// Adds every rank's `counts` element-wise, in place, on every rank (a histogram's bins).
/// Exact. Collective: every rank passes the same length.
///
/// ```no_run
/// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
/// let world = universe.world();
/// let mut bins = [1u64, 2, 3];
/// shmpool_mpi::reduce::allreduce_counts(&world, &mut bins);
/// ```
pub fn allreduce_counts<C: Communicator>(comm: &C, counts: &mut [u64]) {
    let local = counts.to_vec();
    comm.all_reduce_into(&local[..], counts, SystemOperation::sum());
}

/// Every rank's `partials` gathered to every rank in rank order and folded left to right from
/// `identity` with `join`: `join(..join(join(identity, p0), p1)..)` over the partials of rank
/// 0, then rank 1, and so on. With chunks that are the same global pieces whatever the split
/// (one row each, say), the result equals a single-node fold of the same chunks bit for bit, for
/// any rank count. Collective.
///
/// # Errors
///
/// [`DistError::CountTooLarge`] when a rank has more partials than MPI's 32-bit counts hold,
/// or all ranks together do (every rank returns it).
///
/// ```no_run
/// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
/// let world = universe.world();
/// // Each rank's rows' sums, in its rows' order; the total as one machine would add them.
/// let row_sums = [0.1, 0.2];
/// let total = shmpool_mpi::reduce::allreduce_ordered(&world, &row_sums, 0.0, |a, b| a + b)?;
/// # Ok::<(), shmpool_mpi::DistError>(())
/// ```
pub fn allreduce_ordered<C, P>(
    comm: &C,
    partials: &[P],
    identity: P,
    join: impl FnMut(P, P) -> P,
) -> Result<P, DistError>
where
    C: Communicator,
    P: Pod + Equivalence,
{
    let mine = i32::try_from(partials.len()).map_err(|_| DistError::CountTooLarge {
        what: "a rank's partials",
        count: partials.len(),
    })?;
    let mut counts = vec![0i32; comm.size() as usize];
    comm.all_gather_into(&mine, &mut counts[..]);
    let (displs, total) = displacements(&counts)?;
    let mut all = vec![identity; total];
    let mut part = PartitionMut::new(&mut all[..], counts, displs);
    comm.all_gather_varcount_into(partials, &mut part);
    Ok(all.into_iter().fold(identity, join))
}

#[cfg(test)]
mod tests {
    use super::{displacements, key, unkey};
    use crate::error::DistError;

    #[test]
    fn displacements_past_i32_are_refused_not_wrapped() {
        assert_eq!(displacements(&[3, 0, 2]).unwrap(), (vec![0, 3, 3], 5));
        assert_eq!(displacements(&[]).unwrap(), (vec![], 0));
        assert_eq!(displacements(&[i32::MAX]).unwrap(), (vec![0], i32::MAX as usize));
        let e = displacements(&[i32::MAX, 1, 5]).unwrap_err();
        assert!(matches!(e, DistError::CountTooLarge { count, .. } if count == 1 << 31), "{e:?}");
        // Three ranks of 1e9 partials each: the third offset would wrap negative.
        assert!(displacements(&[1_000_000_000; 3]).is_err());
    }

    #[test]
    fn keys_order_like_floats_with_nan_on_top() {
        let xs = [f64::NEG_INFINITY, -2.5, -0.0, 0.0, 1e-300, 3.0, f64::INFINITY, f64::NAN];
        for w in xs.windows(2) {
            assert!(key(w[0]) <= key(w[1]), "{} !<= {}", w[0], w[1]);
        }
        assert_eq!(key(-f64::NAN), key(f64::NAN));
        for x in &xs[..7] {
            assert_eq!(unkey(key(*x)).to_bits(), x.to_bits());
        }
        assert!(unkey(key(f64::NAN)).is_nan());
    }
}
