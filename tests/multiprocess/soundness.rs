//! Issue 7: shared memory reaches a child only through what it is given. Each test is a program
//! a user could write with no `unsafe`; each must either run correctly or end with the child's
//! deterministic death (SIGSEGV on memory it was not given), reported to the parent, and never
//! lose an update. The tests hold no `unsafe` of their own.

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use shmpool::{Error, Pool, RawValue, SharedArray, StartMethod, get_context, scope};

use crate::harness::{Tests, register};

pub fn tests() -> Tests {
    register! {
        scope_child_through_a_std_mutex_dies_and_loses_nothing,
        fork_process_with_an_arc_clone_dies_and_parent_keeps_its_mut,
        pool_kernel_through_a_static_kills_the_worker_not_the_data,
        dropped_array_is_freed_while_the_pool_lives,
        an_array_a_job_used_is_freed_when_dropped_while_the_pool_lives,
        raw_value_behind_a_std_mutex_is_not_inherited,
        neighbour_chunk_in_the_same_page_is_out_of_reach,
        lent_chunks_sharing_pages_are_written_in_place,
        lent_shared_slice_is_read_only_and_private_memory_is_copied,
        mutable_private_memory_cannot_be_lent,
        a_child_lends_its_chunk_on_to_a_grandchild,
        objects_made_for_sharing_keep_working_when_inherited,
        an_inherited_array_cannot_be_lent_on_by_a_child,
        an_inherited_array_cannot_be_given_to_a_childs_pool,
        an_inherited_array_cannot_be_given_to_a_small_job_run_in_the_caller,
        a_fork_shmpool_did_not_make_is_sealed_too,
        a_fork_shmpool_did_not_make_while_a_guard_is_held_loses_the_data,
        values_aligned_past_a_page_are_not_lent,
        a_sigsegv_sent_to_a_child_still_kills_it,
    }
}

const SIGSEGV: i32 = 11;

/// Two workers forked from this process: the start method whose inheritance these tests attack
/// (forkserver and spawn workers start from a fresh image and inherit nothing of ours at all).
/// Every call goes to the workers (`inline_threshold(0)`): run in the caller, a kernel reaching
/// a `static` would find the caller's own array, and a small job would map nothing in them.
fn fork_pool() -> shmpool::pool::PoolBuilder {
    Pool::builder().workers(2).start_method(StartMethod::Fork).inline_threshold(0)
}
const ROUNDS: u64 = 200_000;

/// The first race: parent and child each lock "the" `std::sync::Mutex` (each its own
/// copy) and increment element 0. The child is not given the array, so it dies at its first
/// touch; the parent's increments are all there.
fn scope_child_through_a_std_mutex_dies_and_loses_nothing() {
    let m = std::sync::Mutex::new(SharedArray::<u64>::zeroed(1).unwrap());
    let st = scope(|s| {
        let child = s
            .fork(|| {
                for _ in 0..ROUNDS {
                    m.lock().unwrap()[0] += 1;
                }
            })
            .unwrap();
        for _ in 0..ROUNDS {
            m.lock().unwrap()[0] += 1;
        }
        child.join().unwrap()
    })
    .unwrap();
    assert_eq!(
        st.signal(),
        Some(SIGSEGV),
        "the child must die on the array it was not given: {st}"
    );
    // And says why, for the parent to report.
    let why = st.to_string();
    assert!(why.contains("SIGSEGV") && why.contains("Scope::fork_with"), "{why}");
    assert_eq!(m.lock().unwrap()[0], ROUNDS, "no update of the parent's may be lost");
}

/// The second race: a fork `Process` whose closure owns an `Arc` clone. The parent's
/// `Arc::get_mut` succeeds (its count is 1 again); the child cannot read what the parent writes.
fn fork_process_with_an_arc_clone_dies_and_parent_keeps_its_mut() {
    let mut a = Arc::new(SharedArray::<u64>::from_fn(1 << 16, |i| i as u64).unwrap());
    let theirs = Arc::clone(&a);
    let mut p = get_context(StartMethod::Fork)
        .start_closure(move || {
            let mut sum = 0u64;
            for _ in 0..1000 {
                sum = sum.wrapping_add(theirs.iter().sum::<u64>());
            }
            (sum % 7) as i32
        })
        .unwrap();
    let mine = Arc::get_mut(&mut a).expect("the parent's clone is the only one in this process");
    mine.iter_mut().for_each(|x| *x = 1);
    let st = p.join().unwrap();
    assert_eq!(st.signal(), Some(SIGSEGV), "{st}");
    assert_eq!(p.exitcode(), Some(-SIGSEGV));
    assert!(a.iter().all(|&x| x == 1));
}

static THROUGH_STATIC: std::sync::Mutex<Option<SharedArray<u64>>> = std::sync::Mutex::new(None);

fn bump_through_static(chunk: &mut [u64]) {
    let mut g = THROUGH_STATIC.lock().unwrap();
    let a = g.as_mut().expect("filled before the pool started");
    for _ in chunk.iter() {
        a[0] += 1;
    }
}

/// The third race: a pool kernel (a plain `fn`) reaches an array through a `static`
/// `std::sync::Mutex` the parent filled before `Pool::new`. The worker does not have that array:
/// the job fails with the worker's SIGSEGV, and the parent's own increments are exact.
fn pool_kernel_through_a_static_kills_the_worker_not_the_data() {
    *THROUGH_STATIC.lock().unwrap() = Some(SharedArray::zeroed(1).unwrap());
    let mut pool = fork_pool().chunk_size(64).build().unwrap();
    let mut work = SharedArray::<u64>::zeroed(4096).unwrap();
    let e = pool.for_each_chunk(&mut work, bump_through_static);
    match e {
        Err(Error::WorkerDied { signal, how, .. }) => {
            assert_eq!(signal, Some(SIGSEGV));
            assert!(how.contains("not given"), "the worker says why it died: {how}");
        }
        other => panic!("expected WorkerDied by SIGSEGV, got {other:?}"),
    }
    for _ in 0..ROUNDS {
        THROUGH_STATIC.lock().unwrap().as_mut().unwrap()[0] += 1;
    }
    assert_eq!(THROUGH_STATIC.lock().unwrap().as_ref().unwrap()[0], ROUNDS);
    // The pool replaced its workers and still works on what it is given.
    pool.for_each_chunk(&mut work, |c| c.iter_mut().for_each(|x| *x = 5)).unwrap();
    assert!(work.iter().all(|&x| x == 5));
    drop(pool);
    *THROUGH_STATIC.lock().unwrap() = None;
}

fn shmem_bytes() -> u64 {
    let m = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("Shmem:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("/proc/meminfo has Shmem");
    kb * 1024
}

/// The inode of the memfd behind an anonymous array (its handle names our descriptor).
fn memfd_inode<T: bytemuck::Pod>(a: &SharedArray<T>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let h = a.handle().to_string(); // memfd:<pid>/<fd>#<nonce>
    let fd = h.split('/').nth(1).and_then(|r| r.split('#').next()).unwrap();
    std::fs::metadata(format!("/proc/self/fd/{fd}")).unwrap().ino()
}

/// A 256 MiB array alive when the pool forked its workers, then dropped: its memory goes back
/// at once (the workers never mapped it), not when the pool ends.
fn dropped_array_is_freed_while_the_pool_lives() {
    const BYTES: usize = 256 << 20;
    let before = shmem_bytes();
    let big = SharedArray::<u8>::zeroed(BYTES).unwrap(); // reserved (fallocate), so counted now
    let inode = memfd_inode(&big);
    let with = shmem_bytes();
    let mut pool = fork_pool().build().unwrap();
    let mut small = SharedArray::<u64>::zeroed(1 << 12).unwrap();
    pool.for_each_chunk(&mut small, |c| c.iter_mut().for_each(|x| *x += 1)).unwrap();
    for pid in pool.worker_pids() {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        assert!(
            !maps.lines().any(|l| l.split_whitespace().nth(4) == Some(&inode.to_string())),
            "worker {pid} maps the array it was never given:\n{maps}"
        );
    }
    drop(big);
    let deadline = Instant::now() + Duration::from_secs(1);
    let after = loop {
        let now = shmem_bytes();
        if now + (BYTES as u64) / 2 < with || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        after + (BYTES as u64) / 2 < with,
        "Shmem: {before} before, {with} with the array, still {after} a second after dropping it"
    );
    pool.close();
    pool.join().unwrap();
}

/// Waits up to a second for Shmem to fall below `limit`; returns the last reading.
fn shmem_falls_below(limit: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let now = shmem_bytes();
        if now < limit || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The same for an array the workers did map, for a job: they keep a few arrays mapped between
/// jobs, and let go of one within a sleep slice once the parent has dropped it.
fn an_array_a_job_used_is_freed_when_dropped_while_the_pool_lives() {
    const BYTES: usize = 256 << 20;
    let mut pool = fork_pool().build().unwrap();
    let mut big = SharedArray::<u8>::zeroed(BYTES).unwrap();
    pool.for_each_chunk(&mut big, |c| c.iter_mut().for_each(|x| *x = 1)).unwrap();
    let with = shmem_bytes();
    drop(big);
    let after = shmem_falls_below(with - BYTES as u64 / 2);
    assert!(after < with - BYTES as u64 / 2, "Shmem {with} with the array, {after} a second after");
    // The pool still runs jobs, on new arrays and old ones it had cached.
    let mut small = SharedArray::<u64>::zeroed(1 << 12).unwrap();
    pool.for_each_chunk(&mut small, |c| c.iter_mut().for_each(|x| *x += 1)).unwrap();
    pool.for_each_chunk(&mut small, |c| c.iter_mut().for_each(|x| *x += 1)).unwrap();
    assert!(small.iter().all(|&x| x == 2));
}

/// A variant: a `RawValue` (writable through `&mut`, like an array) behind a `std::sync::Mutex`.
fn raw_value_behind_a_std_mutex_is_not_inherited() {
    let m = std::sync::Mutex::new(RawValue::new(0u64).unwrap());
    let st = scope(|s| {
        let child = s.fork(|| *m.lock().unwrap().as_mut_value() += 1).unwrap();
        for _ in 0..ROUNDS {
            *m.lock().unwrap().as_mut_value() += 1;
        }
        child.join().unwrap()
    })
    .unwrap();
    assert_eq!(st.signal(), Some(SIGSEGV), "{st}");
    assert_eq!(m.lock().unwrap().get(), ROUNDS);
}

trait AsMutValue {
    fn as_mut_value(&mut self) -> &mut u64;
}
impl AsMutValue for RawValue<u64> {
    fn as_mut_value(&mut self) -> &mut u64 {
        self
    }
}

static NEIGHBOUR: std::sync::Mutex<Option<&'static mut [u64]>> = std::sync::Mutex::new(None);

/// A variant: the child is lent chunk `a`, and reaches its neighbour `b`, which starts in the
/// same page, through a `static` (a leaked array makes the borrow `'static`). The lent chunk is
/// mapped anew at an address of its own, so `b`'s address means nothing in the child: it dies,
/// instead of racing the parent on the bytes the two chunks share a page with.
fn neighbour_chunk_in_the_same_page_is_out_of_reach() {
    let leaked: &'static mut SharedArray<u64> =
        Box::leak(Box::new(SharedArray::zeroed(64).unwrap()));
    let (a, b) = leaked.split_at_mut(8); // 64 bytes then 448: one page
    *NEIGHBOUR.lock().unwrap() = Some(b);
    let st = scope(|s| {
        let child = s
            .fork_with(a, |a| {
                a[0] = 1; // its own chunk: fine
                for _ in 0..ROUNDS {
                    NEIGHBOUR.lock().unwrap().as_mut().unwrap()[0] += 1;
                }
            })
            .unwrap();
        for _ in 0..ROUNDS {
            NEIGHBOUR.lock().unwrap().as_mut().unwrap()[0] += 1;
        }
        child.join().unwrap()
    })
    .unwrap();
    assert_eq!(st.signal(), Some(SIGSEGV), "{st}");
    let b = NEIGHBOUR.lock().unwrap().take().unwrap();
    assert_eq!(b[0], ROUNDS, "no update of the parent's may be lost");
}

/// Chunks whose boundaries fall inside pages, each lent to its own child and written many
/// times over: every element ends as its owner wrote it, and the bytes around them too.
fn lent_chunks_sharing_pages_are_written_in_place() {
    let n = 10_007; // u32: chunk boundaries in the middle of pages
    let mut a = SharedArray::<u32>::zeroed(n).unwrap();
    let st = scope(|s| {
        let kids: Vec<_> = a
            .split_mut(7)
            .into_iter()
            .enumerate()
            .map(|(k, c)| {
                s.fork_with(c, move |c| {
                    for round in 0..50u32 {
                        c.iter_mut().for_each(|x| *x = (k as u32) << 16 | round);
                    }
                })
                .unwrap()
            })
            .collect();
        kids.into_iter().map(|c| c.join().unwrap()).collect::<Vec<_>>()
    })
    .unwrap();
    assert!(st.iter().all(|s| s.success()), "{st:?}");
    let mut start = 0;
    for k in 0..7 {
        let len = n / 7 + usize::from(k < n % 7);
        assert!(a[start..start + len].iter().all(|&x| x == (k as u32) << 16 | 49), "chunk {k}");
        start += len;
    }
}

/// `&[T]` of a shared array is mapped read-only in the child (a write through it is impossible
/// in safe code; the mapping enforces it too), and a shared slice of private memory is the
/// child's copy, handed over as it was.
fn lent_shared_slice_is_read_only_and_private_memory_is_copied() {
    let a = SharedArray::<u64>::from_fn(100_000, |i| i as u64).unwrap();
    let private: Vec<u64> = (0..1000).collect();
    let st = scope(|s| {
        s.fork_with((&a[..], &private[..], &a[7]), |(x, p, seventh)| {
            let ok = x.iter().sum::<u64>() == 99_999 * 100_000 / 2
                && p.iter().sum::<u64>() == 999 * 1000 / 2
                && *seventh == 7;
            if ok { 0 } else { 1 }
        })
        .unwrap()
        .join()
        .unwrap()
    })
    .unwrap();
    assert!(st.success(), "{st}");
}

fn mutable_private_memory_cannot_be_lent() {
    let mut v = [0u64; 16]; // private memory (the stack)
    let r = scope(|s| s.fork_with(&mut v[..], |c| c[0] = 1).map(drop)).unwrap();
    match r {
        Err(e @ Error::NotShared { .. }) => assert!(e.to_string().contains("SharedArray"), "{e}"),
        other => panic!("expected NotShared, got {other:?}"),
    }
    // Empty slices carry no memory: lending one is fine wherever it points.
    let st = scope(|s| s.fork_with(&mut v[..0], |c| c.len() as i32)?.join()).unwrap().unwrap();
    assert!(st.success(), "{st}");
}

/// A child that was lent a chunk lends half of it on to a grandchild of its own.
fn a_child_lends_its_chunk_on_to_a_grandchild() {
    let mut a = SharedArray::<u64>::zeroed(3 * 4096).unwrap();
    let st = scope(|s| {
        s.fork_with(&mut a[4096..], |mine| {
            let (first, second) = mine.split_at_mut(4096);
            let inner = scope(|s2| {
                let g = s2.fork_with(first, |f| f.iter_mut().for_each(|x| *x = 2))?;
                second.iter_mut().for_each(|x| *x = 3);
                g.join()
            });
            match inner {
                Ok(Ok(st)) if st.success() => 0,
                _ => 1,
            }
        })
        .unwrap()
        .join()
        .unwrap()
    })
    .unwrap();
    assert!(st.success(), "{st}");
    assert!(a[..4096].iter().all(|&x| x == 0));
    assert!(a[4096..8192].iter().all(|&x| x == 2));
    assert!(a[8192..].iter().all(|&x| x == 3));
}

static SHARED_COUNTER: OnceLock<shmpool::Mutex<u64>> = OnceLock::new();

fn count_under_shared_lock(chunk: &mut [u64]) {
    let m = SHARED_COUNTER.get().expect("set before the pool started");
    for _ in chunk.iter() {
        *m.lock().unwrap() += 1;
    }
}

/// shmpool's own cross-process objects are made for sharing: inherited by capture, by an
/// `Arc`, or through a `static`, they keep working in children and workers, and no update is
/// lost.
fn objects_made_for_sharing_keep_working_when_inherited() {
    // Through a static, in pool workers.
    let m = SHARED_COUNTER.get_or_init(|| shmpool::Mutex::new(0).unwrap());
    let mut pool = fork_pool().chunk_size(512).build().unwrap();
    let mut work = SharedArray::<u64>::zeroed(20_000).unwrap();
    pool.for_each_chunk(&mut work, count_under_shared_lock).unwrap();
    assert_eq!(*m.lock().unwrap(), 20_000);
    drop(pool);
    // Captured by a scope child and through an Arc in a fork Process, with the parent counting too.
    let ev = shmpool::Event::new().unwrap();
    let arc = Arc::new(shmpool::SharedValue::new(0u64).unwrap());
    let theirs = Arc::clone(&arc);
    let mut p = get_context(StartMethod::Fork)
        .start_closure(move || {
            for _ in 0..10_000 {
                *theirs.lock().unwrap() += 1;
            }
        })
        .unwrap();
    let st = scope(|s| {
        let c = s
            .fork(|| {
                for _ in 0..10_000 {
                    *m.lock().unwrap() += 1;
                }
                ev.set();
            })
            .unwrap();
        for _ in 0..10_000 {
            *arc.lock().unwrap() += 1;
        }
        c.join().unwrap()
    })
    .unwrap();
    assert!(st.success(), "{st}");
    assert!(ev.is_set());
    assert!(p.join().unwrap().success());
    assert_eq!(*m.lock().unwrap(), 30_000);
    assert_eq!(arc.get().unwrap(), 20_000);
}

/// Found by review: a child locks its copy of a `std::sync::Mutex<SharedArray>` and takes
/// `&mut g[..]` (building the slice reads nothing, so nothing faults), then lends it to a
/// grandchild. The child's table has no entry for an inherited mapping, so the lend is refused;
/// the parent's increments are exact.
fn an_inherited_array_cannot_be_lent_on_by_a_child() {
    let m = std::sync::Mutex::new(SharedArray::<u64>::zeroed(1024).unwrap());
    let st = scope(|s| {
        let child = s
            .fork(|| {
                let mut g = m.lock().unwrap();
                let inner = scope(|s2| {
                    s2.fork_with(&mut g[..], |c| {
                        for _ in 0..ROUNDS {
                            c[0] += 1;
                        }
                    })
                    .map(drop)
                });
                match inner {
                    Ok(Err(Error::NotShared { .. })) => 0,
                    _ => 1,
                }
            })
            .unwrap();
        for _ in 0..ROUNDS {
            m.lock().unwrap()[0] += 1;
        }
        child.join().unwrap()
    })
    .unwrap();
    assert!(st.success(), "the child's lend must be refused with NotShared: {st}");
    assert_eq!(m.lock().unwrap()[0], ROUNDS);
}

fn add_one(c: &mut [u64]) {
    c.iter_mut().for_each(|x| *x += 1);
}

/// A job given a forked child's inherited array, and an array of the child's own.
pub(crate) type InheritedJob = fn(&mut Pool, &mut SharedArray<u64>, &mut SharedArray<u64>);

/// One forked worker, small calls run in the caller (the default inline threshold).
pub(crate) fn one_forked_worker() -> shmpool::pool::PoolBuilder {
    Pool::builder().workers(1).start_method(StartMethod::Fork)
}

/// Forks a child that starts a pool from `pool` and runs `job` with its inherited copy of an
/// array (reached through a `std::sync::Mutex` the child's code captured, as a safe program
/// would) and an array of its own; asserts the child stops with the panic that names the
/// inheritance (exit 101, not a SIGSEGV) and the parent's array is untouched.
pub(crate) fn assert_inherited_refused(
    case: &str,
    pool: fn() -> shmpool::pool::PoolBuilder,
    job: InheritedJob,
) {
    let m = std::sync::Mutex::new(SharedArray::<u64>::zeroed(4096).unwrap());
    let st = scope(|s| {
        s.fork(|| {
            let mut pool = pool().build().unwrap();
            let mut own = SharedArray::<u64>::zeroed(4096).unwrap();
            job(&mut pool, &mut m.lock().unwrap(), &mut own);
        })
        .unwrap()
        .join()
        .unwrap()
    })
    .unwrap();
    assert_eq!(st.code(), Some(101), "{case}: {st}");
    let said = st.panic_message().is_some_and(|p| p.contains("inheritance"));
    assert!(said, "{case}: {st}");
    assert!(m.lock().unwrap().iter().all(|&x| x == 0), "{case}: the parent's array changed");
}

/// Found by review: a child starts a pool of its own and hands it the array it inherited; the
/// pool would map the parent's array by handle. An inherited array has no handle: the child
/// stops with a message saying why, and the parent's data is untouched.
fn an_inherited_array_cannot_be_given_to_a_childs_pool() {
    assert_inherited_refused("for_each_chunk in the workers", fork_pool, |pool, a, _| {
        let _ = pool.for_each_chunk(a, add_one);
    });
}

fn sum_u64(c: &[u64]) -> u64 {
    c.iter().sum()
}

fn copy_at(i: &[u64], at: usize, o: &mut [u64]) {
    o.copy_from_slice(&i[at..at + o.len()]);
}

fn add_u64(a: &[u64], b: &[u64], o: &mut [u64]) {
    o.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (a, b))| *o = a + b);
}

/// The same attack on a small call, which the older operations run in the caller (the pool's
/// default inline threshold): no worker maps anything, so the refusal must come before the
/// kernel touches the inherited pages, as a panic saying why, not a SIGSEGV. Each operation in
/// turn, each in its own child.
fn an_inherited_array_cannot_be_given_to_a_small_job_run_in_the_caller() {
    let ops: [(&str, InheritedJob); 4] = [
        ("for_each_chunk", |pool, a, _| {
            let _ = pool.for_each_chunk(a, add_one);
        }),
        ("map_reduce", |pool, a, _| {
            let _ = pool.map_reduce(a, sum_u64, |x, y| x + y);
        }),
        ("zip", |pool, a, own| {
            let a = &*a;
            let _ = pool.zip(a, a, own, add_u64);
        }),
        ("stencil", |pool, a, own| {
            let _ = pool.stencil(a, own, 1, copy_at);
        }),
    ];
    for (op, job) in ops {
        assert_inherited_refused(op, one_forked_worker, job);
    }
}

/// Found by review: a fork shmpool did not make (a crate calling `fork()` itself) still runs
/// the fork handlers, so the holes are sealed: an array the child creates never lands where an
/// inherited one was, and touching the inherited one faults.
fn a_fork_shmpool_did_not_make_is_sealed_too() {
    let a = SharedArray::<u64>::from_fn(1 << 17, |i| i as u64).unwrap();
    let addr = a.as_ptr() as usize;
    // A new array in the child never lands where the inherited one was.
    let status = foreign_fork(|| {
        let b = SharedArray::<u64>::zeroed(1 << 17).unwrap();
        if b.as_ptr() as usize == addr {
            // SAFETY: ends the child without running the parent's destructors or the harness.
            unsafe { libc::_exit(1) };
        }
    });
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{status:#x}");
    // Touching the inherited one faults.
    let status = foreign_fork(|| {
        std::hint::black_box(a[5]);
    });
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == SIGSEGV, "{status:#x}");
}

#[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
#[repr(C, align(8192))]
struct PastAPage([[u8; 4096]; 2]);

/// Found by review: a child maps what it is lent at a page boundary of the kernel's choosing,
/// which keeps alignment only up to a page; a value aligned past that would arrive misaligned.
fn values_aligned_past_a_page_are_not_lent() {
    let mut a = SharedArray::<u8>::zeroed(3 * 8192).unwrap();
    let off = (8192 - a.as_ptr() as usize % 8192) % 8192;
    let big: &mut PastAPage = bytemuck::from_bytes_mut(&mut a[off..off + 8192]);
    let r = scope(|s| s.fork_with(big, |b| b.0[0][0] = 1).map(drop)).unwrap();
    match r {
        Err(e @ Error::InvalidArgument { .. }) => assert!(e.to_string().contains("page"), "{e}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

/// Found by review: the handler that explains faults in sealed memory must pass a SIGSEGV that
/// another process sends (no fault address; it does not come back by itself) on to the action it
/// replaced, so a child behaves as it would without it: std's handler lets the first one go
/// (it resets SIGSEGV to the default and returns), the second one kills. With or without sealed
/// holes (and so the handler) in the child, two sent SIGSEGVs end it.
fn a_sigsegv_sent_to_a_child_still_kills_it() {
    for holes in [false, true] {
        let keep = holes.then(|| SharedArray::<u64>::zeroed(16).unwrap());
        let st = scope(|s| {
            let mut c = s.fork(|| std::thread::sleep(Duration::from_secs(10))).unwrap();
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(50));
                let sent = std::process::Command::new("kill")
                    .args(["-SEGV", &c.pid().to_string()])
                    .status()
                    .unwrap();
                assert!(sent.success());
            }
            c.join_timeout(Duration::from_secs(5))
                .unwrap()
                .expect("the child outlived two SIGSEGVs")
        })
        .unwrap();
        assert_eq!(st.signal(), Some(SIGSEGV), "holes: {holes}: {st}");
        drop(keep);
    }
}

/// Forks `body` the way a crate that calls `fork()` itself would, and returns the child's wait
/// status. The child leaves with `_exit(0)` if `body` returns.
fn foreign_fork(body: impl FnOnce()) -> i32 {
    // SAFETY: test scaffolding standing in for a fork wrapper of another crate: the runner is
    // single-threaded, and the child never returns into the harness (it `_exit`s or dies).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        body();
        // SAFETY: ends the child without running the parent's destructors or the harness.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer; `pid` is our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    status
}

/// Found by the second review: a fork shmpool did not make (so could not refuse) while this
/// process holds a lock guard copies the guard, and a `&mut` taken from it, into the child. The
/// fork handlers take the lock-protected data away from such a child: it dies on its first
/// touch instead of writing what the parent's guard protects. Without a guard held, the child
/// keeps using the lock as made for sharing.
fn a_fork_shmpool_did_not_make_while_a_guard_is_held_loses_the_data() {
    let m = shmpool::Mutex::new(0u64).unwrap();
    let mut g = m.lock().unwrap();
    let r: &mut u64 = &mut g;
    let status = foreign_fork(|| *std::hint::black_box(&mut *r) += 1);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == SIGSEGV, "{status:#x}");
    *r += 1;
    drop(g);
    assert_eq!(*m.lock().unwrap(), 1, "only the parent's write");
    let status = foreign_fork(|| *m.lock().unwrap() += 10);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{status:#x}");
    assert_eq!(*m.lock().unwrap(), 11, "the child's write under the lock");
}
