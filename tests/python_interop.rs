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
