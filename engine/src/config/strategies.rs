//! The per-kind tables under `[strategy]`: `[strategy.market_making]`, `[strategy.spread_capture]`,
//! `[strategy.quote_chase]`, `[strategy.momentum]`, `[strategy.grid]`, `[strategy.pairs]`. Raw as written; checked
//! and typed by [`Config::validate`](super::Config::validate) into a
//! [`StrategySpec`](super::StrategySpec).
//!
//! Only the table of the kind `strategy.kind` names may be present (another kind's table is a
//! mistake, reported). A key left out takes the default written beside it; distances are in
//! basis points of a price (decimals allowed: `0.5`), times in milliseconds of event time.

use serde::Deserialize;

/// `[strategy.market_making]`: quotes around a fair price, skewed against inventory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketMakingConfig {
    /// `"mid"` or `"microprice"` (default `"mid"`).
    pub fair: String,
    /// Distance of the innermost quotes from the fair price, bps (default 1).
    pub half_spread_bps: f64,
    /// Shift of both quotes against a position of `risk.max_position`, bps (default 1).
    pub skew_bps: f64,
    /// How far the fair price must move before the quotes move, bps (default 0.5).
    pub requote_bps: f64,
    /// Quotes per side (default 1).
    pub levels: usize,
    /// Extra distance of each further level, bps (default 1).
    pub level_step_bps: f64,
}

impl Default for MarketMakingConfig {
    fn default() -> Self {
        Self {
            fair: "mid".to_owned(),
            half_spread_bps: 1.0,
            skew_bps: 1.0,
            requote_bps: 0.5,
            levels: 1,
            level_step_bps: 1.0,
        }
    }
}

/// `[strategy.spread_capture]`: quotes inside a wide spread.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpreadCaptureConfig {
    /// Spread at or above which it quotes, bps of the mid (default 1).
    pub enter_spread_bps: f64,
    /// Spread below which it steps back, bps (default 0.5; at most `enter_spread_bps`).
    pub exit_spread_bps: f64,
    /// Ticks inside the touch each quote goes; 0 joins it (default 1).
    pub improve_ticks: u32,
}

impl Default for SpreadCaptureConfig {
    fn default() -> Self {
        Self {
            enter_spread_bps: 1.0,
            exit_spread_bps: 0.5,
            improve_ticks: 1,
        }
    }
}

/// `[strategy.quote_chase]`: works `strategy.order_qty` as a maker at the touch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuoteChaseConfig {
    /// Side of the first chase, `"buy"` or `"sell"` (default `"buy"`).
    pub side: String,
    /// Ticks the order improves on the touch; 0 joins it (default 0).
    pub improve_ticks: u32,
    /// Highest buy / lowest sell price, a decimal string (default none).
    pub limit_price: Option<String>,
    /// How far from the touch at its start a chase may follow, bps (default 5; 0 = no
    /// relative limit).
    pub limit_bps: f64,
    /// A chase older than this gives up, ms of event time (default 2000).
    pub give_up_ms: u64,
    /// Start the next chase when one ends (the other side after a completed one) (default true).
    pub cycle: bool,
}

impl Default for QuoteChaseConfig {
    fn default() -> Self {
        Self {
            side: "buy".to_owned(),
            improve_ticks: 0,
            limit_price: None,
            limit_bps: 5.0,
            give_up_ms: 2_000,
            cycle: true,
        }
    }
}

/// `[strategy.momentum]`: short against long moving averages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MomentumConfig {
    /// `"trades"`, `"mid"` or `"candles"` (default `"trades"`).
    pub source: String,
    /// Length of a sample, ms of event time (default 100); not used with `"candles"`.
    pub sample_ms: u64,
    /// With `source = "candles"`: the candle length, ms (default 60000, one minute). The
    /// venue's klines of that length are used where the feed subscribes them, else candles
    /// are built from trades in trade time.
    pub candle_ms: u64,
    /// Samples of the short average (default 10).
    pub short_samples: usize,
    /// Samples of the long average (default 50, at most 256).
    pub long_samples: usize,
    /// How far apart the averages must be for a signal, bps of the long one (default 0.5).
    pub min_gap_bps: f64,
    /// Price changes of the RSI filter; 0 = no filter (default 14).
    pub rsi_period: usize,
    /// RSI at or above which an up signal is ignored (default 70).
    pub rsi_overbought: u32,
    /// RSI at or below which a down signal is ignored (default 30).
    pub rsi_oversold: u32,
}

impl Default for MomentumConfig {
    fn default() -> Self {
        Self {
            source: "trades".to_owned(),
            sample_ms: 100,
            candle_ms: 60_000,
            short_samples: 10,
            long_samples: 50,
            min_gap_bps: 0.5,
            rsi_period: 14,
            rsi_overbought: 70,
            rsi_oversold: 30,
        }
    }
}

/// `[strategy.grid]`: fixed price levels, buy low, sell high.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GridConfig {
    /// The lowest level's price, a decimal string (required).
    pub lower: Option<String>,
    /// The highest level's price, a decimal string (required).
    pub upper: Option<String>,
    /// Number of levels (default 10, at most 32).
    pub levels: usize,
    /// `"arithmetic"` or `"geometric"` (default `"arithmetic"`).
    pub spacing: String,
}

impl Default for GridConfig {
    fn default() -> Self {
        Self {
            lower: None,
            upper: None,
            levels: 10,
            spacing: "arithmetic".to_owned(),
        }
    }
}

/// `[strategy.pairs]`: two instruments (the instance's two `instruments`, its legs, in order)
/// traded together on the ratio of their mids.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PairsConfig {
    /// Distance of the ratio from its mean that opens the pair, bps (default 10).
    pub entry_bps: f64,
    /// Distance within which the open pair closes, bps (default 2; below `entry_bps`).
    pub exit_bps: f64,
    /// The ratio is sampled once per this much event time, ms (default 100).
    pub sample_ms: u64,
    /// Length of the ratio's exponential mean, samples (default 600).
    pub mean_samples: u32,
    /// Samples before the pair may open (default 100).
    pub warmup_samples: u32,
    /// Each leg's size in its quote asset, a decimal string (required).
    pub notional: Option<String>,
    /// Wait after a refused order on a leg, ms of event time (default 1000).
    pub cooldown_ms: u64,
    /// A leg's book older than this is not traded on, ms of event time (default 1000).
    pub max_age_ms: u64,
}

impl Default for PairsConfig {
    fn default() -> Self {
        Self {
            entry_bps: 10.0,
            exit_bps: 2.0,
            sample_ms: 100,
            mean_samples: 600,
            warmup_samples: 100,
            notional: None,
            cooldown_ms: 1_000,
            max_age_ms: 1_000,
        }
    }
}
