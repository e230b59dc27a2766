//! `shmpool images` with its progress bar drawn (stderr a terminal: a pseudo-terminal here),
//! which runs the batch as one job and moves the bar from the files finished so far (issue
//! 12): the bar moves while a file still hangs, and each failure (a panic, a SIGKILLed worker,
//! a timeout) is reported against its own file, the others written.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

use serde_json::Value;

mod support;

use support::{Scratch, error_of, names, png_bytes};

/// A pseudo-terminal of 80x24: (master, slave).
fn pty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: both out-pointers are valid for writes; a null name and termios ask for none;
    // `size` is a valid winsize read during the call.
    let rc = unsafe {
        libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size)
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty succeeded: both are open descriptors that nothing else owns.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// `shmpool images ARGS --json` with stderr on a terminal: the exit status, the JSON report
/// and everything written to the terminal.
fn run_on_terminal(args: &[&str]) -> (i32, Value, String) {
    let (master, slave) = pty();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shmpool"))
        .arg("images")
        .args(args)
        .arg("--json")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .expect("run shmpool");
    // The terminal is read while the batch runs (a full one would block the bar's writes);
    // the read ends with an error (EIO) once the child, the slave's last holder, exits.
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let mut stdout = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
    let status = child.wait().unwrap();
    let terminal = reader.join().unwrap();
    let json = serde_json::from_slice(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}); terminal: {terminal}"));
    (status.code().expect("exited, not killed"), json, terminal)
}

#[test]
fn the_bar_moves_during_one_job_and_failures_stay_per_file() {
    let s = Scratch::new("bar", "one-job");
    for i in 0..24 {
        std::fs::write(s.input().join(format!("f{i:02}.png")), png_bytes()).unwrap();
    }
    let (input, out) = (s.input(), s.out());
    let args = [
        input.to_str().unwrap(),
        "--op",
        "resize=24x16",
        "--workers",
        "2",
        "--timeout",
        "1",
        "--test-panic-on",
        "f03.png",
        "--test-kill-on",
        "f05.png",
        "--test-hang-on",
        "f01.png",
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, json, terminal) = run_on_terminal(&args);
    assert_eq!(code, 1, "{terminal}");
    // While f01.png hangs (a second, until its timeout), the other 23 are done, and the bar,
    // moved by the ticks of the one job, says so.
    assert!(terminal.contains("23/24 files"), "the bar did not move mid-job: {terminal:?}");
    assert!(terminal.contains("3 of 24 files failed"), "{terminal:?}");
    let e03 = error_of(&json, "f03.png").unwrap_or_else(|| panic!("{json}"));
    assert!(e03.contains("panicked in its worker: test hook: panicking on f03.png"), "{e03}");
    let e05 = error_of(&json, "f05.png").unwrap_or_else(|| panic!("{json}"));
    assert!(e05.contains("SIGKILL"), "{e05}");
    let e01 = error_of(&json, "f01.png").unwrap_or_else(|| panic!("{json}"));
    assert!(e01.contains("timed out"), "{e01}");
    let written = names(&out);
    assert_eq!(written.len(), 21, "{written:?}");
    for i in (0..24).filter(|i| ![1, 3, 5].contains(i)) {
        let name = format!("f{i:02}.png");
        assert_eq!(error_of(&json, &name), None, "{json}");
        assert!(written.contains(&name), "{name} not written: {written:?}");
    }
}
