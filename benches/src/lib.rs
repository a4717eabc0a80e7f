//! Shared helpers for pinion's benchmarks: locating the real recordings in `../shared/data`.
