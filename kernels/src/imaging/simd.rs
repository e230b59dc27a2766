//! `has_avx2`: whether this CPU runs the AVX2 builds of the hot loops (blur, resize), asked
//! once per process.
//!
//! Those loops are written once, as plain Rust over whole rows that the compiler vectorizes,
//! and compiled twice: for the baseline x86-64 (SSE2, 4 `f32` lanes) and inside a
//! `#[target_feature(enable = "avx2")]` wrapper (8 lanes). No FMA is enabled (Rust does not
//! fuse `a * b + c` on its own), so both builds compute the same bits.

/// Whether the CPU has AVX2 (cached by the standard library's detection).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}
