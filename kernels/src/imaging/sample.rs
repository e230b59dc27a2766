//! `Sample`: the element types an image holds (`u8`, `f32`), and their conversion to and from
//! the `f32` the operations compute in.

/// An image sample: `u8` (0 to 255) or `f32` (0.0 to 1.0). Operations compute in `f32` on the
/// sample's own scale and store back with [`from_f32`](Sample::from_f32), which rounds and
/// clamps `u8`.
///
/// ```
/// use shmpool_kernels::imaging::Sample;
/// assert_eq!(u8::from_f32(254.6), 255);
/// assert_eq!(u8::from_f32(-3.0), 0);
/// assert_eq!(<f32 as Sample>::MAX, 1.0);
/// ```
pub trait Sample: Copy + Default + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// The value of full intensity: 255 for `u8`, 1.0 for `f32`.
    const MAX: f32;

    /// The sample as `f32`, on its own scale.
    ///
    /// ```
    /// use shmpool_kernels::imaging::Sample;
    /// assert_eq!(200u8.to_f32(), 200.0);
    /// ```
    fn to_f32(self) -> f32;

    /// An `f32` on this sample's scale, stored: rounded to nearest and clamped for `u8`, as is
    /// for `f32`.
    ///
    /// ```
    /// use shmpool_kernels::imaging::Sample;
    /// assert_eq!(<f32 as Sample>::from_f32(0.25), 0.25);
    /// ```
    fn from_f32(v: f32) -> Self;
}

impl Sample for u8 {
    const MAX: f32 = 255.0;

    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }

    #[inline(always)]
    fn from_f32(v: f32) -> u8 {
        // Half up, clamped to 0-255, then truncated toward zero: for the clamped values the
        // operations store this is round-to-nearest, without `f32::round` (a libm call per
        // sample on baseline x86-64). `max` drops a NaN (to 0), so the value is the saturating
        // `(v + 0.5) as u8`'s for every `v`. The conversion is the unchecked one: the checked
        // cast's NaN and range fix-ups made the compiler convert one sample at a time.
        #[allow(clippy::manual_clamp)] // `clamp` keeps a NaN, which must become 0 here
        let x = (v + 0.5).max(0.0).min(255.0);
        // SAFETY: `x` is a number from 0 to 255 (never NaN: `max` returns 0 for it), so it is
        // finite and its truncation fits an `i32`, which is what `to_int_unchecked` requires.
        let i: i32 = unsafe { x.to_int_unchecked() };
        i as u8
    }
}

impl Sample for f32 {
    const MAX: f32 = 1.0;

    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }

    #[inline(always)]
    fn from_f32(v: f32) -> f32 {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u8_from_f32_is_the_saturating_cast_of_v_plus_a_half_for_every_value() {
        let steps = (-1024..=270 * 1024).map(|i| i as f32 / 1024.0);
        let edges = [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN];
        let near = [-0.5, -0.49999997, 0.49999997, 0.5, 254.49998, 254.5, 255.0, 255.49998, 1e9];
        for v in steps.chain(edges).chain(near) {
            assert_eq!(u8::from_f32(v), (v + 0.5) as u8, "v = {v}");
        }
    }
}
