//! Tutorial 003 ("How to Use the Multiprocessing Package in Python", "How to Implement Pipe")
//! and tutorial 004 ("Exchanging objects between processes", "Pipe function"), ported as Python
//! writes them: the pipe ends are `Process` arguments, under the default start method (the
//! forkserver, as Python 3.14's on Linux), not inherited through a `fork` closure as in
//! `tutorial_pipe.rs`.
//!
//! `cargo run --release --example tutorial_pipe_args`
//!
//! The Python original (003's code is linked, not shown, in the tutorial: this is the program its
//! text describes; 004's child is cut down to the send, as its timing output varies):
//!
//! ```python
//! from multiprocessing import Pipe, Process
//!
//! def cube_sender(x_conn, number):
//!     x_conn.send(number ** 3)
//!     x_conn.close()
//!
//! def cube_receiver(y_conn):
//!     print(f"Cube: {y_conn.recv()}")
//!
//! def cpu_bound_task_2(counts, conn):            # 004's child
//!     conn.send([(1.5, 2.5)])
//!     conn.close()
//!
//! if __name__ == '__main__':
//!     x_conn, y_conn = Pipe()
//!     p1 = Process(target=cube_sender, args=(x_conn, 19))
//!     p2 = Process(target=cube_receiver, args=(y_conn,))
//!     p1.start(); p2.start()
//!     p1.join(); p2.join()
//!
//!     parent_conn, child_conn = Pipe()
//!     p = Process(target=cpu_bound_task_2, args=(150000000, child_conn))
//!     p.start()
//!     print(f"child process time: {parent_conn.recv()}")
//!     p.join()
//! ```
//!
//! prints
//!
//! ```text
//! Cube: 6859
//! child process time: [(1.5, 2.5)]
//! ```
//!
//! This port prints the same. `Pipe()` is `shmpool::pipe(true)`; `Process(target=f, args=(a,
//! b)).start()` is `Context::default().start(f, (a, b))`. A `Connection` argument's socket
//! travels with the start (at most two per child); the parent's copy of a `Connection` it gave
//! away is closed when the child has ended.

use shmpool::{Connection, Context, Process, pipe};

fn cube_sender((mut x_conn, number): (Connection, i64)) -> shmpool::Result<()> {
    x_conn.send(&number.pow(3))?;
    x_conn.close();
    Ok(())
}

fn cube_receiver(mut y_conn: Connection) -> shmpool::Result<()> {
    println!("Cube: {}", y_conn.recv::<i64>()?);
    Ok(())
}

fn cpu_bound_task_2((_counts, mut conn): (u64, Connection)) -> shmpool::Result<()> {
    conn.send(&vec![(1.5f64, 2.5f64)])?;
    conn.close();
    Ok(())
}

fn join(p: &mut Process) -> shmpool::Result<()> {
    let status = p.join()?;
    assert!(status.success(), "{} failed: {status}", p.name());
    Ok(())
}

fn main() -> shmpool::Result<()> {
    let ctx = Context::default();

    let (x_conn, y_conn) = pipe(true)?;
    let mut p1 = ctx.start(cube_sender, (x_conn, 19))?;
    let mut p2 = ctx.start(cube_receiver, y_conn)?;
    join(&mut p1)?;
    join(&mut p2)?;

    let (mut parent_conn, child_conn) = pipe(true)?;
    let mut p = ctx.start(cpu_bound_task_2, (150_000_000, child_conn))?;
    let child_time: Vec<(f64, f64)> = parent_conn.recv()?;
    println!("child process time: {child_time:?}");
    join(&mut p)?;
    Ok(())
}
