//! Tutorial 004 (an introduction to Python's `multiprocessing`, "first steps" through "Pool of
//! worker processes"): a CPU-bound task that returns its start and finish times as a tuple, run
//! in a child process started under a start method chosen once for the whole program
//! (`mp.set_start_method("fork")`), then over a `Pool` whose `map` returns the tuples, then
//! through `map_async`.
//!
//! `cargo run --release --example tutorial_cpu_bound`
//!
//! The Python original (its logging format is `"%(asctime)s: %(message)s"`, times `%H:%M:%S`):
//!
//! ```python
//! shared_list = []
//!
//! def cpu_bound_operation(n: int) -> tuple[float]:
//!     start = perf_counter()
//!     count = 0
//!     for i in range(n):
//!         count += i
//!     finish = perf_counter()
//!     return start, finish
//!
//! def cpu_bound_task_1(counts):
//!     time = cpu_bound_operation(counts)
//!     logging.info(f"time 1 - {time}")
//!     logging.info(f"shared_list 1 {shared_list}")
//!     shared_list.append([time])
//!     logging.info(f"shared_list 1 {shared_list}")
//!
//! def cpu_bound_task_2(counts):  # the same, logging "2"
//!     ...
//!
//! def cpu_bound_task(counts):
//!     time = cpu_bound_operation(counts)
//!     logging.info(f"-------- Process: {os.getpid()} --------")
//!     logging.info(f"time - {time}\n")
//!     return [time]
//!
//! def multiprocessing():
//!     mp.set_start_method("fork")
//!     start = perf_counter()
//!     p = mp.Process(target=cpu_bound_task_2, args=(150000000,))
//!     p.start()
//!     cpu_bound_task_1(150000000)   # in the main process, meanwhile
//!     p.join()
//!     logging.info(f"final shared_list {shared_list}")
//!     logging.info(f"Total time :: {round(perf_counter() - start, 4)} secs")
//!
//!     with Pool(processes=4) as pool:
//!         res = pool.map(cpu_bound_task, [50000000] * 4)
//!     logging.info(res)
//!
//!     with Pool(processes=4) as pool:
//!         res = pool.map_async(cpu_bound_task, [50000000] * 24, 1)
//!         logging.info(f"res.ready(): {res.ready()}")
//!         logging.info("waiting...")
//!         res.wait()
//!         logging.info(f"res.ready(): {res.ready()}")
//!         res = res.get()
//! ```
//!
//! prints (times and pids vary, the worker lines interleave in any order):
//!
//! ```text
//! 20:54:27: Init parallel program
//! 20:54:31: time 1 - (24648.12229775, 24651.257626791)
//! 20:54:31: shared_list 1 []
//! 20:54:31: shared_list 1 [[(24648.12229775, 24651.257626791)]]
//! 20:54:31: time 2 - (24648.122759958, 24651.44781075)
//! 20:54:31: shared_list 2 []
//! 20:54:31: shared_list 2 [[(24648.122759958, 24651.44781075)]]
//! 20:54:31: final shared_list [[(24648.12229775, 24651.257626791)]]
//! 20:54:31: Total time :: 3.3296 secs
//! 22:17:25: -------- Process: 44665 --------
//! 22:17:25: time - (56633.60939425, 56634.651306916)
//!   ... (one pair of lines per task)
//! 22:17:25: [[(56633.60939425, 56634.651306916)], [(56633.612802333, 56634.656112583)], [(56633.641066125, 56634.707866125)], [(56633.64181075, 56634.682685541)]]
//! 20:05:53: res.ready(): False
//! 20:05:53: waiting...
//!   ... (one pair of lines per task)
//! 20:06:00: res.ready(): True
//! 20:06:00: Finish parallel program
//! ```
//!
//! This port prints the same lines, with `perf_counter` read from the same clock
//! (`CLOCK_MONOTONIC`) and four times Python's counts (Rust's loop runs about 100 times faster
//! than CPython's, so each task takes a tenth of a second or so and the program about a second). As in Python, the
//! child's `shared_list` is a copy: its append never reaches the parent's list.
//! `set_start_method` is `shmpool::set_start_method`, which, as Python's, must come before
//! anything reads the default; `Process` and `Pool` both take that default when none is named.

use std::fmt::Debug;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use shmpool::{Context, Pool, StartMethod, set_start_method};

/// Four times Python's 150,000,000 and 50,000,000.
const LONG: u64 = 600_000_000;
const SHORT: u64 = LONG / 3;

type Times = (f64, f64);

static SHARED_LIST: Mutex<Vec<Vec<Times>>> = Mutex::new(Vec::new());

/// Python's `time.perf_counter()`: seconds on the monotonic clock, the same in every process.
fn perf_counter() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is always available on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// `logging.info` with the tutorial's format: `HH:MM:SS: message` (UTC here).
fn log(message: impl std::fmt::Display) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    println!("{h:02}:{m:02}:{s:02}: {message}");
}

fn cpu_bound_operation(n: u64) -> Times {
    let start = perf_counter();
    let mut count = 0u64;
    for i in 0..n {
        // black_box: without it the loop folds into n * (n - 1) / 2 and measures nothing.
        count = black_box(count.wrapping_add(i));
    }
    black_box(count);
    (start, perf_counter())
}

fn list_repr(list: &impl Debug) -> String {
    format!("{list:?}")
}

fn cpu_bound_task_numbered(which: u32, counts: u64) {
    let time = cpu_bound_operation(counts);
    log(format!("time {which} - {time:?}"));
    let mut list = SHARED_LIST.lock().unwrap_or_else(|e| e.into_inner());
    log(format!("shared_list {which} {}", list_repr(&*list)));
    list.push(vec![time]);
    log(format!("shared_list {which} {}", list_repr(&*list)));
}

fn cpu_bound_task_2(counts: u64) {
    cpu_bound_task_numbered(2, counts);
}

fn cpu_bound_task(counts: u64) -> Vec<Times> {
    let time = cpu_bound_operation(counts);
    log(format!("-------- Process: {} --------", std::process::id()));
    log(format!("time - {time:?}\n"));
    vec![time]
}

fn main() -> shmpool::Result<()> {
    log("Init parallel program");
    set_start_method(StartMethod::Fork)?;

    let start = perf_counter();
    let mut p = Context::default().start(cpu_bound_task_2, LONG)?;
    cpu_bound_task_numbered(1, LONG);
    let status = p.join()?;
    assert!(status.success(), "the child failed: {status}");
    let list = SHARED_LIST.lock().unwrap_or_else(|e| e.into_inner());
    log(format!("final shared_list {}", list_repr(&*list)));
    assert_eq!(list.len(), 1, "the child's append reached the parent");
    drop(list);
    log(format!("Total time :: {:.4} secs", perf_counter() - start));

    {
        let mut pool = Pool::new(4)?;
        assert_eq!(pool.start_method(), StartMethod::Fork);
        let res = pool.map(cpu_bound_task, [SHORT; 4], None)?;
        log(list_repr(&res));
    }

    {
        let mut pool = Pool::new(4)?;
        let mut res = pool.map_async(cpu_bound_task, [SHORT; 24], Some(1))?;
        log(format!("res.ready(): {}", python_bool(res.is_ready())));
        log("waiting...");
        res.wait()?;
        log(format!("res.ready(): {}", python_bool(res.is_ready())));
        let res = res.get()?;
        assert_eq!(res.len(), 24);
    }
    log("Finish parallel program");
    Ok(())
}

fn python_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}
