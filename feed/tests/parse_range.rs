//! Prices and quantities out of range: a trade or best bid/ask at or below zero, a book level
//! with a negative quantity or a price at or below zero. Each is a typed decode error, counted,
//! with nothing emitted; the strict scanner and the general path give the same answer (the
//! scanner falls back); a level quantity of zero stays a valid deletion.

use pinion_core::record::{ConnId, RawRecord, RecordKind};
use pinion_core::{InstrumentSpec, Instruments, Venue};
use pinion_feed::parse::fuzzing::FlatPair;
use pinion_feed::parse::{ConnCtx, Decoded, Decoder, ParseError, Sign};

fn instruments() -> Instruments {
    let mut reg = Instruments::new();
    for (venue, symbol, tick, step) in [
        (Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00000001"),
        (Venue::BinanceUsdm, "BTCUSDT", "0.10", "0.001"),
        (Venue::BybitLinear, "BTCUSDT", "0.10", "0.001"),
    ] {
        reg.add(InstrumentSpec::new(venue, symbol, tick, step).expect("spec"))
            .expect("register");
    }
    reg
}

fn out_of_range(field: &'static str, seen: Sign) -> Result<Decoded, ParseError> {
    Err(ParseError::OutOfRange { field, seen })
}

/// A frame with `{}` replaced by `value`.
fn with(template: &str, value: &str) -> String {
    template.replacen("{}", value, 1)
}

const SPOT_TRADE_P: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":3,"p":"{}","q":"0.02000000","T":1,"m":true}}"#;
const SPOT_TRADE_Q: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":3,"p":"61837.63000000","q":"{}","T":1,"m":true}}"#;
const AGG_TRADE_Q: &str = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":2,"s":"BTCUSDT","a":26129,"p":"61837.63","q":"{}","f":27781,"l":27785,"T":1,"m":false}}"#;
const TICKER_B: &str = r#"{"stream":"btcusdt@bookTicker","data":{"u":5,"s":"BTCUSDT","b":"{}","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#;
const TICKER_BQ: &str = r#"{"stream":"btcusdt@bookTicker","data":{"u":5,"s":"BTCUSDT","b":"61837.63000000","B":"{}","a":"61837.64000000","A":"1.54698000"}}"#;
const TICKER_A: &str = r#"{"stream":"btcusdt@bookTicker","data":{"u":5,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"{}","A":"1.54698000"}}"#;
const TICKER_AQ: &str = r#"{"stream":"btcusdt@bookTicker","data":{"u":5,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"{}"}}"#;
const FUTURES_TRADE_Q: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1,"s":"BTCUSDT","t":5,"p":"61800.30","q":"{}","X":"MARKET","m":false}}"#;
const FUTURES_TICKER_A: &str = r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5,"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"{}","A":"2.510","T":1,"E":1}}"#;
const SPOT_DEPTH_BID: &str = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["61737.63000000","0.1"],{}],"a":[["61837.64000000","1.54698000"]]}}"#;
const SPOT_DEPTH_ASK: &str = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[{}]}}"#;
const FUTURES_DEPTH_BID: &str = r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[{}],"a":[]}}"#;
const BYBIT_DELTA_ASK: &str = r#"{"topic":"orderbook.200.BTCUSDT","ts":1,"type":"delta","data":{"s":"BTCUSDT","b":[],"a":[{}],"u":7,"seq":9},"cts":1}"#;
const BYBIT_TRADE_P: &str = r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"{}","L":"PlusTick","i":"x","BT":false}]}"#;
const BYBIT_TRADE_V: &str = r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"60000.10","L":"PlusTick","i":"x","BT":false},{"T":1,"s":"BTCUSDT","S":"Sell","v":"{}","p":"60000.10","L":"PlusTick","i":"y","BT":false}]}"#;

#[test]
fn trades_and_tickers_at_or_below_zero_are_errors_both_ways() {
    let mut pair = FlatPair::new(instruments());
    let cases: &[(Venue, &str, &'static str)] = &[
        (Venue::BinanceSpot, SPOT_TRADE_P, "p"),
        (Venue::BinanceSpot, SPOT_TRADE_Q, "q"),
        (Venue::BinanceSpot, AGG_TRADE_Q, "q"),
        (Venue::BinanceSpot, TICKER_B, "b"),
        (Venue::BinanceSpot, TICKER_BQ, "B"),
        (Venue::BinanceSpot, TICKER_A, "a"),
        (Venue::BinanceSpot, TICKER_AQ, "A"),
        (Venue::BinanceUsdm, FUTURES_TRADE_Q, "q"),
        (Venue::BinanceUsdm, FUTURES_TICKER_A, "a"),
        (Venue::BybitLinear, BYBIT_TRADE_P, "p"),
        (Venue::BybitLinear, BYBIT_TRADE_V, "v"),
    ];
    for &(venue, template, field) in cases {
        // The template as written decodes: the errors below come from the one value.
        let good = if matches!(field, "p" | "b" | "a") {
            "61837.70"
        } else {
            "0.500"
        };
        let (res, events) = pair.check(venue, 1, with(template, good).as_bytes());
        assert!(
            matches!(res, Ok(Decoded::Events(n)) if n > 0 && events.len() == n as usize),
            "{template}: {res:?}"
        );
        for (value, seen) in [
            ("0", Sign::Zero),
            ("0.00000000", Sign::Zero),
            ("-0.5", Sign::Negative),
            ("-61837.6", Sign::Negative),
        ] {
            let frame = with(template, value);
            let (res, events) = pair.check(venue, 1, frame.as_bytes());
            assert_eq!(res, out_of_range(field, seen), "{frame}");
            assert!(events.is_empty(), "{frame}");
            assert!(!pair.scanner_accepts(venue, frame.as_bytes()), "{frame}");
        }
    }
}

#[test]
fn book_levels_delete_at_zero_and_are_errors_below_zero_or_at_a_zero_price() {
    let mut pair = FlatPair::new(instruments());
    let sides: &[(Venue, &str, &'static str)] = &[
        (Venue::BinanceSpot, SPOT_DEPTH_BID, "b"),
        (Venue::BinanceSpot, SPOT_DEPTH_ASK, "a"),
        (Venue::BinanceUsdm, FUTURES_DEPTH_BID, "b"),
        (Venue::BybitLinear, BYBIT_DELTA_ASK, "a"),
    ];
    for &(venue, template, field) in sides {
        // A zero quantity deletes the level: valid, and the scanner takes it.
        let frame = with(template, r#"["61800.10","0"]"#);
        let (res, events) = pair.check(venue, 1, frame.as_bytes());
        assert_eq!(res, Ok(Decoded::Events(1)), "{frame}");
        assert!(
            events[0]
                .bids()
                .iter()
                .chain(events[0].asks())
                .any(|l| l.qty.0 == 0),
            "{frame}"
        );
        assert!(pair.scanner_accepts(venue, frame.as_bytes()), "{frame}");
        for (level, seen) in [
            (r#"["61800.10","-0.5"]"#, Sign::Negative),
            (r#"["0","1.5"]"#, Sign::Zero),
            (r#"["0.00","0"]"#, Sign::Zero),
            (r#"["-61800.10","1.5"]"#, Sign::Negative),
        ] {
            let frame = with(template, level);
            let (res, events) = pair.check(venue, 1, frame.as_bytes());
            assert_eq!(res, out_of_range(field, seen), "{frame}");
            assert!(events.is_empty(), "{frame}");
            assert!(!pair.scanner_accepts(venue, frame.as_bytes()), "{frame}");
        }
    }
}

#[test]
fn out_of_range_values_are_counted_and_decoding_goes_on() {
    let mut dec = Decoder::new(instruments());
    let spot = ConnCtx::new(Venue::BinanceSpot);
    let decode = |dec: &mut Decoder, kind: RecordKind, meta: &str, payload: &str| {
        let rec = RawRecord {
            t_recv: 1,
            conn: ConnId(1),
            kind,
            meta: meta.as_bytes(),
            payload: payload.as_bytes(),
        };
        let mut n = 0;
        let res = dec.decode(&spot, &rec, 2, |_| n += 1);
        (res, n)
    };
    let bad = [
        with(SPOT_TRADE_Q, "0"),
        with(TICKER_BQ, "-1"),
        with(SPOT_DEPTH_BID, r#"["61800.10","-1"]"#),
    ];
    for frame in &bad {
        let (res, n) = decode(&mut dec, RecordKind::Frame, "", frame);
        assert!(
            matches!(res, Err(ParseError::OutOfRange { .. })),
            "{frame}: {res:?}"
        );
        assert_eq!(n, 0);
    }
    // A REST snapshot goes through the general path only: the same rule.
    let url = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000";
    let (res, n) = decode(
        &mut dec,
        RecordKind::RestSnapshot,
        url,
        r#"{"lastUpdateId":9,"bids":[["61800.10","1"]],"asks":[["61800.20","-0.1"]]}"#,
    );
    assert_eq!(res, out_of_range("asks", Sign::Negative));
    assert_eq!(n, 0);
    // The decoder goes on: a good frame after the bad ones decodes.
    let (res, n) = decode(&mut dec, RecordKind::Frame, "", &with(SPOT_TRADE_Q, "0.5"));
    assert_eq!((res, n), (Ok(Decoded::Events(1)), 1));
    let stats = dec.stats();
    assert_eq!(stats.errors.out_of_range, 4);
    assert_eq!(stats.errors.total(), 4);
    assert_eq!(stats.messages.trade, 1);
    assert_eq!(
        stats.last_error,
        Some(ParseError::OutOfRange {
            field: "asks",
            seen: Sign::Negative
        })
    );
    // The error says what was seen.
    let text = ParseError::OutOfRange {
        field: "B",
        seen: Sign::Zero,
    }
    .to_string();
    assert!(text.contains("\"B\" is zero"), "{text}");
}
