//! `[watchdog]` and `[heartbeat]`: liveness reported outside the process (see
//! [`crate::watchdog`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::watchdog::HeartbeatSettings;

/// `[watchdog]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchdogConfig {
    /// Under systemd (`Type=notify`, `WatchdogSec=`): send `READY=1` once the stages run and
    /// `WATCHDOG=1` while every stage thread makes progress. Without `$NOTIFY_SOCKET` nothing
    /// is sent (a start-up note says so).
    #[serde(default)]
    pub enabled: bool,
}

/// `[heartbeat]`: an HTTPS GET to `url` every `period_s` while every stage thread makes
/// progress.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// `https://host[:port]/path?query` (a healthchecks-style ping URL).
    pub url: String,
    /// Seconds between pings (0.1 to 86400).
    #[serde(default = "default_period_s")]
    pub period_s: f64,
    /// PEM certificates trusted besides the public roots (a private monitoring server).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_period_s() -> f64 {
    60.0
}

/// The checked heartbeat, or the problems (key, message).
pub(super) fn heartbeat(
    cfg: &HeartbeatConfig,
    problems: &mut Vec<(String, String)>,
) -> Option<HeartbeatSettings> {
    let split = HeartbeatSettings::split_url(&cfg.url)
        .map_err(|why| problems.push(("heartbeat.url".to_owned(), format!("{:?}: {why}", cfg.url))))
        .ok();
    let period = if cfg.period_s.is_finite() && (0.1..=86_400.0).contains(&cfg.period_s) {
        Some(Duration::from_secs_f64(cfg.period_s))
    } else {
        problems.push((
            "heartbeat.period_s".to_owned(),
            format!("{}: must be from 0.1 to 86400", cfg.period_s),
        ));
        None
    };
    let ((base, path), period) = (split?, period?);
    Some(HeartbeatSettings {
        base,
        path,
        period,
        ca_file: cfg.ca_file.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_is_checked_and_its_problems_named() {
        let mut p = Vec::new();
        let cfg = HeartbeatConfig {
            url: "https://hc-ping.com/abc".to_owned(),
            period_s: 30.0,
            ca_file: None,
        };
        let h = heartbeat(&cfg, &mut p).expect("valid");
        assert!(p.is_empty());
        assert_eq!(
            (h.base.as_str(), h.path.as_str()),
            ("https://hc-ping.com", "/abc")
        );
        assert_eq!(h.period, Duration::from_secs(30));
        let bad = HeartbeatConfig {
            url: "http://hc-ping.com/abc".to_owned(),
            period_s: 0.0,
            ca_file: None,
        };
        assert!(heartbeat(&bad, &mut p).is_none());
        let keys: Vec<_> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["heartbeat.url", "heartbeat.period_s"]);
    }
}
