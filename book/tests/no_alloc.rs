//! The steady state allocates nothing: a counting global allocator watches a sync machine and
//! its array book through snapshots, buffering, replay of the buffer, gaps, re-centring, overflow
//! use, queries and top-of-book snapshots.

use pinion_book::{BookConfig, BookLevels, BookSync, SyncConfig, SyncState};
use pinion_core::{
    BookTop, EventFlags, EventKind, InstrumentId, InstrumentSpec, Level, MarketEvent, Px, Qty,
    Side, Venue,
};

#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

fn allocations() -> u64 {
    pinion_testkit::alloc::thread_allocations()
}

const INST: InstrumentId = InstrumentId(1);

/// A deterministic depth message around `mid`, with a far level now and then. Nothing may rest
/// at `mid` itself, so as long as `mid` moves one tick per message the book never crosses.
fn depth(u: u64, mid: i64, x: &mut u64) -> MarketEvent {
    let mut e = MarketEvent::EMPTY;
    e.kind = EventKind::Depth;
    e.instrument = INST;
    e.first_id = u;
    e.last_id = u;
    e.flags = EventFlags::FIRST | EventFlags::LAST;
    e.push_level(
        Side::Bid,
        Level {
            px: Px(mid),
            qty: Qty(0),
        },
    )
    .unwrap();
    for i in 0..12 {
        if i == 6 {
            e.push_level(
                Side::Ask,
                Level {
                    px: Px(mid),
                    qty: Qty(0),
                },
            )
            .unwrap();
        }
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        let off = (*x % 200) as i64 + if i % 6 == 0 { 3_000 } else { 1 };
        let qty = if (*x).is_multiple_of(3) {
            0
        } else {
            (*x % 1000) as i64
        };
        let side = if i < 6 { Side::Bid } else { Side::Ask };
        let px = match side {
            Side::Bid => mid - off,
            Side::Ask => mid + off,
        };
        e.push_level(
            side,
            Level {
                px: Px(px),
                qty: Qty(qty),
            },
        )
        .unwrap();
    }
    e
}

fn snapshot(u: u64, mid: i64) -> [MarketEvent; 3] {
    let mut parts = [MarketEvent::EMPTY; 3];
    for (p, part) in parts.iter_mut().enumerate() {
        part.kind = EventKind::Snapshot;
        part.instrument = INST;
        part.last_id = u;
        for i in 0..20 {
            let d = (p * 20 + i) as i64 + 1;
            part.push_level(
                Side::Bid,
                Level {
                    px: Px(mid - d),
                    qty: Qty(d),
                },
            )
            .unwrap();
        }
        for i in 0..8 {
            let d = (p * 8 + i) as i64 + 1;
            part.push_level(
                Side::Ask,
                Level {
                    px: Px(mid + d),
                    qty: Qty(d),
                },
            )
            .unwrap();
        }
    }
    parts[0].flags.insert(EventFlags::FIRST);
    parts[2].flags.insert(EventFlags::LAST);
    parts
}

#[test]
fn steady_state_allocates_nothing() {
    let spec = InstrumentSpec::new(Venue::BybitLinear, "TEST", "1", "1").unwrap();
    let config = SyncConfig {
        book: BookConfig {
            window_ticks: 1 << 8,
            overflow_levels: 512,
        },
        buffer_events: 256,
    };
    let mut sync = BookSync::new(&spec, INST, config).unwrap();
    let mut x = 0x2545_F491_4F6C_DD1D_u64;
    let mut top: BookTop = BookTop::EMPTY;

    // Start-up is allowed to allocate; everything after is not.
    let before = allocations();
    // A window of 256 ticks against a market that trends by thousands of ticks: the windows
    // must move, and the levels 3000 ticks away live in the overflow.
    let mut mid = 1_000_000i64;
    let mut u = 1;
    let mut checksum = 0i64;
    for round in 0..200 {
        if sync.state() != SyncState::Live {
            for e in &snapshot(u, mid) {
                sync.on_event(e);
            }
        }
        for _ in 0..50 {
            u += 1;
            // Every 40 rounds, skip an id: a gap, then the next snapshot resyncs.
            if round % 40 == 39 && u % 50 == 7 {
                u += 1;
            }
            mid += if round % 4 == 3 { -1 } else { 1 };
            sync.on_event(&depth(u, mid, &mut x));
            let b = sync.book();
            checksum += b.best_bid().map_or(0, |l| l.px.0);
            checksum += b.depth_within_bps(10).0.0;
            sync.write_top(&mut top);
            checksum += top.bids().len() as i64 + top.sweep(Side::Bid, Qty(5_000)).filled.0;
            checksum += top.imbalance_permille(5).unwrap_or(0);
            checksum += top.microprice().map_or(0, |p| p.0) + top.depth_within_bps(10).1.0;
            sync.write_top_cached(&mut top);
            checksum += top.mid().map_or(0, |p| p.0);
        }
    }
    let after = allocations();
    assert!(checksum != 0);
    assert!(sync.counters().gaps > 0, "the run must include gaps");
    assert_eq!(sync.counters().crossed, 0);
    let stats = sync.book().stats();
    assert!(
        stats.recentres[0] > 0 && stats.recentres[1] > 0,
        "{stats:?}"
    );
    assert!(
        stats.in_overflow[0] > 0 && stats.in_overflow[1] > 0,
        "{stats:?}"
    );
    assert_eq!(after - before, 0, "allocations in steady state");
}

#[test]
fn binance_buffering_and_replay_allocate_nothing() {
    let spec = InstrumentSpec::new(Venue::BinanceSpot, "TEST", "1", "1").unwrap();
    let config = SyncConfig {
        book: BookConfig {
            window_ticks: 1 << 12,
            overflow_levels: 512,
        },
        buffer_events: 64,
    };
    let mut sync = BookSync::new(&spec, INST, config).unwrap();
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    let before = allocations();
    let mut u = 100;
    for _ in 0..50 {
        // 100 messages arrive before the snapshot: the buffer overflows and starts over.
        for _ in 0..100 {
            u += 1;
            let mut e = depth(u, 1_000_000, &mut x);
            e.first_id = u;
            sync.on_event(&e);
        }
        for e in &snapshot(u - 30, 1_000_000) {
            sync.on_event(e);
        }
        assert_eq!(sync.state(), SyncState::Live);
        sync.on_reconnect();
    }
    let after = allocations();
    assert!(sync.counters().buffer_overflows > 0);
    assert!(sync.counters().stale > 0);
    assert_eq!(after - before, 0, "allocations in steady state");
}
