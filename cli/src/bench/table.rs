//! How records read: one row per contender, for the terminal table and the generated docs.

use super::record::{Record, Status};
use super::workloads::Workload;

/// A record as the columns of a table.
pub(crate) struct Row {
    /// The contender.
    pub(crate) contender: String,
    /// Worker processes or threads.
    pub(crate) workers: usize,
    /// The figure from the median round, or the status.
    pub(crate) value: String,
    /// The figures from the quartile rounds, `lo-hi`.
    pub(crate) range: String,
    /// MAD as a percentage of the median, and outliers.
    pub(crate) spread: String,
    /// `vs_best`, e.g. `0.95x`.
    pub(crate) vs_best: String,
    /// `vs_sequential`.
    pub(crate) vs_seq: String,
    /// Why not ok, if not.
    pub(crate) note: String,
}

fn figure(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn ratio(r: Option<f64>) -> String {
    match r {
        None => "-".to_string(),
        Some(x) if x >= 0.1 || x <= 0.0 => format!("{x:.2}x"),
        // Two significant digits, however small.
        Some(x) => format!("{x:.*}x", (-x.log10()).ceil() as usize + 1),
    }
}

/// The row of one record.
pub(crate) fn row(r: &Record) -> Row {
    let (value, range, spread) = match (&r.seconds, r.value) {
        (Some(s), Some(v)) => {
            // Times turn into rates inversely: the slower quartile is the lower rate.
            let conv = |secs: f64| {
                if r.higher_is_better { v * s.median / secs } else { v * secs / s.median }
            };
            let (a, b) = (conv(s.q1), conv(s.q3));
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let mut spread = format!("{:.1}%", 100.0 * s.mad / s.median);
            if !s.outliers.is_empty() {
                spread += &format!(" ({} out)", s.outliers.len());
            }
            (figure(v), format!("{}-{}", figure(lo), figure(hi)), spread)
        }
        _ => (r.status.word().to_string(), String::new(), String::new()),
    };
    let note = match (r.status, &r.reason) {
        (Status::Ok, _) => String::new(),
        (s, Some(why)) => format!("{}: {why}", s.word()),
        (s, None) => s.word().to_string(),
    };
    Row {
        contender: r.contender.clone(),
        workers: r.workers,
        value,
        range,
        spread,
        vs_best: ratio(r.vs_best),
        vs_seq: ratio(r.vs_sequential),
        note,
    }
}

/// Prints one group's table: the workload, its size and unit, then a row per contender.
pub(crate) fn print(w: &dyn Workload, records: &[Record]) {
    let Some(first) = records.first() else { return };
    let better = if first.higher_is_better { "higher is better" } else { "lower is better" };
    let rounds =
        records.iter().filter_map(|r| r.seconds.as_ref()).map(|s| s.rounds).max().unwrap_or(0);
    let timed = if rounds == 0 {
        "nothing timed".to_string()
    } else {
        format!("median of {rounds} rounds")
    };
    println!();
    println!(
        "{}: {} (N = {}, {} workers; {}, {better}; {timed})",
        w.name(),
        w.about(),
        first.size,
        first.workers,
        first.unit
    );
    println!(
        "  {:<12} {:>10} {:>19} {:>18} {:>8} {:>8}",
        "contender", first.unit, "q1-q3", "MAD (outliers)", "vs best", "vs seq"
    );
    let mut not_applicable = Vec::new();
    for r in records {
        let row = row(r);
        match r.status {
            Status::Ok => println!(
                "  {:<12} {:>10} {:>19} {:>18} {:>8} {:>8}",
                row.contender, row.value, row.range, row.spread, row.vs_best, row.vs_seq
            ),
            Status::NotApplicable => not_applicable.push(row.contender),
            _ => println!("  {:<12} {}", row.contender, row.note),
        }
    }
    if !not_applicable.is_empty() {
        println!("  (does not fit: {})", not_applicable.join(", "));
    }
}
