//! `shmpool bench`: a suite of named workloads, each run by every contender (shmpool, rayon,
//! sequential Rust, C/OpenMP, and Python's `multiprocessing`, NumPy, joblib and pebble) in one
//! interleaved run on the same data, every result checked against the sequential one before it
//! is timed.
//!
//! The run, per workload x worker count (a *group*): set every contender up, check each one's
//! result, run each once to warm up, then time rounds in which the contenders take turns (the
//! starting contender rotates each round) until `--repeat` rounds or the group's share of
//! `--time-budget` is spent. Cells are reported as ok, skipped (something missing, with the
//! reason), n/a (the workload does not fit the contender) or failed (with the error).

mod bounded;
#[cfg(test)]
mod bounded_tests;
mod bridge;
mod contender;
mod export;
mod machine;
mod openmp;
mod options;
mod plot;
mod python;
mod record;
mod report;
mod scratch;
mod stats;
mod table;
mod workloads;

use std::cell::RefCell;
use std::io::IsTerminal;
use std::rc::Rc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

pub(crate) use self::options::BenchArgs;
pub(crate) use self::stats::median;

use self::bridge::{Bridge, Setup};
use self::contender::{Contender, Host};
use self::machine::Machine;
use self::options::{Mode, Options};
use self::record::{Record, Results, SCHEMA, Status};
use self::scratch::Scratch;
use self::workloads::{Runner, Workload, digest_matches};
use crate::error::CliError;

/// The pause before each timed run, so the work the previous contender's processes do after
/// answering (freeing its buffers, going to sleep) is not charged to the next one.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(10);

/// A child-process contender host, or why there is none.
type ChildHost = Result<Rc<RefCell<Bridge>>, String>;

/// Runs `shmpool bench` with its arguments.
pub(crate) fn bench(args: BenchArgs) -> Result<(), CliError> {
    match args.into_mode()? {
        Mode::List => {
            list();
            Ok(())
        }
        Mode::FromResults { from, report, plot } => {
            if let Some(file) = report {
                report::rewrite(&file, &from)?;
            }
            if let Some(dir) = plot {
                plot::draw(&dir, &report::load(&from)?)?;
            }
            Ok(())
        }
        Mode::Run(opts) => run(&opts),
    }
}

fn list() {
    println!("workloads (run in this order):");
    for w in workloads::all() {
        println!("  {:<18} {}", w.name(), w.about());
    }
    println!("contenders:");
    for c in Contender::ALL {
        println!("  {:<18} {}", c.name(), c.about());
    }
}

fn run(opts: &Options) -> Result<(), CliError> {
    let started = Instant::now();
    let date = machine::utc_now();
    let mut machine = Machine::describe();
    let scratch = Scratch::new().map_err(|source| CliError::BenchIo {
        action: "create",
        path: std::env::temp_dir(),
        source,
    })?;
    let wants = |h: Host| opts.contenders.iter().any(|c| c.host() == h);
    let python: ChildHost = if wants(Host::Python) {
        python::start(&opts.python, &scratch).map(|b| Rc::new(RefCell::new(b)))
    } else {
        Err("not selected".into())
    };
    if let Ok(p) = &python {
        let hello = &p.borrow().hello;
        machine.python = hello.get("python").and_then(|v| v.as_str()).map(str::to_string);
        machine.numpy = hello.get("numpy").and_then(|v| v.as_str()).map(str::to_string);
    }
    let openmp: ChildHost = if wants(Host::OpenMp) {
        openmp::start(&opts.cc, &scratch).map(|(b, version)| {
            machine.cc = Some(version);
            Rc::new(RefCell::new(b))
        })
    } else {
        Err("not selected".into())
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    println!("shmpool bench: {command}");
    println!("machine: {}", machine.line());
    for (what, host) in [("Python contenders", &python), ("C/OpenMP contender", &openmp)] {
        if let Err(why) = host
            && why != "not selected"
        {
            println!("{what} skipped: {why}");
        }
    }

    let groups = opts.workloads.len() * opts.workers.len();
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::new((groups * (opts.repeat + 2)) as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]") {
        progress.set_style(style);
    }
    let mut records = Vec::new();
    let mut left = groups;
    for &w in &opts.workloads {
        for &workers in &opts.workers {
            progress.set_message(format!("{} x{workers}", w.name()));
            let share = opts
                .time_budget
                .map(|b| (b - started.elapsed().as_secs_f64()).max(0.0) / left as f64);
            let recs = group(w, workers, opts, &python, &openmp, share, &progress);
            progress.suspend(|| table::print(w, &recs));
            records.extend(recs);
            left -= 1;
        }
    }
    progress.finish_and_clear();
    drop((python, openmp));

    let results = Results {
        schema: SCHEMA,
        command,
        date,
        duration_s: started.elapsed().as_secs_f64(),
        machine,
        records,
    };
    if let Some(path) = &opts.json {
        export::write_json(path, &results)?;
    }
    if let Some(path) = &opts.csv {
        export::write_csv(path, &results)?;
    }
    if let Some(dir) = &opts.plot {
        plot::draw(dir, &results)?;
    }
    let count = |s: Status| results.records.iter().filter(|r| r.status == s).count();
    println!(
        "{} cells: {} ok (checked against sequential code, then timed), {} skipped, {} n/a, {} failed; {:.1} s",
        results.records.len(),
        count(Status::Ok),
        count(Status::Skipped),
        count(Status::NotApplicable),
        count(Status::Failed),
        results.duration_s
    );
    Ok(())
}

/// One contender's state within a group.
struct Cell {
    contender: Contender,
    runner: Option<Box<dyn Runner>>,
    status: Status,
    reason: Option<String>,
    samples: Vec<f64>,
}

impl Cell {
    fn fail(&mut self, why: String) {
        self.runner = None;
        self.status = Status::Failed;
        self.reason = Some(why);
    }
}

fn external(host: &ChildHost, c: Contender, w: &dyn Workload, size: usize, workers: usize) -> Cell {
    let (status, reason, runner) = match host {
        Err(why) => (Status::Skipped, Some(why.clone()), None),
        Ok(b) => match Bridge::setup(b, c.name(), w.name(), size, workers) {
            Setup::Ready(r) => (Status::Ok, None, Some(r)),
            Setup::NotApplicable(why) => (Status::NotApplicable, Some(why), None),
            Setup::Skipped(why) => (Status::Skipped, Some(why), None),
            Setup::Failed(why) => (Status::Failed, Some(why), None),
        },
    };
    Cell { contender: c, runner, status, reason, samples: Vec::new() }
}

/// Runs one workload at one worker count with every contender.
fn group(
    w: &dyn Workload,
    workers: usize,
    opts: &Options,
    python: &ChildHost,
    openmp: &ChildHost,
    share: Option<f64>,
    progress: &ProgressBar,
) -> Vec<Record> {
    let size = w.size(opts.size);
    let reference = w.reference(size);
    let mut cells: Vec<Cell> = opts
        .contenders
        .iter()
        .map(|&c| match c.host() {
            Host::Native => {
                let (status, reason, runner) = match w.native(c, size, workers) {
                    None => (
                        Status::NotApplicable,
                        Some(format!("{} does not fit {}", w.name(), c.name())),
                        None,
                    ),
                    Some(Err(e)) => (Status::Failed, Some(e), None),
                    Some(Ok(r)) => (Status::Ok, None, Some(r)),
                };
                Cell { contender: c, runner, status, reason, samples: Vec::new() }
            }
            Host::Python => external(python, c, w, size, workers),
            Host::OpenMp => external(openmp, c, w, size, workers),
        })
        .collect();

    // Correctness first, then one warm-up run each.
    for cell in &mut cells {
        let Some(r) = cell.runner.as_mut() else { continue };
        match r.check() {
            Ok(d) if digest_matches(&d, &reference, w.tolerance()) => {}
            Ok(d) => cell.fail(format!(
                "result differs from sequential code (digest {d:?}, expected {reference:?}); not timed"
            )),
            Err(e) => cell.fail(e),
        }
    }
    for cell in &mut cells {
        if let Some(r) = cell.runner.as_mut()
            && let Err(e) = r.run()
        {
            cell.fail(e);
        }
    }
    progress.inc(2);

    let t0 = Instant::now();
    for round in 0..opts.repeat {
        if round > 0 && share.is_some_and(|s| t0.elapsed().as_secs_f64() >= s) {
            progress.inc((opts.repeat - round) as u64);
            break;
        }
        let n = cells.len();
        for k in 0..n {
            let cell = &mut cells[(k + round) % n];
            let Some(r) = cell.runner.as_mut() else { continue };
            std::thread::sleep(SETTLE);
            match r.run() {
                Ok(s) => cell.samples.push(s),
                Err(e) => cell.fail(e),
            }
        }
        progress.inc(1);
    }
    // Close every runner (pools, child cells) before the next group starts.
    cells.iter_mut().for_each(|c| c.runner = None);

    let items = w.items(size);
    let unit = w.unit();
    let mut records: Vec<Record> = cells
        .into_iter()
        .map(|c| {
            let seconds = if c.status == Status::Ok { stats::summarize(&c.samples) } else { None };
            Record {
                workload: w.name().to_string(),
                contender: c.contender.name().to_string(),
                workers,
                size,
                items,
                status: c.status,
                reason: c.reason,
                unit: unit.label.to_string(),
                higher_is_better: unit.rate,
                value: seconds.as_ref().map(|s| unit.value(items, s.median)),
                seconds,
                samples: c.samples,
                vs_best: None,
                vs_sequential: None,
            }
        })
        .collect();
    let median = |r: &Record| r.seconds.as_ref().map(|s| s.median);
    let best = records.iter().filter_map(median).min_by(f64::total_cmp);
    let seq = records.iter().find(|r| r.contender == Contender::Sequential.name()).and_then(median);
    for r in &mut records {
        if let Some(m) = median(r) {
            r.vs_best = best.map(|b| b / m);
            r.vs_sequential = seq.map(|s| s / m);
        }
    }
    records
}
