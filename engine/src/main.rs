//! The `pinion` command.

fn main() {}
