//! Bybit v5 frames and REST snapshots.

use super::*;

// ---- Bybit -----------------------------------------------------------------------------------

#[test]
fn bybit_snapshot_and_delta() {
    let mut dec = decoder();
    // Linear puts `ts` after `type`.
    let (res, evs) = frame(
        &mut dec,
        &BYBIT_LINEAR,
        r#"{"topic":"orderbook.200.BTCUSDT","type":"snapshot","ts":1786310818129,"data":{"s":"BTCUSDT","b":[["65114.20","6.054"],["65114.10","0.002"]],"a":[["65114.30","10.470"]],"u":15076952,"seq":753843913860},"cts":1786310818128}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let e = &evs[0];
    assert_eq!(
        (e.kind, e.instrument),
        (EventKind::Snapshot, InstrumentId(2))
    );
    assert_eq!(
        (e.first_id, e.last_id, e.seq),
        (15_076_952, 15_076_952, 753_843_913_860)
    );
    assert_eq!(
        (e.exch_ts, e.trans_ts),
        (1_786_310_818_129_000_000, 1_786_310_818_128_000_000)
    );
    assert_eq!(e.bids(), &[lvl(651_142, 6_054), lvl(651_141, 2)]);
    assert_eq!(e.asks(), &[lvl(651_143, 10_470)]);
    assert_eq!(e.flags, FIRST_LAST);

    // Spot puts `ts` before `type`, and writes prices without trailing zeros.
    let (res, evs) = frame(
        &mut dec,
        &BYBIT_SPOT,
        r#"{"topic":"orderbook.200.ETHUSDT","ts":1786310816618,"type":"delta","data":{"s":"ETHUSDT","b":[["1923.2","0.875077"]],"a":[["1923.5","0"]],"u":62505425,"seq":112488545865},"cts":1786310816585}"#,
    );
    // 0.875077 has six decimals; the spot ETHUSDT step allows five.
    assert_eq!(
        res,
        Err(ParseError::BadNumber {
            field: "b",
            err: DecimalError::TooPrecise(5)
        })
    );
    assert!(evs.is_empty());
    let (res, evs) = frame(
        &mut dec,
        &BYBIT_SPOT,
        r#"{"topic":"orderbook.200.ETHUSDT","ts":1786310816618,"type":"delta","data":{"s":"ETHUSDT","b":[["1923.2","0.87507"]],"a":[["1923.5","0"]],"u":62505425,"seq":112488545865},"cts":1786310816585}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    assert_eq!(evs[0].kind, EventKind::Depth);
    assert_eq!(evs[0].bids(), &[lvl(192_320, 87_507)]);
    assert_eq!(evs[0].asks(), &[lvl(192_350, 0)]);
    assert_eq!(dec.stats().messages.snapshot, 1);
    assert_eq!(dec.stats().messages.depth, 1);
}

#[test]
fn bybit_restart_snapshot_sets_reset() {
    let mut dec = decoder();
    let (res, evs) = frame(
        &mut dec,
        &BYBIT_LINEAR,
        r#"{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[],"u":1,"seq":9},"cts":1}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    assert_eq!(evs[0].flags, FIRST_LAST | EventFlags::RESET);
    assert_eq!(evs[0].n_levels, 0);
}

#[test]
fn bybit_public_trades_one_event_each() {
    let mut dec = decoder();
    let (res, evs) = frame(
        &mut dec,
        &BYBIT_LINEAR,
        r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1786310819681,"data":[{"T":1786310819680,"s":"BTCUSDT","S":"Sell","v":"0.004","p":"65114.20","L":"MinusTick","i":"a9188a0a-82bc-50de-be60-03eedbe3cdd7","BT":false,"RPI":false,"seq":753843954913},{"T":1786310819681,"s":"BTCUSDT","S":"Buy","v":"1.000","p":"65114.30","L":"PlusTick","i":"12345","BT":false,"RPI":false,"seq":753843954914}]}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(2)));
    assert_eq!(evs[0].kind, EventKind::Trade);
    assert_eq!((evs[0].last_id, evs[0].seq), (0, 753_843_954_913));
    assert_eq!(evs[0].flags, FIRST_LAST | EventFlags::BUYER_MAKER);
    assert_eq!(evs[0].levels[0], lvl(651_142, 4));
    assert_eq!(evs[0].exch_ts, 1_786_310_819_681_000_000);
    assert_eq!(evs[0].trans_ts, 1_786_310_819_680_000_000);
    assert_eq!((evs[1].last_id, evs[1].flags), (12_345, FIRST_LAST));
    assert_eq!(dec.stats().messages.trade, 1);
    assert_eq!(dec.stats().events, 2);
}

#[test]
fn bybit_bad_trade_emits_nothing() {
    let mut dec = decoder();
    let (res, evs) = frame(
        &mut dec,
        &BYBIT_LINEAR,
        r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"S":"Buy","v":"0.004","p":"1.0","i":"1","seq":1},{"T":1,"S":"Hold","v":"0.004","p":"1.0","i":"2","seq":2}]}"#,
    );
    assert_eq!(res, Err(ParseError::BadValue("S")));
    assert!(evs.is_empty());
}

#[test]
fn bybit_control_and_unknown_topics() {
    let mut dec = decoder();
    let cases = [
        (
            r#"{"success":true,"ret_msg":"","conn_id":"d8bu1olkndm7crnfs1e0-j6akw","req_id":"","op":"subscribe"}"#,
            SkipReason::Control,
        ),
        (
            r#"{"success":true,"ret_msg":"pong","conn_id":"x","op":"ping"}"#,
            SkipReason::Control,
        ),
        (
            r#"{"args":["1786310819"],"op":"pong"}"#,
            SkipReason::Control,
        ),
        (
            r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","bid1Price":"65114.20"},"cs":1,"ts":1}"#,
            SkipReason::UnknownStream,
        ),
        (
            r#"{"topic":"kline.1.BTCUSDT","data":[{"start":1}],"ts":1,"type":"snapshot"}"#,
            SkipReason::UnknownStream,
        ),
        (
            r#"{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1,"data":[]}"#,
            SkipReason::UnknownStream,
        ),
        (
            r#"{"topic":"orderbook.200.XRPUSDT","type":"delta","ts":1,"data":{"b":[],"a":[],"u":2,"seq":3}}"#,
            SkipReason::UnknownInstrument,
        ),
    ];
    for (json, reason) in cases {
        assert_eq!(
            frame(&mut dec, &BYBIT_LINEAR, json),
            (Ok(Decoded::Skipped(reason)), vec![]),
            "{json}"
        );
    }
}

#[test]
fn bybit_rest_snapshot() {
    let mut dec = decoder();
    let body = r#"{"retCode":0,"retMsg":"OK","result":{"s":"BTCUSDT","b":[["65000.0","1.000"]],"a":[["65000.1","2.000"]],"ts":1716863719031,"u":230704,"seq":1432604333,"cts":1716863718905},"retExtInfo":{},"time":1716863719382}"#;
    let url = "https://api.bybit.com/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=200";
    let (res, evs) = decode_as(&mut dec, &BYBIT_LINEAR, RecordKind::RestSnapshot, url, body);
    assert_eq!(res, Ok(Decoded::Events(1)));
    let e = &evs[0];
    assert_eq!(
        (e.kind, e.last_id, e.seq),
        (EventKind::Snapshot, 230_704, 1_432_604_333)
    );
    assert_eq!(
        (e.exch_ts, e.trans_ts),
        (1_716_863_719_031_000_000, 1_716_863_718_905_000_000)
    );
    assert_eq!(e.bids(), &[lvl(650_000, 1_000)]);
    // Without the URL the body's `s` names the instrument.
    let (res, _) = decode_as(&mut dec, &BYBIT_LINEAR, RecordKind::RestSnapshot, "", body);
    assert_eq!(res, Ok(Decoded::Events(1)));
    let (res, _) = decode_as(
        &mut dec,
        &BYBIT_LINEAR,
        RecordKind::RestSnapshot,
        url,
        r#"{"retCode":10001,"retMsg":"params error","result":{},"time":1}"#,
    );
    assert_eq!(res, Ok(Decoded::Skipped(SkipReason::ErrorResponse)));
}
