//! The `shmpool bench` command line, and its checked form ([`Options`]).

use std::path::PathBuf;

use clap::Args;

use super::contender::Contender;
use super::workloads::{self, Workload};
use crate::error::CliError;

/// How big each workload's data is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SizeClass {
    /// Seconds for the whole suite: for tests and a first look.
    Small,
    /// About a minute for the whole suite on 2 cores.
    Default,
    /// Sizes where memory bandwidth, not start-up, decides.
    Large,
    /// The same count for every workload (elements, tasks, calls or messages).
    Exact(usize),
}

impl SizeClass {
    /// The count for this class: `Exact(n)`'s `n`, else the one given for the class.
    pub(crate) fn pick(self, small: usize, default: usize, large: usize) -> usize {
        match self {
            SizeClass::Exact(n) => n,
            SizeClass::Small => small,
            SizeClass::Default => default,
            SizeClass::Large => large,
        }
    }
}

/// `shmpool bench`: the suite of named workloads, each run by every contender in one
/// interleaved run on the same data.
#[derive(Args, Debug, Default)]
pub(crate) struct BenchArgs {
    /// Workloads to run, comma-separated (default: all; `--list` names them).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Contenders to run, comma-separated (default: all; `--list` names them).
    #[arg(long, value_delimiter = ',')]
    contenders: Vec<String>,
    /// Worker counts to sweep, comma-separated (default: the CPUs this process may use).
    #[arg(long, value_delimiter = ',')]
    workers: Vec<usize>,
    /// Data size: small, default, large, or a count used by every workload.
    #[arg(long, default_value = "default")]
    size: String,
    /// Timed rounds per contender (after a check and a warm-up run).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Stop adding rounds once this many seconds are spent (shared evenly by the workloads;
    /// every contender gets at least one round).
    #[arg(long)]
    time_budget: Option<f64>,
    /// Short run: `--size small --repeat 3`.
    #[arg(long)]
    quick: bool,
    /// Write one JSON record per workload x contender x workers (docs/bench/schema.md).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the same records as CSV.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write SVG charts (throughput vs workers per workload, ratios) into this directory.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// The Python interpreter for the Python contenders (default: $SHMPOOL_BENCH_PYTHON, else
    /// python3).
    #[arg(long, value_name = "PATH")]
    python: Option<String>,
    /// The C compiler for the OpenMP contender (default: $SHMPOOL_BENCH_CC, else gcc).
    #[arg(long, value_name = "PATH")]
    cc: Option<String>,
    /// Rewrite the marked section of this Markdown file from `--from`'s JSON, and run nothing.
    #[arg(long, value_name = "FILE", requires = "from")]
    report: Option<PathBuf>,
    /// Read the results from this JSON instead of running: for `--report`, and for `--plot`
    /// (which then redraws the charts).
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// List the workloads and contenders, and run nothing.
    #[arg(long)]
    list: bool,
}

/// What `shmpool bench` was asked to do.
pub(crate) enum Mode {
    /// Run the suite.
    Run(Options),
    /// Rewrite the marked section of `report` and draw the charts into `plot`, from the
    /// results in `from`.
    FromResults {
        /// The results JSON.
        from: PathBuf,
        /// The Markdown file whose marked section to rewrite.
        report: Option<PathBuf>,
        /// The directory for the charts.
        plot: Option<PathBuf>,
    },
    /// Print the workloads and contenders.
    List,
}

/// The checked options of a run.
pub(crate) struct Options {
    /// Workloads, in the registry's order (pool starts first, while no thread exists).
    pub(crate) workloads: Vec<&'static dyn Workload>,
    /// Contenders, in the registry's order.
    pub(crate) contenders: Vec<Contender>,
    /// Worker counts, as given.
    pub(crate) workers: Vec<usize>,
    /// The size class.
    pub(crate) size: SizeClass,
    /// Timed rounds per contender, at least 1.
    pub(crate) repeat: usize,
    /// Seconds for all the rounds, if bounded.
    pub(crate) time_budget: Option<f64>,
    /// `--json`.
    pub(crate) json: Option<PathBuf>,
    /// `--csv`.
    pub(crate) csv: Option<PathBuf>,
    /// `--plot`.
    pub(crate) plot: Option<PathBuf>,
    /// The Python interpreter.
    pub(crate) python: String,
    /// The C compiler.
    pub(crate) cc: String,
}

fn bad(option: &'static str, value: impl ToString, fix: impl ToString) -> CliError {
    CliError::BenchOption { option, value: value.to_string(), fix: fix.to_string() }
}

impl BenchArgs {
    /// Checks the options: every bad value is an error that says the fix, never a silent
    /// default.
    pub(crate) fn into_mode(self) -> Result<Mode, CliError> {
        if self.list {
            return Ok(Mode::List);
        }
        if let Some(from) = self.from {
            if self.report.is_none() && self.plot.is_none() {
                return Err(bad("from", from.display(), "add --report FILE or --plot DIR"));
            }
            return Ok(Mode::FromResults { from, report: self.report, plot: self.plot });
        }
        let all = workloads::all();
        let workloads = if self.workloads.is_empty() {
            all.to_vec()
        } else {
            for name in &self.workloads {
                if !all.iter().any(|w| w.name() == name) {
                    let names: Vec<_> = all.iter().map(|w| w.name()).collect();
                    return Err(bad("workloads", name, format!("choose from {}", names.join(","))));
                }
            }
            all.iter().copied().filter(|w| self.workloads.iter().any(|n| n == w.name())).collect()
        };
        let contenders = if self.contenders.is_empty() {
            Contender::ALL.to_vec()
        } else {
            for name in &self.contenders {
                if Contender::from_name(name).is_none() {
                    let names: Vec<_> = Contender::ALL.iter().map(|c| c.name()).collect();
                    return Err(bad(
                        "contenders",
                        name,
                        format!("choose from {}", names.join(",")),
                    ));
                }
            }
            Contender::ALL
                .iter()
                .copied()
                .filter(|c| self.contenders.iter().any(|n| n == c.name()))
                .collect()
        };
        let workers =
            if self.workers.is_empty() { vec![shmpool::process_cpu_count()] } else { self.workers };
        if let Some(w) = workers.iter().find(|&&w| w == 0 || w > 1024) {
            return Err(bad(
                "workers",
                w,
                "give worker counts from 1 to 1024, e.g. --workers 1,2,4",
            ));
        }
        let mut size = match self.size.as_str() {
            "small" => SizeClass::Small,
            "default" => SizeClass::Default,
            "large" => SizeClass::Large,
            n => match n.parse::<usize>() {
                Ok(n) if n > 0 => SizeClass::Exact(n),
                _ => {
                    return Err(bad("size", n, "give small, default, large or a count above 0"));
                }
            },
        };
        let mut repeat = self.repeat;
        if repeat == 0 {
            return Err(bad("repeat", 0, "give at least 1 timed round"));
        }
        if self.quick {
            size = SizeClass::Small;
            repeat = repeat.min(3);
        }
        if let Some(b) = self.time_budget
            && !(b > 0.0 && b.is_finite())
        {
            return Err(bad("time-budget", b, "give a number of seconds above 0"));
        }
        let env = |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| default.into());
        Ok(Mode::Run(Options {
            workloads,
            contenders,
            workers,
            size,
            repeat,
            time_budget: self.time_budget,
            json: self.json,
            csv: self.csv,
            plot: self.plot,
            python: self.python.unwrap_or_else(|| env("SHMPOOL_BENCH_PYTHON", "python3")),
            cc: self.cc.unwrap_or_else(|| env("SHMPOOL_BENCH_CC", "gcc")),
        }))
    }
}
