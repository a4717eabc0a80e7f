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
    // A real recording, inflated on the read-ahead thread (whose allocations count too).
    if let Some(path) = pinion_testkit::data::require("binance/usdm-btcusdt-20240808.hbt.gz") {
        const USDM_RECORDS: u64 = 93_954;
        let report = allocations_in_steady_state(&common::fused_recording(&path), USDM_RECORDS);
        assert_eq!(report.counter("feed", "records"), USDM_RECORDS);
        assert_eq!(report.counter("book", "gaps"), 0);
    }
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
