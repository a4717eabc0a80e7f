//! Protective orders and order lists against the exchange's documented requests: every
//! parameter of the docs' examples comes out with the same name and value, nothing the request
//! does not take is sent, absent optional parameters leave no trace in the JSON or the
//! signature, and every request of a template has the same length whatever it carries.

use pinion_core::{InstrumentId, Px, Qty};
use pinion_gateway::binance::contingent::{
    ContingentError, ContingentLeg, ContingentOrder, LegParam, LegSpec, ListIntent, ListShape,
    Trigger,
};
use pinion_gateway::binance::sign::Signer;
use pinion_gateway::binance::template::{
    Leg, LegField, LegValues, OrderRef, RecvWindow, RequestTemplate, Signing, Slot, SlotValues,
    SpotOrderType, SymbolContext, TemplateError,
};
use pinion_strategy::{ClientOrderId, OrderSide, TimeInForce};
use serde_json::{Map, Value};

const DOC_API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const DOC_SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const IDS: [&[u8]; 4] = [
    b"p0miskr280-0000000000010",
    b"p0miskr280-0000000000011",
    b"p0miskr280-0000000000012",
    b"p0miskr280-0000000000013",
];

fn ctx(symbol: &str, price_decimals: u8, qty_decimals: u8, signing: Signing) -> SymbolContext {
    SymbolContext {
        symbol: symbol.into(),
        price_decimals,
        qty_decimals,
        recv_window: Some(RecvWindow::from_micros(5_000_000).unwrap()),
        stp_mode: None,
        signing,
    }
}

fn signed() -> Signing {
    Signing::PerRequest {
        api_key: DOC_API_KEY.into(),
    }
}

fn params_of(out: &[u8]) -> Map<String, Value> {
    let v: Value = serde_json::from_slice(out).expect("the padded request is valid JSON");
    v["params"].as_object().unwrap().clone()
}

/// A JSON value as the exchange reads it: strings and numbers alike, decimals compared by
/// value (`1.5` and `"1.50000000"` are the same price).
fn norm(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.contains('.') && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let t = s.trim_end_matches('0');
        t.trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Every param of the docs' example (except the key, signature and timing) is sent with the
/// same value; what is sent beyond it is only `extra`.
fn matches_doc(doc: &str, ours: &Map<String, Value>, extra: &[&str]) {
    let doc: Value = serde_json::from_str(doc).unwrap();
    let doc = doc["params"].as_object().unwrap();
    let skip = ["apiKey", "signature", "timestamp", "recvWindow"];
    for (k, v) in doc {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let got = ours.get(k).unwrap_or_else(|| panic!("{k} not sent"));
        assert_eq!(norm(got), norm(v), "{k}");
    }
    for k in ours.keys() {
        assert!(
            doc.contains_key(k) || extra.contains(&k.as_str()),
            "{k} sent but not in the docs' example"
        );
    }
}

/// The signature covers exactly the params sent, sorted by name.
fn signature_covers_what_is_sent(t: &RequestTemplate, out: &[u8]) {
    let p = params_of(out);
    let mut sent: Vec<String> = p
        .iter()
        .filter(|(k, _)| *k != "signature")
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    sent.sort();
    assert_eq!(
        std::str::from_utf8(t.last_payload()).unwrap(),
        sent.join("&")
    );
    let mut buf = [0u8; 88];
    let sig = Signer::hmac(DOC_SECRET.as_bytes()).sign(t.last_payload(), &mut buf);
    assert_eq!(p["signature"], std::str::from_utf8(sig).unwrap());
}

fn leg(id: u64, side: OrderSide, qty: i64, spec: LegSpec) -> ContingentLeg {
    ContingentLeg {
        client_id: ClientOrderId(id),
        side,
        qty: Qty(qty),
        spec,
    }
}

fn list_values<'a>(list: &ListIntent, request_id: u64) -> SlotValues<'a> {
    let mut v = SlotValues {
        request_id,
        timestamp_ms: 1_712_544_408_509,
        list_client_id: IDS[0],
        ..SlotValues::default()
    };
    for (k, l) in list.legs().iter().enumerate() {
        v.legs[k] = l.values(IDS[k + 1]);
    }
    v
}

#[test]
fn otoco_from_the_docs_example() {
    // workingType LIMIT BUY 1 @ 1.5 GTC; pending SELL 5: above STOP_LOSS stop 0.5, below
    // LIMIT_MAKER @ 5 (LTCBNB, 8 price and 6 quantity decimals as in the answer).
    let doc = r#"{"id":"1712544408508","method":"orderList.place.otoco","params":{"signature":"c094473304374e1b9c5f7e2558358066cfa99df69f50f63d09cfee755136cb07","apiKey":"Rf07JlnL9PHVxjs27O5CvKNyOsV4qJ5gXdrRfpvlOdvMZbGZbPO5Ce2nIwfRP0iA","pendingQuantity":5,"pendingSide":"SELL","pendingBelowPrice":5,"pendingBelowType":"LIMIT_MAKER","pendingAboveStopPrice":0.5,"pendingAboveType":"STOP_LOSS","symbol":"LTCBNB","recvWindow":"5000","timestamp":"1712544408509","workingPrice":1.5,"workingQuantity":1,"workingSide":"BUY","workingTimeInForce":"GTC","workingType":"LIMIT"}}"#;
    let list = ListIntent {
        t0: 0,
        instrument: InstrumentId(0),
        list_id: ClientOrderId(10),
        shape: ListShape::Otoco {
            working: leg(
                11,
                OrderSide::Buy,
                1_000_000,
                LegSpec::limit(Px(150_000_000), TimeInForce::Gtc),
            ),
            above: leg(
                12,
                OrderSide::Sell,
                5_000_000,
                LegSpec::stop_loss(Trigger::Stop(Px(50_000_000))),
            ),
            below: leg(
                13,
                OrderSide::Sell,
                5_000_000,
                LegSpec::limit_maker(Px(500_000_000)),
            ),
        },
    };
    list.check().unwrap();
    let mut t = ctx("LTCBNB", 8, 6, signed()).order_list_otoco().unwrap();
    assert_eq!(t.method(), "orderList.place.otoco");
    let len = t.len();
    let out = t
        .write(
            &list_values(&list, 7),
            Some(&Signer::hmac(DOC_SECRET.as_bytes())),
        )
        .unwrap()
        .to_vec();
    assert_eq!(out.len(), len);
    let p = params_of(&out);
    matches_doc(
        doc,
        &p,
        &[
            "listClientOrderId",
            "workingClientOrderId",
            "pendingAboveClientOrderId",
            "pendingBelowClientOrderId",
            "newOrderRespType",
        ],
    );
    assert_eq!(p["pendingAboveClientOrderId"], "p0miskr280-0000000000012");
    assert_eq!(p["newOrderRespType"], "ACK");
    signature_covers_what_is_sent(&t, &out);
}

#[test]
fn oco_from_the_docs_example() {
    let doc = r#"{"id":"56374a46-3261-486b-a211-99ed972eb648","method":"orderList.place.oco","params":{"symbol":"LTCBNB","side":"BUY","quantity":1,"timestamp":1711062760647,"aboveType":"STOP_LOSS_LIMIT","abovePrice":"1.5","aboveStopPrice":"1.50000001","aboveTimeInForce":"GTC","belowType":"LIMIT_MAKER","belowPrice":"1.49999999","apiKey":"duwNf97YPLqhFIk7kZF0dDdGYVAXStA7BeEz0fIT9RAhUbixJtyS6kJ3hhzJsRXC","signature":"64614cfd8dd38260d4fd86d3c455dbf4b9d1c8a8170ea54f700592a986c30ddb"}}"#;
    let list = ListIntent {
        t0: 0,
        instrument: InstrumentId(0),
        list_id: ClientOrderId(10),
        shape: ListShape::Oco {
            above: leg(
                11,
                OrderSide::Buy,
                1_000_000,
                LegSpec::stop_loss_limit(
                    Trigger::Stop(Px(150_000_001)),
                    Px(150_000_000),
                    TimeInForce::Gtc,
                ),
            ),
            below: leg(
                12,
                OrderSide::Buy,
                1_000_000,
                LegSpec::limit_maker(Px(149_999_999)),
            ),
        },
    };
    list.check().unwrap();
    let mut t = ctx("LTCBNB", 8, 6, signed()).order_list_oco().unwrap();
    let out = t
        .write(
            &list_values(&list, 8),
            Some(&Signer::hmac(DOC_SECRET.as_bytes())),
        )
        .unwrap()
        .to_vec();
    let p = params_of(&out);
    matches_doc(
        doc,
        &p,
        &[
            "listClientOrderId",
            "aboveClientOrderId",
            "belowClientOrderId",
            "newOrderRespType",
            "recvWindow",
        ],
    );
    signature_covers_what_is_sent(&t, &out);
}

#[test]
fn oto_from_the_docs_example() {
    let doc = r#"{"id":"1712544395950","method":"orderList.place.oto","params":{"signature":"3e1e5ac8690b0caf9a2afd5c5de881ceba69939cc9d817daead5386bf65d0cbb","apiKey":"Rf07JlnL9PHVxjs27O5CvKNyOsV4qJ5gXdrRfpvlOdvMZbGZbPO5Ce2nIwfRP0iA","pendingQuantity":1,"pendingSide":"BUY","pendingType":"MARKET","symbol":"LTCBNB","recvWindow":"5000","timestamp":"1712544395951","workingPrice":1,"workingQuantity":1,"workingSide":"SELL","workingTimeInForce":"GTC","workingType":"LIMIT"}}"#;
    let list = ListIntent {
        t0: 0,
        instrument: InstrumentId(0),
        list_id: ClientOrderId(10),
        shape: ListShape::Oto {
            working: leg(
                11,
                OrderSide::Sell,
                1_000_000,
                LegSpec::limit(Px(100_000_000), TimeInForce::Gtc),
            ),
            pending: leg(12, OrderSide::Buy, 1_000_000, LegSpec::market()),
        },
    };
    list.check().unwrap();
    let mut t = ctx("LTCBNB", 8, 6, signed()).order_list_oto().unwrap();
    let out = t
        .write(
            &list_values(&list, 9),
            Some(&Signer::hmac(DOC_SECRET.as_bytes())),
        )
        .unwrap()
        .to_vec();
    let p = params_of(&out);
    matches_doc(
        doc,
        &p,
        &[
            "listClientOrderId",
            "workingClientOrderId",
            "pendingClientOrderId",
            "newOrderRespType",
        ],
    );
    // A market pending order: no price, no trigger, no time in force.
    for k in [
        "pendingPrice",
        "pendingStopPrice",
        "pendingTrailingDelta",
        "pendingTimeInForce",
    ] {
        assert!(!p.contains_key(k), "{k}");
    }
    signature_covers_what_is_sent(&t, &out);
}

#[test]
fn open_order_lists_status_is_the_docs_example_byte_for_byte() {
    let doc = r#"{"id":3,"method":"openOrderLists.status","params":{"timestamp":1660801713831,"apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A","signature":"1bea8b157dd78c3da30359bddcd999e4049749fe50b828e620e12f64e8b433c9"}}"#;
    let mut c = ctx("BTCUSDT", 2, 5, signed());
    c.recv_window = None;
    let mut t = c.open_order_lists_status().unwrap();
    let out = t
        .write(
            &SlotValues {
                request_id: 3,
                timestamp_ms: 1_660_801_713_831,
                ..SlotValues::default()
            },
            Some(&Signer::hmac(DOC_SECRET.as_bytes())),
        )
        .unwrap();
    let compact: String = std::str::from_utf8(out)
        .unwrap()
        .split('"')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 0 {
                part.replace(' ', "")
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\"");
    assert_eq!(compact, doc);
}

#[test]
fn protective_order_place_sends_exactly_what_its_type_takes() {
    let mut t = ctx("BTCUSDT", 2, 5, signed()).order_place_any().unwrap();
    let signer = Signer::hmac(DOC_SECRET.as_bytes());
    let len = t.len();
    let cases = [
        (
            LegSpec::stop_loss(Trigger::Stop(Px(5_900_000))),
            vec![("stopPrice", "59000.00")],
            vec!["price", "trailingDelta", "timeInForce"],
        ),
        (
            LegSpec::take_profit(Trigger::Trailing(250)),
            vec![("trailingDelta", "250")],
            vec!["price", "stopPrice", "timeInForce"],
        ),
        (
            LegSpec::stop_loss_limit(
                Trigger::StopThenTrailing {
                    stop: Px(5_900_000),
                    delta: 100,
                },
                Px(5_890_000),
                TimeInForce::Gtc,
            ),
            vec![
                ("stopPrice", "59000.00"),
                ("trailingDelta", "100"),
                ("price", "58900.00"),
                ("timeInForce", "GTC"),
            ],
            vec![],
        ),
        (
            LegSpec::take_profit_limit(
                Trigger::Stop(Px(6_100_000)),
                Px(6_100_000),
                TimeInForce::Ioc,
            ),
            vec![
                ("stopPrice", "61000.00"),
                ("price", "61000.00"),
                ("timeInForce", "IOC"),
            ],
            vec!["trailingDelta"],
        ),
        // And back to the first: what the last request carried leaves no trace.
        (
            LegSpec::stop_loss(Trigger::Stop(Px(5_900_000))),
            vec![("stopPrice", "59000.00")],
            vec!["price", "trailingDelta", "timeInForce"],
        ),
    ];
    for (k, (spec, present, absent)) in cases.into_iter().enumerate() {
        let order = ContingentOrder {
            t0: 0,
            instrument: InstrumentId(0),
            leg: leg(20 + k as u64, OrderSide::Sell, 150, spec),
        };
        order.check().unwrap();
        let mut v = SlotValues {
            request_id: k as u64,
            timestamp_ms: 1_764_921_600_000,
            ..SlotValues::default()
        };
        v.legs[0] = order.leg.values(IDS[1]);
        let out = t.write(&v, Some(&signer)).unwrap().to_vec();
        assert_eq!(out.len(), len, "fixed length");
        let p = params_of(&out);
        assert_eq!(p["type"], spec.order_type.as_str());
        assert_eq!(p["side"], "SELL");
        assert_eq!(p["quantity"], "0.00150");
        assert_eq!(p["newClientOrderId"], "p0miskr280-0000000000011");
        for (name, value) in present {
            assert_eq!(norm(&p[name]), norm(&Value::String(value.into())), "{name}");
        }
        for name in absent {
            assert!(!p.contains_key(name), "case {k}: {name} sent");
        }
        signature_covers_what_is_sent(&t, &out);
    }
}

#[test]
fn order_list_cancel_by_id_and_by_list_client_id() {
    let c = ctx("BTCUSDT", 2, 5, Signing::LoggedOn);
    let v = SlotValues {
        request_id: 5,
        order_list_id: 1_274_512,
        list_client_id: IDS[0],
        client_id: IDS[3],
        timestamp_ms: 1_660_801_720_210,
        ..SlotValues::default()
    };
    let mut by_id = c.order_list_cancel(OrderRef::OrderId).unwrap();
    let p = params_of(by_id.write(&v, None).unwrap());
    assert_eq!(p["orderListId"], 1_274_512);
    assert_eq!(p["symbol"], "BTCUSDT");
    assert_eq!(p["newClientOrderId"], "p0miskr280-0000000000013");
    assert!(!p.contains_key("listClientOrderId"));
    assert!(!p.contains_key("signature"));
    let mut by_client = c.order_list_cancel(OrderRef::ClientId).unwrap();
    let p = params_of(by_client.write(&v, None).unwrap());
    assert_eq!(p["listClientOrderId"], "p0miskr280-0000000000010");
    assert!(!p.contains_key("orderListId"));
}

#[test]
fn requests_missing_what_they_need_are_refused() {
    let mut t = ctx("BTCUSDT", 2, 5, Signing::LoggedOn)
        .order_list_otoco()
        .unwrap();
    // No pending below order at all.
    let mut v = SlotValues {
        list_client_id: IDS[0],
        ..SlotValues::default()
    };
    v.legs[0] = leg(
        1,
        OrderSide::Buy,
        10,
        LegSpec::limit(Px(100), TimeInForce::Gtc),
    )
    .values(IDS[1]);
    v.legs[1] = leg(
        2,
        OrderSide::Sell,
        10,
        LegSpec::stop_loss(Trigger::Stop(Px(90))),
    )
    .values(IDS[2]);
    assert_eq!(
        t.write(&v, None).unwrap_err(),
        TemplateError::Missing {
            slot: Slot::Leg(Leg::C, LegField::Type)
        }
    );

    let bad = |spec: LegSpec| {
        ContingentOrder {
            t0: 0,
            instrument: InstrumentId(0),
            leg: leg(1, OrderSide::Sell, 10, spec),
        }
        .check()
    };
    let stop_limit_no_price = LegSpec {
        price: None,
        ..LegSpec::stop_loss_limit(Trigger::Stop(Px(1)), Px(1), TimeInForce::Gtc)
    };
    assert_eq!(
        bad(stop_limit_no_price),
        Err(ContingentError::Missing {
            leg: Leg::A,
            ty: SpotOrderType::StopLossLimit,
            param: LegParam::Price
        })
    );
    let stop_with_tif = LegSpec {
        tif: Some(TimeInForce::Gtc),
        ..LegSpec::stop_loss(Trigger::Stop(Px(1)))
    };
    assert_eq!(
        bad(stop_with_tif),
        Err(ContingentError::Unexpected {
            leg: Leg::A,
            ty: SpotOrderType::StopLoss,
            param: LegParam::TimeInForce
        })
    );
    let untriggered = LegSpec {
        trigger: None,
        ..LegSpec::take_profit(Trigger::Trailing(5))
    };
    assert!(matches!(
        bad(untriggered),
        Err(ContingentError::Missing {
            param: LegParam::Trigger,
            ..
        })
    ));
    assert_eq!(
        bad(LegSpec::take_profit(Trigger::Trailing(0))),
        Err(ContingentError::ZeroTrailingDelta(Leg::A))
    );
    assert!(matches!(
        bad(LegSpec::limit(Px(1), TimeInForce::Gtc)),
        Err(ContingentError::TypeNotAllowed { .. })
    ));
    // Two stop orders are no OCO pair; an OTO cannot start with a stop.
    let pair = ListIntent {
        t0: 0,
        instrument: InstrumentId(0),
        list_id: ClientOrderId(9),
        shape: ListShape::Oco {
            above: leg(
                1,
                OrderSide::Sell,
                10,
                LegSpec::stop_loss(Trigger::Stop(Px(2))),
            ),
            below: leg(
                2,
                OrderSide::Sell,
                10,
                LegSpec::stop_loss(Trigger::Stop(Px(1))),
            ),
        },
    };
    assert!(matches!(pair.check(), Err(ContingentError::OcoPair { .. })));
    let oto = ListIntent {
        shape: ListShape::Oto {
            working: leg(
                1,
                OrderSide::Buy,
                10,
                LegSpec::stop_loss(Trigger::Stop(Px(2))),
            ),
            pending: leg(2, OrderSide::Sell, 10, LegSpec::market()),
        },
        ..pair
    };
    assert!(matches!(
        oto.check(),
        Err(ContingentError::TypeNotAllowed { leg: Leg::A, .. })
    ));
    let same_ids = ListIntent {
        list_id: ClientOrderId(1),
        shape: ListShape::Oto {
            working: leg(1, OrderSide::Buy, 10, LegSpec::limit_maker(Px(2))),
            pending: leg(2, OrderSide::Sell, 10, LegSpec::market()),
        },
        ..pair
    };
    assert_eq!(same_ids.check(), Err(ContingentError::SameIds));
    let mismatched = ListIntent {
        shape: ListShape::Oco {
            above: leg(1, OrderSide::Sell, 10, LegSpec::limit_maker(Px(2))),
            below: leg(
                2,
                OrderSide::Sell,
                11,
                LegSpec::stop_loss(Trigger::Stop(Px(1))),
            ),
        },
        ..pair
    };
    assert_eq!(mismatched.check(), Err(ContingentError::OcoShared));
}

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A number of 1 to `max_digits` digits: values of every text length.
    fn digits(&mut self, max_digits: u32) -> u64 {
        let d = 1 + self.below(u64::from(max_digits)) as u32;
        self.next() % 10u64.pow(d)
    }

    fn maybe<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        (self.below(3) != 0).then(|| f(self))
    }
}

const TYPES: [SpotOrderType; 7] = [
    SpotOrderType::Limit,
    SpotOrderType::LimitMaker,
    SpotOrderType::Market,
    SpotOrderType::StopLoss,
    SpotOrderType::StopLossLimit,
    SpotOrderType::TakeProfit,
    SpotOrderType::TakeProfitLimit,
];
const TIFS: [TimeInForce; 3] = [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok];
const ID_BYTES: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";

/// A template keeps its last request and rewrites only what changed (values of another
/// length, optional params coming and going): whatever it wrote before, and after refused
/// writes that stopped half-way, each request must be byte for byte what a fresh template
/// writes for the same values, signature payload included.
#[test]
fn a_kept_template_writes_what_a_fresh_one_writes_whatever_came_before() {
    type Make = fn(&SymbolContext) -> Result<RequestTemplate, TemplateError>;
    let makers: [(&str, Make); 4] = [
        ("otoco", SymbolContext::order_list_otoco),
        ("oco", SymbolContext::order_list_oco),
        ("oto", SymbolContext::order_list_oto),
        ("place_any", SymbolContext::order_place_any),
    ];
    let signer = Signer::hmac(DOC_SECRET.as_bytes());
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for signing in [Signing::LoggedOn, signed()] {
        let c = ctx("BTCUSDT", 2, 8, signing);
        for (name, make) in makers {
            let mut kept = make(&c).unwrap();
            let (mut good, mut refused) = (0, 0);
            for round in 0..1500 {
                let mut ids = [[0u8; 36]; 4];
                let mut id_lens = [0usize; 4];
                for (id, len) in ids.iter_mut().zip(&mut id_lens) {
                    *len = 1 + rng.below(36) as usize;
                    for b in &mut id[..*len] {
                        *b = ID_BYTES[rng.below(ID_BYTES.len() as u64) as usize];
                    }
                }
                let mut v = SlotValues {
                    request_id: rng.digits(19),
                    timestamp_ms: rng.digits(13),
                    list_client_id: &ids[0][..id_lens[0]],
                    ..SlotValues::default()
                };
                for k in 0..3 {
                    v.legs[k] = LegValues {
                        side: Some([OrderSide::Buy, OrderSide::Sell][rng.below(2) as usize]),
                        order_type: Some(TYPES[rng.below(7) as usize]),
                        tif: rng.maybe(|r| TIFS[r.below(3) as usize]),
                        price: rng.maybe(|r| Px(r.digits(15) as i64)),
                        stop_price: rng.maybe(|r| Px(r.digits(15) as i64)),
                        trailing_delta: rng.maybe(|r| r.digits(9) as u32),
                        qty: Some(Qty(rng.digits(15) as i64)),
                        client_id: &ids[k + 1][..id_lens[k + 1]],
                    };
                }
                // Now and then a write the template refuses part-way through its slots.
                let bad = round % 7 == 3;
                if bad {
                    match rng.below(3) {
                        0 => v.legs[2].price = Some(Px(-5)),
                        1 => v.legs[1].client_id = b"bad.id",
                        _ => v.legs[0].qty = None,
                    }
                }
                let ours = kept.write(&v, Some(&signer)).map(<[u8]>::to_vec);
                let mut fresh = make(&c).unwrap();
                let theirs = fresh.write(&v, Some(&signer)).map(<[u8]>::to_vec);
                match (ours, theirs) {
                    (Ok(ours), Ok(theirs)) => {
                        assert_eq!(
                            String::from_utf8(ours.clone()).unwrap(),
                            String::from_utf8(theirs).unwrap(),
                            "{name}, round {round}"
                        );
                        assert_eq!(kept.last_payload(), fresh.last_payload(), "{name}");
                        assert_eq!(ours.len(), kept.len());
                        params_of(&ours);
                        good += 1;
                    }
                    (Err(a), Err(b)) => {
                        assert!(bad, "{name}, round {round}: {a}");
                        assert_eq!(a, b);
                        refused += 1;
                    }
                    (a, b) => panic!("{name}, round {round}: {a:?} against {b:?}"),
                }
            }
            // Both kinds of write happened (a list's legs B and C are not all read by every
            // template, so not every bad write is refused).
            assert!(
                good > 1000 && refused > 0,
                "{name}: {good} good, {refused} refused"
            );
        }
    }
}
