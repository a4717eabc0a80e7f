//! `pinion backtest` on the real recording with the shipped configs
//! (`configs/backtest-<kind>.toml`): the report's figures agree with an independent reckoning
//! from the files it writes (fills.csv, equity.csv), the fees are the configured rate of every
//! fill's notional, two runs in different placements give equal `trading` objects and
//! identical fills.csv (with the constant latency, and with drawn latencies and a probabilistic
//! queue model), and the plots are SVG documents with something drawn in them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use pinion_engine::backtest::{self, BacktestReport};
use pinion_engine::config::{Config, Override, Overrides, Settings};
use pinion_engine::pipeline::{Console, PipelineReport};
use serde_json::Value;

mod common;

/// The recording the shipped configs name, from the repository root.
const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";

/// `configs/backtest-<kind>.toml` on the recording at `source`, in `placement`, with park
/// waits (the CI machine has two cores) and no progress bar.
fn settings(kind: &str, source: &Path, placement: &str) -> Settings {
    config(&format!("backtest-{kind}.toml"), source, placement, &[])
}

/// The shipped config `name` on the recording at `source`, in `placement`, with park waits, no
/// progress bar and the `extra` overrides (`key=value`, values as TOML).
fn config(name: &str, source: &Path, placement: &str, extra: &[&str]) -> Settings {
    let name = name.to_owned();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../configs")
        .join(&name);
    let text = std::fs::read_to_string(&path).expect("the shipped config");
    let mut o = Overrides::default();
    o.push(Override::string(
        "input.source",
        source.to_str().expect("a UTF-8 path"),
    ));
    o.push(Override::string("placement.mode", placement));
    o.push(Override::string("placement.wait", "park"));
    o.push(Override::value("runtime.progress", false));
    for e in extra {
        o.push(Override::parse(e).expect("an override"));
    }
    Config::parse_with(&text, &name, &o)
        .unwrap_or_else(|e| panic!("{e}"))
        .validate_for(&name, 2, &pinion_testkit::data::data_dir())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the backtest and writes its files into a fresh directory.
fn run(settings: &Settings, tag: &str) -> (PipelineReport, BacktestReport, PathBuf) {
    let (report, bt) = backtest::run(settings, Arc::new(AtomicBool::new(false)), Console::QUIET)
        .expect("the backtest runs");
    let dir = common::scratch_dir(tag);
    let files = backtest::write_all(&dir, &bt, &report).expect("the files are written");
    assert!(files.len() >= 6, "{files:?}");
    (report, bt, dir)
}

fn read_json(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("report.json is JSON")
}

/// A CSV file as rows of named cells.
fn read_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
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
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{l}");
            header
                .iter()
                .cloned()
                .zip(cells.iter().map(|c| (*c).to_owned()))
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

#[test]
fn the_report_agrees_with_an_independent_reckoning_from_its_files() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let (report, bt, dir) = run(&settings("market-making", &path, "1"), "backtest-mm");
    let doc = read_json(&dir);
    let total = &doc["trading"]["total"];
    let inst = &doc["trading"]["instruments"][0];
    let fills = read_csv(&dir.join("fills.csv"));
    assert!(
        fills.len() > 50,
        "the strategy traded: {} fills",
        fills.len()
    );
    assert_eq!(json_num(&total["fills"]) as usize, fills.len());
    assert_eq!(inst["fills_not_recorded"], 0);

    // Every fill names the reason of its order; market making quotes, so all are requotes.
    for f in &fills {
        assert_eq!(
            (f["strategy"].as_str(), f["reason"].as_str()),
            ("0", "requote"),
            "{f:?}"
        );
    }
    // The by-reason rows add up to the totals, exactly (integer money units).
    let t = &bt.total;
    let rows = &bt.total_by_reason;
    assert_eq!(rows.iter().map(|r| r.fills).sum::<u64>(), t.fills);
    assert_eq!(rows.iter().map(|r| r.realized).sum::<i128>(), t.realized);
    assert_eq!(rows.iter().map(|r| r.fees).sum::<i128>(), t.fees);
    assert_eq!(
        rows.iter().map(|r| r.orders).sum::<u64>(),
        t.orders,
        "every order sent is a strategy's: {rows:?}"
    );
    let unknown = rows[pinion_strategy::ReasonCode::Unknown as usize];
    assert_eq!((unknown.orders, unknown.cancels, unknown.fills), (0, 0, 0));
    let by_reason = inst["by_reason"].as_array().expect("by_reason rows");
    assert_eq!(by_reason.len(), 1, "{by_reason:?}");
    assert_eq!(by_reason[0]["reason"], "requote");
    assert_eq!(by_reason[0]["realized_pnl"], inst["realized_pnl"]);
    assert_eq!(by_reason[0]["fees"], inst["fees"]);
    assert!(bt.table().contains("by reason"), "{}", bt.table());
    assert_eq!(
        fills.iter().filter(|f| f["maker"] == "true").count() as f64,
        json_num(&total["maker_fills"])
    );

    // Realised PnL by average cost, fees at 10 bps of each notional, in floats.
    let (mut qty, mut cost, mut realized, mut fees, mut volume) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    for f in &fills {
        let (px, q) = (num(&f["price"]), num(&f["qty"]));
        let dir = if f["side"] == "buy" { 1.0 } else { -1.0 };
        let fee = num(&f["fee"]);
        close(
            fee,
            px * q * 0.001,
            1e-10,
            "a fill's fee is 10 bps of its notional",
        );
        fees += fee;
        volume += px * q;
        let mut rest = q;
        if qty != 0.0 && qty.signum() != dir {
            let closed = rest.min(qty.abs());
            let removed = cost * closed / qty.abs();
            realized += qty.signum() * px * closed - removed;
            cost -= removed;
            qty += dir * closed;
            rest -= closed;
            if qty.abs() < 1e-12 {
                (qty, cost) = (0.0, 0.0);
            }
        }
        if rest > 0.0 {
            qty += dir * rest;
            cost += px * dir * rest;
        }
        close(qty, num(&f["position"]), 1e-9, "position after a fill");
        close(
            realized,
            num(&f["realized_pnl"]),
            1e-6,
            "realised PnL after a fill",
        );
    }
    close(
        realized,
        json_num(&total["realized_pnl"]),
        1e-6,
        "realised PnL",
    );
    close(fees, json_num(&total["fees"]), 1e-6, "fees");
    close(volume, json_num(&total["volume"]), 1e-6, "volume");
    close(fees, volume * 0.001, 1e-6, "fees are 10 bps of the volume");
    let mark = json_num(&inst["mark"]);
    let unrealized = qty * mark - cost;
    close(
        unrealized,
        json_num(&total["unrealized_pnl"]),
        1e-6,
        "unrealised",
    );
    let net = realized + unrealized - fees;
    close(net, json_num(&total["net_pnl"]), 1e-6, "net PnL");
    close(net / 10_000.0, json_num(&total["return"]), 1e-12, "return");
    assert!(fees > 0.0);

    // Drawdown and its duration from the equity series.
    let equity = read_csv(&dir.join("equity.csv"));
    assert!(equity.len() > 100, "{} samples", equity.len());
    let t_first: u64 = equity[0]["time_ns"].parse().unwrap();
    let t_last: u64 = equity.last().unwrap()["time_ns"].parse().unwrap();
    // The high so far (0 at the start) and the largest fall from it: its size, the high it
    // fell from and when that was, and when equity was back at that high.
    let (mut peak, mut peak_t) = (0.0f64, t_first);
    let (mut max_dd, mut dd_high, mut dd_from, mut recovered) = (0.0f64, 0.0f64, t_first, None);
    for s in &equity {
        let (t, e) = (s["time_ns"].parse::<u64>().unwrap(), num(&s["equity"]));
        close(
            e,
            num(&s["realized_pnl"]) + num(&s["unrealized_pnl"]) - num(&s["fees"]),
            1e-9,
            "equity is net PnL",
        );
        if e > peak {
            (peak, peak_t) = (e, t);
        }
        if peak - e > max_dd {
            (max_dd, dd_high, dd_from, recovered) = (peak - e, peak, peak_t, None);
        } else if max_dd > 0.0 && recovered.is_none() && e >= dd_high {
            recovered = Some(t);
        }
    }
    close(
        max_dd,
        json_num(&total["max_drawdown"]),
        1e-9,
        "max drawdown",
    );
    let duration = recovered.unwrap_or(t_last) - dd_from;
    assert_eq!(
        json_num(&total["max_drawdown_duration_ns"]) as u64,
        duration
    );
    // Sharpe and Sortino: the equity at the end of each second (carried over seconds without
    // a sample), differenced, over the capital; annualised over 365 days of seconds.
    let period = 1_000_000_000u64;
    let (k0, k1) = (t_first / period, t_last / period);
    let mut returns = Vec::new();
    let (mut i, mut e_end, mut e_prev) = (0, 0.0f64, 0.0f64);
    for k in k0..=k1 {
        while i < equity.len() && equity[i]["time_ns"].parse::<u64>().unwrap() < (k + 1) * period {
            e_end = num(&equity[i]["equity"]);
            i += 1;
        }
        returns.push((e_end - e_prev) / 10_000.0);
        e_prev = e_end;
    }
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let sd = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let down = (returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / n).sqrt();
    let year = (365.0f64 * 86_400.0).sqrt();
    assert_eq!(json_num(&total["periods"]), n);
    let sharpe = json_num(&total["sharpe"]);
    close(sharpe, mean / sd * year, sharpe.abs() * 1e-6, "Sharpe");
    let sortino = json_num(&total["sortino"]);
    close(sortino, mean / down * year, sortino.abs() * 1e-6, "Sortino");
    let last = equity.last().unwrap();
    close(
        num(&last["equity"]),
        net,
        1e-9,
        "the last sample is the final account",
    );

    // The replay's own table says the same in gross, fees and net.
    let table = report.table();
    let line = table
        .lines()
        .find(|l| l.contains("market-making |"))
        .expect("the trading line");
    for want in ["gross ", "fees ", "net "] {
        assert!(line.contains(want), "{line}");
    }
    assert!(
        line.contains(&format!("fees {}", inst["fees"].as_str().unwrap())),
        "{line}"
    );
    assert!(bt.table().contains("net PnL"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_runs_in_different_placements_are_identical() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let (_, _, a) = run(&settings("imbalance", &path, "1"), "backtest-det-1");
    let (_, _, b) = run(&settings("imbalance", &path, "2"), "backtest-det-2");
    let (ja, jb) = (read_json(&a), read_json(&b));
    assert_eq!(ja["trading"], jb["trading"]);
    assert!(json_num(&ja["trading"]["total"]["fills"]) > 10.0);
    let fa = std::fs::read(a.join("fills.csv")).unwrap();
    assert_eq!(fa, std::fs::read(b.join("fills.csv")).unwrap());
    assert_eq!(
        std::fs::read(a.join("equity.csv")).unwrap(),
        std::fs::read(b.join("equity.csv")).unwrap()
    );
    // The plots: SVG documents with the series drawn in them.
    for dir in [&a, &b] {
        for name in [
            "equity.svg",
            "position-binance-spot-BTCUSDT.svg",
            "price-binance-spot-BTCUSDT.svg",
        ] {
            let svg = std::fs::read_to_string(dir.join(name)).expect("the plot");
            assert!(svg.starts_with("<svg"), "{name}");
            assert!(svg.trim_end().ends_with("</svg>"), "{name}");
            assert_eq!(
                svg.matches("<text").count(),
                svg.matches("</text>").count(),
                "{name}"
            );
            assert!(svg.contains("<polyline") || svg.contains("<path"), "{name}");
        }
        let price = std::fs::read_to_string(dir.join("price-binance-spot-BTCUSDT.svg")).unwrap();
        // One marker per fill: buys as filled triangles, sells as crosses.
        assert!(price.contains("<polygon"), "the buys are marked");
    }
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

/// A run on the recording decoded beforehand (what `--sweep --predecode` shares between its
/// runs) is the run that decodes as it goes: the same `trading` object, fills and equity, the
/// same feed counters, in another placement too.
#[test]
fn a_run_on_the_predecoded_input_equals_the_run_that_decodes() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let plain = settings("market-making", &path, "1");
    let (report_a, _, a) = run(&plain, "backtest-predecoded-a");
    let decoded = pinion_engine::pipeline::predecode(&plain).expect("the input decodes");
    assert!(decoded.tape.len() > 10_000, "{}", decoded.tape.len());
    for (placement, tag) in [
        ("1", "backtest-predecoded-b"),
        ("2", "backtest-predecoded-c"),
    ] {
        let (report_b, bt) = backtest::run_decoded(
            &settings("market-making", &path, placement),
            &decoded,
            Arc::new(AtomicBool::new(false)),
            Console::QUIET,
        )
        .expect("the run on the decoded input");
        let b = common::scratch_dir(tag);
        backtest::write_all(&b, &bt, &report_b).expect("the files are written");
        let (ja, jb) = (read_json(&a), read_json(&b));
        assert_eq!(ja["trading"], jb["trading"]);
        assert!(json_num(&ja["trading"]["total"]["fills"]) > 10.0);
        for file in ["fills.csv", "equity.csv"] {
            assert_eq!(
                std::fs::read(a.join(file)).unwrap(),
                std::fs::read(b.join(file)).unwrap(),
                "{file}"
            );
        }
        for counter in [
            "records",
            "frames",
            "events",
            "messages_decoded",
            "decode_errors",
        ] {
            assert_eq!(
                report_a.counter("feed", counter),
                report_b.counter("feed", counter),
                "{counter}"
            );
        }
        assert_eq!(
            report_a.counter("book", "events"),
            report_b.counter("book", "events")
        );
        let _ = std::fs::remove_dir_all(&b);
    }
    let _ = std::fs::remove_dir_all(&a);
}

/// The fee of `notional` money units at `bps`, by hand: rounded half away from zero.
fn fee_by_hand(notional: i128, bps: i128) -> i128 {
    let scaled = notional * bps;
    (scaled + 5_000 * scaled.signum()) / 10_000
}

#[test]
fn fees_follow_the_venues_maker_and_taker_rates() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    // The venue's own rates win over the defaults: a maker rebate of 1 bps, 7 bps for a taker.
    let rates = [
        "fees.maker_bps=2.0",
        "fees.taker_bps=3.0",
        "fees.venues.binance-spot.maker_bps=-1.0",
        "fees.venues.binance-spot.taker_bps=7.0",
    ];
    // Momentum takes liquidity; market making rests.
    for (name, maker) in [
        ("replay-momentum.toml", false),
        ("replay-market-making.toml", true),
    ] {
        let settings = config(name, &path, "1", &rates);
        let (report, _) =
            backtest::run(&settings, Arc::new(AtomicBool::new(false)), Console::QUIET)
                .expect("the backtest runs");
        let t = &report.trading[0];
        let fills = t.tape.fills();
        assert!(fills.len() > 10, "{name}: {} fills", fills.len());
        let bps = if maker { -1 } else { 7 };
        let mut total = 0;
        for f in fills {
            assert_eq!(f.maker, maker, "{name}");
            let notional = i128::from(f.px.0) * i128::from(f.qty.0);
            assert_eq!(f.fee, fee_by_hand(notional, bps), "{name}: {f:?}");
            total += f.fee;
            assert_eq!(f.fees, total, "{name}: fees so far");
        }
        assert_eq!(t.fees, total, "{name}");
        assert_eq!(t.net(), t.realized + t.unrealized.unwrap_or(0) - total);
        assert_eq!(total.signum(), if maker { -1 } else { 1 }, "{name}");
    }
}

#[test]
fn a_sweep_runs_every_combination_in_parallel_with_the_single_runs_figures() {
    use pinion_engine::backtest::sweep::{self, SweepAxis};
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let axes = [
        SweepAxis::parse("strategy.threshold=0.55,0.6").unwrap(),
        SweepAxis::parse("fees.maker_bps=0,10").unwrap(),
    ];
    let runs: Vec<(Vec<String>, Settings)> = sweep::combinations(&axes)
        .into_iter()
        .map(|combo| {
            let extra: Vec<String> = combo
                .iter()
                .map(|c| format!("{}={}", c.key, c.value))
                .collect();
            let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
            let settings = config("backtest-imbalance.toml", &path, "1", &refs);
            (extra, settings)
        })
        .collect();
    // Decoded once, shared by the runs: the same figures as each run decoding for itself.
    let decoded = pinion_engine::pipeline::predecode(&runs[0].1).expect("the input decodes");
    let shared = sweep::run(
        runs.clone(),
        2,
        &Arc::new(AtomicBool::new(false)),
        Some(&decoded),
    );
    let rows = sweep::run(runs, 2, &Arc::new(AtomicBool::new(false)), None);
    assert_eq!(rows.len(), 4);
    for (a, b) in rows.iter().zip(&shared) {
        assert_eq!(a.label, b.label);
        assert_eq!(
            a.outcome.as_ref().expect("the run"),
            b.outcome.as_ref().expect("the run on the decoded input"),
            "{:?}",
            a.label
        );
    }
    assert_eq!(
        rows[3].label,
        ["strategy.threshold=0.6", "fees.maker_bps=10"]
    );
    let figures: Vec<_> = rows
        .iter()
        .map(|r| r.outcome.clone().expect("the run"))
        .collect();
    // The shipped config is the last combination: the same figures as its own run.
    let (_, single) = backtest::run(
        &settings("imbalance", &path, "2"),
        Arc::new(AtomicBool::new(false)),
        Console::QUIET,
    )
    .unwrap();
    assert_eq!(figures[3], single.total);
    // Fees change the net, not what the strategy did.
    assert_eq!(figures[2].gross(), figures[3].gross());
    assert_eq!(figures[2].fees, 0);
    assert!(figures[3].fees > 0);
    assert_ne!(figures[0].fills, 0);
    let csv = sweep::csv(&rows, &axes);
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.starts_with("strategy.threshold,fees.maker_bps,net_pnl,"));
}

#[test]
fn every_strategy_has_a_backtest_config_with_binance_spot_fees() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    for kind in [
        "imbalance",
        "market-making",
        "spread-capture",
        "quote-chase",
        "momentum",
        "grid",
    ] {
        let name = format!("backtest-{kind}.toml");
        let text = std::fs::read_to_string(dir.join(&name)).expect("the shipped config");
        // Its recording, as the test finds it (the config names it from the repository root).
        let s = config(&name, &path, "1", &[]);
        let rates = s.fees.for_venue(pinion_core::Venue::BinanceSpot);
        assert_eq!(
            (rates.maker_e8, rates.taker_e8),
            (100_000, 100_000),
            "{name}"
        );
        assert!(
            text.contains(&format!("kind = \"{kind}\"")),
            "{name} runs its strategy"
        );
        assert!(text.contains(RECORDING), "{name} names the recording");
    }
}

/// The market-making backtest with a lognormal order-entry latency, a uniform response latency,
/// `queue`, `seed` and the `extra` overrides.
fn with_models(path: &Path, placement: &str, queue: &str, seed: u64, extra: &[&str]) -> Settings {
    let queue = format!("gateway.queue_model={queue:?}");
    let seed = format!("gateway.seed={seed}");
    let mut keys = vec![
        r#"gateway.entry_latency={ kind = "lognormal", median_us = 150, p99_us = 900 }"#,
        r#"gateway.response_latency={ kind = "uniform", min_us = 20, max_us = 400 }"#,
        &queue,
        &seed,
    ];
    keys.extend_from_slice(extra);
    config("backtest-market-making.toml", path, placement, &keys)
}

#[test]
fn drawn_latencies_and_queue_models_repeat_exactly_and_order_as_expected() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    // Drawn latencies and power:3, twice, in different placements: the same run.
    let (_, _, a) = run(
        &with_models(&path, "1", "power:3", 7, &[]),
        "backtest-models-1",
    );
    let (_, _, b) = run(
        &with_models(&path, "2", "power:3", 7, &[]),
        "backtest-models-2",
    );
    let (ja, jb) = (read_json(&a), read_json(&b));
    assert_eq!(ja["trading"], jb["trading"]);
    assert!(json_num(&ja["trading"]["total"]["fills"]) > 10.0);
    assert_eq!(
        std::fs::read(a.join("fills.csv")).unwrap(),
        std::fs::read(b.join("fills.csv")).unwrap()
    );
    // Another seed draws other latencies: the orders meet the market at other times.
    let (_, _, c) = run(
        &with_models(&path, "1", "power:3", 8, &[]),
        "backtest-models-3",
    );
    assert_ne!(
        std::fs::read(a.join("fills.csv")).unwrap(),
        std::fs::read(c.join("fills.csv")).unwrap()
    );
    for dir in [a, b, c] {
        let _ = std::fs::remove_dir_all(&dir);
    }

    // The queue models on the same latencies. A strategy whose quotes follow its position
    // (skew, the position limit) trades differently once its fills differ, so fills are
    // compared with the quotes cut loose from the position: then each order waits behind at
    // least as much under the conservative reading as under the optimistic one.
    let open_loop = [
        r#"risk.max_position="1""#,
        "strategy.market_making.skew_bps=0.0",
    ];
    let figures = |queue: &str| {
        let (_, bt) = backtest::run(
            &with_models(&path, "1", queue, 7, &open_loop),
            Arc::new(AtomicBool::new(false)),
            Console::QUIET,
        )
        .expect("the backtest runs");
        (bt.total.fills, bt.total.volume)
    };
    let conservative = figures("conservative");
    let power = figures("power:3");
    let optimistic = figures("optimistic");
    assert!(conservative.0 > 50, "{conservative:?}");
    assert!(
        conservative.0 <= power.0 && power.0 <= optimistic.0,
        "fills: conservative {conservative:?}, power:3 {power:?}, optimistic {optimistic:?}"
    );
    assert!(
        conservative.1 < optimistic.1,
        "volume: conservative {conservative:?}, optimistic {optimistic:?}"
    );
}

/// A fill row's event time, ns.
fn fill_time(f: &std::collections::HashMap<String, String>) -> u64 {
    f["time_ns"].parse().expect("a time")
}

/// `[risk.derisk]` on market making with a small account: every time the position's exposure
/// passes 5 % of equity the rule cuts it, and the strategy trades on between cuts.
#[test]
fn the_derisk_rule_cuts_a_position_that_grows_past_its_share_of_equity() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let free = config("backtest-market-making.toml", &path, "1", &[]);
    let (free_report, _, _) = run(&free, "backtest-derisk-free");
    let cfg = config(
        "backtest-market-making.toml",
        &path,
        "1",
        &[
            "risk.derisk.above_pct=5",
            "risk.derisk.by_pct=50",
            "risk.derisk.capital=\"1000\"",
        ],
    );
    let (report, _, _) = run(&cfg, "backtest-derisk");
    let t = &report.trading[0];
    let f = t.flatten;
    assert!(f.derisks >= 1, "the rule never acted: {f:?}");
    assert_eq!(f.flattens, 0);
    assert!(f.slices >= 1 && f.done >= 1, "{f:?}");
    assert_eq!(f.refused, 0, "a cut was refused by the gate: {f:?}");
    assert!(
        t.stats.fills > f.slices,
        "the strategy traded between the cuts: {:?}",
        t.stats
    );
    assert!(report.control.killed.is_none());
    assert!(free_report.trading[0].flatten.derisks == 0);
}

/// The same limit under `on_loss_limit = "flatten"`: after the kill, the position is closed in
/// slices that pass the killed gate because they only reduce it, and the run ends flat.
#[test]
fn a_loss_limit_under_flatten_kills_then_closes_the_position() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let cfg = config(
        "backtest-market-making.toml",
        &path,
        "1",
        &[
            "risk.max_total_loss=\"0.5\"",
            "risk.on_loss_limit=\"flatten\"",
            "risk.flatten.slice_qty=\"0.001\"",
        ],
    );
    let (report, _, dir) = run(&cfg, "backtest-loss-flatten");
    assert_eq!(
        report.control.killed,
        Some(pinion_engine::control::KillReason::LossLimit)
    );
    let t = &report.trading[0];
    let Some((_, at)) = t.loss_breach else {
        panic!("no breach recorded");
    };
    let f = t.flatten;
    assert_eq!(f.flattens, 1, "{f:?}");
    let Some((cause, outcome, left)) = f.last else {
        panic!("the flatten did not end: {f:?}");
    };
    assert_eq!(cause, pinion_strategy::FlattenCause::LossLimit);
    assert_eq!(outcome, pinion_strategy::FlattenOutcome::Done, "{f:?}");
    assert_eq!(left, pinion_core::Qty::ZERO);
    assert_eq!(
        t.position,
        pinion_core::Qty::ZERO,
        "the run did not end flat"
    );
    assert!(f.slices >= 1 && f.refused == 0, "{f:?}");
    // The position was closed by fills after the breach.
    let fills = read_csv(&dir.join("fills.csv"));
    let after: Vec<_> = fills.iter().filter(|f| fill_time(f) > at).collect();
    assert!(!after.is_empty(), "nothing closed the position");
    // Those fills are the flatten's, or of quotes already out at the breach.
    assert!(
        after.iter().any(|f| f["reason"] == "flatten"),
        "no fill of the flatten's slices: {after:?}"
    );
    assert!(
        after
            .iter()
            .all(|f| matches!(f["reason"].as_str(), "flatten" | "requote"))
    );
}

/// `[risk] max_total_loss` of 0.5 USDT on market making: the limit trips at one event, kills
/// trading through the control block (`loss_limit`), and from then on nothing new is sent:
/// every fill after it is of an order already out, within the venue's round trip, and up to the
/// breach the run is the unlimited run, fill for fill.
#[test]
fn a_loss_limit_kills_trading_at_the_event_that_reaches_it() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let free = config("backtest-market-making.toml", &path, "1", &[]);
    let (_, _, free_dir) = run(&free, "backtest-loss-free");
    let limited = config(
        "backtest-market-making.toml",
        &path,
        "2",
        &["risk.max_total_loss=\"0.5\""],
    );
    let (report, _, dir) = run(&limited, "backtest-loss-limited");
    assert_eq!(
        report.control.killed,
        Some(pinion_engine::control::KillReason::LossLimit)
    );
    let doc = read_json(&dir);
    assert_eq!(doc["run"]["control"]["killed"], "loss_limit");
    let t = &report.trading[0];
    let Some((breach, at)) = t.loss_breach else {
        panic!("no breach recorded: {:?}", t.loss_breach);
    };
    assert_eq!(breach, pinion_strategy::Breach::TotalLoss);
    let counters = &report
        .run
        .stages
        .iter()
        .find(|s| s.stage == "strategy")
        .expect("the strategy stage")
        .counters;
    let counter = |name: &str| counters.iter().find(|c| c.0 == name).map(|c| c.1);
    assert_eq!(counter("loss_breaches"), Some(1));
    assert_eq!(counter("portfolio_loss_breaches"), Some(0));
    assert!(report.control.stats.kill_applied);
    // The quotes resting at the breach (three, here) were cancelled by the kill.
    assert!(report.control.stats.control_cancels >= 1);

    let fills = read_csv(&dir.join("fills.csv"));
    let free_fills = read_csv(&free_dir.join("fills.csv"));
    let before: Vec<_> = fills.iter().filter(|f| fill_time(f) <= at).collect();
    let free_before: Vec<_> = free_fills.iter().filter(|f| fill_time(f) <= at).collect();
    assert!(before.len() > 5, "{} fills before the breach", before.len());
    assert_eq!(
        before, free_before,
        "the limit changes nothing before it trips"
    );
    assert!(
        free_fills.len() > fills.len(),
        "the unlimited run traded on: {} fills against {}",
        free_fills.len(),
        fills.len()
    );
    // After the breach: only orders already out may still fill, within the round trip (the
    // cancels are on their way), and no more of them than the quotes resting (2 levels a side).
    // The config's venue: constant latencies, 100 µs there and back.
    let round_trip = 100_000;
    assert_eq!(
        limited.trading.venue,
        pinion_engine::config::VenueSpec::Sim(pinion_engine::config::SimSpec::round_trip(
            round_trip
        ))
    );
    let after: Vec<_> = fills.iter().filter(|f| fill_time(f) > at).collect();
    assert!(after.len() <= 4, "{} fills after the breach", after.len());
    for f in &after {
        assert!(
            fill_time(f) <= at + round_trip,
            "a fill at {} ns, {} ns after the breach",
            fill_time(f),
            fill_time(f) - at
        );
    }
    // The position at the end is the one the last fill left.
    let last = fills.last().expect("fills");
    close(
        num(&last["position"]),
        json_num(&doc["trading"]["instruments"][0]["position"]),
        1e-12,
        "the position stays where the last fill left it",
    );
    // The guard sees every move of the mark; the equity samples see some: none of the unlimited
    // run's samples shows the loss of 0.5 before the guard tripped.
    let equity = read_csv(&free_dir.join("equity.csv"));
    let first_seen = equity
        .iter()
        .find(|s| num(&s["equity"]) <= -0.5)
        .map(|s| s["time_ns"].parse::<u64>().expect("a time"));
    assert!(
        first_seen.is_some_and(|t| t >= at),
        "{first_seen:?} before {at}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&free_dir);
}

/// `[risk.sizing] kind = "fraction"`: each quote is 1.2 % of the equity (10 000 USDT plus the
/// net PnL, a few USDT either way here) at the mid, about 0.00196 BTC at 61 000, instead of the
/// config's 0.001; rounded down to the 0.00001 step.
#[test]
fn fraction_sizing_sizes_quotes_from_equity() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let s = config(
        "backtest-market-making.toml",
        &path,
        "1",
        &[
            "risk.sizing.kind=\"fraction\"",
            "risk.sizing.capital=\"10000\"",
            "risk.sizing.fraction=0.012",
        ],
    );
    let (_, _, dir) = run(&s, "backtest-fraction");
    let fills = read_csv(&dir.join("fills.csv"));
    assert!(fills.len() > 20, "{} fills", fills.len());
    for f in &fills {
        let (q, px) = (num(&f["qty"]), num(&f["price"]));
        // The equity is within 50 USDT of the capital over this run; the mid within 0.1 % of
        // the fill's price.
        let most = 0.012 * 10_050.0 / (px * 0.999);
        assert!(q <= most + 1e-12, "a fill of {q} at {px}, above {most}");
        close(
            (q * 1e5).round(),
            q * 1e5,
            1e-6,
            "the quantity is on the step",
        );
    }
    let largest = fills.iter().map(|f| num(&f["qty"])).fold(0.0, f64::max);
    assert!(
        largest > 0.0019,
        "whole quotes filled at the fraction's size: {largest}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same loss of 0.5 USDT as a drawdown limit, and as the portfolio's total-loss limit: the
/// drawdown (measured from a peak at or above zero) trips no later than the total loss and kills
/// with its own reason; the portfolio, here one instrument, trips at the very event the
/// instrument's own limit does, so the two runs fill alike.
#[test]
fn drawdown_and_portfolio_limits_trip_where_they_should() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let limited = |key: &str| {
        let s = config("backtest-market-making.toml", &path, "1", &[key]);
        let (report, _, dir) = run(&s, "backtest-limits");
        let fills = std::fs::read(dir.join("fills.csv")).expect("fills.csv");
        let _ = std::fs::remove_dir_all(&dir);
        let counters = report
            .run
            .stages
            .iter()
            .find(|s| s.stage == "strategy")
            .expect("the strategy stage")
            .counters
            .clone();
        let counter = move |name: &str| counters.iter().find(|c| c.0 == name).map(|c| c.1);
        (
            report.control.killed,
            report.trading[0].loss_breach,
            counter("loss_breaches"),
            counter("portfolio_loss_breaches"),
            fills,
        )
    };
    use pinion_engine::control::KillReason;
    use pinion_strategy::Breach;
    let total = limited("risk.max_total_loss=\"0.5\"");
    let drawdown = limited("risk.max_drawdown=\"0.5\"");
    let portfolio = limited("risk.portfolio.max_total_loss=\"0.5\"");
    let (Some((Breach::TotalLoss, at_total)), Some((Breach::Drawdown, at_drawdown))) =
        (total.1, drawdown.1)
    else {
        panic!("breaches: total {:?}, drawdown {:?}", total.1, drawdown.1);
    };
    assert_eq!(drawdown.0, Some(KillReason::Drawdown));
    assert!(at_drawdown <= at_total, "{at_drawdown} after {at_total}");
    assert_eq!(portfolio.0, Some(KillReason::LossLimit));
    assert_eq!(portfolio.1, None, "the instrument has no limit of its own");
    assert_eq!((portfolio.2, portfolio.3), (Some(0), Some(1)));
    assert_eq!(
        portfolio.4, total.4,
        "the same fills as the instrument's own limit"
    );
}
