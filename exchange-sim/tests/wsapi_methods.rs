//! `order.cancelReplace`, `order.amend.keepPriority`, `myTrades`, `account.status` and
//! `cancelRestrictions` against the live exchange over TLS, raw JSON requests.
//!
//! - `cancel_replace_answers_each_outcome_as_documented`: both succeed (200); the cancel fails
//!   in `STOP_ON_FAILURE` (400 `-2022`, `NOT_ATTEMPTED`, no order placed); one half fails in
//!   `ALLOW_FAILURE` (409 `-2021`, the other half done); both fail (400 `-2022`); a new order
//!   the filters refuse fails the request (`-1013`) before anything is cancelled. Locks follow.
//! - `cancel_restrictions_are_checked`: `ONLY_PARTIALLY_FILLED` on a `NEW` order is `-2011`,
//!   `ONLY_NEW` cancels it, an unknown value is `-1145`.
//! - `amend_keep_priority_lowers_the_quantity_in_place`: the same order id, the new client
//!   id, `REPLACED` report, lock released, weight 4; increases and no-ops refused `-2038`.
//! - `my_trades_and_account_status_agree_with_the_account`: every filter of `myTrades`,
//!   weights 20/5, and `account.status`'s commission fields and balances.

mod common;

use std::time::Duration;

use common::*;
use pinion_exchange_sim::Dec;
use serde_json::{Value, json};

fn px(x: f64) -> String {
    format!("{x:.2}")
}

fn limit(c: &mut Client, side: &str, price: f64, qty: &str, id: &str) -> Value {
    c.call(
        "order.place",
        json!({"symbol": "BTCUSDT", "side": side, "type": "LIMIT", "timeInForce": "GTC",
               "price": px(price), "quantity": qty, "newClientOrderId": id,
               "timestamp": now_ms()}),
    )
}

fn replace(c: &mut Client, mode: &str, cancel_id: &str, new: Value) -> Value {
    let mut params = json!({"symbol": "BTCUSDT", "cancelReplaceMode": mode,
        "cancelOrigClientOrderId": cancel_id, "timestamp": now_ms()});
    for (k, v) in new.as_object().expect("params") {
        params[k] = v.clone();
    }
    c.call("order.cancelReplace", params)
}

fn status_of(sim: &Sim, client_id: &str) -> Option<String> {
    sim.exchange
        .sim_account()
        .orders
        .into_iter()
        .rev()
        .find(|o| o.client_order_id == client_id)
        .map(|o| o.status)
}

fn prices(sim: &Sim) -> (f64, f64) {
    let (bid, ask) = best(sim);
    (bid.parse().unwrap(), ask.parse().unwrap())
}

#[test]
fn cancel_replace_answers_each_outcome_as_documented() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "", 5.0, "0", "0");
    let mut c = sim.client();
    c.logon();
    let (bid, ask) = prices(&sim);
    let r = limit(&mut c, "BUY", bid - 500.0, "0.01", "r1");
    assert_eq!(r["result"]["status"], "NEW", "{r}");
    // Both halves succeed.
    let r = c.call(
        "order.cancelReplace",
        json!({"symbol": "BTCUSDT", "cancelReplaceMode": "STOP_ON_FAILURE",
               "cancelOrigClientOrderId": "r1", "cancelNewClientOrderId": "x1",
               "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": px(bid - 400.0),
               "quantity": "0.02", "newClientOrderId": "r2", "timestamp": now_ms()}),
    );
    assert_eq!(r["status"], 200, "{r}");
    let result = &r["result"];
    assert_eq!(result["cancelResult"], "SUCCESS");
    assert_eq!(result["newOrderResult"], "SUCCESS");
    assert_eq!(result["cancelResponse"]["status"], "CANCELED");
    assert_eq!(result["cancelResponse"]["origClientOrderId"], "r1");
    assert_eq!(result["cancelResponse"]["clientOrderId"], "x1");
    assert_eq!(result["newOrderResponse"]["status"], "NEW");
    assert_eq!(result["newOrderResponse"]["clientOrderId"], "r2");
    assert!(
        r["rateLimits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["rateLimitType"] == "ORDERS"),
        "{r}"
    );
    assert_eq!(status_of(&sim, "r1").as_deref(), Some("CANCELED"));
    assert_eq!(status_of(&sim, "r2").as_deref(), Some("NEW"));
    // STOP_ON_FAILURE: the cancel fails, nothing is placed.
    let orders_before = sim.exchange.sim_account().orders.len();
    let buy = |id: &str, price: f64| {
        json!({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": px(price),
               "quantity": "0.01", "newClientOrderId": id})
    };
    let r = replace(&mut c, "STOP_ON_FAILURE", "r1", buy("r9", bid - 450.0));
    assert_eq!(
        (r["status"].clone(), r["error"]["code"].clone()),
        (json!(400), json!(-2022)),
        "{r}"
    );
    assert_eq!(r["error"]["msg"], "Order cancel-replace failed.");
    let data = &r["error"]["data"];
    assert_eq!(data["cancelResult"], "FAILURE");
    assert_eq!(data["newOrderResult"], "NOT_ATTEMPTED");
    assert_eq!(
        data["cancelResponse"],
        json!({"code": -2011, "msg": "Unknown order sent."})
    );
    assert_eq!(data["newOrderResponse"], Value::Null);
    assert_eq!(sim.exchange.sim_account().orders.len(), orders_before);
    // ALLOW_FAILURE: the cancel fails, the new order is placed.
    let r = replace(&mut c, "ALLOW_FAILURE", "nope", buy("r3", bid - 450.0));
    assert_eq!(
        (r["status"].clone(), r["error"]["code"].clone()),
        (json!(409), json!(-2021)),
        "{r}"
    );
    assert_eq!(r["error"]["msg"], "Order cancel-replace partially failed.");
    let data = &r["error"]["data"];
    assert_eq!(data["cancelResult"], "FAILURE");
    assert_eq!(data["newOrderResult"], "SUCCESS");
    assert_eq!(data["newOrderResponse"]["clientOrderId"], "r3");
    assert_eq!(status_of(&sim, "r3").as_deref(), Some("NEW"));
    // ALLOW_FAILURE: the cancel succeeds, the new order (a crossing LIMIT_MAKER) fails.
    let maker = json!({"side": "BUY", "type": "LIMIT_MAKER", "price": px(ask + 100.0),
                       "quantity": "0.01", "newClientOrderId": "r4"});
    let r = replace(&mut c, "ALLOW_FAILURE", "r3", maker.clone());
    assert_eq!(
        (r["status"].clone(), r["error"]["code"].clone()),
        (json!(409), json!(-2021)),
        "{r}"
    );
    let data = &r["error"]["data"];
    assert_eq!(data["cancelResult"], "SUCCESS");
    assert_eq!(data["newOrderResult"], "FAILURE");
    assert_eq!(data["cancelResponse"]["status"], "CANCELED");
    assert_eq!(data["newOrderResponse"]["code"], -2010);
    assert_eq!(status_of(&sim, "r3").as_deref(), Some("CANCELED"));
    assert_eq!(status_of(&sim, "r4"), None);
    // Both fail.
    let r = replace(&mut c, "ALLOW_FAILURE", "r3", maker);
    assert_eq!(
        (r["status"].clone(), r["error"]["code"].clone()),
        (json!(400), json!(-2022)),
        "{r}"
    );
    assert_eq!(r["error"]["data"]["cancelResult"], "FAILURE");
    assert_eq!(r["error"]["data"]["newOrderResult"], "FAILURE");
    // A new order the filters refuse: refused as order.place would be, nothing cancelled.
    let bad = json!({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                     "price": px(bid - 450.0), "quantity": "0.000001"});
    let r = replace(&mut c, "ALLOW_FAILURE", "r2", bad);
    assert_eq!(
        (r["status"].clone(), r["error"]["code"].clone()),
        (json!(400), json!(-1013)),
        "{r}"
    );
    assert_eq!(r["error"]["msg"], "Filter failure: LOT_SIZE");
    assert_eq!(status_of(&sim, "r2").as_deref(), Some("NEW"));
    // Only r2 is open: its lock is all that is locked.
    let account = same_account(&sim);
    let (_, locked) = balance(&account, "USDT");
    let r2_px = Dec::parse(&px(bid - 400.0)).unwrap();
    assert!((f(locked) - f(r2_px) * 0.02).abs() < 1e-9, "{account:?}");
}

#[test]
fn cancel_restrictions_are_checked() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "", 5.0, "0", "0");
    let mut c = sim.client();
    c.logon();
    let (bid, _) = prices(&sim);
    limit(&mut c, "BUY", bid - 500.0, "0.01", "k1");
    let cancel = |c: &mut Client, restriction: &str| {
        c.call(
            "order.cancel",
            json!({"symbol": "BTCUSDT", "origClientOrderId": "k1",
                   "cancelRestrictions": restriction, "timestamp": now_ms()}),
        )
    };
    let r = cancel(&mut c, "ONLY_PARTIALLY_FILLED");
    assert_eq!(r["error"]["code"], -2011, "{r}");
    assert_eq!(
        r["error"]["msg"],
        "Order was not canceled due to cancel restrictions."
    );
    let r = cancel(&mut c, "SOMETIMES");
    assert_eq!(r["error"]["code"], -1145, "{r}");
    assert_eq!(status_of(&sim, "k1").as_deref(), Some("NEW"));
    let r = cancel(&mut c, "ONLY_NEW");
    assert_eq!(r["result"]["status"], "CANCELED", "{r}");
}

#[test]
fn amend_keep_priority_lowers_the_quantity_in_place() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "", 5.0, "0", "0");
    let mut c = sim.client();
    c.logon();
    let (bid, _) = prices(&sim);
    let price = bid - 300.0;
    let placed = limit(&mut c, "BUY", price, "0.05", "a1");
    let order_id = placed["result"]["orderId"].clone();
    let amend = |c: &mut Client, qty: &str, id: Option<&str>| {
        let mut params = json!({"symbol": "BTCUSDT", "origClientOrderId": "a1",
                                "newQty": qty, "timestamp": now_ms()});
        if let Some(id) = id {
            params["newClientOrderId"] = json!(id);
        }
        c.call("order.amend.keepPriority", params)
    };
    let r = amend(&mut c, "0.02", Some("a1b"));
    assert_eq!(r["status"], 200, "{r}");
    weighed(&placed, &r, 4);
    let amended = &r["result"]["amendedOrder"];
    assert_eq!(amended["orderId"], order_id);
    assert_eq!(amended["origClientOrderId"], "a1");
    assert_eq!(amended["clientOrderId"], "a1b");
    assert_eq!(amended["qty"], "0.02000000");
    assert_eq!(amended["status"], "NEW");
    c.events_until(Duration::from_secs(5), |e| {
        e.iter().any(|e| e["x"] == "REPLACED")
            && e.last()
                .is_some_and(|e| e["e"] == "outboundAccountPosition")
    });
    let report = c
        .events
        .iter()
        .find(|e| e["x"] == "REPLACED")
        .expect("REPLACED");
    assert_eq!(report["X"], "NEW");
    assert_eq!(report["q"], "0.02000000");
    assert_eq!(report["c"], "a1b");
    assert_eq!(report["C"], "a1");
    assert_eq!(report["i"], order_id);
    assert_eq!(report["I"], r["result"]["executionId"]);
    let account = same_account(&sim);
    let order = &account.orders[0];
    assert_eq!(
        (order.orig_qty.as_str(), order.client_order_id.as_str()),
        ("0.02", "a1b")
    );
    let (_, locked) = balance(&account, "USDT");
    assert!((f(locked) - f(Dec::parse(&px(price)).unwrap()) * 0.02).abs() < 1e-9);
    let position = c.events.last().unwrap();
    let usdt = position["B"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["a"] == "USDT")
        .unwrap();
    assert_eq!(dec(&usdt["l"]), locked);
    // Refusals: an increase, no change, an unknown order.
    let r = c.call(
        "order.amend.keepPriority",
        json!({"symbol": "BTCUSDT", "origClientOrderId": "a1b", "newQty": "0.03",
               "timestamp": now_ms()}),
    );
    assert_eq!(r["error"]["code"], -2038, "{r}");
    assert_eq!(
        r["error"]["msg"],
        "Order amend (quantity increase) is not supported."
    );
    let r = c.call(
        "order.amend.keepPriority",
        json!({"symbol": "BTCUSDT", "origClientOrderId": "a1b", "newQty": "0.02",
               "timestamp": now_ms()}),
    );
    assert_eq!(r["error"]["code"], -2038, "{r}");
    let r = amend(&mut c, "0.01", None);
    assert_eq!(r["error"]["code"], -2038, "the old client id is gone: {r}");
    let r = c.call(
        "openOrders.status",
        json!({"symbol": "BTCUSDT", "timestamp": now_ms()}),
    );
    assert_eq!(r["result"][0]["origQty"], "0.02000000", "{r}");
    assert_eq!(r["result"][0]["clientOrderId"], "a1b", "{r}");
}

#[test]
fn my_trades_and_account_status_agree_with_the_account() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "", 5.0, "0.0002", "0.001");
    let mut c = sim.client();
    c.logon();
    let mut order_ids = Vec::new();
    for id in ["t1", "t2"] {
        let r = c.call(
            "order.place",
            json!({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "2",
                   "newClientOrderId": id, "timestamp": now_ms()}),
        );
        assert_eq!(r["result"]["status"], "FILLED", "{r}");
        order_ids.push(r["result"]["orderId"].as_u64().unwrap());
    }
    let account = same_account(&sim);
    assert!(account.trades.len() >= 3, "{account:?}");
    let before = c.call("time", json!({}));
    let all = c.call(
        "myTrades",
        json!({"symbol": "BTCUSDT", "timestamp": now_ms()}),
    );
    weighed(&before, &all, 20);
    let list = all["result"].as_array().expect("trades");
    assert_eq!(list.len(), account.trades.len());
    for (got, want) in list.iter().zip(&account.trades) {
        assert_eq!(got["id"], json!(want.id));
        assert_eq!(got["orderId"], json!(want.order_id));
        assert_eq!(dec(&got["price"]), Dec::parse(&want.price).unwrap());
        assert_eq!(dec(&got["qty"]), Dec::parse(&want.qty).unwrap());
        assert_eq!(dec(&got["quoteQty"]), Dec::parse(&want.quote_qty).unwrap());
        assert_eq!(
            dec(&got["commission"]),
            Dec::parse(&want.commission).unwrap()
        );
        assert_eq!(got["commissionAsset"], "BTC");
        assert_eq!(
            (got["isBuyer"].clone(), got["isMaker"].clone()),
            (json!(true), json!(false))
        );
    }
    // By order: only its trades, weight 5.
    let by_order = c.call(
        "myTrades",
        json!({"symbol": "BTCUSDT", "orderId": order_ids[0], "timestamp": now_ms()}),
    );
    weighed(&all, &by_order, 5);
    let mine: Vec<u64> = account
        .trades
        .iter()
        .filter(|t| t.order_id == order_ids[0])
        .map(|t| t.id)
        .collect();
    let got: Vec<u64> = by_order["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert_eq!(got, mine);
    // From an id, limited; the most recent when only limited.
    let second = account.trades[1].id;
    let r = c.call(
        "myTrades",
        json!({"symbol": "BTCUSDT", "fromId": second, "limit": 2, "timestamp": now_ms()}),
    );
    let ids: Vec<u64> = r["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [second, account.trades[2].id]);
    let r = c.call(
        "myTrades",
        json!({"symbol": "BTCUSDT", "limit": 1, "timestamp": now_ms()}),
    );
    assert_eq!(
        r["result"][0]["id"],
        json!(account.trades.last().unwrap().id)
    );
    let first_time = account.trades[0].time;
    let r = c.call(
        "myTrades",
        json!({"symbol": "BTCUSDT", "startTime": first_time + 3_600_000, "timestamp": now_ms()}),
    );
    assert_eq!(r["result"], json!([]), "{r}");
    let r = c.call(
        "myTrades",
        json!({"symbol": "BTCUSDT", "fromId": 1, "startTime": first_time, "timestamp": now_ms()}),
    );
    assert_eq!(r["error"]["code"], -1128, "{r}");
    let r = c.call(
        "myTrades",
        json!({"symbol": "BTCUSDT", "limit": 1001, "timestamp": now_ms()}),
    );
    assert_eq!(r["error"]["code"], -1130, "{r}");
    // account.status.
    let before = c.call("time", json!({}));
    let r = c.call("account.status", json!({"timestamp": now_ms()}));
    weighed(&before, &r, 20);
    let status = &r["result"];
    assert_eq!(status["makerCommission"], 2, "{r}");
    assert_eq!(status["takerCommission"], 10);
    assert_eq!(status["commissionRates"]["maker"], "0.00020000");
    assert_eq!(status["commissionRates"]["taker"], "0.00100000");
    assert_eq!(status["accountType"], "SPOT");
    let account = same_account(&sim);
    let balances = status["balances"].as_array().unwrap();
    assert_eq!(balances.len(), account.balances.len());
    for (got, want) in balances.iter().zip(&account.balances) {
        assert_eq!(got["asset"], json!(want.asset));
        assert_eq!(dec(&got["free"]), Dec::parse(&want.free).unwrap());
        assert_eq!(dec(&got["locked"]), Dec::parse(&want.locked).unwrap());
    }
}
