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
fn reading_sbe_order_answers_and_execution_reports_directly_allocates_nothing() {
    use pinion_exchange_sim::wsapi::sbe;
    use pinion_gateway::binance::sbe_direct::{Direct, read};
    let report = sbe::event(
        r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1499405658658,"s":"ETHBTC","c":"mUvoqJxFIILMdfAW5iGSOW","S":"BUY","o":"LIMIT","f":"GTC","q":"1.00000000","p":"0.10264410","P":"0.00000000","F":"0.00000000","g":-1,"C":"","x":"TRADE","X":"PARTIALLY_FILLED","r":"NONE","i":4293153,"l":"0.50000000","z":"0.50000000","L":"0.10264410","n":"0.00010000","N":"BNB","T":1499405658657,"t":12,"I":8641984,"w":true,"m":false,"M":false,"O":1499405658657,"Z":"0.05132205","Y":"0.05132205","Q":"0.00000000","W":1499405658657,"V":"NONE"}}"#,
    );
    let ack = sbe::response(
        r#"{"id":42,"status":200,"result":{"symbol":"BTCUSDT","orderId":12510053279,"orderListId":-1,"clientOrderId":"p0miskr280-0000000000001","transactTime":1655716096505},"rateLimits":[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50,"count":12},{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":1}]}"#,
        "order.place",
    );
    let rejected = sbe::response(
        r#"{"id":43,"status":400,"error":{"code":-2010,"msg":"Order would immediately match and take."},"rateLimits":[]}"#,
        "order.place",
    );
    let mut sum = 0u64;
    let before = thread_allocations();
    for _ in 0..100 {
        if let Direct::Report(r) = read(&report) {
            sum += r.typed(8, 8).unwrap().cum_qty.0 as u64;
            // Not representable at 2 decimals: the unread report, without allocating either.
            sum += u64::from(r.typed(2, 8).is_err());
        }
        if let Direct::Answer(a) = read(&ack) {
            sum += a.order_ack().unwrap().order_id + u64::from(a.rate_limits.0[0].count);
        }
        if let Direct::Answer(a) = read(&rejected) {
            sum += u64::from(a.failure().is_some());
        }
    }
    assert_eq!(thread_allocations() - before, 0);
    assert_eq!(sum, 100 * (50_000_000 + 1 + 12_510_053_279 + 12 + 1));
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
            pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry),
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

/// An OTOCO with a trailing stop in its bracket, for leg `k` of run `i`.
fn otoco(i: u64) -> pinion_gateway::binance::contingent::ListIntent {
    use pinion_core::InstrumentId;
    use pinion_gateway::binance::contingent::{
        ContingentLeg, LegSpec, ListIntent, ListShape, Trigger,
    };
    let leg = |k: u64, side, spec| ContingentLeg {
        client_id: ClientOrderId(i * 4 + k),
        side,
        qty: Qty(100),
        spec,
    };
    ListIntent {
        t0: i,
        instrument: InstrumentId(0),
        list_id: ClientOrderId(i * 4),
        shape: ListShape::Otoco {
            working: leg(
                1,
                OrderSide::Buy,
                LegSpec::limit(Px(6_000_000 + i as i64), TimeInForce::Gtc),
            ),
            above: leg(2, OrderSide::Sell, LegSpec::limit_maker(Px(6_100_000))),
            below: leg(
                3,
                OrderSide::Sell,
                LegSpec::stop_loss_limit(
                    Trigger::StopThenTrailing {
                        stop: Px(5_900_000),
                        delta: 150,
                    },
                    Px(5_890_000),
                    TimeInForce::Gtc,
                ),
            ),
        },
    }
}

#[test]
fn order_lists_and_protective_orders_encode_without_allocating() {
    use pinion_gateway::binance::contingent::{ContingentOrder, LegSpec, Trigger};
    let hmac = Signer::hmac(b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j");
    let codec = ClientIdCodec::new(RunEpoch::new(1_764_921_600_000).unwrap());
    for (signing, signer) in [
        (Signing::LoggedOn, None),
        (
            Signing::PerRequest {
                api_key: "k".into(),
            },
            Some(&hmac),
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
        let mut list_t = ctx.order_list_otoco().unwrap();
        let mut stop_t = ctx.order_place_any().unwrap();
        let mut cancel_t = ctx
            .order_list_cancel(pinion_gateway::binance::template::OrderRef::OrderId)
            .unwrap();
        let mut ids = [[0u8; CLIENT_ID_LEN]; 4];
        let mut check = 0u64;
        let mut round = |i: u64, ids: &mut [[u8; CLIENT_ID_LEN]; 4]| {
            let list = otoco(i);
            codec.encode(list.list_id, &mut ids[0]);
            let legs = list.legs();
            for (k, leg) in legs.iter().enumerate() {
                codec.encode(leg.client_id, &mut ids[k + 1]);
            }
            let mut v = SlotValues {
                request_id: i,
                list_client_id: &ids[0],
                timestamp_ms: 1_764_921_600_000 + i,
                ..SlotValues::default()
            };
            for (k, leg) in legs.iter().enumerate() {
                v.legs[k] = leg.values(&ids[k + 1]);
            }
            let out = list_t.write(&v, signer).unwrap();
            let mut sum = u64::from(out[out.len() / 2]);
            // A protective order alone, alternating shapes so optional params come and go.
            let spec = if i.is_multiple_of(2) {
                LegSpec::stop_loss(Trigger::Trailing(100 + i as u32 % 50))
            } else {
                LegSpec::take_profit_limit(
                    Trigger::Stop(Px(6_200_000)),
                    Px(6_190_000),
                    TimeInForce::Ioc,
                )
            };
            let order = ContingentOrder {
                t0: i,
                instrument: pinion_core::InstrumentId(0),
                leg: pinion_gateway::binance::contingent::ContingentLeg { spec, ..legs[1] },
            };
            let mut v = SlotValues {
                request_id: i,
                timestamp_ms: 1_764_921_600_000 + i,
                ..SlotValues::default()
            };
            v.legs[0] = order.leg.values(&ids[2]);
            let out = stop_t.write(&v, signer).unwrap();
            sum += u64::from(out[out.len() / 3]);
            let v = SlotValues {
                request_id: i,
                order_list_id: 1_000 + i,
                client_id: &ids[3],
                timestamp_ms: 1_764_921_600_000 + i,
                ..SlotValues::default()
            };
            let out = cancel_t.write(&v, signer).unwrap();
            sum + u64::from(out[out.len() / 2])
        };
        // Warm-up.
        check += round(0, &mut ids);
        let before = thread_allocations();
        for i in 1..1_000u64 {
            check = check.wrapping_add(round(i, &mut ids));
        }
        assert_eq!(thread_allocations() - before, 0, "{}", signer.is_some());
        assert_ne!(check, 0);
    }
}

#[test]
fn tracking_order_lists_allocates_nothing() {
    use pinion_core::InstrumentId;
    use pinion_gateway::binance::orders::{ListRequest, ListState, OrderTable, OrderTableConfig};
    use pinion_gateway::binance::wire::{Frame, UserEvent, parse_frame};

    let codec = ClientIdCodec::new(RunEpoch::new(1_764_921_600_000).unwrap());
    let mut table = OrderTable::new(codec, InstrumentId(0), 2, 5, OrderTableConfig::default());
    let text = |id: ClientOrderId| {
        let mut out = [0u8; CLIENT_ID_LEN];
        codec.encode(id, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    };
    // Frames for list i, written before counting: the ACK, the entry's fill, the bracket
    // working, its take profit filling, its stop expiring, the list's end.
    let mut frames = Vec::new();
    for i in 0..60u64 {
        let (l, a, b, c) = (
            text(ClientOrderId(i * 4)),
            text(ClientOrderId(i * 4 + 1)),
            text(ClientOrderId(i * 4 + 2)),
            text(ClientOrderId(i * 4 + 3)),
        );
        let orders = format!(
            r#"[{{"symbol":"BTCUSDT","orderId":{},"clientOrderId":"{a}"}},{{"symbol":"BTCUSDT","orderId":{},"clientOrderId":"{b}"}},{{"symbol":"BTCUSDT","orderId":{},"clientOrderId":"{c}"}}]"#,
            i * 4 + 1,
            i * 4 + 2,
            i * 4 + 3
        );
        let ack = format!(
            r#"{{"id":{i},"status":200,"result":{{"orderListId":{i},"contingencyType":"OTO","listStatusType":"EXEC_STARTED","listOrderStatus":"EXECUTING","listClientOrderId":"{l}","transactionTime":1,"symbol":"BTCUSDT","orders":{orders}}},"rateLimits":[{{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50,"count":3}}]}}"#
        );
        let er = |c: &str, x: &str, st: &str, l: &str, z: &str, id: u64, e: u64| {
            format!(
                r#"{{"subscriptionId":0,"event":{{"e":"executionReport","E":1,"s":"BTCUSDT","c":"{c}","S":"BUY","o":"LIMIT","f":"GTC","q":"0.00100","p":"100.00","P":"0.00","F":"0.00000","g":{i},"C":"","x":"{x}","X":"{st}","r":"NONE","i":{id},"l":"{l}","z":"{z}","L":"100.00","n":"0","N":null,"T":2,"t":{e},"I":{e},"w":false,"m":true,"M":true,"O":1,"Z":"0.1","Y":"0.1","Q":"0","V":"NONE"}}}}"#
            )
        };
        let done = format!(
            r#"{{"subscriptionId":0,"event":{{"e":"listStatus","E":1,"s":"BTCUSDT","g":{i},"c":"OTO","l":"ALL_DONE","L":"ALL_DONE","r":"NONE","C":"{l}","T":3,"O":[{{"s":"BTCUSDT","i":{},"c":"{a}"}},{{"s":"BTCUSDT","i":{},"c":"{b}"}},{{"s":"BTCUSDT","i":{},"c":"{c}"}}]}}}}"#,
            i * 4 + 1,
            i * 4 + 2,
            i * 4 + 3
        );
        frames.push([
            ack,
            er(
                &a,
                "TRADE",
                "FILLED",
                "0.00100",
                "0.00100",
                i * 4 + 1,
                i * 10 + 1,
            ),
            er(
                &b,
                "NEW",
                "NEW",
                "0.00000",
                "0.00000",
                i * 4 + 2,
                i * 10 + 2,
            ),
            er(
                &b,
                "TRADE",
                "FILLED",
                "0.00100",
                "0.00100",
                i * 4 + 2,
                i * 10 + 3,
            ),
            er(
                &c,
                "EXPIRED",
                "EXPIRED",
                "0.00000",
                "0.00000",
                i * 4 + 3,
                i * 10 + 4,
            ),
            done,
        ]);
    }
    let lists: Vec<_> = (0..60).map(otoco).collect();
    let mut fills = 0i64;
    let before = thread_allocations();
    for (list, frames) in lists.iter().zip(&frames) {
        table.submit_list(list, 1_000).unwrap();
        for f in frames {
            match parse_frame(f) {
                Ok(Frame::Response(r)) => {
                    table.on_list_response(ListRequest::Place, list.list_id, &r, 1_001, |_| {})
                }
                Ok(Frame::Event {
                    event: UserEvent::ExecutionReport(raw),
                    ..
                }) => {
                    let (p, q) = table.decimals();
                    let rep = raw.typed(p, q).unwrap();
                    table.on_execution(&rep, |r| fills += r.last_qty.0);
                }
                Ok(Frame::Event {
                    event: UserEvent::ListStatus(raw),
                    ..
                }) => {
                    let u = raw.typed().unwrap();
                    table.on_list_status(&u, &raw.orders, 1_002, |_| {});
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(table.list(list.list_id).unwrap().state, ListState::AllDone);
        table.sweep_closed();
    }
    assert_eq!(thread_allocations() - before, 0);
    assert_eq!(fills, 60 * 200);
}
