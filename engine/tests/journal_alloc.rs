//! Journaling allocates nothing in its steady state: the stage's side (pushing records into
//! the ring) and the writer thread (framing, appending, syncing) together, counted process-wide
//! once both have warmed up.

use std::time::Duration;

use pinion_core::{InstrumentId, Px, Qty};
use pinion_engine::ops::journal::{self, FsyncPolicy, JournalSettings, PositionChange, Record};
use pinion_strategy::{
    ClientOrderId, ExecReport, OrderIntent, OrderSide, OrderStatus, OrderType, TimeInForce,
    VenueOrderId,
};
use pinion_testkit::alloc::process_allocations;

#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

fn records(n: u64) -> [Record; 3] {
    let intent = OrderIntent::new_limit(
        n,
        ClientOrderId(n),
        InstrumentId(0),
        OrderSide::Buy,
        Px(6_000_000 + n as i64),
        Qty(100),
        OrderType::Limit,
        TimeInForce::Gtc,
        pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry),
    );
    let report = ExecReport {
        client_id: ClientOrderId(n),
        venue_id: VenueOrderId(n),
        instrument: InstrumentId(0),
        side: OrderSide::Buy,
        status: OrderStatus::Filled,
        last_px: Px(6_000_000),
        last_qty: Qty(100),
        cum_qty: Qty(100),
        leaves_qty: Qty(0),
        maker: true,
        t0: n,
        venue_ts: n,
    };
    let position = PositionChange {
        instrument: InstrumentId(0),
        qty: Qty(n as i64),
        realized: 0,
        fees: 1,
        venue_ts: n,
    };
    [
        Record::Order(intent),
        Record::Report(report),
        Record::Position(position),
    ]
}

#[test]
fn pushing_and_writing_records_allocates_nothing() {
    let path = std::env::temp_dir().join(format!("pinion-journal-alloc-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let settings = JournalSettings {
        path: path.clone(),
        fsync: FsyncPolicy::Interval(Duration::from_millis(2)),
        capacity: 4096,
    };
    let (writer, mut tx, _) = journal::open(&settings).expect("opens");
    let mut push_all = |from: u64, to: u64| {
        for n in from..to {
            for r in records(n) {
                while !tx.push(r) {
                    std::thread::yield_now();
                }
            }
            if n % 64 == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    };
    // Warm-up: the writer has written, synced and slept at least once.
    push_all(0, 2_000);
    std::thread::sleep(Duration::from_millis(20));
    let before = process_allocations();
    push_all(2_000, 12_000);
    std::thread::sleep(Duration::from_millis(20));
    let during = process_allocations() - before;
    let summary = writer.finish().expect("finishes");
    let _ = std::fs::remove_file(&path);
    assert_eq!(summary.records, 36_000, "every record written");
    assert!(summary.syncs > 1);
    assert_eq!(during, 0, "allocations while journaling");
}
