//! Live market data: the venue's streams over TLS WebSocket, kept subscribed and in sync, as a
//! [`FrameSource`](crate::FrameSource) — so the feed stage, the recorder and every test read a
//! live session exactly as they read a recording.
//!
//! [`LiveSource`] (feature `live`) plans its connections from a [`LiveSpec`] (symbols × stream
//! suffixes, at most [`LiveSpec::max_streams_per_connection`] streams each) and drives them from
//! the feed thread's own poll loop: every call to `next_record` polls the sockets without
//! blocking (`poll` with a zero timeout: busy-polling on an isolated core, the thread's wait
//! strategy elsewhere), hands out what arrived, and runs the timers:
//!
//! - **Subscriptions** are sent once a connection opens, batched (200 streams a message on
//!   Binance, 10 on Bybit) and paced under the venue's control-message limit; each is checked
//!   by its id, and one whose ack does not come in time, or that the venue refuses, is asked
//!   again alone.
//! - **Liveness**: a connection that reads nothing at all for the idle timeout is dropped and
//!   reopened (it does not rely on the server's pings); a depth stream silent while the rest of
//!   its connection flows is *stale*: a [`RecordKind::Gap`](pinion_core::RecordKind::Gap) record
//!   naming its symbol makes that book alone resync, and the stream is renewed alone. Bybit gets
//!   its 20 s application ping.
//! - **Reconnect** with capped exponential backoff and full jitter; the backoff resets only
//!   after a stretch of healthy data, never on a mere connect. A lost connection is a
//!   `Disconnect` record, a new one a `Connect` record: the book stage resyncs what it fed.
//! - **Snapshots** (Binance): [`SnapshotRequests`] carries each book's need from the book stage;
//!   the source fetches that symbol's REST snapshot on the REST worker thread once its depth
//!   stream flows (the diffs buffer in the book first, as the venue prescribes), weighted under
//!   the configured share of the request-weight limit, and hands it on as a `RestSnapshot`
//!   record on the depth stream's connection. A snapshot older than the buffered diffs makes
//!   the book ask again: that is the `lastUpdateId` retry. Bybit's snapshots come in the stream:
//!   a resync there renews the book's subscription.
//!
//! - **Redundant feeds** (optional): each connection gets a partner carrying the same streams
//!   (another host, or a second connection to the same one). Each stream's messages are merged
//!   by update id (trade id for trades): the first arrival is handed on, the later copy
//!   dropped and its lag counted as the first feed's edge; a message that skips ahead on one
//!   feed waits briefly for the other to fill the gap. A feed that drops while its partner
//!   carries on costs the books nothing.
//!
//! Every record the source yields — frames, snapshots, connection records — is an ordinary
//! [`RawRecord`](pinion_core::RawRecord), so a live session recorded to `.pnr` replays bit for
//! bit through the same code.

pub mod protocol;
mod requests;

#[cfg(feature = "live")]
mod queue;
#[cfg(feature = "live")]
mod source;
#[cfg(feature = "live")]
mod worker;

pub use requests::SnapshotRequests;
#[cfg(feature = "live")]
pub use source::{ConnCounters, LiveCounters, LiveSource};
#[cfg(feature = "live")]
pub use worker::{Answer, Fetch, RestCounters};

use std::time::Duration;

use pinion_core::Venue;

/// Why a live source could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A setting is wrong.
    #[error("live config: {0}")]
    Config(String),
    /// The poller or the worker thread could not be made.
    #[error("live source: {0}")]
    Io(#[from] std::io::Error),
}

/// How a WebSocket feed encodes its market data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// JSON text frames: every venue.
    #[default]
    Json,
    /// Binance Spot's SBE: binary frames of the stream schema (decoded by
    /// [`crate::parse::Decoder`] by their header), JSON text for control messages.
    Sbe,
}

impl Encoding {
    /// The encoding named `text` (`json`, `sbe`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "json" => Some(Self::Json),
            "sbe" => Some(Self::Sbe),
            _ => None,
        }
    }
}

/// What a live session connects to and how it behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSpec {
    /// The venue (its protocol, sync rule, REST paths and weights).
    pub venue: Venue,
    /// The WebSocket base: `wss://stream.binance.com:9443/stream` (Binance combined streams,
    /// subscribed by message), `wss://stream.bybit.com/v5/public/spot`.
    pub ws_url: String,
    /// A second WebSocket base carrying the same streams (or the same URL again, for a second
    /// connection): every connection gets a partner there, and each stream's messages are
    /// merged by update id, first arrival wins, a gap on one filled from the other before it
    /// counts as a gap. Binance only.
    pub redundant_ws_url: Option<String>,
    /// What `ws_url` sends: JSON text, or Binance Spot's binary SBE
    /// (`wss://stream-sbe.binance.com:9443/stream`, 20 ms depth, an API key at connect).
    pub encoding: Encoding,
    /// What `redundant_ws_url` sends: the same as `encoding`, or the other one (a JSON and an
    /// SBE feed merged by update id).
    pub redundant_encoding: Encoding,
    /// How long a message that skips ahead on one feed is held for the other feed to fill the
    /// gap, before the book is given it (and resyncs).
    pub gap_hold: Duration,
    /// The REST base for snapshots: `https://api.binance.com`.
    pub rest_url: String,
    /// The venue's symbols (`BTCUSDT`).
    pub symbols: Vec<String>,
    /// Stream suffixes subscribed for every symbol: `depth@100ms`, `bookTicker`, `trade`
    /// (Binance); `orderbook.50`, `publicTrade` (Bybit).
    pub streams: Vec<String>,
    /// Levels per REST snapshot.
    pub snapshot_limit: u32,
    /// Streams per connection at most (Binance Spot allows 1024, futures 200 to be safe).
    pub max_streams_per_connection: usize,
    /// Control messages (subscriptions, pings; pongs are paid for too) per second at most,
    /// well under the venue's limit (Spot 5/s: 3; futures 10/s: 6). The venue counts them as
    /// it reads them, so messages paced at 4/s that bunch up in transit, plus a pong, can make
    /// six in its second: the margin absorbs that.
    pub control_messages_per_sec: f64,
    /// How long an ack may take before the request is sent again.
    pub ack_timeout: Duration,
    /// Nothing at all read for this long: the connection is dropped and reopened.
    pub read_idle_timeout: Duration,
    /// A depth stream silent this long while its connection flows is stale; zero turns the
    /// check off.
    pub stream_stale_after: Duration,
    /// Data for this long since a connect makes the connection healthy: its backoff resets.
    pub healthy_after: Duration,
    /// The first reconnect delay's cap (full jitter: anywhere from zero to it).
    pub reconnect_base: Duration,
    /// The largest reconnect delay.
    pub reconnect_cap: Duration,
    /// TCP, TLS and the upgrade must be done within this.
    pub connect_timeout: Duration,
    /// Replace a connection this long after it opened (make-before-break, before the venue's
    /// 24 h cut); zero turns rotation off (a `serverShutdown` notice still rotates).
    pub rotate_after: Duration,
    /// Up to this much is added to `rotate_after`, at random, so connections opened together
    /// do not rotate together.
    pub rotate_jitter: Duration,
    /// Client ping interval (Bybit asks for 20 s).
    pub client_ping_every: Duration,
    /// The venue's request-weight limit per minute (Spot 6000, futures 2400).
    pub rest_weight_limit: u32,
    /// The window that limit counts over (Binance: one minute, aligned to the clock).
    pub rest_weight_window: Duration,
    /// The share of it this session may use (the rest is left for other clients of the IP).
    pub rest_weight_share: f64,
    /// Seeds the jitter.
    pub seed: u64,
}

impl LiveSpec {
    /// A spec with the venue's documented limits and conservative timers, for `symbols` and
    /// `streams` on the given endpoints.
    pub fn new(
        venue: Venue,
        ws_url: &str,
        rest_url: &str,
        symbols: Vec<String>,
        streams: Vec<String>,
    ) -> Self {
        let futures = venue.is_binance_futures();
        LiveSpec {
            venue,
            ws_url: ws_url.to_owned(),
            redundant_ws_url: None,
            encoding: Encoding::Json,
            redundant_encoding: Encoding::Json,
            gap_hold: Duration::from_millis(50),
            rest_url: rest_url.trim_end_matches('/').to_owned(),
            symbols,
            streams,
            snapshot_limit: 1000,
            max_streams_per_connection: if futures { 200 } else { 1024 },
            control_messages_per_sec: if futures { 6.0 } else { 3.0 },
            ack_timeout: Duration::from_secs(5),
            read_idle_timeout: Duration::from_secs(30),
            stream_stale_after: Duration::from_secs(5),
            healthy_after: Duration::from_secs(30),
            reconnect_base: Duration::from_millis(250),
            reconnect_cap: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            rotate_after: Duration::from_secs(23 * 3600),
            rotate_jitter: Duration::from_secs(600),
            client_ping_every: Duration::from_secs(20),
            rest_weight_limit: if futures { 2400 } else { 6000 },
            rest_weight_window: Duration::from_secs(60),
            rest_weight_share: 0.5,
            seed: 1,
        }
    }

    /// Checks what could make a session misbehave.
    pub fn validate(&self) -> Result<(), LiveError> {
        let bad = |m: &str| Err(LiveError::Config(m.to_owned()));
        if self.symbols.is_empty() {
            return bad("no symbols");
        }
        if self.streams.is_empty() {
            return bad("no streams");
        }
        if self.max_streams_per_connection == 0 {
            return bad("max_streams_per_connection must be at least 1");
        }
        if !(self.control_messages_per_sec.is_finite() && self.control_messages_per_sec > 0.0) {
            return bad("control_messages_per_sec must be positive");
        }
        if !(self.rest_weight_share > 0.0 && self.rest_weight_share <= 1.0) {
            return bad("rest_weight_share must be in (0, 1]");
        }
        if self.read_idle_timeout.is_zero()
            || self.ack_timeout.is_zero()
            || self.connect_timeout.is_zero()
        {
            return bad("timeouts must not be zero");
        }
        if self.rest_weight_window.is_zero() || self.rest_weight_limit == 0 {
            return bad("the request-weight limit and its window must not be zero");
        }
        if self.redundant_ws_url.is_some() && self.venue.is_bybit() {
            return bad(
                "redundant feeds are for Binance streams (Bybit's carry no update ids to merge by)",
            );
        }
        if self.reconnect_cap < self.reconnect_base {
            return bad("reconnect_cap must not be below reconnect_base");
        }
        // Binance futures route klines and tickers to `/market`: a `/public` connection
        // subscribes them and is silently sent nothing.
        if let Some(s) = self.streams.iter().find(|s| is_market_route_stream(s))
            && self.venue.is_binance_futures()
            && self.ws_url.contains("/public/")
        {
            return Err(LiveError::Config(format!(
                "stream {s:?} comes on Binance futures' /market route, not /public: subscribe \
                 it in a session whose ws_url is …/market/stream"
            )));
        }
        let sbe = self.encoding == Encoding::Sbe
            || (self.redundant_ws_url.is_some() && self.redundant_encoding == Encoding::Sbe);
        if sbe {
            if self.venue.market() != Venue::BinanceSpot {
                return Err(LiveError::Config(format!(
                    "encoding \"sbe\" is Binance Spot's alone, not {}'s",
                    self.venue
                )));
            }
            if let Some(s) = self
                .streams
                .iter()
                .find(|s| protocol::sbe_stream_suffix(s).is_none())
            {
                return Err(LiveError::Config(format!(
                    "stream {s:?} has no SBE counterpart (SBE carries trade, bestBidAsk or \
                     bookTicker, depth and depth20)"
                )));
            }
        }
        Ok(())
    }
}

/// Whether a Binance stream suffix is a kline or a 24 h ticker (`kline_1m`, `ticker`,
/// `miniTicker`), which Binance futures send on the `/market` route only.
pub fn is_market_route_stream(suffix: &str) -> bool {
    suffix.starts_with("kline_") || suffix == "ticker" || suffix == "miniTicker"
}

#[cfg(test)]
mod route_tests {
    use super::*;

    #[test]
    fn futures_klines_and_tickers_on_the_public_route_are_refused() {
        let spec = |venue, url: &str, streams: &[&str]| {
            LiveSpec::new(
                venue,
                url,
                "https://fapi.binance.com",
                vec!["BTCUSDT".to_owned()],
                streams.iter().map(|s| (*s).to_owned()).collect(),
            )
        };
        let public = "wss://fstream.binance.com/public/stream";
        let market = "wss://fstream.binance.com/market/stream";
        for s in ["kline_1m", "ticker", "miniTicker"] {
            let err = spec(Venue::BinanceUsdm, public, &["depth@100ms", s])
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("stream {s:?} comes on Binance futures' /market")));
            assert!(spec(Venue::BinanceUsdm, market, &[s]).validate().is_ok());
        }
        assert!(
            spec(Venue::BinanceUsdm, public, &["depth@100ms", "bookTicker"])
                .validate()
                .is_ok()
        );
        // Spot has no routes.
        let spot = "wss://stream.binance.com:9443/stream";
        assert!(
            spec(Venue::BinanceSpot, spot, &["kline_1m", "miniTicker"])
                .validate()
                .is_ok()
        );
        assert!(!is_market_route_stream("ticker_1h"));
    }
}
