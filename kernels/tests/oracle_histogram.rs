//! Histograms against NumPy's `np.histogram(x, n, (lo, hi))` over the in-range elements (NumPy
//! puts `x == hi` in the last bin and drops NaN; ours counts both apart, so those counts are
//! checked against `np.sum(x < lo)`, `np.sum(x >= hi)`, `np.sum(np.isnan(x))`), on seeded random
//! data of every size in `support::SIZES`, some of it exactly on the bin edges, through the
//! chunk kernel, the rayon driver and the pool driver (2 workers). Counts are integers: every
//! comparison is exact.

mod support;

use shmpool_kernels::histogram::{self, Bins, BinsError, Histogram};
use support::{CHUNKS, Rng, SIZES, TestPool, numpy_per_size, shared};

/// (lo, hi, bins) of the checks: a plain one, one whose edges are not representable, one bin.
const RANGES: &[(f64, f64, usize)] = &[(-1.0, 1.0, 20), (-0.3, 0.7, 7), (0.0, 0.5, 1)];

fn data() -> Vec<Vec<f64>> {
    let mut rng = Rng::new(11);
    SIZES
        .iter()
        .map(|&n| {
            let mut x = rng.vec(n, -1.5, 1.5);
            // Some elements exactly on edges of every range (where the multiply can be off by
            // one and the edge check decides), at hi, and NaN.
            for (k, v) in x.iter_mut().enumerate().filter(|(k, _)| k % 5 == 1) {
                let (lo, hi, b) = RANGES[k % RANGES.len()];
                let bins = Bins::new(lo, hi, b).unwrap();
                *v = match k % 4 {
                    0 => f64::NAN,
                    1 => hi,
                    _ => bins.edge(k % (b + 1)),
                };
            }
            x
        })
        .collect()
}

fn oracle(xs: &[Vec<f64>]) -> std::collections::HashMap<String, Vec<f64>> {
    numpy_per_size(
        xs,
        &format!(
            "\x20   for r, (lo, hi, b) in enumerate({RANGES:?}):\n\
             \x20       inside = a[(a >= lo) & (a < hi)]\n\
             \x20       out(f'h{{n}}_{{r}}', np.histogram(inside, b, (lo, hi))[0])\n\
             \x20       out(f'o{{n}}_{{r}}', [np.sum(a < lo), np.sum(a >= hi), np.sum(np.isnan(a))])\n"
        ),
    )
}

fn as_f64(h: &Histogram) -> (Vec<f64>, Vec<f64>) {
    (
        h.counts.iter().map(|&c| c as f64).collect(),
        vec![h.below as f64, h.above as f64, h.nan as f64],
    )
}

#[test]
fn every_driver_matches_numpy() {
    let xs = data();
    let np = oracle(&xs);
    let mut tp = TestPool::new();
    for chunk in [None, Some(3)] {
        tp.get().set_chunk_size(chunk);
        for x in &xs {
            let sx = shared(x);
            for (r, &(lo, hi, b)) in RANGES.iter().enumerate() {
                let n = x.len();
                let bins = Bins::new(lo, hi, b).unwrap();
                let want = (np[&format!("h{n}_{r}")].clone(), np[&format!("o{n}_{r}")].clone());
                let one = Histogram::of(&bins, x);
                assert_eq!(as_f64(&one), want, "chunk kernel n={n} range {r}");
                assert_eq!(one.total(), n as u64);
                for &k in CHUNKS {
                    let h = histogram::histogram_rayon(&bins, x, k);
                    assert_eq!(h, one, "rayon n={n} range {r} chunk {k}");
                }
                let h = histogram::histogram(tp.get(), &bins, &sx).unwrap();
                assert_eq!(h, one, "pool n={n} range {r} chunk {chunk:?}");
            }
        }
    }
    let too_many = Bins::new(0.0, 1.0, histogram::MAX_POOL_BINS + 1).unwrap();
    let e = histogram::histogram(tp.get(), &too_many, &shared(&[0.5])).unwrap_err();
    assert!(matches!(e, shmpool::Error::InvalidArgument { .. }), "{e}");
}

#[test]
fn bad_bins_are_refused() {
    assert_eq!(Bins::new(0.0, 1.0, 0), Err(BinsError::NoBins));
    for (lo, hi) in
        [(1.0, 1.0), (2.0, 1.0), (f64::NAN, 1.0), (0.0, f64::INFINITY), (-f64::MAX, f64::MAX)]
    {
        assert!(matches!(Bins::new(lo, hi, 4), Err(BinsError::BadRange { .. })), "{lo} {hi}");
    }
}

#[test]
fn every_edge_opens_its_own_bin() {
    for &(lo, hi, b) in RANGES {
        let bins = Bins::new(lo, hi, b).unwrap();
        for i in 0..b {
            assert_eq!(bins.bin(bins.edge(i)), Some(i), "edge {i} of {lo}..{hi}/{b}");
            let below = bins.edge(i + 1).next_down(); // just under the next edge
            assert_eq!(bins.bin(below), Some(i), "just below edge {} of {lo}..{hi}/{b}", i + 1);
        }
        assert_eq!(bins.bin(hi), None);
    }
}
