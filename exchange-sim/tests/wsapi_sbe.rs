//! The WS API in SBE, message by message: the simulator's encoder against golden bytes laid out
//! by hand from `spot_3_5.xml` and against the generated decoder (`pinion-sbe-spot`), and
//! pinion's reader of those frames (`pinion_gateway::binance::sbe`) giving what the JSON frame
//! gives, or, for a value it cannot represent, an order whose state is not taken as known.

mod common;

use pinion_exchange_sim::wsapi::sbe;
use pinion_gateway::binance::sbe::{Transcoded, transcode};
use pinion_gateway::binance::wire::{self, Failure, Frame, ResponseId, UserEvent, WireError};
use pinion_sbe_spot::spot::{BoolEnum, Message, RateLimitInterval, RateLimitType};

/// `order.place` with `newOrderRespType=ACK`, answered.
const ACK: &str = r#"{"id":7,"status":200,"result":{"symbol":"BTCUSDT","orderId":12,"orderListId":-1,"clientOrderId":"c1","transactTime":1780000000123},"rateLimits":[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50,"count":1}]}"#;

/// Little-endian bytes of each value, end to end.
fn le(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn an_ack_answer_is_written_byte_for_byte_as_the_schema_lays_it_out() {
    let frame = sbe::response(ACK, "order.place");
    let inner = le(&[
        // NewOrderAckResponse: block 24, template 300, schema 3, version 5.
        &24u16.to_le_bytes(),
        &300u16.to_le_bytes(),
        &3u16.to_le_bytes(),
        &5u16.to_le_bytes(),
        &12i64.to_le_bytes(),                    // orderId
        &i64::MIN.to_le_bytes(),                 // orderListId: -1 is its null
        &1_780_000_000_123_000i64.to_le_bytes(), // transactTime, µs
        &[7],
        b"BTCUSDT",
        &[2],
        b"c1",
    ]);
    let golden = le(&[
        // WebSocketResponse: block 3, template 50, schema 3, version 5.
        &3u16.to_le_bytes(),
        &50u16.to_le_bytes(),
        &3u16.to_le_bytes(),
        &5u16.to_le_bytes(),
        &[0],                  // sbeSchemaIdVersionDeprecated: False
        &200u16.to_le_bytes(), // status
        &19u16.to_le_bytes(),  // rateLimits: entries of 19 bytes
        &1u16.to_le_bytes(),   // one entry
        &[3, 0, 10],           // ORDERS, SECOND, 10
        &50i64.to_le_bytes(),  // limit
        &1i64.to_le_bytes(),   // count
        &[1],
        b"7", // id, as text
        &(inner.len() as u32).to_le_bytes(),
        &inner,
    ]);
    assert_eq!(frame, golden);

    // The generated decoder reads it back field by field.
    let Ok(Message::WebSocketResponse(r)) = pinion_sbe_spot::decode(&frame) else {
        panic!("a WebSocketResponse");
    };
    assert_eq!(r.sbe_schema_id_version_deprecated(), BoolEnum::False);
    assert_eq!(r.status(), 200);
    assert_eq!(r.id(), Ok("7"));
    let limits: Vec<_> = r.rate_limits().map(|l| l.expect("entry")).collect();
    assert_eq!(limits.len(), 1);
    assert_eq!(limits[0].rate_limit_type(), RateLimitType::Orders);
    assert_eq!(limits[0].interval(), RateLimitInterval::Second);
    assert_eq!(
        (
            limits[0].interval_num(),
            limits[0].rate_limit(),
            limits[0].current()
        ),
        (10, 50, 1)
    );
    let Ok(Message::NewOrderAckResponse(a)) = pinion_sbe_spot::decode(r.result()) else {
        panic!("a NewOrderAckResponse inside");
    };
    assert_eq!(a.order_id(), 12);
    assert_eq!(a.order_list_id(), None);
    assert_eq!(a.transact_time(), 1_780_000_000_123_000);
    assert_eq!(a.symbol(), Ok("BTCUSDT"));
    assert_eq!(a.client_order_id(), Ok("c1"));

    // pinion's session reads it as it reads the JSON answer.
    let mut text = Vec::new();
    assert_eq!(transcode(&frame, &mut text), Ok(Transcoded::Json));
    let text = std::str::from_utf8(&text).expect("utf-8");
    let (Ok(Frame::Response(from_sbe)), Ok(Frame::Response(from_json))) =
        (wire::parse_frame(text), wire::parse_frame(ACK))
    else {
        panic!("both are responses: {text}");
    };
    assert_eq!(from_sbe.id, ResponseId::Num(7));
    assert_eq!(from_sbe.status, from_json.status);
    assert_eq!(from_sbe.rate_limits, from_json.rate_limits);
    assert_eq!(from_sbe.order_ack(), from_json.order_ack());
    assert_eq!(from_sbe.failure(), None);
}

/// An `executionReport` of a resting buy, as the simulator writes it, with `q` replaced.
fn report(qty: &str, status: &str) -> String {
    format!(
        r#"{{"subscriptionId":0,"event":{{"e":"executionReport","E":1780000000500,"s":"BTCUSDT","c":"c1","S":"BUY","o":"LIMIT","f":"GTC","q":"{qty}","p":"60000.00000000","P":"0.00000000","F":"0.00000000","g":-1,"C":"","x":"NEW","X":"{status}","r":"NONE","i":12,"l":"0.00000000","z":"0.00000000","L":"0.00000000","n":"0","N":null,"T":1780000000499,"t":-1,"I":40,"w":true,"m":false,"M":false,"O":1780000000499,"Z":"0.00000000","Y":"0.00000000","Q":"0.00000000","V":"EXPIRE_MAKER","W":1780000000499}}}}"#
    )
}

fn read_report(json: &str) -> Result<(), WireError> {
    let frame = sbe::event(json);
    let mut text = Vec::new();
    assert_eq!(transcode(&frame, &mut text), Ok(Transcoded::Json));
    let text = std::str::from_utf8(&text).expect("utf-8");
    let Ok(Frame::Event {
        subscription_id: Some(0),
        event: UserEvent::ExecutionReport(raw),
    }) = wire::parse_frame(text)
    else {
        panic!("an execution report: {text}");
    };
    // The JSON original reads the same.
    let Ok(Frame::Event {
        event: UserEvent::ExecutionReport(original),
        ..
    }) = wire::parse_frame(json)
    else {
        panic!("the JSON is an execution report");
    };
    assert_eq!(raw.client_id, original.client_id);
    assert_eq!(raw.order_id, original.order_id);
    assert_eq!(raw.execution_id, original.execution_id);
    assert_eq!(raw.working_time, original.working_time);
    let typed = raw.typed(2, 5)?;
    let want = original
        .typed(2, 5)
        .expect("the JSON original is representable");
    assert_eq!(
        (typed.qty, typed.price, typed.status),
        (want.qty, want.price, want.status)
    );
    assert_eq!(
        (typed.cum_qty, typed.trade_id),
        (want.cum_qty, want.trade_id)
    );
    Ok(())
}

#[test]
fn an_execution_report_reads_as_its_json_and_an_unrepresentable_one_is_refused() {
    read_report(&report("0.00100000", "NEW")).expect("representable");
    // A quantity finer than the instrument's 5 decimals cannot be a `Qty`: refused, naming the
    // field (the session then makes the order unknown and queries it, never rounds).
    match read_report(&report("0.00000001", "NEW")) {
        Err(WireError::Decimal { field: "q", .. }) => {}
        other => panic!("q = 0.00000001 must be refused, got {other:?}"),
    }
    // A status the schema does not name is sent as NonRepresentable and read as no status.
    let frame = sbe::event(&report("0.00100000", "NOT_A_STATUS"));
    let mut text = Vec::new();
    transcode(&frame, &mut text).expect("frame");
    let text = std::str::from_utf8(&text).expect("utf-8");
    let Ok(Frame::Event {
        event: UserEvent::ExecutionReport(raw),
        ..
    }) = wire::parse_frame(text)
    else {
        panic!("an execution report");
    };
    assert_eq!(raw.status, "NON_REPRESENTABLE");
    assert!(matches!(
        raw.typed(2, 5),
        Err(WireError::UnknownValue { field: "X", .. })
    ));
}

#[test]
fn a_result_the_schema_cannot_say_is_an_unknown_outcome_never_a_rejection() {
    // A result the simulator has no SBE message for goes out as NonRepresentableMessage.
    let answer = r#"{"id":9,"status":200,"result":{"unsubscribed":true},"rateLimits":[]}"#;
    let frame = sbe::response(answer, "userDataStream.unsubscribe");
    let Ok(Message::WebSocketResponse(r)) = pinion_sbe_spot::decode(&frame) else {
        panic!("a WebSocketResponse");
    };
    assert!(matches!(
        pinion_sbe_spot::decode(r.result()),
        Ok(Message::NonRepresentableMessage(_))
    ));
    let mut text = Vec::new();
    transcode(&frame, &mut text).expect("frame");
    let text = std::str::from_utf8(&text).expect("utf-8");
    let Ok(Frame::Response(resp)) = wire::parse_frame(text) else {
        panic!("a response: {text}");
    };
    assert_eq!(resp.id, ResponseId::Num(9));
    assert_eq!(resp.failure(), Some(Failure::Unknown));

    // A bare NonRepresentableMessage (an event the schema cannot say) is reported as such.
    let mut out = Vec::new();
    let bare = [0u8, 0, 0xe7, 0x03, 3, 0, 5, 0];
    assert_eq!(transcode(&bare, &mut out), Ok(Transcoded::NonRepresentable));
    // A cut frame is an error, not a guess.
    assert!(transcode(&frame[..frame.len() - 3], &mut out).is_err());
}

#[test]
fn an_error_answer_keeps_its_code_message_and_retry_time() {
    let answer = r#"{"id":3,"status":429,"error":{"code":-1015,"msg":"Too many new orders.","data":{"retryAfter":1780000010000}},"rateLimits":[]}"#;
    let frame = sbe::response(answer, "order.place");
    let mut text = Vec::new();
    transcode(&frame, &mut text).expect("frame");
    let text = std::str::from_utf8(&text).expect("utf-8");
    let (Ok(Frame::Response(from_sbe)), Ok(Frame::Response(from_json))) =
        (wire::parse_frame(text), wire::parse_frame(answer))
    else {
        panic!("both are responses: {text}");
    };
    assert_eq!(from_sbe.status, 429);
    assert_eq!(from_sbe.failure(), Some(Failure::RateLimited));
    let (Err(a), Err(b)) = (&from_sbe.outcome, &from_json.outcome) else {
        panic!("both are errors");
    };
    assert_eq!((a.code, &*a.msg), (b.code, &*b.msg));
    assert_eq!(a.retry_after_ms(), Some(1_780_000_010_000));
}

#[test]
fn a_cancel_replace_carries_both_answers_as_nested_messages() {
    let answer = r#"{"id":11,"status":200,"result":{"cancelResult":"SUCCESS","newOrderResult":"SUCCESS",
        "cancelResponse":{"symbol":"BTCUSDT","origClientOrderId":"c1","orderId":12,"orderListId":-1,"clientOrderId":"x1","transactTime":1780000000600,"price":"60000.00000000","origQty":"0.00100000","executedQty":"0.00000000","cummulativeQuoteQty":"0.00000000","status":"CANCELED","timeInForce":"GTC","type":"LIMIT","side":"BUY","selfTradePreventionMode":"EXPIRE_MAKER"},
        "newOrderResponse":{"symbol":"BTCUSDT","orderId":13,"orderListId":-1,"clientOrderId":"c2","transactTime":1780000000600}},
        "rateLimits":[]}"#;
    let frame = sbe::response(answer, "order.cancelReplace");
    let Ok(Message::WebSocketResponse(r)) = pinion_sbe_spot::decode(&frame) else {
        panic!("a WebSocketResponse");
    };
    let Ok(Message::CancelReplaceOrderResponse(c)) = pinion_sbe_spot::decode(r.result()) else {
        panic!("a CancelReplaceOrderResponse");
    };
    let Some(Ok(Message::CancelOrderResponse(cancel))) =
        c.cancel_response().map(pinion_sbe_spot::decode)
    else {
        panic!("the cancel's answer");
    };
    assert_eq!(cancel.orig_client_order_id(), Ok("c1"));
    assert_eq!(
        (cancel.price().mantissa, cancel.price().exponent),
        (6_000_000_000_000, -8)
    );
    let Some(Ok(Message::NewOrderAckResponse(new))) =
        c.new_order_response().map(pinion_sbe_spot::decode)
    else {
        panic!("the new order's answer");
    };
    assert_eq!((new.order_id(), new.client_order_id()), (13, Ok("c2")));
    let mut text = Vec::new();
    transcode(&frame, &mut text).expect("frame");
    let text = std::str::from_utf8(&text).expect("utf-8");
    let Ok(Frame::Response(resp)) = wire::parse_frame(text) else {
        panic!("a response: {text}");
    };
    assert_eq!(resp.failure(), None, "{text}");
}

/// The simulator's synthetic market with the WS API, over TLS.
fn live() -> common::Sim {
    common::start_from(
        || {
            let market = pinion_feed::synth::SynthMarket::new(pinion_feed::synth::SynthConfig {
                messages: 1000,
                ..pinion_feed::synth::SynthConfig::default()
            })
            .map_err(|e| pinion_feed::SourceError::Io(std::io::Error::other(e.to_string())))?;
            Ok(Box::new(market) as Box<dyn pinion_feed::FrameSource + Send>)
        },
        pinion_exchange_sim::WsApiConfig::new(common::API_KEY),
        pinion_exchange_sim::LivePacing::AsFastAsPossible,
        &["BTCUSDT"],
    )
}

#[test]
fn a_session_asking_for_the_pinned_schema_is_answered_in_sbe_and_another_schema_is_refused() {
    let sim = live();
    let url = |query: &str| {
        format!(
            "wss://localhost:{}/ws-api/v3?{query}",
            sim.exchange.local_addr().port()
        )
    };
    for query in [
        "responseFormat=sbe&sbeSchemaId=3&sbeSchemaVersion=4",
        "responseFormat=sbe",
        "responseFormat=xml",
    ] {
        match tungstenite::client::client(url(query), sim.tls()) {
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                assert_eq!(r.status(), 400, "{query}");
            }
            other => panic!("{query}: must be HTTP 400, got {:?}", other.map(|_| ())),
        }
    }
    let (mut ws, _) = tungstenite::client::client(
        url("responseFormat=sbe&sbeSchemaId=3&sbeSchemaVersion=5"),
        sim.tls(),
    )
    .expect("handshake");
    ws.send(tungstenite::Message::text(r#"{"id":5,"method":"time"}"#))
        .expect("send");
    let frame = loop {
        match ws.read().expect("read") {
            tungstenite::Message::Binary(b) => break b,
            tungstenite::Message::Text(t) => panic!("a JSON answer in an SBE session: {t}"),
            _ => {}
        }
    };
    let Ok(Message::WebSocketResponse(r)) = pinion_sbe_spot::decode(&frame) else {
        panic!("a WebSocketResponse");
    };
    assert_eq!((r.status(), r.id()), (200, Ok("5")));
    let Ok(Message::ServerTimeResponse(t)) = pinion_sbe_spot::decode(r.result()) else {
        panic!("a ServerTimeResponse");
    };
    let now_us = common::now_ms() as i64 * 1000;
    assert!(
        (t.server_time() - now_us).abs() < 5_000_000,
        "{}",
        t.server_time()
    );
    assert!(sim.exchange.stats().ws_api_sbe_messages >= 1);
}
