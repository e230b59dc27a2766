//! Reductions against NumPy (`np.sum`, `math.fsum`, `np.dot`, `np.min`, `np.max`, `np.argmin`,
//! `np.argmax`) on seeded random data of every size in `support::SIZES`, through the chunk
//! kernels, the sequential and rayon drivers at several chunk sizes, and the pool drivers (2
//! workers); and the drivers against each other, bit for bit, at the same chunk size.

mod support;

use shmpool_kernels::reduce::{self, ArgMax, ArgMin, Max, Min, Reduction, Sum, SumCompensated};
use support::{CHUNKS, Rng, SIZES, TestPool, numpy, same, shared};

const EPS: f64 = f64::EPSILON;

/// The test arrays: for each size, values in [-1, 1), and (from 2 elements) a copy with NaNs.
fn inputs(seed: u64) -> Vec<(String, Vec<f64>)> {
    let mut rng = Rng::new(seed);
    let mut v = Vec::new();
    for &n in SIZES {
        v.push((format!("u{n}"), rng.vec(n, -1.0, 1.0)));
        v.push((format!("w{n}"), rng.wide(n)));
        if n >= 2 {
            let mut x = rng.vec(n, -1.0, 1.0);
            for _ in 0..3 {
                x[(rng.next_u64() % n as u64) as usize] = f64::NAN;
            }
            v.push((format!("nan{n}"), x));
        }
    }
    v
}

/// NumPy's answers for every array of `inputs`.
fn oracle(
    inputs: &[(String, Vec<f64>)],
    other: &[(String, Vec<f64>)],
) -> std::collections::HashMap<String, Vec<f64>> {
    let ins: Vec<(String, &[f64])> =
        inputs.iter().chain(other).map(|(k, v)| (k.clone(), v.as_slice())).collect();
    let names: Vec<String> = inputs.iter().map(|(k, _)| format!("{k:?}")).collect();
    numpy(
        &ins,
        &format!(
            "for k in [{}]:\n\
             \x20   a = x(k)\n\
             \x20   out(k + '.sum', np.sum(a))\n\
             \x20   out(k + '.fsum', math.fsum(a))\n\
             \x20   out(k + '.abs', np.sum(np.abs(a)))\n\
             \x20   out(k + '.dot', np.dot(a, x('b' + k)))\n\
             \x20   out(k + '.absdot', np.sum(np.abs(a * x('b' + k))))\n\
             \x20   if len(a):\n\
             \x20       out(k + '.min', np.min(a)); out(k + '.max', np.max(a))\n\
             \x20       out(k + '.argmin', np.argmin(a)); out(k + '.argmax', np.argmax(a))\n",
            names.join(", ")
        ),
    )
}

/// Second operands of the dot products, named `b` + the first's name.
fn partners(inputs: &[(String, Vec<f64>)]) -> Vec<(String, Vec<f64>)> {
    let mut rng = Rng::new(99);
    inputs.iter().map(|(k, v)| (format!("b{k}"), rng.vec(v.len(), -1.0, 1.0))).collect()
}

/// Checks one array's answers, as computed by `driver` ("what" names it), against NumPy's.
///
/// Tolerances: any order of summing `n` values errs by at most `(n - 1) u sum|x|` (u = EPS / 2),
/// so two orders (ours and NumPy's pairwise) differ by at most `n EPS sum|x|`: that bounds the
/// sum and (with `sum|a b|`) the dot product, where a wrong element (or a lost tail) is off by
/// about 1. The compensated sum is checked against `math.fsum` (exactly rounded) within
/// `2 EPS |S| + 4 n EPS^2 sum|x|` (Kahan's bound with room). Min, max and the arg-extremes are
/// exact, NaN first as in NumPy.
#[allow(clippy::too_many_arguments)]
fn check(
    what: &str,
    k: &str,
    a: &[f64],
    np: &std::collections::HashMap<String, Vec<f64>>,
    s: f64,
    sc: f64,
    d: f64,
    mn: Option<f64>,
    mx: Option<f64>,
    amin: Option<(usize, f64)>,
    amax: Option<(usize, f64)>,
) {
    let n = a.len() as f64;
    let get = |s: &str| np[&format!("{k}.{s}")][0];
    let has_nan = a.iter().any(|x| x.is_nan());
    if has_nan {
        assert!(s.is_nan() && sc.is_nan() && d.is_nan(), "{what} {k}: NaN must propagate");
    } else {
        let tol = n * EPS * get("abs");
        assert!((s - get("sum")).abs() <= tol, "{what} {k}: sum {s:e} vs NumPy {:e}", get("sum"));
        let f = get("fsum");
        let tol_c = 2.0 * EPS * f.abs() + 4.0 * n * EPS * EPS * get("abs");
        assert!((sc - f).abs() <= tol_c, "{what} {k}: compensated {sc:e} vs fsum {f:e}");
        let tol_d = n * EPS * get("absdot");
        assert!((d - get("dot")).abs() <= tol_d, "{what} {k}: dot {d:e} vs NumPy {:e}", get("dot"));
    }
    if a.is_empty() {
        assert_eq!((mn, mx, amin, amax), (None, None, None, None), "{what} {k}: empty");
        return;
    }
    let (mn, mx) = (mn.unwrap(), mx.unwrap());
    assert!(same(mn, get("min")), "{what} {k}: min {mn} vs NumPy {}", get("min"));
    assert!(same(mx, get("max")), "{what} {k}: max {mx} vs NumPy {}", get("max"));
    let (i, v) = amin.unwrap();
    assert_eq!(i as f64, get("argmin"), "{what} {k}: argmin");
    assert!(same(v, a[i]), "{what} {k}: argmin's value");
    let (i, v) = amax.unwrap();
    assert_eq!(i as f64, get("argmax"), "{what} {k}: argmax");
    assert!(same(v, a[i]), "{what} {k}: argmax's value");
}

#[test]
fn chunk_kernels_and_local_drivers_match_numpy() {
    let ins = inputs(1);
    let bs = partners(&ins);
    let np = oracle(&ins, &bs);
    for ((k, a), (_, b)) in ins.iter().zip(&bs) {
        // The chunk kernels over the whole array (one chunk).
        let one = |p| reduce::run_sequential::<SumCompensated>(a, p);
        check(
            "chunk kernels",
            k,
            a,
            &np,
            shmpool_kernels::sum(a),
            one(usize::MAX),
            shmpool_kernels::dot(a, b),
            Min::finish(Min::chunk(a), a.len()),
            Max::finish(Max::chunk(a), a.len()),
            ArgMin::finish(ArgMin::chunk(a), a.len()),
            ArgMax::finish(ArgMax::chunk(a), a.len()),
        );
        for &c in CHUNKS {
            for rayon in [false, true] {
                let what =
                    format!("{} driver, chunk {c}", if rayon { "rayon" } else { "sequential" });
                macro_rules! run {
                    ($r:ty) => {
                        if rayon {
                            reduce::run_rayon::<$r>(a, c)
                        } else {
                            reduce::run_sequential::<$r>(a, c)
                        }
                    };
                }
                let d = if rayon {
                    reduce::dot_rayon(a, b, c)
                } else {
                    reduce::dot_sequential(a, b, c)
                };
                check(
                    &what,
                    k,
                    a,
                    &np,
                    run!(Sum),
                    run!(SumCompensated),
                    d.unwrap(),
                    run!(Min),
                    run!(Max),
                    run!(ArgMin),
                    run!(ArgMax),
                );
            }
            // The rayon driver equals the sequential one bit for bit at the same chunk size.
            let bits = |x: f64| x.to_bits();
            assert_eq!(
                bits(reduce::run_rayon::<Sum>(a, c)),
                bits(reduce::run_sequential::<Sum>(a, c))
            );
            assert_eq!(
                bits(reduce::run_rayon::<SumCompensated>(a, c)),
                bits(reduce::run_sequential::<SumCompensated>(a, c))
            );
            assert_eq!(
                bits(reduce::dot_rayon(a, b, c).unwrap()),
                bits(reduce::dot_sequential(a, b, c).unwrap())
            );
        }
    }
}

#[test]
fn the_compensated_sum_is_exact_where_the_plain_sum_is_not() {
    // 1e16 + many ones - 1e16: each 1.0 is below half an ulp of 1e16, so a plain sum loses them.
    let mut a = vec![1.0; 1001];
    a[0] = 1e16;
    a.push(-1e16);
    for c in [1, 7, 64, 5000] {
        assert_eq!(reduce::run_sequential::<SumCompensated>(&a, c), 1001.0 - 1.0, "chunk {c}");
    }
    assert_ne!(reduce::run_sequential::<Sum>(&a, 5000), 1000.0);
}

#[test]
fn mismatched_lengths_are_an_error() {
    let e = reduce::dot_sequential(&[1.0; 3], &[1.0; 4], 2).unwrap_err();
    assert!(matches!(e, shmpool::Error::LengthMismatch { ref lens } if lens == &[3, 4]), "{e}");
    assert!(reduce::dot_rayon(&[1.0; 3], &[1.0; 2], 2).is_err());
}

#[test]
fn pool_drivers_match_numpy_and_the_sequential_driver() {
    let ins = inputs(2);
    let bs = partners(&ins);
    let np = oracle(&ins, &bs);
    let mut tp = TestPool::new();
    for chunk in [None, Some(1000), Some(3)] {
        let pool = tp.get();
        pool.set_chunk_size(chunk);
        for ((k, a), (_, b)) in ins.iter().zip(&bs) {
            let (sa, sb) = (shared(a), shared(b));
            let c = pool.chunk_size_for(a.len(), 8);
            let what = format!("pool driver, chunk {c}");
            let s = reduce::sum(pool, &sa).unwrap();
            let sc = reduce::sum_compensated(pool, &sa).unwrap();
            let d = reduce::dot(pool, &sa, &sb).unwrap();
            let (mn, mx) = (reduce::min(pool, &sa).unwrap(), reduce::max(pool, &sa).unwrap());
            let (amin, amax) =
                (reduce::argmin(pool, &sa).unwrap(), reduce::argmax(pool, &sa).unwrap());
            check(&what, k, a, &np, s, sc, d, mn, mx, amin, amax);
            // Bit for bit the sequential driver at the pool's chunk size.
            assert_eq!(s.to_bits(), reduce::run_sequential::<Sum>(a, c).to_bits(), "{what} {k}");
            assert_eq!(
                sc.to_bits(),
                reduce::run_sequential::<SumCompensated>(a, c).to_bits(),
                "{what} {k}"
            );
            assert_eq!(
                d.to_bits(),
                reduce::dot_sequential(a, b, c).unwrap().to_bits(),
                "{what} {k}"
            );
        }
    }
}

#[test]
fn results_do_not_depend_on_the_worker_or_thread_count_at_a_fixed_chunk_size() {
    let mut rng = Rng::new(3);
    let (a, b) = (rng.wide(100_003), rng.wide(100_003));
    let (sa, sb) = (shared(&a), shared(&b));
    let chunk = 1000;
    let want = (
        reduce::run_sequential::<Sum>(&a, chunk).to_bits(),
        reduce::run_sequential::<SumCompensated>(&a, chunk).to_bits(),
        reduce::dot_sequential(&a, &b, chunk).unwrap().to_bits(),
    );
    for threads in [1, 3] {
        let rp = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let got = rp.install(|| {
            (
                reduce::run_rayon::<Sum>(&a, chunk).to_bits(),
                reduce::run_rayon::<SumCompensated>(&a, chunk).to_bits(),
                reduce::dot_rayon(&a, &b, chunk).unwrap().to_bits(),
            )
        });
        assert_eq!(got, want, "rayon, {threads} threads");
    }
    for workers in [1, 3] {
        let mut tp = TestPool::build(shmpool::Pool::builder().workers(workers).chunk_size(chunk));
        let pool = tp.get();
        let got = (
            reduce::sum(pool, &sa).unwrap().to_bits(),
            reduce::sum_compensated(pool, &sa).unwrap().to_bits(),
            reduce::dot(pool, &sa, &sb).unwrap().to_bits(),
        );
        assert_eq!(got, want, "pool, {workers} workers");
    }
}
