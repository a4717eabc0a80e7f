//! Benchmark: parse.

fn main() {}
