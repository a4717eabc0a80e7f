//! Set-up shared by the engine's integration tests: the embedded config under overrides, a
//! fused replay of the synthetic market or a recording, and a window over the middle of a run's
//! records (for the steady-state tests).

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use pinion_engine::config::{Config, Override, Overrides, REPLAY_TOML, REPLAY_TOML_NAME, Settings};
use pinion_engine::progress::ProgressCounters;

/// The embedded config, fused (placement `1`, park waits, `max` pacing, no progress bar), on
/// `records` records of the synthetic market.
pub fn fused_synthetic(records: u64) -> Settings {
    fused([Override::value("synthetic.records", records as i64)])
}

/// The embedded config, fused as in [`fused_synthetic`], on a recording, decompressed ahead of
/// the feed.
pub fn fused_recording(path: &std::path::Path) -> Settings {
    fused([
        Override::value("input.source", path.to_str().expect("a UTF-8 path")),
        Override::value("input.read_ahead", true),
    ])
}

/// The overrides of a fused run: placement `1`, park waits, `max` pacing, no progress bar.
pub fn fused_overrides() -> Overrides {
    let mut o = Overrides::default();
    for (k, v) in [
        ("placement.mode", "\"1\""),
        ("placement.wait", "\"park\""),
        ("pacing.mode", "\"max\""),
        ("runtime.progress", "false"),
    ] {
        o.push(Override::parse(&format!("{k}={v}")).expect("override"));
    }
    o
}

/// The embedded config, fused, with the `input` overrides on top.
fn fused<const N: usize>(input: [Override; N]) -> Settings {
    let mut o = fused_overrides();
    for x in input {
        o.push(x);
    }
    embedded_with(&o)
}

/// The embedded config (`configs/replay.toml`) under `overrides`, validated for this machine
/// with the real recordings' directory for relative paths.
pub fn embedded_with(overrides: &Overrides) -> Settings {
    Config::parse_with(REPLAY_TOML, REPLAY_TOML_NAME, overrides)
        .expect("the embedded config parses")
        .validate_for(
            REPLAY_TOML_NAME,
            pinion_engine::config::machine_cores(),
            &pinion_testkit::data::data_dir(),
        )
        .expect("the embedded config is valid")
}

/// A thread that calls `open` once 40 % of `records` have gone through and `close` at 90 %
/// (after start-up and warm-up, before the end-of-stream flush and the report). In between it
/// only sleeps and reads atomics. Joins to the record counts at both points and what `close`
/// returned.
pub fn steady_state_window<T: Send + 'static>(
    progress: Arc<ProgressCounters>,
    records: u64,
    open: impl FnOnce() + Send + 'static,
    close: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<(u64, u64, T)> {
    std::thread::spawn(move || {
        while progress.records() < records * 4 / 10 {
            std::thread::sleep(Duration::from_micros(200));
        }
        open();
        let opened = progress.records();
        while progress.records() < records * 9 / 10 {
            std::thread::sleep(Duration::from_micros(200));
        }
        let out = close();
        (opened, progress.records(), out)
    })
}

/// A fresh directory for a test's files, `pinion-<name>-<pid>` under the system's temporary
/// directory.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pinion-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

pub mod accounts;
pub mod sim;
