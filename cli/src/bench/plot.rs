//! `--plot DIR`: SVG charts drawn with plotters: each workload's figure against the worker
//! count, one line per contender (`<workload>.svg`), and every contender's ratio to the best at
//! the largest worker count, per workload (`ratios.svg`).

use std::path::Path;

use plotters::prelude::*;

use super::contender::Contender;
use super::record::{Record, Results};
use crate::error::CliError;

const COLORS: [RGBColor; 9] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
];

fn color(contender: &str) -> RGBColor {
    let i = Contender::ALL.iter().position(|c| c.name() == contender).unwrap_or(0);
    COLORS[i % COLORS.len()]
}

/// The workloads in first-seen order, and the contenders with a figure.
fn names<'a>(records: &'a [Record], key: impl Fn(&'a Record) -> &'a str) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    for r in records.iter().filter(|r| r.value.is_some()) {
        let k = key(r);
        if !v.contains(&k) {
            v.push(k);
        }
    }
    v
}

/// Draws every chart into `dir` (created if missing).
pub(crate) fn draw(dir: &Path, results: &Results) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|source| CliError::BenchIo {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    let recs = &results.records;
    for w in names(recs, |r| &r.workload) {
        let path = dir.join(format!("{w}.svg"));
        let mine: Vec<&Record> = recs.iter().filter(|r| r.workload == w).collect();
        workload_chart(&path, w, &mine)
            .map_err(|why| CliError::BenchPlot { path: path.clone(), why })?;
    }
    let path = dir.join("ratios.svg");
    ratio_chart(&path, recs).map_err(|why| CliError::BenchPlot { path: path.clone(), why })
}

fn workload_chart(path: &Path, workload: &str, recs: &[&Record]) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let ok: Vec<&Record> = recs.iter().copied().filter(|r| r.value.is_some()).collect();
    let unit = ok.first().map_or("", |r| r.unit.as_str());
    let wmax = ok.iter().map(|r| r.workers).max().unwrap_or(1) as f64;
    let wmin = ok.iter().map(|r| r.workers).min().unwrap_or(1) as f64;
    let ymax = ok.iter().filter_map(|r| r.value).fold(0.0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let (x0, x1) = if wmax > wmin { (wmin, wmax) } else { (wmin - 0.5, wmax + 0.5) };
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{workload}: {unit} vs workers"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0.0..ymax.max(1e-9))
        .map_err(e)?;
    chart.configure_mesh().x_desc("workers").y_desc(unit).draw().map_err(e)?;
    for c in names(&ok.iter().map(|r| (*r).clone()).collect::<Vec<_>>(), |r| &r.contender) {
        let col = color(c);
        let mut pts: Vec<(f64, f64)> = ok
            .iter()
            .filter(|r| r.contender == c)
            .filter_map(|r| Some((r.workers as f64, r.value?)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))
            .map_err(e)?
            .label(c.to_string())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, col.filled()))).map_err(e)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

fn ratio_chart(path: &Path, recs: &[Record]) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let workloads = names(recs, |r| &r.workload);
    let contenders = names(recs, |r| &r.contender);
    let wmax = recs.iter().map(|r| r.workers).max().unwrap_or(1);
    let root = SVGBackend::new(path, (1100, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    // The chart on the left, its legend in a column on the right.
    let (area, key) = root.split_horizontally(960);
    for (j, c) in contenders.iter().enumerate() {
        let y = 40 + 22 * j as i32;
        key.draw(&Rectangle::new([(8, y), (20, y + 12)], color(c).filled())).map_err(e)?;
        key.draw(&Text::new(c.to_string(), (26, y), ("sans-serif", 13))).map_err(e)?;
    }
    let n = workloads.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&area)
        .caption(
            format!("speed relative to the best contender, {wmax} workers"),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..n, 0.0..1.22)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("best median time / this one's")
        .draw()
        .map_err(e)?;
    // The workload names above each group of bars, on two staggered lines so long ones do not
    // overlap.
    chart
        .draw_series(workloads.iter().enumerate().map(|(i, w)| {
            let y = if i % 2 == 0 { 1.18 } else { 1.1 };
            Text::new(w.to_string(), (i as f64 + 0.05, y), ("sans-serif", 12))
        }))
        .map_err(e)?;
    let width = 0.8 / contenders.len().max(1) as f64;
    for (j, c) in contenders.iter().enumerate() {
        let col = color(c);
        let bars: Vec<Rectangle<(f64, f64)>> = workloads
            .iter()
            .enumerate()
            .filter_map(|(i, w)| {
                let r = recs
                    .iter()
                    .find(|r| r.workload == *w && r.contender == *c && r.workers == wmax)?;
                let x = i as f64 + 0.1 + j as f64 * width;
                Some(Rectangle::new([(x, 0.0), (x + width, r.vs_best?)], col.filled()))
            })
            .collect();
        chart.draw_series(bars).map_err(e)?;
    }
    root.present().map_err(e)
}
