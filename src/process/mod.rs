//! Child processes: scoped forks that borrow from the parent, exit statuses, and the plumbing
//! every child runs (panic capture, parent-death signal, `_exit`).

pub(crate) mod child;
pub(crate) mod scope;
pub(crate) mod status;
