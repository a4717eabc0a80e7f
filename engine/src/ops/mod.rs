//! Running pinion for real: what it tells an operator while and after it runs.
//!
//! - [`log`]: structured log records over a lock-free ring to a logger thread.
//! - [`events`]: the engine's lifecycle as log records (start, config, connections, resyncs,
//!   refusals, end), emitted from the command's thread, never from a stage.
//! - [`history`]: the trade history in SQLite, written by a thread of its own, and read back by
//!   `pinion history`.
//! - [`journal`]: every order, report, fill and position change of a trading session, appended
//!   as it happens by a writer thread, and read back when the session restarts.
//! - [`civil`]: UTC dates for both.

pub mod civil;
pub mod events;
pub mod history;
pub mod journal;
pub mod log;
