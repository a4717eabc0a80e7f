//! The order path of an SBE session read straight from the frame ([`sbe_direct`]) against the
//! frame transcoded to JSON and read as text ([`transcode`] + [`wire::parse_frame`]): for every
//! frame the direct reader takes, the session must get exactly what the text gives it (the same
//! report at the instrument's decimals or the same order made unknown; the same answer, failure
//! and ack). Frames are written by the simulator's SBE encoder from JSON, then altered: odd and
//! large exponents, null values, every raw value of the enums and flags, random bytes.

use pinion_exchange_sim::wsapi::sbe;
use pinion_gateway::binance::sbe::{Transcoded, transcode};
use pinion_gateway::binance::sbe_direct::{self, Direct};
use pinion_gateway::binance::wire::{self, Frame, Response, UserEvent};
use proptest::prelude::*;

/// The instrument scales each report is read at (price, quantity).
const SCALES: [(u8, u8); 5] = [(2, 5), (8, 8), (0, 0), (4, 3), (18, 18)];

/// Which way the direct reader took a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Report,
    Answer,
    Transcode,
}

fn text_of(frame: &[u8]) -> Option<String> {
    let mut out = Vec::new();
    match transcode(frame, &mut out) {
        Ok(Transcoded::Json) => Some(String::from_utf8(out).expect("transcoded text is UTF-8")),
        _ => None,
    }
}

fn same_answer(direct: &Response<'_>, text: &Response<'_>, what: &str) {
    assert_eq!(direct.id, text.id, "{what}: id");
    assert_eq!(direct.status, text.status, "{what}: status");
    assert_eq!(direct.rate_limits, text.rate_limits, "{what}: rate limits");
    assert_eq!(direct.failure(), text.failure(), "{what}: failure");
    match (&direct.outcome, &text.outcome) {
        (Err(a), Err(b)) => {
            assert_eq!((a.code, &*a.msg), (b.code, &*b.msg), "{what}: error");
            assert!(a.data.is_none() && b.data.is_none(), "{what}: error data");
            assert_eq!(a.retry_after_ms(), b.retry_after_ms(), "{what}");
        }
        (Ok(_), Ok(_)) => {}
        (a, b) => panic!("{what}: outcomes differ: {a:?} / {b:?}"),
    }
    assert_eq!(
        direct.order_ack().ok(),
        text.order_ack().ok(),
        "{what}: order ack"
    );
}

/// Checks one frame both ways; says which way the direct reader took it.
fn check(frame: &[u8]) -> Way {
    let direct = sbe_direct::read(frame);
    if matches!(direct, Direct::Transcode) {
        return Way::Transcode;
    }
    let text = text_of(frame).expect("a frame read directly transcodes");
    let parsed = wire::parse_frame(&text);
    match direct {
        Direct::Report(r) => {
            let Ok(Frame::Event {
                event: UserEvent::ExecutionReport(raw),
                ..
            }) = parsed
            else {
                panic!("read directly as a report, but its text is {parsed:?}: {text}");
            };
            assert_eq!(r.ids(), raw.unread(), "{text}");
            for (p, q) in SCALES {
                let want = raw.typed(p, q).map_err(|_| raw.unread());
                assert_eq!(r.typed(p, q), want, "at ({p}, {q}): {text}");
            }
            Way::Report
        }
        Direct::Answer(resp) => {
            let Ok(Frame::Response(from_text)) = parsed else {
                panic!("read directly as an answer, but its text is {parsed:?}: {text}");
            };
            same_answer(&resp, &from_text, &text);
            Way::Answer
        }
        Direct::Transcode => unreachable!(),
    }
}

/// An execution report as the simulator writes it, with the fields a test varies.
#[derive(Debug, Clone)]
struct Report {
    side: &'static str,
    x: &'static str,
    status: &'static str,
    qty: String,
    price: String,
    stop: String,
    last_qty: String,
    last_px: String,
    cum_qty: String,
    cum_quote: String,
    commission: String,
    commission_asset: Option<&'static str>,
    trade_id: i64,
    orig_client: &'static str,
    reject: &'static str,
    list: i64,
    prevented: bool,
    working_time: bool,
    expiry_reason: Option<&'static str>,
    client: &'static str,
}

impl Report {
    fn new_order() -> Self {
        Report {
            side: "BUY",
            x: "NEW",
            status: "NEW",
            qty: "0.00100000".into(),
            price: "60000.00000000".into(),
            stop: "0.00000000".into(),
            last_qty: "0.00000000".into(),
            last_px: "0.00000000".into(),
            cum_qty: "0.00000000".into(),
            cum_quote: "0.00000000".into(),
            commission: "0".into(),
            commission_asset: None,
            trade_id: -1,
            orig_client: "",
            reject: "NONE",
            list: -1,
            prevented: false,
            working_time: true,
            expiry_reason: None,
            client: "c1",
        }
    }

    fn fill() -> Self {
        Report {
            side: "SELL",
            x: "TRADE",
            status: "PARTIALLY_FILLED",
            last_qty: "0.00040000".into(),
            last_px: "60000.01000000".into(),
            cum_qty: "0.00040000".into(),
            cum_quote: "24.00000400".into(),
            commission: "0.00002400".into(),
            commission_asset: Some("BNB"),
            trade_id: 5_000_001,
            ..Report::new_order()
        }
    }

    fn cancel() -> Self {
        Report {
            x: "CANCELED",
            status: "CANCELED",
            orig_client: "c1",
            client: "x7",
            working_time: false,
            ..Report::new_order()
        }
    }

    fn json(&self) -> String {
        let opt = |v: Option<&str>| v.map_or("null".to_owned(), |s| format!("\"{s}\""));
        let mut extra = String::new();
        if self.working_time {
            extra.push_str(r#","W":1780000000499"#);
        }
        if self.prevented {
            extra.push_str(r#","v":3,"A":"0.00010000","B":"0.00010000","U":77,"u":-1,"Cs":"BTCUSDT","pl":"0.00010000","pL":"60000.00000000","pY":"6.00000000""#);
        }
        if let Some(r) = self.expiry_reason {
            extra.push_str(&format!(r#","eR":"{r}""#));
        }
        format!(
            r#"{{"subscriptionId":0,"event":{{"e":"executionReport","E":1780000000500,"s":"BTCUSDT","c":"{}","S":"{}","o":"LIMIT","f":"GTC","q":"{}","p":"{}","P":"{}","F":"0.00000000","g":{},"C":"{}","x":"{}","X":"{}","r":"{}","i":12,"l":"{}","z":"{}","L":"{}","n":"{}","N":{},"T":1780000000499,"t":{},"I":40,"w":true,"m":false,"M":false,"O":1780000000499,"Z":"{}","Y":"0.00000000","Q":"0.00000000","V":"EXPIRE_MAKER"{extra}}}}}"#,
            self.client,
            self.side,
            self.qty,
            self.price,
            self.stop,
            self.list,
            self.orig_client,
            self.x,
            self.status,
            self.reject,
            self.last_qty,
            self.cum_qty,
            self.last_px,
            self.commission,
            opt(self.commission_asset),
            self.trade_id,
            self.cum_quote,
        )
    }

    fn frame(&self) -> Vec<u8> {
        sbe::event(&self.json())
    }
}

/// Where two frames first differ (the encoder keeps every other byte in place).
fn offset_of(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .expect("the frames differ")
}

#[test]
fn the_hot_reports_are_read_directly_and_as_their_text_gives_them() {
    for r in [Report::new_order(), Report::fill(), Report::cancel()] {
        assert_eq!(check(&r.frame()), Way::Report, "{}", r.json());
    }
}

#[test]
fn every_exec_type_status_side_and_optional_field_reads_the_same() {
    let sides = ["BUY", "SELL"];
    let types = [
        "NEW",
        "CANCELED",
        "REPLACED",
        "REJECTED",
        "TRADE",
        "EXPIRED",
        "TRADE_PREVENTION",
    ];
    let statuses = [
        "NEW",
        "PENDING_NEW",
        "PARTIALLY_FILLED",
        "FILLED",
        "CANCELED",
        "PENDING_CANCEL",
        "REJECTED",
        "EXPIRED",
        "EXPIRED_IN_MATCH",
    ];
    let mut direct = 0;
    for side in sides {
        for x in types {
            for status in statuses {
                for (i, base) in [Report::new_order(), Report::fill(), Report::cancel()]
                    .into_iter()
                    .enumerate()
                {
                    let r = Report {
                        side,
                        x,
                        status,
                        prevented: x == "TRADE_PREVENTION",
                        expiry_reason: (x == "EXPIRED").then_some("OCO_TRIGGER"),
                        reject: if x == "REJECTED" {
                            "WOULD_MATCH_IMMEDIATELY"
                        } else {
                            "NONE"
                        },
                        list: if i == 1 { 4 } else { -1 },
                        stop: if i == 2 {
                            "59000.00000000".into()
                        } else {
                            "0.00000000".into()
                        },
                        ..base
                    };
                    if check(&r.frame()) == Way::Report {
                        direct += 1;
                    }
                }
            }
        }
    }
    assert_eq!(
        direct,
        2 * 7 * 9 * 3,
        "every named combination is read directly"
    );
}

#[test]
fn every_raw_value_of_the_enums_and_flags_reads_the_same() {
    let base = Report::fill();
    let frame = base.frame();
    let other_side = Report {
        side: "BUY",
        ..base.clone()
    }
    .frame();
    let other_x = Report {
        x: "NEW",
        ..base.clone()
    }
    .frame();
    let other_status = Report {
        status: "FILLED",
        ..base.clone()
    }
    .frame();
    let flags = base
        .json()
        .replace(r#""w":true,"m":false"#, r#""w":false,"m":true"#);
    let flags = sbe::event(&flags);
    let at_w = offset_of(&frame, &flags);
    let at_m = at_w + 1 + offset_of(&frame[at_w + 1..], &flags[at_w + 1..]);
    for at in [
        offset_of(&frame, &other_side),
        offset_of(&frame, &other_x),
        offset_of(&frame, &other_status),
        at_w,
        at_m,
    ] {
        let mut seen = [0usize; 3];
        for v in 0..=255u8 {
            let mut f = frame.clone();
            f[at] = v;
            seen[check(&f) as usize] += 1;
        }
        // The named values are read directly, whatever else is made of the rest.
        assert!(seen[Way::Report as usize] >= 2, "byte {at}: {seen:?}");
    }
}

#[test]
fn odd_and_large_exponents_and_unrepresentable_values_read_the_same() {
    let base = Report::fill();
    let frame = base.frame();
    // The block's fixed fields: eventTime, transactTime, then the three exponents.
    let (price_exp, qty_exp, commission_exp) = (8 + 16, 8 + 17, 8 + 18);
    let pinion_sbe_spot::Message::ExecutionReportEvent(e) =
        pinion_sbe_spot::decode(&frame).expect("a report")
    else {
        panic!("an execution report");
    };
    assert_eq!(
        (
            e.price_exponent(),
            e.qty_exponent(),
            e.commission_exponent()
        ),
        (
            frame[price_exp] as i8,
            frame[qty_exp] as i8,
            frame[commission_exp] as i8
        )
    );
    let exponents: [i8; 16] = [
        i8::MIN,
        -40,
        -20,
        -19,
        -18,
        -17,
        -9,
        -8,
        -5,
        -2,
        0,
        1,
        3,
        18,
        19,
        i8::MAX,
    ];
    let mut ways = [0usize; 3];
    for at in [price_exp, qty_exp, commission_exp] {
        for x in exponents {
            let mut f = frame.clone();
            f[at] = x as u8;
            ways[check(&f) as usize] += 1;
        }
    }
    assert_eq!(ways[Way::Report as usize], 3 * exponents.len());
    // Values finer than the instrument or past an i64 at its scale: the order becomes unknown
    // on both paths (the same UnreadReport), never a rounded value.
    for (field, value, scales) in [
        ("q", "0.00000001", (2, 5)),
        ("p", "60000.00000001", (2, 5)),
        ("q", "92233720368.54775807", (18, 18)),
        ("p", "92233720368.54775807", (18, 18)),
    ] {
        let mut r = base.clone();
        match field {
            "q" => r.qty = value.into(),
            _ => r.price = value.into(),
        }
        let f = r.frame();
        assert_eq!(check(&f), Way::Report, "{field} = {value}");
        let direct = match sbe_direct::read(&f) {
            Direct::Report(d) => d,
            other => panic!("{other:?}"),
        };
        assert!(
            direct.typed(scales.0, scales.1).is_err(),
            "{field} = {value} at {scales:?}"
        );
    }
}

/// Answers to the order requests, as the simulator's JSON gives them, with their method.
fn answers() -> Vec<(String, &'static str)> {
    let limits = r#"[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50,"count":1},{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":13}]"#;
    let order = r#""symbol":"BTCUSDT","orderId":12,"orderListId":-1,"clientOrderId":"c1","transactTime":1780000000123"#;
    let fields = r#""price":"60000.00000000","origQty":"0.00100000","executedQty":"0.00000000","cummulativeQuoteQty":"0.00000000","status":"NEW","timeInForce":"GTC","type":"LIMIT","side":"BUY","workingTime":1780000000123,"selfTradePreventionMode":"EXPIRE_MAKER""#;
    vec![
        (
            format!(r#"{{"id":7,"status":200,"result":{{{order}}},"rateLimits":{limits}}}"#),
            "order.place",
        ),
        (
            format!(
                r#"{{"id":8,"status":200,"result":{{{order},{fields}}},"rateLimits":{limits}}}"#
            ),
            "order.place",
        ),
        (
            format!(
                r#"{{"id":9,"status":200,"result":{{{order},{fields},"fills":[{{"price":"60000.00000000","qty":"0.00100000","commission":"0.00000000","commissionAsset":"BNB","tradeId":5}}]}},"rateLimits":{limits}}}"#
            ),
            "order.place",
        ),
        (
            format!(
                r#"{{"id":10,"status":200,"result":{{"symbol":"BTCUSDT","origClientOrderId":"c1","orderId":12,"orderListId":-1,"clientOrderId":"x1","transactTime":1780000000600,"price":"60000.00000000","origQty":"0.00100000","executedQty":"0.00000000","cummulativeQuoteQty":"0.00000000","status":"CANCELED","timeInForce":"GTC","type":"LIMIT","side":"BUY","selfTradePreventionMode":"EXPIRE_MAKER"}},"rateLimits":{limits}}}"#
            ),
            "order.cancel",
        ),
        (
            format!(
                r#"{{"id":11,"status":200,"result":{{"transactTime":1780000000700,"executionId":41,"amendedOrder":{{"symbol":"BTCUSDT","orderId":12,"orderListId":-1,"origClientOrderId":"c1","clientOrderId":"a1","price":"60000.00000000","qty":"0.00050000","executedQty":"0.00000000","preventedQuantity":"0.00000000","quoteOrderQuantity":"0.00000000","cumulativeQuoteQty":"0.00000000","status":"NEW","timeInForce":"GTC","type":"LIMIT","side":"BUY","workingTime":1780000000123,"selfTradePreventionMode":"EXPIRE_MAKER"}}}},"rateLimits":{limits}}}"#
            ),
            "order.amend.keepPriority",
        ),
        (
            format!(
                r#"{{"id":12,"status":200,"result":{{"cancelResult":"SUCCESS","newOrderResult":"SUCCESS","cancelResponse":{{"symbol":"BTCUSDT","origClientOrderId":"c1","orderId":12,"orderListId":-1,"clientOrderId":"x1","transactTime":1780000000600,{fields}}},"newOrderResponse":{{{order}}}}},"rateLimits":{limits}}}"#
            ),
            "order.cancelReplace",
        ),
        (
            format!(
                r#"{{"id":13,"status":400,"error":{{"code":-2010,"msg":"Order would immediately match and take."}},"rateLimits":{limits}}}"#
            ),
            "order.place",
        ),
        (
            format!(
                r#"{{"id":14,"status":400,"error":{{"code":-2011,"msg":"Unknown order sent."}},"rateLimits":{limits}}}"#
            ),
            "order.cancel",
        ),
        (
            r#"{"id":15,"status":429,"error":{"code":-1015,"msg":"Too many new orders.","data":{"retryAfter":1780000010000}},"rateLimits":[]}"#.to_owned(),
            "order.place",
        ),
        (
            r#"{"id":16,"status":200,"result":{"serverTime":1780000000000},"rateLimits":[]}"#
                .to_owned(),
            "time",
        ),
    ]
}

#[test]
fn order_answers_are_read_directly_and_as_their_text_gives_them() {
    let ways: Vec<Way> = answers()
        .iter()
        .map(|(json, method)| check(&sbe::response(json, method)))
        .collect();
    // Every order answer and plain error directly; an error with data and a query's answer
    // through the text.
    assert_eq!(
        ways,
        [
            Way::Answer,
            Way::Answer,
            Way::Answer,
            Way::Answer,
            Way::Answer,
            Way::Answer,
            Way::Answer,
            Way::Answer,
            Way::Transcode,
            Way::Transcode,
        ]
    );
    // The ack is the one the JSON gives.
    let frame = sbe::response(&answers()[0].0, "order.place");
    let Direct::Answer(a) = sbe_direct::read(&frame) else {
        panic!("an answer");
    };
    let ack = a.order_ack().expect("ack");
    assert_eq!(
        (
            ack.symbol,
            ack.order_id,
            ack.client_order_id,
            ack.transact_time
        ),
        ("BTCUSDT", 12, "c1", 1_780_000_000_123)
    );
    assert_eq!(a.rate_limits.0.len(), 2);
}

fn reports() -> impl Strategy<Value = Report> {
    let dec = |n: u64, scale: usize| {
        let s = format!("{n:0>width$}", width = scale + 1);
        if scale == 0 {
            s
        } else {
            let (i, f) = s.split_at(s.len() - scale);
            format!("{i}.{f}")
        }
    };
    (
        (
            prop::sample::select(vec!["BUY", "SELL"]),
            prop::sample::select(vec!["NEW", "CANCELED", "TRADE", "EXPIRED", "REPLACED"]),
            prop::sample::select(vec!["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED"]),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        (
            (0u64..10_000_000_000, 0usize..12),
            (0u64..10_000_000_000_000, 0usize..12),
            (0u64..10_000_000_000, 0usize..12),
            (0u64..u64::MAX / 2, 0usize..20),
        ),
    )
        .prop_map(
            move |((side, x, status, prevented, cancel, working), (q, p, l, c))| {
                let base = if cancel {
                    Report::cancel()
                } else {
                    Report::fill()
                };
                Report {
                    side,
                    x,
                    status,
                    prevented,
                    working_time: working,
                    qty: dec(q.0, q.1),
                    price: dec(p.0, p.1),
                    last_px: dec(p.0, p.1),
                    last_qty: dec(l.0, l.1),
                    cum_qty: dec(l.0, l.1),
                    commission: dec(c.0, c.1),
                    cum_quote: dec(c.0 / 3, c.1),
                    ..base
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    /// Generated reports, then up to three bytes of the frame overwritten anywhere (mostly in
    /// the fixed block): whatever the direct reader takes reads as its text gives it.
    #[test]
    fn generated_and_altered_reports_read_the_same(
        r in reports(),
        edits in prop::collection::vec((0usize..400, any::<u8>()), 0..4),
    ) {
        let mut frame = r.frame();
        for (at, v) in edits {
            let at = if at < 300 { 8 + at % 200 } else { at };
            if at < frame.len() {
                frame[at] = v;
            }
        }
        check(&frame);
    }

    /// The answers, with up to three bytes overwritten anywhere.
    #[test]
    fn altered_answers_read_the_same(
        which in 0usize..10,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let (json, method) = &answers()[which];
        let mut frame = sbe::response(json, method);
        for (at, v) in edits {
            let at = at.index(frame.len());
            frame[at] = v;
        }
        check(&frame);
    }
}

/// An execution report whose optional `orderCreationTime` is null (the exchange's JSON says
/// `"O":-1` then) is read both ways, not dropped as a bad frame: the order it reports on is
/// updated, never left to a guess.
#[test]
fn a_report_without_its_creation_time_is_read_both_ways() {
    let json = Report::new_order().json();
    let other = json.replace("\"O\":1780000000499", "\"O\":1780000000498");
    assert_ne!(json, other, "the report names its creation time");
    let (mut frame, moved) = (sbe::event(&json), sbe::event(&other));
    let at = offset_of(&frame, &moved);
    frame[at..at + 8].copy_from_slice(&i64::MIN.to_le_bytes());
    let text = text_of(&frame).expect("transcodes");
    assert!(text.contains("\"O\":-1"), "{text}");
    assert_eq!(check(&frame), Way::Report, "{text}");
}
