//! The 5-point Jacobi step against a naive Rust stencil and NumPy's slicing form
//! (`0.25 * ((up + down) + (left + right))` on `[1:-1, 1:-1]`; python3 with numpy), on seeded
//! random grids of sizes 0, 1, primes, and row counts that are not multiples of the bands.
//!
//! Tolerance: none. Both oracles add in the same order as the kernel, so grids and residuals
//! must be equal bit for bit, after one step and after several; and so must every banding of
//! the block kernel (any chunking a driver may choose), the rayon driver and the pool's.

use std::process::Command;

use shmpool_kernels::{GridDims, jacobi, jacobi_rayon, jacobi_rows, jacobi_step};

/// (h, w): empty, unit, thin, primes.
const SIZES: &[(usize, usize)] = &[
    (0, 0),
    (0, 5),
    (5, 0),
    (1, 1),
    (1, 7),
    (7, 1),
    (2, 2),
    (3, 3),
    (2, 9),
    (13, 17),
    (31, 29),
    (101, 67),
];

fn random(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 * 100.0
        })
        .collect()
}

/// The stencil as written in a textbook, and its residual.
fn naive_step(old: &[f64], h: usize, w: usize) -> (Vec<f64>, f64) {
    let mut new = old.to_vec();
    let mut res = 0.0f64;
    for i in 1..h.saturating_sub(1) {
        for j in 1..w.saturating_sub(1) {
            let at = |i: usize, j: usize| old[i * w + j];
            let v = 0.25 * ((at(i - 1, j) + at(i + 1, j)) + (at(i, j - 1) + at(i, j + 1)));
            new[i * w + j] = v;
            res = res.max((v - at(i, j)).abs());
        }
    }
    (new, res)
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn one_step_matches_the_naive_stencil() {
    for (s, &(h, w)) in SIZES.iter().enumerate() {
        let old = random(h * w, s as u64);
        let (want, want_res) = naive_step(&old, h, w);
        let mut new = vec![f64::NAN; h * w];
        let res = jacobi_step(&old, &mut new, GridDims::new(h, w));
        assert_eq!(bits(&new), bits(&want), "{h}x{w}");
        assert_eq!(res, want_res, "{h}x{w} residual");
    }
}

#[test]
fn every_banding_matches_the_whole_grid() {
    for (s, &(h, w)) in SIZES.iter().enumerate().filter(|(_, d)| d.1 > 0) {
        let old = random(h * w, 50 + s as u64);
        let (want, want_res) = naive_step(&old, h, w);
        for rows in [1, 2, 3, 5, 8] {
            let mut new = vec![f64::NAN; h * w];
            let mut res = 0.0f64;
            for (b, band) in new.chunks_mut(rows * w).enumerate() {
                let start = b * rows * w;
                let (lo, hi) = (start.saturating_sub(w), (start + band.len() + w).min(old.len()));
                res = res.max(jacobi_rows(&old[lo..hi], start - lo, band, w));
            }
            assert_eq!(bits(&new), bits(&want), "{h}x{w} in bands of {rows} rows");
            assert_eq!(res, want_res, "{h}x{w} in bands of {rows} rows: residual");
        }
    }
}

#[test]
fn several_steps_match_naive_and_rayon() {
    let rp = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    for (s, &(h, w)) in SIZES.iter().enumerate() {
        for steps in [0, 1, 4, 7] {
            let start = random(h * w, 100 + s as u64);
            let (mut want, mut want_res) = (start.clone(), 0.0);
            for _ in 0..steps {
                (want, want_res) = naive_step(&want, h, w);
            }
            let dims = GridDims::new(h, w);
            let (mut grid, mut scratch) = (start.clone(), vec![0.0; h * w]);
            let res = jacobi(&mut grid, &mut scratch, dims, steps);
            assert_eq!(bits(&grid), bits(&want), "{h}x{w}, {steps} steps");
            assert_eq!(res, want_res, "{h}x{w}, {steps} steps: residual");

            let (mut grid_r, mut scratch_r) = (start, vec![0.0; h * w]);
            let res_r =
                rp.install(|| jacobi_rayon(&mut grid_r, &mut scratch_r, dims, steps)).unwrap();
            assert_eq!(bits(&grid_r), bits(&want), "rayon {h}x{w}, {steps} steps");
            assert_eq!(res_r, want_res, "rayon {h}x{w}, {steps} steps: residual");
        }
    }
}

#[test]
fn f32_grid_is_exact_too() {
    let (h, w) = (13, 17);
    let old64 = random(h * w, 7);
    let old: Vec<f32> = old64.iter().map(|&x| x as f32).collect();
    let mut new = vec![0.0f32; h * w];
    let res = jacobi_step(&old, &mut new, GridDims::new(h, w));
    let mut max = 0.0f32;
    for i in 1..h - 1 {
        for j in 1..w - 1 {
            let at = |i: usize, j: usize| old[i * w + j];
            let v = 0.25 * ((at(i - 1, j) + at(i + 1, j)) + (at(i, j - 1) + at(i, j + 1)));
            assert_eq!(new[i * w + j].to_bits(), v.to_bits(), "({i}, {j})");
            max = max.max((v - at(i, j)).abs());
        }
    }
    assert_eq!(res, max);
}

#[test]
fn a_nan_makes_the_residual_nan() {
    let mut old = vec![1.0f64; 25];
    old[12] = f64::NAN;
    let mut new = vec![0.0; 25];
    assert!(jacobi_step(&old, &mut new, GridDims::new(5, 5)).is_nan());
    let rp = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let mut scratch = vec![0.0; 25];
    let res = rp.install(|| jacobi_rayon(&mut old, &mut scratch, GridDims::new(5, 5), 1)).unwrap();
    assert!(res.is_nan());
}

#[test]
fn wrong_lengths_are_a_dims_error() {
    let dims = GridDims::new(3, 4);
    let err = jacobi_rayon(&mut [0.0f64; 12], &mut [0.0; 13], dims, 1).unwrap_err();
    assert_eq!(err, shmpool_kernels::DimsError::Grid { dims, lens: [12, 13] });
    assert!(err.to_string().contains("GridDims::len"), "{err}");
}

/// `steps` steps in NumPy; returns the grid and the last residual.
fn numpy_jacobi(old: &[f64], h: usize, w: usize, steps: usize) -> (Vec<f64>, f64) {
    let dir =
        std::env::temp_dir().join(format!("shmpool-oracle-stencil-{}-{h}-{w}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes: Vec<u8> = old.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(dir.join("g"), bytes).unwrap();
    let script = "import sys, numpy as np\n\
                  d, h, w, steps = sys.argv[1], *map(int, sys.argv[2:])\n\
                  g = np.fromfile(d + '/g', '<f8').reshape(h, w)\n\
                  res = 0.0\n\
                  for _ in range(steps):\n\
                  \x20   new = g.copy()\n\
                  \x20   new[1:-1, 1:-1] = 0.25 * ((g[:-2, 1:-1] + g[2:, 1:-1]) + (g[1:-1, :-2] + g[1:-1, 2:]))\n\
                  \x20   res = float(np.abs(new - g).max()) if g.size else 0.0\n\
                  \x20   g = new\n\
                  g.astype('<f8').tofile(d + '/out')\n\
                  np.array([res], '<f8').tofile(d + '/res')\n";
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&dir)
        .args([h, w, steps].map(|x| x.to_string()))
        .status()
        .expect("python3 is required: install Python 3 and `python3 -m pip install numpy`");
    assert!(status.success(), "the NumPy oracle failed ({status}): `python3 -m pip install numpy`");
    let read = |name: &str| -> Vec<f64> {
        let b = std::fs::read(dir.join(name)).unwrap();
        b.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect()
    };
    let (grid, res) = (read("out"), read("res")[0]);
    std::fs::remove_dir_all(&dir).unwrap();
    (grid, res)
}

#[test]
fn several_steps_match_numpy_bit_for_bit() {
    for (s, &(h, w)) in SIZES.iter().enumerate().filter(|(_, d)| d.0 > 0 && d.1 > 0) {
        let start = random(h * w, 200 + s as u64);
        let (want, want_res) = numpy_jacobi(&start, h, w, 5);
        let (mut grid, mut scratch) = (start, vec![0.0; h * w]);
        let res = jacobi(&mut grid, &mut scratch, GridDims::new(h, w), 5);
        assert_eq!(bits(&grid), bits(&want), "{h}x{w}");
        assert_eq!(res, want_res, "{h}x{w} residual");
    }
}

/// A pool of 2 workers that never runs a job inline and cuts chunks of `chunk` elements
/// (rounded up to whole rows by the job), so small grids still span several chunks.
fn pool(chunk: usize) -> shmpool::Pool {
    shmpool::Pool::builder().workers(2).inline_threshold(0).chunk_size(chunk).build().unwrap()
}

#[test]
fn pool_driver_matches_naive_bit_for_bit() {
    use shmpool::SharedArray;
    use shmpool_kernels::{jacobi_pool, jacobi_step_pool};
    for chunk in [1, 50] {
        let mut p = pool(chunk);
        for (s, &(h, w)) in SIZES.iter().enumerate() {
            for steps in [0, 1, 2, 5, 17, 32] {
                let start = random(h * w, 300 + s as u64);
                let (mut want, mut want_res) = (start.clone(), 0.0);
                for _ in 0..steps {
                    (want, want_res) = naive_step(&want, h, w);
                }
                let dims = GridDims::new(h, w);
                let mut grid = SharedArray::from_slice(&start).unwrap();
                let mut scratch = SharedArray::<f64>::zeroed(h * w).unwrap();
                let res = jacobi_pool(&mut p, &mut grid, &mut scratch, dims, steps).unwrap();
                let what = format!("pool {h}x{w}, {steps} steps, chunks of {chunk}");
                assert_eq!(bits(&grid), bits(&want), "{what}");
                assert_eq!(res, want_res, "{what}: residual");
            }
            let old = SharedArray::from_slice(&random(h * w, 400 + s as u64)).unwrap();
            let (want, want_res) = naive_step(&old, h, w);
            let mut new = SharedArray::<f64>::zeroed(h * w).unwrap();
            let res = jacobi_step_pool(&mut p, &old, &mut new, GridDims::new(h, w)).unwrap();
            assert_eq!(bits(&new), bits(&want), "pool step {h}x{w}");
            assert_eq!(res, want_res, "pool step {h}x{w}: residual");
        }
        // f32, a NaN, and arrays of the wrong length.
        let dims = GridDims::new(9, 11);
        let mut g = SharedArray::<f32>::from_fn(99, |i| i as f32).unwrap();
        g[50] = f32::NAN;
        let mut t = SharedArray::<f32>::zeroed(99).unwrap();
        assert!(jacobi_pool(&mut p, &mut g, &mut t, dims, 3).unwrap().is_nan());
        let mut short = SharedArray::<f32>::zeroed(98).unwrap();
        let err = jacobi_pool(&mut p, &mut g, &mut short, dims, 1).unwrap_err();
        assert!(matches!(err, shmpool_kernels::DriverError::Dims(_)), "{err}");
    }
}
