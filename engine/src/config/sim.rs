//! `[gateway]`'s simulated-venue models: the latency of each direction, the queue model and the
//! seed, as written in TOML ([`LatencyConfig`]) and as the venue takes them ([`SimSpec`]).
//!
//! `latency_us` (the round trip, split evenly) stays the constant latency of any direction not
//! given its own model, so configs written before the models keep their meaning.

use std::path::PathBuf;

use pinion_gateway::{QueueModel, SimLatency};
use serde::Deserialize;

/// One direction's latency, as written: `{ kind = "constant", us = 50 }`,
/// `{ kind = "uniform", min_us = 40, max_us = 120 }`,
/// `{ kind = "lognormal", median_us = 150, p99_us = 900 }` or
/// `{ kind = "histogram", path = "entry.hgrm" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LatencyConfig {
    /// Always `us`.
    Constant {
        /// The latency, µs.
        us: u64,
    },
    /// Uniform over `min_us..=max_us` (whole ns).
    Uniform {
        /// Smallest, µs.
        min_us: u64,
        /// Largest, µs.
        max_us: u64,
    },
    /// Lognormal with this median and 99th percentile.
    Lognormal {
        /// Median, µs (at least 1).
        median_us: u64,
        /// 99th percentile, µs (above the median).
        p99_us: u64,
    },
    /// Drawn from a recorded distribution: an HdrHistogram `.hgrm` percentile file with values
    /// in µs (as `report.hgrm_dir` writes them), relative to the directory pinion runs in.
    Histogram {
        /// The file.
        path: PathBuf,
    },
}

/// Most latency a model may give, µs: a minute. More is taken for a unit mistake.
pub const MAX_SIM_LATENCY_US: u64 = 60_000_000;

/// The simulated venue's models, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimSpec {
    /// The latency of each direction.
    pub latency: SimLatency,
    /// How cancels at a resting order's price move it forward.
    pub queue: QueueModel,
    /// Seed of the latency draws.
    pub seed: u64,
}

impl SimSpec {
    /// Constant latencies, half of `round_trip_ns` each way, the conservative queue model and
    /// seed 1: the venue as it was before the models.
    pub const fn round_trip(round_trip_ns: u64) -> Self {
        Self {
            latency: SimLatency::constant(round_trip_ns / 2, round_trip_ns / 2),
            queue: QueueModel::Conservative,
            seed: 1,
        }
    }
}

/// The queue model written as `text`: `"conservative"`, `"optimistic"`, `"log"` or
/// `"power:<n>"` with `n` from 1 to 16.
pub fn parse_queue_model(text: &str) -> Result<QueueModel, String> {
    let expected = "expected \"conservative\", \"optimistic\", \"log\" or \"power:<n>\" with n \
                    a whole number from 1 to 16";
    match text {
        "conservative" => Ok(QueueModel::Conservative),
        "optimistic" => Ok(QueueModel::Optimistic),
        "log" => Ok(QueueModel::Log),
        _ => match text.strip_prefix("power:").map(str::parse::<u8>) {
            Some(Ok(n @ 1..=16)) => Ok(QueueModel::Power(n)),
            _ => Err(format!("{text:?}: {expected}")),
        },
    }
}
