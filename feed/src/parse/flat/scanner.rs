//! The byte-level reader of the strict scanner: the JSON subset of the module above, read left
//! to right, a 64-bit word at a time where it can be. Every method returns `None` on anything
//! outside the subset, and the caller hands the frame to the general path.
//!
//! The word tricks each flag bytes with a few arithmetic operations on a little-endian word;
//! they are exact up to the first flagged byte (a carry or borrow only moves up from a byte that
//! is itself flagged), so `trailing_zeros / 8` finds that byte. Unit and property tests pin each
//! one to its byte-by-byte definition.

use pinion_core::decimal::{Px, Qty, pow10};
use pinion_core::event::Level;
use pinion_core::instrument::InstrumentSpec;

use super::super::levels::{LevelBuf, ZeroQty, in_range};
use super::super::scaled::{self, leading_digits, leading_digits_value, splat};
use super::{Key, Payload};

/// One scalar value as the scanner saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scalar<'a> {
    /// The key did not appear.
    Absent,
    /// A string's bytes between the quotes (printable ASCII, no escapes).
    Str(&'a [u8]),
    /// A non-negative integer without fraction or exponent that fits `u64`.
    Uint(u64),
    /// Any other number (negative, fractional, exponent, too large): never what a field needs.
    OtherNumber,
    /// `true`. (Two payload-free variants rather than `Bool(bool)`: a byte at offset 1 made
    /// every copy of a `Scalar` move bytes 1–7 with overlapping loads and stores, which stall
    /// store forwarding on the hot path.)
    True,
    /// `false`.
    False,
    /// `null`.
    Null,
    /// A depth update's level array, already parsed into the level buffer.
    Levels,
    /// A decimal string under a price or quantity key, already converted at that key's scale
    /// (see [`Key::decimals`]); a string the one-pass read does not take stays a `Str`.
    Dec(i64),
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
pub(super) struct Scanner<'a> {
    /// The frame.
    pub(super) buf: &'a [u8],
    /// The next byte to read.
    pub(super) pos: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    #[inline]
    pub(super) fn byte(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.pos += 1)
    }

    #[inline]
    pub(super) fn literal(&mut self, want: &[u8]) -> Option<()> {
        let end = self.pos + want.len();
        (self.buf.get(self.pos..end)? == want).then(|| self.pos = end)
    }

    /// The eight bytes from `at` as a little-endian word; bytes past the end read as zero
    /// (a control character, and no digit, so neither a string nor a number runs into them).
    #[inline(always)]
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
    pub(super) fn string_body(&mut self) -> Option<&'a [u8]> {
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
    pub(super) fn scalar(&mut self) -> Option<Scalar<'a>> {
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                self.string_body().map(Scalar::Str)
            }
            b't' => self.literal(b"true").map(|()| Scalar::True),
            b'f' => self.literal(b"false").map(|()| Scalar::False),
            b'n' => self.literal(b"null").map(|()| Scalar::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// The next two bytes are `want`: consumes them.
    #[inline]
    fn pair(&mut self, want: [u8; 2]) -> Option<()> {
        let got = self.buf.get(self.pos..)?.first_chunk::<2>()?;
        (*got == want).then(|| self.pos += 2)
    }

    /// The body of a decimal string whose opening quote has been read, converted at `decimals`
    /// in the same pass that finds its end, for the shape the venues send: one to seven integer
    /// digits, then either the closing quote or `.`, one to eight fraction digits and the
    /// closing quote. Moves past the closing quote.
    ///
    /// `None`, with the cursor unmoved, for any other string and for a value [`scaled::scaled`]
    /// does not give; the caller then reads the string the general way. For the strings it
    /// accepts the value is exactly `scaled`'s (a property test holds the two together).
    ///
    /// Why: a depth message is mostly these strings. Finding a string's end and then reading
    /// its digits again cost twice the word loads and a second pass of checks; here the integer
    /// and the fraction are each one word, and the checks that find the end are the digit checks.
    #[inline(always)]
    fn quoted_decimal(&mut self, decimals: u8) -> Option<i64> {
        let at = self.pos;
        let int_word = self.word_at(at);
        let n = leading_digits(int_word);
        if n == 0 || n == 8 || n + usize::from(decimals) > 18 {
            return None;
        }
        // Below 10^18 from here (as in `scaled`): nothing overflows.
        let int = leading_digits_value(int_word, n) * pow10(decimals) as u64;
        match (int_word >> (8 * n)) as u8 {
            b'"' => {
                self.pos = at + n + 1;
                return Some(int as i64);
            }
            b'.' => {}
            _ => return None,
        }
        let frac_at = at + n + 1;
        let frac_word = self.word_at(frac_at);
        let f = leading_digits(frac_word);
        let close = if f < 8 {
            (frac_word >> (8 * f)) as u8
        } else {
            *self.buf.get(frac_at + 8)?
        };
        if f == 0 || close != b'"' {
            return None;
        }
        // The f digits as 0–9, the bytes after them cleared (missing digits are zeros).
        let keep = u64::MAX.checked_shr(64 - 8 * f as u32).unwrap_or(0);
        let digits = (frac_word ^ splat(b'0')) & keep;
        let frac = scaled::fraction_value(digits, decimals)?;
        self.pos = frac_at + f + 1;
        Some((int + frac) as i64)
    }

    /// A decimal string's body (opening quote read) at `decimals`: the one-pass read, else the
    /// string and then [`scaled`]'s general route.
    #[inline(always)]
    fn decimal_body(&mut self, decimals: u8) -> Option<i64> {
        if let Some(v) = self.quoted_decimal(decimals) {
            return Some(v);
        }
        let body = self.string_body()?;
        scaled::value(body, decimals).ok()
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
        self.pair(*b"[\"")?;
        loop {
            let px = self.decimal_body(spec.price_decimals)?;
            self.pair(*b",\"")?;
            let qty = self.decimal_body(spec.qty_decimals)?;
            let level = Level {
                px: Px(px),
                qty: Qty(qty),
            };
            // Out of range is the general path's error.
            if !in_range(level, ZeroQty::Deletes) {
                return None;
            }
            levels.push(bid, level);
            // `],["` goes on to the next level's price, `]]` ends the side.
            let [a, b, c, d, ..] = self.word_at(self.pos).to_le_bytes();
            match [a, b, c, d] {
                [b']', b',', b'[', b'"'] => self.pos += 4,
                [b']', b']', ..] => {
                    self.pos += 2;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An object of scalar values, keeping the known keys in `out` (all absent on entry;
    /// filled in place, as returning the slots by value costs a copy). A string under a price
    /// or quantity key is converted at `spec`'s scale as it is read. With `levels` (a depth
    /// update), the values of `b` and then `a` must instead be level arrays, parsed into the
    /// buffer, bids first.
    pub(super) fn payload(
        &mut self,
        out: &mut Payload<'a>,
        spec: &InstrumentSpec,
        mut levels: Option<&mut LevelBuf>,
    ) -> Option<()> {
        self.byte(b'{')?;
        if self.byte(b'}').is_some() {
            return Some(());
        }
        loop {
            let slot = self.key()?;
            let value = match (&mut levels, slot) {
                (Some(levels), Some(side @ (Key::SmallB | Key::SmallA))) => {
                    let bid = matches!(side, Key::SmallB);
                    // Asks after bids only, so the buffer holds bids first.
                    if !bid && out.get(Key::SmallB) != Scalar::Levels {
                        return None;
                    }
                    self.level_array(levels, spec, bid)?;
                    Scalar::Levels
                }
                (_, Some(key)) if self.peek() == Some(b'"') => match key.decimals(spec) {
                    Some(decimals) => {
                        self.pos += 1;
                        match self.quoted_decimal(decimals) {
                            Some(v) => Scalar::Dec(v),
                            None => Scalar::Str(self.string_body()?),
                        }
                    }
                    None => self.scalar()?,
                },
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

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_core::decimal::parse_scaled;

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

    /// The reference for [`Scanner::decimal_body`]: find the string's end, then convert.
    fn decimal_by_string(text: &[u8], decimals: u8) -> Option<(i64, usize)> {
        let mut sc = Scanner { buf: text, pos: 0 };
        let body = sc.string_body()?;
        Some((parse_scaled(body, decimals).ok()?, sc.pos))
    }

    fn decimal_in_one_pass(text: &[u8], decimals: u8) -> Option<(i64, usize)> {
        let mut sc = Scanner { buf: text, pos: 0 };
        let v = sc.decimal_body(decimals)?;
        Some((v, sc.pos))
    }

    #[test]
    fn decimals_in_one_pass() {
        let one = |text: &[u8], d| {
            let mut sc = Scanner { buf: text, pos: 0 };
            sc.quoted_decimal(d).map(|v| (v, sc.pos))
        };
        assert_eq!(one(br#"61837.63000000","#, 2), Some((6_183_763, 15)));
        assert_eq!(one(br#"0.00100000"]"#, 5), Some((100, 11)));
        assert_eq!(one(br#"61800.20""#, 1), Some((618_002, 9)));
        assert_eq!(one(br#"7""#, 3), Some((7_000, 2)));
        assert_eq!(
            one(br#"1234567.12345678""#, 8),
            Some((123_456_712_345_678, 17))
        );
        // Shapes left to the general route, which still reads them (or rejects them).
        for text in [
            &br#"12345678.5""#[..],
            br#"1.123456789""#,
            br#"61837.63000001""#,
            br#".5""#,
            br#"5.""#,
            br#"-1.5""#,
            br#"1.5"#,
            br#"1.5x""#,
            br#"1e5""#,
        ] {
            assert_eq!(one(text, 2), None, "{:?}", text.escape_ascii().to_string());
        }
        assert_eq!(
            decimal_in_one_pass(br#"12345678.5""#, 2),
            Some((1_234_567_850, 11))
        );
        assert_eq!(
            decimal_in_one_pass(br#"1.123456789""#, 9),
            Some((1_123_456_789, 12))
        );
        assert_eq!(decimal_in_one_pass(br#"-1.5""#, 2), Some((-150, 5)));
        assert_eq!(decimal_in_one_pass(br#"61837.63000001""#, 2), None);
    }

    proptest::proptest! {
        #[test]
        fn decimals_in_one_pass_as_by_string(
            text in "-?[0-9]{0,10}(\\.[0-9]{0,10})?[\"x.]?[\"\\],]{0,2}",
            d in 0u8..=19,
        ) {
            proptest::prop_assert_eq!(
                decimal_in_one_pass(text.as_bytes(), d),
                decimal_by_string(text.as_bytes(), d)
            );
        }

        #[test]
        fn decimals_in_one_pass_on_any_bytes(
            bytes in proptest::collection::vec(
                proptest::sample::select(b"0123456789.\"-e]x\\".to_vec()), 0..24),
            d in 0u8..=12,
        ) {
            proptest::prop_assert_eq!(
                decimal_in_one_pass(&bytes, d),
                decimal_by_string(&bytes, d)
            );
        }
    }

    #[test]
    fn strings_and_literals() {
        assert_eq!(scalar(br#""61837.63""#), Some(Scalar::Str(b"61837.63")));
        assert_eq!(scalar(br#""""#), Some(Scalar::Str(b"")));
        assert_eq!(scalar(b"true"), Some(Scalar::True));
        assert_eq!(scalar(b"false"), Some(Scalar::False));
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
