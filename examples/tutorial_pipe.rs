//! Tutorial 003 ("How to Use the Multiprocessing Package in Python", "How to Implement Pipe"):
//! two processes, `cube_sender` and `cube_receiver`, talk over a pipe; the sender sends the
//! cube of 19 into one end, the receiver takes it from the other and prints it. Then the
//! pattern of tutorial 004 ("Exchanging objects between processes", "Pipe function"): a child
//! sends its result to the parent, which receives it after its own work.
//!
//! `cargo run --release --example tutorial_pipe`
//!
//! The Python original (its code is linked, not shown, in the tutorial: this is the program its
//! text describes):
//!
//! ```python
//! def cube_sender(x_conn, number):
//!     x_conn.send(number ** 3)
//!     x_conn.close()
//!
//! def cube_receiver(y_conn):
//!     print(f"Cube: {y_conn.recv()}")
//!
//! def send_result(conn):                         # 004's child
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
//!     p = Process(target=send_result, args=(child_conn,))
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
//! This port prints the same. `Pipe()` is `shmpool::pipe(true)` (duplex, as Python's default).
//! Here each child inherits its end through a closure started under `fork`
//! (`get_context(StartMethod::Fork).start_closure`), which is what Python's `fork` method does
//! too; `tutorial_pipe_args.rs` passes the ends as `Process` arguments instead, as the Python
//! program does, under any start method.

use shmpool::{Connection, Process, StartMethod, get_context, pipe};

fn cube_sender(mut x_conn: Connection, number: i64) -> shmpool::Result<()> {
    x_conn.send(&number.pow(3))?;
    x_conn.close();
    Ok(())
}

fn cube_receiver(mut y_conn: Connection) -> shmpool::Result<()> {
    println!("Cube: {}", y_conn.recv::<i64>()?);
    Ok(())
}

fn send_result(mut conn: Connection) -> shmpool::Result<()> {
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
    let ctx = get_context(StartMethod::Fork);

    let (x_conn, y_conn) = pipe(true)?;
    let mut p1 = ctx.start_closure(move || cube_sender(x_conn, 19))?;
    let mut p2 = ctx.start_closure(move || cube_receiver(y_conn))?;
    join(&mut p1)?;
    join(&mut p2)?;

    let (mut parent_conn, child_conn) = pipe(true)?;
    let mut p = ctx.start_closure(move || send_result(child_conn))?;
    let child_time: Vec<(f64, f64)> = parent_conn.recv()?;
    println!("child process time: {child_time:?}");
    join(&mut p)?;
    Ok(())
}
