//! Running a helper program (a C compiler) to its end within a time limit, its output in a file.
//!
//! Also compiled into the kernels crate's reduce bench (`#[path]` in
//! `kernels/benches/reduce.rs`), which builds its C/OpenMP reference the same way: the two
//! crates share no crate that a process helper belongs in, so they share this file. It uses
//! `std` only.

use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` to its end or `limit`, its stdout and stderr going to the file `out` (no pipe to
/// fill while we wait, as a compiler's pages of errors would); returns its status and what it
/// printed (both streams, in one file). A program that outlives `limit` is killed and reaped,
/// and the error says so; a `limit` past the clock's range is no limit.
pub(crate) fn run_bounded(
    cmd: &mut Command,
    out: &Path,
    limit: Duration,
) -> Result<(ExitStatus, String), String> {
    let file = File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let err = file.try_clone().map_err(|e| format!("{}: {e}", out.display()))?;
    let mut child =
        cmd.stdin(Stdio::null()).stdout(file).stderr(err).spawn().map_err(|e| e.to_string())?;
    let end = Instant::now().checked_add(limit);
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if end.is_some_and(|end| Instant::now() >= end) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("it did not finish within {limit:?}"));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    Ok((status, std::fs::read_to_string(out).unwrap_or_default()))
}
