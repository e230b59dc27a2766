//! Attacks on what issue 9's work added, across processes: a party killed while it runs a
//! barrier's action must break the round for the others (and for a party arriving late),
//! promptly, not leave them waiting for their timeouts or forever; the Python helper given
//! hostile shapes, headers and names refuses them with its own error and leaves no segment.

use std::time::{Duration, Instant};

use std::sync::OnceLock;

use shmpool::{Barrier, Error, Pool, SharedArray, StartMethod, get_context};

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
        the_older_operations_inline_hold_against_hostile_inputs,
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

static CHUNKS_RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Panics in every chunk (counting the chunks in the caller's `static`, which only an inline
/// run reaches).
fn panics_everywhere(_: &mut [u64]) {
    CHUNKS_RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    panic!("every chunk fails");
}

/// A panic payload whose `Drop` panics again.
struct Bomb;
impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the payload's drop panics");
    }
}

fn panics_with_a_bomb(_: &mut [u64]) {
    std::panic::panic_any(Bomb);
}

/// The whole input, whatever the chunk: a radius past the array's ends is clipped.
fn window_sum(win: &[u64], _off: usize, out: &mut [u64]) {
    let s: u64 = win.iter().sum();
    out.fill(s);
}

fn chunk_sum(c: &[u64]) -> u64 {
    c.iter().map(|x| x.wrapping_mul(0x9e37_79b9_7f4a_7c15)).fold(0, u64::wrapping_add)
}

/// Issue 9, the older operations run inline, attacked: a stencil radius of `usize::MAX`, a
/// length mismatch, a map_reduce of 1,000 one-element chunks, a kernel panicking in every chunk
/// (every chunk still runs, chunk 0 is reported) or with a payload whose drop panics (an error,
/// not a dead caller), and the threshold's edge (a call of exactly `inline_threshold` bytes goes
/// to the workers); inline and pooled agree on each.
fn the_older_operations_inline_hold_against_hostile_inputs() {
    let me = std::process::id();
    let mut pool = Pool::builder().workers(2).start_method(StartMethod::Fork).build().unwrap();
    let input = SharedArray::<u64>::from_fn(1000, |i| i as u64 * 3 + 1).unwrap();
    let mut seen = Vec::new();
    for threshold in [usize::MAX, 0] {
        pool.set_inline_threshold(threshold);
        pool.set_chunk_size(Some(7));
        let mut out = SharedArray::<u64>::zeroed(1000).unwrap();
        pool.stencil(&input, &mut out, usize::MAX, window_sum).unwrap();
        let total: u64 = input.iter().sum();
        assert!(out.iter().all(|&x| x == total), "threshold {threshold}: a window was clipped");
        let short = SharedArray::<u64>::zeroed(999).unwrap();
        let e = pool.stencil(&short, &mut out, 1, window_sum);
        assert!(matches!(e, Err(Error::LengthMismatch { .. })), "{e:?}");
        let e = pool.zip(&input, &short, &mut out, |_, _, _| {});
        assert!(matches!(e, Err(Error::LengthMismatch { .. })), "{e:?}");
        pool.set_chunk_size(Some(1));
        let r = pool.map_reduce(&input, chunk_sum, u64::wrapping_add).unwrap();
        let r2 = pool.map_reduce(&input, chunk_sum, |x, y| x.rotate_left(7) ^ y).unwrap();
        seen.push((r, r2));
        pool.set_chunk_size(Some(10));
        let mut a = SharedArray::<u64>::zeroed(50).unwrap();
        CHUNKS_RUN.store(0, std::sync::atomic::Ordering::Relaxed);
        match pool.for_each_chunk(&mut a, panics_everywhere) {
            Err(Error::KernelPanicked { chunk, pid, message }) => {
                assert_eq!((pid == me), threshold > 0, "pid {pid}");
                assert!(message.contains("every chunk fails"), "{message}");
                if threshold > 0 {
                    // In the caller, in order: the first chunk is reported, all five ran.
                    assert_eq!(chunk, 0);
                    assert_eq!(CHUNKS_RUN.load(std::sync::atomic::Ordering::Relaxed), 5);
                }
            }
            other => panic!("threshold {threshold}: expected KernelPanicked, got {other:?}"),
        }
        let e = pool.for_each_chunk(&mut a, panics_with_a_bomb);
        assert!(matches!(e, Err(Error::KernelPanicked { .. })), "{e:?}");
        // The pool still works after both.
        pool.for_each_chunk(&mut a, |c| c.fill(3)).unwrap();
        assert!(a.iter().all(|&x| x == 3));
    }
    assert_eq!(seen[0], seen[1], "inline and pooled map_reduce differ");
    // The edge: strictly fewer bytes than the threshold run inline.
    pool.set_chunk_size(None);
    let mut a = SharedArray::<u32>::zeroed(1000).unwrap();
    for (threshold, inline) in [(4000, false), (4001, true)] {
        pool.set_inline_threshold(threshold);
        pool.for_each_chunk(&mut a, |c| c.fill(std::process::id())).unwrap();
        assert_eq!(a.iter().all(|&p| p == me), inline, "threshold {threshold}");
        assert!(a.iter().all(|&p| p != 0));
    }
    drop(pool);
}
