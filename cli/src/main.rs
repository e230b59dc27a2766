//! The `shmpool` command.
//!
//! `shmpool` (or `shmpool run`) runs the built-in workload on a pool and prints its throughput
//! side by side with rayon and sequential code; `shmpool demo` shows scoped children writing a
//! shared array in place; `shmpool inspect NAME` prints a segment's header; `shmpool clean`
//! removes segments whose creator died.

mod bench;
mod error;
mod images;

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use rayon::prelude::*;
use shmpool::{Pool, SharedArray};

use crate::bench::median;
use crate::error::CliError;

#[derive(Parser)]
#[command(name = "shmpool", version, about = "Shared-memory multiprocessing: the data never moves")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the built-in workload on a pool, side by side with rayon and sequential code.
    Run {
        /// Elements (f64) in the shared array (default 32M: 256 MiB).
        #[arg(long, default_value_t = 32 << 20)]
        len: usize,
        /// Worker processes for shmpool and threads for rayon (default: CPUs this process may use).
        #[arg(long)]
        workers: Option<usize>,
        /// Rounds per contender; medians are printed.
        #[arg(long, default_value_t = 7)]
        rounds: usize,
    },
    /// Create a shared array, let child processes update it in place, check and time the result.
    Demo {
        /// Elements (f64) in the array.
        #[arg(long, default_value_t = 16 << 20)]
        len: usize,
        /// Child processes.
        #[arg(long, default_value_t = 2)]
        children: usize,
    },
    /// Compare shmpool, rayon, sequential code, C/OpenMP and Python on a suite of workloads.
    Bench(Box<bench::BenchArgs>),
    /// Decode, process and encode a directory of images in isolated worker processes.
    Images(Box<images::ImagesArgs>),
    /// Print the header of a named shmpool segment.
    Inspect {
        /// The segment's name (leading '/' optional).
        name: String,
    },
    /// Remove shmpool segments in /dev/shm whose creating process is gone.
    Clean,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd.unwrap_or(Cmd::Run { len: 32 << 20, workers: None, rounds: 7 }) {
        Cmd::Run { len, workers, rounds } => run(len, workers, rounds),
        Cmd::Demo { len, children } => demo(len, children),
        Cmd::Bench(args) => bench::bench(*args),
        Cmd::Images(args) => images::images(*args),
        Cmd::Inspect { name } => inspect(&name),
        Cmd::Clean => clean(),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmpool: {e}");
            ExitCode::FAILURE
        }
    }
}

fn plus_one(x: u64) -> u64 {
    x + 1
}

/// The main job: a pool of worker processes updating a 256 MiB shared array in place, a
/// map-reduce over it, and back-to-back `apply` round trips, each against rayon and sequential
/// code in the same run. Rounds interleave the contenders so a busy machine slows them alike.
/// How many elements of work each contender does per round of `shmpool run` at least: small
/// arrays are run this many elements' worth of times back to back.
const REPEAT_ELEMENTS: usize = 1 << 22;

/// The most calls per contender per round (the smallest arrays).
const MAX_REPEATS: usize = 4096;

fn run(len: usize, workers: Option<usize>, rounds: usize) -> Result<(), CliError> {
    let zero = |option, fix| Err(CliError::RunZero { option, fix });
    if workers == Some(0) {
        return zero(
            "workers",
            "a pool needs at least one worker; pass --workers 1 or more, or leave it out for one per CPU",
        );
    }
    if rounds == 0 {
        return zero(
            "rounds",
            "no round means no timing to report; pass --rounds 1 or more (default 7)",
        );
    }
    if len == 0 {
        return zero(
            "len",
            "an empty array gives no rate to compare; pass --len 1 or more (default 33554432)",
        );
    }
    let workers = workers.unwrap_or_else(shmpool::process_cpu_count).max(1);
    // The default start method (the forkserver) works beside rayon's threads, whatever the order.
    let t = Instant::now();
    let mut pool = Pool::new(workers)?;
    let start_ms = t.elapsed().as_secs_f64() * 1e3;
    let rp = rayon::ThreadPoolBuilder::new().num_threads(workers).build()?;
    let mut a = SharedArray::<f64>::from_fn(len, |i| (i % 1000) as f64)?;
    println!(
        "shmpool: {workers} worker processes ({}, started in {start_ms:.1} ms) vs rayon: {workers} threads vs sequential",
        pool.start_method()
    );
    println!(
        "workload: {len} f64 in one shared array ({}), {rounds} interleaved rounds of 2 sets of {} call(s) per contender, medians",
        shmpool::human_bytes((len * 8) as u64),
        REPEAT_ELEMENTS.div_ceil(len).clamp(1, MAX_REPEATS)
    );

    // Correctness first: the pool's in-place result must equal the sequential one bit for bit.
    let mut check = SharedArray::<f64>::from_fn(len.min(1 << 20), |i| i as f64 * 0.25)?;
    let mut expect = check.to_vec();
    pool.for_each_chunk(&mut check, shmpool_kernels::scale_add)?;
    shmpool_kernels::scale_add(&mut expect);
    let wrong = check.iter().zip(&expect).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
    let psum = pool.map_reduce(&check, shmpool_kernels::sum, |x, y| x + y)?;
    let ssum = shmpool_kernels::sum(&check);
    if wrong > 0 || (psum - ssum).abs() > 1e-9 * ssum.abs() {
        return Err(CliError::ResultMismatch { wrong, pool: psum, sequential: ssum });
    }

    // Per round and contender, two timed sets of `reps` calls: the first right after another
    // contender's pass over the array (its cache lines where that one left them: in other cores'
    // caches, or out of cache), the second at once after its own (its steady pace, as a loop of
    // jobs sees it). Each set is at least ~4 Mi elements of work, so a small array's timing is
    // the calls' pace, not one call's first touch of lines left on another core. At 4 Mi f64 on
    // 16 cores (32 MiB: about what the cores' private caches hold together) the two differ, and
    // which contender ran before decides the first: the table prints both.
    let mut k = [[vec![], vec![]], [vec![], vec![]], [vec![], vec![]]];
    let mut s = [[vec![], vec![]], [vec![], vec![]], [vec![], vec![]]];
    let reps = REPEAT_ELEMENTS.div_ceil(len).clamp(1, MAX_REPEATS);
    let gelem = |t: Instant| (len * reps) as f64 / t.elapsed().as_secs_f64() / 1e9;
    for _ in 0..rounds {
        for set in &mut k[0] {
            let t = Instant::now();
            for _ in 0..reps {
                pool.for_each_chunk(&mut a, shmpool_kernels::scale_add)?;
            }
            set.push(gelem(t));
        }
        for set in &mut k[1] {
            let t = Instant::now();
            for _ in 0..reps {
                rp.install(|| a.par_chunks_mut(1 << 16).for_each(shmpool_kernels::scale_add));
            }
            set.push(gelem(t));
        }
        for set in &mut k[2] {
            let t = Instant::now();
            for _ in 0..reps {
                shmpool_kernels::scale_add(std::hint::black_box(&mut a));
            }
            set.push(gelem(t));
        }
        for set in &mut s[0] {
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(pool.map_reduce(&a, shmpool_kernels::sum, |x, y| x + y)?);
            }
            set.push(gelem(t));
        }
        for set in &mut s[1] {
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(
                    rp.install(|| a.par_chunks(1 << 16).map(shmpool_kernels::sum).sum::<f64>()),
                );
            }
            set.push(gelem(t));
        }
        for set in &mut s[2] {
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(shmpool_kernels::sum(std::hint::black_box(&a)));
            }
            set.push(gelem(t));
        }
    }
    let pace = |v: &[[Vec<f64>; 2]; 3], pass: usize| v.each_ref().map(|c| median(&c[pass]));

    let calls = 2000;
    let (mut ap, mut ar) = (vec![], vec![]);
    for _ in 0..rounds {
        let t = Instant::now();
        for i in 0..calls {
            std::hint::black_box(pool.apply_pod(plus_one, i)?);
        }
        ap.push(t.elapsed().as_secs_f64() / calls as f64 * 1e6);
        let t = Instant::now();
        for i in 0..calls {
            std::hint::black_box(rp.install(|| plus_one(i)));
        }
        ar.push(t.elapsed().as_secs_f64() / calls as f64 * 1e6);
    }
    let (ap, ar) = (median(&ap), median(&ar));

    println!();
    println!(
        "{:<34} {:>10} {:>10} {:>11} {:>16}",
        "", "shmpool", "rayon", "sequential", "shmpool/rayon"
    );
    let rows = [
        ("in place a=a*1.0001+0.5 (Gelem/s)", pace(&k, 0)),
        ("  same, again at once (Gelem/s)", pace(&k, 1)),
        ("map-reduce sum (Gelem/s)", pace(&s, 0)),
        ("  same, again at once (Gelem/s)", pace(&s, 1)),
    ];
    for (name, [ours, rayon, seq]) in rows {
        println!("{name:<34} {ours:>10.3} {rayon:>10.3} {seq:>11.3} {:>15.2}x", ours / rayon);
    }
    println!("{:<34} {:>10.2} {:>10.2} {:>11} {:>16}", "apply round trip (us)", ap, ar, "-", "-");
    println!();
    println!("results checked against sequential code: identical");
    Ok(())
}

fn demo(len: usize, children: usize) -> Result<(), CliError> {
    let children = children.max(1);
    let t0 = Instant::now();
    let mut a = SharedArray::<f64>::from_fn(len, |i| i as f64)?;
    println!(
        "created a shared array of {len} f64 ({}) in {:.1} ms",
        shmpool::human_bytes((len * 8) as u64),
        t0.elapsed().as_secs_f64() * 1e3
    );
    let t1 = Instant::now();
    shmpool::scope(|s| -> shmpool::Result<()> {
        let mut start = 0;
        for chunk in a.split_mut(children) {
            let (lo, hi) = (start, start + chunk.len());
            start = hi;
            let child = s.fork_with(chunk, move |chunk| {
                let t = Instant::now();
                shmpool_kernels::scale_add(chunk);
                // One write(2) of a preformatted line: no stdout lock is shared with the parent.
                let line = format!(
                    "  child {:>7} updated elements {lo}..{hi} in place in {:.1} ms\n",
                    std::process::id(),
                    t.elapsed().as_secs_f64() * 1e3
                );
                let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            })?;
            let _ = child; // reaped, and checked, when the scope ends
        }
        Ok(())
    })??;
    let secs = t1.elapsed().as_secs_f64();
    let bad = a.iter().enumerate().filter(|&(i, &x)| x != i as f64 * 1.0001 + 0.5).count();
    println!(
        "{children} children updated {len} elements in {:.1} ms ({:.2} Gelem/s, fork and reap included); {} wrong",
        secs * 1e3,
        len as f64 / secs / 1e9,
        bad
    );
    if bad > 0 {
        return Err(CliError::DemoUnchanged { bad });
    }
    Ok(())
}

fn inspect(name: &str) -> Result<(), CliError> {
    let i = shmpool::segment::inspect(name)?;
    println!("kind:          {}", i.kind);
    println!("dtype:         {}", i.dtype);
    println!("len:           {}", i.len);
    let dims: Vec<String> = i.shape.iter().map(|d| d.to_string()).collect();
    println!("shape:         ({})", dims.join(", ") + if dims.len() == 1 { "," } else { "" });
    println!("element bytes: {}", i.elem_size);
    println!("data offset:   {}", i.data_offset);
    println!("segment bytes: {}", i.segment_bytes);
    println!(
        "creator pid:   {} ({})",
        i.creator_pid,
        if i.creator_alive { "running" } else { "gone" }
    );
    Ok(())
}

fn clean() -> Result<(), CliError> {
    let removed = shmpool::clean_stale()?;
    println!("removed {} stale segment(s)", removed.len());
    for n in removed {
        println!("  {n}");
    }
    Ok(())
}
