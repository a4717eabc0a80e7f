//! Exact fixed-point prices and quantities.
//!
//! Exchanges send prices and quantities as decimal strings (`"61837.63000000"`). pinion keeps them
//! as scaled integers: a [`Px`] counts units of `10^-price_decimals` of its instrument, a [`Qty`]
//! counts units of `10^-qty_decimals`. The number of decimals comes from the instrument's tick
//! and step size (a tick of `0.01` gives two decimals), so for the usual power-of-ten tick a `Px`
//! is exactly a count of ticks; a tick such as `0.5` is `5` units of one decimal, and the book
//! divides by it.
//!
//! Parsing is exact or an error: trailing zeros beyond the instrument's precision are accepted
//! (`"61837.63000000"` at two decimals), a non-zero digit beyond it is [`DecimalError::TooPrecise`],
//! and exponents, signs other than a leading `-`, empty strings and overflow are rejected.
//! Formatting writes the exchange's plain decimal form into a caller's buffer, without
//! allocating, for order encoding.

use std::fmt;

/// The largest number of decimals an instrument may use. `10^18` still fits in an `i64`.
pub const MAX_DECIMALS: u8 = 18;

/// Why a decimal string could not be turned into a scaled integer. Small and `Copy` so the hot
/// path can count it and move on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// The input was empty.
    #[error("empty decimal")]
    Empty,
    /// A byte that is not part of a plain decimal (an exponent, a second dot, a letter, `+`…).
    #[error("invalid character in decimal at byte {0}")]
    InvalidChar(u8),
    /// A dot with no digits on one side (`"1."`, `".5"`), or a lone `-`.
    #[error("malformed decimal")]
    Malformed,
    /// A non-zero digit beyond the instrument's number of decimals.
    #[error("more decimals than the instrument allows ({0})")]
    TooPrecise(u8),
    /// The value does not fit in an `i64` at this scale.
    #[error("decimal out of range")]
    Overflow,
    /// The instrument's scale itself is out of range (more than [`MAX_DECIMALS`]).
    #[error("scale of {0} decimals is not supported")]
    BadScale(u8),
}

const POW10: [i64; 19] = {
    let mut t = [1i64; 19];
    let mut i = 1;
    while i < 19 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// `10^decimals` as an `i64`, for `decimals <= 18`.
#[inline]
pub fn pow10(decimals: u8) -> i64 {
    POW10[decimals as usize]
}

/// Parses an exchange decimal string into an integer count of `10^-decimals` units.
///
/// Accepts `-?digits(.digits)?`. Digits past `decimals` must be zeros.
#[inline]
pub fn parse_scaled(s: &[u8], decimals: u8) -> Result<i64, DecimalError> {
    if decimals > MAX_DECIMALS {
        return Err(DecimalError::BadScale(decimals));
    }
    let (neg, digits) = match s.split_first() {
        None => return Err(DecimalError::Empty),
        Some((b'-', rest)) => (true, rest),
        Some(_) => (false, s),
    };
    if digits.is_empty() {
        return Err(DecimalError::Malformed);
    }
    // Accumulate in u64; up to 19 significant digits cannot overflow u64, and the final range
    // check against i64 catches the rest.
    let mut acc: u64 = 0;
    let mut sig_digits: u32 = 0;
    let mut i = 0;
    let mut int_digits = 0usize;
    while i < digits.len() {
        let c = digits[i];
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if acc != 0 || d != 0 {
            sig_digits += 1;
        }
        acc = acc.wrapping_mul(10).wrapping_add(u64::from(d));
        i += 1;
        int_digits += 1;
    }
    if int_digits == 0 {
        return match digits[0] {
            b'.' => Err(DecimalError::Malformed),
            c => Err(DecimalError::InvalidChar(c)),
        };
    }
    let mut frac_used: u8 = 0;
    if i < digits.len() {
        if digits[i] != b'.' {
            return Err(DecimalError::InvalidChar(digits[i]));
        }
        i += 1;
        if i == digits.len() {
            return Err(DecimalError::Malformed);
        }
        while i < digits.len() {
            let c = digits[i];
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return Err(DecimalError::InvalidChar(c));
            }
            if frac_used < decimals {
                if acc != 0 || d != 0 {
                    sig_digits += 1;
                }
                acc = acc.wrapping_mul(10).wrapping_add(u64::from(d));
                frac_used += 1;
            } else if d != 0 {
                return Err(DecimalError::TooPrecise(decimals));
            }
            i += 1;
        }
    }
    if sig_digits > 19 {
        return Err(DecimalError::Overflow);
    }
    // Scale up for the decimals the string did not spell out.
    let missing = decimals - frac_used;
    let scaled = acc
        .checked_mul(POW10[missing as usize] as u64)
        .ok_or(DecimalError::Overflow)?;
    if neg {
        // The magnitude of i64::MIN is one more than i64::MAX.
        if scaled > i64::MAX as u64 + 1 {
            return Err(DecimalError::Overflow);
        }
        Ok((scaled as i64).wrapping_neg())
    } else {
        if scaled > i64::MAX as u64 {
            return Err(DecimalError::Overflow);
        }
        Ok(scaled as i64)
    }
}

/// The decimals needed to write `s` exactly, ignoring trailing zeros: `"0.01000000"` → 2,
/// `"0.5"` → 1, `"10.00"` → 0. Used to derive an instrument's scale from its tick or step size.
pub fn significant_decimals(s: &[u8]) -> Result<u8, DecimalError> {
    let frac = match s.iter().position(|&c| c == b'.') {
        Some(dot) => &s[dot + 1..],
        None => &[][..],
    };
    let needed = frac.iter().rposition(|&c| c != b'0').map_or(0, |p| p + 1);
    let needed = u8::try_from(needed).map_err(|_| DecimalError::BadScale(u8::MAX))?;
    // Validate the whole string at exactly the scale it needs.
    parse_scaled(s, needed)?;
    Ok(needed)
}

/// An exact decimal as a person writes it in a config (`"0.001"`, `"1000"`): `mantissa ×
/// 10^-scale`, kept at the fewest decimals that write it. Parsed once, when the config is
/// validated; [`Decimal::in_units`] then gives it in any instrument's units, exactly or not at
/// all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    mantissa: i64,
    scale: u8,
}

impl Decimal {
    /// Parses a plain decimal string (`-?digits(.digits)?`).
    pub fn parse(s: &[u8]) -> Result<Self, DecimalError> {
        let scale = significant_decimals(s)?;
        Ok(Self {
            mantissa: parse_scaled(s, scale)?,
            scale,
        })
    }

    /// The decimal `units × 10^-decimals`, kept at the fewest decimals that write it, as
    /// [`Decimal::parse`] keeps its text's value; [`DecimalError::BadScale`] past
    /// [`MAX_DECIMALS`]. For a value that arrives as integers (an SBE mantissa at a scale).
    pub fn from_units(units: i64, decimals: u8) -> Result<Self, DecimalError> {
        if decimals > MAX_DECIMALS {
            return Err(DecimalError::BadScale(decimals));
        }
        let (mut mantissa, mut scale) = (units, decimals);
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        Ok(Self { mantissa, scale })
    }

    /// Whether the value is above zero.
    pub const fn is_positive(self) -> bool {
        self.mantissa > 0
    }

    /// The value as a count of `10^-decimals` units: exact, or [`DecimalError::TooPrecise`]
    /// when it has a non-zero digit past `decimals`, or [`DecimalError::Overflow`].
    pub fn in_units(self, decimals: u8) -> Result<i64, DecimalError> {
        if decimals > MAX_DECIMALS {
            return Err(DecimalError::BadScale(decimals));
        }
        if self.scale > decimals {
            return Err(DecimalError::TooPrecise(decimals));
        }
        self.mantissa
            .checked_mul(pow10(decimals - self.scale))
            .ok_or(DecimalError::Overflow)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; MAX_FORMATTED_LEN];
        let n = write_scaled(self.mantissa, self.scale, &mut buf);
        f.write_str(std::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)?)
    }
}

/// Most bytes [`write_scaled`] can produce: sign, 19 digits, dot, leading `0`.
pub const MAX_FORMATTED_LEN: usize = 22;

/// Writes `value` scaled by `10^-decimals` as a plain decimal with exactly `decimals` fraction
/// digits (`6183763`, 2 → `"61837.63"`), into `out`. Returns the number of bytes written.
/// Never allocates.
pub fn write_scaled(value: i64, decimals: u8, out: &mut [u8; MAX_FORMATTED_LEN]) -> usize {
    let decimals = decimals.min(MAX_DECIMALS) as usize;
    let mut digits = [0u8; 20];
    let mut n = 0;
    let mut v = value.unsigned_abs();
    while v > 0 {
        digits[n] = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
    }
    // At least one integer digit and all fraction digits.
    let width = n.max(decimals + 1);
    let mut len = 0;
    if value < 0 {
        out[len] = b'-';
        len += 1;
    }
    for pos in (0..width).rev() {
        let d = if pos < n { digits[pos] } else { b'0' };
        out[len] = d;
        len += 1;
        if pos == decimals && decimals > 0 {
            out[len] = b'.';
            len += 1;
        }
    }
    len
}

/// A value with its scale, for `Display` off the hot path (logs, reports, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scaled {
    /// The integer count of `10^-decimals` units.
    pub value: i64,
    /// The scale.
    pub decimals: u8,
}

impl fmt::Display for Scaled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; MAX_FORMATTED_LEN];
        let n = write_scaled(self.value, self.decimals, &mut buf);
        // write_scaled only writes ASCII digits, '-' and '.'.
        f.write_str(std::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)?)
    }
}

macro_rules! scaled_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// Zero.
            pub const ZERO: Self = Self(0);

            /// Parses an exchange decimal string at `decimals` (the instrument's scale).
            #[inline]
            pub fn parse(s: &[u8], decimals: u8) -> Result<Self, DecimalError> {
                parse_scaled(s, decimals).map(Self)
            }

            /// The raw integer count of units.
            #[inline]
            pub const fn raw(self) -> i64 {
                self.0
            }

            /// Whether this is zero (a level removal, in a depth update).
            #[inline]
            pub const fn is_zero(self) -> bool {
                self.0 == 0
            }

            /// Writes the exchange's decimal form into `out`; returns the length.
            #[inline]
            pub fn write(self, decimals: u8, out: &mut [u8; MAX_FORMATTED_LEN]) -> usize {
                write_scaled(self.0, decimals, out)
            }

            /// A `Display`able form at `decimals`.
            #[inline]
            pub const fn display(self, decimals: u8) -> Scaled {
                Scaled { value: self.0, decimals }
            }
        }
    };
}

scaled_type!(
    /// A price: an integer count of `10^-price_decimals` of its instrument.
    Px
);
scaled_type!(
    /// A quantity: an integer count of `10^-qty_decimals` of its instrument.
    Qty
);

#[cfg(test)]
mod tests {

    #[test]
    fn a_config_decimal_converts_to_any_finer_unit_exactly() {
        let d = Decimal::parse(b"0.00100").unwrap();
        assert_eq!(d.to_string(), "0.001");
        assert!(d.is_positive());
        assert_eq!(d.in_units(3), Ok(1));
        assert_eq!(d.in_units(8), Ok(100_000));
        assert_eq!(d.in_units(2), Err(DecimalError::TooPrecise(2)));
        assert_eq!(d.in_units(19), Err(DecimalError::BadScale(19)));
        let big = Decimal::parse(b"9223372036854775807").unwrap();
        assert_eq!(big.in_units(1), Err(DecimalError::Overflow));
        assert!(!Decimal::parse(b"-1").unwrap().is_positive());
        assert!(!Decimal::parse(b"0.000").unwrap().is_positive());
        assert_eq!(Decimal::parse(b"1e3"), Err(DecimalError::InvalidChar(b'e')));
    }
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exchange_strings() {
        assert_eq!(Px::parse(b"61837.63000000", 2), Ok(Px(6_183_763)));
        assert_eq!(Qty::parse(b"0.00000000", 5), Ok(Qty(0)));
        assert_eq!(Qty::parse(b"1.54698000", 5), Ok(Qty(154_698)));
        assert_eq!(Px::parse(b"61800.30", 2), Ok(Px(6_180_030)));
        assert_eq!(Px::parse(b"61800.3", 2), Ok(Px(6_180_030)));
        assert_eq!(Px::parse(b"7", 3), Ok(Px(7_000)));
        assert_eq!(Px::parse(b"-1.5", 1), Ok(Px(-15)));
        assert_eq!(Px::parse(b"0.5", 1), Ok(Px(5)));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(Px::parse(b"", 2), Err(DecimalError::Empty));
        assert_eq!(Px::parse(b"1e-8", 8), Err(DecimalError::InvalidChar(b'e')));
        assert_eq!(Px::parse(b"1.", 2), Err(DecimalError::Malformed));
        assert_eq!(Px::parse(b".5", 2), Err(DecimalError::Malformed));
        assert_eq!(Px::parse(b"-", 2), Err(DecimalError::Malformed));
        assert_eq!(Px::parse(b"+1", 2), Err(DecimalError::InvalidChar(b'+')));
        assert_eq!(Px::parse(b"1.2.3", 2), Err(DecimalError::InvalidChar(b'.')));
        assert_eq!(Px::parse(b"1.234", 2), Err(DecimalError::TooPrecise(2)));
        assert_eq!(Px::parse(b"abc", 2), Err(DecimalError::InvalidChar(b'a')));
        assert_eq!(Px::parse(b"1 ", 2), Err(DecimalError::InvalidChar(b' ')));
        assert_eq!(
            Px::parse(b"99999999999999999999", 0),
            Err(DecimalError::Overflow)
        );
        assert_eq!(
            Px::parse(b"9223372036854775808", 0),
            Err(DecimalError::Overflow)
        );
        assert_eq!(Px::parse(b"9223372036854775807", 0), Ok(Px(i64::MAX)));
        assert_eq!(
            Px::parse(b"92233720368547758.08", 2),
            Err(DecimalError::Overflow)
        );
        assert_eq!(Px::parse(b"1", 19), Err(DecimalError::BadScale(19)));
    }

    #[test]
    fn leading_zeros_do_not_count_as_significant() {
        assert_eq!(Qty::parse(b"0000000000000000000000001.5", 1), Ok(Qty(15)));
    }

    #[test]
    fn from_units_is_what_its_text_parses_to() {
        let mut buf = [0u8; MAX_FORMATTED_LEN];
        for units in [
            0i64,
            1,
            -1,
            10,
            100,
            12_300,
            -4_500,
            6_168_599,
            i64::MAX,
            i64::MIN + 1,
        ] {
            for decimals in 0..=MAX_DECIMALS {
                let n = write_scaled(units, decimals, &mut buf);
                assert_eq!(
                    Decimal::from_units(units, decimals),
                    Decimal::parse(&buf[..n]),
                    "{units} at {decimals}"
                );
            }
        }
        assert_eq!(
            Decimal::from_units(1, MAX_DECIMALS + 1),
            Err(DecimalError::BadScale(MAX_DECIMALS + 1))
        );
    }

    #[test]
    fn significant_decimals_of_tick_sizes() {
        assert_eq!(significant_decimals(b"0.01000000"), Ok(2));
        assert_eq!(significant_decimals(b"0.50000000"), Ok(1));
        assert_eq!(significant_decimals(b"1.00000000"), Ok(0));
        assert_eq!(significant_decimals(b"10"), Ok(0));
        assert_eq!(significant_decimals(b"0.00000001"), Ok(8));
        assert!(significant_decimals(b"1e-8").is_err());
    }

    #[test]
    fn formats_exchange_strings() {
        let mut buf = [0u8; MAX_FORMATTED_LEN];
        let n = write_scaled(6_183_763, 2, &mut buf);
        assert_eq!(&buf[..n], b"61837.63");
        let n = write_scaled(5, 8, &mut buf);
        assert_eq!(&buf[..n], b"0.00000005");
        let n = write_scaled(0, 0, &mut buf);
        assert_eq!(&buf[..n], b"0");
        let n = write_scaled(-15, 1, &mut buf);
        assert_eq!(&buf[..n], b"-1.5");
        let n = write_scaled(i64::MIN, 18, &mut buf);
        assert_eq!(&buf[..n], b"-9.223372036854775808");
        assert_eq!(Px(100).display(2).to_string(), "1.00");
    }

    proptest! {
        #[test]
        fn parse_of_format_is_identity(v in any::<i64>(), decimals in 0u8..=18) {
            let mut buf = [0u8; MAX_FORMATTED_LEN];
            let n = write_scaled(v, decimals, &mut buf);
            prop_assert_eq!(parse_scaled(&buf[..n], decimals), Ok(v));
        }

        #[test]
        fn parse_never_panics(s in proptest::collection::vec(any::<u8>(), 0..40), d in 0u8..=20) {
            let _ = parse_scaled(&s, d);
        }

        #[test]
        fn agrees_with_integer_arithmetic(int in 0u64..1_000_000_000, frac in 0u32..100_000_000) {
            let s = format!("{int}.{frac:08}");
            let expect = int as i64 * 100_000_000 + i64::from(frac);
            prop_assert_eq!(parse_scaled(s.as_bytes(), 8), Ok(expect));
        }
    }
}
