//! Stop-loss and take-profit orders and order lists on the WS API, against a scripted market:
//! the live exchange's market thread reads a hand-written source (a REST snapshot, then trade
//! prints), held at gates the test opens one by one, so each price path is exact.
//!
//! - `contingent_orders_are_accepted_or_refused_as_documented`: every contingent type with
//!   `stopPrice` and with `trailingDelta`; the refusals (`-1102` neither sent, `-1106` a price
//!   on a market kind or a stop on a plain order, `-1102` a `_LIMIT` without `timeInForce`,
//!   `-1013` `TRAILING_DELTA` and `PRICE_FILTER`, `-1100` a non-integer delta, `-2010` a stop
//!   the last price already meets, each side); the waiting order's answers, report and lock.
//! - `stops_trigger_on_the_last_trade_for_each_side_and_type`: eight orders, every type on
//!   each side; a rise to 100.50 triggers exactly the four whose stop is reached from below, a
//!   fall to 99.50 the other four; market kinds trade on the book, a `_LIMIT` that crosses
//!   trades, one that does not rests (`w` true, `W` set, its lock).
//! - `trailing_stops_track_the_best_price_from_activation`: a sell with a stop price ignores
//!   trades before the stop, starts tracking at it, follows the highs, triggers at exactly
//!   1 % below the last high; a buy without a stop tracks from the last price at placement.
//! - `oco_one_leg_takes_the_other_out`: a sell OCO whose limit maker fills (the stop-loss leg
//!   `EXPIRED`, `OCO_TRIGGER`), a buy OCO whose stop triggers (the limit maker expires first),
//!   one lock for both legs, the answer's shape, the event sequence, and the OCO refusals.
//! - `oto_and_otoco_place_pending_orders_when_the_working_order_fills`: a working order that
//!   fills at once (answered `PENDING_NEW`, then placed), an OTOCO whose working order rests
//!   then fills (its pair placed, then one leg triggers), and a working order that expires
//!   (`OTO_PHASE_ONE_EXPIRED`).
//! - `order_lists_are_queried_and_cancelled`: `orderList.status`, `openOrderLists.status`,
//!   `orderList.cancel` by client id, `order.cancel` of one leg cancelling its list, unknown
//!   lists refused.
//! - `partial_fills_cancels_and_refusals_at_trigger`: an OCO limit maker that fills in part
//!   takes the stop out (the list done, the lock down to what it still sells); an OTO
//!   cancelled with its order pending; a triggered market buy that cannot pay expires
//!   (`REJECTED`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use pinion_core::{ConnId, ConnInfo, RawRecord, RecordKind};
use pinion_exchange_sim::{LivePacing, WsApiConfig};
use pinion_feed::{FrameSource, SourceError};
use serde_json::{Value, json};

/// Fixed records; the source stops before each of `gates` until the test opens it.
struct Scripted {
    records: Vec<(RecordKind, String, String)>,
    at: usize,
    gates: Vec<usize>,
    gate: Gate,
    conns: Vec<ConnInfo>,
}

/// The test's side of the gates.
#[derive(Clone, Default)]
struct Gate {
    /// How many gates are open.
    opened: Arc<AtomicUsize>,
    /// 1 + the gate the source waits at.
    waiting: Arc<AtomicUsize>,
}

impl Gate {
    /// Opens the next gate and waits until the source reached the one after it or ran out.
    /// The market thread asks for a record only after it moved the orders on the one before,
    /// so every record between the gates has then been released and acted on.
    fn step(&self) {
        let n = self.opened.fetch_add(1, Ordering::SeqCst) + 1;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.waiting.load(Ordering::SeqCst) <= n {
            assert!(Instant::now() < deadline, "gate {n} not reached");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl FrameSource for Scripted {
    fn connections(&self) -> &[ConnInfo] {
        &self.conns
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        if let Some(k) = self.gates.iter().position(|g| *g == self.at) {
            self.gate.waiting.store(k + 1, Ordering::SeqCst);
            // Held until the test opens it (at most 20 s, so a failed test still ends).
            let until = Instant::now() + Duration::from_secs(20);
            while self.gate.opened.load(Ordering::SeqCst) <= k && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let Some((kind, meta, payload)) = self.records.get(self.at) else {
            self.gate.waiting.store(usize::MAX, Ordering::SeqCst);
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

/// A step of the script: a print of 0.001 by a seller, a print `(price, quantity, buyer is
/// maker)`, or a gate.
enum Step {
    Print(&'static str),
    Trade(&'static str, &'static str, bool),
    Gate,
}
use Step::{Gate as G, Print as P};

/// The BTCUSDT book (bids 100.00 / 99.99 / 99.00, asks 100.01 / 100.02 / 101.00, 5–10 each),
/// a first print at 100.00 (the last price), a gate, then `steps`.
fn market(steps: Vec<Step>) -> (Sim, Gate) {
    let mut records = vec![
        (
            RecordKind::RestSnapshot,
            "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000".to_owned(),
            json!({"lastUpdateId": 100,
                   "bids": [["100.00", "5"], ["99.99", "5"], ["99.00", "10"]],
                   "asks": [["100.01", "5"], ["100.02", "5"], ["101.00", "10"]]})
            .to_string(),
        ),
        diff(101),
        print(1, "100.00", "0.001", true),
    ];
    let mut gates = vec![records.len()];
    for step in steps {
        match step {
            Step::Print(px) => records.push(print(records.len() as u64, px, "0.001", true)),
            Step::Trade(px, qty, m) => records.push(print(records.len() as u64, px, qty, m)),
            Step::Gate => gates.push(records.len()),
        }
    }
    let gate = Gate::default();
    let source_gate = gate.clone();
    let mut api = WsApiConfig::new(API_KEY);
    api.balances = vec![("USDT".into(), "10000".into()), ("BTC".into(), "10".into())];
    let sim = start_from(
        move || {
            Ok(Box::new(Scripted {
                records: records.clone(),
                at: 0,
                gates: gates.clone(),
                gate: source_gate.clone(),
                conns: vec![ConnInfo {
                    id: ConnId(0),
                    venue: None,
                    url: "wss://stream.binance.com:9443/stream".into(),
                }],
            }) as Box<dyn FrameSource + Send>)
        },
        api,
        LivePacing::AsFastAsPossible,
        &["BTCUSDT"],
    );
    // The first print released: the last price is 100.00.
    let deadline = Instant::now() + Duration::from_secs(20);
    while gate.waiting.load(Ordering::SeqCst) < 1 {
        assert!(Instant::now() < deadline, "market not started");
        std::thread::sleep(Duration::from_millis(2));
    }
    (sim, gate)
}

fn diff(u: u64) -> (RecordKind, String, String) {
    let data = json!({"e": "depthUpdate", "E": u, "s": "BTCUSDT", "U": u, "u": u,
                      "b": [], "a": []});
    (
        RecordKind::Frame,
        String::new(),
        format!(r#"{{"stream":"btcusdt@depth@100ms","data":{data}}}"#),
    )
}

/// A print of `qty` at `price`; `buyer_maker`: a seller was the aggressor.
fn print(id: u64, price: &str, qty: &str, buyer_maker: bool) -> (RecordKind, String, String) {
    let data = json!({"e": "trade", "E": id, "s": "BTCUSDT", "t": id, "p": price,
                      "q": qty, "T": id, "m": buyer_maker, "M": true});
    (
        RecordKind::Frame,
        String::new(),
        format!(r#"{{"stream":"btcusdt@trade","data":{data}}}"#),
    )
}

/// `order.place` of BTCUSDT with `params` (symbol and timestamp added).
fn place(c: &mut Client, params: Value) -> Value {
    let mut p = params;
    p["symbol"] = json!("BTCUSDT");
    p["timestamp"] = json!(now_ms());
    c.call("order.place", p)
}

fn call(c: &mut Client, method: &str, params: Value) -> Value {
    let mut p = params;
    if method != "openOrderLists.status" && method != "orderList.status" {
        p["symbol"] = json!("BTCUSDT");
    }
    p["timestamp"] = json!(now_ms());
    c.call(method, p)
}

fn refused(r: &Value) -> (i64, String) {
    assert_ne!(r["status"], 200, "{r}");
    (
        r["error"]["code"].as_i64().expect("code"),
        r["error"]["msg"].as_str().expect("msg").to_owned(),
    )
}

fn ok(r: &Value) -> &Value {
    assert_eq!(r["status"], 200, "{r}");
    &r["result"]
}

fn order_status(c: &mut Client, id: &str) -> Value {
    ok(&call(c, "order.status", json!({"origClientOrderId": id}))).clone()
}

/// The reports of client order `id`: `(x, X)`.
fn transitions(events: &[Value], id: &str) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["e"] == "executionReport" && e["c"] == id)
        .map(|e| {
            (
                e["x"].as_str().unwrap().to_owned(),
                e["X"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn report<'a>(events: &'a [Value], id: &str, x: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["e"] == "executionReport" && e["c"] == id && e["x"] == x)
        .unwrap_or_else(|| panic!("no {x} report of {id}: {events:#?}"))
}

fn s(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

fn locked(sim: &Sim, asset: &str) -> String {
    let account = sim.exchange.sim_account();
    account
        .balances
        .iter()
        .find(|b| b.asset == asset)
        .map(|b| b.locked.clone())
        .expect("asset")
}

#[test]
fn contingent_orders_are_accepted_or_refused_as_documented() {
    let (sim, gate) = market(vec![]);
    let mut c = sim.client();
    c.logon();
    // Refusals, each as the exchange words it.
    let cases = [
        (
            json!({"side": "SELL", "type": "STOP_LOSS", "quantity": "0.1"}),
            -1102,
            "Param 'stopPrice' or 'trailingDelta' must be sent, but both were empty/null!",
        ),
        (
            json!({"side": "SELL", "type": "STOP_LOSS", "quantity": "0.1", "stopPrice": "99.50",
                   "price": "99.40"}),
            -1106,
            "Parameter 'price' sent when not required.",
        ),
        (
            json!({"side": "SELL", "type": "STOP_LOSS_LIMIT", "quantity": "0.1",
                   "stopPrice": "99.50", "price": "99.40"}),
            -1102,
            "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
        ),
        (
            json!({"side": "SELL", "type": "TAKE_PROFIT_LIMIT", "quantity": "0.1",
                   "stopPrice": "100.50", "timeInForce": "GTC"}),
            -1102,
            "Mandatory parameter 'price' was not sent, was empty/null, or malformed.",
        ),
        (
            json!({"side": "SELL", "type": "LIMIT", "quantity": "0.1", "price": "101.00",
                   "timeInForce": "GTC", "stopPrice": "99.50"}),
            -1106,
            "Parameter 'stopPrice' sent when not required.",
        ),
        (
            json!({"side": "SELL", "type": "STOP_LOSS", "quantity": "0.1", "trailingDelta": 5}),
            -1013,
            "Filter failure: TRAILING_DELTA",
        ),
        (
            json!({"side": "BUY", "type": "STOP_LOSS", "quantity": "0.1",
                   "trailingDelta": 2001}),
            -1013,
            "Filter failure: TRAILING_DELTA",
        ),
        (
            json!({"side": "BUY", "type": "STOP_LOSS", "quantity": "0.1",
                   "trailingDelta": "1.5"}),
            -1100,
            "Illegal characters found in parameter 'trailingDelta'; legal range is '^[0-9]{1,20}$'.",
        ),
        (
            json!({"side": "SELL", "type": "STOP_LOSS", "quantity": "0.1",
                   "stopPrice": "99.505"}),
            -1013,
            "Filter failure: PRICE_FILTER",
        ),
        // The last price is 100.00: a sell stop-loss must be below it, a sell take-profit
        // above it, a buy stop-loss above, a buy take-profit below.
        (
            json!({"side": "SELL", "type": "STOP_LOSS", "quantity": "0.1", "stopPrice": "100.00"}),
            -2010,
            "Order would trigger immediately.",
        ),
        (
            json!({"side": "SELL", "type": "TAKE_PROFIT", "quantity": "0.1",
                   "stopPrice": "99.50"}),
            -2010,
            "Order would trigger immediately.",
        ),
        (
            json!({"side": "BUY", "type": "STOP_LOSS_LIMIT", "quantity": "0.1",
                   "stopPrice": "99.50", "price": "99.60", "timeInForce": "GTC"}),
            -2010,
            "Order would trigger immediately.",
        ),
        (
            json!({"side": "BUY", "type": "TAKE_PROFIT", "quantity": "0.1",
                   "stopPrice": "100.50"}),
            -2010,
            "Order would trigger immediately.",
        ),
    ];
    for (params, code, msg) in cases {
        let r = place(&mut c, params.clone());
        assert_eq!(refused(&r), (code, msg.to_owned()), "{params}");
    }
    assert!(sim.exchange.sim_account().orders.is_empty());
    // Accepted: the contingent types answer ACK by default.
    let r = place(
        &mut c,
        json!({"side": "SELL", "type": "STOP_LOSS", "quantity": "0.1", "stopPrice": "99.50",
               "newClientOrderId": "sl"}),
    );
    let result = ok(&r);
    assert_eq!(result["orderListId"], -1);
    assert!(result.get("status").is_none(), "{r}");
    // RESULT: waiting off the book, its stop price, no working time.
    for (ty, side, extra, id) in [
        (
            "STOP_LOSS_LIMIT",
            "BUY",
            json!({"stopPrice": "100.50", "price": "100.60", "timeInForce": "GTC"}),
            "sll",
        ),
        ("TAKE_PROFIT", "SELL", json!({"stopPrice": "100.50"}), "tp"),
        (
            "TAKE_PROFIT_LIMIT",
            "BUY",
            json!({"stopPrice": "99.50", "price": "99.40", "timeInForce": "IOC"}),
            "tpl",
        ),
    ] {
        let mut params = json!({"side": side, "type": ty, "quantity": "0.1",
                                "newClientOrderId": id, "newOrderRespType": "RESULT"});
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        let r = place(&mut c, params);
        let result = ok(&r);
        assert_eq!(result["status"], "NEW", "{r}");
        assert_eq!(result["type"], ty);
        assert_eq!(
            result["stopPrice"],
            extra["stopPrice"].as_str().unwrap().to_owned() + "000000"
        );
        assert_eq!(result["workingTime"], -1);
        assert!(result.get("trailingDelta").is_none());
    }
    // A trailing stop without a stop price tracks from the last price at once.
    let r = place(
        &mut c,
        json!({"side": "SELL", "type": "STOP_LOSS", "quantity": "0.1", "trailingDelta": 100,
               "newClientOrderId": "trail", "newOrderRespType": "FULL"}),
    );
    let result = ok(&r);
    assert_eq!(result["trailingDelta"], 100);
    assert!(result["trailingTime"].as_i64().unwrap() > 0, "{r}");
    assert_eq!(result["stopPrice"], "0.00000000");
    assert_eq!(result["fills"], json!([]));
    // Queried: not working, the stop price; listed as open.
    let q = order_status(&mut c, "sl");
    assert_eq!(
        (
            q["isWorking"].clone(),
            q["stopPrice"].clone(),
            q["status"].clone()
        ),
        (json!(false), json!("99.50000000"), json!("NEW"))
    );
    let open = call(&mut c, "openOrders.status", json!({}));
    assert_eq!(ok(&open).as_array().unwrap().len(), 5);
    // Reports: NEW, off the book, the stop price and trailing fields.
    c.events_until(Duration::from_secs(5), |e| {
        e.iter().filter(|e| e["e"] == "executionReport").count() >= 5
    });
    let new = report(&c.events, "sl", "NEW");
    assert_eq!(
        (new["P"].clone(), new["w"].clone(), new["o"].clone()),
        (json!("99.50000000"), json!(false), json!("STOP_LOSS"))
    );
    assert!(new.get("W").is_none(), "{new}");
    let trail = report(&c.events, "trail", "NEW");
    assert_eq!(trail["d"], 100);
    assert!(trail["D"].as_u64().is_some(), "{trail}");
    assert!(report(&c.events, "sll", "NEW").get("d").is_none());
    // Locks: the sells their quantity (0.1 × 3), the buy limits price × quantity (10.06 and
    // 9.94).
    assert_eq!(locked(&sim, "BTC"), "0.3");
    assert_eq!(locked(&sim, "USDT"), "20");
    let r = call(&mut c, "order.cancel", json!({"origClientOrderId": "sll"}));
    assert_eq!(ok(&r)["status"], "CANCELED");
    assert_eq!(ok(&r)["stopPrice"], "100.50000000");
    assert_eq!(locked(&sim, "USDT"), "9.94");
    gate.step();
}

#[test]
fn stops_trigger_on_the_last_trade_for_each_side_and_type() {
    let (sim, gate) = market(vec![
        P("100.20"),
        P("100.49"),
        G,
        P("100.50"),
        G,
        P("99.60"),
        P("99.51"),
        G,
        P("99.50"),
    ]);
    let mut c = sim.client();
    c.logon();
    // Rising to 100.50 triggers: sell take-profits, buy stop-losses.
    // Falling to 99.50 triggers: sell stop-losses, buy take-profits.
    let orders = [
        ("s-tp", "SELL", "TAKE_PROFIT", "100.50", None, None),
        (
            "s-tpl",
            "SELL",
            "TAKE_PROFIT_LIMIT",
            "100.50",
            Some("99.99"),
            Some("GTC"),
        ),
        ("b-sl", "BUY", "STOP_LOSS", "100.50", None, None),
        (
            "b-sll",
            "BUY",
            "STOP_LOSS_LIMIT",
            "100.50",
            Some("99.00"),
            Some("GTC"),
        ),
        ("s-sl", "SELL", "STOP_LOSS", "99.50", None, None),
        (
            "s-sll",
            "SELL",
            "STOP_LOSS_LIMIT",
            "99.50",
            Some("101.50"),
            Some("GTC"),
        ),
        ("b-tp", "BUY", "TAKE_PROFIT", "99.50", None, None),
        (
            "b-tpl",
            "BUY",
            "TAKE_PROFIT_LIMIT",
            "99.50",
            Some("100.01"),
            Some("GTC"),
        ),
    ];
    for (id, side, ty, stop, price, tif) in orders {
        let mut p = json!({"side": side, "type": ty, "quantity": "0.1", "stopPrice": stop,
                           "newClientOrderId": id});
        if let (Some(price), Some(tif)) = (price, tif) {
            p["price"] = json!(price);
            p["timeInForce"] = json!(tif);
        }
        ok(&place(&mut c, p));
    }
    let waiting = |c: &mut Client| -> Vec<String> {
        let open = call(c, "openOrders.status", json!({}));
        ok(&open)
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["isWorking"] == false)
            .map(|o| o["clientOrderId"].as_str().unwrap().to_owned())
            .collect()
    };
    // 100.20 and 100.49: nothing reaches a stop.
    gate.step();
    assert_eq!(waiting(&mut c).len(), 8);
    // 100.50.
    gate.step();
    let mut left = waiting(&mut c);
    left.sort();
    assert_eq!(left, ["b-tp", "b-tpl", "s-sl", "s-sll"]);
    c.events_until(Duration::from_secs(5), |e| {
        e.iter()
            .filter(|e| e["x"] == "TRADE" && e["X"] == "FILLED")
            .count()
            >= 3
    });
    // Market kinds trade on the book; the crossing limit trades; the other rests.
    let trade = |c: &Client, id: &str| {
        let r = report(&c.events, id, "TRADE");
        (
            r["L"].as_str().unwrap().to_owned(),
            r["X"].as_str().unwrap().to_owned(),
            r["m"].clone(),
        )
    };
    let filled = |px: &str| (px.to_owned(), "FILLED".to_owned(), json!(false));
    assert_eq!(trade(&c, "s-tp"), filled("100.00000000"));
    assert_eq!(trade(&c, "s-tpl"), filled("100.00000000"));
    assert_eq!(trade(&c, "b-sl"), filled("100.01000000"));
    for id in ["s-tp", "s-tpl", "b-sl"] {
        assert_eq!(
            transitions(&c.events, id),
            [s("NEW", "NEW"), s("NEW", "NEW"), s("TRADE", "FILLED")],
            "{id}"
        );
    }
    let q = order_status(&mut c, "b-sll");
    assert_eq!(
        (
            q["status"].clone(),
            q["isWorking"].clone(),
            q["price"].clone()
        ),
        (json!("NEW"), json!(true), json!("99.00000000"))
    );
    assert!(q["workingTime"].as_i64().unwrap() > 0);
    let working = c
        .events
        .iter()
        .filter(|e| e["c"] == "b-sll" && e["x"] == "NEW")
        .nth(1)
        .expect("triggered report")
        .clone();
    assert_eq!(
        (working["w"].clone(), working["P"].clone()),
        (json!(true), json!("100.50000000"))
    );
    assert!(working["W"].as_u64().is_some());
    // Its lock: 99.00 × 0.1; the waiting buy take-profit limit 100.01 × 0.1.
    assert_eq!(locked(&sim, "USDT"), "19.901");
    // 99.60, 99.51: nothing; 99.50: the other four.
    gate.step();
    assert_eq!(waiting(&mut c).len(), 4);
    gate.step();
    assert!(waiting(&mut c).is_empty());
    c.events_until(Duration::from_secs(5), |e| {
        e.iter()
            .filter(|e| e["x"] == "TRADE" && e["X"] == "FILLED")
            .count()
            >= 6
    });
    assert_eq!(trade(&c, "s-sl"), filled("100.00000000"));
    assert_eq!(trade(&c, "b-tp"), filled("100.01000000"));
    assert_eq!(trade(&c, "b-tpl"), filled("100.01000000"));
    let q = order_status(&mut c, "s-sll");
    assert_eq!(
        (
            q["status"].clone(),
            q["isWorking"].clone(),
            q["type"].clone()
        ),
        (json!("NEW"), json!(true), json!("STOP_LOSS_LIMIT"))
    );
    // Resting: the sell limit's 0.1 BTC, the buy limit's 9.9 USDT.
    assert_eq!(locked(&sim, "BTC"), "0.1");
    assert_eq!(locked(&sim, "USDT"), "9.9");
    let account = same_account(&sim);
    trades_match_reports(&account, &c.events);
    assert_eq!(account.trades.len(), 6);
}

#[test]
fn trailing_stops_track_the_best_price_from_activation() {
    let (sim, gate) = market(vec![
        // The sell: 100.50 is before its stop (99.80): ignored.
        P("100.50"),
        G,
        // Tracking starts at 99.80; the high moves to 100.40, then 100.60.
        P("99.80"),
        P("100.40"),
        P("99.40"),
        P("100.60"),
        P("99.60"),
        G,
        // 1 % below 100.60 is 99.594.
        P("99.59"),
        G,
        // The buy: from 99.59 at placement, its low moves to 99.00, then 98.50.
        P("99.00"),
        P("99.49"),
        P("98.50"),
        P("98.99"),
        G,
        // 0.5 % above 98.50 is 98.9925.
        P("99.00"),
    ]);
    let mut c = sim.client();
    c.logon();
    let r = place(
        &mut c,
        json!({"side": "SELL", "type": "STOP_LOSS", "quantity": "0.1", "stopPrice": "99.80",
               "trailingDelta": 100, "newClientOrderId": "ts", "newOrderRespType": "RESULT"}),
    );
    assert_eq!(ok(&r)["trailingTime"], -1, "{r}");
    gate.step();
    assert_eq!(order_status(&mut c, "ts")["trailingTime"], -1);
    gate.step();
    let q = order_status(&mut c, "ts");
    assert!(q["trailingTime"].as_i64().unwrap() > 0, "{q}");
    assert_eq!(q["status"], "NEW");
    assert_eq!(q["isWorking"], false);
    gate.step();
    let q = order_status(&mut c, "ts");
    assert_eq!(q["status"], "FILLED", "{q}");
    // The buy, placed now (last price 99.59), with no stop price.
    let r = place(
        &mut c,
        json!({"side": "BUY", "type": "STOP_LOSS_LIMIT", "quantity": "0.1",
               "price": "101.00", "timeInForce": "GTC", "trailingDelta": 50,
               "newClientOrderId": "tb", "newOrderRespType": "RESULT"}),
    );
    assert!(ok(&r)["trailingTime"].as_i64().unwrap() > 0, "{r}");
    gate.step();
    assert_eq!(order_status(&mut c, "tb")["isWorking"], false);
    gate.step();
    let q = order_status(&mut c, "tb");
    assert_eq!(q["status"], "FILLED", "{q}");
    c.events_until(Duration::from_secs(5), |e| {
        e.iter().filter(|e| e["x"] == "TRADE").count() >= 2
    });
    for id in ["ts", "tb"] {
        assert_eq!(
            transitions(&c.events, id),
            [s("NEW", "NEW"), s("NEW", "NEW"), s("TRADE", "FILLED")],
            "{id}"
        );
        let t = report(&c.events, id, "TRADE");
        assert!(
            t["d"].as_u64().is_some() && t["D"].as_u64().is_some(),
            "{t}"
        );
    }
    // The sell's first report had no trailing time yet (its stop was not reached).
    assert!(report(&c.events, "ts", "NEW").get("D").is_none());
    assert_eq!(report(&c.events, "ts", "TRADE")["L"], "100.00000000");
    assert_eq!(report(&c.events, "tb", "TRADE")["L"], "100.01000000");
}

/// The `listStatus` events: `(l, L)`.
fn list_statuses(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["e"] == "listStatus")
        .map(|e| {
            (
                e["l"].as_str().unwrap().to_owned(),
                e["L"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Event kinds in order: `executionReport:<c>:<x>`, `listStatus:<l>`, `position`.
fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["e"].as_str().unwrap() {
            "executionReport" => {
                format!("{}:{}", e["c"].as_str().unwrap(), e["x"].as_str().unwrap())
            }
            "listStatus" => format!("list:{}", e["l"].as_str().unwrap()),
            _ => "position".to_owned(),
        })
        .collect()
}

#[test]
fn oco_one_leg_takes_the_other_out() {
    let (sim, gate) = market(vec![P("100.60"), G, P("100.80")]);
    let mut c = sim.client();
    c.logon();
    let oco = |c: &mut Client, params: Value| {
        let mut p = params;
        p["quantity"] = json!("0.1");
        call(c, "orderList.place.oco", p)
    };
    // Refusals.
    let cases = [
        (
            json!({"side": "SELL", "aboveType": "LIMIT", "abovePrice": "100.50",
                   "belowType": "STOP_LOSS", "belowStopPrice": "99.50"}),
            -1158,
            "Order type not supported in OCO.",
        ),
        (
            json!({"side": "SELL", "aboveType": "LIMIT_MAKER", "abovePrice": "100.50",
                   "belowType": "LIMIT_MAKER", "belowPrice": "99.50"}),
            -1168,
            "At least one OCO order must be contingent.",
        ),
        (
            json!({"side": "SELL", "aboveType": "STOP_LOSS", "aboveStopPrice": "100.50",
                   "belowType": "LIMIT_MAKER", "belowPrice": "99.50"}),
            -1166,
            "A limit order in a sell OCO must be above.",
        ),
        (
            json!({"side": "BUY", "aboveType": "LIMIT_MAKER", "abovePrice": "100.50",
                   "belowType": "STOP_LOSS", "belowStopPrice": "99.50"}),
            -1165,
            "A limit order in a buy OCO must be below.",
        ),
        (
            json!({"side": "BUY", "aboveType": "TAKE_PROFIT", "aboveStopPrice": "100.50",
                   "belowType": "STOP_LOSS", "belowStopPrice": "99.50"}),
            -1198,
            "A take profit order in a buy OCO must be below.",
        ),
        (
            json!({"side": "SELL", "aboveType": "LIMIT_MAKER", "abovePrice": "99.90",
                   "belowType": "STOP_LOSS", "belowStopPrice": "99.50"}),
            -2010,
            "Order would immediately match and take.",
        ),
        (
            json!({"side": "SELL", "aboveType": "LIMIT_MAKER", "abovePrice": "100.50",
                   "belowType": "STOP_LOSS", "belowStopPrice": "100.20"}),
            -2010,
            "The relationship of the prices for the orders is not correct.",
        ),
        (
            json!({"side": "SELL", "aboveType": "LIMIT_MAKER", "abovePrice": "100.50",
                   "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": "99.50",
                   "belowPrice": "99.40"}),
            -1102,
            "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
        ),
    ];
    for (params, code, msg) in cases {
        let r = oco(&mut c, params.clone());
        assert_eq!(refused(&r), (code, msg.to_owned()), "{params}");
    }
    // A sell OCO: take profit at 100.50, stop loss at 99.50 (limit 99.40).
    let r = oco(
        &mut c,
        json!({"side": "SELL", "listClientOrderId": "sell-oco",
               "aboveType": "LIMIT_MAKER", "abovePrice": "100.50", "aboveClientOrderId": "lm",
               "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": "99.50",
               "belowPrice": "99.40", "belowTimeInForce": "GTC", "belowClientOrderId": "sl",
               "newOrderRespType": "RESULT"}),
    );
    let result = ok(&r).clone();
    assert_eq!(
        (
            result["contingencyType"].clone(),
            result["listStatusType"].clone(),
            result["listOrderStatus"].clone(),
            result["listClientOrderId"].clone(),
            result["symbol"].clone()
        ),
        (
            json!("OCO"),
            json!("EXEC_STARTED"),
            json!("EXECUTING"),
            json!("sell-oco"),
            json!("BTCUSDT")
        )
    );
    let list_id = result["orderListId"].as_i64().unwrap();
    // The stop-loss leg first.
    let ids: Vec<&str> = result["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["clientOrderId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sl", "lm"]);
    let reports = result["orderReports"].as_array().unwrap();
    assert_eq!(reports[0]["type"], "STOP_LOSS_LIMIT");
    assert_eq!(reports[0]["stopPrice"], "99.50000000");
    assert_eq!(reports[0]["workingTime"], -1);
    assert_eq!(reports[1]["type"], "LIMIT_MAKER");
    assert!(reports[1]["workingTime"].as_i64().unwrap() > 0);
    assert!(reports[1].get("stopPrice").is_none());
    for r in reports {
        assert_eq!(r["orderListId"], list_id);
        assert_eq!(r["status"], "NEW");
    }
    // One lock for both legs.
    assert_eq!(locked(&sim, "BTC"), "0.1");
    c.events_until(Duration::from_secs(5), |e| !list_statuses(e).is_empty());
    assert_eq!(
        kinds(&c.events),
        ["sl:NEW", "lm:NEW", "position", "list:EXEC_STARTED"]
    );
    let status = c.events.last().unwrap().clone();
    assert_eq!(
        (
            status["c"].clone(),
            status["g"].clone(),
            status["C"].clone()
        ),
        (json!("OCO"), json!(list_id), json!("sell-oco"))
    );
    assert_eq!(status["O"].as_array().unwrap().len(), 2);
    assert_eq!(report(&c.events, "sl", "NEW")["g"], list_id);
    c.events.clear();
    // A print at 100.60 goes through the limit maker at 100.50: it fills, the stop-loss leg
    // expires, the list is done.
    gate.step();
    c.events_until(Duration::from_secs(5), |e| {
        list_statuses(e).iter().any(|(l, _)| l == "ALL_DONE")
    });
    assert_eq!(
        kinds(&c.events),
        ["lm:TRADE", "position", "sl:EXPIRED", "list:ALL_DONE"]
    );
    assert_eq!(report(&c.events, "sl", "EXPIRED")["eR"], "OCO_TRIGGER");
    assert_eq!(report(&c.events, "sl", "EXPIRED")["X"], "EXPIRED");
    assert_eq!(list_statuses(&c.events), [s("ALL_DONE", "ALL_DONE")]);
    assert_eq!(locked(&sim, "BTC"), "0");
    let account = same_account(&sim);
    let btc = account.balances.iter().find(|b| b.asset == "BTC").unwrap();
    assert_eq!(btc.free, "9.9");
    // A buy OCO: stop loss at 100.80 (market), take profit at 99.50. The last price is 100.60.
    c.events.clear();
    let r = oco(
        &mut c,
        json!({"side": "BUY", "aboveType": "STOP_LOSS", "aboveStopPrice": "100.80",
               "aboveClientOrderId": "bsl", "belowType": "LIMIT_MAKER", "belowPrice": "99.50",
               "belowClientOrderId": "blm"}),
    );
    let full = ok(&r);
    assert_eq!(full["orderReports"][0]["fills"], json!([]), "{r}");
    assert_eq!(locked(&sim, "USDT"), "9.95");
    gate.step();
    c.events_until(Duration::from_secs(5), |e| {
        list_statuses(e).iter().any(|(l, _)| l == "ALL_DONE")
    });
    assert_eq!(
        kinds(&c.events),
        [
            "bsl:NEW",
            "blm:NEW",
            "position",
            "list:EXEC_STARTED",
            "blm:EXPIRED",
            "position",
            "bsl:NEW",
            "bsl:TRADE",
            "position",
            "list:ALL_DONE"
        ]
    );
    assert_eq!(report(&c.events, "blm", "EXPIRED")["eR"], "OCO_TRIGGER");
    assert_eq!(report(&c.events, "bsl", "TRADE")["L"], "100.01000000");
    assert_eq!(locked(&sim, "USDT"), "0");
    let open = call(&mut c, "openOrderLists.status", json!({}));
    assert_eq!(ok(&open), &json!([]));
}

#[test]
fn oto_and_otoco_place_pending_orders_when_the_working_order_fills() {
    let (sim, gate) = market(vec![P("99.89"), G, P("98.90")]);
    let mut c = sim.client();
    c.logon();
    // OTO: a buy at 100.01 fills at once; its pending sell limit maker is placed after.
    let r = call(
        &mut c,
        "orderList.place.oto",
        json!({"listClientOrderId": "oto", "workingType": "LIMIT", "workingSide": "BUY",
               "workingPrice": "100.01", "workingQuantity": "0.1",
               "workingTimeInForce": "GTC", "workingClientOrderId": "w1",
               "pendingType": "LIMIT_MAKER", "pendingSide": "SELL", "pendingPrice": "100.80",
               "pendingQuantity": "0.1", "pendingClientOrderId": "p1"}),
    );
    let result = ok(&r).clone();
    assert_eq!(result["contingencyType"], "OTO");
    let reports = result["orderReports"].as_array().unwrap();
    assert_eq!(
        (reports[0]["status"].clone(), reports[1]["status"].clone()),
        (json!("FILLED"), json!("PENDING_NEW"))
    );
    assert_eq!(reports[0]["fills"].as_array().unwrap().len(), 1);
    assert_eq!(reports[1]["workingTime"], -1);
    let q = order_status(&mut c, "p1");
    assert_eq!(
        (q["status"].clone(), q["isWorking"].clone()),
        (json!("NEW"), json!(true))
    );
    c.events_until(Duration::from_secs(5), |e| {
        list_statuses(e).iter().any(|(l, _)| l == "ALL_DONE")
    });
    assert_eq!(
        kinds(&c.events),
        [
            "w1:NEW",
            "p1:NEW",
            "w1:TRADE",
            "position",
            "list:EXEC_STARTED",
            "p1:NEW",
            "position",
            "list:EXEC_STARTED",
            "list:ALL_DONE"
        ]
    );
    let pending_new = c
        .events
        .iter()
        .find(|e| e["c"] == "p1")
        .expect("pending report");
    assert_eq!(
        (pending_new["X"].clone(), pending_new["w"].clone()),
        (json!("PENDING_NEW"), json!(false))
    );
    assert_eq!(locked(&sim, "BTC"), "0.1");
    c.events.clear();
    // OTOCO: a buy resting at 99.90 fills on the print through it at 99.89; then the sell pair (limit
    // maker 100.90, stop loss 99.00) goes on; the print at 98.90 triggers the stop.
    let r = call(
        &mut c,
        "orderList.place.otoco",
        json!({"listClientOrderId": "otoco", "workingType": "LIMIT", "workingSide": "BUY",
               "workingPrice": "99.90", "workingQuantity": "0.1",
               "workingTimeInForce": "GTC", "workingClientOrderId": "w2",
               "pendingSide": "SELL", "pendingQuantity": "0.1",
               "pendingAboveType": "LIMIT_MAKER", "pendingAbovePrice": "100.90",
               "pendingAboveClientOrderId": "up",
               "pendingBelowType": "STOP_LOSS", "pendingBelowStopPrice": "99.00",
               "pendingBelowClientOrderId": "down", "newOrderRespType": "ACK"}),
    );
    let result = ok(&r).clone();
    assert!(result.get("orderReports").is_none(), "{r}");
    let ids: Vec<&str> = result["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["clientOrderId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["w2", "down", "up"]);
    assert_eq!(order_status(&mut c, "down")["status"], "PENDING_NEW");
    // Locked: p1's 0.1 BTC and the working bid's 9.99 USDT; nothing for the pending pair.
    assert_eq!(locked(&sim, "BTC"), "0.1");
    assert_eq!(locked(&sim, "USDT"), "9.99");
    gate.step();
    assert_eq!(order_status(&mut c, "w2")["status"], "FILLED");
    assert_eq!(order_status(&mut c, "up")["isWorking"], true);
    assert_eq!(order_status(&mut c, "down")["isWorking"], false);
    // The pair shares one lock of 0.1 (with p1's: 0.2).
    assert_eq!(locked(&sim, "BTC"), "0.2");
    let open = call(&mut c, "openOrderLists.status", json!({}));
    let open = ok(&open).as_array().unwrap().clone();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["listClientOrderId"], "otoco");
    gate.step();
    c.events_until(Duration::from_secs(5), |e| {
        list_statuses(e).iter().any(|(l, _)| l == "ALL_DONE")
    });
    assert_eq!(
        list_statuses(&c.events),
        [
            s("EXEC_STARTED", "EXECUTING"),
            s("EXEC_STARTED", "EXECUTING"),
            s("ALL_DONE", "ALL_DONE")
        ]
    );
    assert_eq!(
        transitions(&c.events, "down"),
        [
            s("NEW", "PENDING_NEW"),
            s("NEW", "NEW"),
            s("NEW", "NEW"),
            s("TRADE", "FILLED")
        ]
    );
    assert_eq!(
        transitions(&c.events, "up"),
        [
            s("NEW", "PENDING_NEW"),
            s("NEW", "NEW"),
            s("EXPIRED", "EXPIRED")
        ]
    );
    assert_eq!(report(&c.events, "up", "EXPIRED")["eR"], "OCO_TRIGGER");
    assert_eq!(locked(&sim, "BTC"), "0.1");
    // A working order that expires unfilled (IOC, nothing to take) expires its pending order.
    c.events.clear();
    let r = call(
        &mut c,
        "orderList.place.oto",
        json!({"workingType": "LIMIT", "workingSide": "BUY", "workingPrice": "99.00",
               "workingQuantity": "0.1", "workingTimeInForce": "IOC",
               "workingClientOrderId": "w3", "pendingType": "MARKET", "pendingSide": "SELL",
               "pendingQuantity": "0.1", "pendingClientOrderId": "p3"}),
    );
    ok(&r);
    assert_eq!(order_status(&mut c, "w3")["status"], "EXPIRED");
    let q = order_status(&mut c, "p3");
    assert_eq!(
        (q["status"].clone(), q["expiryReason"].clone()),
        (json!("EXPIRED"), json!("OTO_PHASE_ONE_EXPIRED"))
    );
    c.events_until(Duration::from_secs(5), |e| {
        list_statuses(e).iter().any(|(l, _)| l == "ALL_DONE")
    });
    assert_eq!(
        kinds(&c.events),
        [
            "w3:NEW",
            "p3:NEW",
            "w3:EXPIRED",
            "list:EXEC_STARTED",
            "p3:EXPIRED",
            "list:ALL_DONE"
        ]
    );
}

#[test]
fn order_lists_are_queried_and_cancelled() {
    let (sim, gate) = market(vec![]);
    let mut c = sim.client();
    c.logon();
    let oco = |c: &mut Client, list: &str, above: &str, below: &str| {
        call(
            c,
            "orderList.place.oco",
            json!({"side": "SELL", "quantity": "0.1", "listClientOrderId": list,
                   "aboveType": "LIMIT_MAKER", "abovePrice": "100.50",
                   "aboveClientOrderId": above,
                   "belowType": "STOP_LOSS", "belowStopPrice": "99.50",
                   "belowClientOrderId": below}),
        )
    };
    let first = ok(&oco(&mut c, "L1", "a1", "b1"))["orderListId"].clone();
    ok(&oco(&mut c, "L2", "a2", "b2"));
    assert_eq!(
        refused(&oco(&mut c, "L2", "a3", "b3")),
        (-2010, "Duplicate order sent.".to_owned())
    );
    assert_eq!(locked(&sim, "BTC"), "0.2");
    // Status by id and by client id (only `origClientOrderId` is used when both are sent).
    let by_id = call(&mut c, "orderList.status", json!({"orderListId": first}));
    let by_id = ok(&by_id).clone();
    assert_eq!(by_id["listClientOrderId"], "L1");
    assert_eq!(by_id["listOrderStatus"], "EXECUTING");
    assert!(by_id.get("orderReports").is_none());
    let both = call(
        &mut c,
        "orderList.status",
        json!({"orderListId": first, "origClientOrderId": "L2"}),
    );
    assert_eq!(ok(&both)["listClientOrderId"], "L2");
    assert_eq!(
        refused(&call(
            &mut c,
            "orderList.status",
            json!({"orderListId": 999})
        )),
        (-2013, "Order list does not exist.".to_owned())
    );
    let open = call(&mut c, "openOrderLists.status", json!({}));
    assert_eq!(ok(&open).as_array().unwrap().len(), 2);
    // orderList.cancel by client id: both legs CANCELED, the list ALL_DONE.
    let r = call(
        &mut c,
        "orderList.cancel",
        json!({"listClientOrderId": "L1"}),
    );
    let result = ok(&r).clone();
    assert_eq!(
        (
            result["listStatusType"].clone(),
            result["listOrderStatus"].clone()
        ),
        (json!("ALL_DONE"), json!("ALL_DONE"))
    );
    let statuses: Vec<&str> = result["orderReports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["CANCELED", "CANCELED"]);
    assert_eq!(result["orderReports"][0]["stopPrice"], "99.50000000");
    assert_eq!(locked(&sim, "BTC"), "0.1");
    assert_eq!(
        refused(&call(
            &mut c,
            "orderList.cancel",
            json!({"listClientOrderId": "L1"})
        )),
        (-2011, "Unknown order list sent.".to_owned())
    );
    assert_eq!(
        refused(&call(&mut c, "orderList.cancel", json!({}))),
        (
            -1102,
            "Param 'listClientOrderId' or 'orderListId' must be sent, but both were empty/null!"
                .to_owned()
        )
    );
    // order.cancel of one leg cancels the list, answered as the list.
    let r = call(&mut c, "order.cancel", json!({"origClientOrderId": "a2"}));
    let result = ok(&r).clone();
    assert_eq!(result["listClientOrderId"], "L2");
    assert_eq!(result["listStatusType"], "ALL_DONE");
    assert_eq!(order_status(&mut c, "b2")["status"], "CANCELED");
    assert_eq!(locked(&sim, "BTC"), "0");
    let open = call(&mut c, "openOrderLists.status", json!({}));
    assert_eq!(ok(&open), &json!([]));
    c.events_until(Duration::from_secs(5), |e| {
        list_statuses(e)
            .iter()
            .filter(|(l, _)| l == "ALL_DONE")
            .count()
            >= 2
    });
    assert_eq!(
        list_statuses(&c.events),
        [
            s("EXEC_STARTED", "EXECUTING"),
            s("EXEC_STARTED", "EXECUTING"),
            s("ALL_DONE", "ALL_DONE"),
            s("ALL_DONE", "ALL_DONE")
        ]
    );
    // A cancel's report names the order by `C` (its own `c` is the cancel's id).
    for id in ["a1", "b1", "a2", "b2"] {
        assert!(
            c.events
                .iter()
                .any(|e| e["x"] == "CANCELED" && e["X"] == "CANCELED" && e["C"] == id),
            "{id}"
        );
    }
    gate.step();
}

#[test]
fn partial_fills_cancels_and_refusals_at_trigger() {
    let (sim, gate) = market(vec![
        // A buyer takes 0.04 at 100.50: the OCO's limit maker (nothing queued ahead of it).
        Step::Trade("100.50", "0.04", false),
        G,
        P("99.40"),
        G,
        P("100.60"),
        G,
        P("100.70"),
    ]);
    let mut c = sim.client();
    c.logon();
    let r = call(
        &mut c,
        "orderList.place.oco",
        json!({"side": "SELL", "quantity": "0.1", "listClientOrderId": "part",
               "aboveType": "LIMIT_MAKER", "abovePrice": "100.50", "aboveClientOrderId": "lm",
               "belowType": "STOP_LOSS", "belowStopPrice": "99.50", "belowClientOrderId": "sl"}),
    );
    ok(&r);
    // An OTO whose working bid rests; cancelled before it fills.
    let r = call(
        &mut c,
        "orderList.place.oto",
        json!({"listClientOrderId": "gone", "workingType": "LIMIT", "workingSide": "BUY",
               "workingPrice": "99.50", "workingQuantity": "0.1", "workingTimeInForce": "GTC",
               "workingClientOrderId": "w", "pendingType": "LIMIT_MAKER",
               "pendingSide": "SELL", "pendingPrice": "100.80", "pendingQuantity": "0.1",
               "pendingClientOrderId": "p"}),
    );
    ok(&r);
    assert_eq!(locked(&sim, "USDT"), "9.95");
    let r = call(
        &mut c,
        "orderList.cancel",
        json!({"listClientOrderId": "gone"}),
    );
    let statuses: Vec<Value> = ok(&r)["orderReports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("CANCELED"), json!("CANCELED")]);
    assert_eq!(order_status(&mut c, "p")["status"], "CANCELED");
    assert_eq!(locked(&sim, "USDT"), "0");
    // A market buy stop (nothing locked while it waits), then a bid that locks 9,919.80 of the
    // 10,000 USDT: with the 10.05 the limit maker brings, 90.25 is free when the stop triggers,
    // short of the 100.01 it must pay, so it expires.
    ok(&place(
        &mut c,
        json!({"side": "BUY", "type": "STOP_LOSS", "quantity": "1", "stopPrice": "100.70",
               "newClientOrderId": "poor"}),
    ));
    ok(&place(
        &mut c,
        json!({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": "99.00",
               "quantity": "100.2", "newClientOrderId": "big"}),
    ));
    // 0.04 of the limit maker fills: the stop-loss leg expires, the list is done, the limit
    // maker keeps working with the lock of what it still sells.
    gate.step();
    let q = order_status(&mut c, "lm");
    assert_eq!(
        (q["status"].clone(), q["executedQty"].clone()),
        (json!("PARTIALLY_FILLED"), json!("0.04000000"))
    );
    let q = order_status(&mut c, "sl");
    assert_eq!(
        (q["status"].clone(), q["expiryReason"].clone()),
        (json!("EXPIRED"), json!("OCO_TRIGGER"))
    );
    let status = call(
        &mut c,
        "orderList.status",
        json!({"origClientOrderId": "part"}),
    );
    assert_eq!(ok(&status)["listOrderStatus"], "ALL_DONE");
    assert_eq!(locked(&sim, "BTC"), "0.06");
    // 99.40 would have triggered the stop: it is gone.
    gate.step();
    assert_eq!(order_status(&mut c, "sl")["status"], "EXPIRED");
    // 100.60 goes through the rest of the limit maker.
    gate.step();
    assert_eq!(order_status(&mut c, "lm")["status"], "FILLED");
    assert_eq!(locked(&sim, "BTC"), "0");
    // 100.70 triggers the buy stop, which cannot pay.
    gate.step();
    let q = order_status(&mut c, "poor");
    assert_eq!(
        (
            q["status"].clone(),
            q["expiryReason"].clone(),
            q["executedQty"].clone()
        ),
        (json!("EXPIRED"), json!("REJECTED"), json!("0.00000000"))
    );
    c.events_until(Duration::from_secs(5), |e| {
        e.iter().any(|e| e["c"] == "poor" && e["x"] == "EXPIRED")
    });
    assert_eq!(
        transitions(&c.events, "poor"),
        [s("NEW", "NEW"), s("EXPIRED", "EXPIRED")]
    );
    let account = same_account(&sim);
    trades_match_reports(&account, &c.events);
    // The limit maker's two fills; nothing else traded.
    assert_eq!(account.trades.len(), 2);
    assert_eq!(locked(&sim, "USDT"), "9919.8");
    assert_eq!(
        balance(&account, "USDT").0,
        pinion_exchange_sim::Dec::parse("90.25").unwrap()
    );
}
