//! What one chunk computes in the second pass of a prefix sum: the running sum of its elements,
//! started from the chunk's offset (the sum of every earlier chunk, from the first pass).

/// Inclusive prefix sum of a chunk, started from `offset`: `out[i] = offset + x[0] + ... +
/// x[i]`, added left to right. Returns the running sum after the last element. With `offset =
/// 0.0` over a whole array this is bit for bit NumPy's `np.cumsum`. Slices of different
/// lengths are cut to the shorter.
///
/// ```
/// let mut out = [0.0; 3];
/// let end = shmpool_kernels::scan::chunk::inclusive(&[1.0, 2.0, 3.0], 10.0, &mut out);
/// assert_eq!((out, end), ([11.0, 13.0, 16.0], 16.0));
/// ```
pub fn inclusive(x: &[f64], offset: f64, out: &mut [f64]) -> f64 {
    let mut run = offset;
    for (o, v) in out.iter_mut().zip(x) {
        run += v;
        *o = run;
    }
    run
}

/// Exclusive prefix sum of a chunk, started from `offset`: `out[i] = offset + x[0] + ... +
/// x[i - 1]` (so `out[0] = offset`). Returns the running sum after the last element.
///
/// ```
/// let mut out = [0.0; 3];
/// let end = shmpool_kernels::scan::chunk::exclusive(&[1.0, 2.0, 3.0], 10.0, &mut out);
/// assert_eq!((out, end), ([10.0, 11.0, 13.0], 16.0));
/// ```
pub fn exclusive(x: &[f64], offset: f64, out: &mut [f64]) -> f64 {
    let mut run = offset;
    for (o, v) in out.iter_mut().zip(x) {
        *o = run;
        run += v;
    }
    run
}
