//! Real python3 with NumPy attaching to shmpool arrays zero-copy, both ways, through
//! `python/shmpool_shm.py`. `.ci/run` installs NumPy; without it these tests fail and say so.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use shmpool::{SharedArray, ShmOptions};

fn python() -> Command {
    let mut c = Command::new("python3");
    c.env("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/python"));
    c
}

fn check_numpy() {
    let ok = python()
        .args(["-c", "import numpy, shmpool_shm"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 with numpy is required: run `python3 -m pip install numpy` (.ci/run does)"
    );
}

#[test]
fn python_writes_in_place_into_a_rust_array() {
    check_numpy();
    let a =
        SharedArray::<f64>::from_fn_with(1000, &ShmOptions::new().generated_name(), |i| i as f64)
            .unwrap();
    let script = r#"
import sys, numpy as np, shmpool_shm
arr, seg = shmpool_shm.attach(sys.argv[1], "float64")
assert arr.shape == (1000,) and arr[999] == 999.0, (arr.shape, arr[999])
arr *= 2.0
arr += 1.0
try:
    shmpool_shm.attach(sys.argv[1], "int32")
    sys.exit("wrong dtype accepted")
except shmpool_shm.ShmpoolError as e:
    assert "<f8" in str(e), e
del arr
seg.close()
"#;
    let st = python().args(["-c", script, a.name().unwrap()]).status().unwrap();
    assert!(st.success(), "python failed: {st}");
    assert!(a.iter().enumerate().all(|(i, &x)| x == 2.0 * i as f64 + 1.0));
    // Attaching did not unlink (Python's resource tracker would have, at exit, before 3.13).
    assert!(std::path::Path::new(&format!("/dev/shm/{}", a.name().unwrap())).exists());
}

#[test]
fn rust_opens_and_writes_an_array_python_created() {
    check_numpy();
    let script = r#"
import sys, numpy as np, shmpool_shm
arr, seg = shmpool_shm.create(None, 256, "<i4")
arr[:] = np.arange(256, dtype=np.int32) * 3
print(seg.name, flush=True)
sys.stdin.readline()                      # Rust has opened, checked and written
ok = (arr == np.arange(256, dtype=np.int32) * 3 + 1).all()
del arr
seg.close()
seg.unlink()
sys.exit(0 if ok else 3)
"#;
    let mut child =
        python().args(["-c", script]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut name = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut name).unwrap();
    let name = name.trim();
    {
        // SAFETY: Python waits on stdin and does not touch the array until told to.
        let mut b = unsafe { SharedArray::<i32>::open(name) }.unwrap();
        assert_eq!(b.len(), 256);
        assert!(b.iter().enumerate().all(|(i, &x)| x == 3 * i as i32));
        // SAFETY: this open fails on the type check before mapping any data for use.
        let wrong = unsafe { SharedArray::<u32>::open(name) };
        assert!(matches!(wrong, Err(shmpool::Error::TypeMismatch { .. })));
        b.iter_mut().for_each(|x| *x += 1);
    }
    child.stdin.take().unwrap().write_all(b"done\n").unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "python saw the wrong values or failed: {st}");
    assert!(
        !std::path::Path::new(&format!("/dev/shm/{name}")).exists(),
        "python's creator did not unlink"
    );
}

#[test]
fn rust_shaped_arrays_are_numpy_arrays_of_that_shape() {
    check_numpy();
    let opts = ShmOptions::new().generated_name();
    let mut img = SharedArray::<u8>::from_shape_fn_with(&[6, 5, 3], &opts, |ix| {
        (ix[0] * 15 + ix[1] * 3 + ix[2]) as u8
    })
    .unwrap();
    let mut grid = SharedArray::<f64>::from_shape_fn_with(&[4, 7], &opts, |ix| {
        ix[0] as f64 + ix[1] as f64 / 10.0
    })
    .unwrap();
    let script = r#"
import sys, numpy as np, shmpool_shm
img, s1 = shmpool_shm.attach(sys.argv[1], "uint8")
assert img.shape == (6, 5, 3) and img.dtype == np.uint8, (img.shape, img.dtype)
assert (img == np.arange(90, dtype=np.uint8).reshape(6, 5, 3)).all()
img[:, :, 2] = 200                        # the blue channel, through the 3-D view
grid, s2 = shmpool_shm.attach(sys.argv[2], shape=(4, 7))
want = np.arange(4)[:, None] + np.arange(7)[None, :] / 10.0
assert grid.shape == (4, 7) and np.allclose(grid, want), grid
grid[1:3] *= -1.0                         # rows 1 and 2
try:
    shmpool_shm.attach(sys.argv[2], shape=(7, 4))
    sys.exit("wrong shape accepted")
except shmpool_shm.ShmpoolError as e:
    assert "(4, 7)" in str(e), e
del img, grid
s1.close(); s2.close()
"#;
    let st =
        python().args(["-c", script, img.name().unwrap(), grid.name().unwrap()]).status().unwrap();
    assert!(st.success(), "python failed: {st}");
    for (i, &x) in img.iter().enumerate() {
        assert_eq!(x, if i % 3 == 2 { 200 } else { i as u8 }, "element {i}");
    }
    let row = grid.row_len();
    for (i, &x) in grid.iter().enumerate() {
        let v = (i / row) as f64 + (i % row) as f64 / 10.0;
        let want = if (1..3).contains(&(i / row)) { -v } else { v };
        assert_eq!(x, want, "element {i}");
    }
    img.as_mut_slice()[0] = 1; // still writable here
    grid.as_mut_slice()[0] = 1.0;
}

#[test]
fn numpy_shaped_arrays_open_in_rust_with_their_shape() {
    check_numpy();
    let script = r#"
import sys, numpy as np, shmpool_shm
img, s1 = shmpool_shm.create(None, (8, 4, 3), "|u1")
img[:] = np.arange(96, dtype=np.uint8).reshape(8, 4, 3)
grid, s2 = shmpool_shm.create(None, (3, 5), np.float64)
grid[:] = np.linspace(0.0, 1.4, 15).reshape(3, 5)
print(s1.name, s2.name, flush=True)
sys.stdin.readline()                      # Rust has opened, checked and written
ok = (img[:, :, 0] == 255).all() and (img[:, :, 1:] == np.arange(96).reshape(8, 4, 3)[:, :, 1:]).all()
ok = ok and np.allclose(grid, np.linspace(0.0, 1.4, 15).reshape(3, 5) * 2.0)
del img, grid
for s in (s1, s2):
    s.close(); s.unlink()
sys.exit(0 if ok else 3)
"#;
    let mut child =
        python().args(["-c", script]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let names: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(names.len(), 2, "python printed {line:?}");
    {
        // SAFETY: Python waits on stdin and does not touch the arrays until told to.
        let mut img = unsafe { SharedArray::<u8>::open(names[0]) }.unwrap();
        assert_eq!((img.shape(), img.row_len()), (&[8, 4, 3][..], 12));
        assert!(img.iter().enumerate().all(|(i, &x)| x == i as u8));
        img.iter_mut().step_by(3).for_each(|x| *x = 255);
        // SAFETY: as above.
        let mut grid = unsafe { SharedArray::<f64>::open(names[1]) }.unwrap();
        assert_eq!(grid.shape(), &[3, 5]);
        assert!((grid[14] - 1.4).abs() < 1e-12);
        grid.iter_mut().for_each(|x| *x *= 2.0);
        // SAFETY: this open fails on the type check before mapping any data for use.
        let wrong = unsafe { SharedArray::<f32>::open(names[1]) };
        assert!(matches!(wrong, Err(shmpool::Error::TypeMismatch { .. })), "{wrong:?}");
    }
    child.stdin.take().unwrap().write_all(b"done\n").unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "python saw the wrong values or failed: {st}");
    for n in names {
        assert!(!std::path::Path::new(&format!("/dev/shm/{n}")).exists(), "{n} left behind");
    }
}

#[test]
fn hostile_headers_written_from_python_are_refused_on_both_sides() {
    check_numpy();
    // Python makes one segment per way of lying about the shape, checks that its own attach
    // refuses each, and hands the names to Rust, which must refuse them with typed errors.
    let script = r#"
import os, struct, sys, numpy as np, shmpool_shm
from shmpool_shm import ShmpoolError
segs = []
def hostile(patch):
    arr, seg = shmpool_shm.create(None, (4, 5), "<f8")
    del arr
    patch(seg._shm.buf, seg.name)
    try:
        shmpool_shm.attach(seg.name)
        sys.exit(f"{patch.__name__}: python attached a hostile header")
    except ShmpoolError:
        pass
    segs.append(seg)
def product_mismatch(b, _): struct.pack_into("<Q", b, 128, 3)       # 3 x 5 != 20
def product_wraps(b, _):                                            # 2^32 * 2^32 * 20 == 20 mod 2^64
    struct.pack_into("<I", b, 104, 3); struct.pack_into("<3Q", b, 128, 1 << 32, 1 << 32, 20)
def too_many_dims(b, _): struct.pack_into("<I", b, 104, 9)
def no_dims(b, _): struct.pack_into("<I", b, 104, 0)
def block_over_data(b, _):                                          # 8 dims need 128 + 64 bytes
    struct.pack_into("<I", b, 104, 8); struct.pack_into("<Q", b, 56, 128)
def truncated(_, name): os.truncate(f"/dev/shm/{name}", 256 + 80)  # 20 f64 need 256 + 160
def old_version(b, _): struct.pack_into("<I", b, 8, 1)
for p in (product_mismatch, product_wraps, too_many_dims, no_dims, block_over_data, truncated,
          old_version):
    hostile(p)
try:
    shmpool_shm.create(None, (2,) * 9, "<f8")
    sys.exit("9 dimensions accepted")
except ShmpoolError:
    pass
print(" ".join(s.name for s in segs), flush=True)
sys.stdin.readline()
for s in segs:
    s.close(); s.unlink()
"#;
    let mut child =
        python().args(["-c", script]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let names: Vec<String> = line.split_whitespace().map(String::from).collect();
    let outcomes: Vec<_> = names
        .iter()
        // SAFETY: nothing writes these segments while they are open; every open is refused.
        .map(|n| unsafe { SharedArray::<f64>::open(n) }.map(|a| a.shape().to_vec()))
        .collect();
    child.stdin.take().unwrap().write_all(b"done\n").unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "python failed: {st}");
    assert_eq!(outcomes.len(), 7, "python printed {line:?}");
    for (i, r) in outcomes.iter().enumerate() {
        let version = i == 6;
        match r {
            Err(shmpool::Error::CorruptHeader { .. }) if !version => {}
            Err(shmpool::Error::VersionMismatch { found: 1, .. }) if version => {}
            other => panic!("hostile header {i} gave {other:?}"),
        }
    }
}

/// A built example next to this test binary: `target/<profile>/deps/python_interop-<hash>` ->
/// `target/<profile>/examples/<name>`. `cargo test` builds the examples before running tests
/// (not when a `--test` filter selects only tests: build it then with
/// `cargo build --example <name>`).
fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("examples").join(name);
    assert!(
        bin.exists(),
        "{} is not built: run `cargo build -p shmpool --example {name}` (plain `cargo test` \
         builds it)",
        bin.display()
    );
    bin
}

#[test]
fn numpy_pipeline_example_matches_numpy() {
    let has_numpy =
        python().args(["-c", "import numpy"]).status().map(|s| s.success()).unwrap_or(false);
    if !has_numpy {
        // CI installs NumPy (.ci/run), so this runs there.
        eprintln!("skipped numpy_pipeline_example_matches_numpy: python3 has no numpy");
        return;
    }
    let bin = example_binary("numpy_pipeline");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/numpy_pipeline.py");
    // Rows not a multiple of any chunk size, a prime width; large enough to run in the workers.
    let out = python()
        .arg(script)
        .arg(&bin)
        .args(["--rows", "1009", "--cols", "331", "--scale", "1.5", "--clip", "2.5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(": OK"),
        "the pipeline failed ({}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The example refuses an array that is not 2-D, with an error saying so.
    let flat = SharedArray::<f64>::zeroed_with(10, &ShmOptions::new().generated_name()).unwrap();
    let out = Command::new(&bin).arg(flat.name().unwrap()).output().unwrap();
    assert!(!out.status.success(), "a 1-D array was processed");
    assert!(String::from_utf8_lossy(&out.stderr).contains("2-D"), "{out:?}");
}
