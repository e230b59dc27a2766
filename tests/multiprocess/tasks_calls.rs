//! Issue 10's task calls, finished: `Pending::get_timeout` (every wait can end), the `Pod` fast
//! path chosen automatically by `map`/`apply`/`imap` (and plain results of serialized
//! arguments), per-call timeouts, and `apply_queue` calls of different functions in flight at
//! once. Each under the default start method (the forkserver) and fork. The last three are an
//! adversary's: an argument no worker can decode on the plain-result path (a typed error, as on
//! the serialized path), fire-and-forget `apply_async` (nothing kept for the queue's life), and
//! deadlines of zero, of 2^63 s and `Duration::MAX` (and a call that panics while staging).

use std::cell::Cell;
use std::time::{Duration, Instant};

use shmpool::{Error, Pool, StartMethod};

use crate::harness::{
    POOL_METHODS as METHODS, Tests, close_pool, register, two_worker_pool as pool,
};

pub fn tests() -> Tests {
    register! {
        pending_get_timeout_ends_and_a_later_get_reads_the_value in METHODS,
        maps_over_plain_numbers_take_the_pod_path in METHODS,
        starmap_and_imap_buffered_over_plain_numbers_take_the_pod_path in METHODS,
        a_call_timeout_kills_an_endless_task_and_the_pool_goes_on in METHODS,
        apply_async_of_different_functions_in_flight_in_any_order in METHODS,
        an_unreadable_argument_of_a_plain_result_task_is_a_typed_error in METHODS,
        pendings_dropped_unread_leave_no_results_behind in METHODS,
        deadlines_at_the_extremes in METHODS,
        a_worker_killed_in_an_interleaved_queue_loses_only_its_call in METHODS,
        results_that_outgrow_the_region_spill_into_few_segments in METHODS,
        a_spilled_result_outlives_its_worker_killed_for_a_later_task in METHODS,
        an_imap_buffered_batch_past_the_chunk_cap_reads_each_result_after_its_chunk in METHODS,
        the_raw_bytes_paths_at_their_edges in METHODS,
        a_chunk_half_written_by_a_killed_worker_is_retried_whole_or_failed in METHODS,
        a_batch_of_calls_goes_out_as_one_job_and_fails_call_by_call in METHODS,
        a_batch_whose_iterator_calls_the_queue_runs_every_call in METHODS,
    }
}

/// Sleeps `ms` milliseconds, then returns them.
fn sleepy(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn pending_get_timeout_ends_and_a_later_get_reads_the_value(m: StartMethod) {
    let mut pool = pool(m);
    {
        let q = pool.apply_queue();
        let slow = q.apply_async(sleepy, 400).unwrap();
        let t = Instant::now();
        match slow.get_timeout(Duration::from_millis(50)) {
            Err(Error::Timeout { what: "Pending::get_timeout", after }) => {
                assert_eq!(after, Duration::from_millis(50))
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(50) && took < Duration::from_millis(250), "{took:?}");
        // A call queued behind the running one times out too, then runs.
        let queued = q.apply_async(sleepy, 1).unwrap();
        assert!(matches!(
            queued.get_timeout(Duration::from_millis(10)),
            Err(Error::Timeout { .. })
        ));
        assert_eq!(slow.get_timeout(Duration::from_secs(5)).unwrap(), 400);
        assert_eq!(queued.get_timeout(Duration::from_secs(5)).unwrap(), 1);
        assert_eq!(slow.get().unwrap(), 400, "get again after get_timeout");
    }
    close_pool(pool, m);
}

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

fn rgb_sum(p: [u8; 3]) -> u32 {
    p.iter().map(|&c| c as u32).sum()
}

fn half(x: i32) -> f64 {
    x as f64 / 2.0
}

fn from_top(s: String) -> u64 {
    u64::MAX - s.parse::<u64>().unwrap()
}

fn digits(x: u64) -> String {
    x.to_string()
}

/// `map`, `map_async`, `apply`, `apply_async`, `imap` and `imap_unordered` over primitive
/// numbers and arrays of them go through the raw-bytes path without the `_pod` names. The
/// witness: a pool whose serialized values may take 1 byte at most, where `u64::MAX` takes 10
/// in postcard, so the serialized path would refuse every call below.
fn maps_over_plain_numbers_take_the_pod_path(m: StartMethod) {
    let mut pool = Pool::builder().workers(2).start_method(m).max_task_bytes(1).build().unwrap();
    let v: Vec<u64> = (0..10_000).map(|i| u64::MAX - i).collect();
    let want: Vec<u64> = v.iter().map(|&x| square(x)).collect();
    assert_eq!(pool.map(square, &v, None).unwrap(), want);
    assert_eq!(pool.map(square, v.clone(), Some(7)).unwrap(), want, "by value, odd chunks");
    assert_eq!(pool.map_pod(square, &v, None).unwrap(), want, "the explicit form agrees");
    assert_eq!(pool.map_async(square, &v, None).unwrap().get().unwrap(), want);
    assert_eq!(pool.apply(square, u64::MAX).unwrap(), square(u64::MAX));
    assert_eq!(pool.apply_async(square, u64::MAX).unwrap().get().unwrap(), square(u64::MAX));
    let got: Vec<u64> = pool.imap(square, &v, Some(100)).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, want);
    let mut got: Vec<(usize, u64)> =
        pool.imap_unordered(square, &v, None).unwrap().map(Result::unwrap).collect();
    got.sort();
    assert!(got.iter().enumerate().all(|(i, &(k, r))| i == k && r == want[i]));
    // Arrays and mixed plain types.
    let px: Vec<[u8; 3]> = (0..300u32).map(|i| [i as u8, 255, (i * 7) as u8]).collect();
    assert_eq!(
        pool.map(rgb_sum, &px, None).unwrap(),
        px.iter().map(|&p| rgb_sum(p)).collect::<Vec<_>>()
    );
    let ints = [i32::MIN, -3, 0, 5, i32::MAX];
    assert_eq!(pool.map(half, ints, None).unwrap(), ints.map(half));
    // Serialized arguments with plain results: the results come back as raw slots, which the
    // limit does not apply to (`u64::MAX` takes 10 bytes in postcard; "7" takes 2).
    let mut pool4 = Pool::builder().workers(2).start_method(m).max_task_bytes(4).build().unwrap();
    let texts: Vec<String> = (0..1000).map(|i| (i % 10).to_string()).collect();
    let want: Vec<u64> = texts.iter().map(|t| u64::MAX - t.parse::<u64>().unwrap()).collect();
    assert_eq!(pool4.map(from_top, &texts, None).unwrap(), want);
    let got: Vec<u64> = pool4.imap(from_top, &texts, None).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, want);
    assert!(matches!(
        pool4.map(from_top, ["12345".to_string()], None),
        Err(Error::TaskValueTooLarge { task: 0, what: "argument", .. })
    ));
    drop(pool4);
    // A result that is not plain takes the serialized path (argument included), which the
    // limit refuses.
    match pool.map(digits, [u64::MAX], None) {
        Err(Error::TaskValueTooLarge { task: 0, what: "argument", bytes: 10, limit: 1 }) => {}
        other => panic!("expected the serialized path's limit, got {other:?}"),
    }
    close_pool(pool, m);
}

fn hypot(a: f64, b: f64) -> f64 {
    (a * a + b * b).sqrt()
}

fn mul_add(a: u64, b: u64, c: u64) -> u64 {
    a.wrapping_mul(b).wrapping_add(c)
}

/// Panics on `u64::MAX - 1234`, else squares.
fn square_but_not_1234_from_top(x: u64) -> u64 {
    assert!(x != u64::MAX - 1234, "not this one");
    square(x)
}

/// `starmap` over tuples of one plain type and `imap_buffered` over plain numbers take the
/// raw-bytes path as `map` does; the witness is the same 1-byte limit, which an `f64` (8 bytes
/// in postcard) or `u64::MAX` (10) would exceed on the serialized path.
fn starmap_and_imap_buffered_over_plain_numbers_take_the_pod_path(m: StartMethod) {
    let mut pool = Pool::builder().workers(2).start_method(m).max_task_bytes(1).build().unwrap();
    let pairs: Vec<(f64, f64)> = (0..5000).map(|i| (i as f64, (i * 3) as f64 + 0.5)).collect();
    let want: Vec<f64> = pairs.iter().map(|&(a, b)| hypot(a, b)).collect();
    let hypot = hypot as fn(f64, f64) -> f64;
    assert_eq!(pool.starmap(hypot, &pairs, None).unwrap(), want);
    assert_eq!(pool.starmap_async(hypot, &pairs, Some(3)).unwrap().get().unwrap(), want);
    let triples: Vec<(u64, u64, u64)> = (0..1000).map(|i| (u64::MAX - i, i, 7)).collect();
    let want: Vec<u64> = triples.iter().map(|&(a, b, c)| mul_add(a, b, c)).collect();
    let mul_add = mul_add as fn(u64, u64, u64) -> u64;
    assert_eq!(pool.starmap(mul_add, &triples, Some(1)).unwrap(), want);
    // Serialized tuples with a plain result: raw result slots, which the limit does not apply
    // to (the arguments take 4 bytes; `u64::MAX - 2` would take 10).
    let mut pool4 = Pool::builder().workers(2).start_method(m).max_task_bytes(4).build().unwrap();
    let from_top: fn(String, u8) -> u64 = |s, k| u64::MAX - s.len() as u64 - k as u64;
    let args: Vec<(String, u8)> = (0..500).map(|i| ("ab".to_string(), (i % 100) as u8)).collect();
    let want: Vec<u64> = args.iter().map(|(s, k)| from_top(s.clone(), *k)).collect();
    assert_eq!(pool4.starmap(from_top, &args, None).unwrap(), want);
    assert_eq!(pool4.starmap_async(from_top, &args, Some(1)).unwrap().get().unwrap(), want);
    drop(pool4);
    // Mixed types may have padding: serialized, which the limit refuses.
    match pool.starmap(|a: u8, b: u64| a as u64 + b, &[(1u8, u64::MAX)], None) {
        Err(Error::TaskValueTooLarge { task: 0, what: "argument", .. }) => {}
        other => panic!("expected the serialized path's limit, got {other:?}"),
    }
    // An endless input, 8 at a time, as raw bytes.
    let endless = (0..).map(|i: u64| u64::MAX - i);
    let got: Vec<u64> = pool
        .imap_buffered(square, endless, 8)
        .unwrap()
        .take(100)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got, (0..100).map(|i| square(u64::MAX - i)).collect::<Vec<_>>());
    // A panic names its task by its index in the whole input, not in its batch (34 of the
    // third batch of 100).
    let input = (0..2000).map(|i: u64| u64::MAX - i);
    let got: Vec<_> =
        pool.imap_buffered(square_but_not_1234_from_top, input, 100).unwrap().take(1300).collect();
    assert_eq!(got.len(), 1300);
    for (i, r) in got.iter().enumerate() {
        match r {
            Ok(v) if i != 1234 => assert_eq!(*v, square(u64::MAX - i as u64), "task {i}"),
            Err(Error::KernelPanicked { message, .. }) if i == 1234 => {
                assert!(message.starts_with("task 1234: not this one"), "{message}")
            }
            other => panic!("task {i}: {other:?}"),
        }
    }
    // Dropping an endless raw-bytes stream cancels what no worker started and returns at once.
    let mut it = pool.imap_buffered(sleepy, std::iter::repeat(50u64), 8).unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 50);
    let t = Instant::now();
    drop(it);
    assert!(t.elapsed() < Duration::from_millis(100), "drop took {:?}", t.elapsed());
    assert_eq!(pool.map(square, [3u64], None).unwrap(), [9], "the pool goes on");
    close_pool(pool, m);
}

/// Spins forever when `x` is 3, else returns `x + 1`.
fn stuck_at_3(x: u32) -> u32 {
    while std::hint::black_box(x == 3) {
        std::hint::spin_loop();
    }
    x + 1
}

/// A `String` result, so the serialized path is timed too.
fn stuck_at_3_text(x: u32) -> String {
    stuck_at_3(x).to_string()
}

fn a_call_timeout_kills_an_endless_task_and_the_pool_goes_on(m: StartMethod) {
    const DEADLINE: Duration = Duration::from_millis(200);
    let mut pool = pool(m);
    let pids = pool.worker_pids();
    // `apply_timeout`, on the raw-bytes path.
    let t = Instant::now();
    match pool.apply_timeout(stuck_at_3, 3, DEADLINE) {
        Err(Error::TaskTimedOut { task: 0, pid, after }) => {
            let took = t.elapsed();
            assert!(took >= DEADLINE && took < DEADLINE + Duration::from_millis(100), "{took:?}");
            assert!(pids.contains(&pid), "{pid} is not one of {pids:?}");
            assert_eq!(after, DEADLINE);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let now = pool.worker_pids();
    assert_eq!(now.len(), 2);
    assert!(now.iter().any(|p| !pids.contains(p)), "the stuck worker was not replaced");
    assert_eq!(pool.apply_timeout(stuck_at_3, 4, DEADLINE).unwrap(), 5);
    // `map_timeout`, serialized, one task per chunk: task 3 is named, within the deadline.
    let t = Instant::now();
    match pool.map_timeout(stuck_at_3_text, 0..8u32, Some(1), DEADLINE) {
        Err(Error::TaskTimedOut { task: 3, after, .. }) => assert_eq!(after, DEADLINE),
        other => panic!("expected task 3 to time out, got {other:?}"),
    }
    let took = t.elapsed();
    assert!(took >= DEADLINE && took < DEADLINE + Duration::from_millis(100), "{took:?}");
    // The pool goes on, and the call's timeout did not stay: a task slower than it succeeds.
    let slow = |ms: u64| {
        std::thread::sleep(Duration::from_millis(ms));
        ms
    };
    assert_eq!(pool.apply(slow, 300).unwrap(), 300);
    assert_eq!(pool.map(stuck_at_3_text, [1u32, 2], None).unwrap(), ["2", "3"]);
    close_pool(pool, m);
}

fn shout(s: String) -> String {
    s.to_uppercase()
}

fn cube(x: u64) -> u64 {
    x * x * x
}

/// Panics on 7 (an error for the error callback).
fn not_seven(x: u8) -> u8 {
    assert!(x != 7, "seven");
    x
}

/// Python's `[pool.apply_async(f, (i,)) for i in range(n)]` with three functions interleaved:
/// every result alive at once, read in reverse, `get` again, each callback run once.
fn apply_async_of_different_functions_in_flight_in_any_order(m: StartMethod) {
    let mut pool = pool(m);
    {
        let q = pool.apply_queue();
        // Runs of one function (batched into one job each) and single alternating calls.
        let cubes: Vec<_> =
            (0..100u64).map(|i| q.apply_async(cube, i)).collect::<Result<_, _>>().unwrap();
        let mixed: Vec<_> = (0..60u64)
            .map(|i| {
                if i % 2 == 0 {
                    (None, Some(q.apply_async(shout, format!("call {i}")).unwrap()))
                } else {
                    (Some(q.apply_async(cube, i).unwrap()), None)
                }
            })
            .collect();
        let calls = Cell::new(0);
        let errors = Cell::new(0);
        let with_callbacks: Vec<_> = (0..10u8)
            .map(|i| {
                q.apply_async(not_seven, i)
                    .unwrap()
                    .callback(|_: &u8| calls.set(calls.get() + 1))
                    .error_callback(|_: &Error| errors.set(errors.get() + 1))
            })
            .collect();
        for (i, r) in cubes.iter().enumerate().rev() {
            assert_eq!(r.get().unwrap(), (i as u64).pow(3));
        }
        for (i, (c, s)) in mixed.iter().enumerate().rev() {
            match (c, s) {
                (Some(c), None) => assert_eq!(c.get().unwrap(), (i as u64).pow(3)),
                (None, Some(s)) => assert_eq!(s.get().unwrap(), format!("CALL {i}")),
                _ => unreachable!(),
            }
        }
        for (i, r) in with_callbacks.iter().enumerate() {
            match r.get() {
                Ok(v) => assert_eq!(v, i as u8),
                Err(Error::KernelPanicked { message, .. }) if i == 7 => {
                    assert!(message.contains("seven"), "{message}")
                }
                other => panic!("call {i}: {other:?}"),
            }
        }
        // `get` again: the value again, the error once.
        assert_eq!(cubes[3].get().unwrap(), 27);
        assert!(matches!(with_callbacks[7].get(), Err(Error::ResultUnavailable { .. })));
        assert!(with_callbacks.iter().all(|r| r.is_ready()));
        assert_eq!((calls.get(), errors.get()), (9, 1), "each callback once");
        // The brief's shape: collect, then `get` each by value.
        let rs: Vec<_> =
            (0..100u64).map(|i| q.apply_async(cube, i)).collect::<Result<_, _>>().unwrap();
        for (i, r) in rs.into_iter().enumerate() {
            assert_eq!(r.get().unwrap(), (i as u64).pow(3));
        }
        // A result dropped unread with a callback still calls back.
        let late = Cell::new(0u64);
        drop(q.apply_async(cube, 4).unwrap().callback(|v: &u64| late.set(*v)));
        assert_eq!(late.get(), 64);
    }
    assert_eq!(pool.apply(shout, "after".to_string()).unwrap(), "AFTER");
    close_pool(pool, m);
}

/// Serializes as its byte, but deserializes as a `bool`, so `Bit(2)` is an argument the parent
/// can send and no worker can read (serde impls that disagree, the case the error names).
#[derive(Debug, Clone, Copy)]
struct Bit(u8);

impl serde::Serialize for Bit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Bit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bit, D::Error> {
        <bool as serde::Deserialize>::deserialize(d).map(|b| Bit(b as u8))
    }
}

/// A plain result of a serialized argument: the raw-slot path.
fn bit_value(b: Bit) -> u64 {
    b.0 as u64 + 10
}

/// The same with a serialized result: the entry path.
fn bit_text(b: Bit) -> String {
    b.0.to_string()
}

/// The raw-slot path has no entry to carry a failed argument, so its worker fails the chunk; the
/// caller still gets `Error::TaskValue` naming the task, as the serialized path gives.
fn an_unreadable_argument_of_a_plain_result_task_is_a_typed_error(m: StartMethod) {
    let mut pool = pool(m);
    let args = [Bit(0), Bit(1), Bit(2), Bit(1)];
    let typed = |e: Result<Vec<u64>, Error>| match e {
        Err(Error::TaskValue { task: 2, what: "argument", how: "deserialized", reason }) => {
            assert!(!reason.is_empty())
        }
        other => panic!("expected task 2's argument error, got {other:?}"),
    };
    typed(pool.map(bit_value, args, Some(1)));
    typed(pool.map(bit_value, args, None));
    typed(pool.map_async(bit_value, args, Some(2)).unwrap().get());
    let items: Vec<_> = pool.imap(bit_value, args, None).unwrap().collect();
    assert!(matches!(items[..2], [Ok(10), Ok(11)]), "{items:?}");
    assert!(matches!(items[2], Err(Error::TaskValue { task: 2, what: "argument", .. })));
    assert!(matches!(items[3], Ok(11)), "{items:?}");
    // The serialized path says the same.
    match pool.map(bit_text, args, Some(1)) {
        Err(Error::TaskValue { task: 2, what: "argument", how: "deserialized", .. }) => {}
        other => panic!("{other:?}"),
    }
    // A task's own panic stays a panic.
    assert!(matches!(
        pool.map(not_seven_u64, ["7".to_string()], None),
        Err(Error::KernelPanicked { .. })
    ));
    assert_eq!(pool.map(bit_value, [Bit(1)], None).unwrap(), [11]);
    close_pool(pool, m);
}

/// Panics on "7" (a plain result of a serialized argument).
fn not_seven_u64(s: String) -> u64 {
    assert!(s != "7", "task {s}: its argument could be anything");
    s.len() as u64
}

/// Half a MiB of result (a `String`: postcard copies its bytes in one go).
fn big(i: u32) -> String {
    char::from(b'a' + (i % 26) as u8).to_string().repeat(1 << 19)
}

/// Bytes this process's allocator has handed out and not had back (not its resident memory,
/// which keeps freed pages and so hides a leak behind an earlier test's garbage).
fn heap_in_use() -> usize {
    // SAFETY: `mallinfo2` only reads the allocator's counters.
    unsafe { libc::mallinfo2() }.uordblks
}

/// Python's fire-and-forget `pool.apply_async(f, x)`, its result never asked for: 300 results of
/// half a MiB each (150 MiB) must not stay in the queue until it is dropped.
fn pendings_dropped_unread_leave_no_results_behind(m: StartMethod) {
    let mut pool = pool(m);
    {
        let q = pool.apply_queue();
        q.apply_async(big, 0).unwrap().get().unwrap();
        let before = heap_in_use();
        for i in 0..300 {
            drop(q.apply_async(big, i).unwrap());
        }
        // A later call's `get` reads every earlier batch first (they run in order).
        assert!(q.apply_async(big, 2).unwrap().get().unwrap().starts_with('c'));
        let grew = heap_in_use().saturating_sub(before);
        assert!(grew < 40 << 20, "the queue kept {} MiB of results nobody can read", grew >> 20);
        // Many calls queued behind a running one and dropped at once, interleaved with kept
        // ones: each kept call is still known to the queue (not "lost") and reads its own
        // result.
        let slow = q.apply_async(sleepy, 100).unwrap();
        let mut kept = Vec::new();
        for i in 0..20_000u64 {
            let p = q.apply_async(cube, i).unwrap();
            if i % 1000 == 999 {
                kept.push((i, p));
            }
        }
        assert_eq!(slow.get().unwrap(), 100);
        for (i, p) in kept.iter().rev() {
            assert_eq!(p.get().unwrap(), i.pow(3));
        }
    }
    close_pool(pool, m);
}

/// Zero, huge and endless deadlines: each call ends, and the pool goes on.
fn deadlines_at_the_extremes(m: StartMethod) {
    let mut pool = pool(m);
    // 2^63 s is 2^63 * 10^9 ns, a multiple of 2^64: cut to 64 bits it was a zero timeout.
    for forever in [Duration::from_secs(1 << 63), Duration::MAX, Duration::from_secs(u64::MAX)] {
        assert_eq!(pool.apply_timeout(sleepy, 30, forever).unwrap(), 30, "{forever:?}");
        assert_eq!(pool.map_timeout(sleepy, [20, 10], Some(1), forever).unwrap(), [20, 10]);
    }
    // A zero deadline: every task that is seen running is over it. The call ends either way.
    let t = Instant::now();
    match pool.map_timeout(sleepy, [50u64; 4], Some(1), Duration::ZERO) {
        Err(Error::TaskTimedOut { after: Duration::ZERO, .. }) => {}
        other => panic!("a 50 ms task under a zero deadline: {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // A call that panics while staging (its argument iterator) leaves the pool's timeout
    // (none) in place: a task slower than the call's deadline then succeeds.
    let staged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let args = (0..3u64).map(|i| if i == 2 { panic!("no third argument") } else { i });
        pool.map_timeout(sleepy, args, None, Duration::from_millis(20))
    }));
    assert!(staged.is_err());
    assert_eq!(pool.apply(sleepy, 100).unwrap(), 100);
    {
        let q = pool.apply_queue();
        let r = q.apply_async(sleepy, 100).unwrap();
        assert!(matches!(r.get_timeout(Duration::ZERO), Err(Error::Timeout { .. })));
        assert_eq!(r.get_timeout(Duration::MAX).unwrap(), 100);
        assert_eq!(r.get_timeout(Duration::ZERO).unwrap(), 100, "a finished call at once");
    }
    close_pool(pool, m);
}

/// Kills its own worker (SIGKILL) on 13, else returns `x`.
fn dies_on_13(x: u64) -> u64 {
    if x == 13 {
        // SAFETY: `kill` on this process is a plain syscall; SIGKILL ends it at once.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    x
}

/// Runs of three functions interleaved in one queue, one call killing its worker mid-run: that
/// call alone is `WorkerDied`, every other call's result is its own, each callback runs once
/// (also for calls dropped unread), and the queue and the pool go on.
fn a_worker_killed_in_an_interleaved_queue_loses_only_its_call(m: StartMethod) {
    let mut pool = pool(m);
    let pids = pool.worker_pids();
    {
        let q = pool.apply_queue();
        let (oks, errs) = (Cell::new(0), Cell::new(0));
        let mut calls = Vec::new();
        for i in 0..30u64 {
            let r = match i % 3 {
                0 => q.apply_async(dies_on_13, i + 1).map(|p| (i + 1, p)),
                1 => q.apply_async(cube, i).map(|p| (i.pow(3), p)),
                _ => q.apply_async(dies_on_13, i).map(|p| (i, p)),
            };
            let (want, p) = r.unwrap();
            let p = p
                .callback(|_: &u64| oks.set(oks.get() + 1))
                .error_callback(|_: &Error| errs.set(errs.get() + 1));
            calls.push((i, want, p));
        }
        // Read in reverse; every third dropped unread (its callback still runs, once).
        for (i, want, p) in calls.into_iter().rev() {
            if i % 5 == 0 {
                drop(p);
                continue;
            }
            match p.get() {
                Err(Error::WorkerDied { pid, .. }) if want == 13 => assert!(pids.contains(&pid)),
                Ok(v) => assert_eq!(v, want, "call {i}"),
                other => panic!("call {i}: {other:?}"),
            }
        }
        assert_eq!((oks.get(), errs.get()), (29, 1), "each callback once");
        assert_eq!(q.apply_async(cube, 3).unwrap().get().unwrap(), 27);
    }
    assert_eq!(pool.worker_pids().len(), 2);
    assert_eq!(pool.map(dies_on_13, 0..5u64, None).unwrap(), [0, 1, 2, 3, 4]);
    close_pool(pool, m);
}

fn text_of(x: u32) -> String {
    x.to_string()
}

/// 5000 bytes of text: far more than the results of `text_of` that sized the region.
fn five_k(x: u32) -> String {
    char::from(b'a' + (x % 26) as u8).to_string().repeat(5000)
}

/// Memfds open in process `pid`.
fn memfds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("/memfd:"))
        .count()
}

/// A call whose results outgrow its region (sized from a call of tiny results): 1200 chunks of
/// one 5 KB result each go to spill segments. They must not take a descriptor each in the
/// worker (a segment per chunk ran out of descriptors under the usual limit of 1024 and failed
/// the chunks), nor in this process.
fn results_that_outgrow_the_region_spill_into_few_segments(m: StartMethod) {
    let mut pool = Pool::builder().workers(1).start_method(m).build().unwrap();
    let worker = pool.worker_pids()[0];
    assert_eq!(pool.map(text_of, 0..10u32, None).unwrap().len(), 10);
    let (before, mine) = (memfds(worker), memfds(std::process::id()));
    let got = pool.map(five_k, 0..1200u32, Some(1)).unwrap();
    assert!(got.iter().enumerate().all(|(i, s)| s.len() == 5000 && *s == five_k(i as u32)));
    // The worker keeps its spills until the next job: count them now.
    let spills = memfds(worker) - before;
    assert!((1..=24).contains(&spills), "the worker holds {spills} spill segments");
    assert!(memfds(std::process::id()) <= mine + 24, "this process kept a descriptor per spill");
    // Again, through a queue and `imap`, then a call that fits.
    let got: Vec<String> =
        pool.imap(five_k, 0..300u32, None).unwrap().map(Result::unwrap).collect();
    assert_eq!(got[299], five_k(299));
    assert_eq!(pool.map(text_of, 0..3u32, None).unwrap(), ["0", "1", "2"]);
    close_pool(pool, m);
}

/// 8 KB of text for 1 (more than the region sized from tiny results holds: it spills), forever
/// for 2, a short wait and a short text otherwise.
fn spills_then_hangs(x: u32) -> String {
    match x {
        1 => "s".repeat(8 << 10),
        2 => loop {
            std::thread::sleep(Duration::from_millis(10));
        },
        _ => {
            std::thread::sleep(Duration::from_millis(100));
            x.to_string()
        }
    }
}

/// One worker spills the result of a call it finished, then is killed for a later call of the
/// same job that runs past the task timeout: the finished call still reads its value (the pool
/// took the spill segment before the kill), the hung one is `TaskTimedOut`.
fn a_spilled_result_outlives_its_worker_killed_for_a_later_task(m: StartMethod) {
    const DEADLINE: Duration = Duration::from_millis(200);
    let mut pool =
        Pool::builder().workers(1).start_method(m).task_timeout(DEADLINE).build().unwrap();
    let worker = pool.worker_pids()[0];
    // Tiny results size the region.
    assert_eq!(pool.map(spills_then_hangs, [0u32, 3], None).unwrap(), ["0", "3"]);
    {
        let q = pool.apply_queue();
        // Calls 1 and 2 wait in the queue while 0 runs, then go out together as one job.
        let first = q.apply_async(spills_then_hangs, 0).unwrap();
        let spilled = q.apply_async(spills_then_hangs, 1).unwrap();
        let hung = q.apply_async(spills_then_hangs, 2).unwrap();
        assert_eq!(first.get().unwrap(), "0");
        match hung.get() {
            Err(Error::TaskTimedOut { pid, after, .. }) => {
                assert_eq!((pid, after), (worker, DEADLINE));
            }
            other => panic!("expected the hung call to time out, got {other:?}"),
        }
        assert_eq!(spilled.get().unwrap(), "s".repeat(8 << 10), "the finished, spilled call");
    }
    assert_ne!(pool.worker_pids(), [worker], "the hung worker was not replaced");
    assert_eq!(pool.map(spills_then_hangs, [1u32], None).unwrap(), ["s".repeat(8 << 10)]);
    close_pool(pool, m);
}

fn times_three(x: u32) -> u32 {
    x.wrapping_mul(3)
}

/// A batch of more tasks than a job has chunks (2^22) runs in chunks of 2: the stream must
/// wait on the chunk that holds each task, not on the chunk of the task's own index (which
/// would read results before they are written, and wait on chunks past the job's end).
fn an_imap_buffered_batch_past_the_chunk_cap_reads_each_result_after_its_chunk(m: StartMethod) {
    const N: u32 = (1 << 22) + 1;
    let mut pool = pool(m);
    let mut seen = 0u32;
    for (i, r) in pool.imap_buffered(times_three, 0..N, N as usize).unwrap().enumerate() {
        assert_eq!(r.unwrap(), times_three(i as u32), "task {i}");
        seen += 1;
    }
    assert_eq!(seen, N);
    close_pool(pool, m);
}

fn sum4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    a as u32 + b as u32 * 3 + c as u32 * 5 + d as u32 * 7
}

fn sum4_array(p: [u8; 4]) -> u32 {
    sum4(p[0], p[1], p[2], p[3])
}

fn string_len(s: String) -> u64 {
    s.len() as u64
}

/// Panics on 0 and on 99, else adds one.
fn not_0_or_99(x: u16) -> u16 {
    assert!(x != 0 && x != 99, "not {x}");
    x + 1
}

/// A value whose serialization panics when it holds 13: the parent panics while staging.
#[derive(serde::Deserialize)]
struct Bomb(u8);

impl serde::Serialize for Bomb {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        assert!(self.0 != 13, "bomb 13 went off while serializing");
        s.serialize_u8(self.0)
    }
}

fn bomb_value(b: Bomb) -> u64 {
    b.0 as u64
}

/// An adversary's edges of the raw-bytes paths: `(u8, u8, u8, u8)` tuples (plain: `starmap`
/// reads them raw) against `[u8; 4]` arrays (plain too, through `map`), witnessed by a 1-byte
/// limit; empty inputs on every path; an argument of exactly the limit and one byte over; a
/// panic at the first and the last task of an `imap_buffered` batch; a stream dropped in the
/// middle of a batch; and a `Serialize` impl that panics while the parent stages (its reused
/// buffers are then left out, and the next calls get clean ones).
fn the_raw_bytes_paths_at_their_edges(m: StartMethod) {
    let mut pool = Pool::builder().workers(2).start_method(m).max_task_bytes(1).build().unwrap();
    let quads: Vec<(u8, u8, u8, u8)> =
        (0..3000u32).map(|i| (i as u8, (i >> 8) as u8, 255, (i * 7) as u8)).collect();
    let arrays: Vec<[u8; 4]> = quads.iter().map(|&(a, b, c, d)| [a, b, c, d]).collect();
    let want: Vec<u32> = quads.iter().map(|&(a, b, c, d)| sum4(a, b, c, d)).collect();
    let sum4 = sum4 as fn(u8, u8, u8, u8) -> u32;
    assert_eq!(pool.starmap(sum4, &quads, None).unwrap(), want);
    assert_eq!(pool.starmap(sum4, &quads, Some(7)).unwrap(), want);
    assert_eq!(pool.map(sum4_array, &arrays, None).unwrap(), want);
    // Empty inputs: no job, no results, the pool goes on.
    let none: &[(u8, u8, u8, u8)] = &[];
    assert!(pool.starmap(sum4, none, None).unwrap().is_empty());
    assert!(pool.starmap_async(sum4, none, Some(1)).unwrap().get().unwrap().is_empty());
    assert!(pool.map(sum4_array, Vec::<[u8; 4]>::new(), None).unwrap().is_empty());
    assert_eq!(pool.imap_buffered(not_0_or_99, 1..1, 8).unwrap().count(), 0);
    assert_eq!(pool.imap(not_0_or_99, Vec::<u16>::new(), None).unwrap().count(), 0);
    assert!(pool.map(string_len, Vec::<String>::new(), None).unwrap().is_empty());
    // Panics at the first and the last task of a batch (0 and 99 of batches of 50 and 100).
    // A job keeps one panic's text (the control block's one error slot): in one batch of 100,
    // the panic that came second reads as a panic whose text was not kept.
    for size in [50, 100] {
        let got: Vec<_> = pool.imap_buffered(not_0_or_99, 0..100u16, size).unwrap().collect();
        assert_eq!(got.len(), 100, "batches of {size}");
        let mut texts = 0;
        for (i, r) in got.iter().enumerate() {
            match r {
                Ok(v) => assert!(i != 0 && i != 99 && *v == i as u16 + 1, "task {i}: {v}"),
                Err(Error::KernelPanicked { message, .. }) => {
                    assert!(i == 0 || i == 99, "task {i}: {message}");
                    if message.starts_with(&format!("task {i}: not {i}")) {
                        texts += 1;
                    } else {
                        assert!(size == 100 && message.contains("only the first"), "{message}");
                    }
                }
                Err(e) => panic!("task {i}: {e:?}"),
            }
        }
        assert_eq!(texts, if size == 50 { 2 } else { 1 }, "batches of {size}");
    }
    // Dropped in the middle of its second batch: the next call reads its own results.
    let mut it = pool.imap_buffered(not_0_or_99, 1..1000u16, 64).unwrap();
    for i in 1..=70u16 {
        assert_eq!(it.next().unwrap().unwrap(), i + 1);
    }
    drop(it);
    assert_eq!(pool.map(not_0_or_99, [5u16, 6], None).unwrap(), [6, 7]);
    drop(pool);
    // An argument of exactly the limit passes; one byte more is refused, naming its task.
    let mut pool = Pool::builder().workers(2).start_method(m).max_task_bytes(4).build().unwrap();
    let args = ["abc".to_string(), "abcd".to_string()];
    assert_eq!(pool.map(string_len, &args[..1], None).unwrap(), [3]);
    match pool.map(string_len, &args, None) {
        Err(Error::TaskValueTooLarge { task: 1, what: "argument", bytes: 5, limit: 4 }) => {}
        other => panic!("expected task 1 over the limit, got {other:?}"),
    }
    // A panicking `Serialize` while staging: the caller sees the panic, the pool goes on.
    let bombs: Vec<Bomb> = (0..40).map(Bomb).collect();
    let boom = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.map(bomb_value, &bombs, None).map(|v| v.len())
    }));
    assert!(boom.is_err(), "{boom:?}");
    let fine: Vec<Bomb> = (0..40).filter(|&i| i != 13).map(Bomb).collect();
    let want: Vec<u64> = fine.iter().map(|b| b.0 as u64).collect();
    assert_eq!(pool.map(bomb_value, &fine, None).unwrap(), want);
    assert_eq!(pool.map(string_len, &args[..1], Some(1)).unwrap(), [3]);
    close_pool(pool, m);
}

/// The length of `s`; but `die:PATH` kills its own worker (SIGKILL) the first time, which it
/// remembers by creating the file PATH, and is 0 once that file exists.
pub(crate) fn len_or_die_once(s: &str) -> u64 {
    if let Some(path) = s.strip_prefix("die:") {
        if std::fs::OpenOptions::new().write(true).create_new(true).open(path).is_ok() {
            // SAFETY: `kill` on this process is a plain syscall; SIGKILL ends it at once.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        return 0;
    }
    s.len() as u64
}

/// [`len_or_die_once`] over an owned argument.
fn len_or_die_once_owned(s: String) -> u64 {
    len_or_die_once(&s)
}

/// Runs `call` (a map of [`len_or_die_once`] over its arguments in chunks of 8) over 64
/// strings whose 13th kills its worker the first time: with a retry the chunk runs again,
/// whole, and every result is the task's own; without one the call is `WorkerDied`, and the
/// pool goes on. `tag` keeps each caller's marker file apart.
pub(crate) fn assert_killed_chunk_retried_or_failed(
    m: StartMethod,
    tag: &str,
    call: fn(&mut Pool, &[String]) -> shmpool::Result<Vec<u64>>,
) {
    let marker =
        std::env::temp_dir().join(format!("shmpool-{tag}-die-once-{}-{m:?}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let mut args: Vec<String> = (0..64).map(|i| "x".repeat(i % 13)).collect();
    args[12] = format!("die:{}", marker.display());
    let want: Vec<u64> = (0..64).map(|i| if i == 12 { 0 } else { (i % 13) as u64 }).collect();
    let mut pool = Pool::builder().workers(2).start_method(m).retries(1).build().unwrap();
    assert_eq!(call(&mut pool, &args).unwrap(), want);
    assert!(marker.exists(), "the worker did die once");
    close_pool(pool, m);
    std::fs::remove_file(&marker).unwrap();
    let mut pool = Pool::builder().workers(2).start_method(m).retries(0).build().unwrap();
    match call(&mut pool, &args) {
        Err(Error::WorkerDied { .. }) => {}
        other => panic!("expected the chunk's death, got {other:?}"),
    }
    std::fs::remove_file(&marker).unwrap();
    assert_eq!(call(&mut pool, &args[..12]).unwrap(), want[..12]);
    close_pool(pool, m);
}

/// A worker killed in the middle of a chunk of plain results (raw slots, read back in one
/// copy) has written some of the chunk's slots: with a retry the chunk runs again, whole, and
/// every result is the task's own; without one the call fails naming the death, and the pool
/// goes on.
fn a_chunk_half_written_by_a_killed_worker_is_retried_whole_or_failed(m: StartMethod) {
    assert_killed_chunk_retried_or_failed(m, "owned", |pool, args| {
        pool.map(len_or_die_once_owned, args, Some(8))
    });
}

/// The system-wide monotonic clock, in nanoseconds: comparable across processes.
fn monotonic_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `clock_gettime` writes the `timespec` it is given, a valid local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Call 0 sleeps 300 ms, 13 kills its worker, 7 panics; each returns when it ended.
fn batch_call(x: u64) -> (u64, u64) {
    match x {
        0 => std::thread::sleep(Duration::from_millis(300)),
        7 => panic!("call seven panics"),
        _ => {}
    }
    (dies_on_13(x), monotonic_ns())
}

/// `ApplyQueue::apply_async_batch`: every call is queued before any goes out, so they run as
/// one job: with call 0 asleep for 300 ms in one worker, the other calls all end in the other
/// worker before it wakes (made one by one, the first call would go out alone and the rest
/// only after it). A panic and a worker's death fail their own call only; every other result
/// is its own, and the queue and the pool go on.
fn a_batch_of_calls_goes_out_as_one_job_and_fails_call_by_call(m: StartMethod) {
    let mut pool = Pool::builder().workers(2).start_method(m).retries(0).build().unwrap();
    {
        let q = pool.apply_queue();
        let pending = q.apply_async_batch(batch_call, 0..20u64).unwrap();
        let mut ends = Vec::new();
        for (i, p) in pending.iter().enumerate().rev() {
            match (i, p.get()) {
                (7, Err(Error::KernelPanicked { message, .. })) => {
                    assert!(message.contains("call seven panics"), "{message}")
                }
                (13, Err(Error::WorkerDied { .. })) => {}
                (i, Ok((x, end))) if x == i as u64 => ends.push((i, end)),
                (i, other) => panic!("call {i}: {other:?}"),
            }
        }
        let slept = ends.iter().find(|&&(i, _)| i == 0).expect("call 0 ran").1;
        for &(i, end) in ends.iter().filter(|&&(i, _)| i != 0) {
            assert!(end < slept, "call {i} ended after the sleeping call 0: two jobs, not one");
        }
        assert_eq!(q.apply_async(cube, 3).unwrap().get().unwrap(), 27);
    }
    assert_eq!(pool.worker_pids().len(), 2);
    close_pool(pool, m);
}

/// `apply_async_batch` pulls its arguments with no borrow of the queue held, so an iterator
/// that makes calls of its own on the same queue (a `RefCell` borrow panic before) has them
/// queued in order, and every call, the batch's and the iterator's, gives its own result.
fn a_batch_whose_iterator_calls_the_queue_runs_every_call(m: StartMethod) {
    let mut pool = pool(m);
    {
        let q = pool.apply_queue();
        let side = std::cell::RefCell::new(Vec::new());
        let args =
            (0..10u64).inspect(|i| side.borrow_mut().push(q.apply_async(cube, 100 + i).unwrap()));
        let pending = q.apply_async_batch(cube, args).unwrap();
        for (i, p) in pending.iter().enumerate() {
            assert_eq!(p.get().unwrap(), (i as u64).pow(3), "batch call {i}");
        }
        for (i, p) in side.borrow().iter().enumerate() {
            assert_eq!(p.get().unwrap(), (100 + i as u64).pow(3), "the iterator's call {i}");
        }
    }
    close_pool(pool, m);
}
