//! `[protection]`: the position's protective exits, held by the engine
//! ([`Protector`](pinion_strategy::Protector)): stop-loss, take-profit (a one-cancels-other
//! pair) and a trailing stop, in basis points; each is off unless set.

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
}
