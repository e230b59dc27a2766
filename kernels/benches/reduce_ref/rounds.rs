//! Alternating rounds, shared by the `reduce` and `reduce_diag` benches: every row timed once
//! per round in a rotating order, so drift on a shared machine hits every row alike.

use std::hint::black_box;
use std::time::Instant;

/// A row: its name and one call.
pub type Row<'a, T> = (String, Box<dyn FnMut() -> T + 'a>);

/// Times every row `rounds` times, starting each round one row further on, `reps` calls a
/// timing; returns each row's seconds per call, one entry per round in round order (so that
/// rows can be compared round by round).
pub fn alternate<T>(rows: &mut [Row<'_, T>], rounds: usize, reps: usize) -> Vec<Vec<f64>> {
    let mut secs = vec![Vec::with_capacity(rounds); rows.len()];
    for r in 0..rounds {
        for k in 0..rows.len() {
            let i = (k + r) % rows.len();
            let t = Instant::now();
            for _ in 0..reps {
                black_box((rows[i].1)());
            }
            secs[i].push(t.elapsed().as_secs_f64() / reps as f64);
        }
    }
    secs
}
