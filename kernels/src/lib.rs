//! Kernels that run in place on one chunk of a shared array. Each is a plain `fn` over slices,
//! so it can be handed to a forked child or a pool worker as is.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

/// The benchmark kernel `a = a * 1.0001 + 0.5`, in place.
///
/// ```
/// let mut a = [1.0f64, 2.0];
/// shmpool_kernels::scale_add(&mut a);
/// assert_eq!(a, [1.0 * 1.0001 + 0.5, 2.0 * 1.0001 + 0.5]);
/// ```
pub fn scale_add(a: &mut [f64]) {
    for x in a {
        *x = *x * 1.0001 + 0.5;
    }
}

/// Sum of a chunk, the reduce half of a map-reduce.
///
/// ```
/// assert_eq!(shmpool_kernels::sum(&[1.0, 2.5]), 3.5);
/// ```
pub fn sum(a: &[f64]) -> f64 {
    a.iter().sum()
}

/// Dot product of two equally long chunks.
///
/// ```
/// assert_eq!(shmpool_kernels::dot(&[1.0, 2.0], &[3.0, 4.0]), 11.0);
/// ```
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
