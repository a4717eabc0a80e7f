//! pinion-engine: the engine around the stage crates.
//!
//! - [`config`]: the TOML config, its validation and the typed settings.
//! - [`cli`]: the `pinion` command line, turned into config overrides.
//!
//! The `pinion` binary (`src/main.rs`) is a thin layer over this library.

pub mod cli;
pub mod config;
