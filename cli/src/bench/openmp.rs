//! The C/OpenMP bridge: writes `bench_openmp.c` (embedded in the binary) to the scratch
//! directory, builds it with `CC -O3 -march=native -fopenmp`, and starts it.

use std::process::{Command, ExitStatus};
use std::time::Duration;

use super::bridge::{Bridge, deadline};
use super::scratch::Scratch;

/// The C source.
const SOURCE: &str = include_str!("bench_openmp.c");

/// Builds and starts the C contender; on failure says why (the reason its cells are skipped
/// with). Returns the compiler's version line too.
pub(crate) fn start(cc: &str, scratch: &Scratch) -> Result<(Bridge, String), String> {
    let mut probe = Command::new(cc);
    probe.arg("--version");
    let (_, version) = run_bounded(&mut probe, scratch, "cc-version")
        .map_err(|e| format!("{cc} not found ({e}); install gcc with libgomp or pass --cc PATH"))?;
    let version = version.lines().next().unwrap_or(cc).to_string();
    let src = scratch.path().join("bench_openmp.c");
    let bin = scratch.path().join("bench_openmp");
    std::fs::write(&src, SOURCE).map_err(|e| format!("could not write {}: {e}", src.display()))?;
    let mut build = Command::new(cc);
    build.args(["-O3", "-march=native", "-fopenmp", "-o"]).arg(&bin).arg(&src);
    let (status, err) = run_bounded(&mut build, scratch, "cc-build")
        .map_err(|e| format!("{cc} could not be run ({e}); install gcc or pass --cc PATH"))?;
    if !status.success() {
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(format!(
            "{cc} could not build the OpenMP contender ({last}); install gcc with OpenMP (libgomp)"
        ));
    }
    // Idle OpenMP threads sleep instead of spinning: they take no CPU from the contender that
    // runs next, and on a busy machine spinning team threads slowed the stencil's steps 5-8x
    // (measured: 130-170 ms a round spinning, 19-32 ms passive, 2 threads, load 9 on 2 cores).
    let mut cmd = Command::new(&bin);
    cmd.env("OMP_WAIT_POLICY", "PASSIVE");
    let bridge = Bridge::start("the C/OpenMP process", cmd, &scratch.path().join("c.stderr"))?;
    Ok((bridge, version))
}

/// How long the compiler may take to print its version or build the contender.
const COMPILE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd` within [`COMPILE_TIMEOUT`] (or the bridge's environment override), its output in
/// the scratch directory's `NAME.out` ([`run_bounded`](super::bounded::run_bounded)): a
/// compiler that hangs is killed and reaped, and the C contender is skipped with the reason,
/// instead of hanging the whole run.
fn run_bounded(
    cmd: &mut Command,
    scratch: &Scratch,
    name: &str,
) -> Result<(ExitStatus, String), String> {
    let out = scratch.path().join(format!("{name}.out"));
    super::bounded::run_bounded(cmd, &out, deadline(COMPILE_TIMEOUT))
}
