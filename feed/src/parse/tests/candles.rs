//! Klines and 24-hour tickers of both venues: frames written for these tests after the
//! venues' documented layouts, and their malformed variants.

use super::*;
use crate::parse::Sign;
use pinion_core::{Candle, Ticker24h, TickerFields};

const MIN_NS: u64 = 60_000_000_000;

#[test]
fn binance_spot_kline_open_and_closed() {
    let mut dec = decoder();
    let (res, evs) = frame(
        &mut dec,
        &SPOT,
        r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1700000042123,"s":"BTCUSDT","k":{"t":1700000040000,"T":1700000099999,"s":"BTCUSDT","i":"1m","f":501,"L":507,"o":"36100.50","c":"36090.00","h":"36120.25","l":"36080.75","v":"1.25000","n":7,"x":false,"q":"45120.1","V":"0.50000","Q":"18050.2","B":"0"}}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let e = &evs[0];
    assert_eq!(
        (e.kind, e.instrument, e.flags),
        (EventKind::Kline, InstrumentId(0), FIRST_LAST)
    );
    let c = Candle::from_event(e).unwrap();
    assert_eq!(
        (c.start_ns, c.interval_ns, c.exch_ts, c.t_recv, c.t0),
        (
            1_700_000_040_000_000_000,
            MIN_NS,
            1_700_000_042_123_000_000,
            1_723_161_253_937_085_768,
            42
        )
    );
    assert_eq!((c.first_trade_id, c.last_trade_id, c.trades), (501, 507, 7));
    assert_eq!(
        (c.open, c.high, c.low, c.close),
        (Px(3_610_050), Px(3_612_025), Px(3_608_075), Px(3_609_000))
    );
    assert_eq!(
        (c.volume, c.taker_buy_volume, c.closed),
        (Qty(125_000), Qty(50_000), false)
    );

    // A raw `/ws/` payload, closed, an hour long, without trades (ids -1, zero volume).
    let (res, evs) = frame(
        &mut dec,
        &SPOT,
        r#"{"e":"kline","E":1700003600001,"s":"BTCUSDT","k":{"t":1699999200000,"T":1700002799999,"s":"BTCUSDT","i":"1h","f":-1,"L":-1,"o":"36090.00","c":"36090.00","h":"36090.00","l":"36090.00","v":"0.00000","n":0,"x":true,"q":"0","V":"0","Q":"0","B":"0"}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let c = Candle::from_event(&evs[0]).unwrap();
    assert_eq!(
        (c.interval_ns, c.first_trade_id, c.last_trade_id),
        (60 * MIN_NS, 0, 0)
    );
    assert_eq!((c.volume, c.trades, c.closed), (Qty(0), 0, true));
    assert!(evs[0].flags.contains(EventFlags::CLOSED));
    assert_eq!(dec.stats().messages.kline, 2);
    assert_eq!(dec.stats().skipped.unknown_stream, 0);
}

#[test]
fn binance_futures_kline_and_both_tickers() {
    let mut dec = decoder();
    let (res, evs) = frame(
        &mut dec,
        &USDM,
        r#"{"stream":"btcusdt@kline_5m","data":{"e":"kline","E":1700000100500,"s":"BTCUSDT","k":{"t":1700000100000,"T":1700000399999,"s":"BTCUSDT","i":"5m","f":9000,"L":9003,"o":"36001.2","c":"36002.0","h":"36005.0","l":"36000.1","v":"12.345","n":4,"x":false,"q":"444444.4","V":"2.000","Q":"72004.0","B":"0"}}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let c = Candle::from_event(&evs[0]).unwrap();
    assert_eq!((c.instrument, c.interval_ns), (InstrumentId(1), 5 * MIN_NS));
    assert_eq!(
        (c.open, c.close, c.volume),
        (Px(360_012), Px(360_020), Qty(12_345))
    );

    let (res, evs) = frame(
        &mut dec,
        &SPOT,
        r#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1700000050000,"s":"BTCUSDT","p":"-200.00","P":"-0.551","w":"36150.3","x":"36290.00","c":"36090.00","Q":"0.01000","b":"36089.99","B":"1.00000","a":"36090.00","A":"2.00000","o":"36290.00","h":"36500.00","l":"35900.00","v":"1234.56789","q":"44600000.1","O":1699913650000,"C":1700000050000,"F":100,"L":250,"n":151}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let e = &evs[0];
    assert_eq!((e.kind, e.flags), (EventKind::Ticker24h, FIRST_LAST));
    assert_eq!((e.first_id, e.last_id, e.seq), (100, 250, 151));
    assert_eq!(e.levels[0].qty, Qty(1_000), "last quantity");
    let t = Ticker24h::from_event(e).unwrap();
    assert_eq!(
        (t.last, t.open, t.high, t.low, t.volume, t.fields),
        (
            Px(3_609_000),
            Px(3_629_000),
            Px(3_650_000),
            Px(3_590_000),
            Qty(123_456_789),
            TickerFields::ALL
        )
    );
    assert_eq!((t.change(), t.change_bps()), (Some(-20_000), Some(-55)));
    assert_eq!(t.exch_ts, 1_700_000_050_000_000_000);

    // Futures mini ticker as a raw payload.
    let (res, evs) = frame(
        &mut dec,
        &USDM,
        r#"{"e":"24hrMiniTicker","E":1700000051000,"s":"BTCUSDT","c":"36002.0","o":"35800.0","h":"36100.0","l":"35700.0","v":"99999.999","q":"3600000000.0"}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let t = Ticker24h::from_event(&evs[0]).unwrap();
    assert_eq!(
        (t.instrument, t.last, t.volume),
        (InstrumentId(1), Px(360_020), Qty(99_999_999))
    );
    assert_eq!(
        evs[0].levels[0].qty,
        Qty(0),
        "no last quantity in the mini ticker"
    );
    assert_eq!(dec.stats().messages.ticker, 2);
}

#[test]
fn bybit_klines_and_tickers() {
    let mut dec = decoder();
    // Two candles in one message: the one closing and the one opening.
    let (res, evs) = frame(
        &mut dec,
        &BYBIT_LINEAR,
        r#"{"topic":"kline.1.BTCUSDT","type":"snapshot","ts":1700000100020,"data":[{"start":1700000040000,"end":1700000099999,"interval":"1","open":"36000.0","close":"36010.5","high":"36020.0","low":"35990.0","volume":"3.210","turnover":"115600.0","confirm":true,"timestamp":1700000100020},{"start":1700000100000,"end":1700000159999,"interval":"1","open":"36010.5","close":"36010.5","high":"36010.5","low":"36010.5","volume":"0.001","turnover":"36.0","confirm":false,"timestamp":1700000100020}]}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(2)));
    let (a, b) = (
        Candle::from_event(&evs[0]).unwrap(),
        Candle::from_event(&evs[1]).unwrap(),
    );
    assert_eq!(
        (a.instrument, a.start_ns, a.interval_ns, a.closed),
        (InstrumentId(2), 1_700_000_040_000_000_000, MIN_NS, true)
    );
    assert_eq!(
        (a.open, a.high, a.low, a.close, a.volume),
        (
            Px(360_000),
            Px(360_200),
            Px(359_900),
            Px(360_105),
            Qty(3_210)
        )
    );
    assert_eq!(
        (a.exch_ts, a.trades, a.first_trade_id),
        (1_700_000_100_020_000_000, 0, 0)
    );
    assert_eq!(
        (b.start_ns, b.closed, b.volume),
        (1_700_000_100_000_000_000, false, Qty(1))
    );

    // Spot tickers carry every field each time.
    let (res, evs) = frame(
        &mut dec,
        &BYBIT_SPOT,
        r#"{"topic":"tickers.ETHUSDT","ts":1700000000100,"type":"snapshot","cs":12345,"data":{"symbol":"ETHUSDT","lastPrice":"2010.5","highPrice24h":"2050","lowPrice24h":"1990.01","prevPrice24h":"2000","volume24h":"15000.12345","turnover24h":"30000000.5","price24hPcnt":"0.0052","usdIndexPrice":"2010.1"}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let t = Ticker24h::from_event(&evs[0]).unwrap();
    assert_eq!(
        (
            t.instrument,
            t.last,
            t.open,
            t.high,
            t.low,
            t.volume,
            t.fields
        ),
        (
            InstrumentId(3),
            Px(201_050),
            Px(200_000),
            Px(205_000),
            Px(199_001),
            Qty(1_500_012_345),
            TickerFields::ALL
        )
    );
    assert_eq!(t.change_bps(), Some(52));

    // A linear delta carries what changed; one of the best bid and ask alone carries nothing.
    let (res, evs) = frame(
        &mut dec,
        &BYBIT_LINEAR,
        r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","lastPrice":"36011.0","volume24h":"17000.500","bid1Price":"36010.9"},"cs":99,"ts":1700000100030}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let t = Ticker24h::from_event(&evs[0]).unwrap();
    assert_eq!((t.last, t.volume), (Px(360_110), Qty(17_000_500)));
    assert_eq!(
        t.fields,
        TickerFields(TickerFields::LAST.0 | TickerFields::VOLUME.0)
    );
    assert_eq!(t.change(), None);
    let (res, evs) = frame(
        &mut dec,
        &BYBIT_LINEAR,
        r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","bid1Price":"36010.9","bid1Size":"1.000"},"cs":100,"ts":1700000100031}"#,
    );
    assert_eq!((res, evs.len()), (Ok(Decoded::Events(0)), 0));
    assert_eq!(
        (dec.stats().messages.kline, dec.stats().messages.ticker),
        (1, 3)
    );
    assert_eq!(dec.stats().skipped.unknown_stream, 0);
}

#[test]
fn malformed_klines_and_tickers_are_typed_errors() {
    let mut dec = decoder();
    let spot_kline = |k: &str| {
        format!(
            r#"{{"stream":"btcusdt@kline_1m","data":{{"e":"kline","E":1700000042123,"s":"BTCUSDT","k":{k}}}}}"#
        )
    };
    let good = r#""t":1700000040000,"T":1700000099999,"f":1,"L":2,"o":"10.00","c":"11.00","h":"12.00","l":"9.00","v":"1.00000","n":2,"x":false"#;
    let cases: Vec<(String, ParseError)> = vec![
        (spot_kline(&format!("{{{}}}", good.replace(r#""h":"12.00""#, r#""h":"10.50""#))), ParseError::BadValue("high")),
        (spot_kline(&format!("{{{}}}", good.replace(r#""l":"9.00""#, r#""l":"10.50""#))), ParseError::BadValue("low")),
        (spot_kline(&format!("{{{}}}", good.replace(r#""o":"10.00""#, r#""o":"0""#))), ParseError::OutOfRange { field: "o", seen: Sign::Zero }),
        (spot_kline(&format!("{{{}}}", good.replace(r#""v":"1.00000""#, r#""v":"-1""#))), ParseError::OutOfRange { field: "v", seen: Sign::Negative }),
        (spot_kline(&format!("{{{}}}", good.replace(r#""v":"1.00000""#, r#""v":"1.000001""#))), ParseError::BadNumber { field: "v", err: DecimalError::TooPrecise(5) }),
        (spot_kline(&format!("{{{}}}", good.replace(r#""T":1700000099999"#, r#""T":1700000000000"#))), ParseError::BadValue("T")),
        (spot_kline(&format!("{{{}}}", good.replace(r#""f":1"#, r#""f":-2"#))), ParseError::BadId("f")),
        (spot_kline(&format!("{{{}}}", good.replace(r#","x":false"#, ""))), ParseError::MissingField("x")),
        (spot_kline(&format!("{{{}}}", good.replace(r#""x":false"#, r#""x":"no""#))), ParseError::WrongType("x")),
        (spot_kline(r#""k""#), ParseError::WrongType("k")),
        (r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1}}"#.to_owned(), ParseError::MissingField("k")),
        (r#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","c":"1.00","o":"1.00","h":"1.00","l":"-1.00","v":"0"}}"#.to_owned(), ParseError::OutOfRange { field: "l", seen: Sign::Negative }),
        (r#"{"e":"24hrMiniTicker","s":"BTCUSDT","c":"1.00","o":"1.00","h":"1.00","l":"1.00"}"#.to_owned(), ParseError::MissingField("v")),
    ];
    let n = cases.len() as u64;
    for (json, want) in cases {
        let (res, evs) = frame(&mut dec, &SPOT, &json);
        assert_eq!(res, Err(want), "{json}");
        assert!(evs.is_empty());
    }
    let bybit_cases = [
        (
            r#"{"topic":"kline.1.BTCUSDT","ts":1,"data":{"start":1}}"#,
            ParseError::WrongType("data"),
        ),
        (
            r#"{"topic":"kline.1.BTCUSDT","ts":1,"data":[{"start":1700000040000,"end":1700000099999,"open":"1.0","close":"1.0","high":"1.0","low":"1.0","volume":"1.000","confirm":true},{"start":1700000100000,"end":1700000159999,"open":"1.0","close":"2.0","high":"1.0","low":"1.0","volume":"1.000","confirm":false}]}"#,
            ParseError::BadValue("high"),
        ),
        (
            r#"{"topic":"kline.1.BTCUSDT","ts":1,"data":[{"start":1700000040000,"end":1700000099999,"open":"1.0","close":"1.0","high":"1.0","low":"1.0","volume":"1.000"}]}"#,
            ParseError::MissingField("confirm"),
        ),
        (
            r#"{"topic":"tickers.BTCUSDT","ts":1,"data":[1]}"#,
            ParseError::WrongType("data"),
        ),
        (
            r#"{"topic":"tickers.BTCUSDT","ts":1,"data":{"lastPrice":"x"}}"#,
            ParseError::BadNumber {
                field: "lastPrice",
                err: DecimalError::InvalidChar(b'x'),
            },
        ),
    ];
    for (json, want) in bybit_cases {
        let (res, evs) = frame(&mut dec, &BYBIT_LINEAR, json);
        assert_eq!(res, Err(want), "{json}");
        assert!(
            evs.is_empty(),
            "a bad candle after a good one emits neither: {json}"
        );
    }
    assert_eq!(dec.stats().errors.total(), n + bybit_cases.len() as u64);
    assert_eq!(dec.stats().events, 0);
}
