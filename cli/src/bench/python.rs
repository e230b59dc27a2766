//! The Python bridge: writes `cli/python/bench_contenders.py` (embedded in the binary) to the
//! scratch directory and starts it with the chosen interpreter.

use std::process::Command;

use super::bridge::Bridge;
use super::scratch::Scratch;

/// The script, as shipped in `cli/python/`.
const SCRIPT: &str = include_str!("../../python/bench_contenders.py");

/// Starts the Python contenders' process, or says why it cannot run (the reason every Python
/// cell is then skipped with).
pub(crate) fn start(python: &str, scratch: &Scratch) -> Result<Bridge, String> {
    let path = scratch.path().join("bench_contenders.py");
    std::fs::write(&path, SCRIPT)
        .map_err(|e| format!("could not write {}: {e}", path.display()))?;
    let mut cmd = Command::new(python);
    cmd.arg(&path).env("PYTHONDONTWRITEBYTECODE", "1");
    Bridge::start("the Python contenders' process", cmd, &scratch.path().join("python.stderr"))
        .map_err(|e| {
            format!("{python} could not run the Python contenders ({e}); install Python 3 or pass --python PATH")
        })
}
