//! Fuzz target, differential: one arbitrary history of snapshots, diffs (levels set and removed,
//! update ids that may skip or repeat), truncated messages and reconnects, fed to two Binance
//! Spot sync machines, one over the array book and one over the `BTreeMap` reference. After
//! every event both give the same outcome and state, and the books are equal level by level.
//!
//! The array book has a 64-tick window and prices wander over thousands of ticks, so
//! re-centring and the overflow are exercised; its overflow is large enough for every level an
//! input can carry, so a dropped level is itself a failure.

#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use pinion_book::{BookConfig, BookLevels, BookSync, OrderBook, ReferenceBook, SequenceRule};
use pinion_core::event::MAX_LEVELS;
use pinion_core::{EventFlags, EventKind, InstrumentId, Level, MarketEvent, Px, Qty, Side};

const INST: InstrumentId = InstrumentId(3);
const TICK: i64 = 1;
/// Messages per input at most; with at most 64 levels each, 4096 overflow slots cannot fill.
const MAX_OPS: usize = 48;

/// One step of the history.
enum Op {
    /// A snapshot with last update id `last + ahead` (may be older than the book).
    Snapshot {
        ahead: i16,
        levels: Vec<(Side, i16, u16)>,
        per: usize,
    },
    /// A diff whose first id is `last + 1 + skip` (skip 0 is in order, negative overlaps).
    Diff {
        skip: i8,
        span: u8,
        levels: Vec<(Side, i16, u16)>,
        per: usize,
        drop_last: bool,
    },
    /// The connection was reopened.
    Reconnect,
    /// The market moves: prices drawn from here on are shifted.
    Drift(i16),
}

fn levels(u: &mut Unstructured<'_>) -> Result<Vec<(Side, i16, u16)>> {
    let n = u.int_in_range(0..=64usize)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let side = if bool::arbitrary(u)? {
            Side::Bid
        } else {
            Side::Ask
        };
        // Mostly near the touch; a quarter of the time anywhere in ±32k ticks.
        let offset = if u.ratio(1, 4)? {
            i16::arbitrary(u)?
        } else {
            i16::from(i8::arbitrary(u)?)
        };
        // Removals common.
        let qty = if u.ratio(1, 3)? {
            0
        } else {
            u16::arbitrary(u)?
        };
        out.push((side, offset, qty));
    }
    Ok(out)
}

fn op(u: &mut Unstructured<'_>) -> Result<Op> {
    Ok(match u.int_in_range(0..=9u8)? {
        0 | 1 => Op::Snapshot {
            ahead: i16::from(i8::arbitrary(u)?),
            levels: levels(u)?,
            per: u.int_in_range(1..=MAX_LEVELS)?,
        },
        2..=7 => Op::Diff {
            skip: if u.ratio(1, 4)? { i8::arbitrary(u)? } else { 0 },
            span: u.int_in_range(0..=8)?,
            levels: levels(u)?,
            per: u.int_in_range(1..=MAX_LEVELS)?,
            drop_last: u.ratio(1, 16)?,
        },
        8 => Op::Reconnect,
        _ => Op::Drift(i16::arbitrary(u)?),
    })
}

/// The events of one message: at most `per` levels each, FIRST and LAST marked.
fn message(
    kind: EventKind,
    (first, last): (u64, u64),
    center: i64,
    levels: &[(Side, i16, u16)],
    per: usize,
) -> Vec<MarketEvent> {
    let chunks: Vec<&[(Side, i16, u16)]> = if levels.is_empty() {
        vec![&[]]
    } else {
        levels.chunks(per).collect()
    };
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut e = MarketEvent::EMPTY;
            e.kind = kind;
            e.instrument = INST;
            e.first_id = first;
            e.last_id = last;
            e.t0 = 1_000 + last;
            if i == 0 {
                e.flags.insert(EventFlags::FIRST);
            }
            if i + 1 == n {
                e.flags.insert(EventFlags::LAST);
            }
            for &(side, offset, qty) in chunk {
                let level = Level {
                    px: Px((center + i64::from(offset)) * TICK),
                    qty: Qty(i64::from(qty)),
                };
                e.push_level(side, level)
                    .expect("chunks are at most MAX_LEVELS");
            }
            e
        })
        .collect()
}

fn assert_same_book(arr: &BookSync<OrderBook>, reference: &BookSync<ReferenceBook>) {
    assert_eq!(
        arr.book().dropped_levels(),
        0,
        "the overflow was sized never to fill"
    );
    for side in [Side::Bid, Side::Ask] {
        assert_eq!(
            arr.book().len(side),
            reference.book().len(side),
            "{side:?} level count"
        );
        assert!(
            arr.book().levels(side).eq(reference.book().levels(side)),
            "{side:?} levels differ"
        );
        assert_eq!(arr.book().best(side), reference.book().best(side));
    }
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let config = BookConfig {
        window_ticks: 64,
        overflow_levels: 4_096,
    };
    let arr_book = OrderBook::with_tick(Px(TICK), config).expect("valid config");
    let ref_book = ReferenceBook::with_tick(Px(TICK)).expect("valid tick");
    let buffer = u.int_in_range(1..=16usize)?;
    let rule = SequenceRule::BinanceSpot;
    let mut arr = BookSync::with_book(arr_book, rule, INST, buffer).expect("valid buffer");
    let mut reference = BookSync::with_book(ref_book, rule, INST, buffer).expect("valid buffer");

    let mut center: i64 = 1_000_000;
    // The newest id issued: diffs continue from here, snapshots land near it.
    let mut last: u64 = 100;
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let events = match op(u)? {
            Op::Snapshot { ahead, levels, per } => {
                let id = last.saturating_add_signed(i64::from(ahead)).max(1);
                message(EventKind::Snapshot, (0, id), center, &levels, per)
            }
            Op::Diff {
                skip,
                span,
                levels,
                per,
                drop_last,
            } => {
                let first = (last + 1).saturating_add_signed(i64::from(skip)).max(1);
                let end = first + u64::from(span);
                last = last.max(end);
                let mut evs = message(EventKind::Depth, (first, end), center, &levels, per);
                if drop_last && evs.len() > 1 {
                    evs.pop();
                }
                evs
            }
            Op::Reconnect => {
                arr.on_reconnect();
                reference.on_reconnect();
                assert_eq!(arr.state(), reference.state());
                Vec::new()
            }
            Op::Drift(d) => {
                center += i64::from(d);
                Vec::new()
            }
        };
        for ev in &events {
            let a = arr.on_event(ev);
            let r = reference.on_event(ev);
            assert_eq!(a, r, "outcomes differ");
            assert_eq!(arr.state(), reference.state(), "states differ");
            assert_eq!(arr.last_update_id(), reference.last_update_id());
            assert_eq!(arr.buffered(), reference.buffered());
            assert_eq!(arr.counters(), reference.counters());
            assert_same_book(&arr, &reference);
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
