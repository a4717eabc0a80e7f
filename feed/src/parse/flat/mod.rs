//! A strict scanner for the fixed-shape stream messages, tried before simd-json: Binance
//! `trade`, `aggTrade`, `bookTicker` and `depthUpdate` here, Bybit `orderbook.*` in [`bybit`].
//!
//! Why: these messages have one shape each, flat but for a depth update's two level arrays, so
//! the general path spends much of its time on work a document of arbitrary shape needs: the
//! padded copy into the scratch buffer, simd-json's two stages, strings copied out for
//! unescaping, the tape, and a key walk. A profile of `trade` put about half its time inside
//! simd-json. One left-to-right pass over the bytes that reads the fields the event needs does
//! the same job in a fraction of that.
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
//!   instrument's scale, a boolean `m`, `pu` on futures). A duplicated known key falls back,
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

use crate::event::{EventFlags, EventKind, Level, MarketEvent};
use crate::instrument::InstrumentSpec;

use super::binance::{Stream, parse_stream_name};
use super::levels::{LevelBuf, emit_split};
use super::resolve::Resolver;
use super::scaled;
use super::{ConnCtx, Decoded, Origin, Sink};

mod bybit;

pub(super) use bybit::frame as bybit_frame;

/// Nanoseconds per millisecond: Binance sends times in ms.
const NS_PER_MS: u64 = 1_000_000;

/// The literal start of a combined-stream envelope.
const ENVELOPE_HEAD: &[u8] = br#"{"stream":""#;
/// The literal between the stream name's closing quote and the payload object.
const DATA_HEAD: &[u8] = br#","data":"#;

/// One scalar value as the scanner saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scalar<'a> {
    /// The key did not appear.
    Absent,
    /// A string's bytes between the quotes (printable ASCII, no escapes).
    Str(&'a [u8]),
    /// A non-negative integer without fraction or exponent that fits `u64`.
    Uint(u64),
    /// Any other number (negative, fractional, exponent, too large): never what a field needs.
    OtherNumber,
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A depth update's level array, already parsed into the level buffer.
    Levels,
}

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
    /// The slot of a key, or `None` for keys none of the three types read.
    #[inline]
    fn of(key: &[u8]) -> Option<Self> {
        let [c] = key else {
            return match key {
                b"pu" => Some(Self::Pu),
                b"seq" => Some(Self::Seq),
                _ => None,
            };
        };
        Some(match c {
            b'E' => Self::BigE,
            b'T' => Self::BigT,
            b't' => Self::SmallT,
            b'p' => Self::P,
            b'q' => Self::Q,
            b'm' => Self::M,
            b'a' => Self::SmallA,
            b'f' => Self::F,
            b'l' => Self::L,
            b'u' => Self::U,
            b'b' => Self::SmallB,
            b'B' => Self::BigB,
            b'A' => Self::BigA,
            b'U' => Self::BigU,
            _ => return None,
        })
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
            Scalar::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// A price and a quantity from two string fields, at the instrument's scale.
    #[inline]
    fn level(&self, spec: &InstrumentSpec, px: Key, qty: Key) -> Option<Level> {
        let (Scalar::Str(px), Scalar::Str(qty)) = (self.get(px), self.get(qty)) else {
            return None;
        };
        Some(Level {
            px: scaled::px(px, spec.price_decimals).ok()?,
            qty: scaled::qty(qty, spec.qty_decimals).ok()?,
        })
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

/// The word whose every byte is `b`.
const fn splat(b: u8) -> u64 {
    u64::from_le_bytes([b; 8])
}

/// Whether a word of string bytes holds one that ends the plain run: `"`, `\`, a control
/// character, DEL or a non-ASCII byte. Exact for existence (which byte is not needed).
#[inline]
fn special_byte(word: u64) -> bool {
    const HIGH: u64 = splat(0x80);
    // A zero byte in `x` sets its high bit in `(x - 0x01…) & !x` (a borrow only ever
    // propagates past a zero byte, so no false positive in a word without one).
    let has_zero = |x: u64| x.wrapping_sub(splat(0x01)) & !x & HIGH != 0;
    let below_space = word.wrapping_sub(splat(0x20)) & !word & HIGH != 0;
    word & HIGH != 0
        || below_space
        || has_zero(word ^ splat(b'"'))
        || has_zero(word ^ splat(b'\\'))
        || has_zero(word ^ splat(0x7f))
}

/// A cursor over the frame's bytes. Every method returns `None` on anything outside the subset.
struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    #[inline]
    fn byte(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.pos += 1)
    }

    #[inline]
    fn literal(&mut self, want: &[u8]) -> Option<()> {
        let end = self.pos + want.len();
        (self.buf.get(self.pos..end)? == want).then(|| self.pos = end)
    }

    /// The rest of a string whose opening quote has been read, without the closing quote.
    #[inline]
    fn string_body(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        // Eight plain bytes at a time; a word holding anything else (the closing quote
        // included) is finished byte by byte below.
        while let Some(chunk) = self.buf.get(self.pos..).and_then(|r| r.first_chunk::<8>()) {
            if special_byte(u64::from_le_bytes(*chunk)) {
                break;
            }
            self.pos += 8;
        }
        loop {
            match self.peek()? {
                b'"' => break,
                // Escapes, control characters and non-ASCII go to the general path.
                b'\\' | 0..=0x1f | 0x7f..=0xff => return None,
                _ => self.pos += 1,
            }
        }
        let s = &self.buf[start..self.pos];
        self.pos += 1;
        Some(s)
    }

    /// One or more ASCII digits; returns how many.
    #[inline]
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// A number in JSON's grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    #[inline]
    fn number(&mut self) -> Option<Scalar<'a>> {
        let start = self.pos;
        let neg = self.peek() == Some(b'-');
        if neg {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = self.digits();
        if n == 0 || (n > 1 && self.buf[int_start] == b'0') {
            return None;
        }
        let int_end = self.pos;
        let mut plain = !neg;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return None;
            }
            plain = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return None;
            }
            plain = false;
        }
        debug_assert!(self.pos > start);
        if !plain {
            return Some(Scalar::OtherNumber);
        }
        let mut v: u64 = 0;
        for &c in &self.buf[int_start..int_end] {
            let Some(next) = v
                .checked_mul(10)
                .and_then(|x| x.checked_add(u64::from(c - b'0')))
            else {
                return Some(Scalar::OtherNumber);
            };
            v = next;
        }
        Some(Scalar::Uint(v))
    }

    /// A scalar value.
    #[inline]
    fn scalar(&mut self) -> Option<Scalar<'a>> {
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                self.string_body().map(Scalar::Str)
            }
            b't' => self.literal(b"true").map(|()| Scalar::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Scalar::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Scalar::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// A depth side, `[["price","qty"],…]`, appended to `levels`.
    fn level_array(
        &mut self,
        levels: &mut LevelBuf,
        spec: &InstrumentSpec,
        bid: bool,
    ) -> Option<()> {
        self.byte(b'[')?;
        if self.byte(b']').is_some() {
            return Some(());
        }
        loop {
            self.literal(b"[\"")?;
            let px = self.string_body()?;
            self.literal(b",\"")?;
            let qty = self.string_body()?;
            self.byte(b']')?;
            levels.push(
                bid,
                Level {
                    px: scaled::px(px, spec.price_decimals).ok()?,
                    qty: scaled::qty(qty, spec.qty_decimals).ok()?,
                },
            );
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An object of scalar values, keeping the known keys in `out` (all absent on entry;
    /// filled in place, as returning the slots by value costs a copy). With `depth`, the values
    /// of `b` and then `a` must instead be level arrays, parsed into the buffer, bids first.
    fn payload(
        &mut self,
        out: &mut Payload<'a>,
        mut depth: Option<(&mut LevelBuf, &InstrumentSpec)>,
    ) -> Option<()> {
        self.byte(b'{')?;
        if self.byte(b'}').is_some() {
            return Some(());
        }
        loop {
            self.byte(b'"')?;
            let key = self.string_body()?;
            self.byte(b':')?;
            let value = match (&mut depth, Key::of(key)) {
                (Some((levels, spec)), Some(side @ (Key::SmallB | Key::SmallA))) => {
                    let bid = matches!(side, Key::SmallB);
                    // Asks after bids only, so the buffer holds bids first.
                    if !bid && out.get(Key::SmallB) != Scalar::Levels {
                        return None;
                    }
                    self.level_array(levels, spec, bid)?;
                    Scalar::Levels
                }
                _ => self.scalar()?,
            };
            if let Some(slot) = Key::of(key) {
                let cell = &mut out.vals[slot as usize];
                if *cell != Scalar::Absent {
                    return None;
                }
                *cell = value;
            }
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
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
    if kind == Stream::PartialDepth {
        return None;
    }
    let (id, spec) = reg.symbol(ctx.venue, symbol)?;
    sc.literal(DATA_HEAD)?;
    let mut payload = Payload::EMPTY;
    if kind == Stream::Depth {
        sink.levels.clear();
        sc.payload(&mut payload, Some((&mut *sink.levels, spec)))?;
    } else {
        sc.payload(&mut payload, None)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &[u8]) -> Option<Scalar<'_>> {
        let mut sc = Scanner { buf: text, pos: 0 };
        let v = sc.scalar()?;
        (sc.pos == text.len()).then_some(v)
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        assert_eq!(scalar(b"0"), Some(Scalar::Uint(0)));
        assert_eq!(
            scalar(b"1723161255343"),
            Some(Scalar::Uint(1_723_161_255_343))
        );
        assert_eq!(
            scalar(b"18446744073709551615"),
            Some(Scalar::Uint(u64::MAX))
        );
        assert_eq!(scalar(b"18446744073709551616"), Some(Scalar::OtherNumber));
        assert_eq!(scalar(b"-1"), Some(Scalar::OtherNumber));
        assert_eq!(scalar(b"-0"), Some(Scalar::OtherNumber));
        assert_eq!(scalar(b"1.5"), Some(Scalar::OtherNumber));
        assert_eq!(scalar(b"1e3"), Some(Scalar::OtherNumber));
        assert_eq!(scalar(b"1E+3"), Some(Scalar::OtherNumber));
        for bad in [&b"01"[..], b"-", b"1.", b".5", b"1e", b"1e+", b"+1", b"--1"] {
            assert_eq!(scalar(bad), None, "{:?}", std::str::from_utf8(bad));
        }
    }

    proptest::proptest! {
        #[test]
        fn special_bytes_are_found_in_any_word(bytes in proptest::prelude::any::<[u8; 8]>()) {
            let naive = bytes.iter().any(|&c| matches!(c, b'"' | b'\\' | 0..=0x1f | 0x7f..=0xff));
            proptest::prop_assert_eq!(special_byte(u64::from_le_bytes(bytes)), naive);
        }

        #[test]
        fn special_bytes_in_plain_words(
            plain in proptest::collection::vec(0x20u8..0x7f, 8),
            at in 0usize..8,
            special in proptest::sample::select(vec![b'"', b'\\', 0, 0x1f, 0x7f, 0x80, 0xff]),
        ) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&plain);
            let clean = !bytes.iter().any(|&c| c == b'"' || c == b'\\');
            proptest::prop_assert_eq!(special_byte(u64::from_le_bytes(bytes)), !clean);
            bytes[at] = special;
            proptest::prop_assert!(special_byte(u64::from_le_bytes(bytes)));
        }
    }

    #[test]
    fn strings_and_literals() {
        assert_eq!(scalar(br#""61837.63""#), Some(Scalar::Str(b"61837.63")));
        assert_eq!(scalar(br#""""#), Some(Scalar::Str(b"")));
        assert_eq!(scalar(b"true"), Some(Scalar::Bool(true)));
        assert_eq!(scalar(b"false"), Some(Scalar::Bool(false)));
        assert_eq!(scalar(b"null"), Some(Scalar::Null));
        for bad in [
            &br#""a\"b""#[..],
            b"\"a\x01\"",
            "\"é\"".as_bytes(),
            b"\"abc",
            b"tru",
            b"nul",
            b"[1]",
            b"{}",
        ] {
            assert_eq!(scalar(bad), None, "{bad:?}");
        }
    }
}
