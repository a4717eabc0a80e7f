//! pinion-net: what the crates that speak to the network share, so each protocol is coded once.
//!
//! - [`http`]: HTTP/1.1 request and response heads (`httparse`), as read by the exchange
//!   simulator's listener, its loopback client, and the pcap reader skipping a WebSocket upgrade.
//! - [`rest`]: REST over HTTPS/1.1. Its response reader is pure (bytes in, response out) and
//!   always built; the blocking keep-alive client for snapshots and `exchangeInfo` comes with
//!   feature `wss`.
//! - [`ratelimit`]: fixed-window request weight (corrected by the server's count, paused by
//!   429/418) and a pacer for a stream's control messages.
//! - [`backoff`]: reconnect delays (capped exponential, full jitter, reset only after healthy
//!   data) under a per-IP connection-attempt budget.
//! - `sockopt` (feature `wss`): `TCP_NODELAY` and optional buffer, quick-ack and busy-poll
//!   options, set and read back, reported per socket.
//! - `wss` (feature `wss`, on by default): the WebSocket-over-TLS client the live feed connects
//!   with: `mio` sockets driven from the caller's poll loop, `rustls`, `tungstenite`. With it,
//!   `mio` and `rustls` are re-exported: a caller drives `wss` with `mio`'s poll and gives it
//!   `rustls` roots, and must use the same versions.
//!
//! It depends on no other pinion crate, so the lowest crate that needs it (`pinion-feed`) can;
//! the workspace takes it without `wss`, so crates that only parse build no TLS stack.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backoff;
pub mod http;
pub mod ratelimit;
pub mod rest;
#[cfg(feature = "wss")]
pub mod sockopt;
#[cfg(feature = "wss")]
pub mod wss;

#[cfg(feature = "wss")]
pub use mio;
#[cfg(feature = "wss")]
pub use rustls;
