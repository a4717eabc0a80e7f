//! `[placement]`, `[rings]`, `[runtime]` and `[metrics]`: which stages run on which threads and
//! cores, how the threads wait, the rings between them, and where the metrics are served.

use std::collections::HashSet;

use crate::runtime::WaitStrategy;

use super::super::settings::{MetricsSettings, PlacementSpec, StageKind, ThreadSpec};
use super::super::{Config, PlacementConfig};
use super::{Problems, check_core};

/// The threads of a ready-made placement (`mode = "1" | "2" | "4"`); the one place these shapes
/// are defined.
fn preset_threads(mode: &str) -> Option<Vec<(&'static str, Vec<StageKind>)>> {
    use StageKind::*;
    Some(match mode {
        "1" => vec![("pipeline", vec![Feed, Book, Strategy(0), Gateway])],
        "2" => vec![
            ("market", vec![Feed, Book]),
            ("trading", vec![Strategy(0), Gateway]),
        ],
        "4" => vec![
            ("feed", vec![Feed]),
            ("book", vec![Book]),
            ("strategy", vec![Strategy(0)]),
            ("gateway", vec![Gateway]),
        ],
        _ => return None,
    })
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

/// The strategy stages a custom placement adds (`"strategy:NAME[+NAME…]"`), in stage order:
/// the key that names each and the instance names it lists. Resolved to instance numbers by
/// [`strategy_stages`] once the instances are known.
pub(super) type NamedStrategyStages = Vec<(String, Vec<String>)>;

/// Which stages run on which threads, on a machine with `cores` cores, and the strategy stages
/// named by instance (see [`NamedStrategyStages`]).
pub(super) fn placement(
    cfg: &Config,
    p: &mut Problems,
    cores: usize,
) -> (PlacementSpec, NamedStrategyStages) {
    let pl = &cfg.placement;
    let default_wait = parse_wait(p, "placement.wait", &pl.wait, pl.spins, pl.park_timeout_us);
    for (i, &core) in pl.cores.iter().enumerate() {
        check_core(p, &format!("placement.cores[{i}]"), core, cores);
    }
    let mut named = Vec::new();
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
        None if pl.mode == "custom" => custom_threads(pl, p, cores, default_wait, &mut named),
        None => {
            p.add(
                "placement.mode",
                format!("unknown placement {:?} (1, 2, 4, custom)", pl.mode),
            );
            Vec::new()
        }
    };
    (
        PlacementSpec {
            label: pl.mode.clone(),
            threads,
            strategy_stages: Vec::new(),
        },
        named,
    )
}

/// Resolves the strategy stages named by instance to instance numbers: every name must be a
/// `[[strategy]]` instance's, each instance on at most one stage, and the portfolio's loss
/// limits need one stage (each stage adds up only its own instruments' PnL, and a sum across
/// threads would make a replay depend on their timing).
pub(super) fn strategy_stages(
    named: &NamedStrategyStages,
    instances: &[super::super::trading::InstanceSpec],
    portfolio_limits: bool,
    p: &mut Problems,
) -> Vec<Vec<u8>> {
    let mut stages: Vec<Vec<u8>> = Vec::with_capacity(named.len());
    for (key, names) in named {
        let mut group = Vec::with_capacity(names.len());
        for name in names {
            let Some(k) = instances.iter().position(|i| i.name == *name) else {
                let known: Vec<&str> = instances.iter().map(|i| i.name.as_str()).collect();
                p.add(
                    key.clone(),
                    format!(
                        "no [[strategy]] instance is named {name:?} (instances: {})",
                        known.join(", ")
                    ),
                );
                continue;
            };
            let k = k as u8;
            if let Some(other) = stages.iter().chain([&group]).position(|g| g.contains(&k)) {
                let other = named.get(other).map_or(key.as_str(), |(k, _)| k.as_str());
                p.add(
                    key.clone(),
                    format!("instance {name:?} is already on the strategy stage of {other}"),
                );
                continue;
            }
            group.push(k);
        }
        stages.push(group);
    }
    if !named.is_empty() && portfolio_limits {
        p.add(
            named[0].0.clone(),
            "several strategy stages cannot keep [risk.portfolio] loss limits: each stage adds \
             up only its own instruments' PnL, and a sum across threads would make a replay \
             depend on their timing; set per-instrument limits ([risk] loss limits) or run one \
             strategy stage",
        );
    }
    stages
}

/// Slots per ring.
pub(super) fn ring_capacity(cfg: &Config, p: &mut Problems) -> usize {
    let cap = cfg.rings.capacity;
    if cap < 16 || !cap.is_power_of_two() {
        p.add(
            "rings.capacity",
            format!("{cap} must be a power of two of at least 16"),
        );
    } else if cap > MAX_RING_CAPACITY {
        p.add(
            "rings.capacity",
            format!(
                "{cap} is above the largest ring, {MAX_RING_CAPACITY} slots (2^20): every ring \
                 is allocated and written through at start-up, and 2^20 feed slots are already \
                 about {} MiB",
                (MAX_RING_CAPACITY * FEED_SLOT_BYTES) >> 20
            ),
        );
    }
    cap
}

/// The largest `rings.capacity`: 2^20 slots.
///
/// Why this bound: every ring is allocated and written through at start-up (so no page is first
/// touched mid-run), and the feed → book ring's slot holds a whole market event, about half a
/// KiB, so 2^20 slots already take about half a GiB. That is also far more than a ring has to
/// absorb: at the busiest venue's peak of a few hundred thousand messages a second it is
/// seconds of data, and a deeper queue only adds queueing delay in front of the book. Above it,
/// a mistyped value (a digit too many, a size in bytes) would end in an allocation failure or
/// an out-of-memory kill instead of a config error.
pub const MAX_RING_CAPACITY: usize = 1 << 20;

/// The size of a feed → book ring slot.
const FEED_SLOT_BYTES: usize =
    size_of::<crate::stages::outbox::Stamped<crate::stages::msg::MarketMsg>>();

/// `[runtime]`: only checked; the engine takes the table as it is.
pub(super) fn runtime(cfg: &Config, p: &mut Problems) {
    if let Some(prio) = cfg.runtime.realtime_priority
        && !(1..=99).contains(&prio)
    {
        p.add(
            "runtime.realtime_priority",
            format!("{prio} is outside SCHED_FIFO's 1..=99"),
        );
    }
}

/// The longest status interval accepted: a day (a larger value is a mistyped unit).
const MAX_STATUS_INTERVAL_S: u64 = 86_400;

/// `[metrics]`: the endpoint's address must be an IP and port (a name would need a lookup,
/// and the endpoint is meant for a local address), and the interval a sane number of seconds.
pub(super) fn metrics(cfg: &Config, p: &mut Problems) -> MetricsSettings {
    let m = &cfg.metrics;
    let listen = m
        .listen
        .as_deref()
        .and_then(|s| match s.parse::<std::net::SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                p.add(
                    "metrics.listen",
                    format!("\"{s}\" is not an IP address and port (like \"127.0.0.1:9464\")"),
                );
                None
            }
        });
    if m.status_interval_s > MAX_STATUS_INTERVAL_S {
        p.add(
            "metrics.status_interval_s",
            format!(
                "{} s is more than a day ({MAX_STATUS_INTERVAL_S} s)",
                m.status_interval_s
            ),
        );
    }
    MetricsSettings {
        listen,
        status_interval: (m.status_interval_s > 0)
            .then(|| std::time::Duration::from_secs(m.status_interval_s)),
    }
}

/// The threads of `mode = "custom"`.
fn custom_threads(
    pl: &PlacementConfig,
    p: &mut Problems,
    cores: usize,
    default_wait: WaitStrategy,
    named: &mut NamedStrategyStages,
) -> Vec<ThreadSpec> {
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
            let kind = match s.strip_prefix("strategy:") {
                Some(list) => {
                    let names: Vec<String> = list.split('+').map(|n| n.trim().to_owned()).collect();
                    if names.iter().any(String::is_empty) {
                        p.add(
                            skey,
                            format!("{s:?} names an empty instance (strategy:NAME or strategy:NAME+NAME)"),
                        );
                        continue;
                    }
                    if named.len() >= usize::from(u8::MAX) {
                        p.add(skey, "too many strategy stages");
                        continue;
                    }
                    named.push((skey.clone(), names));
                    Some(StageKind::Strategy(named.len() as u8))
                }
                None => StageKind::from_name(s),
            };
            match kind {
                None => p.add(
                    skey,
                    format!("unknown stage {s:?} (feed, book, strategy, strategy:NAME, gateway)"),
                ),
                Some(k) => {
                    if let Some(&(_, other)) = placed.iter().find(|(pk, _)| *pk == k) {
                        p.add(
                            skey,
                            format!("stage {s} is already on placement.threads[{other}]"),
                        );
                    } else {
                        if stages
                            .last()
                            .is_some_and(|&prev: &StageKind| prev.rank() > k.rank())
                        {
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
