//! Decodes every message of the real recordings and checks the counts in
//! `shared/data/README.md`, the split of the REST snapshots, and every depth update's ids and
//! levels against an independent reading of the same line with `serde_json`.

use std::io::{BufRead, BufReader};
use std::path::Path;

use pinion_core::{
    ConnId, EventKind, InstrumentId, InstrumentSpec, Instruments, Level, MarketEvent, Px, Qty,
    RawRecord, RecordKind, Venue,
};
use pinion_feed::parse::{ConnCtx, DecodeStats, Decoded, Decoder};

/// `(receive time, JSON)` of every line of an hbt recording.
fn hbt_lines(path: &Path) -> Vec<(u64, String)> {
    let file = std::fs::File::open(path).expect("open recording");
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    reader
        .lines()
        .map(|line| {
            let line = line.expect("read line");
            let (t, json) = line.split_once(' ').expect("`<ns> <json>` line");
            (t.parse().expect("receive time"), json.to_owned())
        })
        .collect()
}

/// In an hbt recording the REST snapshot is the one line that is not a stream envelope.
fn hbt_kind(json: &str) -> RecordKind {
    if json.starts_with(r#"{"stream""#) {
        RecordKind::Frame
    } else {
        RecordKind::RestSnapshot
    }
}

/// Levels of a `[[px, qty], …]` array read with serde_json, at the instrument's scale.
fn serde_levels(v: &serde_json::Value, spec: &InstrumentSpec) -> Vec<Level> {
    v.as_array()
        .expect("level array")
        .iter()
        .map(|pair| {
            let px = pair[0].as_str().expect("price string");
            let qty = pair[1].as_str().expect("qty string");
            Level {
                px: spec.px(px.as_bytes()).expect("price"),
                qty: spec.qty(qty.as_bytes()).expect("qty"),
            }
        })
        .collect()
}

/// The events of one message, joined back: header of the first, all bids, all asks.
struct Message {
    first: MarketEvent,
    events: usize,
    bids: Vec<Level>,
    asks: Vec<Level>,
}

fn join(events: &[MarketEvent]) -> Message {
    assert!(events[0].is_first(), "first event lacks FIRST");
    assert!(events[events.len() - 1].is_last(), "last event lacks LAST");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.is_first(), i == 0);
        assert_eq!(e.is_last(), i == events.len() - 1);
        assert_eq!(
            (e.first_id, e.last_id, e.prev_id, e.seq, e.exch_ts, e.kind),
            (
                events[0].first_id,
                events[0].last_id,
                events[0].prev_id,
                events[0].seq,
                events[0].exch_ts,
                events[0].kind
            ),
            "split events must share the header"
        );
    }
    Message {
        first: events[0],
        events: events.len(),
        bids: events.iter().flat_map(|e| e.bids().to_vec()).collect(),
        asks: events.iter().flat_map(|e| e.asks().to_vec()).collect(),
    }
}

struct BinanceRun {
    stats: DecodeStats,
    snapshot: Option<Message>,
    depth_checked: usize,
    first_depth: Option<Message>,
    emitted: u64,
}

/// Decodes a whole Binance hbt recording; checks every depth update against serde_json.
fn run_binance(path: &Path, venue: Venue, tick: &str, step: &str) -> BinanceRun {
    let spec = InstrumentSpec::new(venue, "BTCUSDT", tick, step).expect("spec");
    let mut reg = Instruments::new();
    let id = reg.add(spec.clone()).expect("register");
    let mut dec = Decoder::new(reg);
    // The hbt snapshot line has no request URL: the connection knows the instrument.
    let ctx = ConnCtx {
        venue,
        default_instrument: Some(id),
    };
    let mut run = BinanceRun {
        stats: DecodeStats::default(),
        snapshot: None,
        depth_checked: 0,
        first_depth: None,
        emitted: 0,
    };
    let mut events = Vec::new();
    for (t_recv, json) in hbt_lines(path) {
        let rec = RawRecord {
            t_recv,
            conn: ConnId(1),
            kind: hbt_kind(&json),
            meta: b"",
            payload: json.as_bytes(),
        };
        events.clear();
        let res = dec.decode(&ctx, &rec, 5, |e| events.push(*e));
        let n = match res {
            Ok(Decoded::Events(n)) => n as usize,
            other => panic!("{other:?} for {json}"),
        };
        assert_eq!(n, events.len());
        run.emitted += n as u64;
        assert!(
            events
                .iter()
                .all(|e| e.t_recv == t_recv && e.t0 == 5 && e.instrument == InstrumentId(0))
        );
        let msg = join(&events);
        match msg.first.kind {
            EventKind::Snapshot => run.snapshot = Some(msg),
            EventKind::Depth => {
                let v: serde_json::Value = serde_json::from_str(&json).expect("serde_json");
                let d = &v["data"];
                assert_eq!(msg.first.first_id, d["U"].as_u64().expect("U"));
                assert_eq!(msg.first.last_id, d["u"].as_u64().expect("u"));
                assert_eq!(msg.first.prev_id, d["pu"].as_u64().unwrap_or(0));
                assert_eq!(msg.first.exch_ts, d["E"].as_u64().expect("E") * 1_000_000);
                assert_eq!(msg.bids, serde_levels(&d["b"], &spec));
                assert_eq!(msg.asks, serde_levels(&d["a"], &spec));
                run.depth_checked += 1;
                if run.first_depth.is_none() {
                    run.first_depth = Some(msg);
                }
            }
            _ => {}
        }
    }
    run.stats = *dec.stats();
    run
}

#[test]
fn binance_spot_recording() {
    let Some(path) = pinion_testkit::data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    // Quantities use BTC's asset precision (8 decimals), not the 0.00001 lot step: three depth
    // updates in this recording carry 6-decimal quantities (`"25.42618900"`), which the book
    // must hold exactly even though no order could be placed at that size.
    let run = run_binance(&path, Venue::BinanceSpot, "0.01", "0.00000001");
    let m = run.stats.messages;
    assert_eq!(
        (
            m.depth,
            m.book_ticker,
            m.trade,
            m.snapshot,
            m.agg_trade,
            m.partial_depth
        ),
        (3_451, 28_040, 9_757, 1, 0, 0)
    );
    assert_eq!(m.total(), 41_249);
    assert_eq!(run.stats.errors.total(), 0);
    assert_eq!(run.stats.skipped.total(), 0);
    assert_eq!(run.depth_checked, 3_451);

    // The first line: U, u, E and levels as written in the recording.
    let first = run.first_depth.expect("a depth update");
    assert_eq!(first.first.first_id, 50_093_239_189);
    assert_eq!(first.first.last_id, 50_093_239_202);
    assert_eq!(first.first.exch_ts, 1_723_161_255_208_000_000);
    assert_eq!(first.first.t_recv, 1_723_161_253_937_085_768);
    assert_eq!((first.bids.len(), first.asks.len()), (3, 9));
    assert_eq!(
        first.bids[0],
        Level {
            px: Px(6_173_763),
            qty: Qty(0)
        }
    );
    assert_eq!(
        first.asks[0],
        Level {
            px: Px(6_183_764),
            qty: Qty(154_698_000)
        }
    );
    assert_eq!(
        first.asks[8],
        Level {
            px: Px(6_193_764),
            qty: Qty(2_000_000)
        }
    );

    // The 1000 + 1000 level snapshot is 72 events (71 × 28 + 12).
    let snap = run.snapshot.expect("the snapshot");
    assert_eq!(snap.first.last_id, 50_093_239_218);
    assert_eq!(snap.events, 72);
    assert_eq!((snap.bids.len(), snap.asks.len()), (1000, 1000));
    assert_eq!(
        snap.bids[0],
        Level {
            px: Px(6_183_763),
            qty: Qty(378_826_000)
        }
    );
    assert_eq!(
        snap.asks[999],
        Level {
            px: Px(6_205_318),
            qty: Qty(10_000)
        }
    );
    assert_eq!(run.stats.events, run.emitted);
    // Busy depth updates (more than 28 levels) were split too.
    assert!(run.emitted > 41_248 + 72);
}

#[test]
fn binance_usdm_recording() {
    let Some(path) = pinion_testkit::data::require("binance/usdm-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let run = run_binance(&path, Venue::BinanceUsdm, "0.10", "0.001");
    let m = run.stats.messages;
    assert_eq!(
        (m.depth, m.book_ticker, m.trade, m.snapshot),
        (6_551, 66_089, 21_313, 1)
    );
    assert_eq!(m.total(), 93_954);
    assert_eq!(run.stats.errors.total(), 0);
    assert_eq!(run.stats.skipped.total(), 0);
    assert_eq!(run.depth_checked, 6_551);

    let first = run.first_depth.expect("a depth update");
    assert_eq!(
        (
            first.first.first_id,
            first.first.last_id,
            first.first.prev_id
        ),
        (5_123_107_832_006, 5_123_107_837_557, 5_123_107_831_937)
    );
    assert_eq!(first.first.trans_ts, 1_723_161_256_298_000_000);
    assert_eq!(
        first.bids[0],
        Level {
            px: Px(587_102),
            qty: Qty(14)
        }
    );

    let snap = run.snapshot.expect("the snapshot");
    assert_eq!(snap.first.last_id, 5_123_107_852_948);
    assert_eq!(
        (snap.first.exch_ts, snap.first.trans_ts),
        (1_723_161_256_501_000_000, 1_723_161_256_493_000_000)
    );
    assert_eq!((snap.bids.len(), snap.asks.len()), (1000, 1000));
    assert_eq!(
        snap.bids[0],
        Level {
            px: Px(618_002),
            qty: Qty(2_909)
        }
    );
    assert_eq!(
        snap.asks[999],
        Level {
            px: Px(619_762),
            qty: Qty(2)
        }
    );
}

/// Instrument specs from the recording's own `instruments-info` responses: linear
/// `tickSize`/`qtyStep`, spot `tickSize`/`basePrecision`.
fn bybit_instruments(lines: &[serde_json::Value]) -> Instruments {
    let mut reg = Instruments::new();
    for line in lines.iter().filter(|l| l["t"] == "http") {
        let body: serde_json::Value =
            serde_json::from_str(line["data"].as_str().expect("data")).expect("body");
        let (venue, step_key) = match body["result"]["category"].as_str() {
            Some("linear") => (Venue::BybitLinear, "qtyStep"),
            Some("spot") => (Venue::BybitSpot, "basePrecision"),
            other => panic!("unexpected category {other:?}"),
        };
        for item in body["result"]["list"].as_array().expect("list") {
            let symbol = item["symbol"].as_str().expect("symbol");
            if !["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"].contains(&symbol) {
                continue;
            }
            let tick = item["priceFilter"]["tickSize"].as_str().expect("tickSize");
            let step = item["lotSizeFilter"][step_key].as_str().expect("step");
            reg.add(InstrumentSpec::new(venue, symbol, tick, step).expect("spec"))
                .expect("register");
        }
    }
    reg
}

#[test]
fn bybit_recording() {
    let Some(path) =
        pinion_testkit::data::require("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst")
    else {
        return;
    };
    let file = std::fs::File::open(path).expect("open recording");
    let reader = BufReader::new(zstd::Decoder::new(file).expect("zstd"));
    let lines: Vec<serde_json::Value> = reader
        .lines()
        .map(|l| serde_json::from_str(&l.expect("line")).expect("json line"))
        .collect();
    let reg = bybit_instruments(&lines);
    assert_eq!(reg.len(), 8);
    let mut dec = Decoder::new(reg);

    let mut last_u = std::collections::HashMap::new();
    let mut events = Vec::new();
    let mut trades = 0u64;
    let mut emitted = 0u64;
    let mut first_delta: Option<(MarketEvent, String)> = None;
    let mut candles = std::collections::HashMap::new();
    let mut tickers: std::collections::HashMap<_, pinion_core::Ticker24h> =
        std::collections::HashMap::new();
    let mut closed = 0u64;
    for line in lines.iter().filter(|l| l["t"] == "recv") {
        let venue = match line["conn"].as_str() {
            Some("BYBIT.ws.2") => Venue::BybitLinear,
            Some("BYBIT.ws.3") => Venue::BybitSpot,
            other => panic!("unexpected connection {other:?}"),
        };
        let data = line["data"].as_str().expect("frame text");
        let t_recv = (line["ts"].as_f64().expect("ts") * 1e9) as u64;
        let rec = RawRecord {
            t_recv,
            conn: ConnId(venue.as_u8().into()),
            kind: RecordKind::Frame,
            meta: b"",
            payload: data.as_bytes(),
        };
        events.clear();
        let res = dec.decode(&ConnCtx::new(venue), &rec, 0, |e| events.push(*e));
        let n = match res {
            Ok(Decoded::Events(n)) => n as usize,
            Ok(Decoded::Skipped(_)) => continue,
            Err(err) => panic!("{err:?} for {data}"),
        };
        assert_eq!(n, events.len());
        emitted += n as u64;
        match events.first().map(|e| e.kind) {
            Some(EventKind::Trade) => trades += n as u64,
            Some(kind @ (EventKind::Depth | EventKind::Snapshot)) => {
                let msg = join(&events);
                let key = (venue, msg.first.instrument);
                if kind == EventKind::Snapshot {
                    // orderbook.200: 200 + 200 levels, 15 events (14 × 28 + 8).
                    assert_eq!((msg.bids.len(), msg.asks.len(), msg.events), (200, 200, 15));
                } else {
                    // `u` goes up by exactly one per delta in this recording.
                    assert_eq!(Some(&(msg.first.last_id - 1)), last_u.get(&key), "{data}");
                    if first_delta.is_none() {
                        first_delta = Some((msg.first, data.to_owned()));
                    }
                }
                assert!(!msg.first.flags.contains(pinion_core::EventFlags::RESET));
                last_u.insert(key, msg.first.last_id);
            }
            Some(EventKind::Kline) => {
                // `kline.1.*`: one-minute candles, on the minute; within a candle the volume
                // only grows.
                for e in &events {
                    let c = pinion_core::Candle::from_event(e).expect("candle");
                    assert_eq!(c.interval_ns, 60_000_000_000, "{data}");
                    assert_eq!(c.start_ns % c.interval_ns, 0, "{data}");
                    assert!(c.low <= c.open.min(c.close) && c.high >= c.open.max(c.close));
                    let seen = candles.entry((venue, c.instrument)).or_insert(c);
                    if seen.start_ns == c.start_ns {
                        assert!(c.volume >= seen.volume, "{data}");
                    } else {
                        assert!(c.start_ns > seen.start_ns, "{data}");
                    }
                    closed += u64::from(c.closed);
                    *seen = c;
                }
            }
            Some(EventKind::Ticker24h) => {
                let t = pinion_core::Ticker24h::from_event(&events[0]).expect("ticker");
                let merged = tickers.entry((venue, t.instrument)).or_default();
                merged.merge(&t);
                assert!(
                    merged.low <= merged.last && merged.last <= merged.high,
                    "{data}"
                );
            }
            // A linear ticker delta of fields other than the 24 h ones.
            None => assert!(data.contains(r#""topic":"tickers."#), "{data}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Four linear symbols and two spot ones; every ticker began with a snapshot of all its
    // fields.
    assert_eq!(tickers.len(), 6);
    assert!(
        tickers
            .values()
            .all(|t| t.fields == pinion_core::TickerFields::ALL)
    );
    assert_eq!(candles.len(), 6);
    assert!(closed > 0, "a candle closed while recording");
    let s = dec.stats();
    assert_eq!((s.messages.snapshot, s.messages.depth), (6, 2_142));
    assert_eq!(s.messages.trade, 102 + 18);
    assert!(trades >= s.messages.trade);
    assert_eq!(s.errors.total(), 0);
    assert_eq!(s.skipped.control, 17 + 7);
    assert_eq!(s.messages.ticker, 758 + 81);
    assert_eq!(s.messages.kline, 71 + 25);
    assert_eq!(s.skipped.unknown_stream, 0);
    assert_eq!(s.skipped.unknown_instrument, 0);
    assert_eq!(s.events, emitted);
    assert_eq!(last_u.len(), 6);

    // The first linear BTCUSDT delta, as written in the recording.
    let (e, text) = first_delta.expect("a delta");
    assert!(
        text.starts_with(r#"{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1786310818130"#)
    );
    assert_eq!(
        (e.first_id, e.last_id, e.seq),
        (15_076_953, 15_076_953, 753_843_913_870)
    );
    assert_eq!(
        (e.exch_ts, e.trans_ts),
        (1_786_310_818_130_000_000, 1_786_310_818_129_000_000)
    );
    assert_eq!(
        e.bids()[0],
        Level {
            px: Px(650_953),
            qty: Qty(5)
        }
    );
    assert_eq!(
        e.asks()[0],
        Level {
            px: Px(651_166),
            qty: Qty(0)
        }
    );
}
