//! Exchange message parsers: raw frames in, [`MarketEvent`]s out.
//!
//! One [`Decoder`] per feed thread handles every venue: the connection's [`ConnCtx`] says which
//! venue a frame is from. Frames are parsed with simd-json's tape API into buffers that the
//! decoder owns and reuses, so once the buffers have grown to the largest message seen, decoding
//! allocates nothing. Prices and quantities go straight from the exchange's decimal strings to
//! [`pinion_core::Px`]/[`pinion_core::Qty`] at the instrument's scale, never through `f64`; the instrument is
//! looked up once per message.
//!
//! Invariants:
//! - A message is either emitted completely (FIRST … LAST, with at least one event for book
//!   messages) or not at all: it is parsed fully into a staging buffer before the first event.
//! - Bad input never panics: it is a [`ParseError`], counted in [`DecodeStats`], and the decoder
//!   is ready for the next record.
//! - JSON key order does not matter (Bybit's differs between markets), and unknown keys are
//!   ignored (Binance keeps adding them: `st`, `ps`, `nq`, …).
//!
//! The fixed-shape stream messages (Binance trades, tickers and depth, Bybit order books)
//! first go through a strict scanner (`flat`) that
//! accepts only a subset of JSON and hands everything else to simd-json, which stays the
//! general parser; decimal strings of the usual plain shape take a fast path (`scaled`).
//!
//! Binance Spot's binary market data (SBE binary frames, told from JSON by their message
//! header) skip all of that: `sbe` reads the frame in place with [`crate::sbe::read`] and emits
//! the same events the JSON messages would.
//!
//! Venue specifics live in `binance`, `bybit` and `sbe`; `levels` holds the one routine for
//! level arrays and the splitting of large messages.

mod binance;
mod bybit;
mod candles;
mod error;
mod flat;
#[doc(hidden)]
pub mod fuzzing;
mod levels;
mod resolve;
mod sbe;
mod scaled;
mod stats;
mod tape;

#[cfg(test)]
mod tests;

use simd_json::{Buffers, INPUT_PADDING, Tape};

pub use error::{ParseError, Sign};
pub use stats::{DecodeStats, ErrorCounts, MessageCounts, SkipCounts};

use pinion_core::event::{EventFlags, EventKind, MarketEvent};
use pinion_core::instrument::{InstrumentId, Instruments};
use pinion_core::record::{ConnId, RawRecord, RecordKind};
use pinion_core::venue::Venue;

use levels::LevelBuf;

/// Longest frame the decoder accepts. Far above any real message (a 5,000-level Binance REST
/// snapshot is about 250 KB); it bounds the scratch buffer against a hostile or broken peer.
pub const MAX_FRAME_LEN: usize = 16 << 20;

/// Start-up size of the scratch buffers, so ordinary messages never make them grow.
const INITIAL_FRAME_CAPACITY: usize = 64 << 10;
/// Start-up size of the level staging buffer (a 1,000-level snapshot has 2,000 levels).
const INITIAL_LEVEL_CAPACITY: usize = 4096;
/// Start-up size of the Bybit trade staging buffer.
const INITIAL_TRADE_CAPACITY: usize = 1024;

/// What the decoder needs to know about the connection a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnCtx {
    /// The venue: it decides the message formats.
    pub venue: Venue,
    /// The instrument of payloads that do not name one: a raw (`/ws/<stream>`) Binance Spot
    /// partial-depth socket, and REST snapshots whose request URL is unknown.
    pub default_instrument: Option<InstrumentId>,
}

impl ConnCtx {
    /// A connection of `venue` with no default instrument.
    pub const fn new(venue: Venue) -> Self {
        Self {
            venue,
            default_instrument: None,
        }
    }
}

/// The outcome of decoding one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The message was decoded; this many events were emitted.
    Events(u32),
    /// The record carries nothing for the book or the strategy.
    Skipped(SkipReason),
}

/// Why a record produced no event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// A stream or topic the decoder does not handle (liquidations, mark price, …).
    UnknownStream,
    /// A symbol that is not in the instrument registry (or no symbol and no default).
    UnknownInstrument,
    /// A control message: subscribe replies, pongs, `serverShutdown`.
    Control,
    /// A REST response that is not an order book snapshot ([`RecordKind::Http`]).
    OtherHttp,
    /// A REST error body (`{"code":…,"msg":…}`, Bybit `retCode != 0`) where a snapshot was
    /// expected.
    ErrorResponse,
    /// A connect, disconnect or gap record: the caller resyncs the books it feeds.
    Connection,
    /// A Binance SBE message whose template the stream schema does not define (a newer
    /// schema's message): skipped as SBE's rules say, and counted.
    UnknownTemplate,
}

/// Where the frame came from, copied onto every event.
#[derive(Clone, Copy, Debug)]
pub(super) struct Origin {
    t_recv: u64,
    t0: u64,
    conn: ConnId,
}

impl Origin {
    /// An event header of `kind` for `instrument`, with the record's times and connection.
    #[inline]
    pub(super) fn header(&self, instrument: InstrumentId, kind: EventKind) -> MarketEvent {
        let mut e = MarketEvent::EMPTY;
        e.t_recv = self.t_recv;
        e.t0 = self.t0;
        e.conn = self.conn;
        e.instrument = instrument;
        e.kind = kind;
        e
    }

    /// Makes `e` a fresh event of `kind` for `instrument`, as [`Origin::header`] gives, except
    /// that its levels are left as they were (only the first `n_levels`, here 0, mean anything):
    /// the decoder's one event is reused instead of 520 bytes being cleared per message.
    #[inline(always)]
    pub(super) fn reset(&self, e: &mut MarketEvent, instrument: InstrumentId, kind: EventKind) {
        e.t_recv = self.t_recv;
        e.t0 = self.t0;
        e.exch_ts = 0;
        e.trans_ts = 0;
        e.first_id = 0;
        e.last_id = 0;
        e.prev_id = 0;
        e.seq = 0;
        e.instrument = instrument;
        e.conn = self.conn;
        e.kind = kind;
        e.flags = EventFlags(0);
        e.n_bids = 0;
        e.n_levels = 0;
    }
}

/// Where a venue parser puts its output: the reusable staging buffers, the message counters
/// and the caller's event callback.
pub(super) struct Sink<'a, F> {
    /// The event the fast paths build in place, reused from message to message.
    event: &'a mut MarketEvent,
    levels: &'a mut LevelBuf,
    trades: &'a mut Vec<bybit::TradeRow>,
    counts: &'a mut MessageCounts,
    emit: &'a mut F,
}

/// Decodes raw exchange records into [`MarketEvent`]s. One per feed thread; reuses its buffers.
pub struct Decoder {
    instruments: Instruments,
    /// The frame copied with simd-json's padding after it (simd-json parses in place).
    scratch: Vec<u8>,
    buffers: Buffers,
    /// The tape's allocation, kept between frames (empty, so it borrows nothing).
    tape: Tape<'static>,
    /// The event the fast paths build in place (see [`Origin::reset`]).
    event: MarketEvent,
    levels: LevelBuf,
    trades: Vec<bybit::TradeRow>,
    last_symbol: resolve::LastSymbol,
    stats: DecodeStats,
    /// Whether Binance frames try the strict scanner of [`flat`] before simd-json.
    flat_scanner: bool,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("instruments", &self.instruments.len())
            .field("scratch_capacity", &self.scratch.capacity())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder for the instruments of `instruments`; symbols not in it are skipped.
    pub fn new(instruments: Instruments) -> Self {
        Self {
            instruments,
            scratch: Vec::with_capacity(INITIAL_FRAME_CAPACITY + INPUT_PADDING),
            buffers: Buffers::new(INITIAL_FRAME_CAPACITY),
            tape: Tape(Vec::with_capacity(INITIAL_FRAME_CAPACITY / 8)),
            event: MarketEvent::EMPTY,
            levels: LevelBuf::with_capacity(INITIAL_LEVEL_CAPACITY),
            trades: Vec::with_capacity(INITIAL_TRADE_CAPACITY),
            last_symbol: resolve::LastSymbol::default(),
            stats: DecodeStats::default(),
            flat_scanner: true,
        }
    }

    /// Turns the strict scanner for the fixed-shape stream messages (Binance trade, aggTrade,
    /// bookTicker, diff depth; Bybit order books) on (the default) or off, leaving every frame
    /// to simd-json. Both give the same result for every input; the switch exists so tests and
    /// benchmarks can compare the two paths.
    pub fn with_flat_scanner(mut self, on: bool) -> Self {
        self.flat_scanner = on;
        self
    }

    /// The instrument registry the decoder resolves symbols against.
    pub fn instruments(&self) -> &Instruments {
        &self.instruments
    }

    /// The instrument the last record given to [`Decoder::decode`] named, if decoding got as
    /// far as resolving it: what a report of a frame that failed says it was about.
    pub fn last_instrument(&self) -> Option<InstrumentId> {
        self.last_symbol.frame
    }

    /// What the decoder has counted so far.
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// Decodes one record; calls `emit` for each [`MarketEvent`] (several for a split message,
    /// the first with FIRST, the last with LAST). Every event gets `t_recv` and `conn` from the
    /// record and `t0` from the argument.
    ///
    /// Errors and skips are counted in [`Decoder::stats`]; the decoder stays usable either way.
    pub fn decode<F: FnMut(&MarketEvent)>(
        &mut self,
        ctx: &ConnCtx,
        rec: &RawRecord<'_>,
        t0: u64,
        mut emit: F,
    ) -> Result<Decoded, ParseError> {
        self.last_symbol.frame = None;
        let res = self.decode_record(ctx, rec, t0, &mut emit);
        match res {
            Ok(Decoded::Events(n)) => self.stats.events += u64::from(n),
            Ok(Decoded::Skipped(reason)) => self.stats.record_skip(reason),
            Err(err) => self.stats.record_error(err),
        }
        res
    }

    /// The strict scanner alone on a Binance frame, events discarded and nothing counted: `None`
    /// when it would fall back. For the equivalence tests in [`fuzzing`].
    fn flat_only(&mut self, ctx: &ConnCtx, frame: &[u8]) -> Option<Decoded> {
        let mut counts = MessageCounts::default();
        let mut sink = Sink {
            event: &mut self.event,
            levels: &mut self.levels,
            trades: &mut self.trades,
            counts: &mut counts,
            emit: &mut |_: &MarketEvent| {},
        };
        let reg = &mut resolve::Resolver::new(&self.instruments, &mut self.last_symbol);
        let origin = Origin {
            t_recv: 0,
            t0: 0,
            conn: ConnId(0),
        };
        if ctx.venue.is_binance() {
            flat::frame(ctx, reg, origin, frame, &mut sink)
        } else {
            flat::bybit_frame(ctx, reg, origin, frame, &mut sink)
        }
    }

    fn decode_record<F: FnMut(&MarketEvent)>(
        &mut self,
        ctx: &ConnCtx,
        rec: &RawRecord<'_>,
        t0: u64,
        emit: &mut F,
    ) -> Result<Decoded, ParseError> {
        match rec.kind {
            RecordKind::Frame | RecordKind::RestSnapshot => {}
            RecordKind::Http => return Ok(Decoded::Skipped(SkipReason::OtherHttp)),
            RecordKind::Connect | RecordKind::Disconnect | RecordKind::Gap => {
                return Ok(Decoded::Skipped(SkipReason::Connection));
            }
        }
        let len = rec.payload.len();
        if len > MAX_FRAME_LEN {
            return Err(ParseError::FrameTooLarge);
        }
        let origin = Origin {
            t_recv: rec.t_recv,
            t0,
            conn: rec.conn,
        };
        if rec.kind == RecordKind::Frame
            && ctx.venue == Venue::BinanceSpot
            && crate::sbe::is_stream_message(rec.payload)
        {
            let mut sink = Sink {
                event: &mut self.event,
                levels: &mut self.levels,
                trades: &mut self.trades,
                counts: &mut self.stats.messages,
                emit,
            };
            let reg = &mut resolve::Resolver::new(&self.instruments, &mut self.last_symbol);
            return sbe::frame(ctx, reg, origin, rec.payload, &mut sink);
        }
        if self.flat_scanner && rec.kind == RecordKind::Frame {
            let mut sink = Sink {
                event: &mut self.event,
                levels: &mut self.levels,
                trades: &mut self.trades,
                counts: &mut self.stats.messages,
                emit,
            };
            let reg = &mut resolve::Resolver::new(&self.instruments, &mut self.last_symbol);
            let scanned = if ctx.venue.is_binance() {
                flat::frame(ctx, reg, origin, rec.payload, &mut sink)
            } else {
                flat::bybit_frame(ctx, reg, origin, rec.payload, &mut sink)
            };
            if let Some(done) = scanned {
                return Ok(done);
            }
        }
        // simd-json parses in place and reads up to INPUT_PADDING bytes past the document.
        self.scratch.clear();
        self.scratch.extend_from_slice(rec.payload);
        self.scratch.resize(len + INPUT_PADDING, 0);

        let Self {
            instruments,
            scratch,
            buffers,
            tape,
            event,
            levels,
            trades,
            last_symbol,
            stats,
            flat_scanner: _,
        } = self;
        // Borrow the kept allocation for this frame's lifetime; it goes back below on every path.
        let mut frame_tape = std::mem::replace(tape, Tape(Vec::new())).reset();
        let res = match simd_json::fill_tape_padded(scratch, len, buffers, &mut frame_tape) {
            Err(_) => Err(ParseError::Json),
            Ok(()) => {
                let root = tape::Val::root(&frame_tape.0);
                let reg = &mut resolve::Resolver::new(instruments, last_symbol);
                let mut sink = Sink {
                    event,
                    levels,
                    trades,
                    counts: &mut stats.messages,
                    emit,
                };
                match (ctx.venue.is_binance(), rec.kind) {
                    (true, RecordKind::RestSnapshot) => {
                        binance::rest_snapshot(ctx, reg, origin, rec.meta, root, &mut sink)
                    }
                    (true, _) => binance::frame(ctx, reg, origin, root, &mut sink),
                    (false, RecordKind::RestSnapshot) => {
                        bybit::rest_snapshot(ctx, reg, origin, rec.meta, root, &mut sink)
                    }
                    (false, _) => bybit::frame(ctx, reg, origin, root, &mut sink),
                }
            }
        };
        *tape = frame_tape.reset();
        res
    }
}

/// The value of `name` in a URL's query string (`…?symbol=BTCUSDT&limit=1000` → `BTCUSDT`).
pub(super) fn query_param<'u>(url: &'u [u8], name: &[u8]) -> Option<&'u [u8]> {
    let query_start = url.iter().position(|&c| c == b'?')? + 1;
    url[query_start..].split(|&c| c == b'&').find_map(|pair| {
        let rest = pair.strip_prefix(name)?;
        rest.strip_prefix(b"=")
    })
}

impl<F: FnMut(&MarketEvent)> Sink<'_, F> {
    /// Parses a book message's bid and ask arrays and emits it, split as needed.
    #[inline]
    fn book(
        &mut self,
        header: &mut MarketEvent,
        spec: &pinion_core::InstrumentSpec,
        bids: (tape::Val<'_, '_>, &'static str),
        asks: (tape::Val<'_, '_>, &'static str),
    ) -> Result<u32, ParseError> {
        self.levels.clear();
        self.levels.push_side(bids.0, bids.1, true, spec)?;
        self.levels.push_side(asks.0, asks.1, false, spec)?;
        Ok(levels::emit_split(header, self.levels, self.emit))
    }

    /// Emits every trade staged in `trades`, one FIRST|LAST event each (its id, sequence and
    /// match time from the row, `exch_ts` from the message), and counts the message.
    #[inline]
    fn staged_trades(&mut self, origin: Origin, id: InstrumentId, exch_ts: u64) -> u32 {
        let mut n = 0;
        for row in self.trades.iter() {
            let mut header = origin.header(id, EventKind::Trade);
            header.exch_ts = exch_ts;
            header.trans_ts = row.trans_ts;
            header.last_id = row.id;
            header.seq = row.seq;
            header.levels[0] = row.level;
            header.n_levels = 1;
            header.flags = pinion_core::EventFlags::FIRST | pinion_core::EventFlags::LAST;
            if row.buyer_maker {
                header.flags.insert(pinion_core::EventFlags::BUYER_MAKER);
            }
            (self.emit)(&header);
            n += 1;
        }
        self.counts.trade += 1;
        n
    }

    /// Emits a one-trade event: the price and quantity are its only level (`n_bids == 0`).
    #[inline]
    fn single_trade(
        &mut self,
        header: &mut MarketEvent,
        level: pinion_core::Level,
        buyer_maker: bool,
    ) -> u32 {
        header.levels[0] = level;
        header.n_levels = 1;
        header.n_bids = 0;
        header
            .flags
            .insert(pinion_core::EventFlags::FIRST | pinion_core::EventFlags::LAST);
        if buyer_maker {
            header.flags.insert(pinion_core::EventFlags::BUYER_MAKER);
        }
        (self.emit)(header);
        1
    }
}
