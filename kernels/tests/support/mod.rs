//! What the oracle tests share: a small seeded PRNG, the sizes every kernel is tried at, and
//! NumPy through `python3` as the independent implementation.
//!
//! NumPy gets its inputs as raw little-endian `f64` files in a fresh temporary folder and writes
//! its answers there the same way; a missing `python3` or NumPy fails the test with the command
//! that installs it (CI installs it), never skips it.

#![allow(dead_code)] // each test file uses its own part of this module

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Sizes every kernel is tried at: empty, one, two, around the 8 lanes and the 16-element
/// polynomial block, primes, and sizes that are not multiples of any chunk size used.
pub const SIZES: &[usize] = &[0, 1, 2, 7, 8, 9, 17, 97, 1009, 65537, 100_003];

/// The chunk sizes the chunked drivers are tried at (1 and primes, so chunks end mid-lane).
pub const CHUNKS: &[usize] = &[1, 3, 64, 1000, 8191];

/// SplitMix64: small, seeded, good enough to make test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// `n` values uniform in `[lo, hi)`.
    pub fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| self.range(lo, hi)).collect()
    }

    /// `n` values spread over many magnitudes and both signs (`±m * 2^e`, `e` in -30..30).
    pub fn wide(&mut self, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let e = (self.next_u64() % 61) as i32 - 30;
                let s = if self.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
                s * self.range(1.0, 2.0) * 2f64.powi(e)
            })
            .collect()
    }
}

/// Runs `script` in `python3` with NumPy imported as `np`, the `inputs` readable as `x(name)`
/// (an `np.float64` array), and `out(name, array)` to answer; returns every answer as `f64`s
/// (integer answers are exact up to 2^53).
pub fn numpy(inputs: &[(String, &[f64])], script: &str) -> HashMap<String, Vec<f64>> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "shmpool-kernels-oracle-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in inputs {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.join(format!("{name}.in")), bytes).unwrap();
    }
    let prelude = format!(
        "import numpy as np, math, os\n\
         D = {dir:?}\n\
         def x(name):\n    return np.fromfile(os.path.join(D, name + '.in'), dtype='<f8')\n\
         def out(name, a):\n    np.asarray(a, dtype='<f8').reshape(-1).tofile(os.path.join(D, name + '.out'))\n",
        dir = dir.to_str().unwrap()
    );
    let run = Command::new("python3").arg("-c").arg(format!("{prelude}{script}")).output();
    let run =
        run.expect("running python3; install Python 3 and NumPy: python3 -m pip install numpy");
    assert!(
        run.status.success(),
        "the NumPy oracle failed ({}); if NumPy is missing: python3 -m pip install numpy\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let mut answers = HashMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "out") {
            let bytes = std::fs::read(&path).unwrap();
            let vals = bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap()));
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            answers.insert(name, vals.collect());
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    answers
}

/// [`numpy`] over arrays of distinct lengths, each readable as `x(f'x{n}')` for its length `n`:
/// `body` (its lines indented four spaces) runs once per length, the array bound to `a`.
pub fn numpy_per_size(xs: &[Vec<f64>], body: &str) -> HashMap<String, Vec<f64>> {
    let ins: Vec<(String, &[f64])> =
        xs.iter().map(|x| (format!("x{}", x.len()), x.as_slice())).collect();
    let sizes: Vec<String> = xs.iter().map(|x| x.len().to_string()).collect();
    numpy(&ins, &format!("for n in [{}]:\n\x20   a = x(f'x{{n}}')\n{body}", sizes.join(", ")))
}

/// Equal as values, NaN equal to NaN (and 0.0 to -0.0).
pub fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Equal bit for bit (so the same rounding), for results that must not depend on a driver.
pub fn assert_bits(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(x.to_bits() == y.to_bits(), "{what}: element {i}: {x:e} vs {y:e}");
    }
}

/// A pool for the driver checks, and a guard that stops the forkserver it starts once the pool
/// is gone (so a test run leaves no process and no segment behind). Tests of one binary run on
/// several threads: one `TestPool` exists at a time, so that stopping the forkserver never
/// waits on another test's workers.
pub struct TestPool(Option<shmpool::Pool>, #[allow(unused)] MutexGuard<'static, ()>);

static ONE_POOL: Mutex<()> = Mutex::new(());

impl TestPool {
    /// 2 workers.
    pub fn new() -> TestPool {
        TestPool::build(shmpool::Pool::builder().workers(2))
    }

    pub fn build(builder: shmpool::pool::PoolBuilder) -> TestPool {
        let guard = ONE_POOL.lock().unwrap_or_else(|e| e.into_inner());
        TestPool(Some(builder.build().expect("starting a test pool")), guard)
    }

    pub fn get(&mut self) -> &mut shmpool::Pool {
        self.0.as_mut().unwrap()
    }
}

impl Drop for TestPool {
    fn drop(&mut self) {
        drop(self.0.take());
        let stopped = shmpool::process::shutdown_forkserver_timeout(Duration::from_secs(10));
        if !std::thread::panicking() {
            stopped.expect("stopping the forkserver");
        }
    }
}

/// A shared copy of `v`.
pub fn shared(v: &[f64]) -> shmpool::SharedArray<f64> {
    shmpool::SharedArray::from_fn(v.len(), |i| v[i]).unwrap()
}
