//! How pool workers start, under every start method: the thread-count variables
//! (`PoolBuilder::threads_per_worker`, and its default), CPU affinity (`PoolBuilder::cpu_affinity`)
//! and an initializer with an argument (`PoolBuilder::initializer_with`), which replacement
//! workers run too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmpool::pool::Affinity;
use shmpool::{Error, Pool, StartMethod};

use crate::harness::{Tests, close_pool, register};

const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn];

/// The variables `threads_per_worker` sets.
const VARS: [&str; 4] =
    ["RAYON_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"];

pub fn tests() -> Tests {
    register! {
        clean threads_per_worker_sets_the_variables_and_sizes_rayon in METHODS,
        clean the_default_is_one_thread_per_worker_when_workers_fill_the_cpus,
        round_robin_pins_each_worker_to_one_allowed_cpu in METHODS,
        explicit_cpu_sets_are_checked_against_the_allowed_set,
        initializer_with_runs_in_every_worker_and_every_replacement in METHODS,
    }
}

/// The thread-count variables as the worker sees them, with its pid.
fn thread_vars(_: u32) -> (u32, Vec<Option<String>>) {
    (std::process::id(), VARS.iter().map(|v| std::env::var(v).ok()).collect())
}

/// The size of the worker's rayon global pool (built here, on first use, from the environment).
fn rayon_threads(_: u32) -> usize {
    rayon::current_num_threads()
}

fn threads_per_worker_sets_the_variables_and_sizes_rayon(m: StartMethod) {
    let mut pool =
        Pool::builder().workers(2).start_method(m).threads_per_worker(3).build().unwrap();
    let pids = pool.worker_pids();
    let seen = pool.map(thread_vars, 0..16u32, Some(1)).unwrap();
    for (pid, vars) in &seen {
        assert!(pids.contains(pid), "{pid} is not a worker of {pids:?}");
        for (name, v) in VARS.iter().zip(vars) {
            assert_eq!(v.as_deref(), Some("3"), "{name} in worker {pid}");
        }
    }
    let sizes = pool.map(rayon_threads, 0..8u32, Some(1)).unwrap();
    assert!(sizes.iter().all(|&n| n == 3), "rayon pools in the workers: {sizes:?}");
    // The parent's own environment is untouched.
    assert!(VARS.iter().all(|v| std::env::var(v).as_deref() != Ok("3")), "the parent changed");
    close_pool(pool, m);
}

fn the_default_is_one_thread_per_worker_when_workers_fill_the_cpus() {
    let cpus = shmpool::process_cpu_count();
    let mut pool = Pool::builder().workers(cpus).build().unwrap();
    let seen = pool.map(thread_vars, 0..8u32, Some(1)).unwrap();
    for (pid, vars) in &seen {
        for (name, v) in VARS.iter().zip(vars) {
            // The default sets only what the worker did not inherit.
            let want = std::env::var(name).unwrap_or_else(|_| "1".to_string());
            assert_eq!(v.as_deref(), Some(want.as_str()), "{name} in worker {pid}");
        }
    }
    close_pool(pool, StartMethod::ForkServer);
}

/// Linux's `Cpus_allowed_list` of the calling process ("0-3,6").
fn cpus_allowed_list(_: u32) -> (u32, String) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap();
    (std::process::id(), list.trim().to_string())
}

/// Expands a CPU list ("0-2,5") into its CPUs.
fn expand(list: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => cpus.push(part.parse().unwrap()),
        }
    }
    cpus
}

fn round_robin_pins_each_worker_to_one_allowed_cpu(m: StartMethod) {
    let allowed = expand(&cpus_allowed_list(0).1);
    let mut pool = Pool::builder()
        .workers(2)
        .start_method(m)
        .cpu_affinity(Affinity::RoundRobin)
        .build()
        .unwrap();
    let pids = pool.worker_pids();
    let seen = pool.map(cpus_allowed_list, 0..16u32, Some(1)).unwrap();
    for (pid, list) in &seen {
        let slot = pids.iter().position(|p| p == pid).expect("a worker of the pool");
        let want = allowed[slot % allowed.len()];
        assert_eq!(expand(list), [want], "worker {slot} (pid {pid})");
    }
    // The parent keeps its own mask.
    assert_eq!(expand(&cpus_allowed_list(0).1), allowed);
    close_pool(pool, m);
}

fn explicit_cpu_sets_are_checked_against_the_allowed_set() {
    let allowed = expand(&cpus_allowed_list(0).1);
    let last = *allowed.last().unwrap();
    // One worker on the last allowed CPU, the other on all of them.
    let sets = vec![vec![last], allowed.clone()];
    let mut pool = Pool::builder().workers(2).cpu_affinity(Affinity::Sets(sets)).build().unwrap();
    let pids = pool.worker_pids();
    for (pid, list) in pool.map(cpus_allowed_list, 0..16u32, Some(1)).unwrap() {
        let slot = pids.iter().position(|p| *p == pid).expect("a worker of the pool");
        let want = if slot == 0 { vec![last] } else { allowed.clone() };
        assert_eq!(expand(&list), want, "worker {slot} (pid {pid})");
    }
    close_pool(pool, StartMethod::ForkServer);
    // A CPU outside the allowed set is refused before any worker starts, naming the set.
    let outside = last + 1;
    let err = Pool::builder()
        .workers(2)
        .cpu_affinity(Affinity::Sets(vec![vec![allowed[0]], vec![outside]]))
        .build()
        .unwrap_err();
    match &err {
        Error::CpuNotAllowed { worker: 1, cpu, allowed: list } => {
            assert_eq!(*cpu, outside);
            assert_eq!(expand(list), allowed);
        }
        other => panic!("expected CpuNotAllowed for worker 1, got {other:?}"),
    }
    assert!(err.to_string().contains(&cpus_allowed_list(0).1), "{err}");
    let empty = Pool::builder().workers(1).cpu_affinity(Affinity::Sets(vec![vec![]])).build();
    assert!(
        matches!(&empty, Err(Error::InvalidArgument { reason, .. }) if reason.contains("worker 0")),
        "{empty:?}"
    );
    assert!(matches!(
        Pool::builder().workers(1).cpu_affinity(Affinity::Sets(vec![])).build(),
        Err(Error::InvalidArgument { .. })
    ));
}

/// What the initializer received, in this worker (0 until it ran).
static TAG: AtomicU64 = AtomicU64::new(0);

fn set_tag((tag, offset): (u64, String)) {
    TAG.store(tag + offset.len() as u64, Ordering::SeqCst);
}

/// The tag and this worker's pid, after a short sleep so that both workers take tasks.
fn read_tag(_: u32) -> (u32, u64) {
    std::thread::sleep(Duration::from_millis(5));
    (std::process::id(), TAG.load(Ordering::SeqCst))
}

fn initializer_with_runs_in_every_worker_and_every_replacement(m: StartMethod) {
    let mut pool = Pool::builder()
        .workers(2)
        .start_method(m)
        .initializer_with(set_tag, (40u64, "ab".to_string()))
        .build()
        .unwrap();
    let first = pool.worker_pids();
    for (pid, tag) in pool.map(read_tag, 0..8u32, Some(1)).unwrap() {
        assert_eq!(tag, 42, "worker {pid}");
    }
    // Kill one worker; the pool replaces it (noticed at the next call), and the replacement runs
    // the initializer with the same argument.
    let victim = first[0];
    // SAFETY: kill has no memory effects; `victim` is our own worker.
    assert_eq!(unsafe { libc::kill(victim as i32, libc::SIGKILL) }, 0);
    let t0 = Instant::now();
    while pool.worker_pids().contains(&victim) {
        assert!(t0.elapsed() < Duration::from_secs(10), "the killed worker never went");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut replacement_seen = false;
    for _ in 0..50 {
        for (pid, tag) in pool.map(read_tag, 0..8u32, Some(1)).unwrap() {
            assert_ne!(pid, victim);
            assert_eq!(tag, 42, "worker {pid} (a replacement: {})", !first.contains(&pid));
            replacement_seen |= !first.contains(&pid);
        }
        if replacement_seen {
            break;
        }
    }
    assert!(replacement_seen, "no task ran on a replacement worker: {:?}", pool.worker_pids());
    assert_eq!(pool.worker_pids().len(), 2);
    close_pool(pool, m);
}
