//! Literal frames of every message type and venue, and every kind of bad input, split by
//! venue; the shared decoder set-up is here.

mod bad_input;
mod binance;
mod bybit;
mod candles;

pub(super) use super::*;
pub(super) use pinion_core::decimal::DecimalError;
pub(super) use pinion_core::event::{EventFlags, Level};
use pinion_core::instrument::InstrumentSpec;
use pinion_core::{Px, Qty};

pub(super) const SPOT: ConnCtx = ConnCtx::new(Venue::BinanceSpot);
pub(super) const USDM: ConnCtx = ConnCtx::new(Venue::BinanceUsdm);
pub(super) const BYBIT_LINEAR: ConnCtx = ConnCtx::new(Venue::BybitLinear);
pub(super) const BYBIT_SPOT: ConnCtx = ConnCtx::new(Venue::BybitSpot);

/// Spot BTCUSDT (0.01 / 0.00001), USD-M BTCUSDT (0.10 / 0.001), Bybit linear BTCUSDT
/// (0.10 / 0.001) and Bybit spot ETHUSDT (0.01 / 0.00001), with ids 0 to 3.
pub(super) fn decoder() -> Decoder {
    let mut reg = Instruments::new();
    for (venue, sym, tick, step) in [
        (Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001"),
        (Venue::BinanceUsdm, "BTCUSDT", "0.10", "0.001"),
        (Venue::BybitLinear, "BTCUSDT", "0.10", "0.001"),
        (Venue::BybitSpot, "ETHUSDT", "0.01", "0.00001"),
    ] {
        reg.add(InstrumentSpec::new(venue, sym, tick, step).unwrap())
            .unwrap();
    }
    Decoder::new(reg)
}

pub(super) fn record<'a>(kind: RecordKind, meta: &'a str, payload: &'a str) -> RawRecord<'a> {
    RawRecord {
        t_recv: 1_723_161_253_937_085_768,
        conn: ConnId(7),
        kind,
        meta: meta.as_bytes(),
        payload: payload.as_bytes(),
    }
}

/// Decodes a frame and collects its events.
pub(super) fn frame(
    dec: &mut Decoder,
    ctx: &ConnCtx,
    json: &str,
) -> (Result<Decoded, ParseError>, Vec<MarketEvent>) {
    decode_as(dec, ctx, RecordKind::Frame, "", json)
}

pub(super) fn decode_as(
    dec: &mut Decoder,
    ctx: &ConnCtx,
    kind: RecordKind,
    meta: &str,
    json: &str,
) -> (Result<Decoded, ParseError>, Vec<MarketEvent>) {
    let mut out = Vec::new();
    let res = dec.decode(ctx, &record(kind, meta, json), 42, |e| out.push(*e));
    (res, out)
}

pub(super) fn lvl(px: i64, qty: i64) -> Level {
    Level {
        px: Px(px),
        qty: Qty(qty),
    }
}

pub(super) const FIRST_LAST: EventFlags = EventFlags(EventFlags::FIRST.0 | EventFlags::LAST.0);
