//! The WS API (`/ws-api/v3`) over real TLS on loopback: requests built with pinion's own
//! templates, answers read with pinion's own parser, against the live exchange playing the
//! recorded BTCUSDT market.
//!
//! - `logon_then_unsigned_orders_rest_and_cancel`: Ed25519 logon, a resting LIMIT order
//!   (`NEW` report), cancelled by client id (`CANCELED` with `c` = the cancel's id, `C` = the
//!   order's), balances locked and released.
//! - `a_marketable_order_fills_against_the_truth`: TRADE reports whose `l` sum to `z`, at the
//!   truth's ask prices, balances moved by exactly the fills.
//! - `hmac_signed_before_logon_and_bad_signature`: an HMAC-signed order is accepted before
//!   logon; a wrong secret is `-1022`; a stale timestamp `-1021`; unknown params `-1103`.
//! - `order_faults_do_what_they_say`: `o1007`, `o1007x`, `o429`, `oreset`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinion_core::{Px, Qty};
use pinion_exchange_sim::{
    InstrumentInfo, LiveConfig, LiveExchange, LivePacing, OrderFaultPlan, SelfSignedTls,
    WsApiConfig,
};
use pinion_gateway::binance::sign::Signer;
use pinion_gateway::binance::template::{
    self, OrderRef, RequestTemplate, Signing, SlotValues, SymbolContext,
};
use pinion_gateway::binance::wire::{self, Failure, Frame, UserEvent};
use pinion_strategy::{OrderSide, OrderType, TimeInForce};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tungstenite::{Message, WebSocket};

const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";
const API_KEY: &str = "simKey0123456789";
const HMAC_SECRET: &str = "simSecret0123456789";
/// A throwaway key made with `openssl genpkey -algorithm ed25519` (PKCS#8 v1), as in the
/// gateway's signing tests; never registered anywhere.
const TEST_ONLY_ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOL9C+S9+YZx6b7Tpmdlq0xLkyBRN5MlJOEAvMrD+oD/
-----END PRIVATE KEY-----
";

type Ws = WebSocket<StreamOwned<ClientConnection, TcpStream>>;

struct Sim {
    exchange: LiveExchange,
    client: Arc<ClientConfig>,
}

fn start(path: PathBuf, faults: &str) -> Sim {
    start_at(path, faults, 5.0)
}

fn start_at(path: PathBuf, faults: &str, frames_per_sec: f64) -> Sim {
    start_with(path, faults, frames_per_sec, |_| {}, |_| {})
}

fn start_with(
    path: PathBuf,
    faults: &str,
    frames_per_sec: f64,
    tune: impl FnOnce(&mut WsApiConfig),
    tune_live: impl FnOnce(&mut LiveConfig),
) -> Sim {
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let ed = Signer::ed25519_pem(TEST_ONLY_ED25519_PEM).expect("key");
    let mut api = WsApiConfig::new(API_KEY);
    api.ed25519_public_key = ed.ed25519_public_key().map(<[u8]>::to_vec);
    api.hmac_secret = Some(HMAC_SECRET.to_owned());
    api.balances = vec![
        ("USDT".to_owned(), "100000".to_owned()),
        ("BTC".to_owned(), "1".to_owned()),
    ];
    api.faults = OrderFaultPlan::parse(faults).expect("faults");
    tune(&mut api);
    let mut config = LiveConfig::spot();
    config.pacing = LivePacing::Rate { frames_per_sec };
    config.instruments = vec![InstrumentInfo {
        symbol: "BTCUSDT".into(),
        tick_size: "0.01".into(),
        step_size: "0.00001".into(),
        min_notional: "5".into(),
    }];
    config.ws_api = Some(api);
    tune_live(&mut config);
    let exchange = LiveExchange::start(
        "127.0.0.1:0".parse().expect("addr"),
        config,
        Some(Arc::clone(&tls.server_config)),
        move || pinion_feed::source::open(&path),
    )
    .expect("start");
    assert!(exchange.wait_open("BTCUSDT", Duration::from_secs(20)));
    let mut roots = RootCertStore::empty();
    roots.add(tls.certificate.clone()).expect("trust");
    let client =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    Sim {
        exchange,
        client: Arc::new(client),
    }
}

impl Sim {
    fn ws(&self) -> Ws {
        let tcp = TcpStream::connect(self.exchange.local_addr()).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let name = ServerName::try_from("localhost").expect("name");
        let conn = ClientConnection::new(Arc::clone(&self.client), name).expect("tls");
        let url = format!(
            "wss://localhost:{}/ws-api/v3",
            self.exchange.local_addr().port()
        );
        tungstenite::client::client(url, StreamOwned::new(conn, tcp))
            .expect("handshake")
            .0
    }

    fn balance(&self, asset: &str) -> (String, String) {
        self.exchange
            .ws_api_balances()
            .into_iter()
            .find(|(a, _, _)| a == asset)
            .map(|(_, f, l)| (f, l))
            .expect("balance")
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn ctx(signing: Signing) -> SymbolContext {
    SymbolContext {
        symbol: "BTCUSDT".into(),
        price_decimals: 2,
        qty_decimals: 5,
        recv_window: None,
        stp_mode: None,
        signing,
    }
}

/// Sends one request; returns the answer and the events that came before it.
fn call(
    ws: &mut Ws,
    t: &mut RequestTemplate,
    v: SlotValues<'_>,
    signer: Option<&Signer>,
) -> (String, Vec<String>) {
    let text = t.write(&v, signer).expect("write").to_vec();
    ws.send(Message::text(String::from_utf8(text).expect("utf8")))
        .expect("send");
    let mut events = Vec::new();
    loop {
        let msg = ws.read().expect("read");
        let Message::Text(text) = msg else { continue };
        match wire::parse_frame(text.as_str()).expect("parse") {
            Frame::Response(_) => return (text.as_str().to_owned(), events),
            Frame::Event { .. } => events.push(text.as_str().to_owned()),
        }
    }
}

fn response(text: &str) -> wire::Response<'_> {
    match wire::parse_frame(text).expect("parse") {
        Frame::Response(r) => r,
        Frame::Event { .. } => panic!("not a response"),
    }
}

/// Reads events until `n` execution reports arrived (or 5 s).
fn reports(ws: &mut Ws, mut have: Vec<String>, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let count = |v: &[String]| {
        v.iter()
            .filter(|t| t.contains("\"executionReport\""))
            .count()
    };
    while count(&have) < n && Instant::now() < deadline {
        if let Ok(Message::Text(t)) = ws.read() {
            have.push(t.as_str().to_owned());
        }
    }
    have.iter()
        .filter_map(|t| match wire::parse_frame(t).expect("event") {
            Frame::Event {
                event: UserEvent::ExecutionReport(_),
                ..
            } => Some(serde_json::from_str::<serde_json::Value>(t).expect("json")["event"].clone()),
            _ => None,
        })
        .collect()
}

fn logon(ws: &mut Ws) {
    let signer = Signer::ed25519_pem(TEST_ONLY_ED25519_PEM).expect("key");
    let mut t = template::session_logon(API_KEY, None).expect("logon");
    let v = SlotValues {
        request_id: 1,
        timestamp_ms: now_ms(),
        ..SlotValues::default()
    };
    let (text, _) = call(ws, &mut t, v, Some(&signer));
    let r = response(&text);
    assert_eq!(r.status, 200, "{text}");
    let mut sub = template::user_data_stream_subscribe().expect("subscribe");
    let (text, _) = call(
        ws,
        &mut sub,
        SlotValues {
            request_id: 2,
            ..SlotValues::default()
        },
        None,
    );
    assert_eq!(response(&text).subscription_id().expect("id"), 0, "{text}");
}

fn best(sim: &Sim) -> (f64, f64) {
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    let bid: f64 = truth.bids[0].0.parse().expect("bid");
    let ask: f64 = truth.asks[0].0.parse().expect("ask");
    (bid, ask)
}

fn px(x: f64) -> Px {
    Px::parse(format!("{x:.2}").as_bytes(), 2).expect("px")
}

fn qty(s: &str) -> Qty {
    Qty::parse(s.as_bytes(), 5).expect("qty")
}

#[test]
fn logon_then_unsigned_orders_rest_and_cancel() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "");
    let mut ws = sim.ws();
    logon(&mut ws);
    let c = ctx(Signing::LoggedOn);
    let mut place = c
        .order_place(OrderSide::Buy, OrderType::Limit, TimeInForce::Gtc)
        .expect("place");
    let (bid, _) = best(&sim);
    let price = px((bid * 0.5).floor());
    let (text, events) = call(
        &mut ws,
        &mut place,
        SlotValues {
            request_id: 3,
            price,
            qty: qty("0.01"),
            client_id: b"rest1",
            timestamp_ms: now_ms(),
            ..SlotValues::default()
        },
        None,
    );
    let r = response(&text);
    assert_eq!(r.failure(), None, "{text}");
    let ack = r.order_ack().expect("ack");
    assert_eq!(ack.client_order_id, "rest1");
    let order_id = ack.order_id;
    let new = reports(&mut ws, events, 1);
    assert_eq!(new[0]["x"], "NEW");
    assert_eq!(new[0]["X"], "NEW");
    assert_eq!(new[0]["i"], order_id);
    assert_eq!(new[0]["c"], "rest1");
    // Locked at the limit price.
    let locked: f64 = sim.balance("USDT").1.parse().expect("locked");
    assert!(
        (locked - (bid * 0.5).floor() * 0.01).abs() < 1e-6,
        "{locked}"
    );
    // A duplicate client id among open orders.
    let (text, _) = call(
        &mut ws,
        &mut place,
        SlotValues {
            request_id: 4,
            price,
            qty: qty("0.01"),
            client_id: b"rest1",
            timestamp_ms: now_ms(),
            ..SlotValues::default()
        },
        None,
    );
    assert_eq!(
        response(&text).failure(),
        Some(Failure::Duplicate),
        "{text}"
    );
    // Status, then cancel by client id.
    let mut status = c.order_status(OrderRef::OrderId).expect("status");
    let (text, _) = call(
        &mut ws,
        &mut status,
        SlotValues {
            request_id: 5,
            order_id,
            timestamp_ms: now_ms(),
            ..SlotValues::default()
        },
        None,
    );
    assert_eq!(
        response(&text).order_snapshot().expect("snapshot").status,
        "NEW"
    );
    let mut cancel = c.order_cancel(OrderRef::ClientId).expect("cancel");
    let (text, events) = call(
        &mut ws,
        &mut cancel,
        SlotValues {
            request_id: 6,
            orig_client_id: b"rest1",
            client_id: b"cx1",
            timestamp_ms: now_ms(),
            ..SlotValues::default()
        },
        None,
    );
    let snap = response(&text).order_snapshot().expect("cancel result");
    assert_eq!(snap.status, "CANCELED");
    assert_eq!(snap.orig_client_order_id, Some("rest1"));
    let cancelled = reports(&mut ws, events, 1);
    assert_eq!(cancelled[0]["x"], "CANCELED");
    assert_eq!(cancelled[0]["c"], "cx1");
    assert_eq!(cancelled[0]["C"], "rest1");
    assert_eq!(sim.balance("USDT"), ("100000".into(), "0".into()));
    // Cancelling again: unknown.
    let (text, _) = call(
        &mut ws,
        &mut cancel,
        SlotValues {
            request_id: 7,
            orig_client_id: b"rest1",
            client_id: b"cx2",
            timestamp_ms: now_ms(),
            ..SlotValues::default()
        },
        None,
    );
    assert_eq!(
        response(&text).failure(),
        Some(Failure::CancelUnknownOrder),
        "{text}"
    );
    // LIMIT_MAKER through the ask.
    let (_, ask) = best(&sim);
    let mut maker = c
        .order_place(OrderSide::Buy, OrderType::LimitMaker, TimeInForce::Gtc)
        .expect("maker");
    let (text, _) = call(
        &mut ws,
        &mut maker,
        SlotValues {
            request_id: 8,
            price: px(ask + 100.0),
            qty: qty("0.01"),
            client_id: b"mk1",
            timestamp_ms: now_ms(),
            ..SlotValues::default()
        },
        None,
    );
    assert!(
        text.contains("Order would immediately match and take."),
        "{text}"
    );
}

#[test]
fn a_marketable_order_fills_against_the_truth() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "");
    let mut ws = sim.ws();
    logon(&mut ws);
    let c = ctx(Signing::LoggedOn);
    let mut place = c
        .order_place(OrderSide::Buy, OrderType::Market, TimeInForce::Gtc)
        .expect("place");
    let (text, events) = call(
        &mut ws,
        &mut place,
        SlotValues {
            request_id: 3,
            qty: qty("0.5"),
            client_id: b"mkt1",
            timestamp_ms: now_ms(),
            ..SlotValues::default()
        },
        None,
    );
    assert_eq!(response(&text).failure(), None, "{text}");
    assert!(events.is_empty(), "events come after the answer");
    let all = reports(&mut ws, events, 2);
    let trades: Vec<_> = all.iter().filter(|e| e["x"] == "TRADE").collect();
    assert!(!trades.is_empty());
    let sum: f64 = trades
        .iter()
        .map(|e| e["l"].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    let last = trades.last().unwrap();
    let z: f64 = last["z"].as_str().unwrap().parse().unwrap();
    assert!((sum - z).abs() < 1e-9, "{sum} vs {z}");
    let quote: f64 = last["Z"].as_str().unwrap().parse().unwrap();
    let mut ids: Vec<u64> = all.iter().map(|e| e["I"].as_u64().unwrap()).collect();
    let sorted = {
        let mut s = ids.clone();
        s.sort_unstable();
        s
    };
    assert_eq!(ids, sorted, "execution ids increase");
    ids.dedup();
    assert_eq!(ids.len(), all.len());
    let (btc, _) = sim.balance("BTC");
    let (usdt, _) = sim.balance("USDT");
    assert!(
        (btc.parse::<f64>().unwrap() - (1.0 + z)).abs() < 1e-9,
        "{btc}"
    );
    assert!(
        (usdt.parse::<f64>().unwrap() - (100_000.0 - quote)).abs() < 1e-6,
        "{usdt}"
    );
    // IOC that cannot fill expires at once and moves nothing.
    let mut ioc = c
        .order_place(OrderSide::Buy, OrderType::Limit, TimeInForce::Ioc)
        .expect("ioc");
    let (bid, _) = best(&sim);
    let (text, events) = call(
        &mut ws,
        &mut ioc,
        SlotValues {
            request_id: 4,
            price: px((bid * 0.5).floor()),
            qty: qty("0.01"),
            client_id: b"ioc1",
            timestamp_ms: now_ms(),
            ..SlotValues::default()
        },
        None,
    );
    assert_eq!(response(&text).failure(), None, "{text}");
    let expired = reports(&mut ws, events, 2);
    assert_eq!(expired[0]["x"], "NEW");
    assert_eq!(expired[1]["x"], "EXPIRED");
    assert_eq!(expired[1]["X"], "EXPIRED");
    assert_eq!(sim.balance("USDT").0, usdt);
    // FOK that the whole book cannot fill expires without a trade.
    let mut fok = c
        .order_place(OrderSide::Buy, OrderType::Limit, TimeInForce::Fok)
        .expect("fok");
    let (_, ask) = best(&sim);
    let (text, events) = call(
        &mut ws,
        &mut fok,
        SlotValues {
            request_id: 5,
            price: px((ask * 1.5).floor()),
            qty: qty("100000"),
            client_id: b"fok1",
            timestamp_ms: now_ms(),
            ..SlotValues::default()
        },
        None,
    );
    assert_eq!(response(&text).failure(), None, "{text}");
    let fok_reports = reports(&mut ws, events, 2);
    let kinds: Vec<&str> = fok_reports
        .iter()
        .map(|e| e["x"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["NEW", "EXPIRED"]);
    assert_eq!(fok_reports[1]["z"], "0.00000000");
    assert_eq!(sim.balance("USDT").0, usdt);
    // FULL answers carry the fills.
    let full = format!(
        r#"{{"id":"f","method":"order.place","params":{{"symbol":"BTCUSDT","side":"SELL","type":"MARKET","quantity":"0.2","newOrderRespType":"FULL","timestamp":{}}}}}"#,
        now_ms()
    );
    ws.send(Message::text(full)).expect("send");
    let text = loop {
        let Message::Text(t) = ws.read().expect("read") else {
            continue;
        };
        if t.as_str().contains(r#""id":"f""#) {
            break t.as_str().to_owned();
        }
    };
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let result = &v["result"];
    assert_eq!(result["status"], "FILLED", "{text}");
    let filled: f64 = result["fills"]
        .as_array()
        .expect("fills")
        .iter()
        .map(|f| f["qty"].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!((filled - 0.2).abs() < 1e-9, "{text}");
    assert_eq!(result["executedQty"], "0.20000000");
}

#[test]
fn hmac_signed_before_logon_and_bad_signature() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "");
    let mut ws = sim.ws();
    let c = ctx(Signing::PerRequest {
        api_key: API_KEY.into(),
    });
    let good = Signer::hmac(HMAC_SECRET.as_bytes());
    let bad = Signer::hmac(b"not the secret");
    let mut place = c
        .order_place(OrderSide::Sell, OrderType::Limit, TimeInForce::Gtc)
        .expect("place");
    let (_, ask) = best(&sim);
    let v = |id, cid: &'static [u8], ts| SlotValues {
        request_id: id,
        price: px((ask * 2.0).floor()),
        qty: qty("0.01"),
        client_id: cid,
        timestamp_ms: ts,
        ..SlotValues::default()
    };
    let (text, _) = call(&mut ws, &mut place, v(1, b"h1", now_ms()), Some(&good));
    assert_eq!(response(&text).failure(), None, "{text}");
    let (text, _) = call(&mut ws, &mut place, v(2, b"h2", now_ms()), Some(&bad));
    assert!(text.contains("-1022"), "{text}");
    let (text, _) = call(
        &mut ws,
        &mut place,
        v(3, b"h3", now_ms() - 10_000),
        Some(&good),
    );
    assert_eq!(
        response(&text).failure(),
        Some(Failure::Timestamp),
        "{text}"
    );
    let (text, _) = call(
        &mut ws,
        &mut place,
        v(4, b"h4", now_ms() + 5_000),
        Some(&good),
    );
    assert_eq!(
        response(&text).failure(),
        Some(Failure::Timestamp),
        "{text}"
    );
    ws.send(Message::text(
        r#"{"id":9,"method":"time","params":{"bogus":1}}"#,
    ))
    .expect("send");
    let Message::Text(t) = ws.read().expect("read") else {
        panic!()
    };
    assert!(t.as_str().contains("-1103"), "{t}");
    ws.send(Message::text(
        r#"{"id":10,"method":"order.place","params":{"symbol":"BTCUSDT"}}"#,
    ))
    .expect("send");
    let Message::Text(t) = ws.read().expect("read") else {
        panic!()
    };
    assert!(t.as_str().contains("-1102"), "{t}");
    assert_eq!(sim.balance("BTC").1, "0.01");
}

#[test]
fn order_faults_do_what_they_say() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "o1007:1,o1007x:2,o429:3,oreset:4");
    let mut ws = sim.ws();
    logon(&mut ws);
    let c = ctx(Signing::LoggedOn);
    let mut place = c
        .order_place(OrderSide::Buy, OrderType::Limit, TimeInForce::Gtc)
        .expect("place");
    let (bid, _) = best(&sim);
    let v = |id, cid: &'static [u8]| SlotValues {
        request_id: id,
        price: px((bid * 0.5).floor()),
        qty: qty("0.01"),
        client_id: cid,
        timestamp_ms: now_ms(),
        ..SlotValues::default()
    };
    let mut open = c.open_orders_status().expect("open");
    let open_ids = |ws: &mut Ws, open: &mut RequestTemplate, id| -> Vec<String> {
        let (text, _) = call(
            ws,
            open,
            SlotValues {
                request_id: id,
                timestamp_ms: now_ms(),
                ..SlotValues::default()
            },
            None,
        );
        response(&text)
            .open_orders()
            .expect("open orders")
            .iter()
            .map(|o| o.client_order_id.to_owned())
            .collect()
    };
    let (text, _) = call(&mut ws, &mut place, v(3, b"f1"), None);
    assert_eq!(response(&text).failure(), Some(Failure::Unknown), "{text}");
    assert_eq!(open_ids(&mut ws, &mut open, 4), ["f1"]);
    let (text, _) = call(&mut ws, &mut place, v(5, b"f2"), None);
    assert_eq!(response(&text).failure(), Some(Failure::Unknown), "{text}");
    assert_eq!(open_ids(&mut ws, &mut open, 6), ["f1"]);
    let (text, _) = call(&mut ws, &mut place, v(7, b"f3"), None);
    let r = response(&text);
    assert_eq!(r.status, 429, "{text}");
    let Err(e) = &r.outcome else { panic!() };
    assert!(e.retry_after_ms().is_some());
    assert_eq!(open_ids(&mut ws, &mut open, 8), ["f1"]);
    let text = place.write(&v(9, b"f4"), None).expect("write").to_vec();
    ws.send(Message::text(String::from_utf8(text).unwrap()))
        .expect("send");
    let mut ended = false;
    for _ in 0..100 {
        match ws.read() {
            Ok(Message::Text(t)) if t.as_str().contains("\"status\"") => panic!("answered: {t}"),
            Ok(_) => {}
            Err(_) => {
                ended = true;
                break;
            }
        }
    }
    assert!(ended, "the connection was reset");
    let mut ws = sim.ws();
    logon(&mut ws);
    assert_eq!(open_ids(&mut ws, &mut open, 10), ["f1"]);
}

#[test]
fn fill_first_sends_the_reports_before_the_answer() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "fillfirst");
    let mut ws = sim.ws();
    logon(&mut ws);
    let c = ctx(Signing::LoggedOn);
    let mut place = c
        .order_place(OrderSide::Sell, OrderType::Market, TimeInForce::Gtc)
        .expect("place");
    let (text, events) = call(
        &mut ws,
        &mut place,
        SlotValues {
            request_id: 3,
            qty: qty("0.1"),
            client_id: b"ff1",
            timestamp_ms: now_ms(),
            ..SlotValues::default()
        },
        None,
    );
    assert_eq!(response(&text).failure(), None, "{text}");
    let kinds: Vec<String> = reports(&mut ws, events.clone(), 0)
        .iter()
        .map(|e| e["x"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("NEW"), "{events:?}");
    assert!(kinds.iter().any(|k| k == "TRADE"), "{events:?}");
    assert!(events.iter().any(|e| e.contains("outboundAccountPosition")));
    // Filters: off-tick price, off-step quantity, too small a notional.
    let mut limit = c
        .order_place(OrderSide::Buy, OrderType::Limit, TimeInForce::Gtc)
        .expect("limit");
    for (price, q, filter) in [
        ("100.005", "0.01", "PRICE_FILTER"),
        ("100", "0.000001", "LOT_SIZE"),
        ("100", "0.01", "NOTIONAL"),
    ] {
        let mut c3 = c.clone();
        c3.price_decimals = 3;
        c3.qty_decimals = 6;
        let mut t = c3
            .order_place(OrderSide::Buy, OrderType::Limit, TimeInForce::Gtc)
            .expect("t");
        let (text, _) = call(
            &mut ws,
            &mut t,
            SlotValues {
                request_id: 4,
                price: Px::parse(price.as_bytes(), 3).unwrap(),
                qty: Qty::parse(q.as_bytes(), 6).unwrap(),
                client_id: b"flt",
                timestamp_ms: now_ms(),
                ..SlotValues::default()
            },
            None,
        );
        assert!(
            text.contains(&format!("Filter failure: {filter}")),
            "{text}"
        );
        assert!(text.contains("-1013"), "{text}");
    }
    // A failed order request is charged weight 1, a successful one 0.
    let weight = |text: &str| response(text).rate_limits.0[0].count;
    let (ok, _) = call(
        &mut ws,
        &mut limit,
        SlotValues {
            request_id: 5,
            price: px(100.0),
            qty: qty("0.1"),
            client_id: b"w1",
            timestamp_ms: now_ms(),
            ..SlotValues::default()
        },
        None,
    );
    let (failed, _) = call(
        &mut ws,
        &mut limit,
        SlotValues {
            request_id: 6,
            price: px(100.0),
            qty: qty("0.1"),
            client_id: b"w1",
            timestamp_ms: now_ms(),
            ..SlotValues::default()
        },
        None,
    );
    assert_eq!(response(&failed).failure(), Some(Failure::Duplicate));
    assert_eq!(weight(&failed), weight(&ok) + 1, "{ok} {failed}");
    assert_eq!(response(&ok).rate_limits.0.len(), 3, "{ok}");
}

#[test]
fn resting_orders_fill_when_the_truth_crosses_them() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start_at(path, "", 500.0);
    let mut ws = sim.ws();
    logon(&mut ws);
    let c = ctx(Signing::LoggedOn);
    let (bid, ask) = best(&sim);
    for (id, (side, price, cid)) in (3..).zip([
        (OrderSide::Buy, bid, &b"rb"[..]),
        (OrderSide::Sell, ask, &b"rs"[..]),
    ]) {
        let mut t = c
            .order_place(side, OrderType::Limit, TimeInForce::Gtc)
            .expect("t");
        let (text, _) = call(
            &mut ws,
            &mut t,
            SlotValues {
                request_id: id,
                price: px(price),
                qty: qty("0.01"),
                client_id: cid,
                timestamp_ms: now_ms(),
                ..SlotValues::default()
            },
            None,
        );
        assert_eq!(response(&text).failure(), None, "{text}");
    }
    // The market moves a tick either way within seconds: one of the two fills, as maker, at
    // its own price, in full (in one part or several, as the queue gives it).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut trades: Vec<serde_json::Value> = Vec::new();
    while !trades.iter().any(|t| t["X"] == "FILLED") && Instant::now() < deadline {
        if let Ok(Message::Text(t)) = ws.read() {
            let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
            if v["event"]["x"] == "TRADE" {
                trades.push(v["event"].clone());
            }
        }
    }
    let done = trades
        .iter()
        .find(|t| t["X"] == "FILLED")
        .expect("a resting order filled");
    let parts: Vec<&serde_json::Value> = trades.iter().filter(|t| t["c"] == done["c"]).collect();
    let sum: f64 = parts
        .iter()
        .map(|t| t["l"].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!((sum - 0.01).abs() < 1e-12, "{parts:?}");
    for t in &parts {
        assert_eq!(t["m"], true);
        assert_eq!(t["L"], t["p"]);
    }
    assert_eq!(done["z"], "0.01000000");
    assert_eq!(done["w"], false);
}

#[test]
fn order_and_weight_limits_answer_429_with_retry_after() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start_with(
        path,
        "",
        5.0,
        |api| {
            api.orders_per_10s = 2;
            api.weight_limit = 12;
        },
        |_| {},
    );
    let mut ws = sim.ws();
    logon(&mut ws);
    let c = ctx(Signing::LoggedOn);
    let mut place = c
        .order_place(OrderSide::Buy, OrderType::Limit, TimeInForce::Gtc)
        .expect("place");
    let (bid, _) = best(&sim);
    let mut answers = Vec::new();
    for (id, cid) in (3..).zip([&b"l1"[..], b"l2", b"l3"]) {
        let v = SlotValues {
            request_id: id,
            price: px((bid * 0.5).floor()),
            qty: qty("0.01"),
            client_id: cid,
            timestamp_ms: now_ms(),
            ..SlotValues::default()
        };
        answers.push(call(&mut ws, &mut place, v, None).0);
    }
    assert_eq!(response(&answers[0]).failure(), None, "{}", answers[0]);
    assert_eq!(response(&answers[1]).failure(), None, "{}", answers[1]);
    let third = response(&answers[2]);
    assert_eq!(third.status, 429, "{}", answers[2]);
    assert_eq!(third.failure(), Some(Failure::RateLimited));
    let Err(e) = &third.outcome else {
        panic!("refused")
    };
    assert_eq!(e.code, -1015);
    assert!(e.retry_after_ms().is_some_and(|t| t > now_ms()));
    // Weight: logon 2 + subscribe 2 + the refused order 1 = 5; `openOrders.status` weighs 6,
    // so the next one is over 12.
    let mut open = c.open_orders_status().expect("open");
    let v = |id| SlotValues {
        request_id: id,
        timestamp_ms: now_ms(),
        ..SlotValues::default()
    };
    let (first, _) = call(&mut ws, &mut open, v(10), None);
    assert_eq!(response(&first).failure(), None, "{first}");
    assert_eq!(response(&first).rate_limits.0[0].count, 11, "{first}");
    let (second, _) = call(&mut ws, &mut open, v(11), None);
    let r = response(&second);
    assert_eq!(r.status, 429, "{second}");
    let Err(e) = &r.outcome else {
        panic!("refused")
    };
    assert_eq!(e.code, -1003);
}

/// `openssl pkey -pubout` of [`TEST_ONLY_ED25519_PEM`]: the form a simulator's operator is
/// given.
const TEST_ONLY_ED25519_PUB_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAcwt8xQe0irDKhD9yqdY6Bp9+yZcTNwxoP5N29VO55uE=
-----END PUBLIC KEY-----
";

#[test]
fn the_public_key_pem_is_the_signing_keys() {
    let signer = Signer::ed25519_pem(TEST_ONLY_ED25519_PEM).expect("key");
    let key = pinion_exchange_sim::wsapi::ed25519_public_key_from_pem(TEST_ONLY_ED25519_PUB_PEM)
        .expect("public key");
    assert_eq!(Some(key.as_slice()), signer.ed25519_public_key());
    assert!(
        pinion_exchange_sim::wsapi::ed25519_public_key_from_pem(TEST_ONLY_ED25519_PEM).is_err()
    );
}

#[test]
fn sessions_are_pinged() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start_with(
        path,
        "",
        5.0,
        |_| {},
        |live| live.ping_interval = Some(Duration::from_millis(100)),
    );
    let mut ws = sim.ws();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut pinged = false;
    while !pinged && Instant::now() < deadline {
        pinged = matches!(ws.read().expect("read"), Message::Ping(_));
    }
    assert!(pinged);
}
