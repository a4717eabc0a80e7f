//! Benchmark: e2e.

fn main() {}
