//! Tutorial 001 ("Multiprocessing"): "Shared Memory with Value and Array" (one child counts to
//! 1000 in a shared integer, another doubles a shared array) and "Using Locks for Safe Access"
//! (three processes increment one counter under a lock).
//!
//! `cargo run --release --example tutorial_shared_state`
//!
//! The Python originals:
//!
//! ```python
//! def increment_counter(counter):
//!     for _ in range(1000):
//!         counter.value += 1
//!
//! def modify_array(arr):
//!     for i in range(len(arr)):
//!         arr[i] *= 2
//!
//! def safe_increment(lock, counter):
//!     for _ in range(5):
//!         time.sleep(0.1)  # Simulate work
//!         with lock:
//!             counter.value += 1
//!             print(f"Process {os.getpid()} incremented to {counter.value}")
//!
//! if __name__ == '__main__':
//!     counter = Value('i', 0)
//!     arr = Array('d', [1.0, 2.0, 3.0])
//!     p1 = Process(target=increment_counter, args=(counter,))
//!     p2 = Process(target=modify_array, args=(arr,))
//!     p1.start(); p2.start()
//!     p1.join(); p2.join()
//!     print(f"Final counter: {counter.value}")
//!     print(f"Modified array: {list(arr)}")
//!
//!     lock = Lock()
//!     counter = Value('i', 0)
//!     processes = []
//!     for _ in range(3):
//!         p = Process(target=safe_increment, args=(lock, counter))
//!         processes.append(p)
//!         p.start()
//!     for p in processes:
//!         p.join()
//!     print(f"Final counter value: {counter.value}")
//! ```
//!
//! print (the pids vary, and which process makes which increment; the counts run 1 to 15):
//!
//! ```text
//! Final counter: 1000
//! Modified array: [2.0, 4.0, 6.0]
//! Process 4242 incremented to 1
//! Process 4243 incremented to 2
//! Process 4244 incremented to 3
//! ...
//! Process 4244 incremented to 15
//! Final counter value: 15
//! ```
//!
//! This port prints the same. `Value('i', 0)` is `SharedValue::new(0i32)` (its own lock, as
//! `Value`'s `lock=True`), `Array('d', ...)` is `LockedArray::from_slice` (`get_lock()` as in
//! Python), `Lock()` is `Mutex::new(())`; all three are passed to the child as arguments, as in
//! Python, each as a second handle (`X::open_handle(&x.handle())`: they are not `Clone`), so
//! the parent keeps its own. `counter.value += 1` is `*counter.lock()? += 1`: one locked read-modify-write, where
//! Python's is two separate locked steps.

use std::time::Duration;

use shmpool::{Context, LockedArray, Mutex, Process, SharedValue};

fn increment_counter(counter: SharedValue<i32>) -> shmpool::Result<()> {
    for _ in 0..1000 {
        *counter.lock()? += 1;
    }
    Ok(())
}

fn modify_array(arr: LockedArray<f64>) -> shmpool::Result<()> {
    let mut a = arr.lock()?;
    for x in a.iter_mut() {
        *x *= 2.0;
    }
    Ok(())
}

fn safe_increment((lock, counter): (Mutex<()>, SharedValue<i32>)) -> shmpool::Result<()> {
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(100)); // Simulate work
        let _held = lock.lock()?;
        *counter.lock()? += 1;
        println!("Process {} incremented to {}", std::process::id(), counter.get()?);
    }
    Ok(())
}

fn join(p: &mut Process) -> shmpool::Result<()> {
    let status = p.join()?;
    assert!(status.success(), "{} failed: {status}", p.name());
    Ok(())
}

fn main() -> shmpool::Result<()> {
    let ctx = Context::default();

    let counter = SharedValue::new(0i32)?;
    let arr = LockedArray::from_slice(&[1.0f64, 2.0, 3.0])?;
    // The objects are not `Clone`: a second handle to each goes to the child, this process keeps
    // the first.
    let mut p1 = ctx.start(increment_counter, SharedValue::open_handle(&counter.handle())?)?;
    let mut p2 = ctx.start(modify_array, LockedArray::open_handle(&arr.handle())?)?;
    join(&mut p1)?;
    join(&mut p2)?;
    println!("Final counter: {}", counter.get()?);
    println!("Modified array: {:?}", arr.to_vec()?);

    let lock = Mutex::new(())?;
    let counter = SharedValue::new(0i32)?;
    let mut processes = Vec::new();
    for _ in 0..3 {
        let objects =
            (Mutex::open_handle(&lock.handle())?, SharedValue::open_handle(&counter.handle())?);
        processes.push(ctx.start(safe_increment, objects)?);
    }
    for p in &mut processes {
        join(p)?;
    }
    println!("Final counter value: {}", counter.get()?);
    Ok(())
}
