//! The steady state of a replay takes no page faults: every ring, queue, book window and
//! histogram is written at start-up, so no first touch of a fresh page (a fault of several µs on
//! this kind of host) lands on the hot path. Fused placement `1` on the synthetic market; the
//! process's minor-fault count is read at 40 % and at 90 % of the records.
//!
//! Alone in its test binary: the count is process-wide.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use pinion_engine::config::{Config, Override, Overrides, REPLAY_TOML, REPLAY_TOML_NAME};
use pinion_engine::replay::{self, Console};

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
    const RECORDS: u64 = 200_000;
    let mut o = Overrides::default();
    for (k, v) in [
        ("placement.mode", "\"1\""),
        ("placement.wait", "\"park\""),
        ("pacing.mode", "\"max\""),
        ("runtime.progress", "false"),
    ] {
        o.push(Override::parse(&format!("{k}={v}")).expect("override"));
    }
    o.push(Override::value("synthetic.records", RECORDS as i64));
    let settings = Config::parse_with(REPLAY_TOML, REPLAY_TOML_NAME, &o)
        .expect("parses")
        .validate(REPLAY_TOML_NAME)
        .expect("valid");
    let stop = Arc::new(AtomicBool::new(false));
    let pipeline = replay::build(&settings, Arc::clone(&stop)).expect("builds");
    let progress = Arc::clone(&pipeline.progress);

    // Reads the fault count at 40 % and 90 % of the records; it only sleeps and reads atomics
    // in between, on a stack that is already mapped.
    let window = std::thread::spawn(move || {
        while progress.records() < RECORDS * 4 / 10 {
            std::thread::sleep(Duration::from_micros(200));
        }
        let (opened, before) = (progress.records(), minor_faults());
        while progress.records() < RECORDS * 9 / 10 {
            std::thread::sleep(Duration::from_micros(200));
        }
        let after = minor_faults();
        (opened, progress.records(), after - before)
    });
    let report = replay::run_pipeline(&settings, pipeline, stop, Console::QUIET).expect("runs");
    let (opened, closed, faults) = window.join().expect("window thread");

    assert!(
        closed > opened + RECORDS / 4,
        "window {opened}..{closed} too small"
    );
    assert_eq!(report.counter("feed", "records"), RECORDS + 2);
    assert_eq!(
        faults, 0,
        "{faults} page faults while records {opened}..{closed} went through"
    );
}
