//! Binance Spot's binary market data (SBE stream schema 1, version 0) into the same events as
//! the equivalent JSON streams.
//!
//! The frame is read in place by [`crate::sbe::read`], which checks every length against the
//! frame; this module turns the message into events:
//!
//! | SBE message | as JSON | ids | times |
//! |---|---|---|---|
//! | `TradesStreamEvent` | `@trade`, one event per trade, each FIRST\|LAST | trade id in `last_id` | `eventTime`, `transactTime` |
//! | `BestBidAskStreamEvent` | `@bookTicker` | `bookUpdateId` in `last_id` | `eventTime` (JSON Spot has none) |
//! | `DepthSnapshotStreamEvent` | `@depth<N>` (PartialDepth) | `bookUpdateId` in `last_id` | `eventTime` (JSON Spot has none) |
//! | `DepthDiffStreamEvent` | `depthUpdate` (Depth) | `firstBookUpdateId`/`lastBookUpdateId` in `first_id`/`last_id` | `eventTime` |
//!
//! Times are microseconds on the wire and nanoseconds in the event. Prices and quantities are
//! `mantissa × 10^exponent`, converted exactly to the instrument's scale by
//! [`crate::sbe::scaled`]; a value with digits below the scale, or too large, is
//! [`ParseError::Unrepresentable`]; the range rules are the JSON path's
//! ([`super::levels::check_range`]): a negative price or quantity is an error.
//!
//! A message is checked completely before its first event, as on the JSON path: trades are
//! staged in the trade buffer, levels in the level buffer, so a bad entry late in a message
//! emits nothing. A trades message holding several trades gives one Trade event per trade, in
//! the order sent, each FIRST|LAST: every trade is a message of its own to the book and the
//! strategy, exactly as a run of JSON `@trade` messages (and Bybit's `publicTrade` batches).

use pinion_core::event::{EventFlags, EventKind, Level};
use pinion_core::instrument::InstrumentSpec;

use crate::sbe::{self, Entries, SbeError, Scale, Seen, StreamMessage, UnsignedScale};

use super::bybit::TradeRow;
use super::levels::{LevelBuf, ZeroQty, check_range, emit_split};
use super::resolve::Resolver;
use super::{ConnCtx, Decoded, Origin, ParseError, Sink, SkipReason};

/// Decodes one SBE stream message (the caller has checked [`sbe::is_stream_message`]).
///
/// A frame in exactly this layout's shape (see [`fast`]) takes a path that knows every offset
/// and checks the message's values together; anything else, and any frame that path
/// finds fault with, goes the general way below, which gives the same events and names the
/// fault.
pub(super) fn frame<F: FnMut(&pinion_core::MarketEvent)>(
    ctx: &ConnCtx,
    reg: &mut Resolver<'_>,
    origin: Origin,
    frame: &[u8],
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    if let Some(done) = fast(ctx, reg, origin, frame, sink) {
        return done;
    }
    general(ctx, reg, origin, frame, sink)
}

/// The general path: [`sbe::read`] checks every length (longer blocks and entries of a newer
/// version skipped), then each value is converted and checked in turn, the first fault
/// returned as a typed error.
#[inline(never)]
fn general<F: FnMut(&pinion_core::MarketEvent)>(
    ctx: &ConnCtx,
    reg: &mut Resolver<'_>,
    origin: Origin,
    frame: &[u8],
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    let msg = match sbe::read(frame) {
        Ok(msg) => msg,
        Err(SbeError::UnknownTemplate { .. }) => {
            return Ok(Decoded::Skipped(SkipReason::UnknownTemplate));
        }
        Err(err) => return Err(ParseError::Sbe(err)),
    };
    let Some((id, spec)) = reg.symbol(ctx.venue, msg.symbol()) else {
        return Ok(Decoded::Skipped(SkipReason::UnknownInstrument));
    };
    match msg {
        StreamMessage::Trades(m) => {
            // Its error is reported after the trades' and the event time's, as it is checked.
            let trans_ts = us_as_ns(m.transact_time_us, "transactTime");
            sink.trades.clear();
            let (px, qty) = (
                Field::price(m.price_exp, spec, "price"),
                Field::qty(m.qty_exp, spec, "qty"),
            );
            for i in 0..m.trades.len() {
                let t = m.trades.trade(i);
                let level = level((t.price, px), (t.qty, qty), ZeroQty::Invalid)?;
                sink.trades.push(TradeRow {
                    level,
                    id: to_id(t.id, "id")?,
                    trans_ts: *trans_ts.as_ref().unwrap_or(&0),
                    seq: 0,
                    buyer_maker: t.buyer_maker,
                });
            }
            let exch_ts = us_as_ns(m.event_time_us, "eventTime")?;
            trans_ts?;
            Ok(Decoded::Events(sink.staged_trades(origin, id, exch_ts)))
        }
        StreamMessage::BestBidAsk(m) => {
            let mut header = origin.header(id, EventKind::BookTicker);
            header.exch_ts = us_as_ns(m.event_time_us, "eventTime")?;
            header.last_id = to_id(m.book_update_id, "bookUpdateId")?;
            let bid_px = Field::price(m.price_exp, spec, "bidPrice");
            let bid_qty = Field::qty(m.qty_exp, spec, "bidQty");
            let ask_px = Field {
                name: "askPrice",
                ..bid_px
            };
            let ask_qty = Field {
                name: "askQty",
                ..bid_qty
            };
            header.levels[0] = level(
                (m.bid_price, bid_px),
                (m.bid_qty, bid_qty),
                ZeroQty::Invalid,
            )?;
            header.levels[1] = level(
                (m.ask_price, ask_px),
                (m.ask_qty, ask_qty),
                ZeroQty::Invalid,
            )?;
            header.n_bids = 1;
            header.n_levels = 2;
            header.flags.insert(EventFlags::FIRST | EventFlags::LAST);
            (sink.emit)(&header);
            sink.counts.book_ticker += 1;
            Ok(Decoded::Events(1))
        }
        StreamMessage::DepthSnapshot(m) => {
            let mut header = origin.header(id, EventKind::PartialDepth);
            header.exch_ts = us_as_ns(m.event_time_us, "eventTime")?;
            header.last_id = to_id(m.last_update_id, "bookUpdateId")?;
            let n = book(sink, &mut header, spec, &m)?;
            sink.counts.partial_depth += 1;
            Ok(Decoded::Events(n))
        }
        StreamMessage::DepthDiff(m) => {
            let mut header = origin.header(id, EventKind::Depth);
            header.exch_ts = us_as_ns(m.event_time_us, "eventTime")?;
            header.first_id = to_id(m.first_update_id, "firstBookUpdateId")?;
            header.last_id = to_id(m.last_update_id, "lastBookUpdateId")?;
            let n = book(sink, &mut header, spec, &m)?;
            sink.counts.depth += 1;
            Ok(Decoded::Events(n))
        }
    }
}

/// The price and quantity conversions of an instrument at a message's exponents, in the
/// branch-free form for values that may not be negative. Prepared for every message:
/// remembering them per instrument and exponent pair was measured no faster (the copy of the
/// remembered pair costs what the preparation does).
#[inline(always)]
fn scales(spec: &InstrumentSpec, (px_exp, qty_exp): (i8, i8)) -> (UnsignedScale, UnsignedScale) {
    (
        UnsignedScale::new(px_exp, spec.price_decimals),
        UnsignedScale::new(qty_exp, spec.qty_decimals),
    )
}

/// The little-endian `i64` at `at` of a fixed-size prefix (offsets are constants, so no check
/// is left).
#[inline(always)]
fn le<const N: usize>(f: &[u8; N], at: usize) -> i64 {
    f[at..at + 8].try_into().map_or(0, i64::from_le_bytes)
}

/// Whether a time in µs converts to ns as [`us_as_ns`] does (not negative, no overflow).
#[inline(always)]
fn time_ok(us: i64) -> bool {
    (us as u64) <= u64::MAX / 1_000
}

/// The same as [`us_as_ns`] where [`time_ok`] holds.
#[inline(always)]
fn us_to_ns(us: i64) -> u64 {
    (us as u64).wrapping_mul(1_000)
}

/// Frames in exactly the shape this layout writes (the header word equal to the template's
/// [`sbe::Template::header_word`]: schema 1, version 0, the root block of the fields known,
/// group entries of the known length, nothing after the symbol): every offset is a constant or
/// follows from one group count, the lengths are checked once against the frame, and the
/// message's values (conversions, ranges, times, ids) are checked together, not one exit per
/// value.
///
/// `None` hands the frame to the general path: another shape, or a fault in it, which that
/// path then names. Whatever this path accepts the general path reads the same way, so both
/// give the same events; a symbol not in the registry is skipped here as there.
#[inline(always)]
fn fast<F: FnMut(&pinion_core::MarketEvent)>(
    ctx: &ConnCtx,
    reg: &mut Resolver<'_>,
    origin: Origin,
    frame: &[u8],
    sink: &mut Sink<'_, F>,
) -> Option<Result<Decoded, ParseError>> {
    const BBA: u64 = sbe::Template::BestBidAsk.header_word();
    const DIFF: u64 = sbe::Template::DepthDiff.header_word();
    const SNAPSHOT: u64 = sbe::Template::DepthSnapshot.header_word();
    const TRADES: u64 = sbe::Template::Trades.header_word();
    let word = u64::from_le_bytes(*frame.first_chunk::<{ sbe::HEADER_LEN }>()?);
    match word {
        BBA => best_bid_ask(ctx, reg, origin, frame, sink),
        DIFF => depth::<true, F>(ctx, reg, origin, frame, sink),
        SNAPSHOT => depth::<false, F>(ctx, reg, origin, frame, sink),
        TRADES => trades(ctx, reg, origin, frame, sink),
        _ => None,
    }
}

/// The symbol after the fixed part or the last group: its length byte at `at`, its bytes to
/// the end of the frame (in version 0 nothing may follow it).
#[inline(always)]
fn symbol_at(frame: &[u8], at: usize) -> Option<&[u8]> {
    let (&len, symbol) = frame.get(at..)?.split_first()?;
    (symbol.len() == usize::from(len)).then_some(symbol)
}

#[inline(always)]
fn best_bid_ask<F: FnMut(&pinion_core::MarketEvent)>(
    ctx: &ConnCtx,
    reg: &mut Resolver<'_>,
    origin: Origin,
    frame: &[u8],
    sink: &mut Sink<'_, F>,
) -> Option<Result<Decoded, ParseError>> {
    // Header, then eventTime, bookUpdateId, the exponents, bid price/qty, ask price/qty.
    const FIXED: usize = sbe::HEADER_LEN + sbe::Template::BestBidAsk.block_len() as usize;
    let f = frame.first_chunk::<FIXED>()?;
    let symbol = symbol_at(frame, FIXED)?;
    let Some((id, spec)) = reg.symbol(ctx.venue, symbol) else {
        return Some(Ok(Decoded::Skipped(SkipReason::UnknownInstrument)));
    };
    let (px, qty) = scales(spec, (f[24] as i8, f[25] as i8));
    let (event_time, update_id) = (le(f, 8), le(f, 16));
    let (bid_px, ok_bp) = px.apply_flagged(le(f, 26));
    let (bid_qty, ok_bq) = qty.apply_flagged(le(f, 34));
    let (ask_px, ok_ap) = px.apply_flagged(le(f, 42));
    let (ask_qty, ok_aq) = qty.apply_flagged(le(f, 50));
    let ok = ok_bp
        & ok_bq
        & ok_ap
        & ok_aq
        & (bid_px > 0)
        & (bid_qty > 0)
        & (ask_px > 0)
        & (ask_qty > 0)
        & time_ok(event_time)
        & (update_id >= 0);
    if !ok {
        return None;
    }
    let mut header = origin.header(id, EventKind::BookTicker);
    header.exch_ts = us_to_ns(event_time);
    header.last_id = update_id as u64;
    header.levels[0] = Level {
        px: pinion_core::Px(bid_px),
        qty: pinion_core::Qty(bid_qty),
    };
    header.levels[1] = Level {
        px: pinion_core::Px(ask_px),
        qty: pinion_core::Qty(ask_qty),
    };
    header.n_bids = 1;
    header.n_levels = 2;
    header.flags.insert(EventFlags::FIRST | EventFlags::LAST);
    (sink.emit)(&header);
    sink.counts.book_ticker += 1;
    Some(Ok(Decoded::Events(1)))
}

/// A bids or asks group's dimension at `at` in the known shape (entries of exactly price and
/// quantity): its entries' bytes, and where the next part starts.
#[inline(always)]
fn level_group(frame: &[u8], at: usize) -> Option<(&[[u8; 16]], usize)> {
    let dim = frame
        .get(at..)?
        .first_chunk::<{ sbe::GROUP_SIZE16_LEN }>()?;
    if u16::from_le_bytes([dim[0], dim[1]]) != sbe::LEVEL_ENTRY_LEN {
        return None;
    }
    let start = at + sbe::GROUP_SIZE16_LEN;
    let end = start + usize::from(u16::from_le_bytes([dim[2], dim[3]])) * 16;
    let (entries, rest) = frame.get(start..end)?.as_chunks::<16>();
    rest.is_empty().then_some((entries, end))
}

/// Converts and stages one side's levels, taking what is to be checked into `seen` (prices,
/// then quantities), without a branch or a check per level: the caller checks the message's
/// values once ([`UnsignedScale::admits`]). A price may not be zero, a quantity may (it
/// deletes the level); an exact value is never negative.
#[inline(always)]
fn stage_levels(
    buf: &mut LevelBuf,
    bid: bool,
    entries: &[[u8; 16]],
    (px, qty): (UnsignedScale, UnsignedScale),
    seen: (Seen, Seen),
) -> (Seen, Seen) {
    buf.append_with(bid, entries, seen, |e, (seen_px, seen_qty)| {
        let (p, seen_px) = px.apply_tracked(le(e, 0), true, seen_px);
        let (q, seen_qty) = qty.apply_tracked(le(e, 8), false, seen_qty);
        let level = Level {
            px: pinion_core::Px(p),
            qty: pinion_core::Qty(q),
        };
        (level, (seen_px, seen_qty))
    })
}

#[inline(always)]
fn depth<const DIFF: bool, F: FnMut(&pinion_core::MarketEvent)>(
    ctx: &ConnCtx,
    reg: &mut Resolver<'_>,
    origin: Origin,
    frame: &[u8],
    sink: &mut Sink<'_, F>,
) -> Option<Result<Decoded, ParseError>> {
    // Header, eventTime, [firstBookUpdateId,] (last)BookUpdateId, the exponents.
    const DIFF_FIXED: usize = sbe::HEADER_LEN + sbe::Template::DepthDiff.block_len() as usize;
    const SNAPSHOT_FIXED: usize =
        sbe::HEADER_LEN + sbe::Template::DepthSnapshot.block_len() as usize;
    let (event_time, first_id, last_id, exponents, fixed) = if DIFF {
        let f = frame.first_chunk::<DIFF_FIXED>()?;
        let exps = (f[32] as i8, f[33] as i8);
        (le(f, 8), le(f, 16), le(f, 24), exps, DIFF_FIXED)
    } else {
        let f = frame.first_chunk::<SNAPSHOT_FIXED>()?;
        let exps = (f[24] as i8, f[25] as i8);
        (le(f, 8), 0, le(f, 16), exps, SNAPSHOT_FIXED)
    };
    let (bids, at) = level_group(frame, fixed)?;
    let (asks, at) = level_group(frame, at)?;
    let symbol = symbol_at(frame, at)?;
    let Some((id, spec)) = reg.symbol(ctx.venue, symbol) else {
        return Some(Ok(Decoded::Skipped(SkipReason::UnknownInstrument)));
    };
    let (px, qty) = scales(spec, exponents);
    sink.levels.clear();
    let seen = (Seen::default(), Seen::default());
    let seen = stage_levels(sink.levels, true, bids, (px, qty), seen);
    let (seen_px, seen_qty) = stage_levels(sink.levels, false, asks, (px, qty), seen);
    let ok = time_ok(event_time)
        & (first_id >= 0)
        & (last_id >= 0)
        & px.admits(true, seen_px)
        & qty.admits(false, seen_qty);
    if !ok {
        return None;
    }
    let kind = if DIFF {
        EventKind::Depth
    } else {
        EventKind::PartialDepth
    };
    let header = &mut *sink.event;
    origin.reset(header, id, kind);
    header.exch_ts = us_to_ns(event_time);
    header.first_id = first_id as u64;
    header.last_id = last_id as u64;
    let n = emit_split(header, sink.levels, sink.emit);
    if DIFF {
        sink.counts.depth += 1;
    } else {
        sink.counts.partial_depth += 1;
    }
    Some(Ok(Decoded::Events(n)))
}

#[inline(always)]
fn trades<F: FnMut(&pinion_core::MarketEvent)>(
    ctx: &ConnCtx,
    reg: &mut Resolver<'_>,
    origin: Origin,
    frame: &[u8],
    sink: &mut Sink<'_, F>,
) -> Option<Result<Decoded, ParseError>> {
    // Header, eventTime, transactTime, the exponents, then the group's dimension (u16 entry
    // length, u32 count).
    const FIXED: usize =
        sbe::HEADER_LEN + sbe::Template::Trades.block_len() as usize + sbe::GROUP_SIZE_LEN;
    const ENTRY: usize = sbe::TRADE_ENTRY_LEN as usize;
    let f = frame.first_chunk::<FIXED>()?;
    if u16::from_le_bytes([f[26], f[27]]) != sbe::TRADE_ENTRY_LEN {
        return None;
    }
    let count = u32::from_le_bytes([f[28], f[29], f[30], f[31]]);
    // The schema's limit, as the general path checks it (no larger group fits a frame here).
    if count > i32::MAX as u32 {
        return None;
    }
    let end = FIXED.checked_add((count as usize).checked_mul(ENTRY)?)?;
    let (entries, rest) = frame.get(FIXED..end)?.as_chunks::<ENTRY>();
    if !rest.is_empty() {
        return None;
    }
    let symbol = symbol_at(frame, end)?;
    // A bad boolean is a fault of the frame's shape, found before the symbol is resolved.
    let mut bools_ok = true;
    for e in entries {
        bools_ok &= e[24] <= 1;
    }
    if !bools_ok {
        return None;
    }
    let Some((id, spec)) = reg.symbol(ctx.venue, symbol) else {
        return Some(Ok(Decoded::Skipped(SkipReason::UnknownInstrument)));
    };
    let (px, qty) = scales(spec, (f[24] as i8, f[25] as i8));
    let (event_time, transact_time) = (le(f, 8), le(f, 16));
    let mut ok = time_ok(event_time) & time_ok(transact_time);
    let trans_ts = us_to_ns(transact_time);
    sink.trades.clear();
    sink.trades.reserve(entries.len());
    for e in entries {
        let trade_id = le(e, 0);
        let (p, ok_p) = px.apply_flagged(le(e, 8));
        let (q, ok_q) = qty.apply_flagged(le(e, 16));
        ok &= ok_p & ok_q & (p > 0) & (q > 0) & (trade_id >= 0);
        sink.trades.push(TradeRow {
            level: Level {
                px: pinion_core::Px(p),
                qty: pinion_core::Qty(q),
            },
            id: trade_id as u64,
            trans_ts,
            seq: 0,
            buyer_maker: e[24] == 1,
        });
    }
    if !ok {
        return None;
    }
    Some(Ok(Decoded::Events(sink.staged_trades(
        origin,
        id,
        us_to_ns(event_time),
    ))))
}

/// Stages a depth message's bids then asks (a zero quantity deletes a level) and emits it,
/// split as needed.
#[inline]
fn book<F: FnMut(&pinion_core::MarketEvent)>(
    sink: &mut Sink<'_, F>,
    header: &mut pinion_core::MarketEvent,
    spec: &InstrumentSpec,
    m: &sbe::Depth<'_>,
) -> Result<u32, ParseError> {
    sink.levels.clear();
    side(sink, spec, m, &m.bids, true, "bids")?;
    side(sink, spec, m, &m.asks, false, "asks")?;
    Ok(emit_split(header, sink.levels, sink.emit))
}

#[inline]
fn side<F: FnMut(&pinion_core::MarketEvent)>(
    sink: &mut Sink<'_, F>,
    spec: &InstrumentSpec,
    m: &sbe::Depth<'_>,
    entries: &Entries<'_>,
    bid: bool,
    field: &'static str,
) -> Result<(), ParseError> {
    let (px_field, qty_field) = (
        Field::price(m.price_exp, spec, field),
        Field::qty(m.qty_exp, spec, field),
    );
    for i in 0..entries.len() {
        let (px, qty) = entries.level(i);
        let level = level((px, px_field), (qty, qty_field), ZeroQty::Deletes)?;
        sink.levels.push(bid, level);
    }
    Ok(())
}

/// A price or quantity field of a message: its conversion, prepared once per message, and what
/// an error names.
#[derive(Clone, Copy, Debug)]
struct Field {
    scale: Scale,
    exponent: i8,
    decimals: u8,
    name: &'static str,
}

impl Field {
    #[inline(always)]
    fn price(exponent: i8, spec: &InstrumentSpec, name: &'static str) -> Self {
        Self {
            scale: Scale::new(exponent, spec.price_decimals),
            exponent,
            decimals: spec.price_decimals,
            name,
        }
    }

    #[inline(always)]
    fn qty(exponent: i8, spec: &InstrumentSpec, name: &'static str) -> Self {
        Self {
            scale: Scale::new(exponent, spec.qty_decimals),
            exponent,
            decimals: spec.qty_decimals,
            name,
        }
    }

    /// `mantissa` at the instrument's scale, or what was seen.
    #[inline(always)]
    fn value(&self, mantissa: i64) -> Result<i64, ParseError> {
        self.scale
            .apply(mantissa)
            .ok_or(ParseError::Unrepresentable {
                field: self.name,
                mantissa,
                exponent: self.exponent,
                decimals: self.decimals,
            })
    }
}

/// A price and a quantity (mantissa and field) at the instrument's scale, in range.
#[inline(always)]
fn level(
    (px, px_field): (i64, Field),
    (qty, qty_field): (i64, Field),
    zero_qty: ZeroQty,
) -> Result<Level, ParseError> {
    let level = Level {
        px: pinion_core::Px(px_field.value(px)?),
        qty: pinion_core::Qty(qty_field.value(qty)?),
    };
    check_range(level, px_field.name, qty_field.name, zero_qty)
}

/// A time in µs as ns; negative or past `u64` nanoseconds is an error.
#[inline]
fn us_as_ns(us: i64, field: &'static str) -> Result<u64, ParseError> {
    u64::try_from(us)
        .ok()
        .and_then(|us| us.checked_mul(1_000))
        .ok_or(ParseError::BadTime(field))
}

/// An id; negative is an error.
#[inline]
fn to_id(id: i64, field: &'static str) -> Result<u64, ParseError> {
    u64::try_from(id).map_err(|_| ParseError::BadId(field))
}

#[cfg(test)]
mod tests {
    use super::super::resolve::LastSymbol;
    use super::*;
    use crate::parse::MessageCounts;
    use pinion_core::instrument::{InstrumentId, Instruments};
    use pinion_core::venue::Venue;
    use pinion_core::{ConnId, MarketEvent};

    /// What one path did with a frame: its answer, its events, its counters and the
    /// instrument it reported the frame against.
    type Outcome = (
        Result<Decoded, ParseError>,
        Vec<MarketEvent>,
        MessageCounts,
        Option<InstrumentId>,
    );

    /// One decoder's state, kept across frames as the decoder keeps it.
    struct State {
        event: pinion_core::MarketEvent,
        last: LastSymbol,
        levels: LevelBuf,
        trades: Vec<TradeRow>,
        counts: MessageCounts,
    }

    impl State {
        fn new() -> Self {
            Self {
                event: pinion_core::MarketEvent::EMPTY,
                last: LastSymbol::default(),
                levels: LevelBuf::with_capacity(0),
                trades: Vec::new(),
                counts: MessageCounts::default(),
            }
        }

        /// `frame` (known shapes first) when `fast`, else the general path alone.
        fn run(&mut self, reg: &Instruments, bytes: &[u8], fast: bool) -> Outcome {
            let mut events = Vec::new();
            let mut emit = |e: &pinion_core::MarketEvent| events.push(*e);
            let mut sink = Sink {
                event: &mut self.event,
                levels: &mut self.levels,
                trades: &mut self.trades,
                counts: &mut self.counts,
                emit: &mut emit,
            };
            self.last.frame = None;
            let res = {
                let reg = &mut Resolver::new(reg, &mut self.last);
                let ctx = ConnCtx::new(Venue::BinanceSpot);
                let origin = Origin {
                    t_recv: 5,
                    t0: 6,
                    conn: ConnId(3),
                };
                if fast {
                    frame(&ctx, reg, origin, bytes, &mut sink)
                } else {
                    general(&ctx, reg, origin, bytes, &mut sink)
                }
            };
            (res, events, self.counts, self.last.frame)
        }
    }

    fn registry() -> Instruments {
        let mut reg = Instruments::new();
        for sym in ["BTCUSDT", "ETHUSDT"] {
            reg.add(InstrumentSpec::new(Venue::BinanceSpot, sym, "0.01", "0.00000001").unwrap())
                .unwrap();
        }
        reg
    }

    fn le(v: i64) -> [u8; 8] {
        v.to_le_bytes()
    }

    fn with_symbol(mut f: Vec<u8>, symbol: &str) -> Vec<u8> {
        f.push(symbol.len() as u8);
        f.extend(symbol.as_bytes());
        f
    }

    /// One frame of each template in the known shape, exponents −8/−8.
    fn frames(symbol: &str) -> Vec<Vec<u8>> {
        let mut bba = vec![50, 0, 0x11, 0x27, 1, 0, 0, 0];
        for v in [1_723_075_200_123_456, 77] {
            bba.extend(le(v));
        }
        bba.extend([0xF8, 0xF8]);
        for v in [
            6_168_599_000_000,
            100_870_000,
            6_168_600_000_000,
            229_327_000,
        ] {
            bba.extend(le(v));
        }
        let mut trades = vec![18, 0, 0x10, 0x27, 1, 0, 0, 0];
        trades.extend(le(1_723_075_200_123_456));
        trades.extend(le(1_723_075_200_123_400));
        trades.extend([0xF8, 0xF8]);
        trades.extend([25, 0, 2, 0, 0, 0]);
        for (id, px, qty, maker) in [
            (7, 6_168_600_000_000, 1_200_000, 0u8),
            (8, 6_168_599_000_000, 1, 1),
        ] {
            trades.extend(le(id));
            trades.extend(le(px));
            trades.extend(le(qty));
            trades.push(maker);
        }
        let levels = |f: &mut Vec<u8>, rows: &[(i64, i64)]| {
            f.extend([16, 0, rows.len() as u8, 0]);
            for &(px, qty) in rows {
                f.extend(le(px));
                f.extend(le(qty));
            }
        };
        let mut diff = vec![26, 0, 0x13, 0x27, 1, 0, 0, 0];
        for v in [1_723_075_200_123_456, 100, 102] {
            diff.extend(le(v));
        }
        diff.extend([0xF8, 0xF8]);
        levels(
            &mut diff,
            &[(6_168_599_000_000, 100_870_000), (6_168_598_000_000, 0)],
        );
        levels(&mut diff, &[(6_168_600_000_000, 3)]);
        let mut snapshot = vec![18, 0, 0x12, 0x27, 1, 0, 0, 0];
        for v in [1_723_075_200_123_456, 55] {
            snapshot.extend(le(v));
        }
        snapshot.extend([0xF8, 0xF8]);
        levels(&mut snapshot, &[(6_168_599_000_000, 1)]);
        levels(
            &mut snapshot,
            &[(6_168_600_000_000, 2), (6_168_601_000_000, 4)],
        );
        // Diffs of exactly one event's levels and of one more (split in two),
        // prices a cent apart from the touch outwards.
        let sized = |n_bids: i64, n_asks: i64| {
            let mut f = vec![26, 0, 0x13, 0x27, 1, 0, 0, 0];
            for v in [1_723_075_200_123_456, 100, 102] {
                f.extend(le(v));
            }
            f.extend([0xF8, 0xF8]);
            let side = |start: i64, step: i64, n: i64| -> Vec<(i64, i64)> {
                (0..n)
                    .map(|i| (start + i * step, (i % 3) * 50_000_000))
                    .collect()
            };
            levels(&mut f, &side(6_168_599_000_000, -1_000_000, n_bids));
            levels(&mut f, &side(6_168_600_000_000, 1_000_000, n_asks));
            f
        };
        let (full, split) = (sized(16, 12), sized(17, 12));
        assert_eq!(
            pinion_core::event::MAX_LEVELS,
            28,
            "the sized diffs are one event and one more level"
        );
        [bba, trades, diff, snapshot, full, split]
            .into_iter()
            .map(|f| with_symbol(f, symbol))
            .collect()
    }

    /// Every variant of `good`: cut at each length, one byte more, and each byte set to a few
    /// values that hit signs, lengths, counts and the header's fields.
    fn variants(good: &[u8]) -> Vec<Vec<u8>> {
        let mut out = vec![good.to_vec()];
        for n in 0..good.len() {
            out.push(good[..n].to_vec());
        }
        let mut longer = good.to_vec();
        longer.push(0);
        out.push(longer);
        for at in 0..good.len() {
            for v in [
                0, 1, 2, 7, 8, 15, 16, 17, 24, 25, 26, 0x7F, 0x80, 0xF7, 0xF8, 0xFF,
            ] {
                let mut f = good.to_vec();
                f[at] = v;
                out.push(f);
                let mut f = good.to_vec();
                f[at] = f[at].wrapping_add(v);
                out.push(f);
            }
        }
        // Whole values at every offset: zero, signs, extremes, a digit below the scale.
        for at in 0..good.len().saturating_sub(7) {
            for v in [0, 1, -1, 10, i64::MIN, i64::MAX, 1_000_000, -1_000_000] {
                let mut f = good.to_vec();
                f[at..at + 8].copy_from_slice(&le(v));
                out.push(f);
            }
        }
        out
    }

    /// The known-shape path changes nothing a caller sees: for every frame, good or broken, it
    /// gives the general path's answer, events, counters and reported instrument (each path with
    /// its own state, carried across the frames as a decoder carries it).
    #[test]
    fn known_shapes_decode_as_the_general_path_does() {
        let reg = registry();
        let (mut fast, mut general) = (State::new(), State::new());
        let mut seen_events = 0;
        for symbol in ["BTCUSDT", "ETHUSDT", "XRPUSDT"] {
            for good in frames(symbol) {
                for f in variants(&good) {
                    let a = fast.run(&reg, &f, true);
                    let b = general.run(&reg, &f, false);
                    assert_eq!(a, b, "frame {f:02x?}");
                    seen_events += a.1.len();
                }
            }
        }
        // The good frames and most single-byte changes of values decode.
        assert!(seen_events > 10_000, "{seen_events} events");
    }

    /// Each message's conversions follow its instrument and exponents.
    #[test]
    fn conversions_follow_instrument_and_exponents() {
        let reg = registry();
        let mut state = State::new();
        let bba = |symbol: &str, px_exp: u8| {
            let mut f = frames(symbol).swap_remove(0);
            f[24] = px_exp;
            f
        };
        for (symbol, exp, want) in [
            ("BTCUSDT", 0xF8, Some(6_168_599)),
            ("BTCUSDT", 0xF9, Some(61_685_990)),
            ("ETHUSDT", 0xF9, Some(61_685_990)),
            ("ETHUSDT", 0xF8, Some(6_168_599)),
            ("BTCUSDT", 0xF8, Some(6_168_599)),
        ] {
            let (res, events, _, _) = state.run(&reg, &bba(symbol, exp), true);
            assert_eq!(res, Ok(Decoded::Events(1)));
            assert_eq!(events.first().map(|e| e.levels[0].px.0), want);
        }
    }
}
