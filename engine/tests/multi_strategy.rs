//! Several strategy instances at once (`[[strategy]]`), backtested on the real recording: each
//! trades within its own budget (`[strategy.risk]`) and the account's `[risk]` holds the net;
//! each instance's position, fees and realised PnL in `report.json`'s `by_strategy` equal an
//! independent reckoning from its own rows of `fills.csv`; an order of one instance that
//! would cross another's is stopped before the venue; two instances on one instrument size
//! their orders each by its own sizing (`[strategy.risk.sizing]`); and the same config gives
//! the same fills in every run and placement. With two instruments where one instance trades
//! both and another one of them (in either config order, so an instance's number need not be
//! its slot on an instrument), each instance's figures on each instrument are its own rows of
//! `fills.csv`, and an instance has none on the instrument it does not trade.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use pinion_engine::backtest::{self, BacktestReport};
use pinion_engine::bot::commands::fixed;
use pinion_engine::config::{Config, Settings};
use pinion_engine::pipeline::{Console, PipelineReport};
use serde_json::Value;

mod common;

use common::accounts::{ACCOUNT, APART, BYBIT_PAIR};

const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";

/// A market maker quoting at the touch and an imbalance trader taking it: the taker's orders
/// would often trade with the maker's own quotes.
const CROSSING: &str = r#"
[[strategy]]
name = "touch"
kind = "market-making"
order_qty = "0.001"
[strategy.market_making]
fair = "mid"
half_spread_bps = 0.001
skew_bps = 0.0
requote_bps = 0.001
levels = 1

[[strategy]]
name = "taker"
kind = "imbalance"
order_qty = "0.001"
threshold = 0.3
"#;

/// The instrument sized at 1 % of 10 000 USDT (about 0.0016 BTC an order); a market maker
/// with fixed sizing of its own (its `order_qty`), and an imbalance trader sized at 15 % of a
/// capital of its own of 1 000 USDT (about 0.0024 BTC).
const OWN_SIZING: &str = r#"
[risk.sizing]
kind = "fraction"
fraction = 0.01
capital = "10000"

[[strategy]]
name = "fixed"
kind = "market-making"
order_qty = "0.001"
[strategy.market_making]
fair = "microprice"
half_spread_bps = 0.5
skew_bps = 2.0
requote_bps = 0.5
levels = 2
level_step_bps = 0.5
[strategy.risk]
max_position = "0.002"
[strategy.risk.sizing]
kind = "fixed"

[[strategy]]
name = "fraction"
kind = "imbalance"
order_qty = "0.001"
threshold = 0.5
[strategy.risk.sizing]
kind = "fraction"
fraction = 0.15
capital = "1000"
"#;

/// The account on the recording at `source` with `strategies`, in `placement`, with park
/// waits (the CI machine has two cores).
fn settings(strategies: &str, source: &Path, placement: &str) -> Settings {
    let text = format!(
        "[input]\nsource = {:?}\n[placement]\nmode = {placement:?}\nwait = \"park\"\n{ACCOUNT}{strategies}",
        source.to_str().expect("a UTF-8 path"),
    );
    Config::parse(&text, "multi.toml")
        .unwrap_or_else(|e| panic!("{e}"))
        .validate_for("multi.toml", 2, &pinion_testkit::data::data_dir())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn run(settings: &Settings, tag: &str) -> (PipelineReport, BacktestReport, PathBuf) {
    let (report, bt) = backtest::run(settings, Arc::new(AtomicBool::new(false)), Console::QUIET)
        .expect("the backtest runs");
    let dir = common::scratch_dir(tag);
    backtest::write_all(&dir, &bt, &report).expect("the files are written");
    (report, bt, dir)
}

fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("the CSV file");
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("a header")
        .split(',')
        .map(str::to_owned)
        .collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_owned))
                .collect()
        })
        .collect()
}

fn num(v: &str) -> f64 {
    v.parse().unwrap_or_else(|_| panic!("{v:?} is a number"))
}

fn json_num(v: &Value) -> f64 {
    match v {
        Value::String(s) => num(s),
        Value::Number(n) => n.as_f64().expect("a number"),
        other => panic!("{other} is not a number"),
    }
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} against {b}");
}

/// Position, realised PnL (average cost) and fees of a sequence of fills, reckoned in floats.
#[derive(Debug, Default, Clone, Copy)]
struct Reckoning {
    qty: f64,
    cost: f64,
    realized: f64,
    fees: f64,
    fills: usize,
    /// The largest absolute position reached.
    peak: f64,
}

impl Reckoning {
    fn fill(&mut self, f: &HashMap<String, String>) {
        let (px, q) = (num(&f["price"]), num(&f["qty"]));
        let dir = if f["side"] == "buy" { 1.0 } else { -1.0 };
        self.fees += num(&f["fee"]);
        self.fills += 1;
        let mut rest = q;
        if self.qty != 0.0 && self.qty.signum() != dir {
            let closed = rest.min(self.qty.abs());
            let removed = self.cost * closed / self.qty.abs();
            self.realized += self.qty.signum() * px * closed - removed;
            self.cost -= removed;
            self.qty += dir * closed;
            rest -= closed;
            if self.qty.abs() < 1e-12 {
                (self.qty, self.cost) = (0.0, 0.0);
            }
        }
        if rest > 0.0 {
            self.qty += dir * rest;
            self.cost += px * dir * rest;
        }
        self.peak = self.peak.max(self.qty.abs());
    }
}

#[test]
fn two_instances_trade_apart_within_their_budgets_and_add_up_to_the_account() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let (report, _bt, dir) = run(&settings(APART, &path, "1"), "multi-apart");
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("report.json")).expect("report.json"),
    )
    .expect("JSON");
    let inst = &doc["trading"]["instruments"][0];
    let by = inst["by_strategy"].as_array().expect("by_strategy");
    assert_eq!(by.len(), 2, "{by:?}");
    assert_eq!(
        (by[0]["name"].as_str(), by[1]["name"].as_str()),
        (Some("maker"), Some("taker"))
    );
    let fills = read_csv(&dir.join("fills.csv"));
    let mut own: [Reckoning; 2] = Default::default();
    let mut net = Reckoning::default();
    for f in &fills {
        let k: usize = f["strategy"].parse().expect("an instance number");
        assert!(k < 2, "{f:?}");
        own[k].fill(f);
        net.fill(f);
    }
    for (k, (r, row)) in own.iter().zip(by).enumerate() {
        assert!(r.fills > 10, "instance {k} traded: {r:?}");
        assert_eq!(json_num(&row["fills"]) as usize, r.fills, "instance {k}");
        close(
            r.qty,
            json_num(&row["position"]),
            1e-9,
            "an instance's position",
        );
        close(
            r.realized,
            json_num(&row["realized_pnl"]),
            1e-6,
            "an instance's realised PnL",
        );
        close(r.fees, json_num(&row["fees"]), 1e-6, "an instance's fees");
    }
    // Each budget held its instance, and the account the net.
    assert!(own[0].peak <= 0.002 + 1e-12, "maker's peak {}", own[0].peak);
    assert!(own[1].peak <= 0.003 + 1e-12, "taker's peak {}", own[1].peak);
    assert!(net.peak <= 0.005 + 1e-12, "the account's peak {}", net.peak);
    assert!(
        own[0].peak > 0.0015 && own[1].peak > 0.0025,
        "each instance reached its own limit, not the other's: {own:?}"
    );
    // The instances add up to the instrument (no order of the stage's in this run): the
    // position, and the PnL before fees and after (each instance keeps its own average cost,
    // so realised and unrealised split differently from the net's, their sum does not).
    close(
        net.qty,
        json_num(&inst["position"]),
        1e-9,
        "the net position",
    );
    let sum = |key: &str| by.iter().map(|r| json_num(&r[key])).sum::<f64>();
    close(
        sum("realized_pnl") + sum("unrealized_pnl"),
        json_num(&inst["gross_pnl"]),
        1e-6,
        "gross PnL in total",
    );
    close(
        sum("net_pnl"),
        json_num(&inst["net_pnl"]),
        1e-6,
        "net PnL in total",
    );
    assert_eq!(
        report.counter("strategy", "fills"),
        fills.len() as u64,
        "every fill is an instance's"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_order_that_would_trade_with_another_instances_is_stopped_before_the_venue() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let (report, _bt, dir) = run(&settings(CROSSING, &path, "1"), "multi-crossing");
    let stopped = report.counter("strategy", "self_trades_stopped");
    assert!(
        stopped > 0,
        "the taker met the maker's quotes: {stopped} stopped"
    );
    let fills = read_csv(&dir.join("fills.csv"));
    let by_instance = |k: &str| fills.iter().filter(|f| f["strategy"] == k).count();
    assert!(
        by_instance("0") > 0 && by_instance("1") > 0,
        "both still traded"
    );
    // One instance alone is never stopped: there is nobody to trade with.
    let alone = CROSSING
        .split("[[strategy]]")
        .nth(2)
        .expect("the second instance");
    let (report, _bt, dir_alone) = run(
        &settings(&format!("[[strategy]]{alone}"), &path, "1"),
        "multi-alone",
    );
    assert_eq!(report.counter("strategy", "self_trades_stopped"), 0);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir_alone);
}

#[test]
fn a_two_strategy_backtest_is_the_same_in_every_run_and_placement() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let mut first: Option<(String, Value)> = None;
    for (i, placement) in ["1", "2", "1", "4"].into_iter().enumerate() {
        let (_report, _bt, dir) = run(
            &settings(APART, &path, placement),
            &format!("multi-det-{i}"),
        );
        let fills = std::fs::read_to_string(dir.join("fills.csv")).expect("fills.csv");
        let doc: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("report.json")).expect("report.json"),
        )
        .expect("JSON");
        let by = doc["trading"]["instruments"][0]["by_strategy"].clone();
        let _ = std::fs::remove_dir_all(&dir);
        for row in by.as_array().expect("by_strategy") {
            assert!(json_num(&row["fills"]) > 0.0, "{row}");
        }
        match &first {
            None => first = Some((fills, by)),
            Some((f, b)) => {
                assert!(*f == fills, "placement {placement}: fills.csv differs");
                assert_eq!(*b, by, "placement {placement}");
            }
        }
    }
}

/// The recording's quantity step (BTCUSDT: 0.00001).
const STEP: f64 = 0.00001;

/// `share × equity / px` rounded down to the step, as a sizer sizes.
fn fraction_size(share: f64, equity: f64, px: f64) -> f64 {
    (share * equity / px / STEP + 1e-9).floor() * STEP
}

/// The fills of instance `k` in `fills`.
fn of_instance(fills: &[HashMap<String, String>], k: &str) -> Vec<HashMap<String, String>> {
    fills
        .iter()
        .filter(|f| f["strategy"] == k)
        .cloned()
        .collect()
}

/// Whether at least four in five of `fills` pass `full` (the rest were partly filled).
fn mostly(
    fills: &[HashMap<String, String>],
    mut full: impl FnMut(&HashMap<String, String>) -> bool,
) {
    let n = fills.iter().filter(|f| full(f)).count();
    assert!(5 * n >= 4 * fills.len(), "{n} of {} fills", fills.len());
}

#[test]
fn two_instances_on_one_instrument_size_their_orders_each_by_its_own_sizing() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let (_report, _bt, dir) = run(&settings(OWN_SIZING, &path, "1"), "multi-own-sizing");
    let fills = read_csv(&dir.join("fills.csv"));
    let _ = std::fs::remove_dir_all(&dir);
    let (fixed, fraction) = (of_instance(&fills, "0"), of_instance(&fills, "1"));
    assert!(
        fixed.len() > 10 && fraction.len() > 10,
        "both traded: {} and {} fills",
        fixed.len(),
        fraction.len()
    );
    // The fixed instance: its own order_qty, never the instrument's larger size.
    for f in &fixed {
        assert!(num(&f["qty"]) <= 0.001 + 1e-12, "{f:?}");
    }
    mostly(&fixed, |f| (num(&f["qty"]) - 0.001).abs() < 1e-12);
    // The fraction instance: 15 % of its own equity (its capital plus its own fills' PnL,
    // reckoned from its rows alone, its open position at the fill's price), within a step for
    // the move of the price between the decision and the fill; the instrument's sizing would
    // give two thirds of that.
    let mut own = Reckoning::default();
    for f in &fraction {
        let px = num(&f["price"]);
        let equity = 1000.0 + own.realized - own.fees + (own.qty * px - own.cost);
        let (want, instrument) = (
            fraction_size(0.15, equity, px),
            fraction_size(0.01, 10_000.0, px),
        );
        assert!(
            want > instrument + 50.0 * STEP,
            "{want} against {instrument}"
        );
        let q = num(&f["qty"]);
        assert!(q <= want + STEP + 1e-12, "{q} above {want}: {f:?}");
        own.fill(f);
    }
    let mut own = Reckoning::default();
    mostly(&fraction, |f| {
        let px = num(&f["price"]);
        let equity = 1000.0 + own.realized - own.fees + (own.qty * px - own.cost);
        own.fill(f);
        (num(&f["qty"]) - fraction_size(0.15, equity, px)).abs() <= STEP + 1e-12
    });
    // Without sizing of their own both take the instrument's size: 1 % of 10 000 USDT.
    let shared = OWN_SIZING
        .replace("[strategy.risk.sizing]\nkind = \"fixed\"\n", "")
        .replace(
            "[strategy.risk.sizing]\nkind = \"fraction\"\nfraction = 0.15\ncapital = \"1000\"\n",
            "",
        );
    assert!(!shared.contains("strategy.risk.sizing"));
    let (_report, _bt, dir) = run(&settings(&shared, &path, "1"), "multi-shared-sizing");
    let fills = read_csv(&dir.join("fills.csv"));
    let _ = std::fs::remove_dir_all(&dir);
    for k in ["0", "1"] {
        let mine = of_instance(&fills, k);
        assert!(mine.len() > 10, "instance {k} traded");
        mostly(&mine, |f| {
            let want = fraction_size(0.01, 10_000.0, num(&f["price"]));
            (num(&f["qty"]) - want).abs() <= STEP + 1e-12
        });
    }
}

#[test]
fn several_instances_are_checked_and_named_in_the_problems() {
    let parse = |text: &str| {
        Config::parse(text, "t.toml")
            .map_err(|e| e.to_string())
            .and_then(|c| {
                c.validate_for("t.toml", 2, Path::new("/nonexistent"))
                    .map_err(|e| e.to_string())
            })
    };
    // A lone [strategy] is one instance named after its kind.
    let one = parse("[strategy]\nkind = \"imbalance\"\n").expect("valid");
    assert_eq!(one.instances.len(), 1);
    assert_eq!(one.instances[0].name, "imbalance");
    assert!(!one.instances[0].own_budget);
    // Two, with a budget of its own for the second, checked against the account's.
    let two = parse(
        "[[strategy]]\nname = \"a\"\nkind = \"imbalance\"\n[[strategy]]\nname = \"b\"\nkind = \"quote-chase\"\ninstruments = [\"BTCUSDT\"]\n[strategy.risk]\nmax_position = \"0.002\"\n",
    )
    .expect("valid");
    assert_eq!(two.instances.len(), 2);
    assert_eq!(two.instances[1].name, "b");
    assert!(two.instances[1].own_budget && !two.instances[0].own_budget);
    let spot = pinion_core::Venue::BinanceSpot;
    assert!(two.instances[1].trades(spot, "btcusdt") && !two.instances[1].trades(spot, "ETHUSDT"));
    assert_eq!(
        two.instances[1].trading.risk.max_order_qty, two.trading.risk.max_order_qty,
        "a key left out is the account's"
    );
    assert_ne!(
        two.instances[1].trading.risk.max_position,
        two.trading.risk.max_position
    );
    // An instrument is traded under the first instance that trades it, with the account's
    // limits: where the first configured names other symbols only, under the next.
    let skipping = parse(
        "[[strategy]]\nname = \"b\"\nkind = \"quote-chase\"\ninstruments = [\"ETHUSDT\"]\n[strategy.risk]\nmax_position = \"0.002\"\n[[strategy]]\nname = \"a\"\nkind = \"imbalance\"\n",
    )
    .expect("valid");
    let under = |symbol: &str| skipping.trading_for(pinion_core::Venue::BinanceSpot, symbol);
    assert_eq!(under("ethusdt"), skipping.trading, "the first trades it");
    assert_eq!(
        under("BTCUSDT").strategy,
        skipping.instances[1].trading.strategy
    );
    assert_eq!(
        under("BTCUSDT").risk,
        skipping.trading.risk,
        "the account's"
    );
    assert_eq!(under("BTCUSDT").venue, skipping.trading.venue);
    // Names: required with several, unique; a bad value names its instance.
    let e = parse("[[strategy]]\nkind = \"imbalance\"\n[[strategy]]\nname = \"b\"\n").unwrap_err();
    assert!(e.contains("strategy[0].name"), "{e}");
    let e = parse("[[strategy]]\nname = \"a\"\n[[strategy]]\nname = \"a\"\n").unwrap_err();
    assert!(
        e.contains("strategy[1].name") && e.contains("before"),
        "{e}"
    );
    let e = parse(
        "[[strategy]]\nname = \"a\"\n[[strategy]]\nname = \"b\"\n[strategy.risk]\nmax_position = \"-1\"\n",
    )
    .unwrap_err();
    assert!(e.contains("strategy[1].risk.max_position"), "{e}");
    let e = parse(
        "[[strategy]]\nname = \"a\"\n[[strategy]]\nname = \"b\"\n[strategy.risk]\nmax_drawdown = \"0\"\n",
    )
    .unwrap_err();
    assert!(e.contains("strategy[1].risk.max_drawdown"), "{e}");
    // An instance's loss limits are its own; the account's are the instrument's.
    let own = parse(
        "[risk]\nmax_daily_loss = \"50\"\n[[strategy]]\nname = \"a\"\n[[strategy]]\nname = \"b\"\n[strategy.risk]\nmax_total_loss = \"5\"\n",
    )
    .expect("valid");
    assert!(own.instances[0].trading.risk.loss.is_off());
    assert!(own.instances[1].trading.risk.loss.max_daily_loss.is_none());
    assert!(own.instances[1].trading.risk.loss.max_total_loss.is_some());
    assert!(own.trading.risk.loss.max_daily_loss.is_some());
    let e = parse("[[strategy]]\nname = \"a\"\n[[strategy]]\nname = \"b\"\nkind = \"nope\"\n")
        .unwrap_err();
    assert!(e.contains("strategy[1].kind"), "{e}");
}

#[test]
fn an_instance_naming_an_instrument_not_traded_stops_the_run_before_it_starts() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let typo = APART.replacen(
        "name = \"taker\"\n",
        "name = \"taker\"\ninstruments = [\"BTCUSD\"]\n",
        1,
    );
    let err = backtest::run(
        &settings(&typo, &path, "1"),
        Arc::new(AtomicBool::new(false)),
        Console::QUIET,
    )
    .expect_err("the run must not start");
    let text = err.to_string();
    assert!(
        text.contains("\"taker\"") && text.contains("\"BTCUSD\"") && text.contains("BTCUSDT"),
        "{text}"
    );
}

/// `promtool check metrics` on `text` when promtool is there (under `CI` it must be).
fn promtool_accepts(text: &str) {
    use std::io::Write as _;
    let promtool = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    });
    let Some(promtool) = promtool else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set and promtool is missing"
        );
        eprintln!("skipping the promtool check: promtool not found");
        return;
    };
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("promtool reads");
    let out = child.wait_with_output().expect("promtool ends");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool refused: {said}\n{text}");
    assert!(said.trim().is_empty(), "promtool complained: {said}");
}

/// The value of the sample `name{labels}` in an exposition (labels in the order written).
fn sample(text: &str, name: &str, labels: &str) -> f64 {
    let head = format!("{name}{{{labels}}} ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("no sample {head} in\n{text}"));
    num(&line[head.len()..])
}

#[test]
fn each_instance_is_reported_apart_and_in_total_by_the_board_metrics_bot_and_history() {
    use pinion_core::InstrumentId;
    use pinion_engine::bot::commands::{BotContext, Commands};
    use pinion_engine::ops::history::{self, RunBatch, query};
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let mut s = settings(APART, &path, "1");
    // As `backtest::run` runs it, keeping the control block to read afterwards.
    s.backtest.record = true;
    let stop = Arc::new(AtomicBool::new(false));
    let built = pinion_engine::pipeline::build(&s, Arc::clone(&stop)).expect("builds");
    let control = Arc::clone(&built.control);
    let report = pinion_engine::pipeline::run_pipeline(&s, built, stop, Console::QUIET)
        .expect("the backtest runs");
    let bt = BacktestReport::new(&report, &s.backtest);
    let result = &bt.instruments[0];
    let finals = &result.trading.instances;
    assert_eq!(finals.len(), 2);

    // The board: the stage's own slots, each instance's figures as the report has them, and
    // together the instrument's account (written in the same publish).
    let id = InstrumentId(0);
    let board = control.instances().expect("the stage laid the board out");
    let names: Vec<&str> = board.of(id).iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["maker", "taker"]);
    let views: Vec<_> = board.read_all(id).map(|(_, v)| v).collect();
    let account = control.board().read(id).expect("the account");
    for (v, f) in views.iter().zip(finals) {
        assert!(v.fills > 10 && v.orders > 10, "{} traded: {v:?}", f.name);
        assert_eq!(v.position, f.position.0, "{}", f.name);
        assert_eq!(i128::from(v.realized), f.realized, "{}", f.name);
        assert_eq!(i128::from(v.fees), f.fees, "{}", f.name);
        assert_eq!(v.fills, f.fills, "{}", f.name);
        assert_eq!(v.orders, f.stats.orders, "{}", f.name);
    }
    let sum =
        |get: fn(&pinion_engine::control::InstanceView) -> i64| views.iter().map(get).sum::<i64>();
    assert_eq!(sum(|v| v.position), account.position);
    assert_eq!(
        sum(|v| v.realized + v.unrealized),
        account.realized + account.unrealized
    );
    assert_eq!(sum(|v| v.fees), account.fees);
    assert_eq!(sum(|v| v.net()), account.net());
    assert_eq!(sum(|v| v.fills as i64), account.fills as i64);
    assert_eq!(sum(|v| v.orders as i64), account.orders as i64);
    assert_eq!(
        sum(|v| v.open_orders as i64),
        account.open_orders as i64,
        "no order of the stage's or the operator's is open"
    );

    // The metrics: a series per instance beside the instrument's, adding up to it.
    let text = pinion_engine::metrics::render_trading(&control);
    promtool_accepts(&text);
    let (md, qd) = (
        10f64.powi(i32::from(result.figures.money_decimals)),
        10f64.powi(i32::from(result.qty_decimals)),
    );
    let mut total = [0.0; 4];
    for (name, v) in names.iter().zip(&views) {
        let l = format!("venue=\"binance-spot\",instrument=\"BTCUSDT\",strategy=\"{name}\"");
        close(
            sample(&text, "pinion_strategy_position", &l),
            v.position as f64 / qd,
            1e-12,
            "position",
        );
        close(
            sample(&text, "pinion_strategy_net_pnl", &l),
            v.net() as f64 / md,
            1e-9,
            "net",
        );
        assert_eq!(
            sample(&text, "pinion_strategy_fills_total", &l),
            v.fills as f64
        );
        let sent = format!("{l},outcome=\"sent\"");
        assert_eq!(
            sample(&text, "pinion_strategy_orders_total", &sent),
            v.orders as f64
        );
        for (t, family) in total.iter_mut().zip([
            "pinion_strategy_position",
            "pinion_strategy_realized_pnl",
            "pinion_strategy_fees_paid",
            "pinion_strategy_net_pnl",
        ]) {
            *t += sample(&text, family, &l);
        }
    }
    let inst = "venue=\"binance-spot\",instrument=\"BTCUSDT\"";
    close(
        total[0],
        sample(&text, "pinion_position", inst),
        1e-9,
        "positions add up",
    );
    close(
        total[2],
        sample(&text, "pinion_fees_paid", inst),
        1e-9,
        "fees add up",
    );
    close(
        total[3],
        sample(&text, "pinion_net_pnl", inst),
        1e-9,
        "net PnL adds up",
    );

    // The bot: each instance's line under the instrument, in its units.
    let bot = Commands::new(
        BotContext {
            control: Arc::clone(&control),
            sources: None,
            limits: Vec::new(),
            risk: Vec::new(),
            journal: None,
        },
        std::time::Duration::from_secs(30),
    );
    let m = result.figures.money_decimals;
    let pnl = bot.pnl();
    let positions = bot.positions();
    for (name, v) in names.iter().zip(&views) {
        assert_instance_lines(&pnl, &positions, name, v, m, result.qty_decimals);
    }
    assert!(
        !pnl.contains("other orders"),
        "the instances make the whole: {pnl}"
    );
    assert!(
        pnl.ends_with(&format!("Total net {}", fixed(account.net(), m))),
        "{pnl}"
    );

    // The history: the instances by name, each its own fills' realised PnL and fees exactly
    // as the report reckons them, their orders as decided.
    let dir = common::scratch_dir("multi-history");
    let db = dir.join("history.db");
    let writer = history::HistoryWriter::start(&db).expect("the history opens");
    writer
        .send(RunBatch::new("backtest", 1, "multi.toml", "recording", &bt))
        .expect("queued");
    writer.finish().expect("written");
    let conn = query::open_read(&db).expect("reads");
    let rows = query::pnl(&conn, &db, query::PnlBy::Strategy).expect("by strategy");
    assert_eq!(
        rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["maker", "taker"]
    );
    let decimals = result.figures.money_decimals;
    for (row, f) in rows.iter().zip(finals) {
        assert_eq!(row.orders, Some(f.stats.orders), "{}", f.name);
        assert_eq!(row.fills, f.fills, "{}", f.name);
        assert_eq!(row.realized, scaled(f.realized, decimals), "{}", f.name);
        assert_eq!(row.fees, scaled(f.fees, decimals), "{}", f.name);
        assert_eq!(row.net, scaled(f.realized - f.fees, decimals), "{}", f.name);
    }
    assert_eq!(
        query::pnl_columns(query::PnlBy::Strategy),
        [
            "strategy",
            "orders",
            "fills",
            "realized_pnl",
            "fees",
            "unrealized_pnl",
            "net_pnl"
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `v · 10^-decimals` as the history writes money (every decimal kept).
fn scaled(v: i128, decimals: u8) -> String {
    let unit = 10i128.pow(u32::from(decimals));
    let sign = if v < 0 { "-" } else { "" };
    let (int, frac) = (v.abs() / unit, v.abs() % unit);
    if decimals == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac:0width$}", width = usize::from(decimals))
    }
}

/// The stage's protective exits close the instrument's net position: their fills belong to no
/// instance. Each instance's strategy sees only its own orders' fills, as its figures count
/// them, so its view of its position is its own ledger's, not the account's.
#[test]
fn exits_of_the_net_position_are_no_instances_fills() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let with_exits = format!(
        "{APART}\n[protection]\nstop_loss_bps = 2.0\ntake_profit_bps = 2.0\nslippage_bps = 5.0\ncooldown_ms = 200\n"
    );
    let (report, _bt, dir) = run(&settings(&with_exits, &path, "1"), "multi-exits");
    let _ = std::fs::remove_dir_all(&dir);
    let [t] = report.trading.as_slice() else {
        panic!("{} instruments traded", report.trading.len());
    };
    assert!(
        t.exits.closing_orders > 0,
        "the exits closed the position: {:?}",
        t.exits
    );
    let own: u64 = t.instances.iter().map(|i| i.fills).sum();
    let all = t.tape.fills().len() as u64;
    assert!(
        all > own,
        "the exits' fills are the account's: {all} fills, {own} of the instances"
    );
    for i in &t.instances {
        assert!(i.fills > 0, "{} traded", i.name);
        assert_eq!(
            i.stats.fills, i.fills,
            "{}: the fills its strategy saw are its own",
            i.name
        );
    }
}

/// An instance's own loss limit (`[strategy.risk] max_total_loss`) stops that instance alone:
/// its open orders are cancelled and it sends nothing more, while the other instance and the
/// account go on; the report says when and why.
#[test]
fn an_instances_loss_limit_stops_it_alone() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    // The maker pays 10 bps a fill: a few fills cost it more than 0.2 USDT.
    let limited = APART.replacen(
        "[strategy.risk]\nmax_position = \"0.002\"",
        "[strategy.risk]\nmax_position = \"0.002\"\nmax_total_loss = \"0.2\"",
        1,
    );
    assert_ne!(limited, APART);
    let (free, _, free_dir) = run(&settings(APART, &path, "1"), "multi-loss-free");
    let _ = std::fs::remove_dir_all(&free_dir);
    let (report, _bt, dir) = run(&settings(&limited, &path, "1"), "multi-loss");
    let fills = read_csv(&dir.join("fills.csv"));
    let _ = std::fs::remove_dir_all(&dir);
    let [t] = report.trading.as_slice() else {
        panic!("{} instruments traded", report.trading.len());
    };
    let [maker, taker] = t.instances.as_slice() else {
        panic!("two instances");
    };
    let (breach, at) = maker.loss_breach.expect("the maker reached its limit");
    assert_eq!(breach.as_str(), "total_loss");
    assert!(taker.loss_breach.is_none());
    assert_eq!(report.counter("strategy", "instance_loss_breaches"), 1);
    assert!(
        report.control.killed.is_none(),
        "the account was not killed"
    );
    let free_maker = &free.trading[0].instances[0];
    assert!(
        maker.stats.orders < free_maker.stats.orders,
        "stopped early: {} orders against {} without the limit",
        maker.stats.orders,
        free_maker.stats.orders
    );
    // Its fills end within the venue's latency of the stop (orders resting then may fill
    // before their cancels land); the taker's go on.
    let last = |instance: &str| {
        fills
            .iter()
            .filter(|f| f["strategy"] == instance)
            .map(|f| f["time_ns"].parse::<u64>().expect("time_ns"))
            .max()
            .expect("the instance filled")
    };
    assert!(
        last("0") <= at + 1_000_000_000,
        "maker filled at {} after its stop at {at}",
        last("0")
    );
    assert!(
        last("1") > at,
        "the taker traded on after the maker stopped"
    );
}

/// The Bybit capture: linear DOGEUSDT and SOLUSDT (among others) with books and trades.
const BYBIT: &str = "bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst";

/// An account for the Bybit capture's perpetuals, its limits in units both DOGEUSDT (step 1)
/// and SOLUSDT (step 0.1) can express.
const BYBIT_ACCOUNT: &str = r#"
[pacing]
mode = "max"

[runtime]
progress = false

[risk]
max_order_qty = "1000"
max_notional = "100000"
max_position = "1000"
max_open_orders = 10
orders_per_second = 100
order_burst = 10
price_band_bps = 50

[fees]
maker_bps = 2.0
taker_bps = 5.5

[gateway]
queue_model = "optimistic"

[backtest]
period_ms = 1000
capital = "10000"
"#;

/// Instance "a" trading both perpetuals: quotes at the touch.
const BOTH: &str = r#"
[[strategy]]
name = "a"
kind = "market-making"
order_qty = "100"
instruments = ["DOGEUSDT", "SOLUSDT"]
[strategy.market_making]
fair = "mid"
half_spread_bps = 0.001
skew_bps = 0.0
requote_bps = 0.001
levels = 1
[strategy.risk]
max_position = "300"
"#;

/// Instance "b" trading SOLUSDT alone: quotes of its own size at the touch too, on a budget
/// of the account's. Its size is one DOGEUSDT's whole units cannot express: first in the
/// config, it must still leave DOGEUSDT to "a".
const SOL_ONLY: &str = r#"
[[strategy]]
name = "b"
kind = "market-making"
order_qty = "2.5"
instruments = ["SOLUSDT"]
[strategy.market_making]
fair = "microprice"
half_spread_bps = 0.001
skew_bps = 1.0
requote_bps = 0.001
levels = 1
"#;

/// One unit of the last decimal of `v` as written (`"-0.180"`: 0.001).
fn money_unit(v: &str) -> f64 {
    let decimals = v.split_once('.').map_or(0, |(_, f)| f.len());
    10f64.powi(-i32::try_from(decimals).expect("a few decimals"))
}

/// The Bybit account with `strategies`, in `placement`.
fn bybit_settings(strategies: &str, source: &Path, placement: &str) -> Settings {
    bybit_placed(
        strategies,
        source,
        &format!("[placement]\nmode = {placement:?}\nwait = \"park\"\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The Bybit account with `strategies` and the `[placement]` table `placement`, checked.
fn bybit_placed(strategies: &str, source: &Path, placement: &str) -> Result<Settings, String> {
    let text = format!(
        "[input]\nsource = {:?}\n{placement}{BYBIT_ACCOUNT}{strategies}",
        source.to_str().expect("a UTF-8 path"),
    );
    Config::parse(&text, "two-instruments.toml")
        .map_err(|e| e.to_string())?
        .validate_for("two-instruments.toml", 2, &pinion_testkit::data::data_dir())
        .map_err(|e| e.to_string())
}

/// Each instrument's instances in a run of `strategies`, as `(symbol, [(instance, name)])`:
/// those of the config's instances that name the symbol, in config order.
fn expected_instances(strategies: &[(&str, &[&str])]) -> Vec<(&'static str, Vec<(u64, String)>)> {
    ["DOGEUSDT", "SOLUSDT"]
        .into_iter()
        .map(|sym| {
            let on: Vec<(u64, String)> = strategies
                .iter()
                .enumerate()
                .filter(|(_, (_, symbols))| symbols.contains(&sym))
                .map(|(k, (name, _))| (k as u64, (*name).to_owned()))
                .collect();
            (sym, on)
        })
        .collect()
}

/// One run of the instances `config` in `placement` (`layout`: each instance's name and
/// symbols, in config order): checks each instrument's instances against its own rows of
/// `fills.csv` and the instrument's totals against the instances', and returns `fills.csv` and
/// every instrument's `by_strategy`, for the runs to be compared.
fn check_two_instruments(
    path: &Path,
    config: &str,
    layout: &[(&str, &[&str])],
    placement: &str,
    tag: &str,
) -> (String, Vec<Value>) {
    let (report, bt, dir) = run(&bybit_settings(config, path, placement), tag);
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("report.json")).expect("report.json"),
    )
    .expect("JSON");
    let fills_text = std::fs::read_to_string(dir.join("fills.csv")).expect("fills.csv");
    let fills = read_csv(&dir.join("fills.csv"));
    let instruments = doc["trading"]["instruments"]
        .as_array()
        .expect("instruments");
    let expected = expected_instances(layout);
    assert_eq!(
        instruments.len(),
        expected.len(),
        "only the named perpetuals are traded: {instruments:?}"
    );
    let mut all_by = Vec::new();
    for (sym, on) in &expected {
        let inst = instruments
            .iter()
            .find(|i| i["symbol"] == *sym)
            .unwrap_or_else(|| panic!("{sym} is traded: {instruments:?}"));
        let venue = inst["venue"].as_str().expect("a venue");
        let by = inst["by_strategy"].as_array().expect("by_strategy");
        let named: Vec<(u64, String)> = by
            .iter()
            .map(|r| {
                (
                    r["instance"].as_u64().expect("an instance number"),
                    r["name"].as_str().expect("a name").to_owned(),
                )
            })
            .collect();
        assert_eq!(&named, on, "{sym}'s instances, by number and name");
        // The same instances in the report the stage handed over.
        let t = bt
            .instruments
            .iter()
            .find(|i| i.symbol == *sym)
            .unwrap_or_else(|| panic!("{sym}'s trading result"));
        let finals: Vec<(u64, String, u64)> = t
            .trading
            .instances
            .iter()
            .map(|i| (u64::from(i.instance), i.name.to_string(), i.fills))
            .collect();
        let rows: Vec<(u64, String, u64)> = by
            .iter()
            .map(|r| {
                (
                    r["instance"].as_u64().expect("number"),
                    r["name"].as_str().expect("name").to_owned(),
                    json_num(&r["fills"]) as u64,
                )
            })
            .collect();
        assert_eq!(finals, rows, "{sym}: the stage's instances and by_strategy");

        let mine: Vec<&HashMap<String, String>> = fills
            .iter()
            .filter(|f| f["symbol"] == *sym && f["venue"] == venue)
            .collect();
        let mut net = Reckoning::default();
        let mut own: HashMap<u64, Reckoning> = HashMap::new();
        for f in &mine {
            let k: u64 = f["strategy"].parse().expect("an instance number");
            assert!(
                on.iter().any(|(n, _)| *n == k),
                "{sym}: a fill of instance {k}, which does not trade it: {f:?}"
            );
            own.entry(k).or_default().fill(f);
            net.fill(f);
        }
        // Money is kept in the instrument's units (10^-3 of USDT for SOLUSDT: price 10^-2 ×
        // quantity 10^-1), and an average cost divided in them rounds by up to one unit a fill.
        let unit = money_unit(inst["fees"].as_str().expect("fees as a decimal"));
        for row in by {
            let k = row["instance"].as_u64().expect("number");
            let name = row["name"].as_str().expect("name");
            let r = own.get(&k).copied().unwrap_or_default();
            assert!(r.fills > 3, "{name} traded {sym}: {r:?}");
            assert_eq!(json_num(&row["fills"]) as usize, r.fills, "{name} on {sym}");
            close(
                r.qty,
                json_num(&row["position"]),
                1e-9,
                "an instance's position",
            );
            close(
                r.realized,
                json_num(&row["realized_pnl"]),
                unit * r.fills as f64,
                "an instance's realised PnL",
            );
            close(r.fees, json_num(&row["fees"]), 1e-9, "an instance's fees");
        }
        // The instances make up the instrument: no order of the stage's in these runs.
        assert_eq!(
            json_num(&inst["fills"]) as usize,
            net.fills,
            "{sym}'s fills"
        );
        close(
            net.qty,
            json_num(&inst["position"]),
            1e-9,
            "the net position",
        );
        close(
            net.fees,
            json_num(&inst["fees"]),
            1e-9,
            "the instrument's fees",
        );
        let sum = |key: &str| by.iter().map(|r| json_num(&r[key])).sum::<f64>();
        close(sum("position"), net.qty, 1e-9, "positions add up");
        close(sum("fees"), json_num(&inst["fees"]), 1e-9, "fees add up");
        // Each instance keeps its own average cost: realised and unrealised split apart from
        // the instrument's, their sum does not (but for the rounding of each ledger).
        let slack = unit * (net.fills + 2 * by.len()) as f64;
        close(
            sum("realized_pnl") + sum("unrealized_pnl"),
            json_num(&inst["gross_pnl"]),
            slack,
            "gross PnL in total",
        );
        close(
            sum("net_pnl"),
            json_num(&inst["net_pnl"]),
            slack,
            "net PnL in total",
        );
        all_by.push(Value::from(by.clone()));
    }
    assert_eq!(
        report.counter("strategy", "fills"),
        fills.len() as u64,
        "every fill is an instance's"
    );
    let _ = std::fs::remove_dir_all(&dir);
    (fills_text, all_by)
}

#[test]
fn instances_trading_different_instruments_each_book_their_own_fills_on_each() {
    let Some(path) = pinion_testkit::data::require(BYBIT) else {
        return;
    };
    let both: &[&str] = &["DOGEUSDT", "SOLUSDT"];
    let sol: &[&str] = &["SOLUSDT"];
    // "a" first, trading both; then "b", trading the second alone. And "b" first: on
    // DOGEUSDT, "a" (instance 1) is then the only slot, slot 0.
    for (config, layout, tag) in [
        (
            format!("{BOTH}{SOL_ONLY}"),
            [("a", both), ("b", sol)],
            "a-first",
        ),
        (
            format!("{SOL_ONLY}{BOTH}"),
            [("b", sol), ("a", both)],
            "b-first",
        ),
    ] {
        let first = check_two_instruments(&path, &config, &layout, "1", &format!("two-{tag}-1"));
        let again = check_two_instruments(&path, &config, &layout, "4", &format!("two-{tag}-4"));
        assert!(
            first.0 == again.0,
            "{tag}: fills.csv differs in placement 4"
        );
        assert_eq!(
            first.1, again.1,
            "{tag}: by_strategy differs in placement 4"
        );
    }
}

#[test]
fn an_instance_not_first_on_an_instrument_is_shown_in_its_own_slot_by_the_board_metrics_bot_and_history()
 {
    use pinion_engine::bot::commands::{BotContext, Commands};
    use pinion_engine::ops::history::{self, RunBatch, query};
    let Some(path) = pinion_testkit::data::require(BYBIT) else {
        return;
    };
    // "b" (instance 0) trades SOLUSDT alone, "a" (instance 1) both: on DOGEUSDT "a" is the
    // only slot.
    let mut s = bybit_settings(&format!("{SOL_ONLY}{BOTH}"), &path, "1");
    s.backtest.record = true;
    let stop = Arc::new(AtomicBool::new(false));
    let built = pinion_engine::pipeline::build(&s, Arc::clone(&stop)).expect("builds");
    let control = Arc::clone(&built.control);
    let report = pinion_engine::pipeline::run_pipeline(&s, built, stop, Console::QUIET)
        .expect("the backtest runs");
    let bt = BacktestReport::new(&report, &s.backtest);
    let result = |sym: &str| {
        bt.instruments
            .iter()
            .find(|i| i.symbol == sym)
            .unwrap_or_else(|| panic!("{sym} traded"))
    };
    let (doge, sol) = (result("DOGEUSDT"), result("SOLUSDT"));
    let board = control.instances().expect("the stage laid the board out");
    let text = pinion_engine::metrics::render_trading(&control);
    promtool_accepts(&text);
    for (r, expected) in [
        (doge, &[(1u8, "a")][..]),
        (sol, &[(0u8, "b"), (1u8, "a")][..]),
    ] {
        let id = r.trading.instrument;
        let sym = r.symbol.as_str();
        let keys: Vec<(u8, &str)> = board
            .of(id)
            .iter()
            .map(|k| (k.instance, k.name.as_str()))
            .collect();
        assert_eq!(keys, expected, "{sym}'s slots on the board");
        let finals = &r.trading.instances;
        let views: Vec<_> = board.read_all(id).map(|(_, v)| v).collect();
        assert_eq!(views.len(), finals.len(), "{sym}");
        let account = control.board().read(id).expect("the account");
        let (md, qd) = (
            10f64.powi(i32::from(r.figures.money_decimals)),
            10f64.powi(i32::from(r.qty_decimals)),
        );
        for (v, f) in views.iter().zip(finals) {
            let who = format!("{} on {sym}", f.name);
            assert!(v.fills > 3 && v.orders > 3, "{who} traded: {v:?}");
            assert_eq!(v.position, f.position.0, "{who}");
            assert_eq!(i128::from(v.realized), f.realized, "{who}");
            assert_eq!(i128::from(v.fees), f.fees, "{who}");
            assert_eq!(v.fills, f.fills, "{who}");
            assert_eq!(v.orders, f.stats.orders, "{who}");
            // Its series in the metrics, labelled with its own name.
            let l = format!(
                "venue=\"{}\",instrument=\"{sym}\",strategy=\"{}\"",
                r.venue, f.name
            );
            close(
                sample(&text, "pinion_strategy_position", &l),
                v.position as f64 / qd,
                1e-12,
                "position",
            );
            close(
                sample(&text, "pinion_strategy_net_pnl", &l),
                v.net() as f64 / md,
                1e-9,
                "net",
            );
            assert_eq!(
                sample(&text, "pinion_strategy_fills_total", &l),
                v.fills as f64,
                "{who}"
            );
        }
        let sum = |get: fn(&pinion_engine::control::InstanceView) -> i64| {
            views.iter().map(get).sum::<i64>()
        };
        assert_eq!(sum(|v| v.position), account.position, "{sym}");
        assert_eq!(sum(|v| v.fees), account.fees, "{sym}");
        assert_eq!(sum(|v| v.fills as i64), account.fills as i64, "{sym}");
        assert_eq!(sum(|v| v.orders as i64), account.orders as i64, "{sym}");
        assert_eq!(
            sum(|v| v.realized + v.unrealized),
            account.realized + account.unrealized,
            "{sym}"
        );
    }
    // No series of "b" on the instrument it does not trade.
    assert!(
        !text
            .lines()
            .any(|l| l.contains("instrument=\"DOGEUSDT\"") && l.contains("strategy=\"b\"")),
        "{text}"
    );

    // The bot: the instances' lines under SOLUSDT; DOGEUSDT's one instance is its account.
    let bot = Commands::new(
        BotContext {
            control: Arc::clone(&control),
            sources: None,
            limits: Vec::new(),
            risk: Vec::new(),
            journal: None,
        },
        std::time::Duration::from_secs(30),
    );
    let (pnl, positions) = (bot.pnl(), bot.positions());
    let m = sol.figures.money_decimals;
    for (j, name) in ["b", "a"].into_iter().enumerate() {
        let v = board.read(sol.trading.instrument, j).expect("a slot");
        assert_instance_lines(&pnl, &positions, name, &v, m, sol.qty_decimals);
    }
    let doge_block = |text: &str| {
        text.lines()
            .skip_while(|l| !l.starts_with("DOGEUSDT"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(doge_block(&pnl).is_empty(), "{pnl}");
    assert!(doge_block(&positions).is_empty(), "{positions}");
    assert!(!pnl.contains("other orders"), "{pnl}");

    // The history: each instance once, by its name, with its fills and orders on every
    // instrument it traded.
    let dir = common::scratch_dir("two-instruments-history");
    let db = dir.join("history.db");
    let writer = history::HistoryWriter::start(&db).expect("the history opens");
    writer
        .send(RunBatch::new(
            "backtest",
            1,
            "two-instruments.toml",
            "recording",
            &bt,
        ))
        .expect("queued");
    writer.finish().expect("written");
    let conn = query::open_read(&db).expect("reads");
    let rows = query::pnl(&conn, &db, query::PnlBy::Strategy).expect("by strategy");
    let fills_of = |name: &str| -> u64 {
        bt.instruments
            .iter()
            .flat_map(|i| &i.trading.instances)
            .filter(|f| &*f.name == name)
            .map(|f| f.fills)
            .sum()
    };
    let orders_of = |name: &str| -> u64 {
        bt.instruments
            .iter()
            .flat_map(|i| &i.trading.instances)
            .filter(|f| &*f.name == name)
            .map(|f| f.stats.orders)
            .sum()
    };
    assert_eq!(
        rows.iter()
            .map(|r| (r.key.as_str(), r.fills, r.orders))
            .collect::<Vec<_>>(),
        [
            ("a", fills_of("a"), Some(orders_of("a"))),
            ("b", fills_of("b"), Some(orders_of("b"))),
        ],
        "by name"
    );
    assert!(fills_of("a") > sol.trading.instances[1].fills);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The bot's `/pnl` and `/positions` texts show instance `name`'s line of `v` (money at `m`
/// decimals, positions at `qty_decimals`).
fn assert_instance_lines(
    pnl: &str,
    positions: &str,
    name: &str,
    v: &pinion_engine::control::InstanceView,
    m: u8,
    qty_decimals: u8,
) {
    let line = format!(
        "\n  {name}: realised {} unrealised {} fees {} net {} (fills {}, orders {})",
        fixed(v.realized, m),
        fixed(v.unrealized, m),
        fixed(v.fees, m),
        fixed(v.net(), m),
        v.fills,
        v.orders
    );
    assert!(pnl.contains(&line), "{line:?} in\n{pnl}");
    let line = format!("\n  {name}: position {}", fixed(v.position, qty_decimals));
    assert!(positions.contains(&line), "{line:?} in\n{positions}");
}

/// A market maker "m" quoting 0.001 at the touch on the instruments `entry` names.
fn btc_maker(entry: &str) -> String {
    format!(
        "[[strategy]]\nname = \"m\"\nkind = \"market-making\"\norder_qty = \"0.001\"\n\
         instruments = [{entry:?}]\n[strategy.market_making]\nfair = \"mid\"\n\
         half_spread_bps = 0.001\nrequote_bps = 0.001\n"
    )
}

#[test]
fn one_symbol_traded_on_two_venues_has_a_series_of_each() {
    let Some(path) = pinion_testkit::data::require(BYBIT) else {
        return;
    };
    // BTCUSDT names both the Bybit spot pair and the linear perpetual of the capture.
    let mut s = bybit_settings(&btc_maker("BTCUSDT"), &path, "1");
    s.backtest.record = true;
    let stop = Arc::new(AtomicBool::new(false));
    let built = pinion_engine::pipeline::build(&s, Arc::clone(&stop)).expect("builds");
    let control = Arc::clone(&built.control);
    let report = pinion_engine::pipeline::run_pipeline(&s, built, stop, Console::QUIET)
        .expect("the backtest runs");
    assert_eq!(report.trading.len(), 2, "both venues' BTCUSDT are traded");
    let text = pinion_engine::metrics::render_trading(&control);
    promtool_accepts(&text);
    // Every series once: a scrape drops all but one of a repeated series.
    let mut seen = std::collections::BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, _) = line.rsplit_once(' ').expect("a sample");
        assert!(seen.insert(series), "{series} twice in\n{text}");
    }
    let bt = BacktestReport::new(&report, &s.backtest);
    for venue in ["bybit-spot", "bybit-linear"] {
        let r = bt
            .instruments
            .iter()
            .find(|i| i.venue == venue)
            .unwrap_or_else(|| panic!("{venue} traded"));
        let account = control
            .board()
            .read(r.trading.instrument)
            .expect("the account");
        let l = format!("venue=\"{venue}\",instrument=\"BTCUSDT\"");
        assert_eq!(
            sample(&text, "pinion_fills_total", &l),
            account.fills as f64,
            "{venue}"
        );
        let q = 10f64.powi(i32::from(r.qty_decimals));
        close(
            sample(&text, "pinion_position", &l),
            account.position as f64 / q,
            1e-12,
            venue,
        );
        close(
            sample(
                &text,
                "pinion_strategy_position",
                &format!("{l},strategy=\"m\""),
            ),
            account.position as f64 / q,
            1e-12,
            venue,
        );
    }
}

/// Another instance beside the pair, on an instrument of its own.
const ETH_MAKER: &str = r#"
[[strategy]]
name = "eth"
kind = "market-making"
order_qty = "0.01"
instruments = ["bybit-linear:ETHUSDT"]
[strategy.market_making]
fair = "mid"
half_spread_bps = 0.001
requote_bps = 0.001
"#;

/// The rows of `fills` of `symbol`.
fn of_symbol<'a>(
    fills: &'a [HashMap<String, String>],
    symbol: &str,
) -> Vec<&'a HashMap<String, String>> {
    fills.iter().filter(|f| f["symbol"] == symbol).collect()
}

#[test]
fn a_pairs_instance_trades_its_two_legs_together_hedged_in_every_placement() {
    let Some(path) = pinion_testkit::data::require(BYBIT) else {
        return;
    };
    let strategies = format!("{BYBIT_PAIR}{ETH_MAKER}");
    let split = "[placement]\nmode = \"custom\"\nwait = \"park\"\n\
        [[placement.threads]]\nname = \"market\"\nstages = [\"feed\", \"book\"]\n\
        [[placement.threads]]\nname = \"orders\"\nstages = [\"strategy\", \"gateway\"]\n\
        [[placement.threads]]\nname = \"pair\"\nstages = [\"strategy:pair\"]\n";
    let placements = [
        ("one thread", bybit_settings(&strategies, &path, "1")),
        ("two threads", bybit_settings(&strategies, &path, "2")),
        (
            "the pair on a strategy stage of its own",
            bybit_placed(&strategies, &path, split).expect("valid"),
        ),
    ];
    let mut first: Option<(String, Vec<Value>)> = None;
    for (i, (what, settings)) in placements.iter().enumerate() {
        let (report, _bt, dir) = run(settings, &format!("pairs-{i}"));
        let fills_text = std::fs::read_to_string(dir.join("fills.csv")).expect("fills.csv");
        let fills = read_csv(&dir.join("fills.csv"));
        let doc: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("report.json")).expect("report.json"),
        )
        .expect("JSON");
        let _ = std::fs::remove_dir_all(&dir);
        let (doge, sol) = (of_symbol(&fills, "DOGEUSDT"), of_symbol(&fills, "SOLUSDT"));
        assert!(doge.len() >= 2, "{what}: the pair traded: {fills_text}");
        // The legs go out together: each fill of one leg has the other's, at the same event
        // time, on the other side, for the same reason, and of about the same value.
        assert_eq!(doge.len(), sol.len(), "{what}: {fills_text}");
        for (d, s) in doge.iter().zip(&sol) {
            assert_eq!(d["time_ns"], s["time_ns"], "{what}");
            assert_ne!(d["side"], s["side"], "{what}: hedged");
            assert_eq!(d["reason"], s["reason"], "{what}");
            let value = |f: &HashMap<String, String>| num(&f["price"]) * num(&f["qty"]);
            // 50 USDT a leg, each down to its lot (1 DOGE, 0.1 SOL).
            assert!(value(d) <= 50.0 && value(d) > 50.0 - 0.08, "{what}: {d:?}");
            assert!(value(s) <= 50.0 && value(s) > 50.0 - 7.8, "{what}: {s:?}");
        }
        // Each leg's row of the instance equals its fills, reckoned apart.
        let instruments = doc["trading"]["instruments"]
            .as_array()
            .expect("instruments");
        for symbol in ["DOGEUSDT", "SOLUSDT"] {
            let inst = instruments
                .iter()
                .find(|i| i["symbol"] == symbol && i["venue"] == "bybit-linear")
                .unwrap_or_else(|| panic!("{what}: {symbol} traded"));
            let by = inst["by_strategy"].as_array().expect("by_strategy");
            assert_eq!(by.len(), 1, "{what}: {by:?}");
            assert_eq!(by[0]["name"], "pair");
            assert_eq!(by[0]["strategy"], "pairs");
            let mut r = Reckoning::default();
            for f in of_symbol(&fills, symbol) {
                assert_eq!(f["strategy"], "0", "{what}: the pair's own");
                r.fill(f);
            }
            assert_eq!(
                json_num(&by[0]["fills"]) as usize,
                r.fills,
                "{what} {symbol}"
            );
            assert_eq!(
                json_num(&by[0]["orders"]) as usize,
                r.fills,
                "{what} {symbol}: IOCs filled"
            );
            close(r.qty, json_num(&by[0]["position"]), 1e-9, symbol);
            close(r.realized, json_num(&by[0]["realized_pnl"]), 1e-6, symbol);
            close(r.fees, json_num(&by[0]["fees"]), 1e-6, symbol);
        }
        assert_eq!(
            report.counter("strategy", "risk_rejects"),
            0,
            "{what}: nothing refused"
        );
        let by: Vec<Value> = instruments
            .iter()
            .map(|i| i["by_strategy"].clone())
            .collect();
        match &first {
            None => first = Some((fills_text, by)),
            Some((f, b)) => {
                assert!(*f == fills_text, "{what}: fills.csv differs");
                assert_eq!(*b, by, "{what}");
            }
        }
    }
}

#[test]
fn a_pair_that_reaches_its_loss_limit_stops_on_both_legs() {
    let Some(path) = pinion_testkit::data::require(BYBIT) else {
        return;
    };
    // A loss of a few cents on either leg: its entry's fee and spread reach it.
    let config = format!("{BYBIT_PAIR}[strategy.risk]\nmax_total_loss = \"0.03\"\n");
    let (report, bt, dir) = run(&bybit_settings(&config, &path, "1"), "pairs-loss");
    let fills = read_csv(&dir.join("fills.csv"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(report.counter("strategy", "instance_loss_breaches") >= 1);
    let mut stops = Vec::new();
    for symbol in ["DOGEUSDT", "SOLUSDT"] {
        let r = bt
            .instruments
            .iter()
            .find(|i| i.symbol == symbol)
            .unwrap_or_else(|| panic!("{symbol} traded"));
        let (_, at) = r.trading.instances[0]
            .loss_breach
            .unwrap_or_else(|| panic!("{symbol}: the pair stopped on this leg too"));
        stops.push(at);
    }
    let at = stops.iter().copied().max().expect("two legs");
    let last = fills
        .iter()
        .map(|f| f["time_ns"].parse::<u64>().expect("a time"))
        .max()
        .expect("the pair traded before it stopped");
    assert!(last <= at, "a fill at {last} after the stop at {at}");
}

#[test]
fn pairs_legs_are_checked_before_the_run() {
    let Some(path) = pinion_testkit::data::require(BYBIT) else {
        return;
    };
    let problem = |strategies: &str| {
        bybit_placed(
            strategies,
            &path,
            "[placement]\nmode = \"1\"\nwait = \"park\"\n",
        )
        .expect_err("refused")
    };
    let one_leg = BYBIT_PAIR.replace(
        "[\"bybit-linear:DOGEUSDT\", \"bybit-linear:SOLUSDT\"]",
        "[\"bybit-linear:DOGEUSDT\"]",
    );
    let e = problem(&one_leg);
    assert!(
        e.contains("strategy.instruments") && e.contains("exactly two"),
        "{e}"
    );
    let e = problem(&BYBIT_PAIR.replace("exit_bps = 0.2", "exit_bps = 1.5"));
    assert!(e.contains("strategy.pairs.exit_bps"), "{e}");
    let e = problem(&BYBIT_PAIR.replace("notional = \"50\"\n", ""));
    assert!(e.contains("strategy.pairs.notional"), "{e}");
    let e = problem(&format!(
        "{BYBIT_PAIR}[strategy.risk.sizing]\nkind = \"fraction\"\nfraction = 0.1\ncapital = \"100\"\n"
    ));
    assert!(e.contains("strategy.risk.sizing"), "{e}");
    let e = problem(&BYBIT_PAIR.replace("bybit-linear:SOLUSDT", "bybit-perp:SOLUSDT"));
    assert!(e.contains("\"bybit-perp\" is not a venue"), "{e}");
    // At start-up: a bare symbol the capture has on two venues is no leg.
    let start = |strategies: &str| {
        let s = bybit_settings(strategies, &path, "1");
        let stop = Arc::new(AtomicBool::new(false));
        match pinion_engine::pipeline::build(&s, stop) {
            Ok(_) => panic!("refused at start-up"),
            Err(e) => e.to_string(),
        }
    };
    let e = start(&BYBIT_PAIR.replace("bybit-linear:DOGEUSDT", "BTCUSDT"));
    assert!(
        e.contains("\"BTCUSDT\"")
            && e.contains("bybit-spot:BTCUSDT")
            && e.contains("bybit-linear:BTCUSDT"),
        "{e}"
    );
    let e = start(&BYBIT_PAIR.replace("bybit-linear:DOGEUSDT", "SOLUSDT"));
    assert!(e.contains("the other leg's instrument too"), "{e}");
}

#[test]
fn an_instance_naming_a_venue_trades_that_venues_instrument_only() {
    let Some(path) = pinion_testkit::data::require(BYBIT) else {
        return;
    };
    let s = bybit_settings(&btc_maker("BYBIT-SPOT:btcusdt"), &path, "1");
    let (report, bt, dir) = run(&s, "venue-qualified");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(report.trading.len(), 1, "the spot pair alone");
    assert_eq!(
        (
            bt.instruments[0].venue.as_str(),
            bt.instruments[0].symbol.as_str()
        ),
        ("bybit-spot", "BTCUSDT")
    );
    let t = &report.trading[0];
    assert_eq!(t.instances.len(), 1);
    assert!(t.instances[0].stats.orders > 0, "it quoted: {t:?}");
}
