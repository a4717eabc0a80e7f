//! `[watchdog]` and `[heartbeat]`: liveness reported outside the process (see
//! [`crate::watchdog`]).

use serde::Deserialize;

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
