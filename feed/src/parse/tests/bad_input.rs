//! Malformed input: typed errors, nothing emitted, the decoder goes on.

use super::*;

// ---- Bad input -------------------------------------------------------------------------------

#[test]
fn malformed_input_is_a_typed_error_and_decoding_goes_on() {
    let mut dec = decoder();
    let depth = |b: &str| {
        format!(
            r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":{b},"a":[]}}}}"#
        )
    };
    let cases: Vec<(String, ParseError)> = vec![
        (String::new(), ParseError::Json),
        ("{".into(), ParseError::Json),
        (r#"{"stream":"btcusdt@trade","data":{"#.into(), ParseError::Json),
        ("[1,2,3]".into(), ParseError::WrongType("frame")),
        ("17".into(), ParseError::WrongType("frame")),
        (r#"{"stream":"btcusdt@trade","data":[]}"#.into(), ParseError::WrongType("data")),
        (r#"{"stream":7,"data":{}}"#.into(), ParseError::WrongType("stream")),
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"t":1,"q":"1","T":1,"m":true}}"#.into(),
            ParseError::MissingField("p"),
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"t":1,"p":1.5,"q":"1","T":1,"m":true}}"#.into(),
            ParseError::WrongType("p"),
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"t":-4,"p":"1","q":"1","T":1,"m":true}}"#.into(),
            ParseError::BadId("t"),
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"t":"4","p":"1","q":"1","T":1,"m":true}}"#.into(),
            ParseError::WrongType("t"),
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":18446744073709551615,"t":4,"p":"1","q":"1","T":1,"m":true}}"#.into(),
            ParseError::BadTime("E"),
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"t":4,"p":"1","q":"1","T":1,"m":"yes"}}"#.into(),
            ParseError::WrongType("m"),
        ),
        (depth(r#"[["1.00"]]"#), ParseError::BadLevel("b")),
        (depth(r#"[[1.0,"2"]]"#), ParseError::BadLevel("b")),
        (depth(r#"["1.00"]"#), ParseError::BadLevel("b")),
        (depth(r#"{"1.00":"2"}"#), ParseError::WrongType("b")),
        (
            depth(r#"[["1e3","2"]]"#),
            ParseError::BadNumber {
                field: "b",
                err: DecimalError::InvalidChar(b'e'),
            },
        ),
        (
            depth(r#"[["","2"]]"#),
            ParseError::BadNumber {
                field: "b",
                err: DecimalError::Empty,
            },
        ),
        (
            depth(r#"[["99999999999999999999","2"]]"#),
            ParseError::BadNumber {
                field: "b",
                err: DecimalError::Overflow,
            },
        ),
    ];
    let good = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1.00","2"]],"a":[]}}"#;
    for (json, err) in &cases {
        let (res, evs) = frame(&mut dec, &SPOT, json);
        assert_eq!(res, Err(*err), "{json}");
        assert!(evs.is_empty(), "{json}");
        // The decoder is still good for the next frame.
        assert_eq!(frame(&mut dec, &SPOT, good).0, Ok(Decoded::Events(1)));
    }
    let stats = dec.stats();
    assert_eq!(stats.errors.total(), cases.len() as u64);
    assert_eq!(stats.errors.json, 3);
    assert_eq!(stats.errors.bad_level, 3);
    assert_eq!(stats.errors.bad_number, 3);
    assert_eq!(stats.last_error, Some(cases[cases.len() - 1].1));
    assert_eq!(stats.messages.depth, cases.len() as u64);
}

#[test]
fn a_bad_level_late_in_a_snapshot_emits_nothing() {
    let mut dec = decoder();
    let mut body = String::from(r#"{"lastUpdateId":1,"bids":["#);
    for i in 0..60 {
        body.push_str(&format!(r#"["{}.00","1"],"#, 1000 - i));
    }
    body.push_str(r#"["1.001","1"]],"asks":[]}"#);
    let url = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT";
    let (res, evs) = decode_as(&mut dec, &SPOT, RecordKind::RestSnapshot, url, &body);
    assert_eq!(
        res,
        Err(ParseError::BadNumber {
            field: "bids",
            err: DecimalError::TooPrecise(2)
        })
    );
    assert!(evs.is_empty());
    assert_eq!(dec.stats().events, 0);
}

#[test]
fn oversized_frame_is_refused() {
    let mut dec = decoder();
    let big = " ".repeat(MAX_FRAME_LEN + 1);
    assert_eq!(
        frame(&mut dec, &SPOT, &big).0,
        Err(ParseError::FrameTooLarge)
    );
    assert_eq!(dec.stats().errors.frame_too_large, 1);
}

#[test]
fn escaped_strings_are_unescaped() {
    let mut dec = decoder();
    let (res, evs) = frame(
        &mut dec,
        &SPOT,
        r#"{"stream":"btcusdt\u0040trade","data":{"e":"trade","E":1,"t":4,"p":"1\u002e5","q":"1","T":1,"m":true}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    assert_eq!(evs[0].levels[0], lvl(150, 100_000));
}

#[test]
fn query_params() {
    assert_eq!(
        query_param(b"https://x/api/v3/depth?symbol=BTCUSDT&limit=5", b"symbol"),
        Some(&b"BTCUSDT"[..])
    );
    assert_eq!(
        query_param(b"https://x/depth?limit=5&symbol=ETHBTC", b"symbol"),
        Some(&b"ETHBTC"[..])
    );
    assert_eq!(
        query_param(b"https://x/depth?pairsymbol=A", b"symbol"),
        None
    );
    assert_eq!(query_param(b"https://x/depth", b"symbol"), None);
    assert_eq!(query_param(b"", b"symbol"), None);
}

#[test]
fn a_failed_frame_names_its_instrument_once_resolved() {
    let mut dec = decoder();
    // Resolved from its symbol, then a price that is not a number.
    let (res, _) = frame(
        &mut dec,
        &USDM,
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":4,"p":"x1","q":"1","T":1,"m":true}}"#,
    );
    assert!(matches!(res, Err(ParseError::BadNumber { field: "p", .. })));
    assert_eq!(dec.last_instrument(), Some(InstrumentId(1)));
    // Broken before any symbol: no instrument, not the previous frame's.
    let (res, _) = frame(&mut dec, &USDM, r#"{"stream":}"#);
    assert_eq!(res, Err(ParseError::Json));
    assert_eq!(dec.last_instrument(), None);
    // A good frame names its instrument too.
    let (res, _) = frame(
        &mut dec,
        &SPOT,
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":4,"p":"1.00","q":"1","T":1,"m":true}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    assert_eq!(dec.last_instrument(), Some(InstrumentId(0)));
}
