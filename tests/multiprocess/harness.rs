//! A small test runner for tests that fork.
//!
//! libtest runs every test on a thread of its own, even with `--test-threads=1`, so a test binary
//! always has at least two threads and shmpool (rightly) refuses to fork it. This runner keeps
//! everything on the main thread, one test at a time, and checks after each test that
//! - no new `/dev/shm` entry was left behind by this process or a child that has exited (a leak
//!   fails the test, and is removed; entries of other live processes, such as a second test run
//!   on the same machine, are not this run's business),
//! - no child process was left unreaped (that fails the test too),
//! - the test finished within its watchdog (SIGALRM ends the whole binary: a hang is a failure).
//!
//! Arguments: substrings to filter by, `--exact` for whole-name matches, `--list`; libtest's other
//! flags are accepted and ignored. A test can re-run this binary with `--exact NAME` to get a
//! clean process.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::time::Instant;

/// One test: a name and a function that panics on failure.
pub struct Test {
    pub name: &'static str,
    pub run: fn(),
}

/// Seconds a single test may take before the watchdog kills the binary.
const WATCHDOG_SECS: u32 = 60;

fn shm_entries() -> BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Whether a new /dev/shm entry was made by this run: by this process, or by a process that has
/// exited (one of the test's children). The creator comes from a shmpool header, else from a
/// generated `shmpool-<pid>-...` name; other entries count as ours only if they look like a test's.
fn ours(name: &str) -> bool {
    let me = std::process::id();
    if let Ok(info) = shmpool::segment::inspect(name) {
        return info.creator_pid == me || !info.creator_alive;
    }
    let pid = name
        .strip_prefix("shmpool-")
        .and_then(|r| r.split('-').next())
        .and_then(|p| p.parse::<u32>().ok());
    match pid {
        // SAFETY: signal 0 only checks that the process exists.
        Some(pid) => pid == me || unsafe { libc::kill(pid as i32, 0) } != 0,
        None => false,
    }
}

/// This process's direct children, from /proc/self/task/*/children.
fn children() -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<i32>>())
        .collect()
}

fn unreaped_children() -> bool {
    // SAFETY: waitpid with WNOHANG and a null status pointer only queries and reaps zombies.
    let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
    // ECHILD (-1) means no children at all; 0 means some still run; >0 reaped a zombie.
    r != -1
}

pub fn run(tests: Vec<Test>) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let exact = args.iter().any(|a| a == "--exact");
    let list = args.iter().any(|a| a == "--list");
    let mut skip_next = false;
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| {
            if skip_next {
                skip_next = false;
                return false;
            }
            if matches!(
                a.as_str(),
                "--test-threads" | "--color" | "--format" | "--logfile" | "--skip"
            ) {
                skip_next = true;
            }
            !a.starts_with('-')
        })
        .map(String::as_str)
        .collect();
    let selected: Vec<&Test> = tests
        .iter()
        .filter(|t| {
            filters.is_empty()
                || filters.iter().any(|f| if exact { t.name == *f } else { t.name.contains(f) })
        })
        .collect();
    if list {
        for t in &selected {
            println!("{}: test", t.name);
        }
        return ExitCode::SUCCESS;
    }
    let filtered_out = tests.len() - selected.len();
    println!("\nrunning {} tests", selected.len());
    let start = Instant::now();
    let mut failed = Vec::new();
    for t in &selected {
        let before = shm_entries();
        // SAFETY: alarm only arms a timer; its default action ends the process, which is the
        // point: a hung multi-process test must fail, not stall CI.
        unsafe { libc::alarm(WATCHDOG_SECS) };
        let t0 = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(t.run));
        // SAFETY: as above; 0 disarms the timer.
        unsafe { libc::alarm(0) };
        let mut problems = Vec::new();
        if outcome.is_err() {
            problems.push("panicked".to_string());
        }
        let leaked: Vec<String> =
            shm_entries().difference(&before).filter(|n| ours(n)).cloned().collect();
        if !leaked.is_empty() {
            problems.push(format!("left /dev/shm entries behind: {leaked:?}"));
            for name in &leaked {
                let _ = std::fs::remove_file(format!("/dev/shm/{name}"));
            }
        }
        if unreaped_children() {
            problems.push("left child processes unreaped".to_string());
            // A leftover may still run (a forkserver, a sleeping child): kill, then reap, so the
            // next test starts clean and this one cannot hang the run.
            for pid in children() {
                // SAFETY: kill only sends a signal to our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            // SAFETY: reaping the killed leftovers; null status is allowed.
            while unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) } > 0 {}
        }
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if problems.is_empty() {
            println!("test {} ... ok ({ms:.0} ms)", t.name);
        } else {
            println!("test {} ... FAILED ({})", t.name, problems.join("; "));
            failed.push(t.name);
        }
    }
    println!();
    if !failed.is_empty() {
        println!("failures:");
        for f in &failed {
            println!("    {f}");
        }
        println!();
    }
    println!(
        "test result: {}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len(),
        filtered_out,
        start.elapsed().as_secs_f64()
    );
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
