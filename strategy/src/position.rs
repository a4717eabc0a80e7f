//! [`Position`]: signed position and average-cost PnL of one instrument, from fills.
//!
//! All amounts are integers: quantities in the instrument's units, money in units of
//! `10^-(price_decimals + qty_decimals)` of the quote asset (a price unit times a quantity unit),
//! in `i128` so no realistic book can overflow. Cost is kept as a total, not a per-unit average,
//! so repeated fills at one price lose nothing; closing part of a position takes a pro-rata
//! share of the cost (truncated toward zero, so at most one money unit per close is lost).
//!
//! **Fees.** [`Position::apply_fill_paying`] charges each fill its fee from [`FeeRates`] (maker
//! or taker, a fraction of the fill's notional, negative for a rebate), in the same money units,
//! kept apart from the realised PnL: realised PnL is gross, [`Position::net`] subtracts the
//! fees. The rate is an integer in units of `10^-8` of the notional (1 bps = 10 000), so the fee
//! of a fill is exact but for one rounding (half away from zero) per fill.
//!
//! **Inverse contracts** ([`Position::for_instrument`] of a COIN-M or Bybit inverse spec):
//! quantities count contracts of a fixed quote value, and money is in the base asset, in units
//! of `10^-INVERSE_MONEY_DECIMALS`. A fill's value is `-qty × size / px` (its base-asset value,
//! negative so that the same average-cost arithmetic applies): a long then realises
//! `qty × size × (1/entry − 1/exit)`, and fees are charged on `qty × size / px`. Each fill's
//! value is truncated to the money unit.

use pinion_core::{InstrumentSpec, Px, Qty};

use crate::order::OrderSide;

/// Fee rates of one venue: what a fill pays, as a fraction of its notional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeeRates {
    /// A resting order's fill (the maker), in units of `10^-8` of the notional; negative is a
    /// rebate.
    pub maker_e8: i64,
    /// An order that took liquidity (the taker), same units.
    pub taker_e8: i64,
}

impl FeeRates {
    /// One basis point in the rates' units.
    pub const BPS: i64 = 10_000;

    /// No fees.
    pub const ZERO: FeeRates = FeeRates {
        maker_e8: 0,
        taker_e8: 0,
    };

    /// The fee of a fill of `notional` money units: positive is paid, negative received.
    #[inline]
    pub fn fee(&self, notional: i128, maker: bool) -> i128 {
        let rate = i128::from(if maker { self.maker_e8 } else { self.taker_e8 });
        let scaled = notional * rate;
        let half = 50_000_000 * scaled.signum();
        (scaled + half) / 100_000_000
    }
}

/// Position and PnL of one instrument.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    qty: i64,
    cost: i128,
    realized: i128,
    fills: u64,
    fees: i128,
    volume: i128,
    /// 0 for a linear instrument; else the inverse contract's value factor
    /// ([`InstrumentSpec::inverse_value_factor`]).
    inverse_k: i128,
}

impl Position {
    /// Flat, no PnL.
    pub const fn new() -> Self {
        Self {
            qty: 0,
            cost: 0,
            realized: 0,
            fills: 0,
            fees: 0,
            volume: 0,
            inverse_k: 0,
        }
    }

    /// Flat, in the money of `spec`: an inverse contract counts its PnL in the base asset.
    pub fn for_instrument(spec: &InstrumentSpec) -> Self {
        Self {
            inverse_k: spec.inverse_value_factor().unwrap_or(0),
            ..Self::new()
        }
    }

    /// The money value of `q` units at `px`: `px × q` for a linear instrument, `-q × K / px`
    /// for an inverse contract.
    #[inline]
    fn value(&self, px: i128, q: i128) -> i128 {
        if self.inverse_k == 0 {
            px * q
        } else if px > 0 {
            -(q * self.inverse_k / px)
        } else {
            0
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
        if self.qty == 0 {
            return 0;
        }
        let q = i128::from(self.qty);
        q.signum() * self.value(i128::from(mark.0), q.abs()) - self.cost
    }

    /// The average entry price of the open position (its cost over its size, toward zero),
    /// `None` when flat.
    #[inline]
    pub fn avg_price(&self) -> Option<Px> {
        if self.qty == 0 {
            return None;
        }
        let q = i128::from(self.qty);
        if self.inverse_k == 0 {
            return Some(Px((self.cost / q) as i64));
        }
        // cost = -q × K / avg (signed with the position): avg = q × K / -cost.
        let c = self.cost.abs();
        (c > 0).then(|| Px((q.abs() * self.inverse_k / c) as i64))
    }

    /// Fills applied.
    #[inline]
    pub const fn fills(&self) -> u64 {
        self.fills
    }

    /// Fees paid so far (negative: rebates received), in money units.
    #[inline]
    pub const fn fees(&self) -> i128 {
        self.fees
    }

    /// Notional traded so far (price × quantity of every fill), in money units.
    #[inline]
    pub const fn volume(&self) -> i128 {
        self.volume
    }

    /// Net PnL: realised and unrealised (at `mark`, when there is one) less the fees.
    #[inline]
    pub fn net(&self, mark: Option<Px>) -> i128 {
        self.realized + mark.map_or(0, |m| self.unrealized(m)) - self.fees
    }

    /// Applies a fill of `qty` at `px` and charges it the fee `rates` set for a maker or a
    /// taker; returns that fee.
    pub fn apply_fill_paying(
        &mut self,
        side: OrderSide,
        px: Px,
        qty: Qty,
        maker: bool,
        rates: &FeeRates,
    ) -> i128 {
        if qty.0 <= 0 {
            return 0;
        }
        let fee = rates.fee(self.value(i128::from(px.0), i128::from(qty.0)).abs(), maker);
        self.fees += fee;
        self.apply_fill(side, px, qty);
        fee
    }

    /// Applies a fill of `qty` at `px`, without a fee.
    pub fn apply_fill(&mut self, side: OrderSide, px: Px, qty: Qty) {
        if qty.0 <= 0 {
            return;
        }
        self.fills += 1;
        let px = i128::from(px.0);
        self.volume += self.value(px, i128::from(qty.0)).abs();
        let dir = side.sign();
        let mut rest = qty.0;
        if self.qty != 0 && self.qty.signum() != dir {
            // Closing (part of) the position against its pro-rata cost.
            let closed = rest.min(self.qty.abs());
            let removed = self.cost * i128::from(closed) / i128::from(self.qty.abs());
            self.realized +=
                i128::from(self.qty.signum()) * self.value(px, i128::from(closed)) - removed;
            self.cost -= removed;
            self.qty += dir * closed;
            rest -= closed;
            if self.qty == 0 {
                self.cost = 0;
            }
        }
        if rest > 0 {
            self.qty += dir * rest;
            self.cost += i128::from(dir) * self.value(px, i128::from(rest));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btcusd_perp() -> InstrumentSpec {
        InstrumentSpec::new(pinion_core::Venue::BinanceCoinm, "BTCUSD_PERP", "0.1", "1")
            .expect("spec")
    }

    #[test]
    fn an_inverse_long_earns_size_times_the_difference_of_reciprocals_in_the_base_asset() {
        // 10 BTCUSD contracts (100 USD each) bought at 50 000, sold at 60 000:
        // 1000 × (1/50 000 − 1/60 000) = 0.00333333333333 BTC (12 decimals, truncated).
        let mut p = Position::for_instrument(&btcusd_perp());
        p.apply_fill(OrderSide::Buy, Px(500_000), Qty(10));
        assert_eq!(p.avg_price(), Some(Px(500_000)));
        // Marked at 40 000: 1000 × (1/50 000 − 1/40 000) = −0.005 BTC.
        assert_eq!(p.unrealized(Px(400_000)), -5_000_000_000);
        p.apply_fill(OrderSide::Sell, Px(600_000), Qty(10));
        assert_eq!(p.realized(), 20_000_000_000 - 16_666_666_666);
        assert_eq!(p.qty(), Qty(0));
        // Volume: 0.02 + 0.01666666666 BTC.
        assert_eq!(p.volume(), 20_000_000_000 + 16_666_666_666);
    }

    #[test]
    fn an_inverse_short_gains_when_the_price_falls_and_pays_fees_in_base() {
        let mut p = Position::for_instrument(&btcusd_perp());
        let rates = FeeRates {
            maker_e8: 2 * FeeRates::BPS,
            taker_e8: 5 * FeeRates::BPS,
        };
        // Short 4 contracts (400 USD) at 40 000: 0.01 BTC of value; 5 bps taker = 0.000005 BTC.
        let fee = p.apply_fill_paying(OrderSide::Sell, Px(400_000), Qty(4), false, &rates);
        assert_eq!(fee, 5_000_000);
        assert_eq!(p.avg_price(), Some(Px(400_000)));
        // Bought back at 32 000: 400 × (1/32 000 − 1/40 000) = 0.0025 BTC.
        p.apply_fill(OrderSide::Buy, Px(320_000), Qty(4));
        assert_eq!(p.realized(), 2_500_000_000);
        assert_eq!(p.net(None), 2_500_000_000 - 5_000_000);
    }

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

    #[test]
    fn fees_are_charged_per_fill_by_maker_or_taker() {
        // BTCUSDT units: price 0.01, quantity 0.00001, money 1e-7 USDT.
        // Maker 0.1 % (10 bps), taker 0.2 %, and a 0.5 bps rebate variant.
        let rates = FeeRates {
            maker_e8: 10 * FeeRates::BPS,
            taker_e8: 20 * FeeRates::BPS,
        };
        let mut p = Position::new();
        // Buy 0.002 BTC at 60 000.00 as taker: notional 120 USDT, fee 0.24 USDT.
        let fee = p.apply_fill_paying(OrderSide::Buy, Px(6_000_000), Qty(200), false, &rates);
        assert_eq!(fee, 2_400_000);
        // Sell it at 60 100.00 as maker: notional 120.2 USDT, fee 0.1202 USDT; gross +0.2.
        let fee = p.apply_fill_paying(OrderSide::Sell, Px(6_010_000), Qty(200), true, &rates);
        assert_eq!(fee, 1_202_000);
        assert_eq!(p.realized(), 2_000_000);
        assert_eq!(p.fees(), 3_602_000);
        assert_eq!(p.net(None), 2_000_000 - 3_602_000);
        assert_eq!(p.volume(), 1_200_000_000 + 1_202_000_000);
        assert_eq!(p.fills(), 2);
        // A rebate is received: a negative fee.
        let rebate = FeeRates {
            maker_e8: -FeeRates::BPS / 2,
            taker_e8: 0,
        };
        assert_eq!(rebate.fee(1_200_000_000, true), -60_000);
        assert_eq!(rebate.fee(1_200_000_000, false), 0);
        // Rounding: half a money unit away from zero, either sign.
        let one_e8 = FeeRates {
            maker_e8: 1,
            taker_e8: -1,
        };
        assert_eq!(one_e8.fee(50_000_000, true), 1);
        assert_eq!(one_e8.fee(49_999_999, true), 0);
        assert_eq!(one_e8.fee(50_000_000, false), -1);
        // No quantity, no fee and no fill.
        assert_eq!(
            p.apply_fill_paying(OrderSide::Buy, Px(1), Qty(0), false, &rates),
            0
        );
        assert_eq!(p.fills(), 2);
    }
}
