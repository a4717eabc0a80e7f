//! SBE decode benchmark: pinion's [`Decoder`] on Binance Spot's binary frames against the same
//! decoder on the JSON frames they were encoded from, per message type, in the same run.
//!
//! The inputs are the JSON recording `binance/spot-btcusdt-20240808.hbt.gz` and its SBE twin
//! `binance/sbe/spot-btcusdt-20240808.sbe.pcap` (the same messages in the same order, encoded
//! independently; see the data README). The two are paired message by message and, before any
//! timing, every pair is decoded and its events compared (the bestBidAsk event time aside, which
//! the JSON bookTicker lacks), so both sides do the same work. The JSON side is the decoder as
//! deployed (its strict scanner for these flat messages, simd-json behind it).
//!
//! Two sets per message type: `hot`, the first messages whose JSON fits 256 KiB, so both sides'
//! frames stay in the core's cache between passes as a frame just read from a socket is (what
//! decoding costs); and `all`, every message of the type, streamed from memory (what a replay
//! of the recording costs, memory traffic included).
//!
//! Timing: per set, rounds in which each side decodes every message of the set
//! (repeated to about 5 ms; the frames laid end to end in one buffer, as a reader holds them), the side going first alternating; reported are the median ns per
//! message of each side and the median of the rounds' ratios (JSON time / SBE time). Rounds:
//! `PINION_BENCH_ROUNDS` (default 15).
//!
//! A second table breaks the SBE side down on the `hot` sets of best bid/ask and diff depth:
//! the same frames walked with more of the work each time (the loop alone; the header read;
//! [`sbe::read`]; that plus every price and quantity conversion; the whole decode), stages
//! interleaved within each round, medians of ns per message. The stages overlap in the core,
//! so their differences show where the time goes only roughly.

use pinion_benches::median;
use std::hint::black_box;
use std::time::Instant;

use pinion_core::{
    ConnId, EventKind, InstrumentSpec, Instruments, MarketEvent, RawRecord, RecordKind, Venue,
};
use pinion_feed::FrameSource;
use pinion_feed::parse::{ConnCtx, Decoded, Decoder};
use pinion_feed::sbe::{self, MessageHeader, Template};
use pinion_feed::source::pcap::{PcapConfig, PcapSource};

const JSON: &str = "binance/spot-btcusdt-20240808.hbt.gz";
const SBE: &str = "binance/sbe/spot-btcusdt-20240808.sbe.pcap";
const DEFAULT_ROUNDS: usize = 15;
/// JSON bytes of the `hot` set of each message type (its SBE twin is about half).
const HOT_BYTES: usize = 256 << 10;
/// Target length of one timing.
const TIMING_NS: u128 = 5_000_000;

/// Frames with their receive times, as loaded.
type Frames = [(u64, Vec<u8>)];

/// Frames laid end to end in one buffer, as a reader's buffer or a socket's holds them, so a
/// pass streams through memory instead of chasing one heap block per frame (which would time
/// cache misses on scattered allocations rather than decoding).
struct Packed {
    bytes: Vec<u8>,
    /// Receive time, start and end of each frame in `bytes`.
    frames: Vec<(u64, usize, usize)>,
}

impl Packed {
    fn new(frames: &Frames) -> Self {
        let mut bytes = Vec::with_capacity(frames.iter().map(|(_, f)| f.len()).sum());
        let frames = frames
            .iter()
            .map(|(t, f)| {
                let start = bytes.len();
                bytes.extend_from_slice(f);
                (*t, start, bytes.len())
            })
            .collect();
        Self { bytes, frames }
    }
}

/// One message type: the JSON frames and their SBE twins, in recording order.
struct Case {
    name: &'static str,
    template: Template,
    json: Vec<(u64, Vec<u8>)>,
    sbe: Vec<(u64, Vec<u8>)>,
}

impl Case {
    /// How many messages from the start make the `hot` set: those whose JSON fits
    /// `HOT_BYTES`, so both sides' frames stay in the core's L2 cache between passes, as a
    /// frame just read from a socket is.
    fn hot_len(&self) -> usize {
        let mut bytes = 0;
        self.json
            .iter()
            .take_while(|(_, f)| {
                bytes += f.len();
                bytes <= HOT_BYTES
            })
            .count()
    }
}

fn instruments() -> Instruments {
    let mut reg = Instruments::new();
    reg.add(
        InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00000001").expect("spec"),
    )
    .expect("register");
    reg
}

fn sbe_frames(path: &std::path::Path) -> Vec<(u64, Vec<u8>)> {
    let mut source = PcapSource::open(path, PcapConfig::default()).expect("opens the capture");
    let mut out = Vec::new();
    while let Some(rec) = source.next_record().expect("reads the capture") {
        if rec.kind == RecordKind::Frame && sbe::is_stream_message(rec.payload) {
            out.push((rec.t_recv, rec.payload.to_vec()));
        }
    }
    out
}

fn decode_one(dec: &mut Decoder, t_recv: u64, frame: &[u8]) -> Vec<MarketEvent> {
    let rec = RawRecord {
        t_recv,
        conn: ConnId(0),
        kind: RecordKind::Frame,
        meta: b"",
        payload: frame,
    };
    let mut events = Vec::new();
    dec.decode(&ConnCtx::new(Venue::BinanceSpot), &rec, 0, |e| {
        let mut e = *e;
        e.t_recv = 0;
        if e.kind == EventKind::BookTicker {
            e.exch_ts = 0;
        }
        events.push(e);
    })
    .expect("a valid frame");
    events
}

/// Pairs the recordings' messages and checks that both sides decode each pair to the same
/// events; returns the cases.
fn cases() -> Option<Vec<Case>> {
    let sbe_path = pinion_testkit::data::require(SBE)?;
    let json: Vec<(u64, Vec<u8>)> = pinion_benches::hbt_lines(JSON)?
        .into_iter()
        .filter(|l| l.is_stream())
        .map(|l| (l.t_recv, l.json))
        .collect();
    let sbe = sbe_frames(&sbe_path);
    assert_eq!(
        json.len(),
        sbe.len(),
        "the recordings hold the same messages"
    );

    let mut cases = [
        ("bestBidAsk", Template::BestBidAsk),
        ("diff_depth", Template::DepthDiff),
        ("trade", Template::Trades),
    ]
    .map(|(name, template)| Case {
        name,
        template,
        json: Vec::new(),
        sbe: Vec::new(),
    });
    let mut dec = Decoder::new(instruments());
    for (j, s) in json.into_iter().zip(sbe) {
        let template = MessageHeader::read(&s.1)
            .and_then(|h| Template::from_id(h.template_id))
            .expect("a stream message");
        assert_eq!(
            decode_one(&mut dec, j.0, &j.1),
            decode_one(&mut dec, s.0, &s.1),
            "a pair decodes to different events"
        );
        if let Some(case) = cases.iter_mut().find(|c| c.template == template) {
            case.json.push(j);
            case.sbe.push(s);
        }
    }
    Some(cases.into())
}

/// A cheap consumer of every event, so neither side's work can be optimised away.
#[inline]
fn consume(acc: &mut u64, e: &MarketEvent) {
    *acc = acc
        .wrapping_mul(31)
        .wrapping_add(e.last_id ^ e.levels[0].px.0 as u64 ^ u64::from(e.n_levels));
}

fn pass(dec: &mut Decoder, packed: &Packed) -> u64 {
    let ctx = ConnCtx::new(Venue::BinanceSpot);
    let mut acc = 0;
    for &(t_recv, start, end) in &packed.frames {
        let rec = RawRecord {
            t_recv,
            conn: ConnId(0),
            kind: RecordKind::Frame,
            meta: b"",
            payload: &packed.bytes[start..end],
        };
        // The result is read as the feed stage reads it (a match on its tag), not handed to
        // `black_box`: that spills the 40-byte result and reloads it in 16-byte halves that no
        // store it was written with can forward, a stall of several ns per message that no real
        // caller pays (it was a third of the SBE side's time).
        match dec.decode(&ctx, &rec, 0, |e| consume(&mut acc, e)) {
            Ok(Decoded::Events(n)) => acc = acc.wrapping_add(u64::from(n)),
            Ok(Decoded::Skipped(reason)) => panic!("a valid frame skipped: {reason:?}"),
            Err(err) => panic!("a valid frame refused: {err}"),
        }
    }
    acc
}

fn main() {
    let rounds = std::env::var("PINION_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS)
        .max(1);
    let Some(cases) = cases() else {
        eprintln!("sbe: skipped, the recordings ({JSON}, {SBE}) are not there");
        return;
    };
    if let Ok(name) = std::env::var("PINION_BENCH_SBE_ONLY") {
        profile(&cases, &name);
        return;
    }
    println!("{}", pinion_benches::host_state());
    println!(
        "SBE vs JSON decode, Binance Spot BTCUSDT (interleaved, median of {rounds} rounds; \
         speedup = median of the rounds' JSON/SBE time ratios)"
    );
    println!(
        "{:<12} {:<4} {:>7} {:>9} {:>9} {:>12} {:>12} {:>8}",
        "message", "set", "msgs", "JSON B", "SBE B", "JSON ns/msg", "SBE ns/msg", "speedup"
    );
    for case in &cases {
        let hot = case.hot_len();
        compare(
            case.name,
            "hot",
            &case.json[..hot],
            &case.sbe[..hot],
            rounds,
        );
        compare(case.name, "all", &case.json, &case.sbe, rounds);
    }
    println!();
    println!(
        "SBE decode by stage, hot set (each stage alone, interleaved, median ns/msg of {rounds} \
         rounds; a stage includes the ones above it)"
    );
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "message", "loop", "header", "read", "convert", "decode"
    );
    for case in cases.iter().filter(|c| c.template != Template::Trades) {
        let hot = case.hot_len();
        stages(case.name, &case.sbe[..hot], rounds);
    }
}

/// `PINION_BENCH_SBE_ONLY=<message>`: decodes only that message type's `hot` SBE frames, for
/// about three seconds, and prints ns per message; for a profiler's view of the SBE side alone.
fn profile(cases: &[Case], name: &str) {
    let Some(case) = cases.iter().find(|c| c.name == name) else {
        eprintln!("no message type {name}");
        return;
    };
    let hot = case.hot_len();
    let packed = Packed::new(&case.sbe[..hot]);
    let mut dec = Decoder::new(instruments());
    let start = Instant::now();
    let mut passes = 0u64;
    while start.elapsed().as_secs() < 3 {
        black_box(pass(&mut dec, &packed));
        passes += 1;
    }
    let ns = start.elapsed().as_nanos() as f64 / (passes * hot as u64) as f64;
    println!("{name}: {ns:.1} ns/msg over {passes} passes");
}

/// The stages of decoding SBE frames, each timed alone on the same frames: `loop`, walking the
/// frames; `header`, the 8-byte header read and the schema check; `read`, [`sbe::read`] (every
/// length checked, the fields in registers); `convert`, that plus the exponent conversions of
/// every price and quantity at the instrument's scale; `decode`, the whole [`Decoder::decode`]
/// (symbol look-up, range checks, the event, counters and the result). Stages overlap in the
/// core, so the differences are where the time goes only roughly.
fn stages(name: &str, frames: &Frames, rounds: usize) {
    let n = frames.len();
    let packed = Packed::new(frames);
    let mut dec = Decoder::new(instruments());
    #[inline(always)]
    fn walk_with(packed: &Packed, f: impl Fn(&[u8]) -> u64) -> u64 {
        let mut acc = 0u64;
        for &(_, start, end) in &packed.frames {
            acc = acc.wrapping_add(f(black_box(&packed.bytes[start..end])));
        }
        acc
    }
    let (px_dec, qty_dec) = (2, 8);
    let convert = |m: &sbe::StreamMessage<'_>| -> u64 {
        let (pe, qe) = m.exponents();
        let (px, qty) = (sbe::Scale::new(pe, px_dec), sbe::Scale::new(qe, qty_dec));
        let one = |(p, q): (i64, i64)| {
            px.apply(p)
                .unwrap_or(0)
                .wrapping_add(qty.apply(q).unwrap_or(0)) as u64
        };
        match m {
            sbe::StreamMessage::BestBidAsk(b) => {
                one((b.bid_price, b.bid_qty)).wrapping_add(one((b.ask_price, b.ask_qty)))
            }
            sbe::StreamMessage::DepthDiff(d) | sbe::StreamMessage::DepthSnapshot(d) => d
                .bids
                .levels()
                .chain(d.asks.levels())
                .fold(0u64, |acc, l| acc.wrapping_add(one(l))),
            sbe::StreamMessage::Trades(t) => t.trades.len() as u64,
        }
    };
    let mut times = [(); 5].map(|()| Vec::new());
    for round in 0..rounds {
        for j in 0..5 {
            let stage = (round + j) % 5;
            let t = Instant::now();
            let mut reps = 0u32;
            while t.elapsed().as_nanos() < TIMING_NS {
                let acc = match stage {
                    0 => walk_with(&packed, |f: &[u8]| f.len() as u64),
                    1 => walk_with(&packed, |f: &[u8]| {
                        u64::from(sbe::is_stream_message(f))
                            + MessageHeader::read(f).map_or(0, |h| u64::from(h.template_id))
                    }),
                    2 => walk_with(&packed, |f: &[u8]| match sbe::read(f) {
                        Ok(m) => m.symbol().len() as u64 + m.exponents().0 as u64,
                        Err(_) => 0,
                    }),
                    3 => walk_with(&packed, |f: &[u8]| sbe::read(f).map_or(0, |m| convert(&m))),
                    _ => pass(&mut dec, &packed),
                };
                black_box(acc);
                reps += 1;
            }
            let ns = t.elapsed().as_nanos() as f64;
            times[stage].push(ns / (f64::from(reps) * n as f64));
        }
    }
    let m: Vec<f64> = times.into_iter().map(median).collect();
    println!(
        "{:<12} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        name, m[0], m[1], m[2], m[3], m[4]
    );
}

/// Times both sides on the same messages, interleaved, and prints one row.
fn compare(name: &str, set: &str, json_frames: &Frames, sbe_frames: &Frames, rounds: usize) {
    let n = json_frames.len();
    let mut json_dec = Decoder::new(instruments());
    let mut sbe_dec = Decoder::new(instruments());
    let (json, sbe) = (Packed::new(json_frames), Packed::new(sbe_frames));
    let mut sides = [(&mut json_dec, &json), (&mut sbe_dec, &sbe)];
    // Warm-up pass (buffers grown), then repetitions so one timing lasts about TIMING_NS.
    let reps: Vec<u32> = sides
        .iter_mut()
        .map(|(dec, frames)| {
            let t = Instant::now();
            black_box(pass(dec, frames));
            let ns = t.elapsed().as_nanos().max(1);
            (TIMING_NS / ns).clamp(1, 100_000) as u32
        })
        .collect();
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for j in 0..2 {
            let i = (round + j) % 2;
            let (dec, frames) = &mut sides[i];
            let t = Instant::now();
            for _ in 0..reps[i] {
                black_box(pass(dec, frames));
            }
            let ns = t.elapsed().as_nanos() as f64;
            times[i].push(ns / (f64::from(reps[i]) * n as f64));
        }
    }
    let ratio = median(times[0].iter().zip(&times[1]).map(|(j, s)| j / s).collect());
    let bytes = |p: &Packed| p.bytes.len() as f64 / n as f64;
    println!(
        "{:<12} {:<4} {:>7} {:>9.0} {:>9.0} {:>12.1} {:>12.1} {:>7.1}x",
        name,
        set,
        n,
        bytes(&json),
        bytes(&sbe),
        median(times[0].clone()),
        median(times[1].clone()),
        ratio
    );
}
