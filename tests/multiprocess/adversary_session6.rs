//! Adversary pass over "task values over `max_task_bytes` are counted, not stored" (commit
//! 8c9f2c5): values exactly at, one byte under and one byte over the limit in every call shape
//! (arguments and results), limits of 1 and at a varint boundary, a value whose serialization
//! fails after it passed the limit, an over-limit result among others of its chunk, results at
//! the limit that spill past their region, and `map_ref`'s borrowed strings against the same
//! limit as `map`'s serialized ones. Each under the forkserver and fork.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize, Serializer};
use shmpool::{Error, Pool, Result, StartMethod};

use crate::harness::{Mibs, POOL_METHODS as METHODS, Tests, close_pool, register};

pub fn tests() -> Tests {
    register! {
        every_call_shape_takes_an_argument_at_the_limit_and_refuses_one_byte_over in METHODS,
        every_call_shape_takes_a_result_at_the_limit_and_refuses_one_byte_over in METHODS,
        a_serialization_that_fails_past_the_limit_is_a_serialization_error in METHODS,
        an_over_limit_result_leaves_the_rest_of_its_chunk_whole in METHODS,
        results_at_the_limit_that_spill_come_back_whole in METHODS,
        an_over_limit_result_in_a_spilled_chunk_is_too_large_not_unreadable in METHODS,
        map_ref_counts_raw_bytes_where_map_counts_postcard_bytes in METHODS,
        limits_past_u32_and_up_to_usize_max_take_ordinary_values in METHODS,
    }
}

/// The limits tried: the smallest the builder takes, one where a string's length prefix grows
/// from one byte to two right at the limit, and an ordinary one.
const LIMITS: [usize; 4] = [1, 129, 130, 1000];

/// Postcard's size of a string (or byte vector) of `n` bytes: a varint length, then the bytes.
fn ser_len(n: usize) -> usize {
    let mut v = n;
    let mut prefix = 1;
    while v >= 0x80 {
        v >>= 7;
        prefix += 1;
    }
    n + prefix
}

/// The longest string whose serialized size is at most `limit`.
fn longest_within(limit: usize) -> usize {
    (0..=limit).rev().find(|&n| ser_len(n) <= limit).expect("the empty string fits a limit of 1")
}

fn pool_with_limit(m: StartMethod, limit: usize) -> Pool {
    Pool::builder().workers(2).start_method(m).max_task_bytes(limit).build().unwrap()
}

/// Checks one shape at `limit`: `call(n)` runs it with a value of `n` bytes of content as task
/// `task` and returns the length the task saw or made. At the longest fitting value and one
/// under it the call succeeds with that length; one byte longer it is
/// `TaskValueTooLarge { task, what, bytes: its exact serialized size, limit }`.
fn check_shape(
    shape: &str,
    limit: usize,
    task: usize,
    what: &str,
    call: impl FnMut(usize) -> Result<usize>,
) {
    check_shape_counted(shape, limit, task, what, ser_len, call)
}

/// [`check_shape`] for a shape that counts a value of `n` bytes as `size(n)`.
fn check_shape_counted(
    shape: &str,
    limit: usize,
    task: usize,
    what: &str,
    size: fn(usize) -> usize,
    mut call: impl FnMut(usize) -> Result<usize>,
) {
    let at = (0..=limit).rev().find(|&n| size(n) <= limit).unwrap();
    for n in [at.checked_sub(1), Some(at)].into_iter().flatten() {
        match call(n) {
            Ok(got) => assert_eq!(got, n, "{shape}, limit {limit}: value of {n}"),
            Err(e) => panic!("{shape}, limit {limit}: {n} bytes ({}) refused: {e:?}", size(n)),
        }
    }
    let over = at + 1;
    match call(over) {
        Err(Error::TaskValueTooLarge { task: t, what: w, bytes, limit: l }) => {
            assert_eq!(
                (t, w, bytes, l),
                (task, what, size(over), limit),
                "{shape}, limit {limit}: value of {over}"
            );
        }
        other => panic!("{shape}, limit {limit}: expected {over} bytes refused, got {other:?}"),
    }
}

fn len_of(s: String) -> usize {
    s.len()
}

fn try_len_of(s: String) -> std::result::Result<usize, String> {
    Ok(s.len())
}

fn first(r: Result<Vec<usize>>) -> Result<usize> {
    r.map(|v| v[1])
}

fn every_call_shape_takes_an_argument_at_the_limit_and_refuses_one_byte_over(m: StartMethod) {
    let t = Instant::now();
    for limit in LIMITS {
        let mut pool = pool_with_limit(m, limit);
        let two = |n: usize| [String::new(), "a".repeat(n)];
        check_shape("map", limit, 1, "argument", |n| first(pool.map(len_of, two(n), None)));
        check_shape("map chunk 1", limit, 1, "argument", |n| {
            first(pool.map(len_of, two(n), Some(1)))
        });
        check_shape("map_async", limit, 1, "argument", |n| {
            first(pool.map_async(len_of, two(n), None).and_then(|mut r| r.get()))
        });
        check_shape("try_map", limit, 1, "argument", |n| {
            first(pool.try_map(try_len_of, two(n), None))
        });
        check_shape("apply", limit, 0, "argument", |n| pool.apply(len_of, "a".repeat(n)));
        check_shape("try_apply", limit, 0, "argument", |n| {
            pool.try_apply(try_len_of, "a".repeat(n))
        });
        check_shape("apply_async", limit, 0, "argument", |n| {
            pool.apply_async(len_of, "a".repeat(n)).and_then(|mut r| r.get())
        });
        check_shape("imap", limit, 1, "argument", |n| {
            let got: Result<Vec<usize>> = pool.imap(len_of, two(n), None)?.collect();
            first(got)
        });
        check_shape("imap_unordered", limit, 1, "argument", |n| {
            let mut got: Vec<(usize, usize)> =
                pool.imap_unordered(len_of, two(n), None)?.collect::<Result<_>>()?;
            got.sort();
            Ok(got[1].1)
        });
        check_shape("imap_buffered", limit, 1, "argument", |n| {
            let got: Result<Vec<usize>> = pool.imap_buffered(len_of, two(n), 1)?.collect();
            first(got)
        });
        // `map_ref` counts a borrowed value's raw bytes, not its postcard size (see
        // `map_ref_counts_raw_bytes_where_map_counts_postcard_bytes`).
        check_shape_counted(
            "map_ref",
            limit,
            1,
            "argument",
            |n| n,
            |n| first(pool.map_ref(|s: &str| s.len(), &two(n), None)),
        );
        check_shape("apply_queue", limit, 0, "argument", |n| {
            let q = pool.apply_queue();
            q.apply_async(len_of, "a".repeat(n))?.get()
        });
        check_shape("apply_async_batch", limit, 1, "argument", |n| {
            let q = pool.apply_queue();
            let p = q.apply_async_batch(len_of, two(n))?;
            assert_eq!(p[0].get()?, 0);
            p[1].get()
        });
        // A starmap argument is its whole tuple: the string and a one-byte number.
        if limit > 1 {
            check_shape("starmap", limit - 1, 1, "argument", |n| {
                let args = [(String::new(), 0u8), ("a".repeat(n), 0u8)];
                let star = pool.starmap(|s: String, _: u8| s.len(), &args, None);
                star.map(|v| v[1]).map_err(|e| match e {
                    // The tuple's size, seen against the string's limit.
                    Error::TaskValueTooLarge { task, what, bytes, limit } => {
                        Error::TaskValueTooLarge { task, what, bytes: bytes - 1, limit: limit - 1 }
                    }
                    e => e,
                })
            });
        }
        // Still serving after every refusal.
        assert_eq!(pool.map(len_of, [String::new()], None).unwrap(), [0]);
        close_pool(pool, m);
    }
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
}

fn string_of(n: usize) -> String {
    "y".repeat(n)
}

fn try_string_of(n: usize) -> std::result::Result<String, String> {
    Ok("y".repeat(n))
}

fn every_call_shape_takes_a_result_at_the_limit_and_refuses_one_byte_over(m: StartMethod) {
    for limit in LIMITS {
        let mut pool = pool_with_limit(m, limit);
        let lens = |r: Result<Vec<String>>| r.map(|v| v[1].len());
        check_shape("map", limit, 1, "result", |n| lens(pool.map(string_of, [0, n], None)));
        check_shape("map_async", limit, 1, "result", |n| {
            lens(pool.map_async(string_of, [0, n], Some(1)).and_then(|mut r| r.get()))
        });
        check_shape("try_map", limit, 1, "result", |n| {
            lens(pool.try_map(try_string_of, [0, n], None))
        });
        check_shape("apply", limit, 0, "result", |n| pool.apply(string_of, n).map(|s| s.len()));
        check_shape("try_apply", limit, 0, "result", |n| {
            pool.try_apply(try_string_of, n).map(|s| s.len())
        });
        check_shape("apply_async", limit, 0, "result", |n| {
            pool.apply_async(string_of, n).and_then(|mut r| r.get()).map(|s| s.len())
        });
        check_shape("imap", limit, 1, "result", |n| {
            lens(pool.imap(string_of, [0, n], None)?.collect())
        });
        check_shape("map_ref", limit, 1, "result", |n| {
            let args = [0.to_string(), n.to_string()];
            lens(pool.map_ref(|s: &str| "y".repeat(s.parse().unwrap()), &args, None))
        });
        check_shape("apply_async_batch", limit, 1, "result", |n| {
            let q = pool.apply_queue();
            let p = q.apply_async_batch(string_of, [0, n])?;
            assert_eq!(p[0].get()?, "");
            p[1].get().map(|s| s.len())
        });
        assert_eq!(pool.map(string_of, [0], None).unwrap(), [""]);
        close_pool(pool, m);
    }
}

/// Serializes as a sequence of `.0` zero bytes (postcard: a length, then the bytes), then fails
/// if `.1`; reads back as the sequence's length.
#[derive(Debug, PartialEq)]
struct Failing(usize, bool);

impl Serialize for Failing {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        let mut seq = s.serialize_seq(Some(self.0))?;
        for _ in 0..self.0 {
            seq.serialize_element(&0u8)?;
        }
        if self.1 {
            return Err(S::Error::custom("refused on purpose"));
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Failing {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Vec::<u8>::deserialize(d).map(|v| Failing(v.len(), false))
    }
}

fn failing(a: (usize, bool)) -> Failing {
    Failing(a.0, a.1)
}

/// A value that passes the limit and then fails to serialize is a serialization error (what it
/// was before the bytes past the limit were counted: the failure is the more specific fault),
/// in the parent (argument) and in the worker (result); a value under the limit that fails is
/// one too; and the tasks around it are intact.
fn a_serialization_that_fails_past_the_limit_is_a_serialization_error(m: StartMethod) {
    let limit = 100;
    let mut pool = pool_with_limit(m, limit);
    for (n, fails, want) in [
        (200, true, "serialized"),
        (10, true, "serialized"),
        (200, false, "too large"),
        (99, false, "ok"),
        (100, false, "too large"),
    ] {
        let args = [Failing(3, false), Failing(n, fails)];
        let got = pool.map(|f: Failing| f.0, &args, None);
        match (want, got) {
            ("serialized", Err(Error::TaskValue { task: 1, what: "argument", how, reason })) => {
                assert_eq!(how, "serialized");
                // postcard keeps no custom message: its text is all there is.
                assert_eq!(reason, "Serde Serialization Error");
            }
            (
                "too large",
                Err(Error::TaskValueTooLarge { task: 1, what: "argument", bytes, .. }),
            ) => {
                assert_eq!(bytes, ser_len(n))
            }
            ("ok", Ok(v)) => assert_eq!(v, [3, n]),
            (want, got) => panic!("argument of {n} (fails: {fails}): want {want}, got {got:?}"),
        }
        let got = pool.map(failing, [(3, false), (n, fails), (4, false)], None);
        match (want, got) {
            ("serialized", Err(Error::TaskValue { task: 1, what: "result", how, reason })) => {
                assert_eq!(how, "serialized");
                // postcard keeps no custom message: its text is all there is.
                assert_eq!(reason, "Serde Serialization Error");
            }
            ("too large", Err(Error::TaskValueTooLarge { task: 1, what: "result", bytes, .. })) => {
                assert_eq!(bytes, ser_len(n))
            }
            ("ok", Ok(v)) => {
                assert_eq!(v, [Failing(3, false), Failing(n, false), Failing(4, false)])
            }
            (want, got) => panic!("result of {n} (fails: {fails}): want {want}, got {got:?}"),
        }
        // In one chunk: the tasks after the failed one come back whole (its bytes were taken
        // back out of the chunk's buffer).
        let got: Vec<Result<Failing>> = pool
            .imap(failing, [(3, false), (n, fails), (4, false), (98, false)], Some(4))
            .unwrap()
            .collect();
        assert_eq!(got[0].as_ref().unwrap(), &Failing(3, false));
        assert_eq!(got[2].as_ref().unwrap(), &Failing(4, false), "after {n} (fails: {fails})");
        assert_eq!(got[3].as_ref().unwrap(), &Failing(98, false), "after {n} (fails: {fails})");
    }
    close_pool(pool, m);
}

/// In one chunk, results under, at and over the limit, and over it after a result at it: each
/// over-limit one is its own error with its exact size; every other comes back byte for byte.
fn an_over_limit_result_leaves_the_rest_of_its_chunk_whole(m: StartMethod) {
    let limit = 1000;
    let at = longest_within(limit);
    let mut pool = pool_with_limit(m, limit);
    let sizes = [5, at, at + 1, 0, at, at + 1, at + 1, 7, 1 << 20, at - 1];
    for chunk in [1, 3, sizes.len()] {
        let got: Vec<Result<String>> = pool.imap(string_of, sizes, Some(chunk)).unwrap().collect();
        for (i, (r, &n)) in got.iter().zip(&sizes).enumerate() {
            match r {
                Ok(s) if n <= at => assert_eq!(*s, string_of(n), "task {i}, chunk {chunk}"),
                Err(Error::TaskValueTooLarge { task, what: "result", bytes, limit: l })
                    if n > at =>
                {
                    assert_eq!((*task, *bytes, *l), (i, ser_len(n), limit), "chunk {chunk}")
                }
                other => panic!("task {i} ({n} bytes), chunk {chunk}: {other:?}"),
            }
        }
    }
    close_pool(pool, m);
}

fn bytes_of(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + n) as u8).collect()
}

/// Results exactly at the limit, thousands of them after tiny ones (so the region sized from
/// the tiny ones is outgrown and they spill), with one over the limit among them: every one at
/// the limit comes back whole, the one over is refused with its exact size.
fn results_at_the_limit_that_spill_come_back_whole(m: StartMethod) {
    let limit = 8 << 10;
    let at = longest_within(limit);
    let mut pool = pool_with_limit(m, limit);
    assert_eq!(pool.map(|x: u32| x + 1, 0..100u32, None).unwrap().len(), 100);
    let got = pool.map(|_: u32| bytes_of(longest_within(8 << 10)), 0..2000u32, None).unwrap();
    assert!(got.iter().all(|v| *v == bytes_of(at)));
    let sizes: Vec<usize> = (0..1500).map(|i| if i == 777 { at + 1 } else { at - i % 2 }).collect();
    let got: Vec<Result<Vec<u8>>> = pool.imap(bytes_of, &sizes, Some(50)).unwrap().collect();
    for (i, r) in got.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v, bytes_of(sizes[i]), "task {i}"),
            Err(Error::TaskValueTooLarge { task: 777, what: "result", bytes, .. }) => {
                assert_eq!(*bytes, ser_len(at + 1))
            }
            Err(e) => panic!("task {i}: {e:?}"),
        }
    }
    assert!(got[777].is_err());
    close_pool(pool, m);
}

/// 8000 bytes, and 1 GiB more for tasks 777 and 800 (the first of its chunk of 50).
fn spilled_with_one_huge(i: u32) -> (Vec<u8>, Mibs) {
    (bytes_of(8000), Mibs(if i == 777 || i == 800 { 1024 } else { 0 }))
}

/// A result of a gigabyte past the limit (one the first of its chunk) in a chunk whose results outgrew the region (after
/// tiny results sized it), so went to the worker's spill segment: it is `TaskValueTooLarge`
/// with its exact size, the others come back whole. (Its entry was marked spilled with the
/// others and read from the segment, where its length ran past the end: a `TaskValue` "read"
/// error saying the bytes lie past the segment.)
fn an_over_limit_result_in_a_spilled_chunk_is_too_large_not_unreadable(m: StartMethod) {
    let limit = 64 << 10;
    let mut pool = pool_with_limit(m, limit);
    let t = Instant::now();
    for round in 0..2 {
        assert_eq!(pool.map(|x: u32| x + 1, 0..2000u32, None).unwrap().len(), 2000);
        let got: Vec<Result<(Vec<u8>, Mibs)>> =
            pool.imap(spilled_with_one_huge, 0..2000u32, Some(50)).unwrap().collect();
        for (i, r) in got.iter().enumerate() {
            match r {
                Ok((v, Mibs(0))) if i != 777 && i != 800 => {
                    assert!(*v == bytes_of(8000), "task {i}")
                }
                Err(Error::TaskValueTooLarge { task, what: "result", bytes, limit: l })
                    if *task == i && (i == 777 || i == 800) =>
                {
                    assert_eq!((*bytes, *l), (ser_len(8000) + 1024 * ser_len(1 << 20), limit))
                }
                other => panic!("round {round}, task {i}: {other:?}"),
            }
        }
    }
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    close_pool(pool, m);
}

/// `map_ref` borrows its strings raw and counts their raw bytes against the limit, where `map`
/// counts the postcard bytes (1 to 10 more: the length prefix): at every boundary (a one-byte
/// and a two-byte prefix, the limit 1) `map` refuses a string of `n` bytes exactly when
/// `ser_len(n)` passes the limit and names that size, `map_ref` exactly when `n` does and names
/// `n`. (So `map_ref` takes strings up to the limit that `map` refuses: the README's "a value
/// passes or fails the limit on every path alike" holds for `map`'s paths only.)
fn map_ref_counts_raw_bytes_where_map_counts_postcard_bytes(m: StartMethod) {
    for limit in [1, 2, 128, 129, 130, 131, 16385, 16386] {
        let mut pool = pool_with_limit(m, limit);
        for n in longest_within(limit).saturating_sub(2)..limit + 2 {
            let args = [String::new(), "c".repeat(n)];
            let check = |got: Result<Vec<usize>>, size: fn(usize) -> usize, how: &str| match got {
                Ok(v) if size(n) <= limit => assert_eq!(v, [0, n], "{how}"),
                Err(Error::TaskValueTooLarge { task: 1, bytes, .. }) if size(n) > limit => {
                    assert_eq!(bytes, size(n), "{how}, limit {limit}, {n}")
                }
                other => panic!("{how}, limit {limit}, {n} bytes: {other:?}"),
            };
            check(pool.map_ref(|s: &str| s.len(), &args, None), |n| n, "map_ref");
            check(pool.map(len_of, &args, None), ser_len, "map");
            // A non-plain result (its text, which fits from a limit of 8): map's serialized
            // path, not its string path.
            if limit >= 8 {
                let by_value = pool.map(|s: String| s.len().to_string(), &args, None);
                let by_value = by_value.map(|v| v.iter().map(|s| s.parse().unwrap()).collect());
                check(by_value, ser_len, "map (serialized)");
            }
        }
        close_pool(pool, m);
    }
}

/// Limits of 2^32 + 1 and `usize::MAX` (the result region is `tasks * limit`, capped): values
/// of every size up to a few MiB pass every shape, results spill where they outgrow the region,
/// and nothing overflows.
fn limits_past_u32_and_up_to_usize_max_take_ordinary_values(m: StartMethod) {
    for limit in [(1usize << 32) + 1, usize::MAX] {
        let mut pool = pool_with_limit(m, limit);
        let sizes = [0usize, 1, 127, 128, 16384, 3 << 20];
        let args: Vec<String> = sizes.iter().map(|&n| "a".repeat(n)).collect();
        assert_eq!(pool.map(len_of, &args, None).unwrap(), sizes);
        assert_eq!(pool.map_ref(|s: &str| s.len(), &args, None).unwrap(), sizes);
        let got = pool.map(string_of, sizes, Some(1)).unwrap();
        assert!(got.iter().zip(sizes).all(|(s, n)| *s == string_of(n)), "limit {limit}");
        assert_eq!(pool.apply(len_of, "b".repeat(1 << 20)).unwrap(), 1 << 20);
        let q = pool.apply_queue();
        let p = q.apply_async_batch(string_of, sizes).unwrap();
        for (p, n) in p.iter().zip(sizes) {
            assert_eq!(p.get().unwrap().len(), n, "limit {limit}");
        }
        drop(p);
        drop(q);
        close_pool(pool, m);
    }
}
