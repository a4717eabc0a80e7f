//! `[strategy]`, `[risk]` and `[gateway]`: the typed [`TradingSpec`], with every decimal parsed
//! here, once.

use pinion_core::Decimal;

use super::super::Config;
use super::super::trading::{ImbalanceSpec, RiskSpec, StrategySpec, TradingSpec, VenueSpec};
use super::Problems;

/// A decimal that must be above zero; `None` (and a problem) otherwise.
fn positive_decimal(p: &mut Problems, key: &str, s: &str) -> Option<Decimal> {
    match Decimal::parse(s.as_bytes()) {
        Err(e) => {
            p.add(key, format!("{s:?} is not a plain decimal: {e}"));
            None
        }
        Ok(d) if !d.is_positive() => {
            p.add(key, format!("{s:?} must be positive"));
            None
        }
        Ok(d) => Some(d),
    }
}

/// The strategy, its risk limits and the venue; `None` when any of them has a problem (each
/// problem is reported).
pub(super) fn trading(cfg: &Config, p: &mut Problems) -> Option<TradingSpec> {
    let strategy = strategy(cfg, p);
    let risk = risk(cfg, p);
    let venue = venue(cfg, p);
    Some(TradingSpec {
        strategy: strategy?,
        risk: risk?,
        venue: venue?,
    })
}

fn strategy(cfg: &Config, p: &mut Problems) -> Option<StrategySpec> {
    let st = &cfg.strategy;
    let before = p.0.len();
    if st.levels == 0 || st.levels > pinion_core::TOP_LEVELS {
        p.add(
            "strategy.levels",
            format!("{} must be 1..={}", st.levels, pinion_core::TOP_LEVELS),
        );
    }
    if !(st.threshold > 0.0 && st.threshold < 1.0) {
        p.add(
            "strategy.threshold",
            format!("{} must be strictly between 0 and 1", st.threshold),
        );
    }
    if st.stale_after_ms == 0 {
        p.add("strategy.stale_after_ms", "must be at least 1");
    }
    let order_qty = positive_decimal(p, "strategy.order_qty", &st.order_qty);
    match st.kind.as_str() {
        "imbalance" if p.0.len() == before => Some(StrategySpec::Imbalance(ImbalanceSpec {
            levels: st.levels,
            enter_permille: ((st.threshold * 1000.0).round() as i64).clamp(1, 1000),
            order_qty: order_qty?,
            stale_after_ns: st.stale_after_ms.saturating_mul(1_000_000),
        })),
        "imbalance" => None,
        other => {
            p.add(
                "strategy.kind",
                format!("unknown strategy {other:?} (imbalance)"),
            );
            None
        }
    }
}

fn risk(cfg: &Config, p: &mut Problems) -> Option<RiskSpec> {
    let rk = &cfg.risk;
    let before = p.0.len();
    let max_order_qty = positive_decimal(p, "risk.max_order_qty", &rk.max_order_qty);
    let max_position = positive_decimal(p, "risk.max_position", &rk.max_position);
    let max_notional = positive_decimal(p, "risk.max_notional", &rk.max_notional);
    if rk.order_burst == 0 {
        p.add("risk.order_burst", "must be at least 1");
    }
    if rk.max_open_orders == 0 {
        p.add("risk.max_open_orders", "must be at least 1");
    }
    if rk.orders_per_second == 0 {
        p.add("risk.orders_per_second", "must be at least 1");
    }
    if rk.price_band_bps == 0 || rk.price_band_bps > 10_000 {
        p.add(
            "risk.price_band_bps",
            format!("{} must be 1..=10000", rk.price_band_bps),
        );
    }
    if p.0.len() != before {
        return None;
    }
    Some(RiskSpec {
        max_order_qty: max_order_qty?,
        max_notional: max_notional?,
        max_position: max_position?,
        max_open_orders: rk.max_open_orders,
        orders_per_second: rk.orders_per_second,
        order_burst: rk.order_burst,
        price_band_bps: rk.price_band_bps,
    })
}

fn venue(cfg: &Config, p: &mut Problems) -> Option<VenueSpec> {
    let gw = &cfg.gateway;
    match gw.venue.as_str() {
        "sim" => Some(VenueSpec::Sim {
            round_trip_ns: gw.latency_us.saturating_mul(1_000),
        }),
        other => {
            p.add("gateway.venue", format!("unknown venue {other:?} (sim)"));
            None
        }
    }
}
