//! The live exchange model (`pinion_exchange_sim::LiveExchange`) against plain tungstenite +
//! rustls clients over real TLS on loopback, trusting the simulator's self-signed certificate,
//! on the real Binance Spot recording (`binance/spot-btcusdt-20240808.hbt.gz`).
//!
//! - `a_client_joining_mid_stream_syncs_to_the_truth`: a session opened on `/stream` with no
//!   streams subscribes while the market runs; the first message is the ack for its id; it
//!   buffers diffs, fetches `/api/v3/depth` over a keep-alive HTTPS connection (weight header
//!   250 for limit 5000; `ping`, `time`, `exchangeInfo` on the same connection), applies
//!   snapshot + diffs by Binance's Spot rule into its own book, and at the end that book equals
//!   `/sim/book` and `truth()` at the same id, which is the recording's documented final book
//!   (`sbe/…book.json`: last id 50093421584, 1,209 bids, 2,196 asks, best 61685.99 / 61686.00).
//! - `frames_come_only_after_the_ack_and_bad_requests_get_binance_errors`: a raw `/ws` session
//!   gets nothing before it subscribes; malformed requests get codes 3 and 2; LIST, GET/SET
//!   `combined`; then raw payloads; a sixth message within a second closes with 1008.
//! - `rest_weight_is_charged_and_the_budget_answers_429`: the per-IP budget of a fixed window.
//! - `stream_faults_hit_exactly_the_frames_they_name`: a dropped diff is missing from exactly
//!   one session (the truth has it); a duplicate and a swap on another session; the unhit
//!   session's book equals the truth.
//! - `connection_faults_do_what_they_say`: reset mid-frame, half-open (no pings either),
//!   close 1008, `serverShutdown` + 1001, the maximum age.
//! - `handshake_kills_and_the_attempt_budget`: the first K connections die after the `101`;
//!   past the attempt budget the upgrade is answered 429.
//! - `slow_and_stale_snapshots`: a delayed, K-updates-old depth answer, then a fresh one.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use std::sync::Arc;
use std::time::{Duration, Instant};

use pinion_exchange_sim::{FaultPlan, LiveConfig, LiveExchange, LivePacing, SelfSignedTls};
use pinion_net::http::{HeadRules, parse_response};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;
use tungstenite::Message;

mod live_client;

use live_client::{Sim, Tls, Ws, start};

const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";
const DEPTH: &str = "btcusdt@depth@100ms";
/// The recording's last diff id and final book (`shared/data/README.md`).
const FINAL_ID: u64 = 50_093_421_584;

impl Sim {
    fn addr(&self) -> SocketAddr {
        self.exchange.local_addr()
    }

    fn tls(&self) -> Tls {
        let tcp = TcpStream::connect(self.addr()).expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        tcp.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let name = ServerName::try_from("localhost").expect("name");
        let conn = ClientConnection::new(Arc::clone(&self.client), name).expect("tls client");
        StreamOwned::new(conn, tcp)
    }

    /// A WebSocket session, or the HTTP status that refused it.
    fn try_ws(&self, path: &str) -> Result<Ws, Option<u16>> {
        let url = format!("wss://localhost:{}{path}", self.addr().port());
        match tungstenite::client::client(url, self.tls()) {
            Ok((ws, _)) => Ok(ws),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                Err(Some(r.status().as_u16()))
            }
            Err(_) => Err(None),
        }
    }

    fn ws(&self, path: &str) -> Ws {
        self.try_ws(path).expect("websocket handshake")
    }

    fn https(&self) -> Https {
        Https {
            stream: self.tls(),
            buf: Vec::new(),
        }
    }
}

/// A keep-alive HTTPS client.
struct Https {
    stream: Tls,
    buf: Vec<u8>,
}

struct Reply {
    code: u16,
    headers: BTreeMap<String, String>,
    body: Value,
}

impl Https {
    fn get(&mut self, target: &str) -> Reply {
        write!(
            self.stream,
            "GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n"
        )
        .expect("send");
        self.stream.flush().expect("flush");
        let rules = HeadRules::strict(16 << 10);
        let mut chunk = [0u8; 16 << 10];
        loop {
            if let Ok(Some(head)) = parse_response(&self.buf, &rules) {
                let len: usize = head
                    .headers
                    .get_str("content-length")
                    .and_then(|v| v.parse().ok())
                    .expect("content-length");
                let start = head.len;
                let code = head.code;
                let mut headers = BTreeMap::new();
                for name in ["x-mbx-used-weight-1m", "retry-after", "connection"] {
                    if let Some(v) = head.headers.get_str(name) {
                        headers.insert(name.to_owned(), v.to_owned());
                    }
                }
                if self.buf.len() >= start + len {
                    let body = serde_json::from_slice(&self.buf[start..start + len]).expect("json");
                    self.buf.drain(..start + len);
                    return Reply {
                        code,
                        headers,
                        body,
                    };
                }
            }
            let n = self.stream.read(&mut chunk).expect("read response");
            assert!(n > 0, "server closed a keep-alive connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[derive(Debug, PartialEq)]
enum Got {
    Text(String),
    Close(Option<u16>),
    Timeout,
    Broken,
}

fn next(ws: &mut Ws) -> Got {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return Got::Text(t.as_str().to_owned()),
            Ok(Message::Close(f)) => return Got::Close(f.map(|f| u16::from(f.code))),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Got::Timeout;
            }
            Err(tungstenite::Error::ConnectionClosed) => return Got::Close(None),
            Err(_) => return Got::Broken,
        }
    }
}

fn set_timeout(ws: &Ws, d: Duration) {
    ws.get_ref()
        .sock
        .set_read_timeout(Some(d))
        .expect("timeout");
}

fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_owned())).expect("send");
}

/// Trailing zeros after the point removed, then a trailing point.
fn norm(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s.to_owned()
    }
}

/// A reference book kept by the client, independent of the simulator's.
#[derive(Debug, Default, PartialEq)]
struct RefBook {
    id: u64,
    bids: BTreeMap<String, String>,
    asks: BTreeMap<String, String>,
}

impl RefBook {
    fn from_levels(id: u64, bids: &Value, asks: &Value) -> Self {
        let mut book = RefBook {
            id,
            ..RefBook::default()
        };
        book.set(bids, asks);
        book
    }

    fn set(&mut self, bids: &Value, asks: &Value) {
        for (side, levels) in [(&mut self.bids, bids), (&mut self.asks, asks)] {
            for level in levels.as_array().expect("levels") {
                let px = norm(level[0].as_str().expect("price"));
                let qty = norm(level[1].as_str().expect("qty"));
                if qty == "0" {
                    side.remove(&px);
                } else {
                    side.insert(px, qty);
                }
            }
        }
    }
}

/// A diff: `(U, u, data)`.
fn diff_of(text: &str) -> Option<(u64, u64, Value)> {
    let v: Value = serde_json::from_str(text).ok()?;
    let data = if v.get("stream").is_some() {
        v["data"].clone()
    } else {
        v
    };
    (data["e"] == "depthUpdate").then(|| {
        (
            data["U"].as_u64().expect("U"),
            data["u"].as_u64().expect("u"),
            data,
        )
    })
}

fn sim_book(https: &mut Https, symbol: &str) -> RefBook {
    let reply = https.get(&format!("/sim/book?symbol={symbol}"));
    assert_eq!(reply.code, 200);
    let b = reply.body;
    RefBook::from_levels(
        b["lastUpdateId"].as_u64().expect("id"),
        &b["bids"],
        &b["asks"],
    )
}

fn spot(config: impl FnOnce(&mut LiveConfig)) -> Option<Sim> {
    let path = pinion_testkit::data::require(RECORDING)?;
    let mut c = LiveConfig::spot();
    c.pacing = LivePacing::Rate {
        frames_per_sec: 10_000.0,
    };
    config(&mut c);
    Some(start(path, c))
}

#[test]
fn a_client_joining_mid_stream_syncs_to_the_truth() {
    let Some(sim) = spot(|_| {}) else { return };
    assert!(sim.exchange.wait_open("BTCUSDT", Duration::from_secs(30)));
    assert!(sim.exchange.wait_released(8_000, Duration::from_secs(60)));
    assert!(
        !sim.exchange.is_exhausted(),
        "the client must join a running market"
    );
    let mut ws = sim.ws("/stream");
    send(
        &mut ws,
        &format!(r#"{{"method":"SUBSCRIBE","params":["{DEPTH}"],"id":7}}"#),
    );
    assert_eq!(next(&mut ws), Got::Text(r#"{"result":null,"id":7}"#.into()));
    let mut buffered = Vec::new();
    while buffered.len() < 3 {
        match next(&mut ws) {
            Got::Text(t) => buffered.push(diff_of(&t).expect("only depth diffs were asked for")),
            other => panic!("stream ended early: {other:?}"),
        }
    }
    let mut https = sim.https();
    let snapshot = loop {
        let reply = https.get("/api/v3/depth?symbol=BTCUSDT&limit=5000");
        assert_eq!(reply.code, 200);
        let lu = reply.body["lastUpdateId"].as_u64().expect("id");
        if lu >= buffered[0].0 {
            break reply;
        }
    };
    assert_eq!(snapshot.headers["x-mbx-used-weight-1m"], "250");
    assert_eq!(snapshot.headers["connection"], "keep-alive");
    let lu = snapshot.body["lastUpdateId"].as_u64().expect("id");
    let mut book = RefBook::from_levels(lu, &snapshot.body["bids"], &snapshot.body["asks"]);
    assert!(book.bids.len() > 100 && book.asks.len() > 100);
    // The same keep-alive connection serves more requests.
    assert_eq!(https.get("/api/v3/ping").body, serde_json::json!({}));
    assert!(
        https.get("/api/v3/time").body["serverTime"]
            .as_u64()
            .is_some()
    );
    let info = https.get("/api/v3/exchangeInfo");
    let symbol = &info.body["symbols"][0];
    assert_eq!(symbol["symbol"], "BTCUSDT");
    assert_eq!(symbol["status"], "TRADING");
    assert_eq!(symbol["filters"][0]["tickSize"], "0.01000000");
    assert_eq!(
        info.headers["x-mbx-used-weight-1m"],
        (250 + 1 + 1 + 20).to_string()
    );

    // Binance's Spot rule: drop u <= lastUpdateId; the first applied diff bridges lu + 1;
    // every later one continues the previous u.
    let mut applied = 0;
    let mut apply = |book: &mut RefBook, (first, last, data): (u64, u64, Value)| {
        if last <= book.id {
            return;
        }
        if applied == 0 {
            assert!(
                first <= book.id + 1 && book.id < last,
                "first diff bridges the snapshot"
            );
        } else {
            assert_eq!(first, book.id + 1, "diffs continue");
        }
        book.set(&data["b"], &data["a"]);
        book.id = last;
        applied += 1;
    };
    for d in buffered {
        apply(&mut book, d);
    }
    assert!(sim.exchange.wait_exhausted(Duration::from_secs(120)));
    let truth_id = sim.exchange.truth("btcusdt").expect("truth").last_update_id;
    assert_eq!(truth_id, FINAL_ID);
    while book.id < truth_id {
        match next(&mut ws) {
            Got::Text(t) => apply(&mut book, diff_of(&t).expect("diff")),
            other => panic!("stream ended before the final id: {other:?}"),
        }
    }
    assert!(applied > 100);
    // The market stays open and idle: the session is still there, pinged, no more frames.
    set_timeout(&ws, Duration::from_millis(300));
    assert_eq!(next(&mut ws), Got::Timeout);

    let served = sim_book(&mut https, "BTCUSDT");
    assert_eq!(served, book, "the client's book is the simulator's truth");
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_eq!(truth.last_update_id, FINAL_ID);
    assert_eq!((truth.bids.len(), truth.asks.len()), (1_209, 2_196));
    assert_eq!(truth.bids[0], ("61685.99".into(), "1.0087".into()));
    assert_eq!(truth.asks[0], ("61686".into(), "2.29327".into()));
    let depth2 = https.get("/sim/book?symbol=BTCUSDT&depth=2").body;
    assert_eq!(depth2["bids"].as_array().map(Vec::len), Some(2));
    assert_eq!(depth2["bids"][1][0], truth.bids[1].0.as_str());
    let stats = https.get("/sim/stats").body;
    assert_eq!(
        stats["snapshots_served"].as_u64(),
        sim.exchange.stats().snapshots_served.into()
    );
    assert_eq!(stats["exhausted"], true);
    assert_eq!(stats["open_symbols"], serde_json::json!(["BTCUSDT"]));
}

#[test]
fn frames_come_only_after_the_ack_and_bad_requests_get_binance_errors() {
    let Some(sim) = spot(|c| {
        c.pacing = LivePacing::Rate {
            frames_per_sec: 2_000.0,
        }
    }) else {
        return;
    };
    assert!(sim.exchange.wait_open("BTCUSDT", Duration::from_secs(30)));
    let mut ws = sim.ws("/ws");
    set_timeout(&ws, Duration::from_millis(400));
    assert_eq!(next(&mut ws), Got::Timeout, "nothing before a subscription");
    set_timeout(&ws, Duration::from_secs(20));
    let ask = |ws: &mut Ws, text: &str| -> Value {
        send(ws, text);
        match next(ws) {
            Got::Text(t) => serde_json::from_str(&t).expect("json"),
            other => panic!("no answer to {text}: {other:?}"),
        }
    };
    let e = ask(&mut ws, "{not json");
    assert_eq!(e["error"]["code"], 3);
    assert!(
        e["error"]["msg"]
            .as_str()
            .expect("msg")
            .starts_with("Invalid JSON")
    );
    let e = ask(&mut ws, r#"{"method":"SUBSCRIB","params":[],"id":4}"#);
    assert_eq!(
        (e["error"]["code"].as_i64(), e["id"].as_i64()),
        (Some(2), Some(4))
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        ask(&mut ws, r#"{"method":"LIST_SUBSCRIPTIONS","id":"q1"}"#),
        serde_json::json!({"result":[],"id":"q1"})
    );
    assert_eq!(
        ask(
            &mut ws,
            r#"{"method":"GET_PROPERTY","params":["combined"],"id":5}"#
        )["result"],
        false
    );
    let ack = ask(
        &mut ws,
        r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":6}"#,
    );
    assert_eq!(ack, serde_json::json!({"result":null,"id":6}));
    for _ in 0..20 {
        match next(&mut ws) {
            Got::Text(t) => assert!(t.starts_with(r#"{"e":"trade","#), "{t}"),
            other => panic!("{other:?}"),
        }
    }
    // Five messages within a second are allowed (four sent above this second at most), the
    // sixth closes with 1008.
    std::thread::sleep(Duration::from_millis(1100));
    for _ in 0..6 {
        let _ = ws.send(Message::Ping(Vec::new().into()));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match next(&mut ws) {
            Got::Text(_) => {}
            Got::Close(code) => {
                assert_eq!(code, Some(1008));
                break;
            }
            other => panic!("expected a 1008 close, got {other:?}"),
        }
        assert!(Instant::now() < deadline);
    }
    assert_eq!(sim.exchange.stats().message_rate_closes, 1);
    assert!(sim.exchange.stats().control_errors >= 2);
}

#[test]
fn rest_weight_is_charged_and_the_budget_answers_429() {
    let Some(sim) = spot(|c| {
        // One frame a second: the book hardly moves while it is asked for.
        c.pacing = LivePacing::Rate {
            frames_per_sec: 1.0,
        };
        c.weight_limit = 80;
        c.weight_window = Duration::from_secs(3600);
    }) else {
        return;
    };
    assert!(
        sim.exchange.wait_open("BTCUSDT", Duration::from_secs(30)),
        "{:?}",
        sim.exchange.stats()
    );
    let mut https = sim.https();
    let r = https.get("/fapi/v1/depth?symbol=BTCUSDT&limit=1000");
    assert_eq!(r.headers["x-mbx-used-weight-1m"], "20");
    assert!(r.body["E"].as_u64().is_some() && r.body["T"].as_u64().is_some());
    let truth = sim.exchange.truth_depth("BTCUSDT", 1000).expect("truth");
    if r.body["lastUpdateId"].as_u64() == Some(truth.last_update_id) {
        assert_eq!(
            r.body["bids"].as_array().map(Vec::len),
            Some(truth.bids.len())
        );
        assert_eq!(
            r.body["asks"].as_array().map(Vec::len),
            Some(truth.asks.len())
        );
    }
    assert!(r.body["bids"].as_array().map(Vec::len) > Some(900));
    assert_eq!(https.get("/fapi/v1/depth?symbol=BTCUSDT&limit=7").code, 400);
    assert_eq!(https.get("/api/v3/depth?limit=5").body["code"], -1102);
    // An unknown symbol is still charged the request's weight.
    assert_eq!(https.get("/api/v3/depth?symbol=NOPE").body["code"], -1121);
    let mut used = 25;
    for _ in 0..11 {
        let r = https.get("/api/v3/depth?symbol=BTCUSDT&limit=100");
        used += 5;
        assert_eq!(r.code, 200);
        assert_eq!(r.headers["x-mbx-used-weight-1m"], used.to_string());
        assert_eq!(r.body["bids"].as_array().map(Vec::len), Some(100));
        assert!(r.body.get("E").is_none(), "Spot snapshots carry no E");
    }
    let r = https.get("/api/v3/depth?symbol=BTCUSDT");
    assert_eq!(r.code, 429);
    assert_eq!(r.body["code"], -1003);
    let retry: u64 = r.headers["retry-after"].parse().expect("Retry-After");
    assert!((1..=3600).contains(&retry));
    let stats = sim.exchange.stats();
    assert_eq!(stats.weight_429, 1);
    assert_eq!(stats.snapshots_served, 12);
    assert_eq!(stats.weight_windows.len(), 1);
    assert_eq!(stats.weight_windows[0].used, 85);
    // A stop ends the keep-alive connection's idle wait at once, not after its minute.
    let stopping = Instant::now();
    let Sim { exchange, .. } = sim;
    exchange.shutdown();
    assert!(stopping.elapsed() < Duration::from_secs(5));
    drop(https);
}

/// Reads a session's depth diffs until `last` is seen: `(U, u)` in order.
fn diffs_until(ws: &mut Ws, last: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    loop {
        match next(ws) {
            Got::Text(t) => {
                let (first, u, _) = diff_of(&t).expect("diff");
                out.push((first, u));
                if u == last {
                    return out;
                }
            }
            other => panic!("session ended: {other:?} after {} diffs", out.len()),
        }
    }
}

#[test]
fn stream_faults_hit_exactly_the_frames_they_name() {
    let spec = format!("drop:{DEPTH}:40#1,dup:{DEPTH}:10#2,swap:{DEPTH}:20#2");
    let Some(sim) = spot(|c| {
        c.start_held = true;
        c.faults = FaultPlan::parse(&spec, 1).expect("spec");
    }) else {
        return;
    };
    let path = format!("/stream?streams={DEPTH}");
    let mut sessions: Vec<Ws> = (0..3).map(|_| sim.ws(&path)).collect();
    sim.exchange.release();
    assert!(sim.exchange.wait_exhausted(Duration::from_secs(120)));
    let last = sim.exchange.truth("BTCUSDT").expect("truth").last_update_id;
    let got: Vec<Vec<(u64, u64)>> = sessions
        .iter_mut()
        .map(|ws| diffs_until(ws, last))
        .collect();
    let full = &got[0];
    assert!(
        full.windows(2).all(|w| w[1].0 == w[0].1 + 1),
        "session 0 is gap-free"
    );
    // Session 1 misses exactly the 40th diff.
    let mut expected = full.clone();
    expected.remove(39);
    assert_eq!(got[1], expected);
    // Session 2: the 10th twice, the 20th after the 21st.
    let mut expected = full.clone();
    expected.swap(19, 20);
    expected.insert(10, full[9]);
    assert_eq!(got[2], expected);
    let stats = sim.exchange.stats();
    assert_eq!(
        (stats.fault_drops, stats.fault_duplicates, stats.fault_swaps),
        (1, 1, 1)
    );
    // The truth has the dropped update: it ends where the gap-free session ends.
    assert_eq!(full.last().map(|d| d.1), Some(last));
    assert!(full[39].0 > full[38].1);
}

#[test]
fn connection_faults_do_what_they_say() {
    let Some(sim) = spot(|c| {
        c.start_held = true;
        // Pongs count against the 5 messages a second, so pings come no faster than 4 a second.
        c.ping_interval = Some(Duration::from_millis(300));
        // Sessions wait unread while others are checked; their pongs then come in a burst,
        // which must not trip the message limit (tested on its own above).
        c.max_messages_per_sec = 1000;
        c.faults = FaultPlan::parse(
            "rst:5#0,halfopen:5#1,close1008:5#2,shutdown:400:300#3,maxage:900#4",
            0,
        )
        .expect("spec");
    }) else {
        return;
    };
    let path = format!("/stream?streams={DEPTH}");
    // Before the first connection: every session's age is at most this.
    let opened = Instant::now();
    let mut ws: Vec<Ws> = (0..5).map(|_| sim.ws(&path)).collect();
    sim.exchange.release();
    let texts = |ws: &mut Ws, n: usize| {
        for k in 0..n {
            let got = next(ws);
            assert!(
                matches!(got, Got::Text(_)),
                "frame {k} of {n}: {got:?}, {:?} after the sessions opened",
                opened.elapsed()
            );
        }
    };
    // 0: five frames, then a frame cut short and the socket shut with no close frame.
    texts(&mut ws[0], 5);
    assert_eq!(next(&mut ws[0]), Got::Broken);
    // 1: five frames, then silence: no frames, no pings, but the socket stays open.
    texts(&mut ws[1], 5);
    set_timeout(&ws[1], Duration::from_millis(700));
    let mut raw = [0u8; 64];
    let silent = ws[1].get_mut().sock.read(&mut raw);
    assert!(
        matches!(&silent, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "{silent:?}"
    );
    // 2: five frames, then close 1008.
    texts(&mut ws[2], 5);
    assert_eq!(next(&mut ws[2]), Got::Close(Some(1008)));
    // 3: serverShutdown about 400 ms in, then 1001 after the grace.
    let notice = loop {
        match next(&mut ws[3]) {
            Got::Text(t) if t.contains("serverShutdown") => break t,
            Got::Text(_) => {}
            other => panic!("{other:?}"),
        }
    };
    assert!(notice.starts_with(r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":"#));
    let close = loop {
        match next(&mut ws[3]) {
            Got::Text(_) => {}
            other => break other,
        }
    };
    assert_eq!(close, Got::Close(Some(1001)));
    assert!(opened.elapsed() >= Duration::from_millis(700));
    // 4: cut at 900 ms of age with 1001.
    let close = loop {
        match next(&mut ws[4]) {
            Got::Text(_) => {}
            other => break other,
        }
    };
    assert_eq!(close, Got::Close(Some(1001)));
    assert!(opened.elapsed() >= Duration::from_millis(900));
    let s = sim.exchange.stats();
    assert_eq!(
        (
            s.fault_resets,
            s.fault_half_open,
            s.fault_close_1008,
            s.fault_shutdowns,
            s.fault_max_age
        ),
        (1, 1, 1, 1, 1)
    );
}

#[test]
fn handshake_kills_and_the_attempt_budget() {
    let Some(sim) =
        spot(|c| c.faults = FaultPlan::parse("kill:3,connbudget:5:60000", 0).expect("spec"))
    else {
        return;
    };
    for _ in 0..3 {
        let mut ws = sim.ws("/ws");
        assert!(matches!(next(&mut ws), Got::Broken | Got::Close(None)));
    }
    for _ in 0..2 {
        let mut ws = sim.ws("/ws");
        send(&mut ws, r#"{"method":"LIST_SUBSCRIPTIONS","id":1}"#);
        assert_eq!(next(&mut ws), Got::Text(r#"{"result":[],"id":1}"#.into()));
    }
    assert_eq!(sim.try_ws("/ws").err(), Some(Some(429)));
    let s = sim.exchange.stats();
    assert_eq!((s.fault_kills, s.connection_429), (3, 1));
}

#[test]
fn slow_and_stale_snapshots() {
    let Some(sim) = spot(|c| {
        c.pacing = LivePacing::AsFastAsPossible;
        c.faults = FaultPlan::parse("slowsnap:400:1,stalesnap:3:1", 0).expect("spec");
    }) else {
        return;
    };
    assert!(sim.exchange.wait_exhausted(Duration::from_secs(120)));
    let mut https = sim.https();
    let asked = Instant::now();
    let stale = https.get("/api/v3/depth?symbol=BTCUSDT&limit=5000");
    assert!(asked.elapsed() >= Duration::from_millis(400));
    let fresh = https.get("/api/v3/depth?symbol=BTCUSDT&limit=5000");
    assert_eq!(fresh.body["lastUpdateId"].as_u64(), Some(FINAL_ID));
    // Three diffs back: the ids of the recording's last four diffs.
    let mut source =
        pinion_feed::source::open(&pinion_testkit::data::data_dir().join(RECORDING)).expect("open");
    let mut last_ids = Vec::new();
    while let Some(rec) = source.next_record().expect("read") {
        if let Some((_, u, _)) = std::str::from_utf8(rec.payload).ok().and_then(diff_of) {
            last_ids.push(u);
        }
    }
    let want = last_ids[last_ids.len() - 4];
    assert_eq!(stale.body["lastUpdateId"].as_u64(), Some(want));
    assert_ne!(
        (&stale.body["bids"], &stale.body["asks"]),
        (&fresh.body["bids"], &fresh.body["asks"])
    );
    let s = sim.exchange.stats();
    assert_eq!((s.fault_slow_snapshots, s.fault_stale_snapshots), (1, 1));
}

const USDM: &str = "binance/usdm-btcusdt-20240808.hbt.gz";
const USDM_DEPTH: &str = "btcusdt@depth@0ms";

/// Price as a number, for range checks only (the books compare as text).
fn px(s: &str) -> f64 {
    s.parse().expect("price")
}

#[test]
fn a_futures_client_syncs_by_the_pu_chain() {
    let Some(path) = pinion_testkit::data::require(USDM) else {
        return;
    };
    let mut config = LiveConfig::usdm();
    config.pacing = LivePacing::Rate {
        frames_per_sec: 20_000.0,
    };
    let sim = start(path, config);
    assert!(sim.exchange.wait_released(20_000, Duration::from_secs(60)));
    assert!(!sim.exchange.is_exhausted());
    // The futures route prefix is accepted.
    let mut ws = sim.ws("/public/stream");
    send(
        &mut ws,
        &format!(r#"{{"method":"SUBSCRIBE","params":["{USDM_DEPTH}"],"id":1}}"#),
    );
    assert_eq!(next(&mut ws), Got::Text(r#"{"result":null,"id":1}"#.into()));
    let mut buffered = Vec::new();
    while buffered.len() < 3 {
        match next(&mut ws) {
            Got::Text(t) => buffered.push(diff_of(&t).expect("diff")),
            other => panic!("{other:?}"),
        }
    }
    let mut https = sim.https();
    let snap = https.get("/fapi/v1/depth?symbol=BTCUSDT&limit=1000");
    assert_eq!(snap.headers["x-mbx-used-weight-1m"], "20");
    let b = &snap.body;
    assert!(b["E"].as_u64().is_some() && b["T"].as_u64().is_some());
    let lu = b["lastUpdateId"].as_u64().expect("id");
    let mut book = RefBook::from_levels(lu, &b["bids"], &b["asks"]);
    let low_bid = px(b["bids"][999][0].as_str().expect("1000 bids"));
    let high_ask = px(b["asks"][999][0].as_str().expect("1000 asks"));
    // The futures rule: drop u < lu; the first applied has U <= lu <= u; then pu == previous u.
    let mut prev_u: Option<u64> = None;
    let mut apply = |book: &mut RefBook, (first, last, data): (u64, u64, Value)| {
        if last < book.id && prev_u.is_none() {
            return;
        }
        match prev_u {
            None => assert!(first <= book.id && book.id <= last, "bridging diff"),
            Some(p) => assert_eq!(data["pu"].as_u64(), Some(p), "pu chain"),
        }
        book.set(&data["b"], &data["a"]);
        book.id = last;
        prev_u = Some(last);
    };
    for d in buffered {
        apply(&mut book, d);
    }
    assert!(sim.exchange.wait_exhausted(Duration::from_secs(120)));
    let final_id = sim.exchange.truth("BTCUSDT").expect("truth").last_update_id;
    while book.id < final_id {
        match next(&mut ws) {
            Got::Text(t) => apply(&mut book, diff_of(&t).expect("diff")),
            other => panic!("{other:?}"),
        }
    }
    // Within the snapshot's price range every level is known exactly.
    let truth = sim_book(&mut https, "BTCUSDT");
    assert_eq!(truth.id, book.id);
    let within = |m: &BTreeMap<String, String>, bids: bool| -> BTreeMap<String, String> {
        m.iter()
            .filter(|(p, _)| {
                if bids {
                    px(p) >= low_bid
                } else {
                    px(p) <= high_ask
                }
            })
            .map(|(p, q)| (p.clone(), q.clone()))
            .collect()
    };
    assert_eq!(within(&book.bids, true), within(&truth.bids, true));
    assert_eq!(within(&book.asks, false), within(&truth.asks, false));
    let known = within(&truth.bids, true).len() + within(&truth.asks, false).len();
    assert!(known > 1000, "{known} levels compared");
    assert_eq!(sim.exchange.stats().source_gaps, 0);
}

#[test]
fn a_client_that_does_not_read_is_dropped_as_slow() {
    let Some(path) = pinion_testkit::data::require(USDM) else {
        return;
    };
    let mut config = LiveConfig::usdm();
    config.start_held = true;
    config.session_queue = 256;
    let sim = start(path, config);
    let mut ws = sim.ws("/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker/btcusdt@trade");
    sim.exchange.release();
    assert!(sim.exchange.wait_exhausted(Duration::from_secs(120)));
    assert_eq!(sim.exchange.stats().slow_disconnects, 1);
    // What was in flight arrives, then the connection ends without a close frame.
    set_timeout(&ws, Duration::from_secs(10));
    let mut frames = 0u64;
    let end = loop {
        match next(&mut ws) {
            Got::Text(_) => frames += 1,
            other => break other,
        }
    };
    assert!(matches!(end, Got::Broken | Got::Close(None)), "{end:?}");
    assert!(frames < sim.exchange.stats().frames_released);
}

#[test]
fn a_multi_symbol_synthetic_market_serves_every_symbol() {
    use pinion_exchange_sim::MergedSource;
    use pinion_feed::FrameSource;
    use pinion_feed::synth::{SynthConfig, SynthMarket};

    let symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let mut config = LiveConfig::spot();
    config.start_held = true;
    let exchange = LiveExchange::start(
        "127.0.0.1:0".parse().expect("addr"),
        config,
        Some(tls.server_config.clone()),
        move || {
            let sources = symbols
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let market = SynthMarket::new(SynthConfig {
                        symbol: (*s).to_owned(),
                        messages: 3_000,
                        seed: 11 + i as u64,
                        ..SynthConfig::default()
                    })
                    .expect("synthetic market");
                    Box::new(market) as Box<dyn FrameSource + Send>
                })
                .collect();
            Ok(Box::new(MergedSource::new(sources)) as Box<dyn FrameSource + Send>)
        },
    )
    .expect("start");
    let mut roots = RootCertStore::empty();
    roots.add(tls.certificate.clone()).expect("trust");
    let sim = Sim {
        exchange,
        client: Arc::new(
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ),
    };
    let streams: Vec<String> = symbols
        .iter()
        .map(|s| format!("{}@depth@100ms", s.to_lowercase()))
        .collect();
    let mut ws = sim.ws(&format!("/stream?streams={}", streams.join("/")));
    sim.exchange.release();
    assert!(sim.exchange.wait_exhausted(Duration::from_secs(60)));
    let mut https = sim.https();
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for s in symbols {
        let truth = sim_book(&mut https, s);
        let depth = https
            .get(&format!("/api/v3/depth?symbol={s}&limit=5000"))
            .body;
        assert_eq!(
            RefBook::from_levels(
                depth["lastUpdateId"].as_u64().expect("id"),
                &depth["bids"],
                &depth["asks"]
            ),
            truth
        );
        last.insert(s.to_lowercase(), truth.id);
    }
    // Every symbol's diffs arrive, each chain contiguous, up to that symbol's final id.
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    while seen.iter().filter(|(s, u)| last.get(*s) == Some(u)).count() < symbols.len() {
        let Got::Text(t) = next(&mut ws) else {
            panic!("stream ended early")
        };
        let v: Value = serde_json::from_str(&t).expect("json");
        let symbol = v["stream"]
            .as_str()
            .expect("stream")
            .split('@')
            .next()
            .expect("symbol")
            .to_owned();
        let (first, u) = (
            v["data"]["U"].as_u64().expect("U"),
            v["data"]["u"].as_u64().expect("u"),
        );
        if let Some(prev) = seen.get(&symbol) {
            assert_eq!(first, prev + 1, "{symbol}");
        }
        seen.insert(symbol, u);
    }
    assert_eq!(
        sim.exchange.stats().open_symbols,
        symbols.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
    let info = https.get("/api/v3/exchangeInfo").body;
    assert_eq!(info["symbols"].as_array().map(Vec::len), Some(3));
}

#[test]
fn the_live_command_prints_its_address_and_certificate() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use std::io::BufRead;

    let dir = std::env::temp_dir().join(format!("pinion-sim-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pem = dir.join("sim.pem");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pinion-exchange-sim"))
        .args([
            "live",
            "--synthetic",
            "--symbols",
            "2",
            "--messages",
            "2000",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--rate", "5000", "--tls", "--cert-out"])
        .arg(&pem)
        .args(["--faults", "kill:1", "--seed", "3"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run the binary");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening ")
        .expect("listening line")
        .parse()
        .expect("address");
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&pem).expect("PEM"))
        .expect("trust");
    let client = Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let connect = || {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let conn = ClientConnection::new(
            Arc::clone(&client),
            ServerName::try_from("localhost").expect("name"),
        )
        .expect("tls");
        let url = format!("wss://localhost:{}/ws", addr.port());
        tungstenite::client::client(url, StreamOwned::new(conn, tcp))
            .map(|(ws, _)| ws)
            .map_err(|e| e.to_string())
    };
    // The first connection is killed right after its handshake (a loaded machine may see the
    // end before the handshake's answer is read); the second one is served.
    if let Ok(mut killed) = connect() {
        assert!(matches!(next(&mut killed), Got::Broken | Got::Close(None)));
    }
    let mut ws = connect().unwrap_or_else(|e| panic!("second connection: {e}"));
    send(
        &mut ws,
        r#"{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":2}"#,
    );
    assert_eq!(next(&mut ws), Got::Text(r#"{"result":null,"id":2}"#.into()));
    let outcome = next(&mut ws);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    match outcome {
        Got::Text(t) => assert!(
            t.starts_with(r#"{"e":"trade","#) && t.contains(r#""s":"ETHUSDT""#),
            "{t}"
        ),
        other => panic!("{other:?}"),
    }
}

/// One run with `rdrop` on the depth stream, `noack:1` and `mute` on the trades: the depth
/// diffs session 0 received, and the number of trades it got.
fn random_drop_run(seed: u64) -> (Vec<(u64, u64)>, usize) {
    let spec = format!("rdrop:{DEPTH}:100#0,noack:1#0,mute:btcusdt@trade:5#0");
    let sim = spot(|c| {
        // The session's queue holds every frame it subscribed to, so it cannot overflow.
        c.pacing = LivePacing::AsFastAsPossible;
        c.start_held = true;
        c.faults = FaultPlan::parse(&spec, seed).expect("spec");
    })
    .expect("recording present");
    let mut ws = sim.ws("/stream");
    send(
        &mut ws,
        &format!(r#"{{"method":"SUBSCRIBE","params":["{DEPTH}","btcusdt@trade"],"id":1}}"#),
    );
    send(&mut ws, r#"{"method":"LIST_SUBSCRIPTIONS","id":2}"#);
    // The first request is carried out but not answered: the first answer is the second's.
    assert_eq!(
        next(&mut ws),
        Got::Text(format!(
            r#"{{"result":["{DEPTH}","btcusdt@trade"],"id":2}}"#
        ))
    );
    sim.exchange.release();
    assert!(sim.exchange.wait_exhausted(Duration::from_secs(120)));
    let (mut diffs, mut trades) = (Vec::new(), 0);
    set_timeout(&ws, Duration::from_secs(2));
    loop {
        match next(&mut ws) {
            Got::Text(t) if t.contains("@trade") => trades += 1,
            Got::Text(t) => {
                let (first, u, _) = diff_of(&t).expect("diff");
                diffs.push((first, u));
            }
            Got::Timeout => break,
            other => panic!("{other:?}"),
        }
    }
    let stats = sim.exchange.stats();
    assert_eq!(stats.fault_no_acks, 1);
    assert!(stats.fault_muted > 1000);
    assert_eq!(
        stats.fault_random_drops + diffs.len() as u64,
        RELEASED_DIFFS
    );
    (diffs, trades)
}

/// Depth diffs the market releases: the recording's first two end before the snapshot's id.
const RELEASED_DIFFS: u64 = 3_451 - 2;

#[test]
fn random_faults_are_the_same_for_the_same_seed() {
    if pinion_testkit::data::require(RECORDING).is_none() {
        return;
    }
    let (a, trades) = random_drop_run(5);
    let (b, _) = random_drop_run(5);
    let (c, _) = random_drop_run(6);
    assert_eq!(trades, 5, "the muted stream stops after its 5th frame");
    assert_eq!(a, b, "same seed, same drops");
    assert_ne!(a, c, "another seed, other drops");
    // About one in ten is dropped.
    let dropped = RELEASED_DIFFS - a.len() as u64;
    assert!((200..500).contains(&dropped), "{dropped} dropped");
}

#[test]
fn a_client_that_does_not_answer_pings_is_dropped() {
    let Some(sim) = spot(|c| {
        c.ping_interval = Some(Duration::from_millis(200));
        c.pong_timeout = Duration::from_millis(500);
    }) else {
        return;
    };
    let mut ws = sim.ws("/ws");
    // Not reading means not answering the pings.
    std::thread::sleep(Duration::from_millis(1500));
    // Nothing was subscribed: the first thing read (after the pings) is the close.
    let end = next(&mut ws);
    assert_eq!(end, Got::Close(Some(1008)));
    assert_eq!(sim.exchange.stats().pong_timeouts, 1);
}

#[test]
fn four_symbols_of_a_real_recording_each_open_at_their_own_snapshot() {
    let Some(path) = pinion_testkit::data::require("binance/spot-multi-20211012.cryptofeed.ws")
    else {
        return;
    };
    // The recording's last diff id per symbol, read independently of the simulator.
    let mut source = pinion_feed::source::open(&path).expect("open");
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(rec) = source.next_record().expect("read") {
        let Ok(text) = std::str::from_utf8(rec.payload) else {
            continue;
        };
        if let Some((_, u, data)) = diff_of(text) {
            last.insert(data["s"].as_str().expect("symbol").to_owned(), u);
        }
    }
    assert_eq!(last.len(), 4);
    let mut config = LiveConfig::spot();
    config.pacing = LivePacing::AsFastAsPossible;
    let sim = start(path, config);
    assert!(sim.exchange.wait_exhausted(Duration::from_secs(60)));
    let stats = sim.exchange.stats();
    assert_eq!(stats.open_symbols, last.keys().cloned().collect::<Vec<_>>());
    assert_eq!(stats.source_gaps, 0);
    let mut https = sim.https();
    for (symbol, u) in &last {
        let truth = sim.exchange.truth(symbol).expect("truth");
        assert_eq!(truth.last_update_id, *u, "{symbol}");
        let best_bid: f64 = truth.bids[0].0.parse().expect("bid");
        let best_ask: f64 = truth.asks[0].0.parse().expect("ask");
        assert!(best_bid < best_ask, "{symbol} is not crossed");
        let depth = https
            .get(&format!("/api/v3/depth?symbol={symbol}&limit=5000"))
            .body;
        assert_eq!(depth["lastUpdateId"].as_u64(), Some(*u));
        // The REST body keeps the exchange's spelling (eight decimals).
        let p = depth["bids"][0][0].as_str().expect("price");
        assert_eq!(p.split('.').nth(1).map(str::len), Some(8), "{p}");
        assert_eq!(norm(p), truth.bids[0].0);
    }
}

#[test]
fn the_stream_count_per_connection_is_capped() {
    let Some(sim) = spot(|c| c.max_streams = 3) else {
        return;
    };
    assert_eq!(
        sim.try_ws("/stream?streams=a@trade/b@trade/c@trade/d@trade")
            .err(),
        Some(Some(400))
    );
    let mut ws = sim.ws("/stream?streams=a@trade/b@trade");
    send(
        &mut ws,
        r#"{"method":"SUBSCRIBE","params":["c@trade","d@trade"],"id":9}"#,
    );
    let Got::Text(t) = next(&mut ws) else {
        panic!("no answer")
    };
    let v: Value = serde_json::from_str(&t).expect("json");
    assert_eq!(
        (v["error"]["code"].as_i64(), v["id"].as_i64()),
        (Some(2), Some(9))
    );
    send(
        &mut ws,
        r#"{"method":"SUBSCRIBE","params":["c@trade","a@trade"],"id":10}"#,
    );
    assert_eq!(
        next(&mut ws),
        Got::Text(r#"{"result":null,"id":10}"#.into())
    );
    send(
        &mut ws,
        r#"{"method":"UNSUBSCRIBE","params":["a@trade"],"id":11}"#,
    );
    assert_eq!(
        next(&mut ws),
        Got::Text(r#"{"result":null,"id":11}"#.into())
    );
    std::thread::sleep(Duration::from_millis(1100));
    send(&mut ws, r#"{"method":"LIST_SUBSCRIPTIONS","id":12}"#);
    assert_eq!(
        next(&mut ws),
        Got::Text(r#"{"result":["b@trade","c@trade"],"id":12}"#.into())
    );
}

#[test]
fn a_bybit_client_gets_a_snapshot_from_the_truth_then_deltas() {
    let Some(path) =
        pinion_testkit::data::require("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst")
    else {
        return;
    };
    let mut config = LiveConfig::spot();
    config.pacing = LivePacing::Rate {
        frames_per_sec: 1_000.0,
    };
    let sim = start(path, config);
    assert!(
        sim.exchange
            .wait_open("linear:BTCUSDT", Duration::from_secs(30))
    );
    assert!(sim.exchange.wait_released(800, Duration::from_secs(30)));
    assert!(!sim.exchange.is_exhausted());
    let mut ws = sim.ws("/v5/public/linear");
    send(
        &mut ws,
        r#"{"op":"subscribe","args":["orderbook.200.BTCUSDT"],"req_id":"s1"}"#,
    );
    assert_eq!(
        next(&mut ws),
        Got::Text(
            r#"{"success":true,"ret_msg":"","conn_id":"sim-0","req_id":"s1","op":"subscribe"}"#
                .into()
        )
    );
    let Got::Text(first) = next(&mut ws) else {
        panic!("no snapshot")
    };
    let snapshot: Value = serde_json::from_str(&first).expect("json");
    assert_eq!(snapshot["topic"], "orderbook.200.BTCUSDT");
    assert_eq!(snapshot["type"], "snapshot");
    let data = &snapshot["data"];
    assert!(data["b"].as_array().map(Vec::len) > Some(100));
    let mut book = RefBook::from_levels(data["u"].as_u64().expect("u"), &data["b"], &data["a"]);
    send(&mut ws, r#"{"op":"ping","req_id":"p1"}"#);
    let (mut deltas, mut pong) = (0, false);
    assert!(sim.exchange.wait_exhausted(Duration::from_secs(60)));
    let last = sim
        .exchange
        .truth("LINEAR:BTCUSDT")
        .expect("truth")
        .last_update_id;
    while book.id < last {
        let Got::Text(t) = next(&mut ws) else {
            panic!("stream ended before {last}")
        };
        let v: Value = serde_json::from_str(&t).expect("json");
        if v["op"] == "ping" {
            assert_eq!(v["ret_msg"], "pong");
            assert_eq!(v["req_id"], "p1");
            pong = true;
            continue;
        }
        assert_eq!(
            v["topic"], "orderbook.200.BTCUSDT",
            "only the subscribed topic"
        );
        assert_eq!(v["type"], "delta");
        let u = v["data"]["u"].as_u64().expect("u");
        assert_eq!(u, book.id + 1, "each delta follows the snapshot's u");
        book.set(&v["data"]["b"], &v["data"]["a"]);
        book.id = u;
        deltas += 1;
    }
    assert!(pong && deltas > 10, "{deltas} deltas");
    let mut https = sim.https();
    assert_eq!(sim_book(&mut https, "linear:BTCUSDT"), book);
    // The spot book of the same symbol is another book.
    assert_ne!(
        sim.exchange.truth("spot:BTCUSDT").map(|t| t.last_update_id),
        Some(last)
    );
    assert_eq!(sim.exchange.stats().source_gaps, 0);
}
