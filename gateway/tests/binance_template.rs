//! Request templates against the exchange's example requests, byte for byte.
//!
//! The templates pad short values with spaces (JSON whitespace) so every request of a template
//! has the same length; [`compact`] removes that padding, and what is left must equal the
//! docs' example, signature included (the docs' example HMAC secret signs them).

use pinion_core::{Px, Qty};
use pinion_gateway::binance::sign::{SignatureBuf, Signer, ws_payload};
use pinion_gateway::binance::template::{
    OrderRef, Param, RecvWindow, RequestTemplate, Signing, Slot, SlotValues, StpMode,
    SymbolContext, TemplateError, session_logon, time, user_data_stream_subscribe,
};
use pinion_strategy::{OrderSide, OrderType, TimeInForce};

const DOC_API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const DOC_SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

/// Drops whitespace outside JSON strings.
fn compact(text: &[u8]) -> String {
    let mut out = Vec::new();
    let (mut in_str, mut escaped) = (false, false);
    for &b in text {
        if in_str {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else if b == b'"' {
            in_str = true;
            out.push(b);
        } else if !b.is_ascii_whitespace() {
            out.push(b);
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn doc_example_requests_come_out_byte_exact_with_their_signatures() {
    // (method, timestamp, the docs' request minified with its id set to 7, params in the docs'
    // order with the timestamp as a slot).
    let cases: Vec<(&'static str, u64, &str, Vec<Param>)> = vec![
        (
            "order.place",
            1645423376532,
            r#"{"id":7,"method":"order.place","params":{"symbol":"BTCUSDT","side":"SELL","type":"LIMIT","timeInForce":"GTC","quantity":"0.01000000","price":"52000.00","recvWindow":100,"timestamp":1645423376532,"apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A","signature":"aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"}}"#,
            vec![
                Param::text("symbol", "BTCUSDT"),
                Param::text("side", "SELL"),
                Param::text("type", "LIMIT"),
                Param::text("timeInForce", "GTC"),
                Param::text("quantity", "0.01000000"),
                Param::text("price", "52000.00"),
                Param::number("recvWindow", "100"),
                Param::slot("timestamp", Slot::Timestamp),
                Param::text(
                    "apiKey",
                    "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                ),
                Param::signature(),
            ],
        ),
        (
            "session.logon",
            1649729878532,
            r#"{"id":7,"method":"session.logon","params":{"apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A","signature":"1cf54395b336b0a9727ef27d5d98987962bc47aca6e13fe978612d0adee066ed","timestamp":1649729878532}}"#,
            vec![
                Param::text(
                    "apiKey",
                    "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                ),
                Param::signature(),
                Param::slot("timestamp", Slot::Timestamp),
            ],
        ),
        (
            "order.test",
            1660801715431,
            r#"{"id":7,"method":"order.test","params":{"symbol":"BTCUSDT","side":"SELL","type":"LIMIT","timeInForce":"GTC","price":"23416.10000000","quantity":"0.00847000","apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A","signature":"15af09e41c36f3cc61378c2fbe2c33719a03dd5eba8d0f9206fbda44de717c88","timestamp":1660801715431}}"#,
            vec![
                Param::text("symbol", "BTCUSDT"),
                Param::text("side", "SELL"),
                Param::text("type", "LIMIT"),
                Param::text("timeInForce", "GTC"),
                Param::text("price", "23416.10000000"),
                Param::text("quantity", "0.00847000"),
                Param::text(
                    "apiKey",
                    "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                ),
                Param::signature(),
                Param::slot("timestamp", Slot::Timestamp),
            ],
        ),
        (
            "order.cancel",
            1660801715830,
            r#"{"id":7,"method":"order.cancel","params":{"symbol":"BTCUSDT","origClientOrderId":"4d96324ff9d44481926157","apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A","signature":"33d5b721f278ae17a52f004a82a6f68a70c68e7dd6776ed0be77a455ab855282","timestamp":1660801715830}}"#,
            vec![
                Param::text("symbol", "BTCUSDT"),
                Param::text("origClientOrderId", "4d96324ff9d44481926157"),
                Param::text(
                    "apiKey",
                    "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                ),
                Param::signature(),
                Param::slot("timestamp", Slot::Timestamp),
            ],
        ),
        (
            "order.cancelReplace",
            1660813156900,
            r#"{"id":7,"method":"order.cancelReplace","params":{"symbol":"BTCUSDT","cancelReplaceMode":"ALLOW_FAILURE","cancelOrigClientOrderId":"4d96324ff9d44481926157","side":"SELL","type":"LIMIT","timeInForce":"GTC","price":"23416.10000000","quantity":"0.00847000","apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A","signature":"7028fdc187868754d25e42c37ccfa5ba2bab1d180ad55d4c3a7e2de643943dc5","timestamp":1660813156900}}"#,
            vec![
                Param::text("symbol", "BTCUSDT"),
                Param::text("cancelReplaceMode", "ALLOW_FAILURE"),
                Param::text("cancelOrigClientOrderId", "4d96324ff9d44481926157"),
                Param::text("side", "SELL"),
                Param::text("type", "LIMIT"),
                Param::text("timeInForce", "GTC"),
                Param::text("price", "23416.10000000"),
                Param::text("quantity", "0.00847000"),
                Param::text(
                    "apiKey",
                    "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                ),
                Param::signature(),
                Param::slot("timestamp", Slot::Timestamp),
            ],
        ),
        (
            "openOrders.cancelAll",
            1660805557200,
            r#"{"id":7,"method":"openOrders.cancelAll","params":{"symbol":"BTCUSDT","apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A","signature":"773f01b6e3c2c9e0c1d217bc043ce383c1ddd6f0e25f8d6070f2b66a6ceaf3a5","timestamp":1660805557200}}"#,
            vec![
                Param::text("symbol", "BTCUSDT"),
                Param::text(
                    "apiKey",
                    "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                ),
                Param::signature(),
                Param::slot("timestamp", Slot::Timestamp),
            ],
        ),
        (
            "account.status",
            1660801839480,
            r#"{"id":7,"method":"account.status","params":{"apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A","signature":"83303b4a136ac1371795f465808367242685a9e3a42b22edb4d977d0696eb45c","timestamp":1660801839480}}"#,
            vec![
                Param::text(
                    "apiKey",
                    "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                ),
                Param::signature(),
                Param::slot("timestamp", Slot::Timestamp),
            ],
        ),
        (
            "order.status",
            1660801720951,
            r#"{"id":7,"method":"order.status","params":{"symbol":"BTCUSDT","orderId":12569099453,"apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A","signature":"2c3aab5a078ee4ea465ecd95523b77289f61476c2f238ec10c55ea6cb11a6f35","timestamp":1660801720951}}"#,
            vec![
                Param::text("symbol", "BTCUSDT"),
                Param::number("orderId", "12569099453"),
                Param::text(
                    "apiKey",
                    "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                ),
                Param::signature(),
                Param::slot("timestamp", Slot::Timestamp),
            ],
        ),
        (
            "openOrders.status",
            1660813156812,
            r#"{"id":7,"method":"openOrders.status","params":{"symbol":"BTCUSDT","apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A","signature":"d632b3fdb8a81dd44f82c7c901833309dd714fe508772a89b0a35b0ee0c48b89","timestamp":1660813156812}}"#,
            vec![
                Param::text("symbol", "BTCUSDT"),
                Param::text(
                    "apiKey",
                    "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                ),
                Param::signature(),
                Param::slot("timestamp", Slot::Timestamp),
            ],
        ),
        (
            "myTrades",
            1661955125250,
            r#"{"id":7,"method":"myTrades","params":{"symbol":"BTCUSDT","startTime":1660780800000,"endTime":1660867200000,"apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A","signature":"c5a5ffb79fd4f2e10a92f895d488943a57954edf5933bde3338dfb6ea6d6eefc","timestamp":1661955125250}}"#,
            vec![
                Param::text("symbol", "BTCUSDT"),
                Param::number("startTime", "1660780800000"),
                Param::number("endTime", "1660867200000"),
                Param::text(
                    "apiKey",
                    "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                ),
                Param::signature(),
                Param::slot("timestamp", Slot::Timestamp),
            ],
        ),
    ];
    let signer = Signer::hmac(DOC_SECRET.as_bytes());
    for (method, ts, doc, params) in cases {
        let mut t = RequestTemplate::new(method, &params, 8, 8).unwrap();
        let len = t.len();
        let values = SlotValues {
            request_id: 7,
            timestamp_ms: ts,
            ..SlotValues::default()
        };
        let out = t.write(&values, Some(&signer)).unwrap();
        assert_eq!(out.len(), len, "{method}: the length is fixed");
        assert_eq!(compact(out), doc, "{method}");
    }
}

#[test]
fn wsapi_1_with_price_and_quantity_from_fixed_point() {
    let params = vec![
        Param::text("symbol", "BTCUSDT"),
        Param::text("side", "SELL"),
        Param::text("type", "LIMIT"),
        Param::text("timeInForce", "GTC"),
        Param::slot("quantity", Slot::Qty),
        Param::slot("price", Slot::Price),
        Param::number("recvWindow", "100"),
        Param::slot("timestamp", Slot::Timestamp),
        Param::text("apiKey", DOC_API_KEY),
        Param::signature(),
    ];
    let mut t = RequestTemplate::new("order.place", &params, 2, 8).unwrap();
    let values = SlotValues {
        request_id: 7,
        price: Px(5_200_000),
        qty: Qty(1_000_000),
        timestamp_ms: 1_645_423_376_532,
        ..SlotValues::default()
    };
    let out = t
        .write(&values, Some(&Signer::hmac(DOC_SECRET.as_bytes())))
        .unwrap()
        .to_vec();
    let out = out.as_slice();
    assert_eq!(
        compact(out),
        r#"{"id":7,"method":"order.place","params":{"symbol":"BTCUSDT","side":"SELL","type":"LIMIT","timeInForce":"GTC","quantity":"0.01000000","price":"52000.00","recvWindow":100,"timestamp":1645423376532,"apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A","signature":"aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"}}"#
    );
    assert_eq!(
        std::str::from_utf8(t.last_payload()).unwrap(),
        "apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
    );
    // The raw text is valid JSON as it stands, padding and all.
    let v: serde_json::Value = serde_json::from_slice(out).unwrap();
    assert_eq!(v["params"]["price"], "52000.00");
}

fn ctx(signing: Signing) -> SymbolContext {
    SymbolContext {
        symbol: "BTCUSDT".into(),
        price_decimals: 2,
        qty_decimals: 5,
        recv_window: Some(RecvWindow::from_micros(250_500).unwrap()),
        stp_mode: Some(StpMode::ExpireMaker),
        signing,
    }
}

fn params_of(out: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(out).unwrap();
    v["params"].as_object().unwrap().clone()
}

#[test]
fn logged_on_order_place_carries_no_key_or_signature() {
    let mut t = ctx(Signing::LoggedOn)
        .order_place(OrderSide::Buy, OrderType::Limit, TimeInForce::Ioc)
        .unwrap();
    assert!(!t.is_signed());
    let len = t.len();
    let out = t
        .write(
            &SlotValues {
                request_id: 42,
                price: Px(6_183_763),
                qty: Qty(120),
                client_id: b"p0miskr280-000000000001z",
                timestamp_ms: 1_764_921_600_123,
                ..SlotValues::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(out.len(), len);
    assert_eq!(
        compact(out),
        r#"{"id":42,"method":"order.place","params":{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","timeInForce":"IOC","quantity":"0.00120","price":"61837.63","newClientOrderId":"p0miskr280-000000000001z","newOrderRespType":"ACK","selfTradePreventionMode":"EXPIRE_MAKER","recvWindow":250.5,"timestamp":1764921600123}}"#
    );
    // A market order has no price and no time in force; a maker order no time in force.
    let m = ctx(Signing::LoggedOn)
        .order_place(OrderSide::Sell, OrderType::Market, TimeInForce::Gtc)
        .unwrap();
    assert!(!m.slots().any(|s| s == Slot::Price));
    let mut lm = ctx(Signing::LoggedOn)
        .order_place(OrderSide::Sell, OrderType::LimitMaker, TimeInForce::Gtc)
        .unwrap();
    let p = params_of(lm.write(&SlotValues::default(), None).unwrap());
    assert_eq!(p["type"], "LIMIT_MAKER");
    assert!(!p.contains_key("timeInForce"));
}

#[test]
fn per_request_signatures_cover_exactly_the_params_sent() {
    let signer = Signer::hmac(DOC_SECRET.as_bytes());
    let c = ctx(Signing::PerRequest {
        api_key: DOC_API_KEY.into(),
    });
    let mut templates = vec![
        c.order_place(OrderSide::Sell, OrderType::Limit, TimeInForce::Gtc)
            .unwrap(),
        c.order_cancel(OrderRef::OrderId).unwrap(),
        c.order_cancel(OrderRef::ClientId).unwrap(),
        c.order_cancel_replace(
            OrderRef::OrderId,
            OrderSide::Buy,
            OrderType::Limit,
            TimeInForce::Gtc,
        )
        .unwrap(),
        c.order_amend_keep_priority(OrderRef::OrderId).unwrap(),
        c.open_orders_cancel_all().unwrap(),
        c.order_status(OrderRef::ClientId).unwrap(),
        c.open_orders_status().unwrap(),
        c.my_trades().unwrap(),
        c.account_status().unwrap(),
    ];
    let values = SlotValues {
        request_id: 9,
        price: Px(100),
        qty: Qty(7),
        client_id: b"p0miskr280-0000000000002",
        orig_client_id: b"p0miskr280-0000000000001",
        order_id: 12_569_099_453,
        from_id: 55,
        timestamp_ms: 1_764_921_600_123,
        ..SlotValues::default()
    };
    for t in &mut templates {
        let method = t.method();
        let out = t.write(&values, Some(&signer)).unwrap().to_vec();
        let p = params_of(&out);
        assert_eq!(p["apiKey"], DOC_API_KEY, "{method}");
        assert_eq!(p["timestamp"], 1_764_921_600_123u64, "{method}");
        let texts: Vec<(String, String)> = p
            .iter()
            .filter(|(k, _)| *k != "signature")
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect();
        let mut pairs: Vec<(&str, &str)> = texts
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut payload = Vec::new();
        ws_payload(&mut pairs, &mut payload);
        assert_eq!(t.last_payload(), payload.as_slice(), "{method}");
        let mut buf: SignatureBuf = [0; 88];
        let sig = signer.sign(&payload, &mut buf);
        assert_eq!(
            p["signature"],
            std::str::from_utf8(sig).unwrap(),
            "{method}"
        );
        // Unsigned writes of a signed template are refused, not sent unsigned.
        assert!(matches!(
            t.write(&values, None),
            Err(TemplateError::NoSigner { .. })
        ));
    }
    let cancel = params_of(templates[1].write(&values, Some(&signer)).unwrap());
    assert_eq!(cancel["orderId"], 12_569_099_453u64);
    assert!(!cancel.contains_key("origClientOrderId"));
    let cancel = params_of(templates[2].write(&values, Some(&signer)).unwrap());
    assert_eq!(cancel["origClientOrderId"], "p0miskr280-0000000000001");
    let cr = params_of(templates[3].write(&values, Some(&signer)).unwrap());
    assert_eq!(cr["cancelReplaceMode"], "STOP_ON_FAILURE");
    assert_eq!(cr["cancelOrderId"], 12_569_099_453u64);
    assert_eq!(cr["newOrderRespType"], "ACK");
    let amend = params_of(templates[4].write(&values, Some(&signer)).unwrap());
    assert_eq!(amend["newQty"], "0.00007");
    let trades = params_of(templates[8].write(&values, Some(&signer)).unwrap());
    assert_eq!(trades["fromId"], 55);
}

#[test]
fn session_requests_match_the_docs_shapes() {
    let ed = Signer::ed25519_pem(
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIOL9C+S9+YZx6b7Tpmdlq0xLkyBRN5MlJOEAvMrD+oD/\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let mut logon = session_logon(
        "4yNzx3yWC5bS6YTwEkSRaC0nRmSQIIStAUOh1b6kqaBrTLIhjCpI5lJH8q8R8WNO",
        None,
    )
    .unwrap();
    let out = logon
        .write(
            &SlotValues {
                request_id: 1,
                timestamp_ms: 1_649_729_878_532,
                ..SlotValues::default()
            },
            Some(&ed),
        )
        .unwrap();
    let p = params_of(out);
    assert_eq!(p["signature"].as_str().unwrap().len(), 88);
    assert_eq!(
        std::str::from_utf8(logon.last_payload()).unwrap(),
        "apiKey=4yNzx3yWC5bS6YTwEkSRaC0nRmSQIIStAUOh1b6kqaBrTLIhjCpI5lJH8q8R8WNO&timestamp=1649729878532"
    );
    let mut sub = user_data_stream_subscribe().unwrap();
    let out = sub
        .write(
            &SlotValues {
                request_id: 3,
                ..SlotValues::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(
        compact(out),
        r#"{"id":3,"method":"userDataStream.subscribe"}"#
    );
    let mut t = time().unwrap();
    let out = t
        .write(
            &SlotValues {
                request_id: 1,
                ..SlotValues::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(compact(out), r#"{"id":1,"method":"time"}"#);
}

#[test]
fn bad_values_are_refused_with_what_was_seen() {
    let mut t = ctx(Signing::LoggedOn)
        .order_place(OrderSide::Buy, OrderType::Limit, TimeInForce::Gtc)
        .unwrap();
    let base = SlotValues {
        client_id: b"abc",
        ..SlotValues::default()
    };
    let e = t
        .write(
            &SlotValues {
                price: Px(-5),
                ..base
            },
            None,
        )
        .unwrap_err();
    assert_eq!(
        e,
        TemplateError::Negative {
            slot: Slot::Price,
            raw: -5
        }
    );
    let e = t
        .write(
            &SlotValues {
                client_id: b"a\"b",
                ..base
            },
            None,
        )
        .unwrap_err();
    assert_eq!(
        e,
        TemplateError::BadClientId {
            slot: Slot::ClientId,
            byte: b'"'
        }
    );
    let e = t
        .write(
            &SlotValues {
                client_id: &[b'a'; 37],
                ..base
            },
            None,
        )
        .unwrap_err();
    assert_eq!(
        e,
        TemplateError::TooLong {
            slot: Slot::ClientId,
            len: 37
        }
    );
    let e = t
        .write(
            &SlotValues {
                timestamp_ms: u64::MAX,
                ..base
            },
            None,
        )
        .unwrap_err();
    assert_eq!(
        e,
        TemplateError::TooLong {
            slot: Slot::Timestamp,
            len: 20
        }
    );
    assert_eq!(
        RecvWindow::from_micros(60_000_001),
        Err(TemplateError::RecvWindowTooLarge(60_000_001))
    );
    assert_eq!(
        RequestTemplate::new("x", &[Param::number("a", "1; drop")], 0, 0).unwrap_err(),
        TemplateError::BadLiteral
    );
    // A symbol that needs escaping is escaped, never spliced in raw.
    let odd = SymbolContext {
        symbol: "A\"B".into(),
        ..ctx(Signing::LoggedOn)
    };
    let mut t = odd.open_orders_status().unwrap();
    let p = params_of(t.write(&SlotValues::default(), None).unwrap());
    assert_eq!(p["symbol"], "A\"B");
}
