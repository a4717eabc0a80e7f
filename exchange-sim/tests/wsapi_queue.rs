//! The queue model end to end, on a scripted market: the live exchange's market thread reads
//! a hand-written source (REST snapshots, depth diffs, trade prints), held after the symbols
//! open until the test's orders rest, so every fill below is exact and the same every run.
//!
//! - `resting_orders_move_through_the_queue_as_documented`: a bid behind 2 BTC at its price:
//!   a print of 1.5 leaves it 0.5 behind, the depth then showing the print moves nothing, a
//!   cancel of half the level takes half of what is ahead, a print of 0.75 fills 0.5 of it
//!   (`PARTIALLY_FILLED`), a buyer-aggressor print at its price is not its side, and a print
//!   below its price fills the rest. An ask behind 5 fills 0.1 from a print of 5.1, then the
//!   rest when the truth's bid reaches it. On a symbol with no prints (ETHUSDT) the level's
//!   depletion counts as traded. Every fill is checked in the reports and in `/sim/account`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use pinion_core::{ConnId, ConnInfo, RawRecord, RecordKind};
use pinion_exchange_sim::{LivePacing, WsApiConfig};
use pinion_feed::{FrameSource, SourceError};
use serde_json::{Value, json};

/// Fixed records; those after `hold_at` wait for `go`.
struct Scripted {
    records: Vec<(RecordKind, String, String)>,
    at: usize,
    hold_at: usize,
    go: Arc<AtomicBool>,
    conns: Vec<ConnInfo>,
}

impl FrameSource for Scripted {
    fn connections(&self) -> &[ConnInfo] {
        &self.conns
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        if self.at == self.hold_at {
            // Held until the test says go (at most 20 s, so a failed test still ends).
            let until = std::time::Instant::now() + Duration::from_secs(20);
            while !self.go.load(Ordering::SeqCst) && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let Some((kind, meta, payload)) = self.records.get(self.at) else {
            return Ok(None);
        };
        self.at += 1;
        let t = 1_723_161_240_000_000_000 + self.at as u64 * 1_000_000;
        Ok(Some(RawRecord::new(
            t,
            ConnId(0),
            *kind,
            meta.as_bytes(),
            payload.as_bytes(),
        )))
    }
}

/// A combined-stream frame, `stream` first as the exchange writes it.
fn envelope(stream: &str, data: &Value) -> String {
    format!(r#"{{"stream":"{stream}","data":{data}}}"#)
}

fn snapshot(symbol: &str, id: u64, bids: Value, asks: Value) -> (RecordKind, String, String) {
    (
        RecordKind::RestSnapshot,
        format!("https://api.binance.com/api/v3/depth?symbol={symbol}&limit=1000"),
        json!({"lastUpdateId": id, "bids": bids, "asks": asks}).to_string(),
    )
}

fn diff(symbol: &str, u: u64, bids: Value, asks: Value) -> (RecordKind, String, String) {
    let stream = format!("{}@depth@100ms", symbol.to_ascii_lowercase());
    let data = json!({"e": "depthUpdate", "E": u, "s": symbol, "U": u, "u": u,
                      "b": bids, "a": asks});
    (RecordKind::Frame, String::new(), envelope(&stream, &data))
}

fn print(id: u64, price: &str, qty: &str, buyer_maker: bool) -> (RecordKind, String, String) {
    let data = json!({"e": "trade", "E": id, "s": "BTCUSDT", "t": id, "p": price, "q": qty,
                      "T": id, "m": buyer_maker, "M": true});
    (
        RecordKind::Frame,
        String::new(),
        envelope("btcusdt@trade", &data),
    )
}

fn script(go: Arc<AtomicBool>) -> Scripted {
    let records = vec![
        snapshot(
            "BTCUSDT",
            100,
            json!([["100.00", "2.0"], ["99.99", "5"]]),
            json!([["100.01", "3"], ["100.02", "5"]]),
        ),
        diff("BTCUSDT", 101, json!([]), json!([])),
        snapshot(
            "ETHUSDT",
            50,
            json!([["10.00", "3"]]),
            json!([["10.01", "3"]]),
        ),
        diff("ETHUSDT", 51, json!([]), json!([])),
        // Held here until the orders rest.
        print(1, "100.00", "1.5", true),
        diff("BTCUSDT", 102, json!([["100.00", "0.5"]]), json!([])),
        diff("BTCUSDT", 103, json!([["100.00", "0.25"]]), json!([])),
        print(2, "100.00", "0.75", true),
        print(3, "100.00", "0.3", false),
        diff("BTCUSDT", 104, json!([["100.00", "0"]]), json!([])),
        print(4, "99.99", "0.01", true),
        diff("BTCUSDT", 105, json!([]), json!([["100.01", "0"]])),
        print(5, "100.02", "5.1", false),
        diff("BTCUSDT", 106, json!([["100.02", "1"]]), json!([])),
        diff("ETHUSDT", 52, json!([["10.00", "1"]]), json!([])),
        diff("ETHUSDT", 53, json!([["10.00", "0"]]), json!([])),
        diff("ETHUSDT", 54, json!([["10.00", "0.5"]]), json!([])),
        diff("ETHUSDT", 55, json!([["10.00", "0"]]), json!([])),
    ];
    Scripted {
        records,
        at: 0,
        hold_at: 4,
        go,
        conns: vec![ConnInfo {
            id: ConnId(0),
            venue: None,
            url: "wss://stream.binance.com:9443/stream".into(),
        }],
    }
}

/// The `TRADE` reports of client order `id`: `(l, z, X)`.
fn fills(events: &[Value], id: &str) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter(|e| e["x"] == "TRADE" && e["c"] == id)
        .map(|e| {
            (
                e["l"].as_str().unwrap().to_owned(),
                e["z"].as_str().unwrap().to_owned(),
                e["X"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn resting_orders_move_through_the_queue_as_documented() {
    let go = Arc::new(AtomicBool::new(false));
    let source_go = Arc::clone(&go);
    let mut api = WsApiConfig::new(API_KEY);
    api.balances = vec![
        ("USDT".into(), "1000".into()),
        ("BTC".into(), "10".into()),
        ("ETH".into(), "10".into()),
    ];
    let sim = start_from(
        move || Ok(Box::new(script(Arc::clone(&source_go))) as Box<dyn FrameSource + Send>),
        api,
        LivePacing::AsFastAsPossible,
        &["BTCUSDT", "ETHUSDT"],
    );
    let mut c = sim.client();
    c.logon();
    for (symbol, side, price, qty, id) in [
        ("BTCUSDT", "BUY", "100.00", "1", "bid"),
        ("BTCUSDT", "SELL", "100.02", "0.4", "ask"),
        ("ETHUSDT", "BUY", "10.00", "2", "eth"),
    ] {
        let r = c.call(
            "order.place",
            json!({"symbol": symbol, "side": side, "type": "LIMIT", "timeInForce": "GTC",
                   "price": price, "quantity": qty, "newClientOrderId": id,
                   "timestamp": now_ms()}),
        );
        assert_eq!(r["result"]["status"], "NEW", "{r}");
    }
    go.store(true, Ordering::SeqCst);
    assert!(sim.exchange.wait_exhausted(Duration::from_secs(10)));
    c.events_until(Duration::from_secs(5), |e| {
        e.iter().filter(|e| e["x"] == "TRADE").count() >= 5
            && e.last()
                .is_some_and(|e| e["e"] == "outboundAccountPosition")
    });
    let s = |a: &str, b: &str, x: &str| (a.to_owned(), b.to_owned(), x.to_owned());
    assert_eq!(
        fills(&c.events, "bid"),
        [
            s("0.50000000", "0.50000000", "PARTIALLY_FILLED"),
            s("0.50000000", "1.00000000", "FILLED"),
        ]
    );
    assert_eq!(
        fills(&c.events, "ask"),
        [
            s("0.10000000", "0.10000000", "PARTIALLY_FILLED"),
            s("0.30000000", "0.40000000", "FILLED"),
        ]
    );
    assert_eq!(
        fills(&c.events, "eth"),
        [s("0.50000000", "0.50000000", "PARTIALLY_FILLED")]
    );
    for e in c.events.iter().filter(|e| e["x"] == "TRADE") {
        assert_eq!(
            (e["m"].clone(), e["L"].clone()),
            (json!(true), e["p"].clone())
        );
    }
    let account = same_account(&sim);
    trades_match_reports(&account, &c.events);
    let status: Vec<(&str, &str, &str)> = account
        .orders
        .iter()
        .map(|o| {
            (
                o.client_order_id.as_str(),
                o.executed_qty.as_str(),
                o.status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            ("bid", "1", "FILLED"),
            ("ask", "0.4", "FILLED"),
            ("eth", "0.5", "PARTIALLY_FILLED")
        ]
    );
    // USDT: −100 for the bid, +40.008 for the ask, −20 locked by the ETH bid, 5 of it spent.
    let usdt = account.balances.iter().find(|b| b.asset == "USDT").unwrap();
    assert_eq!(
        (usdt.free.as_str(), usdt.locked.as_str()),
        ("920.008", "15")
    );
}
