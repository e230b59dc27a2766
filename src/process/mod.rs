//! Child processes: scoped forks that borrow from the parent, `Process` with Python's three
//! start methods, exit statuses, and the plumbing every child runs (panic capture, parent-death
//! guards, `_exit`). See `docs/architecture.md` ("Process model") for who forks whom and what
//! happens on death.
//!
//! The files form layers without a cycle: leaves (`method`, `default_method`, `identity`,
//! `status`, `reaper`, `children`, `wait`, `alive`, `child`, `marker`), the job (`code`, `entry`) and its transports (`jobpipe`,
//! `request`), the child-side runtimes (`spawned`, `server`) under `boot`, which only
//! dispatches, the parent-side start methods (`reexec`, `fork`, `spawn`, `forkserver`), which
//! never name `Process` or `Context`, then `handle` and `scope`, and `builder` and `context` on
//! top. `README.md` beside this file has one line per file and the protocols (child boot, job
//! frame, forkserver requests).

pub(crate) mod alive;
pub(crate) mod boot;
pub(crate) mod builder;
pub(crate) mod child;
pub(crate) mod children;
pub(crate) mod code;
pub(crate) mod context;
pub(crate) mod cpu;
pub(crate) mod default_method;
pub(crate) mod entry;
pub(crate) mod fork;
pub(crate) mod forkserver;
pub(crate) mod handle;
pub(crate) mod identity;
pub(crate) mod jobpipe;
pub(crate) mod lend;
pub(crate) mod marker;
pub(crate) mod method;
pub(crate) mod reaper;
pub(crate) mod reexec;
pub(crate) mod request;
pub(crate) mod scope;
pub(crate) mod server;
pub(crate) mod spawn;
pub(crate) mod spawned;
pub(crate) mod start_error;
pub(crate) mod status;
pub(crate) mod wait;

pub use boot::init;
pub use builder::ProcessBuilder;
pub use child::ChildResult;
pub use children::active_children;
pub use context::{Context, get_context};
pub use cpu::{cpu_count, process_cpu_count};
pub use default_method::{
    StartMethodAlreadySet, force_start_method, get_start_method, set_start_method,
};
pub use forkserver::{shutdown_forkserver, shutdown_forkserver_timeout};
pub use handle::Process;
pub use identity::{ProcessInfo, current_process, parent_process};
pub use lend::Lend;
pub use marker::BAD_MARKER_EXIT_CODE;
pub use method::StartMethod;
pub use scope::{Scope, ScopedChild, scope};
pub use status::ExitStatus;
