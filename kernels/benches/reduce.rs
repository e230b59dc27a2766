//! Reductions at memory bandwidth (being written).

fn main() {}
