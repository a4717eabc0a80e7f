//! The typed trading settings: which strategy, its risk limits, which venue. Built by
//! [`Config::validate`](super::Config::validate) from `[strategy]`, `[risk]` and `[gateway]`,
//! with every decimal parsed there, once.
//!
//! Quantities and notionals are kept as exact [`Decimal`]s because each instrument counts in its
//! own units; [`TradingSpec::in_units`] converts them for one instrument, exactly or with an error
//! that says the instrument cannot express them. This is the one place config values become
//! instrument units: the strategy stage and the venue both take the result.

use pinion_core::{Decimal, DecimalError, InstrumentSpec, Qty};
use pinion_strategy::{ImbalanceParams, RiskLimits};

/// The strategy a config selects, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategySpec {
    /// `kind = "imbalance"`: join the touch on the side the book leans towards.
    Imbalance(ImbalanceSpec),
}

/// The imbalance strategy's parameters, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImbalanceSpec {
    /// Levels per side the imbalance is taken over.
    pub levels: usize,
    /// Entry threshold in per-mille of imbalance (`1..=1000`).
    pub enter_permille: i64,
    /// Size of each order.
    pub order_qty: Decimal,
    /// A working order older than this (event time) is cancelled, ns.
    pub stale_after_ns: u64,
}

/// The pre-trade risk limits, checked; quantities in the instrument's own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskSpec {
    /// Largest quantity of one order.
    pub max_order_qty: Decimal,
    /// Largest notional (price × quantity, in the quote asset) of one order.
    pub max_notional: Decimal,
    /// Largest absolute position.
    pub max_position: Decimal,
    /// Most orders open at once.
    pub max_open_orders: u32,
    /// Sustained order rate, orders per second.
    pub orders_per_second: u32,
    /// Orders that may go at once after a quiet spell.
    pub order_burst: u32,
    /// Largest distance of a limit price from the mid, basis points.
    pub price_band_bps: u32,
}

/// Where orders go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VenueSpec {
    /// `venue = "sim"`: the in-process simulated venue.
    Sim {
        /// Round trip of a request and its answer, ns.
        round_trip_ns: u64,
    },
}

/// What one instrument trades with: the strategy, its risk and the venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradingSpec {
    /// The strategy.
    pub strategy: StrategySpec,
    /// Its risk limits.
    pub risk: RiskSpec,
    /// The venue.
    pub venue: VenueSpec,
}

/// A strategy's parameters in one instrument's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyParams {
    /// See [`StrategySpec::Imbalance`].
    Imbalance(ImbalanceParams),
}

impl TradingSpec {
    /// The strategy's parameters and the risk limits in the units of `spec`; an error when the
    /// instrument's units cannot express a configured quantity exactly (or it overflows).
    pub fn in_units(
        &self,
        spec: &InstrumentSpec,
    ) -> Result<(StrategyParams, RiskLimits), DecimalError> {
        let limits = self.risk.in_units(spec)?;
        let params = match self.strategy {
            StrategySpec::Imbalance(im) => StrategyParams::Imbalance(ImbalanceParams {
                levels: im.levels,
                enter_permille: im.enter_permille,
                order_qty: Qty(im.order_qty.in_units(spec.qty_decimals)?),
                max_position: limits.max_position,
                stale_after_ns: im.stale_after_ns,
            }),
        };
        Ok((params, limits))
    }
}

impl RiskSpec {
    /// The limits in the units of `spec`.
    pub fn in_units(&self, spec: &InstrumentSpec) -> Result<RiskLimits, DecimalError> {
        let notional_decimals = spec.price_decimals.saturating_add(spec.qty_decimals);
        Ok(RiskLimits {
            max_order_qty: Qty(self.max_order_qty.in_units(spec.qty_decimals)?),
            max_notional: i128::from(self.max_notional.in_units(notional_decimals)?),
            max_position: Qty(self.max_position.in_units(spec.qty_decimals)?),
            max_open_orders: self.max_open_orders,
            orders_per_sec: self.orders_per_second,
            order_burst: self.order_burst,
            price_band_bps: self.price_band_bps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_core::Venue;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s.as_bytes()).unwrap()
    }

    fn trading() -> TradingSpec {
        TradingSpec {
            strategy: StrategySpec::Imbalance(ImbalanceSpec {
                levels: 5,
                enter_permille: 600,
                order_qty: d("0.001"),
                stale_after_ns: 1_000_000_000,
            }),
            risk: RiskSpec {
                max_order_qty: d("0.01"),
                max_notional: d("1000"),
                max_position: d("0.1"),
                max_open_orders: 10,
                orders_per_second: 100,
                order_burst: 10,
                price_band_bps: 50,
            },
            venue: VenueSpec::Sim {
                round_trip_ns: 100_000,
            },
        }
    }

    #[test]
    fn converts_into_each_instruments_units() {
        let btc = InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001").unwrap();
        let (StrategyParams::Imbalance(p), l) = trading().in_units(&btc).unwrap();
        assert_eq!(p.order_qty, Qty(100));
        assert_eq!(p.max_position, Qty(10_000));
        assert_eq!(l.max_order_qty, Qty(1_000));
        // 1000 quote units at 2 + 5 decimals.
        assert_eq!(l.max_notional, 1_000 * 10_000_000);
        // A whole-unit step cannot express 0.001.
        let coarse = InstrumentSpec::new(Venue::BinanceSpot, "NKNUSDT", "0.0001", "1").unwrap();
        assert_eq!(
            trading().in_units(&coarse),
            Err(DecimalError::TooPrecise(0))
        );
    }
}
