//! Golden frames written byte by byte from `stream_1_0.xml`: every field in schema order,
//! little-endian, packed (the schema gives no offsets), groups after the root block, the
//! symbol last.

use super::*;

/// −8 as an `int8`.
const E8: u8 = 0xF8;

fn encode(json: &str, t_recv_ns: u64, stream: Option<&str>) -> (Encoded, Vec<u8>) {
    let mut enc = SbeEncoder::new(Exponents::BINANCE_SPOT);
    let out = enc.encode(json.as_bytes(), t_recv_ns, stream).expect(json);
    (out, enc.frame().to_vec())
}

fn le(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

#[test]
fn trade_golden() {
    let json = r#"{"e":"trade","E":1,"s":"BNBBTC","t":12345,"p":"0.00000257","q":"100","T":2,"m":true,"M":true}"#;
    let mut want: Vec<u8> = vec![
        18, 0, 0x10, 0x27, 1, 0, 0,
        0, // header: block 18, template 10000, schema 1, version 0
        0xE8, 0x03, 0, 0, 0, 0, 0, 0, // eventTime 1000 µs
        0xD0, 0x07, 0, 0, 0, 0, 0, 0, // transactTime 2000 µs
        E8, E8, // priceExponent, qtyExponent
        25, 0, 1, 0, 0, 0, // trades group: block 25, one entry
        0x39, 0x30, 0, 0, 0, 0, 0, 0, // id 12345
        0x01, 0x01, 0, 0, 0, 0, 0, 0, // price 257e-8
        0x00, 0xE4, 0x0B, 0x54, 0x02, 0, 0, 0, // qty 100e8 e-8
        1, // isBuyerMaker (isBestMatch is constant: no byte)
        6,
    ];
    want.extend_from_slice(b"BNBBTC");
    assert_eq!(
        encode(json, 0, None),
        (Encoded::Frame(Template::Trades), want)
    );
    // The same inside the combined envelope, `data` before `stream`.
    let wrapped = format!(r#"{{"data":{json},"stream":"bnbbtc@trade"}}"#);
    assert_eq!(encode(&wrapped, 0, None).1, encode(json, 0, None).1);
}

#[test]
fn best_bid_ask_golden_takes_the_receive_time() {
    let json = r#"{"u":5,"s":"BNBUSDT","b":"1.5","B":"2","a":"1.50000001","A":"0.00000001"}"#;
    let mut want: Vec<u8> = vec![
        50, 0, 0x11, 0x27, 1, 0, 0, 0, // header: block 50, template 10001
        0x60, 0xE3, 0x16, 0, 0, 0, 0, 0, // eventTime 1_500_000 µs (receive time, truncated)
        5, 0, 0, 0, 0, 0, 0, 0, // bookUpdateId
        E8, E8, //
        0x80, 0xD1, 0xF0, 0x08, 0, 0, 0, 0, // bidPrice 150_000_000
        0x00, 0xC2, 0xEB, 0x0B, 0, 0, 0, 0, // bidQty 200_000_000
        0x81, 0xD1, 0xF0, 0x08, 0, 0, 0, 0, // askPrice 150_000_001
        1, 0, 0, 0, 0, 0, 0, 0, // askQty 1
        7,
    ];
    want.extend_from_slice(b"BNBUSDT");
    assert_eq!(
        encode(json, 1_500_000_999, None),
        (Encoded::Frame(Template::BestBidAsk), want)
    );
}

#[test]
fn depth_snapshot_golden_names_the_symbol_from_the_stream() {
    let data =
        r#"{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"],["0.0027","0"]]}"#;
    let mut want: Vec<u8> = vec![
        18, 0, 0x12, 0x27, 1, 0, 0, 0, // header: block 18, template 10002
        0xD0, 0x07, 0, 0, 0, 0, 0, 0, // eventTime 2000 µs (receive time)
        160, 0, 0, 0, 0, 0, 0, 0, // bookUpdateId
        E8, E8, //
        16, 0, 1, 0, // bids: block 16, one entry
        0x80, 0xA9, 0x03, 0, 0, 0, 0, 0, // 0.0024
        0x00, 0xCA, 0x9A, 0x3B, 0, 0, 0, 0, // 10
        16, 0, 2, 0, // asks: two entries
        0xA0, 0xF7, 0x03, 0, 0, 0, 0, 0, // 0.0026
        0x00, 0xE4, 0x0B, 0x54, 0x02, 0, 0, 0, // 100
        0xB0, 0x1E, 0x04, 0, 0, 0, 0, 0, // 0.0027
        0, 0, 0, 0, 0, 0, 0, 0, // 0
        6,
    ];
    want.extend_from_slice(b"BNBBTC");
    let wrapped = format!(r#"{{"stream":"bnbbtc@depth5@100ms","data":{data}}}"#);
    let got = encode(&wrapped, 2_000_000, None);
    assert_eq!(got, (Encoded::Frame(Template::DepthSnapshot), want.clone()));
    // A raw payload takes its symbol from the stream the caller names.
    assert_eq!(encode(data, 2_000_000, Some("bnbbtc@depth5")).1, want);
    let mut enc = SbeEncoder::new(Exponents::BINANCE_SPOT);
    assert_eq!(
        enc.encode(data.as_bytes(), 0, None),
        Err(SbeEncodeError::Missing {
            message: "partial depth",
            field: "s"
        })
    );
}

#[test]
fn depth_diff_golden() {
    let json =
        r#"{"e":"depthUpdate","E":3,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[]}"#;
    let mut want: Vec<u8> = vec![
        26, 0, 0x13, 0x27, 1, 0, 0, 0, // header: block 26, template 10003
        0xB8, 0x0B, 0, 0, 0, 0, 0, 0, // eventTime 3000 µs
        157, 0, 0, 0, 0, 0, 0, 0, // firstBookUpdateId
        160, 0, 0, 0, 0, 0, 0, 0, // lastBookUpdateId
        E8, E8, //
        16, 0, 1, 0, // bids: one entry
        0x80, 0xA9, 0x03, 0, 0, 0, 0, 0, // 0.0024
        0x00, 0xCA, 0x9A, 0x3B, 0, 0, 0, 0, // 10
        16, 0, 0, 0, // asks: none
        6,
    ];
    want.extend_from_slice(b"BNBBTC");
    assert_eq!(
        encode(json, 0, None),
        (Encoded::Frame(Template::DepthDiff), want)
    );
}

#[test]
fn a_real_message_matches_its_fields() {
    // From the shipped BTCUSDT recording.
    let json = r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#;
    let (_, frame) = encode(json, 1_723_161_254_087_891_268, None);
    assert_eq!(frame.len(), 8 + 50 + 1 + 7);
    assert_eq!(frame[8..16], le(1_723_161_254_087_891));
    assert_eq!(frame[16..24], le(50_093_239_212));
    assert_eq!(frame[26..34], le(6_183_763_000_000));
    assert_eq!(frame[34..42], le(378_826_000));
    assert_eq!(frame[42..50], le(6_183_764_000_000));
    assert_eq!(frame[50..58], le(154_698_000));
}

#[test]
fn control_replies_and_other_streams_are_not_encoded() {
    let mut enc = SbeEncoder::new(Exponents::BINANCE_SPOT);
    for (json, want) in [
        (r#"{"result":null,"id":1}"#, Encoded::Control),
        (r#"{"error":{"code":2,"msg":"x"},"id":3}"#, Encoded::Control),
        (
            r#"{"e":"serverShutdown","E":1770123456789}"#,
            Encoded::Control,
        ),
        (
            r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,"p":"1","q":"1","f":1,"l":1,"T":1,"m":true,"M":true}}"#,
            Encoded::NoSbeStream,
        ),
        (
            r#"{"e":"24hrMiniTicker","E":1,"s":"BTCUSDT","c":"1"}"#,
            Encoded::NoSbeStream,
        ),
    ] {
        assert_eq!(enc.encode(json.as_bytes(), 0, None), Ok(want), "{json}");
        assert!(enc.frame().is_empty());
    }
}

#[test]
fn bad_messages_are_typed_errors() {
    let mut enc = SbeEncoder::new(Exponents::BINANCE_SPOT);
    let mut err = |json: &str| enc.encode(json.as_bytes(), 0, None).expect_err(json);
    assert!(matches!(err("{nope"), SbeEncodeError::Json(_)));
    assert!(matches!(err("[1,2]"), SbeEncodeError::Json(_)));
    assert_eq!(
        err(r#"{"e":"trade","E":"x","s":"A"}"#),
        SbeEncodeError::WrongType { field: "E" }
    );
    assert_eq!(
        err(r#"{"e":"depthUpdate","E":1,"s":"A","U":1,"u":2,"b":[["1","1","1"]],"a":[]}"#),
        SbeEncodeError::WrongType { field: "b" }
    );
    assert_eq!(
        err(r#"{"e":"trade","E":1,"s":"A","t":1,"p":"1","q":"1","m":true}"#),
        SbeEncodeError::Missing {
            message: "trade",
            field: "T"
        }
    );
    assert_eq!(
        err(r#"{"e":"trade","E":1,"s":"A","t":1,"p":"0.000000001","q":"1","T":1,"m":true}"#),
        SbeEncodeError::Decimal {
            field: "p",
            text: "0.000000001".into(),
            exponent: -8
        }
    );
    assert_eq!(
        err(r#"{"e":"depthUpdate","E":1,"s":"A","U":1,"u":2,"b":[["1","-1"]],"a":[]}"#),
        SbeEncodeError::Decimal {
            field: "b",
            text: "-1".into(),
            exponent: -8
        }
    );
    assert_eq!(
        err(r#"{"e":"depthUpdate","E":1,"s":"A","U":1,"u":2,"pu":0,"b":[],"a":[]}"#),
        SbeEncodeError::Futures
    );
    assert_eq!(
        err(r#"{"e":"trade","E":18446744073709551,"s":"A","t":1,"p":"1","q":"1","T":1,"m":true}"#),
        SbeEncodeError::OutOfRange {
            field: "E",
            value: 18_446_744_073_709_551_000
        }
    );
    assert_eq!(
        err(r#"{"e":"depthUpdate","E":1,"s":"A","U":1,"u":18446744073709551615,"b":[],"a":[]}"#),
        SbeEncodeError::OutOfRange {
            field: "u",
            value: u64::MAX
        }
    );
    let long = "X".repeat(256);
    assert_eq!(
        err(&format!(
            r#"{{"u":1,"s":"{long}","b":"1","B":"1","a":"1","A":"1"}}"#
        )),
        SbeEncodeError::SymbolTooLong { len: 256 }
    );
    let levels = vec![r#"["1","1"]"#; 65_536].join(",");
    assert_eq!(
        err(&format!(
            r#"{{"e":"depthUpdate","E":1,"s":"A","U":1,"u":2,"b":[{levels}],"a":[]}}"#
        )),
        SbeEncodeError::TooManyLevels { count: 65_536 }
    );
    // A failed frame leaves no frame behind.
    assert!(enc.frame().is_empty());
}

#[test]
fn mantissas_are_exact_from_the_digits() {
    assert_eq!(mantissa("61685.99000000", -8), Some(6_168_599_000_000));
    assert_eq!(mantissa("0.00000001", -8), Some(1));
    assert_eq!(mantissa("12", -8), Some(1_200_000_000));
    assert_eq!(mantissa("1.23000000000", -2), Some(123));
    assert_eq!(mantissa("1.231", -2), None);
    assert_eq!(mantissa("7", 0), Some(7));
    assert_eq!(mantissa("92233720368.54775807", -8), Some(i64::MAX));
    assert_eq!(mantissa("92233720368.54775808", -8), None);
    for bad in [
        "", ".", "1.", ".5", "-1", "+1", "1e5", "1.2.3", " 1", "0x1", "1,5",
    ] {
        assert_eq!(mantissa(bad, -8), None, "{bad:?}");
    }
    assert_eq!(mantissa("1", 1), None);
    assert_eq!(mantissa("1", -19), None);
}

#[test]
fn the_reader_reads_back_what_the_encoder_wrote() {
    use crate::sbe::{StreamMessage, read};
    let (_, frame) = encode(
        r#"{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}"#,
        0,
        None,
    );
    let Ok(StreamMessage::Trades(t)) = read(&frame) else {
        panic!("not trades");
    };
    assert_eq!(
        (t.event_time_us, t.transact_time_us, t.price_exp, t.qty_exp),
        (1_723_161_255_343_000, 1_723_161_255_342_000, -8, -8)
    );
    assert_eq!(t.trades.len(), 1);
    let e = t.trades.trade(0);
    assert_eq!(
        (e.id, e.price, e.qty, e.buyer_maker),
        (3_735_683_259, 6_183_763_000_000, 2_000_000, true)
    );
    assert_eq!(t.symbol, b"BTCUSDT");

    let (_, frame) = encode(
        r#"{"e":"depthUpdate","E":5,"s":"BTCUSDT","U":7,"u":9,"b":[["1.5","2"],["1.4","0"]],"a":[["1.6","3.25"]]}"#,
        0,
        None,
    );
    let Ok(StreamMessage::DepthDiff(d)) = read(&frame) else {
        panic!("not a diff");
    };
    assert_eq!(
        (d.event_time_us, d.first_update_id, d.last_update_id),
        (5000, 7, 9)
    );
    assert_eq!(
        d.bids.levels().collect::<Vec<_>>(),
        [(150_000_000, 200_000_000), (140_000_000, 0)]
    );
    assert_eq!(
        d.asks.levels().collect::<Vec<_>>(),
        [(160_000_000, 325_000_000)]
    );

    let (_, frame) = encode(
        r#"{"lastUpdateId":11,"bids":[],"asks":[["2","1"]]}"#,
        3_000_000,
        Some("ethbtc@depth20@100ms"),
    );
    let Ok(StreamMessage::DepthSnapshot(d)) = read(&frame) else {
        panic!("not a snapshot");
    };
    assert_eq!((d.event_time_us, d.last_update_id), (3000, 11));
    assert!(d.bids.is_empty());
    assert_eq!(d.symbol, b"ETHBTC");
}

mod fuzz_on_stable {
    use proptest::prelude::*;

    use super::super::fuzzing::encode_input;

    const SEEDS: &[&str] = &[
        r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":50093239189,"u":50093239202,"b":[["61737.63000000","0.00000000"]],"a":[["61837.64000000","1.54698000"]]}}"#,
        r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#,
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#,
        r#"{"lastUpdateId":160,"bids":[["0.01","1"]],"asks":[["0.02","2"]]}"#,
        r#"{"result":null,"id":1}"#,
    ];

    proptest! {
        #[test]
        fn mutated_frames_keep_the_promises(
            seed in 0..SEEDS.len(),
            edits in prop::collection::vec((any::<usize>(), prop_oneof![
                any::<u8>(),
                prop::sample::select(b"{}[]\",:.-0123456789eE \\".to_vec()),
            ], 0u8..3), 0..6),
        ) {
            let mut v = SEEDS[seed].as_bytes().to_vec();
            for (i, b, op) in edits {
                let len = v.len().max(1);
                match op {
                    0 if !v.is_empty() => v[i % len] = b,
                    1 => v.insert(i % (v.len() + 1), b),
                    _ => v.truncate(v.len() - i % (v.len() / 4 + 1)),
                }
            }
            encode_input(&v, 1_723_161_254_087_891_268);
        }

        #[test]
        fn random_bytes_keep_the_promises(data in prop::collection::vec(any::<u8>(), 0..256)) {
            encode_input(&data, 0);
        }

        #[test]
        fn mantissas_round_trip(m in 0i64..=i64::MAX, places in 0u32..=18, zeros in 0usize..4) {
            let digits = format!("{m:0>width$}", width = places as usize + 1);
            let (int, frac) = digits.split_at(digits.len() - places as usize);
            let text = if places == 0 {
                int.to_owned()
            } else {
                format!("{int}.{frac}{}", "0".repeat(zeros))
            };
            let exponent = -(places as i8);
            prop_assert_eq!(super::mantissa(&text, exponent), Some(m), "{}", text);
        }
    }
}
