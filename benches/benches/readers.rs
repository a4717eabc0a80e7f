//! Benchmark: readers.

fn main() {}
