//! The synthetic market checked from the outside, the way a subscriber sees it: every frame is
//! parsed with `serde_json`, the book is rebuilt independently in `BTreeMap`s from the snapshot
//! and the diffs, and the stream is held to Binance Spot's rules.

use std::collections::BTreeMap;

use pinion_core::{InstrumentSpec, Px, Qty, RecordKind, Venue};
use pinion_feed::FrameSource;
use pinion_feed::synth::{SynthConfig, SynthError, SynthMarket};
use serde_json::Value;

// ---- allocation counting (this thread only, so parallel tests do not interfere) ----------

#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

// ---- helpers ----------------------------------------------------------------------------

fn config(seed: u64, messages: u64) -> SynthConfig {
    SynthConfig {
        seed,
        messages,
        ..SynthConfig::default()
    }
}

/// One record, owned: kind, receive time, meta and payload.
type OwnedRecord = (RecordKind, u64, Vec<u8>, Vec<u8>);

/// Every record of a run.
fn collect(cfg: SynthConfig) -> Vec<OwnedRecord> {
    let mut m = SynthMarket::new(cfg).expect("valid config");
    let mut out = Vec::new();
    while let Some(r) = m.next_record().expect("synthetic source never fails") {
        out.push((r.kind, r.t_recv, r.meta.to_vec(), r.payload.to_vec()));
    }
    out
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not an unsigned integer in {v}"))
}

/// A price as the wire writes it: eight decimals, parsed exactly at the spec's scale.
fn px(spec: &InstrumentSpec, text: &str) -> Px {
    assert_eq!(text.split('.').nth(1).map(str::len), Some(8), "{text}");
    spec.px(text.as_bytes()).expect("price on the tick grid")
}

/// A quantity as the wire writes it.
fn qty(spec: &InstrumentSpec, text: &str) -> Qty {
    assert_eq!(text.split('.').nth(1).map(str::len), Some(8), "{text}");
    spec.qty(text.as_bytes())
        .expect("quantity on the step grid")
}

/// An independent reference book: price → quantity per side.
#[derive(Default)]
struct RefBook {
    bids: BTreeMap<Px, Qty>,
    asks: BTreeMap<Px, Qty>,
}

impl RefBook {
    fn apply(&mut self, spec: &InstrumentSpec, levels: &Value, bid: bool) {
        let side = if bid { &mut self.bids } else { &mut self.asks };
        for l in levels.as_array().expect("levels array") {
            let p = px(spec, l[0].as_str().expect("price string"));
            let q = qty(spec, l[1].as_str().expect("qty string"));
            assert_eq!(p.0 % spec.tick.0, 0, "price off the tick grid");
            assert_eq!(q.0 % spec.step.0, 0, "quantity off the step grid");
            if q.is_zero() {
                side.remove(&p);
            } else {
                side.insert(p, q);
            }
        }
    }

    fn best_bid(&self) -> Option<(Px, Qty)> {
        self.bids.iter().next_back().map(|(p, q)| (*p, *q))
    }

    fn best_ask(&self) -> Option<(Px, Qty)> {
        self.asks.iter().next().map(|(p, q)| (*p, *q))
    }
}

/// What [`check_stream`] saw.
#[derive(Debug, Default)]
struct Tally {
    diffs: u64,
    tickers: u64,
    tickers_checked: u64,
    trades: u64,
    min_mid: i64,
    max_mid: i64,
}

/// Replays a whole run through the reference book, asserting every rule on the way. With
/// `depth_band_pct`, each side must also stay within that many percent of the configured depth.
fn check_stream(cfg: SynthConfig, depth_band_pct: Option<usize>) -> Tally {
    let spec = cfg.instrument_spec().expect("spec");
    let lower = cfg.symbol.to_ascii_lowercase();
    let messages = cfg.messages;
    let levels = cfg.levels;
    let mut m = SynthMarket::new(cfg).expect("valid config");
    assert_eq!(m.connections().len(), 1);
    assert_eq!(m.connections()[0].venue, Some(Venue::BinanceSpot));

    let first = m.next_record().unwrap().expect("connect record");
    assert_eq!(first.kind, RecordKind::Connect);
    let url = std::str::from_utf8(first.meta).unwrap().to_owned();
    assert!(
        url.starts_with("wss://stream.binance.com:9443/stream?streams="),
        "{url}"
    );
    assert_eq!(Venue::from_url(&url), Some(Venue::BinanceSpot));
    let mut last_t = first.t_recv;

    let snap = m.next_record().unwrap().expect("snapshot record");
    assert_eq!(snap.kind, RecordKind::RestSnapshot);
    assert!(snap.t_recv > last_t);
    last_t = snap.t_recv;
    let snap: Value = serde_json::from_slice(snap.payload).expect("snapshot is JSON");
    let mut book = RefBook::default();
    book.apply(&spec, &snap["bids"], true);
    book.apply(&spec, &snap["asks"], false);
    assert_eq!(book.bids.len(), levels);
    assert_eq!(book.asks.len(), levels);
    let mut last_u = n(&snap, "lastUpdateId");

    let mut tally = Tally {
        min_mid: i64::MAX,
        max_mid: i64::MIN,
        ..Tally::default()
    };
    let mut last_ticker_u = 0;
    let mut last_trade_id = None;
    let mut frames = 0;
    let depth_stream = format!("{lower}@depth@100ms");
    let ticker_stream = format!("{lower}@bookTicker");
    let trade_stream = format!("{lower}@trade");
    while let Some(r) = m.next_record().unwrap() {
        assert_eq!(r.kind, RecordKind::Frame);
        assert!(r.t_recv > last_t, "t_recv must strictly increase");
        last_t = r.t_recv;
        frames += 1;
        let v: Value = serde_json::from_slice(r.payload).unwrap_or_else(|e| {
            panic!(
                "frame {frames} is not JSON ({e}): {}",
                String::from_utf8_lossy(r.payload)
            )
        });
        let stream = s(&v, "stream");
        let data = &v["data"];
        assert_eq!(s(data, "s"), spec.symbol.as_str());
        if stream == depth_stream {
            assert_eq!(s(data, "e"), "depthUpdate");
            let (first_id, final_id) = (n(data, "U"), n(data, "u"));
            assert_eq!(first_id, last_u + 1, "U must follow the previous u");
            assert!(final_id >= first_id);
            assert!(n(data, "E") * 1_000_000 <= r.t_recv);
            book.apply(&spec, &data["b"], true);
            book.apply(&spec, &data["a"], false);
            last_u = final_id;
            tally.diffs += 1;
            let (Some((b, _)), Some((a, _))) = (book.best_bid(), book.best_ask()) else {
                panic!("a side of the book is empty after diff u={final_id}");
            };
            assert!(
                b < a,
                "crossed book after diff u={final_id}: {b:?} >= {a:?}"
            );
            let mid = (b.0 + a.0) / 2;
            tally.min_mid = tally.min_mid.min(mid);
            tally.max_mid = tally.max_mid.max(mid);
            let depth_ok = |len: usize| {
                depth_band_pct.is_none_or(|pct| len * 100 >= levels * (100 - pct))
                    && depth_band_pct.is_none_or(|pct| len * 100 <= levels * (100 + pct))
            };
            assert!(
                depth_ok(book.bids.len()) && depth_ok(book.asks.len()),
                "depth out of band: {} bids, {} asks",
                book.bids.len(),
                book.asks.len()
            );
        } else if stream == ticker_stream {
            assert!(data.get("e").is_none(), "spot bookTicker has no e");
            let u = n(data, "u");
            assert!(
                u >= last_u,
                "a ticker never reports a state older than the last diff"
            );
            assert!(u > last_ticker_u, "ticker ids increase");
            last_ticker_u = u;
            let bid = (px(&spec, s(data, "b")), qty(&spec, s(data, "B")));
            let ask = (px(&spec, s(data, "a")), qty(&spec, s(data, "A")));
            assert!(bid.0 < ask.0, "crossed ticker");
            if u == last_u {
                assert_eq!(book.best_bid(), Some(bid), "ticker u={u} bid");
                assert_eq!(book.best_ask(), Some(ask), "ticker u={u} ask");
                tally.tickers_checked += 1;
            }
            tally.tickers += 1;
        } else if stream == trade_stream {
            assert_eq!(s(data, "e"), "trade");
            let id = n(data, "t");
            if let Some(prev) = last_trade_id {
                assert_eq!(id, prev + 1, "trade ids are consecutive");
            }
            last_trade_id = Some(id);
            assert!(n(data, "T") <= n(data, "E"));
            assert!(qty(&spec, s(data, "q")).0 > 0);
            assert!(px(&spec, s(data, "p")).0 > 0);
            assert!(data["m"].is_boolean() && data["M"].is_boolean());
            tally.trades += 1;
        } else {
            panic!("unexpected stream {stream}");
        }
    }
    assert_eq!(frames, messages);
    tally
}

// ---- tests ------------------------------------------------------------------------------

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_differs() {
    let a = collect(config(11, 5_000));
    for r in &a[2..8] {
        eprintln!("{} {}", r.1, String::from_utf8_lossy(&r.3));
    }
    let b = collect(config(11, 5_000));
    let c = collect(config(12, 5_000));
    assert_eq!(a.len(), 5_002);
    assert_eq!(a, b);
    assert_eq!(c.len(), a.len());
    // The snapshot and the stream both depend on the seed.
    assert_ne!(a[1].3, c[1].3);
    assert_ne!(a[2..], c[2..]);
}

#[test]
fn stream_follows_binance_spot_rules_against_a_rebuilt_book() {
    let t = check_stream(config(1, 60_000), Some(20));
    eprintln!("{t:?}");
    assert!(t.diffs > 1_000, "{t:?}");
    assert!(t.trades > 1_000, "{t:?}");
    // Tickers whose id matches the last diff are where the book can be checked; there must be
    // many of them for the check to mean something.
    assert!(t.tickers_checked > 500, "{t:?}");
    // A message mix close to the real recording: tickers the majority, then trades, then diffs.
    let total = (t.diffs + t.tickers + t.trades) as f64;
    let ticker_share = t.tickers as f64 / total;
    assert!((0.5..0.85).contains(&ticker_share), "{t:?}");
    assert!(t.trades > t.diffs, "{t:?}");
    // The mid moves, but stays a plausible price: within 5 % of the start (61837.63).
    assert!(t.max_mid > t.min_mid, "{t:?}");
    assert!(t.min_mid > 5_874_574 && t.max_mid < 6_492_951, "{t:?}");
}

#[test]
fn other_instruments_and_settings_keep_the_rules() {
    // A finer price scale, few levels, very frequent trades and a jumpy fair price.
    let cfg = SynthConfig {
        seed: 99,
        symbol: "ETHBTC".to_owned(),
        messages: 20_000,
        tick_size: "0.00001".to_owned(),
        step_size: "0.0001".to_owned(),
        start_price: "0.05321".to_owned(),
        levels: 20,
        trade_prob: 0.5,
        mid_step_prob: 0.3,
        mid_step_max_ticks: 6,
        max_level_gap_ticks: 2,
        updates_per_diff: 5,
        ticker_every: 1,
        level_qty: "1.5".to_owned(),
        trade_qty: "0.3".to_owned(),
        ..SynthConfig::default()
    };
    // The book is only 20 levels deep and the fair price runs through it, so depth is not
    // held to a band here; everything else is.
    let t = check_stream(cfg, None);
    assert!(t.tickers_checked > 100, "{t:?}");
}

#[test]
fn bad_configs_are_typed_errors() {
    let bad = |f: fn(&mut SynthConfig)| {
        let mut c = SynthConfig::default();
        f(&mut c);
        SynthMarket::new(c).err()
    };
    assert!(matches!(
        bad(|c| c.tick_size = "0".to_owned()),
        Some(SynthError::Instrument(_))
    ));
    assert!(matches!(
        bad(|c| c.start_price = "61837.635".to_owned()),
        Some(SynthError::Decimal {
            field: "start_price",
            ..
        })
    ));
    assert!(matches!(
        bad(|c| c.levels = 1),
        Some(SynthError::OutOfRange {
            field: "levels",
            ..
        })
    ));
    assert!(matches!(
        bad(|c| c.start_price = "1.00".to_owned()),
        Some(SynthError::OutOfRange {
            field: "start_price",
            ..
        })
    ));
    assert!(matches!(
        bad(|c| c.trade_prob = 1.0),
        Some(SynthError::OutOfRange {
            field: "trade_prob",
            ..
        })
    ));
    assert!(bad(|_| {}).is_none());
}

#[test]
fn instrument_spec_matches_the_frames() {
    let cfg = SynthConfig::default();
    let spec = cfg.instrument_spec().unwrap();
    assert_eq!(spec.symbol.as_str(), "BTCUSDT");
    assert_eq!((spec.price_decimals, spec.qty_decimals), (2, 5));
    let m = SynthMarket::new(cfg).unwrap();
    assert_eq!(m.spec(), &spec);
}

#[test]
fn steady_state_generation_allocates_nothing() {
    let mut m = SynthMarket::new(config(5, 250_000)).unwrap();
    let mut bytes = 0usize;
    // Warm-up: the snapshot (the largest record) and a stretch of stream.
    for _ in 0..2_000 {
        bytes += m.next_record().unwrap().map_or(0, |r| r.payload.len());
    }
    let before = pinion_testkit::alloc::thread_allocations();
    let mut frames = 0u64;
    while let Some(r) = m.next_record().unwrap() {
        bytes += r.payload.len();
        frames += 1;
    }
    let allocations = pinion_testkit::alloc::thread_allocations() - before;
    assert_eq!(frames, 250_000 - 1_998);
    assert!(bytes > 0);
    assert_eq!(
        allocations, 0,
        "allocations while generating {frames} frames"
    );
}
