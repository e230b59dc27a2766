//! The sample sort against `sort_unstable` (integers) and `sort_unstable_by(f64::total_cmp)`
//! (floats, NaNs and signed zeros included), on seeded random arrays of sizes 0, 1, primes, and
//! non-multiples of the run length, with many duplicates and with none; the steps
//! (`rank_split`, `merge_ranks`) on every rank; the rayon driver and the pool's (2 workers).
//! Sorting is exact: results must be equal bit for bit.

mod support;

use shmpool_kernels::{SortKey, merge_ranks, rank_split, sort, sort_rayon, sort_run};
use support::Rng;

const SIZES: &[usize] = &[0, 1, 2, 3, 7, 97, 4096, 4097, 10_007, 65_537, 200_003];

fn u64s(len: usize, seed: u64, distinct: u64) -> Vec<u64> {
    let mut r = Rng::new(seed);
    (0..len).map(|_| r.next_u64() % distinct).collect()
}

fn i64s(len: usize, seed: u64) -> Vec<i64> {
    let mut r = Rng::new(seed);
    (0..len).map(|_| r.next_u64() as i64 >> (r.next_u64() % 60)).collect()
}

/// Floats of every kind: both zeros, infinities, NaNs of both signs and several payloads,
/// subnormals, duplicates, and ordinary values.
fn f64s(len: usize, seed: u64) -> Vec<f64> {
    let mut r = Rng::new(seed);
    let special = [
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7FF0_0000_0000_0001),
        f64::from_bits(0xFFF8_0000_0000_00FF),
        f64::MIN_POSITIVE / 4.0,
        -f64::MIN_POSITIVE / 4.0,
        1.0,
        -1.0,
    ];
    (0..len)
        .map(|_| {
            let x = r.next_u64();
            if x.is_multiple_of(8) {
                special[(x >> 8) as usize % special.len()]
            } else {
                (x as i64 as f64) / 1e15
            }
        })
        .collect()
}

fn same<T: SortKey>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.key() == y.key())
}

fn check_all<T: SortKey>(data: &[T], want: &[T], what: &str) {
    let rp = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let mut s = data.to_vec();
    sort(&mut s);
    assert!(same(&s, want), "sort: {what}");
    let mut r = data.to_vec();
    rp.install(|| sort_rayon(&mut r));
    assert!(same(&r, want), "sort_rayon: {what}");
}

#[test]
fn u64_matches_sort_unstable() {
    for &n in SIZES {
        for distinct in [3, 1000, u64::MAX] {
            let data = u64s(n, n as u64 ^ distinct, distinct);
            let mut want = data.clone();
            want.sort_unstable();
            check_all(&data, &want, &format!("u64 n={n} distinct={distinct}"));
        }
    }
}

#[test]
fn i64_matches_sort_unstable() {
    for &n in SIZES {
        let data = i64s(n, 7 + n as u64);
        let mut want = data.clone();
        want.sort_unstable();
        check_all(&data, &want, &format!("i64 n={n}"));
    }
}

#[test]
fn f64_matches_total_cmp() {
    for &n in SIZES {
        let data = f64s(n, 11 + n as u64);
        let mut want = data.clone();
        want.sort_unstable_by(f64::total_cmp);
        check_all(&data, &want, &format!("f64 n={n}"));
    }
}

#[test]
fn keys_order_as_total_cmp() {
    let v = f64s(2000, 3);
    for a in &v[..200] {
        for b in &v[..200] {
            assert_eq!(a.key().cmp(&b.key()), a.total_cmp(b), "{a:?} vs {b:?}");
        }
    }
    for (a, b) in [(i64::MIN, -1i64), (-1, 0), (0, i64::MAX)] {
        assert!(a.key() < b.key());
    }
}

#[test]
fn every_rank_splits_and_every_bucket_merges() {
    // 3 distinct values over uneven runs: many ties cross run boundaries.
    for (n, run) in [(0usize, 4usize), (1, 4), (13, 4), (50, 7), (101, 10), (64, 64)] {
        let mut data = u64s(n, n as u64, 3);
        data.chunks_mut(run).for_each(sort_run);
        let mut want = data.clone();
        want.sort_unstable();
        for rank in 0..=n {
            let split = rank_split(&data, run, rank);
            assert_eq!(split.iter().sum::<usize>(), rank, "n={n} run={run} rank={rank}");
            let (kept, left): (Vec<u64>, Vec<u64>) = {
                let chunks: Vec<&[u64]> = data.chunks(run).collect();
                let kept = chunks.iter().zip(&split).flat_map(|(c, &s)| c[..s].to_vec()).collect();
                let left = chunks.iter().zip(&split).flat_map(|(c, &s)| c[s..].to_vec()).collect();
                (kept, left)
            };
            let max_kept = kept.iter().max();
            let min_left = left.iter().min();
            if let (Some(a), Some(b)) = (max_kept, min_left) {
                assert!(a <= b, "n={n} run={run} rank={rank}: kept {a} above left {b}");
            }
        }
        for bucket in [1, 3, 5, 64] {
            let mut out = vec![u64::MAX; n];
            for (i, b) in out.chunks_mut(bucket).enumerate() {
                merge_ranks(&data, run, i * bucket, b);
            }
            assert_eq!(out, want, "n={n} run={run} bucket={bucket}");
        }
    }
}

/// A pool of 2 workers that never runs a job inline, with chunks (runs and buckets) of `chunk`
/// elements.
fn pool(chunk: usize) -> shmpool::Pool {
    shmpool::Pool::builder().workers(2).inline_threshold(0).chunk_size(chunk).build().unwrap()
}

fn check_pool<T: SortKey>(p: &mut shmpool::Pool, data: &[T], want: &[T], what: &str) {
    let mut a = shmpool::SharedArray::from_slice(data).unwrap();
    shmpool_kernels::sort_pool(p, &mut a).unwrap();
    assert!(same(&a, want), "sort_pool: {what}");
}

#[test]
fn pool_driver_matches_the_references() {
    // The pool's chunk size does not change the runs (two per worker); check that it does not
    // change the result either.
    for chunk in [1usize, 1000, 0] {
        let mut p = if chunk == 0 {
            shmpool::Pool::builder().workers(2).inline_threshold(0).build().unwrap()
        } else {
            pool(chunk)
        };
        // The largest size once (default chunks), to keep the test to seconds.
        for &n in SIZES.iter().filter(|&&n| chunk == 0 || n < 100_000) {
            let what = format!("n={n}, chunks of {chunk}");
            let data = u64s(n, 21 + n as u64, if n % 2 == 0 { 5 } else { u64::MAX });
            let mut want = data.clone();
            want.sort_unstable();
            check_pool(&mut p, &data, &want, &format!("u64 {what}"));
            let data = i64s(n, 23 + n as u64);
            let mut want = data.clone();
            want.sort_unstable();
            check_pool(&mut p, &data, &want, &format!("i64 {what}"));
            let data = f64s(n, 29 + n as u64);
            let mut want = data.clone();
            want.sort_unstable_by(f64::total_cmp);
            check_pool(&mut p, &data, &want, &format!("f64 {what}"));
        }
    }
}
