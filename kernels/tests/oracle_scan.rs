//! Prefix sums against NumPy's `np.cumsum` on seeded random data of every size in
//! `support::SIZES`, through the chunk kernels, the sequential and rayon drivers at several
//! chunk sizes, and the pool drivers (2 workers); and the drivers against each other, bit for
//! bit, at the same chunk size.
//!
//! Tolerances: one chunk adds in NumPy's order, so it matches `cumsum` bit for bit. Chunked, each
//! `out[i]` is a sum of the `i + 1` first elements in another order: any two orders differ by at
//! most `(i + 1) EPS sum_{j <= i} |x_j|` (from `np.cumsum(np.abs(x))`); a lost or doubled element
//! is off by about its magnitude.

mod support;

use std::collections::HashMap;

use shmpool_kernels::scan::{self, Scan, chunk};
use support::{CHUNKS, Rng, SIZES, TestPool, assert_bits, numpy_per_size, shared};

fn data() -> Vec<Vec<f64>> {
    let mut rng = Rng::new(5);
    SIZES.iter().map(|&n| rng.vec(n, -1.0, 1.0)).collect()
}

fn oracle(xs: &[Vec<f64>]) -> HashMap<String, Vec<f64>> {
    numpy_per_size(
        xs,
        "\x20   out(f'cs{n}', np.cumsum(a))\n\
         \x20   out(f'abs{n}', np.cumsum(np.abs(a)))\n",
    )
}

/// `out` (inclusive or exclusive) within the reordering bound of NumPy's cumsum.
fn check(scan: Scan, out: &[f64], np: &HashMap<String, Vec<f64>>, n: usize, what: &str) {
    let (cs, abs) = (&np[&format!("cs{n}")], &np[&format!("abs{n}")]);
    assert_eq!(out.len(), n, "{what}: length");
    for (i, &o) in out.iter().enumerate() {
        // Exclusive: out[i] is the inclusive sum at i - 1 (0 at i = 0).
        let j = match scan {
            Scan::Inclusive => Some(i),
            Scan::Exclusive => i.checked_sub(1),
        };
        let (want, bound) = j.map_or((0.0, 0.0), |j| (cs[j], abs[j] * (j + 1) as f64));
        assert!(
            (o - want).abs() <= f64::EPSILON * bound,
            "{what}: element {i}: {o:e} vs NumPy {want:e}"
        );
    }
}

#[test]
fn chunk_kernels_and_local_drivers_match_numpy() {
    let xs = data();
    let np = oracle(&xs);
    for x in &xs {
        let n = x.len();
        let mut out = vec![0.0; n];
        chunk::inclusive(x, 0.0, &mut out);
        assert_bits(&out, &np[&format!("cs{n}")], &format!("one chunk n={n}"));
        for &k in CHUNKS {
            for scan in [Scan::Inclusive, Scan::Exclusive] {
                let what = format!("{scan:?} n={n} chunk {k}");
                let mut seq = vec![0.0; n];
                scan::run_sequential(scan, x, &mut seq, k).unwrap();
                check(scan, &seq, &np, n, &format!("sequential {what}"));
                let mut par = vec![f64::NAN; n];
                scan::run_rayon(scan, x, &mut par, k).unwrap();
                assert_bits(&par, &seq, &format!("rayon vs sequential {what}"));
            }
        }
    }
    let mut out = vec![0.0; 2];
    assert!(scan::run_sequential(Scan::Inclusive, &[1.0; 3], &mut out, 2).is_err());
    assert!(scan::run_rayon(Scan::Inclusive, &[1.0; 3], &mut out, 2).is_err());
}

#[test]
fn pool_drivers_match_numpy_and_the_sequential_driver() {
    let xs = data();
    let np = oracle(&xs);
    let mut tp = TestPool::new();
    for chunk in [None, Some(1000), Some(3)] {
        tp.get().set_chunk_size(chunk);
        for x in &xs {
            let n = x.len();
            let sx = shared(x);
            let k = scan::pool_chunk_size(tp.get(), n);
            for scan in [Scan::Inclusive, Scan::Exclusive] {
                let what = format!("pool {scan:?} n={n} chunk {k}");
                let mut out = shmpool::SharedArray::<f64>::from_fn(n, |_| f64::NAN).unwrap();
                scan::run_pool(tp.get(), scan, &sx, &mut out).unwrap();
                check(scan, &out, &np, n, &what);
                let mut seq = vec![0.0; n];
                scan::run_sequential(scan, x, &mut seq, k).unwrap();
                assert_bits(&out, &seq, &what);
            }
        }
    }
    let mut out = shared(&[0.0; 2]);
    let e = scan::inclusive(tp.get(), &shared(&[1.0; 3]), &mut out).unwrap_err();
    assert!(matches!(e, shmpool::Error::LengthMismatch { .. }), "{e}");
}
