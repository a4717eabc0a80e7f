//! Self-trade prevention end to end, over TLS on loopback, on a still market: a scripted
//! source opens BTCUSDT (bids 100.00 × 2, 99.99 × 5; asks 100.05 × 3, 100.06 × 5) and ends,
//! so the truth stands and every outcome is exact.
//!
//! - `expire_maker_ends_the_resting_order_and_the_incoming_one_trades_on`: an own bid inside
//!   the spread (100.02, met before any market quantity) and a sell of 3 to 100.00 with
//!   `EXPIRE_MAKER`: the bid ends `EXPIRED_IN_MATCH` (its lock released, its
//!   `TRADE_PREVENTION` report with `v`, `A`, `B`, `U`, `pl`/`pL`/`pY`), the sell takes the
//!   market's 2 at 100.00 and rests 1; the answer lists the prevented match; no trade of the
//!   bid; balances exact.
//! - `expire_taker_stops_the_incoming_order_behind_the_market_queue`: an own bid at 100.00
//!   queued behind the market's 2; a sell of 4 to 99.99 with `EXPIRE_TAKER` takes those 2,
//!   then meets the bid: the sell ends `EXPIRED_IN_MATCH` with 2 executed and 2 prevented,
//!   the bid keeps resting.
//! - `expire_both_ends_both`, `none_trades_with_itself` (one trade id, both sides in the
//!   account's trades), `decrement_takes_the_smaller_remainder_from_both`.
//! - `the_default_mode_applies_and_a_mode_not_allowed_is_refused`: with `EXPIRE_MAKER`,
//!   `EXPIRE_TAKER`, `EXPIRE_BOTH` allowed, an order without a mode gets the default, `NONE`
//!   is refused with `-1013`, an unknown name with `-1100`; `exchangeInfo` says the same; a
//!   `LIMIT_MAKER` that would meet an own order is refused as taking.
//! - `a_symbol_with_modes_of_its_own_shows_and_applies_them`: BTCUSDT's own default and
//!   allowed modes replace the account's, in `exchangeInfo` and for its orders; every order
//!   request is counted, the refused one too.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use pinion_core::{ConnId, ConnInfo, RawRecord, RecordKind};
use pinion_exchange_sim::{Dec, LivePacing, SimAccount, StpMode, SymbolStp, WsApiConfig};
use pinion_feed::{FrameSource, SourceError};
use serde_json::{Value, json};

/// A snapshot and one diff of BTCUSDT, then the end.
struct Still {
    records: Vec<(RecordKind, String, String)>,
    at: usize,
    conns: Vec<ConnInfo>,
}

impl FrameSource for Still {
    fn connections(&self) -> &[ConnInfo] {
        &self.conns
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
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

fn still() -> Still {
    let snapshot = json!({"lastUpdateId": 100,
        "bids": [["100.00", "2"], ["99.99", "5"]],
        "asks": [["100.05", "3"], ["100.06", "5"]]});
    let data = json!({"e": "depthUpdate", "E": 101, "s": "BTCUSDT", "U": 101, "u": 101,
        "b": [], "a": []});
    // `stream` first, as the exchange writes the envelope.
    let diff = format!(r#"{{"stream":"btcusdt@depth@100ms","data":{data}}}"#);
    Still {
        records: vec![
            (
                RecordKind::RestSnapshot,
                "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000".into(),
                snapshot.to_string(),
            ),
            (RecordKind::Frame, String::new(), diff),
        ],
        at: 0,
        conns: vec![ConnInfo {
            id: ConnId(0),
            venue: None,
            url: "wss://stream.binance.com:9443/stream".into(),
        }],
    }
}

fn api() -> WsApiConfig {
    let mut api = WsApiConfig::new(API_KEY);
    api.balances = vec![("USDT".into(), "1000".into()), ("BTC".into(), "10".into())];
    api
}

fn sim_with(api: WsApiConfig) -> Sim {
    let sim = start_from(
        || Ok(Box::new(still()) as Box<dyn FrameSource + Send>),
        api,
        LivePacing::AsFastAsPossible,
        &["BTCUSDT"],
    );
    assert!(sim.exchange.wait_exhausted(Duration::from_secs(10)));
    sim
}

/// A limit order: its answer (`FULL`).
fn limit(c: &mut Client, id: &str, side: &str, price: &str, qty: &str, stp: Option<&str>) -> Value {
    let mut params = json!({"symbol": "BTCUSDT", "side": side, "type": "LIMIT",
        "timeInForce": "GTC", "price": price, "quantity": qty, "newClientOrderId": id,
        "newOrderRespType": "FULL", "timestamp": now_ms()});
    if let Some(stp) = stp {
        params["selfTradePreventionMode"] = json!(stp);
    }
    c.call("order.place", params)
}

/// Places the resting bid and the crossing sell; the sell's answer.
fn bid_then_sell(c: &mut Client, bid: (&str, &str), sell: (&str, &str), stp: &str) -> Value {
    let r = limit(c, "bid", "BUY", bid.0, bid.1, Some("NONE"));
    assert_eq!(r["result"]["status"], "NEW", "{r}");
    let r = limit(c, "ask", "SELL", sell.0, sell.1, Some(stp));
    assert_eq!(r["status"], 200, "{r}");
    r["result"].clone()
}

fn order<'a>(account: &'a SimAccount, id: &str) -> &'a pinion_exchange_sim::SimOrder {
    account
        .orders
        .iter()
        .find(|o| o.client_order_id == id)
        .expect("order")
}

fn d(text: &str) -> Dec {
    Dec::parse(text).expect("decimal")
}

/// The `TRADE_PREVENTION` reports, after waiting for `n` of them.
fn preventions(c: &mut Client, n: usize) -> Vec<Value> {
    c.events_until(Duration::from_secs(5), |e| {
        e.iter().filter(|e| e["x"] == "TRADE_PREVENTION").count() >= n
    });
    c.events
        .iter()
        .filter(|e| e["x"] == "TRADE_PREVENTION")
        .cloned()
        .collect()
}

/// Every order's status, executed and prevented quantity at the exchange, as
/// `order.status` answers them and `/sim/account` holds them.
fn statuses(c: &mut Client, account: &SimAccount) -> Vec<(String, String, String, Option<String>)> {
    let mut out = Vec::new();
    for o in &account.orders {
        let r = c.call(
            "order.status",
            json!({"symbol": "BTCUSDT", "orderId": o.order_id, "timestamp": now_ms()}),
        );
        let r = &r["result"];
        assert_eq!(r["status"], json!(o.status), "{r}");
        assert_eq!(dec(&r["executedQty"]), d(&o.executed_qty), "{r}");
        let prevented = r.get("preventedQuantity").map(|q| dec(q).normalized());
        assert_eq!(prevented, o.prevented_qty, "{r}");
        out.push((
            o.client_order_id.clone(),
            o.status.clone(),
            o.executed_qty.clone(),
            prevented,
        ));
    }
    out
}

fn row(
    id: &str,
    status: &str,
    executed: &str,
    prevented: Option<&str>,
) -> (String, String, String, Option<String>) {
    (
        id.into(),
        status.into(),
        executed.into(),
        prevented.map(str::to_owned),
    )
}

#[test]
fn expire_maker_ends_the_resting_order_and_the_incoming_one_trades_on() {
    let sim = sim_with(api());
    let mut c = sim.client();
    c.logon();
    let r = bid_then_sell(&mut c, ("100.02", "1"), ("100.00", "3"), "EXPIRE_MAKER");
    let account = same_account(&sim);
    let bid = order(&account, "bid").order_id;
    let ask = order(&account, "ask").order_id;
    // The sell met the bid first (inside the spread), then took the market's 2 at 100.00.
    assert_eq!(r["status"], "PARTIALLY_FILLED", "{r}");
    assert_eq!(r["executedQty"], "2.00000000");
    assert_eq!(r["fills"].as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(r["fills"][0]["price"], "100.00000000");
    assert_eq!(
        r["preventedMatches"],
        json!([{"preventedMatchId": 0, "makerOrderId": bid, "price": "100.02000000",
                "makerPreventedQuantity": "1.00000000"}])
    );
    assert!(
        r.get("preventedQuantity").is_none(),
        "the taker lost nothing: {r}"
    );
    // The bid's report: expired in match, nothing executed, what would have traded.
    let p = preventions(&mut c, 1);
    assert_eq!(p.len(), 1, "{p:?}");
    let e = &p[0];
    assert_eq!(
        (&e["c"], &e["X"], &e["l"], &e["L"], &e["z"], &e["w"]),
        (
            &json!("bid"),
            &json!("EXPIRED_IN_MATCH"),
            &json!("0.00000000"),
            &json!("0.00000000"),
            &json!("0.00000000"),
            &json!(false)
        )
    );
    assert_eq!(
        (&e["v"], &e["A"], &e["B"], &e["U"], &e["Cs"]),
        (
            &json!(0),
            &json!("1.00000000"),
            &json!("1.00000000"),
            &json!(ask),
            &json!("BTCUSDT")
        )
    );
    assert!(e.get("u").is_none(), "no trade group: {e}");
    assert_eq!(
        (&e["pl"], &e["pL"], &e["pY"]),
        (
            &json!("1.00000000"),
            &json!("100.02000000"),
            &json!("100.02000000")
        )
    );
    // The account: one trade, the sell's; balances as the two orders left them (the
    // `order.status` answers come after every event, so all are read then).
    assert_eq!(
        statuses(&mut c, &account),
        [
            row("bid", "EXPIRED_IN_MATCH", "0", Some("1")),
            row("ask", "PARTIALLY_FILLED", "2", None)
        ]
    );
    trades_match_reports(&account, &c.events);
    assert_eq!(account.trades.len(), 1);
    assert_eq!(account.trades[0].order_id, ask);
    assert_eq!(balance(&account, "USDT"), (d("1200"), d("0")));
    assert_eq!(balance(&account, "BTC"), (d("7"), d("1")));
    // The last position the stream sent is the account's.
    let last = c
        .events
        .iter()
        .rev()
        .find(|e| e["e"] == "outboundAccountPosition")
        .expect("a position");
    for b in last["B"].as_array().expect("balances") {
        let asset = b["a"].as_str().expect("asset");
        assert_eq!(
            (dec(&b["f"]), dec(&b["l"])),
            balance(&account, asset),
            "{asset}"
        );
    }
}

#[test]
fn expire_taker_stops_the_incoming_order_behind_the_market_queue() {
    let sim = sim_with(api());
    let mut c = sim.client();
    c.logon();
    let r = bid_then_sell(&mut c, ("100.00", "1"), ("99.99", "4"), "EXPIRE_TAKER");
    let account = same_account(&sim);
    let bid = order(&account, "bid").order_id;
    assert_eq!(r["status"], "EXPIRED_IN_MATCH", "{r}");
    assert_eq!(r["executedQty"], "2.00000000");
    assert_eq!(r["preventedQuantity"], "2.00000000");
    assert!(r.get("preventedMatchId").is_none(), "{r}");
    assert_eq!(
        r["preventedMatches"],
        json!([{"preventedMatchId": 0, "makerOrderId": bid, "price": "100.00000000",
                "takerPreventedQuantity": "2.00000000"}])
    );
    let p = preventions(&mut c, 1);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        (&p[0]["c"], &p[0]["X"], &p[0]["z"], &p[0]["A"], &p[0]["U"]),
        (
            &json!("ask"),
            &json!("EXPIRED_IN_MATCH"),
            &json!("2.00000000"),
            &json!("2.00000000"),
            &json!(bid)
        )
    );
    assert_eq!(
        statuses(&mut c, &account),
        [
            row("bid", "NEW", "0", None),
            row("ask", "EXPIRED_IN_MATCH", "2", Some("2"))
        ]
    );
    trades_match_reports(&account, &c.events);
    // The bid still locks its 100; the sell got 200 for 2 and locks nothing.
    assert_eq!(balance(&account, "USDT"), (d("1100"), d("100")));
    assert_eq!(balance(&account, "BTC"), (d("8"), d("0")));
}

#[test]
fn expire_both_ends_both() {
    let sim = sim_with(api());
    let mut c = sim.client();
    c.logon();
    let r = bid_then_sell(&mut c, ("100.02", "1"), ("100.00", "3"), "EXPIRE_BOTH");
    let account = same_account(&sim);
    let bid = order(&account, "bid").order_id;
    assert_eq!(r["status"], "EXPIRED_IN_MATCH", "{r}");
    assert_eq!(r["fills"], json!([]));
    assert_eq!(
        r["preventedMatches"],
        json!([{"preventedMatchId": 0, "makerOrderId": bid, "price": "100.02000000",
                "takerPreventedQuantity": "3.00000000",
                "makerPreventedQuantity": "1.00000000"}])
    );
    let p = preventions(&mut c, 2);
    let who: Vec<(&Value, &Value)> = p.iter().map(|e| (&e["c"], &e["X"])).collect();
    assert_eq!(
        who,
        [
            (&json!("bid"), &json!("EXPIRED_IN_MATCH")),
            (&json!("ask"), &json!("EXPIRED_IN_MATCH"))
        ]
    );
    assert!(account.trades.is_empty());
    assert_eq!(
        statuses(&mut c, &account),
        [
            row("bid", "EXPIRED_IN_MATCH", "0", Some("1")),
            row("ask", "EXPIRED_IN_MATCH", "0", Some("3"))
        ]
    );
    assert_eq!(balance(&account, "USDT"), (d("1000"), d("0")));
    assert_eq!(balance(&account, "BTC"), (d("10"), d("0")));
}

#[test]
fn none_trades_with_itself() {
    let sim = sim_with(api());
    let mut c = sim.client();
    c.logon();
    let r = bid_then_sell(&mut c, ("100.02", "1"), ("100.00", "3"), "NONE");
    let account = same_account(&sim);
    let (bid, ask) = (
        order(&account, "bid").order_id,
        order(&account, "ask").order_id,
    );
    assert_eq!(r["status"], "FILLED", "{r}");
    assert!(r.get("preventedMatches").is_none(), "{r}");
    let fills: Vec<(&Value, &Value)> = r["fills"]
        .as_array()
        .expect("fills")
        .iter()
        .map(|f| (&f["price"], &f["qty"]))
        .collect();
    assert_eq!(
        fills,
        [
            (&json!("100.02000000"), &json!("1.00000000")),
            (&json!("100.00000000"), &json!("2.00000000"))
        ]
    );
    // The self-trade is one trade id, both sides the account's: the bid as maker, the sell
    // as taker.
    let sides: Vec<(u64, u64, &str, bool, bool)> = account
        .trades
        .iter()
        .map(|t| (t.id, t.order_id, t.qty.as_str(), t.is_buyer, t.is_maker))
        .collect();
    let self_id = account.trades[0].id;
    assert_eq!(
        sides,
        [
            (self_id, bid, "1", true, true),
            (self_id, ask, "1", false, false),
            (self_id + 1, ask, "2", false, false)
        ]
    );
    assert_eq!(r["fills"][0]["tradeId"], json!(self_id));
    assert_eq!(
        statuses(&mut c, &account),
        [
            row("bid", "FILLED", "1", None),
            row("ask", "FILLED", "3", None)
        ]
    );
    // Its reports: the bid's TRADE as maker and the sell's as taker, one trade id.
    let trades: Vec<(&Value, &Value, &Value, &Value)> = c
        .events
        .iter()
        .filter(|e| e["x"] == "TRADE")
        .map(|e| (&e["c"], &e["t"], &e["l"], &e["m"]))
        .collect();
    assert_eq!(
        trades,
        [
            (
                &json!("bid"),
                &json!(self_id),
                &json!("1.00000000"),
                &json!(true)
            ),
            (
                &json!("ask"),
                &json!(self_id),
                &json!("1.00000000"),
                &json!(false)
            ),
            (
                &json!("ask"),
                &json!(self_id + 1),
                &json!("2.00000000"),
                &json!(false)
            )
        ]
    );
    assert!(!c.events.iter().any(|e| e["x"] == "TRADE_PREVENTION"));
    // USDT: −100.02 + 100.02 + 200; BTC: +1 − 3.
    assert_eq!(balance(&account, "USDT"), (d("1200"), d("0")));
    assert_eq!(balance(&account, "BTC"), (d("8"), d("0")));
}

#[test]
fn decrement_takes_the_smaller_remainder_from_both() {
    let sim = sim_with(api());
    let mut c = sim.client();
    c.logon();
    let r = bid_then_sell(&mut c, ("100.02", "2"), ("100.00", "0.5"), "DECREMENT");
    let account = same_account(&sim);
    let bid = order(&account, "bid").order_id;
    assert_eq!(r["status"], "EXPIRED_IN_MATCH", "{r}");
    assert_eq!(
        r["preventedMatches"],
        json!([{"preventedMatchId": 0, "makerOrderId": bid, "price": "100.02000000",
                "takerPreventedQuantity": "0.50000000",
                "makerPreventedQuantity": "0.50000000"}])
    );
    let p = preventions(&mut c, 2);
    let who: Vec<(&Value, &Value, &Value)> =
        p.iter().map(|e| (&e["c"], &e["X"], &e["A"])).collect();
    assert_eq!(
        who,
        [
            (&json!("bid"), &json!("NEW"), &json!("0.50000000")),
            (
                &json!("ask"),
                &json!("EXPIRED_IN_MATCH"),
                &json!("0.50000000")
            )
        ]
    );
    assert!(account.trades.is_empty());
    assert_eq!(
        statuses(&mut c, &account),
        [
            row("bid", "NEW", "0", Some("0.5")),
            row("ask", "EXPIRED_IN_MATCH", "0", Some("0.5"))
        ]
    );
    // The bid keeps the lock of the 1.5 it may still buy.
    assert_eq!(balance(&account, "USDT"), (d("849.97"), d("150.03")));
    assert_eq!(balance(&account, "BTC"), (d("10"), d("0")));
    // A second match of the symbol numbers on.
    let r = limit(&mut c, "ask2", "SELL", "100.00", "0.1", Some("DECREMENT"));
    assert_eq!(
        r["result"]["preventedMatches"][0]["preventedMatchId"], 1,
        "{r}"
    );
}

/// `GET /api/v3/exchangeInfo` over TLS.
fn exchange_info(sim: &Sim) -> Value {
    let mut tls = sim.tls();
    tls.write_all(
        b"GET /api/v3/exchangeInfo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .expect("request");
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8(raw).expect("utf8");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    serde_json::from_str(text.split_once("\r\n\r\n").expect("body").1).expect("json")
}

#[test]
fn the_default_mode_applies_and_a_mode_not_allowed_is_refused() {
    let mut api = api();
    api.stp_default = StpMode::ExpireTaker;
    api.stp_allowed = vec![
        StpMode::ExpireTaker,
        StpMode::ExpireMaker,
        StpMode::ExpireBoth,
    ];
    let sim = sim_with(api);
    let info = exchange_info(&sim);
    let symbol = &info["symbols"][0];
    assert_eq!(symbol["defaultSelfTradePreventionMode"], "EXPIRE_TAKER");
    assert_eq!(
        symbol["allowedSelfTradePreventionModes"],
        json!(["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"])
    );
    let mut c = sim.client();
    c.logon();
    let r = limit(&mut c, "bid", "BUY", "100.02", "1", None);
    assert_eq!(
        r["result"]["selfTradePreventionMode"], "EXPIRE_TAKER",
        "{r}"
    );
    let r = limit(&mut c, "x", "SELL", "100.00", "1", Some("NONE"));
    assert_eq!(
        (r["status"].clone(), r["error"]["code"].clone()),
        (json!(400), json!(-1013)),
        "{r}"
    );
    assert_eq!(
        r["error"]["msg"],
        "This symbol does not allow the specified self-trade prevention mode."
    );
    let r = limit(&mut c, "x", "SELL", "100.00", "1", Some("EXPIRE_SOMETIMES"));
    assert_eq!(r["error"]["code"], -1100, "{r}");
    // A maker-only sell that would meet the own bid would take: refused, nothing prevented.
    let r = c.call(
        "order.place",
        json!({"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT_MAKER", "price": "100.01",
               "quantity": "1", "newClientOrderId": "lm", "timestamp": now_ms()}),
    );
    assert_eq!(r["error"]["code"], -2010, "{r}");
    // The default decides for an order without a mode: the sell expires, the bid rests.
    let r = limit(&mut c, "ask", "SELL", "100.00", "1", None);
    assert_eq!(r["result"]["status"], "EXPIRED_IN_MATCH", "{r}");
    let account = same_account(&sim);
    assert_eq!(
        statuses(&mut c, &account),
        [
            row("bid", "NEW", "0", None),
            row("ask", "EXPIRED_IN_MATCH", "0", Some("1"))
        ]
    );
    assert_eq!(balance(&account, "USDT"), (d("899.98"), d("100.02")));
    assert_eq!(balance(&account, "BTC"), (d("10"), d("0")));
}

#[test]
fn a_symbol_with_modes_of_its_own_shows_and_applies_them() {
    let mut api = api();
    // The account allows every mode by default, EXPIRE_MAKER without one; BTCUSDT does not.
    api.stp_symbols = vec![SymbolStp {
        symbol: "BTCUSDT".into(),
        default: StpMode::ExpireTaker,
        allowed: vec![StpMode::None, StpMode::ExpireTaker],
    }];
    let sim = sim_with(api);
    let info = exchange_info(&sim);
    let symbol = &info["symbols"][0];
    assert_eq!(symbol["symbol"], "BTCUSDT");
    assert_eq!(symbol["defaultSelfTradePreventionMode"], "EXPIRE_TAKER");
    assert_eq!(
        symbol["allowedSelfTradePreventionModes"],
        json!(["NONE", "EXPIRE_TAKER"])
    );
    let mut c = sim.client();
    c.logon();
    let r = limit(&mut c, "maker", "BUY", "99.00", "1", Some("EXPIRE_MAKER"));
    assert_eq!(r["error"]["code"], -1013, "{r}");
    let r = limit(&mut c, "taker", "BUY", "99.00", "1", Some("EXPIRE_TAKER"));
    assert_eq!(
        r["result"]["selfTradePreventionMode"], "EXPIRE_TAKER",
        "{r}"
    );
    let r = limit(&mut c, "default", "BUY", "99.00", "1", None);
    assert_eq!(
        r["result"]["selfTradePreventionMode"], "EXPIRE_TAKER",
        "{r}"
    );
    assert_eq!(sim.exchange.stats().ws_api_order_requests, 3);
}
