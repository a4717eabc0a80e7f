//! The steady state of a replay takes no page faults: every ring, queue, book window and
//! histogram is written at start-up, so no first touch of a fresh page (a fault of several µs on
//! this kind of host) lands on the hot path. Fused placement `1` on the synthetic market; the
//! process's minor-fault count is read at 40 % and at 90 % of the records.
//!
//! Alone in its test binary: the count is process-wide.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use pinion_engine::config::Settings;
use pinion_engine::pipeline::{self, Console, PipelineReport};

mod common;

/// Minor page faults of the whole process so far.
fn minor_faults() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; `getrusage` only writes into it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage");
    // SAFETY: zero-initialised and filled in by a successful `getrusage`.
    unsafe { usage.assume_init() }.ru_minflt
}

#[test]
fn steady_state_replay_takes_no_page_faults() {
    // One test, one run at a time: the count is process-wide.
    const RECORDS: u64 = 200_000;
    let report = faults_in_steady_state(&common::fused_synthetic(RECORDS), RECORDS);
    assert_eq!(report.counter("feed", "records"), RECORDS + 2);
    // A real recording, inflated on the read-ahead thread (whose faults count too).
    if let Some(path) = pinion_testkit::data::require("binance/usdm-btcusdt-20240808.hbt.gz") {
        const USDM_RECORDS: u64 = 93_954;
        let report = faults_in_steady_state(&common::fused_recording(&path), USDM_RECORDS);
        assert_eq!(report.counter("feed", "records"), USDM_RECORDS);
    }
}

/// Runs `settings` (of `records` records), asserting that the process took no page fault
/// between 40 % and 90 % of them.
fn faults_in_steady_state(settings: &Settings, records: u64) -> PipelineReport {
    let stop = Arc::new(AtomicBool::new(false));
    let pipeline = pipeline::build(settings, Arc::clone(&stop)).expect("builds");
    let before = Arc::new(AtomicI64::new(0));
    let at_open = Arc::clone(&before);
    let window = common::steady_state_window(
        Arc::clone(&pipeline.progress),
        records,
        move || at_open.store(minor_faults(), Ordering::SeqCst),
        minor_faults,
    );
    let report = pipeline::run_pipeline(settings, pipeline, stop, Console::QUIET).expect("runs");
    let (opened, closed, after) = window.join().expect("window thread");
    let faults = after - before.load(Ordering::SeqCst);
    assert!(
        closed > opened + records / 4,
        "window {opened}..{closed} too small"
    );
    assert_eq!(
        faults, 0,
        "{faults} page faults while records {opened}..{closed} went through"
    );
    report
}
