//! What one chunk computes: the sequential elementwise kernels. Each element's result depends on
//! that element alone, so every driver (sequential, rayon, pool) gives the same bits whatever the
//! chunking.

/// `y = alpha * x + y` (BLAS `daxpy`): the product and the sum round separately, as NumPy's
/// `alpha * x + y`. A longer slice is cut to the shorter.
///
/// ```
/// let mut y = [1.0, 1.0];
/// shmpool_kernels::elementwise::chunk::axpy(2.0, &[3.0, 4.0], &mut y);
/// assert_eq!(y, [7.0, 9.0]);
/// ```
pub fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// `x = alpha * x`, in place.
///
/// ```
/// let mut x = [1.0, -2.0];
/// shmpool_kernels::elementwise::chunk::scale(3.0, &mut x);
/// assert_eq!(x, [3.0, -6.0]);
/// ```
pub fn scale(alpha: f64, x: &mut [f64]) {
    for x in x {
        *x *= alpha;
    }
}

/// Clamps every element into `[lo, hi]`, in place, as NumPy's `np.clip(x, lo, hi)` (that is,
/// `minimum(maximum(x, lo), hi)`): a NaN element stays NaN, and with `lo > hi` every element
/// becomes `hi`. Unlike NumPy, a NaN bound is ignored (the element passes that side unchanged)
/// rather than turning every element into NaN.
///
/// ```
/// let mut x = [-1.0, 0.5, 2.0, f64::NAN];
/// shmpool_kernels::elementwise::chunk::clamp(0.0, 1.0, &mut x);
/// assert_eq!(&x[..3], &[0.0, 0.5, 1.0]);
/// assert!(x[3].is_nan());
/// ```
pub fn clamp(lo: f64, hi: f64, x: &mut [f64]) {
    for x in x {
        let y = if *x < lo { lo } else { *x };
        *x = if y > hi { hi } else { y };
    }
}

/// `out = a * b + c` with one rounding (a fused multiply-add, [`f64::mul_add`]), so the result
/// is the exact `a * b + c` rounded once. Slices of different lengths are cut to the shortest.
///
/// ```
/// let mut out = [0.0; 2];
/// shmpool_kernels::elementwise::chunk::fma(&[2.0, 3.0], &[4.0, 5.0], &[1.0, 1.0], &mut out);
/// assert_eq!(out, [9.0, 16.0]);
/// ```
pub fn fma(a: &[f64], b: &[f64], c: &[f64], out: &mut [f64]) {
    for (((o, a), b), c) in out.iter_mut().zip(a).zip(b).zip(c) {
        *o = a.mul_add(*b, *c);
    }
}

/// Elements per block of [`polyval`]: independent Horner chains in flight.
const POLY_BLOCK: usize = 16;

/// Evaluates the polynomial with coefficients `coeffs` (highest degree first, as NumPy's
/// `polyval`) at every element, in place, by Horner's rule: `acc = acc * x + c` for each
/// coefficient after the first, the product and the sum rounded separately. For finite inputs
/// the result is bit for bit NumPy's `np.polyval(coeffs, x)`. No coefficients give 0.
///
/// The elements are taken 16 at a time, each block running 16 independent Horner chains, so the
/// loop is bound by the multiplier's throughput rather than by one chain's latency.
///
/// ```
/// let mut x = [0.0, 1.0, 2.0];
/// shmpool_kernels::elementwise::chunk::polyval(&[1.0, -3.0, 2.0], &mut x); // x^2 - 3x + 2
/// assert_eq!(x, [2.0, 0.0, 0.0]);
/// ```
pub fn polyval(coeffs: &[f64], x: &mut [f64]) {
    let Some((&first, rest)) = coeffs.split_first() else {
        x.fill(0.0);
        return;
    };
    let mut blocks = x.chunks_exact_mut(POLY_BLOCK);
    for b in &mut blocks {
        let mut acc = [first; POLY_BLOCK];
        for &c in rest {
            for j in 0..POLY_BLOCK {
                acc[j] = acc[j] * b[j] + c;
            }
        }
        b.copy_from_slice(&acc);
    }
    for v in blocks.into_remainder() {
        let mut acc = first;
        for &c in rest {
            acc = acc * *v + c;
        }
        *v = acc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polyval_blocks_and_tail_agree_with_scalar_horner() {
        let coeffs = [0.5, -1.25, 3.0, 0.125, -2.0];
        for n in [0, 1, 15, 16, 17, 40] {
            let x: Vec<f64> = (0..n).map(|i| i as f64 * 0.37 - 3.0).collect();
            let mut y = x.clone();
            polyval(&coeffs, &mut y);
            for (xi, yi) in x.iter().zip(&y) {
                let h = coeffs[1..].iter().fold(coeffs[0], |acc, c| acc * xi + c);
                assert_eq!(h.to_bits(), yi.to_bits(), "n = {n}, x = {xi}");
            }
        }
    }

    #[test]
    fn clamp_matches_numpy_rules() {
        let mut x = [-2.0, 5.0, 0.3];
        clamp(1.0, 0.0, &mut x); // lo > hi: NumPy gives hi everywhere
        assert_eq!(x, [0.0, 0.0, 0.0]);
    }
}
