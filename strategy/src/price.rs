//! Price arithmetic for quoting: offsets in parts per million of a price, rounding to the tick,
//! the spread in parts per million. Integer only, in `i128` where a product could overflow, and
//! saturating, so no price on any input wraps or panics.
//!
//! Parts per million (ppm) are the strategies' unit of relative distance: 1 bps = 100 ppm, fine
//! enough for a one-tick spread on a high-priced instrument to be a non-zero figure.

use pinion_core::{BookTop, Px};

/// `ppm` parts per million of `px`, truncated toward zero.
#[inline]
pub fn ppm_of(px: Px, ppm: i64) -> i64 {
    let v = i128::from(px.0) * i128::from(ppm) / 1_000_000;
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// `px` rounded down to a multiple of `tick` (a tick of 1 or less leaves it).
#[inline]
pub fn floor_tick(px: i64, tick: Px) -> Px {
    if tick.0 <= 1 {
        return Px(px);
    }
    Px(px.div_euclid(tick.0).saturating_mul(tick.0))
}

/// `px` rounded up to a multiple of `tick`.
#[inline]
pub fn ceil_tick(px: i64, tick: Px) -> Px {
    if tick.0 <= 1 {
        return Px(px);
    }
    let down = floor_tick(px, tick);
    if down.0 == px {
        down
    } else {
        Px(down.0.saturating_add(tick.0))
    }
}

/// The spread relative to the mid, in ppm; `None` without a mid (one side missing, locked or
/// crossed).
#[inline]
pub fn spread_ppm(book: &BookTop) -> Option<i64> {
    let mid = book.mid()?;
    let spread = book.spread()?;
    if mid.0 <= 0 {
        return None;
    }
    Some((i128::from(spread) * 1_000_000 / i128::from(mid.0)) as i64)
}

/// `|a − b|` relative to `b`, in ppm (`i64::MAX` when `b` is not positive).
#[inline]
pub fn distance_ppm(a: Px, b: Px) -> i64 {
    if b.0 <= 0 {
        return i64::MAX;
    }
    let d = (i128::from(a.0) - i128::from(b.0)).abs() * 1_000_000 / i128::from(b.0);
    d.min(i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_and_relative_figures() {
        assert_eq!(floor_tick(1_005, Px(10)), Px(1_000));
        assert_eq!(ceil_tick(1_005, Px(10)), Px(1_010));
        assert_eq!(ceil_tick(1_010, Px(10)), Px(1_010));
        assert_eq!(floor_tick(-5, Px(10)), Px(-10));
        assert_eq!(floor_tick(7, Px(1)), Px(7));
        // 1 bps of 6,168,600 (61,686.00 at two decimals) is 616.86, truncated.
        assert_eq!(ppm_of(Px(6_168_600), 100), 616);
        assert_eq!(ppm_of(Px(i64::MAX), 2_000_000), i64::MAX);
        assert_eq!(distance_ppm(Px(1_010), Px(1_000)), 10_000);
        assert_eq!(distance_ppm(Px(990), Px(1_000)), 10_000);
        assert_eq!(distance_ppm(Px(1), Px(0)), i64::MAX);
    }
}
