//! What differs between the venues' public market-data protocols, as the live source needs it:
//! stream names, subscription and ping messages, how a frame is told apart (market data, an
//! acknowledgement, a pong, a server notice), REST snapshot paths and their request weights.
//!
//! Everything here reads a frame's first bytes or builds a short control message; nothing
//! allocates on the market-data path (classifying a data frame only slices its stream name).

use std::fmt::Write as _;

use pinion_core::Venue;

use crate::sbe::{self, StreamMessage, Template};

/// A venue's public stream protocol family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Binance market streams: `SUBSCRIBE` with `params`, combined `{"stream":…,"data":…}`
    /// frames on `/stream`, server pings answered by the transport.
    Binance,
    /// Bybit v5 public streams: `{"op":"subscribe","args":[…]}`, `topic` frames, client pings
    /// every 20 s.
    Bybit,
}

impl Protocol {
    /// The protocol of `venue`.
    pub fn of(venue: Venue) -> Protocol {
        if venue.is_bybit() {
            Protocol::Bybit
        } else {
            Protocol::Binance
        }
    }
}

/// What a stream carries, as far as the live source cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Order book diffs (Binance `@depth`, Bybit `orderbook.N`): the book depends on every one,
    /// so silence is watched and a resync fetches a snapshot (or resubscribes, Bybit).
    Depth,
    /// Anything else (trades, book tickers).
    Other,
}

/// The stream name of `suffix` for `symbol` on `protocol`: `btcusdt@depth@100ms` (Binance
/// names are lower case), `orderbook.50.BTCUSDT` (Bybit topics keep the symbol's case).
pub fn stream_name(protocol: Protocol, symbol: &str, suffix: &str) -> String {
    match protocol {
        Protocol::Binance => format!("{}@{suffix}", symbol.to_ascii_lowercase()),
        Protocol::Bybit => format!("{suffix}.{}", symbol.to_ascii_uppercase()),
    }
}

/// The kind of a stream from its configured suffix.
pub fn stream_kind(protocol: Protocol, suffix: &str) -> StreamKind {
    let depth = match protocol {
        // `depth`, `depth@100ms`, `depth@0ms`; not the partial book streams `depth5` … `depth20`,
        // which are whole top-N books and need no sync.
        Protocol::Binance => {
            suffix == "depth" || suffix.starts_with("depth@") && !suffix.contains("depth@rpi")
        }
        Protocol::Bybit => suffix.starts_with("orderbook."),
    };
    if depth {
        StreamKind::Depth
    } else {
        StreamKind::Other
    }
}

/// Builds the subscribe (or unsubscribe) message for `streams` with request id `id` into `out`.
pub fn subscription_message(
    protocol: Protocol,
    subscribe: bool,
    streams: &[&str],
    id: u64,
    out: &mut String,
) {
    out.clear();
    match protocol {
        Protocol::Binance => {
            let method = if subscribe {
                "SUBSCRIBE"
            } else {
                "UNSUBSCRIBE"
            };
            let _ = write!(out, "{{\"method\":\"{method}\",\"params\":[");
        }
        Protocol::Bybit => {
            let op = if subscribe {
                "subscribe"
            } else {
                "unsubscribe"
            };
            let _ = write!(out, "{{\"op\":\"{op}\",\"req_id\":\"{id}\",\"args\":[");
        }
    }
    for (i, s) in streams.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
    match protocol {
        Protocol::Binance => {
            let _ = write!(out, "],\"id\":{id}}}");
        }
        Protocol::Bybit => out.push_str("]}"),
    }
}

/// Bybit's application-level ping, with request id `id`.
pub fn bybit_ping(id: u64, out: &mut String) {
    out.clear();
    let _ = write!(out, "{{\"op\":\"ping\",\"req_id\":\"{id}\"}}");
}

/// Streams one subscription message may carry: Binance takes many (the frame stays far below
/// its size limit at 200), Bybit spot at most 10 arguments per request.
pub fn streams_per_message(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Binance => 200,
        Protocol::Bybit => 10,
    }
}

/// What a received frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Market data of the named stream (Binance combined stream name, Bybit topic).
    Data(&'a [u8]),
    /// The answer to request `id`: `ok` when it succeeded.
    Ack {
        /// The request id.
        id: u64,
        /// Whether the request succeeded.
        ok: bool,
    },
    /// A pong to the client's application-level ping (Bybit).
    Pong,
    /// The server will close this connection soon (Binance `serverShutdown`).
    ServerShutdown,
    /// Anything else (a raw-stream payload, an unknown control answer): passed on as data of
    /// no known stream.
    Other,
}

/// Classifies a text frame by its first bytes.
pub fn classify(protocol: Protocol, frame: &[u8]) -> Frame<'_> {
    match protocol {
        Protocol::Binance => classify_binance(frame),
        Protocol::Bybit => classify_bybit(frame),
    }
}

fn classify_binance(frame: &[u8]) -> Frame<'_> {
    const STREAM: &[u8] = b"{\"stream\":\"";
    if let Some(rest) = frame.strip_prefix(STREAM) {
        return match memchr::memchr(b'"', rest) {
            Some(end) if &rest[..end] == b"!serverShutdown" => Frame::ServerShutdown,
            Some(end) => Frame::Data(&rest[..end]),
            None => Frame::Other,
        };
    }
    if frame.starts_with(b"{\"result\":") || frame.starts_with(b"{\"error\":") {
        let ok = frame.starts_with(b"{\"result\":");
        return match int_after(frame, b"\"id\":") {
            Some(id) => Frame::Ack { id, ok },
            None => Frame::Other,
        };
    }
    if memchr::memmem::find(frame, b"\"serverShutdown\"").is_some() && frame.len() < 256 {
        return Frame::ServerShutdown;
    }
    Frame::Other
}

fn classify_bybit(frame: &[u8]) -> Frame<'_> {
    const TOPIC: &[u8] = b"{\"topic\":\"";
    if let Some(rest) = frame.strip_prefix(TOPIC) {
        if let Some(end) = memchr::memchr(b'"', rest) {
            return Frame::Data(&rest[..end]);
        }
        return Frame::Other;
    }
    // Control answers are short objects carrying `op`.
    if frame.len() > 1024 {
        return Frame::Other;
    }
    let op = str_after(frame, b"\"op\":\"");
    match op {
        Some(b"ping" | b"pong") => Frame::Pong,
        Some(b"subscribe" | b"unsubscribe") => {
            let ok = memchr::memmem::find(frame, b"\"success\":true").is_some();
            match str_after(frame, b"\"req_id\":\"").and_then(parse_u64) {
                Some(id) => Frame::Ack { id, ok },
                None => Frame::Other,
            }
        }
        _ => Frame::Other,
    }
}

/// The SBE stream carrying what the JSON stream `suffix` carries on Binance Spot: `trade`;
/// `bestBidAsk` for `bookTicker` (SBE's adds an event time); `depth` (every 20 ms) for the diff
/// streams; `depth20` for the 20-level partial book. `None` for what SBE lacks (`aggTrade`,
/// 5- and 10-level books, klines).
pub fn sbe_stream_suffix(suffix: &str) -> Option<&'static str> {
    match suffix {
        "trade" => Some("trade"),
        "bookTicker" | "bestBidAsk" => Some("bestBidAsk"),
        "depth" | "depth@100ms" | "depth@1000ms" => Some("depth"),
        "depth20" | "depth20@100ms" | "depth20@1000ms" => Some("depth20"),
        _ => None,
    }
}

/// The SBE message template of an SBE stream suffix from [`sbe_stream_suffix`].
pub fn sbe_template(sbe_suffix: &str) -> Option<Template> {
    match sbe_suffix {
        "trade" => Some(Template::Trades),
        "bestBidAsk" => Some(Template::BestBidAsk),
        "depth" => Some(Template::DepthDiff),
        "depth20" => Some(Template::DepthSnapshot),
        _ => None,
    }
}

/// Room for an SBE stream key: the template id and a symbol of up to 255 bytes.
pub const SBE_KEY_MAX: usize = 2 + 255;

/// The key an SBE stream is found by: its template id (little-endian, so never the start of a
/// JSON stream name) then its symbol, upper case as the messages carry it.
pub fn sbe_key(template: Template, symbol: &[u8], out: &mut [u8; SBE_KEY_MAX]) -> usize {
    let n = symbol.len().min(SBE_KEY_MAX - 2);
    out[..2].copy_from_slice(&(template as u16).to_le_bytes());
    for (o, c) in out[2..2 + n].iter_mut().zip(symbol) {
        *o = c.to_ascii_uppercase();
    }
    2 + n
}

/// Classifies a binary frame of the SBE stream schema: market data of the stream named by
/// [`sbe_key`] (written into `key`); [`Frame::Other`] when it cannot be read (the decoder
/// counts why).
pub fn classify_sbe<'k>(frame: &[u8], key: &'k mut [u8; SBE_KEY_MAX]) -> Frame<'k> {
    let Ok(msg) = sbe::read(frame) else {
        return Frame::Other;
    };
    let template = match msg {
        StreamMessage::Trades(_) => Template::Trades,
        StreamMessage::BestBidAsk(_) => Template::BestBidAsk,
        StreamMessage::DepthSnapshot(_) => Template::DepthSnapshot,
        StreamMessage::DepthDiff(_) => Template::DepthDiff,
    };
    let n = sbe_key(template, msg.symbol(), key);
    Frame::Data(&key[..n])
}

/// The unsigned integer right after `key` in `frame`.
fn int_after(frame: &[u8], key: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(frame, key)? + key.len();
    let digits = frame[at..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    parse_u64(&frame[at..at + digits])
}

/// The string value right after `key` (which ends with the opening quote).
fn str_after<'a>(frame: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = memchr::memmem::find(frame, key)? + key.len();
    let end = memchr::memchr(b'"', &frame[at..])?;
    Some(&frame[at..at + end])
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
    })
}

/// The REST path (with query) of a depth snapshot of `symbol` with `limit` levels.
pub fn depth_path(venue: Venue, symbol: &str, limit: u32) -> String {
    let market = venue.market();
    let prefix = match market {
        Venue::BinanceUsdm => "/fapi/v1/depth",
        Venue::BinanceCoinm => "/dapi/v1/depth",
        Venue::BybitSpot | Venue::BybitLinear | Venue::BybitInverse => {
            let category = match market {
                Venue::BybitSpot => "spot",
                Venue::BybitLinear => "linear",
                _ => "inverse",
            };
            return format!(
                "/v5/market/orderbook?category={category}&symbol={symbol}&limit={limit}"
            );
        }
        _ => "/api/v3/depth",
    };
    format!("{prefix}?symbol={symbol}&limit={limit}")
}

/// The REST path of the instrument list for `symbols`.
pub fn exchange_info_path(venue: Venue, symbols: &[String]) -> String {
    match venue.market() {
        Venue::BinanceUsdm => "/fapi/v1/exchangeInfo".to_owned(),
        Venue::BinanceCoinm => "/dapi/v1/exchangeInfo".to_owned(),
        Venue::BybitSpot | Venue::BybitLinear | Venue::BybitInverse => {
            let category = match venue.market() {
                Venue::BybitSpot => "spot",
                Venue::BybitLinear => "linear",
                _ => "inverse",
            };
            format!("/v5/market/instruments-info?category={category}&limit=1000")
        }
        _ => {
            let mut p = String::from("/api/v3/exchangeInfo?symbols=[");
            for (i, s) in symbols.iter().enumerate() {
                if i > 0 {
                    p.push(',');
                }
                let _ = write!(p, "%22{s}%22");
            }
            p.push(']');
            p
        }
    }
}

/// The request weight of a depth snapshot with `limit` levels (Binance's tables, COIN-M as
/// USD-M; Bybit counts requests, not weight: 1).
pub fn depth_weight(venue: Venue, limit: u32) -> u32 {
    match venue.market() {
        Venue::BinanceUsdm | Venue::BinanceCoinm => pinion_net::ratelimit::usdm_depth_weight(limit),
        Venue::BybitSpot | Venue::BybitLinear | Venue::BybitInverse => 1,
        _ => pinion_net::ratelimit::spot_depth_weight(limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbe_frames_are_found_by_template_and_symbol() {
        // A best bid/ask of ethbtc, header then block then symbol, built from the schema.
        let mut frame = vec![50, 0, 0x11, 0x27, 1, 0, 0, 0];
        frame.extend([0u8; 16]);
        frame.extend([0xF8, 0xF8]);
        frame.extend([0u8; 32]);
        frame.push(6);
        frame.extend(b"ETHBTC");
        let mut key = [0u8; SBE_KEY_MAX];
        let mut expected = [0u8; SBE_KEY_MAX];
        let n = sbe_key(Template::BestBidAsk, b"ethbtc", &mut expected);
        assert_eq!(classify_sbe(&frame, &mut key), Frame::Data(&expected[..n]));
        assert_eq!(&expected[..n], b"\x11\x27ETHBTC");
        // Cut short: not data of any stream.
        assert_eq!(classify_sbe(&frame[..20], &mut key), Frame::Other);
        // Streams and their SBE counterparts.
        let sbe_of = |s| sbe_stream_suffix(s).and_then(sbe_template);
        assert_eq!(sbe_of("depth@100ms"), Some(Template::DepthDiff));
        assert_eq!(sbe_of("bookTicker"), Some(Template::BestBidAsk));
        assert_eq!(sbe_of("trade"), Some(Template::Trades));
        assert_eq!(sbe_of("depth20@100ms"), Some(Template::DepthSnapshot));
        assert_eq!(sbe_stream_suffix("aggTrade"), None);
        assert_eq!(sbe_stream_suffix("depth5"), None);
    }

    #[test]
    fn binance_frames_are_told_apart_by_their_first_bytes() {
        let p = Protocol::Binance;
        assert_eq!(
            classify(
                p,
                br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate"}}"#
            ),
            Frame::Data(b"btcusdt@depth@100ms")
        );
        assert_eq!(
            classify(p, br#"{"result":null,"id":17}"#),
            Frame::Ack { id: 17, ok: true }
        );
        assert_eq!(
            classify(p, br#"{"error":{"code":2,"msg":"Invalid request"},"id":3}"#),
            Frame::Ack { id: 3, ok: false }
        );
        assert_eq!(
            classify(p, br#"{"event":{"e":"serverShutdown","E":1}}"#),
            Frame::ServerShutdown
        );
        assert_eq!(
            classify(
                p,
                br#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}"#
            ),
            Frame::ServerShutdown
        );
        assert_eq!(classify(p, br#"{"e":"trade"}"#), Frame::Other);
        assert_eq!(classify(p, br#"{"stream":"unterminated"#), Frame::Other);
        assert_eq!(classify(p, br#"{"result":null,"id":}"#), Frame::Other);
    }

    #[test]
    fn bybit_frames_are_told_apart_by_their_first_bytes() {
        let p = Protocol::Bybit;
        assert_eq!(
            classify(p, br#"{"topic":"orderbook.50.BTCUSDT","type":"delta"}"#),
            Frame::Data(b"orderbook.50.BTCUSDT")
        );
        assert_eq!(
            classify(
                p,
                br#"{"success":true,"ret_msg":"","conn_id":"x","req_id":"12","op":"subscribe"}"#
            ),
            Frame::Ack { id: 12, ok: true }
        );
        assert_eq!(
            classify(
                p,
                br#"{"success":false,"ret_msg":"bad","req_id":"4","op":"subscribe"}"#
            ),
            Frame::Ack { id: 4, ok: false }
        );
        assert_eq!(
            classify(p, br#"{"success":true,"ret_msg":"pong","op":"ping"}"#),
            Frame::Pong
        );
    }

    #[test]
    fn messages_and_paths_follow_each_venue() {
        let mut out = String::new();
        subscription_message(
            Protocol::Binance,
            true,
            &["a@trade", "b@trade"],
            5,
            &mut out,
        );
        assert_eq!(
            out,
            r#"{"method":"SUBSCRIBE","params":["a@trade","b@trade"],"id":5}"#
        );
        subscription_message(Protocol::Bybit, false, &["orderbook.50.X"], 6, &mut out);
        assert_eq!(
            out,
            r#"{"op":"unsubscribe","req_id":"6","args":["orderbook.50.X"]}"#
        );
        assert_eq!(
            stream_name(Protocol::Binance, "BTCUSDT", "depth@100ms"),
            "btcusdt@depth@100ms"
        );
        assert_eq!(
            stream_name(Protocol::Bybit, "btcusdt", "orderbook.50"),
            "orderbook.50.BTCUSDT"
        );
        assert_eq!(
            stream_kind(Protocol::Binance, "depth@100ms"),
            StreamKind::Depth
        );
        assert_eq!(
            stream_kind(Protocol::Binance, "depth20@100ms"),
            StreamKind::Other
        );
        assert_eq!(
            stream_kind(Protocol::Binance, "bookTicker"),
            StreamKind::Other
        );
        assert_eq!(
            depth_path(Venue::BinanceUsdm, "BTCUSDT", 1000),
            "/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
        );
        assert_eq!(depth_weight(Venue::BinanceSpot, 1000), 50);
        assert_eq!(depth_weight(Venue::BinanceSpot, 5000), 250);
        assert_eq!(depth_weight(Venue::BinanceUsdm, 1000), 20);
        assert_eq!(depth_weight(Venue::BinanceCoinm, 100), 5);
    }
}
