//! The decoder's steady state allocates nothing: after one warm-up pass over the real Spot and
//! USD-M recordings and the Spot SBE capture's binary frames (which grows its buffers to the
//! largest message, the 1000-level REST snapshots), a second pass over every record makes no
//! heap allocation at all.
//!
//! A counting global allocator counts allocations made on the test's own thread only, so the
//! test harness's threads cannot disturb the figure.

use std::io::{BufRead, BufReader};

use pinion_core::{ConnId, InstrumentSpec, Instruments, RawRecord, RecordKind, Venue};
use pinion_feed::parse::{ConnCtx, Decoded, Decoder};

#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

/// Runs `f` and returns how many allocations this thread made meanwhile.
fn count_allocations<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = pinion_testkit::alloc::thread_allocations();
    let r = f();
    (r, pinion_testkit::alloc::thread_allocations() - before)
}

struct Line {
    venue: Venue,
    kind: RecordKind,
    t_recv: u64,
    /// The frame: JSON text, or an SBE message.
    json: Vec<u8>,
}

fn read_hbt(relative: &str, venue: Venue, out: &mut Vec<Line>) -> bool {
    let Some(path) = pinion_testkit::data::require(relative) else {
        return false;
    };
    let file = std::fs::File::open(path).expect("open recording");
    for line in BufReader::new(flate2::read::GzDecoder::new(file)).lines() {
        let line = line.expect("read line");
        let (t, json) = line.split_once(' ').expect("`<ns> <json>` line");
        let kind = if json.starts_with(r#"{"stream""#) {
            RecordKind::Frame
        } else {
            RecordKind::RestSnapshot
        };
        out.push(Line {
            venue,
            kind,
            t_recv: t.parse().expect("receive time"),
            json: json.as_bytes().to_vec(),
        });
    }
    true
}

/// The SBE stream messages of a capture, as Binance Spot frames.
fn read_sbe_pcap(relative: &str, out: &mut Vec<Line>) -> bool {
    use pinion_feed::FrameSource;
    let Some(path) = pinion_testkit::data::require(relative) else {
        return false;
    };
    let mut source =
        pinion_feed::source::pcap::PcapSource::open(&path, Default::default()).expect("opens");
    let before = out.len();
    while let Some(rec) = source.next_record().expect("reads") {
        if rec.kind == RecordKind::Frame && pinion_feed::sbe::is_stream_message(rec.payload) {
            out.push(Line {
                venue: Venue::BinanceSpot,
                kind: RecordKind::Frame,
                t_recv: rec.t_recv,
                json: rec.payload.to_vec(),
            });
        }
    }
    assert_eq!(out.len() - before, 41_248, "the capture's SBE frames");
    true
}

/// Decodes every line once; returns the number of events.
fn decode_all(dec: &mut Decoder, lines: &[Line], ctxs: &[(Venue, ConnCtx)]) -> u64 {
    let mut events = 0u64;
    let mut sum_px = 0i64;
    for line in lines {
        let Some((_, ctx)) = ctxs.iter().find(|(v, _)| *v == line.venue) else {
            continue;
        };
        let rec = RawRecord {
            t_recv: line.t_recv,
            conn: ConnId(line.venue.as_u8().into()),
            kind: line.kind,
            meta: b"",
            payload: &line.json,
        };
        let res = dec.decode(ctx, &rec, 0, |e| {
            events += 1;
            sum_px = sum_px.wrapping_add(e.levels[0].px.0);
        });
        assert!(matches!(res, Ok(Decoded::Events(_))), "{res:?}");
    }
    std::hint::black_box(sum_px);
    events
}

#[test]
fn steady_state_decoding_allocates_nothing() {
    let mut lines = Vec::new();
    let spot = read_hbt(
        "binance/spot-btcusdt-20240808.hbt.gz",
        Venue::BinanceSpot,
        &mut lines,
    );
    let usdm = read_hbt(
        "binance/usdm-btcusdt-20240808.hbt.gz",
        Venue::BinanceUsdm,
        &mut lines,
    );
    let sbe = read_sbe_pcap("binance/sbe/spot-btcusdt-20240808.sbe.pcap", &mut lines);
    if !spot && !usdm && !sbe {
        return;
    }
    let mut reg = Instruments::new();
    let spot_id = reg
        .add(InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00000001").unwrap())
        .unwrap();
    let usdm_id = reg
        .add(InstrumentSpec::new(Venue::BinanceUsdm, "BTCUSDT", "0.10", "0.001").unwrap())
        .unwrap();
    let ctxs = [
        (
            Venue::BinanceSpot,
            ConnCtx {
                venue: Venue::BinanceSpot,
                default_instrument: Some(spot_id),
            },
        ),
        (
            Venue::BinanceUsdm,
            ConnCtx {
                venue: Venue::BinanceUsdm,
                default_instrument: Some(usdm_id),
            },
        ),
    ];
    let mut dec = Decoder::new(reg);

    let warm_events = decode_all(&mut dec, &lines, &ctxs);

    let (events, allocations) = count_allocations(|| decode_all(&mut dec, &lines, &ctxs));

    assert_eq!(events, warm_events);
    assert!(events as usize >= lines.len());
    assert_eq!(dec.stats().errors.total(), 0);

    assert_eq!(
        allocations,
        0,
        "decoding {} records ({} events) allocated {} times",
        lines.len(),
        events,
        allocations
    );
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    let (v, n) = count_allocations(|| std::hint::black_box(Vec::<u64>::with_capacity(16)));
    drop(v);
    assert_eq!(n, 1);
}

/// Klines and 24 h tickers too: the Bybit recording's `kline` and `tickers` frames (ticker
/// deltas of bid and ask alone included) and Binance klines and tickers decode, after a warm-up
/// pass, without a heap allocation.
#[test]
fn klines_and_tickers_decode_without_allocating() {
    let Some(path) =
        pinion_testkit::data::require("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst")
    else {
        return;
    };
    let file = std::fs::File::open(path).expect("open recording");
    let reader = BufReader::new(zstd::Decoder::new(file).expect("zstd"));
    let mut lines = Vec::new();
    for line in reader.lines() {
        let v: serde_json::Value = serde_json::from_str(&line.expect("line")).expect("json");
        let (Some(data), Some(conn)) = (v["data"].as_str(), v["conn"].as_str()) else {
            continue;
        };
        if v["t"] != "recv"
            || !(data.contains(r#""topic":"kline."#) || data.contains(r#""topic":"tickers."#))
        {
            continue;
        }
        let venue = if conn == "BYBIT.ws.2" {
            Venue::BybitLinear
        } else {
            Venue::BybitSpot
        };
        lines.push(Line {
            venue,
            kind: RecordKind::Frame,
            t_recv: 1,
            json: data.as_bytes().to_vec(),
        });
    }
    assert_eq!(lines.len(), 758 + 81 + 71 + 25);
    for json in [
        r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1700000042123,"s":"BTCUSDT","k":{"t":1700000040000,"T":1700000099999,"s":"BTCUSDT","i":"1m","f":501,"L":507,"o":"36100.50","c":"36090.00","h":"36120.25","l":"36080.75","v":"1.25000","n":7,"x":false,"q":"45120.1","V":"0.50000","Q":"18050.2","B":"0"}}}"#,
        r#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1700000050000,"s":"BTCUSDT","c":"36090.00","Q":"0.01000","o":"36290.00","h":"36500.00","l":"35900.00","v":"1234.56789","q":"1","F":100,"L":250,"n":151}}"#,
        r#"{"e":"24hrMiniTicker","E":1700000051000,"s":"BTCUSDT","c":"36002.00","o":"35800.00","h":"36100.00","l":"35700.00","v":"99999.999","q":"3600000000.0"}"#,
    ] {
        lines.push(Line {
            venue: Venue::BinanceSpot,
            kind: RecordKind::Frame,
            t_recv: 1,
            json: json.as_bytes().to_vec(),
        });
    }
    let mut reg = Instruments::new();
    let venues = [Venue::BybitLinear, Venue::BybitSpot, Venue::BinanceSpot];
    for venue in venues {
        for sym in ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"] {
            reg.add(InstrumentSpec::new(venue, sym, "0.00001", "0.000001").unwrap())
                .unwrap();
        }
    }
    let ctxs = venues.map(|v| (v, ConnCtx::new(v)));
    let mut dec = Decoder::new(reg);
    let warm_events = decode_all(&mut dec, &lines, &ctxs);
    let (events, allocations) = count_allocations(|| decode_all(&mut dec, &lines, &ctxs));
    assert_eq!(events, warm_events);
    assert_eq!(dec.stats().errors.total(), 0);
    assert_eq!(
        (dec.stats().messages.kline, dec.stats().messages.ticker),
        (2 * (71 + 25 + 1), 2 * (758 + 81 + 2))
    );
    assert_eq!(allocations, 0, "{} records, {events} events", lines.len());
}
