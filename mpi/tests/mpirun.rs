//! The examples under `mpirun -np 1/2/3`, against the single-node kernels computed here: the
//! distributed Jacobi grid and residual and the ordered sum bit for bit, the MPI_SUM within a
//! relative 1e-12, the histogram exactly; uneven splits (37 rows over 2 and 3 ranks, 101 over
//! 2 and 3); a rank SIGKILLed mid-run ending the job within seconds with every rank and pool
//! worker gone and no segment of theirs in /dev/shm; a pool worker dying inside a rank
//! aborting the job with the pool's message; a rank panicking while its neighbours wait in a
//! halo exchange aborting the job instead of hanging it; a split that cannot hold the halo
//! refused with the fix; the API's hostile inputs (wrong scatter length, roots that are not
//! ranks, a part name out of the directory, a block one rank alone cannot allocate) returned
//! as errors on every rank with nobody left waiting.
//!
//! Runs with the feature `mpi` (`cargo test -p shmpool-mpi --features mpi`); needs Open MPI's
//! `mpirun` (`bash scripts/install-test-deps.sh`; the tests pass `--oversubscribe`, which
//! MPICH's does not take). A test that fails midway kills its mpirun (`Job`), whose ranks and
//! their pool workers then exit. The examples are brought up to
//! date here (`cargo build --examples`) before the first mpirun.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use shmpool_kernels::histogram::{Bins, Histogram};
use shmpool_kernels::reduce::{Sum, run_sequential};
use shmpool_kernels::{GridDims, jacobi_step};
use shmpool_mpi::parts::read_parts;

/// The longest any one mpirun may take before the test kills it and fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// The directory holding the built examples, brought up to date once per test run (`cargo test
/// --test mpirun` alone does not build examples, and a stale one would test old code).
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // target/<profile>/deps/mpirun-HASH -> target/<profile>/examples
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-q", "-p", "shmpool-mpi", "--features", "mpi", "--examples"]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo to build the MPI examples");
        assert!(status.success(), "building the MPI examples failed: {status}");
        profile_dir.join("examples")
    })
}

/// A directory removed, with what is in it, when dropped (also when the test fails midway).
struct Scratch(PathBuf);

impl Scratch {
    /// A fresh, empty `shmpool-mpi-test-PID-NAME` under `parent`.
    fn new(parent: &Path, name: &str) -> Scratch {
        let dir = parent.join(format!("shmpool-mpi-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An mpirun command and the directory its ranks keep Open MPI's shared-memory segments in:
/// ranks killed with their job (by a test, or by [`Job`] when a test fails) cannot unlink
/// their `vader_segment.*` files, so they go in a directory of the test's, under /dev/shm,
/// removed with it instead of left in /dev/shm (4 MiB per rank).
struct Mpirun {
    cmd: Command,
    _segments: Scratch,
}

impl Mpirun {
    /// Starts it; the [`Job`] kills and reaps mpirun if it is dropped still running.
    fn spawn(mut self) -> Job {
        let child = self.cmd.spawn().expect("start mpirun (bash scripts/install-test-deps.sh)");
        Job { child, _segments: self._segments }
    }
}

/// `mpirun -np N PROGRAM`, allowed to run as root and to put more ranks than cores, with its
/// shared-memory segments in a scratch directory.
fn launcher(np: usize, program: &Path) -> Mpirun {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let segments = Scratch::new(Path::new("/dev/shm"), &format!("vader{n}"));
    let mut cmd = Command::new("mpirun");
    cmd.args(["--oversubscribe", "-np", &np.to_string()])
        .args(["--mca", "btl_vader_backing_directory"])
        .arg(&segments.0)
        .arg(program)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Mpirun { cmd, _segments: segments }
}

/// `mpirun -np N EXAMPLE ARGS`.
fn mpirun(np: usize, example: &str, args: &[&str]) -> Mpirun {
    let mut m = launcher(np, &examples_dir().join(example));
    m.cmd.args(args);
    m
}

/// A running mpirun that is killed and reaped when dropped: a test that fails midway (a panic
/// between spawn and wait) must not leave a job of endless steps running behind it. Its
/// segment directory goes after it.
struct Job {
    child: Child,
    _segments: Scratch,
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits for `child` up to `limit`; past it, kills and reaps it and fails the test.
fn wait_within(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait on mpirun") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: mpirun still running after {limit:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` to the end within [`DEADLINE`], collecting its output.
fn run(cmd: Mpirun, what: &str) -> Output {
    let mut child = cmd.spawn();
    let (mut out, mut err) =
        (child.child.stdout.take().unwrap(), child.child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut s).map(|_| s)
    });
    let ereader = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut s).map(|_| s)
    });
    let status = wait_within(&mut child.child, DEADLINE, what);
    let stdout = reader.join().unwrap().unwrap();
    let stderr = ereader.join().unwrap().unwrap();
    Output { status, stdout, stderr }
}

/// Runs `cmd` and returns its stdout, failing the test on a non-zero exit.
fn run_ok(cmd: Mpirun, what: &str) -> String {
    let out = run(cmd, what);
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    stdout.into_owned()
}

/// The hex number after `key` on the first line holding it.
fn bits_after(text: &str, key: &str) -> u64 {
    let at = text.find(key).unwrap_or_else(|| panic!("no `{key}` in:\n{text}")) + key.len();
    let hex: String = text[at..]
        .trim_start()
        .trim_start_matches("0x")
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    u64::from_str_radix(&hex, 16).unwrap_or_else(|e| panic!("`{hex}` after `{key}`: {e}"))
}

/// A fresh scratch directory for one run's part files.
fn scratch(name: &str) -> Scratch {
    Scratch::new(&std::env::temp_dir(), name)
}

/// The single-node Jacobi: `steps` steps of the sequential kernel from the example's plate;
/// the grid and the last residual.
fn jacobi_single(rows: usize, cols: usize, steps: usize) -> (Vec<f64>, f64) {
    let dims = GridDims::new(rows, cols);
    let mut u: Vec<f64> = (0..rows * cols).map(|i| if i < cols { 100.0 } else { 0.0 }).collect();
    let mut v = vec![0.0; u.len()];
    let mut residual = 0.0;
    for _ in 0..steps {
        residual = jacobi_step(&u, &mut v, dims);
        std::mem::swap(&mut u, &mut v);
    }
    (u, residual)
}

#[test]
fn jacobi_on_1_2_3_ranks_is_the_single_node_grid_bit_for_bit() {
    // 37 rows: 19 + 18 over 2 ranks, 13 + 12 + 12 over 3 (uneven splits).
    let (rows, cols, steps) = (37, 29, 40);
    let (grid, residual) = jacobi_single(rows, cols, steps);
    assert!(residual > 0.0, "the reference must still be moving, or the test proves nothing");
    for np in [1, 2, 3] {
        let dir = scratch(&format!("jacobi{np}"));
        let size = format!("{rows}x{cols}");
        let args =
            ["--size", &size, "--steps", "40", "--workers", "2", "--out", dir.0.to_str().unwrap()];
        let out = run_ok(mpirun(np, "jacobi_mpi", &args), &format!("jacobi on {np} ranks"));
        assert_eq!(bits_after(&out, "(bits"), residual.to_bits(), "residual on {np} ranks:\n{out}");
        let parts = read_parts::<f64>(&dir.0.join("grid.index")).expect("the parts read back");
        assert_eq!(parts.shape, [rows, cols]);
        let differ = parts.data.iter().zip(&grid).position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(differ, None, "grid on {np} ranks differs at flat index {differ:?}");
    }
}

#[test]
fn sum_and_histogram_on_1_2_3_ranks_match_the_single_node_kernels() {
    let (rows, cols) = (101, 333);
    let x: Vec<f64> =
        (0..rows * cols).map(|i| (i as f64 * 0.618033988749895).fract() * 12.0 - 1.0).collect();
    let sum = run_sequential::<Sum>(&x, cols);
    let bins = Bins::new(0.0, 10.0, 16).unwrap();
    let h = Histogram::of(&bins, &x);
    let mut want: Vec<u64> = h.counts.clone();
    want.extend([h.below, h.above, h.nan]);
    let want: Vec<String> = want.iter().map(u64::to_string).collect();
    for np in [1, 2, 3] {
        let out = run_ok(
            mpirun(np, "sum_histogram_mpi", &["--size", "101x333", "--workers", "2"]),
            &format!("sum on {np} ranks"),
        );
        assert_eq!(bits_after(&out, "bits"), sum.to_bits(), "ordered sum on {np} ranks:\n{out}");
        let line = out.lines().find(|l| l.starts_with("sum_mpi ")).expect("a sum_mpi line");
        let mpi_sum: f64 = line["sum_mpi ".len()..].trim().parse().unwrap();
        assert!(((mpi_sum - sum) / sum).abs() < 1e-12, "MPI_SUM {mpi_sum} vs {sum} on {np} ranks");
        let line = out.lines().find(|l| l.starts_with("histogram ")).expect("a histogram line");
        let got: Vec<&str> = line.split_whitespace().skip(1).take(want.len()).collect();
        assert_eq!(got, want, "histogram on {np} ranks");
    }
}

/// Every descendant of `pid` (pool workers, a fork server), from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else { continue };
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(c);
                todo.push(c);
            }
        }
    }
    found
}

/// The processes (other than this one) whose command line holds every one of `words`.
fn processes_with(words: &[&str]) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else { return Vec::new() };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != std::process::id())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
            words.iter().all(|w| args.iter().any(|a| a.ends_with(w.as_bytes())))
        })
        .collect()
}

/// Whether `pid` still exists (a zombie counts: it is not reaped yet).
fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The /dev/shm entries created by any of `pids` (shmpool names carry the creator's pid).
fn segments_of(pids: &[u32]) -> Vec<String> {
    let names = std::fs::read_dir("/dev/shm").map(|d| {
        d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>()
    });
    names
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with("shmpool") && pids.iter().any(|p| n.contains(&format!("-{p}-"))))
        .collect()
}

#[test]
fn a_rank_killed_mid_run_ends_the_job_and_leaves_no_process_or_segment() {
    let args = ["--size", "600x600", "--steps", "100000000", "--workers", "2"];
    let mut child = mpirun(3, "jacobi_mpi", &args).spawn();
    let stderr = child.child.stderr.take().unwrap();
    let errs = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut lines = BufReader::new(child.child.stdout.take().unwrap()).lines();
    let mut ranks = Vec::new();
    let start = Instant::now();
    while ranks.len() < 3 {
        let line = lines.next().expect("mpirun ended before every rank said its pid").unwrap();
        if let Some(pid) = line.split_whitespace().nth(3).and_then(|p| p.parse::<u32>().ok()) {
            ranks.push(pid);
        }
        assert!(start.elapsed() < DEADLINE, "the ranks did not start");
    }
    // Let the ranks get into their steps, then note every process of the job.
    std::thread::sleep(Duration::from_millis(300));
    let mut pids = ranks.clone();
    for &r in &ranks {
        pids.extend(descendants(r));
    }
    assert!(pids.len() >= 3 + 3 * 2, "3 ranks with 2 pool workers each, found only {pids:?}");
    // SAFETY: kill(2) takes two integers and touches no memory of this process. (That the pid
    // is still rank 1's: the rank printed it, and it is mpirun's child, which mpirun has not
    // reaped while the job runs, so the pid cannot have been reused.)
    let rc = unsafe { libc::kill(ranks[1] as i32, libc::SIGKILL) };
    assert_eq!(rc, 0, "SIGKILL to rank 1 ({})", ranks[1]);
    let killed = Instant::now();
    let status =
        wait_within(&mut child.child, Duration::from_secs(15), "the job after a rank was killed");
    let ended = killed.elapsed();
    drop(lines);
    let stderr = errs.join().unwrap();
    assert!(!status.success(), "mpirun reported success after a rank was killed:\n{stderr}");
    assert!(ended < Duration::from_secs(10), "the job took {ended:?} to end after the kill");
    let gone_by = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| exists(p)) && Instant::now() < gone_by {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<u32> = pids.iter().copied().filter(|&p| exists(p)).collect();
    assert!(left.is_empty(), "processes of the job outlived it: {left:?} (of {pids:?})");
    eprintln!("killed rank 1 of {pids:?}: the job ended {ended:?} later, every process gone");
    assert_eq!(segments_of(&pids), Vec::<String>::new(), "segments left in /dev/shm");
}

#[test]
fn a_worker_dying_inside_a_rank_aborts_the_job_with_the_pools_message() {
    // A step count of this test process's own marks the job's processes: the pool's workers
    // are forks of their rank, with its command line.
    let steps = format!("{}", 100_000 + std::process::id());
    let args = ["--size", "64x64", "--steps", &steps, "--workers", "2", "--crash-worker-at", "3"];
    let start = Instant::now();
    let out = run(mpirun(2, "jacobi_mpi", &args), "a worker's death");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let gone_by = Instant::now() + Duration::from_secs(5);
    let mut left = processes_with(&["jacobi_mpi", &steps, "--crash-worker-at"]);
    while !left.is_empty() && Instant::now() < gone_by {
        std::thread::sleep(Duration::from_millis(20));
        left = processes_with(&["jacobi_mpi", &steps, "--crash-worker-at"]);
    }
    assert!(left.is_empty(), "ranks or pool workers outlived the aborted job: {left:?}");
    assert!(!out.status.success(), "the job succeeded although a worker died:\n{stderr}");
    assert!(start.elapsed() < Duration::from_secs(20), "the abort took {:?}", start.elapsed());
    assert!(stderr.contains("rank 1: pool worker"), "the pool's error is not reported:\n{stderr}");
    assert!(stderr.contains("aborting the MPI job"), "no abort message:\n{stderr}");
    // Not mpirun's MPI_ABORT banner: it is lost in about 1 run of 3 ("ORTE_ERROR_LOG: Data
    // unpack would read past end of buffer in file show_help.c") when the ranks die first. The
    // abort message above, the failed status and the time say the job was aborted.
}

#[test]
fn a_split_too_small_for_the_halo_is_refused_with_the_fix() {
    let out = run(mpirun(3, "jacobi_mpi", &["--size", "2x8", "--steps", "1"]), "2 rows on 3 ranks");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "2 rows over 3 ranks ran:\n{stderr}");
    assert!(stderr.contains("run fewer ranks"), "the error does not say the fix:\n{stderr}");
}

/// Set in the environment of this test binary re-run under mpirun as the API's ranks.
const CHILD: &str = "SHMPOOL_MPI_API_CHILD";

/// The library's API on every rank: scatter from rank 0 and gather back, a halo of 2 rows
/// exchanged, max/min with a NaN and without, counts, the ordered fold, a scatter given the
/// wrong length, per-rank files read back. Panics (so the rank exits non-zero and mpirun
/// fails) on any difference. Runs only as a child of [`the_api_on_1_2_3_ranks`].
fn api_child() {
    use shmpool_mpi::mpi::traits::Communicator;
    use shmpool_mpi::{DistArray, DistError, reduce};

    let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    let world = universe.world();
    let (rank, ranks) = (world.rank(), world.size() as usize);
    let (rows, cols) = (3 * ranks + 2, 5);
    let whole: Vec<u32> = (0..(rows * cols) as u32).collect();

    // Scatter from rank 0 (ghosts filled), gather back to rank 2 % ranks.
    let at_root = (rank == 0).then_some(&whole[..]);
    let mut a = DistArray::scatter(&world, &[rows, cols], 2.min(rows / ranks), 0, at_root).unwrap();
    let local = a.local_rows();
    assert_eq!(
        &a.local()[..],
        &whole[local.start * cols..local.end * cols],
        "scatter on rank {rank}"
    );
    let root = (2 % ranks) as i32;
    let back = a.gather(root).unwrap();
    assert_eq!(back.is_some(), rank == root);
    if let Some(back) = back {
        assert_eq!(back, whole, "gather at rank {root}");
    }

    // New own rows, then the exchange brings the neighbours' into the ghosts.
    a.own_mut().iter_mut().for_each(|x| *x += 1000);
    a.exchange_halos();
    let want: Vec<u32> =
        whole[local.start * cols..local.end * cols].iter().map(|x| x + 1000).collect();
    assert_eq!(&a.local()[..], &want[..], "halo exchange on rank {rank}");

    // Reductions: the max and min of all ranks, a NaN winning both; exact counts; ordered fold.
    let r = f64::from(rank);
    assert_eq!(reduce::allreduce_max(&world, r), (ranks - 1) as f64);
    assert_eq!(reduce::allreduce_min(&world, r - 0.5), -0.5);
    let nan_on_last = if rank as usize == ranks - 1 { f64::NAN } else { r };
    assert!(reduce::allreduce_max(&world, nan_on_last).is_nan());
    assert!(reduce::allreduce_min(&world, nan_on_last).is_nan());
    let mut counts = [1u64, rank as u64];
    reduce::allreduce_counts(&world, &mut counts);
    assert_eq!(counts, [ranks as u64, (ranks * (ranks - 1) / 2) as u64]);
    let mine: Vec<u64> = a.own_rows().map(|row| row as u64).collect();
    let order = reduce::allreduce_ordered(&world, &mine, 0u64, |acc, x| acc * 31 + x).unwrap();
    assert_eq!(order, (0..rows as u64).fold(0, |acc, x| acc * 31 + x), "rows folded out of order");

    // A root that passes the wrong length: every rank gets the error, nobody hangs.
    let short = (rank == 0).then_some(&whole[1..]);
    let e = DistArray::scatter(&world, &[rows, cols], 1, 0, short).err();
    assert!(matches!(e, Some(DistError::ScatterLength { .. })), "rank {rank}: {e:?}");

    // Per-rank files and their index, read back whole.
    let dir = std::env::var_os("SHMPOOL_MPI_API_DIR").expect("the parent names a directory");
    let index = a.write_parts(Path::new(&dir), "api").unwrap();
    if rank == 0 {
        let parts = read_parts::<u32>(&index).unwrap();
        let want: Vec<u32> = whole.iter().map(|x| x + 1000).collect();
        assert_eq!((parts.shape, parts.data), (vec![rows, cols], want));
    }
    // Written again, new values, but the last rank cannot open its part: its old part stays,
    // so the old index must not (it would pair rank 0's new rows with the last rank's old).
    a.own_mut().iter_mut().for_each(|x| *x += 1);
    let e = if rank as usize == ranks - 1 {
        without_descriptors(|| a.write_parts(Path::new(&dir), "api")).err()
    } else {
        a.write_parts(Path::new(&dir), "api").err()
    };
    assert!(matches!(e, Some(DistError::Io { .. })), "rank {rank}: {e:?}");
    if rank == 0 {
        let e = read_parts::<u32>(&index).err();
        assert!(matches!(e, Some(DistError::Io { .. })), "a stale index was left: {e:?}");
    }
    // Rank 0 cannot write the index (a directory is in the way): it gets the cause, the others
    // an error too, and none waits for rank 0 in a barrier.
    let blocker = Path::new(&dir).join("api.index.partial");
    if rank == 0 {
        std::fs::create_dir_all(&blocker).unwrap();
    }
    let e = a.write_parts(Path::new(&dir), "api").err();
    if rank == 0 {
        assert!(matches!(e, Some(DistError::Io { .. })), "rank 0: {e:?}");
        std::fs::remove_dir(&blocker).unwrap();
    } else {
        assert!(matches!(e, Some(DistError::OtherRank { .. })), "rank {rank}: {e:?}");
    }
    // Zero-sized shapes: rows of no elements move nothing and gather to nothing; no rows at
    // all is refused on every rank; no partials anywhere fold to the identity.
    let mut empty = DistArray::<u32>::zeroed(&world, &[rows, 0], 1).unwrap();
    empty.exchange_halos();
    assert_eq!(empty.gather(0).unwrap().map(|v| v.len()), (rank == 0).then_some(0));
    let e = DistArray::<u32>::zeroed(&world, &[0, cols], 0).err();
    assert!(matches!(e, Some(DistError::TooFewRows { .. })), "rank {rank}: {e:?}");
    let e = DistArray::<u32>::zeroed(&world, &[rows, usize::MAX, 2], 0).err();
    assert!(matches!(e, Some(DistError::CountTooLarge { .. })), "rank {rank}: {e:?}");
    let e = DistArray::<u32>::zeroed(&world, &[usize::MAX], usize::MAX / ranks).err();
    assert!(matches!(e, Some(DistError::CountTooLarge { .. })), "rank {rank}: {e:?}");
    assert_eq!(reduce::allreduce_ordered(&world, &[] as &[u64], 7, |a, b| a + b).unwrap(), 7);
    // Infinities order as numbers; the min of -0.0 and 0.0 is -0.0 on any number of ranks.
    let inf = if rank == 0 { f64::NEG_INFINITY } else { f64::INFINITY };
    assert_eq!(reduce::allreduce_max(&world, inf), if ranks > 1 { f64::INFINITY } else { inf });
    assert_eq!(reduce::allreduce_min(&world, inf), f64::NEG_INFINITY);
    let zero = if rank == 0 { -0.0 } else { 0.0 };
    assert!(reduce::allreduce_min(&world, zero).is_sign_negative());

    // Roots that are not ranks: the same error on every rank, nothing sent.
    for bad in [ranks as i32, -1] {
        let e = a.gather(bad).err();
        assert!(matches!(e, Some(DistError::BadRoot { .. })), "gather at {bad}: {e:?}");
        let e = DistArray::<u32>::scatter(&world, &[rows, cols], 0, bad, None).err();
        assert!(matches!(e, Some(DistError::BadRoot { .. })), "scatter from {bad}: {e:?}");
    }

    // A part name that climbs out of the directory: refused everywhere, nothing written.
    let e = a.write_parts(Path::new(&dir), "../escape").err();
    assert!(matches!(e, Some(DistError::BadName { .. })), "rank {rank}: {e:?}");
    assert!(!Path::new(&dir).join("../escape.rank00000.bin").exists(), "wrote out of the dir");

    // The last rank cannot create its block (no file descriptor left for the memfd): it gets
    // the cause, every other rank an error too, and nobody hangs in a collective.
    let last = rank as usize == ranks - 1;
    let e = if last {
        without_descriptors(|| DistArray::<u32>::zeroed(&world, &[rows, cols], 1)).err()
    } else {
        DistArray::<u32>::zeroed(&world, &[rows, cols], 1).err()
    };
    if last {
        assert!(matches!(e, Some(DistError::Shm(_))), "the failing rank {rank}: {e:?}");
    } else {
        assert!(matches!(e, Some(DistError::OtherRank { .. })), "rank {rank}: {e:?}");
    }
    // And the ranks go on together.
    assert_eq!(reduce::allreduce_max(&world, r), (ranks - 1) as f64);

    println!("rank {rank}: api ok");
}

/// `f()` run with no file descriptor left to open (the soft descriptor limit lowered to the
/// lowest free one), then the limit restored.
fn without_descriptors<R>(f: impl FnOnce() -> R) -> R {
    let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit(2) writes one rlimit into `old`, a live local; open(2) reads the
    // NUL-terminated literal and close(2) closes the descriptor it returned; setrlimit(2)
    // reads one rlimit, a live local. None of them touches other memory.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        let lowest_free = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        assert!(lowest_free >= 0);
        libc::close(lowest_free);
        let low = libc::rlimit { rlim_cur: lowest_free as libc::rlim_t, ..old };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &low), 0);
    }
    let r = f();
    // SAFETY: setrlimit(2) reads one rlimit, a live local.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) }, 0);
    r
}

/// Rank 1 panics holding a distributed array while the others wait in the halo exchange.
/// Runs only as a child of [`a_rank_that_panics_ends_the_job_instead_of_hanging`].
fn panic_child() {
    use shmpool_mpi::DistArray;
    use shmpool_mpi::mpi::traits::Communicator;

    let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
    let world = universe.world();
    let mut a = DistArray::<f64>::zeroed(&world, &[16, 4], 1).unwrap();
    if world.rank() == 1 {
        panic!("rank 1 gives up");
    }
    a.exchange_halos();
    println!("rank {}: exchanged with a rank that panicked", world.rank());
}

/// `mpirun -np N` of this test binary running only `test` as the child ranks.
fn rerun(np: usize, test: &str) -> Mpirun {
    let mut m = launcher(np, &std::env::current_exe().unwrap());
    m.cmd.args(["--exact", test, "--nocapture", "--test-threads=1"]).env(CHILD, "1");
    m
}

#[test]
fn the_api_on_1_2_3_ranks() {
    if std::env::var_os(CHILD).is_some() {
        return api_child();
    }
    for np in [1, 2, 3] {
        let dir = scratch(&format!("api{np}"));
        let mut cmd = rerun(np, "the_api_on_1_2_3_ranks");
        cmd.cmd.env("SHMPOOL_MPI_API_DIR", &dir.0);
        let out = run_ok(cmd, &format!("the API on {np} ranks"));
        assert_eq!(out.matches("api ok").count(), np, "not every rank finished:\n{out}");
    }
}

#[test]
fn a_rank_that_panics_ends_the_job_instead_of_hanging() {
    if std::env::var_os(CHILD).is_some() {
        return panic_child();
    }
    let start = Instant::now();
    let out = run(rerun(3, "a_rank_that_panics_ends_the_job_instead_of_hanging"), "a panic");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the job succeeded although a rank panicked:\n{stderr}");
    assert!(start.elapsed() < Duration::from_secs(20), "the abort took {:?}", start.elapsed());
    assert!(stderr.contains("rank 1 gives up"), "the panic is not reported:\n{stderr}");
    assert!(stderr.contains("rank 1: panicked holding a distributed array"), "{stderr}");
    // Not mpirun's MPI_ABORT banner: it is lost in about 1 run of 3 ("ORTE_ERROR_LOG: Data
    // unpack would read past end of buffer in file show_help.c") when the ranks die first. The
    // abort message above, the failed status and the time say the job was aborted.
}
