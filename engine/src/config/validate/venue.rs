//! `[gateway]`: the venue and, for the simulated one, its latency and queue models ([`SimSpec`]).
//! A recorded latency file is read and checked here, once, at start.

use pinion_gateway::{LatencyModel, LatencyTable, SimLatency};

use super::super::sim::{LatencyConfig, MAX_SIM_LATENCY_US, SimSpec, parse_queue_model};
use super::super::trading::VenueSpec;
use super::super::{Config, GatewayConfig};
use super::Problems;

/// The venue `[gateway]` asks for; `None` (and every problem) when it is not usable.
pub(super) fn venue(cfg: &Config, p: &mut Problems) -> Option<VenueSpec> {
    let gw = &cfg.gateway;
    match gw.venue.as_str() {
        "sim" => sim(gw, p).map(VenueSpec::Sim),
        other => {
            p.add("gateway.venue", format!("unknown venue {other:?} (sim)"));
            None
        }
    }
}

fn sim(gw: &GatewayConfig, p: &mut Problems) -> Option<SimSpec> {
    let before = p.0.len();
    if gw.latency_us > MAX_SIM_LATENCY_US {
        p.add(
            "gateway.latency_us",
            format!(
                "{} µs is more than a minute ({MAX_SIM_LATENCY_US} µs)",
                gw.latency_us
            ),
        );
    }
    let half_trip_ns = gw.latency_us.saturating_mul(1_000) / 2;
    let mut direction = |key: &str, given: &Option<LatencyConfig>| match given {
        None => Some(LatencyModel::constant(half_trip_ns)),
        Some(c) => latency(key, c, p),
    };
    let request = direction("gateway.entry_latency", &gw.entry_latency);
    let report = direction("gateway.response_latency", &gw.response_latency);
    let queue = parse_queue_model(&gw.queue_model)
        .map_err(|e| p.add("gateway.queue_model", e))
        .ok();
    if p.0.len() != before {
        return None;
    }
    Some(SimSpec {
        latency: SimLatency {
            request: request?,
            report: report?,
        },
        queue: queue?,
        seed: gw.seed,
    })
}

/// One direction's model, with its bounds checked and a recorded file read.
fn latency(key: &str, c: &LatencyConfig, p: &mut Problems) -> Option<LatencyModel> {
    let too_long = |us: u64| us > MAX_SIM_LATENCY_US;
    let ns = |us: u64| us.saturating_mul(1_000);
    let (model, largest_us) = match c {
        LatencyConfig::Constant { us } => (LatencyModel::constant(ns(*us)), *us),
        LatencyConfig::Uniform { min_us, max_us } => {
            if min_us > max_us {
                p.add(
                    key,
                    format!("uniform: min_us {min_us} is above max_us {max_us}"),
                );
                return None;
            }
            let model = LatencyModel::Uniform {
                min_ns: ns(*min_us),
                max_ns: ns(*max_us),
            };
            (model, *max_us)
        }
        LatencyConfig::Lognormal { median_us, p99_us } => {
            if *median_us == 0 || p99_us <= median_us {
                p.add(
                    key,
                    format!(
                        "lognormal: needs 0 < median_us < p99_us, got median_us {median_us}, \
                         p99_us {p99_us}"
                    ),
                );
                return None;
            }
            let model = LatencyModel::LogNormal {
                median_ns: ns(*median_us),
                p99_ns: ns(*p99_us),
            };
            (model, *p99_us)
        }
        LatencyConfig::Histogram { path } => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    p.add(key, format!("histogram {}: {e}", path.display()));
                    return None;
                }
            };
            match LatencyTable::parse_hgrm(&text) {
                Ok(table) => {
                    let largest_ns = table.rows().last().map_or(0, |r| r.value_ns);
                    (LatencyModel::Histogram(table), largest_ns / 1_000)
                }
                Err(e) => {
                    p.add(key, format!("histogram {}: {e}", path.display()));
                    return None;
                }
            }
        }
    };
    if too_long(largest_us) {
        p.add(
            key,
            format!("{largest_us} µs is more than a minute ({MAX_SIM_LATENCY_US} µs)"),
        );
        return None;
    }
    Some(model)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use pinion_gateway::QueueModel;

    use super::*;
    use crate::latency::{new_histogram, write_percentiles};

    fn spec(gateway: &str) -> Result<SimSpec, String> {
        let text = format!("[gateway]\n{gateway}");
        let cfg = Config::parse(&text, "t.toml").map_err(|e| e.to_string())?;
        let s = cfg
            .validate_for("t.toml", 2, Path::new("/nonexistent"))
            .map_err(|e| e.to_string())?;
        let VenueSpec::Sim(sim) = s.trading.venue;
        Ok(sim)
    }

    #[test]
    fn latency_us_alone_is_the_old_constant_round_trip() {
        let s = spec("latency_us = 300").unwrap();
        assert_eq!(s, SimSpec::round_trip(300_000));
        assert_eq!(s.latency, SimLatency::constant(150_000, 150_000));
        assert_eq!((s.queue, s.seed), (QueueModel::Conservative, 1));
    }

    #[test]
    fn each_direction_takes_its_own_model_and_the_rest_half_the_round_trip() {
        let s = spec(
            r#"latency_us = 300
entry_latency = { kind = "lognormal", median_us = 150, p99_us = 900 }
queue_model = "power:3"
seed = 7"#,
        )
        .unwrap();
        assert_eq!(
            s.latency.request,
            LatencyModel::LogNormal {
                median_ns: 150_000,
                p99_ns: 900_000
            }
        );
        assert_eq!(s.latency.report, LatencyModel::constant(150_000));
        assert_eq!((s.queue, s.seed), (QueueModel::Power(3), 7));
        let s = spec(
            r#"response_latency = { kind = "uniform", min_us = 40, max_us = 120 }
queue_model = "log""#,
        )
        .unwrap();
        assert_eq!(s.latency.request, LatencyModel::constant(50_000));
        assert_eq!(
            s.latency.report,
            LatencyModel::Uniform {
                min_ns: 40_000,
                max_ns: 120_000
            }
        );
        assert_eq!(s.queue, QueueModel::Log);
        let s = spec(r#"entry_latency = { kind = "constant", us = 20 }"#).unwrap();
        assert_eq!(s.latency.request, LatencyModel::constant(20_000));
        assert_eq!(
            spec(r#"queue_model = "optimistic""#).unwrap().queue,
            QueueModel::Optimistic
        );
    }

    #[test]
    fn bad_models_are_errors_naming_the_key_and_what_was_seen() {
        let e = spec(
            r#"entry_latency = { kind = "lognormal", median_us = 900, p99_us = 150 }
response_latency = { kind = "uniform", min_us = 5, max_us = 1 }
queue_model = "power:0""#,
        )
        .unwrap_err();
        assert!(
            e.contains(
                "gateway.entry_latency: lognormal: needs 0 < median_us < p99_us, got median_us 900"
            ),
            "{e}"
        );
        assert!(
            e.contains("gateway.response_latency: uniform: min_us 5 is above max_us 1"),
            "{e}"
        );
        assert!(
            e.contains("gateway.queue_model: \"power:0\": expected"),
            "{e}"
        );
        // A mistyped field, an unknown kind and an unknown key are parse errors.
        let e = spec(r#"entry_latency = { kind = "constant", usec = 5 }"#).unwrap_err();
        assert!(e.contains("usec"), "{e}");
        let e = spec(r#"entry_latency = { kind = "gamma", us = 5 }"#).unwrap_err();
        assert!(e.contains("gamma"), "{e}");
        let e = spec("latency_model = 3").unwrap_err();
        assert!(e.contains("latency_model"), "{e}");
        let e = spec(r#"entry_latency = { kind = "constant", us = 61000000 }"#).unwrap_err();
        assert!(e.contains("more than a minute"), "{e}");
        let e = spec(r#"response_latency = { kind = "histogram", path = "/nonexistent/x.hgrm" }"#)
            .unwrap_err();
        assert!(
            e.contains("gateway.response_latency: histogram /nonexistent/x.hgrm:"),
            "{e}"
        );
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pinion-venue-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_histogram_file_the_engine_wrote_is_read_back_row_for_row() {
        // 1..=1000 µs, once each, written by the report's own writer.
        let mut h = new_histogram();
        for us in 1..=1_000u64 {
            h.record(us * 1_000).unwrap();
        }
        let mut text = Vec::new();
        write_percentiles(&h, 5, 1_000.0, &mut text).unwrap();
        let dir = scratch("hgrm");
        let path = dir.join("entry.hgrm");
        std::fs::write(&path, &text).unwrap();
        let s = spec(&format!(
            "entry_latency = {{ kind = \"histogram\", path = {:?} }}",
            path.to_str().unwrap()
        ))
        .unwrap();
        let LatencyModel::Histogram(table) = s.latency.request else {
            panic!("a histogram model: {:?}", s.latency.request);
        };
        // Row for row, as the text says (values to the ns, percentiles to 10^-12).
        let text = String::from_utf8(text).unwrap();
        let written: Vec<(u64, u64)> = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() >= 3 && f[0].starts_with(|c: char| c.is_ascii_digit()))
            .map(|f| {
                let v: f64 = f[0].parse().unwrap();
                let q: f64 = f[1].parse().unwrap();
                ((q * 1e12).round() as u64, (v * 1e3).round() as u64)
            })
            .collect();
        let read: Vec<(u64, u64)> = table
            .rows()
            .iter()
            .map(|r| (r.quantile, r.value_ns))
            .collect();
        assert!(written.len() > 20, "{text}");
        assert_eq!(read, written);
        // Half of 1..=1000 µs lies at or below 500 µs (to the histogram's 3 digits).
        let median = table
            .rows()
            .iter()
            .find(|r| r.quantile == 500_000_000_000)
            .expect("a 50% row");
        assert!((499_000..=502_500).contains(&median.value_ns), "{median:?}");
        assert_eq!(
            table.rows().last().map(|r| r.quantile),
            Some(1_000_000_000_000)
        );
        // Garbage in the file is an error naming the file and line.
        std::fs::write(&path, "Value Percentile\n\n12.5 0.5 x\n").unwrap();
        let e = spec(&format!(
            "entry_latency = {{ kind = \"histogram\", path = {:?} }}",
            path.to_str().unwrap()
        ))
        .unwrap_err();
        assert!(
            e.contains("line 3: the total count is not a whole number"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
