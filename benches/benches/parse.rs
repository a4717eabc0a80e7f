//! Parse benchmark: pinion's [`Decoder`] against the common way, in the same run, per message
//! type, on the real recordings.
//!
//! The baseline deserialises each frame with `serde_json` into typed structs (owned `String`s for
//! the decimal strings, `Vec<[String; 2]>` for levels) and then builds the same
//! [`MarketEvent`]s with the same `Px`/`Qty` parsing and the same splitting. Before timing, both
//! sides decode every frame of a case and their events are compared field by field, so the two
//! do the same work. pinion's side is the decoder as deployed: Binance trades, tickers and depth
//! and Bybit order books go through its strict scanner, everything else through simd-json
//! (`feed/src/parse/flat`); the baseline is unchanged.
//!
//! Each iteration decodes up to [`MAX_FRAMES`] frames of one type; throughput is in bytes of
//! frame text, and the benchmark id names the frame count so ns/message = time / count.
//!
//! Machine state: numbers mean something only on a quiet host (performance governor, no turbo,
//! the bench pinned to an isolated core: see `scripts/`). On a shared machine compare the two
//! lines of a group with each other, not with another run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pinion_core::{ConnId, InstrumentSpec, Instruments, MarketEvent, RawRecord, RecordKind, Venue};
use pinion_feed::parse::{ConnCtx, Decoder};

/// Frames per case and iteration: enough to cover the variety of a recording while keeping an
/// iteration in the milliseconds.
const MAX_FRAMES: usize = 5_000;

mod baseline {
    //! The common way: serde_json into owned structs, then the same events.
    #![allow(non_snake_case)]

    use pinion_core::event::MAX_LEVELS;
    use pinion_core::{
        EventFlags, EventKind, InstrumentId, InstrumentSpec, Instruments, Level, MarketEvent, Px,
        Qty, Venue,
    };
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Envelope<T> {
        stream: String,
        data: T,
    }

    #[derive(Deserialize)]
    struct DepthUpdate {
        #[allow(dead_code)]
        e: String,
        E: u64,
        T: Option<u64>,
        #[allow(dead_code)]
        s: String,
        U: u64,
        u: u64,
        pu: Option<u64>,
        b: Vec<[String; 2]>,
        a: Vec<[String; 2]>,
    }

    #[derive(Deserialize)]
    struct BookTicker {
        u: u64,
        #[allow(dead_code)]
        s: String,
        b: String,
        B: String,
        a: String,
        A: String,
        E: Option<u64>,
        T: Option<u64>,
    }

    #[derive(Deserialize)]
    struct Trade {
        #[allow(dead_code)]
        e: String,
        E: u64,
        T: u64,
        #[allow(dead_code)]
        s: String,
        t: u64,
        p: String,
        q: String,
        m: bool,
    }

    #[derive(Deserialize)]
    struct BybitBook {
        topic: String,
        #[serde(rename = "type")]
        kind: String,
        ts: u64,
        cts: Option<u64>,
        data: BybitBookData,
    }

    #[derive(Deserialize)]
    struct BybitBookData {
        #[allow(dead_code)]
        s: String,
        b: Vec<[String; 2]>,
        a: Vec<[String; 2]>,
        u: u64,
        seq: u64,
    }

    /// What went wrong; the benchmark input is valid, so any error is a bug.
    #[derive(Debug)]
    pub struct Error;

    impl From<serde_json::Error> for Error {
        fn from(_: serde_json::Error) -> Self {
            Error
        }
    }

    impl From<pinion_core::DecimalError> for Error {
        fn from(_: pinion_core::DecimalError) -> Self {
            Error
        }
    }

    fn resolve<'a>(
        reg: &'a Instruments,
        venue: Venue,
        symbol: &str,
    ) -> Result<(InstrumentId, &'a InstrumentSpec), Error> {
        let id = reg.lookup(venue, symbol.as_bytes()).ok_or(Error)?;
        Ok((id, reg.get(id).ok_or(Error)?))
    }

    fn stream_symbol(stream: &str) -> &str {
        stream.split('@').next().unwrap_or_default()
    }

    fn header(t_recv: u64, instrument: InstrumentId, kind: EventKind) -> MarketEvent {
        let mut e = MarketEvent::EMPTY;
        e.t_recv = t_recv;
        e.instrument = instrument;
        e.kind = kind;
        e
    }

    /// Fills `header` with the levels and emits it, split every MAX_LEVELS levels.
    fn emit_book(
        header: &mut MarketEvent,
        spec: &InstrumentSpec,
        bids: &[[String; 2]],
        asks: &[[String; 2]],
        emit: &mut impl FnMut(&MarketEvent),
    ) -> Result<u32, Error> {
        let base = header.flags;
        let total = bids.len() + asks.len();
        let mut emitted = 0;
        header.clear_levels();
        header.flags = base | EventFlags::FIRST;
        let sides = bids
            .iter()
            .map(|l| (true, l))
            .chain(asks.iter().map(|l| (false, l)));
        for (i, (bid, [px, qty])) in sides.enumerate() {
            if header.is_full() {
                emit(header);
                emitted += 1;
                header.clear_levels();
                header.flags = base;
            }
            let level = Level {
                px: Px::parse(px.as_bytes(), spec.price_decimals)?,
                qty: Qty::parse(qty.as_bytes(), spec.qty_decimals)?,
            };
            let n = usize::from(header.n_levels);
            header.levels[n] = level;
            header.n_levels += 1;
            if bid {
                header.n_bids += 1;
            }
            debug_assert!(n < MAX_LEVELS && i < total);
        }
        header.flags.insert(EventFlags::LAST);
        emit(header);
        Ok(emitted + 1)
    }

    pub fn depth(
        reg: &Instruments,
        venue: Venue,
        t_recv: u64,
        json: &[u8],
        mut emit: impl FnMut(&MarketEvent),
    ) -> Result<u32, Error> {
        let env: Envelope<DepthUpdate> = serde_json::from_slice(json)?;
        let (id, spec) = resolve(reg, venue, stream_symbol(&env.stream))?;
        let d = env.data;
        let mut h = header(t_recv, id, EventKind::Depth);
        h.exch_ts = d.E * 1_000_000;
        h.trans_ts = d.T.unwrap_or(0) * 1_000_000;
        h.first_id = d.U;
        h.last_id = d.u;
        h.prev_id = d.pu.unwrap_or(0);
        emit_book(&mut h, spec, &d.b, &d.a, &mut emit)
    }

    pub fn book_ticker(
        reg: &Instruments,
        venue: Venue,
        t_recv: u64,
        json: &[u8],
        mut emit: impl FnMut(&MarketEvent),
    ) -> Result<u32, Error> {
        let env: Envelope<BookTicker> = serde_json::from_slice(json)?;
        let (id, spec) = resolve(reg, venue, stream_symbol(&env.stream))?;
        let d = env.data;
        let mut h = header(t_recv, id, EventKind::BookTicker);
        h.exch_ts = d.E.unwrap_or(0) * 1_000_000;
        h.trans_ts = d.T.unwrap_or(0) * 1_000_000;
        h.last_id = d.u;
        h.levels[0] = Level {
            px: Px::parse(d.b.as_bytes(), spec.price_decimals)?,
            qty: Qty::parse(d.B.as_bytes(), spec.qty_decimals)?,
        };
        h.levels[1] = Level {
            px: Px::parse(d.a.as_bytes(), spec.price_decimals)?,
            qty: Qty::parse(d.A.as_bytes(), spec.qty_decimals)?,
        };
        h.n_bids = 1;
        h.n_levels = 2;
        h.flags = EventFlags::FIRST | EventFlags::LAST;
        emit(&h);
        Ok(1)
    }

    pub fn trade(
        reg: &Instruments,
        venue: Venue,
        t_recv: u64,
        json: &[u8],
        mut emit: impl FnMut(&MarketEvent),
    ) -> Result<u32, Error> {
        let env: Envelope<Trade> = serde_json::from_slice(json)?;
        let (id, spec) = resolve(reg, venue, stream_symbol(&env.stream))?;
        let d = env.data;
        let mut h = header(t_recv, id, EventKind::Trade);
        h.exch_ts = d.E * 1_000_000;
        h.trans_ts = d.T * 1_000_000;
        h.last_id = d.t;
        h.levels[0] = Level {
            px: Px::parse(d.p.as_bytes(), spec.price_decimals)?,
            qty: Qty::parse(d.q.as_bytes(), spec.qty_decimals)?,
        };
        h.n_levels = 1;
        h.flags = EventFlags::FIRST | EventFlags::LAST;
        if d.m {
            h.flags.insert(EventFlags::BUYER_MAKER);
        }
        emit(&h);
        Ok(1)
    }

    pub fn bybit_book(
        reg: &Instruments,
        venue: Venue,
        t_recv: u64,
        json: &[u8],
        mut emit: impl FnMut(&MarketEvent),
    ) -> Result<u32, Error> {
        let m: BybitBook = serde_json::from_slice(json)?;
        let symbol = m.topic.rsplit('.').next().unwrap_or_default();
        let (id, spec) = resolve(reg, venue, symbol)?;
        let kind = match m.kind.as_str() {
            "snapshot" => EventKind::Snapshot,
            _ => EventKind::Depth,
        };
        let mut h = header(t_recv, id, kind);
        h.exch_ts = m.ts * 1_000_000;
        h.trans_ts = m.cts.unwrap_or(0) * 1_000_000;
        h.first_id = m.data.u;
        h.last_id = m.data.u;
        h.seq = m.data.seq;
        if m.data.u == 1 {
            h.flags = EventFlags::RESET;
        }
        emit_book(&mut h, spec, &m.data.b, &m.data.a, &mut emit)
    }
}

type BaselineFn = fn(
    &Instruments,
    Venue,
    u64,
    &[u8],
    &mut dyn FnMut(&MarketEvent),
) -> Result<u32, baseline::Error>;

/// One message type of one recording.
struct Case {
    name: &'static str,
    venue: Venue,
    frames: Vec<(u64, Vec<u8>)>,
    baseline: BaselineFn,
}

impl Case {
    fn bytes(&self) -> u64 {
        self.frames.iter().map(|(_, f)| f.len() as u64).sum()
    }
}

fn instruments() -> Instruments {
    let mut reg = Instruments::new();
    // Tick and step as in the recordings' exchange responses; Binance Spot quantities at BTC's
    // asset precision (the recording has sizes finer than the lot step).
    for (venue, symbol, tick, step) in [
        (Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00000001"),
        (Venue::BinanceUsdm, "BTCUSDT", "0.10", "0.001"),
        (Venue::BybitLinear, "BTCUSDT", "0.10", "0.001"),
        (Venue::BybitLinear, "ETHUSDT", "0.01", "0.01"),
        (Venue::BybitLinear, "SOLUSDT", "0.010", "0.1"),
        (Venue::BybitLinear, "DOGEUSDT", "0.00001", "1"),
    ] {
        reg.add(InstrumentSpec::new(venue, symbol, tick, step).expect("spec"))
            .expect("register");
    }
    reg
}

fn binance_cases(cases: &mut Vec<Case>, relative: &str, venue: Venue, prefix: &'static str) {
    let Some(lines) = pinion_benches::hbt_lines(relative) else {
        return;
    };
    let kinds: [(&'static str, &[u8], BaselineFn); 3] = [
        ("depth", b"@depth", |r, v, t, j, e| {
            baseline::depth(r, v, t, j, e)
        }),
        ("bookTicker", b"@bookTicker", |r, v, t, j, e| {
            baseline::book_ticker(r, v, t, j, e)
        }),
        ("trade", b"@trade", |r, v, t, j, e| {
            baseline::trade(r, v, t, j, e)
        }),
    ];
    for (kind, marker, baseline) in kinds {
        let frames: Vec<(u64, Vec<u8>)> = lines
            .iter()
            .filter(|l| {
                l.is_stream()
                    && l.json[..64.min(l.json.len())]
                        .windows(marker.len())
                        .any(|w| w == marker)
            })
            .take(MAX_FRAMES)
            .map(|l| (l.t_recv, l.json.clone()))
            .collect();
        let name = match (prefix, kind) {
            ("spot", "depth") => "spot_depth",
            ("spot", "bookTicker") => "spot_bookTicker",
            ("spot", _) => "spot_trade",
            (_, "depth") => "futures_depth",
            (_, "bookTicker") => "futures_bookTicker",
            _ => "futures_trade",
        };
        cases.push(Case {
            name,
            venue,
            frames,
            baseline,
        });
    }
}

fn bybit_case(cases: &mut Vec<Case>) {
    let Some(frames) =
        pinion_benches::jsonl_frames("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst")
    else {
        return;
    };
    let frames: Vec<(u64, Vec<u8>)> = frames
        .into_iter()
        .filter(|f| {
            f.conn == "BYBIT.ws.2"
                && f.data.starts_with(br#"{"topic":"orderbook."#)
                && contains(&f.data, br#""type":"delta""#)
        })
        .take(MAX_FRAMES)
        .map(|f| (f.t_recv, f.data))
        .collect();
    cases.push(Case {
        name: "bybit_delta",
        venue: Venue::BybitLinear,
        frames,
        baseline: |r, v, t, j, e| baseline::bybit_book(r, v, t, j, e),
    });
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A cheap consumer both sides feed, so neither side's events can be optimised away.
#[inline]
fn consume(acc: &mut u64, e: &MarketEvent) {
    *acc = acc
        .wrapping_mul(31)
        .wrapping_add(e.last_id ^ e.levels[0].px.0 as u64 ^ u64::from(e.n_levels));
}

fn run_pinion(dec: &mut Decoder, ctx: &ConnCtx, frames: &[(u64, Vec<u8>)]) -> u64 {
    let mut acc = 0;
    for (t_recv, f) in frames {
        let rec = RawRecord {
            t_recv: *t_recv,
            conn: ConnId(0),
            kind: RecordKind::Frame,
            meta: b"",
            payload: f,
        };
        let res = dec.decode(ctx, &rec, 0, |e| consume(&mut acc, e));
        black_box(res).expect("valid frame");
    }
    acc
}

fn run_baseline(reg: &Instruments, case: &Case) -> u64 {
    let mut acc = 0;
    for (t_recv, f) in &case.frames {
        let res = (case.baseline)(reg, case.venue, *t_recv, f, &mut |e| consume(&mut acc, e));
        black_box(res).expect("valid frame");
    }
    acc
}

/// Both sides must produce identical events for every frame of the case.
fn check_same_output(dec: &mut Decoder, reg: &Instruments, case: &Case) {
    let ctx = ConnCtx::new(case.venue);
    for (t_recv, f) in &case.frames {
        let mut ours = Vec::new();
        let rec = RawRecord {
            t_recv: *t_recv,
            conn: ConnId(0),
            kind: RecordKind::Frame,
            meta: b"",
            payload: f,
        };
        dec.decode(&ctx, &rec, 0, |e| ours.push(*e))
            .expect("pinion decodes");
        let mut theirs = Vec::new();
        (case.baseline)(reg, case.venue, *t_recv, f, &mut |e| theirs.push(*e))
            .expect("baseline decodes");
        assert_eq!(ours, theirs, "{}: outputs differ", case.name);
    }
}

fn parse(c: &mut Criterion) {
    let reg = instruments();
    let mut cases = Vec::new();
    binance_cases(
        &mut cases,
        "binance/spot-btcusdt-20240808.hbt.gz",
        Venue::BinanceSpot,
        "spot",
    );
    binance_cases(
        &mut cases,
        "binance/usdm-btcusdt-20240808.hbt.gz",
        Venue::BinanceUsdm,
        "futures",
    );
    bybit_case(&mut cases);

    let mut dec = Decoder::new(reg.clone());
    for case in &cases {
        assert!(!case.frames.is_empty(), "{}: no frames", case.name);
        check_same_output(&mut dec, &reg, case);
    }

    for case in &cases {
        let mut group = c.benchmark_group(format!("parse/{}", case.name));
        group.throughput(Throughput::Bytes(case.bytes()));
        let n = case.frames.len();
        let ctx = ConnCtx::new(case.venue);
        group.bench_function(BenchmarkId::new("pinion", format!("{n}_msgs")), |b| {
            b.iter(|| run_pinion(&mut dec, &ctx, &case.frames))
        });
        group.bench_function(BenchmarkId::new("serde_json", format!("{n}_msgs")), |b| {
            b.iter(|| run_baseline(&reg, case))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = parse
}
criterion_main!(benches);
