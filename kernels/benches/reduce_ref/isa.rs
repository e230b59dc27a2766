//! The chunk kernels' lane loops compiled twice, as `shmpool_kernels::reduce::chunk` does, so
//! the diagnostic bench can time the baseline (SSE2) build against the AVX2 one on one core.
//! A copy, not the library's code (which picks one build at run time): [`check`] asserts that
//! both copies give the library's bits, so the copy cannot drift from it unnoticed.

const LANES: usize = 16;

#[inline(always)]
fn tree(mut v: [f64; LANES]) -> f64 {
    let mut n = LANES;
    while n > 1 {
        n /= 2;
        for i in 0..n {
            v[i] = v[2 * i] + v[2 * i + 1];
        }
    }
    v[0]
}

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

/// Sum, baseline build.
#[inline(never)]
pub fn sum_base(a: &[f64]) -> f64 {
    sum_lanes(a)
}

/// Dot, baseline build.
#[inline(never)]
pub fn dot_base(a: &[f64], b: &[f64]) -> f64 {
    dot_lanes(a, b)
}

/// Sum, AVX2 build, or `None` on a CPU without AVX2.
pub fn sum_avx2(a: &[f64]) -> Option<f64> {
    #[target_feature(enable = "avx2")]
    #[inline(never)]
    fn avx2(a: &[f64]) -> f64 {
        sum_lanes(a)
    }
    // SAFETY: `avx2` needs AVX2 only, and the CPU has it (asked first).
    std::arch::is_x86_feature_detected!("avx2").then(|| unsafe { avx2(a) })
}

/// Dot, AVX2 build, or `None` on a CPU without AVX2.
pub fn dot_avx2(a: &[f64], b: &[f64]) -> Option<f64> {
    #[target_feature(enable = "avx2")]
    #[inline(never)]
    fn avx2(a: &[f64], b: &[f64]) -> f64 {
        dot_lanes(a, b)
    }
    // SAFETY: `avx2` needs AVX2 only, and the CPU has it (asked first).
    std::arch::is_x86_feature_detected!("avx2").then(|| unsafe { avx2(a, b) })
}

/// Panics unless both builds give the library's bits on `a` and `b`.
pub fn check(a: &[f64], b: &[f64]) {
    let (s, d) = (shmpool_kernels::sum(a).to_bits(), shmpool_kernels::dot(a, b).to_bits());
    assert_eq!(sum_base(a).to_bits(), s, "the baseline sum copy drifted from the library");
    assert_eq!(dot_base(a, b).to_bits(), d, "the baseline dot copy drifted from the library");
    if let (Some(x), Some(y)) = (sum_avx2(a), dot_avx2(a, b)) {
        assert_eq!((x.to_bits(), y.to_bits()), (s, d), "the AVX2 copies drifted");
    }
}
