//! Child processes: scoped forks that borrow from the parent, `Process` with Python's three
//! start methods, exit statuses, and the plumbing every child runs (panic capture, parent-death
//! guards, `_exit`). See `docs/architecture.md` ("Process model") for who forks whom and what happens on death.

pub(crate) mod alive;
pub(crate) mod boot;
pub(crate) mod builder;
pub(crate) mod child;
pub(crate) mod code;
pub(crate) mod context;
pub(crate) mod cpu;
pub(crate) mod entry;
pub(crate) mod fork;
pub(crate) mod forkserver;
pub(crate) mod handle;
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
pub(crate) mod status;
