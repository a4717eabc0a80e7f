//! A fast path for the exchanges' usual decimal strings, in front of [`pinion_core::decimal`].
//!
//! Why: a depth message is mostly price and quantity strings, and the general
//! [`parse_scaled`](pinion_core::decimal::parse_scaled) tracks significant digits, signs and overflow
//! one digit at a time. The strings the venues send are one plain shape, `digits.digits` with at
//! most eight decimals (Binance Spot always eight: `"61837.63000000"`). For that shape the
//! fraction is read as one 64-bit word: eight digits checked and converted with a few word
//! operations, and the digits past the instrument's scale checked to be zeros with one shift.
//! An integer part of up to seven digits is read from one word the same way. The word helpers
//! are shared with the strict scanner ([`super::flat`]), which reads ids and times with them.
//!
//! Invariant: [`scaled`] returns `Some` only for strings with no sign, at least one integer
//! digit, an optional `.` followed by at least one digit, and at most 18 integer digits and
//! `decimals` together (so the result is below 10^18 and no step can overflow); for those it
//! returns exactly what `parse_scaled` returns. Everything else is `None`, and the callers go to
//! [`Px::parse`]/[`Qty::parse`], which give the value or the proper [`DecimalError`]. Unit and
//! property tests compare the two on accepted and rejected strings.

use pinion_core::decimal::{DecimalError, Px, Qty, parse_scaled, pow10};

/// The word whose every byte is `b`.
pub(super) const fn splat(b: u8) -> u64 {
    u64::from_le_bytes([b; 8])
}

/// All eight bytes of a little-endian word are ASCII digits.
#[inline]
fn eight_digits(word: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    // A digit byte is 0x3_ in its high nibble, and adding 6 keeps it there (0x39 + 6 = 0x3f).
    (word & HIGH) | ((word.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4)
        == 0x3333_3333_3333_3333
}

/// How many ASCII digits a little-endian word starts with (8 when all are).
///
/// Each byte is XORed with `'0'`, so digits become 0–9, and a byte is flagged when that is
/// above 9 (adding 0x76 reaches the high bit) or has the high bit already. A carry out of a
/// byte only happens for a non-digit and only moves up, so the lowest flag is exact.
#[inline]
pub(super) fn leading_digits(word: u64) -> usize {
    let x = word ^ splat(b'0');
    let non_digit = (x.wrapping_add(splat(0x76)) | x) & splat(0x80);
    (non_digit.trailing_zeros() / 8) as usize
}

/// The value of the first `n` (at most 8) ASCII digits of a little-endian word; the bytes after
/// them are ignored.
#[inline]
pub(super) fn leading_digits_value(word: u64, n: usize) -> u64 {
    debug_assert!(n <= 8);
    // The `n` digits shifted to the end of the word, behind zero bytes (leading zeros).
    eight_digit_value(word.checked_shl(64 - 8 * n as u32).unwrap_or(0))
}

/// The value of eight digits, one per byte (ASCII or already 0–9; first digit in the lowest
/// byte), combined pairwise in three multiplications: 2 digits per byte pair, 4 per 16-bit pair,
/// 8 in the result.
#[inline]
fn eight_digit_value(word: u64) -> u64 {
    let w = word & 0x0F0F_0F0F_0F0F_0F0F;
    let w = (w.wrapping_mul(10 << 8 | 1)) >> 8;
    let w = ((w & 0x00FF_00FF_00FF_00FF).wrapping_mul(100 << 16 | 1)) >> 16;
    ((w & 0x0000_FFFF_0000_FFFF).wrapping_mul(10_000 << 32 | 1)) >> 32
}

/// Up to eight bytes as a little-endian word, the missing high bytes `'0'`. Loads of four, two
/// and one byte instead of a byte loop, which the compiler turns into a call to memcpy.
#[inline]
fn zero_padded_word(bytes: &[u8]) -> u64 {
    if let Some(eight) = bytes.first_chunk::<8>() {
        return u64::from_le_bytes(*eight);
    }
    let n = bytes.len();
    let (mut word, mut at) = (0u64, 0);
    if let Some(four) = bytes.first_chunk::<4>() {
        word = u64::from(u32::from_le_bytes(*four));
        at = 4;
    }
    if let Some(two) = bytes[at..].first_chunk::<2>() {
        word |= u64::from(u16::from_le_bytes(*two)) << (8 * at);
        at += 2;
    }
    if let Some(&one) = bytes.get(at) {
        word |= u64::from(one) << (8 * at);
    }
    // n < 8 here, so the shift is in range.
    word | splat(b'0') << (8 * n)
}

/// Appends ASCII digits to `acc`, or `None` at a non-digit.
#[inline]
fn push_digits(mut acc: u64, mut digits: &[u8]) -> Option<u64> {
    while let Some((chunk, rest)) = digits.split_first_chunk::<8>() {
        let word = u64::from_le_bytes(*chunk);
        if !eight_digits(word) {
            return None;
        }
        acc = acc * 100_000_000 + eight_digit_value(word);
        digits = rest;
    }
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        acc = acc * 10 + u64::from(d);
    }
    Some(acc)
}

/// `s` as a count of `10^-decimals` units, for the plain shape in the module docs; `None`
/// otherwise (including every string `parse_scaled` rejects).
#[inline]
pub(super) fn scaled(s: &[u8], decimals: u8) -> Option<i64> {
    let d = usize::from(decimals);
    // The integer digits, up to the dot: from one word when they end inside it.
    let (mut int, mut i) = (0u64, 0);
    let first = s.first_chunk::<8>().map(|w| u64::from_le_bytes(*w));
    match first.map(|w| (w, leading_digits(w))) {
        Some((word, n)) if n < 8 => (int, i) = (leading_digits_value(word, n), n),
        _ => {
            while let Some(&c) = s.get(i) {
                let digit = c.wrapping_sub(b'0');
                if digit > 9 {
                    break;
                }
                int = int.wrapping_mul(10).wrapping_add(u64::from(digit));
                i += 1;
            }
        }
    }
    if i == 0 || i + d > 18 {
        return None;
    }
    // From here the value is below 10^18: no step can overflow.
    let scale = pow10(decimals) as u64;
    let frac = match s.get(i) {
        None => return Some((int * scale) as i64),
        Some(b'.') => &s[i + 1..],
        Some(_) => return None,
    };
    if frac.is_empty() {
        return None;
    }
    if frac.len() > 8 {
        return long_fraction(int, frac, d);
    }
    // Up to eight fraction digits, right-padded with zeros to a word: its value is the
    // fraction's first eight decimals.
    let word = zero_padded_word(frac);
    if !eight_digits(word) {
        return None;
    }
    let frac_value = fraction_value(word - splat(b'0'), decimals)?;
    Some((int * scale + frac_value) as i64)
}

/// The value at `decimals` of a fraction's first eight digits, given one per byte as 0–9 (first
/// digit in the lowest byte, missing digits 0); `None` if a digit past the scale is not zero.
#[inline(always)]
pub(super) fn fraction_value(digits: u64, decimals: u8) -> Option<u64> {
    if decimals >= 8 {
        return Some(eight_digit_value(digits) * pow10(decimals - 8) as u64);
    }
    // Digits past the scale must be zeros; the first `decimals` are shifted to the end of the
    // word, behind zeros, so the word's value is theirs.
    let kept_bits = 8 * u32::from(decimals);
    if digits.checked_shr(kept_bits).unwrap_or(0) != 0 {
        return None;
    }
    Some(eight_digit_value(
        digits.checked_shl(64 - kept_bits).unwrap_or(0),
    ))
}

/// The value for more than eight fraction digits: those past the scale must be zeros, the rest
/// are appended eight at a time.
#[cold]
fn long_fraction(int: u64, frac: &[u8], d: usize) -> Option<i64> {
    let used = frac.len().min(d);
    let (counted, beyond) = frac.split_at(used);
    if beyond.iter().any(|&c| c != b'0') {
        return None;
    }
    let acc = push_digits(int, counted)?;
    Some((acc * pow10((d - used) as u8) as u64) as i64)
}

/// `s` at `decimals`: the fast path, else [`parse_scaled`] for the value or the error.
#[inline]
pub(super) fn value(s: &[u8], decimals: u8) -> Result<i64, DecimalError> {
    match scaled(s, decimals) {
        Some(v) => Ok(v),
        None => parse_scaled(s, decimals),
    }
}

/// A price at `decimals` (see [`value`]).
#[inline]
pub(super) fn px(s: &[u8], decimals: u8) -> Result<Px, DecimalError> {
    value(s, decimals).map(Px)
}

/// A quantity at `decimals` (see [`value`]).
#[inline]
pub(super) fn qty(s: &[u8], decimals: u8) -> Result<Qty, DecimalError> {
    value(s, decimals).map(Qty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_core::decimal::parse_scaled;
    use proptest::prelude::*;

    /// Whenever the fast path answers, it answers as the general parser does.
    fn agrees(s: &[u8], decimals: u8) {
        if let Some(v) = scaled(s, decimals) {
            assert_eq!(
                parse_scaled(s, decimals),
                Ok(v),
                "{:?} at {decimals}",
                s.escape_ascii()
            );
        }
    }

    #[test]
    fn exchange_strings() {
        assert_eq!(scaled(b"61837.63000000", 2), Some(6_183_763));
        assert_eq!(scaled(b"3.78826000", 8), Some(378_826_000));
        assert_eq!(scaled(b"0.00000000", 8), Some(0));
        assert_eq!(scaled(b"61800.20", 1), Some(618_002));
        assert_eq!(scaled(b"2.507", 3), Some(2_507));
        assert_eq!(scaled(b"1923.5", 2), Some(192_350));
        assert_eq!(scaled(b"10", 0), Some(10));
        assert_eq!(scaled(b"12345678.12345678", 8), Some(1_234_567_812_345_678));
        assert_eq!(scaled(b"0.123456789", 9), Some(123_456_789));
    }

    #[test]
    fn unusual_strings_fall_back() {
        for (s, d) in [
            (&b""[..], 2),
            (b"-1.5", 2),
            (b".5", 2),
            (b"5.", 2),
            (b"1e5", 2),
            (b"61837.63000001", 2),
            (b"1.2.3", 2),
            (b"12:45678.1", 2),
            (b"1234567890123456789", 0),
            (b"1.5", 18),
            (b"1.5", 19),
            (b"1.12345/78", 8),
            (b"1.1234567:", 8),
        ] {
            assert_eq!(scaled(s, d), None, "{:?} at {d}", s.escape_ascii());
        }
    }

    #[test]
    fn short_words_are_padded_with_zeros() {
        assert_eq!(zero_padded_word(b""), splat(b'0'));
        assert_eq!(zero_padded_word(b"1"), u64::from_le_bytes(*b"10000000"));
        assert_eq!(
            zero_padded_word(b"1234567"),
            u64::from_le_bytes(*b"12345670")
        );
        assert_eq!(
            zero_padded_word(b"123456789"),
            u64::from_le_bytes(*b"12345678")
        );
    }

    proptest! {
        #[test]
        fn leading_digits_of_any_word(bytes in any::<[u8; 8]>()) {
            let n = bytes.iter().position(|c| !c.is_ascii_digit()).unwrap_or(8);
            let word = u64::from_le_bytes(bytes);
            prop_assert_eq!(leading_digits(word), n);
            let value = bytes[..n].iter().fold(0, |v, &c| v * 10 + u64::from(c - b'0'));
            prop_assert_eq!(leading_digits_value(word, n), value);
        }

        #[test]
        fn padded_words_of_any_length(bytes in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut padded = [b'0'; 8];
            padded[..bytes.len()].copy_from_slice(&bytes);
            prop_assert_eq!(zero_padded_word(&bytes), u64::from_le_bytes(padded));
        }

        #[test]
        fn agrees_with_parse_scaled(
            s in "[0-9]{0,20}(\\.[0-9]{0,20})?",
            d in 0u8..=20,
        ) {
            agrees(s.as_bytes(), d);
        }

        #[test]
        fn agrees_on_any_bytes(s in proptest::collection::vec(any::<u8>(), 0..24), d in 0u8..=20) {
            agrees(&s, d);
        }

        #[test]
        fn plain_strings_take_the_fast_path(int in 0u64..1_000_000_000, frac in "[0-9]{1,8}") {
            let s = format!("{int}.{frac}");
            prop_assert_eq!(scaled(s.as_bytes(), 8).map(Ok), Some(parse_scaled(s.as_bytes(), 8)));
        }
    }
}
