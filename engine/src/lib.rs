//! pinion-engine: the engine around the stage crates.
//!
//! - [`config`]: the TOML config, its validation and the typed settings.
//! - [`control`]: kill, pause and cancel-all from off the hot path, and the account board.
//! - [`bot`]: the operator bot (Telegram): commands through [`control`], alerts.
//! - [`cli`]: the `pinion` command line, turned into config overrides.
//! - [`runtime`]: stages on pinned threads, rings, wait strategies, the clock.
//! - [`host`]: what the host offers (isolated cores, memory locking, `SCHED_FIFO`) and its own
//!   stalls (`pinion jitter`).
//! - [`latency`]: histograms and their reports.
//! - [`stages`]: the feed, book, strategy and gateway stages.
//! - [`pipeline`]: building, placing and running the pipeline for any source, and its report.
//! - [`problems`]: what went wrong with the input, counted, sampled and written out.
//! - [`backtest`]: fills and equity recorded during a run, and the backtest report.
//! - [`ops`]: running it for real: the structured log and the trade history.
//! - [`progress`]: the progress bar's counters and monitor thread.
//! - [`secrets`]: API keys and tokens from systemd credentials, the environment, or owner-only
//!   files.
//! - [`watchdog`]: liveness reported outside: systemd's watchdog, the outbound heartbeat.
//!
//! The `pinion` binary (`src/main.rs`) is a thin layer over this library.

#![deny(missing_docs)]

pub mod backtest;
pub mod bot;
pub mod cli;
pub mod config;
pub mod control;
pub mod host;
pub mod latency;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod problems;
pub mod progress;
pub mod runtime;
pub mod secrets;
pub mod stages;
pub mod watchdog;
