//! The pool on a built-in workload, side by side with rayon and sequential code: the in-place
//! kernel `a = a*1.0001 + 0.5` and a sum over 32M f64 (256 MiB), with 2 workers / 2 threads.
//!
//! `cargo run --release --example pool_vs_rayon [rounds] [chunk elements...]`
//!
//! Rounds interleave the contenders (shmpool, rayon, sequential, shmpool, ...) so that a busy
//! machine slows them alike; the medians are printed.

use std::time::Instant;

use rayon::prelude::*;
use shmpool::{Pool, SharedArray};

const N: usize = 32 << 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> shmpool::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rounds = args.first().copied().unwrap_or(15);
    let chunks: Vec<Option<usize>> =
        if args.len() > 1 { args[1..].iter().map(|&c| Some(c)).collect() } else { vec![None] };
    // Workers first: forking is refused once rayon's threads exist.
    let mut pool = Pool::new(2)?;
    let rp = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("rayon pool");
    let mut a = SharedArray::<f64>::from_fn(N, |i| (i % 1000) as f64)?;
    println!("{} elements, {} rounds, Gelem/s (median)", N, rounds);
    for chunk in chunks {
        pool.set_chunk_size(chunk);
        let cs = pool.chunk_size_for(N, 8);
        let (mut p, mut r, mut s) = (vec![], vec![], vec![]);
        let (mut ps, mut rs, mut ss) = (vec![], vec![], vec![]);
        for _ in 0..rounds {
            let t = Instant::now();
            pool.for_each_chunk(&mut a, shmpool_kernels::scale_add)?;
            p.push(N as f64 / t.elapsed().as_secs_f64() / 1e9);
            let t = Instant::now();
            rp.install(|| a.par_chunks_mut(1 << 16).for_each(shmpool_kernels::scale_add));
            r.push(N as f64 / t.elapsed().as_secs_f64() / 1e9);
            let t = Instant::now();
            shmpool_kernels::scale_add(&mut a);
            s.push(N as f64 / t.elapsed().as_secs_f64() / 1e9);
            let t = Instant::now();
            std::hint::black_box(pool.map_reduce(&a, shmpool_kernels::sum, |x, y| x + y)?);
            ps.push(N as f64 / t.elapsed().as_secs_f64() / 1e9);
            let t = Instant::now();
            std::hint::black_box(
                rp.install(|| a.par_chunks(1 << 16).map(shmpool_kernels::sum).sum::<f64>()),
            );
            rs.push(N as f64 / t.elapsed().as_secs_f64() / 1e9);
            let t = Instant::now();
            std::hint::black_box(shmpool_kernels::sum(&a));
            ss.push(N as f64 / t.elapsed().as_secs_f64() / 1e9);
        }
        let (p, r, s) = (median(p), median(r), median(s));
        let (ps, rs, ss) = (median(ps), median(rs), median(ss));
        println!(
            "chunk {cs:>9}: scale_add shmpool {p:.3} rayon {r:.3} sequential {s:.3} (shmpool/rayon {:.2}x) | \
             sum shmpool {ps:.3} rayon {rs:.3} sequential {ss:.3} (shmpool/rayon {:.2}x)",
            p / r,
            ps / rs
        );
    }
    Ok(())
}
