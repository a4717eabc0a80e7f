//! What any L2 book offers: reading ([`BookView`], with the analytics the strategy uses) and
//! writing ([`L2Book`], what the sync machine drives).
//!
//! The array book ([`crate::OrderBook`]) and the `BTreeMap` reference
//! ([`crate::reference::ReferenceBook`]) both implement these, so the sync machine, the
//! property tests and the benchmarks run the same code over either. The analytics are written
//! once here, over `best` and the best-first level walk; the array book answers those two from
//! its bitset.
//!
//! Units: prices are raw [`Px`] units of the instrument (`10^-price_decimals`), quantities raw
//! [`Qty`] units. Results that cannot be exact (mid, microprice, VWAP, ratios) are `f64` in the
//! same raw units; exact forms are given beside them where they matter (`mid_x2`,
//! [`Sweep::notional`]).

use pinion_core::{Level, Px, Qty, Side};

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

/// The result of walking one side of the book for a quantity (a simulated market order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sweep {
    /// How much the book could fill, at most the quantity asked.
    pub filled: Qty,
    /// `Σ px × qty` over the fills, in units of `10^-(price_decimals + qty_decimals)`.
    pub notional: i128,
    /// The last (worst) price touched; zero when nothing filled.
    pub worst: Px,
    /// How many levels were touched.
    pub levels: u32,
}

impl Sweep {
    /// The volume-weighted average price of the fills, in raw price units.
    pub fn vwap(&self) -> Option<f64> {
        (self.filled.0 > 0).then(|| self.notional as f64 / self.filled.0 as f64)
    }
}

/// Reading an L2 book: best levels, the best-first walk, and the analytics built on them.
pub trait BookView {
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

    /// Best ask minus best bid, in raw price units.
    #[inline]
    fn spread(&self) -> Option<i64> {
        Some(self.best_ask()?.px.0 - self.best_bid()?.px.0)
    }

    /// Twice the mid price (best bid + best ask), exact.
    #[inline]
    fn mid_x2(&self) -> Option<i64> {
        Some(self.best_ask()?.px.0 + self.best_bid()?.px.0)
    }

    /// The mid price in raw price units.
    #[inline]
    fn mid(&self) -> Option<f64> {
        self.mid_x2().map(|m| m as f64 / 2.0)
    }

    /// The size-weighted mid: `(bid × ask_qty + ask × bid_qty) / (bid_qty + ask_qty)`, which
    /// leans towards the side with less quantity (the price more likely to trade next).
    fn microprice(&self) -> Option<f64> {
        let (b, a) = (self.best_bid()?, self.best_ask()?);
        let w = b.qty.0 as f64 + a.qty.0 as f64;
        (w > 0.0).then(|| (b.px.0 as f64 * a.qty.0 as f64 + a.px.0 as f64 * b.qty.0 as f64) / w)
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

    /// The quantity resting within `bps` basis points of the mid: `(bids, asks)`, bids at or
    /// above `mid × (1 − bps/10⁴)`, asks at or below `mid × (1 + bps/10⁴)`. Exact (integer
    /// bounds). Zero on both sides when there is no mid.
    fn depth_within_bps(&self, bps: u32) -> (Qty, Qty) {
        let Some(m2) = self.mid_x2() else {
            return (Qty::ZERO, Qty::ZERO);
        };
        let m2 = i128::from(m2);
        let bps = i128::from(bps);
        // px ≥ m2 (10⁴ − bps) / (2·10⁴), rounded up; px ≤ m2 (10⁴ + bps) / (2·10⁴), down.
        let lo = (m2 * (10_000 - bps)).div_euclid(20_000)
            + i128::from((m2 * (10_000 - bps)).rem_euclid(20_000) != 0);
        let hi = (m2 * (10_000 + bps)).div_euclid(20_000);
        let bids = self
            .levels(Side::Bid)
            .take_while(|l| i128::from(l.px.0) >= lo)
            .fold(0i64, |s, l| s.saturating_add(l.qty.0));
        let asks = self
            .levels(Side::Ask)
            .take_while(|l| i128::from(l.px.0) <= hi)
            .fold(0i64, |s, l| s.saturating_add(l.qty.0));
        (Qty(bids), Qty(asks))
    }

    /// Order-book imbalance over the best `n` levels of each side:
    /// `(Σ bid qty − Σ ask qty) / (Σ bid qty + Σ ask qty)`, in `[-1, 1]`; positive means more
    /// resting on the bid. `None` when both sums are zero.
    fn imbalance(&self, n: usize) -> Option<f64> {
        let b = self
            .levels(Side::Bid)
            .take(n)
            .fold(0i64, |s, l| s.saturating_add(l.qty.0)) as f64;
        let a = self
            .levels(Side::Ask)
            .take(n)
            .fold(0i64, |s, l| s.saturating_add(l.qty.0)) as f64;
        (a + b > 0.0).then(|| (b - a) / (b + a))
    }

    /// Walks the book as a market order of `qty` from `aggressor` would: a buyer takes the
    /// asks, a seller the bids, best first.
    fn sweep(&self, aggressor: Side, qty: Qty) -> Sweep {
        let mut s = Sweep::default();
        let mut left = qty.0;
        for l in self.levels(aggressor.opposite()) {
            if left <= 0 {
                break;
            }
            let take = left.min(l.qty.0);
            left -= take;
            s.filled.0 += take;
            s.notional += i128::from(l.px.0) * i128::from(take);
            s.worst = l.px;
            s.levels += 1;
        }
        s
    }

    /// The average price a market order of `qty` from `aggressor` would get, over what the
    /// book can fill.
    fn vwap(&self, aggressor: Side, qty: Qty) -> Option<f64> {
        self.sweep(aggressor, qty).vwap()
    }

    /// The cost of a market order of `qty` from `aggressor` against the mid, in basis points
    /// of the mid: positive is worse than the mid (a buy above it, a sell below it). Over what
    /// the book can fill; `None` without a mid or a fill.
    fn slippage_bps(&self, aggressor: Side, qty: Qty) -> Option<f64> {
        let mid = self.mid()?;
        let vwap = self.vwap(aggressor, qty)?;
        let signed = match aggressor {
            Side::Bid => vwap - mid,
            Side::Ask => mid - vwap,
        };
        Some(signed / mid * 10_000.0)
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
}

/// Writing an L2 book: what a sync machine needs.
pub trait L2Book: BookView {
    /// Sets the absolute quantity at `px` on `side`; zero removes the level (a removal of a
    /// level the book does not have is not an error).
    fn set_level(&mut self, side: Side, px: Px, qty: Qty) -> Result<(), BookError>;

    /// Removes every level.
    fn clear(&mut self);

    /// Called after the last level of an exchange message: a point where the book is
    /// consistent, for housekeeping such as moving the array book's window.
    fn commit(&mut self) {}
}
