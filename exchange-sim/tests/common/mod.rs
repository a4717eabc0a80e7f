//! What the WS API test files share: the live exchange on the BTCUSDT recording over TLS, a
//! raw-JSON WS API client, `/sim/account` over HTTP.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinion_exchange_sim::{
    Dec, InstrumentInfo, LiveConfig, LiveExchange, LivePacing, OrderFaultPlan, SelfSignedTls,
    SimAccount, WsApiConfig,
};
use pinion_feed::{FrameSource, SourceError};
use pinion_gateway::binance::sign::{SignatureBuf, Signer};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

pub const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";
pub const API_KEY: &str = "simKey0123456789";
/// A throwaway key made with `openssl genpkey -algorithm ed25519` (PKCS#8 v1), as in the
/// gateway's signing tests; never registered anywhere.
const TEST_ONLY_ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOL9C+S9+YZx6b7Tpmdlq0xLkyBRN5MlJOEAvMrD+oD/
-----END PRIVATE KEY-----
";

pub type Tls = StreamOwned<ClientConnection, TcpStream>;

pub struct Sim {
    pub exchange: LiveExchange,
    pub client: Arc<ClientConfig>,
}

pub fn start(path: PathBuf, faults: &str, frames_per_sec: f64, maker: &str, taker: &str) -> Sim {
    let mut api = WsApiConfig::new(API_KEY);
    api.balances = vec![
        ("USDT".to_owned(), "1000000".to_owned()),
        ("BTC".to_owned(), "10".to_owned()),
    ];
    api.faults = OrderFaultPlan::parse(faults).expect("faults");
    api.maker_commission = Dec::parse(maker).expect("maker");
    api.taker_commission = Dec::parse(taker).expect("taker");
    start_from(
        move || pinion_feed::source::open(&path),
        api,
        LivePacing::Rate { frames_per_sec },
        &["BTCUSDT"],
    )
}

/// The live exchange on the source `open` gives, with `api` (its Ed25519 key set here), once
/// every one of `symbols` is open.
pub fn start_from<F>(open: F, mut api: WsApiConfig, pacing: LivePacing, symbols: &[&str]) -> Sim
where
    F: Fn() -> Result<Box<dyn FrameSource + Send>, SourceError>,
{
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let ed = Signer::ed25519_pem(TEST_ONLY_ED25519_PEM).expect("key");
    api.ed25519_public_key = ed.ed25519_public_key().map(<[u8]>::to_vec);
    let mut config = LiveConfig::spot();
    config.pacing = pacing;
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
        open,
    )
    .expect("start");
    for symbol in symbols {
        assert!(
            exchange.wait_open(symbol, Duration::from_secs(20)),
            "{symbol}"
        );
    }
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
    pub fn tls(&self) -> Tls {
        let tcp = TcpStream::connect(self.exchange.local_addr()).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let name = ServerName::try_from("localhost").expect("name");
        let conn = ClientConnection::new(Arc::clone(&self.client), name).expect("tls");
        StreamOwned::new(conn, tcp)
    }

    pub fn client(&self) -> Client {
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
    pub fn account_json(&self) -> Value {
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

pub struct Client {
    pub ws: WebSocket<Tls>,
    pub next_id: u64,
    /// User data events read so far.
    pub events: Vec<Value>,
}

impl Client {
    /// One request; its answer (events that come first are kept in `events`).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
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

    pub fn logon(&mut self) {
        let r = self.logon_at(now_ms());
        assert_eq!(r["status"], 200, "{r}");
        let r = self.call("userDataStream.subscribe", json!({}));
        assert_eq!(r["status"], 200, "{r}");
    }

    /// `session.logon` with `timestamp` `ts`; the answer.
    pub fn logon_at(&mut self, ts: u64) -> Value {
        let signer = Signer::ed25519_pem(TEST_ONLY_ED25519_PEM).expect("key");
        let payload = format!("apiKey={API_KEY}&timestamp={ts}");
        let mut buf: SignatureBuf = [0; std::mem::size_of::<SignatureBuf>()];
        let sig =
            String::from_utf8(signer.sign(payload.as_bytes(), &mut buf).to_vec()).expect("utf8");
        self.call(
            "session.logon",
            json!({"apiKey": API_KEY, "timestamp": ts, "signature": sig}),
        )
    }

    /// Reads events until `done` holds for them (or `within`).
    pub fn events_until(&mut self, within: Duration, done: impl Fn(&[Value]) -> bool) {
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

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

pub fn dec(v: &Value) -> Dec {
    Dec::parse(v.as_str().expect("decimal string")).expect("decimal")
}

pub fn best(sim: &Sim) -> (String, String) {
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    (truth.bids[0].0.clone(), truth.asks[0].0.clone())
}

/// The typed accessor and the HTTP route say the same.
pub fn same_account(sim: &Sim) -> SimAccount {
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
pub fn trades_match_reports(account: &SimAccount, events: &[Value]) {
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

pub fn balance(account: &SimAccount, asset: &str) -> (Dec, Dec) {
    let b = account
        .balances
        .iter()
        .find(|b| b.asset == asset)
        .expect("asset");
    (Dec::parse(&b.free).unwrap(), Dec::parse(&b.locked).unwrap())
}

/// Exact decimal arithmetic for the checks (values here have few decimals).
pub fn f(d: Dec) -> f64 {
    d.normalized().parse().unwrap()
}

/// The `REQUEST_WEIGHT` count of an answer's `rateLimits`.
pub fn weight_count(answer: &Value) -> u64 {
    answer["rateLimits"]
        .as_array()
        .expect("rateLimits")
        .iter()
        .find(|l| l["rateLimitType"] == "REQUEST_WEIGHT")
        .and_then(|l| l["count"].as_u64())
        .expect("REQUEST_WEIGHT")
}

/// Asserts the request of `after` weighed `weight` (the window may have turned since `before`).
pub fn weighed(before: &Value, after: &Value, weight: u64) {
    let (b, a) = (weight_count(before), weight_count(after));
    assert!(
        a == b + weight || a == weight,
        "weight {weight}: {b} → {a}: {after}"
    );
}
