//! Heat diffusion on a 2-D plate by Jacobi iteration, the field's first parallel program: the
//! top edge is held at 100 degrees, the other edges at 0, and every interior point repeatedly
//! becomes the mean of its four neighbours until the largest change in one step (the residual)
//! falls below a tolerance or the iteration budget runs out.
//!
//! Each iteration is one stencil step over the grid cut into bands of rows, each band reading a
//! one-row halo of its neighbours, plus a convergence reduction (the max of the bands'
//! residuals), run three ways: in a pool of 2 worker processes over shared arrays
//! (`jacobi_step_pool`), in 2 rayon threads (`jacobi_step_rayon`), and sequentially
//! (`jacobi_step`). All three run the same block kernel; the program checks that they stop at
//! the same iteration with identical grids, and prints iterations per second.
//!
//! `cargo run --release --example jacobi [size] [max_iterations] [tolerance]`
//! (defaults: a 1024 x 1024 grid, 500 iterations, tolerance 1e-3).
//!
//! The Python (NumPy) original of the step:
//!
//! ```python
//! new[1:-1, 1:-1] = 0.25 * ((u[:-2, 1:-1] + u[2:, 1:-1]) + (u[1:-1, :-2] + u[1:-1, 2:]))
//! residual = np.abs(new - u).max()
//! u, new = new, u
//! ```

use std::time::Instant;

use shmpool::{Pool, SharedArray};
use shmpool_kernels::{GridDims, jacobi_step, jacobi_step_pool, jacobi_step_rayon};

/// The plate at the start: 100 along the top edge, 0 elsewhere.
fn initial(i: usize, w: usize) -> f64 {
    if i < w { 100.0 } else { 0.0 }
}

/// Steps `step` until the residual is below `tol` or `max` iterations; returns the iterations,
/// the last residual and the seconds taken. `step(s)` runs iteration `s` and returns its
/// residual.
fn solve(max: usize, tol: f64, mut step: impl FnMut(usize) -> f64) -> (usize, f64, f64) {
    let t = Instant::now();
    let (mut iters, mut residual) = (0, f64::INFINITY);
    while iters < max && residual >= tol {
        residual = step(iters);
        iters += 1;
    }
    (iters, residual, t.elapsed().as_secs_f64())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1024);
    let max: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(500);
    let tol: f64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1e-3);
    let dims = GridDims::new(n, n);

    // Workers first: forking is refused once rayon's threads exist.
    let mut pool = Pool::new(2)?;
    let rp = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;

    // Pool: two shared arrays, swapped after every step.
    let mut u = SharedArray::<f64>::from_fn(dims.len(), |i| initial(i, n))?;
    let mut v = SharedArray::<f64>::from_fn(dims.len(), |i| initial(i, n))?;
    let mut failed = None;
    let pooled = solve(max, tol, |_| {
        let r = jacobi_step_pool(&mut pool, &u, &mut v, dims);
        std::mem::swap(&mut u, &mut v);
        r.unwrap_or_else(|e| {
            failed = Some(e);
            f64::NAN
        })
    });
    if let Some(e) = failed {
        return Err(e.into());
    }

    // rayon and sequential: two Vecs each, swapped the same way.
    let (mut ur, mut vr) = (u_start(n), u_start(n));
    let threads = solve(max, tol, |_| {
        let r = rp.install(|| jacobi_step_rayon(&ur, &mut vr, dims)).expect("same dims");
        std::mem::swap(&mut ur, &mut vr);
        r
    });
    let (mut us, mut vs) = (u_start(n), u_start(n));
    let sequential = solve(max, tol, |_| {
        let r = jacobi_step(&us, &mut vs, dims);
        std::mem::swap(&mut us, &mut vs);
        r
    });

    let same = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    assert!(
        pooled.0 == sequential.0 && threads.0 == sequential.0,
        "the three solvers stopped at different iterations: pool {}, rayon {}, sequential {}",
        pooled.0,
        threads.0,
        sequential.0
    );
    assert!(same(&u, &us) && same(&ur, &us), "the three solvers' grids differ");

    let probe = us[(n / 16).min(n.saturating_sub(1)) * n + n / 2];
    println!("Heat diffusion, {n} x {n} grid (f64), Jacobi iteration, tolerance {tol:e}");
    println!(
        "Stopped after {} iterations, residual {:.3e}, temperature {probe:.4} at row {}, mid-column",
        sequential.0,
        sequential.1,
        n / 16
    );
    println!("iterations/s: each step is one stencil pass plus a max-reduction of the residual");
    for (name, (iters, _, secs)) in [
        ("shmpool pool (2 processes)", pooled),
        ("rayon (2 threads)         ", threads),
        ("sequential                ", sequential),
    ] {
        println!("{name} {:10.1}", iters as f64 / secs);
    }
    println!(
        "pool/rayon {:.2}x, pool/sequential {:.2}x; grids identical across all three",
        threads.2 / pooled.2,
        sequential.2 / pooled.2
    );
    Ok(())
}

fn u_start(n: usize) -> Vec<f64> {
    (0..n * n).map(|i| initial(i, n)).collect()
}
