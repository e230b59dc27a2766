//! An image-processing batch on the pool: brighten a 4096x4096 grayscale image in place, then a
//! 3x3 box blur into a second shared image (a stencil: each chunk reads one row of halo above
//! and below). The same pipeline runs on rayon and sequentially; outputs must match bit for bit.
//!
//! `cargo run --release --example image_batch [rounds]`

use std::time::Instant;

use rayon::prelude::*;
use shmpool::{Pool, SharedArray};
use shmpool_kernels::{box_blur3x3, brighten};

const W: usize = 4096;
const H: usize = 4096;
const ROWS_PER_CHUNK: usize = 64;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn source(i: usize) -> f32 {
    let (x, y) = ((i % W) as f32, (i / W) as f32);
    (0.5 + 0.5 * (x * 0.01).sin() * (y * 0.013).cos()).clamp(0.0, 1.0)
}

fn blur_rayon(img: &[f32], out: &mut [f32]) {
    out.par_chunks_mut(ROWS_PER_CHUNK * W).enumerate().for_each(|(c, chunk)| {
        let start = c * ROWS_PER_CHUNK * W;
        let lo = start.saturating_sub(W);
        let hi = (start + chunk.len() + W).min(img.len());
        box_blur3x3::<W>(&img[lo..hi], start - lo, chunk);
    });
}

fn main() -> shmpool::Result<()> {
    let rounds = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(7);
    // Workers first: forking is refused once rayon's threads exist.
    let mut pool = Pool::new(2)?;
    pool.set_chunk_size(Some(ROWS_PER_CHUNK * W)); // chunks start on row boundaries
    let rp = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("rayon pool");
    let mut img = SharedArray::<f32>::from_fn(W * H, source)?;
    let mut out = SharedArray::<f32>::zeroed(W * H)?;
    let (mut img_r, mut out_r) = (vec![0.0f32; W * H], vec![0.0f32; W * H]);
    let (mut img_s, mut out_s) = (vec![0.0f32; W * H], vec![0.0f32; W * H]);
    let (mut p, mut r, mut s) = (vec![], vec![], vec![]);
    let mpx = (W * H) as f64 / 1e6;
    for _ in 0..rounds {
        img.iter_mut().enumerate().for_each(|(i, x)| *x = source(i));
        img_r.copy_from_slice(&img);
        img_s.copy_from_slice(&img);

        let t = Instant::now();
        pool.for_each_chunk(&mut img, brighten)?;
        pool.stencil(&img, &mut out, W, box_blur3x3::<W>)?;
        p.push(mpx / t.elapsed().as_secs_f64());

        let t = Instant::now();
        rp.install(|| {
            img_r.par_chunks_mut(ROWS_PER_CHUNK * W).for_each(brighten);
            blur_rayon(&img_r, &mut out_r);
        });
        r.push(mpx / t.elapsed().as_secs_f64());

        let t = Instant::now();
        brighten(&mut img_s);
        box_blur3x3::<W>(&img_s, 0, &mut out_s);
        s.push(mpx / t.elapsed().as_secs_f64());
    }
    let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    assert!(same(&out, &out_s) && same(&out_r, &out_s), "outputs differ");
    let (p, r, s) = (median(p), median(r), median(s));
    println!(
        "{W}x{H} grayscale f32, brighten in place + 3x3 box blur, {rounds} rounds, Mpixel/s (median)"
    );
    println!("shmpool pool (2 processes) {p:8.1}");
    println!("rayon (2 threads)          {r:8.1}");
    println!("sequential                 {s:8.1}");
    println!("shmpool/rayon {:.2}x, outputs identical across all three", p / r);
    Ok(())
}
