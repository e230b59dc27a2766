//! Child processes update one shared array in place; the parent sees every write.
//!
//! `cargo run --release --example inplace_children`

use shmpool::{SharedArray, scope};

fn main() -> shmpool::Result<()> {
    let n = 1 << 20;
    let mut a = SharedArray::<f64>::from_fn(n, |i| i as f64)?;
    let pids = scope(|s| -> shmpool::Result<Vec<u32>> {
        let mut pids = Vec::new();
        for chunk in a.split_mut(4) {
            // The chunk is lent to the child, which maps it and nothing else of the array.
            let child = s.fork_with(chunk, shmpool_kernels::scale_add)?;
            pids.push(child.pid());
            // Dropped unjoined: the scope reaps it and reports a failure as an error.
        }
        Ok(pids)
    })??;
    let ok = a.iter().enumerate().all(|(i, &x)| x == i as f64 * 1.0001 + 0.5);
    println!(
        "children {pids:?} updated {n} elements in place: {}",
        if ok { "all correct" } else { "WRONG" }
    );
    Ok(())
}
