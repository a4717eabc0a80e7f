//! The sync rules, one by one, on hand-made event sequences.

use pinion_core::{
    EventFlags, EventKind, InstrumentId, InstrumentSpec, Level, MarketEvent, Px, Qty, Side, Venue,
};

use super::*;
use crate::BookConfig;
use crate::levels::BookLevels;

const INST: InstrumentId = InstrumentId(7);

fn machine(venue: Venue) -> BookSync {
    machine_with_buffer(venue, 64)
}

fn machine_with_buffer(venue: Venue, buffer_events: usize) -> BookSync {
    let spec = InstrumentSpec::new(venue, "TEST", "1", "1").unwrap();
    let config = SyncConfig {
        book: BookConfig {
            window_ticks: 1 << 10,
            overflow_levels: 64,
        },
        buffer_events,
    };
    BookSync::new(&spec, INST, config).unwrap()
}

fn lv(px: i64, qty: i64) -> Level {
    Level {
        px: Px(px),
        qty: Qty(qty),
    }
}

/// One exchange message as events of at most `per` levels, FIRST/LAST marked.
fn message(
    kind: EventKind,
    (first, last, prev): (u64, u64, u64),
    bids: &[(i64, i64)],
    asks: &[(i64, i64)],
    per: usize,
) -> Vec<MarketEvent> {
    let levels: Vec<(Side, Level)> = bids
        .iter()
        .map(|&(p, q)| (Side::Bid, lv(p, q)))
        .chain(asks.iter().map(|&(p, q)| (Side::Ask, lv(p, q))))
        .collect();
    let mut out = Vec::new();
    let chunks: Vec<&[(Side, Level)]> = if levels.is_empty() {
        vec![&[]]
    } else {
        levels.chunks(per).collect()
    };
    for (i, chunk) in chunks.iter().enumerate() {
        let mut e = MarketEvent::EMPTY;
        e.kind = kind;
        e.instrument = INST;
        e.first_id = first;
        e.last_id = last;
        e.prev_id = prev;
        e.t0 = 1000 + last;
        if i == 0 {
            e.flags.insert(EventFlags::FIRST);
        }
        if i == chunks.len() - 1 {
            e.flags.insert(EventFlags::LAST);
        }
        for &(side, l) in chunk.iter() {
            e.push_level(side, l).unwrap();
        }
        out.push(e);
    }
    out
}

fn depth(ids: (u64, u64, u64), bids: &[(i64, i64)], asks: &[(i64, i64)]) -> MarketEvent {
    message(EventKind::Depth, ids, bids, asks, 28)[0]
}

fn snapshot(id: u64, bids: &[(i64, i64)], asks: &[(i64, i64)]) -> Vec<MarketEvent> {
    message(EventKind::Snapshot, (0, id, 0), bids, asks, 28)
}

fn feed(s: &mut BookSync, evs: &[MarketEvent]) -> Vec<SyncOutcome> {
    evs.iter().map(|e| s.on_event(e)).collect()
}

fn awaiting(reason: ResyncReason) -> SyncState {
    SyncState::AwaitingSnapshot { reason }
}

const APPLIED: SyncOutcome = SyncOutcome::Applied { committed: true };

#[test]
fn spot_buffers_then_syncs_on_u_equal_last_update_id_plus_one() {
    let mut s = machine(Venue::BinanceSpot);
    assert_eq!(s.state(), awaiting(ResyncReason::Start));
    // Three messages before the snapshot; the first two are in it already.
    assert_eq!(
        s.on_event(&depth((90, 95, 0), &[(100, 1)], &[])),
        SyncOutcome::Buffered
    );
    assert_eq!(
        s.on_event(&depth((96, 100, 0), &[(100, 2)], &[])),
        SyncOutcome::Buffered
    );
    assert_eq!(
        s.on_event(&depth((101, 104, 0), &[(99, 5)], &[(103, 1)])),
        SyncOutcome::Buffered
    );
    assert_eq!(s.buffered(), 3);
    // Snapshot at 100: the message starting at U = 101 = lastUpdateId + 1 bridges it.
    let out = feed(&mut s, &snapshot(100, &[(100, 2), (98, 1)], &[(102, 4)]));
    assert_eq!(out, [APPLIED]);
    assert_eq!(s.state(), SyncState::Live);
    assert_eq!(s.last_update_id(), 104);
    assert_eq!(s.counters().stale, 2);
    assert_eq!(s.counters().messages_applied, 1);
    assert_eq!(s.buffered(), 0);
    let bids: Vec<Level> = s.book().levels(Side::Bid).collect();
    assert_eq!(bids, [lv(100, 2), lv(99, 5), lv(98, 1)]);
    assert_eq!(s.book().best_ask(), Some(lv(102, 4)));
    // The chain continues with U = previous u + 1.
    assert_eq!(s.on_event(&depth((105, 107, 0), &[(100, 0)], &[])), APPLIED);
    assert_eq!(s.book().best_bid(), Some(lv(99, 5)));
    assert!(s.is_synced());
}

#[test]
fn spot_accepts_a_first_message_straddling_the_snapshot() {
    let mut s = machine(Venue::BinanceSpot);
    s.on_event(&depth((208, 224, 0), &[(100, 9)], &[]));
    feed(&mut s, &snapshot(218, &[(100, 1)], &[(101, 1)]));
    assert_eq!(s.state(), SyncState::Live);
    assert_eq!(s.book().best_bid(), Some(lv(100, 9)));
}

#[test]
fn spot_snapshot_too_old_is_a_gap_and_keeps_the_buffer() {
    let mut s = machine(Venue::BinanceSpot);
    s.on_event(&depth((110, 120, 0), &[(100, 1)], &[]));
    s.on_event(&depth((121, 130, 0), &[(100, 2)], &[]));
    feed(&mut s, &snapshot(105, &[(100, 3)], &[(101, 1)]));
    assert_eq!(s.state(), awaiting(ResyncReason::Gap));
    assert_eq!(s.counters().gaps, 1);
    assert_eq!(s.buffered(), 2);
    // A newer snapshot makes the kept messages usable.
    feed(&mut s, &snapshot(115, &[(100, 3)], &[(101, 1)]));
    assert_eq!(s.state(), SyncState::Live);
    assert_eq!(s.last_update_id(), 130);
    assert_eq!(s.book().best_bid(), Some(lv(100, 2)));
}

#[test]
fn spot_live_stale_duplicate_and_gap() {
    let mut s = machine(Venue::BinanceSpot);
    feed(&mut s, &snapshot(10, &[(100, 1)], &[(101, 1)]));
    assert_eq!(s.state(), SyncState::Syncing { snapshot_id: 10 });
    assert!(!s.is_synced());
    assert_eq!(
        s.on_event(&depth((5, 10, 0), &[(100, 7)], &[])),
        SyncOutcome::Stale
    );
    assert_eq!(s.on_event(&depth((11, 12, 0), &[(100, 2)], &[])), APPLIED);
    assert_eq!(
        s.on_event(&depth((11, 12, 0), &[(100, 2)], &[])),
        SyncOutcome::Duplicate
    );
    assert_eq!(
        s.on_event(&depth((8, 11, 0), &[(100, 9)], &[])),
        SyncOutcome::Stale
    );
    assert_eq!(s.book().best_bid(), Some(lv(100, 2)));
    assert_eq!(
        s.on_event(&depth((14, 15, 0), &[(100, 3)], &[])),
        SyncOutcome::Gap {
            expected: 13,
            got: 14
        }
    );
    assert_eq!(s.state(), awaiting(ResyncReason::Gap));
    assert_eq!(s.buffered(), 1, "the gap message opens the new buffer");
    assert_eq!(
        s.on_event(&depth((16, 16, 0), &[(100, 4)], &[])),
        SyncOutcome::Buffered
    );
    let c = s.counters();
    assert_eq!((c.stale, c.duplicates, c.gaps, c.resyncs), (2, 1, 1, 1));
}

#[test]
fn futures_first_message_must_contain_last_update_id() {
    let mut s = machine(Venue::BinanceUsdm);
    // Futures keep u == lastUpdateId and need U ≤ lastUpdateId ≤ u.
    s.on_event(&depth((40, 49, 30), &[(100, 1)], &[]));
    s.on_event(&depth((50, 60, 49), &[(100, 2)], &[]));
    s.on_event(&depth((75, 90, 60), &[(100, 3)], &[]));
    feed(&mut s, &snapshot(60, &[(100, 9)], &[(101, 1)]));
    assert_eq!(s.state(), SyncState::Live);
    assert_eq!(s.counters().stale, 1);
    assert_eq!(s.last_update_id(), 90);
    assert_eq!(s.book().best_bid(), Some(lv(100, 3)));
    // pu chain: ids jump, pu must equal the previous u.
    assert_eq!(
        s.on_event(&depth((130, 140, 90), &[(100, 4)], &[])),
        APPLIED
    );
    assert_eq!(
        s.on_event(&depth((130, 140, 90), &[(100, 4)], &[])),
        SyncOutcome::Duplicate
    );
    assert_eq!(
        s.on_event(&depth((141, 150, 139), &[], &[])),
        SyncOutcome::Gap {
            expected: 140,
            got: 139
        }
    );
}

#[test]
fn futures_refuse_a_spot_style_start() {
    let mut s = machine(Venue::BinanceUsdm);
    // U = lastUpdateId + 1 is the Spot start, but futures must see lastUpdateId inside [U;u].
    s.on_event(&depth((61, 70, 55), &[(100, 1)], &[]));
    feed(&mut s, &snapshot(60, &[(100, 9)], &[(101, 1)]));
    assert_eq!(s.state(), awaiting(ResyncReason::Gap));
}

#[test]
fn bybit_snapshot_delta_chain_and_reset() {
    let mut s = machine(Venue::BybitLinear);
    // Deltas before the first snapshot are useless on Bybit.
    assert_eq!(
        s.on_event(&depth((4, 4, 0), &[(100, 1)], &[])),
        SyncOutcome::Unsynced
    );
    assert_eq!(s.buffered(), 0);
    feed(&mut s, &snapshot(5, &[(100, 1)], &[(102, 1)]));
    assert_eq!(s.state(), SyncState::Live);
    assert_eq!(s.on_event(&depth((6, 6, 0), &[(101, 1)], &[])), APPLIED);
    assert_eq!(
        s.on_event(&depth((6, 6, 0), &[(101, 1)], &[])),
        SyncOutcome::Duplicate
    );
    assert_eq!(
        s.on_event(&depth((5, 5, 0), &[(101, 1)], &[])),
        SyncOutcome::Stale
    );
    assert_eq!(
        s.on_event(&depth((8, 8, 0), &[], &[])),
        SyncOutcome::Gap {
            expected: 7,
            got: 8
        }
    );
    assert_eq!(s.state(), awaiting(ResyncReason::Gap));
    assert_eq!(s.buffered(), 0);
    // A new snapshot always replaces the book, even with a lower id (u == 1: a restart).
    let mut restart = snapshot(1, &[(90, 3)], &[(91, 3)]);
    restart[0].flags.insert(EventFlags::RESET);
    assert_eq!(feed(&mut s, &restart), [APPLIED]);
    assert_eq!(s.state(), SyncState::Live);
    assert_eq!(s.book().len(Side::Bid), 1);
    assert_eq!(s.book().best_bid(), Some(lv(90, 3)));
    // A delta flagged RESET says the venue restarted: resync.
    let mut reset = depth((1, 1, 0), &[], &[]);
    reset.flags.insert(EventFlags::RESET);
    assert_eq!(s.on_event(&reset), SyncOutcome::VenueReset);
    assert_eq!(s.state(), awaiting(ResyncReason::VenueReset));
    assert_eq!(s.counters().venue_resets, 1);
}

#[test]
fn crossed_or_locked_book_after_a_message_forces_resync() {
    let mut s = machine(Venue::BinanceSpot);
    feed(&mut s, &snapshot(10, &[(100, 1)], &[(102, 1)]));
    assert_eq!(s.on_event(&depth((11, 11, 0), &[(101, 1)], &[])), APPLIED);
    assert_eq!(
        s.on_event(&depth((12, 12, 0), &[(102, 1)], &[])),
        SyncOutcome::Crossed { update_id: 12 }
    );
    assert_eq!(s.state(), awaiting(ResyncReason::Crossed));
    assert_eq!(s.counters().crossed, 1);
    // A crossing inside a split message is fine as long as the whole message is not crossed.
    let mut s = machine(Venue::BinanceSpot);
    feed(&mut s, &snapshot(10, &[(100, 1)], &[(102, 1)]));
    let msg = message(
        EventKind::Depth,
        (11, 11, 0),
        &[(103, 1)],
        &[(102, 0), (104, 1)],
        1,
    );
    assert_eq!(
        feed(&mut s, &msg),
        [
            SyncOutcome::Applied { committed: false },
            SyncOutcome::Applied { committed: false },
            APPLIED
        ]
    );
    assert_eq!(s.state(), SyncState::Live);
}

#[test]
fn split_messages_are_checked_on_first_and_committed_on_last() {
    let mut s = machine(Venue::BinanceSpot);
    let snap_levels: Vec<(i64, i64)> = (0..60).map(|i| (1000 - i, 1 + i)).collect();
    let snap = message(
        EventKind::Snapshot,
        (0, 10, 0),
        &snap_levels,
        &[(1001, 1)],
        28,
    );
    assert_eq!(snap.len(), 3);
    let out = feed(&mut s, &snap);
    assert_eq!(out[2], APPLIED);
    assert_eq!(s.book().len(Side::Bid), 60);
    // A stale split message is skipped whole.
    let stale = message(EventKind::Depth, (5, 9, 0), &[(999, 77), (998, 77)], &[], 1);
    assert_eq!(
        feed(&mut s, &stale),
        [SyncOutcome::Stale, SyncOutcome::Stale]
    );
    assert_eq!(s.book().qty_at(Side::Bid, Px(999)), Qty(2));
    // A message cut short (a new message starts before its LAST) leaves a half-applied book.
    let cut = message(EventKind::Depth, (11, 12, 0), &[(999, 5), (998, 5)], &[], 1);
    assert_eq!(
        s.on_event(&cut[0]),
        SyncOutcome::Applied { committed: false }
    );
    assert!(!s.is_synced());
    assert_eq!(
        s.on_event(&depth((13, 13, 0), &[], &[])),
        SyncOutcome::Buffered
    );
    assert_eq!(s.state(), awaiting(ResyncReason::Truncated));
    assert_eq!(s.counters().truncated, 1);
    // A part whose head never came is dropped.
    let mut s = machine(Venue::BinanceSpot);
    feed(&mut s, &snapshot(10, &[(100, 1)], &[(102, 1)]));
    let msg = message(EventKind::Depth, (11, 12, 0), &[(99, 5)], &[(103, 5)], 1);
    assert_eq!(s.on_event(&msg[1]), SyncOutcome::Truncated);
    assert_eq!(s.book().best_ask(), Some(lv(102, 1)));
}

#[test]
fn full_buffer_is_counted_and_buffering_restarts() {
    let mut s = machine_with_buffer(Venue::BinanceSpot, 4);
    for i in 0..6u64 {
        s.on_event(&depth(
            (i * 10 + 1, i * 10 + 10, 0),
            &[(100, 1 + i as i64)],
            &[],
        ));
    }
    assert_eq!(s.counters().buffer_overflows, 1);
    assert_eq!(s.buffered(), 2);
    // The kept messages (41..60) sync with a snapshot at 40; the lost ones are not needed.
    feed(&mut s, &snapshot(40, &[(100, 1)], &[(101, 1)]));
    assert_eq!(s.state(), SyncState::Live);
    assert_eq!(s.book().best_bid(), Some(lv(100, 6)));
}

#[test]
fn reconnect_and_bad_levels_force_resync() {
    let mut s = machine(Venue::BinanceSpot);
    feed(&mut s, &snapshot(10, &[(100, 1)], &[(102, 1)]));
    s.on_event(&depth((11, 11, 0), &[], &[]));
    assert!(s.is_synced());
    s.on_reconnect();
    assert_eq!(s.state(), awaiting(ResyncReason::Reconnect));
    assert!(!s.top::<5>().synced);

    let mut s = machine(Venue::BinanceSpot);
    feed(&mut s, &snapshot(10, &[(100, 1)], &[(102, 1)]));
    assert_eq!(
        s.on_event(&depth((11, 11, 0), &[(99, -1)], &[])),
        SyncOutcome::Rejected(BookError::NegativeQty)
    );
    assert_eq!(s.state(), awaiting(ResyncReason::BadLevel));
    assert_eq!(s.counters().rejected_levels, 1);
}

#[test]
fn stale_snapshot_does_not_replace_a_live_book() {
    let mut s = machine(Venue::BinanceSpot);
    feed(&mut s, &snapshot(10, &[(100, 1)], &[(102, 1)]));
    s.on_event(&depth((11, 20, 0), &[(100, 5)], &[]));
    assert_eq!(
        feed(&mut s, &snapshot(15, &[(90, 1)], &[(91, 1)])),
        [SyncOutcome::Stale]
    );
    assert_eq!(s.state(), SyncState::Live);
    assert_eq!(s.book().best_bid(), Some(lv(100, 5)));
}

fn ticker(u: u64, bid: (i64, i64), ask: (i64, i64)) -> MarketEvent {
    let mut e = MarketEvent::EMPTY;
    e.kind = EventKind::BookTicker;
    e.instrument = INST;
    e.last_id = u;
    e.t0 = 5000 + u;
    e.flags = EventFlags::FIRST | EventFlags::LAST;
    e.push_level(Side::Bid, lv(bid.0, bid.1)).unwrap();
    e.push_level(Side::Ask, lv(ask.0, ask.1)).unwrap();
    e
}

#[test]
fn ticker_ahead_tops_the_snapshot_until_the_depth_stream_reaches_it() {
    let mut s = machine(Venue::BinanceSpot);
    // Not synced yet: a ticker is of no use.
    assert_eq!(
        s.on_ticker(&ticker(9, (100, 1), (102, 1))),
        TickerOutcome::Unusable
    );
    feed(
        &mut s,
        &snapshot(10, &[(100, 3), (99, 1), (98, 2)], &[(102, 4), (103, 1)]),
    );
    s.on_event(&depth((11, 12, 0), &[(101, 2)], &[]));
    // Older than the book, then ahead of it: the bid fell through 101 and 100.
    assert_eq!(
        s.on_ticker(&ticker(11, (101, 2), (102, 4))),
        TickerOutcome::Stale
    );
    assert_eq!(
        s.on_ticker(&ticker(15, (99, 7), (102, 4))),
        TickerOutcome::Ahead
    );
    // A ticker older than the one held changes nothing.
    assert_eq!(
        s.on_ticker(&ticker(14, (101, 1), (102, 4))),
        TickerOutcome::Stale
    );
    let snap: BookTop = s.top();
    assert_eq!(snap.bids(), [lv(99, 7), lv(98, 2)]);
    assert_eq!(snap.asks(), [lv(102, 4), lv(103, 1)]);
    assert_eq!(
        (snap.last_update_id, snap.t0, snap.synced),
        (15, 5015, true)
    );
    // A depth message short of the ticker's id: the ticker still tops the snapshot.
    s.on_event(&depth((13, 13, 0), &[(101, 0)], &[]));
    let snap: BookTop = s.top();
    assert_eq!(snap.bids()[0], lv(99, 7));
    assert_eq!(snap.t0, 5015);
    // The message with the ticker's id agrees with it: checked, and the ticker is let go.
    assert_eq!(
        s.on_event(&depth((14, 15, 0), &[(100, 0), (99, 7)], &[])),
        SyncOutcome::Applied { committed: true }
    );
    let snap: BookTop = s.top();
    assert_eq!(snap.bids(), [lv(99, 7), lv(98, 2)]);
    assert_eq!((snap.last_update_id, snap.t0), (15, 1015));
    let t = *s.ticker_counters();
    assert_eq!(
        (t.ahead, t.stale, t.matched, t.mismatched, t.unusable),
        (1, 2, 1, 0, 1)
    );
    // The book's own id with the same best levels: a match on the spot.
    assert_eq!(
        s.on_ticker(&ticker(15, (99, 7), (102, 4))),
        TickerOutcome::Match
    );
    // Crossed, or one-sided: not usable.
    assert_eq!(
        s.on_ticker(&ticker(16, (103, 1), (102, 4))),
        TickerOutcome::Unusable
    );
}

#[test]
fn ticker_that_disagrees_with_the_book_at_its_id_forces_resync() {
    let mut s = machine(Venue::BinanceSpot);
    feed(&mut s, &snapshot(10, &[(100, 3)], &[(102, 4)]));
    s.on_event(&depth((11, 12, 0), &[(101, 2)], &[]));
    // Ahead, then the depth message with its id leaves another best bid: the book is wrong.
    assert_eq!(
        s.on_ticker(&ticker(13, (101, 5), (102, 4))),
        TickerOutcome::Ahead
    );
    assert_eq!(
        s.on_event(&depth((13, 13, 0), &[(101, 4)], &[])),
        SyncOutcome::TickerMismatch { update_id: 13 }
    );
    assert_eq!(s.state(), awaiting(ResyncReason::TickerMismatch));
    assert!(!s.top::<10>().synced);
    // At the book's own id, on the spot.
    let mut s = machine(Venue::BinanceUsdm);
    feed(&mut s, &snapshot(10, &[(100, 3)], &[(102, 4)]));
    s.on_event(&depth((9, 12, 8), &[(101, 2)], &[]));
    assert_eq!(
        s.on_ticker(&ticker(12, (101, 3), (102, 4))),
        TickerOutcome::Mismatch
    );
    assert_eq!(s.state(), awaiting(ResyncReason::TickerMismatch));
    assert_eq!(s.ticker_counters().mismatched, 1);
}

#[test]
fn ticker_is_checked_only_at_the_same_update_id() {
    let mut s = machine(Venue::BinanceSpot);
    feed(&mut s, &snapshot(10, &[(100, 3)], &[(102, 4)]));
    s.on_event(&depth((11, 12, 0), &[(101, 2)], &[]));
    assert_eq!(
        s.check_ticker(&ticker(12, (101, 2), (102, 4))),
        TickerCheck::Match
    );
    assert_eq!(
        s.check_ticker(&ticker(13, (1, 1), (2, 2))),
        TickerCheck::NotComparable
    );
    assert!(matches!(
        s.check_ticker(&ticker(12, (101, 3), (102, 4))),
        TickerCheck::Mismatch { .. }
    ));
    assert_eq!(
        s.on_event(&ticker(12, (1, 1), (2, 2))),
        SyncOutcome::Ignored
    );
}

#[test]
fn snapshot_carries_t0_ids_and_the_synced_flag() {
    let mut s = machine(Venue::BinanceSpot);
    feed(&mut s, &snapshot(10, &[(100, 3), (99, 1)], &[(102, 4)]));
    s.on_event(&depth((11, 12, 0), &[(101, 2)], &[]));
    let snap: BookTop = s.top();
    assert!(snap.synced);
    assert_eq!(
        (snap.instrument, snap.last_update_id, snap.t0),
        (INST, 12, 1012)
    );
    assert_eq!(snap.bids(), [lv(101, 2), lv(100, 3), lv(99, 1)]);
    assert_eq!(snap.asks(), [lv(102, 4)]);
}

#[test]
fn other_instruments_are_ignored() {
    let mut s = machine(Venue::BinanceSpot);
    let mut e = depth((1, 2, 0), &[(100, 1)], &[]);
    e.instrument = InstrumentId(8);
    assert_eq!(s.on_event(&e), SyncOutcome::Ignored);
    assert_eq!(s.buffered(), 0);
}
