//! pinion-exchange-sim: the exchange simulator's market-stream server, Binance's market-stream
//! protocol on loopback, serving a recording or the synthetic market. The `pinion-exchange-sim`
//! binary runs it as a process; the engine's crates do not depend on it (the in-process
//! simulated venue for replay and backtests is `pinion_gateway::sim`).
//!
//! [`FeedServer`] listens on one TCP port and speaks two protocols there, told apart by the
//! request head (an `Upgrade: websocket` header or not):
//!
//! - **WebSocket market streams**, `/stream?streams=<s1>/<s2>` (combined) or `/ws/<stream>`
//!   (raw): every `Frame` record of the source becomes one message, in source order, byte for
//!   byte as recorded (see `selection` for the filtering by stream name). Pacing is as fast as
//!   the client reads, or the recorded pace times a speed factor. The server pings on an
//!   interval and drops a client whose pong does not come back in time; at the end of the
//!   source it sends `serverShutdown` and closes with 1001, as Binance does before a planned
//!   shutdown.
//! - **REST depth snapshots**, `GET /api/v3/depth?symbol=<SYM>`: the source's recorded snapshot
//!   body (see `snapshots`). Binance serves snapshots over REST while the stream buffers, so a
//!   client syncs against the simulator exactly as against the exchange.
//!
//! In this replay mode each session reads its own copy of the source (`SourceOpener`), so
//! every client gets the whole recording from the start. This is a test peer, not the hot path: one thread per
//! connection, allocation per message is fine. Plaintext (`ws://`) or TLS (`wss://`, see
//! [`FeedServer::start_tls`] and [`SelfSignedTls`]) on the same code path.
//!
//! [`LiveExchange`] (module [`live`]) is the other mode: a **live exchange model**. One market
//! thread runs the source once on a clock and keeps an exact truth book per symbol; clients
//! join the running market, subscribe with `SUBSCRIBE`/`UNSUBSCRIBE`/`LIST_SUBSCRIPTIONS`,
//! fetch REST depth snapshots of the *current* book (with Binance's weights and budget), and
//! meet seeded faults ([`FaultPlan`]). Tests compare a client's book with
//! [`LiveExchange::truth`] or `GET /sim/book`. [`MergedSource`] runs several single-symbol
//! sources (the synthetic market) as one market.
//!
//! [`BotApiFake`] (module [`botapi`]) is a fake of the Telegram Bot API over TLS for the
//! engine's operator bot: long-polled updates, recorded messages, injected user messages and an
//! outage on demand.
//!
//! [`loopback`] is the client side of a loopback check: receive a session, compare a capture's
//! frames with the source's.
//!
//! Invariants: anything a client sends (heads, frames) is bounded and never panics the server; a
//! bad request is answered with a Binance-style error body and counted in [`FeedServerStats`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod botapi;
mod config;
mod http;
pub mod live;
pub mod loopback;
mod merged;
mod selection;
mod server;
mod session;
mod snapshots;
mod state;
mod tls;
pub mod wsapi;

pub use botapi::{BotApiConfig, BotApiFake, BotApiStats, DownMode, SentMessage};
pub use config::{FeedConfig, Pacing};
pub use live::{
    Dec, Fault, FaultPlan, InstrumentInfo, LiveConfig, LiveExchange, LivePacing, LiveStats,
    LiveVenue, TruthBook,
};
pub use merged::MergedSource;
pub use selection::StreamSelection;
pub use server::FeedServer;
pub use snapshots::SnapshotTable;
pub use state::{FeedServerStats, SourceOpener};
pub use tls::SelfSignedTls;
pub use wsapi::{
    KeyProfile, OrderFault, OrderFaultPlan, SimAccount, SimBalance, SimOrder, SimTrade, StpMode,
    SymbolStp, WsApiConfig,
};

use std::net::SocketAddr;

use pinion_feed::SourceError;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeSimError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The source could not be opened or read.
    #[error("source: {0}")]
    Source(#[from] SourceError),
    /// A setting is out of range.
    #[error("invalid exchange simulator config: {0}")]
    Config(&'static str),
    /// The TLS identity or config could not be made.
    #[error("tls: {0}")]
    Tls(String),
    /// The accepting thread could not be started.
    #[error("cannot start the accept thread: {0}")]
    Spawn(std::io::Error),
}
