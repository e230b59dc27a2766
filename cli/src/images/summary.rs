//! `Batch`: every file's outcome and the batch's totals, printed as a table or as JSON.

use serde::Serialize;

use super::report::FileReport;

/// One file's outcome.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FileResult {
    /// The file read.
    pub(crate) input: String,
    /// Its report, if it was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) report: Option<FileReport>,
    /// Why it was not written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// A finished batch.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Batch {
    /// The operations, in order.
    pub(crate) pipeline: Vec<String>,
    /// Worker processes.
    pub(crate) workers: usize,
    /// How the pool's workers were started (`fork`, `forkserver` or `spawn`); none for the
    /// in-process engines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) start_method: Option<String>,
    /// Wall-clock seconds, from the batch's start (before its files are listed and its pool is
    /// started) to the last file's result.
    pub(crate) seconds: f64,
    /// Every file, in input order.
    pub(crate) files: Vec<FileResult>,
}

/// The batch's totals.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Totals {
    files: usize,
    written: usize,
    failed: usize,
    pixels: u64,
    in_bytes: u64,
    out_bytes: u64,
    files_per_s: f64,
    in_mb_per_s: f64,
    mpixels_per_s: f64,
    /// Summed over files, in milliseconds of worker time.
    decode_ms: f64,
    process_ms: f64,
    encode_ms: f64,
}

impl Batch {
    /// Files that failed.
    pub(crate) fn failed(&self) -> usize {
        self.files.iter().filter(|f| f.error.is_some()).count()
    }

    /// The totals.
    pub(crate) fn totals(&self) -> Totals {
        let ok: Vec<&FileReport> = self.files.iter().filter_map(|f| f.report.as_ref()).collect();
        let secs = self.seconds.max(1e-9);
        let sum = |f: fn(&FileReport) -> f64| ok.iter().map(|r| f(r)).sum::<f64>();
        let pixels = ok.iter().map(|r| r.pixels()).sum::<u64>();
        let in_bytes = ok.iter().map(|r| r.in_bytes).sum::<u64>();
        Totals {
            files: self.files.len(),
            written: ok.len(),
            failed: self.failed(),
            pixels,
            in_bytes,
            out_bytes: ok.iter().map(|r| r.out_bytes).sum(),
            files_per_s: ok.len() as f64 / secs,
            in_mb_per_s: in_bytes as f64 / 1e6 / secs,
            mpixels_per_s: pixels as f64 / 1e6 / secs,
            decode_ms: sum(|r| r.decode_ms),
            process_ms: sum(|r| r.process_ms),
            encode_ms: sum(|r| r.encode_ms),
        }
    }

    /// The batch as JSON: `{pipeline, workers, seconds, totals, files: [...]}`.
    pub(crate) fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            batch: &'a Batch,
            totals: Totals,
        }
        serde_json::to_string_pretty(&Out { batch: self, totals: self.totals() })
            .expect("plain structs serialize")
    }

    /// The summary table, and the failures with their reasons.
    pub(crate) fn table(&self) -> String {
        let t = self.totals();
        let stage = |ms: f64| {
            let per = if t.written > 0 { ms / t.written as f64 } else { 0.0 };
            let all = t.decode_ms + t.process_ms + t.encode_ms;
            format!("{per:>9.1} ms/file {:>5.1}%", if all > 0.0 { 100.0 * ms / all } else { 0.0 })
        };
        let mut s = String::new();
        let mut line = |k: &str, v: String| s.push_str(&format!("  {k:<12} {v}\n"));
        line(
            "pipeline",
            if self.pipeline.is_empty() { "(none)".into() } else { self.pipeline.join(" | ") },
        );
        line(
            "files",
            format!(
                "{} written, {} failed, {} in all ({} workers{})",
                t.written,
                t.failed,
                t.files,
                self.workers,
                self.start_method
                    .as_deref()
                    .map(|m| format!(", started by {m}"))
                    .unwrap_or_default()
            ),
        );
        line("pixels", format!("{:.1} Mpx decoded", t.pixels as f64 / 1e6));
        line(
            "bytes",
            format!(
                "{:.1} MB read, {:.1} MB written",
                t.in_bytes as f64 / 1e6,
                t.out_bytes as f64 / 1e6
            ),
        );
        line("time", format!("{:.2} s", self.seconds));
        line(
            "throughput",
            format!(
                "{:.1} files/s, {:.1} MB/s, {:.1} Mpx/s",
                t.files_per_s, t.in_mb_per_s, t.mpixels_per_s
            ),
        );
        line("decode", stage(t.decode_ms));
        line("process", stage(t.process_ms));
        line("encode", stage(t.encode_ms));
        let failures: Vec<&FileResult> = self.files.iter().filter(|f| f.error.is_some()).collect();
        if !failures.is_empty() {
            s.push_str("  failures:\n");
            for f in failures {
                s.push_str(&format!("    {}: {}\n", f.input, f.error.as_deref().unwrap_or("")));
            }
        }
        s
    }
}
