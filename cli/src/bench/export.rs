//! `--json` and `--csv`: the records, machine-readable.

use std::path::Path;

use super::record::Results;
use crate::error::CliError;

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| CliError::BenchIo {
            action: "create",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| CliError::BenchIo {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the results as pretty JSON (the schema is in `docs/bench/schema.md`).
pub(crate) fn write_json(path: &Path, results: &Results) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(results)
        .map_err(|source| CliError::BenchResults { path: path.to_path_buf(), source })?;
    write(path, &(text + "\n"))
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes one CSV line per record; times in seconds, empty fields where there is no figure.
pub(crate) fn write_csv(path: &Path, results: &Results) -> Result<(), CliError> {
    let mut out = String::from(
        "workload,contender,workers,size,items,status,unit,value,median_s,min_s,q1_s,q3_s,max_s,mad_s,rounds,outliers,vs_best,vs_sequential,reason\n",
    );
    let opt = |x: Option<f64>| x.map_or_else(String::new, |v| format!("{v}"));
    for r in &results.records {
        let s = r.seconds.as_ref();
        let fields = [
            quote(&r.workload),
            quote(&r.contender),
            r.workers.to_string(),
            r.size.to_string(),
            r.items.to_string(),
            r.status.word().to_string(),
            quote(&r.unit),
            opt(r.value),
            opt(s.map(|s| s.median)),
            opt(s.map(|s| s.min)),
            opt(s.map(|s| s.q1)),
            opt(s.map(|s| s.q3)),
            opt(s.map(|s| s.max)),
            opt(s.map(|s| s.mad)),
            s.map_or_else(String::new, |s| s.rounds.to_string()),
            s.map_or_else(String::new, |s| s.outliers.len().to_string()),
            opt(r.vs_best),
            opt(r.vs_sequential),
            quote(r.reason.as_deref().unwrap_or("")),
        ];
        out += &fields.join(",");
        out.push('\n');
    }
    write(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed results parse into `Results` and serialize back to the same JSON, field
    /// for field: the schema `docs/bench/schema.md` documents is the one the code reads and
    /// writes, and `--report`/`--from` lose nothing.
    #[test]
    fn the_committed_results_round_trip_through_the_schema() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/bench/results-2026-11-30.json");
        let text = std::fs::read_to_string(path).expect("the committed results file");
        let original: serde_json::Value = serde_json::from_str(&text).unwrap();
        let parsed: Results = serde_json::from_str(&text).expect("the file matches the schema");
        assert!(!parsed.records.is_empty());
        let again = serde_json::to_value(&parsed).unwrap();
        assert_eq!(again, original, "a field was lost or changed in the round trip");
    }
}
