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

use crate::decimal::pow10;
use crate::event::{EventFlags, EventKind, Level, MarketEvent};
use crate::instrument::InstrumentSpec;

use super::binance::{Stream, parse_stream_name};
use super::levels::{LevelBuf, emit_split};
use super::resolve::Resolver;
use super::scaled::{self, leading_digits, leading_digits_value, splat};
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

/// The high bit of every byte of a string word that ends the plain run: `"`, `\`, a control
/// character, DEL or a non-ASCII byte. Exact up to and including the lowest flagged byte, so
/// `trailing_zeros / 8` is the first such byte's index; bytes above it may be flagged falsely.
#[inline]
fn special_bytes(word: u64) -> u64 {
    const HIGH: u64 = splat(0x80);
    // A zero byte in `x` sets its high bit in `(x - 0x01…) & !x`. A borrow only starts at a
    // byte below the subtrahend and only moves up, so no byte below the first true hit is
    // flagged (the same holds for the `< 0x20` test).
    let zero_bytes = |x: u64| x.wrapping_sub(splat(0x01)) & !x & HIGH;
    let below_space = word.wrapping_sub(splat(0x20)) & !word & HIGH;
    (word & HIGH)
        | below_space
        | zero_bytes(word ^ splat(b'"'))
        | zero_bytes(word ^ splat(b'\\'))
        | zero_bytes(word ^ splat(0x7f))
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

    /// The eight bytes from `at` as a little-endian word; bytes past the end read as zero
    /// (a control character, and no digit, so neither a string nor a number runs into them).
    #[inline]
    fn word_at(&self, at: usize) -> u64 {
        if let Some(chunk) = self.buf.get(at..).and_then(|r| r.first_chunk::<8>()) {
            return u64::from_le_bytes(*chunk);
        }
        // Near the end: the buffer's last word, shifted down so that `at` is its first byte.
        match self.buf.last_chunk::<8>() {
            Some(last) if at < self.buf.len() => {
                u64::from_le_bytes(*last) >> (8 * (at + 8 - self.buf.len()))
            }
            _ => self.buf.get(at..).map_or(0, |rest| {
                rest.iter()
                    .rev()
                    .fold(0, |word, &c| word << 8 | u64::from(c))
            }),
        }
    }

    /// The rest of a string whose opening quote has been read, without the closing quote.
    #[inline(always)]
    fn string_body(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        // Eight bytes at a time up to the first that ends the plain run, which must be the
        // closing quote: escapes, control characters and non-ASCII go to the general path.
        loop {
            let special = special_bytes(self.word_at(self.pos));
            if special != 0 {
                self.pos += (special.trailing_zeros() / 8) as usize;
                break;
            }
            self.pos += 8;
        }
        self.byte(b'"')?;
        Some(&self.buf[start..self.pos - 1])
    }

    /// A key and its colon, `"<key>":`, as its slot (`None` for a key no message type reads).
    #[inline]
    fn key(&mut self) -> Option<Option<Key>> {
        // Most keys are one letter: `"x":` is checked in one word.
        let [quote, c, close, colon, ..] = self.word_at(self.pos).to_le_bytes();
        if (quote, close, colon) == (b'"', b'"', b':')
            && matches!(c, 0x20..=0x7e)
            && c != b'"'
            && c != b'\\'
        {
            self.pos += 4;
            return Some(Key::BY_LETTER[usize::from(c)]);
        }
        self.byte(b'"')?;
        let key = self.string_body()?;
        self.byte(b':')?;
        Some(Key::of(key))
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
    ///
    /// The usual value, an id or a time of up to 19 digits (below `u64::MAX`, so no check is
    /// needed), is read eight digits at a time; anything else goes digit by digit in
    /// [`Scanner::any_number`], which gives the exact answer.
    #[inline]
    fn number(&mut self) -> Option<Scalar<'a>> {
        const MAX_FAST_DIGITS: usize = 19;
        let start = self.pos;
        let (mut v, mut n) = (0u64, 0);
        loop {
            let word = self.word_at(start + n);
            let k = leading_digits(word);
            if n + k > MAX_FAST_DIGITS {
                return self.any_number();
            }
            if k < 8 {
                v = v * pow10(k as u8) as u64 + leading_digits_value(word, k);
                n += k;
                break;
            }
            v = v * 100_000_000 + leading_digits_value(word, 8);
            n += 8;
        }
        // No digit (a sign), a leading zero, a fraction or an exponent: the general case.
        let leading_zero = n > 1 && self.buf[start] == b'0';
        if n == 0 || leading_zero || matches!(self.buf.get(start + n), Some(b'.' | b'e' | b'E')) {
            return self.any_number();
        }
        self.pos = start + n;
        Some(Scalar::Uint(v))
    }

    /// [`Scanner::number`] one digit at a time, for every number.
    #[cold]
    fn any_number(&mut self) -> Option<Scalar<'a>> {
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
            let slot = self.key()?;
            let value = match (&mut depth, slot) {
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
            if let Some(slot) = slot {
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
        // Around the word-at-a-time path's limits: 8 and 16 digits, 19 (its last), 20.
        assert_eq!(scalar(b"12345678"), Some(Scalar::Uint(12_345_678)));
        assert_eq!(
            scalar(b"1234567890123456"),
            Some(Scalar::Uint(1_234_567_890_123_456))
        );
        assert_eq!(
            scalar(b"9999999999999999999"),
            Some(Scalar::Uint(9_999_999_999_999_999_999))
        );
        assert_eq!(
            scalar(b"10000000000000000000"),
            Some(Scalar::Uint(10_000_000_000_000_000_000))
        );
        assert_eq!(scalar(b"-1"), Some(Scalar::OtherNumber));
        assert_eq!(scalar(b"-0"), Some(Scalar::OtherNumber));
        assert_eq!(scalar(b"1.5"), Some(Scalar::OtherNumber));
        assert_eq!(scalar(b"1e3"), Some(Scalar::OtherNumber));
        assert_eq!(scalar(b"1E+3"), Some(Scalar::OtherNumber));
        for bad in [&b"01"[..], b"-", b"1.", b".5", b"1e", b"1e+", b"+1", b"--1"] {
            assert_eq!(scalar(bad), None, "{:?}", std::str::from_utf8(bad));
        }
    }

    #[test]
    fn words_past_the_end_read_as_zeros() {
        let sc = Scanner {
            buf: b"0123456789",
            pos: 0,
        };
        assert_eq!(sc.word_at(0), u64::from_le_bytes(*b"01234567"));
        assert_eq!(sc.word_at(3), u64::from_le_bytes(*b"3456789\0"));
        assert_eq!(sc.word_at(9), u64::from(b'9'));
        assert_eq!(sc.word_at(10), 0);
        assert_eq!(sc.word_at(11), 0);
        let short = Scanner {
            buf: b"abc",
            pos: 0,
        };
        assert_eq!(short.word_at(1), u64::from_le_bytes(*b"bc\0\0\0\0\0\0"));
        assert_eq!(short.word_at(3), 0);
    }

    #[test]
    fn one_letter_keys_take_the_word_path_exactly() {
        let key = |text: &[u8]| {
            let mut sc = Scanner { buf: text, pos: 0 };
            let slot = sc.key()?;
            Some((slot.map(|k| k as usize), sc.pos))
        };
        assert_eq!(key(br#""E":1"#), Some((Some(Key::BigE as usize), 4)));
        assert_eq!(key(br#""e":1"#), Some((None, 4)));
        assert_eq!(key(br#""pu":1"#), Some((Some(Key::Pu as usize), 5)));
        assert_eq!(key(br#""":1"#), Some((None, 3)));
        assert_eq!(key(br#""E":"#), Some((Some(Key::BigE as usize), 4)));
        for bad in [
            &br#""\":1"#[..],
            br#"""":1"#,
            b"\"\x01\":1",
            b"\"\xc3\xa9\":1",
            br#""E"1"#,
            br#""E""#,
            br#"E":1"#,
        ] {
            assert_eq!(key(bad), None, "{:?}", bad.escape_ascii().to_string());
        }
    }

    proptest::proptest! {
        #[test]
        fn numbers_read_by_word_as_by_digit(
            text in "-?[0-9]{0,22}(\\.[0-9]{0,3})?([eE][+-]?[0-9]{0,3})?[,}\\]\"a]{0,2}",
        ) {
            let mut fast = Scanner { buf: text.as_bytes(), pos: 0 };
            let mut slow = Scanner { buf: text.as_bytes(), pos: 0 };
            let got = fast.number();
            proptest::prop_assert_eq!(got, slow.any_number());
            if got.is_some() {
                proptest::prop_assert_eq!(fast.pos, slow.pos);
            }
        }

        #[test]
        fn the_first_special_byte_is_found_in_any_word(
            bytes in proptest::prelude::any::<[u8; 8]>(),
        ) {
            let naive = bytes
                .iter()
                .position(|&c| matches!(c, b'"' | b'\\' | 0..=0x1f | 0x7f..=0xff))
                .unwrap_or(8);
            let found = special_bytes(u64::from_le_bytes(bytes)).trailing_zeros() / 8;
            proptest::prop_assert_eq!(found as usize, naive);
        }

        #[test]
        fn special_bytes_in_plain_words(
            plain in proptest::collection::vec(0x20u8..0x7f, 8),
            at in 0usize..8,
            special in proptest::sample::select(vec![b'"', b'\\', 0, 0x1f, 0x7f, 0x80, 0xff]),
        ) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&plain);
            let first = bytes.iter().position(|&c| c == b'"' || c == b'\\').unwrap_or(8);
            let found = |b: [u8; 8]| (special_bytes(u64::from_le_bytes(b)).trailing_zeros() / 8) as usize;
            proptest::prop_assert_eq!(found(bytes), first);
            bytes[at] = special;
            proptest::prop_assert_eq!(found(bytes), first.min(at));
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
