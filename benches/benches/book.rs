//! Benchmark: the array order book against baselines in the same run — the `BTreeMap`
//! reference and hftbacktest's `ROIVectorMarketDepth`, `HashMapMarketDepth` and
//! `BTreeMarketDepth`.
//!
//! Input: the real depth streams of `shared/data` — Binance Spot BTCUSDT (`@depth@100ms`, 0.01
//! tick) and Binance USD-M BTCUSDT (`@depth@0ms`, 0.1 tick), 2024-08-08 — decoded by the
//! production decoder before anything is timed. When the recordings are missing (outside CI) a
//! synthetic stream shaped like the Spot one is used instead, and the run says so.
//!
//! The timed messages are the ones the venue's sync rule applies after the REST snapshot
//! ([`SequenceRule`], the code the engine's `BookSync` runs): the messages buffered before the
//! snapshot that bridge its `lastUpdateId`, then every one that follows. Set-up checks that this
//! selection gives the same book as `BookSync` fed the recording in arrival order, that no book
//! is crossed or locked after any message, and that every book ends equal to the reference.
//!
//! Per stream:
//! - `book/apply/<stream>`: every selected depth message applied level by level with a commit
//!   after each; throughput is in level updates (ns per level update), and the message count
//!   printed at start gives ns per message (time per iteration / count). Quantities are
//!   absolute, so replaying the stream over its own end state does the same work each pass: no
//!   per-iteration copy of the books. hftbacktest's books take `f64` prices and quantities,
//!   converted before timing; its ROI vector spans the stream's whole price range.
//! - `book/best_bid_ask/<stream>`: best bid and ask, price and quantity, of the final book.
//! - `book/depth_<x>bps/<stream>`: the quantity within ±x bps of the mid on each side; the
//!   baseline is a sum over `BTreeMap::range` of the final book's levels.
//! - `book/sync/<stream>`: the stream through `BookSync` (sequence checks, buffering, commit,
//!   cross check) from the state right after the snapshot; throughput in messages.
//!
//! After the criterion groups, the same configurations run again interleaved: every
//! configuration once per round, for [`ROUNDS`] rounds, so each median covers the same minutes of
//! a host whose speed drifts; ratios are the median of each round's own ratio to the baseline.
//!
//! The array book uses the default window, `BookConfig::DEFAULT_WINDOW_TICKS` (2^18) ticks per
//! side; `book/apply` also measures a 2^16 window.
//!
//! Machine state: numbers mean something only on a quiet host with a fixed CPU frequency
//! (performance governor, turbo off) and the bench pinned to an isolated core; on a shared
//! machine compare the books within one run (the interleaved ratios), not across runs.

use pinion_benches::median;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hftbacktest::depth::{
    BTreeMarketDepth, HashMapMarketDepth, L2MarketDepth, MarketDepth, ROIVectorMarketDepth,
};
use pinion_book::sync::{MsgIds, Verdict};
use pinion_book::{
    BookConfig, BookLevels, BookSync, Cross, L2Book, OrderBook, ReferenceBook, SequenceRule,
};
use pinion_core::{
    BpsBand, ConnId, EventFlags, EventKind, InstrumentId, InstrumentSpec, Instruments, Level,
    MarketEvent, Px, Qty, RawRecord, RecordKind, Side, Venue,
};
use pinion_feed::parse::{ConnCtx, Decoder};

const INST: InstrumentId = InstrumentId(0);

/// The narrower window the apply benchmark also measures, against the default.
const NARROW_WINDOW_TICKS: usize = 1 << 16;

/// The depth bands measured, in basis points either side of the mid.
const DEPTH_BPS: [u32; 2] = [10, 50];

/// Rounds of the interleaved comparison (the median is reported).
const ROUNDS: usize = 21;

/// One depth stream, decoded before timing.
struct Stream {
    name: &'static str,
    tick: Px,
    /// Decimals of the raw price and quantity units, for hftbacktest's `f64` books.
    price_decimals: u8,
    qty_decimals: u8,
    /// The lot size in raw quantity units.
    step: Qty,
    rule: SequenceRule,
    /// Everything up to and including the snapshot, in arrival order (what the sync machine
    /// sees before the timed part of `book/sync`).
    prelude: Vec<MarketEvent>,
    /// The snapshot's events.
    snapshot: Vec<MarketEvent>,
    /// The depth events that arrived after the snapshot (the input of `book/sync`).
    live: Vec<MarketEvent>,
    /// Exchange messages in `live`.
    n_live: u64,
    /// The depth events the sync rule applies after the snapshot, in order: the bridging ones
    /// buffered before it, then the rest (the input of `book/apply`).
    messages: Vec<MarketEvent>,
    /// Messages in `messages` that arrived before the snapshot.
    n_bridging: u64,
    /// Level updates in `messages`.
    levels: u64,
    /// Exchange messages in `messages`.
    n_messages: u64,
}

impl Stream {
    fn new(
        name: &'static str,
        spec: (Px, u8, u8, Qty),
        rule: SequenceRule,
        events: &[MarketEvent],
    ) -> Self {
        let (tick, price_decimals, qty_decimals, step) = spec;
        let mut s = Stream {
            name,
            tick,
            price_decimals,
            qty_decimals,
            step,
            rule,
            prelude: Vec::new(),
            snapshot: Vec::new(),
            live: Vec::new(),
            n_live: 0,
            messages: Vec::new(),
            n_bridging: 0,
            levels: 0,
            n_messages: 0,
        };
        let mut after_snapshot = false;
        // Every depth event in arrival order, and where the snapshot came among them.
        let mut depth = Vec::new();
        let mut before_snapshot = 0;
        for e in events {
            match e.kind {
                EventKind::Snapshot if !after_snapshot => {
                    s.snapshot.push(*e);
                    s.prelude.push(*e);
                    after_snapshot = e.is_last();
                    before_snapshot = depth.len();
                }
                EventKind::Depth if after_snapshot => {
                    s.n_live += u64::from(e.is_last());
                    s.live.push(*e);
                    depth.push(*e);
                }
                EventKind::Depth => {
                    s.prelude.push(*e);
                    depth.push(*e);
                }
                _ => {}
            }
        }
        let snapshot_id = s.snapshot.last().expect("a snapshot").last_id;
        let mut last: Option<MsgIds> = None;
        let mut take = false;
        for (i, e) in depth.iter().enumerate() {
            if e.is_first() {
                let ids = MsgIds::of(e);
                let verdict = match last {
                    None => rule.first_after_snapshot(snapshot_id, ids),
                    Some(l) => rule.next(l, ids),
                };
                take = match verdict {
                    Verdict::Apply => {
                        last = Some(ids);
                        s.n_bridging += u64::from(i < before_snapshot);
                        true
                    }
                    Verdict::Stale | Verdict::Duplicate => false,
                    Verdict::Gap { expected, got } => {
                        panic!("{name}: gap in the recording: expected {expected}, got {got}")
                    }
                };
            }
            if take {
                s.levels += u64::from(e.n_levels);
                s.n_messages += u64::from(e.is_last());
                s.messages.push(*e);
            }
        }
        s
    }

    fn price(&self, px: Px) -> f64 {
        px.0 as f64 / 10f64.powi(i32::from(self.price_decimals))
    }

    fn quantity(&self, qty: Qty) -> f64 {
        qty.0 as f64 / 10f64.powi(i32::from(self.qty_decimals))
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
        (spec.tick, spec.price_decimals, spec.qty_decimals, spec.step),
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
    Stream::new(
        "synthetic",
        (Px(1), 2, 8, Qty(1)),
        SequenceRule::BinanceSpot,
        &events,
    )
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

/// [`apply`], checking after every message that the book is neither crossed nor locked.
fn apply_checked<B: L2Book>(book: &mut B, stream: &Stream) {
    for e in &stream.messages {
        for (side, l) in e.sided_levels() {
            book.set_level(side, l.px, l.qty)
                .expect("depth levels are valid");
        }
        if e.is_last() {
            book.commit();
            assert_eq!(
                book.cross(),
                Cross::Clear,
                "{}: book {:?} / {:?} after message u={}",
                stream.name,
                book.best_bid(),
                book.best_ask(),
                e.last_id
            );
        }
    }
}

fn array_book(stream: &Stream, window_ticks: usize) -> OrderBook {
    let config = BookConfig {
        window_ticks,
        ..BookConfig::default()
    };
    let mut book = OrderBook::with_tick(stream.tick, config).expect("valid config");
    load(&mut book, &stream.snapshot);
    book
}

fn reference_book(stream: &Stream) -> ReferenceBook {
    let mut book = ReferenceBook::with_tick(stream.tick).expect("valid tick");
    load(&mut book, &stream.snapshot);
    book
}

fn assert_same_levels(name: &str, a: &impl BookLevels, b: &ReferenceBook) {
    for side in [Side::Bid, Side::Ask] {
        assert!(
            a.levels(side).eq(b.levels(side)),
            "{name}: {side:?} levels differ from the reference"
        );
    }
}

/// One level update in hftbacktest's terms, converted before timing.
#[derive(Clone, Copy)]
struct HftUpdate {
    bid: bool,
    px: f64,
    qty: f64,
}

/// The snapshot and the selected messages as hftbacktest updates, and its book settings.
struct HftInput {
    snapshot: Vec<HftUpdate>,
    messages: Vec<HftUpdate>,
    tick_size: f64,
    lot_size: f64,
    /// The range of interest of its vector book: every price the stream touches.
    roi: (f64, f64),
}

impl HftInput {
    fn new(stream: &Stream) -> Self {
        let convert = |events: &[MarketEvent]| -> Vec<HftUpdate> {
            events
                .iter()
                .flat_map(|e| e.sided_levels())
                .map(|(side, l)| HftUpdate {
                    bid: side == Side::Bid,
                    px: stream.price(l.px),
                    qty: stream.quantity(l.qty),
                })
                .collect()
        };
        let snapshot = convert(&stream.snapshot);
        let messages = convert(&stream.messages);
        let tick_size = stream.price(stream.tick);
        let (lo, hi) = snapshot
            .iter()
            .chain(&messages)
            .fold((f64::MAX, f64::MIN), |(lo, hi), u| {
                (lo.min(u.px), hi.max(u.px))
            });
        Self {
            snapshot,
            messages,
            tick_size,
            lot_size: stream.quantity(stream.step),
            roi: (lo - 8.0 * tick_size, hi + 8.0 * tick_size),
        }
    }
}

fn hft_apply<D: L2MarketDepth>(book: &mut D, updates: &[HftUpdate]) {
    for u in updates {
        if u.bid {
            book.update_bid_depth(u.px, u.qty, 0);
        } else {
            book.update_ask_depth(u.px, u.qty, 0);
        }
    }
}

fn hft_book<D: L2MarketDepth>(mut book: D, input: &HftInput) -> D {
    hft_apply(&mut book, &input.snapshot);
    hft_apply(&mut book, &input.messages);
    book
}

/// Checks an hftbacktest book against the reference: best levels, and the quantity at every
/// reference level (`qty_at` per side, by tick) plus the level count per side.
fn assert_hft_same<D: MarketDepth>(
    name: &str,
    book: &D,
    counts: (usize, usize),
    stream: &Stream,
    reference: &ReferenceBook,
) {
    let tick = |px: Px| px.0 / stream.tick.0;
    let best = |side| reference.best(side).expect("a two-sided book");
    assert_eq!(book.best_bid_tick(), tick(best(Side::Bid).px), "{name}");
    assert_eq!(book.best_ask_tick(), tick(best(Side::Ask).px), "{name}");
    assert_eq!(
        counts,
        (reference.len(Side::Bid), reference.len(Side::Ask)),
        "{name}: levels per side"
    );
    for l in reference.levels(Side::Bid) {
        assert_eq!(
            book.bid_qty_at_tick(tick(l.px)),
            stream.quantity(l.qty),
            "{name}"
        );
    }
    for l in reference.levels(Side::Ask) {
        assert_eq!(
            book.ask_qty_at_tick(tick(l.px)),
            stream.quantity(l.qty),
            "{name}"
        );
    }
}

/// Every book of one stream, each having applied the snapshot and the selected messages.
struct Books {
    array: OrderBook,
    narrow: OrderBook,
    reference: ReferenceBook,
    roi: ROIVectorMarketDepth,
    hash: HashMapMarketDepth,
    btree: BTreeMarketDepth,
    hft: HftInput,
    /// The reference's levels in plain `BTreeMap`s (price → quantity, raw units), bids and
    /// asks: the baseline for depth within a band.
    maps: (BTreeMap<i64, i64>, BTreeMap<i64, i64>),
}

/// Builds every book, checking the selection against `BookSync` and the books against each
/// other.
fn books(stream: &Stream) -> Books {
    let mut array = array_book(stream, BookConfig::DEFAULT_WINDOW_TICKS);
    let mut narrow = array_book(stream, NARROW_WINDOW_TICKS);
    let mut reference = reference_book(stream);
    apply_checked(&mut array, stream);
    apply_checked(&mut narrow, stream);
    apply_checked(&mut reference, stream);
    // The engine's sync machine, fed the recording in arrival order, ends with the same book.
    let mut sync = ready(reference_book(stream), stream);
    run_sync(&mut sync, &stream.live);
    assert_eq!(sync.counters().gaps, 0, "{}: gaps", stream.name);
    assert_same_levels(stream.name, sync.book(), &reference);
    assert_same_levels("array", &array, &reference);
    assert_same_levels("array_window_2p16", &narrow, &reference);

    let hft = HftInput::new(stream);
    let roi = hft_book(
        ROIVectorMarketDepth::new(hft.tick_size, hft.lot_size, hft.roi.0, hft.roi.1),
        &hft,
    );
    let nonzero = |v: &[f64]| v.iter().filter(|&&q| q > 0.0).count();
    let counts = (nonzero(roi.bid_depth()), nonzero(roi.ask_depth()));
    assert_hft_same("hft_roivector", &roi, counts, stream, &reference);
    let hash = hft_book(HashMapMarketDepth::new(hft.tick_size, hft.lot_size), &hft);
    let counts = (hash.bid_depth.len(), hash.ask_depth.len());
    assert_hft_same("hft_hashmap", &hash, counts, stream, &reference);
    let btree = hft_book(BTreeMarketDepth::new(hft.tick_size, hft.lot_size), &hft);
    let counts = (btree.bid_depth.len(), btree.ask_depth.len());
    assert_hft_same("hft_btree", &btree, counts, stream, &reference);

    let map = |side| reference.levels(side).map(|l| (l.px.0, l.qty.0)).collect();
    let maps = (map(Side::Bid), map(Side::Ask));
    eprintln!(
        "book bench: {}: levels in the overflow at the end (bids, asks): window 2^18 {:?}, 2^16 {:?}",
        stream.name,
        array.stats().in_overflow,
        narrow.stats().in_overflow
    );
    Books {
        array,
        narrow,
        reference,
        roi,
        hash,
        btree,
        hft,
        maps,
    }
}

/// The price band within `bps` of the mid `m2 / 2` as `i64` bounds: the lowest bid price and
/// the highest ask price that count ([`BpsBand`], the definition every book answers to).
fn band(m2: i64, bps: u32) -> (i64, i64) {
    let b = BpsBand::around(m2, bps);
    (b.lo as i64, b.hi as i64)
}

/// Depth within `bps` of the mid summed over `BTreeMap::range`: the baseline.
fn btreemap_depth(maps: &(BTreeMap<i64, i64>, BTreeMap<i64, i64>), bps: u32) -> (Qty, Qty) {
    let (bids, asks) = maps;
    let (Some((&b, _)), Some((&a, _))) = (bids.last_key_value(), asks.first_key_value()) else {
        return (Qty::ZERO, Qty::ZERO);
    };
    let (lo, hi) = band(a + b, bps);
    (
        Qty(bids.range(lo..).map(|(_, q)| q).sum()),
        Qty(asks.range(..=hi).map(|(_, q)| q).sum()),
    )
}

/// Depth within `bps` of the mid from hftbacktest's vector book: a slice sum per side.
fn roi_depth(book: &ROIVectorMarketDepth, bps: u32) -> (f64, f64) {
    let (b, a) = (book.best_bid_tick(), book.best_ask_tick());
    let (lo, hi) = band(a + b, bps);
    let (roi_lb, roi_ub) = book.roi_tick();
    let index = |t: i64| (t.clamp(roi_lb, roi_ub) - roi_lb) as usize;
    (
        book.bid_depth()[index(lo)..=index(b)].iter().sum(),
        book.ask_depth()[index(a)..=index(hi)].iter().sum(),
    )
}

fn bench_apply(c: &mut Criterion, stream: &Stream, books: &mut Books) {
    let messages = &stream.messages;
    let updates = &books.hft.messages;
    let mut g = c.benchmark_group(format!("book/apply/{}", stream.name));
    g.throughput(Throughput::Elements(stream.levels));
    g.bench_function("array", |b| {
        b.iter(|| apply(&mut books.array, black_box(messages)))
    });
    // The same book with a 4x narrower window: more levels in the sorted overflow, whose
    // inserts and removals shift memory, against a smaller array.
    g.bench_function("array_window_2p16", |b| {
        b.iter(|| apply(&mut books.narrow, black_box(messages)))
    });
    g.bench_function("btreemap", |b| {
        b.iter(|| apply(&mut books.reference, black_box(messages)))
    });
    g.bench_function("hft_roivector", |b| {
        b.iter(|| hft_apply(&mut books.roi, black_box(updates)))
    });
    g.bench_function("hft_hashmap", |b| {
        b.iter(|| hft_apply(&mut books.hash, black_box(updates)))
    });
    g.bench_function("hft_btree", |b| {
        b.iter(|| hft_apply(&mut books.btree, black_box(updates)))
    });
    g.finish();
}

fn hft_best<D: MarketDepth>(book: &D) -> (f64, f64, f64, f64) {
    (
        book.best_bid(),
        book.best_bid_qty(),
        book.best_ask(),
        book.best_ask_qty(),
    )
}

fn bench_best(c: &mut Criterion, stream: &Stream, books: &Books) {
    let mut g = c.benchmark_group(format!("book/best_bid_ask/{}", stream.name));
    g.bench_function("array", |b| {
        b.iter(|| {
            let book = black_box(&books.array);
            (book.best_bid(), book.best_ask())
        })
    });
    g.bench_function("btreemap", |b| {
        b.iter(|| {
            let book = black_box(&books.reference);
            (book.best_bid(), book.best_ask())
        })
    });
    g.bench_function("hft_roivector", |b| {
        b.iter(|| hft_best(black_box(&books.roi)))
    });
    g.bench_function("hft_hashmap", |b| {
        b.iter(|| hft_best(black_box(&books.hash)))
    });
    g.bench_function("hft_btree", |b| {
        b.iter(|| hft_best(black_box(&books.btree)))
    });
    g.finish();
}

fn bench_depth(c: &mut Criterion, stream: &Stream, books: &Books, bps: u32) {
    let want = books.reference.depth_within_bps(bps);
    assert_eq!(books.array.depth_within_bps(bps), want, "{}", stream.name);
    assert_eq!(btreemap_depth(&books.maps, bps), want, "{}", stream.name);
    let (rb, ra) = roi_depth(&books.roi, bps);
    let close = |x: f64, q: Qty| (x - stream.quantity(q)).abs() <= 1e-9 * x.abs().max(1.0);
    assert!(close(rb, want.0) && close(ra, want.1), "{}", stream.name);
    let mut g = c.benchmark_group(format!("book/depth_{bps}bps/{}", stream.name));
    g.bench_function("array", |b| {
        b.iter(|| black_box(&books.array).depth_within_bps(black_box(bps)))
    });
    g.bench_function("btreemap_range", |b| {
        b.iter(|| btreemap_depth(black_box(&books.maps), black_box(bps)))
    });
    g.bench_function("reference_levels", |b| {
        b.iter(|| black_box(&books.reference).depth_within_bps(black_box(bps)))
    });
    g.bench_function("hft_roivector_slice", |b| {
        b.iter(|| roi_depth(black_box(&books.roi), black_box(bps)))
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
    g.throughput(Throughput::Elements(stream.n_live));
    g.bench_function("array", |b| {
        b.iter_batched_ref(
            || arr.clone(),
            |s| run_sync(s, black_box(&stream.live)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("btreemap", |b| {
        b.iter_batched_ref(
            || reference.clone(),
            |s| run_sync(s, black_box(&stream.live)),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// One configuration of an interleaved comparison: its name and one pass of the work.
struct Contender<'a> {
    name: &'static str,
    pass: Box<dyn FnMut() + 'a>,
}

impl<'a> Contender<'a> {
    fn new(name: &'static str, pass: impl FnMut() + 'a) -> Self {
        Self {
            name,
            pass: Box::new(pass),
        }
    }
}

/// Runs every contender once per round, the starting one rotating, and prints per contender
/// the median time per unit and the median of each round's ratio to `contenders[0]`.
fn interleaved(
    title: &str,
    units: u64,
    unit: &str,
    rounds: usize,
    contenders: &mut [Contender<'_>],
) {
    // Repetitions per timing, so one timing lasts about 2 ms.
    let reps: Vec<u32> = contenders
        .iter_mut()
        .map(|c| {
            let t = Instant::now();
            (c.pass)();
            let ns = t.elapsed().as_nanos().max(1);
            (2_000_000 / ns).clamp(1, 1_000_000) as u32
        })
        .collect();
    let n = contenders.len();
    let mut times = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for j in 0..n {
            let i = (round + j) % n;
            let c = &mut contenders[i];
            let t = Instant::now();
            for _ in 0..reps[i] {
                (c.pass)();
            }
            let ns = t.elapsed().as_nanos() as f64;
            times[i].push(ns / (f64::from(reps[i]) * units as f64));
        }
    }
    eprintln!(
        "{title} (interleaved, median of {rounds} rounds; ratio = median of the rounds' ratios to {})",
        contenders[0].name
    );
    for (c, t) in contenders.iter().zip(&times) {
        let ratio = median(t.iter().zip(&times[0]).map(|(x, b)| x / b).collect());
        eprintln!(
            "  {:<22} {:>10.2} ns/{unit}  ratio {:>6.3}",
            c.name,
            median(t.clone()),
            ratio
        );
    }
}

fn interleaved_comparisons(stream: &Stream, books: &mut Books, rounds: usize) {
    let name = stream.name;
    let messages = &stream.messages;
    let Books {
        array,
        narrow,
        reference,
        roi,
        hash,
        btree,
        hft,
        maps,
    } = books;
    let updates = &hft.messages;
    interleaved(
        &format!("book/apply/{name}"),
        stream.levels,
        "level",
        rounds,
        &mut [
            Contender::new("hft_roivector", || hft_apply(roi, black_box(updates))),
            Contender::new("array", || apply(array, black_box(messages))),
            Contender::new("array_window_2p16", || apply(narrow, black_box(messages))),
            Contender::new("btreemap", || apply(reference, black_box(messages))),
            Contender::new("hft_hashmap", || hft_apply(hash, black_box(updates))),
            Contender::new("hft_btree", || hft_apply(btree, black_box(updates))),
        ],
    );
    // Reads: 1000 a pass, so a pass is long enough to time.
    const READS: u64 = 1000;
    let (array, reference, roi, hash, btree) = (&*array, &*reference, &*roi, &*hash, &*btree);
    interleaved(
        &format!("book/best_bid_ask/{name}"),
        READS,
        "read",
        rounds,
        &mut [
            Contender::new("hft_roivector", || {
                for _ in 0..READS {
                    black_box(hft_best(black_box(roi)));
                }
            }),
            Contender::new("array", || {
                for _ in 0..READS {
                    let b = black_box(array);
                    black_box((b.best_bid(), b.best_ask()));
                }
            }),
            Contender::new("btreemap", || {
                for _ in 0..READS {
                    let b = black_box(reference);
                    black_box((b.best_bid(), b.best_ask()));
                }
            }),
            Contender::new("hft_hashmap", || {
                for _ in 0..READS {
                    black_box(hft_best(black_box(hash)));
                }
            }),
            Contender::new("hft_btree", || {
                for _ in 0..READS {
                    black_box(hft_best(black_box(btree)));
                }
            }),
        ],
    );
    for bps in DEPTH_BPS {
        interleaved(
            &format!("book/depth_{bps}bps/{name}"),
            READS,
            "query",
            rounds,
            &mut [
                Contender::new("btreemap_range", || {
                    for _ in 0..READS {
                        black_box(btreemap_depth(black_box(maps), black_box(bps)));
                    }
                }),
                Contender::new("array", || {
                    for _ in 0..READS {
                        black_box(black_box(array).depth_within_bps(black_box(bps)));
                    }
                }),
                Contender::new("reference_levels", || {
                    for _ in 0..READS {
                        black_box(black_box(reference).depth_within_bps(black_box(bps)));
                    }
                }),
                Contender::new("hft_roivector_slice", || {
                    for _ in 0..READS {
                        black_box(roi_depth(black_box(roi), black_box(bps)));
                    }
                }),
            ],
        );
    }
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
    // `cargo bench` passes `--bench`; `cargo test --benches` does not and must stay quick.
    let rounds = if std::env::args().any(|a| a == "--bench") {
        ROUNDS
    } else {
        1
    };
    let mut all = Vec::new();
    for stream in &streams {
        eprintln!(
            "book bench: {}: {} messages ({} bridging the snapshot), {} level updates after a \
             {}-event snapshot; window {} ticks per side",
            stream.name,
            stream.n_messages,
            stream.n_bridging,
            stream.levels,
            stream.snapshot.len(),
            BookConfig::DEFAULT_WINDOW_TICKS
        );
        let mut books = books(stream);
        bench_apply(c, stream, &mut books);
        bench_best(c, stream, &books);
        for bps in DEPTH_BPS {
            bench_depth(c, stream, &books, bps);
        }
        bench_sync(c, stream);
        all.push(books);
    }
    for (stream, books) in streams.iter().zip(&mut all) {
        interleaved_comparisons(stream, books, rounds);
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
