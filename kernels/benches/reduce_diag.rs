//! Where the pool's time goes on a reduction that fits in cache (issue #9's "dot 1 Mi pool at
//! 0.78x rayon"): variants of `dot` and `sum` over the reduce bench's data, in alternating
//! rounds (every row once per round, in a rotating order, `REPS` calls each), printing each
//! row's median and best time per call:
//! - sequential, rayon 2 threads and the pool with 2 workers at the default chunks (16);
//! - the same with 2, 4 and 64 chunks (is it the chunking?);
//! - the pool's job run inline in the caller (the job path without the workers);
//! - `sum` on rayon and the pool (one input instead of two);
//! - a job whose stage does nothing, with 1 and 2 inputs, and rayon's empty equivalent (the
//!   dispatch floor: publish, wake, claim, wait).
//!
//! `cargo bench -p shmpool-kernels --bench reduce_diag` (`N`, `ROUNDS`, `REPS` set the array
//! length, default 1 Mi, rounds, default 30, and calls per timing, default 20).
use std::hint::black_box;
use std::time::Instant;

use shmpool::pool::Chunk;
use shmpool::{Pool, SharedArray};
use shmpool_kernels::reduce;

fn nothing(c: &Chunk<()>) {
    c.set_partial(0.0f64);
}
fn dot_stage(c: &Chunk<()>) {
    c.set_partial(shmpool_kernels::dot(c.input::<f64>(0), c.input::<f64>(1)));
}
fn sum_stage(c: &Chunk<()>) {
    c.set_partial(shmpool_kernels::sum(c.input::<f64>(0)));
}

type Row<'a> = (String, Box<dyn FnMut() -> f64 + 'a>);

fn main() {
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(1 << 20);
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let reps: usize = std::env::var("REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let pool = std::cell::RefCell::new(Pool::new(2).unwrap());
    let a = SharedArray::<f64>::from_fn(n, |i| (i % 1000) as f64 * 1e-3).unwrap();
    let b = SharedArray::<f64>::from_fn(n, |i| ((i * 7) % 1000) as f64 * 1e-3).unwrap();
    let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let chunk = pool.borrow().chunk_size_for(n, 8);
    let mut rows: Vec<Row<'_>> = vec![];
    let (a, b, two, pool) = (&a, &b, &two, &pool);
    rows.push(("seq dot".into(), Box::new(move || shmpool_kernels::dot(a, b))));
    rows.push((
        "rayon dot".into(),
        Box::new(move || two.install(|| reduce::dot_rayon(a, b, chunk).unwrap())),
    ));
    rows.push((
        "pool dot".into(),
        Box::new(move || reduce::dot(&mut pool.borrow_mut(), a, b).unwrap()),
    ));
    for k in [2usize, 4, 64] {
        let c = n / k;
        rows.push((
            format!("rayon dot {k} chunks"),
            Box::new(move || two.install(|| reduce::dot_rayon(a, b, c).unwrap())),
        ));
        rows.push((
            format!("pool dot {k} chunks"),
            Box::new(move || {
                pool.borrow_mut()
                    .job(())
                    .input(a)
                    .unwrap()
                    .input(b)
                    .unwrap()
                    .chunk_size(c)
                    .stage(dot_stage)
                    .run_reduce(0.0, |x, y| x + y)
                    .unwrap()
            }),
        ));
    }
    rows.push((
        "pool dot inline".into(),
        Box::new(move || {
            pool.borrow_mut()
                .job(())
                .input(a)
                .unwrap()
                .input(b)
                .unwrap()
                .inline(true)
                .stage(dot_stage)
                .run_reduce(0.0, |x, y| x + y)
                .unwrap()
        }),
    ));
    rows.push((
        "rayon sum".into(),
        Box::new(move || two.install(|| reduce::run_rayon::<reduce::Sum>(a, chunk))),
    ));
    rows.push((
        "pool sum".into(),
        Box::new(move || {
            pool.borrow_mut()
                .job(())
                .input(a)
                .unwrap()
                .stage(sum_stage)
                .run_reduce(0.0, |x, y| x + y)
                .unwrap()
        }),
    ));
    rows.push((
        "pool empty 2 inputs".into(),
        Box::new(move || {
            pool.borrow_mut()
                .job(())
                .input(a)
                .unwrap()
                .input(b)
                .unwrap()
                .inline(false)
                .stage(nothing)
                .run_reduce(0.0, |x, y| x + y)
                .unwrap()
        }),
    ));
    rows.push((
        "pool empty 1 input".into(),
        Box::new(move || {
            pool.borrow_mut()
                .job(())
                .input(a)
                .unwrap()
                .inline(false)
                .stage(nothing)
                .run_reduce(0.0, |x, y| x + y)
                .unwrap()
        }),
    ));
    rows.push((
        "rayon empty".into(),
        Box::new(move || {
            two.install(|| {
                use rayon::prelude::*;
                a.par_chunks(chunk).map(|_| 0.0).collect::<Vec<f64>>().len() as f64
            })
        }),
    ));
    let mut t = vec![vec![]; rows.len()];
    for r in 0..rounds {
        for k in 0..rows.len() {
            let i = (k + r) % rows.len();
            let s = Instant::now();
            for _ in 0..reps {
                black_box((rows[i].1)());
            }
            t[i].push(s.elapsed().as_secs_f64() / reps as f64 * 1e6);
        }
    }
    for (i, (name, _)) in rows.iter().enumerate() {
        let mut v = t[i].clone();
        v.sort_by(f64::total_cmp);
        println!("{name:<24} median {:8.1} us  min {:8.1} us", v[v.len() / 2], v[0]);
    }
}
