//! pinion's Binance venue ([`BinanceVenue`]) driven directly against the simulator's WS API over
//! TLS on loopback: the session's steps before the first order, refusals while not ready, what
//! the order path allocates, signing with an HMAC key (no logon, every request signed), and an
//! order the exchange's self-trade prevention stopped ending `Expired` with its market fills.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pinion_core::{InstrumentId, InstrumentSpec, Px, Qty, Venue};
use pinion_exchange_sim::SelfSignedTls;
use pinion_exchange_sim::live::{LiveConfig, LiveExchange};
use pinion_exchange_sim::wsapi::WsApiConfig;
use pinion_gateway::OrderVenue;
use pinion_gateway::binance::client_id::RunEpoch;
use pinion_gateway::binance::clock::ClockConfig;
use pinion_gateway::binance::orders::{OrderState, OrderTableConfig};
use pinion_gateway::binance::sign::{Credentials, KeyKind};
use pinion_gateway::binance::{BinanceConfig, BinanceVenue, OpenOrdersPolicy, ResponseFormat};
use pinion_net::backoff::BackoffPolicy;
use pinion_net::rustls::RootCertStore;
use pinion_net::wss::{self, WssSettings};
use pinion_strategy::{
    ClientOrderId, ExecReport, OrderIntent, OrderSide, OrderStatus, OrderType, RejectReason,
    TimeInForce,
};
use pinion_testkit::alloc::{CountingAlloc, thread_allocations};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const API_KEY: &str = "venueTestKey0123456789";
const HMAC_SECRET: &str = "venueTestSecretabcdefghijklmnopqrstuvwxyz0123";
const BTCUSDT: InstrumentId = InstrumentId(0);

fn spec() -> InstrumentSpec {
    InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001").expect("spec")
}

/// The simulator's synthetic market, open, with the WS API for one account.
fn exchange(tls: &SelfSignedTls, api: WsApiConfig) -> LiveExchange {
    let mut config = LiveConfig::spot();
    config.start_held = true;
    config.ws_api = Some(api);
    let sim = LiveExchange::start(
        "127.0.0.1:0".parse().expect("addr"),
        config,
        Some(Arc::clone(&tls.server_config)),
        || {
            let market = pinion_feed::synth::SynthMarket::new(pinion_feed::synth::SynthConfig {
                messages: 1000,
                ..pinion_feed::synth::SynthConfig::default()
            })
            .map_err(|e| pinion_feed::SourceError::Io(std::io::Error::other(e.to_string())))?;
            Ok(Box::new(market) as Box<dyn pinion_feed::FrameSource + Send>)
        },
    )
    .expect("simulator");
    sim.release();
    assert!(
        sim.wait_open("BTCUSDT", Duration::from_secs(10)),
        "the market opens"
    );
    sim
}

fn api(public_key: Option<Vec<u8>>, hmac: bool) -> WsApiConfig {
    let mut api = WsApiConfig::new(API_KEY);
    api.ed25519_public_key = public_key;
    api.hmac_secret = hmac.then(|| HMAC_SECRET.to_owned());
    api.balances = vec![
        ("BTC".to_owned(), "1".to_owned()),
        ("USDT".to_owned(), "100000".to_owned()),
    ];
    api
}

fn venue(tls: &SelfSignedTls, sim: &LiveExchange, credentials: Credentials) -> BinanceVenue {
    venue_with(tls, sim, credentials, OrderTableConfig::default())
}

fn venue_with(
    tls: &SelfSignedTls,
    sim: &LiveExchange,
    credentials: Credentials,
    orders: OrderTableConfig,
) -> BinanceVenue {
    venue_at(tls, sim, credentials, orders, RunEpoch::now())
}

fn venue_at(
    tls: &SelfSignedTls,
    sim: &LiveExchange,
    credentials: Credentials,
    orders: OrderTableConfig,
    epoch: RunEpoch,
) -> BinanceVenue {
    venue_in(tls, sim, credentials, orders, epoch, ResponseFormat::Json)
}

fn venue_in(
    tls: &SelfSignedTls,
    sim: &LiveExchange,
    credentials: Credentials,
    orders: OrderTableConfig,
    epoch: RunEpoch,
    response_format: ResponseFormat,
) -> BinanceVenue {
    BinanceVenue::new(config_in(
        tls,
        sim,
        credentials,
        orders,
        epoch,
        response_format,
    ))
    .expect("venue")
}

fn config_in(
    tls: &SelfSignedTls,
    sim: &LiveExchange,
    credentials: Credentials,
    orders: OrderTableConfig,
    epoch: RunEpoch,
    response_format: ResponseFormat,
) -> BinanceConfig {
    let mut roots = RootCertStore::empty();
    roots.add(tls.certificate.clone()).expect("trust");
    let wss = WssSettings::new(wss::client_config(roots).expect("client config"));
    BinanceConfig {
        url: format!("wss://localhost:{}/ws-api/v3", sim.local_addr().port()),
        wss,
        credentials,
        instrument: BTCUSDT,
        spec: spec(),
        recv_window: None,
        stp_mode: None,
        rate_limits: pinion_gateway::binance::limits::spot_defaults(),
        orders,
        clock: ClockConfig {
            warm_up: 2,
            ..ClockConfig::default()
        },
        open_orders: OpenOrdersPolicy::CancelAll,
        exit: pinion_gateway::ExitPolicy::CancelAll,
        reconnect: BackoffPolicy {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
            healthy_after: Duration::from_secs(5),
        },
        connects_per_5min: 50,
        seed: 1,
        epoch,
        breaker: pinion_gateway::binance::breaker::BreakerConfig::default(),
        max_open_orders: 64,
        max_order_qty: Qty(1_000_000),
        summary: Arc::new(Mutex::new(None)),
        capture: None,
        response_format,
    }
}

/// Polls until `done` or the deadline, collecting reports.
fn poll_until(
    v: &mut BinanceVenue,
    reports: &mut Vec<ExecReport>,
    mut done: impl FnMut(&BinanceVenue, &[ExecReport]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(v, reports) {
        assert!(Instant::now() < deadline, "timed out: {v:?}");
        v.poll(0, |r| reports.push(r));
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A buy below the market (about 61 800): it rests.
fn resting_buy(id: u64) -> OrderIntent {
    OrderIntent::new_limit(
        id,
        ClientOrderId(id),
        BTCUSDT,
        OrderSide::Buy,
        Px(6_000_000), // 60000.00
        Qty(100),      // 0.001
        OrderType::Limit,
        TimeInForce::Gtc,
        pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry),
    )
}

fn ed25519() -> (Credentials, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let credentials =
        Credentials::new(KeyKind::Ed25519, API_KEY, &key.serialize_pem()).expect("credentials");
    (credentials, key.public_key_raw().to_vec())
}

#[test]
fn orders_wait_for_the_session_and_the_order_path_allocates_only_in_tls() {
    order_path(ResponseFormat::Json);
}

#[test]
fn in_sbe_too_the_order_path_allocates_only_in_tls() {
    order_path(ResponseFormat::Sbe);
}

fn order_path(format: ResponseFormat) {
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let (credentials, public) = ed25519();
    let sim = exchange(&tls, api(Some(public), false));
    let mut v = venue_in(
        &tls,
        &sim,
        credentials,
        OrderTableConfig::default(),
        RunEpoch::now(),
        format,
    );
    let mut reports = Vec::new();

    // Before the session is ready: refused at once, never queued.
    v.submit(&resting_buy(1), 0);
    v.poll(0, |r| reports.push(r));
    assert_eq!(
        reports[0].status,
        OrderStatus::Rejected(RejectReason::NotConnected)
    );
    assert_eq!(v.session_stats().not_connected, 1);

    poll_until(&mut v, &mut reports, |v, _| v.is_ready());
    let s = v.session_stats();
    assert_eq!((s.connects, s.ready, s.logon_refused), (1, 1, 0));
    // The balances come with the reconciliation, before any order changed them.
    let balance = |asset: &str| {
        v.balances()
            .iter()
            .find(|b| b.asset.as_str() == asset)
            .map(|b| (b.free.to_string(), b.locked.to_string()))
    };
    assert_eq!(
        balance("BTC"),
        Some(("1".to_owned(), "0".to_owned())),
        "{s:?}"
    );
    assert_eq!(balance("USDT"), Some(("100000".to_owned(), "0".to_owned())));

    // Orders, each answered before the next: what a submit and the polls until its answer
    // allocate on this thread.
    const N: u64 = 40;
    let mut submit_allocs = 0;
    let mut poll_allocs = 0;
    for id in 2..2 + N {
        let before = thread_allocations();
        v.submit(&resting_buy(id), 0);
        submit_allocs += thread_allocations() - before;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let before = thread_allocations();
            let mut accepted = false;
            let mut status = None;
            v.poll(0, |r| {
                if r.client_id == ClientOrderId(id) {
                    status = Some(r.status);
                }
            });
            if let Some(status) = status {
                let error = v.session_stats().last_error;
                assert_eq!(status, OrderStatus::New, "order {id}: error {error}");
                accepted = true;
            }
            poll_allocs += thread_allocations() - before;
            if accepted {
                break;
            }
            assert!(Instant::now() < deadline, "order {id} not answered");
        }
    }
    let per_submit = submit_allocs as f64 / N as f64;
    let per_answer = poll_allocs as f64 / N as f64;
    eprintln!(
        "{format:?}: allocations: {per_submit:.2} per order written, {per_answer:.2} per answer read"
    );
    // rustls encrypts each record into a fresh buffer (one per order written), and decrypts
    // each record received into one; an order brings three messages here (the answer, its
    // executionReport, the account position), each in its own record. The order path's own
    // code (template, frame, table, limits, parsing) adds none.
    assert!(
        per_submit <= 1.0,
        "{per_submit} allocations per order written"
    );
    assert!(
        per_answer <= 5.0,
        "{per_answer} allocations per answer read"
    );

    let s = v.session_stats();
    assert!(s.limit_checks >= N, "{s:?}");
    assert_eq!(
        s.limit_drift, 0,
        "the rate-limit model predicted every count: {s:?}"
    );

    let open = v.table().open_count();
    assert_eq!(open as u64, N, "every order rests");
    let sim_orders = sim.sim_account().orders;
    assert_eq!(sim_orders.len() as u64, N);
    for o in &sim_orders {
        assert_eq!(o.status, "NEW");
    }

    // The end: every open order cancelled, confirmed by user data.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !v.wind_down(3_000_000_000, |r| reports.push(r)) {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_micros(200));
    }
    assert!(
        v.table()
            .orders()
            .iter()
            .all(|o| o.state == OrderState::Canceled),
        "all cancelled: {:?}",
        v.table()
            .orders()
            .iter()
            .map(|o| o.state)
            .collect::<Vec<_>>()
    );
    assert!(
        sim.sim_account()
            .orders
            .iter()
            .all(|o| o.status == "CANCELED")
    );
}

#[test]
fn an_hmac_key_signs_every_request_and_gets_user_data_by_signature() {
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let sim = exchange(&tls, api(None, true));
    let credentials = Credentials::new(KeyKind::Hmac, API_KEY, HMAC_SECRET).expect("credentials");
    let mut v = venue(&tls, &sim, credentials);
    let mut reports = Vec::new();
    poll_until(&mut v, &mut reports, |v, _| v.is_ready());
    for id in 1..=3 {
        v.submit(&resting_buy(id), 0);
    }
    // Each order is answered, and its NEW execution report (user data) arrives too.
    poll_until(&mut v, &mut reports, |v, _| {
        v.table().orders().len() == 3
            && v.table()
                .orders()
                .iter()
                .all(|o| o.state == OrderState::New)
    });
    let s = v.session_stats();
    assert_eq!(s.logon_refused, 0);
    assert!(
        reports.iter().all(|r| r.status == OrderStatus::New),
        "{reports:?}"
    );
    assert_eq!(sim.sim_account().orders.len(), 3);
    // A wrong secret is refused: the signature check is real.
    let bad = Credentials::new(KeyKind::Hmac, API_KEY, "not-the-secret").expect("credentials");
    let mut w = venue(&tls, &sim, bad);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && !w.is_ready() {
        w.poll(0, |_| {});
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!w.is_ready(), "a bad signature must not get a session");
    assert!(w.session_stats().last_error != 0);
}

#[test]
fn an_amendment_lowers_a_resting_order_at_the_exchange_and_keeps_its_id() {
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let (credentials, public) = ed25519();
    let sim = exchange(&tls, api(Some(public), false));
    let mut v = venue(&tls, &sim, credentials);
    let mut reports = Vec::new();
    poll_until(&mut v, &mut reports, |v, _| v.is_ready());
    let mut buy = resting_buy(7);
    buy.qty = Qty(300); // 0.003
    v.submit(&buy, 0);
    poll_until(&mut v, &mut reports, |v, _| {
        v.table().get(ClientOrderId(7)).map(|o| o.state) == Some(OrderState::New)
    });
    let mut amend = buy;
    amend.action = pinion_strategy::OrderAction::Amend;
    amend.qty = Qty(100);
    reports.clear();
    v.submit(&amend, 0);
    poll_until(&mut v, &mut reports, |_, r| {
        r.iter()
            .any(|r| r.client_id == ClientOrderId(7) && r.leaves_qty == Qty(100))
    });
    let o = v.table().get(ClientOrderId(7)).expect("the order");
    assert_eq!((o.state, o.qty), (OrderState::New, Qty(100)));
    let at_exchange = sim.sim_account().orders;
    assert_eq!(at_exchange.len(), 1);
    assert_eq!(at_exchange[0].orig_qty, "0.001");
    assert_eq!(at_exchange[0].status, "NEW");
    let summary = v.summary();
    assert_eq!(
        at_exchange[0].client_order_id, summary.orders[0].client_order_id,
        "the order kept its client id"
    );
}

#[test]
fn closed_orders_make_room_so_a_long_session_never_fills_its_table() {
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let (credentials, public) = ed25519();
    let sim = exchange(&tls, api(Some(public), false));
    let orders = OrderTableConfig {
        capacity: 8,
        ..OrderTableConfig::default()
    };
    let mut v = venue_with(&tls, &sim, credentials, orders);
    let mut reports = Vec::new();
    poll_until(&mut v, &mut reports, |v, _| v.is_ready());
    // Twenty orders through a table of eight: each placed, then cancelled.
    for n in 0..20u64 {
        let id = ClientOrderId(100 + 2 * n);
        v.submit(&resting_buy(id.0), 0);
        poll_until(&mut v, &mut reports, |v, _| {
            v.table().get(id).map(|o| o.state) == Some(OrderState::New)
        });
        let cancel = OrderIntent::cancel(
            0,
            ClientOrderId(101 + 2 * n),
            id,
            BTCUSDT,
            OrderSide::Buy,
            pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Requote),
        );
        v.submit(&cancel, 0);
        poll_until(&mut v, &mut reports, |v, _| {
            v.table()
                .get(id)
                .is_none_or(|o| o.state == OrderState::Canceled)
        });
    }
    assert!(
        !reports
            .iter()
            .any(|r| r.status == OrderStatus::Rejected(RejectReason::Overloaded)),
        "a full table refused an order"
    );
    assert!(v.table().stats().swept > 0);
    assert_eq!(sim.sim_account().orders.len(), 20);
}

/// A marketable buy (above the market): it fills at once.
fn taking_buy(id: u64, qty: i64) -> OrderIntent {
    OrderIntent::new_limit(
        id,
        ClientOrderId(id),
        BTCUSDT,
        OrderSide::Buy,
        Px(7_000_000), // 70000.00
        Qty(qty),
        OrderType::Limit,
        TimeInForce::Ioc,
        pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry),
    )
}

/// The guard's resting orders at the exchange: (type, side, quantity) of each open one.
fn protective_at_exchange(sim: &LiveExchange) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = sim
        .sim_account()
        .orders
        .into_iter()
        .filter(|o| o.status == "NEW" && o.order_type != "LIMIT")
        .map(|o| (o.order_type, o.side, o.orig_qty))
        .collect();
    v.sort();
    v
}

#[test]
fn a_guarded_position_gets_its_oco_on_the_exchange_resized_as_it_grows_and_the_guard_allocates_nothing()
 {
    guarded_position(ResponseFormat::Json);
}

/// The same with answers and user data in SBE: order lists (their placement, cancel and
/// `listStatus`) read from binary frames.
#[test]
fn in_sbe_a_guarded_position_gets_its_oco_resized_alike() {
    guarded_position(ResponseFormat::Sbe);
}

fn guarded_position(format: ResponseFormat) {
    use pinion_gateway::binance::guard::{Guard, guard_id_base};
    use pinion_strategy::{Position, ProtectParams};
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let (credentials, public) = ed25519();
    let sim = exchange(&tls, api(Some(public), false));
    let mut v = venue_in(
        &tls,
        &sim,
        credentials,
        OrderTableConfig::default(),
        RunEpoch::now(),
        format,
    );
    let params = ProtectParams {
        stop_loss_ppm: Some(10_000),
        take_profit_ppm: Some(10_000),
        ..ProtectParams::default()
    };
    v.with_guard(
        Guard::new(
            BTCUSDT,
            params,
            Px(1),
            Position::new(),
            guard_id_base(BTCUSDT),
        ),
        None,
    );
    let mut reports = Vec::new();
    poll_until(&mut v, &mut reports, |v, _| v.is_ready());
    let want = |qty: &str| {
        vec![
            ("STOP_LOSS".to_owned(), "SELL".to_owned(), qty.to_owned()),
            ("TAKE_PROFIT".to_owned(), "SELL".to_owned(), qty.to_owned()),
        ]
    };
    // A fill opens the position: the OCO follows, sized to it. What the venue's own code
    // allocates on the way (the fill's report, the guard's plan, the list written, its
    // answers) is rustls' records alone: no more than the plain order path's per request.
    reports.reserve(1_000);
    let requests_before = v.session_stats().requests;
    let before = thread_allocations();
    v.submit(&taking_buy(1, 100), 0);
    poll_until(&mut v, &mut reports, |v, _| {
        v.guard()
            .and_then(|g| g.resting())
            .is_some_and(|b| b.qty == Qty(100))
            && v.table()
                .orders()
                .iter()
                .filter(|o| o.state == OrderState::New)
                .count()
                == 2
    });
    let allocs = thread_allocations() - before;
    let requests = v.session_stats().requests - requests_before;
    assert_eq!(requests, 2, "the order and its OCO");
    eprintln!("{allocs} allocations for an order, its OCO, their answers and user data");
    // Each request is a record written; the answers and user data (the order's fill and
    // account position; the list's two orders, its status and the locked balance) come in
    // about ten records read: one buffer each (the plain order path's budget is 1 + 5 per
    // order; a list brings three more events).
    assert!(
        allocs <= 7 * requests,
        "{allocs} allocations for {requests} requests and their answers"
    );
    assert_eq!(protective_at_exchange(&sim), want("0.001"));
    // Growing: the OCO is replaced by one of the new size.
    v.submit(&taking_buy(2, 200), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while protective_at_exchange(&sim) != want("0.003") {
        assert!(
            Instant::now() < deadline,
            "no OCO of 0.003: {:?} {reports:?}",
            protective_at_exchange(&sim)
        );
        v.poll(0, |r| reports.push(r));
        std::thread::sleep(Duration::from_micros(200));
    }
    poll_until(&mut v, &mut reports, |v, _| {
        v.table()
            .orders()
            .iter()
            .filter(|o| o.state == OrderState::New)
            .count()
            == 2
    });
    let summary = v.summary();
    let p = summary.protection.expect("a guard");
    assert_eq!(
        (p.position, p.stats.placed, p.stats.cancelled),
        (Qty(300), 2, 1)
    );

    // The market trades 10 % lower: the stop triggers at the exchange and sells the position;
    // the take-profit expires with it; the guard sees the fill and has nothing left to cover.
    let low = pinion_exchange_sim::live::Dec::parse("55000").expect("price");
    let one = pinion_exchange_sim::live::Dec::parse("0.00001").expect("qty");
    assert!(sim.print("BTCUSDT", low, one));
    poll_until(&mut v, &mut reports, |v, _| {
        v.guard()
            .is_some_and(|g| g.position() == Qty(0) && g.resting().is_none())
    });
    let statuses: Vec<_> = sim
        .sim_account()
        .orders
        .into_iter()
        .filter(|o| o.order_type != "LIMIT")
        .map(|o| (o.order_type, o.status))
        .collect();
    let last_two = &statuses[statuses.len() - 2..];
    assert!(
        last_two.contains(&("STOP_LOSS".to_owned(), "FILLED".to_owned()))
            && last_two.contains(&("TAKE_PROFIT".to_owned(), "EXPIRED".to_owned())),
        "{statuses:?}"
    );
    assert_eq!(v.guard().map(|g| g.stats().triggered_fills), Some(1));
    let s = v.session_stats();
    assert_eq!(
        s.bad_frames, 0,
        "{format:?}: every answer and event read: {s:?}"
    );
    if format == ResponseFormat::Sbe {
        assert!(sim.stats().ws_api_sbe_messages >= s.answers, "{s:?}");
    }

    // The guard alone, on the path a fill takes: not one allocation.
    let mut g = Guard::new(
        BTCUSDT,
        params,
        Px(1),
        Position::new(),
        guard_id_base(BTCUSDT),
    );
    let mut fill = reports
        .iter()
        .find(|r| r.is_fill())
        .copied()
        .expect("a fill");
    let before = thread_allocations();
    for n in 0..100 {
        fill.side = if n % 3 == 2 {
            OrderSide::Sell
        } else {
            OrderSide::Buy
        };
        g.on_report(&fill);
        let plan = g.plan(n);
        assert!(!plan.is_empty());
        // The exchange answers the placement, so the next fill resizes it.
        let b = g.resting().copied().expect("a bracket");
        let mut ack = fill;
        ack.client_id = b.legs[0].expect("a leg");
        ack.side = b.side;
        ack.status = OrderStatus::New;
        ack.last_qty = Qty(0);
        g.on_report(&ack);
        assert!(g.plan(n).is_empty(), "the answer changes nothing");
    }
    assert_eq!(thread_allocations() - before, 0, "the guard allocates");
}

/// A restarted session keeps its journal's run epoch. An order whose request died in the
/// journal's ring is open at the exchange under that epoch yet unknown to the new session: it
/// is foreign, counted and cancelled at the first connect, never left resting untracked.
#[test]
fn an_order_of_this_epoch_the_session_never_knew_is_cancelled_at_the_first_connect() {
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let pem = key.serialize_pem();
    let credentials = || Credentials::new(KeyKind::Ed25519, API_KEY, &pem).expect("credentials");
    let sim = exchange(&tls, api(Some(key.public_key_raw().to_vec()), false));
    let epoch = RunEpoch::now();
    let mut first = venue_at(
        &tls,
        &sim,
        credentials(),
        OrderTableConfig::default(),
        epoch,
    );
    let mut reports = Vec::new();
    poll_until(&mut first, &mut reports, |v, _| v.is_ready());
    first.submit(&resting_buy(7), 0);
    poll_until(&mut first, &mut reports, |v, _| {
        v.table().get(ClientOrderId(7)).map(|o| o.state) == Some(OrderState::New)
    });
    drop(first);
    let resting = |sim: &LiveExchange| {
        sim.sim_account()
            .orders
            .iter()
            .filter(|o| o.status == "NEW")
            .count()
    };
    assert_eq!(resting(&sim), 1, "the killed session's order rests");
    let mut second = venue_at(
        &tls,
        &sim,
        credentials(),
        OrderTableConfig::default(),
        epoch,
    );
    reports.clear();
    poll_until(&mut second, &mut reports, |v, _| v.is_ready());
    let deadline = Instant::now() + Duration::from_secs(10);
    while resting(&sim) > 0 {
        assert!(
            Instant::now() < deadline,
            "the untracked order was left resting"
        );
        second.poll(0, |r| reports.push(r));
        std::thread::sleep(Duration::from_millis(1));
    }
    let stats = second.session_stats();
    assert_eq!(stats.foreign_open, 1, "{stats:?}");
    assert!(stats.cancel_all >= 1, "{stats:?}");
}

/// A trailing stop kept by the guard (`trailing_bps` alone): it rests at the exchange as one
/// `STOP_LOSS` with `trailingDelta` and no `stopPrice`, and it triggers by the exchange's
/// trailing rule, from the highest trade since it was placed, not from the entry: a print far
/// above the market raises its trigger, a print just above that level leaves it waiting, one
/// below it fires it, at prices a stop fixed at placement would never have reached.
#[test]
fn a_trailing_stop_rests_with_its_delta_and_fires_from_the_highest_trade_since_placement() {
    use pinion_exchange_sim::live::Dec;
    use pinion_gateway::binance::guard::{Guard, guard_id_base};
    use pinion_strategy::{Position, ProtectParams};
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let (credentials, public) = ed25519();
    let sim = exchange(&tls, api(Some(public), false));
    let mut v = venue(&tls, &sim, credentials);
    // 20 %: the widest delta the exchange's filter allows, so the market's own prints (about
    // 61 800) stay clear of the trigger once a print has raised it.
    let params = ProtectParams {
        trailing_ppm: Some(200_000),
        ..ProtectParams::default()
    };
    v.with_guard(
        Guard::new(
            BTCUSDT,
            params,
            Px(1),
            Position::new(),
            guard_id_base(BTCUSDT),
        ),
        None,
    );
    let mut reports = Vec::new();
    poll_until(&mut v, &mut reports, |v, _| v.is_ready());
    v.submit(&taking_buy(1, 100), 0);
    poll_until(&mut v, &mut reports, |v, _| {
        v.guard()
            .and_then(|g| g.resting())
            .is_some_and(|b| b.qty == Qty(100))
            && v.table()
                .orders()
                .iter()
                .any(|o| o.state == OrderState::New && o.client_id.0 != 1)
    });
    let open: Vec<_> = sim
        .sim_account()
        .orders
        .into_iter()
        .filter(|o| o.status == "NEW")
        .collect();
    assert_eq!(open.len(), 1, "one trailing stop alone: {open:?}");
    let stop = &open[0];
    assert_eq!(
        (
            stop.order_type.as_str(),
            stop.side.as_str(),
            stop.orig_qty.as_str(),
            stop.stop_price.as_deref(),
            stop.trailing_delta,
            stop.order_list_id,
        ),
        ("STOP_LOSS", "SELL", "0.001", None, Some(2000), None),
        "{stop:?}"
    );
    let id = stop.client_order_id.clone();
    let status = |sim: &LiveExchange| {
        sim.sim_account()
            .orders
            .into_iter()
            .find(|o| o.client_order_id == id)
            .map(|o| o.status)
    };
    let one = Dec::parse("0.00001").expect("qty");
    let print = |price: &str| {
        assert!(sim.print("BTCUSDT", Dec::parse(price).expect("price"), one));
    };
    // The highest trade since placement becomes 75 000: the trigger moves up to 60 000.
    print("75000");
    // 60 500 is above it: the stop keeps waiting (a stop fixed 20 % under the entry, about
    // 49 400, would not fire at the next print either).
    print("60500");
    let wait_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < wait_until {
        v.poll(0, |r| reports.push(r));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        status(&sim).as_deref(),
        Some("NEW"),
        "fired above 75 000 × 0.8"
    );
    assert_eq!(v.guard().map(Guard::position), Some(Qty(100)));
    // 59 500 is below 75 000 × 0.8: it fires, sells into the book, and the guard is flat.
    print("59500");
    poll_until(&mut v, &mut reports, |v, _| {
        v.guard()
            .is_some_and(|g| g.position() == Qty(0) && g.resting().is_none())
    });
    assert_eq!(status(&sim).as_deref(), Some("FILLED"));
    assert_eq!(v.guard().map(|g| g.stats().triggered_fills), Some(1));
    let net: i64 = sim
        .sim_account()
        .trades
        .iter()
        .map(|t| {
            // Quantities on the 0.00001 grid, as counts of it.
            let q = (t.qty.parse::<f64>().expect("qty") * 1e5).round() as i64;
            if t.is_buyer { q } else { -q }
        })
        .sum();
    assert_eq!(
        net, 0,
        "the exchange's trades net to the guard's flat position"
    );
    assert!(
        sim.sim_account().orders.iter().all(|o| o.status != "NEW"),
        "nothing is left open"
    );
}

/// What a session ends with: each order's (client id number, state, quantity, filled), the
/// balances the venue holds (asset, free, locked), and the exchange's own view of the orders
/// (status, quantity, filled) and balances.
type Outcome = (
    Vec<(u64, OrderState, Qty, Qty)>,
    Vec<(String, String, String)>,
    Vec<(String, String, String)>,
    Vec<(String, String, String)>,
);

/// Place, amend, cancel and fill, then wind down, in one response format.
fn place_amend_cancel_fill(format: ResponseFormat) -> Outcome {
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let (credentials, public) = ed25519();
    let sim = exchange(&tls, api(Some(public), false));
    let mut v = venue_in(
        &tls,
        &sim,
        credentials,
        OrderTableConfig::default(),
        RunEpoch::now(),
        format,
    );
    let mut reports = Vec::new();
    poll_until(&mut v, &mut reports, |v, _| v.is_ready());
    let state = |v: &BinanceVenue, id: u64| v.table().get(ClientOrderId(id)).map(|o| o.state);
    // Two resting buys; the second is amended down, the first cancelled.
    v.submit(&resting_buy(1), 0);
    let mut second = resting_buy(2);
    second.qty = Qty(300);
    v.submit(&second, 0);
    poll_until(&mut v, &mut reports, |v, _| {
        state(v, 1) == Some(OrderState::New) && state(v, 2) == Some(OrderState::New)
    });
    let mut amend = second;
    amend.action = pinion_strategy::OrderAction::Amend;
    amend.qty = Qty(100);
    v.submit(&amend, 0);
    poll_until(&mut v, &mut reports, |_, r| {
        r.iter()
            .any(|r| r.client_id == ClientOrderId(2) && r.leaves_qty == Qty(100))
    });
    v.submit(
        &OrderIntent::cancel(
            0,
            ClientOrderId(3),
            ClientOrderId(1),
            BTCUSDT,
            OrderSide::Buy,
            pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Requote),
        ),
        0,
    );
    poll_until(&mut v, &mut reports, |v, _| {
        state(v, 1) == Some(OrderState::Canceled)
    });
    // A marketable buy fills at once.
    v.submit(&taking_buy(4, 200), 0);
    poll_until(&mut v, &mut reports, |v, _| {
        state(v, 4) == Some(OrderState::Filled)
    });
    // Its position reaches the venue's balances through user data.
    poll_until(&mut v, &mut reports, |v, _| {
        v.balances()
            .iter()
            .any(|b| b.asset.as_str() == "BTC" && b.free.to_string() == "1.002")
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !v.wind_down(3_000_000_000, |r| reports.push(r)) {
        assert!(Instant::now() < deadline, "wind-down: {v:?}");
        std::thread::sleep(Duration::from_micros(200));
    }
    let s = v.session_stats();
    assert_eq!(s.bad_frames, 0, "{format:?}: every frame read: {s:?}");
    // Every answer came in the format asked for.
    let binary = sim.stats().ws_api_sbe_messages;
    match format {
        ResponseFormat::Json => assert_eq!(binary, 0),
        ResponseFormat::Sbe => assert!(binary >= s.answers, "{binary} SBE messages: {s:?}"),
    }
    let mut orders: Vec<_> = v
        .table()
        .orders()
        .iter()
        .map(|o| (o.client_id.0, o.state, o.qty, o.cum_qty))
        .collect();
    orders.sort_by_key(|o| o.0);
    let mut balances: Vec<_> = v
        .balances()
        .iter()
        .map(|b| {
            (
                b.asset.to_string(),
                b.free.to_string(),
                b.locked.to_string(),
            )
        })
        .collect();
    balances.sort();
    let account = sim.sim_account();
    let mut at_exchange: Vec<_> = account
        .orders
        .iter()
        .map(|o| (o.status.clone(), o.orig_qty.clone(), o.executed_qty.clone()))
        .collect();
    at_exchange.sort();
    let mut exchange_balances: Vec<_> = account
        .balances
        .iter()
        .map(|b| (b.asset.clone(), b.free.clone(), b.locked.clone()))
        .collect();
    exchange_balances.sort();
    (orders, balances, at_exchange, exchange_balances)
}

#[test]
fn an_sbe_session_places_amends_cancels_and_fills_to_the_same_end_as_a_json_one() {
    let json = place_amend_cancel_fill(ResponseFormat::Json);
    let sbe = place_amend_cancel_fill(ResponseFormat::Sbe);
    // The orders end alike in both formats, here and at the exchange.
    assert_eq!(sbe.0, json.0, "orders at the venue");
    assert_eq!(sbe.2, json.2, "orders at the exchange");
    assert_eq!(
        sbe.0.iter().map(|o| (o.0, o.1)).collect::<Vec<_>>(),
        vec![
            (1, OrderState::Canceled),
            (2, OrderState::Canceled),
            (4, OrderState::Filled)
        ]
    );
    assert_eq!(sbe.0[1].2, Qty(100), "the amendment held");
    assert_eq!(sbe.0[2].3, Qty(200), "the fill");
    // The position: 0.002 BTC bought, nothing locked once every order is closed. The quote
    // paid depends on where the synthetic market stood, so each session's balances are
    // checked against its own exchange's, and the base asset across formats.
    for (format, run) in [("json", &json), ("sbe", &sbe)] {
        assert_eq!(
            run.1, run.3,
            "{format}: the venue's balances are the exchange's"
        );
    }
    let btc = |run: &Outcome| run.1.iter().find(|b| b.0 == "BTC").cloned();
    assert_eq!(btc(&sbe), btc(&json));
    assert_eq!(
        btc(&sbe),
        Some(("BTC".to_owned(), "1.002".to_owned(), "0".to_owned()))
    );
}

/// `text` (a decimal) in units of 10^-`decimals`.
fn units(text: &str, decimals: usize) -> i64 {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let frac = frac.trim_end_matches('0');
    assert!(
        frac.len() <= decimals,
        "{text} has more than {decimals} decimals"
    );
    let frac = format!("{frac:0<decimals$}");
    format!("{int}{frac}").parse().expect("a decimal")
}

/// Self-trade prevention at the exchange, the venue's second guard: a resting buy of the
/// session at the best bid (queued behind the market's quantity there), then the session's
/// own sell to that price for the level and 0.002 more, sent with `EXPIRE_TAKER` from the
/// venue's config. The sell takes the market's level, then would meet the buy: the exchange
/// expires its remainder (`EXPIRED_IN_MATCH`) and the order table ends it `Expired` with
/// exactly the level filled, while the buy rests on untouched.
#[test]
fn an_own_sell_stopped_by_self_trade_prevention_ends_expired_with_its_market_fills() {
    own_sell_stopped(ResponseFormat::Json);
}

/// The same with answers and user data in SBE (the `TRADE_PREVENTION` report read from a
/// binary frame).
#[test]
fn in_sbe_an_own_sell_stopped_by_self_trade_prevention_ends_alike() {
    own_sell_stopped(ResponseFormat::Sbe);
}

fn own_sell_stopped(format: ResponseFormat) {
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let (credentials, public) = ed25519();
    let mut api = api(Some(public), false);
    api.balances = vec![
        ("BTC".to_owned(), "100".to_owned()),
        ("USDT".to_owned(), "100000".to_owned()),
    ];
    let sim = exchange(&tls, api);
    assert!(
        sim.wait_exhausted(Duration::from_secs(20)),
        "the market ends"
    );
    let truth = sim.truth("BTCUSDT").expect("truth");
    let (bid_px, bid_qty) = truth.bids[0].clone();
    let (px, level) = (units(&bid_px, 2), units(&bid_qty, 5));
    let mut config = config_in(
        &tls,
        &sim,
        credentials,
        OrderTableConfig::default(),
        RunEpoch::now(),
        format,
    );
    config.stp_mode = Some(pinion_gateway::binance::template::StpMode::ExpireTaker);
    let mut v = BinanceVenue::new(config).expect("venue");
    let mut reports = Vec::new();
    poll_until(&mut v, &mut reports, |v, _| v.is_ready());
    let order = |id: u64, side: OrderSide, qty: i64, tif: TimeInForce| {
        OrderIntent::new_limit(
            id,
            ClientOrderId(id),
            BTCUSDT,
            side,
            Px(px),
            Qty(qty),
            OrderType::Limit,
            tif,
            pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry),
        )
    };
    v.submit(&order(1, OrderSide::Buy, 100, TimeInForce::Gtc), 0);
    poll_until(&mut v, &mut reports, |v, _| {
        v.table().get(ClientOrderId(1)).map(|o| o.state) == Some(OrderState::New)
    });
    v.submit(&order(2, OrderSide::Sell, level + 200, TimeInForce::Gtc), 0);
    poll_until(&mut v, &mut reports, |v, _| {
        v.table()
            .get(ClientOrderId(2))
            .is_some_and(|o| o.state.is_final())
    });
    let sell = v.table().get(ClientOrderId(2)).expect("the sell");
    assert_eq!(
        (sell.state, sell.cum_qty),
        (OrderState::Expired, Qty(level))
    );
    let ended = reports
        .iter()
        .rfind(|r| r.client_id == ClientOrderId(2))
        .expect("the sell's reports");
    assert_eq!(
        (ended.status, ended.cum_qty, ended.leaves_qty),
        (OrderStatus::Expired, Qty(level), Qty::ZERO)
    );
    let filled: i64 = reports
        .iter()
        .filter(|r| r.client_id == ClientOrderId(2))
        .map(|r| r.last_qty.0)
        .sum();
    assert_eq!(filled, level);
    assert_eq!(
        v.table()
            .get(ClientOrderId(1))
            .map(|o| (o.state, o.cum_qty)),
        Some((OrderState::New, Qty::ZERO))
    );
    let account = sim.sim_account();
    let states: Vec<(&str, &str, &str, Option<&str>)> = account
        .orders
        .iter()
        .map(|o| {
            (
                o.side.as_str(),
                o.status.as_str(),
                o.executed_qty.as_str(),
                o.prevented_qty.as_deref(),
            )
        })
        .collect();
    let level_text = pinion_exchange_sim::Dec::parse(&bid_qty)
        .expect("quantity")
        .normalized();
    assert_eq!(
        states,
        [
            ("BUY", "NEW", "0", None),
            (
                "SELL",
                "EXPIRED_IN_MATCH",
                level_text.as_str(),
                Some("0.002")
            )
        ]
    );
    assert!(
        account.trades.iter().all(|t| !t.is_buyer),
        "the buy never traded"
    );
}
