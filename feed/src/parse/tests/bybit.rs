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

/// Bybit's historical files (`*_ob500.data.zip`) and the `orderbook.500` stream: a 500-level
/// snapshot comes out whole, cut into events of at most `MAX_LEVELS`, bids before asks, and a
/// delta after it as usual. The topic's depth is not looked at.
#[test]
fn bybit_ob500_snapshot_and_delta() {
    use pinion_core::event::MAX_LEVELS;
    let mut dec = decoder();
    let side = |first: u32, step: i32| {
        (0..500)
            .map(|i| {
                let px = i64::from(first) + i64::from(step) * i;
                format!("[\"{}.{}\",\"0.{:03}\"]", px / 10, px % 10, i % 999 + 1)
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let json = format!(
        r#"{{"topic":"orderbook.500.BTCUSDT","type":"snapshot","ts":1723161600123,"data":{{"s":"BTCUSDT","b":[{}],"a":[{}],"u":1234,"seq":99}},"cts":1723161600120}}"#,
        side(650_000, -1),
        side(650_001, 1)
    );
    let (res, evs) = frame(&mut dec, &BYBIT_LINEAR, &json);
    let n = 1000usize.div_ceil(MAX_LEVELS);
    assert_eq!(res, Ok(Decoded::Events(u32::try_from(n).unwrap())));
    assert_eq!(evs.len(), n);
    let bids: Vec<Level> = evs.iter().flat_map(|e| e.bids().iter().copied()).collect();
    let asks: Vec<Level> = evs.iter().flat_map(|e| e.asks().iter().copied()).collect();
    assert_eq!((bids.len(), asks.len()), (500, 500));
    assert_eq!((bids[0], bids[499]), (lvl(650_000, 1), lvl(649_501, 500)));
    assert_eq!((asks[0], asks[499]), (lvl(650_001, 1), lvl(650_500, 500)));
    assert!(
        evs.iter()
            .all(|e| e.kind == EventKind::Snapshot && e.last_id == 1234)
    );
    assert!(
        evs[0].flags.contains(EventFlags::FIRST) && evs[n - 1].flags.contains(EventFlags::LAST)
    );
    assert_eq!(evs[0].exch_ts, 1_723_161_600_123_000_000);

    let (res, evs) = frame(
        &mut dec,
        &BYBIT_LINEAR,
        r#"{"topic":"orderbook.500.BTCUSDT","type":"delta","ts":1723161600223,"data":{"s":"BTCUSDT","b":[["65000.0","0"]],"a":[["65000.2","1.5"]],"u":1235,"seq":100},"cts":1723161600220}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    assert_eq!(evs[0].kind, EventKind::Depth);
    assert_eq!((evs[0].first_id, evs[0].last_id), (1235, 1235));
    assert_eq!(evs[0].bids(), &[lvl(650_000, 0)]);
    assert_eq!(evs[0].asks(), &[lvl(650_002, 1_500)]);
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
            r#"{"topic":"insurance.USDT","type":"delta","data":[],"ts":1}"#,
            SkipReason::UnknownStream,
        ),
        (
            r#"{"topic":"kline_lt.1.BTC3LUSDT","data":[{"start":1}],"ts":1,"type":"snapshot"}"#,
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
