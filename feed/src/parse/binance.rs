//! Binance Spot, USD-M and COIN-M market streams and REST depth snapshots.
//!
//! A frame is either a combined-stream envelope `{"stream":"btcusdt@depth@100ms","data":{…}}`,
//! whose stream name gives the symbol and the message type, or a raw payload from a `/ws/`
//! socket, whose `e` field gives the type and `s` the symbol. The stream name matters for Spot
//! partial depth, whose payload names neither. Spot bookTicker has no `e`, `E` or `T`; futures
//! payloads add `T`, `pu` and keys the decoder ignores. Times are milliseconds.
//!
//! Id and time fields per message follow the table in [`pinion_core::event`].

use pinion_core::event::{EventFlags, EventKind, Level};
use pinion_core::instrument::{InstrumentId, InstrumentSpec};

use super::candles;
use super::levels::{ZeroQty, check_range};
use super::resolve::Resolver;
use super::scaled;
use super::tape::{Val, opt_ms_as_ns, required};
use super::{ConnCtx, Decoded, Origin, ParseError, Sink, SkipReason, query_param};

/// The message types of Binance streams the decoder handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stream {
    /// `<sym>@depth`, `@depth@100ms`, `@depth@0ms`: diff depth.
    Depth,
    /// `<sym>@depth5|10|20[@…]`: the top N levels.
    PartialDepth,
    /// `<sym>@trade`.
    Trade,
    /// `<sym>@aggTrade`.
    AggTrade,
    /// `<sym>@bookTicker`.
    BookTicker,
    /// `<sym>@kline_<interval>[@+08:00]`.
    Kline,
    /// `<sym>@ticker` and `<sym>@miniTicker`: 24-hour statistics.
    Ticker,
}

/// Splits a combined-stream name into the (lower-case) symbol and the message type, or `None`
/// for streams the decoder does not handle.
pub(super) fn parse_stream_name(name: &[u8]) -> Option<(&[u8], Stream)> {
    let at = name.iter().position(|&c| c == b'@')?;
    let (symbol, rest) = (&name[..at], &name[at + 1..]);
    // The type runs to the next `@` (an update speed follows) or to the end. Every frame goes
    // through here, so the candidates are picked by the first letter and compared as prefixes
    // instead of searching for that `@` and comparing against all of them.
    let candidates: &[(&[u8], Stream)] = match rest.first()? {
        b'b' => &[(b"bookTicker", Stream::BookTicker)],
        b't' => &[(b"trade", Stream::Trade), (b"ticker", Stream::Ticker)],
        b'm' => &[(b"miniTicker", Stream::Ticker)],
        // Any interval: the payload's start and close times give its length.
        b'k' if rest.starts_with(b"kline_") && rest.len() > 6 => {
            return Some((symbol, Stream::Kline));
        }
        b'a' => &[(b"aggTrade", Stream::AggTrade)],
        b'd' => &[
            (b"depth", Stream::Depth),
            (b"depth5", Stream::PartialDepth),
            (b"depth10", Stream::PartialDepth),
            (b"depth20", Stream::PartialDepth),
        ],
        _ => return None,
    };
    let stream = candidates.iter().find_map(|&(kind, stream)| {
        let after = rest.strip_prefix(kind)?;
        matches!(after.first(), None | Some(b'@')).then_some(stream)
    })?;
    Some((symbol, stream))
}

/// Resolves a symbol to its id and spec, or the skip reason.
#[inline]
fn resolve<'r>(
    reg: &mut Resolver<'r>,
    ctx: &ConnCtx,
    symbol: &[u8],
) -> Result<(InstrumentId, &'r InstrumentSpec), SkipReason> {
    reg.symbol(ctx.venue, symbol)
        .ok_or(SkipReason::UnknownInstrument)
}

/// Decodes one Binance WebSocket frame.
pub(super) fn frame<F: FnMut(&pinion_core::MarketEvent)>(
    ctx: &ConnCtx,
    reg: &mut Resolver<'_>,
    origin: Origin,
    root: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    let [
        stream,
        data,
        event_type,
        symbol,
        update_id,
        last_update_id,
        result,
        req_id,
        code,
    ] = root.pick(
        "frame",
        [
            b"stream",
            b"data",
            b"e",
            b"s",
            b"u",
            b"lastUpdateId",
            b"result",
            b"id",
            b"code",
        ],
    )?;
    let has_update_id = update_id.is_some();
    let has_last_update_id = last_update_id.is_some();
    // Replies to SUBSCRIBE and friends: `{"result":null,"id":1}`, or an error with `code`.
    let is_control = result.is_some() || req_id.is_some() || code.is_some();

    if let (Some(stream), Some(data)) = (stream, data) {
        let name = stream.str("stream")?.as_bytes();
        let Some((sym, kind)) = parse_stream_name(name) else {
            return Ok(Decoded::Skipped(unknown_or_control(data)?));
        };
        if !data.is_object() {
            return Err(ParseError::WrongType("data"));
        }
        let (id, spec) = match resolve(reg, ctx, sym) {
            Ok(found) => found,
            Err(reason) => return Ok(Decoded::Skipped(reason)),
        };
        return message(ctx, kind, id, spec, origin, data, sink);
    }

    // A raw payload: its own fields say what it is.
    let kind = match event_type {
        Some(e) => match e.str("e")?.as_bytes() {
            b"depthUpdate" => Stream::Depth,
            b"trade" => Stream::Trade,
            b"aggTrade" => Stream::AggTrade,
            b"bookTicker" => Stream::BookTicker,
            b"kline" => Stream::Kline,
            b"24hrTicker" | b"24hrMiniTicker" => Stream::Ticker,
            b"serverShutdown" => return Ok(Decoded::Skipped(SkipReason::Control)),
            _ => return Ok(Decoded::Skipped(SkipReason::UnknownStream)),
        },
        None if has_last_update_id => Stream::PartialDepth,
        // Spot bookTicker is the one stream payload without `e`.
        None if has_update_id && symbol.is_some() => Stream::BookTicker,
        None if is_control => return Ok(Decoded::Skipped(SkipReason::Control)),
        None => return Ok(Decoded::Skipped(SkipReason::UnknownStream)),
    };
    let resolved = match symbol {
        Some(s) => resolve(reg, ctx, s.str("s")?.as_bytes()),
        // Spot partial depth names no symbol: only the connection knows it.
        None => ctx
            .default_instrument
            .and_then(|id| reg.by_id(id))
            .ok_or(SkipReason::UnknownInstrument),
    };
    let (id, spec) = match resolved {
        Ok(found) => found,
        Err(reason) => return Ok(Decoded::Skipped(reason)),
    };
    message(ctx, kind, id, spec, origin, root, sink)
}

/// The skip reason for a stream the decoder does not handle: control for `serverShutdown`.
fn unknown_or_control(data: Val<'_, '_>) -> Result<SkipReason, ParseError> {
    if data.is_object() {
        for (k, v) in data.fields("data")? {
            if k == b"e" && matches!(v.str("e"), Ok("serverShutdown")) {
                return Ok(SkipReason::Control);
            }
        }
    }
    Ok(SkipReason::UnknownStream)
}

fn message<F: FnMut(&pinion_core::MarketEvent)>(
    ctx: &ConnCtx,
    kind: Stream,
    id: InstrumentId,
    spec: &InstrumentSpec,
    origin: Origin,
    payload: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    match kind {
        Stream::Depth => depth_update(ctx, id, spec, origin, payload, sink, EventKind::Depth),
        Stream::PartialDepth => partial_depth(ctx, id, spec, origin, payload, sink),
        Stream::Trade => trade(id, spec, origin, payload, sink),
        Stream::AggTrade => agg_trade(id, spec, origin, payload, sink),
        Stream::BookTicker => book_ticker(id, spec, origin, payload, sink),
        Stream::Kline => candles::binance_kline(id, spec, origin, payload, sink),
        Stream::Ticker => candles::binance_ticker(id, spec, origin, payload, sink),
    }
}

/// `depthUpdate`: `U`/`u` (and futures `pu`), `E`, futures `T`, bids `b`, asks `a`.
fn depth_update<F: FnMut(&pinion_core::MarketEvent)>(
    ctx: &ConnCtx,
    id: InstrumentId,
    spec: &InstrumentSpec,
    origin: Origin,
    payload: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
    kind: EventKind,
) -> Result<Decoded, ParseError> {
    let [e, t, first, last, prev, bids, asks] =
        payload.pick("data", [b"E", b"T", b"U", b"u", b"pu", b"b", b"a"])?;
    let mut header = origin.header(id, kind);
    header.exch_ts = opt_ms_as_ns(e, "E")?;
    header.trans_ts = opt_ms_as_ns(t, "T")?;
    header.first_id = required(first, "U")?.id("U")?;
    header.last_id = required(last, "u")?.id("u")?;
    // Futures chain events by `pu`; without it the book cannot check continuity.
    header.prev_id = match prev {
        Some(v) => v.id("pu")?,
        None if ctx.venue.is_binance_futures() => return Err(ParseError::MissingField("pu")),
        None => 0,
    };
    let n = sink.book(
        &mut header,
        spec,
        (required(bids, "b")?, "b"),
        (required(asks, "a")?, "a"),
    )?;
    match kind {
        EventKind::PartialDepth => sink.counts.partial_depth += 1,
        _ => sink.counts.depth += 1,
    }
    Ok(Decoded::Events(n))
}

/// Partial depth: Spot's `{"lastUpdateId","bids","asks"}`, or the futures form, which is a full
/// `depthUpdate` payload.
fn partial_depth<F: FnMut(&pinion_core::MarketEvent)>(
    ctx: &ConnCtx,
    id: InstrumentId,
    spec: &InstrumentSpec,
    origin: Origin,
    payload: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    let [last, bids, asks, event_type] =
        payload.pick("data", [b"lastUpdateId", b"bids", b"asks", b"e"])?;
    if event_type.is_some() {
        return depth_update(
            ctx,
            id,
            spec,
            origin,
            payload,
            sink,
            EventKind::PartialDepth,
        );
    }
    let mut header = origin.header(id, EventKind::PartialDepth);
    header.last_id = required(last, "lastUpdateId")?.id("lastUpdateId")?;
    let n = sink.book(
        &mut header,
        spec,
        (required(bids, "bids")?, "bids"),
        (required(asks, "asks")?, "asks"),
    )?;
    sink.counts.partial_depth += 1;
    Ok(Decoded::Events(n))
}

/// `trade`: trade id `t` in `last_id`, `E`, `T`, `p`, `q`, `m` (buyer is maker).
fn trade<F: FnMut(&pinion_core::MarketEvent)>(
    id: InstrumentId,
    spec: &InstrumentSpec,
    origin: Origin,
    payload: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    let [e, t, trade_id, px, qty, maker] =
        payload.pick("data", [b"E", b"T", b"t", b"p", b"q", b"m"])?;
    let mut header = origin.header(id, EventKind::Trade);
    header.exch_ts = opt_ms_as_ns(e, "E")?;
    header.trans_ts = opt_ms_as_ns(t, "T")?;
    header.last_id = required(trade_id, "t")?.id("t")?;
    let level = price_qty(spec, required(px, "p")?, "p", required(qty, "q")?, "q")?;
    let n = sink.single_trade(&mut header, level, required(maker, "m")?.bool("m")?);
    sink.counts.trade += 1;
    Ok(Decoded::Events(n))
}

/// `aggTrade`: `a` in `seq`, `f`/`l` in `first_id`/`last_id`, `E`, `T`, `p`, `q`, `m`.
fn agg_trade<F: FnMut(&pinion_core::MarketEvent)>(
    id: InstrumentId,
    spec: &InstrumentSpec,
    origin: Origin,
    payload: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    let [e, t, agg, first, last, px, qty, maker] =
        payload.pick("data", [b"E", b"T", b"a", b"f", b"l", b"p", b"q", b"m"])?;
    let mut header = origin.header(id, EventKind::Trade);
    header.exch_ts = opt_ms_as_ns(e, "E")?;
    header.trans_ts = opt_ms_as_ns(t, "T")?;
    header.seq = required(agg, "a")?.id("a")?;
    header.first_id = required(first, "f")?.id("f")?;
    header.last_id = required(last, "l")?.id("l")?;
    header.flags.insert(EventFlags::AGGREGATE);
    let level = price_qty(spec, required(px, "p")?, "p", required(qty, "q")?, "q")?;
    let n = sink.single_trade(&mut header, level, required(maker, "m")?.bool("m")?);
    sink.counts.agg_trade += 1;
    Ok(Decoded::Events(n))
}

/// `bookTicker`: `u` in `last_id`, best bid `b`/`B`, best ask `a`/`A`; futures add `E`/`T`.
fn book_ticker<F: FnMut(&pinion_core::MarketEvent)>(
    id: InstrumentId,
    spec: &InstrumentSpec,
    origin: Origin,
    payload: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    let [e, t, u, bp, bq, ap, aq] =
        payload.pick("data", [b"E", b"T", b"u", b"b", b"B", b"a", b"A"])?;
    let mut header = origin.header(id, EventKind::BookTicker);
    header.exch_ts = opt_ms_as_ns(e, "E")?;
    header.trans_ts = opt_ms_as_ns(t, "T")?;
    header.last_id = required(u, "u")?.id("u")?;
    let bid = price_qty(spec, required(bp, "b")?, "b", required(bq, "B")?, "B")?;
    let ask = price_qty(spec, required(ap, "a")?, "a", required(aq, "A")?, "A")?;
    header.levels[0] = bid;
    header.levels[1] = ask;
    header.n_bids = 1;
    header.n_levels = 2;
    header.flags.insert(EventFlags::FIRST | EventFlags::LAST);
    (sink.emit)(&header);
    sink.counts.book_ticker += 1;
    Ok(Decoded::Events(1))
}

/// A price and a quantity from two string fields (a trade's, or one side of a best bid/ask):
/// both above zero.
#[inline]
fn price_qty(
    spec: &InstrumentSpec,
    px: Val<'_, '_>,
    px_field: &'static str,
    qty: Val<'_, '_>,
    qty_field: &'static str,
) -> Result<Level, ParseError> {
    let level = Level {
        px: scaled::px(px.str(px_field)?.as_bytes(), spec.price_decimals).map_err(|err| {
            ParseError::BadNumber {
                field: px_field,
                err,
            }
        })?,
        qty: scaled::qty(qty.str(qty_field)?.as_bytes(), spec.qty_decimals).map_err(|err| {
            ParseError::BadNumber {
                field: qty_field,
                err,
            }
        })?,
    };
    check_range(level, px_field, qty_field, ZeroQty::Invalid)
}

/// A REST depth snapshot (`GET /api/v3/depth`, `/fapi/v1/depth`, `/dapi/v1/depth`):
/// `lastUpdateId`, `bids`, `asks`, futures `E`/`T`. The instrument comes from the request URL's
/// `symbol=`, else the body's `symbol` (COIN-M), else the connection's default.
pub(super) fn rest_snapshot<F: FnMut(&pinion_core::MarketEvent)>(
    ctx: &ConnCtx,
    reg: &mut Resolver<'_>,
    origin: Origin,
    url: &[u8],
    root: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    let [e, t, last, bids, asks, symbol, code, msg] = root.pick(
        "snapshot",
        [
            b"E",
            b"T",
            b"lastUpdateId",
            b"bids",
            b"asks",
            b"symbol",
            b"code",
            b"msg",
        ],
    )?;
    let is_error = code.is_some() || msg.is_some();
    if is_error && last.is_none() {
        return Ok(Decoded::Skipped(SkipReason::ErrorResponse));
    }
    let resolved = match (query_param(url, b"symbol"), symbol) {
        (Some(sym), _) => resolve(reg, ctx, sym),
        (None, Some(sym)) => resolve(reg, ctx, sym.str("symbol")?.as_bytes()),
        (None, None) => ctx
            .default_instrument
            .and_then(|id| reg.by_id(id))
            .ok_or(SkipReason::UnknownInstrument),
    };
    let (id, spec) = match resolved {
        Ok(found) => found,
        Err(reason) => return Ok(Decoded::Skipped(reason)),
    };
    let mut header = origin.header(id, EventKind::Snapshot);
    header.exch_ts = opt_ms_as_ns(e, "E")?;
    header.trans_ts = opt_ms_as_ns(t, "T")?;
    header.last_id = required(last, "lastUpdateId")?.id("lastUpdateId")?;
    let n = sink.book(
        &mut header,
        spec,
        (required(bids, "bids")?, "bids"),
        (required(asks, "asks")?, "asks"),
    )?;
    sink.counts.snapshot += 1;
    Ok(Decoded::Events(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names() {
        assert_eq!(
            parse_stream_name(b"btcusdt@depth@100ms"),
            Some((&b"btcusdt"[..], Stream::Depth))
        );
        assert_eq!(
            parse_stream_name(b"btcusdt@depth@0ms"),
            Some((&b"btcusdt"[..], Stream::Depth))
        );
        assert_eq!(
            parse_stream_name(b"ethbtc@depth20@100ms"),
            Some((&b"ethbtc"[..], Stream::PartialDepth))
        );
        assert_eq!(
            parse_stream_name(b"btcusdt@aggTrade"),
            Some((&b"btcusdt"[..], Stream::AggTrade))
        );
        assert_eq!(
            parse_stream_name(b"btcusdt@bookTicker"),
            Some((&b"btcusdt"[..], Stream::BookTicker))
        );
        assert_eq!(
            parse_stream_name(b"btcusdt@trade@x"),
            Some((&b"btcusdt"[..], Stream::Trade))
        );
        assert_eq!(
            parse_stream_name(b"btcusdt@kline_1m"),
            Some((&b"btcusdt"[..], Stream::Kline))
        );
        assert_eq!(
            parse_stream_name(b"btcusdt@kline_1d@+08:00"),
            Some((&b"btcusdt"[..], Stream::Kline))
        );
        assert_eq!(parse_stream_name(b"btcusdt@kline_"), None);
        assert_eq!(
            parse_stream_name(b"btcusdt@ticker"),
            Some((&b"btcusdt"[..], Stream::Ticker))
        );
        assert_eq!(
            parse_stream_name(b"btcusdt@miniTicker"),
            Some((&b"btcusdt"[..], Stream::Ticker))
        );
        // Rolling windows other than 24 h are other statistics.
        assert_eq!(parse_stream_name(b"btcusdt@ticker_1h"), None);
        assert_eq!(parse_stream_name(b"btcusdt@trades"), None);
        assert_eq!(parse_stream_name(b"btcusdt@depth2"), None);
        assert_eq!(
            parse_stream_name(b"btcusdt@depth@depth5"),
            Some((&b"btcusdt"[..], Stream::Depth))
        );
        assert_eq!(parse_stream_name(b"btcusdt@"), None);
        assert_eq!(parse_stream_name(b"btcusdt@book"), None);
        assert_eq!(parse_stream_name(b"btcusdt@depth7"), None);
        assert_eq!(parse_stream_name(b"!serverShutdown"), None);
        assert_eq!(parse_stream_name(b""), None);
    }
}
