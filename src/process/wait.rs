//! Waiting for a child of ours to end by a deadline, where no descriptor says when it does (a
//! kernel without pidfds, a scope child, the forkserver at shutdown): `waitpid` without blocking,
//! with naps that double up to a cap.

use std::io;
use std::time::{Duration, Instant};

use crate::sys::{self, proc::Exit};

/// Reaps the child `pid` once it ended, polling until `deadline` with naps from 50 µs doubling
/// to `max_nap`; `Ok(None)` if it still runs at the deadline (it stays unreaped).
pub(crate) fn waitpid_until(
    pid: u32,
    deadline: Instant,
    max_nap: Duration,
) -> io::Result<Option<Exit>> {
    let mut nap = Duration::from_micros(50);
    loop {
        if let Some(exit) = sys::proc::try_waitpid(pid)? {
            return Ok(Some(exit));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(max_nap);
    }
}
