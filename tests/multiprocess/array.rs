//! Shared arrays across forked children.

use crate::harness::Test;

pub fn tests() -> Vec<Test> {
    vec![]
}
