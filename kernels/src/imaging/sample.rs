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

    fn to_f32(self) -> f32 {
        self as f32
    }

    fn from_f32(v: f32) -> u8 {
        // Half up, then `as` truncates toward zero, saturates, and maps NaN to 0: for the
        // clamped values the operations store (0 to 255) this is round-to-nearest, without
        // `f32::round`, which is a libm call per sample on baseline x86-64.
        (v + 0.5) as u8
    }
}

impl Sample for f32 {
    const MAX: f32 = 1.0;

    fn to_f32(self) -> f32 {
        self
    }

    fn from_f32(v: f32) -> f32 {
        v
    }
}
