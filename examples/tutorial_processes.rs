//! Tutorial 001 ("Multiprocessing", "Basic Example: Running Simple Processes"): three
//! processes, each started with one argument, then joined.
//!
//! `cargo run --release --example tutorial_processes`
//!
//! The Python original:
//!
//! ```python
//! def task(name):
//!     print(f"Task {name} running in process {os.getpid()}")
//!
//! if __name__ == '__main__':
//!     processes = []
//!     for i in range(3):
//!         p = Process(target=task, args=(f"Job-{i}",))
//!         processes.append(p)
//!         p.start()
//!     for p in processes:
//!         p.join()
//!     print("All processes completed")
//! ```
//!
//! prints (the three task lines in any order, the pids differ from run to run):
//!
//! ```text
//! Task Job-0 running in process 4242
//! Task Job-1 running in process 4243
//! Task Job-2 running in process 4244
//! All processes completed
//! ```
//!
//! This port prints the same. `Process(target=task, args=(x,))` + `start()` is one call,
//! `Context::default().start(task, x)` (the default start method, as in Python); several
//! arguments are a tuple, `start(f, (a, b))`, and no argument is `start(f, ())`.

use shmpool::Context;

fn task(name: String) {
    println!("Task {name} running in process {}", std::process::id());
}

fn main() -> shmpool::Result<()> {
    let ctx = Context::default();
    let mut processes = Vec::new();
    for i in 0..3 {
        processes.push(ctx.start(task, format!("Job-{i}"))?);
    }
    for p in &mut processes {
        let status = p.join()?;
        assert!(status.success(), "{} failed: {status}", p.name());
    }
    println!("All processes completed");
    Ok(())
}
