//! Heat diffusion by Jacobi iteration (the kernels' `examples/jacobi.rs`), distributed: the
//! plate's rows are split over the MPI ranks, each rank's block (with one ghost row each side)
//! is stepped by the same `jacobi_step_pool` kernel in that rank's shmpool pool, the ghost rows
//! are exchanged with the neighbouring ranks after every step, and the global residual (the
//! largest change anywhere) is an `MPI_Allreduce` max of the ranks' residuals.
//!
//! ```text
//! cargo build --release -p shmpool-mpi --features mpi --example jacobi_mpi
//! mpirun -np 2 target/release/examples/jacobi_mpi --size 1024x1024 --steps 500 --workers 1
//! ```
//!
//! Options: `--size RxC` (default 512x512), `--steps S` (most steps, default 200), `--tol T`
//! (stop once the residual is below T, or NaN; default 0: run every step), `--workers W` (pool
//! workers per rank, default 1), `--out DIR` (write the final grid as per-rank files plus
//! `DIR/grid.index`), `--crash-worker-at STEP` (the last rank's pool worker dies at that step,
//! to show the rank aborting the job with the pool's error), `--halo-bench N` (only time N
//! halo exchanges back to back, no compute: the exchange's own cost). Rank 0 prints the steps run, the
//! final residual (and its bits), and the time spent stepping, exchanging halos and reducing.

use std::time::{Duration, Instant};

use shmpool::Pool;
use shmpool::pool::Chunk;
use shmpool_kernels::{GridDims, jacobi_step_pool};
use shmpool_mpi::mpi::collective::SystemOperation;
use shmpool_mpi::mpi::traits::{Communicator, CommunicatorCollectives};
use shmpool_mpi::{DistArray, OrAbort, reduce};

/// The command line.
struct Args {
    rows: usize,
    cols: usize,
    steps: usize,
    tol: f64,
    workers: usize,
    out: Option<std::path::PathBuf>,
    crash_at: Option<usize>,
    halo_bench: Option<usize>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        rows: 512,
        cols: 512,
        steps: 200,
        tol: 0.0,
        workers: 1,
        out: None,
        crash_at: None,
        halo_bench: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--size" => {
                let v = value()?;
                let (r, c) = v.split_once('x').ok_or(format!("--size {v}: expected RxC"))?;
                (a.rows, a.cols) = (num(r.into())?, num(c.into())?);
            }
            "--steps" => a.steps = num(value()?)?,
            "--tol" => a.tol = value()?.parse().map_err(|e| format!("--tol: {e}"))?,
            "--workers" => a.workers = num(value()?)?,
            "--out" => a.out = Some(value()?.into()),
            "--crash-worker-at" => a.crash_at = Some(num(value()?)?),
            "--halo-bench" => a.halo_bench = Some(num(value()?)?),
            _ => return Err(format!("unknown option {flag}; see the example's doc comment")),
        }
    }
    Ok(a)
}

/// The plate at the start: 100 along the top edge, 0 elsewhere (as `examples/jacobi.rs`).
fn initial(i: usize, cols: usize) -> f64 {
    if i < cols { 100.0 } else { 0.0 }
}

/// A kernel that kills the worker running it (for `--crash-worker-at`).
fn die(_: &Chunk<()>) {
    std::process::abort();
}

fn main() {
    let args = parse().unwrap_or_else(|e| {
        eprintln!("jacobi_mpi: {e}");
        std::process::exit(2)
    });
    // Workers first: they are forked before MPI starts its threads.
    let pool = Pool::new(args.workers);
    let universe = shmpool_mpi::mpi::initialize().expect("MPI is initialised once, here");
    let world = universe.world();
    let mut pool = pool.or_abort(&world);
    let (rank, ranks) = (world.rank(), world.size());
    println!("rank {rank} pid {}", std::process::id());

    let shape = [args.rows, args.cols];
    let mut u = DistArray::from_fn(&world, &shape, 1, |i| initial(i, args.cols)).or_abort(&world);
    let mut v = u.zeroed_like().or_abort(&world);
    let dims = GridDims::new(u.local_shape()[0], args.cols);

    if let Some(reps) = args.halo_bench {
        world.barrier();
        let t = Instant::now();
        for _ in 0..reps {
            u.exchange_halos();
        }
        let per = t.elapsed().as_secs_f64() * 1e6 / reps.max(1) as f64;
        let mut worst = 0.0;
        world.all_reduce_into(&per, &mut worst, SystemOperation::max());
        if rank == 0 {
            let bytes = args.cols * size_of::<f64>();
            println!("halo exchange: {worst:.2} us ({ranks} ranks, {bytes} bytes each way)");
        }
        return;
    }
    let (mut step_t, mut halo_t, mut reduce_t) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut steps, mut residual) = (0, f64::INFINITY);
    world.barrier();
    let start = Instant::now();
    while steps < args.steps && residual >= args.tol {
        if args.crash_at == Some(steps) && rank == ranks - 1 {
            let mut dummy = shmpool::SharedArray::<u8>::zeroed(1 << 20).or_abort(&world);
            let job = pool.job(()).output(&mut dummy).or_abort(&world).inline(false);
            job.stage(die).run().or_abort(&world);
        }
        let t = Instant::now();
        let local = jacobi_step_pool(&mut pool, u.local(), v.local_mut(), dims).or_abort(&world);
        let t2 = Instant::now();
        v.exchange_halos();
        let t3 = Instant::now();
        residual = reduce::allreduce_max(v.comm(), local);
        let t4 = Instant::now();
        (step_t, halo_t, reduce_t) = (step_t + (t2 - t), halo_t + (t3 - t2), reduce_t + (t4 - t3));
        u.swap(&mut v);
        steps += 1;
    }
    let total = start.elapsed();
    if let Some(dir) = &args.out {
        u.write_parts(dir, "grid").or_abort(&world);
    }
    if rank == 0 {
        println!(
            "{} x {} grid, {ranks} ranks x {} workers: {steps} steps, residual {residual:.6e} \
             (bits {:#018x})",
            args.rows,
            args.cols,
            args.workers,
            residual.to_bits()
        );
        let per = |d: Duration| d.as_secs_f64() * 1e3 / steps.max(1) as f64;
        println!(
            "ms/step: total {:.3} compute {:.3} halo {:.3} allreduce {:.3}",
            per(total),
            per(step_t),
            per(halo_t),
            per(reduce_t)
        );
    }
}
