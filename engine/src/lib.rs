//! pinion-engine: the engine around the stage crates.
//!
//! - [`config`]: the TOML config, its validation and the typed settings.
//! - [`cli`]: the `pinion` command line, turned into config overrides.
//! - [`runtime`]: stages on pinned threads, rings, wait strategies, the clock.
//! - [`latency`]: histograms and their reports.
//!
//! The `pinion` binary (`src/main.rs`) is a thin layer over this library.

pub mod cli;
pub mod config;
pub mod latency;
pub mod runtime;
