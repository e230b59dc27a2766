//! The chunk kernels' two builds one by one (`shmpool_kernels::reduce::chunk::builds`), so the
//! diagnostic bench can time the baseline (SSE2) build against the AVX2 one on one core;
//! [`check`] asserts first that both give what the library's dispatching kernels give.

pub use shmpool_kernels::reduce::chunk::builds::{dot_avx2, dot_base, sum_avx2, sum_base};

/// Panics unless both builds give the library's bits on `a` and `b`.
pub fn check(a: &[f64], b: &[f64]) {
    let (s, d) = (shmpool_kernels::sum(a).to_bits(), shmpool_kernels::dot(a, b).to_bits());
    assert_eq!(sum_base(a).to_bits(), s, "the baseline sum build differs from the library's");
    assert_eq!(dot_base(a, b).to_bits(), d, "the baseline dot build differs from the library's");
    if let (Some(x), Some(y)) = (sum_avx2(a), dot_avx2(a, b)) {
        assert_eq!((x.to_bits(), y.to_bits()), (s, d), "the AVX2 builds differ from the library's");
    }
}
