//! The forkserver's server loop: a small single-threaded copy of the program, re-executed with a
//! forkserver marker (`marker.rs`, dispatched by `boot.rs`), that forks workers on request
//! (`request.rs`) and reports how each ended on its status pipe (`status.rs`). Child side only:
//! the client half lives in `forkserver.rs`, and neither imports the other.
//!
//! Deaths: the server exits once the client's socket is closed (the client shut it down, or died:
//! the kernel closes a dead process's descriptors) and all its workers have ended. It also arms
//! the alive pipe, so a SIGKILLed client takes it down at once. Workers arm both
//! `PR_SET_PDEATHSIG` (safe here: the server has one thread, so "the thread that forked" is the
//! server itself) and the client's alive pipe.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;

use super::alive;
use super::child;
use super::entry;
use super::marker::{self, Marker};
use super::request::{self, JOB_REFUSED, REQUEST_TIMEOUT};
use super::status;
use crate::sys;

/// The server's main loop (never returns).
pub(crate) fn serve(m: Marker) -> ! {
    let server_pid = sys::proc::getpid();
    match sys::proc::thread_count() {
        Ok(1) => {}
        Ok(n) => marker::fail(&format!(
            "the forkserver must be single-threaded, and {n} threads run before main"
        )),
        Err(e) => marker::fail(&format!("its threads cannot be counted ({e})")),
    }
    if !alive::guard(m.alive) {
        sys::proc::exit_now(0);
    }
    // SIGCHLD ignored (a disposition that survives exec) would make the kernel reap workers
    // at once: `peek_dead_child` would find none and no worker's status would ever be written.
    match sys::signal::keep_children_waitable() {
        Ok(_) => {}
        Err(e) => marker::fail(&format!("SIGCHLD cannot be made waitable ({e})")),
    }
    let mut sock = UnixStream::from(marker::own(m.fd_a));
    // A request announced but not sent in full (the client stopped mid-send) fails after this
    // long instead of blocking the server; the client gives up on a reply after as long.
    if let Err(e) = sock.set_read_timeout(Some(REQUEST_TIMEOUT)) {
        marker::fail(&format!("its socket's timeout cannot be set ({e})"));
    }
    let alive_fd = marker::own(m.alive);
    // Workers inherit both through fork; neither may leak into what a worker execs.
    let _ = sys::fdpass::set_cloexec(sock.as_fd());
    let _ = sys::fdpass::set_cloexec(alive_fd.as_fd());
    let mask = sys::signal::block_sigchld()
        .unwrap_or_else(|e| marker::fail(&format!("SIGCHLD cannot be blocked ({e})")));
    let sigchld = sys::signal::sigchld_fd()
        .unwrap_or_else(|e| marker::fail(&format!("signalfd failed ({e})")));
    // Installed here, once and single-threaded; each worker only flags itself (see `child.rs`).
    child::install_panic_hook();
    let mut workers: HashMap<u32, File> = HashMap::new();
    let mut open = true;
    loop {
        if !open && workers.is_empty() {
            sys::proc::exit_now(0);
        }
        let ready = if open {
            sys::fdpass::wait_any(&[sigchld.as_fd(), sock.as_fd()])
        } else {
            sys::fdpass::wait_any(&[sigchld.as_fd()])
        }
        .unwrap_or_else(|e| marker::fail(&format!("poll failed ({e})")));
        if ready[0] {
            sys::signal::drain(&sigchld);
            // The status is written before the worker is reaped: while it is unreadable, the
            // worker's pid is still its own (see `Process::signal`).
            while let Ok(Some((pid, exit))) = sys::signal::peek_dead_child() {
                if let Some(mut f) = workers.remove(&pid) {
                    let _ = f.write_all(&status::encode(exit));
                }
                let _ = sys::proc::waitpid(pid);
            }
        }
        if open && ready.get(1).copied().unwrap_or(false) {
            match request::read_request(&sock, REQUEST_TIMEOUT) {
                Ok(None) => open = false,
                Ok(Some((frame, status_w, report_w, args))) => {
                    let verified = entry::decode_frame(&frame, m.secret).map_err(|e| e.to_string());
                    let verified = verified.and_then(|job| job.with_fds(args));
                    drop(frame);
                    let reply = match verified {
                        Err(reason) => {
                            eprintln!("shmpool forkserver: refusing a job: {reason}");
                            JOB_REFUSED
                        }
                        // SAFETY: this process is single-threaded (checked at start), so the
                        // worker may do anything after the fork.
                        Ok(job) => match unsafe { sys::proc::fork() } {
                            Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
                            Ok(sys::proc::Forked::Parent(pid)) => {
                                workers.insert(pid, File::from(status_w));
                                pid as i32
                            }
                            Ok(sys::proc::Forked::Child) => {
                                drop(sock);
                                drop(sigchld);
                                drop(status_w);
                                workers.clear();
                                sys::signal::restore_mask(&mask);
                                if !alive::guard(alive_fd.as_raw_fd()) {
                                    sys::proc::exit_now(child::PANIC_EXIT_CODE + 1);
                                }
                                drop(alive_fd);
                                child::run(server_pid, File::from(report_w), || job.call())
                            }
                        },
                    };
                    if sock.write_all(&request::encode_reply(reply)).is_err() {
                        open = false;
                    }
                }
                Err(e) => {
                    eprintln!("shmpool forkserver: dropping a malformed request and closing ({e})");
                    open = false;
                }
            }
            if !open {
                // Close now, so a client waiting for a reply sees EOF instead of hanging.
                let _ = sock.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}
