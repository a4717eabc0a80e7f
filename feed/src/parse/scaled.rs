//! A fast path for the exchanges' usual decimal strings, in front of [`crate::decimal`].
//!
//! Why: a depth message is mostly price and quantity strings, and the general
//! [`parse_scaled`](crate::decimal::parse_scaled) tracks significant digits, signs and overflow
//! for every digit. The strings the venues send are one plain shape, `digits.digits` (Binance
//! Spot fixed at eight decimals: `"61837.63000000"`), and for that shape the work is simpler:
//! check that the digits past the instrument's scale are all `0`, then read the digits that
//! count, eight at a time when there are eight.
//!
//! Invariant: [`scaled`] returns `Some` only for strings with no sign, at least one integer
//! digit, an optional `.` followed by at least one digit, and at most 18 integer digits plus
//! `decimals` (so the result fits in `i64` without any overflow check); for those it returns
//! exactly what `parse_scaled` returns. Everything else is `None`, and the callers go to
//! [`Px::parse`]/[`Qty::parse`], which give the value or the proper [`DecimalError`]. A unit
//! test and a property test compare the two on both accepted and rejected strings.

use crate::decimal::{DecimalError, Px, Qty, pow10};

/// All eight bytes of a little-endian word are ASCII digits.
#[inline]
fn eight_digits(word: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    // A digit byte is 0x3_ in its high nibble, and adding 6 keeps it there (0x39 + 6 = 0x3f).
    (word & HIGH) | ((word.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4)
        == 0x3333_3333_3333_3333
}

/// The value of eight ASCII digits (first digit in the lowest byte), combined pairwise in three
/// multiplications: 2 digits per byte pair, 4 per 16-bit pair, 8 in the result.
#[inline]
fn eight_digit_value(word: u64) -> u64 {
    let w = word & 0x0F0F_0F0F_0F0F_0F0F;
    let w = (w.wrapping_mul(10 << 8 | 1)) >> 8;
    let w = ((w & 0x00FF_00FF_00FF_00FF).wrapping_mul(100 << 16 | 1)) >> 16;
    ((w & 0x0000_FFFF_0000_FFFF).wrapping_mul(10_000 << 32 | 1)) >> 32
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
    let decimals = usize::from(decimals);
    let int_len = s.iter().position(|&c| c == b'.').unwrap_or(s.len());
    if int_len == 0 || int_len + decimals > 18 {
        return None;
    }
    let (int, frac) = s.split_at(int_len);
    let acc = push_digits(0, int)?;
    let Some((_dot, frac)) = frac.split_first() else {
        return Some((acc * pow10(decimals as u8) as u64) as i64);
    };
    if frac.is_empty() {
        return None;
    }
    let used = frac.len().min(decimals);
    let (counted, beyond) = frac.split_at(used);
    if beyond.iter().any(|&c| c != b'0') {
        return None;
    }
    let acc = push_digits(acc, counted)?;
    // At most 18 digits in all: below 10^18, so the scaling and the cast cannot overflow.
    Some((acc * pow10((decimals - used) as u8) as u64) as i64)
}

/// A price at `decimals`: the fast path, else [`Px::parse`] for the value or the error.
#[inline]
pub(super) fn px(s: &[u8], decimals: u8) -> Result<Px, DecimalError> {
    match scaled(s, decimals) {
        Some(v) => Ok(Px(v)),
        None => Px::parse(s, decimals),
    }
}

/// A quantity at `decimals`: the fast path, else [`Qty::parse`] for the value or the error.
#[inline]
pub(super) fn qty(s: &[u8], decimals: u8) -> Result<Qty, DecimalError> {
    match scaled(s, decimals) {
        Some(v) => Ok(Qty(v)),
        None => Qty::parse(s, decimals),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decimal::parse_scaled;
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

    proptest! {
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
