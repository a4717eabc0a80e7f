//! The four pipeline stages and what connects them.
//!
//! - [`feed`]: source read, pacing, `t0`, decode → [`msg::MarketMsg`].
//! - [`book`]: per-instrument book sync → [`msg::BookMsg`] (snapshots, trades).
//! - [`strategy`]: the configured strategy and the risk gate → [`msg::OrderMsg`]; takes
//!   execution reports back.
//! - [`gateway`]: hard limits, the simulated venue, `t_send` and tick-to-trade.
//! - [`event_barrier`]: keeps the strategy and a simulated venue in event-time order.
//! - [`handoff`]: where a stage leaves its final state for the report.
//! - [`outbox`]: output rings that never block (stages may share a thread with their
//!   consumer); [`pacing`]: replay release times; [`msg`]: the ring value types.
//!
//! Every stage stamps its exit on what it sends and records, per input: its service time and the
//! ring hop from the producer's exit stamp to its own pop. Every stage passes the end-of-stream
//! marker on after flushing and then reports `Done`.

pub mod book;
pub mod event_barrier;
pub mod feed;
pub mod gateway;
pub mod handoff;
pub mod msg;
pub mod outbox;
pub mod pacing;
pub mod predecoded;
pub mod strategy;
