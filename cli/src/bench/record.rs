//! The results of a run: one [`Record`] per workload x contender x workers, inside a
//! [`Results`] with the command, date and machine. This is the JSON schema of `--json`
//! (documented in `docs/bench/schema.md`); `--report` reads it back.

use serde::{Deserialize, Serialize};

use super::machine::Machine;
use super::stats::Summary;

/// The schema version written as `"schema"`; bumped when a field changes meaning.
pub(crate) const SCHEMA: u32 = 1;

/// What became of one cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Checked against the sequential result, then timed.
    Ok,
    /// The contender is not available here (`reason` says what is missing and how to get it).
    Skipped,
    /// The workload does not fit the contender (`reason` says why).
    #[serde(rename = "n/a")]
    NotApplicable,
    /// The contender failed or gave a wrong result (`reason`); it was not timed, or stopped.
    Failed,
}

impl Status {
    /// The word in tables and CSV.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Skipped => "skipped",
            Status::NotApplicable => "n/a",
            Status::Failed => "failed",
        }
    }
}

/// How a workload's figure reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Unit {
    /// The label, e.g. `Melem/s` or `us/call`.
    pub(crate) label: &'static str,
    /// True for a rate (items per second, scaled), false for a time per item (scaled).
    pub(crate) rate: bool,
    /// The factor applied to items/s (rate) or s/item (time).
    pub(crate) scale: f64,
}

impl Unit {
    /// The figure for `items` done in `seconds`.
    pub(crate) fn value(self, items: f64, seconds: f64) -> f64 {
        if self.rate { items / seconds * self.scale } else { seconds / items * self.scale }
    }
}

/// One workload x contender x workers cell.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The workload's name.
    pub(crate) workload: String,
    /// The contender's name.
    pub(crate) contender: String,
    /// Worker processes or threads.
    pub(crate) workers: usize,
    /// The workload's size parameter (elements, cells, tasks, calls, messages).
    pub(crate) size: usize,
    /// Work items per round, the numerator of `value` for a rate.
    pub(crate) items: f64,
    /// What became of the cell.
    pub(crate) status: Status,
    /// Why it was skipped, not applicable or failed.
    pub(crate) reason: Option<String>,
    /// The unit of `value`.
    pub(crate) unit: String,
    /// True when a larger `value` is better (a rate), false for a time per item.
    pub(crate) higher_is_better: bool,
    /// The figure from the median round, in `unit`.
    pub(crate) value: Option<f64>,
    /// Seconds per round: median, spread and outliers.
    pub(crate) seconds: Option<Summary>,
    /// Every timed round, in seconds, in the order run.
    pub(crate) samples: Vec<f64>,
    /// Best median time in this workload x workers divided by this one's (1 for the best).
    pub(crate) vs_best: Option<f64>,
    /// The sequential median time divided by this one's (the speed-up over sequential code).
    pub(crate) vs_sequential: Option<f64>,
}

/// One run: what was run, where and when, and its records.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Results {
    /// [`SCHEMA`].
    pub(crate) schema: u32,
    /// The command line that produced it.
    pub(crate) command: String,
    /// When it started (UTC, ISO 8601).
    pub(crate) date: String,
    /// How long it took, in seconds.
    pub(crate) duration_s: f64,
    /// The machine it ran on.
    pub(crate) machine: Machine,
    /// One per workload x contender x workers.
    pub(crate) records: Vec<Record>,
}
