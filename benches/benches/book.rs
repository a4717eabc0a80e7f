//! Benchmark: the array order book against the `BTreeMap` reference, in the same run.
//!
//! - `book/apply`: a whole depth stream applied level by level, committing after each message;
//!   throughput is in level updates (ns per level update); the time per iteration divided by
//!   the message count printed at start gives ns per message.
//! - `book/best_bid_ask`: best bid and ask of a full book.
//! - `book/sync_stream`: the stream through `BookSync` (sequence checks, commit, cross check).
//!
//! Input: a synthetic stream shaped like Binance Spot BTCUSDT at a 0.01 tick (a 1000-level
//! snapshot per side; messages of ~10 updates, most within 50 ticks of the touch, some hundreds
//! of ticks out, a few thousands; a third removals; the touch random-walking). The array book
//! uses the default window (`BookConfig::default()`, 2^16 ticks per side).
//!
//! Machine state: numbers mean something only on a quiet host with a fixed CPU frequency
//! (performance governor, turbo off) and the bench pinned to an isolated core; on a shared
//! machine compare the two books within one run, not across runs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pinion_book::{BookConfig, BookSync, BookView, L2Book, OrderBook, ReferenceBook, SequenceRule};
use pinion_feed::{EventFlags, EventKind, InstrumentId, Level, MarketEvent, Px, Qty, Side};

const INST: InstrumentId = InstrumentId(0);

/// A small deterministic generator (xorshift), so every run sees the same stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

/// One depth stream: snapshot events, then depth messages (one event each), chained with
/// Binance Spot ids so the sync machine accepts them.
struct Stream {
    snapshot: Vec<MarketEvent>,
    messages: Vec<MarketEvent>,
    levels: u64,
}

fn synthetic_stream(n_messages: usize) -> Stream {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut mid: i64 = 6_183_763; // 61837.63 at two decimals
    let snapshot_id = 1_000;
    let mut snapshot = Vec::new();
    let mut ev = MarketEvent::EMPTY;
    let push = |ev: &mut MarketEvent, side: Side, l: Level, out: &mut Vec<MarketEvent>| {
        if let Err(l) = ev.push_level(side, l) {
            out.push(*ev);
            ev.clear_levels();
            ev.flags = EventFlags(0);
            ev.push_level(side, l).expect("an empty event has room");
        }
    };
    ev.kind = EventKind::Snapshot;
    ev.instrument = INST;
    ev.last_id = snapshot_id;
    ev.flags = EventFlags::FIRST;
    let mut px = mid;
    for _ in 0..1000 {
        px -= 1 + rng.below(40);
        let l = Level {
            px: Px(px),
            qty: Qty(1 + rng.below(500_000)),
        };
        push(&mut ev, Side::Bid, l, &mut snapshot);
    }
    let mut px = mid + 1;
    for _ in 0..1000 {
        let l = Level {
            px: Px(px),
            qty: Qty(1 + rng.below(500_000)),
        };
        push(&mut ev, Side::Ask, l, &mut snapshot);
        px += 1 + rng.below(40);
    }
    ev.flags.insert(EventFlags::LAST);
    snapshot.push(ev);
    if let Some(first) = snapshot.first_mut() {
        first.flags.insert(EventFlags::FIRST);
    }

    let mut messages = Vec::with_capacity(n_messages);
    let mut levels = 0;
    let mut u = snapshot_id;
    for _ in 0..n_messages {
        // The touch wanders; nothing may rest at `mid` or through it.
        mid += rng.below(3) - 1;
        let mut e = MarketEvent::EMPTY;
        e.kind = EventKind::Depth;
        e.instrument = INST;
        e.first_id = u + 1;
        u += 1 + rng.below(5) as u64;
        e.last_id = u;
        e.flags = EventFlags::FIRST | EventFlags::LAST;
        let n = 4 + rng.below(13) as usize;
        let n_bids = n / 2;
        e.push_level(
            Side::Bid,
            Level {
                px: Px(mid),
                qty: Qty(0),
            },
        )
        .ok();
        for i in 0..n {
            if i == n_bids {
                e.push_level(
                    Side::Ask,
                    Level {
                        px: Px(mid),
                        qty: Qty(0),
                    },
                )
                .ok();
            }
            let r = rng.below(100);
            let off = 1 + if r < 70 {
                rng.below(50)
            } else if r < 95 {
                rng.below(2_000)
            } else {
                rng.below(30_000)
            };
            let qty = if rng.below(3) == 0 {
                0
            } else {
                1 + rng.below(500_000)
            };
            let (side, px) = if i < n_bids {
                (Side::Bid, mid - off)
            } else {
                (Side::Ask, mid + off)
            };
            e.push_level(
                side,
                Level {
                    px: Px(px),
                    qty: Qty(qty),
                },
            )
            .ok();
        }
        levels += u64::from(e.n_levels);
        messages.push(e);
    }
    Stream {
        snapshot,
        messages,
        levels,
    }
}

fn load<B: L2Book>(book: &mut B, events: &[MarketEvent]) {
    for e in events {
        for (side, l) in e.sided_levels() {
            book.set_level(side, l.px, l.qty)
                .expect("synthetic levels are valid");
        }
    }
    book.commit();
}

fn apply<B: L2Book>(book: &mut B, messages: &[MarketEvent]) {
    for e in messages {
        // Levels are valid by construction; an error would show up as unequal books.
        for l in e.bids() {
            let _ = book.set_level(Side::Bid, l.px, l.qty);
        }
        for l in e.asks() {
            let _ = book.set_level(Side::Ask, l.px, l.qty);
        }
        book.commit();
    }
}

fn books(stream: &Stream) -> (OrderBook, ReferenceBook) {
    let mut arr = OrderBook::with_tick(Px(1), BookConfig::default()).expect("valid config");
    let mut reference = ReferenceBook::with_tick(Px(1)).expect("valid tick");
    load(&mut arr, &stream.snapshot);
    load(&mut reference, &stream.snapshot);
    (arr, reference)
}

fn bench_apply(c: &mut Criterion, stream: &Stream) {
    let (mut arr, mut reference) = books(stream);
    // The two books must end equal, or the comparison means nothing.
    apply(&mut arr, &stream.messages);
    apply(&mut reference, &stream.messages);
    assert!(arr.levels(Side::Bid).eq(reference.levels(Side::Bid)));
    assert!(arr.levels(Side::Ask).eq(reference.levels(Side::Ask)));
    // Quantities are absolute, so replaying the stream over its own end state does the same
    // work every pass and ends in the same state: no per-iteration clone of the books (which
    // would churn memory and page faults into the measurement).
    let mut g = c.benchmark_group("book/apply");
    g.throughput(Throughput::Elements(stream.levels));
    g.bench_function("array", |b| {
        b.iter(|| apply(&mut arr, black_box(&stream.messages)))
    });
    g.bench_function("btreemap", |b| {
        b.iter(|| apply(&mut reference, black_box(&stream.messages)))
    });
    g.finish();
}

fn bench_best(c: &mut Criterion, stream: &Stream) {
    let (mut arr, mut reference) = books(stream);
    apply(&mut arr, &stream.messages);
    apply(&mut reference, &stream.messages);
    let mut g = c.benchmark_group("book/best_bid_ask");
    g.bench_function("array", |b| {
        b.iter(|| {
            let book = black_box(&arr);
            (book.best_bid(), book.best_ask())
        })
    });
    g.bench_function("btreemap", |b| {
        b.iter(|| {
            let book = black_box(&reference);
            (book.best_bid(), book.best_ask())
        })
    });
    g.finish();
}

fn sync_run<B: L2Book + Clone>(proto: &BookSync<B>, stream: &Stream) -> BookSync<B> {
    let mut s = proto.clone();
    for e in &stream.snapshot {
        s.on_event(e);
    }
    s
}

fn bench_sync(c: &mut Criterion, stream: &Stream) {
    let arr = BookSync::with_book(
        OrderBook::with_tick(Px(1), BookConfig::default()).expect("valid config"),
        SequenceRule::BinanceSpot,
        INST,
        1024,
    )
    .expect("valid buffer");
    let reference = BookSync::with_book(
        ReferenceBook::with_tick(Px(1)).expect("valid tick"),
        SequenceRule::BinanceSpot,
        INST,
        1024,
    )
    .expect("valid buffer");
    let (arr, reference) = (sync_run(&arr, stream), sync_run(&reference, stream));
    let mut g = c.benchmark_group("book/sync_stream");
    g.throughput(Throughput::Elements(stream.messages.len() as u64));
    g.bench_function("array", |b| {
        b.iter_batched_ref(
            || arr.clone(),
            |s| {
                for e in black_box(&stream.messages) {
                    s.on_event(e);
                }
                assert!(s.is_synced());
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("btreemap", |b| {
        b.iter_batched_ref(
            || reference.clone(),
            |s| {
                for e in black_box(&stream.messages) {
                    s.on_event(e);
                }
                assert!(s.is_synced());
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn book_benches(c: &mut Criterion) {
    let stream = synthetic_stream(5_000);
    eprintln!(
        "book bench: synthetic stream, {} messages, {} level updates, window {} ticks",
        stream.messages.len(),
        stream.levels,
        BookConfig::DEFAULT_WINDOW_TICKS
    );
    bench_apply(c, &stream);
    bench_best(c, &stream);
    bench_sync(c, &stream);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = book_benches
}
criterion_main!(benches);
