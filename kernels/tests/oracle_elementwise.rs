//! Elementwise kernels against NumPy (`alpha * x + y`, `alpha * x`, `np.clip`, `a * b + c`,
//! `np.polyval`) and against `f64::mul_add` for the fused multiply-add, on seeded random data of
//! every size in `support::SIZES`, through the chunk kernels, the rayon drivers at several chunk
//! sizes, and the pool drivers (2 workers).
//!
//! Tolerances: axpy, scale, clamp and polyval do NumPy's operations in NumPy's order, so they
//! must match it bit for bit (finite inputs; clamp also NaN elements). The fused multiply-add
//! rounds once where NumPy's `a * b + c` rounds twice: they may differ by half an ulp of `a * b`
//! plus half an ulp of the result, so the bound is `EPS (|a b| + |r|)`; against `mul_add` it is
//! exact.

mod support;

use std::collections::HashMap;

use shmpool_kernels::elementwise::{self, chunk};
use support::{CHUNKS, Rng, SIZES, TestPool, assert_bits, numpy, shared};

const ALPHA: f64 = -1.375;
const LO: f64 = -0.5;
const HI: f64 = 0.25;
/// Degree 16, coefficients of mixed sign; inputs in [-1.1, 1.1) keep it finite and away from
/// overflow.
const COEFFS: [f64; 17] = [
    0.3, -1.2, 0.7, 2.5, -0.9, 0.05, -3.1, 1.7, 0.4, -0.6, 1.1, -2.2, 0.8, 0.15, -0.35, 1.9, -0.75,
];

struct Case {
    n: usize,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
}

fn cases() -> Vec<Case> {
    let mut rng = Rng::new(7);
    SIZES
        .iter()
        .map(|&n| {
            let mut a = rng.vec(n, -1.1, 1.1);
            if n >= 3 {
                a[n / 2] = f64::NAN; // clamp keeps a NaN element NaN, as np.clip
            }
            Case { n, a, b: rng.wide(n), c: rng.vec(n, -4.0, 4.0) }
        })
        .collect()
}

/// NumPy's answers: `axpy{n}`, `scale{n}`, `clip{n}`, `fma{n}` (unfused), `poly{n}`.
fn oracle(cases: &[Case]) -> HashMap<String, Vec<f64>> {
    let mut ins = Vec::new();
    for c in cases {
        ins.push((format!("a{}", c.n), c.a.as_slice()));
        ins.push((format!("b{}", c.n), c.b.as_slice()));
        ins.push((format!("c{}", c.n), c.c.as_slice()));
    }
    let sizes: Vec<String> = cases.iter().map(|c| c.n.to_string()).collect();
    numpy(
        &ins,
        &format!(
            "coeffs = np.array({COEFFS:?})\n\
             for n in [{}]:\n\
             \x20   a, b, c = x(f'a{{n}}'), x(f'b{{n}}'), x(f'c{{n}}')\n\
             \x20   out(f'axpy{{n}}', {ALPHA:?} * a + b)\n\
             \x20   out(f'scale{{n}}', {ALPHA:?} * a)\n\
             \x20   out(f'clip{{n}}', np.clip(a, {LO:?}, {HI:?}))\n\
             \x20   out(f'fma{{n}}', a * b + c)\n\
             \x20   out(f'poly{{n}}', np.polyval(coeffs, a))\n",
            sizes.join(", ")
        ),
    )
}

/// Bit for bit, NaN at the same places.
fn assert_same_bits(ours: &[f64], np: &[f64], what: &str) {
    assert_eq!(ours.len(), np.len(), "{what}: lengths");
    for (i, (x, y)) in ours.iter().zip(np).enumerate() {
        let ok = x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
        assert!(ok, "{what}: element {i}: {x:e} vs NumPy {y:e}");
    }
}

/// Every answer of the chunk kernels for one case, as the drivers must reproduce them.
struct Answers {
    axpy: Vec<f64>,
    scale: Vec<f64>,
    clamp: Vec<f64>,
    fma: Vec<f64>,
    poly: Vec<f64>,
}

fn chunk_answers(c: &Case) -> Answers {
    let mut axpy = c.b.clone();
    chunk::axpy(ALPHA, &c.a, &mut axpy);
    let mut scale = c.a.clone();
    chunk::scale(ALPHA, &mut scale);
    let mut clamp = c.a.clone();
    chunk::clamp(LO, HI, &mut clamp);
    let mut fma = vec![0.0; c.n];
    chunk::fma(&c.a, &c.b, &c.c, &mut fma);
    let mut poly = c.a.clone();
    chunk::polyval(&COEFFS, &mut poly);
    Answers { axpy, scale, clamp, fma, poly }
}

#[test]
fn chunk_kernels_match_numpy() {
    let cases = cases();
    let np = oracle(&cases);
    for c in &cases {
        let n = c.n;
        let r = chunk_answers(c);
        assert_same_bits(&r.axpy, &np[&format!("axpy{n}")], &format!("axpy n={n}"));
        assert_same_bits(&r.scale, &np[&format!("scale{n}")], &format!("scale n={n}"));
        assert_same_bits(&r.clamp, &np[&format!("clip{n}")], &format!("clamp n={n}"));
        assert_same_bits(&r.poly, &np[&format!("poly{n}")], &format!("polyval n={n}"));
        let unfused = &np[&format!("fma{n}")];
        for (i, u) in unfused.iter().enumerate() {
            let (a, b, cc) = (c.a[i], c.b[i], c.c[i]);
            let want = a.mul_add(b, cc);
            assert!(
                r.fma[i].to_bits() == want.to_bits() || (want.is_nan() && r.fma[i].is_nan()),
                "fma n={n} element {i}: {:e} vs mul_add {want:e}",
                r.fma[i]
            );
            if !want.is_nan() {
                let tol = f64::EPSILON * ((a * b).abs() + want.abs());
                assert!((r.fma[i] - u).abs() <= tol, "fma n={n} element {i} vs NumPy");
            }
        }
    }
}

#[test]
fn rayon_drivers_equal_the_chunk_kernels() {
    for c in &cases() {
        let want = chunk_answers(c);
        for &k in CHUNKS {
            let what = |op: &str| format!("{op} rayon n={} chunk {k}", c.n);
            let mut y = c.b.clone();
            elementwise::axpy_rayon(ALPHA, &c.a, &mut y, k).unwrap();
            assert_bits(&y, &want.axpy, &what("axpy"));
            let mut x = c.a.clone();
            elementwise::scale_rayon(ALPHA, &mut x, k);
            assert_bits(&x, &want.scale, &what("scale"));
            let mut x = c.a.clone();
            elementwise::clamp_rayon(LO, HI, &mut x, k);
            assert_bits(&x, &want.clamp, &what("clamp"));
            let mut out = vec![0.0; c.n];
            elementwise::fma_rayon(&c.a, &c.b, &c.c, &mut out, k).unwrap();
            assert_bits(&out, &want.fma, &what("fma"));
            let mut x = c.a.clone();
            elementwise::polyval_rayon(&COEFFS, &mut x, k);
            assert_bits(&x, &want.poly, &what("polyval"));
        }
    }
    let mut y = vec![0.0; 3];
    assert!(elementwise::axpy_rayon(1.0, &[1.0; 4], &mut y, 2).is_err());
}

#[test]
fn pool_drivers_equal_the_chunk_kernels() {
    let mut tp = TestPool::new();
    for chunk in [None, Some(1000), Some(3)] {
        let pool = tp.get();
        pool.set_chunk_size(chunk);
        for c in &cases() {
            let want = chunk_answers(c);
            let what = |op: &str| format!("{op} pool n={} chunk {chunk:?}", c.n);
            let (a, b, cc) = (shared(&c.a), shared(&c.b), shared(&c.c));
            let mut y = shared(&c.b);
            elementwise::axpy(pool, ALPHA, &a, &mut y).unwrap();
            assert_bits(&y, &want.axpy, &what("axpy"));
            let mut x = shared(&c.a);
            elementwise::scale(pool, ALPHA, &mut x).unwrap();
            assert_bits(&x, &want.scale, &what("scale"));
            let mut x = shared(&c.a);
            elementwise::clamp(pool, LO, HI, &mut x).unwrap();
            assert_bits(&x, &want.clamp, &what("clamp"));
            let mut out = shmpool::SharedArray::<f64>::zeroed(c.n).unwrap();
            elementwise::fma(pool, &a, &b, &cc, &mut out).unwrap();
            assert_bits(&out, &want.fma, &what("fma"));
            let mut x = shared(&c.a);
            elementwise::polyval(pool, &COEFFS, &mut x).unwrap();
            assert_bits(&x, &want.poly, &what("polyval"));
        }
    }
    // Bad input: typed errors, nothing written.
    let pool = tp.get();
    let a = shared(&[1.0; 5]);
    let mut y = shared(&[2.0; 4]);
    let e = elementwise::axpy(pool, 1.0, &a, &mut y).unwrap_err();
    assert!(matches!(e, shmpool::Error::ShapeMismatch { .. }), "{e}");
    assert_eq!(y[0], 2.0);
    let mut x = shared(&[2.0; 4]);
    let e = elementwise::polyval(pool, &[1.0; 33], &mut x).unwrap_err();
    assert!(matches!(e, shmpool::Error::InvalidArgument { .. }), "{e}");
    assert_eq!(x[0], 2.0);
}
