//! Benchmark: book.

fn main() {}
