//! Shared helpers for pinion's benchmarks: loading the real recordings in `../shared/data` into
//! memory before anything is timed, the host state every benchmark prints first, and the
//! replay settings the whole-pipeline benchmarks start from.
//!
//! Missing recordings follow [`pinion_testkit::data::require`]: outside CI a benchmark that
//! needs one skips with a message; in CI it fails.

use std::io::{BufRead, BufReader};
use std::path::Path;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use pinion_engine::config::{Config, Override, Overrides, REPLAY_TOML, REPLAY_TOML_NAME, Settings};
use pinion_engine::pipeline::{self, Console, PipelineReport};

/// The embedded replay config on `source` (a recording's path, or `synthetic`), progress off,
/// with `overrides` (`key`, value) applied as `pinion replay --set key=value` would apply them.
///
/// # Panics
/// On an override or a config the engine refuses: benchmark settings must be sound.
pub fn replay_settings(source: &Path, overrides: &[(&str, &str)]) -> Settings {
    config_settings(REPLAY_TOML, REPLAY_TOML_NAME, source, overrides)
}

/// The config `text` (its file name `name`, for messages) on `source`, progress off, with
/// `overrides` applied as [`replay_settings`] applies them: for a benchmark whose config is not
/// the embedded one (several `[[strategy]]` tables, say).
///
/// # Panics
/// On an override or a config the engine refuses: benchmark settings must be sound.
pub fn config_settings(
    text: &str,
    name: &str,
    source: &Path,
    overrides: &[(&str, &str)],
) -> Settings {
    let mut o = Overrides::default();
    o.push(Override::string("input.source", source.to_string_lossy()));
    o.push(Override::value("runtime.progress", false));
    for (k, v) in overrides {
        // Values are read as TOML, and as strings when they are not TOML (`max`, `park`).
        match Override::parse(&format!("{k}={v}")) {
            Ok(x) => o.push(x),
            Err(e) => panic!("benchmark override: {e}"),
        }
    }
    match Config::parse_with(text, name, &o)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            c.validate_for(
                name,
                pinion_engine::config::machine_cores(),
                &pinion_testkit::data::data_dir(),
            )
            .map_err(|e| e.to_string())
        }) {
        Ok(s) => s,
        Err(e) => panic!("benchmark config: {e}"),
    }
}

/// One whole-pipeline run on `settings`, quiet, with no way to stop it early.
///
/// # Panics
/// When the pipeline fails: a benchmark's run must be clean to be measured.
pub fn run_replay(settings: &Settings) -> PipelineReport {
    match pipeline::run(settings, Arc::new(AtomicBool::new(false)), Console::QUIET) {
        Ok(r) => r,
        Err(e) => panic!("replay failed: {e}"),
    }
}

/// The median of `v` (the upper one of an even count), NaN when `v` is empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One line of an hbt recording (`<receive ns> <raw JSON>`).
#[derive(Debug, Clone)]
pub struct HbtLine {
    /// Local receive time, ns since the epoch.
    pub t_recv: u64,
    /// The raw JSON: a combined-stream envelope, or a bare REST snapshot body.
    pub json: Vec<u8>,
}

impl HbtLine {
    /// Whether this is a combined-stream envelope (the snapshot line is not).
    pub fn is_stream(&self) -> bool {
        self.json.starts_with(br#"{"stream""#)
    }
}

/// Every line of a gzip hbt recording under the data directory (`"binance/…hbt.gz"`), or
/// `None` when it is missing (see the module docs).
///
/// # Panics
/// On an unreadable or malformed file: benchmark input must be sound.
pub fn hbt_lines(relative: &str) -> Option<Vec<HbtLine>> {
    let path = pinion_testkit::data::require(relative)?;
    let file = std::fs::File::open(&path).expect("open recording");
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let lines = reader
        .lines()
        .map(|line| {
            let line = line.expect("read recording");
            let (t, json) = line.split_once(' ').expect("`<ns> <json>` line");
            HbtLine {
                t_recv: t.parse().expect("receive time"),
                json: json.as_bytes().to_vec(),
            }
        })
        .collect();
    Some(lines)
}

/// One received frame of a cryptofeed JSONL recording.
#[derive(Debug, Clone)]
pub struct JsonlFrame {
    /// The connection name (`BYBIT.ws.2`).
    pub conn: String,
    /// Receive time, ns since the epoch.
    pub t_recv: u64,
    /// The frame text.
    pub data: Vec<u8>,
}

/// The `recv` frames of a zstd cryptofeed JSONL recording under the data directory, or `None`
/// when it is missing.
///
/// # Panics
/// On an unreadable or malformed file.
pub fn jsonl_frames(relative: &str) -> Option<Vec<JsonlFrame>> {
    let path = pinion_testkit::data::require(relative)?;
    let file = std::fs::File::open(&path).expect("open recording");
    let reader = BufReader::new(zstd::Decoder::new(file).expect("zstd stream"));
    let mut frames = Vec::new();
    for line in reader.lines() {
        let v: serde_json::Value =
            serde_json::from_str(&line.expect("read recording")).expect("JSON line");
        if v["t"] != "recv" {
            continue;
        }
        frames.push(JsonlFrame {
            conn: v["conn"].as_str().expect("conn").to_owned(),
            t_recv: (v["ts"].as_f64().expect("ts") * 1e9) as u64,
            data: v["data"].as_str().expect("data").as_bytes().to_vec(),
        });
    }
    Some(frames)
}

/// The machine state benchmark figures depend on, in one line: cores, load average, CPU
/// frequency governor, isolated cores.
pub fn host_state() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    let governor = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "not exposed".into());
    let isolated = std::fs::read_to_string("/sys/devices/system/cpu/isolated")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "none".into());
    format!("{cores} cores, load average {load}, governor {governor}, isolated cores {isolated}")
}
