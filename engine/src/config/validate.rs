//! [`Config::validate`]: every check at once, and the typed [`Settings`] the engine runs from.
//!
//! Raw text fields (venue names, wait strategies, stage names, decimal strings) are converted
//! here exactly once; nothing downstream re-parses them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use pinion_core::decimal::significant_decimals;
use pinion_core::{InstrumentSpec, Venue};
use pinion_feed::source::Decompress;

use super::settings::{
    InputSpec, InstrumentSource, PacingSpec, PlacementSpec, Settings, StageKind, ThreadSpec,
};
use crate::runtime::WaitStrategy;

use super::units::{with_px_decimals, with_qty_decimals};
use super::{Config, ConfigError, Problem, SyntheticConfig};

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

fn check_positive_decimal(p: &mut Problems, key: &str, s: &str) {
    match significant_decimals(s.as_bytes()) {
        Err(e) => p.add(key, format!("{s:?} is not a plain decimal: {e}")),
        Ok(_) if s.starts_with('-') || s.bytes().all(|c| c == b'0' || c == b'.') => {
            p.add(key, format!("{s:?} must be positive"));
        }
        Ok(_) => {}
    }
}

fn parse_wait(p: &mut Problems, key: &str, s: &str, spins: u32, park_us: u32) -> WaitStrategy {
    match s {
        "busy-spin" => WaitStrategy::BusySpin,
        "spin-then-yield" => WaitStrategy::SpinThenYield { spins },
        "park" => WaitStrategy::Park {
            timeout_us: park_us,
        },
        other => {
            p.add(
                key,
                format!("unknown wait strategy {other:?} (busy-spin, spin-then-yield, park)"),
            );
            WaitStrategy::Park {
                timeout_us: park_us,
            }
        }
    }
}

fn check_core(p: &mut Problems, key: &str, core: usize, cores: usize) {
    if core >= cores {
        p.add(key, format!("core {core} does not exist ({cores} cores)"));
    }
}

/// The threads of a ready-made placement (`mode = "1" | "2" | "4"`); the one place these shapes
/// are defined.
fn preset_threads(mode: &str) -> Option<Vec<(&'static str, Vec<StageKind>)>> {
    use StageKind::*;
    Some(match mode {
        "1" => vec![("pipeline", vec![Feed, Book, Strategy, Gateway])],
        "2" => vec![
            ("market", vec![Feed, Book]),
            ("trading", vec![Strategy, Gateway]),
        ],
        "4" => vec![
            ("feed", vec![Feed]),
            ("book", vec![Book]),
            ("strategy", vec![Strategy]),
            ("gateway", vec![Gateway]),
        ],
        _ => return None,
    })
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

        // [input]
        let venue = self
            .input
            .venue
            .as_deref()
            .and_then(|v| parse_venue(&mut p, "input.venue", v));
        let input = if self.input.source == "synthetic" {
            let s: &SyntheticConfig = &self.synthetic;
            if s.records == 0 {
                p.add("synthetic.records", "must be at least 1");
            }
            if s.interval_ns == 0 {
                p.add("synthetic.interval_ns", "must be at least 1");
            }
            InputSpec::Synthetic {
                seed: s.seed,
                records: s.records,
                interval_ns: s.interval_ns,
            }
        } else {
            let path = PathBuf::from(&self.input.source);
            if self.input.source.is_empty() {
                p.add(
                    "input.source",
                    "empty (give \"synthetic\" or a recording's path)",
                );
            } else if !path.is_file() {
                p.add(
                    "input.source",
                    format!("recording {} not found", path.display()),
                );
            }
            let decompress = if self.input.read_ahead {
                Decompress::Ahead
            } else {
                Decompress::Inline
            };
            InputSpec::Recording {
                path,
                venue,
                decompress,
            }
        };

        // [pacing]
        let pc = &self.pacing;
        if !(pc.speed.is_finite() && pc.speed > 0.0) {
            p.add(
                "pacing.speed",
                format!("{} must be a positive number", pc.speed),
            );
        }
        let pacing = match pc.mode.as_str() {
            "max" => {
                if pc.rate != 0 {
                    p.add("pacing.rate", "only applies with pacing.mode = \"paced\"");
                }
                PacingSpec::Max
            }
            "paced" if pc.rate > 0 => PacingSpec::Rate {
                per_second: pc.rate,
            },
            "paced" => PacingSpec::Recorded { speed: pc.speed },
            other => {
                p.add(
                    "pacing.mode",
                    format!("unknown mode {other:?} (max, paced)"),
                );
                PacingSpec::Max
            }
        };

        // [placement]
        let pl = &self.placement;
        let default_wait = parse_wait(
            &mut p,
            "placement.wait",
            &pl.wait,
            pl.spins,
            pl.park_timeout_us,
        );
        for (i, &core) in pl.cores.iter().enumerate() {
            check_core(&mut p, &format!("placement.cores[{i}]"), core, cores);
        }
        let threads = match preset_threads(&pl.mode) {
            Some(preset) => {
                if !pl.threads.is_empty() {
                    p.add(
                        "placement.threads",
                        format!("only used with mode = \"custom\" (mode is {:?})", pl.mode),
                    );
                }
                if !pl.cores.is_empty() && pl.cores.len() != preset.len() {
                    p.add(
                        "placement.cores",
                        format!(
                            "placement {} has {} threads but {} cores are listed",
                            pl.mode,
                            preset.len(),
                            pl.cores.len()
                        ),
                    );
                }
                preset
                    .into_iter()
                    .enumerate()
                    .map(|(i, (name, stages))| ThreadSpec {
                        name: name.to_owned(),
                        core: pl.cores.get(i).copied(),
                        wait: default_wait,
                        stages,
                    })
                    .collect()
            }
            None if pl.mode == "custom" => self.custom_threads(&mut p, cores, default_wait),
            None => {
                p.add(
                    "placement.mode",
                    format!("unknown placement {:?} (1, 2, 4, custom)", pl.mode),
                );
                Vec::new()
            }
        };
        let placement = PlacementSpec {
            label: pl.mode.clone(),
            threads,
        };

        // [rings]
        let cap = self.rings.capacity;
        if cap < 16 || !cap.is_power_of_two() {
            p.add(
                "rings.capacity",
                format!("{cap} must be a power of two of at least 16"),
            );
        }

        // [runtime]
        if let Some(prio) = self.runtime.realtime_priority
            && !(1..=99).contains(&prio)
        {
            p.add(
                "runtime.realtime_priority",
                format!("{prio} is outside SCHED_FIFO's 1..=99"),
            );
        }

        // [strategy], [risk], [gateway]
        let st = &self.strategy;
        if st.kind != "imbalance" {
            p.add(
                "strategy.kind",
                format!("unknown strategy {:?} (imbalance)", st.kind),
            );
        }
        if st.levels == 0 || st.levels > pinion_strategy::VIEW_LEVELS {
            p.add(
                "strategy.levels",
                format!("{} must be 1..={}", st.levels, pinion_strategy::VIEW_LEVELS),
            );
        }
        if !(st.threshold > 0.0 && st.threshold < 1.0) {
            p.add(
                "strategy.threshold",
                format!("{} must be strictly between 0 and 1", st.threshold),
            );
        }
        check_positive_decimal(&mut p, "strategy.order_qty", &st.order_qty);
        let rk = &self.risk;
        check_positive_decimal(&mut p, "risk.max_order_qty", &rk.max_order_qty);
        check_positive_decimal(&mut p, "risk.max_position", &rk.max_position);
        check_positive_decimal(&mut p, "risk.max_notional", &rk.max_notional);
        if rk.order_burst == 0 {
            p.add("risk.order_burst", "must be at least 1");
        }
        if st.stale_after_ms == 0 {
            p.add("strategy.stale_after_ms", "must be at least 1");
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
        if self.gateway.venue != "sim" {
            p.add(
                "gateway.venue",
                format!("unknown venue {:?} (sim)", self.gateway.venue),
            );
        }

        // [[instrument]]
        let mut instruments = Vec::new();
        let mut unit_price_grid = Vec::new();
        let mut seen = HashSet::new();
        for (i, ic) in self.instruments.iter().enumerate() {
            let key = format!("instrument[{i}]");
            let Some(v) = parse_venue(&mut p, &format!("{key}.venue"), &ic.venue) else {
                continue;
            };
            let spec = InstrumentSpec::new(v, &ic.symbol, &ic.tick_size, &ic.step_size)
                .map_err(|e| e.to_string())
                .and_then(|spec| match ic.qty_decimals {
                    Some(d) => with_qty_decimals(spec, d),
                    None => Ok(spec),
                })
                .and_then(|spec| match ic.px_decimals {
                    Some(d) => with_px_decimals(spec, d),
                    None => Ok(spec),
                });
            match spec {
                Ok(spec) => {
                    if !seen.insert((v, spec.symbol)) {
                        p.add(
                            format!("{key}.symbol"),
                            format!("{v} {} is defined twice", spec.symbol),
                        );
                    } else {
                        if ic.px_decimals.is_some() {
                            unit_price_grid.push((v, spec.symbol));
                        }
                        instruments.push(spec);
                    }
                }
                Err(e) => p.add(key, e),
            }
        }

        // [[exchange_info]]
        let data_dir = self
            .input
            .data_dir
            .clone()
            .unwrap_or_else(|| default_data_dir.to_path_buf());
        let mut instrument_sources = Vec::new();
        for (i, ec) in self.exchange_info.iter().enumerate() {
            let key = format!("exchange_info[{i}]");
            let Some(v) = parse_venue(&mut p, &format!("{key}.venue"), &ec.venue) else {
                continue;
            };
            let path = if ec.path.is_absolute() {
                ec.path.clone()
            } else {
                data_dir.join(&ec.path)
            };
            if !ec.optional && !path.is_file() {
                p.add(
                    format!("{key}.path"),
                    format!("{} not found", path.display()),
                );
            }
            if let Some(d) = ec.qty_decimals
                && d > pinion_core::decimal::MAX_DECIMALS
            {
                p.add(
                    format!("{key}.qty_decimals"),
                    format!("{d} is more than {}", pinion_core::decimal::MAX_DECIMALS),
                );
            }
            instrument_sources.push(InstrumentSource::ExchangeInfo {
                venue: v,
                path,
                optional: ec.optional,
                qty_decimals: ec.qty_decimals,
            });
        }

        if !p.0.is_empty() {
            return Err(ConfigError {
                origin: origin.to_owned(),
                problems: p.0,
            });
        }
        Ok(Settings {
            origin: origin.to_owned(),
            input,
            max_records: self.input.max_records,
            pacing,
            placement,
            ring_capacity: cap,
            runtime: self.runtime.clone(),
            strategy: self.strategy.clone(),
            risk: self.risk.clone(),
            gateway: self.gateway.clone(),
            instruments,
            unit_price_grid,
            instrument_sources,
            report: self.report.clone(),
        })
    }

    /// [`Config::validate_for`] this machine's cores and the default data directory.
    pub fn validate(&self, origin: &str) -> Result<Settings, ConfigError> {
        self.validate_for(origin, machine_cores(), &default_data_dir())
    }

    fn custom_threads(
        &self,
        p: &mut Problems,
        cores: usize,
        default_wait: WaitStrategy,
    ) -> Vec<ThreadSpec> {
        let pl = &self.placement;
        if pl.threads.is_empty() {
            p.add(
                "placement.threads",
                "mode = \"custom\" needs at least one thread",
            );
        }
        if !pl.cores.is_empty() {
            p.add(
                "placement.cores",
                "not used with mode = \"custom\" (give each thread its core)",
            );
        }
        let mut names = HashSet::new();
        let mut placed: Vec<(StageKind, usize)> = Vec::new();
        let mut out = Vec::new();
        for (i, t) in pl.threads.iter().enumerate() {
            let key = format!("placement.threads[{i}]");
            if t.name.is_empty() {
                p.add(format!("{key}.name"), "empty");
            } else if !names.insert(t.name.as_str()) {
                p.add(format!("{key}.name"), format!("{:?} is used twice", t.name));
            }
            if let Some(core) = t.core {
                check_core(p, &format!("{key}.core"), core, cores);
            }
            let wait = match &t.wait {
                Some(w) => parse_wait(p, &format!("{key}.wait"), w, pl.spins, pl.park_timeout_us),
                None => default_wait,
            };
            if t.stages.is_empty() {
                p.add(format!("{key}.stages"), "a thread needs at least one stage");
            }
            let mut stages = Vec::new();
            for (j, s) in t.stages.iter().enumerate() {
                let skey = format!("{key}.stages[{j}]");
                match StageKind::from_name(s) {
                    None => p.add(
                        skey,
                        format!("unknown stage {s:?} (feed, book, strategy, gateway)"),
                    ),
                    Some(k) => {
                        if let Some(&(_, other)) = placed.iter().find(|(pk, _)| *pk == k) {
                            p.add(
                                skey,
                                format!("stage {s} is already on placement.threads[{other}]"),
                            );
                        } else {
                            if stages.last().is_some_and(|&prev| prev > k) {
                                p.add(
                                    skey,
                                    format!("stage {s} listed after a later stage: list a thread's stages in data order (feed, book, strategy, gateway)"),
                                );
                            }
                            placed.push((k, i));
                            stages.push(k);
                        }
                    }
                }
            }
            out.push(ThreadSpec {
                name: t.name.clone(),
                core: t.core,
                wait,
                stages,
            });
        }
        for k in StageKind::ALL {
            if !pl.threads.is_empty() && !placed.iter().any(|(pk, _)| *pk == k) {
                p.add(
                    "placement.threads",
                    format!("stage {} is on no thread", k.name()),
                );
            }
        }
        out
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
#[path = "validate_tests.rs"]
mod tests;
