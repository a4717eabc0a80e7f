//! Binance Spot and USD-M frames and REST snapshots.

use super::*;

// ---- Binance Spot ----------------------------------------------------------------------------

#[test]
fn spot_depth_update_in_combined_envelope() {
    let mut dec = decoder();
    let (res, evs) = frame(
        &mut dec,
        &SPOT,
        r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":50093239189,"u":50093239202,"b":[["61737.63000000","0.00000000"],["61730.17000000","0.00100000"]],"a":[["61837.64000000","1.54698000"]]}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let e = &evs[0];
    assert_eq!(e.kind, EventKind::Depth);
    assert_eq!(e.flags, FIRST_LAST);
    assert_eq!(
        (e.first_id, e.last_id, e.prev_id),
        (50_093_239_189, 50_093_239_202, 0)
    );
    assert_eq!(e.exch_ts, 1_723_161_255_208_000_000);
    assert_eq!(e.trans_ts, 0);
    assert_eq!(
        (e.t_recv, e.t0, e.conn),
        (1_723_161_253_937_085_768, 42, ConnId(7))
    );
    assert_eq!(e.instrument, InstrumentId(0));
    assert_eq!(e.bids(), &[lvl(6_173_763, 0), lvl(6_173_017, 100)]);
    assert_eq!(e.asks(), &[lvl(6_183_764, 154_698)]);
    assert_eq!(dec.stats().messages.depth, 1);
    assert_eq!(dec.stats().events, 1);
}

#[test]
fn spot_raw_depth_update_uses_payload_symbol() {
    let mut dec = decoder();
    let (res, evs) = frame(
        &mut dec,
        &SPOT,
        r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":6,"b":[],"a":[["1.00","2"]]}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    assert_eq!((evs[0].first_id, evs[0].last_id), (5, 6));
    assert_eq!(evs[0].asks(), &[lvl(100, 200_000)]);
    assert!(evs[0].bids().is_empty());
}

#[test]
fn spot_partial_depth_takes_symbol_from_stream_name() {
    let mut dec = decoder();
    let (res, evs) = frame(
        &mut dec,
        &SPOT,
        r#"{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":160,"bids":[["0.01","1"]],"asks":[["0.02","2"],["0.03","3"]]}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let e = &evs[0];
    assert_eq!(e.kind, EventKind::PartialDepth);
    assert_eq!(e.last_id, 160);
    assert_eq!((e.n_bids, e.n_levels), (1, 3));
    assert_eq!(dec.stats().messages.partial_depth, 1);
}

#[test]
fn raw_partial_depth_needs_the_connections_instrument() {
    let mut dec = decoder();
    let json = r#"{"lastUpdateId":160,"bids":[["0.01","1"]],"asks":[]}"#;
    let (res, evs) = frame(&mut dec, &SPOT, json);
    assert_eq!(res, Ok(Decoded::Skipped(SkipReason::UnknownInstrument)));
    assert!(evs.is_empty());
    let ctx = ConnCtx {
        venue: Venue::BinanceSpot,
        default_instrument: Some(InstrumentId(0)),
    };
    let (res, evs) = frame(&mut dec, &ctx, json);
    assert_eq!(res, Ok(Decoded::Events(1)));
    assert_eq!(evs[0].kind, EventKind::PartialDepth);
    assert_eq!(dec.stats().skipped.unknown_instrument, 1);
}

#[test]
fn spot_trade_and_agg_trade() {
    let mut dec = decoder();
    let (res, evs) = frame(
        &mut dec,
        &SPOT,
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let e = &evs[0];
    assert_eq!(e.kind, EventKind::Trade);
    assert_eq!(e.last_id, 3_735_683_259);
    assert_eq!(
        (e.exch_ts, e.trans_ts),
        (1_723_161_255_343_000_000, 1_723_161_255_342_000_000)
    );
    assert_eq!(e.levels[0], lvl(6_183_763, 2_000));
    assert_eq!(e.n_levels, 1);
    assert_eq!(e.flags, FIRST_LAST | EventFlags::BUYER_MAKER);

    let (res, evs) = frame(
        &mut dec,
        &SPOT,
        r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":2,"s":"BTCUSDT","a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1,"m":false,"M":true}}"#,
    );
    // 0.01633102 has more decimals than the 0.01 tick allows.
    assert_eq!(
        res,
        Err(ParseError::BadNumber {
            field: "p",
            err: DecimalError::TooPrecise(2)
        })
    );
    assert!(evs.is_empty());
    let (res, evs) = frame(
        &mut dec,
        &SPOT,
        r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":2,"s":"BTCUSDT","a":26129,"p":"61837.63","q":"4.70443","f":27781,"l":27785,"T":1,"m":false,"M":true}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let e = &evs[0];
    assert_eq!((e.seq, e.first_id, e.last_id), (26_129, 27_781, 27_785));
    assert_eq!(e.flags, FIRST_LAST | EventFlags::AGGREGATE);
    assert_eq!(e.levels[0], lvl(6_183_763, 470_443));
    assert_eq!(dec.stats().messages.trade, 1);
    assert_eq!(dec.stats().messages.agg_trade, 1);
    assert_eq!(dec.stats().errors.bad_number, 1);
}

#[test]
fn spot_book_ticker_has_no_event_time() {
    let mut dec = decoder();
    for json in [
        r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#,
        r#"{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}"#,
    ] {
        let (res, evs) = frame(&mut dec, &SPOT, json);
        assert_eq!(res, Ok(Decoded::Events(1)));
        let e = &evs[0];
        assert_eq!(e.kind, EventKind::BookTicker);
        assert_eq!((e.last_id, e.exch_ts), (50_093_239_212, 0));
        assert_eq!(e.ticker_bid(), Some(lvl(6_183_763, 378_826)));
        assert_eq!(e.ticker_ask(), Some(lvl(6_183_764, 154_698)));
        assert_eq!(e.flags, FIRST_LAST);
    }
    assert_eq!(dec.stats().messages.book_ticker, 2);
}

#[test]
fn spot_rest_snapshot_splits_and_finds_its_symbol() {
    let mut dec = decoder();
    let mut body = String::from(r#"{"lastUpdateId":50093239218,"bids":["#);
    for i in 0..30 {
        body.push_str(&format!(
            r#"{}["{}.00","1.00000"]"#,
            if i > 0 { "," } else { "" },
            100 - i
        ));
    }
    body.push_str(r#"],"asks":["#);
    for i in 0..40 {
        body.push_str(&format!(
            r#"{}["{}.00","0.50000"]"#,
            if i > 0 { "," } else { "" },
            101 + i
        ));
    }
    body.push_str("]}");
    let url = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000";
    let (res, evs) = decode_as(&mut dec, &SPOT, RecordKind::RestSnapshot, url, &body);
    assert_eq!(res, Ok(Decoded::Events(3)));
    assert!(
        evs.iter()
            .all(|e| e.kind == EventKind::Snapshot && e.last_id == 50_093_239_218)
    );
    assert_eq!(
        evs.iter()
            .map(|e| (e.n_bids, e.n_levels, e.flags))
            .collect::<Vec<_>>(),
        [
            (28, 28, EventFlags::FIRST),
            (2, 28, EventFlags(0)),
            (0, 14, EventFlags::LAST)
        ]
    );
    assert_eq!(evs[1].bids()[1], lvl(7_100, 100_000));
    assert_eq!(evs[2].asks()[13], lvl(14_000, 50_000));
    assert_eq!(dec.stats().messages.snapshot, 1);
    assert_eq!(dec.stats().events, 3);

    // Without a URL the connection's instrument is used; without that, the record is skipped.
    let (res, _) = decode_as(&mut dec, &SPOT, RecordKind::RestSnapshot, "", &body);
    assert_eq!(res, Ok(Decoded::Skipped(SkipReason::UnknownInstrument)));
    let ctx = ConnCtx {
        venue: Venue::BinanceSpot,
        default_instrument: Some(InstrumentId(0)),
    };
    let (res, _) = decode_as(&mut dec, &ctx, RecordKind::RestSnapshot, "", &body);
    assert_eq!(res, Ok(Decoded::Events(3)));
    let other = "https://api.binance.com/api/v3/depth?symbol=ETHUSDT";
    let (res, _) = decode_as(&mut dec, &ctx, RecordKind::RestSnapshot, other, &body);
    assert_eq!(res, Ok(Decoded::Skipped(SkipReason::UnknownInstrument)));
}

#[test]
fn rest_error_body_is_an_error_response() {
    let mut dec = decoder();
    let (res, evs) = decode_as(
        &mut dec,
        &SPOT,
        RecordKind::RestSnapshot,
        "https://api.binance.com/api/v3/depth?symbol=BTCUSDT",
        r#"{"code":-1121,"msg":"Invalid symbol."}"#,
    );
    assert_eq!(res, Ok(Decoded::Skipped(SkipReason::ErrorResponse)));
    assert!(evs.is_empty());
}

#[test]
fn unknown_streams_and_control_messages_are_skipped() {
    let mut dec = decoder();
    let cases = [
        (
            r#"{"stream":"btcusdt@ticker_1h","data":{"e":"1hTicker","E":1,"s":"BTCUSDT"}}"#,
            SkipReason::UnknownStream,
        ),
        (
            r#"{"e":"avgPrice","E":1,"s":"BTCUSDT","i":"5m","w":"1.0","T":1}"#,
            SkipReason::UnknownStream,
        ),
        (r#"{"result":null,"id":1}"#, SkipReason::Control),
        (
            r#"{"code":2,"msg":"Invalid request","id":3}"#,
            SkipReason::Control,
        ),
        (r#"{"e":"serverShutdown","E":1}"#, SkipReason::Control),
        (
            r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}"#,
            SkipReason::Control,
        ),
        (
            r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1,"s":"ETHUSDT","t":1,"p":"1","q":"1","T":1,"m":true}}"#,
            SkipReason::UnknownInstrument,
        ),
    ];
    for (json, reason) in cases {
        assert_eq!(
            frame(&mut dec, &SPOT, json),
            (Ok(Decoded::Skipped(reason)), vec![]),
            "{json}"
        );
    }
    assert_eq!(dec.stats().skipped.unknown_stream, 2);
    assert_eq!(dec.stats().skipped.control, 4);
    assert_eq!(dec.stats().skipped.total(), 7);
    assert_eq!(dec.stats().messages.total(), 0);
}

#[test]
fn non_frame_records_are_skipped() {
    let mut dec = decoder();
    for (kind, reason) in [
        (RecordKind::Http, SkipReason::OtherHttp),
        (RecordKind::Connect, SkipReason::Connection),
        (RecordKind::Disconnect, SkipReason::Connection),
        (RecordKind::Gap, SkipReason::Connection),
    ] {
        let (res, evs) = decode_as(&mut dec, &SPOT, kind, "https://x", "not json at all");
        assert_eq!(res, Ok(Decoded::Skipped(reason)));
        assert!(evs.is_empty());
    }
}

// ---- Binance USD-M ---------------------------------------------------------------------------

#[test]
fn futures_depth_update_with_pu_and_extra_keys() {
    let mut dec = decoder();
    let (res, evs) = frame(
        &mut dec,
        &USDM,
        r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161256299,"T":1723161256298,"s":"BTCUSDT","U":5123107832006,"u":5123107837557,"pu":5123107831937,"st":1,"ps":"BTCUSDT","b":[["58710.20","0.014"],["61510.90","0.000"]],"a":[["61800.30","2.510"]]}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let e = &evs[0];
    assert_eq!(e.instrument, InstrumentId(1));
    assert_eq!(
        (e.first_id, e.last_id, e.prev_id),
        (5_123_107_832_006, 5_123_107_837_557, 5_123_107_831_937)
    );
    assert_eq!(
        (e.exch_ts, e.trans_ts),
        (1_723_161_256_299_000_000, 1_723_161_256_298_000_000)
    );
    assert_eq!(e.bids(), &[lvl(587_102, 14), lvl(615_109, 0)]);
    assert_eq!(e.asks(), &[lvl(618_003, 2_510)]);
}

#[test]
fn futures_depth_without_pu_is_rejected() {
    let mut dec = decoder();
    let (res, evs) = frame(
        &mut dec,
        &USDM,
        r#"{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}"#,
    );
    assert_eq!(res, Err(ParseError::MissingField("pu")));
    assert!(evs.is_empty());
    assert_eq!(dec.stats().errors.missing_field, 1);
}

#[test]
fn futures_partial_depth_is_a_depth_update_payload() {
    let mut dec = decoder();
    let (res, evs) = frame(
        &mut dec,
        &USDM,
        r#"{"stream":"btcusdt@depth5","data":{"e":"depthUpdate","E":3,"T":2,"s":"BTCUSDT","U":10,"u":20,"pu":9,"b":[["1.0","1"]],"a":[["1.1","1"]]}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    assert_eq!(evs[0].kind, EventKind::PartialDepth);
    assert_eq!(
        (evs[0].first_id, evs[0].last_id, evs[0].prev_id),
        (10, 20, 9)
    );
}

#[test]
fn futures_book_ticker_trade_and_agg_trade() {
    let mut dec = decoder();
    let (res, evs) = frame(
        &mut dec,
        &USDM,
        r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30","A":"2.510","T":1723161256313,"E":1723161256314}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let e = &evs[0];
    assert_eq!(
        (e.last_id, e.exch_ts, e.trans_ts),
        (
            5_123_107_839_020,
            1_723_161_256_314_000_000,
            1_723_161_256_313_000_000
        )
    );
    assert_eq!(
        (e.ticker_bid(), e.ticker_ask()),
        (Some(lvl(618_002, 2_507)), Some(lvl(618_003, 2_510)))
    );

    let (res, evs) = frame(
        &mut dec,
        &USDM,
        r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    assert_eq!(evs[0].last_id, 5_266_583_935);
    assert_eq!(evs[0].flags, FIRST_LAST);
    assert_eq!(evs[0].levels[0], lvl(618_003, 6));

    let (res, evs) = frame(
        &mut dec,
        &USDM,
        r#"{"e":"aggTrade","E":1,"s":"BTCUSDT","a":77,"p":"61800.30","q":"0.010","nq":"0.008","f":100,"l":105,"T":1,"m":true,"st":1}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    assert_eq!(
        (evs[0].seq, evs[0].first_id, evs[0].last_id),
        (77, 100, 105)
    );
    assert_eq!(
        evs[0].flags,
        FIRST_LAST | EventFlags::AGGREGATE | EventFlags::BUYER_MAKER
    );
}

#[test]
fn futures_rest_snapshot_has_event_and_transaction_time() {
    let mut dec = decoder();
    let (res, evs) = decode_as(
        &mut dec,
        &USDM,
        RecordKind::RestSnapshot,
        "https://fapi.binance.com/fapi/v1/depth?limit=1000&symbol=BTCUSDT",
        r#"{"lastUpdateId":5123107852948,"E":1723161256501,"T":1723161256493,"bids":[["61800.20","2.909"]],"asks":[["61800.30","1.000"]]}"#,
    );
    assert_eq!(res, Ok(Decoded::Events(1)));
    let e = &evs[0];
    assert_eq!(
        (e.kind, e.instrument),
        (EventKind::Snapshot, InstrumentId(1))
    );
    assert_eq!(e.last_id, 5_123_107_852_948);
    assert_eq!(
        (e.exch_ts, e.trans_ts),
        (1_723_161_256_501_000_000, 1_723_161_256_493_000_000)
    );
    assert_eq!(e.flags, FIRST_LAST);
}
