//! `[bot]`: the operator bot (a Telegram bot: see [`crate::bot`]). Present means on.
//!
//! ```toml
//! [bot]
//! api_url = "https://api.telegram.org"   # or the exchange simulator's `bot-api` fake
//! token_env = "PINION_BOT_TOKEN"          # the token is read from this variable, never the file
//! users = [123456789]                     # only these user ids are answered
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[bot]`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotConfig {
    /// The Bot API's base URL, `https://host[:port]`.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// The environment variable holding the bot token.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// A PEM file of extra trusted certificates (the fake's); the public roots are always
    /// trusted.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The user ids answered; anyone else is ignored (and counted). Alerts go to their private
    /// chats.
    pub users: Vec<i64>,
    /// How long one `getUpdates` long poll waits, seconds (1 to 50).
    #[serde(default = "default_poll_timeout_s")]
    pub poll_timeout_s: u64,
    /// How long a `/kill`, `/flatten`, `/buy`, `/sell` or `/cancel` waits for its
    /// confirmation, seconds.
    #[serde(default = "default_kill_confirm_s")]
    pub kill_confirm_s: f64,
    /// Fill alerts, gathered for `fill_coalesce_ms` after the first.
    #[serde(default = "default_true")]
    pub fill_alerts: bool,
    /// How long fills are gathered into one alert, ms.
    #[serde(default = "default_fill_coalesce_ms")]
    pub fill_coalesce_ms: u64,
    /// No record for this long in a live run is a heartbeat loss, seconds (0: not watched).
    #[serde(default = "default_heartbeat_s")]
    pub heartbeat_s: f64,
    /// A summary this often, seconds (0: none).
    #[serde(default = "default_summary_s")]
    pub summary_interval_s: f64,
    /// Messages per second to one chat (the API allows about 1).
    #[serde(default = "default_per_chat")]
    pub messages_per_chat_per_s: u32,
    /// Messages per second overall (the API allows about 30).
    #[serde(default = "default_global")]
    pub messages_per_s: u32,
    /// The longest back-off while the API is unreachable, seconds.
    #[serde(default = "default_backoff_cap_s")]
    pub backoff_cap_s: f64,
    /// The file the operators' `/alert` alarms are kept in, so they survive a restart (none:
    /// kept in memory only).
    #[serde(default)]
    pub alerts_file: Option<PathBuf>,
}

fn default_api_url() -> String {
    "https://api.telegram.org".to_owned()
}
fn default_token_env() -> String {
    "PINION_BOT_TOKEN".to_owned()
}
fn default_poll_timeout_s() -> u64 {
    25
}
fn default_kill_confirm_s() -> f64 {
    30.0
}
fn default_true() -> bool {
    true
}
fn default_fill_coalesce_ms() -> u64 {
    2_000
}
fn default_heartbeat_s() -> f64 {
    15.0
}
fn default_summary_s() -> f64 {
    3_600.0
}
fn default_per_chat() -> u32 {
    1
}
fn default_global() -> u32 {
    30
}
fn default_backoff_cap_s() -> f64 {
    30.0
}

/// `[bot]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BotSettings {
    /// The Bot API's base URL.
    pub api_url: String,
    /// The environment variable holding the token.
    pub token_env: String,
    /// Extra trusted certificates.
    pub ca_file: Option<PathBuf>,
    /// The user ids answered.
    pub users: Vec<i64>,
    /// One long poll's wait.
    pub poll_timeout: Duration,
    /// A `/kill`'s confirmation window.
    pub kill_confirm: Duration,
    /// Fill alerts' gathering window (`None`: no fill alerts).
    pub fill_alerts: Option<Duration>,
    /// Heartbeat-loss time (`None`: not watched).
    pub heartbeat: Option<Duration>,
    /// Summary period (`None`: none).
    pub summary: Option<Duration>,
    /// Messages per second to one chat.
    pub per_chat: u32,
    /// Messages per second overall.
    pub global: u32,
    /// The longest outage back-off.
    pub backoff_cap: Duration,
    /// Where the operators' alarms are kept (`None`: in memory only).
    pub alerts_file: Option<PathBuf>,
}

impl BotSettings {
    /// Settings for the Bot API at `api_url` answering `users`, every other key at its
    /// default (for tests and tools that build the bot without a file).
    pub fn new(api_url: &str, users: Vec<i64>) -> Self {
        BotConfig {
            api_url: api_url.to_owned(),
            users,
            ..BotConfig::empty()
        }
        .settings()
    }
}

impl BotConfig {
    fn empty() -> Self {
        BotConfig {
            api_url: default_api_url(),
            token_env: default_token_env(),
            ca_file: None,
            users: Vec::new(),
            poll_timeout_s: default_poll_timeout_s(),
            kill_confirm_s: default_kill_confirm_s(),
            fill_alerts: true,
            fill_coalesce_ms: default_fill_coalesce_ms(),
            heartbeat_s: default_heartbeat_s(),
            summary_interval_s: default_summary_s(),
            messages_per_chat_per_s: default_per_chat(),
            messages_per_s: default_global(),
            backoff_cap_s: default_backoff_cap_s(),
            alerts_file: None,
        }
    }

    /// The settings as written, unchecked (values are clamped into range).
    fn settings(&self) -> BotSettings {
        let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.0, 1e9));
        let opt = |s: f64| (s > 0.0).then(|| secs(s));
        BotSettings {
            api_url: self.api_url.trim_end_matches('/').to_owned(),
            token_env: self.token_env.clone(),
            ca_file: self.ca_file.clone(),
            users: self.users.clone(),
            poll_timeout: Duration::from_secs(self.poll_timeout_s.clamp(1, 50)),
            kill_confirm: secs(self.kill_confirm_s),
            fill_alerts: self
                .fill_alerts
                .then(|| Duration::from_millis(self.fill_coalesce_ms)),
            heartbeat: opt(self.heartbeat_s),
            summary: opt(self.summary_interval_s),
            per_chat: self.messages_per_chat_per_s.max(1),
            global: self.messages_per_s.max(1),
            backoff_cap: secs(self.backoff_cap_s),
            alerts_file: self.alerts_file.clone(),
        }
    }

    /// Checks `[bot]`: every problem as `(key, message)`, or the settings.
    pub fn check(&self) -> Result<BotSettings, Vec<(String, String)>> {
        let mut p = Vec::new();
        let mut add = |key: &str, msg: String| p.push((format!("bot.{key}"), msg));
        let url = self.api_url.trim_end_matches('/');
        match url.strip_prefix("https://") {
            None => add(
                "api_url",
                format!("{:?} is not an https:// URL", self.api_url),
            ),
            Some(rest) if rest.is_empty() || rest.contains(['/', '?', '#']) => add(
                "api_url",
                format!(
                    "{:?}: give the base only (https://host[:port]), no path",
                    self.api_url
                ),
            ),
            Some(_) => {}
        }
        if self.token_env.is_empty() || self.token_env.contains(['=', '\0']) {
            add(
                "token_env",
                format!("{:?} is not an environment variable name", self.token_env),
            );
        }
        if self.users.is_empty() {
            add(
                "users",
                "no user id: the bot would answer nobody (give the operators' Telegram user ids)"
                    .to_owned(),
            );
        }
        if !(1..=50).contains(&self.poll_timeout_s) {
            add(
                "poll_timeout_s",
                format!("{} is not between 1 and 50", self.poll_timeout_s),
            );
        }
        for (key, v) in [
            ("kill_confirm_s", self.kill_confirm_s),
            ("heartbeat_s", self.heartbeat_s),
            ("summary_interval_s", self.summary_interval_s),
            ("backoff_cap_s", self.backoff_cap_s),
        ] {
            if !v.is_finite() || v < 0.0 {
                add(key, format!("{v} is not a duration (seconds ≥ 0)"));
            }
        }
        if self.kill_confirm_s.is_finite() && self.kill_confirm_s <= 0.0 {
            add("kill_confirm_s", "must be above 0".to_owned());
        }
        if self.messages_per_chat_per_s == 0 {
            add("messages_per_chat_per_s", "must be at least 1".to_owned());
        }
        if self.messages_per_s == 0 {
            add("messages_per_s", "must be at least 1".to_owned());
        }
        if p.is_empty() {
            Ok(self.settings())
        } else {
            Err(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_mistakes_are_named() {
        let ok: BotConfig = toml::from_str("users = [42]").expect("parse");
        let s = ok.check().expect("valid");
        assert_eq!(s.api_url, "https://api.telegram.org");
        assert_eq!(s.token_env, "PINION_BOT_TOKEN");
        assert_eq!(s.poll_timeout, Duration::from_secs(25));
        assert_eq!(s.fill_alerts, Some(Duration::from_secs(2)));
        assert!(toml::from_str::<BotConfig>("users = [1]\nuser = [2]").is_err());
        let bad: BotConfig = toml::from_str(
            "api_url = \"http://x/bot\"\nusers = []\npoll_timeout_s = 90\nkill_confirm_s = -1",
        )
        .expect("parse");
        let keys: Vec<String> = bad
            .check()
            .expect_err("invalid")
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(
            keys,
            [
                "bot.api_url",
                "bot.users",
                "bot.poll_timeout_s",
                "bot.kill_confirm_s",
                "bot.kill_confirm_s"
            ]
        );
        let s = BotSettings::new("https://127.0.0.1:8443", vec![7]);
        assert_eq!(
            (s.api_url.as_str(), s.users.as_slice()),
            ("https://127.0.0.1:8443", &[7][..])
        );
    }
}
