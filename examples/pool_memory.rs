//! How much memory a shared array costs when a pool works on it: the proportional set size (PSS)
//! of the array's mapping in the parent and in each worker, after a kernel ran over all of it.
//! With shared pages, the processes together hold the array once, not once per process.
//!
//! `cargo run --release --example pool_memory [GiB] [workers]` (default 1 GiB, 2 workers)

use shmpool::{Pool, SharedArray};

/// PSS (KiB) of the memfd mapping of exactly `bytes` bytes in process `pid`.
fn pss_of_mapping(pid: u32, bytes: usize) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let (mut total, mut in_it) = (0, false);
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ')
            && let Some((lo, hi)) = range.split_once('-')
            && let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
        {
            in_it = hi - lo == bytes && line.contains("memfd:");
        } else if in_it && let Some(v) = line.strip_prefix("Pss:") {
            total += v.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0);
        }
    }
    total
}

fn main() -> shmpool::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let gib = args.first().copied().unwrap_or(1);
    let workers = args.get(1).copied().unwrap_or(2);
    let n = (gib << 30) / 8;
    let mapped = (gib << 30) + 4096; // data plus the header, rounded up to a page
    let mut pool = Pool::new(workers)?;
    let mut a = SharedArray::<f64>::from_fn(n, |i| i as f64)?;
    pool.for_each_chunk(&mut a, shmpool_kernels::scale_add)?;
    let mut pids = vec![std::process::id()];
    pids.extend(pool.worker_pids());
    let mut total = 0;
    for (k, pid) in pids.iter().enumerate() {
        let pss = pss_of_mapping(*pid, mapped);
        total += pss;
        let who = if k == 0 { "parent".to_string() } else { format!("worker {k}") };
        println!("{who:>9} (pid {pid}): PSS of the array mapping {:>8.1} MiB", pss as f64 / 1024.0);
    }
    println!(
        "{} processes together hold {:.1} MiB of a {} GiB array ({:.2}x its size)",
        pids.len(),
        total as f64 / 1024.0,
        gib,
        total as f64 / (gib << 20) as f64
    );
    Ok(())
}
