//! [`BookView`]: the strategy's input from the book stage, the top of one instrument's book.
//!
//! A small `Copy` value defined here, not in the book crate, so strategies do not depend on the
//! book's internal snapshot type; the engine converts the book stage's snapshot into it. Levels
//! are best first on each side; a side may hold fewer than [`VIEW_LEVELS`] levels. Analytics are
//! integer arithmetic on the scaled prices and quantities.

use pinion_core::{InstrumentId, Level, Px, Qty};

/// Levels per side a view carries.
pub const VIEW_LEVELS: usize = 10;

/// The top of one instrument's book, as of one update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookView {
    /// The instrument.
    pub instrument: InstrumentId,
    /// `t0` of the market data this state results from (engine monotonic ns).
    pub t0: u64,
    /// The exchange's update id of this state.
    pub last_update_id: u64,
    /// Whether the book is in sync with the exchange. When false the levels may be wrong and
    /// nothing may be traded on them.
    pub synced: bool,
    n_bids: u8,
    n_asks: u8,
    bids: [Level; VIEW_LEVELS],
    asks: [Level; VIEW_LEVELS],
}

impl BookView {
    /// A view with no levels, not synced.
    pub const EMPTY: BookView = BookView {
        instrument: InstrumentId(0),
        t0: 0,
        last_update_id: 0,
        synced: false,
        n_bids: 0,
        n_asks: 0,
        bids: [Level {
            px: Px(0),
            qty: Qty(0),
        }; VIEW_LEVELS],
        asks: [Level {
            px: Px(0),
            qty: Qty(0),
        }; VIEW_LEVELS],
    };

    /// A view from best-first bid and ask levels; levels beyond [`VIEW_LEVELS`] are dropped.
    pub fn new(
        instrument: InstrumentId,
        t0: u64,
        last_update_id: u64,
        synced: bool,
        bids: &[Level],
        asks: &[Level],
    ) -> Self {
        let mut v = BookView {
            instrument,
            t0,
            last_update_id,
            synced,
            ..BookView::EMPTY
        };
        let nb = bids.len().min(VIEW_LEVELS);
        let na = asks.len().min(VIEW_LEVELS);
        v.bids[..nb].copy_from_slice(&bids[..nb]);
        v.asks[..na].copy_from_slice(&asks[..na]);
        v.n_bids = nb as u8;
        v.n_asks = na as u8;
        v
    }

    /// Bid levels, best (highest) first.
    #[inline]
    pub fn bids(&self) -> &[Level] {
        &self.bids[..usize::from(self.n_bids).min(VIEW_LEVELS)]
    }

    /// Ask levels, best (lowest) first.
    #[inline]
    pub fn asks(&self) -> &[Level] {
        &self.asks[..usize::from(self.n_asks).min(VIEW_LEVELS)]
    }

    /// The best bid.
    #[inline]
    pub fn best_bid(&self) -> Option<Level> {
        self.bids().first().copied()
    }

    /// The best ask.
    #[inline]
    pub fn best_ask(&self) -> Option<Level> {
        self.asks().first().copied()
    }

    /// The mid price, rounded down to a price unit; `None` unless both sides are present and
    /// not crossed.
    #[inline]
    pub fn mid(&self) -> Option<Px> {
        let (b, a) = (self.best_bid()?, self.best_ask()?);
        (b.px < a.px).then(|| Px(b.px.0 + (a.px.0 - b.px.0) / 2))
    }

    /// Total bid and ask quantity over the best `n` levels of each side.
    #[inline]
    pub fn depth_qty(&self, n: usize) -> (i64, i64) {
        let sum = |levels: &[Level]| levels.iter().take(n).map(|l| l.qty.0).sum::<i64>();
        (sum(self.bids()), sum(self.asks()))
    }

    /// Order-book imbalance over the best `n` levels in per-mille:
    /// `1000 × (bid qty − ask qty) / (bid qty + ask qty)`, in `-1000..=1000`; `None` when both
    /// sides are empty. Positive means more resting buyers.
    #[inline]
    pub fn imbalance_permille(&self, n: usize) -> Option<i64> {
        let (b, a) = self.depth_qty(n);
        permille(b, a)
    }
}

/// `1000 × (b − a) / (b + a)`, truncated toward zero; `None` unless `b + a` is positive.
///
/// In 64-bit arithmetic whenever it cannot overflow, since a 128-bit division is a library call
/// and this runs on every view the strategy sees; exactly the 128-bit result either way.
#[inline]
fn permille(b: i64, a: i64) -> Option<i64> {
    let narrow = b
        .checked_add(a)
        .zip(b.checked_sub(a).and_then(|d| d.checked_mul(1000)));
    if let Some((total, diff)) = narrow {
        return (total > 0).then(|| diff / total);
    }
    let total = i128::from(b) + i128::from(a);
    if total <= 0 {
        return None;
    }
    Some(((i128::from(b) - i128::from(a)) * 1000 / total) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 128-bit definition.
    fn permille_wide(b: i64, a: i64) -> Option<i64> {
        let total = i128::from(b) + i128::from(a);
        (total > 0).then(|| ((i128::from(b) - i128::from(a)) * 1000 / total) as i64)
    }

    proptest::proptest! {
        #[test]
        fn permille_is_the_wide_result(
            b in proptest::prop_oneof![0i64..1_000_000_000, proptest::prelude::any::<i64>()],
            a in proptest::prop_oneof![0i64..1_000_000_000, proptest::prelude::any::<i64>()],
        ) {
            proptest::prop_assert_eq!(permille(b, a), permille_wide(b, a));
        }
    }

    #[test]
    fn permille_at_the_edges() {
        for (b, a) in [
            (i64::MAX, 0),
            (0, i64::MAX),
            (i64::MAX, i64::MAX),
            (i64::MAX / 1000, 1),
            (i64::MIN, i64::MAX),
            (3, -1),
            (-5, 2),
            (0, 0),
            (1, 2),
        ] {
            assert_eq!(permille(b, a), permille_wide(b, a), "{b} {a}");
        }
    }

    fn lv(px: i64, qty: i64) -> Level {
        Level {
            px: Px(px),
            qty: Qty(qty),
        }
    }

    #[test]
    fn analytics_on_a_crafted_book() {
        let v = BookView::new(
            InstrumentId(3),
            10,
            77,
            true,
            &[lv(100, 30), lv(99, 30), lv(98, 1000)],
            &[lv(102, 10), lv(103, 10)],
        );
        assert_eq!(v.best_bid(), Some(lv(100, 30)));
        assert_eq!(v.best_ask(), Some(lv(102, 10)));
        assert_eq!(v.mid(), Some(Px(101)));
        assert_eq!(v.depth_qty(2), (60, 20));
        // (60 - 20) / 80 = 0.5
        assert_eq!(v.imbalance_permille(2), Some(500));
        // The third bid level only counts when asked for.
        assert_eq!(v.imbalance_permille(3), Some((1060 - 20) * 1000 / 1080));
    }

    #[test]
    fn empty_and_truncated_views() {
        assert_eq!(BookView::EMPTY.mid(), None);
        assert_eq!(BookView::EMPTY.imbalance_permille(5), None);
        let many: Vec<Level> = (0..20).map(|i| lv(100 - i, 1)).collect();
        let v = BookView::new(InstrumentId(0), 0, 0, true, &many, &[]);
        assert_eq!(v.bids().len(), VIEW_LEVELS);
        assert_eq!(v.mid(), None);
        assert_eq!(v.imbalance_permille(3), Some(1000));
    }
}
