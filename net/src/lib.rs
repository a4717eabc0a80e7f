//! pinion-net: what the crates that speak to the network share, so each protocol is coded once.
//!
//! - [`http`]: HTTP/1.1 request and response heads (`httparse`), as read by the exchange
//!   simulator's listener, its loopback client, and the pcap reader skipping a WebSocket upgrade.
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
#[cfg(feature = "wss")]
pub mod sockopt;
#[cfg(feature = "wss")]
pub mod wss;

#[cfg(feature = "wss")]
pub use mio;
#[cfg(feature = "wss")]
pub use rustls;
