//! [`Config::validate`]: every check at once, and the typed [`Settings`] the engine runs from.
//!
//! Raw text fields (venue names, wait strategies, stage names, decimal strings) are converted
//! here exactly once; nothing downstream re-parses them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use pinion_feed::decimal::significant_decimals;
use pinion_feed::{InstrumentSpec, Venue};

use super::{
    Config, ConfigError, GatewayConfig, Problem, ReportConfig, RiskConfig, RuntimeConfig,
    StrategyConfig, SyntheticConfig,
};

/// A pipeline stage, in data order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StageKind {
    /// Source read, pacing, parse.
    Feed,
    /// Book apply and sync.
    Book,
    /// Strategy and pre-trade risk.
    Strategy,
    /// Hard limits and the venue.
    Gateway,
}

impl StageKind {
    /// All stages in data order.
    pub const ALL: [StageKind; 4] = [
        StageKind::Feed,
        StageKind::Book,
        StageKind::Strategy,
        StageKind::Gateway,
    ];

    /// The name used in configs and reports.
    pub const fn name(self) -> &'static str {
        match self {
            StageKind::Feed => "feed",
            StageKind::Book => "book",
            StageKind::Strategy => "strategy",
            StageKind::Gateway => "gateway",
        }
    }

    fn from_name(s: &str) -> Option<StageKind> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// How an idle thread waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitSpec {
    /// Spin without pause (an isolated core).
    BusySpin,
    /// Spin, then yield the core.
    SpinThenYield {
        /// Spins before each yield.
        spins: u32,
    },
    /// Park the thread for up to a timeout.
    Park {
        /// The longest park, µs.
        timeout_us: u32,
    },
}

impl WaitSpec {
    /// The name used in configs and reports.
    pub const fn name(self) -> &'static str {
        match self {
            WaitSpec::BusySpin => "busy-spin",
            WaitSpec::SpinThenYield { .. } => "spin-then-yield",
            WaitSpec::Park { .. } => "park",
        }
    }
}

/// One thread of the placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSpec {
    /// Its name.
    pub name: String,
    /// The core it is pinned to.
    pub core: Option<usize>,
    /// How it waits when idle.
    pub wait: WaitSpec,
    /// Its stages in data order.
    pub stages: Vec<StageKind>,
}

/// Which stages run on which threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementSpec {
    /// `1`, `2`, `4` or `custom`.
    pub label: String,
    /// The threads.
    pub threads: Vec<ThreadSpec>,
}

/// How fast recorded frames are released.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PacingSpec {
    /// As fast as the pipeline takes them.
    Max,
    /// At the recorded inter-arrival times divided by `speed`.
    Recorded {
        /// 2.0 = twice as fast as recorded.
        speed: f64,
    },
    /// At a fixed rate.
    Rate {
        /// Records per second.
        per_second: u64,
    },
}

impl PacingSpec {
    /// A short description for reports.
    pub fn describe(&self) -> String {
        match self {
            PacingSpec::Max => "max".to_owned(),
            PacingSpec::Recorded { speed } => format!("paced x{speed}"),
            PacingSpec::Rate { per_second } => format!("paced {per_second}/s"),
        }
    }
}

/// What to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    /// The built-in synthetic market.
    Synthetic {
        /// Generator seed.
        seed: u64,
        /// Records after the connect and snapshot.
        records: u64,
        /// Recorded time between records, ns.
        interval_ns: u64,
    },
    /// A recording file.
    Recording {
        /// The file.
        path: PathBuf,
        /// The venue of connections the recording does not name.
        venue: Option<Venue>,
    },
}

/// Where instrument specs come from, besides the recording itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstrumentSource {
    /// A saved exchange instrument list.
    ExchangeInfo {
        /// The venue of its symbols.
        venue: Venue,
        /// The resolved file path.
        path: PathBuf,
        /// Whether a missing file is skipped (with a start-up notice).
        optional: bool,
        /// Quantity decimals for all its instruments, when finer than their steps.
        qty_decimals: Option<u8>,
    },
}

/// A validated config: what the engine runs from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the config came from (for reports).
    pub origin: String,
    /// What to replay.
    pub input: InputSpec,
    /// Stop after this many records (0 = all).
    pub max_records: u64,
    /// Pacing.
    pub pacing: PacingSpec,
    /// Placement.
    pub placement: PlacementSpec,
    /// Slots per ring.
    pub ring_capacity: usize,
    /// Runtime settings.
    pub runtime: RuntimeConfig,
    /// Strategy parameters (decimals checked).
    pub strategy: StrategyConfig,
    /// Risk limits (decimals checked).
    pub risk: RiskConfig,
    /// Venue settings.
    pub gateway: GatewayConfig,
    /// Instruments defined in the config.
    pub instruments: Vec<InstrumentSpec>,
    /// Instruments whose book keeps levels on the price unit's grid rather than the tick's
    /// (those given `px_decimals`).
    pub unit_price_grid: Vec<(Venue, pinion_feed::Symbol)>,
    /// Instrument lists to load.
    pub instrument_sources: Vec<InstrumentSource>,
    /// Report outputs.
    pub report: ReportConfig,
}

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

fn parse_wait(p: &mut Problems, key: &str, s: &str, spins: u32, park_us: u32) -> WaitSpec {
    match s {
        "busy-spin" => WaitSpec::BusySpin,
        "spin-then-yield" => WaitSpec::SpinThenYield { spins },
        "park" => WaitSpec::Park {
            timeout_us: park_us,
        },
        other => {
            p.add(
                key,
                format!("unknown wait strategy {other:?} (busy-spin, spin-then-yield, park)"),
            );
            WaitSpec::Park {
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

/// The threads of a preset placement.
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
            InputSpec::Recording { path, venue }
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
                && d > pinion_feed::decimal::MAX_DECIMALS
            {
                p.add(
                    format!("{key}.qty_decimals"),
                    format!("{d} is more than {}", pinion_feed::decimal::MAX_DECIMALS),
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

    /// [`Config::validate_for`] this machine's cores and the shared data directory.
    pub fn validate(&self, origin: &str) -> Result<Settings, ConfigError> {
        self.validate_for(origin, machine_cores(), &pinion_feed::testdata::data_dir())
    }

    fn custom_threads(
        &self,
        p: &mut Problems,
        cores: usize,
        default_wait: WaitSpec,
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

/// `spec` with quantities counted in units of `10^-decimals` rather than of its step's
/// decimals: the step and the quantity filters are rescaled, so order checks are unchanged.
pub fn with_qty_decimals(mut spec: InstrumentSpec, decimals: u8) -> Result<InstrumentSpec, String> {
    if decimals > pinion_feed::decimal::MAX_DECIMALS {
        return Err(format!(
            "qty_decimals {decimals} is more than {}",
            pinion_feed::decimal::MAX_DECIMALS
        ));
    }
    if decimals < spec.qty_decimals {
        return Err(format!(
            "qty_decimals {decimals} is coarser than the step ({} decimals)",
            spec.qty_decimals
        ));
    }
    let factor = pinion_feed::decimal::pow10(decimals - spec.qty_decimals);
    let scale = |v: i64| {
        v.checked_mul(factor).ok_or_else(|| {
            format!(
                "{}: a quantity limit overflows at {decimals} decimals",
                spec.symbol
            )
        })
    };
    spec.step = pinion_feed::Qty(scale(spec.step.0)?);
    spec.min_qty = pinion_feed::Qty(scale(spec.min_qty.0)?);
    spec.max_qty = pinion_feed::Qty(scale(spec.max_qty.0)?);
    spec.min_notional = spec.min_notional.saturating_mul(i128::from(factor));
    spec.qty_decimals = decimals;
    Ok(spec)
}

/// `spec` with prices counted in units of `10^-decimals` rather than of its tick's decimals:
/// the tick and the price filters are rescaled, so order checks are unchanged.
pub fn with_px_decimals(mut spec: InstrumentSpec, decimals: u8) -> Result<InstrumentSpec, String> {
    if decimals > pinion_feed::decimal::MAX_DECIMALS {
        return Err(format!(
            "px_decimals {decimals} is more than {}",
            pinion_feed::decimal::MAX_DECIMALS
        ));
    }
    if decimals < spec.price_decimals {
        return Err(format!(
            "px_decimals {decimals} is coarser than the tick ({} decimals)",
            spec.price_decimals
        ));
    }
    let factor = pinion_feed::decimal::pow10(decimals - spec.price_decimals);
    let scale = |v: i64| {
        v.checked_mul(factor).ok_or_else(|| {
            format!(
                "{}: a price limit overflows at {decimals} decimals",
                spec.symbol
            )
        })
    };
    spec.tick = pinion_feed::Px(scale(spec.tick.0)?);
    spec.min_price = pinion_feed::Px(scale(spec.min_price.0)?);
    spec.max_price = pinion_feed::Px(scale(spec.max_price.0)?);
    spec.min_notional = spec.min_notional.saturating_mul(i128::from(factor));
    spec.price_decimals = decimals;
    Ok(spec)
}

/// The number of cores this process may run on.
pub fn machine_cores() -> usize {
    core_affinity::get_core_ids()
        .map(|ids| ids.len())
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::super::{Config, REPLAY_TOML, REPLAY_TOML_NAME};
    use super::*;

    fn check(text: &str) -> Result<Settings, ConfigError> {
        Config::parse(text, "t.toml")?.validate_for("t.toml", 2, Path::new("/nonexistent"))
    }

    #[test]
    fn embedded_replay_config_is_valid() {
        let cfg = Config::parse(REPLAY_TOML, REPLAY_TOML_NAME).unwrap();
        let s = cfg
            .validate_for(REPLAY_TOML_NAME, 2, Path::new("/nonexistent"))
            .unwrap();
        assert!(matches!(s.input, InputSpec::Synthetic { .. }));
        assert_eq!(s.placement.label, "2");
        assert_eq!(s.placement.threads.len(), 2);
        // The shipped recordings' instruments are defined.
        let names: Vec<_> = s
            .instruments
            .iter()
            .map(|i| {
                (
                    i.venue,
                    i.symbol.to_string(),
                    i.price_decimals,
                    i.qty_decimals,
                )
            })
            .collect();
        // Spot quantities come at 8 decimals; the step stays 0.00001 (1000 units).
        assert!(names.contains(&(Venue::BinanceSpot, "BTCUSDT".into(), 2, 8)));
        let spot = s
            .instruments
            .iter()
            .find(|i| i.venue == Venue::BinanceSpot)
            .unwrap();
        assert_eq!(spot.step, pinion_feed::Qty(1000));
        assert!(names.contains(&(Venue::BinanceUsdm, "BTCUSDT".into(), 1, 3)));
        assert_eq!(s.instrument_sources.len(), 1);
    }

    #[test]
    fn every_problem_is_reported_with_key() {
        let text = r#"
[pacing]
mode = "fast"
speed = -1.0
[placement]
mode = "custom"
[[placement.threads]]
name = "a"
core = 0
stages = ["feed", "book"]
[[placement.threads]]
name = "a"
core = 7
wait = "sleepy"
stages = ["strategy", "book"]
[rings]
capacity = 1000
[[instrument]]
venue = "binance"
symbol = "X"
tick_size = "0.01"
step_size = "1"
"#;
        let err = check(text).unwrap_err();
        let msg = err.to_string();
        for expect in [
            "t.toml: pacing.mode: unknown mode \"fast\"",
            "t.toml: pacing.speed: -1 must be a positive number",
            "t.toml: placement.threads[1].name: \"a\" is used twice",
            "t.toml: placement.threads[1].core: core 7 does not exist (2 cores)",
            "t.toml: placement.threads[1].wait: unknown wait strategy \"sleepy\"",
            "t.toml: placement.threads[1].stages[1]: stage book is already on placement.threads[0]",
            "t.toml: placement.threads: stage gateway is on no thread",
            "t.toml: rings.capacity: 1000 must be a power of two",
            "t.toml: instrument[0].venue: unknown venue \"binance\"",
        ] {
            assert!(msg.contains(expect), "missing {expect:?} in:\n{msg}");
        }
        assert_eq!(err.problems.len(), 9, "{msg}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = check("[placement]\nmdoe = \"1\"\n").unwrap_err();
        assert!(err.to_string().contains("mdoe"), "{err}");
        let err = check("[nonsense]\n").unwrap_err();
        assert!(err.to_string().contains("nonsense"), "{err}");
    }

    #[test]
    fn presets_place_all_stages() {
        for (mode, n) in [("1", 1), ("2", 2), ("4", 4)] {
            let s = check(&format!("[placement]\nmode = {mode}\nwait = \"park\"\n")).unwrap();
            assert_eq!(s.placement.threads.len(), n);
            let mut all: Vec<StageKind> = s
                .placement
                .threads
                .iter()
                .flat_map(|t| t.stages.clone())
                .collect();
            all.sort();
            assert_eq!(all, StageKind::ALL);
            assert!(
                s.placement
                    .threads
                    .iter()
                    .all(|t| matches!(t.wait, WaitSpec::Park { timeout_us: 50 }))
            );
        }
        let err = check("[placement]\nmode = \"2\"\ncores = [0]\n").unwrap_err();
        assert!(err.to_string().contains("placement.cores"), "{err}");
    }

    #[test]
    fn finer_units_rescale_tick_and_step() {
        let text = r#"
[[instrument]]
venue = "binance-spot"
symbol = "NKNUSDT"
tick_size = "0.0001"
step_size = "1"
qty_decimals = 8
px_decimals = 5
[[instrument]]
venue = "binance-spot"
symbol = "BAD"
tick_size = "0.01"
step_size = "0.001"
px_decimals = 1
"#;
        let err = check(text).unwrap_err().to_string();
        assert!(
            err.contains("instrument[1]: px_decimals 1 is coarser"),
            "{err}"
        );
        let s = check(
            &text[..text
                .find("[[instrument]]\nvenue = \"binance-spot\"\nsymbol = \"BAD\"")
                .unwrap()],
        )
        .unwrap();
        let nkn = &s.instruments[0];
        assert_eq!((nkn.price_decimals, nkn.tick), (5, pinion_feed::Px(10)));
        assert_eq!(
            (nkn.qty_decimals, nkn.step),
            (8, pinion_feed::Qty(100_000_000))
        );
        assert_eq!(s.unit_price_grid.len(), 1);
    }

    #[test]
    fn pacing_modes() {
        let s = check("[pacing]\nmode = \"max\"\n").unwrap();
        assert_eq!(s.pacing, PacingSpec::Max);
        let s = check("[pacing]\nmode = \"paced\"\nspeed = 4.0\n").unwrap();
        assert_eq!(s.pacing, PacingSpec::Recorded { speed: 4.0 });
        let s = check("[pacing]\nmode = \"paced\"\nrate = 50000\n").unwrap();
        assert_eq!(s.pacing, PacingSpec::Rate { per_second: 50_000 });
        assert!(check("[pacing]\nmode = \"max\"\nrate = 5\n").is_err());
    }

    #[test]
    fn missing_recording_is_reported() {
        let err = check("[input]\nsource = \"/no/such/file.hbt.gz\"\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("input.source: recording /no/such/file.hbt.gz not found"),
            "{err}"
        );
    }
}
