//! A Monte-Carlo estimate of pi, the classic first `multiprocessing.Pool` program: throw random
//! points into the unit square and count those that land inside the quarter circle;
//! `pi ~ 4 * inside / total`.
//!
//! The samples are cut into chunks, and each chunk draws its points from a generator seeded by
//! the run's seed and the chunk's index, so the estimate depends only on the seed, the number of
//! samples and the chunking, never on which process or thread ran a chunk or in what order. The
//! same chunks run in a pool of 2 worker processes (a kernel job with no arrays at all: a shape,
//! a parameter block with the seed, and a per-chunk count reduced in chunk order), in 2 rayon
//! threads, and sequentially; the program checks that the three counts are equal.
//!
//! `cargo run --release --example monte_carlo [samples] [chunks] [seed]`
//! (defaults: 50,000,000 samples in 64 chunks, seed 2024).
//!
//! The Python original:
//!
//! ```python
//! import random
//! from multiprocessing import Pool
//!
//! def count_inside(args):
//!     seed, n = args
//!     rng = random.Random(seed)
//!     return sum(1 for _ in range(n) if rng.random() ** 2 + rng.random() ** 2 <= 1.0)
//!
//! if __name__ == '__main__':
//!     samples, chunks = 50_000_000, 64
//!     sizes = [samples // chunks + (i < samples % chunks) for i in range(chunks)]
//!     with Pool(2) as pool:
//!         inside = sum(pool.map(count_inside, [(2024 * 1000 + i, n) for i, n in enumerate(sizes)]))
//!     print(f"Estimated value of Pi: {4 * inside / samples}")
//! ```

use std::time::Instant;

use rayon::prelude::*;
use shmpool::Pool;
use shmpool::pool::Chunk;

/// The job's parameter block.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    seed: u64,
}

/// splitmix64's output function: a well-mixed 64-bit value from a counter.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Points inside the quarter circle among `n` drawn by chunk `index`'s generator.
fn count_inside(seed: u64, index: u64, n: usize) -> u64 {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    // The chunk's stream: splitmix64 started from a state mixed from the seed and the index.
    let mut state = mix(seed ^ mix(index.wrapping_add(1).wrapping_mul(GOLDEN)));
    let mut unit = || {
        state = state.wrapping_add(GOLDEN);
        (mix(state) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    };
    let mut inside = 0;
    for _ in 0..n {
        let (x, y) = (unit(), unit());
        inside += u64::from(x * x + y * y <= 1.0);
    }
    inside
}

/// The pool's kernel: one chunk's count, as the chunk's partial.
fn chunk_inside(c: &Chunk<Params>) {
    c.set_partial(count_inside(c.params().seed, c.index() as u64, c.len()));
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let samples: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50_000_000);
    let chunks: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64).max(1);
    let seed: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2024);
    let chunk = samples.div_ceil(chunks).max(1);
    let size = |i: usize| chunk.min(samples - i * chunk);
    let n_chunks = samples.div_ceil(chunk);

    // Workers first: forking is refused once rayon's threads exist.
    let mut pool = Pool::new(2)?;
    let rp = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;

    // The job touches no array, so its bytes say nothing of its size: its work hint does
    // (about 3 ns per sample on one core), and the pool's inline rule weighs that.
    let t = Instant::now();
    let pooled = if samples == 0 {
        0
    } else {
        pool.job(Params { seed })
            .shape(&[samples])
            .chunk_size(chunk)
            .cost_per_element(3.0)
            .stage(chunk_inside)
            .run_reduce(0u64, |a, b| a + b)?
    };
    let t_pool = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let threads: u64 = rp.install(|| {
        (0..n_chunks).into_par_iter().map(|i| count_inside(seed, i as u64, size(i))).sum()
    });
    let t_rayon = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let sequential: u64 = (0..n_chunks).map(|i| count_inside(seed, i as u64, size(i))).sum();
    let t_seq = t.elapsed().as_secs_f64();

    assert!(
        pooled == sequential && threads == sequential,
        "the counts differ: pool {pooled}, rayon {threads}, sequential {sequential}"
    );
    let pi = 4.0 * sequential as f64 / samples.max(1) as f64;
    println!("Number of processes: {}", pool.workers());
    println!("Samples: {samples} in {n_chunks} chunks (seed {seed})");
    println!("Points inside the quarter circle: {sequential}");
    println!("Estimated value of Pi: {pi}");
    println!("Error: {:.6}", (pi - std::f64::consts::PI).abs());
    println!(
        "Time taken: pool (2 processes) {t_pool:.3} s, rayon (2 threads) {t_rayon:.3} s, sequential {t_seq:.3} s"
    );
    println!(
        "Msamples/s: pool {:.1}, rayon {:.1}, sequential {:.1}; the three counts are identical",
        samples as f64 / t_pool / 1e6,
        samples as f64 / t_rayon / 1e6,
        samples as f64 / t_seq / 1e6
    );
    Ok(())
}
