//! [`Position`]: signed position and average-cost PnL of one instrument, from fills.
//!
//! All amounts are integers: quantities in the instrument's units, money in units of
//! `10^-(price_decimals + qty_decimals)` of the quote asset (a price unit times a quantity unit),
//! in `i128` so no realistic book can overflow. Cost is kept as a total, not a per-unit average,
//! so repeated fills at one price lose nothing; closing part of a position takes a pro-rata
//! share of the cost (truncated toward zero, so at most one money unit per close is lost).
//! Fees are not modelled yet.

use pinion_core::{Px, Qty};

use crate::order::OrderSide;

/// Position and PnL of one instrument.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    qty: i64,
    cost: i128,
    realized: i128,
    fills: u64,
}

impl Position {
    /// Flat, no PnL.
    pub const fn new() -> Self {
        Self {
            qty: 0,
            cost: 0,
            realized: 0,
            fills: 0,
        }
    }

    /// Signed position: positive long, negative short.
    #[inline]
    pub const fn qty(&self) -> Qty {
        Qty(self.qty)
    }

    /// Realised PnL so far, in money units.
    #[inline]
    pub const fn realized(&self) -> i128 {
        self.realized
    }

    /// Unrealised PnL of the open position marked at `mark`, in money units.
    #[inline]
    pub fn unrealized(&self, mark: Px) -> i128 {
        i128::from(self.qty) * i128::from(mark.0) - self.cost
    }

    /// Fills applied.
    #[inline]
    pub const fn fills(&self) -> u64 {
        self.fills
    }

    /// Applies a fill of `qty` at `px`.
    pub fn apply_fill(&mut self, side: OrderSide, px: Px, qty: Qty) {
        if qty.0 <= 0 {
            return;
        }
        self.fills += 1;
        let dir = side.sign();
        let px = i128::from(px.0);
        let mut rest = qty.0;
        if self.qty != 0 && self.qty.signum() != dir {
            // Closing (part of) the position against its pro-rata cost.
            let closed = rest.min(self.qty.abs());
            let removed = self.cost * i128::from(closed) / i128::from(self.qty.abs());
            self.realized += i128::from(self.qty.signum()) * px * i128::from(closed) - removed;
            self.cost -= removed;
            self.qty += dir * closed;
            rest -= closed;
            if self.qty == 0 {
                self.cost = 0;
            }
        }
        if rest > 0 {
            self.qty += dir * rest;
            self.cost += px * i128::from(dir * rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_long_realises_the_difference() {
        let mut p = Position::new();
        p.apply_fill(OrderSide::Buy, Px(100), Qty(3));
        p.apply_fill(OrderSide::Buy, Px(110), Qty(1));
        assert_eq!(p.qty(), Qty(4));
        // Cost 410; marked at 105 the position is worth 420.
        assert_eq!(p.unrealized(Px(105)), 10);
        p.apply_fill(OrderSide::Sell, Px(120), Qty(2));
        // Sold half at 120 against half the cost (205): +35.
        assert_eq!(p.realized(), 35);
        assert_eq!(p.qty(), Qty(2));
        p.apply_fill(OrderSide::Sell, Px(90), Qty(2));
        assert_eq!(p.realized(), 35 + 180 - 205);
        assert_eq!(p.qty(), Qty(0));
        assert_eq!(p.unrealized(Px(1)), 0);
        assert_eq!(p.fills(), 4);
    }

    #[test]
    fn short_and_flip_through_zero() {
        let mut p = Position::new();
        p.apply_fill(OrderSide::Sell, Px(200), Qty(5));
        assert_eq!(p.qty(), Qty(-5));
        assert_eq!(p.unrealized(Px(190)), 50);
        // Buy 8: closes 5 at 190 (+50), opens 3 long at 190.
        p.apply_fill(OrderSide::Buy, Px(190), Qty(8));
        assert_eq!(p.realized(), 50);
        assert_eq!(p.qty(), Qty(3));
        assert_eq!(p.unrealized(Px(200)), 30);
        p.apply_fill(OrderSide::Buy, Px(1), Qty(0));
        assert_eq!(p.fills(), 2);
    }
}
