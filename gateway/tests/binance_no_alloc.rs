//! The order path allocates nothing once set up: patching requests, reading answers and
//! events, tracking orders and rate limits.

use pinion_core::{Px, Qty};
use pinion_gateway::binance::client_id::{CLIENT_ID_LEN, ClientIdCodec, RunEpoch};
use pinion_gateway::binance::sign::Signer;
use pinion_gateway::binance::template::{Signing, SlotValues, SymbolContext};
use pinion_strategy::{ClientOrderId, OrderSide, OrderType, TimeInForce};
use pinion_testkit::alloc::thread_allocations;

#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

#[test]
fn patched_orders_allocate_nothing_in_every_signing_mode() {
    let hmac = Signer::hmac(b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j");
    let ed = Signer::ed25519_pem(
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIOL9C+S9+YZx6b7Tpmdlq0xLkyBRN5MlJOEAvMrD+oD/\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let codec = ClientIdCodec::new(RunEpoch::new(1_764_921_600_000).unwrap());
    for (signing, signer) in [
        (Signing::LoggedOn, None),
        (
            Signing::PerRequest {
                api_key: "k".into(),
            },
            Some(&hmac),
        ),
        (
            Signing::PerRequest {
                api_key: "k".into(),
            },
            Some(&ed),
        ),
    ] {
        let ctx = SymbolContext {
            symbol: "BTCUSDT".into(),
            price_decimals: 2,
            qty_decimals: 5,
            recv_window: None,
            stp_mode: None,
            signing,
        };
        let mut t = ctx
            .order_place(OrderSide::Buy, OrderType::Limit, TimeInForce::Gtc)
            .unwrap();
        let mut id = [0u8; CLIENT_ID_LEN];
        let mut check = 0u64;
        // Warm-up.
        codec.encode(ClientOrderId(0), &mut id);
        let v = SlotValues {
            client_id: &id,
            ..SlotValues::default()
        };
        t.write(&v, signer).unwrap();
        let before = thread_allocations();
        for i in 0..1_000u64 {
            codec.encode(ClientOrderId(i), &mut id);
            let v = SlotValues {
                request_id: i,
                price: Px(6_000_000 + i as i64),
                qty: Qty(100 + i as i64),
                client_id: &id,
                timestamp_ms: 1_764_921_600_000 + i,
                ..SlotValues::default()
            };
            let out = t.write(&v, signer).unwrap();
            check = check.wrapping_add(u64::from(out[out.len() / 2]));
        }
        assert_eq!(
            thread_allocations() - before,
            0,
            "{:?}",
            signer.map(Signer::kind)
        );
        assert_ne!(check, 0);
    }
}

#[test]
fn reading_order_acks_and_execution_reports_allocates_nothing() {
    use pinion_gateway::binance::wire::{Frame, UserEvent, parse_frame};
    let report = r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1499405658658,"s":"ETHBTC","c":"mUvoqJxFIILMdfAW5iGSOW","S":"BUY","o":"LIMIT","f":"GTC","q":"1.00000000","p":"0.10264410","P":"0.00000000","F":"0.00000000","g":-1,"C":"","x":"TRADE","X":"PARTIALLY_FILLED","r":"NONE","i":4293153,"l":"0.50000000","z":"0.50000000","L":"0.10264410","n":"0","N":null,"T":1499405658657,"t":12,"I":8641984,"w":true,"m":false,"M":false,"O":1499405658657,"Z":"0.05132205","Y":"0.05132205","Q":"0.00000000","W":1499405658657,"V":"NONE"}}"#;
    let ack = r#"{"id":42,"status":200,"result":{"symbol":"BTCUSDT","orderId":12510053279,"orderListId":-1,"clientOrderId":"p0miskr280-0000000000001","transactTime":1655716096505},"rateLimits":[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50,"count":12},{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":1}]}"#;
    let mut sum = 0u64;
    let before = thread_allocations();
    for _ in 0..100 {
        if let Frame::Event {
            event: UserEvent::ExecutionReport(raw),
            ..
        } = parse_frame(report).unwrap()
        {
            sum += raw.typed(8, 8).unwrap().cum_qty.0 as u64;
        }
        if let Frame::Response(r) = parse_frame(ack).unwrap() {
            sum += r.order_ack().unwrap().order_id + u64::from(r.rate_limits.0[0].count);
        }
    }
    assert_eq!(thread_allocations() - before, 0);
    assert_eq!(sum, 100 * (50_000_000 + 12_510_053_279 + 12));
}

#[test]
fn tracking_orders_and_limits_allocates_nothing() {
    use pinion_core::InstrumentId;
    use pinion_feed::exchange_info::{RateLimit, RateLimitInterval, RateLimitKind};
    use pinion_gateway::binance::limits::{Method, RateLimiter};
    use pinion_gateway::binance::orders::{OrderTable, OrderTableConfig, RequestKind};
    use pinion_gateway::binance::wire::{Frame, UserEvent, parse_frame};
    use pinion_strategy::OrderIntent;

    let codec = ClientIdCodec::new(RunEpoch::new(1_764_921_600_000).unwrap());
    let mut table = OrderTable::new(codec, InstrumentId(0), 2, 5, OrderTableConfig::default());
    let mut limiter = RateLimiter::new(&[RateLimit {
        kind: RateLimitKind::Orders,
        interval: RateLimitInterval::Second,
        interval_num: 10,
        limit: 1_000_000,
    }])
    .unwrap();
    // Frames for order k are written before counting, into one preallocated buffer each.
    let mut frames = Vec::new();
    for k in 0..200u64 {
        let mut id = [0u8; CLIENT_ID_LEN];
        codec.encode(ClientOrderId(k), &mut id);
        let c = std::str::from_utf8(&id).unwrap().to_owned();
        let ack = format!(
            r#"{{"id":{k},"status":200,"result":{{"symbol":"BTCUSDT","orderId":{k},"orderListId":-1,"clientOrderId":"{c}","transactTime":1}},"rateLimits":[{{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":1000000,"count":{k}}}]}}"#
        );
        let fill = format!(
            r#"{{"subscriptionId":0,"event":{{"e":"executionReport","E":1,"s":"BTCUSDT","c":"{c}","S":"BUY","o":"LIMIT","f":"GTC","q":"0.00100","p":"100.00","P":"0.00","F":"0.00000","g":-1,"C":"","x":"TRADE","X":"FILLED","r":"NONE","i":{k},"l":"0.00100","z":"0.00100","L":"100.00","n":"0","N":null,"T":2,"t":{k},"I":{k},"w":false,"m":true,"M":true,"O":1,"Z":"0.1","Y":"0.1","Q":"0","V":"NONE"}}}}"#
        );
        frames.push((ack, fill));
    }
    let mut fills = 0i64;
    let before = thread_allocations();
    for (k, (ack, fill)) in frames.iter().enumerate() {
        let intent = OrderIntent::new_limit(
            0,
            ClientOrderId(k as u64),
            InstrumentId(0),
            OrderSide::Buy,
            Px(10_000),
            Qty(100),
            OrderType::Limit,
            TimeInForce::Gtc,
        );
        let ticket = limiter.try_send(Method::OrderPlace, 1_000).unwrap();
        table.submit(&intent, 1_000).unwrap();
        if let Ok(Frame::Response(r)) = parse_frame(ack) {
            table.on_response(RequestKind::Place, intent.client_id, &r, 1_001, |_| {});
            limiter.on_response(ticket, &r, 1_001);
        }
        if let Ok(Frame::Event {
            event: UserEvent::ExecutionReport(raw),
            ..
        }) = parse_frame(fill)
        {
            let (p, q) = table.decimals();
            let rep = raw.typed(p, q).unwrap();
            table.on_execution(&rep, |r| fills += r.last_qty.0);
        }
        if k % 50 == 49 {
            table.sweep_closed();
        }
    }
    assert_eq!(thread_allocations() - before, 0);
    assert_eq!(fills, 200 * 100);
}
