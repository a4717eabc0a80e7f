//! Each strategy's shipped config (`configs/replay-<kind>.toml`) replayed on the real recording
//! it names, through the whole pipeline and the simulated venue: the strategy the config
//! selects is the one that runs, it places orders and gets fills, the risk gate refuses none of
//! them, what it counts agrees with what the venue says happened, and two runs in different
//! placements give the same reports, fills and positions.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use pinion_engine::config::{Config, Override, Overrides, Settings};
use pinion_engine::pipeline::{self, Console, PipelineReport};

/// The recording the shipped configs name, from the repository root.
const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";

/// `configs/replay-<kind>.toml` on the recording at `source`, in `placement`, with park waits
/// (the CI machine has two cores) and no progress bar.
fn settings(kind: &str, source: &str, placement: &str) -> Settings {
    let name = format!("replay-{kind}.toml");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../configs")
        .join(&name);
    let text = std::fs::read_to_string(&path).expect("the shipped config");
    let mut o = Overrides::default();
    o.push(Override::string("input.source", source));
    o.push(Override::string("placement.mode", placement));
    o.push(Override::string("placement.wait", "park"));
    o.push(Override::value("runtime.progress", false));
    Config::parse_with(&text, &name, &o)
        .unwrap_or_else(|e| panic!("{e}"))
        .validate_for(&name, 2, &pinion_testkit::data::data_dir())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// What must not change from run to run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    orders: u64,
    cancels: u64,
    fills: u64,
    exec_reports: u64,
    exec_digest: u64,
    position_digest: u64,
    position: i64,
    realized: i128,
}

fn outcome(kind: &str, r: &PipelineReport) -> Outcome {
    let c = |stage: &str, name: &str| r.counter(stage, name);
    assert_eq!(r.trading.len(), 1, "{kind}: one traded instrument");
    let t = &r.trading[0];
    assert_eq!(t.strategy, kind, "the config's strategy runs");
    // What the strategy counts agrees with the venue.
    assert_eq!(t.stats.fills, c("gateway", "venue_fills"), "{kind}: fills");
    assert_eq!(
        t.stats.orders - t.stats.risk_rejects,
        c("gateway", "orders_sent"),
        "{kind}: orders past the gate reach the venue"
    );
    assert_eq!(t.stats.cancels, c("gateway", "cancels_sent"), "{kind}");
    assert_eq!(c("gateway", "venue_reports_dropped"), 0, "{kind}");
    // The strategy spends the order rate it is told about and stays inside its limits: the
    // gate has nothing to refuse.
    assert_eq!(t.gate.refused, 0, "{kind}: {:?}", t.gate);
    Outcome {
        orders: c("gateway", "orders_sent"),
        cancels: c("gateway", "cancels_sent"),
        fills: c("gateway", "venue_fills"),
        exec_reports: c("strategy", "exec_reports"),
        exec_digest: c("strategy", "exec_digest"),
        position_digest: c("strategy", "position_digest"),
        position: t.position.0,
        realized: t.realized,
    }
}

/// Runs `kind` twice (fused, then on two threads) and checks both runs.
fn replay(kind: &str, want_cancels: bool) {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let source = path.to_string_lossy().into_owned();
    let mut first: Option<Outcome> = None;
    for placement in ["1", "2"] {
        let s = settings(kind, &source, placement);
        let report = pipeline::run(&s, Arc::new(AtomicBool::new(false)), Console::QUIET)
            .expect("replay runs");
        let got = outcome(kind, &report);
        eprintln!("{kind} placement {placement}: {got:?}");
        assert!(got.orders > 0, "{kind}: the strategy must trade");
        assert!(got.fills > 0, "{kind}: some orders must fill");
        assert_eq!(got.cancels > 0, want_cancels, "{kind}: cancels");
        match &first {
            None => first = Some(got),
            Some(f) => assert_eq!(&got, f, "{kind}: placement {placement} differs"),
        }
    }
}

#[test]
fn market_making_replays_deterministically() {
    replay("market-making", true);
}

#[test]
fn spread_capture_replays_deterministically() {
    replay("spread-capture", true);
}

#[test]
fn quote_chase_replays_deterministically() {
    replay("quote-chase", true);
}

/// Momentum sends immediate-or-cancel orders: nothing rests, nothing is cancelled.
#[test]
fn momentum_replays_deterministically() {
    replay("momentum", false);
}

/// The grid's orders rest on their levels until filled: none is cancelled on a synced book.
#[test]
fn grid_replays_deterministically() {
    replay("grid", false);
}

/// `[risk] kill_switch = true`: the run starts killed, the strategy is never asked, nothing is
/// sent, and the report says why.
#[test]
fn a_run_started_with_the_kill_switch_sends_nothing() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let name = "replay-market-making.toml";
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../configs")
            .join(name),
    )
    .expect("the shipped config");
    let mut o = Overrides::default();
    o.push(Override::string("input.source", &*path.to_string_lossy()));
    o.push(Override::string("placement.mode", "1"));
    o.push(Override::string("placement.wait", "park"));
    o.push(Override::value("runtime.progress", false));
    o.push(Override::value("risk.kill_switch", true));
    let s = Config::parse_with(&text, name, &o)
        .unwrap_or_else(|e| panic!("{e}"))
        .validate_for(name, 2, &pinion_testkit::data::data_dir())
        .unwrap_or_else(|e| panic!("{e}"));
    let report =
        pipeline::run(&s, Arc::new(AtomicBool::new(false)), Console::QUIET).expect("replay runs");
    assert_eq!(report.counter("gateway", "orders_sent"), 0);
    assert_eq!(report.trading[0].stats.orders, 0, "the strategy was asked");
    assert!(
        report.counter("strategy", "views") > 0,
        "the market still flowed"
    );
    assert_eq!(
        report.control.killed,
        Some(pinion_engine::control::KillReason::Config)
    );
    assert_eq!(report.to_json()["control"]["killed"], "config");
}

/// Market making with engine-held exits on the real recording: stops and take-profits fire,
/// each closes the position with an IOC through the touch, and the run is the same in both
/// placements, exits included. The second run asks for `protect = "exchange"`: the simulated
/// venue has no native protective orders, so the engine holds the exits as before (the same
/// run to the digest), and the report says it fell back.
#[test]
fn protective_exits_fire_close_the_position_and_replay_deterministically() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let source = path.to_string_lossy().into_owned();
    let mut first = None;
    for (placement, protect) in [("1", "engine"), ("2", "exchange")] {
        let name = "replay-market-making.toml";
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../configs")
                .join(name),
        )
        .expect("the shipped config");
        let mut o = Overrides::default();
        o.push(Override::string("input.source", &*source));
        o.push(Override::string("placement.mode", placement));
        o.push(Override::string("placement.wait", "park"));
        o.push(Override::value("runtime.progress", false));
        o.push(Override::value("protection.stop_loss_bps", 1.0));
        o.push(Override::value("protection.take_profit_bps", 1.5));
        o.push(Override::value("protection.trailing_bps", 1.0));
        o.push(Override::value("protection.cooldown_ms", 200));
        o.push(Override::string("strategy.protect", protect));
        let s = Config::parse_with(&text, name, &o)
            .unwrap_or_else(|e| panic!("{e}"))
            .validate_for(name, 2, &pinion_testkit::data::data_dir())
            .unwrap_or_else(|e| panic!("{e}"));
        let report = pipeline::run(&s, Arc::new(AtomicBool::new(false)), Console::QUIET)
            .expect("replay runs");
        let t = &report.trading[0];
        let x = t.exits;
        eprintln!("placement {placement}: {x:?}, position {:?}", t.position);
        let held = match protect {
            "engine" => "engine",
            _ => "engine (venue has no native protective orders)",
        };
        assert_eq!(
            t.protection, held,
            "protect = {protect:?} on the simulated venue"
        );
        assert!(x.stop_losses + x.trailing_stops > 0, "no stop fired: {x:?}");
        assert!(x.take_profits > 0, "no take-profit fired: {x:?}");
        let fired = x.stop_losses + x.take_profits + x.trailing_stops;
        assert!(
            x.closing_orders + x.closing_refused >= fired,
            "every exit sends a close: {x:?}"
        );
        // The closes reach the venue: the gateway saw the strategy's orders and the closes
        // (and the cancels that went with them).
        let strategy_orders = t.stats.orders - t.stats.risk_rejects;
        assert!(
            report.counter("gateway", "orders_sent") >= strategy_orders + x.closing_orders,
            "closing orders reach the venue"
        );
        let c = |stage: &str, name: &str| report.counter(stage, name);
        assert_eq!(t.stats.fills, c("gateway", "venue_fills"), "fills");
        let got = (
            x,
            t.position,
            t.realized,
            c("gateway", "orders_sent"),
            c("strategy", "exec_digest"),
            c("strategy", "position_digest"),
        );
        match &first {
            None => first = Some(got),
            Some(f) => assert_eq!(&got, f, "placement {placement} differs"),
        }
    }
}

/// `source = "candles"` on a recording without klines: the strategy stage builds 5 s candles
/// from the trades in trade time and gives momentum every closed one (all but the last, still
/// open at the end), the same in both placements.
#[test]
fn momentum_trades_on_candles_built_from_trades() {
    use std::io::BufRead;
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    // The 5 s candles the recording's trades fall in, read independently of the engine.
    let file = std::fs::File::open(&path).expect("recording");
    let mut buckets = std::collections::BTreeSet::new();
    for line in std::io::BufReader::new(flate2::read::GzDecoder::new(file)).lines() {
        let line = line.expect("line");
        let json = line.split_once(' ').expect("`<ns> <json>`").1;
        if !json.contains("@trade\"") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(json).expect("json");
        buckets.insert(v["data"]["T"].as_u64().expect("trade time") / 5_000);
    }
    assert!(buckets.len() > 40, "five minutes of trades");
    let source = path.to_string_lossy().into_owned();
    let mut first: Option<Outcome> = None;
    for placement in ["1", "2"] {
        let name = "replay-momentum.toml";
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../configs")
                .join(name),
        )
        .expect("the shipped config");
        let mut o = Overrides::default();
        o.push(Override::string("input.source", source.as_str()));
        o.push(Override::string("placement.mode", placement));
        o.push(Override::string("placement.wait", "park"));
        o.push(Override::value("runtime.progress", false));
        o.push(Override::string("strategy.momentum.source", "candles"));
        o.push(Override::value("strategy.momentum.candle_ms", 5_000));
        o.push(Override::value("strategy.momentum.short_samples", 3));
        o.push(Override::value("strategy.momentum.long_samples", 8));
        o.push(Override::value("strategy.momentum.rsi_period", 5));
        let s = Config::parse_with(&text, name, &o)
            .unwrap_or_else(|e| panic!("{e}"))
            .validate_for(name, 2, &pinion_testkit::data::data_dir())
            .unwrap_or_else(|e| panic!("{e}"));
        let report = pipeline::run(&s, Arc::new(AtomicBool::new(false)), Console::QUIET)
            .expect("replay runs");
        assert_eq!(
            report.counter("strategy", "candles"),
            buckets.len() as u64 - 1,
            "every 5 s candle but the last, still open"
        );
        assert_eq!(report.counter("strategy", "venue_klines"), 0);
        let got = outcome("momentum", &report);
        eprintln!("momentum on candles, placement {placement}: {got:?}");
        assert!(got.orders > 0, "the closes move enough to trade");
        match &first {
            None => first = Some(got),
            Some(f) => assert_eq!(&got, f, "placement {placement} differs"),
        }
    }
}
