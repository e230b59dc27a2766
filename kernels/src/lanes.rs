//! The lane pattern every reduction here uses: [`LANES`] independent accumulators, element `i`
//! of a chunk feeding lane `i % LANES`, combined at the end of the chunk by a fixed pairwise tree
//! ([`tree`]). Independent lanes let LLVM keep several vector registers of partial results in
//! flight (no `unsafe`, no intrinsics, no fast-math): the strict left-to-right order of a single
//! accumulator is what limits a plain `iter().sum()` to one add per add-latency.

/// Accumulators per reduction: 8 `f64` are four SSE2 or two AVX registers.
pub(crate) const LANES: usize = 8;

/// `((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7))`: the one order in which lanes combine.
#[inline(always)]
pub(crate) fn tree(v: [f64; LANES]) -> f64 {
    ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))
}
