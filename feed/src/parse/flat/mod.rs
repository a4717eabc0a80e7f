//! A strict scanner for the fixed-shape stream messages, tried before simd-json: Binance
//! `trade`, `aggTrade`, `bookTicker` and `depthUpdate` here, Bybit `orderbook.*` in [`bybit`].
//!
//! Why: these messages have one shape each, flat but for a depth update's two level arrays, so
//! the general path spends much of its time on work a document of arbitrary shape needs: the
//! padded copy into the scratch buffer, simd-json's two stages, strings copied out for
//! unescaping, the tape, and a key walk. A profile of `trade` put about half its time inside
//! simd-json. One left-to-right pass over the bytes that reads the fields the event needs does
//! the same job in a fraction of that. The pass goes a 64-bit word at a time where it can: a
//! string's end, a one-letter key with its colon, and up to eight digits of an integer are each
//! found with a few word operations (the per-byte loops they replace were most of a futures
//! `bookTicker`'s cost: its three 13-digit integers and three extra keys).
//!
//! How it stays correct: the scanner accepts only a strict subset of JSON, and on anything
//! outside it returns `None` and the frame goes to the general simd-json path, which then gives
//! the proper answer (event, skip or typed error). The subset (for Binance; Bybit's differs in
//! its root object, see [`bybit`]) is:
//! - exactly `{"stream":"<name>","data":{<pairs>}}` with no whitespace anywhere, and nothing
//!   after the last `}`;
//! - `<name>` a `trade`, `aggTrade`, `bookTicker` or diff `depth` stream of a registered symbol;
//! - each pair a key and a scalar value: a string, a number in JSON's grammar, `true`, `false`
//!   or `null` (no nested object or array, even under keys the decoder ignores); except that in
//!   a depth update `b` and then `a` hold arrays of exactly two-string arrays
//!   `[["price","qty"],…]`;
//! - strings of printable ASCII only (`0x20..=0x7e`) without `\`: no escapes, no UTF-8 to check;
//! - every field the message type needs present exactly once, with the type and range the
//!   general path demands (unsigned integer ids and times, decimal strings valid at the
//!   instrument's scale and in range — prices and trade or ticker quantities above zero, level
//!   quantities not negative —, a boolean `m`, `pu` on futures). A duplicated known key falls back,
//!   since the general path keeps the last one.
//!
//! Everything the subset accepts is valid JSON, and for it the scanner builds exactly the events
//! the general path would (key order and unknown keys do not matter to either). Anything else,
//! including every malformed frame, takes the general path, so errors are reported in one place
//! and the same way. Nothing is emitted, and no counter moves, until the whole frame has been
//! read; the only state touched before that is the level staging buffer (cleared by whichever
//! path uses it next) and the resolver's last-symbol memory, a cache.
//!
//! `feed/tests/parse_flat.rs` decodes every real message both ways and compares the events, and
//! feeds the scanner malformed variants (and random edits) to check that it falls back with the
//! general path's answer.

use pinion_core::decimal::{Px, Qty};
use pinion_core::event::{EventFlags, EventKind, Level, MarketEvent};
use pinion_core::instrument::InstrumentSpec;

use super::binance::{Stream, parse_stream_name};
use super::levels::{ZeroQty, emit_split, in_range};
use super::resolve::Resolver;
use super::scaled;
use super::{ConnCtx, Decoded, Origin, Sink};

mod bybit;
mod scanner;

use scanner::{Scalar, Scanner};

pub(super) use bybit::frame as bybit_frame;

/// Nanoseconds per millisecond: Binance sends times in ms.
const NS_PER_MS: u64 = 1_000_000;

/// The literal start of a combined-stream envelope.
const ENVELOPE_HEAD: &[u8] = br#"{"stream":""#;
/// The literal between the stream name's closing quote and the payload object.
const DATA_HEAD: &[u8] = br#","data":"#;

/// The single-letter keys the three message types read, one slot each.
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
enum Key {
    /// Event time.
    BigE,
    /// Transaction time.
    BigT,
    /// Trade id.
    SmallT,
    /// Price.
    P,
    /// Quantity.
    Q,
    /// Buyer is maker.
    M,
    /// aggTrade id; bookTicker best ask price.
    SmallA,
    /// First trade id.
    F,
    /// Last trade id.
    L,
    /// bookTicker update id.
    U,
    /// Best bid price.
    SmallB,
    /// Best bid quantity.
    BigB,
    /// Best ask quantity.
    BigA,
    /// Depth: first update id.
    BigU,
    /// Depth: the previous event's last update id (futures).
    Pu,
    /// Bybit order book: the cross sequence.
    Seq,
}

/// Number of [`Key`] slots.
const KEYS: usize = 16;

impl Key {
    /// The scale of a string under this key, where it is a price or quantity in any of the
    /// message types: `p`, `b`, `a` prices; `q`, `B`, `A` quantities. (`a` is also aggTrade's
    /// id, but a number there, never a string; a depth update's `b` and `a` are level arrays,
    /// read apart.)
    #[inline]
    fn decimals(self, spec: &InstrumentSpec) -> Option<u8> {
        match self {
            Self::P | Self::SmallB | Self::SmallA => Some(spec.price_decimals),
            Self::Q | Self::BigB | Self::BigA => Some(spec.qty_decimals),
            _ => None,
        }
    }

    /// The slot of a one-letter key, by its byte: one load instead of a chain of compares.
    const BY_LETTER: [Option<Self>; 256] = {
        let mut table = [None; 256];
        table[b'E' as usize] = Some(Self::BigE);
        table[b'T' as usize] = Some(Self::BigT);
        table[b't' as usize] = Some(Self::SmallT);
        table[b'p' as usize] = Some(Self::P);
        table[b'q' as usize] = Some(Self::Q);
        table[b'm' as usize] = Some(Self::M);
        table[b'a' as usize] = Some(Self::SmallA);
        table[b'f' as usize] = Some(Self::F);
        table[b'l' as usize] = Some(Self::L);
        table[b'u' as usize] = Some(Self::U);
        table[b'b' as usize] = Some(Self::SmallB);
        table[b'B' as usize] = Some(Self::BigB);
        table[b'A' as usize] = Some(Self::BigA);
        table[b'U' as usize] = Some(Self::BigU);
        table
    };

    /// The slot of a key, or `None` for keys none of the message types read.
    #[inline]
    fn of(key: &[u8]) -> Option<Self> {
        match key {
            [c] => Self::BY_LETTER[usize::from(*c)],
            b"pu" => Some(Self::Pu),
            b"seq" => Some(Self::Seq),
            _ => None,
        }
    }
}

/// The known fields of one payload object.
#[derive(Debug)]
struct Payload<'a> {
    vals: [Scalar<'a>; KEYS],
}

impl<'a> Payload<'a> {
    /// No key seen yet.
    const EMPTY: Self = Self {
        vals: [Scalar::Absent; KEYS],
    };

    #[inline]
    fn get(&self, key: Key) -> Scalar<'a> {
        self.vals[key as usize]
    }

    /// An id or other unsigned integer field that must be present.
    #[inline]
    fn uint(&self, key: Key) -> Option<u64> {
        match self.get(key) {
            Scalar::Uint(v) => Some(v),
            _ => None,
        }
    }

    /// An optional millisecond time in ns: absent is 0, as the general path has it.
    #[inline]
    fn opt_ms_as_ns(&self, key: Key) -> Option<u64> {
        opt_ms_as_ns(self.get(key))
    }

    #[inline]
    fn bool(&self, key: Key) -> Option<bool> {
        match self.get(key) {
            Scalar::True => Some(true),
            Scalar::False => Some(false),
            _ => None,
        }
    }

    /// A price and a quantity from two string fields, at the instrument's scale (the scanner
    /// has converted the usual strings already): a trade's or one side of a best bid/ask, so
    /// both above zero (anything else is the general path's error).
    #[inline]
    fn level(&self, spec: &InstrumentSpec, px: Key, qty: Key) -> Option<Level> {
        let decimal = |v: Scalar<'_>, decimals: u8| match v {
            Scalar::Dec(v) => Some(v),
            Scalar::Str(s) => scaled::value(s, decimals).ok(),
            _ => None,
        };
        let level = Level {
            px: Px(decimal(self.get(px), spec.price_decimals)?),
            qty: Qty(decimal(self.get(qty), spec.qty_decimals)?),
        };
        in_range(level, ZeroQty::Invalid).then_some(level)
    }
}

/// An optional millisecond time in ns: absent is 0, as the general path has it.
#[inline]
fn opt_ms_as_ns(v: Scalar<'_>) -> Option<u64> {
    match v {
        Scalar::Absent => Some(0),
        Scalar::Uint(ms) => ms.checked_mul(NS_PER_MS),
        _ => None,
    }
}

/// Decodes a Binance frame if it is inside the subset (see the module docs); `None` sends it to
/// the general path.
#[inline]
pub(super) fn frame<F: FnMut(&MarketEvent)>(
    ctx: &ConnCtx,
    reg: &mut Resolver<'_>,
    origin: Origin,
    frame: &[u8],
    sink: &mut Sink<'_, F>,
) -> Option<Decoded> {
    let mut sc = Scanner { buf: frame, pos: 0 };
    sc.literal(ENVELOPE_HEAD)?;
    let name = sc.string_body()?;
    let (symbol, kind) = parse_stream_name(name)?;
    if matches!(kind, Stream::PartialDepth | Stream::Kline | Stream::Ticker) {
        return None;
    }
    let (id, spec) = reg.symbol(ctx.venue, symbol)?;
    sc.literal(DATA_HEAD)?;
    let mut payload = Payload::EMPTY;
    if kind == Stream::Depth {
        sink.levels.clear();
        sc.payload(&mut payload, spec, Some(&mut *sink.levels))?;
    } else {
        sc.payload(&mut payload, spec, None)?;
    }
    sc.byte(b'}')?;
    if sc.pos != frame.len() {
        return None;
    }
    let mut header = origin.header(
        id,
        match kind {
            Stream::BookTicker => EventKind::BookTicker,
            Stream::Depth => EventKind::Depth,
            _ => EventKind::Trade,
        },
    );
    header.exch_ts = payload.opt_ms_as_ns(Key::BigE)?;
    header.trans_ts = payload.opt_ms_as_ns(Key::BigT)?;
    match kind {
        Stream::Depth => {
            header.first_id = payload.uint(Key::BigU)?;
            header.last_id = payload.uint(Key::U)?;
            // Futures chain events by `pu`; its absence there is the general path's error.
            header.prev_id = match payload.get(Key::Pu) {
                Scalar::Absent if !ctx.venue.is_binance_futures() => 0,
                _ => payload.uint(Key::Pu)?,
            };
            if (payload.get(Key::SmallB), payload.get(Key::SmallA))
                != (Scalar::Levels, Scalar::Levels)
            {
                return None;
            }
            let n = emit_split(&mut header, sink.levels, sink.emit);
            sink.counts.depth += 1;
            Some(Decoded::Events(n))
        }
        Stream::Trade => {
            header.last_id = payload.uint(Key::SmallT)?;
            let level = payload.level(spec, Key::P, Key::Q)?;
            let maker = payload.bool(Key::M)?;
            let n = sink.single_trade(&mut header, level, maker);
            sink.counts.trade += 1;
            Some(Decoded::Events(n))
        }
        Stream::AggTrade => {
            header.seq = payload.uint(Key::SmallA)?;
            header.first_id = payload.uint(Key::F)?;
            header.last_id = payload.uint(Key::L)?;
            header.flags.insert(EventFlags::AGGREGATE);
            let level = payload.level(spec, Key::P, Key::Q)?;
            let maker = payload.bool(Key::M)?;
            let n = sink.single_trade(&mut header, level, maker);
            sink.counts.agg_trade += 1;
            Some(Decoded::Events(n))
        }
        _ => {
            header.last_id = payload.uint(Key::U)?;
            let bid = payload.level(spec, Key::SmallB, Key::BigB)?;
            let ask = payload.level(spec, Key::SmallA, Key::BigA)?;
            header.levels[0] = bid;
            header.levels[1] = ask;
            header.n_bids = 1;
            header.n_levels = 2;
            header.flags.insert(EventFlags::FIRST | EventFlags::LAST);
            (sink.emit)(&header);
            sink.counts.book_ticker += 1;
            Some(Decoded::Events(1))
        }
    }
}
