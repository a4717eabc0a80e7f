//! `[log]`, `[history]` and `[journal]`: where the structured log goes and which records it
//! keeps, the trade-history file, and the trading journal. Checked here into [`LogSettings`] and a path; `PINION_LOG` is applied on
//! top by the command ([`LogSettings::with_env`]), after the config is valid.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::ops::log::{DEFAULT_CAPACITY, Filter, Format, LevelFilter, LogSettings};

/// The most records the log ring may hold (each slot is a record's size, ~100 bytes).
pub const MAX_LOG_CAPACITY: usize = 1 << 20;

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The level every target keeps: off, error, warn, info, debug, trace.
    #[serde(default = "default_level")]
    pub level: String,
    /// Levels of particular targets and those under them (`"pinion::live" = "debug"`).
    #[serde(default)]
    pub targets: BTreeMap<String, String>,
    /// The file records are appended to; left out: standard error.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// `"json"` (one object a line) or `"text"`.
    #[serde(default = "default_format")]
    pub format: String,
    /// Records the ring holds before new ones are dropped (and counted).
    #[serde(default = "default_capacity")]
    pub capacity: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: default_level(),
            targets: BTreeMap::new(),
            file: None,
            format: default_format(),
            capacity: default_capacity(),
        }
    }
}

fn default_level() -> String {
    "error".into()
}

fn default_format() -> String {
    "json".into()
}

fn default_capacity() -> usize {
    DEFAULT_CAPACITY
}

/// `[history]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// The SQLite file runs record their orders, fills and daily PnL in; left out: none.
    #[serde(default)]
    pub db: Option<PathBuf>,
    /// Keep a copy of the file in a shared PostgreSQL database (see
    /// [`crate::ops::history::pg`]); its connection string is the secret
    /// [`HISTORY_POSTGRES_SECRET`].
    #[serde(default)]
    pub postgres: bool,
    /// This engine's name in the shared database; left out: `<host name>:<file path>`.
    #[serde(default)]
    pub source: Option<String>,
    /// More CA certificates (PEM) to trust for the database's TLS, beside the public roots.
    #[serde(default)]
    pub postgres_ca_file: Option<PathBuf>,
    /// Wait between connection attempts while the database cannot be reached, ms.
    #[serde(default = "default_postgres_retry_ms")]
    pub postgres_retry_ms: u64,
    /// How long the end of a run waits for the copy to catch up, s.
    #[serde(default = "default_postgres_flush_secs")]
    pub postgres_flush_secs: u64,
}

/// The secret holding the shared history's PostgreSQL connection string (from the
/// environment, `$CREDENTIALS_DIRECTORY` or an owner-only file: [`crate::secrets`]).
pub const HISTORY_POSTGRES_SECRET: &str = "PINION_HISTORY_POSTGRES";

fn default_postgres_retry_ms() -> u64 {
    2000
}

fn default_postgres_flush_secs() -> u64 {
    10
}

/// `[history]` with `postgres = true`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPostgres {
    /// This engine's name in the shared database.
    pub source: String,
    /// More CA certificates to trust.
    pub ca_file: Option<PathBuf>,
    /// Wait between connection attempts.
    pub retry: std::time::Duration,
    /// How long the end of a run waits for the copy.
    pub flush_within: std::time::Duration,
}

/// Checks `[history]`'s PostgreSQL keys: `None` when no copy is kept.
pub(super) fn history_postgres(
    cfg: &HistoryConfig,
    problems: &mut Vec<(String, String)>,
) -> Option<HistoryPostgres> {
    if !cfg.postgres {
        return None;
    }
    if cfg.db.is_none() {
        problems.push((
            "history.postgres".into(),
            "copies the history file: set history.db too".into(),
        ));
    }
    if !(100..=600_000).contains(&cfg.postgres_retry_ms) {
        problems.push((
            "history.postgres_retry_ms".into(),
            format!("{} ms: from 100 to 600000", cfg.postgres_retry_ms),
        ));
    }
    if cfg.postgres_flush_secs > 3600 {
        problems.push((
            "history.postgres_flush_secs".into(),
            format!("{} s: at most 3600", cfg.postgres_flush_secs),
        ));
    }
    let source = match &cfg.source {
        Some(s) if s.trim().is_empty() => {
            problems.push(("history.source".into(), "empty: name this engine".into()));
            String::new()
        }
        Some(s) => s.clone(),
        None => format!(
            "{}:{}",
            host_name(),
            cfg.db
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
    };
    Some(HistoryPostgres {
        source,
        ca_file: cfg.postgres_ca_file.clone(),
        retry: std::time::Duration::from_millis(cfg.postgres_retry_ms),
        flush_within: std::time::Duration::from_secs(cfg.postgres_flush_secs),
    })
}

/// This machine's host name, or `localhost` when it has none.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `[journal]`: the trading journal of `pinion live --trade` (see [`crate::ops::journal`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// The journal file: created when missing, resumed when not.
    pub path: PathBuf,
    /// When the writer calls `fsync`: `"every"` batch written, at most once per `interval_ms`
    /// (`"interval"`), or `"never"` (the page cache decides; once at a clean end).
    #[serde(default = "default_fsync")]
    pub fsync: String,
    /// The interval of `fsync = "interval"`, ms.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Records the ring between the strategy stage and the writer holds.
    #[serde(default = "default_journal_capacity")]
    pub capacity: usize,
}

fn default_fsync() -> String {
    "every".into()
}

fn default_interval_ms() -> u64 {
    100
}

fn default_journal_capacity() -> usize {
    crate::ops::journal::DEFAULT_CAPACITY
}

/// The most records the journal ring may hold (a record slot is ~100 bytes).
pub const MAX_JOURNAL_CAPACITY: usize = 1 << 22;

/// Checks `[journal]`.
pub(super) fn journal(
    cfg: &JournalConfig,
    problems: &mut Vec<(String, String)>,
) -> crate::ops::journal::JournalSettings {
    use crate::ops::journal::FsyncPolicy;
    let fsync = match cfg.fsync.as_str() {
        "every" => FsyncPolicy::Every,
        "never" => FsyncPolicy::Never,
        "interval" => {
            if !(1..=60_000).contains(&cfg.interval_ms) {
                problems.push((
                    "journal.interval_ms".into(),
                    format!("{} ms: from 1 to 60000", cfg.interval_ms),
                ));
            }
            FsyncPolicy::Interval(std::time::Duration::from_millis(cfg.interval_ms))
        }
        other => {
            problems.push((
                "journal.fsync".into(),
                format!("\"{other}\" is not an fsync policy (every, interval, never)"),
            ));
            FsyncPolicy::Every
        }
    };
    if cfg.path.as_os_str().is_empty() {
        problems.push(("journal.path".into(), "empty: name the journal file".into()));
    }
    if !(1024..=MAX_JOURNAL_CAPACITY).contains(&cfg.capacity) {
        problems.push((
            "journal.capacity".into(),
            format!(
                "{} records: from 1024 to {MAX_JOURNAL_CAPACITY}",
                cfg.capacity
            ),
        ));
    }
    crate::ops::journal::JournalSettings {
        path: cfg.path.clone(),
        fsync,
        capacity: cfg.capacity,
    }
}

/// Checks `[log]`.
pub(super) fn log(cfg: &LogConfig, problems: &mut Vec<(String, String)>) -> LogSettings {
    let mut filter = Filter::default();
    match cfg.level.parse::<LevelFilter>() {
        Ok(l) => filter = Filter::new(l),
        Err(e) => problems.push(("log.level".into(), e.to_string())),
    }
    for (target, level) in &cfg.targets {
        let key = format!("log.targets.\"{target}\"");
        if target.trim().is_empty() || target.contains([',', '=']) {
            problems.push((
                key,
                format!("\"{target}\" is not a target (like \"pinion::live\")"),
            ));
            continue;
        }
        match level.parse::<LevelFilter>() {
            Ok(l) => filter.set_target(target, l),
            Err(e) => problems.push((key, e.to_string())),
        }
    }
    let format = match cfg.format.as_str() {
        "json" => Format::Json,
        "text" => Format::Text,
        other => {
            problems.push((
                "log.format".into(),
                format!("\"{other}\" is not a log format (json, text)"),
            ));
            Format::Json
        }
    };
    if !(16..=MAX_LOG_CAPACITY).contains(&cfg.capacity) {
        problems.push((
            "log.capacity".into(),
            format!("{} records: from 16 to {MAX_LOG_CAPACITY}", cfg.capacity),
        ));
    }
    LogSettings {
        filter,
        file: cfg.file.clone(),
        format,
        capacity: cfg.capacity,
    }
}

impl LogSettings {
    /// These settings with `PINION_LOG` applied, when it is set; an error names the variable.
    pub fn with_env(mut self) -> Result<Self, String> {
        if let Some(spec) = std::env::var_os(crate::ops::log::ENV_VAR) {
            let spec = spec.to_string_lossy();
            self.filter
                .apply(&spec)
                .map_err(|e| format!("{}={spec}: {e}", crate::ops::log::ENV_VAR))?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_tables_are_checked_key_by_key() {
        use crate::ops::journal::FsyncPolicy;
        let cfg: JournalConfig =
            toml::from_str("path = \"j.bin\"\nfsync = \"interval\"\ninterval_ms = 20")
                .expect("parses");
        let mut p = Vec::new();
        let s = journal(&cfg, &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            s.fsync,
            FsyncPolicy::Interval(std::time::Duration::from_millis(20))
        );
        let cfg: JournalConfig =
            toml::from_str("path = \"\"\nfsync = \"sometimes\"\ncapacity = 3").expect("parses");
        let mut p = Vec::new();
        journal(&cfg, &mut p);
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["journal.fsync", "journal.path", "journal.capacity"]);
        assert!(toml::from_str::<JournalConfig>("path = \"j\"\nfsynk = \"every\"").is_err());
    }
    use crate::ops::log::Level;

    #[test]
    fn log_tables_are_checked_key_by_key() {
        let cfg: LogConfig = toml::from_str(
            "level = \"info\"\nformat = \"text\"\n[targets]\n\"pinion::live\" = \"trace\"",
        )
        .expect("parses");
        let mut p = Vec::new();
        let s = log(&cfg, &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.format, Format::Text);
        assert!(s.filter.allows(Level::Trace, "pinion::live"));
        assert!(!s.filter.allows(Level::Debug, "pinion::run"));
        let cfg: LogConfig = toml::from_str(
            "level = \"loud\"\nformat = \"xml\"\ncapacity = 1\n[targets]\n\"a=b\" = \"info\"\nx = \"y\"",
        )
        .expect("parses");
        let mut p = Vec::new();
        log(&cfg, &mut p);
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "log.level",
                "log.targets.\"a=b\"",
                "log.targets.\"x\"",
                "log.format",
                "log.capacity"
            ]
        );
        assert!(toml::from_str::<LogConfig>("levle = \"info\"").is_err());
        assert!(toml::from_str::<HistoryConfig>("database = \"x.db\"").is_err());
    }
}
