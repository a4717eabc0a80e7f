//! Klines and 24-hour tickers of both venues, as `Kline` and `Ticker24h` events (layout in
//! [`pinion_core::Candle`] and [`pinion_core::Ticker24h`]).
//!
//! - Binance `kline` (Spot and futures): `E`, and in `k`: start `t`, close time `T` (the last
//!   millisecond of the candle, so the interval is `T - t + 1` ms, which holds for monthly
//!   candles too), first/last trade id `f`/`L` (`-1` for a candle without trades: 0 here),
//!   `o`/`h`/`l`/`c`, volume `v`, trade count `n`, closed `x`, taker buy volume `V`.
//! - Binance `24hrTicker` / `24hrMiniTicker`: `E`, last price `c`, open `o`, high `h`, low `l`,
//!   volume `v`; the full ticker adds last quantity `Q`, first/last trade id `F`/`L`, count `n`.
//! - Bybit `kline.{interval}.{symbol}`: `data` is an array of candles, each `start`, `end`,
//!   `open`/`high`/`low`/`close`, `volume`, `confirm`; one event per candle, `ts` as event time.
//! - Bybit `tickers.{symbol}`: `lastPrice`, `prevPrice24h` (the window's open), `highPrice24h`,
//!   `lowPrice24h`, `volume24h`. Spot sends every field each time; linear and inverse send a
//!   `snapshot` and then `delta`s of the fields that changed, so the event says which it carries.
//!
//! A candle's prices must be above zero with the high at or above, and the low at or below,
//! every other price; volumes may be zero but not negative. A ticker's prices may be zero (a
//! symbol without trades in the window) but not negative.

use pinion_core::candle::{Candle, Ticker24h, TickerFields};
use pinion_core::decimal::{Px, Qty};
use pinion_core::event::{EventFlags, EventKind};
use pinion_core::instrument::{InstrumentId, InstrumentSpec};

use super::error::Sign;
use super::scaled;
use super::tape::{Val, opt_ms_as_ns, required};
use super::{Decoded, Origin, ParseError, Sink};

/// A price field: an exact decimal at the instrument's scale, above zero (`positive`) or at
/// least zero.
#[inline]
fn price(
    spec: &InstrumentSpec,
    v: Val<'_, '_>,
    field: &'static str,
    positive: bool,
) -> Result<Px, ParseError> {
    let px = scaled::px(v.str(field)?.as_bytes(), spec.price_decimals)
        .map_err(|err| ParseError::BadNumber { field, err })?;
    if px.0 < 0 || (positive && px.0 == 0) {
        return Err(ParseError::OutOfRange {
            field,
            seen: Sign::of(px.0),
        });
    }
    Ok(px)
}

/// A volume field: an exact decimal at the instrument's quantity scale, not negative.
#[inline]
fn volume(spec: &InstrumentSpec, v: Val<'_, '_>, field: &'static str) -> Result<Qty, ParseError> {
    let qty = scaled::qty(v.str(field)?.as_bytes(), spec.qty_decimals)
        .map_err(|err| ParseError::BadNumber { field, err })?;
    if qty.0 < 0 {
        return Err(ParseError::OutOfRange {
            field,
            seen: Sign::Negative,
        });
    }
    Ok(qty)
}

/// A trade id that the venue gives as `-1` when there is none: 0 then.
#[inline]
fn trade_id_or_none(v: Option<Val<'_, '_>>, field: &'static str) -> Result<u64, ParseError> {
    match v {
        None => Ok(0),
        Some(v) => match v.id(field) {
            Err(ParseError::BadId(_)) if v.signed(field) == Ok(-1) => Ok(0),
            other => other,
        },
    }
}

/// Checks a candle's high and low against its open and close, and emits it.
#[inline]
fn emit_candle<F: FnMut(&pinion_core::MarketEvent)>(
    origin: Origin,
    candle: &Candle,
    sink: &mut Sink<'_, F>,
) -> Result<(), ParseError> {
    if candle.high < candle.open.max(candle.close).max(candle.low) {
        return Err(ParseError::BadValue("high"));
    }
    if candle.low > candle.open.min(candle.close) {
        return Err(ParseError::BadValue("low"));
    }
    let mut ev = origin.header(candle.instrument, EventKind::Kline);
    ev.flags = EventFlags::FIRST | EventFlags::LAST;
    candle.write_event(&mut ev);
    (sink.emit)(&ev);
    Ok(())
}

/// The interval of a candle from its start and its end (the end's millisecond included).
#[inline]
fn interval_ns(start_ns: u64, end_ns: u64, end_field: &'static str) -> Result<u64, ParseError> {
    end_ns
        .checked_sub(start_ns)
        .and_then(|d| d.checked_add(1_000_000))
        .ok_or(ParseError::BadValue(end_field))
}

/// Binance `kline`.
pub(super) fn binance_kline<F: FnMut(&pinion_core::MarketEvent)>(
    id: InstrumentId,
    spec: &InstrumentSpec,
    origin: Origin,
    payload: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    let [e, k] = payload.pick("data", [b"E", b"k"])?;
    let k = required(k, "k")?;
    let [t, end, first, last, o, h, l, c, v, n, x, buy] = k.pick(
        "k",
        [
            b"t", b"T", b"f", b"L", b"o", b"h", b"l", b"c", b"v", b"n", b"x", b"V",
        ],
    )?;
    let start_ns = required(t, "t")?.ms_as_ns("t")?;
    let end_ns = required(end, "T")?.ms_as_ns("T")?;
    let candle = Candle {
        start_ns,
        interval_ns: interval_ns(start_ns, end_ns, "T")?,
        exch_ts: opt_ms_as_ns(e, "E")?,
        t_recv: origin.t_recv,
        t0: origin.t0,
        first_trade_id: trade_id_or_none(first, "f")?,
        last_trade_id: trade_id_or_none(last, "L")?,
        trades: match n {
            Some(n) => n.id("n")?,
            None => 0,
        },
        open: price(spec, required(o, "o")?, "o", true)?,
        high: price(spec, required(h, "h")?, "h", true)?,
        low: price(spec, required(l, "l")?, "l", true)?,
        close: price(spec, required(c, "c")?, "c", true)?,
        volume: volume(spec, required(v, "v")?, "v")?,
        taker_buy_volume: match buy {
            Some(b) => volume(spec, b, "V")?,
            None => Qty(0),
        },
        instrument: id,
        closed: required(x, "x")?.bool("x")?,
    };
    emit_candle(origin, &candle, sink)?;
    sink.counts.kline += 1;
    Ok(Decoded::Events(1))
}

/// Binance `24hrTicker` and `24hrMiniTicker` (the mini one lacks `Q`, `F`, `L`, `n`).
pub(super) fn binance_ticker<F: FnMut(&pinion_core::MarketEvent)>(
    id: InstrumentId,
    spec: &InstrumentSpec,
    origin: Origin,
    payload: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    let [e, c, last_qty, o, h, l, v, first, last, n] = payload.pick(
        "data",
        [b"E", b"c", b"Q", b"o", b"h", b"l", b"v", b"F", b"L", b"n"],
    )?;
    let ticker = Ticker24h {
        exch_ts: opt_ms_as_ns(e, "E")?,
        t_recv: origin.t_recv,
        last: price(spec, required(c, "c")?, "c", false)?,
        open: price(spec, required(o, "o")?, "o", false)?,
        high: price(spec, required(h, "h")?, "h", false)?,
        low: price(spec, required(l, "l")?, "l", false)?,
        volume: volume(spec, required(v, "v")?, "v")?,
        instrument: id,
        fields: TickerFields::ALL,
    };
    let mut ev = origin.header(id, EventKind::Ticker24h);
    ev.flags = EventFlags::FIRST | EventFlags::LAST;
    ticker.write_event(&mut ev);
    if let Some(q) = last_qty {
        ev.levels[0].qty = volume(spec, q, "Q")?;
    }
    ev.first_id = trade_id_or_none(first, "F")?;
    ev.last_id = trade_id_or_none(last, "L")?;
    ev.seq = match n {
        Some(n) => n.id("n")?,
        None => 0,
    };
    (sink.emit)(&ev);
    sink.counts.ticker += 1;
    Ok(Decoded::Events(1))
}

/// Bybit `kline.{interval}.{symbol}`: every candle of `data`, parsed before any is emitted so
/// a bad one leaves none out.
pub(super) fn bybit_kline<F: FnMut(&pinion_core::MarketEvent)>(
    id: InstrumentId,
    spec: &InstrumentSpec,
    origin: Origin,
    exch_ts: u64,
    data: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    // Bybit sends one candle a message (two when one closes as the next opens); the few are
    // checked first, then emitted, without a buffer: parse twice rather than stage.
    for pass in 0..2 {
        for item in data.items("data")? {
            let [start, end, o, h, l, c, v, confirm] = item.pick(
                "data",
                [
                    b"start", b"end", b"open", b"high", b"low", b"close", b"volume", b"confirm",
                ],
            )?;
            let start_ns = required(start, "start")?.ms_as_ns("start")?;
            let end_ns = required(end, "end")?.ms_as_ns("end")?;
            let candle = Candle {
                start_ns,
                interval_ns: interval_ns(start_ns, end_ns, "end")?,
                exch_ts,
                t_recv: origin.t_recv,
                t0: origin.t0,
                first_trade_id: 0,
                last_trade_id: 0,
                trades: 0,
                open: price(spec, required(o, "open")?, "open", true)?,
                high: price(spec, required(h, "high")?, "high", true)?,
                low: price(spec, required(l, "low")?, "low", true)?,
                close: price(spec, required(c, "close")?, "close", true)?,
                volume: volume(spec, required(v, "volume")?, "volume")?,
                taker_buy_volume: Qty(0),
                instrument: id,
                closed: required(confirm, "confirm")?.bool("confirm")?,
            };
            if pass == 0 {
                if candle.high < candle.open.max(candle.close).max(candle.low) {
                    return Err(ParseError::BadValue("high"));
                }
                if candle.low > candle.open.min(candle.close) {
                    return Err(ParseError::BadValue("low"));
                }
            } else {
                emit_candle(origin, &candle, sink)?;
            }
        }
    }
    let n = u32::try_from(data.array_len("data")?).unwrap_or(u32::MAX);
    sink.counts.kline += 1;
    Ok(Decoded::Events(n))
}

/// Bybit `tickers.{symbol}`: the 24 h fields present (all in a snapshot; those that changed in
/// a linear or inverse `delta`).
pub(super) fn bybit_ticker<F: FnMut(&pinion_core::MarketEvent)>(
    id: InstrumentId,
    spec: &InstrumentSpec,
    origin: Origin,
    exch_ts: u64,
    data: Val<'_, '_>,
    sink: &mut Sink<'_, F>,
) -> Result<Decoded, ParseError> {
    if !data.is_object() {
        return Err(ParseError::WrongType("data"));
    }
    let [last, open, high, low, vol] = data.pick(
        "data",
        [
            b"lastPrice",
            b"prevPrice24h",
            b"highPrice24h",
            b"lowPrice24h",
            b"volume24h",
        ],
    )?;
    let mut ticker = Ticker24h {
        exch_ts,
        t_recv: origin.t_recv,
        instrument: id,
        ..Ticker24h::default()
    };
    let prices = [
        (last, "lastPrice", TickerFields::LAST, &mut ticker.last),
        (open, "prevPrice24h", TickerFields::OPEN, &mut ticker.open),
        (high, "highPrice24h", TickerFields::HIGH, &mut ticker.high),
        (low, "lowPrice24h", TickerFields::LOW, &mut ticker.low),
    ];
    let mut fields = TickerFields::default();
    for (v, name, bit, slot) in prices {
        if let Some(v) = v {
            *slot = price(spec, v, name, false)?;
            fields.insert(bit);
        }
    }
    if let Some(v) = vol {
        ticker.volume = volume(spec, v, "volume24h")?;
        fields.insert(TickerFields::VOLUME);
    }
    ticker.fields = fields;
    sink.counts.ticker += 1;
    if fields == TickerFields::default() {
        // A delta of the best bid and ask or the funding fields alone: nothing of the 24 h.
        return Ok(Decoded::Events(0));
    }
    let mut ev = origin.header(id, EventKind::Ticker24h);
    ev.flags = EventFlags::FIRST | EventFlags::LAST;
    ticker.write_event(&mut ev);
    (sink.emit)(&ev);
    Ok(Decoded::Events(1))
}
