//! What any L2 book offers: reading ([`BookLevels`]: the best levels, the best-first walk, and
//! what is built on them) and writing ([`L2Book`], what the sync machine drives).
//!
//! The array book ([`crate::OrderBook`]) and the `BTreeMap` reference
//! ([`crate::reference::ReferenceBook`]) both implement these, so the sync machine, the
//! property tests and the benchmarks run the same code over either. The provided methods are
//! written once here, over `best` and the best-first walk; the array book answers those, and
//! the copies of its top levels, from its bitset.
//!
//! The top-of-book analytics (mid, microprice, imbalance, sweep and VWAP) live on
//! [`BookTop`], which [`BookLevels::capture`] fills; only what needs the whole book stays here:
//! the cross check and depth within ±bps, whose band is the one [`BpsBand`] defines.
//!
//! Units: prices are raw [`Px`] units of the instrument (`10^-price_decimals`), quantities raw
//! [`Qty`] units.

use pinion_core::{BookTop, BpsBand, Level, Px, Qty, Side};

use crate::error::BookError;

/// Whether the best bid meets or passes the best ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cross {
    /// Best bid below best ask, or a side is empty.
    Clear,
    /// Best bid equal to best ask.
    Locked,
    /// Best bid above best ask.
    Crossed,
}

/// Reading an L2 book: best levels, the best-first walk, copies of the top levels, and the
/// checks that need the whole book.
pub trait BookLevels {
    /// The best level of `side`.
    fn best(&self, side: Side) -> Option<Level>;

    /// The levels of `side`, best first (bids descending, asks ascending).
    fn levels(&self, side: Side) -> impl Iterator<Item = Level> + '_;

    /// The number of levels on `side`.
    fn len(&self, side: Side) -> usize;

    /// Whether both sides are empty.
    fn is_empty(&self) -> bool {
        self.len(Side::Bid) == 0 && self.len(Side::Ask) == 0
    }

    /// The best bid.
    #[inline]
    fn best_bid(&self) -> Option<Level> {
        self.best(Side::Bid)
    }

    /// The best ask.
    #[inline]
    fn best_ask(&self) -> Option<Level> {
        self.best(Side::Ask)
    }

    /// Whether the book is locked or crossed.
    #[inline]
    fn cross(&self) -> Cross {
        match (self.best_bid(), self.best_ask()) {
            (Some(b), Some(a)) if b.px > a.px => Cross::Crossed,
            (Some(b), Some(a)) if b.px == a.px => Cross::Locked,
            _ => Cross::Clear,
        }
    }

    /// The quantity resting within `bps` basis points of the mid over the whole book:
    /// `(bids, asks)` inside the exact integer [`BpsBand`] around `(best bid + best ask) / 2`.
    /// Zero on both sides when a side is empty.
    fn depth_within_bps(&self, bps: u32) -> (Qty, Qty) {
        let mid_x2 = match (self.best_bid(), self.best_ask()) {
            (Some(b), Some(a)) => b.px.0.checked_add(a.px.0),
            _ => None,
        };
        let Some(m2) = mid_x2 else {
            return (Qty::ZERO, Qty::ZERO);
        };
        let band = BpsBand::around(m2, bps);
        (
            band.depth(Side::Bid, self.levels(Side::Bid)),
            band.depth(Side::Ask, self.levels(Side::Ask)),
        )
    }

    /// Copies the best `out.len()` levels of `side` strictly behind `px` (worse than it: below
    /// it for bids, above it for asks) into `out`; returns how many there were.
    fn top_levels_behind(&self, side: Side, px: Px, out: &mut [Level]) -> usize {
        let behind = |l: &Level| match side {
            Side::Bid => l.px < px,
            Side::Ask => l.px > px,
        };
        let mut n = 0;
        for (slot, l) in out.iter_mut().zip(self.levels(side).filter(behind)) {
            *slot = l;
            n += 1;
        }
        n
    }

    /// Copies the best `out.len()` levels of `side` into `out`; returns how many there were.
    fn top_levels(&self, side: Side, out: &mut [Level]) -> usize {
        let mut n = 0;
        for (slot, l) in out.iter_mut().zip(self.levels(side)) {
            *slot = l;
            n += 1;
        }
        n
    }

    /// Writes the best `K` levels of each side of the book into `top`; its header is left as
    /// it is.
    #[inline]
    fn capture<const K: usize>(&self, top: &mut BookTop<K>) {
        top.fill(Side::Bid, |out| self.top_levels(Side::Bid, out));
        top.fill(Side::Ask, |out| self.top_levels(Side::Ask, out));
    }

    /// Writes the top `K` levels under a newer best bid and ask (from a book ticker ahead of
    /// the book) into `top`: `bid` and `ask` go first, then the book's levels behind them. The
    /// book's levels at or through them are left out, since the venue says they are gone. The
    /// header is left as it is.
    #[inline]
    fn capture_with_top<const K: usize>(&self, top: &mut BookTop<K>, bid: Level, ask: Level) {
        top.fill_behind(Side::Bid, bid, |rest| {
            self.top_levels_behind(Side::Bid, bid.px, rest)
        });
        top.fill_behind(Side::Ask, ask, |rest| {
            self.top_levels_behind(Side::Ask, ask.px, rest)
        });
    }
}

/// Writing an L2 book: what a sync machine needs.
pub trait L2Book: BookLevels {
    /// Sets the absolute quantity at `px` on `side`; zero removes the level (a removal of a
    /// level the book does not have is not an error).
    fn set_level(&mut self, side: Side, px: Px, qty: Qty) -> Result<(), BookError>;

    /// Removes every level.
    fn clear(&mut self);

    /// Called after the last level of an exchange message: a point where the book is
    /// consistent, for housekeeping such as moving the array book's window.
    fn commit(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReferenceBook;
    use pinion_core::InstrumentId;

    fn lv(px: i64, qty: i64) -> Level {
        Level {
            px: Px(px),
            qty: Qty(qty),
        }
    }

    #[test]
    fn a_newer_top_goes_first_with_the_book_behind_it() {
        let mut b = ReferenceBook::with_tick(Px(1)).unwrap();
        for i in 0..20 {
            b.set_level(Side::Bid, Px(100 - i), Qty(1)).unwrap();
        }
        for i in 0..4 {
            b.set_level(Side::Ask, Px(101 + i), Qty(1)).unwrap();
        }
        let top = |bid, ask| {
            let mut t = BookTop::<4>::EMPTY;
            t.set_header(InstrumentId(2), 9, 8, true);
            b.capture_with_top(&mut t, bid, ask);
            t
        };
        // The bid moved down through two levels; the ask improved inside the spread. The
        // levels behind come from the book, past what a plain top-4 capture holds.
        let o = top(lv(98, 5), lv(100, 2));
        assert_eq!(o.bids(), [lv(98, 5), lv(97, 1), lv(96, 1), lv(95, 1)]);
        assert_eq!(o.asks(), [lv(100, 2), lv(101, 1), lv(102, 1), lv(103, 1)]);
        assert_eq!(
            (o.instrument, o.last_update_id, o.t0, o.synced),
            (InstrumentId(2), 9, 8, true)
        );
        // Same prices, new quantities: one for one.
        let o = top(lv(100, 9), lv(101, 8));
        assert_eq!(o.bids(), [lv(100, 9), lv(99, 1), lv(98, 1), lv(97, 1)]);
        assert_eq!(o.asks(), [lv(101, 8), lv(102, 1), lv(103, 1), lv(104, 1)]);
        // Through every level of a side: the ticker's level alone on it.
        let o = top(lv(99, 1), lv(300, 1));
        assert_eq!(o.asks(), [lv(300, 1)]);
        assert_eq!(o.bids().len(), 4);
    }

    #[test]
    fn capture_takes_the_top_levels_and_replaces_what_was_there() {
        let mut b = ReferenceBook::with_tick(Px(1)).unwrap();
        for i in 0..15 {
            b.set_level(Side::Bid, Px(100 - i), Qty(1 + i)).unwrap();
        }
        b.set_level(Side::Ask, Px(101), Qty(7)).unwrap();
        let mut s: BookTop = BookTop::from_levels(
            InstrumentId(3),
            42,
            99,
            true,
            &[lv(1, 1)],
            &[lv(500, 1), lv(501, 1)],
        );
        b.capture(&mut s);
        assert_eq!((s.bids().len(), s.asks().len()), (10, 1));
        assert_eq!(s.bids()[9], lv(91, 10));
        assert_eq!(s.best_ask(), Some(lv(101, 7)));
        assert_eq!(
            (s.instrument, s.last_update_id, s.t0, s.synced),
            (InstrumentId(3), 42, 99, true)
        );
    }
}
