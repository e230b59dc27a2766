//! A distributed sum and histogram: a `rows x cols` array of `f64` split by rows over the MPI
//! ranks, each rank's block reduced in its shmpool pool by the kernels' chunk functions, the
//! ranks' results combined over MPI.
//!
//! - The sum two ways: `allreduce_ordered` of the per-row sums (gathered in row order and added
//!   left to right, so bit for bit the single-node `run_sequential::<Sum>(x, cols)` for any
//!   number of ranks), and `allreduce_sum` (`MPI_SUM`) of each rank's total (reproducible for a
//!   fixed rank count only).
//! - The histogram: each rank's counts from `shmpool_kernels::histogram::histogram`, added
//!   exactly across ranks by `allreduce_counts`.
//!
//! ```text
//! cargo build --release -p shmpool-mpi --features mpi --example sum_histogram_mpi
//! mpirun -np 2 target/release/examples/sum_histogram_mpi --size 1000x1000 --workers 1
//! ```
//!
//! Element `i` (row-major) is `frac(i * 0.618033988749895) * 12 - 1`; the histogram has 16
//! bins over [0, 10), so some elements fall below and above it.

use shmpool::Pool;
use shmpool::pool::Chunk;
use shmpool_kernels::histogram::{Bins, histogram};
use shmpool_kernels::reduce::{Reduction, Sum};
use shmpool_mpi::mpi::traits::Communicator;
use shmpool_mpi::{DistArray, OrAbort, reduce};

/// Element `i` of the array.
fn element(i: usize) -> f64 {
    (i as f64 * 0.618033988749895).fract() * 12.0 - 1.0
}

/// One row's sum (the job's chunks are whole rows), by the kernels' chunk function.
fn row_sum(c: &Chunk<()>) {
    c.set_partial(Sum::chunk(c.input::<f64>(0)));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut rows, mut cols, mut workers) = (1000, 1000, 1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let parsed = match flag.as_str() {
            "--size" => value
                .split_once('x')
                .and_then(|(r, c)| Some((rows, cols) = (r.parse().ok()?, c.parse().ok()?))),
            "--workers" => value.parse().ok().map(|w| workers = w),
            _ => None,
        };
        if parsed.is_none() {
            eprintln!("sum_histogram_mpi: bad option `{flag} {value}`; use --size RxC --workers W");
            std::process::exit(2);
        }
    }
    // Workers first: they are forked before MPI starts its threads.
    let pool = Pool::new(workers);
    let universe = shmpool_mpi::mpi::initialize().expect("MPI is initialised once, here");
    let world = universe.world();
    let mut pool = pool.or_abort(&world);

    let x = DistArray::from_fn(&world, &[rows, cols], 0, element).or_abort(&world);
    let row_sums: Vec<f64> = pool
        .job(())
        .input(x.local())
        .or_abort(&world)
        .chunk_size(cols)
        .stage(row_sum)
        .run_partials()
        .or_abort(&world);
    let ordered =
        reduce::allreduce_ordered(x.comm(), &row_sums, Sum::IDENTITY, Sum::join).or_abort(&world);
    let local: f64 = row_sums.iter().fold(0.0, |a, b| a + b);
    let mpi_sum = reduce::allreduce_sum(x.comm(), local);

    let bins = Bins::new(0.0, 10.0, 16).or_abort(&world);
    let h = histogram(&mut pool, &bins, x.local()).or_abort(&world);
    let mut counts = h.counts.clone();
    counts.extend([h.below, h.above, h.nan]);
    reduce::allreduce_counts(x.comm(), &mut counts);

    if world.rank() == 0 {
        println!("{rows} x {cols} over {} ranks x {workers} workers", world.size());
        println!("sum_ordered {ordered:.17e} bits {:#018x}", ordered.to_bits());
        println!("sum_mpi {mpi_sum:.17e}");
        let text: Vec<String> = counts.iter().map(u64::to_string).collect();
        println!("histogram {} (16 bins, then below, above, NaN)", text.join(" "));
    }
}
