//! Tests of [`bounded`](super::bounded), kept out of that file, which the kernels crate's
//! reduce bench compiles too.

use super::bounded::run_bounded;
use std::process::Command;
use std::time::{Duration, Instant};

/// What a compiler prints comes back whole, however much (200 KiB here, past a pipe's 64
/// KiB, which a reader waiting for the exit would have deadlocked on); one that hangs is
/// killed at the limit and reaped, and the error says so.
#[test]
fn output_comes_back_whole_and_a_hang_ends_at_the_limit() {
    let dir = std::env::temp_dir();
    let out = dir.join(format!("shmpool-bounded-{}.out", std::process::id()));
    let mut loud = Command::new("sh");
    loud.args(["-c", "head -c 204800 /dev/zero | tr '\\0' x >&2; echo done"]);
    let (status, printed) = run_bounded(&mut loud, &out, Duration::from_secs(20)).unwrap();
    assert!(status.success());
    assert_eq!(printed.len(), 204_800 + "done\n".len());
    let t = Instant::now();
    let mut hang = Command::new("sleep");
    hang.arg("30");
    let e = run_bounded(&mut hang, &out, Duration::from_millis(200)).unwrap_err();
    assert!(e.contains("did not finish within 200ms"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(run_bounded(&mut Command::new("/nonexistent/cc"), &out, Duration::MAX).is_err());
    std::fs::remove_file(&out).unwrap();
}
