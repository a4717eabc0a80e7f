//! `[fees]` and `[backtest]`: what fills cost on each venue, and how a backtest measures a run.
//!
//! Fee rates are written in basis points of a fill's notional (negative for a rebate) and kept
//! as [`FeeRates`] in units of `10^-8`; a venue may have its own rates in `[fees.venues.<venue>]`,
//! the others take `[fees]`. Both tables default to what `configs/replay.toml` spells out: no
//! fees, a one-second period, 10 000 of the quote asset as capital.

use std::collections::BTreeMap;

use pinion_core::{Decimal, Venue};
use pinion_strategy::FeeRates;
use serde::Deserialize;

/// `[fees]`: maker and taker rates, in bps of the notional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeesConfig {
    /// A resting order's fill, bps (negative: a rebate).
    #[serde(default)]
    pub maker_bps: f64,
    /// A fill that took liquidity, bps.
    #[serde(default)]
    pub taker_bps: f64,
    /// Rates of one venue (`[fees.venues.binance-usdm]`), instead of the two above.
    #[serde(default)]
    pub venues: BTreeMap<String, VenueFeesConfig>,
}

/// `[fees.venues.<venue>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueFeesConfig {
    /// A resting order's fill, bps.
    pub maker_bps: f64,
    /// A fill that took liquidity, bps.
    pub taker_bps: f64,
}

/// `[backtest]`: how `pinion backtest` samples and measures a run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestConfig {
    /// Event-time period of the equity samples and of the returns Sharpe and Sortino are
    /// taken over, ms.
    #[serde(default = "default_period_ms")]
    pub period_ms: u64,
    /// Capital the return is measured against, in the quote asset.
    #[serde(default = "default_capital")]
    pub capital: String,
    /// Fills recorded per instrument at most (the buffer is allocated before the run).
    #[serde(default = "default_max_fills")]
    pub max_fills: usize,
    /// Equity samples recorded per instrument at most.
    #[serde(default = "default_max_samples")]
    pub max_samples: usize,
}

fn default_period_ms() -> u64 {
    1_000
}

fn default_capital() -> String {
    "10000".to_owned()
}

fn default_max_fills() -> usize {
    1 << 20
}

fn default_max_samples() -> usize {
    1 << 18
}

impl Default for BacktestConfig {
    fn default() -> Self {
        Self {
            period_ms: default_period_ms(),
            capital: default_capital(),
            max_fills: default_max_fills(),
            max_samples: default_max_samples(),
        }
    }
}

/// The fee rates of every venue, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeeSchedule {
    /// Rates of venues not named below.
    pub default: FeeRates,
    /// Rates of named venues.
    pub venues: Vec<(Venue, FeeRates)>,
}

impl FeeSchedule {
    /// The rates fills on `venue` pay.
    pub fn for_venue(&self, venue: Venue) -> FeeRates {
        self.venues
            .iter()
            .find(|(v, _)| *v == venue)
            .map_or(self.default, |(_, r)| *r)
    }
}

/// `[backtest]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestSpec {
    /// Sample and return period, event-time ns.
    pub period_ns: u64,
    /// Capital, in the quote asset (a positive decimal as written).
    pub capital: f64,
    /// Fills recorded per instrument at most.
    pub max_fills: usize,
    /// Equity samples recorded per instrument at most.
    pub max_samples: usize,
    /// Record fills and equity samples during the run (`pinion backtest`; `replay` does not).
    pub record: bool,
}

/// Most fills or samples recorded per instrument (each buffer is allocated before the run).
pub const MAX_RECORDED: usize = 1 << 24;

/// Checks `[fees]`; problems as `(key, message)`.
pub(super) fn fees(cfg: &FeesConfig, problems: &mut Vec<(String, String)>) -> FeeSchedule {
    // A rate in bps as units of `10^-8`: finite, within ±1000 bps (10 %).
    let mut rate = |key: String, bps: f64| -> i64 {
        if bps.is_finite() && bps.abs() <= 1_000.0 {
            (bps * FeeRates::BPS as f64).round() as i64
        } else {
            problems.push((
                key,
                format!("{bps} must be a number of bps from -1000 to 1000"),
            ));
            0
        }
    };
    let default = FeeRates {
        maker_e8: rate("fees.maker_bps".to_owned(), cfg.maker_bps),
        taker_e8: rate("fees.taker_bps".to_owned(), cfg.taker_bps),
    };
    let mut venues = Vec::new();
    let mut bad_venues = Vec::new();
    for (name, v) in &cfg.venues {
        let maker_e8 = rate(format!("fees.venues.{name}.maker_bps"), v.maker_bps);
        let taker_e8 = rate(format!("fees.venues.{name}.taker_bps"), v.taker_bps);
        match name.parse::<Venue>() {
            Ok(venue) => venues.push((venue, FeeRates { maker_e8, taker_e8 })),
            Err(e) => bad_venues.push((format!("fees.venues.{name}"), e.to_string())),
        }
    }
    problems.extend(bad_venues);
    FeeSchedule { default, venues }
}

/// Checks `[backtest]`; problems as `(key, message)`.
pub(super) fn backtest(
    cfg: &BacktestConfig,
    problems: &mut Vec<(String, String)>,
) -> Option<BacktestSpec> {
    let before = problems.len();
    if cfg.period_ms == 0 || cfg.period_ms > 86_400_000 {
        problems.push((
            "backtest.period_ms".to_owned(),
            format!("{} must be 1 to 86400000 (a day)", cfg.period_ms),
        ));
    }
    let capital = match Decimal::parse(cfg.capital.as_bytes()) {
        Ok(d) if d.is_positive() => cfg.capital.parse::<f64>().ok(),
        Ok(_) => {
            problems.push((
                "backtest.capital".to_owned(),
                format!("{:?} must be positive", cfg.capital),
            ));
            None
        }
        Err(e) => {
            problems.push((
                "backtest.capital".to_owned(),
                format!("{:?} is not a plain decimal: {e}", cfg.capital),
            ));
            None
        }
    };
    for (key, n) in [
        ("backtest.max_fills", cfg.max_fills),
        ("backtest.max_samples", cfg.max_samples),
    ] {
        if !(1..=MAX_RECORDED).contains(&n) {
            problems.push((key.to_owned(), format!("{n} must be 1 to {MAX_RECORDED}")));
        }
    }
    if problems.len() != before {
        return None;
    }
    Some(BacktestSpec {
        period_ns: cfg.period_ms * 1_000_000,
        capital: capital?,
        max_fills: cfg.max_fills,
        max_samples: cfg.max_samples,
        record: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_take_bps_and_per_venue_rates() {
        let cfg: FeesConfig = toml::from_str(
            "maker_bps = 10.0\ntaker_bps = 10\n[venues.binance-usdm]\nmaker_bps = -0.5\ntaker_bps = 5",
        )
        .unwrap();
        let mut p = Vec::new();
        let s = fees(&cfg, &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.for_venue(Venue::BinanceSpot).maker_e8, 100_000);
        assert_eq!(s.for_venue(Venue::BinanceUsdm).maker_e8, -5_000);
        assert_eq!(s.for_venue(Venue::BinanceUsdm).taker_e8, 50_000);
    }

    #[test]
    fn bad_fees_and_backtest_keys_are_named() {
        let cfg: FeesConfig =
            toml::from_str("maker_bps = 5000.0\n[venues.nowhere]\nmaker_bps = 1\ntaker_bps = 1")
                .unwrap();
        let mut p = Vec::new();
        fees(&cfg, &mut p);
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["fees.maker_bps", "fees.venues.nowhere"]);
        let bt = BacktestConfig {
            period_ms: 0,
            capital: "-1".to_owned(),
            max_fills: 0,
            ..BacktestConfig::default()
        };
        let mut p = Vec::new();
        assert!(backtest(&bt, &mut p).is_none());
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "backtest.period_ms",
                "backtest.capital",
                "backtest.max_fills"
            ]
        );
        assert!(toml::from_str::<BacktestConfig>("period = 1").is_err());
    }
}
