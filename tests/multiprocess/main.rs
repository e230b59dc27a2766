//! Tests that fork real children. They run on the main thread under `harness.rs` (see there for
//! why), one at a time, each checked for leaked segments and unreaped children. Each file
//! registers its tests with `harness::register!`; a file missing below, or a test function
//! missing from its file's list, stops the run with a message saying so.

mod harness;

mod adversary_issue10;
mod adversary_issue12;
mod adversary_issue9;
mod adversary_manager;
mod adversary_session6;
mod adversary_spin_lock;
mod adversary_waits;
mod args_and_deadlines;
mod array;
mod barrier_action;
mod batch_progress;
mod connection_arg;
mod kernels_api;
mod listener;
mod manager;
mod manager_faults;
mod manager_shared;
mod manager_sync;
mod pipe;
mod poll_deaths;
mod pool;
mod process;
mod python_names;
mod queue;
mod queue_joinable;
mod queue_unbounded;
mod scope;
mod soundness;
mod sync;
mod task_timeout;
mod tasks_borrowed;
mod tasks_calls;
mod tasks_serde;
mod value;
mod workers_startup;

use harness::suite;

fn main() -> std::process::ExitCode {
    harness::main(vec![
        suite!(array),
        suite!(scope),
        suite!(soundness),
        suite!(sync),
        suite!(value),
        suite!(process),
        suite!(queue),
        suite!(queue_unbounded),
        suite!(queue_joinable),
        suite!(pipe),
        suite!(pool),
        suite!(kernels_api),
        suite!(tasks_serde),
        suite!(task_timeout),
        suite!(tasks_calls),
        suite!(batch_progress),
        suite!(tasks_borrowed),
        suite!(python_names),
        suite!(args_and_deadlines),
        suite!(manager_faults),
        suite!(manager),
        suite!(manager_shared),
        suite!(manager_sync),
        suite!(adversary_manager),
        suite!(workers_startup),
        suite!(barrier_action),
        suite!(connection_arg),
        suite!(adversary_issue9),
        suite!(adversary_issue10),
        suite!(listener),
        suite!(adversary_issue12),
        suite!(poll_deaths),
        suite!(adversary_session6),
        suite!(adversary_waits),
        suite!(adversary_spin_lock),
    ])
}
