//! Hostile input: nothing in the Binance order path panics on any frame, however broken.
//! (A proptest stand-in until a cargo-fuzz target joins `fuzz/`.)

use pinion_core::InstrumentId;
use pinion_feed::exchange_info::{RateLimit, RateLimitInterval, RateLimitKind};
use pinion_gateway::binance::client_id::{ClientIdCodec, RunEpoch};
use pinion_gateway::binance::limits::{Method, RateLimiter};
use pinion_gateway::binance::orders::{OrderTable, OrderTableConfig, RequestKind};
use pinion_gateway::binance::wire::{Frame, UserEvent, parse_frame};
use pinion_strategy::{ClientOrderId, OrderIntent, OrderSide, OrderType, TimeInForce};
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1,"s":"BTCUSDT","c":"p0miskr280-0000000000001","S":"BUY","o":"LIMIT","f":"GTC","q":"1.00000","p":"100.00","P":"0.00","F":"0.00000","g":-1,"C":"","x":"TRADE","X":"PARTIALLY_FILLED","r":"NONE","i":9,"l":"0.50000","z":"0.50000","L":"100.00","n":"0","N":null,"T":2,"t":3,"I":4,"w":true,"m":false,"M":false,"O":1,"Z":"50","Y":"50","Q":"0","W":1,"V":"NONE"}}"#,
    r#"{"id":1,"status":200,"result":{"symbol":"BTCUSDT","orderId":9,"orderListId":-1,"clientOrderId":"p0miskr280-0000000000001","transactTime":1},"rateLimits":[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50,"count":1}]}"#,
    r#"{"id":1,"status":429,"error":{"code":-1015,"msg":"Too many new orders","data":{"retryAfter":99}}}"#,
    r#"{"subscriptionId":0,"event":{"e":"outboundAccountPosition","E":1,"u":1,"B":[{"a":"ETH","f":"1.0","l":"0.0"}]}}"#,
];

fn exercise(text: &str) {
    let codec = ClientIdCodec::new(RunEpoch::new(1_764_921_600_000).unwrap());
    let mut table = OrderTable::new(codec, InstrumentId(0), 2, 5, OrderTableConfig::default());
    let mut limiter = RateLimiter::new(&[RateLimit {
        kind: RateLimitKind::Orders,
        interval: RateLimitInterval::Second,
        interval_num: 10,
        limit: 50,
    }])
    .unwrap();
    let intent = OrderIntent::new_limit(
        0,
        ClientOrderId(1),
        InstrumentId(0),
        OrderSide::Buy,
        pinion_core::Px(10_000),
        pinion_core::Qty(100_000),
        OrderType::Limit,
        TimeInForce::Gtc,
        pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry),
    );
    table.submit(&intent, 0).unwrap();
    let ticket = limiter.try_send(Method::OrderPlace, 0).unwrap();
    match parse_frame(text) {
        Ok(Frame::Response(r)) => {
            let _ = (
                r.order_ack(),
                r.order_snapshot(),
                r.server_time(),
                r.open_orders(),
            );
            for kind in [RequestKind::Place, RequestKind::Cancel, RequestKind::Status] {
                table.on_response(kind, ClientOrderId(1), &r, 1, |_| {});
            }
            limiter.on_response(ticket, &r, 1);
        }
        Ok(Frame::Event {
            event: UserEvent::ExecutionReport(raw),
            ..
        }) => {
            if let Ok(rep) = raw.typed(2, 5) {
                table.on_execution(&rep, |r| assert!(r.leaves_qty.0 >= 0));
            }
        }
        Ok(Frame::Event { .. }) | Err(_) => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        exercise(&text);
    }

    #[test]
    fn mutated_real_frames_never_panic(
        seed in 0..SEEDS.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = SEEDS[seed].as_bytes().to_vec();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b" 0123456789-.\",:{}[]aeEnulltrue"[usize::from(b) % 31];
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            exercise(text);
        }
    }
}
