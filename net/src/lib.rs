//! pinion-net: what the crates that speak to the network share, so each protocol is coded once.
//!
//! - [`http`]: HTTP/1.1 request and response heads (`httparse`), as read by the exchange
//!   simulator's listener, its loopback client, and the pcap reader skipping a WebSocket upgrade.
//!
//! It depends on no other pinion crate, so the lowest crate that needs it (`pinion-feed`) can.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod http;
