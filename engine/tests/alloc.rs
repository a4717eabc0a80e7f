//! The steady state of a replay allocates nothing: fused placement `1` on the synthetic market,
//! with a counting global allocator that counts only while the run is between 40 % and 90 % of
//! its records (after start-up and warm-up, before the end-of-stream flush and the report).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pinion_engine::config::Settings;
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
/// 90 % of them.
fn allocations_in_steady_state(settings: &Settings, records: u64) -> PipelineReport {
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
    let report = pipeline::run_pipeline(settings, pipeline, stop, Console::QUIET).expect("runs");
    let (opened, closed, ()) = window.join().expect("window thread");
    let allocations = closed_at.load(Ordering::SeqCst) - opened_at.load(Ordering::SeqCst);
    assert!(
        closed > opened + records / 4,
        "window {opened}..{closed} too small"
    );
    assert_eq!(
        allocations, 0,
        "{allocations} allocations while records {opened}..{closed} went through"
    );
    report
}
