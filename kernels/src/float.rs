//! The floating-point element types the matrix and grid kernels are written for.

use std::ops::{Add, AddAssign, Mul, Sub};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// `f32` or `f64`: what [`matmul`](crate::matmul) and [`jacobi_step`](crate::jacobi_step) compute
/// in. Sealed: the kernels' tolerances and vector widths are stated for these two only.
///
/// ```
/// fn mean<T: shmpool_kernels::Float>(a: T, b: T) -> T {
///     (a + b) * T::HALF
/// }
/// assert_eq!(mean(1.0f32, 2.0), 1.5);
/// ```
pub trait Float:
    sealed::Sealed
    + bytemuck::Pod
    + Send
    + Sync
    + PartialOrd
    + Default
    + std::fmt::Debug
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + AddAssign
    + 'static
{
    /// `0.0`.
    const ZERO: Self;
    /// `0.25`, the weight of each neighbour in the 5-point stencil.
    const QUARTER: Self;
    /// `0.5`.
    const HALF: Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// The larger of the two; a NaN in either gives NaN, so a diverging grid is not reported as
    /// converged.
    fn max_nan(self, other: Self) -> Self;
    /// The value as `f64`, for residuals and tolerances.
    fn to_f64(self) -> f64;
    /// `|self|` as an integer that orders like the magnitude, with every NaN above infinity:
    /// the bits of the absolute value. A max over these keys is branch-free and NaN-sticky.
    fn abs_key(self) -> u64;
    /// The non-negative value (or NaN) whose [`abs_key`](Float::abs_key) is `key`.
    fn from_abs_key(key: u64) -> Self;
}

macro_rules! impl_float {
    ($t:ty) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const QUARTER: Self = 0.25;
            const HALF: Self = 0.5;
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn max_nan(self, other: Self) -> Self {
                if self.is_nan() || other.is_nan() {
                    <$t>::NAN
                } else if other > self {
                    other
                } else {
                    self
                }
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn abs_key(self) -> u64 {
                <$t>::abs(self).to_bits() as u64
            }
            #[inline(always)]
            fn from_abs_key(key: u64) -> Self {
                <$t>::from_bits(key as _)
            }
        }
    };
}

impl_float!(f32);
impl_float!(f64);
