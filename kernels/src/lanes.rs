//! The lane pattern every reduction here uses: [`LANES`] independent accumulators, element `i`
//! of a chunk feeding lane `i % LANES`, combined at the end of the chunk by a fixed pairwise tree
//! ([`tree`]). Independent lanes let LLVM keep several vector registers of partial results in
//! flight (no intrinsics, no fast-math): the strict left-to-right order of a single accumulator
//! is what limits a plain `iter().sum()` to one add per add-latency.
//!
//! The hot loops are compiled twice, for the baseline x86-64 (SSE2: the 16 lanes in eight
//! 2-wide registers) and inside a `#[target_feature(enable = "avx2")]` wrapper (four 4-wide
//! registers), chosen at run time by [`has_avx2`]. Lane `j` takes the same elements in the same
//! order in both, and neither fuses a multiply into an add (Rust never contracts `a * b + c`),
//! so both give the same bits.

/// Accumulators per reduction: 16 `f64` are eight SSE2 (or four AVX) registers, enough chains to
/// cover the add latency at two vector adds per cycle. Measured on the project's VM (SSE2), a
/// sum of data in cache: 16 lanes 37-49 GB/s, 8 lanes 18-30 GB/s.
pub(crate) const LANES: usize = 16;

/// The lanes joined as a balanced binary tree in lane order: adjacent pairs `(l0 + l1)`, `(l2 +
/// l3)`, ..., then adjacent pairs of those, and so on: the one order in which lanes combine.
#[inline(always)]
pub(crate) fn tree(mut v: [f64; LANES]) -> f64 {
    let mut n = LANES;
    while n > 1 {
        n /= 2;
        for i in 0..n {
            v[i] = v[2 * i] + v[2 * i + 1];
        }
    }
    v[0]
}

/// Whether this CPU runs the AVX2 builds of the lane loops (the standard library's detection,
/// cached after the first call).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}
