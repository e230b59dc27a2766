//! `has_avx2`: whether this CPU runs the AVX2 builds of the hot loops (blur, resize), asked
//! once per process.
//!
//! Those loops are written once, as plain Rust over whole rows that the compiler vectorizes,
//! and compiled twice: for the baseline x86-64 (SSE2, 4 `f32` lanes) and inside a
//! `#[target_feature(enable = "avx2")]` wrapper (8 lanes). No FMA is enabled (Rust does not
//! fuse `a * b + c` on its own), so both builds compute the same bits.

#[cfg(target_arch = "x86_64")]
pub(crate) use crate::lanes::has_avx2;
