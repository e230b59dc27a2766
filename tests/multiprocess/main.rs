//! Tests that fork real children. They run on the main thread under `harness.rs` (see there for
//! why), one at a time, each checked for leaked segments and unreaped children.

mod harness;

mod array;
mod pipe;
mod pool;
mod process;
mod queue;
mod scope;
mod soundness;
mod sync;
mod value;

fn main() -> std::process::ExitCode {
    let mut tests = Vec::new();
    tests.extend(array::tests());
    tests.extend(scope::tests());
    tests.extend(soundness::tests());
    tests.extend(sync::tests());
    tests.extend(value::tests());
    tests.extend(process::tests());
    tests.extend(queue::tests());
    tests.extend(pipe::tests());
    tests.extend(pool::tests());
    tests.extend(pool::task_tests());
    harness::run(tests)
}
