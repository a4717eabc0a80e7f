//! [`Config::validate`]: every check at once, and the typed [`Settings`] the engine runs from.
//!
//! One function per table (or group of tables) checks it and builds its typed part; raw text
//! fields (venue names, wait strategies, stage names, decimal strings) are converted there
//! exactly once, and nothing downstream re-parses them.
//!
//! - [`input`]: `[input]`, `[synthetic]`, `[pacing]`
//! - [`placement`]: `[placement]`, `[rings]`, `[runtime]`, `[metrics]`
//! - [`trading`]: `[strategy]`, `[risk]`, and [`venue`]: `[gateway]`
//! - [`instruments`]: `[[instrument]]`, `[[exchange_info]]`

mod input;
mod instruments;
mod live;
mod placement;
mod trading;
mod venue;

pub use placement::MAX_RING_CAPACITY;

use std::path::Path;

use pinion_core::Venue;

use super::settings::Settings;
use super::{Config, ConfigError, Problem};

/// Collects problems under their keys.
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
}

fn parse_venue(p: &mut Problems, key: &str, s: &str) -> Option<Venue> {
    match s.parse::<Venue>() {
        Ok(v) => Some(v),
        Err(e) => {
            p.add(key, e.to_string());
            None
        }
    }
}

fn check_core(p: &mut Problems, key: &str, core: usize, cores: usize) {
    if core >= cores {
        p.add(key, format!("core {core} does not exist ({cores} cores)"));
    }
}

impl Config {
    /// Checks the whole config against a machine with `cores` cores and returns the typed
    /// settings, or every problem found. Relative `exchange_info` paths are resolved against
    /// `input.data_dir`, else `default_data_dir`.
    pub fn validate_for(
        &self,
        origin: &str,
        cores: usize,
        default_data_dir: &Path,
    ) -> Result<Settings, ConfigError> {
        let mut p = Problems(Vec::new());
        let input = input::input(self, &mut p);
        let pacing = input::pacing(self, &mut p);
        let (mut placement, named_stages) = placement::placement(self, &mut p, cores);
        let ring_capacity = placement::ring_capacity(self, &mut p);
        placement::runtime(self, &mut p);
        let metrics = placement::metrics(self, &mut p);
        let trading = trading::trading(self, &mut p);
        let instances = trading::instances(self, trading.as_ref(), &mut p);
        placement.strategy_stages = placement::strategy_stages(
            &named_stages,
            &instances,
            trading.as_ref().is_some_and(|t| !t.risk.portfolio.is_off()),
            &mut p,
        );
        let (instruments, unit_price_grid) = instruments::instruments(self, &mut p);
        let instrument_sources = instruments::instrument_sources(self, &mut p, default_data_dir);
        let live = live::live(self, &mut p);
        let bot = self.bot.as_ref().and_then(|b| {
            b.check()
                .map_err(|problems| {
                    for (key, message) in problems {
                        p.add(key, message);
                    }
                })
                .ok()
        });
        let mut money = Vec::new();
        let fees = super::money::fees(&self.fees, &mut money);
        let backtest = super::money::backtest(&self.backtest, &mut money);
        let protection = super::protection::protection(&self.protection, &mut money);
        let protect =
            super::protection::protect_mode(&self.strategy.protect, &protection, &mut money);
        let exit = super::exit::exit_policy(&self.exit, &mut money);
        let heartbeat = self
            .heartbeat
            .as_ref()
            .and_then(|h| super::watch::heartbeat(h, &mut money));
        let log = super::ops::log(&self.log, &mut money);
        let history_postgres = super::ops::history_postgres(&self.history, &mut money);
        let journal = self
            .journal
            .as_ref()
            .map(|j| super::ops::journal(j, &mut money));
        for (key, message) in money {
            p.add(key, message);
        }
        match (trading, backtest) {
            (Some(trading), Some(backtest)) if p.0.is_empty() => Ok(Settings {
                origin: origin.to_owned(),
                input,
                max_records: self.input.max_records,
                pacing,
                placement,
                ring_capacity,
                runtime: self.runtime.clone(),
                trading,
                instances,
                instruments,
                unit_price_grid,
                instrument_sources,
                report: self.report.clone(),
                fees,
                protection,
                protect,
                exit,
                watchdog: self.watchdog.enabled,
                heartbeat,
                backtest,
                live,
                metrics,
                log,
                history: self.history.db.clone(),
                history_postgres,
                journal,
                bot,
            }),
            _ => Err(ConfigError {
                origin: origin.to_owned(),
                problems: p.0,
            }),
        }
    }

    /// [`Config::validate_for`] this machine's cores and the default data directory.
    pub fn validate(&self, origin: &str) -> Result<Settings, ConfigError> {
        self.validate_for(origin, machine_cores(), &default_data_dir())
    }
}

/// The number of cores this process may run on.
pub fn machine_cores() -> usize {
    core_affinity::get_core_ids()
        .map(|ids| ids.len())
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

/// Where relative `exchange_info` paths are read from when `input.data_dir` is not set:
/// `$PINION_DATA_DIR`, else `../shared/data` from the working directory (the data directory
/// beside a checkout, for a command run from the checkout's root).
pub fn default_data_dir() -> std::path::PathBuf {
    std::env::var_os("PINION_DATA_DIR").map_or_else(
        || std::path::Path::new("..").join("shared").join("data"),
        std::path::PathBuf::from,
    )
}

#[cfg(test)]
mod tests;
