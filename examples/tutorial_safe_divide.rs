//! Tutorial 001 ("Multiprocessing", "Error Handling"): each task's result is a number or an
//! error message, and the list mixes both.
//!
//! `cargo run --release --example tutorial_safe_divide`
//!
//! The Python original:
//!
//! ```python
//! def safe_divide(x):
//!     try:
//!         return 100 / x
//!     except Exception as e:
//!         return f"Error: {e}"
//!
//! with Pool(2) as pool:
//!     print(pool.map(safe_divide, [10, 0, 5]))
//! ```
//!
//! prints
//!
//! ```text
//! [10.0, 'Error: division by zero', 20.0]
//! ```
//!
//! This port prints the same line. "A float or a string" is a `Result<f64, String>` in Rust, and
//! `Pool::map` carries it as it carries any serde value: every task's own outcome comes back in
//! order. Where the first failure should fail the whole map instead (Python's behaviour when
//! `safe_divide` does not catch), `Pool::try_map` returns `Error::TaskFailed` naming the task;
//! the port prints that case too:
//!
//! ```text
//! task 1 failed: division by zero
//! ```

use shmpool::{Error, Pool};

fn safe_divide(x: i32) -> Result<f64, String> {
    if x == 0 { Err("division by zero".to_string()) } else { Ok(100.0 / f64::from(x)) }
}

/// Python's list repr of the mixed results.
fn python_repr(results: &[Result<f64, String>]) -> String {
    let items: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("'Error: {e}'"),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn main() -> shmpool::Result<()> {
    let mut pool = Pool::new(2)?;
    let results = pool.map(safe_divide, [10, 0, 5], None)?;
    println!("{}", python_repr(&results));

    match pool.try_map(safe_divide, [10, 0, 5], None) {
        Err(Error::TaskFailed { task, message }) => println!("task {task} failed: {message}"),
        other => panic!("expected task 1 to fail, got {other:?}"),
    }
    Ok(())
}
