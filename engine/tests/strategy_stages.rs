//! Strategy instances spread over several strategy stages (a custom placement's
//! `strategy:NAME` stages), each on its own thread, backtested on real recordings. Where the
//! instances run changes nothing they decide: the same config placed on one strategy stage or
//! spread over several gives the same fills, equity samples and per-instance results, run after
//! run; the run report adds the stages' counters up; instances of two stages cannot share an
//! instrument.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use pinion_engine::backtest::{self, BacktestReport};
use pinion_engine::config::{Config, Settings};
use pinion_engine::pipeline::{Console, PipelineError, PipelineReport};

mod common;

use common::accounts::{ACCOUNT, APART};

const BTCUSDT: &str = "binance/spot-btcusdt-20240808.hbt.gz";
const BYBIT: &str = "bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst";

/// The Bybit account: one market maker on BTCUSDT (linear and spot), another on ETHUSDT and
/// SOLUSDT (linear and spot where listed).
const BYBIT_ACCOUNT: &str = r#"
[pacing]
mode = "max"
[runtime]
progress = false
[risk]
max_order_qty = "1"
max_notional = "1000"
max_position = "0.5"
max_open_orders = 10
orders_per_second = 100
order_burst = 10
price_band_bps = 50
[fees]
maker_bps = 1.0
taker_bps = 5.0
[backtest]
period_ms = 1000
capital = "10000"

[[strategy]]
name = "btc"
kind = "market-making"
order_qty = "0.001"
instruments = ["BTCUSDT"]
[strategy.market_making]
fair = "microprice"
half_spread_bps = 0.2
skew_bps = 2.0
requote_bps = 0.2
levels = 2
level_step_bps = 0.5

[[strategy]]
name = "alts"
kind = "market-making"
order_qty = "0.01"
instruments = ["ETHUSDT", "SOLUSDT"]
[strategy.market_making]
fair = "mid"
half_spread_bps = 0.3
skew_bps = 1.0
requote_bps = 0.2
levels = 1
level_step_bps = 0.5
"#;

/// A custom placement: feed and book on one thread, then a thread per entry of `threads`
/// (each a list of stages), every thread parked when idle (the CI machine has two cores).
fn custom(threads: &[&[&str]]) -> String {
    let mut s = String::from(
        "[placement]\nmode = \"custom\"\nwait = \"park\"\n[[placement.threads]]\nname = \"market\"\nstages = [\"feed\", \"book\"]\n",
    );
    for (i, stages) in threads.iter().enumerate() {
        let list: Vec<String> = stages.iter().map(|s| format!("{s:?}")).collect();
        s.push_str(&format!(
            "[[placement.threads]]\nname = \"t{i}\"\nstages = [{}]\n",
            list.join(", ")
        ));
    }
    s
}

/// The BTCUSDT account with a market maker and an imbalance trader, each with its own budget.
fn btc_account() -> String {
    format!("{ACCOUNT}{APART}")
}

fn preset(mode: &str) -> String {
    format!("[placement]\nmode = {mode:?}\nwait = \"park\"\n")
}

fn settings(account: &str, source: &Path, placement: &str) -> Result<Settings, String> {
    let text = format!(
        "[input]\nsource = {:?}\n{placement}{account}",
        source.to_str().expect("a UTF-8 path"),
    );
    Config::parse(&text, "stages.toml")
        .map_err(|e| e.to_string())?
        .validate_for("stages.toml", 2, &pinion_testkit::data::data_dir())
        .map_err(|e| e.to_string())
}

/// What a backtest decided and earned, as its files say it: the fills, the equity samples and
/// the trading section of report.json; with the run report.
struct Outcome {
    fills: String,
    equity: String,
    trading: serde_json::Value,
    report: PipelineReport,
    backtest: BacktestReport,
}

fn run(settings: &Settings, tag: &str) -> Outcome {
    let (report, bt) = backtest::run(settings, Arc::new(AtomicBool::new(false)), Console::QUIET)
        .expect("the backtest runs");
    let dir = common::scratch_dir(tag);
    backtest::write_all(&dir, &bt, &report).expect("the files are written");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("the file");
    let json: serde_json::Value =
        serde_json::from_str(&read("report.json")).expect("report.json parses");
    let out = Outcome {
        fills: read("fills.csv"),
        equity: read("equity.csv"),
        trading: json["trading"].clone(),
        report,
        backtest: bt,
    };
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn assert_same(a: &Outcome, b: &Outcome, what: &str) {
    assert_eq!(a.fills, b.fills, "{what}: fills.csv");
    assert_eq!(a.equity, b.equity, "{what}: equity.csv");
    assert_eq!(a.trading, b.trading, "{what}: report.json trading");
}

/// Every instance on its own instruments, one strategy stage against two on their own threads
/// (in both orders): the same fills, equity and per-instance results; run twice.
#[test]
fn instances_on_disjoint_instruments_decide_the_same_on_one_stage_or_two() {
    let Some(path) = pinion_testkit::data::require(BYBIT) else {
        return;
    };
    let one = run(
        &settings(BYBIT_ACCOUNT, &path, &preset("1")).expect("valid"),
        "stages-one",
    );
    // What the comparison stands on: both instances traded, on instruments of both venues.
    let instruments = one.trading["instruments"].as_array().expect("instruments");
    let ordered = |name: &str| -> u64 {
        instruments
            .iter()
            .flat_map(|i| i["by_strategy"].as_array().into_iter().flatten())
            .filter(|s| s["name"] == name || s["instance"] == name)
            .map(|s| s["orders"].as_u64().unwrap_or(0))
            .sum()
    };
    assert!(
        ordered("btc") > 0,
        "the btc instance traded: {instruments:#?}"
    );
    assert!(ordered("alts") > 0, "the alts instance traded");
    let two = custom(&[&["strategy", "gateway"], &["strategy:alts"]]);
    let swapped = custom(&[&["strategy:alts"], &["strategy", "gateway"]]);
    let alts_first = custom(&[&["strategy:btc"], &["strategy"], &["gateway"]]);
    for (i, placement) in [
        two.as_str(),
        swapped.as_str(),
        alts_first.as_str(),
        two.as_str(),
    ]
    .into_iter()
    .enumerate()
    {
        let s = settings(BYBIT_ACCOUNT, &path, placement).expect("valid");
        assert_eq!(s.placement.strategy_stage_count(), 2);
        let split = run(&s, &format!("stages-split-{i}"));
        assert_same(&one, &split, &format!("placement {i}"));
        // The run report adds the two stages' counters up.
        for (stage, counter) in [
            ("strategy", "orders"),
            ("strategy", "fills"),
            ("strategy", "views"),
            ("gateway", "orders_sent"),
        ] {
            assert_eq!(
                one.report.counter(stage, counter),
                split.report.counter(stage, counter),
                "{stage}.{counter}, placement {i}"
            );
        }
        assert_eq!(
            split
                .report
                .run
                .stages
                .iter()
                .filter(|s| s.stage == "strategy")
                .count(),
            2,
            "two strategy stages ran"
        );
        assert_eq!(one.backtest.total.fills, split.backtest.total.fills);
    }
}

/// Both instances of one instrument on a strategy stage of their own (the first stage idle on
/// its own thread): every message of the instrument goes through the second lane of the book
/// stage and the gateway, and the fills are those of the one-stage run, to the row.
#[test]
fn a_second_strategy_stage_trades_as_the_first_would() {
    let Some(path) = pinion_testkit::data::require(BTCUSDT) else {
        return;
    };
    let one = run(
        &settings(&btc_account(), &path, &preset("1")).expect("valid"),
        "stages-btc-one",
    );
    assert!(
        one.fills.lines().count() > 100,
        "the instances traded: {} fill rows",
        one.fills.lines().count()
    );
    let placement = custom(&[&["strategy"], &["strategy:maker+taker", "gateway"]]);
    let s = settings(&btc_account(), &path, &placement).expect("valid");
    let split = run(&s, "stages-btc-split");
    assert_same(&one, &split, "both instances on the second stage");
    let first = split
        .report
        .run
        .stages
        .iter()
        .find(|s| s.stage == "strategy" && s.counter("views") == Some(0));
    assert!(first.is_some(), "the first strategy stage saw nothing");
}

#[test]
fn instances_that_share_an_instrument_must_share_a_stage() {
    let Some(path) = pinion_testkit::data::require(BTCUSDT) else {
        return;
    };
    let placement = custom(&[&["strategy", "gateway"], &["strategy:taker"]]);
    let s = settings(&btc_account(), &path, &placement).expect("valid config");
    match pinion_engine::backtest::run(&s, Arc::new(AtomicBool::new(false)), Console::QUIET) {
        Err(PipelineError::SharedInstrument {
            symbol,
            first,
            second,
            ..
        }) => {
            assert_eq!(
                (symbol.as_str(), first.as_str(), second.as_str()),
                ("BTCUSDT", "maker", "taker")
            );
        }
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("two stages shared BTCUSDT"),
    }
}

#[test]
fn strategy_stages_name_configured_instances_once() {
    let path = Path::new("unused.hbt.gz");
    let cases: [(&[&[&str]], &str); 4] = [
        (
            &[&["strategy", "gateway"], &["strategy:nobody"]],
            "no [[strategy]] instance is named \"nobody\"",
        ),
        (
            &[
                &["strategy", "gateway"],
                &["strategy:maker"],
                &["strategy:maker"],
            ],
            "instance \"maker\" is already on the strategy stage of placement.threads[2].stages[0]",
        ),
        (
            &[&["strategy", "gateway"], &["strategy:maker+maker"]],
            "instance \"maker\" is already on the strategy stage",
        ),
        (
            &[&["gateway"], &["strategy:maker"]],
            "stage strategy is on no thread",
        ),
    ];
    for (threads, expected) in cases {
        let err = settings(&btc_account(), path, &custom(threads))
            .err()
            .unwrap_or_else(|| panic!("{threads:?} was accepted"));
        assert!(err.contains(expected), "{threads:?}: {err}");
    }
    // A portfolio loss limit adds every instrument's PnL up: one stage only.
    let account = format!(
        "{}\n[risk.portfolio]\nmax_total_loss = \"100\"\n",
        btc_account()
    );
    let err = settings(
        &account,
        path,
        &custom(&[&["strategy", "gateway"], &["strategy:maker"]]),
    )
    .expect_err("refused");
    assert!(
        err.contains("several strategy stages cannot keep [risk.portfolio] loss limits"),
        "{err}"
    );
}

/// An instrument's loss limit reached in a replay on a second strategy stage stops that stage
/// (its gates off, its orders cancelled, its strategies asked for nothing more) without
/// killing the account, which another stage's thread would see at a point its timing decides:
/// the fills are those of the one-stage run, where the same limit kills the account.
#[test]
fn a_loss_limit_on_a_second_stage_stops_it_as_the_kill_stops_one_stage() {
    let Some(path) = pinion_testkit::data::require(BTCUSDT) else {
        return;
    };
    let account = btc_account().replacen(
        "price_band_bps = 50\n",
        "price_band_bps = 50\nmax_total_loss = \"1\"\n",
        1,
    );
    let one = run(
        &settings(&account, &path, &preset("1")).expect("valid"),
        "stages-loss-one",
    );
    assert_eq!(one.report.counter("strategy", "loss_breaches"), 1);
    assert!(
        one.report.control.killed.is_some(),
        "one stage: the account is killed"
    );
    let placement = custom(&[&["strategy"], &["strategy:maker+taker", "gateway"]]);
    let split = run(
        &settings(&account, &path, &placement).expect("valid"),
        "stages-loss-split",
    );
    assert_eq!(split.report.counter("strategy", "loss_breaches"), 1);
    assert!(
        split.report.control.killed.is_none(),
        "several stages: the account is not killed by a replay's loss limit"
    );
    assert_same(&one, &split, "a loss limit reached");
}

/// A strategy stage the settings ask for but no thread runs (settings changed after they were
/// checked) is refused when the run is built, not left to fill its ring and stall the book stage.
#[test]
fn a_strategy_stage_on_no_thread_is_refused_at_build() {
    let Some(path) = pinion_testkit::data::require(BTCUSDT) else {
        return;
    };
    let placement = custom(&[&["strategy", "gateway"], &["strategy:maker+taker"]]);
    let mut s = settings(&btc_account(), &path, &placement).expect("valid");
    s.placement.threads.pop();
    match pinion_engine::pipeline::build(&s, Arc::new(AtomicBool::new(false))) {
        Err(PipelineError::UnplacedStage(name)) => assert_eq!(name, "strategy-1"),
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("built with a stage on no thread"),
    }
}
