//! The `shmpool` command.
//!
//! `shmpool` (or `shmpool demo`) runs the built-in workload; `shmpool inspect NAME` prints a
//! segment's header; `shmpool clean` removes segments whose creator died.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use shmpool::SharedArray;

#[derive(Parser)]
#[command(name = "shmpool", version, about = "Shared-memory multiprocessing: the data never moves")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a shared array, let child processes update it in place, check and time the result.
    Demo {
        /// Elements (f64) in the array.
        #[arg(long, default_value_t = 16 << 20)]
        len: usize,
        /// Child processes.
        #[arg(long, default_value_t = 2)]
        children: usize,
    },
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
    let res = match cli.cmd.unwrap_or(Cmd::Demo { len: 16 << 20, children: 2 }) {
        Cmd::Demo { len, children } => demo(len, children),
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

fn demo(len: usize, children: usize) -> shmpool::Result<()> {
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
            let child = s.fork(move || {
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
        return Err(shmpool::Error::ChildFailed {
            pid: 0,
            how: format!("left {bad} elements unchanged"),
        });
    }
    Ok(())
}

fn inspect(name: &str) -> shmpool::Result<()> {
    let i = shmpool::segment::inspect(name)?;
    println!("kind:          {}", i.kind);
    println!("dtype:         {}", i.dtype);
    println!("len:           {}", i.len);
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

fn clean() -> shmpool::Result<()> {
    let removed = shmpool::clean_stale()?;
    println!("removed {} stale segment(s)", removed.len());
    for n in removed {
        println!("  {n}");
    }
    Ok(())
}
