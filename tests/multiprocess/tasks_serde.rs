//! The pool's task calls over any serializable value (postcard through shared memory): maps
//! over `String`s, `Vec`s, nested structs and enums, `starmap` over triples, tasks returning
//! `Result` (the `Err` comes back naming its task, distinct from a panic), `get` twice, results
//! that outgrow their region (spilled through a worker's segment), and the bad inputs: a value
//! over the configured limit, a result that fails to serialize in the worker or to deserialize
//! in the parent. Each under the default start method (the forkserver) and fork.

use std::cell::Cell;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize, Serializer};
use shmpool::{Error, Pool, StartMethod};

use crate::harness::{
    Mibs, POOL_METHODS as METHODS, Tests, close_pool, register, two_worker_pool as pool,
};

pub fn tests() -> Tests {
    register! {
        maps_over_strings_vecs_structs_and_enums in METHODS,
        results_that_outgrow_their_region_come_back_whole in METHODS,
        a_task_error_names_its_task_and_is_not_a_panic in METHODS,
        get_twice_returns_the_value_again in METHODS,
        a_value_over_the_limit_is_a_typed_error_naming_the_task in METHODS,
        a_value_of_gigabytes_is_refused_without_being_held in METHODS,
        a_result_that_fails_to_serialize_or_deserialize_names_the_task in METHODS,
        dropping_an_endless_buffered_imap_returns_at_once in METHODS,
        a_thousand_apply_async_in_flight_read_in_any_order in METHODS,
        helpers: [reset_peak],
    }
}

fn process_file(path: String) -> usize {
    path.len()
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Customer {
    name: String,
    tags: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Order {
    id: u32,
    customer: Customer,
    lines: Vec<(String, f64)>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Summary {
    id: u32,
    who: String,
    total: f64,
    vip: bool,
}

fn summarize(o: Order) -> Summary {
    Summary {
        id: o.id,
        who: o.customer.name.to_uppercase(),
        total: o.lines.iter().map(|l| l.1).sum(),
        vip: o.customer.tags.iter().any(|t| t == "vip"),
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
enum Shape {
    Circle(f64),
    Rect { w: f64, h: f64 },
    Point,
}

fn describe(s: Shape) -> (String, f64) {
    match s {
        Shape::Circle(r) => ("circle".into(), 3.0 * r * r),
        Shape::Rect { w, h } => ("rect".into(), w * h),
        Shape::Point => ("point".into(), 0.0),
    }
}

fn order(i: u32) -> Order {
    Order {
        id: i,
        customer: Customer {
            name: format!("customer {i}"),
            tags: if i.is_multiple_of(3) { vec!["vip".into()] } else { vec![] },
        },
        lines: (0..i % 5).map(|k| (format!("item {k}"), k as f64)).collect(),
    }
}

fn maps_over_strings_vecs_structs_and_enums(m: StartMethod) {
    let mut pool = pool(m);
    // Python's most common pool program: a map over paths.
    let paths: Vec<String> = (0..200).map(|i| format!("/data/file-{i}.csv")).collect();
    let lens = pool.map(process_file, paths.clone(), None).unwrap();
    assert_eq!(lens, paths.iter().map(|p| p.len()).collect::<Vec<_>>());
    // Vecs in, Vecs out, by reference.
    let vecs: Vec<Vec<u32>> = (0..100).map(|i| (0..i).collect()).collect();
    let rev = pool.map(|v: Vec<u32>| v.into_iter().rev().collect::<Vec<_>>(), &vecs, Some(7));
    let rev = rev.unwrap();
    assert!(rev.iter().zip(&vecs).all(|(r, v)| r.iter().rev().eq(v.iter())));
    // Nested structs.
    let orders: Vec<Order> = (0..300).map(order).collect();
    let got = pool.map(summarize, &orders, None).unwrap();
    assert_eq!(got, orders.iter().cloned().map(summarize).collect::<Vec<_>>());
    // Enums, returning tuples.
    let shapes = vec![Shape::Circle(1.0), Shape::Rect { w: 2.0, h: 3.0 }, Shape::Point];
    let got = pool.map(describe, &shapes, Some(1)).unwrap();
    assert_eq!(got, [("circle".into(), 3.0), ("rect".into(), 6.0), ("point".into(), 0.0)]);
    // starmap beyond two arguments.
    let triples: Vec<(u8, String, Vec<u16>)> =
        (0..50).map(|i| (i, "x".repeat(i as usize), vec![i as u16; 3])).collect();
    let got = pool
        .starmap(|a: u8, s: String, v: Vec<u16>| a as usize + s.len() + v.len(), &triples, None)
        .unwrap();
    assert_eq!(got, (0..50).map(|i| 2 * i + 3).collect::<Vec<usize>>());
    // imap in order, imap_unordered with indices, apply.
    let words = ["alpha", "beta", "gamma"].map(String::from);
    let got: Vec<String> = pool
        .imap(|s: String| s.to_uppercase(), &words, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, ["ALPHA", "BETA", "GAMMA"]);
    let mut seen = [false; 3];
    for r in pool.imap_unordered(|s: String| s.len(), &words, None).unwrap() {
        let (i, len) = r.unwrap();
        assert_eq!(len, words[i].len());
        seen[i] = true;
    }
    assert_eq!(seen, [true; 3]);
    assert_eq!(
        pool.apply(|s: String| (s.clone(), s.len()), "abc".into()).unwrap(),
        ("abc".into(), 3)
    );
    // Pod values still take either path.
    assert_eq!(pool.map(|x: u64| x * x, 0..1000u64, None).unwrap()[999], 998_001);
    assert_eq!(pool.map_pod(|x: u64| x * x, &[3], None).unwrap(), [9]);
    close_pool(pool, m);
}

fn results_that_outgrow_their_region_come_back_whole(m: StartMethod) {
    let mut pool = pool(m);
    // Tiny results first: the next call's region is sized from them, so these 20 MiB of
    // results do not fit it and go through the workers' spill segments.
    assert_eq!(pool.map(|x: u32| x + 1, 0..100u32, None).unwrap().len(), 100);
    let big = |i: u32| vec![i; 2560];
    for round in 0..2 {
        let got = pool.map(big, 0..2000u32, None).unwrap();
        assert_eq!(got.len(), 2000, "round {round}");
        assert!(got.iter().enumerate().all(|(i, v)| *v == big(i as u32)), "round {round}");
    }
    let got: Vec<Vec<u32>> =
        pool.imap(big, 0..300u32, Some(4)).unwrap().map(Result::unwrap).collect();
    assert!(got.iter().enumerate().all(|(i, v)| *v == big(i as u32)));
    close_pool(pool, m);
}

fn ratio(x: f64) -> Result<f64, String> {
    if x == 0.0 { Err(format!("cannot invert {x}")) } else { Ok(1.0 / x) }
}

fn a_task_error_names_its_task_and_is_not_a_panic(m: StartMethod) {
    let mut pool = pool(m);
    assert_eq!(pool.try_map(ratio, [1.0, 2.0, 4.0], None).unwrap(), [1.0, 0.5, 0.25]);
    let mut xs = vec![1.0; 20];
    xs[7] = 0.0;
    xs[15] = 0.0;
    match pool.try_map(ratio, &xs, Some(3)) {
        Err(Error::TaskFailed { task: 7, message }) => assert_eq!(message, "cannot invert 0"),
        other => panic!("expected task 7's error, got {other:?}"),
    }
    match pool.try_apply(ratio, 0.0) {
        Err(e @ Error::TaskFailed { task: 0, .. }) => {
            assert!(e.to_string().contains("cannot invert 0"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let mut r = pool.try_map_async(ratio, [0.0, 1.0], None).unwrap();
    assert!(matches!(r.get(), Err(Error::TaskFailed { task: 0, .. })));
    drop(r);
    // A panic is a panic.
    match pool.try_map(
        |x: f64| if x > 1.0 { panic!("too big: {x}") } else { ratio(x) },
        [1.0, 2.0],
        None,
    ) {
        Err(Error::KernelPanicked { message, .. }) => {
            assert!(message.contains("task 1: too big"), "{message}")
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(pool.try_apply(ratio, 4.0).unwrap(), 0.25);
    close_pool(pool, m);
}

fn get_twice_returns_the_value_again(m: StartMethod) {
    let mut pool = pool(m);
    let mut r = pool.apply_async(|s: String| format!("{s}!"), "hi".into()).unwrap();
    assert_eq!(r.get().unwrap(), "hi!");
    assert_eq!(r.get().unwrap(), "hi!");
    assert_eq!(r.get_timeout(Duration::from_secs(1)).unwrap(), "hi!");
    drop(r);
    let mut r = pool.map_async(|v: Vec<u8>| v.len(), [vec![1], vec![2, 3]], None).unwrap();
    assert_eq!(r.get().unwrap(), [1, 2]);
    assert_eq!(r.get().unwrap(), [1, 2]);
    drop(r);
    // An error is returned in full once, then named.
    let mut r = pool.try_map_async(ratio, [0.0], None).unwrap();
    assert!(matches!(r.get(), Err(Error::TaskFailed { task: 0, .. })));
    assert!(matches!(r.get(), Err(Error::ResultUnavailable { .. })));
    assert!(!r.is_successful().unwrap());
    drop(r);
    close_pool(pool, m);
}

fn a_value_over_the_limit_is_a_typed_error_naming_the_task(m: StartMethod) {
    let mut pool = Pool::builder().workers(2).start_method(m).max_task_bytes(1024).build().unwrap();
    let t = Instant::now();
    let mut args: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    args[3] = "x".repeat(2000);
    match pool.map(process_file, &args, None) {
        Err(Error::TaskValueTooLarge { task: 3, what: "argument", bytes, limit: 1024 }) => {
            assert!(bytes > 2000, "{bytes}")
        }
        other => panic!("expected task 3's argument to be too large, got {other:?}"),
    }
    match pool.map(|n: usize| "y".repeat(n), [1, 10, 5000, 2], None) {
        Err(e @ Error::TaskValueTooLarge { task: 2, what: "result", .. }) => {
            assert!(e.to_string().contains("max_task_bytes"), "{e}")
        }
        other => panic!("expected task 2's result to be too large, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(pool.map(process_file, ["ab".to_string()], None).unwrap(), [2]);
    close_pool(pool, m);
}

/// This process's peak resident memory since the last [`reset_peak`], in MiB (`VmHWM`).
fn peak_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() >> 10
}

/// Resets this process's peak resident memory to what it holds now (`clear_refs` 5).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

/// 8 GiB of serialized argument (in the parent) or result (in the worker) is refused with its
/// exact size, in well under a second, while neither process ever holds more than the limit of
/// it: the bytes past the limit are counted, not stored. Storing them all first, as the pool
/// did, took 8 GiB in the parent and in the worker before the refusal.
fn a_value_of_gigabytes_is_refused_without_being_held(m: StartMethod) {
    const GIB8: usize = 8 << 10; // MiB strings: 8 GiB
    let whole = GIB8 * ((1 << 20) + 3); // each with its 3-byte length
    let mut pool =
        Pool::builder().workers(1).start_method(m).max_task_bytes(1 << 20).build().unwrap();
    let t = Instant::now();
    reset_peak();
    let before = peak_mib();
    match pool.map(|_: Mibs| 0u8, [Mibs(0), Mibs(GIB8)], None) {
        Err(Error::TaskValueTooLarge { task: 1, what: "argument", bytes, limit }) => {
            assert_eq!((bytes, limit), (whole, 1 << 20))
        }
        other => panic!("expected task 1's argument to be too large, got {other:?}"),
    }
    assert!(peak_mib() < before + 64, "the parent peaked at {} MiB from {before}", peak_mib());
    // One worker: the call after the refused result runs in the same process, and reads its peak.
    pool.apply(|_: u8| reset_peak(), 0).unwrap();
    let worker_before = pool.apply(|_: u8| peak_mib(), 0).unwrap();
    match pool.map(|n: usize| Mibs(n), [0, GIB8], None) {
        Err(Error::TaskValueTooLarge { task: 1, what: "result", bytes, .. }) => {
            assert_eq!(bytes, whole)
        }
        other => panic!("expected task 1's result to be too large, got {other:?}"),
    }
    let worker_peak = pool.apply(|_: u8| peak_mib(), 0).unwrap();
    assert!(
        worker_peak < worker_before + 64,
        "the worker peaked at {worker_peak} MiB from {worker_before}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    close_pool(pool, m);
}

/// Readings whose samples are serialized lazily, through a filter: postcard needs a sequence's
/// length up front, so serializing `Samples` fails in the worker.
#[derive(Serialize, Deserialize, Debug)]
enum Reading {
    Value(f64),
    Samples(#[serde(serialize_with = "finite_only")] Vec<f64>),
}

fn finite_only<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().filter(|x| x.is_finite()))
}

fn read_sensor(i: u32) -> Reading {
    if i == 3 { Reading::Samples(vec![1.0, f64::NAN]) } else { Reading::Value(i as f64) }
}

/// A percentage checked when deserialized only (a common way to validate input): a worker
/// that computes one out of range sends what the parent refuses.
#[derive(Serialize, Deserialize, Debug)]
#[serde(try_from = "u8")]
struct Percent(u8);

impl TryFrom<u8> for Percent {
    type Error = String;
    fn try_from(p: u8) -> Result<Percent, String> {
        if p <= 100 { Ok(Percent(p)) } else { Err(format!("{p} is not a percentage")) }
    }
}

fn share(done: u8) -> Percent {
    Percent(done * 10)
}

fn a_result_that_fails_to_serialize_or_deserialize_names_the_task(m: StartMethod) {
    let mut pool = pool(m);
    match pool.map(read_sensor, 0..6u32, Some(2)) {
        Err(Error::TaskValue { task: 3, what: "result", how: "serialized", reason }) => {
            assert!(!reason.is_empty())
        }
        other => panic!("expected task 3's result not to serialize, got {other:?}"),
    }
    match pool.map(share, [1, 5, 10, 11, 20], None) {
        // (postcard keeps no custom message: the reason is its generic one.)
        Err(Error::TaskValue { task: 3, what: "result", how: "deserialized", .. }) => {}
        other => panic!("expected task 3's result not to deserialize, got {other:?}"),
    }
    let mut it = pool.imap(share, [1, 11, 2], None).unwrap();
    assert_eq!(it.next().unwrap().unwrap().0, 10);
    assert!(matches!(it.next(), Some(Err(Error::TaskValue { task: 1, .. }))));
    assert_eq!(it.next().unwrap().unwrap().0, 20);
    drop(it);
    assert_eq!(pool.map(share, [2], None).unwrap()[0].0, 20);
    close_pool(pool, m);
}

/// Quick below 100; a second from there on (what the test drops unconsumed).
fn slow_after_100(i: u64) -> u64 {
    if i >= 100 {
        std::thread::sleep(Duration::from_secs(1));
    }
    i * 2
}

fn panics_on_13(i: u32) -> u32 {
    assert!(i != 13, "unlucky {i}");
    i
}

fn dropping_an_endless_buffered_imap_returns_at_once(m: StartMethod) {
    let mut pool = pool(m);
    let pulled = Cell::new(0u64);
    let endless = (0u64..).inspect(|&i| pulled.set(i + 1));
    let mut it = pool.imap_buffered(slow_after_100, endless, 8).unwrap();
    for i in 0..100 {
        assert_eq!(it.next().unwrap().unwrap(), 2 * i);
    }
    // Bounded: the input was read at most one batch ahead.
    assert!(pulled.get() <= 108, "{} items read", pulled.get());
    let t = Instant::now();
    drop(it);
    assert!(t.elapsed() < Duration::from_millis(100), "drop took {:?}", t.elapsed());
    // The next call waits for the (at most two) tasks still running, not the cancelled ones:
    // four one-second tasks on two workers would take two seconds.
    let t = Instant::now();
    assert_eq!(pool.apply(|x: u8| x, 7).unwrap(), 7);
    assert!(t.elapsed() < Duration::from_millis(1600), "{:?}", t.elapsed());
    // Errors name the task's index in the whole input, across batches.
    let items: Vec<_> = pool.imap_buffered(panics_on_13, 0..20u32, 4).unwrap().collect();
    assert_eq!(items.len(), 20);
    match &items[13] {
        Err(Error::KernelPanicked { message, .. }) => {
            assert!(message.contains("task 13"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(items.iter().enumerate().all(|(i, r)| i == 13 || *r.as_ref().unwrap() == i as u32));
    close_pool(pool, m);
}

fn label(i: u32) -> String {
    assert!(i != 500, "no label for {i}");
    format!("#{i}")
}

fn a_thousand_apply_async_in_flight_read_in_any_order(m: StartMethod) {
    let mut pool = pool(m);
    {
        let q = pool.apply_queue();
        let mut pending: Vec<_> = (0..1000).map(|i| q.apply_async(label, i).unwrap()).collect();
        for (i, p) in pending.iter_mut().enumerate().rev() {
            match p.get() {
                Ok(s) => assert_eq!(s, format!("#{i}")),
                Err(Error::KernelPanicked { message, .. }) if i == 500 => {
                    assert!(message.contains("task 500: no label for 500"), "{message}")
                }
                other => panic!("call {i}: {other:?}"),
            }
        }
        assert_eq!(pending[7].get().unwrap(), "#7", "get again");
        assert!(pending[8].is_ready());
        // More calls after reading: a new batch.
        let late = q.apply_async(label, 1001).unwrap();
        assert_eq!(late.get().unwrap(), "#1001");
    }
    assert_eq!(pool.apply(label, 3).unwrap(), "#3");
    close_pool(pool, m);
}
