//! Numeric kernels over one chunk of a shared array.

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

/// `out[i] = a[i] * b[i]`, the zip form's elementwise product.
///
/// ```
/// let mut out = [0.0; 2];
/// shmpool_kernels::mul(&[2.0, 3.0], &[4.0, 5.0], &mut out);
/// assert_eq!(out, [8.0, 15.0]);
/// ```
pub fn mul(a: &[f64], b: &[f64], out: &mut [f64]) {
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x * y;
    }
}
