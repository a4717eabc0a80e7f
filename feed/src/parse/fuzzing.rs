//! Entry points for the fuzz targets (`fuzz/`) and the stable fuzz smoke test
//! (`feed/tests/parse_fuzz_smoke.rs`), so both drive the decoder the same way. Binance's binary
//! frames get a structure-aware entry ([`Harness::sbe_frame`]) that starts from valid messages,
//! so the fuzzer spends its time past the header check.
//!
//! Each entry point decodes arbitrary bytes and then checks the decoder's own promises, whatever
//! the input: an error or a skip emits nothing; a decoded message's events run FIRST … LAST with
//! the count it reported, bids before asks, never more than `MAX_LEVELS`; every record moves
//! exactly one of the counters. A broken promise panics, which is what a fuzzer looks for; bad
//! input itself must never panic.

use pinion_core::decimal::{self, MAX_FORMATTED_LEN};
use pinion_core::event::{EventKind, MAX_LEVELS, MarketEvent};
use pinion_core::instrument::{InstrumentSpec, Instruments};
use pinion_core::record::{ConnId, RawRecord, RecordKind};
use pinion_core::venue::Venue;

use super::{ConnCtx, Decoded, Decoder, ParseError};
use crate::sbe::{MessageHeader, Template};

/// A decoder with BTCUSDT/ETHUSDT registered on every venue, and the checks above.
#[derive(Debug)]
pub struct Harness {
    decoder: Decoder,
    events: Vec<MarketEvent>,
    /// The SBE frame being built from a fuzz input (reused).
    frame: Vec<u8>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A harness with its instruments registered.
    ///
    /// # Panics
    /// Never in practice: the built-in specs are valid.
    pub fn new() -> Self {
        let mut reg = Instruments::new();
        for venue in Venue::ALL {
            for (symbol, tick, step) in
                [("BTCUSDT", "0.01", "0.00000001"), ("ETHUSDT", "0.5", "10")]
            {
                let spec =
                    InstrumentSpec::new(venue, symbol, tick, step).expect("built-in spec is valid");
                reg.add(spec).expect("built-in specs are distinct");
            }
        }
        Self {
            decoder: Decoder::new(reg),
            events: Vec::new(),
            frame: Vec::new(),
        }
    }

    /// A Binance Spot WebSocket frame.
    pub fn binance_spot_frame(&mut self, data: &[u8]) -> Result<Decoded, ParseError> {
        self.check(Venue::BinanceSpot, RecordKind::Frame, b"", data)
    }

    /// A Binance Spot binary frame built from `data` to reach deep into the SBE decoder; the
    /// first byte picks how:
    /// - `& 3 == 0`: the rest as is;
    /// - `& 3 == 1`: a stream-schema header (template 10000–10004 from bits 2–4, its known
    ///   block length, version from bit 5) followed by the rest;
    /// - `& 3 == 2`: a valid message of template `(byte >> 2) % 4` with bytes overwritten, each
    ///   pair of the rest being (position modulo the length, new byte);
    /// - `& 3 == 3`: that valid message cut where the rest's first byte says (modulo its length
    ///   plus one), the rest's other bytes appended.
    ///
    /// `None` for empty input.
    pub fn sbe_frame(&mut self, data: &[u8]) -> Option<Result<Decoded, ParseError>> {
        let (&selector, rest) = data.split_first()?;
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        match selector & 3 {
            0 => frame.extend_from_slice(rest),
            1 => {
                let template_id = 10_000 + u16::from((selector >> 2) % 5);
                let block_len = Template::from_id(template_id).map_or(26, Template::block_len);
                let header = MessageHeader {
                    block_len,
                    template_id,
                    schema_id: crate::sbe::SCHEMA_ID,
                    version: u16::from((selector >> 5) & 1),
                };
                frame.extend_from_slice(&header.to_bytes());
                frame.extend_from_slice(rest);
            }
            mode => {
                sbe_seed(selector >> 2, &mut frame);
                if mode == 2 {
                    let len = frame.len();
                    for pair in rest.chunks_exact(2) {
                        frame[usize::from(pair[0]) % len] = pair[1];
                    }
                } else if let Some((&cut, tail)) = rest.split_first() {
                    frame.truncate(usize::from(cut) % (frame.len() + 1));
                    frame.extend_from_slice(tail);
                }
            }
        }
        let res = self.check(Venue::BinanceSpot, RecordKind::Frame, b"", &frame);
        self.frame = frame;
        Some(res)
    }

    /// A Binance USD-M WebSocket frame.
    pub fn binance_futures_frame(&mut self, data: &[u8]) -> Result<Decoded, ParseError> {
        self.check(Venue::BinanceUsdm, RecordKind::Frame, b"", data)
    }

    /// A Bybit linear WebSocket frame.
    pub fn bybit_frame(&mut self, data: &[u8]) -> Result<Decoded, ParseError> {
        self.check(Venue::BybitLinear, RecordKind::Frame, b"", data)
    }

    /// A REST snapshot body; the first byte picks the venue and whether the URL names the
    /// symbol.
    pub fn rest_snapshot(&mut self, data: &[u8]) -> Option<Result<Decoded, ParseError>> {
        let (&selector, body) = data.split_first()?;
        let venue = Venue::ALL[usize::from(selector) % Venue::ALL.len()];
        let url: &[u8] = if selector & 0x80 != 0 {
            b"https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
        } else {
            b""
        };
        Some(self.check(venue, RecordKind::RestSnapshot, url, body))
    }

    /// Decodes and checks; returns the decoder's answer.
    fn check(
        &mut self,
        venue: Venue,
        kind: RecordKind,
        meta: &[u8],
        payload: &[u8],
    ) -> Result<Decoded, ParseError> {
        let ctx = ConnCtx {
            venue,
            default_instrument: Some(pinion_core::InstrumentId(0)),
        };
        let rec = RawRecord {
            t_recv: 11,
            conn: ConnId(3),
            kind,
            meta,
            payload,
        };
        let before = *self.decoder.stats();
        self.events.clear();
        let events = &mut self.events;
        let res = self.decoder.decode(&ctx, &rec, 13, |e| events.push(*e));
        let after = self.decoder.stats();
        let moved = (after.messages.total() - before.messages.total())
            + (after.skipped.total() - before.skipped.total())
            + (after.errors.total() - before.errors.total());
        assert_eq!(moved, 1, "each record moves exactly one counter");
        match res {
            Ok(Decoded::Events(n)) => {
                assert_eq!(n as usize, self.events.len());
                assert_eq!(after.events - before.events, u64::from(n));
                check_message(&self.events);
            }
            Ok(Decoded::Skipped(_)) | Err(_) => {
                assert!(self.events.is_empty(), "nothing is emitted for {res:?}");
            }
        }
        res
    }
}

/// A well-formed stream message of the SBE schema (`which % 4` picks the template) for
/// BTCUSDT, exponents −8/−8, written into `out`: the seed [`Harness::sbe_frame`] mutates.
fn sbe_seed(which: u8, out: &mut Vec<u8>) {
    let template = [
        Template::Trades,
        Template::BestBidAsk,
        Template::DepthSnapshot,
        Template::DepthDiff,
    ][usize::from(which % 4)];
    let header = MessageHeader {
        block_len: template.block_len(),
        template_id: template as u16,
        schema_id: crate::sbe::SCHEMA_ID,
        version: crate::sbe::SCHEMA_VERSION,
    };
    out.extend_from_slice(&header.to_bytes());
    let i64s = |out: &mut Vec<u8>, values: &[i64]| {
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    };
    const PX: i64 = 6_168_599_000_000;
    const QTY: i64 = 100_870_000;
    match template {
        Template::Trades => {
            i64s(out, &[1_723_075_200_123_456, 1_723_075_200_123_400]);
            out.extend_from_slice(&[0xF8, 0xF8, 25, 0, 2, 0, 0, 0]);
            i64s(out, &[7, PX, QTY]);
            out.push(0);
            i64s(out, &[8, PX - 1_000_000, 1]);
            out.push(1);
        }
        Template::BestBidAsk => {
            i64s(out, &[1_723_075_200_123_456, 50_093_239_218]);
            out.extend_from_slice(&[0xF8, 0xF8]);
            i64s(out, &[PX, QTY, PX + 1_000_000, QTY * 2]);
        }
        Template::DepthSnapshot | Template::DepthDiff => {
            i64s(out, &[1_723_075_200_123_456]);
            if template == Template::DepthDiff {
                i64s(out, &[50_093_239_219]);
            }
            i64s(out, &[50_093_239_220]);
            out.extend_from_slice(&[0xF8, 0xF8, 16, 0, 2, 0]);
            i64s(out, &[PX, QTY, PX - 1_000_000, 0]);
            out.extend_from_slice(&[16, 0, 1, 0]);
            i64s(out, &[PX + 1_000_000, QTY]);
        }
    }
    out.push(7);
    out.extend_from_slice(b"BTCUSDT");
}

/// The events of one decoded record (one book message, or a batch of one-event trades).
fn check_message(events: &[MarketEvent]) {
    let mut open = false;
    for e in events {
        assert_eq!((e.t_recv, e.t0, e.conn), (11, 13, ConnId(3)));
        assert!(usize::from(e.n_levels) <= MAX_LEVELS);
        assert!(e.n_bids <= e.n_levels);
        match e.kind {
            // A candle: positive prices, the high and low around the open and close, volumes
            // never negative.
            EventKind::Kline => {
                let c = pinion_core::Candle::from_event(e).expect("a kline's four levels");
                assert!(c.low.0 > 0 && c.open.0 > 0 && c.close.0 > 0, "{e:?}");
                assert!(c.low <= c.open.min(c.close) && c.high >= c.open.max(c.close));
                assert!(c.volume.0 >= 0 && c.taker_buy_volume.0 >= 0, "{e:?}");
                assert!(e.is_first() && e.is_last());
            }
            // A 24 h ticker: nothing negative (a price is zero where the window had no trade,
            // or the message did not carry it).
            EventKind::Ticker24h => {
                let t = pinion_core::Ticker24h::from_event(e).expect("a ticker's four levels");
                assert!(t.fields.0 != 0, "a ticker event carries a field");
                for l in &e.levels[..usize::from(e.n_levels)] {
                    assert!(l.px.0 >= 0 && l.qty.0 >= 0, "{e:?}");
                }
            }
            // Every level is in range: a positive price; a positive quantity on a trade or a
            // best bid/ask, never a negative one on a book level.
            _ => {
                let one_off = matches!(e.kind, EventKind::Trade | EventKind::BookTicker);
                for l in &e.levels[..usize::from(e.n_levels)] {
                    assert!(l.px.0 > 0 && l.qty.0 >= i64::from(one_off), "{e:?}");
                }
            }
        }
        assert_eq!(
            e.is_first(),
            !open,
            "FIRST exactly at the start of a message"
        );
        open = !e.is_last();
    }
    assert!(!open, "the last event carries LAST");
}

/// A decimal string at a scale taken from the first byte: parsing never panics, and a parsed
/// value written back out parses to the same value.
pub fn decimal(data: &[u8]) {
    let Some((&scale, text)) = data.split_first() else {
        return;
    };
    let decimals = scale % (decimal::MAX_DECIMALS + 3);
    if let Ok(v) = decimal::parse_scaled(text, decimals) {
        let mut buf = [0u8; MAX_FORMATTED_LEN];
        let n = decimal::write_scaled(v, decimals, &mut buf);
        assert_eq!(decimal::parse_scaled(&buf[..n], decimals), Ok(v));
    }
}

/// Two decoders over the same instruments, one trying the strict scanner for Binance's flat
/// messages first and one leaving everything to simd-json: they must agree on every input.
#[derive(Debug)]
pub struct FlatPair {
    fast: Decoder,
    general: Decoder,
    fast_events: Vec<MarketEvent>,
    general_events: Vec<MarketEvent>,
}

impl Default for FlatPair {
    fn default() -> Self {
        Self::new(Harness::new().decoder.instruments().clone())
    }
}

impl FlatPair {
    /// A pair over `instruments`.
    pub fn new(instruments: Instruments) -> Self {
        Self {
            fast: Decoder::new(instruments.clone()).with_flat_scanner(true),
            general: Decoder::new(instruments).with_flat_scanner(false),
            fast_events: Vec::new(),
            general_events: Vec::new(),
        }
    }

    /// Decodes `frame` both ways and panics unless the answers, the events and the counters
    /// agree. Returns the answer and the events.
    pub fn check(
        &mut self,
        venue: Venue,
        t_recv: u64,
        frame: &[u8],
    ) -> (Result<Decoded, ParseError>, &[MarketEvent]) {
        let ctx = ConnCtx::new(venue);
        let rec = RawRecord {
            t_recv,
            conn: ConnId(1),
            kind: RecordKind::Frame,
            meta: b"",
            payload: frame,
        };
        self.fast_events.clear();
        self.general_events.clear();
        let fast_events = &mut self.fast_events;
        let general_events = &mut self.general_events;
        let fast = self.fast.decode(&ctx, &rec, 5, |e| fast_events.push(*e));
        let general = self
            .general
            .decode(&ctx, &rec, 5, |e| general_events.push(*e));
        assert_eq!(
            fast,
            general,
            "answers differ for {:?}",
            frame.escape_ascii()
        );
        assert_eq!(
            self.fast_events,
            self.general_events,
            "events differ for {:?}",
            frame.escape_ascii()
        );
        assert_eq!(self.fast.stats(), self.general.stats(), "counters differ");
        (fast, &self.fast_events)
    }

    /// Whether the strict scanner alone decodes `frame` (without falling back); nothing is
    /// counted either way.
    pub fn scanner_accepts(&mut self, venue: Venue, frame: &[u8]) -> bool {
        self.fast.flat_only(&ConnCtx::new(venue), frame).is_some()
    }
}

/// [`FlatPair::check`] on a frame; the first byte picks Binance Spot, Binance USD-M or Bybit
/// linear.
pub fn flat_equivalence(pair: &mut FlatPair, data: &[u8]) {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let venue =
        [Venue::BinanceSpot, Venue::BinanceUsdm, Venue::BybitLinear][usize::from(selector % 3)];
    let _ = pair.check(venue, 7, frame);
}
