//! Binance Spot SBE frames through the [`Decoder`]: the independently encoded capture decodes
//! to the same events as the JSON recording it was made from, message for message; golden
//! frames built by hand from the schema decode to the events their JSON twins give; malformed
//! frames are typed errors (or counted skips) and the decoder goes on.

use pinion_core::{
    ConnId, EventFlags, EventKind, InstrumentSpec, Instruments, MarketEvent, Px, Qty, RawRecord,
    RecordKind, Venue,
};
use pinion_feed::FrameSource;
use pinion_feed::parse::{ConnCtx, Decoded, Decoder, ParseError, Sign};
use pinion_feed::sbe::{Part, SbeError};
use pinion_feed::source::pcap::{PcapConfig, PcapSource};

fn decoder() -> Decoder {
    let mut reg = Instruments::new();
    reg.add(InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00000001").unwrap())
        .unwrap();
    Decoder::new(reg)
}

const SPOT: ConnCtx = ConnCtx::new(Venue::BinanceSpot);

/// Decodes one frame; returns the answer and the events.
fn decode(dec: &mut Decoder, payload: &[u8]) -> (Result<Decoded, ParseError>, Vec<MarketEvent>) {
    let rec = RawRecord {
        t_recv: 1_000,
        conn: ConnId(2),
        kind: RecordKind::Frame,
        meta: b"",
        payload,
    };
    let mut events = Vec::new();
    let res = dec.decode(&SPOT, &rec, 7, |e| events.push(*e));
    (res, events)
}

// ---------------------------------------------------------------------------------------------
// Frames built byte by byte from stream_1_0.xml.

/// `BTCUSDT` as a varString8.
const SYM: [u8; 8] = [7, b'B', b'T', b'C', b'U', b'S', b'D', b'T'];

fn le(v: i64) -> [u8; 8] {
    v.to_le_bytes()
}

/// A message header: blockLength, templateId, schemaId 1, version 0.
fn header(block_len: u16, template: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(block_len.to_le_bytes());
    f.extend(template.to_le_bytes());
    f.extend([1, 0, 0, 0]);
    f
}

/// `TradesStreamEvent` with exponents −8/−8: (id, price, qty, isBuyerMaker) mantissas.
fn trades(event_us: i64, transact_us: i64, rows: &[(i64, i64, i64, u8)]) -> Vec<u8> {
    let mut f = header(18, 10_000);
    f.extend(le(event_us));
    f.extend(le(transact_us));
    f.extend([0xF8, 0xF8]);
    f.extend(25u16.to_le_bytes());
    f.extend((rows.len() as u32).to_le_bytes());
    for &(id, px, qty, maker) in rows {
        f.extend(le(id));
        f.extend(le(px));
        f.extend(le(qty));
        f.push(maker);
    }
    f.extend(SYM);
    f
}

/// `BestBidAskStreamEvent` with the given exponents.
fn best(
    event_us: i64,
    update_id: i64,
    exps: (i8, i8),
    bid: (i64, i64),
    ask: (i64, i64),
) -> Vec<u8> {
    let mut f = header(50, 10_001);
    f.extend(le(event_us));
    f.extend(le(update_id));
    f.extend([exps.0 as u8, exps.1 as u8]);
    for v in [bid.0, bid.1, ask.0, ask.1] {
        f.extend(le(v));
    }
    f.extend(SYM);
    f
}

fn levels(f: &mut Vec<u8>, side: &[(i64, i64)]) {
    f.extend(16u16.to_le_bytes());
    f.extend((side.len() as u16).to_le_bytes());
    for &(px, qty) in side {
        f.extend(le(px));
        f.extend(le(qty));
    }
}

/// `DepthSnapshotStreamEvent`, exponents −8/−8.
fn snapshot(event_us: i64, update_id: i64, bids: &[(i64, i64)], asks: &[(i64, i64)]) -> Vec<u8> {
    let mut f = header(18, 10_002);
    f.extend(le(event_us));
    f.extend(le(update_id));
    f.extend([0xF8, 0xF8]);
    levels(&mut f, bids);
    levels(&mut f, asks);
    f.extend(SYM);
    f
}

/// `DepthDiffStreamEvent`, exponents −8/−8.
fn diff(event_us: i64, ids: (i64, i64), bids: &[(i64, i64)], asks: &[(i64, i64)]) -> Vec<u8> {
    let mut f = header(26, 10_003);
    f.extend(le(event_us));
    f.extend(le(ids.0));
    f.extend(le(ids.1));
    f.extend([0xF8, 0xF8]);
    levels(&mut f, bids);
    levels(&mut f, asks);
    f.extend(SYM);
    f
}

/// A price or quantity in units of 10^-8.
fn e8(text: &str) -> i64 {
    pinion_core::decimal::parse_scaled(text.as_bytes(), 8).unwrap()
}

/// The events without what only the SBE message carries (Spot JSON bookTicker and partial
/// depth have no event time).
fn without_exch_ts(mut events: Vec<MarketEvent>) -> Vec<MarketEvent> {
    for e in &mut events {
        e.exch_ts = 0;
    }
    events
}

#[test]
fn golden_frames_decode_as_their_json_twins() {
    let mut dec = decoder();

    // Two trades in one message: one event each, each FIRST|LAST, the second's buyer the maker.
    let frame = trades(
        1_723_161_255_343_000,
        1_723_161_255_342_000,
        &[
            (3_735_683_259, e8("61837.64"), e8("0.00081"), 0),
            (3_735_683_260, e8("61837.63"), e8("0.0161"), 1),
        ],
    );
    let (res, events) = decode(&mut dec, &frame);
    assert_eq!(res, Ok(Decoded::Events(2)));
    for (e, (id, px, qty, maker)) in events.iter().zip([
        (3_735_683_259, 6_183_764, 81_000, false),
        (3_735_683_260, 6_183_763, 1_610_000, true),
    ]) {
        assert_eq!(e.kind, EventKind::Trade);
        assert!(e.is_first() && e.is_last());
        assert_eq!(e.flags.contains(EventFlags::BUYER_MAKER), maker);
        assert_eq!(e.last_id, id);
        assert_eq!((e.levels[0].px, e.levels[0].qty), (Px(px), Qty(qty)));
        assert_eq!((e.n_levels, e.n_bids), (1, 0));
        assert_eq!(e.exch_ts, 1_723_161_255_343_000_000);
        assert_eq!(e.trans_ts, 1_723_161_255_342_000_000);
        assert_eq!((e.t_recv, e.t0, e.conn), (1_000, 7, ConnId(2)));
    }
    let json = [
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.64000000","q":"0.00081000","T":1723161255342,"m":false,"M":true}}"#,
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683260,"p":"61837.63000000","q":"0.01610000","T":1723161255342,"m":true,"M":true}}"#,
    ];
    let twins: Vec<MarketEvent> = json
        .iter()
        .flat_map(|j| decode(&mut dec, j.as_bytes()).1)
        .collect();
    assert_eq!(events, twins);

    // Best bid/ask: `bookUpdateId` in last_id, eventTime in exch_ts.
    let frame = best(
        1_723_161_254_087_891,
        50_093_239_212,
        (-2, -5),
        (6_183_763, 378_823),
        (6_183_764, 1),
    );
    let (res, events) = decode(&mut dec, &frame);
    assert_eq!(res, Ok(Decoded::Events(1)));
    let e = &events[0];
    assert_eq!(e.kind, EventKind::BookTicker);
    assert!(e.is_first() && e.is_last());
    assert_eq!(
        (e.last_id, e.exch_ts),
        (50_093_239_212, 1_723_161_254_087_891_000)
    );
    assert_eq!((e.n_bids, e.n_levels), (1, 2));
    assert_eq!(e.bids()[0].px, Px(6_183_763));
    assert_eq!(e.bids()[0].qty, Qty(378_823_000));
    assert_eq!(
        (e.asks()[0].px, e.asks()[0].qty),
        (Px(6_183_764), Qty(1_000))
    );
    let twin = decode(
        &mut dec,
        br#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63","B":"3.78823","a":"61837.64","A":"0.00001"}}"#,
    )
    .1;
    assert_eq!(without_exch_ts(events), twin);

    // Partial depth of 30 bids and 5 asks: split 28 + 7, bids first.
    let bids: Vec<(i64, i64)> = (0..30)
        .map(|i| (e8("61837.63") - i * 1_000_000, e8("0.5")))
        .collect();
    let asks: Vec<(i64, i64)> = (0..5)
        .map(|i| (e8("61837.64") + i * 1_000_000, e8("1.25")))
        .collect();
    let frame = snapshot(1_723_161_254_000_000, 50_093_239_218, &bids, &asks);
    let (res, events) = decode(&mut dec, &frame);
    assert_eq!(res, Ok(Decoded::Events(2)));
    assert!(events.iter().all(|e| e.kind == EventKind::PartialDepth
        && e.last_id == 50_093_239_218
        && e.first_id == 0));
    assert_eq!(
        events
            .iter()
            .map(|e| (e.is_first(), e.is_last(), e.n_bids, e.n_levels))
            .collect::<Vec<_>>(),
        [(true, false, 28, 28), (false, true, 2, 7)]
    );
    assert_eq!(events[1].asks()[4].px, Px(6_183_768));
    let text = |side: &[(i64, i64)]| {
        side.iter()
            .map(|(p, q)| {
                let d = |v: i64| format!("{}.{:08}", v / 100_000_000, v % 100_000_000);
                format!(r#"["{}","{}"]"#, d(*p), d(*q))
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let json = format!(
        r#"{{"stream":"btcusdt@depth20@100ms","data":{{"lastUpdateId":50093239218,"bids":[{}],"asks":[{}]}}}}"#,
        text(&bids),
        text(&asks)
    );
    let twin = decode(&mut dec, json.as_bytes()).1;
    assert_eq!(without_exch_ts(events), twin);

    // A diff with a deleted level.
    let frame = diff(
        1_723_161_255_208_000,
        (50_093_239_213, 50_093_239_220),
        &[(e8("61837.63"), e8("3.78823")), (e8("61830"), 0)],
        &[(e8("61850.01"), e8("0.2"))],
    );
    let (res, events) = decode(&mut dec, &frame);
    assert_eq!(res, Ok(Decoded::Events(1)));
    let e = &events[0];
    assert_eq!(e.kind, EventKind::Depth);
    assert_eq!(
        (e.first_id, e.last_id, e.prev_id),
        (50_093_239_213, 50_093_239_220, 0)
    );
    assert_eq!(e.exch_ts, 1_723_161_255_208_000_000);
    assert_eq!(e.bids()[1].qty, Qty(0));
    let twin = decode(
        &mut dec,
        br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":50093239213,"u":50093239220,"b":[["61837.63000000","3.78823000"],["61830.00000000","0.00000000"]],"a":[["61850.01000000","0.20000000"]]}}"#,
    )
    .1;
    assert_eq!(events, twin);

    let s = dec.stats();
    assert_eq!(
        (
            s.messages.trade,
            s.messages.book_ticker,
            s.messages.partial_depth,
            s.messages.depth
        ),
        (3, 2, 2, 2)
    );
    assert_eq!(s.errors.total(), 0);
}

#[test]
fn malformed_frames_are_typed_errors_counted_and_decoding_goes_on() {
    let mut dec = decoder();
    let good = diff(5, (100, 102), &[(e8("61685.99"), e8("1.0087"))], &[]);
    let bad_px = |px: i64| diff(5, (100, 102), &[(px, e8("1"))], &[]);
    let cases: Vec<(&str, Vec<u8>, Result<Decoded, ParseError>)> = vec![
        (
            "cut inside the bids",
            good[..40].to_vec(),
            Err(ParseError::Sbe(SbeError::Truncated {
                part: Part::Bids,
                at: 38,
                need: 16,
                len: 40,
            })),
        ),
        (
            "a group count past the end",
            {
                let mut f = good.clone();
                f[36..38].copy_from_slice(&u16::MAX.to_le_bytes());
                f
            },
            Err(ParseError::Sbe(SbeError::Truncated {
                part: Part::Bids,
                at: 38,
                need: 16 * 65_535,
                len: good.len(),
            })),
        ),
        (
            "a block shorter than its fields",
            {
                let mut f = good.clone();
                f[0] = 25;
                f
            },
            Err(ParseError::Sbe(SbeError::ShortBlock {
                part: Part::Block,
                len: 25,
                min: 26,
            })),
        ),
        (
            "a cent and a tenth",
            bad_px(6_168_599_100_000),
            Err(ParseError::Unrepresentable {
                field: "bids",
                mantissa: 6_168_599_100_000,
                exponent: -8,
                decimals: 2,
            }),
        ),
        (
            "a huge exponent",
            {
                let mut f = good.clone();
                f[32] = 127;
                f
            },
            Err(ParseError::Unrepresentable {
                field: "bids",
                mantissa: 6_168_599_000_000,
                exponent: 127,
                decimals: 2,
            }),
        ),
        (
            "a negative price",
            bad_px(-6_168_599_000_000),
            Err(ParseError::OutOfRange {
                field: "bids",
                seen: Sign::Negative,
            }),
        ),
        (
            "a negative quantity",
            diff(5, (100, 102), &[], &[(e8("61686"), -1)]),
            Err(ParseError::OutOfRange {
                field: "asks",
                seen: Sign::Negative,
            }),
        ),
        (
            "a best bid with no quantity",
            best(5, 9, (-8, -8), (e8("61685.99"), 0), (e8("61686"), e8("1"))),
            Err(ParseError::OutOfRange {
                field: "bidQty",
                seen: Sign::Zero,
            }),
        ),
        (
            "a negative update id",
            diff(5, (-1, 102), &[], &[]),
            Err(ParseError::BadId("firstBookUpdateId")),
        ),
        (
            "a negative event time",
            diff(-5, (100, 102), &[], &[]),
            Err(ParseError::BadTime("eventTime")),
        ),
        (
            "an event time past u64 nanoseconds",
            trades(i64::MAX, 1, &[(1, e8("1"), e8("1"), 0)]),
            Err(ParseError::BadTime("eventTime")),
        ),
        (
            "a second trade with a bad price emits nothing",
            trades(5, 4, &[(1, e8("1"), e8("1"), 0), (2, 1, e8("1"), 0)]),
            Err(ParseError::Unrepresentable {
                field: "price",
                mantissa: 1,
                exponent: -8,
                decimals: 2,
            }),
        ),
        (
            "a boolean that is 2",
            trades(5, 4, &[(1, e8("1"), e8("1"), 2)]),
            Err(ParseError::Sbe(SbeError::BadBool { value: 2 })),
        ),
    ];
    for (what, frame, want) in &cases {
        let before = *dec.stats();
        let (res, events) = decode(&mut dec, frame);
        assert_eq!(&res, want, "{what}");
        assert!(events.is_empty(), "{what}: nothing emitted");
        assert_eq!(
            dec.stats().errors.total(),
            before.errors.total() + 1,
            "{what}"
        );
        assert_eq!(dec.stats().last_error, want.err(), "{what}");
        // The decoder is ready for the next frame.
        assert_eq!(
            decode(&mut dec, &good).0,
            Ok(Decoded::Events(1)),
            "after {what}"
        );
    }
    let s = dec.stats();
    assert_eq!(s.errors.sbe, 4);
    assert_eq!(s.errors.unrepresentable, 3);
    assert_eq!(s.errors.out_of_range, 3);
    assert_eq!((s.errors.bad_id, s.errors.bad_time), (1, 2));
    assert_eq!(s.messages.depth, cases.len() as u64);

    // An unknown template is skipped and counted, not an error; so is an unknown symbol.
    let mut f = good.clone();
    f[2..4].copy_from_slice(&10_004u16.to_le_bytes());
    assert_eq!(
        decode(&mut dec, &f).0,
        Ok(Decoded::Skipped(
            pinion_feed::parse::SkipReason::UnknownTemplate
        ))
    );
    assert_eq!(dec.stats().skipped.unknown_template, 1);
    let mut f = good.clone();
    let at = f.len() - 1;
    f[at] = b'C';
    assert_eq!(
        decode(&mut dec, &f).0,
        Ok(Decoded::Skipped(
            pinion_feed::parse::SkipReason::UnknownInstrument
        ))
    );
    // The errors' text says what was seen.
    let text = ParseError::Unrepresentable {
        field: "bids",
        mantissa: 6_168_599_100_000,
        exponent: -8,
        decimals: 2,
    }
    .to_string();
    assert!(
        text.contains("6168599100000e-8") && text.contains("2 decimals"),
        "{text}"
    );
    let text = ParseError::Sbe(SbeError::BadBool { value: 2 }).to_string();
    assert!(text.contains("byte 2"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// The capture against the recording it was encoded from.

/// The events of every stream message of a source, one entry per message, with the record's
/// receive time; REST and control records left out.
fn messages(
    source: &mut dyn FrameSource,
    keep: impl Fn(&RawRecord<'_>) -> bool,
) -> (Vec<(u64, Vec<MarketEvent>)>, Decoder) {
    let mut dec = decoder();
    let mut out = Vec::new();
    while let Some(rec) = source.next_record().expect("reads") {
        if rec.kind != RecordKind::Frame || !keep(&rec) {
            continue;
        }
        let mut events = Vec::new();
        let res = dec.decode(&SPOT, &rec, 0, |e| {
            let mut e = *e;
            (e.t_recv, e.t0, e.conn) = (0, 0, ConnId(0));
            events.push(e);
        });
        match res {
            Ok(Decoded::Events(_)) => out.push((rec.t_recv, events)),
            other => panic!("record at {}: {other:?}", rec.t_recv),
        }
    }
    (out, dec)
}

#[test]
fn the_sbe_capture_decodes_to_the_json_recordings_events() {
    let (Some(pcap), Some(hbt)) = (
        pinion_testkit::data::require("binance/sbe/spot-btcusdt-20240808.sbe.pcap"),
        pinion_testkit::data::require("binance/spot-btcusdt-20240808.hbt.gz"),
    ) else {
        return;
    };
    let mut json_source = pinion_feed::source::open(&hbt).expect("opens the recording");
    let (json, json_dec) = messages(&mut *json_source, |_| true);
    let mut sbe_source = PcapSource::open(&pcap, PcapConfig::default()).expect("opens");
    let (sbe, sbe_dec) = messages(&mut sbe_source, |r| {
        pinion_feed::sbe::is_stream_message(r.payload)
    });

    assert_eq!(sbe.len(), 41_248);
    assert_eq!(json.len(), sbe.len());
    let (j, s) = (json_dec.stats(), sbe_dec.stats());
    assert_eq!(j.messages, s.messages);
    assert_eq!(
        (s.messages.trade, s.messages.book_ticker, s.messages.depth),
        (9_757, 28_040, 3_451)
    );
    assert_eq!(j.events, s.events);
    assert_eq!((s.errors.total(), s.skipped.total()), (0, 0));

    let mut split = 0;
    for (i, ((t_json, json), (_, sbe))) in json.iter().zip(&sbe).enumerate() {
        let sbe = if sbe[0].kind == EventKind::BookTicker {
            // The JSON bookTicker has no event time; the encoder put the receive time there.
            assert_eq!(sbe[0].exch_ts / 1_000, t_json / 1_000, "message {i}");
            without_exch_ts(sbe.clone())
        } else {
            sbe.clone()
        };
        assert_eq!(json, &sbe, "message {i}");
        split += usize::from(sbe.len() > 1);
    }
    assert!(split > 0, "some diffs are split over several events");
}

/// SBE is Binance Spot's: on another venue's connection a binary frame is not read as SBE.
#[test]
fn sbe_frames_are_binance_spot_only() {
    let mut dec = decoder();
    let frame = diff(5, (100, 102), &[], &[]);
    let rec = RawRecord {
        t_recv: 1,
        conn: ConnId(0),
        kind: RecordKind::Frame,
        meta: b"",
        payload: &frame,
    };
    let res = dec.decode(&ConnCtx::new(Venue::BinanceUsdm), &rec, 0, |_| {});
    assert_eq!(res, Err(ParseError::Json));
    // A REST body is never SBE either.
    let rec = RawRecord {
        kind: RecordKind::RestSnapshot,
        ..rec
    };
    assert_eq!(dec.decode(&SPOT, &rec, 0, |_| {}), Err(ParseError::Json));
}
