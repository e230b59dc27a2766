//! `Pool::map_ref`: tasks that borrow their argument in place from shared memory (`&str`,
//! `&[u8]`, `&Path`, `&[T: Pod]`) give what the owned path (`map` of a `fn(String)`) gives, on
//! hostile strings (empty, 64 KiB, non-ASCII, a million tiny ones), with plain and serialized
//! results; a panicking task and a worker killed mid-chunk fail or retry as on the owned path;
//! values past the configured limit are typed errors naming the task. Each under the default
//! start method (the forkserver) and fork.

use std::path::{Path, PathBuf};

use shmpool::{Error, Pool, StartMethod};

use crate::harness::{
    POOL_METHODS as METHODS, Tests, close_pool, register, two_worker_pool as pool,
};
use crate::tasks_calls::{assert_killed_chunk_retried_or_failed, len_or_die_once};

pub fn tests() -> Tests {
    register! {
        borrowed_strings_give_what_owned_ones_give in METHODS,
        a_million_tiny_strings_give_what_owned_ones_give in METHODS,
        bytes_paths_and_pod_slices_are_read_in_place in METHODS,
        a_panicking_task_names_its_task_and_the_pool_goes_on in METHODS,
        a_worker_killed_mid_chunk_is_retried_or_worker_died in METHODS,
        values_past_the_limit_are_typed_errors_naming_the_task in METHODS,
        a_second_call_waits_for_a_forgotten_one_before_rewriting_the_region in METHODS,
        as_refs_that_change_between_passes_are_refused_or_read_as_written in METHODS,
        borrowed_owned_and_pod_calls_mixed_give_their_own_results in METHODS,
        a_task_past_the_timeout_is_replaced_mid_chunk_and_the_next_call_reads_its_own in METHODS,
        streamed_arguments_survive_a_late_growth_a_panic_and_a_killed_worker in METHODS,
    }
}

/// FNV-1a of the bytes and the length: a result that depends on every byte, so a string read
/// from the wrong place, cut short or shifted gives another value.
pub(crate) fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64 ^ b.len() as u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100_0000_01b3)
    })
}

pub(crate) fn fnv_str(s: &str) -> u64 {
    fnv(s.as_bytes())
}

pub(crate) fn fnv_owned(s: String) -> u64 {
    fnv(s.as_bytes())
}

fn reversed(s: &str) -> String {
    s.chars().rev().collect()
}

fn reversed_owned(s: String) -> String {
    s.chars().rev().collect()
}

/// Strings a port meets: empty, one byte, 64 KiB, multi-byte characters (two, three and four
/// bytes, so a chunk's bytes end inside no character), a NUL, control characters.
fn hostile() -> Vec<String> {
    let mut v = vec![
        String::new(),
        "a".into(),
        "x".repeat(64 << 10),
        "héllo wörld".into(),
        "日本語のファイル名.csv".into(),
        "🦀🦀 crab".into(),
        "\0nul\0".into(),
        "\t\r\n\u{7f}".into(),
        "é".repeat(5000),
    ];
    for i in 0..300 {
        v.push(match i % 4 {
            0 => String::new(),
            1 => format!("/data/file-{i}.csv"),
            2 => "ß".repeat(i % 17),
            _ => "🦀".repeat(i % 5),
        });
    }
    v
}

fn borrowed_strings_give_what_owned_ones_give(m: StartMethod) {
    let mut pool = pool(m);
    let args = hostile();
    let owned = pool.map(fnv_owned, &args, None).unwrap();
    assert_eq!(owned, args.iter().map(|s| fnv_str(s)).collect::<Vec<_>>());
    // Plain results (raw slots), every chunk size from one task per chunk to one chunk.
    for cs in [None, Some(1), Some(7), Some(args.len())] {
        assert_eq!(pool.map_ref(fnv_str, &args, cs).unwrap(), owned, "chunksize {cs:?}");
    }
    // Serialized results, and `&str` arguments instead of `String`s.
    let want = pool.map(reversed_owned, &args, None).unwrap();
    assert_eq!(pool.map_ref(reversed, &args, None).unwrap(), want);
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(pool.map_ref(reversed, &strs, Some(3)).unwrap(), want);
    let mut r = pool.map_ref_async(fnv_str, &strs, None).unwrap();
    assert_eq!(r.get().unwrap(), owned);
    drop(r);
    // No arguments: no tasks.
    assert!(pool.map_ref(fnv_str, &[] as &[String], None).unwrap().is_empty());
    close_pool(pool, m);
}

fn a_million_tiny_strings_give_what_owned_ones_give(m: StartMethod) {
    let mut pool = pool(m);
    let args: Vec<String> =
        (0..1_000_000u32).map(|i| ["", "a", "é", "ab", "🦀"][(i % 5) as usize].into()).collect();
    let owned = pool.map(fnv_owned, &args, None).unwrap();
    assert_eq!(owned, args.iter().map(|s| fnv_str(s)).collect::<Vec<_>>());
    assert_eq!(pool.map_ref(fnv_str, &args, None).unwrap(), owned);
    close_pool(pool, m);
}

fn path_len(p: &Path) -> usize {
    p.as_os_str().len()
}

fn bytes_sum(b: &[u8]) -> u64 {
    b.iter().map(|&x| x as u64).sum()
}

fn f64_sum(v: &[f64]) -> f64 {
    v.iter().sum()
}

fn u16_max(v: &[u16]) -> Option<u16> {
    v.iter().copied().max()
}

fn bytes_paths_and_pod_slices_are_read_in_place(m: StartMethod) {
    let mut pool = pool(m);
    let paths: Vec<PathBuf> =
        ["/tmp/a.txt", "", "relative/ü.csv"].iter().map(PathBuf::from).collect();
    assert_eq!(pool.map_ref(path_len, &paths, None).unwrap(), [10, 0, 15]);
    // A `String` is `AsRef<Path>` too.
    assert_eq!(pool.map_ref(path_len, &["abc".to_string()], None).unwrap(), [3]);
    // Bytes that are not UTF-8 travel as bytes.
    let blobs = vec![vec![0xffu8, 0xfe], vec![], vec![1; 70_000]];
    assert_eq!(pool.map_ref(bytes_sum, &blobs, Some(1)).unwrap(), [509, 0, 70_000]);
    // `Pod` slices of odd lengths after one another stay aligned (a `u16` slice of 3 values is
    // 6 bytes; an `f64` slice needs 8-byte alignment in the worker).
    let rows: Vec<Vec<f64>> =
        (0..100).map(|i| (0..i % 7).map(|x| x as f64 * 0.5).collect()).collect();
    let want: Vec<f64> = rows.iter().map(|r| f64_sum(r)).collect();
    assert_eq!(pool.map_ref(f64_sum, &rows, Some(3)).unwrap(), want);
    let shorts: Vec<Vec<u16>> = (0..50u16).map(|i| (0..i % 4).map(|x| x * i).collect()).collect();
    let want: Vec<Option<u16>> = shorts.iter().map(|r| u16_max(r)).collect();
    assert_eq!(pool.map_ref(u16_max, &shorts, None).unwrap(), want);
    close_pool(pool, m);
}

fn len_or_panic_at_seven(s: &str) -> usize {
    assert!(s != "seven", "refusing {s}");
    s.len()
}

fn a_panicking_task_names_its_task_and_the_pool_goes_on(m: StartMethod) {
    let mut pool = pool(m);
    let mut args: Vec<String> = (0..40).map(|i| format!("item {i}")).collect();
    args[7] = "seven".into();
    match pool.map_ref(len_or_panic_at_seven, &args, Some(4)) {
        Err(Error::KernelPanicked { message, .. }) => {
            assert!(message.contains("task 7") && message.contains("refusing seven"), "{message}")
        }
        other => panic!("expected task 7's panic, got {other:?}"),
    }
    args[7] = "fine".into();
    let want: Vec<usize> = args.iter().map(String::len).collect();
    assert_eq!(pool.map_ref(len_or_panic_at_seven, &args, Some(4)).unwrap(), want);
    // A caller's `AsRef` that panics while the region is being written (its second call):
    // the panic is the caller's, nothing is published, and the next call runs.
    struct Flaky(std::cell::Cell<u32>);
    impl AsRef<str> for Flaky {
        fn as_ref(&self) -> &str {
            let calls = self.0.get() + 1;
            self.0.set(calls);
            assert!(calls < 2, "flaky AsRef");
            "flaky"
        }
    }
    let flaky = [Flaky(Default::default()), Flaky(Default::default())];
    let staged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.map_ref(len_or_panic_at_seven, &flaky, None)
    }));
    assert!(staged.is_err(), "the AsRef's panic reaches the caller");
    assert_eq!(pool.map_ref(len_or_panic_at_seven, &args, Some(4)).unwrap(), want);
    close_pool(pool, m);
}

/// As `tasks_calls`'s test of the owned path: with a retry the chunk runs again whole and
/// every result is the task's own; without one the call is `WorkerDied`, and the pool goes on.
fn a_worker_killed_mid_chunk_is_retried_or_worker_died(m: StartMethod) {
    assert_killed_chunk_retried_or_failed(m, "ref", |pool, args| {
        pool.map_ref(len_or_die_once, args, Some(8))
    });
}

fn repeated(s: &str) -> String {
    s.repeat(4)
}

fn values_past_the_limit_are_typed_errors_naming_the_task(m: StartMethod) {
    let mut pool = Pool::builder().workers(2).start_method(m).max_task_bytes(16).build().unwrap();
    let args = vec!["short".to_string(), "x".repeat(16), "y".repeat(17), "z".into()];
    // An argument over the limit is refused before anything is staged.
    match pool.map_ref(fnv_str, &args, None) {
        Err(Error::TaskValueTooLarge { task: 2, what: "argument", bytes: 17, limit: 16 }) => {}
        other => panic!("expected task 2's argument to be too large, got {other:?}"),
    }
    // `map` of a `fn(String)` counts the encoded size (a length byte): 15 bytes fit, 16 not.
    let at = ["y".repeat(15), "y".repeat(16)];
    assert_eq!(pool.map(fnv_owned, &at[..1], None).unwrap(), [fnv_str(&at[0])]);
    match pool.map(fnv_owned, &at, None) {
        Err(Error::TaskValueTooLarge { task: 1, what: "argument", bytes: 17, limit: 16 }) => {}
        other => panic!("expected task 1's argument to be too large, got {other:?}"),
    }
    // A result over the limit (serialized: a length byte and 20 bytes) names its task; the
    // others still run.
    let ok = ["ab".to_string(), "abcde".into(), "a".into()];
    match pool.map_ref(repeated, &ok, Some(1)) {
        Err(Error::TaskValueTooLarge { task: 1, what: "result", bytes: 21, limit: 16 }) => {}
        other => panic!("expected task 1's result to be too large, got {other:?}"),
    }
    assert_eq!(pool.map_ref(repeated, &ok[..1], None).unwrap(), ["abababab"]);
    // A `Pod` type the region cannot align is refused with the fix.
    #[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
    #[repr(C, align(16))]
    struct Wide([u8; 16]);
    fn first(w: &[Wide]) -> u8 {
        w.first().map_or(0, |w| w.0[0])
    }
    match pool.map_ref(first, &[vec![Wide([1; 16])]], None) {
        Err(Error::InvalidArgument { reason, .. }) => assert!(reason.contains("aligned to 16")),
        other => panic!("expected the alignment to be refused, got {other:?}"),
    }
    close_pool(pool, m);
}

/// `MARKER|payload`: hashes the payload, sleeps, hashes it again; a change means the parent
/// rewrote the region under a running task, which it records by creating MARKER.
fn hash_twice_or_mark(s: &str) -> u64 {
    let (marker, payload) = s.split_once('|').unwrap_or(("", s));
    let before = fnv_str(payload);
    std::thread::sleep(std::time::Duration::from_millis(15));
    if fnv_str(payload) != before || payload.bytes().any(|b| b != payload.as_bytes()[0]) {
        let _ = std::fs::write(marker, payload);
    }
    before
}

/// A caller may `mem::forget` a `map_ref_async` (safe), which ends its borrow of the pool
/// while workers still read the first job's region. The next call must wait for them before
/// writing its own arguments there: a worker never sees its `&str` change under it.
fn a_second_call_waits_for_a_forgotten_one_before_rewriting_the_region(m: StartMethod) {
    let marker =
        std::env::temp_dir().join(format!("shmpool-ref-rewrite-{}-{m:?}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let mut pool = pool(m);
    let with = |c: char| -> Vec<String> {
        (0..24).map(|_| format!("{}|{}", marker.display(), c.to_string().repeat(200))).collect()
    };
    let (first, second) = (with('a'), with('b'));
    let running = pool.map_ref_async(hash_twice_or_mark, &first, Some(1)).unwrap();
    // Workers are mid-task (24 tasks of 15 ms on two workers) when the next call stages.
    std::thread::sleep(std::time::Duration::from_millis(40));
    std::mem::forget(running);
    let want: Vec<u64> = second.iter().map(|s| fnv_str(s.split_once('|').unwrap().1)).collect();
    assert_eq!(pool.map_ref(hash_twice_or_mark, &second, Some(1)).unwrap(), want);
    // The owned path reuses the same region: the same must hold after a forgotten map_ref.
    let running = pool.map_ref_async(hash_twice_or_mark, &first, Some(1)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(40));
    std::mem::forget(running);
    let owned = |s: String| hash_twice_or_mark(&s);
    assert_eq!(pool.map(owned as fn(String) -> u64, &second, Some(1)).unwrap(), want);
    close_pool(pool, m);
    assert!(!marker.exists(), "a worker saw its argument rewritten mid-task");
}

/// An `AsRef` (or `Borrow<String>`) that returns a longer value when the region is written
/// than when it was measured is refused before a byte is published; one that returns a
/// shorter value is read as written (never past it, never the measured one's tail); one that
/// calls back into the pool staging it panics on the cell it must go through.
fn as_refs_that_change_between_passes_are_refused_or_read_as_written(m: StartMethod) {
    use std::cell::Cell;
    let mut pool = pool(m);
    struct Grows(Cell<usize>);
    impl AsRef<str> for Grows {
        fn as_ref(&self) -> &str {
            let k = self.0.replace(self.0.get() + 40);
            "g".repeat(k).leak() // a few bytes, leaked: the test's only
        }
    }
    let grows = [Grows(Cell::new(1)), Grows(Cell::new(1))];
    match pool.map_ref(fnv_str, &grows, None) {
        Err(Error::InvalidArgument { reason, .. }) => assert!(reason.contains("grew"), "{reason}"),
        other => panic!("expected the growth to be refused, got {other:?}"),
    }
    struct Shrinks(Cell<bool>);
    impl AsRef<str> for Shrinks {
        fn as_ref(&self) -> &str {
            if self.0.replace(true) { "é" } else { "a much longer string at first" }
        }
    }
    let shrinks: Vec<Shrinks> = (0..30).map(|_| Shrinks(Cell::new(false))).collect();
    assert_eq!(pool.map_ref(fnv_str, &shrinks, Some(4)).unwrap(), vec![fnv_str("é"); 30]);
    // `map` of a `fn(String)` measures through `Borrow<String>`, which can lie the same way.
    struct Lying(Cell<u32>, [String; 2]);
    impl std::borrow::Borrow<String> for Lying {
        fn borrow(&self) -> &String {
            let k = self.0.replace(1);
            &self.1[k as usize]
        }
    }
    let lying = || Lying(Cell::new(0), ["ab".into(), "x".repeat(50)]);
    match pool.map(fnv_owned, [lying(), lying()], None) {
        Err(Error::InvalidArgument { reason, .. }) => assert!(reason.contains("grew"), "{reason}"),
        other => panic!("expected the growth to be refused, got {other:?}"),
    }
    let back = |k: usize| Lying(Cell::new(0), ["x".repeat(50), ["é", "ab"][k].to_string()]);
    assert_eq!(
        pool.map(fnv_owned, [back(0), back(1)], None).unwrap(),
        [fnv_str("é"), fnv_str("ab")]
    );
    assert_eq!(pool.map_ref(fnv_str, &["ok"], None).unwrap(), [fnv_str("ok")]);
    // Reentrancy: an `AsRef` can reach the pool that stages it only through a cell (`map_ref`
    // holds it mutably), whose borrow panics; the panic is the caller's and the pool goes on.
    let cell = std::cell::RefCell::new(pool);
    struct Reenters<'a>(&'a std::cell::RefCell<Pool>);
    impl AsRef<str> for Reenters<'_> {
        fn as_ref(&self) -> &str {
            let inner = self.0.borrow_mut().map_ref(fnv_str, &["inner"], None);
            assert!(inner.is_ok());
            "outer"
        }
    }
    let reentered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cell.borrow_mut().map_ref(fnv_str, &[Reenters(&cell)], None)
    }));
    assert!(reentered.is_err(), "the cell's borrow panics");
    let mut pool = cell.into_inner();
    assert_eq!(pool.map_ref(fnv_str, &["ok"], None).unwrap(), [fnv_str("ok")]);
    close_pool(pool, m);
}

fn is_long(s: &str) -> bool {
    s.len() > 3
}

fn wide_sum(v: &[u64]) -> u128 {
    v.iter().map(|&x| x as u128).sum::<u128>() << 64
}

fn reversed_f64(v: &[f64]) -> Vec<f64> {
    v.iter().rev().copied().collect()
}

fn double(x: u64) -> u64 {
    x * 2
}

/// Calls of every path, one after another on one pool, small (the scratch area) and large
/// (the arena), each giving its own results: the region of one call never shows in another.
fn borrowed_owned_and_pod_calls_mixed_give_their_own_results(m: StartMethod) {
    let mut pool = pool(m);
    for round in 0..3usize {
        let count = [10, 20_000, 7][round];
        let strs: Vec<String> = (0..count).map(|i| "é".repeat((i + round) % 9)).collect();
        let want: Vec<u64> = strs.iter().map(|s| fnv_str(s)).collect();
        assert_eq!(pool.map_ref(fnv_str, &strs, None).unwrap(), want);
        assert_eq!(pool.map(fnv_owned, &strs, None).unwrap(), want);
        // The streaming path still serializes (`task_serial_plain`): the same values.
        let streamed: Vec<u64> =
            pool.imap(fnv_owned, &strs, Some(5)).unwrap().map(Result::unwrap).collect();
        assert_eq!(streamed, want);
        let nums: Vec<u64> = (0..count as u64).map(|i| i + round as u64).collect();
        let doubled: Vec<u64> = nums.iter().map(|&x| double(x)).collect();
        assert_eq!(pool.map(double, &nums, None).unwrap(), doubled);
        let longs: Vec<bool> = strs.iter().map(|s| is_long(s)).collect();
        assert_eq!(pool.map_ref(is_long, &strs, Some(3)).unwrap(), longs);
        let rows: Vec<Vec<u64>> = (0..count).map(|i| vec![u64::MAX; i % 4]).collect();
        let sums: Vec<u128> = rows.iter().map(|r| wide_sum(r)).collect();
        assert_eq!(pool.map_ref(wide_sum, &rows, None).unwrap(), sums);
        // `[f64]` through the serialized-result path (`Ref`), values of 0-3 after one another.
        let floats: Vec<Vec<f64>> = (0..count).map(|i| vec![i as f64 * 0.25; i % 4]).collect();
        assert_eq!(pool.map_ref(reversed_f64, &floats, Some(2)).unwrap(), {
            floats.iter().map(|v| reversed_f64(v)).collect::<Vec<_>>()
        });
        assert_eq!(pool.map_ref(fnv_str, &strs, Some(1)).unwrap(), want);
    }
    close_pool(pool, m);
}

/// The length of `s`, but `sleep` sleeps for seconds (past any test's task timeout).
fn len_or_sleep(s: &str) -> u64 {
    if s == "sleep" {
        std::thread::sleep(std::time::Duration::from_secs(5));
    }
    fnv_str(s)
}

/// A task past the task timeout: its worker is killed mid-chunk (it holds a borrow of the
/// region) and replaced; the call is `TaskTimedOut` naming the task, and the next call, whose
/// arguments are staged where the killed worker was reading, gives its own results.
fn a_task_past_the_timeout_is_replaced_mid_chunk_and_the_next_call_reads_its_own(m: StartMethod) {
    let timeout = std::time::Duration::from_millis(300);
    let mut pool =
        Pool::builder().workers(2).start_method(m).task_timeout(timeout).build().unwrap();
    let mut args: Vec<String> = (0..16).map(|i| "é".repeat(i)).collect();
    args[5] = "sleep".into();
    match pool.map_ref(len_or_sleep, &args, Some(4)) {
        Err(Error::TaskTimedOut { task: 5, .. }) => {}
        other => panic!("expected task 5 to time out, got {other:?}"),
    }
    args[5] = "awake".into();
    let want: Vec<u64> = args.iter().map(|s| fnv_str(s)).collect();
    assert_eq!(pool.map_ref(len_or_sleep, &args, Some(4)).unwrap(), want);
    assert_eq!(pool.map(fnv_owned, &args, Some(3)).unwrap(), want);
    close_pool(pool, m);
}

/// An `AsRef` that returns its string when measured and, when written, a longer one or a
/// panic: in a call of many chunks whose arguments are written while workers run the first
/// chunks, it fails a late chunk after earlier ones were claimed.
struct Late {
    s: String,
    calls: std::cell::Cell<u32>,
    grow: bool,
    panic: bool,
}

impl AsRef<str> for Late {
    fn as_ref(&self) -> &str {
        let written = self.calls.replace(self.calls.get() + 1) > 0;
        if written && self.panic {
            panic!("the AsRef panicked while its chunk was written");
        }
        if written && self.grow {
            "a value much longer than the one that was measured"
        } else {
            &self.s
        }
    }
}

/// Over 64 KiB of arguments in 20 chunks, `map_ref` and `map` of a `fn(String)` publish the job
/// first and write the arguments chunk by chunk as workers run the first ones
/// (`Pool::launch_writing`). An `AsRef` that grows or panics in a late chunk, after earlier
/// chunks were written and claimable, is refused (or unwinds to the caller) and promptly: the
/// chunks never written are cancelled, not waited for, and the pool goes on with the next
/// call's own results. A worker killed in the first chunk while the parent may still be
/// writing is replaced and its chunk retried.
fn streamed_arguments_survive_a_late_growth_a_panic_and_a_killed_worker(m: StartMethod) {
    use std::time::{Duration, Instant};
    let names: Vec<String> = (0..20_000).map(|i| format!("/data/file-{i}.csv")).collect();
    let want: Vec<u64> = names.iter().map(|s| fnv_str(s)).collect();
    let mut pool = Pool::builder().workers(2).start_method(m).retries(1).build().unwrap();
    assert_eq!(pool.map_ref(fnv_str, &names, Some(1000)).unwrap(), want);
    assert_eq!(pool.map(fnv_owned, &names, Some(1000)).unwrap(), want);
    let late = |grow_at: usize, panic: bool| -> Vec<Late> {
        let late = |(i, s): (usize, &String)| Late {
            s: s.clone(),
            calls: std::cell::Cell::new(0),
            grow: i == grow_at && !panic,
            panic: i == grow_at && panic,
        };
        names.iter().enumerate().map(late).collect()
    };
    let t0 = Instant::now();
    match pool.map_ref(fnv_str, &late(15_500, false), Some(1000)) {
        Err(Error::InvalidArgument { reason, .. }) => assert!(reason.contains("grew"), "{reason}"),
        other => panic!("expected the late growth to be refused, got {other:?}"),
    }
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.map_ref(fnv_str, &late(17_250, true), Some(1000))
    }));
    let payload = panicked.expect_err("the AsRef's panic reaches the caller");
    let text = payload.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(text.contains("while its chunk was written"), "{text:?}");
    assert!(t0.elapsed() < Duration::from_secs(5), "cancelled promptly: {:?}", t0.elapsed());
    assert_eq!(pool.map_ref(fnv_str, &names, Some(1000)).unwrap(), want);
    // A worker dies in chunk 0 (task 5), most likely while the parent writes later chunks.
    let marker = std::env::temp_dir()
        .join(format!("shmpool-streamed-die-once-{}-{m:?}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let mut dying = names.clone();
    dying[5] = format!("die:{}", marker.display());
    let lens: Vec<u64> =
        dying.iter().enumerate().map(|(i, s)| if i == 5 { 0 } else { s.len() as u64 }).collect();
    assert_eq!(pool.map_ref(len_or_die_once, &dying, Some(1000)).unwrap(), lens);
    assert!(marker.exists(), "the worker did die once");
    std::fs::remove_file(&marker).unwrap();
    assert_eq!(pool.map_ref(fnv_str, &names, None).unwrap(), want);
    close_pool(pool, m);
}
