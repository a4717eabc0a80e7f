//! The WS API account as the end-to-end comparison reads it, over real TLS on loopback against
//! the live exchange playing the recorded BTCUSDT market; requests are written as raw JSON
//! (Ed25519 logon signed with pinion's signer).
//!
//! - `sim_account_matches_the_reports_and_charges_commission`: a taker fill and a cancelled
//!   resting order; `/sim/account` (HTTP) equals [`LiveExchange::sim_account`], its trades equal
//!   the `TRADE` reports (`t`, `l`, `L`, `n`, `N`), commission is charged in the asset received
//!   at the taker rate, and the balances are exactly start ± fills − commission.
//! - `resting_orders_fill_behind_their_queue`: a bid joined at the best bid fills as maker,
//!   possibly in parts, each part one `TRADE` report followed by an `outboundAccountPosition`,
//!   with the maker rate charged, and `/sim/account` agreeing to the last unit.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinion_exchange_sim::{
    Dec, InstrumentInfo, LiveConfig, LiveExchange, LivePacing, OrderFaultPlan, SelfSignedTls,
    SimAccount, WsApiConfig,
};
use pinion_gateway::binance::sign::{SignatureBuf, Signer};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";
const API_KEY: &str = "simKey0123456789";
/// A throwaway key made with `openssl genpkey -algorithm ed25519` (PKCS#8 v1), as in the
/// gateway's signing tests; never registered anywhere.
const TEST_ONLY_ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOL9C+S9+YZx6b7Tpmdlq0xLkyBRN5MlJOEAvMrD+oD/
-----END PRIVATE KEY-----
";

type Tls = StreamOwned<ClientConnection, TcpStream>;

struct Sim {
    exchange: LiveExchange,
    client: Arc<ClientConfig>,
}

fn start(path: PathBuf, faults: &str, frames_per_sec: f64, maker: &str, taker: &str) -> Sim {
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let ed = Signer::ed25519_pem(TEST_ONLY_ED25519_PEM).expect("key");
    let mut api = WsApiConfig::new(API_KEY);
    api.ed25519_public_key = ed.ed25519_public_key().map(<[u8]>::to_vec);
    api.balances = vec![
        ("USDT".to_owned(), "1000000".to_owned()),
        ("BTC".to_owned(), "10".to_owned()),
    ];
    api.faults = OrderFaultPlan::parse(faults).expect("faults");
    api.maker_commission = Dec::parse(maker).expect("maker");
    api.taker_commission = Dec::parse(taker).expect("taker");
    let mut config = LiveConfig::spot();
    config.pacing = LivePacing::Rate { frames_per_sec };
    config.instruments = vec![InstrumentInfo {
        symbol: "BTCUSDT".into(),
        tick_size: "0.01".into(),
        step_size: "0.00001".into(),
        min_notional: "5".into(),
    }];
    config.ws_api = Some(api);
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
    fn tls(&self) -> Tls {
        let tcp = TcpStream::connect(self.exchange.local_addr()).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let name = ServerName::try_from("localhost").expect("name");
        let conn = ClientConnection::new(Arc::clone(&self.client), name).expect("tls");
        StreamOwned::new(conn, tcp)
    }

    fn client(&self) -> Client {
        let url = format!(
            "wss://localhost:{}/ws-api/v3",
            self.exchange.local_addr().port()
        );
        let ws = tungstenite::client::client(url, self.tls())
            .expect("handshake")
            .0;
        Client {
            ws,
            next_id: 1,
            events: Vec::new(),
        }
    }

    /// `GET /sim/account` over TLS.
    fn account_json(&self) -> Value {
        let mut tls = self.tls();
        tls.write_all(b"GET /sim/account HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("request");
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw);
        let text = String::from_utf8(raw).expect("utf8");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        let body = text.split_once("\r\n\r\n").expect("body").1;
        serde_json::from_str(body).expect("json")
    }
}

struct Client {
    ws: WebSocket<Tls>,
    next_id: u64,
    /// User data events read so far.
    events: Vec<Value>,
}

impl Client {
    /// One request; its answer (events that come first are kept in `events`).
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"id": id, "method": method, "params": params});
        self.ws
            .send(Message::text(request.to_string()))
            .expect("send");
        loop {
            let Message::Text(text) = self.ws.read().expect("read") else {
                continue;
            };
            let v: Value = serde_json::from_str(text.as_str()).expect("json");
            if v.get("event").is_some() {
                self.events.push(v["event"].clone());
            } else if v["id"] == json!(id) {
                return v;
            }
        }
    }

    fn logon(&mut self) {
        let signer = Signer::ed25519_pem(TEST_ONLY_ED25519_PEM).expect("key");
        let ts = now_ms();
        let payload = format!("apiKey={API_KEY}&timestamp={ts}");
        let mut buf: SignatureBuf = [0; std::mem::size_of::<SignatureBuf>()];
        let sig =
            String::from_utf8(signer.sign(payload.as_bytes(), &mut buf).to_vec()).expect("utf8");
        let r = self.call(
            "session.logon",
            json!({"apiKey": API_KEY, "timestamp": ts, "signature": sig}),
        );
        assert_eq!(r["status"], 200, "{r}");
        let r = self.call("userDataStream.subscribe", json!({}));
        assert_eq!(r["status"], 200, "{r}");
    }

    /// Reads events until `done` holds for them (or `within`).
    fn events_until(&mut self, within: Duration, done: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + within;
        while !done(&self.events) && Instant::now() < deadline {
            if let Ok(Message::Text(text)) = self.ws.read() {
                let v: Value = serde_json::from_str(text.as_str()).expect("json");
                if v.get("event").is_some() {
                    self.events.push(v["event"].clone());
                }
            }
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn dec(v: &Value) -> Dec {
    Dec::parse(v.as_str().expect("decimal string")).expect("decimal")
}

fn best(sim: &Sim) -> (String, String) {
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    (truth.bids[0].0.clone(), truth.asks[0].0.clone())
}

/// The typed accessor and the HTTP route say the same.
fn same_account(sim: &Sim) -> SimAccount {
    let typed = sim.exchange.sim_account();
    let served = sim.account_json();
    assert_eq!(
        serde_json::to_value(&typed).expect("serialize"),
        served,
        "/sim/account and sim_account() differ"
    );
    typed
}

/// Every TRADE report's `t`, `i`, `l`, `L`, `n`, `N`, `m` is one trade of `/sim/account`.
fn trades_match_reports(account: &SimAccount, events: &[Value]) {
    let reports: Vec<&Value> = events
        .iter()
        .filter(|e| e["e"] == "executionReport" && e["x"] == "TRADE")
        .collect();
    assert_eq!(reports.len(), account.trades.len(), "{events:?}");
    for r in reports {
        let t = account
            .trades
            .iter()
            .find(|t| json!(t.id) == r["t"])
            .unwrap_or_else(|| panic!("no trade for {r}"));
        assert_eq!(json!(t.order_id), r["i"]);
        assert_eq!(Dec::parse(&t.qty).unwrap(), dec(&r["l"]));
        assert_eq!(Dec::parse(&t.price).unwrap(), dec(&r["L"]));
        assert_eq!(Dec::parse(&t.commission).unwrap(), dec(&r["n"]));
        assert_eq!(json!(t.commission_asset), r["N"]);
        assert_eq!(json!(t.is_maker), r["m"]);
    }
}

fn balance(account: &SimAccount, asset: &str) -> (Dec, Dec) {
    let b = account
        .balances
        .iter()
        .find(|b| b.asset == asset)
        .expect("asset");
    (Dec::parse(&b.free).unwrap(), Dec::parse(&b.locked).unwrap())
}

/// Exact decimal arithmetic for the checks (values here have few decimals).
fn f(d: Dec) -> f64 {
    d.normalized().parse().unwrap()
}

#[test]
fn sim_account_matches_the_reports_and_charges_commission() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "", 5.0, "0.0002", "0.001");
    let mut c = sim.client();
    c.logon();
    // A taker buy across the ask.
    let (_, ask) = best(&sim);
    let ask_px: f64 = ask.parse().unwrap();
    let r = c.call(
        "order.place",
        json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "IOC",
               "price": format!("{:.2}", ask_px + 50.0), "quantity": "0.05",
               "newClientOrderId": "take1", "timestamp": now_ms()}),
    );
    assert_eq!(r["status"], 200, "{r}");
    let executed = dec(&r["result"]["executedQty"]);
    assert!(!executed.is_zero(), "{r}");
    // A resting sell far above, then cancelled.
    let r = c.call(
        "order.place",
        json!({"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
               "price": format!("{:.2}", ask_px + 5000.0), "quantity": "0.02",
               "newClientOrderId": "rest1", "timestamp": now_ms()}),
    );
    assert_eq!(r["result"]["status"], "NEW", "{r}");
    let r = c.call(
        "order.cancel",
        json!({"symbol": "BTCUSDT", "origClientOrderId": "rest1", "timestamp": now_ms()}),
    );
    assert_eq!(r["result"]["status"], "CANCELED", "{r}");
    c.events_until(Duration::from_secs(5), |e| {
        e.iter().any(|e| e["x"] == "CANCELED")
            && e.last()
                .is_some_and(|e| e["e"] == "outboundAccountPosition")
    });
    let account = same_account(&sim);
    let statuses: Vec<(&str, &str)> = account
        .orders
        .iter()
        .map(|o| (o.client_order_id.as_str(), o.status.as_str()))
        .collect();
    assert_eq!(statuses, [("take1", "FILLED"), ("rest1", "CANCELED")]);
    assert_eq!(account.orders[1].price, format!("{:.2}", ask_px + 5000.0));
    assert_eq!(account.orders[1].orig_qty, "0.02");
    assert_eq!(account.orders[1].executed_qty, "0");
    trades_match_reports(&account, &c.events);
    // Commission at the taker rate, in BTC (received); quote paid exactly.
    let mut quote = 0.0;
    let mut commission = 0.0;
    for t in &account.trades {
        assert!(t.is_buyer && !t.is_maker);
        assert_eq!(t.commission_asset, "BTC");
        let qty = f(Dec::parse(&t.qty).unwrap());
        assert!((f(Dec::parse(&t.commission).unwrap()) - qty * 0.001).abs() < 1e-12);
        quote += f(Dec::parse(&t.quote_qty).unwrap());
        commission += qty * 0.001;
    }
    assert_eq!(
        Dec::parse(&account.orders[0].executed_qty).unwrap(),
        executed
    );
    let (btc, btc_locked) = balance(&account, "BTC");
    let (usdt, usdt_locked) = balance(&account, "USDT");
    assert!(
        (f(btc) - (10.0 + f(executed) - commission)).abs() < 1e-12,
        "{btc:?}"
    );
    assert!((f(usdt) - (1_000_000.0 - quote)).abs() < 1e-6, "{usdt:?}");
    assert!(btc_locked.is_zero() && usdt_locked.is_zero());
    // The last position event says the same.
    let position = c
        .events
        .iter()
        .rev()
        .find(|e| e["e"] == "outboundAccountPosition")
        .expect("position");
    for b in position["B"].as_array().unwrap() {
        let (free, locked) = balance(&account, b["a"].as_str().unwrap());
        assert_eq!((dec(&b["f"]), dec(&b["l"])), (free, locked), "{position}");
    }
}

#[test]
fn resting_orders_fill_behind_their_queue() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "", 400.0, "0.0005", "0.001");
    let mut c = sim.client();
    c.logon();
    // Join both best levels: whichever way the market goes, one side trades through.
    let (bid, ask) = best(&sim);
    for (side, px, id) in [("BUY", &bid, "qb"), ("SELL", &ask, "qs")] {
        let r = c.call(
            "order.place",
            json!({"symbol": "BTCUSDT", "side": side, "type": "LIMIT", "timeInForce": "GTC",
                   "price": px, "quantity": "3", "newClientOrderId": id,
                   "timestamp": now_ms()}),
        );
        assert_eq!(r["result"]["status"], "NEW", "{r}");
    }
    c.events_until(Duration::from_secs(60), |e| {
        e.iter()
            .any(|e| e["e"] == "executionReport" && e["X"] == "FILLED")
            && e.last()
                .is_some_and(|e| e["e"] == "outboundAccountPosition")
    });
    let filled: Vec<&Value> = c
        .events
        .iter()
        .filter(|e| e["e"] == "executionReport" && e["x"] == "TRADE")
        .collect();
    assert!(
        filled.iter().any(|e| e["X"] == "FILLED"),
        "no resting order filled"
    );
    // Each TRADE report is followed at once by the position it changed.
    for (i, e) in c.events.iter().enumerate() {
        if e["x"] == "TRADE" {
            assert_eq!(c.events[i + 1]["e"], "outboundAccountPosition", "{e}");
            assert_eq!(e["m"], true);
            assert_eq!(e["L"], e["p"]);
            let received = if e["S"] == "BUY" { "BTC" } else { "USDT" };
            assert_eq!(e["N"], received);
            let got = if e["S"] == "BUY" {
                f(dec(&e["l"]))
            } else {
                f(dec(&e["Y"]))
            };
            assert!((f(dec(&e["n"])) - got * 0.0005).abs() < 1e-9, "{e}");
        }
    }
    // Per order, the parts add up: `z` runs through the partial fills, `X` follows.
    for id in ["qb", "qs"] {
        let parts: Vec<&&Value> = filled.iter().filter(|e| e["c"] == id).collect();
        let mut z = 0.0;
        for p in &parts {
            z += f(dec(&p["l"]));
            assert!((f(dec(&p["z"])) - z).abs() < 1e-12, "{p}");
            let done = (z - 3.0).abs() < 1e-12;
            assert_eq!(p["X"], if done { "FILLED" } else { "PARTIALLY_FILLED" });
            assert_eq!(p["w"], !done);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let account = same_account(&sim);
    c.events_until(Duration::from_millis(500), |_| false);
    let account_now = same_account(&sim);
    let account = if account_now.trades.len() > account.trades.len() {
        account_now
    } else {
        account
    };
    trades_match_reports(&account, &c.events);
    // Balances: start, minus what the fills paid, plus what they received less commission,
    // with the open remainder locked.
    let (mut btc, mut usdt) = (10.0, 1_000_000.0);
    let (mut btc_locked, mut usdt_locked) = (0.0, 0.0);
    for o in &account.orders {
        let px = f(Dec::parse(&o.price).unwrap());
        let left = f(Dec::parse(&o.orig_qty).unwrap()) - f(Dec::parse(&o.executed_qty).unwrap());
        if o.side == "BUY" {
            usdt_locked += px * left;
            usdt -= px * 3.0;
        } else {
            btc_locked += left;
            btc -= 3.0;
        }
    }
    for t in &account.trades {
        let received = if t.is_buyer {
            f(Dec::parse(&t.qty).unwrap())
        } else {
            f(Dec::parse(&t.quote_qty).unwrap())
        };
        let net = received - f(Dec::parse(&t.commission).unwrap());
        if t.is_buyer {
            btc += net;
        } else {
            usdt += net;
        }
    }
    let (b, bl) = balance(&account, "BTC");
    let (u, ul) = balance(&account, "USDT");
    assert!(
        (f(b) - btc).abs() < 1e-9 && (f(bl) - btc_locked).abs() < 1e-9,
        "{account:?}"
    );
    assert!(
        (f(u) - usdt).abs() < 1e-6 && (f(ul) - usdt_locked).abs() < 1e-6,
        "{account:?}"
    );
}
