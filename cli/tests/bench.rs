//! `shmpool bench`: a tiny suite end to end (JSON, CSV and plots), skipped and failed
//! contenders, option errors, `--report`, and the statistics on known inputs.

#[allow(dead_code)]
#[path = "../src/bench/stats.rs"]
mod stats;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A scratch directory for one test, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Dir {
        let d =
            std::env::temp_dir().join(format!("shmpool-bench-test-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shmpool"))
        .arg("bench")
        .args(args)
        .env_remove("SHMPOOL_BENCH_PYTHON")
        .env_remove("SHMPOOL_BENCH_CC")
        .output()
        .unwrap()
}

/// `shmpool bench --workloads W --size small --repeat 1`, then `more`: one test's tiny suite.
fn bench_small(workloads: &str, more: &[&str]) -> Output {
    let mut args = vec!["--workloads", workloads, "--size", "small", "--repeat", "1"];
    args.extend_from_slice(more);
    bench(&args)
}

/// Writes `script` to `path` and makes it executable: a stand-in for `python3`.
fn executable(path: &Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, script).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn ok(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "shmpool bench failed: {}\nstdout:\n{text}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn record<'a>(v: &'a Value, workload: &str, contender: &str) -> &'a Value {
    v["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["workload"] == workload && r["contender"] == contender)
        .unwrap_or_else(|| panic!("no record for {workload} x {contender}"))
}

#[test]
fn tiny_suite_writes_the_documented_json_csv_and_plots() {
    let d = Dir::new("suite");
    let (j, c, p) = (d.join("r.json"), d.join("r.csv"), d.join("plots"));
    let out = bench_small(
        "inplace,apply",
        &[
            "--workers",
            "1,2",
            "--json",
            j.to_str().unwrap(),
            "--csv",
            c.to_str().unwrap(),
            "--plot",
            p.to_str().unwrap(),
        ],
    );
    let text = ok(&out);
    assert!(text.contains("machine: "), "{text}");
    let v = json(&j);
    assert_eq!(v["schema"], 1);
    assert!(v["command"].as_str().unwrap().contains("--workloads inplace,apply"));
    assert!(v["date"].as_str().unwrap().ends_with('Z'));
    assert!(v["duration_s"].as_f64().unwrap() > 0.0);
    assert!(v["machine"]["cores_allowed"].as_u64().unwrap() >= 1);
    assert!(v["machine"]["memory_bytes"].as_u64().unwrap() > 0);
    assert!(v["machine"]["kernel"].as_str().is_some());
    let recs = v["records"].as_array().unwrap();
    // One record per workload x contender x workers, whatever happened to it.
    assert_eq!(recs.len(), 2 * 9 * 2);
    for r in recs {
        let status = r["status"].as_str().unwrap();
        assert!(["ok", "skipped", "n/a", "failed"].contains(&status), "{r}");
        assert_eq!(status == "ok", r["value"].is_number(), "{r}");
        assert_eq!(status == "ok", r["reason"].is_null(), "{r}");
        for key in [
            "workload",
            "contender",
            "workers",
            "size",
            "items",
            "unit",
            "higher_is_better",
            "seconds",
            "samples",
            "vs_best",
            "vs_sequential",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        assert_ne!(status, "failed", "{r}");
    }
    for contender in ["shmpool", "rayon", "sequential"] {
        let r = record(&v, "inplace", contender);
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["size"], 65536);
        assert_eq!(r["unit"], "Melem/s");
        assert_eq!(r["samples"].as_array().unwrap().len(), 1);
        let s = &r["seconds"];
        assert_eq!(s["rounds"], 1);
        assert!(s["median"].as_f64().unwrap() > 0.0);
        assert_eq!(s["min"], s["median"]);
        assert!(r["vs_best"].as_f64().unwrap() <= 1.0);
    }
    assert_eq!(record(&v, "inplace", "sequential")["vs_sequential"], 1.0);
    let apply = record(&v, "apply", "shmpool");
    assert_eq!(
        (apply["unit"].as_str(), apply["higher_is_better"].as_bool()),
        (Some("us/call"), Some(false))
    );
    assert_eq!(record(&v, "apply", "sequential")["status"], "n/a");

    let csv = std::fs::read_to_string(&c).unwrap();
    assert!(csv.starts_with("workload,contender,workers,"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + recs.len());
    for svg in ["inplace.svg", "apply.svg", "ratios.svg"] {
        let s = std::fs::read_to_string(p.join(svg)).unwrap();
        assert!(s.contains("<svg"), "{svg}");
    }
}

#[test]
fn a_missing_interpreter_or_compiler_is_reported_as_skipped_with_the_reason() {
    let d = Dir::new("missing");
    let j = d.join("r.json");
    let out = bench(&[
        "--workloads",
        "sum",
        "--contenders",
        "sequential,c-openmp,numpy,python-shm",
        "--size",
        "small",
        "--repeat",
        "1",
        "--python",
        "/nonexistent/python3",
        "--cc",
        "/nonexistent/gcc",
        "--json",
        j.to_str().unwrap(),
    ]);
    let text = ok(&out);
    let v = json(&j);
    for c in ["numpy", "python-shm"] {
        let r = record(&v, "sum", c);
        assert_eq!(r["status"], "skipped", "{r}");
        let why = r["reason"].as_str().unwrap();
        assert!(why.contains("/nonexistent/python3") && why.contains("--python"), "{why}");
    }
    let r = record(&v, "sum", "c-openmp");
    assert_eq!(r["status"], "skipped", "{r}");
    assert!(r["reason"].as_str().unwrap().contains("/nonexistent/gcc"), "{r}");
    assert_eq!(record(&v, "sum", "sequential")["status"], "ok");
    assert!(text.contains("skipped"), "{text}");
}

#[test]
fn python_without_numpy_skips_the_numpy_contenders_with_the_reason() {
    let python_runs =
        Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    let d = Dir::new("nonumpy");
    // A numpy that fails to import, ahead of any installed one on the path.
    std::fs::create_dir_all(d.join("shadow/numpy")).unwrap();
    std::fs::write(d.join("shadow/numpy/__init__.py"), "raise ImportError('hidden by the test')\n")
        .unwrap();
    let wrapper = d.join("python-without-numpy");
    let shadow = d.join("shadow");
    executable(
        &wrapper,
        &format!("#!/bin/sh\nPYTHONPATH={} exec python3 \"$@\"\n", shadow.display()),
    );
    let j = d.join("r.json");
    ok(&bench_small(
        "sum,tiny",
        &[
            "--contenders",
            "sequential,numpy,python-shm,python-pool",
            "--workers",
            "1",
            "--python",
            wrapper.to_str().unwrap(),
            "--json",
            j.to_str().unwrap(),
        ],
    ));
    let v = json(&j);
    for c in ["numpy", "python-shm", "python-pool"] {
        let r = record(&v, "sum", c);
        assert_eq!(r["status"], "skipped", "{r}");
        if python_runs {
            assert!(r["reason"].as_str().unwrap().contains("numpy is not importable"), "{r}");
        }
    }
    if python_runs {
        // Pickled tasks need no NumPy: that contender still runs them.
        assert_eq!(record(&v, "tiny", "python-pool")["status"], "ok");
        assert!(v["machine"]["numpy"].is_null());
    }
}

/// A stand-in for the Python contenders that speaks the protocol and answers every check with a
/// wrong digest: its cells must fail, untimed.
const WRONG: &str = r#"#!/bin/sh
echo '{"hello":1,"python":"0.0-fake","numpy":null}'
while read -r line; do
  case "$line" in
    *'"cmd":"quit"'*) exit 0 ;;
    *'"cmd":"check"'*) echo '{"ok":true,"digest":[42.0]}' ;;
    *'"cmd":"run"'*) echo '{"ok":true,"seconds":0.001}' ;;
    *) echo '{"ok":true}' ;;
  esac
done
"#;

#[test]
fn a_wrong_result_is_reported_as_failed_and_not_timed() {
    let d = Dir::new("wrong");
    let (fake, j) = (d.join("fake-python"), d.join("r.json"));
    executable(&fake, WRONG);
    let out = bench(&[
        "--workloads",
        "inplace",
        "--contenders",
        "sequential,numpy",
        "--size",
        "small",
        "--repeat",
        "2",
        "--python",
        fake.to_str().unwrap(),
        "--json",
        j.to_str().unwrap(),
    ]);
    ok(&out);
    let v = json(&j);
    let r = record(&v, "inplace", "numpy");
    assert_eq!(r["status"], "failed", "{r}");
    assert!(r["reason"].as_str().unwrap().contains("differs from sequential"), "{r}");
    assert!(r["value"].is_null() && r["seconds"].is_null(), "{r}");
    assert_eq!(r["samples"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(v["machine"]["python"], "0.0-fake");
    assert_eq!(record(&v, "inplace", "sequential")["samples"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_options_are_errors_that_say_the_fix() {
    for (args, says) in [
        (&["--workers", "0"][..], "bad --workers 0"),
        (&["--repeat", "0"][..], "bad --repeat 0"),
        (&["--size", "0"][..], "bad --size 0"),
        (&["--size", "huge"][..], "give small, default, large"),
        (&["--workloads", "nope"][..], "choose from start-fork,"),
        (&["--contenders", "nope"][..], "choose from shmpool,"),
        (&["--time-budget=0"][..], "bad --time-budget 0"),
        (&["--from", "r.json"][..], "add --report FILE or --plot DIR"),
    ] {
        let out = bench(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn report_rewrites_only_the_marked_section() {
    let d = Dir::new("report");
    let (j, md, bare) = (d.join("r.json"), d.join("doc.md"), d.join("bare.md"));
    ok(&bench_small(
        "sum",
        &["--contenders", "shmpool,sequential", "--workers", "1", "--json", j.to_str().unwrap()],
    ));
    let before = "# Title\n\nhand-written text\n\n<!-- bench:begin -->\nold figures\n<!-- bench:end -->\n\nmore text\n";
    std::fs::write(&md, before).unwrap();
    let out = bench(&["--report", md.to_str().unwrap(), "--from", j.to_str().unwrap()]);
    ok(&out);
    let after = std::fs::read_to_string(&md).unwrap();
    assert!(after.starts_with("# Title\n\nhand-written text\n\n<!-- bench:begin -->\n"), "{after}");
    assert!(after.ends_with("<!-- bench:end -->\n\nmore text\n"), "{after}");
    assert!(!after.contains("old figures"), "{after}");
    assert!(after.contains("**sum**") && after.contains("| shmpool | 1 |"), "{after}");
    assert!(after.contains("--workloads sum"), "the command is named: {after}");
    // Running it again gives the same file: the section is replaced, not appended to.
    ok(&bench(&["--report", md.to_str().unwrap(), "--from", j.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&md).unwrap(), after);

    // The charts can be redrawn from the JSON alone.
    let plots = d.join("plots");
    ok(&bench(&["--from", j.to_str().unwrap(), "--plot", plots.to_str().unwrap()]));
    assert!(std::fs::read_to_string(plots.join("sum.svg")).unwrap().contains("<svg"));

    std::fs::write(&bare, "no markers here\n").unwrap();
    let out = bench(&["--report", bare.to_str().unwrap(), "--from", j.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("<!-- bench:begin -->"));
    assert_eq!(std::fs::read_to_string(&bare).unwrap(), "no markers here\n");
    let out = bench(&["--report", md.to_str().unwrap(), "--from", md.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("is not a `shmpool bench --json FILE` results file")
    );
}

#[test]
fn statistics_on_known_inputs() {
    assert_eq!(stats::quantile(&[1.0, 2.0, 3.0, 4.0], 0.25), 1.75);
    assert_eq!(stats::quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
    assert_eq!(stats::quantile(&[7.0], 0.9), 7.0);
    assert_eq!(stats::median(&[3.0, 1.0, 2.0]), 2.0);
    assert!(stats::summarize(&[]).is_none());

    let s = stats::summarize(&[12.0, 10.0, 100.0, 11.0, 13.0]).unwrap();
    assert_eq!((s.rounds, s.median, s.min, s.max), (5, 12.0, 10.0, 100.0));
    assert_eq!((s.q1, s.q3), (11.0, 13.0));
    assert_eq!(s.mad, 1.0); // deviations 0, 2, 88, 1, 1
    assert_eq!(s.outliers, [2]); // 100 is 88 MADs out, in round 2

    let flat = stats::summarize(&[5.0; 4]).unwrap();
    assert_eq!((flat.mad, flat.outliers.len()), (0.0, 0));
    let edge = stats::summarize(&[1.0, 2.0, 3.0, 5.0]).unwrap(); // median 2.5, MAD 1; 5 is 2.5 out
    assert!(edge.outliers.is_empty());
}

#[test]
fn the_kernel_workloads_run_in_the_tiny_suite_and_match_sequential_code() {
    let d = Dir::new("kernels");
    let j = d.join("r.json");
    let workloads =
        ["sum", "dot", "stencil", "poly", "pipeline", "pipeline-3jobs", "matmul", "images"];
    let out = bench_small(&workloads.join(","), &["--workers", "2", "--json", j.to_str().unwrap()]);
    ok(&out);
    let v = json(&j);
    for w in workloads {
        // A result that differs from sequential code would be "failed", never "ok".
        for c in ["shmpool", "rayon", "sequential"] {
            let r = record(&v, w, c);
            assert_eq!(r["status"], "ok", "{r}");
            assert_eq!(r["samples"].as_array().unwrap().len(), 1, "{r}");
        }
        for r in v["records"].as_array().unwrap().iter().filter(|r| r["workload"] == w) {
            assert_ne!(r["status"], "failed", "{r}");
        }
    }
    assert_eq!(record(&v, "matmul", "sequential")["size"], 64);
    assert_eq!(record(&v, "matmul", "sequential")["unit"], "GFLOP/s");
    assert_eq!(record(&v, "images", "sequential")["size"], 8);
    assert_eq!(record(&v, "images", "sequential")["unit"], "images/s");
    assert_eq!(record(&v, "pipeline-3jobs", "numpy")["status"], "n/a");
    // python-pool runs the images with Pillow when it imports, else it says why not.
    let pillow = record(&v, "images", "python-pool");
    if pillow["status"] == "skipped" {
        let why = pillow["reason"].as_str().unwrap();
        assert!(why.contains("pip install"), "{why}");
    }
}

/// A stand-in Python that never says hello.
const MUTE: &str = "#!/bin/sh\nexec sleep 600\n";

/// A stand-in Python that says hello, then never answers a request.
const STUCK: &str =
    "#!/bin/sh\necho '{\"hello\":1,\"python\":\"0.0-stuck\",\"numpy\":null}'\nexec sleep 600\n";

#[test]
fn a_compiler_that_hangs_is_killed_and_the_c_contender_skipped() {
    let d = Dir::new("cc-hang");
    let (fake, j) = (d.join("gcc"), d.join("r.json"));
    executable(&fake, MUTE);
    let t = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_shmpool"))
        .args(["bench", "--workloads", "inplace", "--contenders", "sequential,c-openmp"])
        .args(["--size", "small", "--repeat", "1", "--cc", fake.to_str().unwrap()])
        .args(["--json", j.to_str().unwrap()])
        .env("SHMPOOL_BENCH_CHILD_TIMEOUT_S", "1")
        .output()
        .unwrap();
    ok(&out);
    // 1 s for the hang, not the 120 s default.
    assert!(t.elapsed().as_secs_f64() < 20.0, "{:?}", t.elapsed());
    let v = json(&j);
    let r = record(&v, "inplace", "c-openmp");
    assert_eq!(r["status"], "skipped", "{r}");
    let why = r["reason"].as_str().unwrap();
    assert!(why.contains("did not finish within"), "{why}");
    assert_eq!(record(&v, "inplace", "sequential")["status"], "ok");
}

#[test]
fn a_contender_that_never_answers_fails_at_the_configured_deadline() {
    let d = Dir::new("hang");
    for (name, script, status) in [("mute", MUTE, "skipped"), ("stuck", STUCK, "failed")] {
        let (fake, j) = (d.join(name), d.join(&format!("{name}.json")));
        executable(&fake, script);
        let t = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_shmpool"))
            .args(["bench", "--workloads", "inplace", "--contenders", "sequential,numpy"])
            .args(["--size", "small", "--repeat", "1", "--python", fake.to_str().unwrap()])
            .args(["--json", j.to_str().unwrap()])
            .env("SHMPOOL_BENCH_CHILD_TIMEOUT_S", "1")
            .output()
            .unwrap();
        ok(&out);
        // 1 s for the hang, not the 60 s / 300 s defaults.
        assert!(t.elapsed().as_secs_f64() < 20.0, "{name}: {:?}", t.elapsed());
        let v = json(&j);
        let r = record(&v, "inplace", "numpy");
        assert_eq!(r["status"], status, "{name}: {r}");
        let why = r["reason"].as_str().unwrap();
        assert!(why.contains("did not answer within 1 s"), "{name}: {why}");
        assert_eq!(record(&v, "inplace", "sequential")["status"], "ok");
    }
}

#[test]
fn run_refuses_zero_workers_rounds_and_len_with_the_fix() {
    for (args, says) in [
        (["--workers", "0"], "bad --workers 0: a pool needs at least one worker; pass --workers 1"),
        (["--rounds", "0"], "bad --rounds 0: no round means no timing to report; pass --rounds 1"),
        (["--len", "0"], "bad --len 0: an empty array gives no rate to compare; pass --len 1"),
    ] {
        let out =
            Command::new(env!("CARGO_BIN_EXE_shmpool")).arg("run").args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// `shmpool run` (the README's main job) checks its results and prints, for shmpool, rayon and
/// sequential code, both passes of each workload (the first after another contender's, the
/// second at once after its own) with a ratio, and the apply round trip.
#[test]
fn run_prints_both_passes_of_each_workload_with_a_ratio() {
    let out = Command::new(env!("CARGO_BIN_EXE_shmpool"))
        .args(["run", "--len", "65536", "--workers", "2", "--rounds", "2"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("results checked against sequential code: identical"), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("(Gelem/s)")).collect();
    let names: Vec<&str> =
        rows.iter().map(|r| r.split(" (Gelem/s)").next().unwrap().trim()).collect();
    assert_eq!(
        names,
        ["in place a=a*1.0001+0.5", "same, again at once", "map-reduce sum", "same, again at once"],
        "{text}"
    );
    for row in rows {
        let cells: Vec<&str> = row.split(')').nth(1).unwrap().split_whitespace().collect();
        assert_eq!(cells.len(), 4, "{row}");
        let rate = |c: &str| c.trim_end_matches('x').parse::<f64>().unwrap();
        assert!(cells.iter().all(|&c| rate(c) > 0.0 && rate(c).is_finite()), "{row}");
        let ratio = rate(cells[0]) / rate(cells[1]);
        assert!((ratio - rate(cells[3])).abs() < 0.01 + 0.01 * ratio, "{row}");
    }
    assert!(text.lines().any(|l| l.starts_with("apply round trip (us)")), "{text}");
}
