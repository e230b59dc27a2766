//! Queues between processes, three tutorial programs: tutorial 000 ("multiprocessing", IPC: a
//! child puts a list, the parent prints it), tutorial 001 ("Using Queues for Communication": a
//! producer and a consumer stopped by a poison pill) and tutorial 003 ("How to Use the
//! Multiprocessing Package", "How to Implement Queue": two producers are joined, THEN the parent
//! drains the queue).
//!
//! `cargo run --release --example tutorial_queue`
//!
//! The Python originals (003's code is linked, not shown, in the tutorial: this is the program
//! its text describes):
//!
//! ```python
//! def f(q):                                   # 000
//!     q.put([42, None, 'hello'])
//!
//! def producer(queue, items):                 # 001
//!     for item in items:
//!         print(f"Producing {item}")
//!         queue.put(item)
//!
//! def consumer(queue):
//!     while True:
//!         item = queue.get()
//!         if item is None:  # Poison pill to stop
//!             break
//!         print(f"Consuming {item}")
//!
//! def cube(numbers, q):                       # 003
//!     for x in numbers:
//!         q.put(x * x * x)
//!
//! def add(numbers, q):
//!     for x in numbers:
//!         q.put(x + 1)
//!
//! if __name__ == '__main__':
//!     q = Queue()
//!     p = Process(target=f, args=(q,))
//!     p.start()
//!     print(q.get())    # prints "[42, None, 'hello']"
//!     p.join()
//!
//!     q = Queue()
//!     p1 = Process(target=producer, args=(q, ['A', 'B', 'C', 'D']))
//!     p2 = Process(target=consumer, args=(q,))
//!     p1.start(); p2.start()
//!     p1.join()
//!     q.put(None)  # Signal consumer to stop
//!     p2.join()
//!
//!     q = Queue()
//!     numbers = range(1, 11)
//!     p1 = Process(target=cube, args=(numbers, q))
//!     p2 = Process(target=add, args=(numbers, q))
//!     p1.start(); p2.start()
//!     p1.join(); p2.join()
//!     while not q.empty():
//!         print(q.get())
//! ```
//!
//! print (the `Producing` and `Consuming` lines interleave in any order, each in `A B C D`
//! order; the twenty numbers come as the two producers raced, each producer's in its order):
//!
//! ```text
//! [42, None, 'hello']
//! Producing A
//! Producing B
//! Consuming A
//! Producing C
//! Producing D
//! Consuming B
//! Consuming C
//! Consuming D
//! 1
//! 8
//! 2
//! ...
//! 1000
//! 11
//! ```
//!
//! This port prints the same. Python's `Queue()` is `MessageQueue::new()`: unbounded (it grows
//! in shared memory), any serde item, so "join the producers, then drain" cannot hang on a full
//! queue. A queue can be a `Process` argument itself, but it is not `Clone`, and the parent keeps
//! using its own: so the parent passes `q.handle()` (the same thing on the wire) and the child
//! calls `MessageQueue::open_handle`. Python's `None` is `Option::None`.

use shmpool::{Context, MessageQueue, Process, SegmentHandle};

/// 000's list `[42, None, 'hello']`, as a tuple of serde values.
type Mixed = (i32, Option<i32>, String);

fn f(q: SegmentHandle) -> shmpool::Result<()> {
    let q = MessageQueue::open_handle(&q)?;
    let item: Mixed = (42, None, "hello".to_string());
    q.put(&item)?;
    Ok(())
}

fn producer((q, items): (SegmentHandle, Vec<String>)) -> shmpool::Result<()> {
    let queue = MessageQueue::open_handle(&q)?;
    for item in items {
        println!("Producing {item}");
        queue.put(&Some(item))?;
    }
    Ok(())
}

fn consumer(q: SegmentHandle) -> shmpool::Result<()> {
    let queue = MessageQueue::open_handle(&q)?;
    while let Some(item) = queue.get::<Option<String>>()? {
        println!("Consuming {item}");
    }
    Ok(())
}

fn cube((numbers, q): (Vec<i64>, SegmentHandle)) -> shmpool::Result<()> {
    let q = MessageQueue::open_handle(&q)?;
    for x in numbers {
        q.put(&(x * x * x))?;
    }
    Ok(())
}

fn add((numbers, q): (Vec<i64>, SegmentHandle)) -> shmpool::Result<()> {
    let q = MessageQueue::open_handle(&q)?;
    for x in numbers {
        q.put(&(x + 1))?;
    }
    Ok(())
}

/// Python's `repr` of 000's list.
fn python_repr((n, none, s): &Mixed) -> String {
    let middle = none.map_or("None".to_string(), |v| v.to_string());
    format!("[{n}, {middle}, '{s}']")
}

fn join(p: &mut Process) -> shmpool::Result<()> {
    let status = p.join()?;
    assert!(status.success(), "{} failed: {status}", p.name());
    Ok(())
}

fn main() -> shmpool::Result<()> {
    let ctx = Context::default();

    let q = MessageQueue::new()?;
    let mut p = ctx.start(f, q.handle())?;
    println!("{}", python_repr(&q.get::<Mixed>()?));
    join(&mut p)?;

    let q = MessageQueue::new()?;
    let items = ["A", "B", "C", "D"].map(String::from).to_vec();
    let mut p1 = ctx.start(producer, (q.handle(), items))?;
    let mut p2 = ctx.start(consumer, q.handle())?;
    join(&mut p1)?;
    q.put(&None::<String>)?; // Signal consumer to stop
    join(&mut p2)?;

    let q = MessageQueue::new()?;
    let numbers: Vec<i64> = (1..11).collect();
    let mut p1 = ctx.start(cube, (numbers.clone(), q.handle()))?;
    let mut p2 = ctx.start(add, (numbers, q.handle()))?;
    join(&mut p1)?;
    join(&mut p2)?;
    let mut drained = 0;
    while !q.is_empty() {
        println!("{}", q.get::<i64>()?);
        drained += 1;
    }
    assert_eq!(drained, 20);
    Ok(())
}
