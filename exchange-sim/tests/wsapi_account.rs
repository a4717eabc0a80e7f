//! The WS API account as the end-to-end comparison reads it, over real TLS on loopback against
//! the live exchange playing the recorded BTCUSDT market; requests are written as raw JSON
//! (Ed25519 logon signed with pinion's signer).
//!
//! - `sim_account_matches_the_reports_and_charges_commission`: a taker fill and a cancelled
//!   resting order; `/sim/account` (HTTP) equals [`LiveExchange::sim_account`], its trades equal
//!   the `TRADE` reports (`t`, `l`, `L`, `n`, `N`), commission is charged in the asset received
//!   at the taker rate, and the balances are exactly start ± fills − commission.
//! - `resting_orders_fill_behind_their_queue`: orders joined at both best levels; the one the
//!   market reaches fills as maker, possibly in parts, each part one `TRADE` report followed by an `outboundAccountPosition`,
//!   with the maker rate charged, and `/sim/account` agreeing to the last unit.
//! - `bad_balances_and_rates_are_refused_at_start`: a balance that is not a decimal, a rate of
//!   1 or more.

mod common;

use std::time::Duration;

use common::*;
use pinion_exchange_sim::Dec;
use serde_json::{Value, json};

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

#[test]
fn bad_balances_and_rates_are_refused_at_start() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    for (balance, rate, why) in [
        ("12,5", "0", "WS API start balances must be decimals"),
        ("1", "1", "WS API commission rates must be below 1"),
    ] {
        let mut api = pinion_exchange_sim::WsApiConfig::new(API_KEY);
        api.balances = vec![("USDT".into(), balance.into())];
        api.taker_commission = Dec::parse(rate).unwrap();
        let mut config = pinion_exchange_sim::LiveConfig::spot();
        config.ws_api = Some(api);
        let path = path.clone();
        let err = pinion_exchange_sim::LiveExchange::start(
            "127.0.0.1:0".parse().unwrap(),
            config,
            None,
            move || pinion_feed::source::open(&path),
        )
        .expect_err("refused");
        assert!(err.to_string().contains(why), "{err}");
    }
}
