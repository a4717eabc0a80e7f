//! REST over HTTPS/1.1: the depth snapshots and `exchangeInfo` the live feed needs beside its
//! streams.
//!
//! - [`ResponseReader`]: the response side as a pure reader over bytes (head by
//!   [`crate::http`], body by `Content-Length`, chunked coding or the connection's end, all
//!   bounded). No network stack: it is what the fuzz target drives.
//! - `RestClient` (feature `wss`): a blocking client with keep-alive for a helper thread, over
//!   the same rustls config as the streams (`crate::wss::client_config`: SNI and certificate
//!   verification always on, sessions resumed on reconnect). Request heads carry `Host`,
//!   `Connection: keep-alive`, a `User-Agent` and `Accept-Encoding: identity`; responses are
//!   read with [`ResponseReader`]. A kept-alive connection the server closed while idle shows
//!   as a close before any response byte: that, and only that, is retried once on a fresh
//!   connection. `TCP_NODELAY` is set and read back on every connect (`crate::sockopt`).
//!
//! Rate limits are the caller's ([`crate::ratelimit::WeightWindow`] with
//! `RestResponse::used_weight_1m` and `RestResponse::retry_after`); the client never logs and
//! never puts a request's query into an error.

#[cfg(feature = "wss")]
mod client;
#[cfg(feature = "wss")]
mod error;
mod reader;

#[cfg(feature = "wss")]
pub use client::{RestClient, RestResponse, RestSettings, RestStats};
#[cfg(feature = "wss")]
pub use error::{Phase, RestError};
pub use reader::{ReadError, ReadLimits, Response, ResponseHeaders, ResponseReader, Seen};
