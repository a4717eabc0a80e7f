//! The steady state of a replay allocates nothing: fused placement `1` on the synthetic market,
//! with a counting global allocator that counts only while the run is between 40 % and 90 % of
//! its records (after start-up and warm-up, before the end-of-stream flush and the report).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use pinion_engine::config::{Config, Override, Overrides, REPLAY_TOML, REPLAY_TOML_NAME};
use pinion_engine::replay::{self, Console};

struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; the counting touches only atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's layout obligations are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as for `dealloc`; the new size obligations are the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn steady_state_replay_allocates_nothing() {
    const RECORDS: u64 = 60_000;
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

    // Opens the counting window at 40 % of the records and closes it at 90 %. It only sleeps
    // and reads atomics while the window is open.
    let window = std::thread::spawn(move || {
        let mut opened_at = 0;
        while progress.records() < RECORDS * 4 / 10 {
            std::thread::sleep(Duration::from_micros(200));
        }
        COUNTING.store(true, Ordering::SeqCst);
        opened_at += progress.records();
        while progress.records() < RECORDS * 9 / 10 {
            std::thread::sleep(Duration::from_micros(200));
        }
        COUNTING.store(false, Ordering::SeqCst);
        (opened_at, progress.records())
    });
    let report = replay::run_pipeline(&settings, pipeline, stop, Console::QUIET).expect("runs");
    let (opened, closed) = window.join().expect("window thread");
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);

    assert!(
        closed > opened + RECORDS / 4,
        "window {opened}..{closed} too small"
    );
    assert_eq!(report.counter("feed", "records"), RECORDS + 2);
    assert!(
        report.counter("gateway", "orders_sent") > 0,
        "the strategy traded"
    );
    assert_eq!(
        allocations, 0,
        "{allocations} allocations while records {opened}..{closed} went through"
    );
}
