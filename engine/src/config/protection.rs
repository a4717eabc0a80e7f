//! `[protection]`: the position's protective exits, held by the engine
//! ([`Protector`](pinion_strategy::Protector)): stop-loss, take-profit (a one-cancels-other
//! pair) and a trailing stop, in basis points; each is off unless set.
//!
//! `[strategy] protect` says where they are kept ([`ProtectMode`]): by the engine (`"engine"`,
//! the default), resting on the exchange as native orders (`"exchange"`), or both. A venue
//! without native protective orders (the simulated venue of replays and backtests) keeps them
//! in the engine whatever is asked, and the report says so.

use pinion_strategy::ProtectParams;
use serde::Deserialize;

/// `[protection]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectionConfig {
    /// Stop-loss: the closing price this far against the entry, bps.
    #[serde(default)]
    pub stop_loss_bps: Option<f64>,
    /// Take-profit: the closing price this far in favour of the entry, bps.
    #[serde(default)]
    pub take_profit_bps: Option<f64>,
    /// Trailing stop: the closing price this far back from its best since the position opened,
    /// bps.
    #[serde(default)]
    pub trailing_bps: Option<f64>,
    /// The closing order's limit, this far through the touch, bps.
    #[serde(default = "default_slippage")]
    pub slippage_bps: f64,
    /// After an exit fires, the strategy is not asked for this long (event time), ms.
    #[serde(default = "default_cooldown")]
    pub cooldown_ms: u64,
}

fn default_slippage() -> f64 {
    10.0
}

fn default_cooldown() -> u64 {
    1_000
}

impl Default for ProtectionConfig {
    fn default() -> Self {
        Self {
            stop_loss_bps: None,
            take_profit_bps: None,
            trailing_bps: None,
            slippage_bps: default_slippage(),
            cooldown_ms: default_cooldown(),
        }
    }
}

/// Where the protective exits are kept: `[strategy] protect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtectMode {
    /// Held by the engine, checked against every view ([`Protector`](pinion_strategy::Protector)).
    #[default]
    Engine,
    /// Native stop-loss / take-profit orders resting on the exchange, sized to the position.
    Exchange,
    /// Both: native orders, and the engine's exits as a second line.
    Both,
}

impl ProtectMode {
    /// As configs name it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Engine => "engine",
            Self::Exchange => "exchange",
            Self::Both => "both",
        }
    }

    /// Whether native orders rest on a venue that has them (`native`).
    pub const fn on_exchange(self, native: bool) -> bool {
        native && !matches!(self, Self::Engine)
    }

    /// Whether the engine holds the exits on a venue with (`native`) or without native orders:
    /// always, but under `"exchange"` on a venue that has them.
    pub const fn engine_held(self, native: bool) -> bool {
        !(native && matches!(self, Self::Exchange))
    }

    /// What a run with this mode on a venue with (`native`) or without native orders keeps,
    /// for reports: `"exchange"`, `"engine"`, `"both"`, or `"engine (no native orders)"` when
    /// the venue could not take what was asked.
    pub const fn effective(self, native: bool) -> &'static str {
        match (self, native) {
            (Self::Engine, _) => "engine",
            (_, false) => "engine (venue has no native protective orders)",
            (Self::Exchange, true) => "exchange",
            (Self::Both, true) => "both",
        }
    }
}

/// `[strategy] protect`, checked: a known mode, and one that keeps orders on the exchange only
/// with an exit to keep.
pub(super) fn protect_mode(
    value: &str,
    params: &ProtectParams,
    problems: &mut Vec<(String, String)>,
) -> ProtectMode {
    let mode = match value {
        "engine" => ProtectMode::Engine,
        "exchange" => ProtectMode::Exchange,
        "both" => ProtectMode::Both,
        other => {
            problems.push((
                "strategy.protect".to_owned(),
                format!("{other:?} is not one of \"engine\", \"exchange\", \"both\""),
            ));
            return ProtectMode::Engine;
        }
    };
    if mode != ProtectMode::Engine && !params.any() {
        problems.push((
            "strategy.protect".to_owned(),
            format!(
                "{:?} keeps protective orders, but [protection] sets none of stop_loss_bps, \
                 take_profit_bps, trailing_bps",
                mode.as_str()
            ),
        ));
    }
    mode
}

/// The exits in ppm, or the problems (key, message) with the table.
pub(super) fn protection(
    cfg: &ProtectionConfig,
    problems: &mut Vec<(String, String)>,
) -> ProtectParams {
    let mut ppm = |key: &'static str, bps: f64, max: f64| -> Option<u32> {
        if bps.is_finite() && bps > 0.0 && bps <= max {
            Some((bps * 100.0).round() as u32)
        } else {
            problems.push((
                key.to_owned(),
                format!("{bps} must be above 0 and at most {max}"),
            ));
            None
        }
    };
    let stop_loss_ppm = cfg
        .stop_loss_bps
        .and_then(|b| ppm("protection.stop_loss_bps", b, 10_000.0));
    let take_profit_ppm = cfg
        .take_profit_bps
        .and_then(|b| ppm("protection.take_profit_bps", b, 1_000_000.0));
    let trailing_ppm = cfg
        .trailing_bps
        .and_then(|b| ppm("protection.trailing_bps", b, 10_000.0));
    let slippage_ppm = if cfg.slippage_bps == 0.0 {
        0
    } else {
        ppm("protection.slippage_bps", cfg.slippage_bps, 1_000.0).unwrap_or(0)
    };
    ProtectParams {
        stop_loss_ppm,
        take_profit_ppm,
        trailing_ppm,
        slippage_ppm,
        cooldown_ns: cfg.cooldown_ms.saturating_mul(1_000_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bps_become_ppm_and_bad_values_are_named() {
        let mut p = Vec::new();
        let cfg = ProtectionConfig {
            stop_loss_bps: Some(50.0),
            take_profit_bps: Some(120.5),
            trailing_bps: None,
            slippage_bps: 10.0,
            cooldown_ms: 250,
        };
        let got = protection(&cfg, &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(got.stop_loss_ppm, Some(5_000));
        assert_eq!(got.take_profit_ppm, Some(12_050));
        assert_eq!(got.trailing_ppm, None);
        assert_eq!(got.slippage_ppm, 1_000);
        assert_eq!(got.cooldown_ns, 250_000_000);
        let bad = ProtectionConfig {
            stop_loss_bps: Some(-1.0),
            trailing_bps: Some(f64::NAN),
            ..ProtectionConfig::default()
        };
        protection(&bad, &mut p);
        let keys: Vec<_> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["protection.stop_loss_bps", "protection.trailing_bps"]
        );
    }

    #[test]
    fn protect_takes_three_modes_and_needs_an_exit_to_keep_on_the_exchange() {
        let with_stop = ProtectParams {
            stop_loss_ppm: Some(5_000),
            ..ProtectParams::default()
        };
        let mut p = Vec::new();
        for (text, mode) in [
            ("engine", ProtectMode::Engine),
            ("exchange", ProtectMode::Exchange),
            ("both", ProtectMode::Both),
        ] {
            assert_eq!(protect_mode(text, &with_stop, &mut p), mode);
            assert_eq!(mode.as_str(), text);
        }
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            protect_mode("engine", &ProtectParams::default(), &mut p),
            ProtectMode::Engine
        );
        assert!(p.is_empty(), "engine-held with no exits is today's default");
        protect_mode("Exchange", &with_stop, &mut p);
        protect_mode("exchange", &ProtectParams::default(), &mut p);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].1.contains("\"Exchange\" is not one of"), "{p:?}");
        assert!(p[1].1.contains("sets none of"), "{p:?}");
        assert!(p.iter().all(|(k, _)| k == "strategy.protect"));
    }

    #[test]
    fn a_venue_without_native_orders_falls_back_to_the_engine() {
        use ProtectMode::*;
        // (mode, native) → (engine-held, on the exchange)
        for (mode, native, engine, exchange) in [
            (Engine, true, true, false),
            (Engine, false, true, false),
            (Exchange, true, false, true),
            (Exchange, false, true, false),
            (Both, true, true, true),
            (Both, false, true, false),
        ] {
            assert_eq!(mode.engine_held(native), engine, "{mode:?} {native}");
            assert_eq!(mode.on_exchange(native), exchange, "{mode:?} {native}");
        }
        assert!(Exchange.effective(false).starts_with("engine ("));
        assert_eq!(Both.effective(true), "both");
    }
}
