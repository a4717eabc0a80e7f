//! The steady state of a replay allocates nothing: fused placement `1` on the synthetic market
//! and on the real recordings, with one strategy, with three instances on one instrument, with
//! those three on a second strategy stage, and on a Bybit capture whose second connection opens
//! mid-run (with a market maker, then with a pair trading two of its perpetuals together),
//! under a counting global allocator that counts only while the run is between 40 %
//! and 90 % of its records (after start-up and warm-up, before the end-of-stream flush and the
//! report).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::accounts::BYBIT_PAIR;
use pinion_engine::config::{Config, Override, Settings, StageKind};
use pinion_engine::pipeline::{self, Console, PipelineReport};
use pinion_testkit::alloc::process_allocations;

mod common;

#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

#[test]
fn steady_state_replay_allocates_nothing() {
    // One test, one run at a time: the count is process-wide.
    const RECORDS: u64 = 60_000;
    let report = allocations_in_steady_state(&common::fused_synthetic(RECORDS), RECORDS);
    assert_eq!(report.counter("feed", "records"), RECORDS + 2);
    assert!(
        report.counter("gateway", "orders_sent") > 0,
        "the strategy traded"
    );
    // With the metrics endpoint up (and nobody scraping), the book stage publishes its books'
    // states: that hook allocates nothing either.
    let mut with_metrics = common::fused_synthetic(RECORDS);
    with_metrics.metrics.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let report = allocations_in_steady_state(&with_metrics, RECORDS);
    assert_eq!(report.counter("feed", "records"), RECORDS + 2);
    // A real recording, inflated on the read-ahead thread (whose allocations count too).
    if let Some(path) = pinion_testkit::data::require("binance/usdm-btcusdt-20240808.hbt.gz") {
        const USDM_RECORDS: u64 = 93_954;
        let report = allocations_in_steady_state(&common::fused_recording(&path), USDM_RECORDS);
        assert_eq!(report.counter("feed", "records"), USDM_RECORDS);
        assert_eq!(report.counter("book", "gaps"), 0);
    }
    // Decode errors all along: each one counted, sampled and described in place.
    if let Some(path) = pinion_testkit::data::require("binance/spot-btcusdt-20240808.hbt.gz") {
        let dir = common::scratch_dir("alloc-damaged");
        let damaged = dir.join("spot-btcusdt-damaged.hbt.gz");
        let lines = damage_every_trade(&path, &damaged, 20);
        let report = allocations_in_steady_state(&common::fused_recording(&damaged), lines);
        assert_eq!(report.counter("feed", "records"), lines);
        assert!(
            report
                .problems
                .of_class(pinion_engine::problems::ProblemClass::Decode)
                > 400
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Three strategy instances on one instrument, each with a budget of its own, two sized by
    // their own sizing: their slots, their gates, their sizers and the self-trade check
    // allocate nothing either, and each instance trades inside the window (its fills
    // recorded, in buffers allocated before the run).
    if let Some(path) = pinion_testkit::data::require("binance/spot-btcusdt-20240808.hbt.gz") {
        const SPOT_RECORDS: u64 = 41_249;
        let mut settings = three_instances(&path);
        settings.backtest.record = true;
        let report = allocations_in_steady_state(&settings, SPOT_RECORDS);
        assert_eq!(report.counter("feed", "records"), SPOT_RECORDS);
        let [t] = report.trading.as_slice() else {
            panic!("{} instruments traded", report.trading.len());
        };
        let names: Vec<&str> = t.instances.iter().map(|i| &*i.name).collect();
        assert_eq!(names, ["maker", "taker", "chaser"]);
        let (fills, samples) = (t.tape.fills(), t.tape.samples());
        let (t0, t1) = (samples[0].t_ns, samples[samples.len() - 1].t_ns);
        let middle = t0 + (t1 - t0) / 2..t0 + (t1 - t0) * 8 / 10;
        for i in &t.instances {
            assert!(i.fills > 0, "{} has no fill", i.name);
            assert!(
                fills
                    .iter()
                    .any(|f| f.reason.strategy == i.instance && middle.contains(&f.t_ns)),
                "{} has no fill in the middle of the run",
                i.name
            );
        }
        // The taker's own sizing was in force: 5 % of 2 000 USDT, about 0.0016 BTC (qty
        // units of 1e-8), above its order_qty of 0.001.
        assert!(
            fills
                .iter()
                .filter(|f| f.reason.strategy == 1)
                .any(|f| f.qty.0 > 100_000),
            "the taker's orders were never sized above its order_qty"
        );
        // The same three on a second strategy stage, the first idle beside it on the thread:
        // the book stage's fan-out and the gateway's lanes allocate nothing either.
        let mut two = three_instances(&path);
        two.placement.strategy_stages = vec![vec![0, 1, 2]];
        for t in &mut two.placement.threads {
            if let Some(at) = t.stages.iter().position(|k| *k == StageKind::Strategy(0)) {
                t.stages.insert(at + 1, StageKind::Strategy(1));
            }
        }
        let report = allocations_in_steady_state(&two, SPOT_RECORDS);
        assert_eq!(report.counter("feed", "records"), SPOT_RECORDS);
        let strategy_stages: Vec<u64> = report
            .run
            .stages
            .iter()
            .filter(|s| s.stage == "strategy")
            .map(|s| s.counter("views").unwrap_or(0))
            .collect();
        assert_eq!(strategy_stages.len(), 2);
        assert!(
            strategy_stages.contains(&0) && strategy_stages.iter().any(|&v| v > 0),
            "the second stage took every view: {strategy_stages:?}"
        );
        assert!(report.counter("gateway", "orders_sent") > 0);
    }
    // A Bybit capture of two WebSockets, one after the other in the file: the spot
    // connection opens inside the window (its connection slot, name and address were reserved
    // at start-up), and frames carried as escaped JSON strings are unescaped into a reused
    // buffer, while an instance makes a market on a linear perpetual.
    if let Some(path) = pinion_testkit::data::require(BYBIT) {
        let report = allocations_in_steady_state(&bybit_settings(&path, MAKER), BYBIT_RECORDS);
        assert_eq!(report.counter("feed", "records"), BYBIT_RECORDS);
        assert_eq!(report.counter("book", "gaps"), 0);
        assert_eq!(
            report.counter("feed", "resync_records"),
            2,
            "both connections opened"
        );
        assert_eq!(report.counter("feed", "unknown_venue"), 0);
        assert!(report.counter("gateway", "orders_sent") > 0);
        // A pair deciding on two perpetuals' books together, each order through its own
        // leg's gates: nothing allocated either, and both legs trade.
        let mut pair = bybit_settings(&path, BYBIT_PAIR);
        pair.backtest.record = true;
        let report = allocations_in_steady_state(&pair, BYBIT_RECORDS);
        assert_eq!(report.trading.len(), 2);
        for t in &report.trading {
            assert_eq!(&*t.instances[0].name, "pair");
            assert!(t.instances[0].fills >= 2, "{t:?}");
        }
    }
}

/// The Bybit capture: linear BTC, ETH, SOL and DOGE perpetuals on one connection, then spot
/// BTC and ETH on a second, with the instruments-info responses.
const BYBIT: &str = "bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst";

/// The records of [`BYBIT`] the feed reads (`send` lines are not records).
const BYBIT_RECORDS: u64 = 3_231;

/// A market-making instance on the capture's DOGEUSDT perpetual (named with its venue).
const MAKER: &str = r#"
[[strategy]]
name = "maker"
kind = "market-making"
order_qty = "100"
instruments = ["bybit-linear:DOGEUSDT"]
"#;

/// `strategies` on [`BYBIT`], under an account whose limits fit the perpetuals, fused as
/// [`common::fused_overrides`] runs.
fn bybit_settings(path: &std::path::Path, strategies: &str) -> Settings {
    const ACCOUNT: &str = r#"
[risk]
max_order_qty = "1000"
max_notional = "100000"
max_position = "1000"
max_open_orders = 10
orders_per_second = 100
order_burst = 10
price_band_bps = 50

[gateway]
queue_model = "optimistic"
"#;
    let mut o = common::fused_overrides();
    o.push(Override::value(
        "input.source",
        path.to_str().expect("a UTF-8 path"),
    ));
    o.push(Override::value("input.read_ahead", true));
    Config::parse_with(&format!("{ACCOUNT}{strategies}"), "bybit.toml", &o)
        .unwrap_or_else(|e| panic!("{e}"))
        .validate_for("bybit.toml", 2, &pinion_testkit::data::data_dir())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Three `[[strategy]]` instances on the Binance Spot instrument of the recording at `path`
/// (market making, an imbalance taker and a quote chaser, each with a budget of its own under
/// the account's `[risk]`, the taker sized at a fraction of its own capital and the chaser by
/// its own Kelly), fused as [`common::fused_overrides`] runs.
fn three_instances(path: &std::path::Path) -> Settings {
    const TEXT: &str = r#"
[risk]
max_order_qty = "0.01"
max_notional = "1000"
max_position = "0.005"
max_open_orders = 10
orders_per_second = 100
order_burst = 10
price_band_bps = 50

[fees]
maker_bps = 10.0
taker_bps = 10.0

[[instrument]]
venue = "binance-spot"
symbol = "BTCUSDT"
tick_size = "0.01"
step_size = "0.00001"
qty_decimals = 8

[[strategy]]
name = "maker"
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

[[strategy]]
name = "taker"
kind = "imbalance"
order_qty = "0.001"
threshold = 0.5
[strategy.risk]
max_position = "0.002"
max_open_orders = 2
[strategy.risk.sizing]
kind = "fraction"
fraction = 0.05
capital = "2000"

[[strategy]]
name = "chaser"
kind = "quote-chase"
order_qty = "0.001"
[strategy.quote_chase]
side = "buy"
improve_ticks = 0
limit_bps = 5.0
give_up_ms = 2000
cycle = true
[strategy.risk]
max_position = "0.002"
max_open_orders = 2
[strategy.risk.sizing]
kind = "kelly"
capital = "5000"
max_fraction = 0.02
min_trades = 2
"#;
    let mut o = common::fused_overrides();
    o.push(Override::value(
        "input.source",
        path.to_str().expect("a UTF-8 path"),
    ));
    o.push(Override::value("input.read_ahead", true));
    Config::parse_with(TEXT, "three-instances.toml", &o)
        .unwrap_or_else(|e| panic!("{e}"))
        .validate_for("three-instances.toml", 2, &pinion_testkit::data::data_dir())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Copies the gzip hbt recording `from` to `to` with the price of every `n`th trade made
/// unreadable; returns its line count.
fn damage_every_trade(from: &std::path::Path, to: &std::path::Path, n: usize) -> u64 {
    use std::io::{BufRead as _, Write as _};
    let input = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
        std::fs::File::open(from).expect("recording opens"),
    ));
    let mut out = flate2::write::GzEncoder::new(
        std::fs::File::create(to).expect("create"),
        flate2::Compression::fast(),
    );
    let (mut lines, mut trades) = (0u64, 0usize);
    for line in input.lines() {
        let mut line = line.expect("recording reads");
        if line.contains("@trade\"") {
            trades += 1;
            if trades % n == 0 {
                line = line.replacen("\"p\":\"", "\"p\":\"x", 1);
            }
        }
        writeln!(out, "{line}").expect("write");
        lines += 1;
    }
    out.finish().expect("gzip ends");
    lines
}

/// Runs `settings` (of `records` records), asserting that nothing allocated between 40 % and
/// 90 % of them. The window is kept by a thread that sleeps between looks at the record count:
/// on a busy machine it can wake too late, after the feed's last record (and so count the
/// end-of-stream flush and the report), or so late that too few records were left between its
/// ends. Such a run measured nothing and is run again, a few times at most; a run whose window
/// closed in time fails on its first allocation count above zero.
fn allocations_in_steady_state(settings: &Settings, records: u64) -> PipelineReport {
    const ATTEMPTS: u32 = 5;
    for attempt in 1..=ATTEMPTS {
        let opened_at = Arc::new(AtomicU64::new(0));
        let closed_at = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let pipeline = pipeline::build(settings, Arc::clone(&stop)).expect("builds");
        let window = common::steady_state_window(
            Arc::clone(&pipeline.progress),
            records,
            {
                let at = Arc::clone(&opened_at);
                move || at.store(process_allocations(), Ordering::SeqCst)
            },
            {
                let at = Arc::clone(&closed_at);
                move || at.store(process_allocations(), Ordering::SeqCst)
            },
        );
        let report =
            pipeline::run_pipeline(settings, pipeline, stop, Console::QUIET).expect("runs");
        let (opened, closed, ()) = window.join().expect("window thread");
        // `closed` was read after the count at the window's end: below `records`, the feed had
        // not yet read its last record when the window closed.
        let in_time = closed < records && closed > opened + records / 4;
        if !in_time && attempt < ATTEMPTS {
            eprintln!(
                "window {opened}..{closed} of {records} records missed the steady state; again"
            );
            continue;
        }
        assert!(
            in_time,
            "window {opened}..{closed} of {records} records missed the steady state {ATTEMPTS} times"
        );
        let allocations = closed_at.load(Ordering::SeqCst) - opened_at.load(Ordering::SeqCst);
        assert_eq!(
            allocations, 0,
            "{allocations} allocations while records {opened}..{closed} went through"
        );
        return report;
    }
    unreachable!("the last attempt returns or fails")
}
