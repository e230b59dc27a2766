//! Attacks on what issue 9's work added, across processes: a party killed while it runs a
//! barrier's action must break the round for the others (and for a party arriving late),
//! promptly, not leave them waiting for their timeouts or forever; the Python helper given
//! hostile shapes, headers and names refuses them with its own error and leaves no segment.

use std::time::{Duration, Instant};

use std::sync::OnceLock;

use shmpool::{Barrier, Error, Pool, StartMethod, get_context};

use crate::harness::{Tests, register};

const METHODS: [StartMethod; 2] = [StartMethod::Fork, StartMethod::Spawn];

const ALL_METHODS: [StartMethod; 3] =
    [StartMethod::Fork, StartMethod::ForkServer, StartMethod::Spawn];

/// Far longer than the break may take: a waiter that sees it only at its timeout fails.
const PATIENCE: Duration = Duration::from_secs(20);

pub fn tests() -> Tests {
    register! {
        a_party_killed_while_running_the_action_breaks_the_round in METHODS,
        the_python_helper_refuses_hostile_shapes_and_names_and_leaves_nothing,
        an_initializer_argument_holding_a_shared_object_reaches_every_worker in ALL_METHODS,
        helpers: [stalls],
    }
}

/// An action that never finishes in time: its party is killed while it runs.
fn stalls() {
    std::thread::sleep(Duration::from_secs(60));
}

/// A party: 2 if the round broke (`BrokenBarrier`) within 5 s, 3 for anything else (printed).
fn party(b: Barrier) -> i32 {
    let start = Instant::now();
    match b.wait_timeout(PATIENCE) {
        Err(Error::BrokenBarrier) if start.elapsed() < Duration::from_secs(5) => 2,
        other => {
            eprintln!("party: {other:?} after {:?}", start.elapsed());
            3
        }
    }
}

/// Waits until `b` has `n` parties waiting, or panics after 10 s (aborting it first).
fn until_waiting(b: &Barrier, n: u32) {
    let start = Instant::now();
    while b.n_waiting() < n {
        if start.elapsed() > Duration::from_secs(10) {
            b.abort().unwrap();
            panic!("{} parties wait, not {n}", b.n_waiting());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn a_party_killed_while_running_the_action_breaks_the_round(m: StartMethod) {
    let b = Barrier::with_action(2, stalls).unwrap();
    let ctx = get_context(m);
    let mut waiter = ctx.start(party, Barrier::open_handle(&b.handle()).unwrap()).unwrap();
    until_waiting(&b, 1);
    // The second party arrives last, so it runs the action; it counts as waiting while it does.
    let mut runner = ctx.start(party, Barrier::open_handle(&b.handle()).unwrap()).unwrap();
    until_waiting(&b, 2);
    runner.kill().unwrap();
    let killed = runner.join().unwrap();
    assert_eq!(killed.signal(), Some(libc::SIGKILL), "{killed}");
    let status = waiter.join().unwrap();
    assert_eq!(status.exitcode(), 2, "the waiter did not see the round break: {status}");
    // A party arriving now (the runner's `acting` mark is still set) is told, not parked.
    let start = Instant::now();
    let late = b.wait_timeout(PATIENCE);
    assert!(matches!(late, Err(Error::BrokenBarrier)), "{late:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    b.reset().unwrap();
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.is_broken());
}

/// Run by python3 with `python/` on its path: every attack must raise `ShmpoolError` (not a
/// NumPy or OS error, not success), and no segment of this Python process may be left.
const PYTHON_ATTACKS: &str = r#"
import os, struct
import shmpool_shm as s

failures = []
had_x = os.path.exists("/dev/shm/x")  # where create("x\0y") used to land
def expect_refused(what, f):
    try:
        r = f()
    except s.ShmpoolError:
        return
    except Exception as e:
        failures.append(f"{what}: {type(e).__name__}: {e}")
        return
    failures.append(f"{what}: accepted ({r!r})")

# Shapes NumPy cannot have (a huge axis beside a zero one made the segment, then NumPy refused
# it and the segment stayed), and a dimension that is not an integer.
for shape in [(0, 2**63), (2**63, 0), (0, 2**64), (0, 2**62, 4), (2**64,), (1.5, 2)]:
    expect_refused(f"create {shape}", lambda: s.create(None, shape, "<f8"))
# A header whose shape block says (0, 2**63) for its 0 elements: refused on attach.
arr, seg = s.create(None, (0, 3), "<f4")
name = seg.name
del arr
with open("/dev/shm/" + name, "r+b") as f:
    f.seek(s.SHAPE_OFFSET)
    f.write(struct.pack("<2Q", 0, 2**63))
expect_refused("attach (0, 2**63)", lambda: s.attach(name))
seg.close()
seg.unlink()
# Names Rust refuses: a NUL (which shm_open truncates), a '/' inside, too long, '..'.
for bad in ["x\0y", "a/b", "..", "-" * 300]:
    expect_refused(f"create name {bad[:20]!r}", lambda: s.create(bad, 4, "<f8"))
    expect_refused(f"attach name {bad[:20]!r}", lambda: s.attach(bad))
left = [n for n in os.listdir("/dev/shm") if n.startswith(f"shmpool-{os.getpid()}-") or (n == "x" and not had_x)]
if left:
    failures.append(f"segments left behind: {left}")
print("\n".join(failures) or "ok")
raise SystemExit(1 if failures else 0)
"#;

fn the_python_helper_refuses_hostile_shapes_and_names_and_leaves_nothing() {
    let python = || {
        let mut c = std::process::Command::new("python3");
        c.env("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/python"));
        c
    };
    let has_numpy =
        python().args(["-c", "import numpy"]).output().is_ok_and(|o| o.status.success());
    if !has_numpy {
        // CI installs NumPy (.ci/run), so this runs there.
        eprintln!("skipped the_python_helper_refuses_hostile_shapes...: python3 has no numpy");
        return;
    }
    let out = python().args(["-c", PYTHON_ATTACKS]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    assert_eq!(text.trim(), "ok", "{err}");
}

/// The barrier the pool initializer opened, in this worker.
static OPENED: OnceLock<Barrier> = OnceLock::new();

fn keep_barrier(b: Barrier) {
    let _ = OPENED.set(b);
}

/// 1 when this worker's initializer got its barrier and can pass it (a barrier of one).
fn pass_barrier(_: u32) -> u32 {
    OPENED.get().map_or(0, |b| u32::from(b.wait_timeout(PATIENCE).is_ok()))
}

/// Python's `Pool(initializer=f, initargs=(barrier,))` with a barrier made only for the pool:
/// the argument crosses as a handle naming this process's descriptor, so it must stay open as
/// long as workers (replacements included) may start; dropped once encoded, every worker but a
/// fork failed its initializer and the pool gave up.
fn an_initializer_argument_holding_a_shared_object_reaches_every_worker(m: StartMethod) {
    let mut pool = Pool::builder()
        .workers(2)
        .start_method(m)
        .initializer_with(keep_barrier, Barrier::new(1).unwrap())
        .build()
        .unwrap();
    let got = pool.map(pass_barrier, 0..4u32, Some(1));
    drop(pool);
    if m == StartMethod::ForkServer {
        shmpool::process::shutdown_forkserver().expect("the forkserver shuts down cleanly");
    }
    assert_eq!(got.unwrap(), [1, 1, 1, 1]);
}
