//! Writing Binance Spot JSON frames into a reused byte buffer, without allocating.
//!
//! Field order and number formats follow the real stream: prices and quantities as quoted
//! decimals with (at least) eight fraction digits (`"61837.63000000"`), ids and times as bare
//! integers. The buffer is cleared, never shrunk, so once it has reached its largest frame
//! writing allocates nothing.

use pinion_core::decimal::{MAX_DECIMALS, MAX_FORMATTED_LEN, pow10, write_scaled};

/// Binance Spot writes every price and quantity with eight decimals.
const WIRE_DECIMALS: u8 = 8;

/// Appends `v` in decimal.
#[inline]
pub(crate) fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut n = digits.len();
    loop {
        n -= 1;
        digits[n] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[n..]);
}

/// How a scaled integer of one instrument is written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireScale {
    /// The instrument's decimals for this value.
    decimals: u8,
    /// Decimals written (at least [`WIRE_DECIMALS`]).
    wire_decimals: u8,
    /// `10^(wire_decimals - decimals)`.
    factor: i64,
}

impl WireScale {
    /// The wire form for values with `decimals` fraction digits.
    pub(crate) fn new(decimals: u8) -> Self {
        let decimals = decimals.min(MAX_DECIMALS);
        let wire_decimals = decimals.max(WIRE_DECIMALS);
        Self {
            decimals,
            wire_decimals,
            factor: pow10(wire_decimals - decimals),
        }
    }

    /// Whether `value` can be written at the wire scale without overflow.
    pub(crate) fn fits(self, value: i64) -> bool {
        value.checked_mul(self.factor).is_some()
    }

    /// Appends `value` as a quoted decimal string. The generator keeps its values in range
    /// (checked with [`WireScale::fits`] at start-up); an out-of-range value saturates rather
    /// than wrapping.
    #[inline]
    pub(crate) fn push_quoted(self, out: &mut Vec<u8>, value: i64) {
        let mut buf = [0u8; MAX_FORMATTED_LEN];
        let wire = value.saturating_mul(self.factor);
        let n = write_scaled(wire, self.wire_decimals, &mut buf);
        out.push(b'"');
        out.extend_from_slice(&buf[..n]);
        out.push(b'"');
    }

    /// The instrument's decimals.
    #[cfg(test)]
    pub(crate) fn decimals(self) -> u8 {
        self.decimals
    }
}

/// Appends `["px","qty"]`.
#[inline]
pub(crate) fn push_level(out: &mut Vec<u8>, px: WireScale, qty: WireScale, p: i64, q: i64) {
    out.push(b'[');
    px.push_quoted(out, p);
    out.push(b',');
    qty.push_quoted(out, q);
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_decimals_are_written_like_binance() {
        let mut out = Vec::new();
        push_u64(&mut out, 0);
        out.push(b' ');
        push_u64(&mut out, 50_093_239_218);
        out.push(b' ');
        push_u64(&mut out, u64::MAX);
        assert_eq!(out, b"0 50093239218 18446744073709551615");

        let px = WireScale::new(2);
        let qty = WireScale::new(5);
        assert_eq!(px.decimals(), 2);
        out.clear();
        push_level(&mut out, px, qty, 6_183_763, 154_698);
        assert_eq!(out, br#"["61837.63000000","1.54698000"]"#);

        // More decimals than the wire's eight are kept, not truncated.
        let fine = WireScale::new(10);
        out.clear();
        fine.push_quoted(&mut out, 12_345);
        assert_eq!(out, br#""0.0000012345""#);
        assert!(!px.fits(i64::MAX));
    }
}
