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

use crate::sbe::{self, Entries, SbeError, Scale, StreamMessage};

use super::bybit::TradeRow;
use super::levels::{ZeroQty, check_range, emit_split};
use super::resolve::Resolver;
use super::{ConnCtx, Decoded, Origin, ParseError, Sink, SkipReason};

/// Decodes one SBE stream message (the caller has checked [`sbe::is_stream_message`]).
pub(super) fn frame<F: FnMut(&pinion_core::MarketEvent)>(
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
