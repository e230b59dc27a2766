//! NumPy in, NumPy out: the Rust half of a pipeline driven from Python. Python creates a named
//! 2-D `float64` array (`python/shmpool_shm.py`), runs this program on it by name, and reads
//! the result in place; nothing is copied or serialized either way.
//!
//! This program opens the array with the shape Python gave it and runs one job on a pool of
//! worker processes, two fused stages per chunk of whole rows: standardize each row (subtract
//! its mean, divide by its standard deviation), then scale by `SCALE` and clip to `[-CLIP, CLIP]`.
//! `python/numpy_pipeline.py` checks the result against the same computation in NumPy:
//!
//! ```sh
//! cargo build --release --example numpy_pipeline
//! python3 python/numpy_pipeline.py target/release/examples/numpy_pipeline --rows 2000 --cols 1000
//! ```
//!
//! Run by hand: `numpy_pipeline NAME [SCALE] [CLIP] [WORKERS]` (defaults 1, 3, 2).

use shmpool::pool::Chunk;
use shmpool::{Error, Pool, SharedArray};

/// The job's parameter block, sent once to every worker.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Params {
    scale: f64,
    clip: f64,
}

/// Stage 1: each row of the chunk becomes its z-scores (population standard deviation, as
/// NumPy's `std` with `ddof=0`; a constant row becomes zeros).
fn standardize_rows(c: &Chunk<Params>) {
    let w = c.row_len();
    for row in c.output::<f64>(0).chunks_exact_mut(w) {
        let mean = row.iter().sum::<f64>() / w as f64;
        let var = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / w as f64;
        let inv = if var > 0.0 { 1.0 / var.sqrt() } else { 0.0 };
        row.iter_mut().for_each(|x| *x = (*x - mean) * inv);
    }
}

/// Stage 2, fused with the first (same chunk, still in cache): scale and clip.
fn scale_and_clip(c: &Chunk<Params>) {
    let Params { scale, clip } = *c.params();
    c.output::<f64>(0).iter_mut().for_each(|x| *x = (*x * scale).clamp(-clip, clip));
}

fn main() -> shmpool::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        eprintln!(
            "usage: numpy_pipeline NAME [SCALE] [CLIP] [WORKERS]  (see python/numpy_pipeline.py)"
        );
        std::process::exit(2);
    };
    let num = |i: usize, default: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let params = Params { scale: num(1, 1.0), clip: num(2, 3.0) };
    let workers = num(3, 2.0) as usize;

    let mut pool = Pool::new(workers)?;
    // SAFETY: the Python driver does not touch the array until this program has exited.
    let mut a = unsafe { SharedArray::<f64>::open(name)? };
    if a.ndim() != 2 {
        return Err(Error::InvalidShape {
            shape: a.shape().to_vec(),
            reason: "numpy_pipeline standardizes rows: create a 2-D (rows, cols) array".into(),
        });
    }
    let (rows, cols) = (a.shape()[0], a.shape()[1]);
    let t = std::time::Instant::now();
    // A 2-D array's job is chunked along its outer axis: every chunk holds whole rows.
    pool.job(params).output(&mut a)?.stage(standardize_rows).stage(scale_and_clip).run()?;
    println!(
        "standardized {rows} x {cols} in place with {workers} worker processes in {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
