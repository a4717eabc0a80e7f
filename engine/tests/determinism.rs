//! The same recording and config give the same orders, fills and positions on every run and in
//! every placement: the simulated venue, the throttles and the staleness rules run on the
//! recording's event time, and reports reach the strategy in event-time order whatever the
//! threads do. Replayed as fast as the host goes (`pacing = max`), with park waits (the CI
//! machine has two cores), several runs per placement.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use pinion_engine::config::{Override, Overrides, Settings};
use pinion_engine::pipeline::{self, Console, PipelineReport};

mod common;

/// Runs per placement.
const RUNS: usize = 3;

/// The embedded config on `source`, at max pacing, in `placement` with park waits.
fn settings(source: &str, placement: &str) -> Settings {
    let mut o = Overrides::default();
    o.push(Override::string("input.source", source));
    o.push(Override::string("pacing.mode", "max"));
    o.push(Override::string("placement.mode", placement));
    o.push(Override::string("placement.wait", "park"));
    o.push(Override::value("runtime.progress", false));
    common::embedded_with(&o)
}

/// What must not change from run to run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    orders: u64,
    cancels: u64,
    venue_accepted: u64,
    venue_fills: u64,
    strategy_fills: u64,
    exec_reports: u64,
    /// Digest of every report the strategy applied, in order (client id, status, fill).
    exec_digest: u64,
    /// Digest of every instrument's final position and realised PnL.
    position_digest: u64,
}

impl Outcome {
    fn of(r: &PipelineReport) -> Outcome {
        let c = |stage: &str, name: &str| r.counter(stage, name);
        Outcome {
            orders: c("gateway", "orders_sent"),
            cancels: c("gateway", "cancels_sent"),
            venue_accepted: c("gateway", "venue_accepted"),
            venue_fills: c("gateway", "venue_fills"),
            strategy_fills: c("strategy", "fills"),
            exec_reports: c("strategy", "exec_reports"),
            exec_digest: c("strategy", "exec_digest"),
            position_digest: c("strategy", "position_digest"),
        }
    }
}

fn recording(relative: &str) {
    let Some(path) = pinion_testkit::data::require(relative) else {
        return;
    };
    let source = path.to_string_lossy().into_owned();
    let mut first: Option<Outcome> = None;
    for placement in ["1", "2", "4"] {
        let s = settings(&source, placement);
        for run in 0..RUNS {
            let report = pipeline::run(&s, Arc::new(AtomicBool::new(false)), Console::QUIET)
                .expect("replay runs");
            let got = Outcome::of(&report);
            eprintln!(
                "{relative} placement {placement} run {run}: {got:?} (barrier waits {})",
                report.counter("strategy", "barrier_waits")
            );
            assert_eq!(report.counter("gateway", "venue_reports_dropped"), 0);
            match &first {
                None => {
                    assert!(got.orders > 0, "{relative}: the strategy must trade");
                    assert!(got.venue_fills > 0, "{relative}: some orders must fill");
                    assert!(got.strategy_fills > 0, "{relative}: fills must reach it");
                    first = Some(got);
                }
                Some(want) => assert_eq!(
                    &got, want,
                    "{relative}: placement {placement} run {run} differs from the first run"
                ),
            }
        }
    }
}

#[test]
fn spot_recording_trades_the_same_in_every_run_and_placement() {
    recording("binance/spot-btcusdt-20240808.hbt.gz");
}

#[test]
fn usdm_recording_trades_the_same_in_every_run_and_placement() {
    recording("binance/usdm-btcusdt-20240808.hbt.gz");
}
