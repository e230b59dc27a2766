//! What one chunk computes: the sequential reduction kernels, each returning a partial that
//! [`join`](super::Reduction::join) joins with the next chunk's.
//!
//! Each kernel keeps 16 accumulators (element `i` of the chunk feeds lane `i % 16`) and
//! joins them in one fixed order at the end of the chunk, so its result is a function of the
//! chunk's elements alone: the same bits on every run, machine and worker.

use bytemuck::{Pod, Zeroable};

#[cfg(target_arch = "x86_64")]
use crate::lanes::has_avx2;
use crate::lanes::{LANES, tree};

/// Sum of a chunk, with 16 accumulators joined pairwise.
///
/// Faster than `iter().sum()` (which must add in strict order) and usually more accurate: each
/// lane adds a sixteenth of the elements, then the lanes add as a tree. The rounding differs from
/// a strict left-to-right sum; use [`sum_compensated`] when accuracy matters more than speed.
///
/// ```
/// assert_eq!(shmpool_kernels::reduce::chunk::sum(&[1.0, 2.5, 4.0]), 7.5);
/// assert_eq!(shmpool_kernels::reduce::chunk::sum(&[]), 0.0);
/// ```
pub fn sum(a: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: `sum_avx2` needs AVX2 only (its `target_feature`), and the CPU has it:
        // `has_avx2` asked it just above.
        return unsafe { sum_avx2(a) };
    }
    sum_lanes(a)
}

/// [`sum_lanes`] compiled for AVX2: the same lanes in four 4-wide registers, the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sum_avx2(a: &[f64]) -> f64 {
    sum_lanes(a)
}

/// [`sum`] for any CPU, inlined into each instruction-set variant.
#[inline(always)]
fn sum_lanes(a: &[f64]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let mut blocks = a.chunks_exact(LANES);
    for b in &mut blocks {
        for j in 0..LANES {
            acc[j] += b[j];
        }
    }
    for (j, x) in blocks.remainder().iter().enumerate() {
        acc[j] += x;
    }
    tree(acc)
}

/// Dot product of two chunks of the same length (a longer one is cut to the shorter), with
/// 16 accumulators joined pairwise. Products and sums round separately (no fused
/// multiply-add), as NumPy's `dot` without BLAS does.
///
/// ```
/// assert_eq!(shmpool_kernels::reduce::chunk::dot(&[1.0, 2.0], &[3.0, 4.0]), 11.0);
/// ```
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: `dot_avx2` needs AVX2 only (its `target_feature`), and the CPU has it:
        // `has_avx2` asked it just above.
        return unsafe { dot_avx2(a, b) };
    }
    dot_lanes(a, b)
}

/// [`dot_lanes`] compiled for AVX2 (no FMA: products and sums still round apart), the same
/// bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_avx2(a: &[f64], b: &[f64]) -> f64 {
    dot_lanes(a, b)
}

/// [`dot`] of two slices of the same length, for any CPU, inlined into each instruction-set
/// variant.
#[inline(always)]
fn dot_lanes(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let mut xa = a.chunks_exact(LANES);
    let mut xb = b.chunks_exact(LANES);
    for (p, q) in (&mut xa).zip(&mut xb) {
        for j in 0..LANES {
            acc[j] += p[j] * q[j];
        }
    }
    for (j, (x, y)) in xa.remainder().iter().zip(xb.remainder()).enumerate() {
        acc[j] += x * y;
    }
    tree(acc)
}

/// Each build of [`sum`] and [`dot`] by itself, for `kernels/benches/reduce_diag.rs`, which
/// times one against the other ([`sum`] and [`dot`] pick one at run time). Not an API.
#[doc(hidden)]
pub mod builds {
    /// [`sum`](super::sum), baseline build.
    #[inline(never)]
    pub fn sum_base(a: &[f64]) -> f64 {
        super::sum_lanes(a)
    }

    /// [`dot`](super::dot), baseline build.
    #[inline(never)]
    pub fn dot_base(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len().min(b.len());
        super::dot_lanes(&a[..n], &b[..n])
    }

    /// [`sum`](super::sum), AVX2 build, or `None` on a CPU without AVX2.
    pub fn sum_avx2(a: &[f64]) -> Option<f64> {
        #[cfg(target_arch = "x86_64")]
        if crate::lanes::has_avx2() {
            // SAFETY: `sum_avx2` needs AVX2 only, and the CPU has it (asked just above).
            return Some(unsafe { super::sum_avx2(a) });
        }
        let _ = a;
        None
    }

    /// [`dot`](super::dot), AVX2 build, or `None` on a CPU without AVX2.
    pub fn dot_avx2(a: &[f64], b: &[f64]) -> Option<f64> {
        #[cfg(target_arch = "x86_64")]
        if crate::lanes::has_avx2() {
            let n = a.len().min(b.len());
            // SAFETY: `dot_avx2` needs AVX2 only, and the CPU has it (asked just above).
            return Some(unsafe { super::dot_avx2(&a[..n], &b[..n]) });
        }
        let _ = (a, b);
        None
    }
}

/// A sum carried as an unevaluated pair `hi + lo`, `lo` holding what rounding took from `hi`:
/// the partial of [`sum_compensated`].
///
/// ```
/// use shmpool_kernels::reduce::chunk::{Compensated, sum_compensated};
/// let s = sum_compensated(&[1e16, 1.0, -1e16]);
/// assert_eq!(s.value(), 1.0); // a plain sum gives 0.0
/// assert_eq!(Compensated::ZERO.join(s).value(), 1.0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct Compensated {
    /// The rounded sum.
    pub hi: f64,
    /// The rounding error of `hi`, still to be added.
    pub lo: f64,
}

impl Compensated {
    /// The sum of nothing.
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::reduce::chunk::Compensated::ZERO.value(), 0.0);
    /// ```
    pub const ZERO: Compensated = Compensated { hi: 0.0, lo: 0.0 };

    /// `hi + lo`, rounded once.
    ///
    /// ```
    /// use shmpool_kernels::reduce::chunk::Compensated;
    /// assert_eq!(Compensated { hi: 1e16, lo: 1.0 }.value(), 1e16); // 1 is under half an ulp
    /// ```
    pub fn value(self) -> f64 {
        self.hi + self.lo
    }

    /// The sum of two partials: their `hi` parts added exactly (Knuth's two-sum), the error
    /// carried into `lo`.
    ///
    /// ```
    /// use shmpool_kernels::reduce::chunk::Compensated;
    /// let big = Compensated { hi: 1e16, lo: 0.0 };
    /// let one = Compensated { hi: 1.0, lo: 0.0 };
    /// assert_eq!(big.join(one).join(Compensated { hi: -1e16, lo: 0.0 }).value(), 1.0);
    /// ```
    pub fn join(self, other: Compensated) -> Compensated {
        let (s, e) = two_sum(self.hi, other.hi);
        let lo = self.lo + other.lo + e;
        // Renormalise (Dekker's fast two-sum, valid as |s| >= |lo| unless cancellation made s
        // tiny, where the pair is exact anyway).
        let hi = s + lo;
        Compensated { hi, lo: lo - (hi - s) }
    }
}

/// `a + b` as the rounded sum and its exact error.
#[inline(always)]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// Compensated sum of a chunk (Ogita, Rump and Oishi's `Sum2`, the error-free form of
/// Kahan-Babuska-Neumaier): each of the 16 accumulators adds its elements with a two-sum, which
/// yields the rounding error of every addition exactly, and adds the errors up apart; the lanes
/// then join with exact two-sums. The result errs by at most about `u|S| + n^2 u^2 sum|x_i|` (u =
/// 2^-53), against `n u sum|x_i|` for a plain sum: what cancellation-heavy data needs. Unlike
/// plain Kahan it loses nothing when an element is larger than the running sum. About a third of
/// the speed of [`sum`] when the data is in cache.
///
/// ```
/// let xs = [1.0, 1e100, 1.0, -1e100];
/// assert_eq!(shmpool_kernels::reduce::chunk::sum_compensated(&xs).value(), 2.0);
/// ```
pub fn sum_compensated(a: &[f64]) -> Compensated {
    let mut s = [0.0f64; LANES];
    let mut c = [0.0f64; LANES];
    let mut blocks = a.chunks_exact(LANES);
    for b in &mut blocks {
        for j in 0..LANES {
            let (t, e) = two_sum(s[j], b[j]);
            s[j] = t;
            c[j] += e;
        }
    }
    for (j, &x) in blocks.remainder().iter().enumerate() {
        let (t, e) = two_sum(s[j], x);
        s[j] = t;
        c[j] += e;
    }
    // Lane j holds s[j] + c[j]; join them in the fixed pairwise order of `lanes::tree`.
    let mut v: [Compensated; LANES] = std::array::from_fn(|j| Compensated { hi: s[j], lo: c[j] });
    let mut n = LANES;
    while n > 1 {
        n /= 2;
        for i in 0..n {
            v[i] = v[2 * i].join(v[2 * i + 1]);
        }
    }
    v[0]
}

/// The smallest element of a chunk, NaN if any element is NaN (as NumPy's `min`), `+inf` for an
/// empty chunk (the identity of [`min_of`]).
///
/// ```
/// use shmpool_kernels::reduce::chunk::min;
/// assert_eq!(min(&[3.0, -1.0, 2.0]), -1.0);
/// assert!(min(&[3.0, f64::NAN, 2.0]).is_nan());
/// assert_eq!(min(&[]), f64::INFINITY);
/// ```
pub fn min(a: &[f64]) -> f64 {
    extreme_value(a, |x, m| x < m, f64::INFINITY)
}

/// The largest element of a chunk, NaN if any element is NaN (as NumPy's `max`), `-inf` for an
/// empty chunk (the identity of [`max_of`]).
///
/// ```
/// assert_eq!(shmpool_kernels::reduce::chunk::max(&[3.0, -1.0, 2.0]), 3.0);
/// ```
pub fn max(a: &[f64]) -> f64 {
    extreme_value(a, |x, m| x > m, f64::NEG_INFINITY)
}

/// The lane loop of [`min`] and [`max`]: a select per lane, and a NaN flag per lane kept apart
/// so the select stays one vector compare.
#[inline(always)]
fn extreme_value(a: &[f64], better: impl Fn(f64, f64) -> bool, identity: f64) -> f64 {
    let mut m = [identity; LANES];
    let mut nan = [0u64; LANES];
    let mut blocks = a.chunks_exact(LANES);
    for b in &mut blocks {
        for j in 0..LANES {
            let x = b[j];
            m[j] = if better(x, m[j]) { x } else { m[j] };
            nan[j] |= x.is_nan() as u64;
        }
    }
    for (j, &x) in blocks.remainder().iter().enumerate() {
        m[j] = if better(x, m[j]) { x } else { m[j] };
        nan[j] |= x.is_nan() as u64;
    }
    if nan.iter().any(|&n| n != 0) {
        return f64::NAN;
    }
    m.into_iter().fold(identity, |acc, v| if better(v, acc) { v } else { acc })
}

/// Joins two [`min`] partials: NaN wins, then the smaller.
///
/// ```
/// use shmpool_kernels::reduce::chunk::min_of;
/// assert_eq!(min_of(1.0, -2.0), -2.0);
/// assert!(min_of(f64::NAN, -2.0).is_nan());
/// ```
pub fn min_of(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }
}

/// Joins two [`max`] partials: NaN wins, then the larger.
///
/// ```
/// assert_eq!(shmpool_kernels::reduce::chunk::max_of(1.0, -2.0), 1.0);
/// ```
pub fn max_of(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
}

/// Where the extreme element of a run of elements lies: the partial of [`argmin`] and
/// [`argmax`].
///
/// `index` counts from the start of the run, `len` is the run's length, so two runs side by side
/// join without knowing where either starts ([`Extreme::join_min`]). An empty run has `len == 0`
/// and no index.
///
/// ```
/// use shmpool_kernels::reduce::chunk::{Extreme, argmin};
/// let left = argmin(&[5.0, 1.0]);
/// let right = argmin(&[7.0, 0.5, 0.5]);
/// let both = left.join_min(right);
/// assert_eq!((both.index, both.value, both.len), (3, 0.5, 5));
/// assert_eq!(Extreme::EMPTY.join_min(left), left);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct Extreme {
    /// The extreme value (NaN if the run holds a NaN).
    pub value: f64,
    /// Its first index in the run.
    pub index: u64,
    /// Elements in the run.
    pub len: u64,
}

impl Extreme {
    /// The extreme of no elements, the identity of [`join_min`](Extreme::join_min) and
    /// [`join_max`](Extreme::join_max).
    ///
    /// ```
    /// assert_eq!(shmpool_kernels::reduce::chunk::argmin(&[]).len, 0);
    /// ```
    pub const EMPTY: Extreme = Extreme { value: f64::NAN, index: 0, len: 0 };

    /// The run `self` followed by the run `other`, for [`argmin`] partials: the first smallest
    /// element, the first NaN if there is one.
    ///
    /// ```
    /// use shmpool_kernels::reduce::chunk::argmin;
    /// let e = argmin(&[1.0, 2.0]).join_min(argmin(&[1.0, f64::NAN]));
    /// assert_eq!(e.index, 3); // the first NaN wins
    /// ```
    pub fn join_min(self, other: Extreme) -> Extreme {
        self.join(other, min_better)
    }

    /// As [`join_min`](Extreme::join_min), for [`argmax`] partials.
    ///
    /// ```
    /// use shmpool_kernels::reduce::chunk::argmax;
    /// let e = argmax(&[1.0, 5.0]).join_max(argmax(&[5.0, 2.0]));
    /// assert_eq!((e.index, e.value), (1, 5.0)); // ties keep the earlier
    /// ```
    pub fn join_max(self, other: Extreme) -> Extreme {
        self.join(other, max_better)
    }

    fn join(self, other: Extreme, better: fn(f64, f64) -> bool) -> Extreme {
        let len = self.len + other.len;
        if other.len == 0 {
            return Extreme { len, ..self };
        }
        if self.len == 0 || better(other.value, self.value) {
            Extreme { value: other.value, index: self.len + other.index, len }
        } else {
            Extreme { len, ..self }
        }
    }
}

/// `x` beats the current minimum `m`: smaller, or the first NaN (NumPy's `argmin` answers the
/// first NaN).
#[inline(always)]
fn min_better(x: f64, m: f64) -> bool {
    x < m || (x.is_nan() && !m.is_nan())
}

/// As [`min_better`], for the maximum.
#[inline(always)]
fn max_better(x: f64, m: f64) -> bool {
    x > m || (x.is_nan() && !m.is_nan())
}

/// Index and value of the first smallest element of a chunk, or of its first NaN (as NumPy's
/// `argmin`); [`Extreme::EMPTY`] for an empty chunk. Ties go to the lowest index.
///
/// ```
/// let e = shmpool_kernels::reduce::chunk::argmin(&[3.0, -1.0, 2.0, -1.0]);
/// assert_eq!((e.index, e.value), (1, -1.0));
/// ```
pub fn argmin(a: &[f64]) -> Extreme {
    arg_extreme(a, min_better)
}

/// Index and value of the first largest element of a chunk, or of its first NaN (as NumPy's
/// `argmax`); [`Extreme::EMPTY`] for an empty chunk.
///
/// ```
/// let e = shmpool_kernels::reduce::chunk::argmax(&[3.0, -1.0, 3.0]);
/// assert_eq!((e.index, e.value), (0, 3.0));
/// ```
pub fn argmax(a: &[f64]) -> Extreme {
    arg_extreme(a, max_better)
}

#[inline(always)]
fn arg_extreme(a: &[f64], better: fn(f64, f64) -> bool) -> Extreme {
    if a.is_empty() {
        return Extreme::EMPTY;
    }
    // Lanes start on the first block (a lane with no element keeps the first element, index 0,
    // which can only tie with it), then take strictly better elements, so each lane holds its
    // first extreme.
    let mut v = [a[0]; LANES];
    let mut idx = [0u64; LANES];
    let first = a.len().min(LANES);
    for j in 0..first {
        v[j] = a[j];
        idx[j] = j as u64;
    }
    let rest = &a[first..];
    let mut blocks = rest.chunks_exact(LANES);
    let mut base = first as u64;
    for b in &mut blocks {
        for j in 0..LANES {
            let take = better(b[j], v[j]);
            v[j] = if take { b[j] } else { v[j] };
            idx[j] = if take { base + j as u64 } else { idx[j] };
        }
        base += LANES as u64;
    }
    for (j, &x) in blocks.remainder().iter().enumerate() {
        if better(x, v[j]) {
            v[j] = x;
            idx[j] = base + j as u64;
        }
    }
    // The best lane; among equally good lanes (equal values, or NaNs) the lowest index.
    let mut best = 0;
    for j in 1..LANES {
        let same = v[j] == v[best] || (v[j].is_nan() && v[best].is_nan());
        if better(v[j], v[best]) || (same && idx[j] < idx[best]) {
            best = j;
        }
    }
    Extreme { value: v[best], index: idx[best], len: a.len() as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values of every magnitude and sign, so lanes added in another order would round
    /// differently.
    fn awkward(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let m = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                m * 2f64.powi((x % 60) as i32 - 30)
            })
            .collect()
    }

    #[test]
    fn the_dispatched_kernels_give_the_baseline_bits() {
        // On a CPU with AVX2, `sum` and `dot` run the AVX2 build; the baseline build is
        // `*_lanes` (inlined into this test, compiled for the baseline).
        for n in (0..70).chain([255, 256, 257, 1000, 4099, 65_536 + 3]) {
            // Slices that start off a vector boundary too, as a pool's chunks may.
            let skew = n % 4;
            let a = &awkward(n + skew, n as u64 + 1)[skew..];
            let b = &awkward(n + skew, n as u64 + 1000)[skew..];
            assert_eq!(sum(a).to_bits(), sum_lanes(a).to_bits(), "sum, n = {n}");
            assert_eq!(dot(a, b).to_bits(), dot_lanes(a, b).to_bits(), "dot, n = {n}");
            // And both are the documented order: lane j sums elements j, j + 16, ... in turn.
            let mut lanes = [0.0; LANES];
            let mut dots = [0.0; LANES];
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                lanes[i % LANES] += x;
                dots[i % LANES] += x * y;
            }
            assert_eq!(sum(a).to_bits(), tree(lanes).to_bits(), "sum order, n = {n}");
            assert_eq!(dot(a, b).to_bits(), tree(dots).to_bits(), "dot order, n = {n}");
        }
        // Infinities and NaN go through both builds alike (a NaN's payload aside).
        let mut a = awkward(100, 7);
        a[17] = f64::INFINITY;
        assert_eq!(sum(&a), f64::INFINITY);
        assert_eq!(sum_lanes(&a), f64::INFINITY);
        a[40] = f64::NEG_INFINITY;
        assert!(sum(&a).is_nan() && sum_lanes(&a).is_nan());
        assert!(dot(&a, &a).is_infinite() && dot_lanes(&a, &a).is_infinite());
        // A longer operand is cut to the shorter's length before either build runs.
        let (short, long) = (awkward(50, 3), awkward(83, 4));
        let want = dot_lanes(&short, &long[..50]).to_bits();
        assert_eq!((dot(&short, &long).to_bits(), dot(&long, &short).to_bits()), (want, want));
    }

    #[test]
    fn lanes_and_tails_cover_every_element() {
        for n in 0..40 {
            let a: Vec<f64> = (0..n).map(|i| i as f64 + 1.0).collect();
            let b: Vec<f64> = (0..n).map(|i| 2.0 - i as f64).collect();
            let exact: f64 = a.iter().sum();
            assert_eq!(sum(&a), exact, "n = {n}");
            assert_eq!(sum_compensated(&a).value(), exact, "n = {n}");
            assert_eq!(dot(&a, &b), a.iter().zip(&b).map(|(x, y)| x * y).sum::<f64>(), "n = {n}");
            if n > 0 {
                assert_eq!(min(&b), b[n - 1]);
                assert_eq!(max(&a), a[n - 1]);
                assert_eq!(argmin(&b).index, n as u64 - 1);
                assert_eq!(argmax(&b).index, 0);
            }
        }
    }

    #[test]
    fn the_first_of_equal_extremes_wins_in_every_lane() {
        for n in 1..30 {
            for at in 0..n {
                let mut a = vec![1.0; n];
                a[at..].fill(0.0);
                assert_eq!(argmin(&a).index, at as u64, "n = {n}, first zero at {at}");
                let inf = vec![f64::INFINITY; n];
                assert_eq!(argmin(&inf).index, 0);
                assert_eq!(argmax(&inf).index, 0);
            }
        }
    }

    #[test]
    fn the_first_nan_wins() {
        for n in 1..20 {
            for at in 0..n {
                let mut a: Vec<f64> = (0..n).map(|i| i as f64).collect();
                a[at] = f64::NAN;
                if at + 2 < n {
                    a[at + 2] = f64::NAN;
                }
                assert_eq!(argmin(&a).index, at as u64);
                assert_eq!(argmax(&a).index, at as u64);
                assert!(min(&a).is_nan() && max(&a).is_nan());
            }
        }
    }
}
