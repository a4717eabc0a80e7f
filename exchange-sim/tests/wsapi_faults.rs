//! The order-path faults added to [`OrderFaultPlan`](pinion_exchange_sim::OrderFaultPlan),
//! each doing what its documentation says, against the live exchange over TLS.
//!
//! - `server_errors_leave_the_order_executed_or_not`: `o5xx` (status 500, executed) and
//!   `o5xxx` (status 500, not executed), seen in `/sim/account`.
//! - `late_answers_come_after_the_user_data`: `olate:1:400`.
//! - `a_revoked_key_is_refused_everywhere`: `revoke:1`.
//! - `a_skewed_clock_moves_time_and_the_recv_window`: `skew:10000` and `skew:-10000`.
//! - `a_client_that_does_not_wait_after_429_is_banned`: `o429burst:2:2`, then 418 until the
//!   ban ends.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn buy_market(c: &mut Client, id: &str) -> Value {
    c.call(
        "order.place",
        json!({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01",
               "newClientOrderId": id, "timestamp": now_ms()}),
    )
}

fn ids(sim: &Sim) -> Vec<String> {
    sim.exchange
        .sim_account()
        .orders
        .into_iter()
        .map(|o| o.client_order_id)
        .collect()
}

#[test]
fn server_errors_leave_the_order_executed_or_not() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "o5xx:1,o5xxx:2", 5.0, "0", "0");
    let mut c = sim.client();
    c.logon();
    for id in ["e1", "e2"] {
        let r = buy_market(&mut c, id);
        assert_eq!(r["status"], 500, "{r}");
        assert_eq!(r["error"]["code"], -1000, "{r}");
        assert_eq!(
            r["error"]["msg"],
            "An unknown error occurred while processing the request."
        );
    }
    let r = buy_market(&mut c, "e3");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(ids(&sim), ["e1", "e3"]);
    assert_eq!(sim.exchange.sim_account().orders[0].status, "FILLED");
}

#[test]
fn late_answers_come_after_the_user_data() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "olate:1:400", 5.0, "0", "0");
    let mut c = sim.client();
    c.logon();
    let sent = Instant::now();
    let r = buy_market(&mut c, "l1");
    let waited = sent.elapsed();
    assert_eq!(r["status"], 200, "{r}");
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    // The order's reports were read before its answer.
    let kinds: Vec<&str> = c
        .events
        .iter()
        .filter(|e| e["c"] == "l1")
        .map(|e| e["x"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"NEW"), "{:?}", c.events);
    assert!(kinds.contains(&"TRADE"), "{:?}", c.events);
    // The next order is answered at once.
    let sent = Instant::now();
    assert_eq!(buy_market(&mut c, "l2")["status"], 200);
    assert!(sent.elapsed() < Duration::from_millis(300));
}

#[test]
fn a_revoked_key_is_refused_everywhere() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "revoke:1", 5.0, "0", "0");
    let mut c = sim.client();
    c.logon();
    assert_eq!(buy_market(&mut c, "v1")["status"], 200);
    let refused = |r: &Value| {
        assert_eq!(r["status"], 400, "{r}");
        assert_eq!(r["error"]["code"], -2015, "{r}");
        assert_eq!(
            r["error"]["msg"],
            "Invalid API-key, IP, or permissions for action."
        );
    };
    refused(&buy_market(&mut c, "v2"));
    refused(&c.call(
        "openOrders.status",
        json!({"symbol": "BTCUSDT", "timestamp": now_ms()}),
    ));
    assert_eq!(c.call("time", json!({}))["status"], 200);
    let mut other = sim.client();
    refused(&other.logon_at(now_ms()));
    assert_eq!(ids(&sim), ["v1"]);
}

#[test]
fn a_skewed_clock_moves_time_and_the_recv_window() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    for (skew, ahead) in [(10_000i64, true), (-10_000, false)] {
        let sim = start(path.clone(), &format!("skew:{skew}"), 5.0, "0", "0");
        let mut c = sim.client();
        let t0 = now_ms();
        let r = c.call("time", json!({}));
        let server = r["result"]["serverTime"].as_i64().unwrap();
        let off = server - t0 as i64;
        assert!((off - skew).abs() < 1000, "{skew}: {r}");
        // A timestamp from the client's own clock is refused; one on the server's clock passes.
        let r = c.logon_at(now_ms());
        assert_eq!(r["error"]["code"], -1021, "{skew}: {r}");
        let want = if ahead {
            "Timestamp for this request is outside of the recvWindow."
        } else {
            "Timestamp for this request was 1000ms ahead of the server's time."
        };
        assert_eq!(r["error"]["msg"], want);
        let r = c.logon_at(now_ms().saturating_add_signed(skew));
        assert_eq!(r["status"], 200, "{skew}: {r}");
        let r = c.call("session.status", json!({}));
        let server = r["result"]["serverTime"].as_i64().unwrap();
        assert!((server - now_ms() as i64 - skew).abs() < 1000, "{r}");
    }
}

#[test]
fn a_client_that_does_not_wait_after_429_is_banned() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path.clone(), "o429burst:2:2", 5.0, "0", "0");
    let mut c = sim.client();
    c.logon();
    assert_eq!(buy_market(&mut c, "b1")["status"], 200);
    let too_many = |r: &Value| -> u64 {
        assert_eq!(r["status"], 429, "{r}");
        assert_eq!(r["error"]["code"], -1015, "{r}");
        let retry = r["error"]["data"]["retryAfter"]
            .as_u64()
            .expect("retryAfter");
        assert!(retry > now_ms() && retry <= now_ms() + 1000, "{r}");
        retry
    };
    let wait_until = |t: u64| {
        while now_ms() <= t {
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // A client that waits: the burst's two answers, then service again.
    let retry = too_many(&buy_market(&mut c, "b2"));
    wait_until(retry);
    let retry = too_many(&buy_market(&mut c, "b3"));
    wait_until(retry);
    assert_eq!(buy_market(&mut c, "b4")["status"], 200);
    assert_eq!(ids(&sim), ["b1", "b4"]);
    // Another burst, and a client that does not wait.
    drop(c);
    let sim = start(path, "o429burst:1:3", 5.0, "0", "0");
    let mut c = sim.client();
    c.logon();
    too_many(&buy_market(&mut c, "n1"));
    let r = buy_market(&mut c, "n2");
    assert_eq!(r["status"], 418, "{r}");
    assert_eq!(r["error"]["code"], -1003, "{r}");
    let until = r["error"]["data"]["retryAfter"]
        .as_u64()
        .expect("retryAfter");
    assert!(until >= now_ms() + 4000, "{r}");
    assert!(
        r["error"]["msg"]
            .as_str()
            .unwrap()
            .contains(&format!("IP banned until {until}")),
        "{r}"
    );
    // Banned: every request, not only orders.
    assert_eq!(c.call("time", json!({}))["status"], 418);
    wait_until(until);
    assert_eq!(c.call("time", json!({}))["status"], 200);
    assert!(ids(&sim).is_empty());
}
