//! The line-oriented JSON protocol to a contender that runs as a child process (the Python
//! script, the C/OpenMP program).
//!
//! The child prints one `hello` line when ready, then answers each request line with one line:
//!
//! ```text
//! <- {"hello":1, ...versions...}
//! -> {"cmd":"setup","id":1,"contender":"numpy","workload":"inplace","size":4194304,"workers":2}
//! <- {"ok":true} | {"na":"why it does not fit"} | {"skip":"what is missing"} | {"error":"..."}
//! -> {"cmd":"check","id":1}   <- {"ok":true,"digest":[...]}   (one untimed run from fresh data)
//! -> {"cmd":"run","id":1}     <- {"ok":true,"seconds":0.0123} (one run, timed by the child)
//! -> {"cmd":"close","id":1}   <- {"ok":true}
//! -> {"cmd":"quit"}
//! ```
//!
//! Every read has a deadline: a child that hangs is killed, and its cells fail.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::workloads::{Digest, Runner};

/// How long a child may take to answer one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a child may take to say hello (start, import its modules).
const HELLO_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable that replaces both deadlines (seconds, a positive number): a test
/// of a contender that never answers sets it short, a slow machine may set it long.
pub(crate) const TIMEOUT_ENV: &str = "SHMPOOL_BENCH_CHILD_TIMEOUT_S";

/// `default`, or the deadline [`TIMEOUT_ENV`] sets when it holds a positive number of seconds
/// (an unusable value is ignored: the deadline only guards against a hang).
pub(crate) fn deadline(default: Duration) -> Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(default)
}

/// A running contender process.
pub(crate) struct Bridge {
    what: &'static str,
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    buf: Vec<u8>,
    stderr: PathBuf,
    next_id: u64,
    dead: Option<String>,
    /// The child's `hello` line.
    pub(crate) hello: Value,
}

/// What a setup request gave.
pub(crate) enum Setup {
    /// Ready to check and run.
    Ready(Box<dyn Runner>),
    /// The workload does not fit this contender.
    NotApplicable(String),
    /// Something the contender needs is missing.
    Skipped(String),
    /// It failed.
    Failed(String),
}

impl Bridge {
    /// Starts `cmd` (its stderr going to `stderr`) and waits for its hello line.
    pub(crate) fn start(
        what: &'static str,
        mut cmd: Command,
        stderr: &Path,
    ) -> Result<Bridge, String> {
        let err_file = File::create(stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("could not start {what}: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what} started without pipes"));
        };
        let mut b = Bridge {
            what,
            child,
            stdin,
            stdout,
            buf: Vec::new(),
            stderr: stderr.to_path_buf(),
            next_id: 1,
            dead: None,
            hello: Value::Null,
        };
        b.hello = b.read_reply(deadline(HELLO_TIMEOUT))?;
        Ok(b)
    }

    /// The last lines the child wrote to stderr, for an error message.
    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(3).collect();
        if lines.is_empty() {
            String::new()
        } else {
            format!(" (stderr: {})", lines.into_iter().rev().collect::<Vec<_>>().join(" | "))
        }
    }

    fn fail(&mut self, why: String) -> String {
        let msg = format!("{} {why}{}", self.what, self.stderr_tail());
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dead = Some(msg.clone());
        msg
    }

    fn read_reply(&mut self, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return serde_json::from_slice(&line).map_err(|e| {
                    let shown = String::from_utf8_lossy(&line).trim().to_string();
                    self.fail(format!("answered a line that is not JSON ({e}): {shown}"))
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.fail(format!("did not answer within {} s", timeout.as_secs_f64())));
            }
            let mut pfd =
                libc::pollfd { fd: self.stdout.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: `pfd` is one valid, initialized pollfd that lives across the call, and the
            // count passed is 1.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(self.fail(format!("could not be waited for: {e}")));
            }
            if r == 0 {
                continue;
            }
            let mut chunk = [0u8; 4096];
            match self.stdout.read(&mut chunk) {
                Ok(0) => return Err(self.fail("exited".into())),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(format!("could not be read: {e}"))),
            }
        }
    }

    /// Sends one request and reads its answer.
    pub(crate) fn request(&mut self, req: &Value) -> Result<Value, String> {
        if let Some(d) = &self.dead {
            return Err(d.clone());
        }
        let mut line = req.to_string();
        line.push('\n');
        if let Err(e) = self.stdin.write_all(line.as_bytes()).and_then(|()| self.stdin.flush()) {
            return Err(self.fail(format!("could not be written to: {e}")));
        }
        let reply = self.read_reply(deadline(REQUEST_TIMEOUT))?;
        match reply.get("error") {
            Some(e) => Err(e.as_str().map_or_else(|| e.to_string(), str::to_string)),
            None => Ok(reply),
        }
    }

    /// Sets up one cell.
    pub(crate) fn setup(
        this: &Rc<RefCell<Bridge>>,
        contender: &str,
        workload: &str,
        size: usize,
        workers: usize,
    ) -> Setup {
        let mut b = this.borrow_mut();
        let id = b.next_id;
        b.next_id += 1;
        let req = json!({"cmd": "setup", "id": id, "contender": contender, "workload": workload,
                         "size": size, "workers": workers});
        match b.request(&req) {
            Err(e) => Setup::Failed(e),
            Ok(r) => {
                let text = |k: &str| r.get(k).map(|v| v.as_str().unwrap_or_default().to_string());
                if let Some(why) = text("na") {
                    Setup::NotApplicable(why)
                } else if let Some(why) = text("skip") {
                    Setup::Skipped(why)
                } else {
                    Setup::Ready(Box::new(Remote { bridge: this.clone(), id }))
                }
            }
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if self.dead.is_none() {
            let _ = self.stdin.write_all(b"{\"cmd\":\"quit\"}\n");
            let _ = self.stdin.flush();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One cell in a child process.
struct Remote {
    bridge: Rc<RefCell<Bridge>>,
    id: u64,
}

impl Runner for Remote {
    fn check(&mut self) -> Result<Digest, String> {
        let r = self.bridge.borrow_mut().request(&json!({"cmd": "check", "id": self.id}))?;
        serde_json::from_value(r.get("digest").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("answered a check without a digest: {e}"))
    }

    fn run(&mut self) -> Result<f64, String> {
        let r = self.bridge.borrow_mut().request(&json!({"cmd": "run", "id": self.id}))?;
        r.get("seconds")
            .and_then(Value::as_f64)
            .ok_or_else(|| "answered a run without seconds".to_string())
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = self.bridge.borrow_mut().request(&json!({"cmd": "close", "id": self.id}));
    }
}
