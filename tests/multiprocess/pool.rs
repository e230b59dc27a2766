//! The pool: results and order, chunking edge cases, waits, and failures (panics, killed,
//! segfaulting and aborting workers), terminate, maxtasksperchild, and reaping.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use shmpool::{Error, Pool, SharedArray, StartMethod};

use crate::harness::{Tests, register};

/// Every start method, for tests that run under each.
const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn];

pub fn tests() -> Tests {
    register! {
        the_default_start_method_is_the_forkservers_as_for_process,
        a_death_while_the_parent_waits_is_noticed_at_once in METHODS,
        kernel_panic_is_an_error_and_the_pool_keeps_working in METHODS,
        sigkill_fails_the_job_naming_pid_signal_chunk in METHODS,
    }
    .and(start_method_tests())
    .and(fork_tests())
    .and(task_tests())
}

/// `Pool::new` and `Process` agree on the default start method, the forkserver, which works from
/// a multi-threaded parent (where fork is refused).
fn the_default_start_method_is_the_forkservers_as_for_process() {
    assert_eq!(StartMethod::default(), StartMethod::ForkServer);
    assert_eq!(shmpool::Context::default().method(), StartMethod::default());
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || rx.recv().ok());
    let mut pool = Pool::new(2).unwrap();
    assert_eq!(pool.start_method(), StartMethod::default());
    check_parentage(StartMethod::ForkServer, &pool.worker_pids());
    assert_eq!(pool.apply(square, 7).unwrap(), 49);
    drop(pool);
    drop(tx);
    t.join().unwrap();
    sm_done(StartMethod::ForkServer);
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the machine.
fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps the milliseconds in `c[0]`, notes the time of its death there and SIGKILLs its own
/// worker.
fn die_after(c: &mut [u64]) {
    std::thread::sleep(Duration::from_millis(c[0]));
    c[0] = now_ns();
    // SAFETY: raise has no memory effects; it ends this worker process.
    unsafe { libc::raise(libc::SIGKILL) };
}

/// This thread's voluntary context switches: how often it blocked.
fn voluntary_switches() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("voluntary_ctxt_switches:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A worker that dies while the parent sleeps in a job, waiting on that worker's chunk, is
/// noticed when it dies, not at the parent's next periodic look: the parent sleeps on the
/// workers' pidfds (or the forkserver's status pipes) and wakes once for the death. The bound
/// on the delay is generous (200 ms, so a loaded machine cannot make it flake; it is printed,
/// and `benches/start_recover.rs` carries the real figure); that the parent blocked only a few
/// times in the half second it waited is what tells an event from a 10 ms poll (~50 wakes).
fn a_death_while_the_parent_waits_is_noticed_at_once(m: StartMethod) {
    let mut pool = sm_pool(m, None);
    assert_eq!(pool.apply(square, 3).unwrap(), 9);
    let a = SharedArray::<u64>::from_fn(1, |_| 500).unwrap();
    let switches = voluntary_switches();
    let job = pool.for_each_chunk_async(a, die_after).unwrap();
    let (a, outcome) = job.finish();
    let noticed = now_ns();
    let blocked = voluntary_switches() - switches;
    match outcome {
        Err(Error::WorkerDied { signal, chunk, .. }) => {
            assert_eq!((signal, chunk), (Some(libc::SIGKILL), 0))
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    assert!(a[0] > 1000 && a[0] <= noticed, "the worker noted when it died: {}", a[0]);
    let delay = Duration::from_nanos(noticed - a[0]);
    println!(
        "    ({m}: death noticed and replacement started {delay:?} after it; the parent blocked {blocked} times)"
    );
    assert!(delay < Duration::from_millis(200), "{m}: the death was noticed after {delay:?}");
    assert!(blocked < 20, "{m}: the parent woke {blocked} times while waiting 500 ms: it polled");
    // Replaced with the pool's method; the pool works on.
    assert_eq!(pool.worker_pids().len(), 2);
    check_parentage(m, &pool.worker_pids());
    assert_eq!(pool.apply(square, 4).unwrap(), 16);
    drop(pool);
    sm_done(m);
}

fn fork_tests() -> Tests {
    register! {
        zero_workers_is_an_error,
        for_each_chunk_matches_sequential,
        chunk_size_one_and_huge,
        empty_input_makes_no_job,
        zip_matches_sequential,
        map_reduce_equals_sequential_sum,
        stencil_reads_its_halo,
        arrays_created_after_start_are_mapped,
        wait_timeout_and_progress,
        sigkill_with_retries_gives_the_right_result,
        segfaulting_kernel_fails_the_job,
        aborting_kernel_fails_the_job,
        crash_once_kernel_succeeds_with_retries,
        repeated_kills_during_one_long_job,
        terminate_with_10000_pending_chunks_is_prompt,
        maxtasksperchild_replaces_workers,
        close_join_and_drop_reap_every_worker,
        initializer_runs_in_each_worker,
        workers_exit_when_the_parent_dies,
        failing_initializer_is_an_error_not_a_hang,
        memory_is_shared_not_copied,
        random_kills_never_hang_lose_or_double_run,
        a_forked_copy_of_the_pool_is_refused_and_harmless,
        workers_do_not_keep_pipes_made_before_them,
        an_empty_async_job_reports_its_own_outcome_not_a_leaked_jobs,
        killing_idle_workers_again_and_again_is_not_a_failing_initializer,
        helpers: [segfault_now, init_marker, set_initialized, name_initialized],
    }
}

/// Marks an element done, keeping its index in the low 32 bits: idempotent, so a retried chunk
/// gives the same result, and a chunk run twice is still visible in the marker count below.
fn mark(c: &mut [u64]) {
    for x in c {
        *x += 1 << 32;
    }
}

fn indices(n: usize) -> SharedArray<u64> {
    SharedArray::from_fn(n, |i| i as u64).unwrap()
}

/// How many times each element was marked.
fn marks(a: &[u64]) -> Vec<u64> {
    a.iter().map(|x| x >> 32).collect()
}

fn gone(pid: u32) -> bool {
    // Reaped children vanish from /proc; a zombie still has an entry with state Z.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// A builder for forked workers: the tests in `fork_tests` and `task_tests` exercise the fork
/// start method (the default is the forkserver; `start_method_tests` run per method). Every
/// data-parallel call goes to the workers (`inline_threshold(0)`): these tests are about the
/// workers (their deaths, retries, replacements, mappings), and their arrays are small enough
/// to run in the caller by default (`kernels_api.rs`:
/// `the_older_operations_run_small_inputs_in_the_caller_and_large_ones_in_workers`).
fn forked() -> shmpool::pool::PoolBuilder {
    Pool::builder().start_method(StartMethod::Fork).inline_threshold(0)
}

/// A pool of `n` forked workers.
fn fork_pool(n: usize) -> Pool {
    let pool = forked().workers(n).build().unwrap();
    assert_eq!(pool.start_method(), StartMethod::Fork);
    pool
}

fn zero_workers_is_an_error() {
    assert!(matches!(Pool::new(0), Err(Error::PoolSize { requested: 0, .. })));
    let msg = Pool::new(0).unwrap_err().to_string();
    assert!(msg.contains("between 1 and"), "{msg}");
}

fn for_each_chunk_matches_sequential() {
    fn k(c: &mut [f64]) {
        shmpool_kernels::scale_add(c)
    }
    let n = 1_000_003;
    let mut pool = fork_pool(2);
    let mut a = SharedArray::<f64>::from_fn(n, |i| i as f64).unwrap();
    let mut expect: Vec<f64> = (0..n).map(|i| i as f64).collect();
    pool.for_each_chunk(&mut a, k).unwrap();
    shmpool_kernels::scale_add(&mut expect);
    assert_eq!(&a[..], &expect[..]);
    // Non-capturing closures coerce to fn too.
    pool.for_each_chunk(&mut a, |c| c.iter_mut().for_each(|x| *x = -*x)).unwrap();
    assert!(a.iter().zip(&expect).all(|(x, e)| *x == -*e));
}

fn chunk_size_one_and_huge() {
    let mut pool = forked().workers(2).chunk_size(1).build().unwrap();
    let mut a = indices(5000);
    pool.for_each_chunk(&mut a, mark).unwrap();
    assert!(marks(&a).iter().all(|&m| m == 1));
    assert!(a.iter().enumerate().all(|(i, x)| x & 0xFFFF_FFFF == i as u64));
    pool.set_chunk_size(Some(usize::MAX / 2));
    pool.for_each_chunk(&mut a, mark).unwrap();
    assert!(marks(&a).iter().all(|&m| m == 2));
    pool.set_chunk_size(None);
    pool.for_each_chunk(&mut a, mark).unwrap();
    assert!(marks(&a).iter().all(|&m| m == 3));
}

fn empty_input_makes_no_job() {
    let mut pool = fork_pool(2);
    let mut a = SharedArray::<u64>::zeroed(0).unwrap();
    pool.for_each_chunk(&mut a, mark).unwrap();
    assert_eq!(pool.map_reduce(&a, |c| c.len() as u64, |x, y| x + y).unwrap(), 0);
    let mut job = pool.for_each_chunk_async(a, mark).unwrap();
    assert_eq!(job.progress(), (0, 0));
    assert!(job.is_ready());
    assert!(job.wait().unwrap().is_empty());
}

fn zip_matches_sequential() {
    let n = 300_001;
    let mut pool = fork_pool(2);
    let a = SharedArray::<f32>::from_fn(n, |i| i as f32).unwrap();
    let b = SharedArray::<u8>::from_fn(n, |i| (i % 7) as u8).unwrap();
    let mut out = SharedArray::<f64>::zeroed(n).unwrap();
    pool.zip(&a, &b, &mut out, |a, b, o| {
        for i in 0..o.len() {
            o[i] = a[i] as f64 * b[i] as f64;
        }
    })
    .unwrap();
    assert!((0..n).all(|i| out[i] == (i as f32) as f64 * (i % 7) as f64));
    let short = SharedArray::<u8>::zeroed(3).unwrap();
    let err = pool.zip(&a, &short, &mut out, |_, _, _| {}).unwrap_err();
    assert!(matches!(err, Error::LengthMismatch { .. }), "{err}");
}

fn map_reduce_equals_sequential_sum() {
    let n = 2_000_000;
    let mut pool = fork_pool(2);
    let a = SharedArray::<u64>::from_fn(n, |i| (i as u64).wrapping_mul(2654435761) % 1000).unwrap();
    let expect: u64 = a.iter().sum();
    assert_eq!(pool.map_reduce(&a, |c| c.iter().sum::<u64>(), |x, y| x + y).unwrap(), expect);
    // A Pod pair as the partial: (min, max).
    let mm = pool
        .map_reduce(
            &a,
            |c| [*c.iter().min().unwrap(), *c.iter().max().unwrap()],
            |x, y| [x[0].min(y[0]), x[1].max(y[1])],
        )
        .unwrap();
    assert_eq!(mm, [0, 999]);
    pool.set_chunk_size(Some(1));
    let small = SharedArray::<u64>::from_fn(1000, |i| i as u64).unwrap();
    assert_eq!(
        pool.map_reduce(&small, |c| c.iter().sum::<u64>(), |x, y| x + y).unwrap(),
        999 * 500
    );
    // 20,000 partials of 8 bytes do not fit the scratch area: they get an array of their own.
    let more = SharedArray::<u64>::from_fn(20_000, |i| i as u64).unwrap();
    assert_eq!(
        pool.map_reduce(&more, |c| c.iter().sum::<u64>(), |x, y| x + y).unwrap(),
        19_999 * 10_000
    );
}

fn stencil_reads_its_halo() {
    fn sum3(win: &[i64], off: usize, out: &mut [i64]) {
        for (k, o) in out.iter_mut().enumerate() {
            let i = off + k;
            let lo = i.saturating_sub(2);
            let hi = (i + 3).min(win.len());
            *o = win[lo..hi].iter().sum();
        }
    }
    let n = 10_007;
    let input = SharedArray::<i64>::from_fn(n, |i| (i * i % 101) as i64).unwrap();
    let mut out = SharedArray::<i64>::zeroed(n).unwrap();
    let mut pool = forked().workers(2).chunk_size(97).build().unwrap();
    pool.stencil(&input, &mut out, 2, sum3).unwrap();
    let mut expect = vec![0i64; n];
    sum3(&input, 0, &mut expect);
    assert_eq!(&out[..], &expect[..]);
}

fn arrays_created_after_start_are_mapped() {
    let mut pool = fork_pool(2);
    for round in 0..12u64 {
        // New memfds each round: workers map them by handle and let old mappings go.
        let mut a = SharedArray::<u64>::from_fn(100_000, |_| round).unwrap();
        pool.for_each_chunk(&mut a, |c| c.iter_mut().for_each(|x| *x += 1)).unwrap();
        assert!(a.iter().all(|&x| x == round + 1));
    }
}

fn slow_chunk(c: &mut [u64]) {
    std::thread::sleep(Duration::from_millis(20));
    mark(c)
}

fn wait_timeout_and_progress() {
    let mut pool = forked().workers(2).chunk_size(10).build().unwrap();
    let mut job = pool.for_each_chunk_async(indices(400), slow_chunk).unwrap();
    assert!(
        !job.wait_timeout(Duration::from_millis(30)),
        "40 chunks of 20 ms cannot be done in 30 ms"
    );
    let (done, total) = job.progress();
    assert_eq!(total, 40);
    assert!(done < total);
    assert!(!job.is_ready());
    assert!(job.wait_timeout(Duration::from_secs(20)));
    assert_eq!(job.progress(), (40, 40));
    let a = job.wait().unwrap();
    assert!(marks(&a).iter().all(|&m| m == 1));
}

fn panics_on_chunk_3(c: &mut [u64]) {
    if c[0] == 30 {
        panic!("bad value {}", c[0]);
    }
    mark(c)
}

/// Chunk 5 (elements 50..60) sleeps before writing anything, long enough to be killed.
fn sleeps_on_chunk_5(c: &mut [u64]) {
    if c[0] & 0xFFFF_FFFF == 50 && c[0] >> 32 == 0 {
        std::thread::sleep(Duration::from_millis(1500));
    }
    mark(c)
}

/// Starts a job over 100 elements in chunks of 10, kills the worker running chunk 5, and
/// returns the array, the job's outcome and the killed pid.
fn kill_chunk_5(pool: &mut Pool, sig: i32) -> (SharedArray<u64>, shmpool::Result<()>, u32) {
    let mut job = pool.for_each_chunk_async(indices(100), sleeps_on_chunk_5).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some((pid, _)) = job.running().into_iter().find(|&(_, c)| c == 5) {
            break pid;
        }
        assert!(Instant::now() < deadline, "chunk 5 never started");
        std::thread::sleep(Duration::from_millis(1));
    };
    // SAFETY: kill has no memory effects; `pid` is our own worker.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
    let t0 = Instant::now();
    let (a, outcome) = job.finish();
    assert!(t0.elapsed() < Duration::from_secs(5), "a dead worker must not hang the job");
    (a, outcome, pid)
}

fn sigkill_with_retries_gives_the_right_result() {
    let mut pool = forked().workers(2).chunk_size(10).retries(1).build().unwrap();
    let (a, outcome, killed) = kill_chunk_5(&mut pool, libc::SIGKILL);
    outcome.unwrap();
    // The retried chunk slept again (its elements were unmarked) and then ran: once each.
    assert!(marks(&a).iter().all(|&x| x == 1));
    assert!(gone(killed));
    assert!(!pool.worker_pids().contains(&killed));
}

fn segfaults(c: &mut [u64]) {
    if c[0] == 20 {
        segfault_now();
    }
    mark(c)
}

/// Dies of SIGSEGV as an invalid access would. (std's SIGSEGV handler, there to report stack
/// overflows, would swallow a raised SIGSEGV, so the default action is restored first.)
fn segfault_now() {
    // SAFETY: restoring the default disposition and raising a signal have no memory effects.
    unsafe {
        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        libc::raise(libc::SIGSEGV);
    }
    unreachable!("SIGSEGV's default action ends the process");
}

fn aborts(c: &mut [u64]) {
    if c[0] == 70 {
        std::process::abort();
    }
    mark(c)
}

fn crash_fails_job(kernel: fn(&mut [u64]), chunk: u64, sig: i32) {
    let mut pool = forked().workers(2).chunk_size(10).build().unwrap();
    let mut a = indices(100);
    let err = pool.for_each_chunk(&mut a, kernel).unwrap_err();
    match &err {
        Error::WorkerDied { chunk: c, signal, .. } => assert_eq!((*c, *signal), (chunk, Some(sig))),
        other => panic!("expected WorkerDied, got {other}"),
    }
    let m = marks(&a);
    let (lo, hi) = (chunk as usize * 10, chunk as usize * 10 + 10);
    assert!(m[..lo].iter().chain(&m[hi..]).all(|&x| x == 1));
    assert!(m[lo..hi].iter().all(|&x| x == 0));
    // With retries, a kernel that always crashes on that chunk uses them up, then fails.
    let mut pool2 = forked().workers(2).chunk_size(10).retries(2).build().unwrap();
    assert!(matches!(pool2.for_each_chunk(&mut a, kernel), Err(Error::WorkerDied { .. })));
    // Both pools still work.
    pool.for_each_chunk(&mut a, mark).unwrap();
    pool2.for_each_chunk(&mut a, mark).unwrap();
}

fn segfaulting_kernel_fails_the_job() {
    crash_fails_job(segfaults, 2, libc::SIGSEGV);
}

fn aborting_kernel_fails_the_job() {
    crash_fails_job(aborts, 7, libc::SIGABRT);
}

static MARKER: OnceLock<PathBuf> = OnceLock::new();

/// Segfaults the first time it sees chunk 4 (a marker file remembers across processes).
fn crashes_once(c: &mut [u64]) {
    if c[0] == 40 {
        let path = MARKER.get().expect("marker path set before the pool starts");
        if std::fs::OpenOptions::new().write(true).create_new(true).open(path).is_ok() {
            segfault_now();
        }
    }
    mark(c)
}

fn crash_once_kernel_succeeds_with_retries() {
    let path = std::env::temp_dir().join(format!("shmpool-pool-test-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    MARKER.get_or_init(|| path.clone());
    let mut pool = forked().workers(2).chunk_size(10).retries(1).build().unwrap();
    let before = pool.worker_pids();
    let mut a = indices(100);
    pool.for_each_chunk(&mut a, crashes_once).unwrap();
    assert!(path.exists(), "the kernel crashed once");
    let after = pool.worker_pids();
    assert_eq!(
        before.iter().filter(|p| after.contains(p)).count(),
        1,
        "one worker died and was replaced"
    );
    assert!(marks(&a).iter().all(|&x| x == 1));
    std::fs::remove_file(&path).unwrap();
}

fn repeated_kills_during_one_long_job() {
    let mut pool = forked().workers(2).chunk_size(10).retries(50).build().unwrap();
    fn slow_set(c: &mut [u64]) {
        std::thread::sleep(Duration::from_millis(20));
        // Idempotent, as a kernel run with retries must be: a chunk killed half-way and re-run
        // ends the same.
        c.iter_mut().for_each(|x| *x = (*x & 0xFFFF_FFFF) | 1 << 32);
    }
    let mut job = pool.for_each_chunk_async(indices(2000), slow_set).unwrap();
    let mut killed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while killed.len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(60));
        if let Some((pid, _)) = job.running().into_iter().find(|(p, _)| !killed.contains(p)) {
            // SAFETY: kill has no memory effects; `pid` is one of our workers.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            killed.push(pid);
        }
    }
    assert_eq!(killed.len(), 4);
    let a = job.wait().unwrap();
    // No chunk was lost: every element is set, and its index is intact.
    assert!(marks(&a).iter().all(|&x| x == 1), "{:?}", marks(&a));
    assert!(a.iter().enumerate().all(|(i, x)| x & 0xFFFF_FFFF == i as u64));
    assert!(killed.iter().all(|&p| gone(p)));
    assert_eq!(pool.worker_pids().len(), 2);
}

fn terminate_with_10000_pending_chunks_is_prompt() {
    fn slow(c: &mut [u64]) {
        std::thread::sleep(Duration::from_millis(10));
        mark(c)
    }
    let mut pool = forked().workers(2).chunk_size(1).build().unwrap();
    let pids = pool.worker_pids();
    let mut job = pool.for_each_chunk_async(indices(10_000), slow).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(job.progress().1, 10_000);
    let t0 = Instant::now();
    job.terminate_pool();
    // 10,000 chunks of 10 ms on 2 workers would take 50 s; terminate does not wait for them.
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(pids.iter().all(|&p| gone(p)));
    assert!(pool.worker_pids().is_empty());
    let mut a = indices(10);
    assert!(matches!(
        pool.for_each_chunk(&mut a, mark),
        Err(Error::PoolNotRunning { state: "terminated" })
    ));
    pool.join().unwrap();
}

fn maxtasksperchild_replaces_workers() {
    let mut pool = forked().workers(2).chunk_size(10).maxtasksperchild(3).build().unwrap();
    let first = pool.worker_pids();
    let mut a = indices(300);
    pool.for_each_chunk(&mut a, mark).unwrap();
    assert!(marks(&a).iter().all(|&x| x == 1));
    // 30 chunks at 3 per worker: at least 10 workers took part; the originals are gone.
    pool.for_each_chunk(&mut a, mark).unwrap();
    // Only live workers are listed: a worker that retired after the job's last chunk is gone
    // (one may be retiring right now), and is replaced when the pool next looks (at the next
    // job).
    let later = pool.worker_pids();
    assert!(later.len() <= 2, "{later:?}");
    assert!(first.iter().all(|p| !later.contains(p)), "{first:?} -> {later:?}");
    assert!(first.iter().all(|&p| gone(p)));
    assert!(marks(&a).iter().all(|&x| x == 2));
}

fn close_join_and_drop_reap_every_worker() {
    let mut pool = fork_pool(2);
    assert!(matches!(pool.join(), Err(Error::PoolStillRunning)));
    let pids = pool.worker_pids();
    let mut a = indices(100);
    pool.for_each_chunk(&mut a, mark).unwrap();
    pool.close();
    assert!(matches!(
        pool.for_each_chunk(&mut a, mark),
        Err(Error::PoolNotRunning { state: "closed" })
    ));
    assert!(pool.join_timeout(Duration::from_secs(10)).unwrap());
    assert!(pids.iter().all(|&p| gone(p)));

    let pool = fork_pool(3);
    let pids = pool.worker_pids();
    assert_eq!(pids.len(), 3);
    drop(pool);
    assert!(pids.iter().all(|&p| gone(p)));
}

fn init_marker() {
    // Runs in each worker before any chunk: record this worker's pid in a file per worker.
    let dir =
        std::env::temp_dir().join(format!("shmpool-init-{}", std::os::unix::process::parent_id()));
    let _ = std::fs::create_dir(&dir);
    std::fs::write(dir.join(std::process::id().to_string()), b"").unwrap();
}

fn initializer_runs_in_each_worker() {
    let dir = std::env::temp_dir().join(format!("shmpool-init-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut pool = forked().workers(2).initializer(init_marker).build().unwrap();
    let mut a = indices(1 << 16);
    pool.for_each_chunk(&mut a, mark).unwrap();
    let mut pids = pool.worker_pids();
    // The initializer ran before the first chunk of each worker; a worker that took no chunk
    // may still be starting, so wait for it briefly.
    let deadline = Instant::now() + Duration::from_secs(5);
    let seen = |d: &PathBuf| -> Vec<u32> {
        let mut v: Vec<u32> = std::fs::read_dir(d)
            .map(|r| r.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    pids.sort();
    while seen(&dir) != pids && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(seen(&dir), pids);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn workers_exit_when_the_parent_dies() {
    // A child starts a pool, publishes its workers' pids, and is killed; the workers (now
    // orphans, reparented away from this process) must exit on their own.
    let mut pids = SharedArray::<u32>::zeroed(3).unwrap();
    let st = shmpool::scope(|s| {
        let child = s
            .fork_with(pids.split_at_mut(1), |(flag, rest)| {
                let pool = fork_pool(2);
                rest.copy_from_slice(&pool.worker_pids());
                flag[0] = 1;
                // SAFETY: raising a signal has no memory effects; it ends this child abruptly,
                // so the pool's Drop never runs.
                unsafe { libc::raise(libc::SIGKILL) };
            })
            .unwrap();
        child.join().unwrap()
    })
    .unwrap();
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    assert_eq!(pids[0], 1);
    let workers = [pids[1], pids[2]];
    assert!(workers.iter().all(|&p| p != 0));
    let deadline = Instant::now() + Duration::from_secs(3);
    while !workers.iter().all(|&p| gone(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(workers.iter().all(|&p| gone(p)), "orphaned workers still alive");
}

// --- Python's task API ---

fn task_tests() -> Tests {
    register! {
        tasks::map_keeps_order_for_every_chunksize,
        tasks::starmap_and_apply,
        tasks::empty_input_returns_at_once,
        tasks::get_timeout_then_result,
        tasks::task_panic_is_reported_with_task_index,
        tasks::imap_is_ordered_and_lazy,
        tasks::imap_unordered_yields_everything_once,
        tasks::terminate_with_10000_pending_tasks,
        tasks::maxtasksperchild_with_map,
        tasks::sigkill_during_map,
        tasks::imap_reports_a_killed_worker_as_a_death_not_a_panic,
        tasks::callbacks_fire_once,
        tasks::arguments_and_results_aligned_to_128_bytes,
    }
}

fn square(x: u64) -> u64 {
    x * x
}

fn map_keeps_order_for_every_chunksize() {
    let mut pool = fork_pool(2);
    for n in [1usize, 7, 1000, 100_000] {
        let args: Vec<u64> = (0..n as u64).collect();
        let expect: Vec<u64> = args.iter().map(|&x| square(x)).collect();
        // 100,000 u64 arguments and results do not fit the scratch area: shared arrays then.
        for cs in [None, Some(1), Some(3), Some(n * 10)] {
            if n == 100_000 && cs == Some(1) {
                continue; // covered by the benchmark; keeps the test short in debug builds
            }
            assert_eq!(pool.map(square, &args, cs).unwrap(), expect, "n={n} chunksize={cs:?}");
        }
    }
}

fn starmap_and_apply() {
    let mut pool = fork_pool(2);
    let pairs: Vec<(u32, f64)> = (0..500).map(|i| (i, i as f64 / 2.0)).collect();
    let out = pool.starmap(|a: u32, b: f64| a as f64 + b, &pairs, None).unwrap();
    assert_eq!(out, pairs.iter().map(|&(a, b)| a as f64 + b).collect::<Vec<_>>());
    assert_eq!(pool.apply(square, 9).unwrap(), 81);
    for i in 0..200 {
        assert_eq!(pool.apply(|x: i32| -x, i).unwrap(), -i);
    }
    let mut r =
        pool.apply_async(|x: [u8; 3]| x.iter().map(|&b| b as u32).sum::<u32>(), [1, 2, 3]).unwrap();
    r.wait().unwrap();
    assert!(r.is_ready());
    assert!(r.is_successful().unwrap());
    assert_eq!(r.get().unwrap(), 6);
    assert_eq!(r.get().unwrap(), 6, "get again returns the value again, as in Python");
}

fn empty_input_returns_at_once() {
    let mut pool = fork_pool(2);
    assert!(pool.map(square, [0u64; 0], None).unwrap().is_empty());
    assert!(pool.starmap(|a: u8, b: u8| a + b, &[] as &[(u8, u8)], None).unwrap().is_empty());
    assert_eq!(pool.imap(square, [0u64; 0], None).unwrap().count(), 0);
    assert_eq!(pool.imap_unordered(square, [0u64; 0], None).unwrap().count(), 0);
}

fn sleepy(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn get_timeout_then_result() {
    let mut pool = fork_pool(2);
    let mut r = pool.apply_async(sleepy, 300).unwrap();
    assert!(matches!(r.get_timeout(Duration::from_millis(20)), Err(Error::Timeout { .. })));
    assert!(!r.is_ready());
    assert!(matches!(r.is_successful(), Err(Error::ResultUnavailable { .. })));
    assert!(!r.wait_timeout(Duration::from_millis(10)));
    assert_eq!(r.get_timeout(Duration::from_secs(10)).unwrap(), 300);
}

fn panics_on_13(x: u64) -> u64 {
    assert!(x != 13, "unlucky {x}");
    x
}

fn task_panic_is_reported_with_task_index() {
    let mut pool = fork_pool(2);
    let args: Vec<u64> = (0..40).collect();
    match pool.map(panics_on_13, &args, Some(4)) {
        Err(Error::KernelPanicked { chunk, message, .. }) => {
            assert_eq!(chunk, 3);
            assert_eq!(message, "task 13: unlucky 13");
        }
        other => panic!("expected KernelPanicked, got {other:?}"),
    }
    let mut r = pool.map_async(panics_on_13, &args, Some(4)).unwrap();
    r.wait().unwrap();
    assert!(!r.is_successful().unwrap());
    assert!(r.get().is_err());
    drop(r);
    // The pool still works.
    assert_eq!(pool.map(square, [3], None).unwrap(), [9]);
}

fn imap_is_ordered_and_lazy() {
    let mut pool = fork_pool(2);
    let args: Vec<u64> = (0..300).collect();
    let out: Vec<u64> = pool.imap(square, &args, None).unwrap().map(Result::unwrap).collect();
    assert_eq!(out, args.iter().map(|&x| x * x).collect::<Vec<_>>());
    // Lazy and streaming: the first result arrives long before the last task ran.
    let slow: Vec<u64> = vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 400];
    let t0 = Instant::now();
    let mut it = pool.imap(sleepy, &slow, None).unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 1);
    let first = t0.elapsed();
    assert!(first < Duration::from_millis(300), "first result after {first:?}");
    assert_eq!(it.map(Result::unwrap).collect::<Vec<_>>(), &slow[1..]);
    // A failed task is an error item; the others still come, in order.
    let items: Vec<_> = pool.imap(panics_on_13, &args[..20], None).unwrap().collect();
    assert_eq!(items.len(), 20);
    for (i, it) in items.iter().enumerate() {
        assert_eq!(it.is_err(), i == 13, "item {i}: {it:?}");
    }
}

fn imap_unordered_yields_everything_once() {
    let mut pool = fork_pool(2);
    let args: Vec<u64> = (0..1000).collect();
    let mut seen: Vec<(usize, u64)> =
        pool.imap_unordered(square, &args, Some(7)).unwrap().map(Result::unwrap).collect();
    seen.sort();
    assert_eq!(seen, args.iter().map(|&x| (x as usize, x * x)).collect::<Vec<_>>());
    // A slow first task does not hold back the others.
    let slow: Vec<u64> = vec![300, 1, 1, 1];
    let first = pool.imap_unordered(sleepy, &slow, None).unwrap().next().unwrap().unwrap();
    assert_eq!(first.1, 1);
}

fn terminate_with_10000_pending_tasks() {
    let mut pool = fork_pool(2);
    let pids = pool.worker_pids();
    let args = vec![10u64; 10_000];
    let mut r = pool.map_async(sleepy, &args, Some(1)).unwrap();
    assert!(!r.wait_timeout(Duration::from_millis(50)));
    let (done, total) = r.progress();
    assert!(done < total && total == 10_000, "{done}/{total}");
    let t0 = Instant::now();
    r.terminate_pool();
    assert!(t0.elapsed() < Duration::from_secs(5), "terminate waited for the queue");
    assert!(pids.iter().all(|&p| gone(p)));
    assert!(matches!(pool.apply(square, 1), Err(Error::PoolNotRunning { .. })));
}

fn maxtasksperchild_with_map() {
    let mut pool = forked().workers(2).maxtasksperchild(5).build().unwrap();
    let first = pool.worker_pids();
    let args: Vec<u64> = (0..100).collect();
    assert_eq!(
        pool.map(square, &args, Some(1)).unwrap(),
        args.iter().map(|&x| x * x).collect::<Vec<_>>()
    );
    let later = pool.worker_pids();
    assert!(first.iter().all(|p| !later.contains(p)));
}

fn sigkill_during_map() {
    let mut pool = fork_pool(2);
    let pids = pool.worker_pids();
    let mut r = pool.map_async(sleepy, [1000, 1000], Some(1)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: kill has no memory effects; the pid is one of our workers.
    unsafe { libc::kill(pids[0] as i32, libc::SIGKILL) };
    match r.get_timeout(Duration::from_secs(10)) {
        Err(Error::WorkerDied { pid, signal, .. }) => {
            assert_eq!((pid, signal), (pids[0], Some(libc::SIGKILL)))
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    drop(r);
    assert_eq!(pool.apply(square, 5).unwrap(), 25);
}

fn imap_reports_a_killed_worker_as_a_death_not_a_panic() {
    let mut pool = fork_pool(2);
    let pids = pool.worker_pids();
    let mut it = pool.imap(sleepy, [1000, 1000], Some(1)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: kill has no memory effects; the pid is one of our workers.
    unsafe { libc::kill(pids[0] as i32, libc::SIGKILL) };
    let results: Vec<_> = it.by_ref().collect();
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results.iter().filter(|r| matches!(r, Ok(1000))).count(), 1, "{results:?}");
    let died = results.iter().find_map(|r| r.as_ref().err()).expect("one task was lost");
    match died {
        Error::WorkerDied { pid, signal, .. } => {
            assert_eq!((*pid, *signal), (pids[0], Some(libc::SIGKILL)))
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    drop(it);
    assert_eq!(pool.apply(square, 5).unwrap(), 25);
}

fn failing_initializer_is_an_error_not_a_hang() {
    fn bad_init() {
        panic!("no config file");
    }
    fn aborting_init() {
        std::process::abort();
    }
    /// The error of a pool that gave up on `init`: it names the initializer and how it failed.
    fn gave_up<T: std::fmt::Debug>(r: shmpool::Result<T>, failure: &str) {
        match r {
            Err(e @ Error::PoolGaveUp { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(failure) && msg.contains("initializer") && msg.contains("gave up"),
                    "{msg}"
                )
            }
            other => panic!("expected PoolGaveUp naming the initializer, got {other:?}"),
        }
    }
    let inits: [(fn(), &str); 2] =
        [(bad_init, "no config file"), (aborting_init, "killed by signal 6 (SIGABRT)")];
    for (init, failure) in inits {
        let mut pool = forked().workers(2).initializer(init).build().unwrap();
        let mut a = indices(100);
        gave_up(pool.for_each_chunk(&mut a, mark), failure);
        // The pool gave up: it is terminated, every worker reaped (the harness checks), and
        // every later call says why, not only that the pool is terminated.
        gave_up(pool.for_each_chunk(&mut a, mark), failure);
        gave_up(pool.apply(square, 3), failure);
        gave_up(pool.map(square, [1, 2], None), failure);
        assert!(marks(&a).iter().all(|&m| m == 0));

        // A result pending when the pool gives up carries the reason too, and so does its error
        // callback.
        let mut pool = forked().workers(2).initializer(init).build().unwrap();
        let mut seen = None;
        let mut r = pool
            .map_async(square, [1, 2, 3], None)
            .unwrap()
            .error_callback(|e: &Error| seen = Some(e.to_string()));
        gave_up(r.get_timeout(Duration::from_secs(20)), failure);
        assert!(matches!(r.is_successful(), Ok(false)));
        drop(r);
        let seen = seen.expect("the error callback ran");
        assert!(seen.contains(failure) && seen.contains("gave up"), "{seen}");
        gave_up(pool.imap(square, [1], None).map(|_| ()), failure);
    }
}

/// Proportional set size (KiB) of `pid`'s mappings whose size is exactly `bytes`.
fn pss_of_mapping(pid: u32, bytes: usize) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut total = 0;
    let mut in_it = false;
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ')
            && let Some((lo, hi)) = range.split_once('-')
            && let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
        {
            in_it = hi - lo == bytes && line.contains("memfd:");
        } else if in_it && let Some(v) = line.strip_prefix("Pss:") {
            total += v.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap();
        }
    }
    total
}

fn memory_is_shared_not_copied() {
    // 64 MiB + the header page: a mapping size nothing else here has.
    let n = (64 << 20) / 8;
    let bytes = (64 << 20) + 4096;
    let mut pool = fork_pool(2);
    let mut a = SharedArray::<f64>::from_fn(n, |i| i as f64).unwrap();
    pool.for_each_chunk(&mut a, shmpool_kernels::scale_add).unwrap();
    let mut pids = pool.worker_pids();
    pids.push(std::process::id());
    let pss: u64 = pids.iter().map(|&p| pss_of_mapping(p, bytes)).sum();
    // Three processes map all of it; together they hold it once (PSS splits shared pages).
    assert!(pss > 60 << 10 && pss < 70 << 10, "three processes hold {pss} KiB of a 64 MiB array");
    assert!(a.iter().take(1000).enumerate().all(|(i, &x)| x == i as f64 * 1.0001 + 0.5));
}

/// Kills workers at pseudo-random moments (while claiming, running, finishing or idle) during
/// jobs of many tiny chunks. Without retries: the job ends (no hang) and no chunk ran twice.
/// With retries: every chunk ran at least once (a chunk killed after its write may run again,
/// which is what retries allow).
fn random_kills_never_hang_lose_or_double_run() {
    fn tick(c: &mut [u64]) {
        for x in c.iter_mut() {
            *x += 1;
        }
        std::thread::sleep(Duration::from_micros(300));
    }
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rand = move |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    for retries in [0u32, 10_000] {
        let mut pool = forked().workers(2).chunk_size(1).retries(retries).build().unwrap();
        for _round in 0..2 {
            let mut job =
                pool.for_each_chunk_async(SharedArray::<u64>::zeroed(2000).unwrap(), tick).unwrap();
            let mut kills = 0;
            while !job.is_ready() {
                std::thread::sleep(Duration::from_micros(rand(4000)));
                let pids: Vec<u32> = job.running().into_iter().map(|(p, _)| p).collect();
                if let Some(&pid) = pids.get(rand(2) as usize) {
                    // SAFETY: kill has no memory effects; `pid` is one of our workers.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                    kills += 1;
                }
            }
            let (a, outcome) = job.finish();
            assert!(kills > 0);
            assert!(a.iter().all(|&x| x <= 1) || retries > 0, "a chunk ran twice without retries");
            if retries == 0 {
                // A kill that lands between chunks costs no chunk: then the job succeeds.
                match outcome {
                    Ok(()) => assert!(a.iter().all(|&x| x == 1)),
                    Err(Error::WorkerDied { .. }) => {}
                    Err(e) => panic!("unexpected error {e}"),
                }
            } else {
                outcome.unwrap();
                assert!(a.iter().all(|&x| x >= 1), "a chunk was lost despite retries");
            }
        }
        let mut b = indices(100);
        pool.for_each_chunk(&mut b, mark).unwrap();
    }
}

fn callbacks_fire_once() {
    let mut pool = fork_pool(2);
    let (mut ok, mut err) = (Vec::new(), Vec::new());
    let mut r = pool
        .map_async(square, [1, 2, 3], None)
        .unwrap()
        .callback(|v: &Vec<u64>| ok.push(v.clone()))
        .error_callback(|e: &Error| err.push(e.to_string()));
    assert_eq!(r.get().unwrap(), [1, 4, 9]);
    r.wait().unwrap();
    assert!(r.is_ready());
    drop(r);
    assert_eq!(ok, [vec![1, 4, 9]]);
    assert!(err.is_empty());
    // Dropped without waiting: the error callback still fires, once.
    let mut calls = 0;
    drop(pool.apply_async(panics_on_13, 13).unwrap().error_callback(|e: &Error| {
        assert!(e.to_string().contains("unlucky 13"));
        calls += 1;
    }));
    assert_eq!(calls, 1);
}

fn a_forked_copy_of_the_pool_is_refused_and_harmless() {
    // A scope child gets a copy of the parent's pool. Using it must fail without touching the
    // parent's workers or control block, and dropping it must not kill them. Before the owner
    // check, the child's job (id 1, 10 elements) ran on the parent's workers, the child's drop
    // killed them, and the parent's next job (also id 1) reused the child's cached views.
    let pool = fork_pool(2);
    let pids = pool.worker_pids();
    let mut slot = Some(pool);
    let st = shmpool::scope(|s| {
        let slot = &mut slot;
        s.fork(move || {
            let pool = slot.as_mut().unwrap();
            let mut small = indices(10);
            let e = pool.for_each_chunk(&mut small, mark);
            assert!(matches!(e, Err(Error::PoolNotOwned { .. })), "{e:?}");
            assert!(e.unwrap_err().to_string().contains("create a new Pool"));
            let e = pool.map(square, [1, 2, 3], None);
            assert!(matches!(e, Err(Error::PoolNotOwned { .. })), "{e:?}");
            let e = pool.for_each_chunk_async(indices(10), mark).map(|_| ());
            assert!(matches!(e, Err(Error::PoolNotOwned { .. })), "{e:?}");
            let e = pool.for_each_chunk(&mut indices(0), mark);
            assert!(matches!(e, Err(Error::PoolNotOwned { .. })), "{e:?}");
            let e = pool.map(square, [0u64; 0], None);
            assert!(matches!(e, Err(Error::PoolNotOwned { .. })), "{e:?}");
            let e = pool.join_timeout(Duration::ZERO);
            assert!(matches!(e, Err(Error::PoolNotOwned { .. })), "{e:?}");
            assert!(marks(&small).iter().all(|&x| x == 0));
            pool.close();
            pool.terminate();
            drop(slot.take());
        })
        .unwrap()
        .join()
        .unwrap()
    })
    .unwrap();
    assert!(st.success(), "{st}");
    let mut pool = slot.take().unwrap();
    assert_eq!(pool.worker_pids(), pids);
    assert!(pids.iter().all(|&p| !gone(p)), "the child's copy killed the workers");
    let mut big = indices(1 << 21);
    pool.for_each_chunk(&mut big, mark).unwrap();
    assert!(marks(&big).iter().all(|&x| x == 1));
    assert!(big.iter().enumerate().all(|(i, &x)| x & 0xffff_ffff == i as u64));
    assert_eq!(pool.map(square, [1, 2, 3], None).unwrap(), [1, 4, 9]);
    assert_eq!(pool.worker_pids(), pids);
}

fn workers_do_not_keep_pipes_made_before_them() {
    // A pipe made before the pool: the workers must not hold its ends, or the survivor's recv
    // never sees the peer go.
    let (mut a, b) = shmpool::pipe(true).unwrap();
    let mut pool = fork_pool(2);
    let mut x = indices(1000);
    pool.for_each_chunk(&mut x, mark).unwrap(); // the workers are up and past their start
    drop(b);
    let r = a.recv_bytes_timeout(Duration::from_secs(5));
    assert!(matches!(r, Err(Error::Disconnected { .. })), "{r:?}");

    // A replacement worker, forked after this pipe was made, must not hold it either.
    let (mut c, d) = shmpool::pipe(true).unwrap();
    let victim = pool.worker_pids()[0];
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(victim as i32, libc::SIGKILL) }, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.worker_pids().contains(&victim) && Instant::now() < deadline {
        pool.for_each_chunk(&mut x, mark).unwrap(); // reaps and replaces the dead worker
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!pool.worker_pids().contains(&victim), "the killed worker was not replaced");
    pool.for_each_chunk(&mut x, mark).unwrap();
    drop(d);
    let r = c.recv_bytes_timeout(Duration::from_secs(5));
    assert!(matches!(r, Err(Error::Disconnected { .. })), "{r:?}");
}

// ---- start methods: forkserver and spawn workers ----

/// The start methods whose workers are re-executions of this program.
const FORKSERVER_AND_SPAWN: [StartMethod; 2] = [StartMethod::ForkServer, StartMethod::Spawn];

fn start_method_tests() -> Tests {
    register! {
        initializer_and_maxtasksperchild_replacements_use_the_method in FORKSERVER_AND_SPAWN,
        data_parallel_on_arrays_made_after_start in FORKSERVER_AND_SPAWN,
        task_api in FORKSERVER_AND_SPAWN,
        terminate_close_and_drop_reap_every_worker in FORKSERVER_AND_SPAWN,
        works_from_a_multithreaded_parent_where_fork_is_refused in FORKSERVER_AND_SPAWN,
        a_killed_forkserver_is_replaced_and_the_jobs_finish,
    }
}

fn sm_pool(m: StartMethod, chunk: Option<usize>) -> Pool {
    // In the workers whatever the size, as `forked()`.
    let mut b = Pool::builder().workers(2).start_method(m).inline_threshold(0);
    if let Some(c) = chunk {
        b = b.chunk_size(c);
    }
    let pool = b.build().unwrap();
    assert_eq!(pool.start_method(), m);
    assert_eq!(pool.worker_pids().len(), 2);
    pool
}

/// The parent of process `pid`.
fn ppid_of(pid: u32) -> u32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    s.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Checks who started the workers: fork and spawn workers are ours, forkserver ones the
/// server's; spawn and forkserver workers are re-executions of this program (their initial
/// environment, which `/proc/<pid>/environ` shows, carries the process layer's marker).
fn check_parentage(m: StartMethod, pids: &[u32]) {
    let me = std::process::id();
    for &p in pids {
        if m == StartMethod::Fork {
            // Forked workers are our children and run no re-executed program: no marker.
            assert_eq!(ppid_of(p), me, "worker {p} is ours");
            continue;
        }
        // A child started with posix_spawn may still be inside its exec when the start returns
        // (the parent resumes once the old memory is let go, before the new stack is built):
        // its environment reads empty until then.
        let env = wait_for("the worker's environment", || {
            let env = std::fs::read(format!("/proc/{p}/environ")).unwrap();
            (!env.is_empty()).then_some(env)
        });
        let env = String::from_utf8_lossy(&env);
        let marker = format!("SHMPOOL_WORKER=1,{},", m.name());
        assert!(env.contains(&marker), "worker {p} was not started by {m}");
        match m {
            StartMethod::ForkServer => assert_ne!(ppid_of(p), me, "worker {p} is the server's"),
            _ => assert_eq!(ppid_of(p), me, "worker {p} is ours"),
        }
    }
}

/// Ends a test: a forkserver started for the pool must not outlive it.
fn sm_done(m: StartMethod) {
    if m == StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().expect("the forkserver shuts down cleanly");
    }
}

fn data_parallel_on_arrays_made_after_start(m: StartMethod) {
    fn k(c: &mut [f64]) {
        shmpool_kernels::scale_add(c)
    }
    let mut pool = sm_pool(m, None);
    check_parentage(m, &pool.worker_pids());
    // Made after the workers started: they map it by handle through the parent's /proc entry.
    let n = 1_000_003;
    let mut a = SharedArray::<f64>::from_fn(n, |i| i as f64).unwrap();
    let mut expect: Vec<f64> = (0..n).map(|i| i as f64).collect();
    pool.for_each_chunk(&mut a, k).unwrap();
    shmpool_kernels::scale_add(&mut expect);
    assert_eq!(&a[..], &expect[..]);
    pool.for_each_chunk(&mut a, |c| c.iter_mut().for_each(|x| *x = -*x)).unwrap();
    assert!(a.iter().zip(&expect).all(|(x, e)| *x == -*e));
    let b = SharedArray::<u64>::from_fn(2_000_000, |i| (i as u64 * 2654435761) % 1000).unwrap();
    let sum: u64 = b.iter().sum();
    assert_eq!(pool.map_reduce(&b, |c| c.iter().sum::<u64>(), |x, y| x + y).unwrap(), sum);
    let w = SharedArray::<u32>::from_fn(n, |i| (i % 7) as u32).unwrap();
    let mut out = SharedArray::<f64>::zeroed(n).unwrap();
    pool.zip(&a, &w, &mut out, |x, y, o| {
        o.iter_mut().zip(x.iter().zip(y)).for_each(|(o, (x, y))| *o = x * *y as f64)
    })
    .unwrap();
    assert!((0..n).all(|i| out[i] == a[i] * (i % 7) as f64));
    drop(pool);
    sm_done(m);
}

fn task_api(m: StartMethod) {
    let mut pool = sm_pool(m, None);
    let args: Vec<u64> = (0..1000).collect();
    let expect: Vec<u64> = args.iter().map(|&x| square(x)).collect();
    for cs in [None, Some(1), Some(10_000)] {
        assert_eq!(pool.map(square, &args, cs).unwrap(), expect, "chunksize={cs:?}");
    }
    // 100,000 results do not fit the scratch area: the task arena (a memfd) carries them.
    let many: Vec<u64> = (0..100_000).collect();
    assert_eq!(
        pool.map(square, &many, None).unwrap(),
        many.iter().map(|&x| x * x).collect::<Vec<_>>()
    );
    assert_eq!(pool.apply(square, 9).unwrap(), 81);
    let mut r =
        pool.apply_async(|x: [u8; 3]| x.iter().map(|&b| b as u32).sum::<u32>(), [1, 2, 3]).unwrap();
    assert_eq!(r.get().unwrap(), 6);
    drop(r);
    let got: Vec<u64> = pool.imap(square, &args[..50], None).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(got, expect[..50]);
    drop(pool);
    sm_done(m);
}

fn kernel_panic_is_an_error_and_the_pool_keeps_working(m: StartMethod) {
    let mut pool = sm_pool(m, Some(10));
    let pids = pool.worker_pids();
    let mut a = indices(100);
    let err = pool.for_each_chunk(&mut a, panics_on_chunk_3).unwrap_err();
    assert!(err.to_string().contains("chunk 3"), "{err}");
    match err {
        Error::KernelPanicked { chunk, message, pid } => {
            assert_eq!((chunk, message.as_str()), (3, "bad value 30"));
            assert!(pids.contains(&pid), "{pid} not in {pids:?}");
        }
        other => panic!("expected KernelPanicked, got {other}"),
    }
    let mk = marks(&a);
    assert!(mk[..30].iter().chain(&mk[40..]).all(|&x| x == 1));
    assert!(mk[30..40].iter().all(|&x| x == 0));
    // No worker died, and the pool still works.
    assert_eq!(pool.worker_pids(), pids);
    pool.for_each_chunk(&mut a, mark).unwrap();
    assert!(marks(&a)[..30].iter().all(|&x| x == 2));
    // A panicking task of the task API too.
    let args: Vec<u64> = (0..20).collect();
    assert!(matches!(pool.map(panics_on_13, &args, Some(1)), Err(Error::KernelPanicked { .. })));
    assert_eq!(pool.apply(square, 5).unwrap(), 25);
    drop(pool);
    sm_done(m);
}

fn sigkill_fails_the_job_naming_pid_signal_chunk(m: StartMethod) {
    let mut pool = sm_pool(m, Some(10));
    let before = pool.worker_pids();
    let (a, outcome, killed) = kill_chunk_5(&mut pool, libc::SIGKILL);
    match outcome {
        Err(Error::WorkerDied { pid, chunk, signal, ref how }) => {
            assert_eq!((pid, chunk, signal), (killed, 5, Some(libc::SIGKILL)));
            assert!(how.contains("SIGKILL"), "{how}");
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    let mk = marks(&a);
    assert!(mk[..50].iter().chain(&mk[60..]).all(|&x| x == 1), "{mk:?}");
    assert!(mk[50..60].iter().all(|&x| x == 0));
    // Reaped, and replaced with the pool's own start method; the pool still works.
    assert!(gone(killed));
    let after = pool.worker_pids();
    assert_eq!(after.len(), 2);
    assert!(!after.contains(&killed));
    assert_eq!(before.iter().filter(|p| after.contains(p)).count(), 1);
    check_parentage(m, &after);
    let mut b = indices(1000);
    pool.for_each_chunk(&mut b, mark).unwrap();
    assert!(marks(&b).iter().all(|&x| x == 1));
    drop(pool);
    assert!(after.iter().all(|&p| gone(p)));
    sm_done(m);
}

fn terminate_close_and_drop_reap_every_worker(m: StartMethod) {
    // close + join.
    let mut pool = sm_pool(m, None);
    let pids = pool.worker_pids();
    let mut a = indices(100);
    pool.for_each_chunk(&mut a, mark).unwrap();
    pool.close();
    assert!(pool.join_timeout(Duration::from_secs(10)).unwrap());
    assert!(pids.iter().all(|&p| gone(p)), "{pids:?}");
    // terminate while a job runs.
    let mut pool = sm_pool(m, Some(1));
    let pids = pool.worker_pids();
    let job = pool.for_each_chunk_async(indices(10_000), slow_chunk).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let t0 = Instant::now();
    job.terminate_pool();
    // 10,000 chunks of 20 ms would take 100 s on 2 workers; terminate does not wait for them.
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(pids.iter().all(|&p| gone(p)), "{pids:?}");
    assert!(pool.worker_pids().is_empty());
    pool.join().unwrap();
    // drop.
    let pool = sm_pool(m, None);
    let pids = pool.worker_pids();
    drop(pool);
    assert!(pids.iter().all(|&p| gone(p)), "{pids:?}");
    sm_done(m);
}

fn works_from_a_multithreaded_parent_where_fork_is_refused(m: StartMethod) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || rx.recv().ok());
    // Fork is refused while another thread runs; the other methods do not fork this process.
    assert!(matches!(forked().workers(2).build(), Err(Error::ForkWithThreads { .. })));
    let mut pool = sm_pool(m, None);
    check_parentage(m, &pool.worker_pids());
    let mut a = indices(100_000);
    pool.for_each_chunk(&mut a, mark).unwrap();
    assert!(marks(&a).iter().all(|&x| x == 1));
    assert_eq!(pool.map(square, [1, 2, 3], None).unwrap(), [1, 4, 9]);
    let pids = pool.worker_pids();
    drop(pool);
    assert!(pids.iter().all(|&p| gone(p)), "{pids:?}");
    tx.send(()).unwrap();
    t.join().unwrap();
    sm_done(m);
}

/// Set by the pool's initializer in each worker (never in the parent).
static INITIALIZED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn set_initialized() {
    INITIALIZED.store(7, std::sync::atomic::Ordering::SeqCst);
}

/// Writes, for each element, the initializer's mark (times 16) plus how this worker was started
/// (1: forkserver, 2: spawn, 0: neither), read from its initial environment.
fn read_initialized(c: &mut [u64]) {
    let env = std::fs::read("/proc/self/environ").unwrap_or_default();
    let has = |m: &str| env.windows(m.len()).any(|w| w == m.as_bytes());
    let how = if has("SHMPOOL_WORKER=1,forkserver,") {
        1
    } else if has("SHMPOOL_WORKER=1,spawn,") {
        2
    } else {
        0
    };
    c.fill(INITIALIZED.load(std::sync::atomic::Ordering::SeqCst) * 16 + how);
}

fn initializer_and_maxtasksperchild_replacements_use_the_method(m: StartMethod) {
    let mut pool = Pool::builder()
        .workers(2)
        .start_method(m)
        .chunk_size(10)
        .inline_threshold(0)
        .maxtasksperchild(3)
        .initializer(set_initialized)
        .build()
        .unwrap();
    let first = pool.worker_pids();
    check_parentage(m, &first);
    let expect = 7 * 16 + if m == StartMethod::ForkServer { 1 } else { 2 };
    let mut a = SharedArray::<u64>::zeroed(300).unwrap();
    for _ in 0..2 {
        pool.for_each_chunk(&mut a, read_initialized).unwrap();
        // Every chunk ran in a worker whose initializer had run and which this start method
        // started: 30 chunks at 3 per worker, so most ran in replacement workers.
        assert!(a.iter().all(|&x| x == expect), "{:?}", &a[..]);
    }
    assert_eq!(INITIALIZED.load(std::sync::atomic::Ordering::SeqCst), 0);
    // The originals retired and were replaced. (Only live workers are listed: one that retired
    // after the job's last chunk is replaced at the next job.)
    let later = pool.worker_pids();
    assert!(later.len() <= 2, "{later:?}");
    assert!(first.iter().all(|p| !later.contains(p)), "{first:?} -> {later:?}");
    assert!(first.iter().all(|&p| gone(p)));
    drop(pool);
    assert!(later.iter().all(|&p| gone(p)));
    sm_done(m);
}

// ---- regressions from issue 7 ----

/// Polls `f` until it gives a value (at most 10 s).
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sleeps, then panics on chunk 3 (elements 30..40): a slow job that fails.
fn slow_and_panics_on_chunk_3(c: &mut [u64]) {
    std::thread::sleep(Duration::from_millis(20));
    panics_on_chunk_3(c)
}

fn an_empty_async_job_reports_its_own_outcome_not_a_leaked_jobs() {
    let mut pool = forked().workers(2).chunk_size(10).build().unwrap();
    // An earlier job that will fail, left in flight: its handle is leaked, so nobody takes its
    // outcome (the pool's next published job waits it out first).
    let failing = pool.for_each_chunk_async(indices(100), slow_and_panics_on_chunk_3).unwrap();
    std::mem::forget(failing);
    // An empty job is done at once, with nothing to fail: neither the earlier job's progress nor
    // its error are its own.
    let mut empty = pool.for_each_chunk_async(indices(0), mark).unwrap();
    assert!(empty.is_ready(), "an empty job waits for nothing");
    assert_eq!(empty.progress(), (0, 0));
    assert!(empty.wait_timeout(Duration::ZERO));
    assert!(empty.running().is_empty());
    let a = empty.wait().expect("an empty job reports its own outcome");
    assert!(a.is_empty());
    let (a, outcome) = pool.for_each_chunk_async(indices(0), mark).unwrap().finish();
    outcome.expect("an empty job reports its own outcome");
    assert!(a.is_empty());
    // The empty task calls likewise.
    assert_eq!(pool.map(square, [0u64; 0], None).unwrap(), Vec::<u64>::new());
    let mut r = pool.map_async(square, [0u64; 0], None).unwrap();
    assert!(r.wait_timeout(Duration::ZERO));
    assert_eq!(r.get().unwrap(), Vec::<u64>::new());
    drop(r);
    // The pool still works: the leaked job's chunks all ran, and its error went nowhere.
    let mut b = indices(100);
    pool.for_each_chunk(&mut b, mark).unwrap();
    assert!(marks(&b).iter().all(|&m| m == 1));
}

/// Names the worker "shmpool-inited" (visible in `/proc/<pid>/comm`) once its initializer ran.
fn name_initialized() {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes, which this is.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"shmpool-inited".as_ptr()) };
}

/// This process's live children (zombies left out).
fn live_children() -> Vec<u32> {
    let me = std::process::id();
    let list = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap();
    list.split_whitespace().map(|p| p.parse().unwrap()).filter(|&p| !gone(p)).collect()
}

/// Whether worker `pid` finished its initializer and sleeps, waiting for work.
fn initialized_and_idle(pid: u32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").trim_start().chars().next();
    comm.trim_end() == "shmpool-inited" && state == Some('S')
}

fn sleeps_then_marks(c: &mut [u64]) {
    std::thread::sleep(Duration::from_millis(1500));
    mark(c)
}

fn killing_idle_workers_again_and_again_is_not_a_failing_initializer() {
    // A pool gives up after 2 * workers + 2 workers in a row die before finishing their
    // initializer (6 here). Workers killed from outside once they run are not that, however
    // often it happens: the pool replaces them and the job in flight finishes.
    let mut pool = forked().workers(2).chunk_size(1).initializer(name_initialized).build().unwrap();
    let mut job = pool.for_each_chunk_async(indices(1), sleeps_then_marks).unwrap();
    let busy = wait_for("a worker to take the only chunk", || job.running().first().map(|r| r.0));
    for kill in 0..10 {
        // The other worker (a replacement, from the second kill on), once past its initializer
        // and asleep, waiting for work; polling the job lets the pool notice deaths.
        let idle = wait_for(&format!("an idle worker to kill (kill {kill})"), || {
            let _ = job.progress();
            live_children().into_iter().find(|&p| p != busy && initialized_and_idle(p))
        });
        // SAFETY: kill has no memory effects; `idle` is one of our workers.
        assert_eq!(unsafe { libc::kill(idle as i32, libc::SIGKILL) }, 0);
    }
    let a = job.wait().expect("a healthy job is not failed by killing idle workers");
    assert_eq!(marks(&a), [1]);
    assert_eq!(pool.apply(square, 7).unwrap(), 49);
    let pids = pool.worker_pids();
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|&p| !gone(p)));
}

/// 128 bytes, aligned to 128: more than the scratch area's or a cache line's alignment.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(128))]
struct Wide([u64; 16]);

/// Aligned past a page: no shared mapping can promise that.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(8192))]
struct TooWide([[u8; 4096]; 2]);

fn widen(x: u64) -> Wide {
    Wide([x; 16])
}

fn narrow(w: Wide) -> u64 {
    assert!(std::ptr::from_ref(&w).is_aligned());
    w.0.iter().sum()
}

fn double(w: Wide) -> Wide {
    Wide(w.0.map(|x| 2 * x))
}

fn arguments_and_results_aligned_to_128_bytes() {
    let mut pool = fork_pool(2);
    // A 128-aligned argument, a 128-aligned result, and both.
    assert_eq!(pool.apply_pod(narrow, widen(3)).unwrap(), 48);
    assert_eq!(pool.apply_pod(widen, 5).unwrap(), widen(5));
    let args: Vec<u64> = (0..1000).collect();
    let wide: Vec<Wide> = args.iter().map(|&x| widen(x)).collect();
    for cs in [None, Some(1), Some(7)] {
        assert_eq!(pool.map_pod(widen, &args, cs).unwrap(), wide);
        let sums = pool.map_pod(narrow, &wide, cs).unwrap();
        assert_eq!(sums, args.iter().map(|&x| 16 * x).collect::<Vec<_>>());
    }
    let doubled: Vec<Wide> = wide.iter().map(|&w| double(w)).collect();
    assert_eq!(pool.map_pod_async(double, &wide, None).unwrap().get().unwrap(), doubled);
    let pairs: Vec<(Wide, u64)> = wide.iter().copied().zip(args.iter().copied()).collect();
    let got = pool.starmap_pod(|w: Wide, k: u64| Wide(w.0.map(|x| x + k)), &pairs, None).unwrap();
    assert!(got.iter().zip(&args).all(|(w, &k)| *w == widen(2 * k)));
    let got: Vec<Wide> =
        pool.imap_pod(widen, &args, Some(3)).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(got, wide);
    let mut seen = vec![false; args.len()];
    for r in pool.imap_unordered_pod(narrow, &wide, Some(5)).unwrap() {
        let (i, sum) = r.unwrap();
        assert_eq!(sum, 16 * i as u64);
        seen[i] = true;
    }
    assert!(seen.iter().all(|&s| s));
    // Data-parallel jobs on arrays of such elements.
    let mut a = SharedArray::<Wide>::from_fn(1000, |i| widen(i as u64)).unwrap();
    pool.for_each_chunk(&mut a, |c| c.iter_mut().for_each(|w| *w = double(*w))).unwrap();
    assert_eq!(a[999], widen(1998));
    let count = pool
        .map_reduce(
            &a,
            |c| Wide([c.len() as u64; 16]),
            |x, y| Wide(std::array::from_fn(|i| x.0[i] + y.0[i])),
        )
        .unwrap();
    assert_eq!(count, Wide([1000; 16]));

    // Past a page: a typed error, from every task call, and the pool is still usable.
    fn first(t: TooWide) -> u8 {
        t.0[0][0]
    }
    fn make(x: u8) -> TooWide {
        TooWide([[x; 4096]; 2])
    }
    let over = |r: shmpool::Result<()>| match r {
        Err(Error::InvalidArgument { reason, .. }) => assert!(reason.contains("8192"), "{reason}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    let t = make(1);
    over(pool.apply_pod(first, t).map(drop));
    over(pool.apply_pod_async(make, 1).map(drop));
    over(pool.map_pod(first, &[t], None).map(drop));
    over(pool.map_pod_async(make, &[1], None).map(drop));
    over(pool.starmap_pod(|a: TooWide, b: u8| a.0[0][0] + b, &[(t, 1)], None).map(drop));
    over(pool.starmap_pod_async(|a: u8, _b: u8| make(a), &[(1, 1)], None).map(drop));
    over(pool.imap_pod(first, &[t], None).map(drop));
    over(pool.imap_unordered_pod(make, &[1], None).map(drop));
    assert_eq!(pool.apply(square, 4).unwrap(), 16);
}

// ---- a forkserver that dies under a pool ----

/// SIGKILLs the forkserver `server` (our child: it stays a zombie until the process layer reaps
/// it) and waits until it and its `workers` are dead.
fn kill_server(server: u32, workers: &[u32]) {
    // SAFETY: kill has no memory effects; `server` is our forkserver child.
    assert_eq!(unsafe { libc::kill(server as i32, libc::SIGKILL) }, 0);
    wait_for("the forkserver and its workers to die", || {
        (gone(server) && workers.iter().all(|&p| gone(p))).then_some(())
    });
}

/// The pool's workers: all alive, all children of one live forkserver (our child), returned.
fn live_server_of(pool: &Pool, n: usize) -> u32 {
    let pids = pool.worker_pids();
    assert_eq!(pids.len(), n, "{pids:?}");
    let server = ppid_of(pids[0]);
    for &p in &pids {
        assert!(!gone(p), "worker {p} is listed but dead");
        assert_eq!(ppid_of(p), server, "worker {p} is not a child of the server");
    }
    assert!(!gone(server), "the server {server} is dead");
    assert_eq!(ppid_of(server), std::process::id());
    server
}

/// Sleeps before writing anything, long enough to be killed mid-chunk.
fn slow_mark(c: &mut [u64]) {
    std::thread::sleep(Duration::from_millis(300));
    mark(c)
}

/// Starts `slow_mark` over 100 elements in chunks of 10, kills the forkserver once both workers
/// run a chunk, and returns the job's array and outcome, and the server killed.
fn kill_server_mid_job(pool: &mut Pool) -> (SharedArray<u64>, shmpool::Result<()>, u32) {
    let server = live_server_of(pool, 2);
    let mut job = pool.for_each_chunk_async(indices(100), slow_mark).unwrap();
    let running = wait_for("both workers to run a chunk", || {
        let r = job.running();
        (r.len() == 2).then_some(r)
    });
    let workers: Vec<u32> = running.iter().map(|r| r.0).collect();
    kill_server(server, &workers);
    let t0 = Instant::now();
    let (a, outcome) = job.finish();
    assert!(t0.elapsed() < Duration::from_secs(10), "a dead forkserver must not hang the job");
    (a, outcome, server)
}

fn a_killed_forkserver_is_replaced_and_the_jobs_finish() {
    let mut pool = Pool::builder()
        .workers(2)
        .start_method(StartMethod::ForkServer)
        .chunk_size(10)
        .inline_threshold(0)
        .build()
        .unwrap();
    // Killed while the pool is idle (the OOM killer, say): its workers die with it.
    let server = live_server_of(&pool, 2);
    kill_server(server, &pool.worker_pids());
    assert_eq!(pool.worker_pids(), Vec::<u32>::new(), "dead workers are not listed");
    // The next jobs run on new workers of a new server, retries or not.
    let mut a = indices(100);
    pool.for_each_chunk(&mut a, mark).unwrap();
    assert!(marks(&a).iter().all(|&m| m == 1));
    let args: Vec<u64> = (0..100).collect();
    assert_eq!(
        pool.map(square, &args, None).unwrap(),
        args.iter().map(|&x| x * x).collect::<Vec<_>>()
    );
    let second = live_server_of(&pool, 2);
    assert_ne!(second, server);

    // Killed mid-job, no retries: only the chunks that were running fail, and the error names
    // the server's death as the cause.
    let (a, outcome, killed) = kill_server_mid_job(&mut pool);
    let chunk = match outcome {
        Err(Error::WorkerDied { how, signal, chunk, .. }) => {
            let cause = format!("the forkserver (pid {killed}) died: killed by signal 9 (SIGKILL)");
            assert!(how.contains(&cause), "{how}");
            assert!(!how.contains("SHMPOOL_WORKER"), "{how}");
            assert_eq!(signal, Some(libc::SIGKILL));
            chunk
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    };
    let per_chunk: Vec<u64> = marks(&a).chunks(10).map(|c| *c.iter().max().unwrap()).collect();
    let lost = per_chunk.iter().filter(|&&m| m == 0).count();
    assert!((1..=2).contains(&lost), "{per_chunk:?}");
    assert_eq!(per_chunk[chunk as usize], 0);
    assert!(per_chunk.iter().all(|&m| m <= 1), "{per_chunk:?}");
    let third = live_server_of(&pool, 2);
    assert!(third != killed && third != server);
    drop(pool);

    // Killed mid-job, with retries: the job finishes, every chunk run once.
    let mut pool = Pool::builder()
        .workers(2)
        .start_method(StartMethod::ForkServer)
        .chunk_size(10)
        .inline_threshold(0)
        .retries(2)
        .build()
        .unwrap();
    let (a, outcome, killed) = kill_server_mid_job(&mut pool);
    outcome.expect("with retries, a forkserver death costs nothing");
    assert!(marks(&a).iter().all(|&m| m == 1), "{:?}", marks(&a));
    let fourth = live_server_of(&pool, 2);
    assert_ne!(fourth, killed);
    assert_eq!(pool.apply(square, 6).unwrap(), 36);
    drop(pool);
    shmpool::process::shutdown_forkserver().expect("the new forkserver shuts down cleanly");
}
