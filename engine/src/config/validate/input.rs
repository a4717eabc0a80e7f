//! `[input]`, `[synthetic]` and `[pacing]`: what to replay, and how fast.

use std::path::PathBuf;

use pinion_feed::source::Decompress;

use super::super::settings::{InputSpec, PacingSpec};
use super::super::{Config, SyntheticConfig};
use super::{Problems, parse_venue};

/// What to replay.
pub(super) fn input(cfg: &Config, p: &mut Problems) -> InputSpec {
    let venue = cfg
        .input
        .venue
        .as_deref()
        .and_then(|v| parse_venue(p, "input.venue", v));
    if cfg.input.source == "synthetic" {
        let s: &SyntheticConfig = &cfg.synthetic;
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
        let path = PathBuf::from(&cfg.input.source);
        if cfg.input.source.is_empty() {
            p.add(
                "input.source",
                "empty (give \"synthetic\" or a recording's path)",
            );
        } else if !pinion_feed::source::is_stdin(&path) && !path.is_file() {
            p.add(
                "input.source",
                format!("recording {} not found", path.display()),
            );
        }
        let decompress = if cfg.input.read_ahead {
            Decompress::Ahead
        } else {
            Decompress::Inline
        };
        InputSpec::Recording {
            path,
            venue,
            decompress,
        }
    }
}

/// The largest `pacing.max_wait_ms` other than 0 (no cap): a day. Larger is surely a mistake
/// (a value in µs or ns), and a day in ns is far from overflowing.
const MAX_WAIT_MS: u64 = 86_400_000;

/// How fast recorded frames are released.
pub(super) fn pacing(cfg: &Config, p: &mut Problems) -> PacingSpec {
    let pc = &cfg.pacing;
    if !(pc.speed.is_finite() && pc.speed > 0.0) {
        p.add(
            "pacing.speed",
            format!("{} must be a positive number", pc.speed),
        );
    }
    let max_wait_ns = match pc.max_wait_ms {
        0 => None,
        ms if ms > MAX_WAIT_MS => {
            p.add(
                "pacing.max_wait_ms",
                format!("{ms} is above {MAX_WAIT_MS} (a day); 0 means no cap"),
            );
            None
        }
        ms => Some(ms * 1_000_000),
    };
    // A speed other than 1 that nothing would use is a mistake, as a rate under `max` is.
    let speed_set = pc.speed.is_finite() && pc.speed > 0.0 && pc.speed != 1.0;
    match pc.mode.as_str() {
        "max" => {
            if pc.rate != 0 {
                p.add("pacing.rate", "only applies with pacing.mode = \"paced\"");
            }
            if speed_set {
                p.add(
                    "pacing.speed",
                    format!("{} only applies with pacing.mode = \"paced\"", pc.speed),
                );
            }
            PacingSpec::Max
        }
        "paced" if pc.rate > 0 => {
            if speed_set {
                p.add(
                    "pacing.speed",
                    format!(
                        "{} is not used: pacing.rate = {} releases frames at a fixed rate, not at \
                         the recorded times the speed scales",
                        pc.speed, pc.rate
                    ),
                );
            }
            PacingSpec::Rate {
                per_second: pc.rate,
                max_wait_ns,
            }
        }
        "paced" => PacingSpec::Recorded {
            speed: pc.speed,
            max_wait_ns,
        },
        other => {
            p.add(
                "pacing.mode",
                format!("unknown mode {other:?} (max, paced)"),
            );
            PacingSpec::Max
        }
    }
}
