//! A backtest's steady state allocates nothing: recording every fill (with its fee) and the
//! equity samples goes into buffers allocated before the run. The market-making backtest on the
//! real recording, fused, with a counting global allocator that counts only while the run is
//! between 40 % and 90 % of its records. The simulated venue draws its latencies (lognormal
//! entry, uniform response) and reads its queue by `power:3`, so its models are counted too;
//! loss limits are watched (set too wide to trip) and orders sized by Kelly, so the guards and
//! the sizer run on every fill and every move of the mark inside the window.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pinion_engine::config::{Config, Override, Overrides};
use pinion_engine::pipeline::{self, Console};
use pinion_testkit::alloc::process_allocations;

mod common;

#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

#[test]
fn recording_fills_and_equity_allocates_nothing() {
    const RECORDS: u64 = 41_249;
    let Some(path) = pinion_testkit::data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let name = "backtest-market-making.toml";
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../configs")
            .join(name),
    )
    .expect("the shipped config");
    let mut o: Overrides = common::fused_overrides();
    o.push(Override::string("input.source", path.to_str().unwrap()));
    for model in [
        r#"gateway.entry_latency={ kind = "lognormal", median_us = 150, p99_us = 900 }"#,
        r#"gateway.response_latency={ kind = "uniform", min_us = 20, max_us = 400 }"#,
        r#"gateway.queue_model="power:3""#,
        r#"risk.max_daily_loss="1000""#,
        r#"risk.max_drawdown="1000""#,
        r#"risk.portfolio.max_total_loss="1000""#,
        r#"risk.sizing.kind="kelly""#,
        r#"risk.sizing.capital="10000""#,
        "risk.sizing.max_fraction=0.01",
        "risk.sizing.min_trades=5",
    ] {
        o.push(Override::parse(model).expect("an override"));
    }
    let mut settings = Config::parse_with(&text, name, &o)
        .unwrap_or_else(|e| panic!("{e}"))
        .validate_for(name, 2, &pinion_testkit::data::data_dir())
        .unwrap_or_else(|e| panic!("{e}"));
    settings.backtest.record = true;

    let opened_at = Arc::new(AtomicU64::new(0));
    let closed_at = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let pipeline = pipeline::build(&settings, Arc::clone(&stop)).expect("builds");
    let window = common::steady_state_window(
        Arc::clone(&pipeline.progress),
        RECORDS,
        {
            let at = Arc::clone(&opened_at);
            move || at.store(process_allocations(), Ordering::SeqCst)
        },
        {
            let at = Arc::clone(&closed_at);
            move || at.store(process_allocations(), Ordering::SeqCst)
        },
    );
    let report = pipeline::run_pipeline(&settings, pipeline, stop, Console::QUIET).expect("runs");
    let (opened, closed, ()) = window.join().expect("window thread");
    let allocations = closed_at.load(Ordering::SeqCst) - opened_at.load(Ordering::SeqCst);
    assert!(
        closed > opened + RECORDS / 4,
        "window {opened}..{closed} too small"
    );
    assert_eq!(
        allocations, 0,
        "{allocations} allocations while records {opened}..{closed} went through"
    );
    // Fills and samples were recorded all along, and charged their fees.
    assert_eq!(report.counter("feed", "records"), RECORDS);
    let t = &report.trading[0];
    let (fills, samples) = (t.tape.fills(), t.tape.samples());
    assert_eq!(fills.len() as u64, t.stats.fills);
    assert!(fills.len() > 50, "{} fills", fills.len());
    assert!(t.fees > 0);
    // Some of them in the middle of the recording, where the allocations were counted.
    let (t0, t1) = (samples[0].t_ns, samples[samples.len() - 1].t_ns);
    let middle = (t0 + (t1 - t0) / 2, t0 + (t1 - t0) * 8 / 10);
    assert!(
        fills.iter().any(|f| (middle.0..middle.1).contains(&f.t_ns)),
        "fills in the middle of the run"
    );
    assert!(samples.len() > 100, "{} samples", samples.len());
}
