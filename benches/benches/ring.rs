//! Benchmark: ring.

fn main() {}
