//! Tutorial 001 ("Multiprocessing", "Process Pools": the basic and the async example) and
//! tutorial 002 ("Python Multiprocessing", "Use a pool of workers"), plus the most common Pool
//! program there is, a map over strings (`pool.map(process_file, paths)`).
//!
//! `cargo run --release --example tutorial_pool_map`
//!
//! The Python originals:
//!
//! ```python
//! def square(x):
//!     print(f"Processing {x}")
//!     time.sleep(1)  # Simulate work
//!     return x * x
//!
//! def cube(x):
//!     return x ** 3
//!
//! def f(x):
//!     return x*x
//!
//! if __name__ == '__main__':
//!     with Pool(3) as pool:
//!         results = pool.map(square, [1, 2, 3, 4, 5])
//!     print(f"Squares: {results}")
//!
//!     with Pool() as pool:  # Defaults to CPU count
//!         async_result = pool.map_async(cube, [1, 2, 3])
//!         print("Main thread working...")
//!         print(async_result.get())
//!
//!     with Pool(processes=4) as pool:
//!         res = pool.apply_async(f, [10])
//!         print(res.get(timeout=1))
//!
//!     with Pool(2) as pool:
//!         print(pool.map(str.upper, ["a.txt", "b.txt", "c.txt"]))
//! ```
//!
//! print (the five `Processing` lines in any order; the squares after about 2 seconds, not 5):
//!
//! ```text
//! Processing 1
//! Processing 2
//! Processing 3
//! Processing 4
//! Processing 5
//! Squares: [1, 4, 9, 16, 25]
//! Main thread working...
//! [1, 8, 27]
//! 100
//! ['A.TXT', 'B.TXT', 'C.TXT']
//! ```
//!
//! This port prints the same. Python's `with Pool(...)` is a scope: the pool is closed and joined when it is
//! dropped. `pool.map(f, xs)` takes a `chunksize` (`None`: Python's default); any
//! `Serialize + DeserializeOwned` argument and result travels, `String`s included.

use std::time::{Duration, Instant};

use shmpool::{Pool, cpu_count};

fn square(x: i64) -> i64 {
    println!("Processing {x}");
    std::thread::sleep(Duration::from_secs(1)); // Simulate work
    x * x
}

fn cube(x: i64) -> i64 {
    x.pow(3)
}

fn f(x: i64) -> i64 {
    x * x
}

fn upper(name: String) -> String {
    name.to_uppercase()
}

fn main() -> shmpool::Result<()> {
    let start = Instant::now();
    let results = Pool::new(3)?.map(square, [1, 2, 3, 4, 5], None)?;
    println!("Squares: {results:?}");
    // Three workers, five one-second tasks: two rounds.
    assert!(start.elapsed() < Duration::from_secs(4), "{:?}", start.elapsed());

    {
        let mut pool = Pool::new(cpu_count())?;
        let mut async_result = pool.map_async(cube, [1, 2, 3], None)?;
        println!("Main thread working...");
        println!("{:?}", async_result.get()?);
    }

    {
        let mut pool = Pool::new(4)?;
        let mut res = pool.apply_async(f, 10)?;
        println!("{}", res.get_timeout(Duration::from_secs(1))?);
    }

    let mut pool = Pool::new(2)?;
    let names = ["a.txt", "b.txt", "c.txt"].map(String::from);
    let upper_names = pool.map(upper, &names, None)?;
    // Python's repr of a list of strings: single quotes.
    let quoted: Vec<String> = upper_names.iter().map(|n| format!("'{n}'")).collect();
    println!("[{}]", quoted.join(", "));
    Ok(())
}
