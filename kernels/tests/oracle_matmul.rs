//! The blocked matrix multiply against two oracles: a naive triple loop in Rust and NumPy's
//! `a @ b` (python3 with numpy; `python3 -m pip install numpy`), on seeded random matrices whose
//! sizes include 0, 1, primes, and non-multiples of the register tile (4 x 8) and of the cache
//! panel (256 x 512).
//!
//! Tolerance: the blocked kernel sums in another order than the oracle, so each element may
//! differ by the standard bound for a dot product of length `k` in any order,
//! `|C - C_ref| <= k * eps * sum_p |A_ip| |B_pj|`; the tests allow twice that. The parallel
//! drivers (rayon, and the pool with 2 workers) must match the sequential kernel bit for bit.

mod support;

use support::{Rng, numpy};

use shmpool_kernels::{Float, MatDims, matmul, matmul_rayon};

/// (m, k, n): empty, unit, primes, and panel/tile edges (k = 263 > 256, n = 521 > 512).
const SIZES: &[(usize, usize, usize)] = &[
    (0, 0, 0),
    (0, 3, 5),
    (3, 0, 5),
    (3, 5, 0),
    (1, 1, 1),
    (1, 7, 13),
    (13, 1, 7),
    (7, 13, 1),
    (5, 3, 9),
    (37, 263, 521),
    (64, 64, 64),
    (97, 300, 101),
];

fn random(len: usize, seed: u64) -> Vec<f64> {
    Rng::new(seed).vec(len, -1.0, 1.0)
}

/// The naive product, and `sum_p |A_ip| |B_pj|` for the tolerance.
fn naive(a: &[f64], b: &[f64], (m, k, n): (usize, usize, usize)) -> (Vec<f64>, Vec<f64>) {
    let (mut c, mut mag) = (vec![0.0; m * n], vec![0.0; m * n]);
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                c[i * n + j] += a[i * k + p] * b[p * n + j];
                mag[i * n + j] += (a[i * k + p] * b[p * n + j]).abs();
            }
        }
    }
    (c, mag)
}

fn assert_close<T: Float>(got: &[T], want: &[f64], mag: &[f64], k: usize, eps: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((g, w), m)) in got.iter().zip(want).zip(mag).enumerate() {
        let tol = 2.0 * (k as f64) * eps * m + f64::MIN_POSITIVE;
        let err = (g.to_f64() - w).abs();
        assert!(
            err <= tol,
            "{what}: element {i}: {} vs {w} (error {err:e} > tolerance {tol:e})",
            g.to_f64()
        );
    }
}

#[test]
fn blocked_matches_the_naive_product_f64_and_f32() {
    for (s, &(m, k, n)) in SIZES.iter().enumerate() {
        let dims = MatDims::new(m, k, n);
        let (a, b) = (random(m * k, 2 * s as u64), random(k * n, 2 * s as u64 + 1));
        let (want, mag) = naive(&a, &b, (m, k, n));
        let mut c = vec![f64::NAN; m * n];
        matmul(&a, &b, &mut c, dims);
        assert_close(&c, &want, &mag, k, f64::EPSILON, &format!("f64 {m}x{k}x{n}"));

        // f32: the oracle is the f64 product of the f32-rounded inputs.
        let (a32, b32): (Vec<f32>, Vec<f32>) =
            (a.iter().map(|&x| x as f32).collect(), b.iter().map(|&x| x as f32).collect());
        let (a_r, b_r): (Vec<f64>, Vec<f64>) =
            (a32.iter().map(|&x| x as f64).collect(), b32.iter().map(|&x| x as f64).collect());
        let (want32, mag32) = naive(&a_r, &b_r, (m, k, n));
        let mut c32 = vec![f32::NAN; m * n];
        matmul(&a32, &b32, &mut c32, dims);
        assert_close(
            &c32,
            &want32,
            &mag32,
            k.max(1),
            f32::EPSILON as f64,
            &format!("f32 {m}x{k}x{n}"),
        );
    }
}

#[test]
fn rayon_driver_matches_sequential_bit_for_bit() {
    let rp = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    for (s, &(m, k, n)) in SIZES.iter().enumerate() {
        let dims = MatDims::new(m, k, n);
        let (a, b) = (random(m * k, 100 + s as u64), random(k * n, 200 + s as u64));
        let mut seq = vec![0.0; m * n];
        matmul(&a, &b, &mut seq, dims);
        let mut par = vec![f64::NAN; m * n];
        rp.install(|| matmul_rayon(&a, &b, &mut par, dims)).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&par), bits(&seq), "{m}x{k}x{n}");
    }
}

#[test]
fn wrong_lengths_are_a_dims_error() {
    let dims = MatDims::new(2, 3, 4);
    let mut c = vec![0.0f64; 8];
    let err = matmul_rayon(&[0.0; 6], &[0.0; 11], &mut c, dims).unwrap_err();
    assert_eq!(err, shmpool_kernels::DimsError::Matmul { dims, lens: [6, 11, 8] });
    assert!(err.to_string().contains("MatDims::a_len"), "{err}");
}

#[test]
#[should_panic(expected = "needs A, B and C of 6 12 8 elements")]
fn sequential_kernel_panics_on_wrong_lengths() {
    matmul(&[0.0f64; 6], &[0.0; 12], &mut [0.0; 9], MatDims::new(2, 3, 4));
}

/// NumPy's `a @ b` (BLAS), through [`numpy`].
fn numpy_matmul(a: &[f64], b: &[f64], (m, k, n): (usize, usize, usize)) -> Vec<f64> {
    let ins = [("a".to_owned(), a), ("b".to_owned(), b)];
    let script = format!("out('c', x('a').reshape({m}, {k}) @ x('b').reshape({k}, {n}))\n");
    numpy(&ins, &script).remove("c").expect("the NumPy oracle wrote c")
}

#[test]
fn blocked_matches_numpy() {
    for (s, &(m, k, n)) in SIZES.iter().enumerate() {
        let (a, b) = (random(m * k, 300 + s as u64), random(k * n, 400 + s as u64));
        let want = numpy_matmul(&a, &b, (m, k, n));
        let (_, mag) = naive(&a, &b, (m, k, n));
        let mut c = vec![f64::NAN; m * n];
        matmul(&a, &b, &mut c, MatDims::new(m, k, n));
        assert_close(&c, &want, &mag, k, f64::EPSILON, &format!("numpy {m}x{k}x{n}"));
    }
}

#[test]
fn pool_driver_matches_sequential_bit_for_bit() {
    use shmpool_kernels::{MatmulBuffers, matmul_pool};
    let mut pool = shmpool::Pool::builder().workers(2).inline_threshold(0).build().unwrap();
    for (s, &(m, k, n)) in SIZES.iter().chain(&[(130, 67, 129), (256, 256, 256)]).enumerate() {
        let dims = MatDims::new(m, k, n);
        let (a, b) = (random(m * k, 500 + s as u64), random(k * n, 600 + s as u64));
        let mut seq = vec![0.0; m * n];
        matmul(&a, &b, &mut seq, dims);
        let mut bufs = MatmulBuffers::<f64>::zeroed(dims).unwrap();
        let (ba, bb) = bufs.a_b_mut();
        ba.copy_from_slice(&a);
        bb.copy_from_slice(&b);
        matmul_pool(&mut pool, &mut bufs).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(bufs.c()), bits(&seq), "{m}x{k}x{n}");
        // Again on the same buffers (C is overwritten, not accumulated), in f32.
        let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
        let b32: Vec<f32> = b.iter().map(|&x| x as f32).collect();
        let mut seq32 = vec![0.0f32; m * n];
        matmul(&a32, &b32, &mut seq32, dims);
        let mut bufs32 = MatmulBuffers::<f32>::zeroed(dims).unwrap();
        let (ba, bb) = bufs32.a_b_mut();
        ba.copy_from_slice(&a32);
        bb.copy_from_slice(&b32);
        matmul_pool(&mut pool, &mut bufs32).unwrap();
        matmul_pool(&mut pool, &mut bufs32).unwrap();
        let bits32 = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits32(bufs32.c()), bits32(&seq32), "f32 {m}x{k}x{n}");
    }
}
