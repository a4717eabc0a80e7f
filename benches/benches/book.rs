//! Benchmark: the array order book against the `BTreeMap` reference, in the same run.
//!
//! Input: the real depth streams of `shared/data` — Binance Spot BTCUSDT (`@depth@100ms`, 0.01
//! tick) and Binance USD-M BTCUSDT (`@depth@0ms`, 0.1 tick), 2024-08-08 — decoded by the
//! production decoder before anything is timed. When the recordings are missing (outside CI) a
//! synthetic stream shaped like the Spot one is used instead, and the run says so.
//!
//! Per stream:
//! - `book/apply/<stream>`: the REST snapshot loaded, then every depth message applied level by
//!   level with a commit after each; throughput is in level updates (ns per level update), and
//!   the message count printed at start gives ns per message (time per iteration / count).
//!   Quantities are absolute, so replaying the stream over its own end state does the same work
//!   each pass: no per-iteration copy of the books.
//! - `book/best_bid_ask/<stream>`: best bid and ask of the final book.
//! - `book/sync/<stream>`: the stream through `BookSync` (sequence checks, buffering, commit,
//!   cross check) from the state right after the snapshot; throughput in messages.
//!
//! The array book uses the default window, `BookConfig::DEFAULT_WINDOW_TICKS` (2^18) ticks per
//! side; `book/apply` also measures a 2^16 window. Before timing, both books must end equal,
//! so the comparison is of equal work.
//!
//! Machine state: numbers mean something only on a quiet host with a fixed CPU frequency
//! (performance governor, turbo off) and the bench pinned to an isolated core; on a shared
//! machine compare the two books within one run, not across runs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pinion_book::{
    BookConfig, BookLevels, BookSync, L2Book, OrderBook, ReferenceBook, SequenceRule,
};
use pinion_core::{
    ConnId, EventFlags, EventKind, InstrumentId, InstrumentSpec, Instruments, Level, MarketEvent,
    Px, Qty, RawRecord, RecordKind, Side, Venue,
};
use pinion_feed::parse::{ConnCtx, Decoder};

const INST: InstrumentId = InstrumentId(0);

/// The narrower window the apply benchmark also measures, against the default.
const NARROW_WINDOW_TICKS: usize = 1 << 16;

/// One depth stream, decoded before timing.
struct Stream {
    name: &'static str,
    tick: Px,
    rule: SequenceRule,
    /// Everything up to and including the snapshot, in arrival order (what the sync machine
    /// sees before the timed part).
    prelude: Vec<MarketEvent>,
    /// The snapshot's events.
    snapshot: Vec<MarketEvent>,
    /// The depth events after the snapshot.
    messages: Vec<MarketEvent>,
    /// Level updates in `messages`.
    levels: u64,
    /// Exchange messages in `messages`.
    n_messages: u64,
}

impl Stream {
    fn new(name: &'static str, tick: Px, rule: SequenceRule, events: &[MarketEvent]) -> Self {
        let mut s = Stream {
            name,
            tick,
            rule,
            prelude: Vec::new(),
            snapshot: Vec::new(),
            messages: Vec::new(),
            levels: 0,
            n_messages: 0,
        };
        let mut after_snapshot = false;
        for e in events {
            match e.kind {
                EventKind::Snapshot if !after_snapshot => {
                    s.snapshot.push(*e);
                    s.prelude.push(*e);
                    after_snapshot = e.is_last();
                }
                EventKind::Depth if after_snapshot => {
                    s.levels += u64::from(e.n_levels);
                    s.n_messages += u64::from(e.is_last());
                    s.messages.push(*e);
                }
                EventKind::Depth => s.prelude.push(*e),
                _ => {}
            }
        }
        s
    }
}

/// A real Binance BTCUSDT recording, decoded by the production decoder.
fn real_stream(
    name: &'static str,
    relative: &str,
    venue: Venue,
    tick: &str,
    step: &str,
) -> Option<Stream> {
    let lines = pinion_benches::hbt_lines(relative)?;
    let spec = InstrumentSpec::new(venue, "BTCUSDT", tick, step).expect("valid spec");
    let mut reg = Instruments::new();
    let id = reg.add(spec.clone()).expect("one instrument");
    assert_eq!(id, INST);
    let mut dec = Decoder::new(reg);
    // The hbt snapshot line has no request URL: the connection names the instrument.
    let ctx = ConnCtx {
        venue,
        default_instrument: Some(id),
    };
    let mut events = Vec::new();
    for line in &lines {
        let rec = RawRecord {
            t_recv: line.t_recv,
            conn: ConnId(0),
            kind: if line.is_stream() {
                RecordKind::Frame
            } else {
                RecordKind::RestSnapshot
            },
            meta: b"",
            payload: &line.json,
        };
        dec.decode(&ctx, &rec, line.t_recv, |e| events.push(*e))
            .expect("the recording decodes");
    }
    Some(Stream::new(
        name,
        spec.tick,
        SequenceRule::for_venue(venue),
        &events,
    ))
}

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

/// A stream shaped like Binance Spot BTCUSDT at a 0.01 tick: a 1000-level snapshot per side,
/// then messages of 4..16 updates, most within 50 ticks of the touch, some hundreds out, a few
/// thousands; a third removals; the touch random-walking.
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
        messages.push(e);
    }
    let mut events = snapshot;
    events.extend(messages);
    Stream::new("synthetic", Px(1), SequenceRule::BinanceSpot, &events)
}

fn load<B: L2Book>(book: &mut B, events: &[MarketEvent]) {
    for e in events {
        for (side, l) in e.sided_levels() {
            book.set_level(side, l.px, l.qty)
                .expect("snapshot levels are valid");
        }
    }
    book.commit();
}

fn apply<B: L2Book>(book: &mut B, events: &[MarketEvent]) {
    for e in events {
        // Levels are valid (decoded and checked); an error would show up as unequal books.
        for l in e.bids() {
            let _ = book.set_level(Side::Bid, l.px, l.qty);
        }
        for l in e.asks() {
            let _ = book.set_level(Side::Ask, l.px, l.qty);
        }
        if e.is_last() {
            book.commit();
        }
    }
}

fn books(stream: &Stream) -> (OrderBook, ReferenceBook) {
    let mut arr = OrderBook::with_tick(stream.tick, BookConfig::default()).expect("valid config");
    let mut reference = ReferenceBook::with_tick(stream.tick).expect("valid tick");
    load(&mut arr, &stream.snapshot);
    load(&mut reference, &stream.snapshot);
    (arr, reference)
}

fn bench_apply(c: &mut Criterion, stream: &Stream) -> (OrderBook, ReferenceBook) {
    let (mut arr, mut reference) = books(stream);
    // The two books must end equal, or the comparison means nothing.
    apply(&mut arr, &stream.messages);
    apply(&mut reference, &stream.messages);
    assert!(arr.levels(Side::Bid).eq(reference.levels(Side::Bid)));
    assert!(arr.levels(Side::Ask).eq(reference.levels(Side::Ask)));
    let mut g = c.benchmark_group(format!("book/apply/{}", stream.name));
    g.throughput(Throughput::Elements(stream.levels));
    g.bench_function("array", |b| {
        b.iter(|| apply(&mut arr, black_box(&stream.messages)))
    });
    // The same book with a 4x narrower window: more levels in the sorted overflow, whose
    // inserts and removals shift memory, against a smaller array.
    let mut narrow = OrderBook::with_tick(
        stream.tick,
        BookConfig {
            window_ticks: NARROW_WINDOW_TICKS,
            ..BookConfig::default()
        },
    )
    .expect("valid config");
    load(&mut narrow, &stream.snapshot);
    apply(&mut narrow, &stream.messages);
    assert!(narrow.levels(Side::Bid).eq(reference.levels(Side::Bid)));
    eprintln!(
        "book bench: {}: levels in the overflow at the end (bids, asks): window 2^18 {:?}, 2^16 {:?}",
        stream.name,
        arr.stats().in_overflow,
        narrow.stats().in_overflow
    );
    g.bench_function("array_window_2p16", |b| {
        b.iter(|| apply(&mut narrow, black_box(&stream.messages)))
    });
    g.bench_function("btreemap", |b| {
        b.iter(|| apply(&mut reference, black_box(&stream.messages)))
    });
    g.finish();
    (arr, reference)
}

fn bench_best(c: &mut Criterion, stream: &Stream, arr: &OrderBook, reference: &ReferenceBook) {
    let mut g = c.benchmark_group(format!("book/best_bid_ask/{}", stream.name));
    g.bench_function("array", |b| {
        b.iter(|| {
            let book = black_box(arr);
            (book.best_bid(), book.best_ask())
        })
    });
    g.bench_function("btreemap", |b| {
        b.iter(|| {
            let book = black_box(reference);
            (book.best_bid(), book.best_ask())
        })
    });
    g.finish();
}

fn ready<B: L2Book>(book: B, stream: &Stream) -> BookSync<B> {
    let mut s = BookSync::with_book(book, stream.rule, INST, 1024).expect("valid buffer");
    for e in &stream.prelude {
        s.on_event(e);
    }
    s
}

fn run_sync<B: L2Book>(s: &mut BookSync<B>, events: &[MarketEvent]) {
    for e in events {
        s.on_event(e);
    }
    assert!(s.is_synced(), "the stream must stay in sync");
}

fn bench_sync(c: &mut Criterion, stream: &Stream) {
    let arr = ready(
        OrderBook::with_tick(stream.tick, BookConfig::default()).expect("valid config"),
        stream,
    );
    let reference = ready(
        ReferenceBook::with_tick(stream.tick).expect("valid tick"),
        stream,
    );
    let mut g = c.benchmark_group(format!("book/sync/{}", stream.name));
    g.throughput(Throughput::Elements(stream.n_messages));
    g.bench_function("array", |b| {
        b.iter_batched_ref(
            || arr.clone(),
            |s| run_sync(s, black_box(&stream.messages)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("btreemap", |b| {
        b.iter_batched_ref(
            || reference.clone(),
            |s| run_sync(s, black_box(&stream.messages)),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn book_benches(c: &mut Criterion) {
    let real = [
        real_stream(
            "spot_btcusdt",
            "binance/spot-btcusdt-20240808.hbt.gz",
            Venue::BinanceSpot,
            "0.01",
            // Book quantities carry the asset's 8 decimals, finer than the lot step.
            "0.00000001",
        ),
        real_stream(
            "usdm_btcusdt",
            "binance/usdm-btcusdt-20240808.hbt.gz",
            Venue::BinanceUsdm,
            "0.10",
            "0.001",
        ),
    ];
    let mut streams: Vec<Stream> = real.into_iter().flatten().collect();
    if streams.is_empty() {
        eprintln!("book bench: real recordings missing, using the synthetic stream");
        streams.push(synthetic_stream(5_000));
    }
    for stream in &streams {
        eprintln!(
            "book bench: {}: {} messages, {} level updates after a {}-event snapshot; \
             window {} ticks per side",
            stream.name,
            stream.n_messages,
            stream.levels,
            stream.snapshot.len(),
            BookConfig::DEFAULT_WINDOW_TICKS
        );
        let (arr, reference) = bench_apply(c, stream);
        bench_best(c, stream, &arr, &reference);
        bench_sync(c, stream);
    }
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
