//! The rate-limit model against a reference counter of the exchange, over random workloads.

use pinion_feed::exchange_info::{RateLimit, RateLimitInterval, RateLimitKind};
use pinion_gateway::binance::limits::{Method, RateLimiter, Refusal, Ticket};
use pinion_gateway::binance::wire::{Frame, parse_frame};
use proptest::prelude::*;

fn limits() -> Vec<RateLimit> {
    let l = |kind, interval, interval_num, limit| RateLimit {
        kind,
        interval,
        interval_num,
        limit,
    };
    vec![
        l(
            RateLimitKind::RequestWeight,
            RateLimitInterval::Minute,
            1,
            60,
        ),
        l(RateLimitKind::Orders, RateLimitInterval::Second, 10, 5),
        l(RateLimitKind::Orders, RateLimitInterval::Day, 1, 40),
        l(
            RateLimitKind::RawRequests,
            RateLimitInterval::Minute,
            5,
            100,
        ),
    ]
}

const METHODS: [Method; 9] = [
    Method::OrderPlace,
    Method::OrderCancel,
    Method::OrderCancelReplace,
    Method::OrderAmendKeepPriority,
    Method::OpenOrdersCancelAll,
    Method::OrderStatus,
    Method::Time,
    Method::MyTrades,
    Method::OpenOrdersStatus,
];

/// The exchange's counters: fixed windows, charged when a request is processed (at send),
/// weight waived for a successful order method.
struct Server {
    windows: Vec<(RateLimitKind, RateLimitInterval, u32, u64, u32, u32, u64)>, // kind, interval, num, len, limit, count, bucket
}

impl Server {
    fn new() -> Self {
        Self {
            windows: limits()
                .iter()
                .map(|l| {
                    (
                        l.kind,
                        l.interval,
                        l.interval_num,
                        l.window_seconds() * 1000,
                        l.limit,
                        0,
                        0,
                    )
                })
                .collect(),
        }
    }
    fn roll(&mut self, now: u64) {
        for w in &mut self.windows {
            if now / w.3 != w.6 {
                w.6 = now / w.3;
                w.5 = 0;
            }
        }
    }
    fn count(&mut self, kind: RateLimitKind, len: u64, now: u64) -> u32 {
        self.roll(now);
        self.windows
            .iter()
            .find(|w| w.0 == kind && w.3 == len)
            .unwrap()
            .5
    }
    /// Processes a request; returns its answer text.
    fn process(&mut self, m: Method, ok: bool, arrays: bool, now: u64) -> String {
        self.roll(now);
        for w in &mut self.windows {
            let cost = match w.0 {
                RateLimitKind::RequestWeight if ok && m.free_on_success() => 0,
                RateLimitKind::RequestWeight => m.weight(),
                RateLimitKind::Orders => m.orders(),
                RateLimitKind::RawRequests => 1,
            };
            assert!(
                w.5 + cost <= w.4,
                "the client sent past a limit: {m:?} on {:?}",
                w.0
            );
            w.5 += cost;
        }
        let rl: Vec<String> = self
            .windows
            .iter()
            .map(|w| {
                format!(
                    r#"{{"rateLimitType":"{}","interval":"{}","intervalNum":{},"limit":{},"count":{}}}"#,
                    match w.0 {
                        RateLimitKind::RequestWeight => "REQUEST_WEIGHT",
                        RateLimitKind::Orders => "ORDERS",
                        RateLimitKind::RawRequests => "RAW_REQUESTS",
                    },
                    match w.1 {
                        RateLimitInterval::Second => "SECOND",
                        RateLimitInterval::Minute => "MINUTE",
                        RateLimitInterval::Hour => "HOUR",
                        RateLimitInterval::Day => "DAY",
                    },
                    w.2,
                    w.4,
                    w.5
                )
            })
            .collect();
        let arrays = if arrays {
            format!(r#","rateLimits":[{}]"#, rl.join(","))
        } else {
            String::new()
        };
        if ok {
            format!(r#"{{"id":1,"status":200,"result":{{}}{arrays}}}"#)
        } else {
            format!(
                r#"{{"id":1,"status":400,"error":{{"code":-2010,"msg":"Account has insufficient balance for requested action."}}{arrays}}}"#
            )
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Send {
        method: usize,
        ok: bool,
        arrays: bool,
    },
    Answer(usize),
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..METHODS.len(), prop::bool::weighted(0.8), any::<bool>())
            .prop_map(|(method, ok, arrays)| Op::Send { method, ok, arrays }),
        3 => any::<usize>().prop_map(Op::Answer),
        1 => prop_oneof![0u64..2_000, 0u64..20_000, 50_000u64..400_000].prop_map(Op::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn predicted_counts_never_under_and_equal_the_server_when_quiet(
        ops in prop::collection::vec(op(), 1..300),
        start in 0u64..1_000_000_000,
    ) {
        let mut ours = RateLimiter::new(&limits()).unwrap();
        let mut server = Server::new();
        let mut now = start;
        let mut flying: Vec<(Ticket, String)> = Vec::new();
        let mut sent = 0;
        let mut refused = 0;
        for op in ops {
            match op {
                Op::Send { method, ok, arrays } => {
                    let m = METHODS[method];
                    match ours.try_send(m, now) {
                        Ok(t) => {
                            sent += 1;
                            let text = server.process(m, ok, arrays, now);
                            flying.push((t, text));
                        }
                        Err(Refusal::WouldExceed { .. }) => refused += 1,
                        Err(e) => prop_assert!(false, "unexpected refusal {e}"),
                    }
                }
                Op::Answer(k) => {
                    if !flying.is_empty() {
                        let (t, text) = flying.remove(k % flying.len());
                        let Frame::Response(r) = parse_frame(&text).unwrap() else { unreachable!() };
                        ours.on_response(t, &r, now);
                    }
                }
                Op::Wait(ms) => now += ms,
            }
            for l in limits() {
                let len = l.window_seconds() * 1000;
                let mine = ours.count(l.kind, len, now).unwrap();
                let theirs = server.count(l.kind, len, now);
                prop_assert!(mine >= theirs, "{:?}/{len}: predicted {mine} < server {theirs}", l.kind);
                if flying.is_empty() {
                    prop_assert_eq!(mine, theirs, "{:?}/{}: nothing in flight", l.kind, len);
                }
            }
        }
        let _ = (sent, refused);
    }
}

#[test]
fn the_limit_is_refused_before_it_is_crossed_and_windows_are_calendar_aligned() {
    let mut l = RateLimiter::new(&limits()).unwrap();
    // 10 s window: from 1_000_000_000 to 1_000_009_999 ms.
    let t0 = 1_000_000_000;
    for i in 0..5 {
        l.try_send(Method::OrderPlace, t0 + i).unwrap();
    }
    assert_eq!(
        l.try_send(Method::OrderPlace, t0 + 9_999),
        Err(Refusal::WouldExceed {
            kind: RateLimitKind::Orders,
            window_ms: 10_000,
            limit: 5,
            count: 5,
            cost: 1
        })
    );
    // Cancels carry no order count and still go.
    l.try_send(Method::OrderCancel, t0 + 9_999).unwrap();
    // The window restarts at :10, not 10 s after the first order.
    l.try_send(Method::OrderPlace, t0 + 10_000).unwrap();
}

fn answer(text: &str) -> pinion_gateway::binance::wire::Response<'_> {
    let Frame::Response(r) = parse_frame(text).unwrap() else {
        panic!()
    };
    r
}

#[test]
fn order_count_429_stops_orders_only_and_418_stops_everything() {
    let mut l = RateLimiter::new(&limits()).unwrap();
    let now = 1_000_000_000;
    let t = l.try_send(Method::OrderPlace, now).unwrap();
    l.on_response(t, &answer(r#"{"id":1,"status":429,"error":{"code":-1015,"msg":"Too many new orders; current limit is 5 orders per 10 SECOND.","data":{"retryAfter":1000005000}}}"#), now + 1);
    assert_eq!(
        l.check(Method::OrderPlace, now + 2),
        Err(Refusal::RateLimited {
            until_ms: 1_000_005_000
        })
    );
    assert_eq!(l.check(Method::OrderCancel, now + 2), Ok(()));
    assert_eq!(l.check(Method::OpenOrdersCancelAll, now + 2), Ok(()));
    assert_eq!(l.check(Method::OrderPlace, 1_000_005_000), Ok(()));
    // A weight 429 stops everything (no retry loop: the caller sees the refusal).
    let t = l.try_send(Method::OrderStatus, now + 3).unwrap();
    l.on_response(t, &answer(r#"{"id":1,"status":429,"error":{"code":-1003,"msg":"Too much request weight used.","data":{"retryAfter":1000006000}}}"#), now + 4);
    assert_eq!(
        l.check(Method::OrderCancel, now + 5),
        Err(Refusal::RateLimited {
            until_ms: 1_000_006_000
        })
    );
    let t = l.try_send(Method::Time, 1_000_006_000).unwrap();
    l.on_response(t, &answer(r#"{"id":1,"status":418,"error":{"code":-1003,"msg":"Way too much request weight used; IP banned until 1000100000.","data":{"serverTime":1000006001,"retryAfter":1000100000}}}"#), 1_000_006_001);
    for m in [
        Method::OrderCancel,
        Method::Time,
        Method::OpenOrdersCancelAll,
    ] {
        assert_eq!(
            l.check(m, 1_000_099_999),
            Err(Refusal::Banned {
                until_ms: 1_000_100_000
            })
        );
    }
    assert_eq!(l.check(Method::Time, 1_000_100_000), Ok(()));
}

#[test]
fn successful_order_methods_cost_no_weight_and_failures_do() {
    let mut l = RateLimiter::new(&limits()).unwrap();
    let now = 1_000_000_000;
    let a = l.try_send(Method::OrderPlace, now).unwrap();
    let b = l.try_send(Method::OrderCancel, now).unwrap();
    assert_eq!(
        l.count(RateLimitKind::RequestWeight, 60_000, now),
        Some(2),
        "worst case while in flight"
    );
    l.on_response(a, &answer(r#"{"id":1,"status":200,"result":{}}"#), now + 1);
    l.on_response(
        b,
        &answer(r#"{"id":2,"status":400,"error":{"code":-2011,"msg":"Unknown order sent."}}"#),
        now + 1,
    );
    assert_eq!(
        l.count(RateLimitKind::RequestWeight, 60_000, now + 1),
        Some(1)
    );
    assert_eq!(l.count(RateLimitKind::Orders, 10_000, now + 1), Some(1));
    assert_eq!(
        l.count(RateLimitKind::RawRequests, 300_000, now + 1),
        Some(2)
    );
}

/// The real Spot `exchangeInfo` of the recordings (2021: 1200 weight/min, 50 orders/10 s,
/// 160 000 orders/day, 6100 raw requests/5 min).
fn recorded_limits() -> Option<Vec<RateLimit>> {
    use std::io::{BufRead, BufReader};
    let path = pinion_testkit::data::require("binance/spot-exchangeinfo-20211012.json.gz")?;
    let file = std::fs::File::open(path).expect("open exchangeInfo capture");
    let mut line = Vec::new();
    BufReader::new(flate2::read::GzDecoder::new(file))
        .read_until(b'\n', &mut line)
        .expect("read exchangeInfo capture");
    // `<url> -> <time>: <json>`
    let body = &line[line.iter().position(|&b| b == b'{').expect("a JSON body")..];
    Some(pinion_feed::exchange_info::binance_rate_limits(body).expect("rate limits parse"))
}

#[test]
fn seeded_from_the_recorded_exchange_info() {
    let Some(limits) = recorded_limits() else {
        return;
    };
    let mut l = RateLimiter::new(&limits).unwrap();
    // 2021-10-11 12:00:05.000 UTC: the 10 s window ends at :10.
    let t0 = 1_633_953_605_000;
    for i in 0..50 {
        l.try_send(Method::OrderPlace, t0 + i).unwrap();
    }
    assert!(matches!(
        l.try_send(Method::OrderPlace, t0 + 4_999),
        Err(Refusal::WouldExceed {
            kind: RateLimitKind::Orders,
            window_ms: 10_000,
            limit: 50,
            ..
        })
    ));
    l.try_send(Method::OrderPlace, t0 + 5_000).unwrap();
    assert_eq!(
        l.count(RateLimitKind::Orders, 86_400_000, t0 + 5_000),
        Some(51)
    );
    assert_eq!(
        l.count(RateLimitKind::RequestWeight, 60_000, t0 + 5_000),
        Some(51)
    );
    // 1200 weight a minute: 57 more account.status (20 each) fit until the minute turns at
    // 12:01:00, 55 s later.
    let mut sent = 0;
    while l.try_send(Method::AccountStatus, t0 + 6_000).is_ok() {
        sent += 1;
    }
    assert_eq!(sent, (1_200 - 51) / 20);
    l.try_send(Method::AccountStatus, t0 + 55_000).unwrap();
}

/// An order sent just before a window boundary and read by the server just after it is counted
/// in the new window: its `transactTime` says so, and the new window's count takes it, so the
/// next window's last order is refused here rather than by the server.
#[test]
fn an_order_read_after_the_boundary_it_was_sent_before_counts_in_the_new_window() {
    let mut l = RateLimiter::new(&limits()).unwrap();
    let t0 = 1_000_000_000; // a 10 s window starts here
    let t = l.try_send(Method::OrderPlace, t0 - 1).unwrap();
    let text = format!(
        r#"{{"id":1,"status":200,"result":{{"symbol":"BTCUSDT","orderId":1,"orderListId":-1,"clientOrderId":"x","transactTime":{}}},"rateLimits":[{{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":5,"count":1}}]}}"#,
        t0 + 1
    );
    l.on_response(t, &answer(&text), t0 + 2);
    assert_eq!(l.count(RateLimitKind::Orders, 10_000, t0 + 2), Some(1));
    for i in 0..4 {
        l.try_send(Method::OrderPlace, t0 + 3 + i).unwrap();
    }
    assert!(matches!(
        l.try_send(Method::OrderPlace, t0 + 10),
        Err(Refusal::WouldExceed { count: 5, .. })
    ));
}
