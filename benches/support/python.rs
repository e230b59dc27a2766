//! Runs a Python baseline script from `benches/` and returns the JSON it prints, so a benchmark
//! can show shmpool and Python `multiprocessing` side by side from one run.

use std::process::Command;

/// Runs `python3 benches/<script>`; `None` (with the reason on stderr) if it fails.
pub fn baseline(script: &str) -> Option<serde_json::Value> {
    let path = format!("{}/benches/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3").arg(path).output().ok()?;
    if !out.status.success() {
        eprintln!("python baseline failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    println!("python baseline: {}", text.trim());
    serde_json::from_str(text.trim()).ok()
}
