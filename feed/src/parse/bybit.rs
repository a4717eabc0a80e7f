//! Bybit v5 public streams (`orderbook.{depth}.{symbol}`, `publicTrade.{symbol}`,
//! `kline.{interval}.{symbol}`, `tickers.{symbol}`) and the REST order book snapshot
//! (`GET /v5/market/orderbook`).
//!
//! The topic names the symbol; the connection's venue says which market (spot, linear,
//! inverse). Order book messages carry `u` (in `first_id` and `last_id`), `seq`, `ts`
//! (`exch_ts`) and `cts` (`trans_ts`); `u == 1` marks a service restart and sets
//! [`EventFlags::RESET`]. A `publicTrade` message holds an array of trades, each its own event.
//! Subscribe replies and pongs carry `op`/`success` and are skipped as control messages.

use pinion_core::event::{EventFlags, EventKind, Level};
use pinion_core::instrument::{InstrumentId, InstrumentSpec};

use super::candles;
use super::levels::{ZeroQty, check_range};
use super::resolve::Resolver;
use super::scaled;
use super::tape::{Val, opt_ms_as_ns, required};
use super::{ConnCtx, Decoded, Origin, ParseError, Sink, SkipReason, query_param};

/// One trade of a multi-trade message (a Bybit `publicTrade`, a Binance SBE trades event),
/// parsed before any event is emitted.
#[derive(Clone, Copy, Debug)]
pub(super) struct TradeRow {
    pub(super) level: Level,
    pub(super) id: u64,
    pub(super) trans_ts: u64,
    pub(super) seq: u64,
    pub(super) buyer_maker: bool,
}

/// The topics the decoder handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Topic {
    /// `orderbook.{depth}.{symbol}` (and `orderbook.full.{symbol}`).
    OrderBook,
    /// `publicTrade.{symbol}`.
    PublicTrade,
    /// `kline.{interval}.{symbol}`.
    Kline,
    /// `tickers.{symbol}`.
    Tickers,
}

/// Splits a topic into its type and symbol, or `None` for topics the decoder does not handle.
pub(super) fn parse_topic(topic: &[u8]) -> Option<(Topic, &[u8])> {
    if let Some(rest) = topic.strip_prefix(b"orderbook.") {
        let dot = rest.iter().position(|&c| c == b'.')?;
        let symbol = &rest[dot + 1..];
        return (!symbol.is_empty()).then_some((Topic::OrderBook, symbol));
    }
    if let Some(rest) = topic.strip_prefix(b"kline.") {
        let dot = rest.iter().position(|&c| c == b'.')?;
        let symbol = &rest[dot + 1..];
        return (dot > 0 && !symbol.is_empty()).then_some((Topic::Kline, symbol));
    }
    if let Some(symbol) = topic.strip_prefix(b"tickers.") {
        return (!symbol.is_empty()).then_some((Topic::Tickers, symbol));
    }
    let symbol = topic.strip_prefix(b"publicTrade.")?;
    (!symbol.is_empty()).then_some((Topic::PublicTrade, symbol))
}

#[inline]
fn resolve<'r>(
    reg: &mut Resolver<'r>,
    ctx: &ConnCtx,
    symbol: &[u8],
) -> Option<(InstrumentId, &'r InstrumentSpec)> {
    reg.symbol(ctx.venue, symbol)
}

/// Decodes one Bybit WebSocket frame.
pub(super) fn frame<F: FnMut(&pinion_core::MarketEvent)>(
    ctx: &ConnCtx,
    reg: &mut Resolver<'_>,
    origin: Origin,
    root: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    let [topic, kind, ts, cts, data, op, success] = root.pick(
        "frame",
        [b"topic", b"type", b"ts", b"cts", b"data", b"op", b"success"],
    )?;
    let is_control = op.is_some() || success.is_some();
    let Some(topic) = topic else {
        let reason = if is_control {
            SkipReason::Control
        } else {
            SkipReason::UnknownStream
        };
        return Ok(Decoded::Skipped(reason));
    };
    let Some((which, symbol)) = parse_topic(topic.str("topic")?.as_bytes()) else {
        return Ok(Decoded::Skipped(SkipReason::UnknownStream));
    };
    let Some((id, spec)) = resolve(reg, ctx, symbol) else {
        return Ok(Decoded::Skipped(SkipReason::UnknownInstrument));
    };
    let exch_ts = opt_ms_as_ns(ts, "ts")?;
    let data = required(data, "data")?;
    match which {
        Topic::OrderBook => {
            let event_kind = match required(kind, "type")?.str("type")? {
                "snapshot" => EventKind::Snapshot,
                "delta" => EventKind::Depth,
                _ => return Err(ParseError::BadValue("type")),
            };
            let mut header = origin.header(id, event_kind);
            header.exch_ts = exch_ts;
            header.trans_ts = opt_ms_as_ns(cts, "cts")?;
            book(&mut header, spec, data, sink, true)
        }
        Topic::PublicTrade => trades(id, spec, origin, exch_ts, data, sink),
        Topic::Kline => candles::bybit_kline(id, spec, origin, exch_ts, data, sink),
        Topic::Tickers => candles::bybit_ticker(id, spec, origin, exch_ts, data, sink),
    }
}

/// The `data` object of an order book message or REST snapshot: `b`, `a`, `u`, `seq` (`s` is
/// ignored: the topic or URL named the instrument). Emits `header` with the levels.
fn book<F: FnMut(&pinion_core::MarketEvent)>(
    header: &mut pinion_core::MarketEvent,
    spec: &InstrumentSpec,
    data: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
    restart_resets: bool,
) -> Result<Decoded, ParseError> {
    let [bids, asks, u, seq] = data.pick("data", [b"b", b"a", b"u", b"seq"])?;
    let u = required(u, "u")?.id("u")?;
    header.first_id = u;
    header.last_id = u;
    header.seq = required(seq, "seq")?.id("seq")?;
    if restart_resets && u == 1 {
        header.flags.insert(EventFlags::RESET);
    }
    let n = sink.book(
        header,
        spec,
        (required(bids, "b")?, "b"),
        (required(asks, "a")?, "a"),
    )?;
    match header.kind {
        EventKind::Depth => sink.counts.depth += 1,
        _ => sink.counts.snapshot += 1,
    }
    Ok(Decoded::Events(n))
}

/// `publicTrade`: every element of `data` becomes one Trade event (FIRST|LAST each): `i` in
/// `last_id` (0 when it is not numeric, as the UUIDs of linear contracts), `T` in `trans_ts`,
/// `seq` in `seq`, `S == "Sell"` (a selling taker) sets BUYER_MAKER.
fn trades<F: FnMut(&pinion_core::MarketEvent)>(
    id: InstrumentId,
    spec: &InstrumentSpec,
    origin: Origin,
    exch_ts: u64,
    data: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    sink.trades.clear();
    for item in data.items("data")? {
        let [t, side, qty, px, trade_id, seq] =
            item.pick("data", [b"T", b"S", b"v", b"p", b"i", b"seq"])?;
        let buyer_maker = match required(side, "S")?.str("S")? {
            "Sell" => true,
            "Buy" => false,
            _ => return Err(ParseError::BadValue("S")),
        };
        let px = required(px, "p")?.str("p")?;
        let qty = required(qty, "v")?.str("v")?;
        let level = Level {
            px: scaled::px(px.as_bytes(), spec.price_decimals)
                .map_err(|err| ParseError::BadNumber { field: "p", err })?,
            qty: scaled::qty(qty.as_bytes(), spec.qty_decimals)
                .map_err(|err| ParseError::BadNumber { field: "v", err })?,
        };
        let level = check_range(level, "p", "v", ZeroQty::Invalid)?;
        let trade_id = required(trade_id, "i")?.str("i")?;
        sink.trades.push(TradeRow {
            level,
            id: trade_id.parse::<u64>().unwrap_or(0),
            trans_ts: opt_ms_as_ns(t, "T")?,
            seq: match seq {
                Some(v) => v.id("seq")?,
                None => 0,
            },
            buyer_maker,
        });
    }
    Ok(Decoded::Events(sink.staged_trades(origin, id, exch_ts)))
}

/// A REST order book snapshot: `{"retCode":0,"result":{"s","b","a","ts","u","seq","cts"}}`.
/// The instrument comes from the request URL's `symbol=`, else `result.s`, else the
/// connection's default.
pub(super) fn rest_snapshot<F: FnMut(&pinion_core::MarketEvent)>(
    ctx: &ConnCtx,
    reg: &mut Resolver<'_>,
    origin: Origin,
    url: &[u8],
    root: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    let [ret_code, result] = root.pick("snapshot", [b"retCode", b"result"])?;
    if let Some(code) = ret_code
        && code.id("retCode") != Ok(0)
    {
        return Ok(Decoded::Skipped(SkipReason::ErrorResponse));
    }
    let result = required(result, "result")?;
    let [symbol, ts, cts] = result.pick("result", [b"s", b"ts", b"cts"])?;
    let resolved = match (query_param(url, b"symbol"), symbol) {
        (Some(sym), _) => resolve(reg, ctx, sym),
        (None, Some(sym)) => resolve(reg, ctx, sym.str("s")?.as_bytes()),
        (None, None) => ctx.default_instrument.and_then(|id| reg.by_id(id)),
    };
    let Some((id, spec)) = resolved else {
        return Ok(Decoded::Skipped(SkipReason::UnknownInstrument));
    };
    let mut header = origin.header(id, EventKind::Snapshot);
    header.exch_ts = opt_ms_as_ns(ts, "ts")?;
    header.trans_ts = opt_ms_as_ns(cts, "cts")?;
    book(&mut header, spec, result, sink, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert_eq!(
            parse_topic(b"orderbook.200.BTCUSDT"),
            Some((Topic::OrderBook, &b"BTCUSDT"[..]))
        );
        assert_eq!(
            parse_topic(b"orderbook.full.ETHUSDT"),
            Some((Topic::OrderBook, &b"ETHUSDT"[..]))
        );
        assert_eq!(
            parse_topic(b"publicTrade.SOLUSDT"),
            Some((Topic::PublicTrade, &b"SOLUSDT"[..]))
        );
        assert_eq!(
            parse_topic(b"tickers.BTCUSDT"),
            Some((Topic::Tickers, &b"BTCUSDT"[..]))
        );
        assert_eq!(
            parse_topic(b"kline.1.BTCUSDT"),
            Some((Topic::Kline, &b"BTCUSDT"[..]))
        );
        assert_eq!(parse_topic(b"kline.BTCUSDT"), None);
        assert_eq!(parse_topic(b"kline..BTCUSDT"), None);
        assert_eq!(parse_topic(b"tickers."), None);
        assert_eq!(parse_topic(b"orderbook.200"), None);
        assert_eq!(parse_topic(b"orderbook.200."), None);
        assert_eq!(parse_topic(b"publicTrade."), None);
    }
}
