//! Responses and user data events: the docs' examples, parsed exactly.

use pinion_core::{Decimal, Px, Qty};
use pinion_feed::exchange_info::{RateLimitInterval, RateLimitKind};
use pinion_gateway::binance::wire::{
    ExecType, Failure, Frame, ResponseId, UserEvent, VenueStatus, WireError, parse_frame,
};
use pinion_strategy::OrderSide;

/// The docs' `executionReport` example (comments removed).
const EXECUTION_REPORT: &str = r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1499405658658,"s":"ETHBTC","c":"mUvoqJxFIILMdfAW5iGSOW","S":"BUY","o":"LIMIT","f":"GTC","q":"1.00000000","p":"0.10264410","P":"0.00000000","F":"0.00000000","g":-1,"C":"","x":"NEW","X":"NEW","r":"NONE","i":4293153,"l":"0.00000000","z":"0.00000000","L":"0.00000000","n":"0","N":null,"T":1499405658657,"t":-1,"v":3,"I":8641984,"w":true,"m":false,"M":false,"O":1499405658657,"Z":"0.00000000","Y":"0.00000000","Q":"0.00000000","W":1499405658657,"V":"NONE"}}"#;

fn event(text: &str) -> (Option<u32>, UserEvent<'_>) {
    match parse_frame(text).unwrap() {
        Frame::Event {
            subscription_id,
            event,
        } => (subscription_id, event),
        Frame::Response(r) => panic!("not an event: {r:?}"),
    }
}

#[test]
fn execution_report_of_the_docs() {
    let (sub, ev) = event(EXECUTION_REPORT);
    assert_eq!(sub, Some(0));
    let UserEvent::ExecutionReport(raw) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(raw.client_id, "mUvoqJxFIILMdfAW5iGSOW");
    assert_eq!(raw.orig_client_id, "");
    assert_eq!(raw.order_id, 4_293_153);
    assert_eq!(raw.execution_id, 8_641_984);
    assert_eq!(raw.trade_id, -1);
    assert_eq!(raw.commission_asset, None);
    assert_eq!(raw.working_time, Some(1_499_405_658_657));
    assert_eq!(raw.prevented_match_id, Some(3));
    assert_eq!(raw.stp_mode, Some("NONE"));
    assert!(raw.on_book && !raw.maker);
    let r = raw.typed(8, 8).unwrap();
    assert_eq!(r.side, OrderSide::Buy);
    assert_eq!((r.exec_type, r.status), (ExecType::New, VenueStatus::New));
    assert_eq!(r.qty, Qty(100_000_000));
    assert_eq!(r.price, Px(10_264_410));
    assert_eq!((r.last_qty, r.cum_qty), (Qty(0), Qty(0)));
    assert_eq!(r.trade_id, None);
    assert_eq!(r.commission, Decimal::parse(b"0").unwrap());
    // Too coarse a scale for the price is an error that names the field and value.
    let e = raw.typed(4, 8).unwrap_err();
    assert!(
        matches!(&e, WireError::Decimal { field: "p", value, .. } if value == "0.10264410"),
        "{e}"
    );
}

#[test]
fn trade_with_stp_fields_and_expiry() {
    let text = r#"{"subscriptionId":3,"event":{"e":"executionReport","E":1,"s":"BTCUSDT","c":"p0miskr280-0000000000001","S":"SELL","o":"LIMIT","f":"GTC","q":"0.00300","p":"61837.63","P":"0.00","F":"0.00000","g":-1,"C":"","x":"TRADE","X":"PARTIALLY_FILLED","r":"NONE","i":77,"l":"0.00100","z":"0.00200","L":"61837.64","n":"0.00012345","N":"BNB","T":2,"t":991,"I":5001,"w":true,"m":true,"M":true,"O":1,"Z":"123.67527","Y":"61.83764","Q":"0.00000000","W":1,"V":"EXPIRE_MAKER","A":"0.00100","B":"0.00100","U":37,"u":1,"Cs":"BTCUSDT","pl":"0.001","pL":"61837.64","pY":"61.83764","eR":"NONE"}}"#;
    let (_, ev) = event(text);
    let UserEvent::ExecutionReport(raw) = ev else {
        panic!("{ev:?}")
    };
    let r = raw.typed(2, 5).unwrap();
    assert_eq!(r.exec_type, ExecType::Trade);
    assert_eq!(r.status, VenueStatus::PartiallyFilled);
    assert_eq!(r.side, OrderSide::Sell);
    assert_eq!(
        (r.last_qty, r.cum_qty, r.last_px),
        (Qty(100), Qty(200), Px(6_183_764))
    );
    assert_eq!(r.trade_id, Some(991));
    assert!(r.maker);
    assert_eq!(raw.commission_asset, Some("BNB"));
    assert_eq!(r.cum_quote, Decimal::parse(b"123.67527").unwrap());
    assert_eq!(r.prevented_qty, Some(Qty(100)));
    assert_eq!(raw.counter_order_id, Some(37));
    assert_eq!(raw.trade_group_id, Some(1));
    assert_eq!(raw.counter_symbol, Some("BTCUSDT"));
    assert_eq!(
        (
            raw.prevented_exec_qty,
            raw.prevented_exec_px,
            raw.prevented_exec_quote
        ),
        (Some("0.001"), Some("61837.64"), Some("61.83764"))
    );
    assert_eq!(raw.expiry_reason, Some("NONE"));
}

#[test]
fn account_balance_and_termination_events_of_the_docs() {
    let (_, ev) = event(
        r#"{"subscriptionId":0,"event":{"e":"outboundAccountPosition","E":1564034571105,"u":1564034571073,"B":[{"a":"ETH","f":"10000.000000","l":"0.000000"}]}}"#,
    );
    let UserEvent::AccountPosition(p) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (p.event_time, p.last_update),
        (1_564_034_571_105, 1_564_034_571_073)
    );
    assert_eq!(p.balances.0.len(), 1);
    assert_eq!(
        (
            p.balances.0[0].asset,
            p.balances.0[0].free,
            p.balances.0[0].locked
        ),
        ("ETH", "10000.000000", "0.000000")
    );
    let (_, ev) = event(
        r#"{"subscriptionId":0,"event":{"e":"balanceUpdate","E":1573200697110,"a":"BTC","d":"100.00000000","T":1573200697068}}"#,
    );
    let UserEvent::BalanceUpdate(b) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (b.asset, b.delta, b.clear_time),
        ("BTC", "100.00000000", 1_573_200_697_068)
    );
    let (_, ev) =
        event(r#"{"subscriptionId":0,"event":{"e":"eventStreamTerminated","E":1728973001334}}"#);
    assert_eq!(
        ev,
        UserEvent::StreamTerminated {
            event_time: 1_728_973_001_334
        }
    );
    let (sub, ev) = event(r#"{"event":{"e":"serverShutdown","E":1728973001335}}"#);
    assert_eq!(
        (sub, ev),
        (
            None,
            UserEvent::ServerShutdown {
                event_time: 1_728_973_001_335
            }
        )
    );
    let (_, ev) = event(
        r#"{"subscriptionId":0,"event":{"e":"externalLockUpdate","E":1581557507324,"a":"NEO","d":"10.00000000","T":1581557507268}}"#,
    );
    assert_eq!(
        ev,
        UserEvent::Other {
            kind: "externalLockUpdate"
        }
    );
}

#[test]
fn order_ack_response_with_rate_limits() {
    let text = r#"{"id":42,"status":200,"result":{"symbol":"BTCUSDT","orderId":12510053279,"orderListId":-1,"clientOrderId":"p0miskr280-0000000000001","transactTime":1655716096505},"rateLimits":[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50,"count":12},{"rateLimitType":"ORDERS","interval":"DAY","intervalNum":1,"limit":160000,"count":4043},{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":1}]}"#;
    let Frame::Response(r) = parse_frame(text).unwrap() else {
        panic!()
    };
    assert_eq!(r.id, ResponseId::Num(42));
    assert_eq!(r.failure(), None);
    let ack = r.order_ack().unwrap();
    assert_eq!(ack.order_id, 12_510_053_279);
    assert_eq!(ack.client_order_id, "p0miskr280-0000000000001");
    assert_eq!(ack.transact_time, 1_655_716_096_505);
    assert_eq!(r.rate_limits.0.len(), 3);
    let o = r.rate_limits.0[0];
    assert_eq!(
        (o.kind, o.interval, o.interval_num, o.limit, o.count),
        (RateLimitKind::Orders, RateLimitInterval::Second, 10, 50, 12)
    );
    assert_eq!(r.rate_limits.0[2].kind, RateLimitKind::RequestWeight);
}

#[test]
fn failures_are_classified_and_never_call_unknown_outcomes_rejections() {
    let cases = [
        (
            r#"{"id":"e2a85d9f-07a5-4f94-8d5f-789dc3deb097","status":400,"error":{"code":-2010,"msg":"Account has insufficient balance for requested action."},"rateLimits":[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50,"count":13}]}"#,
            Failure::Refused,
        ),
        (
            r#"{"id":1,"status":400,"error":{"code":-2010,"msg":"Duplicate order sent."}}"#,
            Failure::Duplicate,
        ),
        (
            r#"{"id":1,"status":400,"error":{"code":-2011,"msg":"Unknown order sent."}}"#,
            Failure::CancelUnknownOrder,
        ),
        (
            r#"{"id":1,"status":400,"error":{"code":-1007,"msg":"Timeout waiting for response from backend server. Send status unknown; execution status unknown."}}"#,
            Failure::Unknown,
        ),
        (
            r#"{"id":1,"status":400,"error":{"code":-1006,"msg":"An unexpected response was received from the message bus. Execution status unknown."}}"#,
            Failure::Unknown,
        ),
        (
            r#"{"id":1,"status":503,"error":{"code":-1000,"msg":"x"}}"#,
            Failure::Unknown,
        ),
        (
            r#"{"id":1,"status":400,"error":{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}}"#,
            Failure::Timestamp,
        ),
        (
            r#"{"id":1,"status":429,"error":{"code":-1015,"msg":"Too many new orders; current limit is 50 orders per 10 SECOND.","data":{"retryAfter":1659146400000}}}"#,
            Failure::RateLimited,
        ),
        (
            r#"{"id":1,"status":409,"error":{"code":-2021,"msg":"Order cancel-replace partially failed.","data":{"cancelResult":"SUCCESS"}}}"#,
            Failure::PartialSuccess,
        ),
    ];
    for (text, class) in cases {
        let Frame::Response(r) = parse_frame(text).unwrap() else {
            panic!()
        };
        assert_eq!(r.failure(), Some(class), "{text}");
        assert!(matches!(r.order_ack(), Err(WireError::NoResult(_))));
    }
    let banned = r#"{"id":"fc93a61a-a192-4cf4-bb2a-a8f0f0c51e06","status":418,"error":{"code":-1003,"msg":"Way too much request weight used; IP banned until 1659146400000. Please use WebSocket Streams for live updates to avoid bans.","data":{"serverTime":1659142907531,"retryAfter":1659146400000}},"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":2411}]}"#;
    let Frame::Response(r) = parse_frame(banned).unwrap() else {
        panic!()
    };
    assert_eq!(r.failure(), Some(Failure::Banned));
    assert_eq!(
        r.id,
        ResponseId::Text("fc93a61a-a192-4cf4-bb2a-a8f0f0c51e06")
    );
    let Err(e) = &r.outcome else { panic!() };
    assert_eq!(e.retry_after_ms(), Some(1_659_146_400_000));
    assert_eq!(e.server_time_ms(), Some(1_659_142_907_531));
    assert_eq!(r.rate_limits.0[0].count, 2411);
    // A revoked session: the server speaks with a null id.
    let Frame::Response(r) = parse_frame(r#"{"id":null,"status":401,"error":{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}}"#).unwrap() else {
        panic!()
    };
    assert_eq!(r.id, ResponseId::Null);
}

#[test]
fn session_results_and_open_orders() {
    let Frame::Response(r) =
        parse_frame(r#"{"id":1,"status":200,"result":{"serverTime":1656400526260}}"#).unwrap()
    else {
        panic!()
    };
    assert_eq!(r.server_time().unwrap(), 1_656_400_526_260);
    let Frame::Response(r) =
        parse_frame(r#"{"id":2,"status":200,"result":{"subscriptionId":0}}"#).unwrap()
    else {
        panic!()
    };
    assert_eq!(r.subscription_id().unwrap(), 0);
    let Frame::Response(r) = parse_frame(r#"{"id":3,"status":200,"result":[{"symbol":"BTCUSDT","orderId":12569099453,"orderListId":-1,"clientOrderId":"4d96324ff9d44481926157","price":"23416.10000000","origQty":"0.00847000","executedQty":"0.00720000","cummulativeQuoteQty":"172.43931000","status":"PARTIALLY_FILLED","timeInForce":"GTC","type":"LIMIT","side":"SELL"}]}"#).unwrap() else {
        panic!()
    };
    let open = r.open_orders().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].executed_qty, "0.00720000");
    assert_eq!(
        VenueStatus::parse(open[0].status).unwrap(),
        VenueStatus::PartiallyFilled
    );
}

#[test]
fn malformed_frames_are_typed_errors() {
    for bad in [
        "",
        "{",
        r#"{"id":1}"#,
        r#"{"subscriptionId":0,"event":{"E":1}}"#,
        r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1}}"#,
        r#"{"id":1,"status":200}"#,
        r#"{"id":1,"status":200,"rateLimits":[1,2]}"#,
    ] {
        assert!(parse_frame(bad).is_err(), "{bad}");
    }
    let bad_x = EXECUTION_REPORT.replace(r#""x":"NEW""#, r#""x":"WHATEVER""#);
    let (_, UserEvent::ExecutionReport(raw)) = event(&bad_x) else {
        panic!()
    };
    assert_eq!(
        raw.typed(8, 8).unwrap_err(),
        WireError::UnknownValue {
            field: "x",
            value: "WHATEVER".into()
        }
    );
}

/// The docs' `listStatus` example (comments removed).
const LIST_STATUS: &str = r#"{"subscriptionId":0,"event":{"e":"listStatus","E":1564035303637,"s":"ETHBTC","g":2,"c":"OCO","l":"EXEC_STARTED","L":"EXECUTING","r":"NONE","C":"F4QN4G8DlFATFlIUQ0cjdD","T":1564035303625,"O":[{"s":"ETHBTC","i":17,"c":"AJYsMjErWJesZvqlJCTUgL"},{"s":"ETHBTC","i":18,"c":"bfYPSQdLoqAJeNrOr9adzq"}]}}"#;

#[test]
fn list_status_of_the_docs() {
    use pinion_gateway::binance::wire::{Contingency, ListOrderStatus, ListStatusType};
    let (sub, ev) = event(LIST_STATUS);
    assert_eq!(sub, Some(0));
    let UserEvent::ListStatus(raw) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(raw.symbol, "ETHBTC");
    assert_eq!(raw.reject_reason, "NONE");
    let u = raw.typed().unwrap();
    assert_eq!(u.order_list_id, 2);
    assert_eq!(u.list_client_id, "F4QN4G8DlFATFlIUQ0cjdD");
    assert_eq!(u.contingency, Contingency::Oco);
    assert_eq!(u.status_type, ListStatusType::ExecStarted);
    assert_eq!(u.order_status, ListOrderStatus::Executing);
    assert_eq!(u.transact_time, 1_564_035_303_625);
    let legs: Vec<(u64, &str)> = raw
        .orders
        .0
        .iter()
        .map(|l| (l.order_id, l.client_id))
        .collect();
    assert_eq!(
        legs,
        [
            (17, "AJYsMjErWJesZvqlJCTUgL"),
            (18, "bfYPSQdLoqAJeNrOr9adzq")
        ]
    );
    // Every documented value of the three enums; anything else is named.
    for (l, t) in [
        ("RESPONSE", ListStatusType::Response),
        ("EXEC_STARTED", ListStatusType::ExecStarted),
        ("UPDATED", ListStatusType::Updated),
        ("ALL_DONE", ListStatusType::AllDone),
    ] {
        assert_eq!(ListStatusType::parse(l).unwrap(), t);
    }
    for (l, t) in [
        ("EXECUTING", ListOrderStatus::Executing),
        ("ALL_DONE", ListOrderStatus::AllDone),
        ("REJECT", ListOrderStatus::Reject),
    ] {
        assert_eq!(ListOrderStatus::parse(l).unwrap(), t);
    }
    assert_eq!(Contingency::parse("OTO").unwrap(), Contingency::Oto);
    let bad = LIST_STATUS.replace("EXECUTING", "EXECUTED");
    let (_, ev) = event(&bad);
    let UserEvent::ListStatus(raw) = ev else {
        panic!()
    };
    assert!(matches!(
        raw.typed(),
        Err(WireError::UnknownValue { field: "listOrderStatus", value }) if value == "EXECUTED"
    ));
    // More orders than a list can have is an error, not a truncation.
    let four = LIST_STATUS.replace(
        r#"{"s":"ETHBTC","i":18,"c":"bfYPSQdLoqAJeNrOr9adzq"}"#,
        r#"{"s":"ETHBTC","i":18,"c":"a"},{"s":"ETHBTC","i":19,"c":"b"},{"s":"ETHBTC","i":20,"c":"c"}"#,
    );
    assert!(parse_frame(&four).is_err());
}

#[test]
fn execution_report_of_a_list_stop_order() {
    // The docs' example as the stop leg of list 2: type, stop price, list id, and a trailing
    // delta (a conditional field).
    let text = EXECUTION_REPORT
        .replace(r#""o":"LIMIT""#, r#""o":"STOP_LOSS_LIMIT""#)
        .replace(r#""P":"0.00000000""#, r#""P":"0.10200000""#)
        .replace(r#""g":-1"#, r#""g":2,"d":100"#);
    let (_, ev) = event(&text);
    let UserEvent::ExecutionReport(raw) = ev else {
        panic!()
    };
    assert_eq!(raw.order_type, "STOP_LOSS_LIMIT");
    assert_eq!(raw.trailing_delta, Some(100));
    let r = raw.typed(8, 8).unwrap();
    assert_eq!(r.order_list_id, Some(2));
    assert_eq!(r.stop_price, Some(Px(10_200_000)));
    // The plain order of the docs: no list, no stop price (sent as zero).
    let (_, ev) = event(EXECUTION_REPORT);
    let UserEvent::ExecutionReport(raw) = ev else {
        panic!()
    };
    let r = raw.typed(8, 8).unwrap();
    assert_eq!((r.order_list_id, r.stop_price), (None, None));
    // An OCO leg expired by its partner's fill.
    let text = EXECUTION_REPORT
        .replace(r#""x":"NEW","X":"NEW""#, r#""x":"EXPIRED","X":"EXPIRED""#)
        .replace(r#""V":"NONE""#, r#""V":"NONE","eR":"OCO_TRIGGER""#);
    let (_, ev) = event(&text);
    let UserEvent::ExecutionReport(raw) = ev else {
        panic!()
    };
    assert_eq!(raw.expiry_reason, Some("OCO_TRIGGER"));
    assert_eq!(raw.typed(8, 8).unwrap().status, VenueStatus::Expired);
}

#[test]
fn order_list_answers_of_the_docs() {
    use pinion_gateway::binance::wire::{Contingency, ListOrderStatus, ListStatusType};
    // orderList.place.otoco (RESULT), rate limits trimmed.
    let otoco = r#"{"id":"1712544408508","status":200,"result":{"orderListId":629,"contingencyType":"OTO","listStatusType":"EXEC_STARTED","listOrderStatus":"EXECUTING","listClientOrderId":"GaeJHjZPasPItFj4x7Mqm6","transactionTime":1712544408537,"symbol":"1712544378871","orders":[{"symbol":"LTCBNB","orderId":23,"clientOrderId":"OVQOpKwfmPCfaBTD0n7e7H"},{"symbol":"LTCBNB","orderId":24,"clientOrderId":"YcCPKCDMQIjNvLtNswt82X"},{"symbol":"LTCBNB","orderId":25,"clientOrderId":"ilpIoShcFZ1ZGgSASKxMPt"}],"orderReports":[{"symbol":"LTCBNB","orderId":23,"orderListId":629,"clientOrderId":"OVQOpKwfmPCfaBTD0n7e7H","transactTime":1712544408537,"price":"1.500000","origQty":"1.000000","executedQty":"0.000000","origQuoteOrderQty":"0.000000","cummulativeQuoteQty":"0.000000","status":"NEW","timeInForce":"GTC","type":"LIMIT","side":"BUY","workingTime":1712544408537,"selfTradePreventionMode":"NONE"},{"symbol":"LTCBNB","orderId":24,"orderListId":629,"clientOrderId":"YcCPKCDMQIjNvLtNswt82X","transactTime":1712544408537,"price":"0.000000","origQty":"5.000000","executedQty":"0.000000","origQuoteOrderQty":"0.000000","cummulativeQuoteQty":"0.000000","status":"PENDING_NEW","timeInForce":"GTC","type":"STOP_LOSS","side":"SELL","stopPrice":"0.500000","workingTime":-1,"selfTradePreventionMode":"NONE"}]},"rateLimits":[{"rateLimitType":"ORDERS","interval":"MINUTE","intervalNum":1,"limit":10000000,"count":18}]}"#;
    let Frame::Response(r) = parse_frame(otoco).unwrap() else {
        panic!()
    };
    assert_eq!(r.failure(), None);
    let l = r.order_list().unwrap();
    let u = l.typed().unwrap();
    assert_eq!(u.order_list_id, 629);
    assert_eq!(u.contingency, Contingency::Oto);
    assert_eq!(u.status_type, ListStatusType::ExecStarted);
    assert_eq!(u.order_status, ListOrderStatus::Executing);
    assert_eq!(u.list_client_id, "GaeJHjZPasPItFj4x7Mqm6");
    let ids: Vec<u64> = l.orders.0.iter().map(|o| o.order_id).collect();
    assert_eq!(ids, [23, 24, 25]);
    assert_eq!(l.orders.0[2].client_id, "ilpIoShcFZ1ZGgSASKxMPt");
    assert!(l.order_reports.is_some());

    // orderList.cancel (RESULT): ALL_DONE.
    let cancel = r#"{"id":"c5899911-d3f4-47ae-8835-97da553d27d0","status":200,"result":{"orderListId":1274512,"contingencyType":"OCO","listStatusType":"ALL_DONE","listOrderStatus":"ALL_DONE","listClientOrderId":"6023531d7edaad348f5aff","transactionTime":1660801720215,"symbol":"BTCUSDT","orders":[{"symbol":"BTCUSDT","orderId":12569138901,"clientOrderId":"BqtFCj5odMoWtSqGk2X9tU"},{"symbol":"BTCUSDT","orderId":12569138902,"clientOrderId":"jLnZpj5enfMXTuhKB1d0us"}],"orderReports":[]},"rateLimits":[]}"#;
    let Frame::Response(r) = parse_frame(cancel).unwrap() else {
        panic!()
    };
    let u = r.order_list().unwrap().typed().unwrap();
    assert_eq!(
        (u.order_list_id, u.status_type, u.order_status),
        (1_274_512, ListStatusType::AllDone, ListOrderStatus::AllDone)
    );

    // openOrderLists.status.
    let open = r#"{"id":"3a4437e2-41a3-4c19-897c-9cadc5dce8b6","status":200,"result":[{"orderListId":0,"contingencyType":"OCO","listStatusType":"EXEC_STARTED","listOrderStatus":"EXECUTING","listClientOrderId":"08985fedd9ea2cf6b28996","transactionTime":1660801713793,"symbol":"BTCUSDT","orders":[{"symbol":"BTCUSDT","orderId":4,"clientOrderId":"CUhLgTXnX5n2c0gWiLpV4d"},{"symbol":"BTCUSDT","orderId":5,"clientOrderId":"1ZqG7bBuYwaF4SU8CwnwHm"}]}],"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":6}]}"#;
    let Frame::Response(r) = parse_frame(open).unwrap() else {
        panic!()
    };
    let lists = r.open_order_lists().unwrap();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].orders.0[1].order_id, 5);
    assert_eq!(lists[0].list_client_order_id, "08985fedd9ea2cf6b28996");
    assert!(lists[0].order_reports.is_none());
    // An error answer has no list.
    let err = r#"{"id":1,"status":400,"error":{"code":-1165,"msg":"A limit order in a buy OCO must be below."}}"#;
    let Frame::Response(r) = parse_frame(err).unwrap() else {
        panic!()
    };
    assert!(matches!(r.order_list(), Err(WireError::NoResult(_))));
    assert_eq!(r.failure(), Some(Failure::Refused));
}

#[test]
fn the_frame_scanner_reads_nesting_and_refuses_broken_structure() {
    // A brace and a quote inside a string do not end the value.
    let text = r#"{"id":1,"status":200,"result":{"m":"a\"}b","n":[{"x":"]"}]},"rateLimits":[]}"#;
    let Frame::Response(r) = parse_frame(text).unwrap() else {
        panic!()
    };
    assert_eq!(
        r.outcome.unwrap().json().unwrap().get(),
        r#"{"m":"a\"}b","n":[{"x":"]"}]}"#
    );
    // Whitespace anywhere JSON allows it.
    let text = " {\n \"id\" : 2 ,\t\"status\":200, \"result\" : { } } ";
    assert!(matches!(parse_frame(text), Ok(Frame::Response(_))));
    for bad in [
        r#"{"id":1,"status":200,"result":{"a":[1,2}"#,
        r#"{"id":1,"status":200,"result":{}} x"#,
        r#"{"id":1 "status":200,"result":{}}"#,
        r#"{"id":1,"status":200,"result":"open}"#,
        r#"{"id":1,"status":,"result":{}}"#,
        r#"{id:1}"#,
        r#"[{"id":1}]"#,
        "",
    ] {
        assert!(
            matches!(parse_frame(bad), Err(WireError::Json { .. })),
            "{bad:?}"
        );
    }
    // An event without a type is named as such.
    let err = parse_frame(r#"{"subscriptionId":0,"event":{"E":1}}"#).unwrap_err();
    assert!(err.to_string().contains("`e`"), "{err}");
}
