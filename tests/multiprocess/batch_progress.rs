//! Issue 12's progress over one batch job: `Pending::is_finished` sees the calls of a running
//! `apply_async_batch` job finish one by one while another call still runs (and `is_ready`,
//! which reads results, still waits for the whole job); `Pending::wait_timeout` ends at its
//! timeout while the job runs and at once when it is over. Each under the default start method
//! (the forkserver) and fork.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shmpool::StartMethod;

use crate::harness::{
    POOL_METHODS as METHODS, Tests, close_pool, eventually, gated, register, scratch_dir,
    two_worker_pool,
};

pub fn tests() -> Tests {
    register! {
        a_batch_calls_are_seen_finished_one_by_one_while_a_slow_call_runs in METHODS,
        wait_timeout_ends_at_its_timeout_and_at_once_at_the_end in METHODS,
    }
}

fn a_batch_calls_are_seen_finished_one_by_one_while_a_slow_call_runs(m: StartMethod) {
    let dir = scratch_dir("gates", "one-by-one", m);
    let open = |i: u64| std::fs::write(dir.join(i.to_string()), b"").unwrap();
    let mut pool = two_worker_pool(m);
    {
        let q = pool.apply_queue();
        let n = 6u64;
        let pending =
            q.apply_async_batch(gated, (0..n).map(|i| (dir.join(i.to_string()), i))).unwrap();
        // Call 0 (the slow one) holds one worker until the end; the other worker runs calls
        // 1..n one at a time, each as its gate opens.
        for i in 1..n {
            assert!(!pending[i as usize].is_finished(), "call {i} finished before its gate");
            open(i);
            eventually(&format!("call {i} is seen finished"), || pending[i as usize].is_finished());
            for (k, p) in pending.iter().enumerate() {
                let should = k != 0 && k as u64 <= i;
                assert_eq!(p.is_finished(), should, "call {k} after gate {i}");
            }
            // Results are read only when the whole job is over.
            assert!(!pending[i as usize].is_ready(), "call {i} ready while call 0 runs");
        }
        open(0);
        assert!(pending[0].wait_timeout(Duration::from_secs(10)), "the job did not end");
        for (k, p) in pending.iter().enumerate() {
            assert!(p.is_finished() && p.is_ready(), "call {k}");
            assert_eq!(p.get().unwrap(), k as u64);
        }
    }
    close_pool(pool, m);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Sleeps until `at` (nanoseconds since the Unix epoch), then returns `i`.
fn until((at, i): (u64, u64)) -> u64 {
    let at = UNIX_EPOCH + Duration::from_nanos(at);
    if let Ok(left) = at.duration_since(SystemTime::now()) {
        std::thread::sleep(left);
    }
    i
}

fn wait_timeout_ends_at_its_timeout_and_at_once_at_the_end(m: StartMethod) {
    let mut pool = two_worker_pool(m);
    {
        let q = pool.apply_queue();
        let release = SystemTime::now() + Duration::from_millis(1000);
        let at = release.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        let pending = q.apply_async_batch(until, (0..3).map(|i| (at, i))).unwrap();
        let t = Instant::now();
        assert!(!pending[2].wait_timeout(Duration::from_millis(60)));
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(60) && took < Duration::from_millis(800), "{took:?}");
        assert!(!pending[2].is_finished());
        // Waiting with a long timeout, the parent sees the end of the job at once (a missed
        // wake would show as a lag of up to the 1 s nap of a pool watching its workers).
        assert!(pending[2].wait_timeout(Duration::from_secs(30)));
        let lag = SystemTime::now().duration_since(release).expect("not before the release");
        assert!(lag < Duration::from_millis(400), "the end seen {lag:?} after it");
        assert_eq!(pending.iter().map(|p| p.get().unwrap()).collect::<Vec<_>>(), [0, 1, 2]);
    }
    close_pool(pool, m);
}
