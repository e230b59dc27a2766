//! Tutorial 002 ("Python Multiprocessing", "A simple example of multiprocessing": a child that
//! prints its own and its parent's process ids) and tutorial 000 ("multiprocessing", "Sample
//! code": two processes whose targets take no arguments).
//!
//! `cargo run --release --example tutorial_parent_child`
//!
//! The Python originals (002's `.format` calls lack their `{}` and its `args=('firstone')` is a
//! string, not a tuple: ported as meant):
//!
//! ```python
//! def task(name):
//!     print("Starting child process with id: {}".format(os.getpid()))
//!     print("Parent process: {}".format(os.getppid()))
//!     print("Task start: just sleeps 5 seconds ...")
//!     time.sleep(5)
//!     print("Task done")
//!
//! def print_numbers():
//!     for i in range(10):
//!         print(i)
//!
//! def print_letters():
//!     for letter in 'abcdefghij':
//!         print(letter)
//!
//! if __name__ == "__main__":
//!     print("In parent process, id {}".format(os.getpid()))
//!     p = Process(target=task, args=('firstone',))
//!     p.start()
//!     print("In parent process, after child process start")
//!     print("parent process about to join child process")
//!     p.join()
//!     print("In parent process, after child process join")
//!     print("parent process exiting with id {}".format(os.getpid()))
//!     print("the parent's parent process: {}".format(os.getppid()))
//!
//!     p1 = Process(target=print_numbers)
//!     p2 = Process(target=print_letters)
//!     p1.start(); p2.start()
//!     p1.join(); p2.join()
//! ```
//!
//! prints (pids vary; the digits and letters interleave in any order, each run in order):
//!
//! ```text
//! In parent process, id 5245
//! In parent process, after child process start
//! parent process about to join child process
//! Starting child process with id: 5246
//! Parent process: 5245
//! Task start: just sleeps 5 seconds ...
//! Task done
//! In parent process, after child process join
//! parent process exiting with id 5245
//! the parent's parent process: 5231
//! 0
//! 1
//! a
//! ...
//! 9
//! j
//! ```
//!
//! This port prints the same. The tutorial ran under `fork`, where `os.getppid()` in the child
//! is the parent; under the default `forkserver` the OS parent is the server, so the child asks
//! `shmpool::parent_process()` (Python's `multiprocessing.parent_process()`), which names the
//! process that started it under every start method. A target without arguments takes `()`.

use std::time::Duration;

use shmpool::{Context, Process, current_process, parent_process};

fn task(_name: String) {
    println!("Starting child process with id: {}", current_process().pid());
    let parent = parent_process().map_or(0, |p| p.pid());
    println!("Parent process: {parent}");
    println!("Task start: just sleeps 5 seconds ...");
    std::thread::sleep(Duration::from_secs(5));
    println!("Task done");
}

fn print_numbers(_: ()) {
    for i in 0..10 {
        println!("{i}");
    }
}

fn print_letters(_: ()) {
    for letter in 'a'..='j' {
        println!("{letter}");
    }
}

fn join(p: &mut Process) -> shmpool::Result<()> {
    let status = p.join()?;
    assert!(status.success(), "{} failed: {status}", p.name());
    Ok(())
}

fn main() -> shmpool::Result<()> {
    let ctx = Context::default();
    let me = std::process::id();

    println!("In parent process, id {me}");
    let mut p = ctx.start(task, "firstone".to_string())?;
    println!("In parent process, after child process start");
    println!("parent process about to join child process");
    join(&mut p)?;
    println!("In parent process, after child process join");
    println!("parent process exiting with id {me}");
    println!("the parent's parent process: {}", std::os::unix::process::parent_id());

    let mut p1 = ctx.start(print_numbers, ())?;
    let mut p2 = ctx.start(print_letters, ())?;
    join(&mut p1)?;
    join(&mut p2)?;
    Ok(())
}
