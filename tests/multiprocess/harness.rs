//! The runner for tests that fork: libtest's command line and output (through `libtest-mimic`),
//! with the guarantees such tests need.
//!
//! libtest runs every test on a thread of its own, even with `--test-threads=1`, so a test binary
//! always has at least two threads and shmpool (rightly) refuses to fork it. `libtest-mimic` runs
//! the tests on the calling thread when it is given one test thread (`libtest_mimic::run`: "Run
//! test sequentially in main thread"), so this runner forces `--test-threads 1` whatever is
//! asked, and every test checks that it does run on the main thread. After each test it checks
//! that
//! - no new `/dev/shm` entry was left behind by this process or a child that has exited (a leak
//!   fails the test, and is removed; entries of other live processes, such as a second test run
//!   on the same machine, are not this run's business),
//! - no child process was left unreaped (that fails the test too),
//! - the test finished within its watchdog (SIGALRM ends the whole binary: a hang is a failure).
//!
//! Tests are registered with [`register!`], which names each test after its function
//! (`file::function`, `file::function::param`), and the run refuses to start while a file of
//! this folder, or a test-shaped function in one (`fn name()` at the top level: no parameters, no
//! return value), is not registered: a test that is written cannot be left out of the run.
//!
//! Arguments are libtest's (a filter, `--exact`, `--skip`, `--list`, `--ignored`, `--format`, ...;
//! `--test-threads` is accepted and overridden). A test marked `clean` runs in a fresh copy of
//! this binary (`--exact NAME`), so that threads it starts or process-wide settings it changes
//! never reach other tests.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, ExitCode};

use libtest_mimic::{Arguments, Failed, Trial};

/// Seconds a single test may take before the watchdog kills the binary.
const WATCHDOG_SECS: u32 = 60;

/// Set in a fresh copy of the binary that runs one `clean` test.
const CLEAN_ENV: &str = "SHMPOOL_TEST_CLEAN";

/// The folder of the test files, for the check that each is registered.
const TEST_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/multiprocess");

/// One test: its name, the function it was named after, and what runs it.
pub struct Test {
    name: String,
    function: &'static str,
    clean: bool,
    run: Box<dyn FnOnce() + Send>,
}

/// The tests and helper functions a file registers with [`register!`].
pub struct Tests {
    module: &'static str,
    tests: Vec<Test>,
    helpers: Vec<&'static str>,
}

impl Tests {
    /// An empty list for the module at `module_path`; its tests are named `module::...`.
    pub fn new(module_path: &'static str) -> Self {
        let module = module_path.split_once("::").map_or(module_path, |(_, m)| m);
        Tests { module, tests: Vec::new(), helpers: Vec::new() }
    }

    /// Adds the test `module[::group]::function[::param]`.
    pub fn add(
        &mut self,
        group: Option<&str>,
        function: &'static str,
        param: Option<String>,
        clean: bool,
        run: impl FnOnce() + Send + 'static,
    ) {
        let name = [Some(self.module), group, Some(function), param.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("::");
        self.tests.push(Test { name, function, clean, run: Box::new(run) });
    }

    /// Notes a `fn name()` of the file that is not a test.
    pub fn helper(&mut self, function: &'static str) {
        self.helpers.push(function);
    }

    /// Both lists, for a file that registers its tests in several places.
    pub fn and(mut self, other: Tests) -> Tests {
        self.tests.extend(other.tests);
        self.helpers.extend(other.helpers);
        self
    }
}

/// Registers a file's tests, each named after its function, and the file's helpers:
///
/// ```text
/// register! {
///     plain_test,                       // file::plain_test
///     group::test,                      // file::group::test
///     clean test_in_a_fresh_process,    // run in a fresh copy of the binary
///     per_method in [Fork, Spawn],      // file::per_method::fork, ...: per_method(Fork), ...
///     clean per_method in METHODS,
///     helpers: [not_a_test],            // a `fn not_a_test()` that is no test
/// }
/// ```
///
/// A parameter's name is its `Display` text.
macro_rules! register {
    (@ $s:ident;) => {};
    (@ $s:ident; helpers: [$($h:ident),* $(,)?] $(,)?) => {
        $( let _: fn() = $h; $s.helper(stringify!($h)); )*
    };
    (@ $s:ident; clean $f:ident in $p:expr $(, $($rest:tt)*)?) => {
        for p in $p {
            $s.add(None, stringify!($f), Some(p.to_string()), true, move || $f(p));
        }
        $crate::harness::register!(@ $s; $($($rest)*)?);
    };
    (@ $s:ident; $f:ident in $p:expr $(, $($rest:tt)*)?) => {
        for p in $p {
            $s.add(None, stringify!($f), Some(p.to_string()), false, move || $f(p));
        }
        $crate::harness::register!(@ $s; $($($rest)*)?);
    };
    (@ $s:ident; clean $f:ident $(, $($rest:tt)*)?) => {
        $s.add(None, stringify!($f), None, true, $f);
        $crate::harness::register!(@ $s; $($($rest)*)?);
    };
    (@ $s:ident; $g:ident :: $f:ident $(, $($rest:tt)*)?) => {
        $s.add(Some(stringify!($g)), stringify!($f), None, false, $f);
        $crate::harness::register!(@ $s; $($($rest)*)?);
    };
    (@ $s:ident; $f:ident $(, $($rest:tt)*)?) => {
        $s.add(None, stringify!($f), None, false, $f);
        $crate::harness::register!(@ $s; $($($rest)*)?);
    };
    ($($body:tt)*) => {{
        let mut tests = $crate::harness::Tests::new(module_path!());
        $crate::harness::register!(@ tests; $($body)*);
        tests
    }};
}
pub(crate) use register;

/// A test file: its name, its source (to find test-shaped functions) and what it registers.
pub struct Suite {
    pub file: &'static str,
    pub source: &'static str,
    pub tests: Tests,
}

/// `suite!(array)`: the file `array.rs`, its source, and `array::tests()`.
macro_rules! suite {
    ($m:ident) => {
        $crate::harness::Suite {
            file: concat!(stringify!($m), ".rs"),
            source: include_str!(concat!(stringify!($m), ".rs")),
            tests: $m::tests(),
        }
    };
}
pub(crate) use suite;

/// The top-level `fn name()` of a source file that take no parameters and return nothing: the
/// shape of a test.
fn test_shaped(source: &str) -> Vec<&str> {
    source
        .lines()
        .filter_map(|line| {
            let rest = line
                .strip_prefix("fn ")
                .or_else(|| line.strip_prefix("pub fn "))
                .or_else(|| line.strip_prefix("pub(crate) fn "))?;
            let (name, sig) = rest.split_once('(')?;
            let shaped = sig.trim_end() == ") {"
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            shaped.then_some(name)
        })
        .collect()
}

/// Every reason the registration is incomplete or ambiguous, each with its fix.
fn registration_problems(suites: &[Suite]) -> Vec<String> {
    let mut problems = Vec::new();
    let files: BTreeSet<&str> = suites.iter().map(|s| s.file).collect();
    if let Ok(dir) = std::fs::read_dir(TEST_DIR) {
        for entry in dir.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.ends_with(".rs")
                && !["main.rs", "harness.rs"].contains(&file.as_str())
                && !files.contains(file.as_str())
            {
                problems.push(format!(
                    "tests/multiprocess/{file} is not in the suite list, so its tests never run: \
                     add `suite!({})` to `main` in tests/multiprocess/main.rs",
                    file.trim_end_matches(".rs")
                ));
            }
        }
    }
    let mut names = BTreeMap::new();
    for s in suites {
        let module = s.file.trim_end_matches(".rs");
        if s.tests.module != module {
            problems.push(format!(
                "{}: its tests are registered from module `{}`: call `register!` in {}",
                s.file, s.tests.module, s.file
            ));
        }
        let known: BTreeSet<&str> = s
            .tests
            .tests
            .iter()
            .map(|t| t.function)
            .chain(s.tests.helpers.iter().copied())
            .collect();
        for f in test_shaped(s.source) {
            if !known.contains(f) {
                problems.push(format!(
                    "tests/multiprocess/{}: `fn {f}()` looks like a test (no parameters, no return \
                     value) but is not registered, so it would never run: add `{f}` to the \
                     `register!` list in {}, or, if it is not a test, to `helpers: [...]` there",
                    s.file, s.file
                ));
            }
        }
        for t in &s.tests.tests {
            if let Some(other) = names.insert(t.name.as_str(), s.file) {
                problems.push(format!(
                    "two tests are named `{}` ({} and {}): rename one of the functions",
                    t.name, other, s.file
                ));
            }
        }
    }
    problems
}

/// Runs the registered tests under libtest's arguments; see the module docs.
pub fn main(suites: Vec<Suite>) -> ExitCode {
    let problems = registration_problems(&suites);
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {p}");
        }
        return ExitCode::from(101);
    }
    let mut args = Arguments::from_args();
    // One test thread: libtest-mimic then runs each test on this, the main, thread.
    args.test_threads = Some(1);
    let trials = suites
        .into_iter()
        .flat_map(|s| s.tests.tests)
        .map(|t| {
            let name = t.name.clone();
            Trial::test(name, move || guarded(&t.name, t.clean, t.run))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

/// Runs one test, then checks for leaked segments and unreaped children.
fn guarded(name: &str, clean: bool, run: Box<dyn FnOnce() + Send>) -> Result<(), Failed> {
    // SAFETY: getpid and gettid only read this process's and thread's ids.
    if unsafe { libc::gettid() != libc::getpid() } {
        return Err(format!("{name} ran off the main thread, where forks are refused").into());
    }
    let before = shm_entries();
    // SAFETY: alarm only arms a timer; its default action ends the process, which is the
    // point: a hung multi-process test must fail, not stall CI.
    unsafe { libc::alarm(WATCHDOG_SECS) };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if clean && std::env::var_os(CLEAN_ENV).is_none() { in_fresh_copy(name) } else { run() }
    }));
    // SAFETY: as above; 0 disarms the timer.
    unsafe { libc::alarm(0) };
    let mut problems = Vec::new();
    if let Err(e) = outcome {
        let msg = e
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| e.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        problems.push(format!("panicked: {msg}"));
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
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ").into()) }
}

/// Runs the test `name` alone in a fresh copy of this binary; panics unless it passed.
fn in_fresh_copy(name: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name])
        .env(CLEAN_ENV, "1")
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && text.contains("1 passed"),
        "clean run of {name} failed:\n{text}"
    );
}

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

/// The start methods a pool test runs under: the default (forkserver), and fork.
pub const POOL_METHODS: [shmpool::StartMethod; 2] =
    [shmpool::StartMethod::ForkServer, shmpool::StartMethod::Fork];

/// A pool of two workers started with `m`, for a test.
pub fn two_worker_pool(m: shmpool::StartMethod) -> shmpool::Pool {
    shmpool::Pool::builder().workers(2).start_method(m).build().unwrap()
}

/// Ends a pool test: the pool goes, and the forkserver it started is shut down (the harness
/// fails a test that leaves a child running).
pub fn close_pool(pool: shmpool::Pool, m: shmpool::StartMethod) {
    drop(pool);
    if m == shmpool::StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().expect("the forkserver shuts down cleanly");
    }
}

/// A fresh folder `$TMPDIR/shmpool-{tag}-{pid}-{name}-{m}` for one test's gate and marker
/// files (emptied first; the test removes it).
pub fn scratch_dir(tag: &str, name: &str, m: shmpool::StartMethod) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("shmpool-{tag}-{}-{name}-{m}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A task that waits (at most 20 s) until the file `gate` exists, then returns `i`: the test
/// decides when each call ends by creating its gate.
pub fn gated((gate, i): (std::path::PathBuf, u64)) -> u64 {
    let t = std::time::Instant::now();
    while !gate.exists() {
        let late = t.elapsed() >= std::time::Duration::from_secs(20);
        assert!(!late, "gate {} never opened", gate.display());
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    i
}

/// Waits (at most 10 s) until `cond` holds; fails the test naming `what` otherwise.
pub fn eventually(what: &str, cond: impl Fn() -> bool) {
    let t = std::time::Instant::now();
    while !cond() {
        let late = t.elapsed() >= std::time::Duration::from_secs(10);
        assert!(!late, "never: {what}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Serializes as `.0` byte strings of 1 MiB each (one static slice): as many bytes past a task
/// value limit as a test wants, none of them held in memory; only `Mibs(0)` (no bytes)
/// deserializes back.
#[derive(Debug, PartialEq)]
pub struct Mibs(pub usize);

impl serde::Serialize for Mibs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        struct Mib;
        impl serde::Serialize for Mib {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                static ZEROS: [u8; 1 << 20] = [0; 1 << 20];
                s.serialize_bytes(&ZEROS)
            }
        }
        let mut t = s.serialize_tuple(self.0)?;
        for _ in 0..self.0 {
            t.serialize_element(&Mib)?;
        }
        t.end()
    }
}

impl<'de> serde::Deserialize<'de> for Mibs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <() as serde::Deserialize>::deserialize(d).map(|()| Mibs(0))
    }
}

/// The longest a polling loop of the pool's polling tests may take before the test calls it
/// endless.
pub const POLL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);
/// What "promptly" allows a poll on a loaded 2-core machine.
pub const PROMPT: std::time::Duration = std::time::Duration::from_millis(1500);

/// Calls `poll` (yielding between calls) until it says over; fails the test at
/// [`POLL_DEADLINE`]; how long it took.
pub fn spin_until(what: &str, mut poll: impl FnMut() -> bool) -> std::time::Duration {
    let t = std::time::Instant::now();
    let mut polls = 0u64;
    while !poll() {
        polls += 1;
        assert!(t.elapsed() < POLL_DEADLINE, "{what} never read over ({polls} polls)");
        std::thread::yield_now();
    }
    t.elapsed()
}

/// Polls every call of `pending` only through `is_finished` (no wait, no `is_ready`) until all
/// are; fails unless the queue's looks at its workers stayed within one per 10 ms (plus the
/// first). How long it took, and how many looks it made.
pub fn poll_all_finished<R>(
    what: &str,
    q: &shmpool::pool::ApplyQueue<'_>,
    pending: &[shmpool::pool::Pending<'_, '_, R>],
) -> (std::time::Duration, u64) {
    let before = q.poll_looks();
    let took = spin_until(what, || pending.iter().all(|p| p.is_finished()));
    let looks = q.poll_looks() - before;
    let most = 2 + took.as_millis() as u64 / 10;
    assert!(looks <= most, "{what}: {looks} looks in {took:?}: not rate-limited");
    (took, looks)
}
