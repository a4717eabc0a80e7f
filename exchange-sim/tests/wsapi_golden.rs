//! Golden shape checks: every answer and user data event the WS API sends, compared field by
//! field (names, JSON types, nesting, decimals written as strings) with the exchange's
//! documented payloads (`web-socket-api.md`, `user-data-stream.md`). The expected field sets
//! are written out here: fields the documentation marks as always present are required, its
//! conditional fields are allowed, anything else is an error.
//!
//! One test, `answers_and_events_have_the_documented_shapes`, drives a session through
//! `order.place` (`ACK`, `RESULT`, `FULL`, an expiring IOC), `order.status`,
//! `openOrders.status`, `order.cancel`, `order.cancelReplace` (success and `-2021`),
//! `order.amend.keepPriority`, `myTrades` and `account.status`, and checks every
//! `executionReport` and `outboundAccountPosition` it received.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// The JSON type a field must have.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A string.
    Str,
    /// A string holding a decimal (`"0.00100000"`).
    Dec,
    /// An integer.
    Int,
    /// A boolean.
    Bool,
    /// A string or null.
    StrOrNull,
    /// An object of this shape.
    Obj(&'static Shape),
    /// An array whose elements have this shape.
    Arr(&'static Shape),
    /// An array of strings.
    Strs,
}

/// Required fields, then the conditional ones that may also appear.
#[derive(Debug)]
struct Shape {
    required: &'static [(&'static str, Kind)],
    optional: &'static [(&'static str, Kind)],
}

use Kind::*;

const ORDER_CONDITIONAL: &[(&str, Kind)] = &[
    ("expiryReason", Str),
    ("icebergQty", Dec),
    ("preventedMatchId", Int),
    ("preventedQuantity", Dec),
    ("stopPrice", Dec),
    ("strategyId", Int),
    ("strategyType", Int),
    ("trailingDelta", Int),
    ("trailingTime", Int),
];
const FILL: Shape = Shape {
    required: &[
        ("price", Dec),
        ("qty", Dec),
        ("commission", Dec),
        ("commissionAsset", Str),
        ("tradeId", Int),
    ],
    optional: &[],
};
const PLACE_ACK: Shape = Shape {
    required: &[
        ("symbol", Str),
        ("orderId", Int),
        ("orderListId", Int),
        ("clientOrderId", Str),
        ("transactTime", Int),
    ],
    optional: &[],
};
const PLACE_RESULT: Shape = Shape {
    required: &[
        ("symbol", Str),
        ("orderId", Int),
        ("orderListId", Int),
        ("clientOrderId", Str),
        ("transactTime", Int),
        ("price", Dec),
        ("origQty", Dec),
        ("executedQty", Dec),
        ("origQuoteOrderQty", Dec),
        ("cummulativeQuoteQty", Dec),
        ("status", Str),
        ("timeInForce", Str),
        ("type", Str),
        ("side", Str),
        ("workingTime", Int),
        ("selfTradePreventionMode", Str),
    ],
    optional: ORDER_CONDITIONAL,
};
const PLACE_FULL: Shape = Shape {
    required: &[
        ("symbol", Str),
        ("orderId", Int),
        ("orderListId", Int),
        ("clientOrderId", Str),
        ("transactTime", Int),
        ("price", Dec),
        ("origQty", Dec),
        ("executedQty", Dec),
        ("origQuoteOrderQty", Dec),
        ("cummulativeQuoteQty", Dec),
        ("status", Str),
        ("timeInForce", Str),
        ("type", Str),
        ("side", Str),
        ("workingTime", Int),
        ("selfTradePreventionMode", Str),
        ("fills", Arr(&FILL)),
    ],
    optional: ORDER_CONDITIONAL,
};
const CANCEL: Shape = Shape {
    required: &[
        ("symbol", Str),
        ("origClientOrderId", Str),
        ("orderId", Int),
        ("orderListId", Int),
        ("clientOrderId", Str),
        ("transactTime", Int),
        ("price", Dec),
        ("origQty", Dec),
        ("executedQty", Dec),
        ("origQuoteOrderQty", Dec),
        ("cummulativeQuoteQty", Dec),
        ("status", Str),
        ("timeInForce", Str),
        ("type", Str),
        ("side", Str),
        ("selfTradePreventionMode", Str),
    ],
    optional: ORDER_CONDITIONAL,
};
const STATUS: Shape = Shape {
    required: &[
        ("symbol", Str),
        ("orderId", Int),
        ("orderListId", Int),
        ("clientOrderId", Str),
        ("price", Dec),
        ("origQty", Dec),
        ("executedQty", Dec),
        ("cummulativeQuoteQty", Dec),
        ("status", Str),
        ("timeInForce", Str),
        ("type", Str),
        ("side", Str),
        ("stopPrice", Dec),
        ("icebergQty", Dec),
        ("time", Int),
        ("updateTime", Int),
        ("isWorking", Bool),
        ("workingTime", Int),
        ("origQuoteOrderQty", Dec),
        ("selfTradePreventionMode", Str),
    ],
    optional: ORDER_CONDITIONAL,
};
const ERROR_BODY: Shape = Shape {
    required: &[("code", Int), ("msg", Str)],
    optional: &[],
};
const REPLACE_OK: Shape = Shape {
    required: &[
        ("cancelResult", Str),
        ("newOrderResult", Str),
        ("cancelResponse", Obj(&CANCEL)),
        ("newOrderResponse", Obj(&PLACE_FULL)),
    ],
    optional: &[],
};
const REPLACE_NEW_FAILED: Shape = Shape {
    required: &[
        ("cancelResult", Str),
        ("newOrderResult", Str),
        ("cancelResponse", Obj(&CANCEL)),
        ("newOrderResponse", Obj(&ERROR_BODY)),
    ],
    optional: &[],
};
const REPLACE_ERROR: Shape = Shape {
    required: &[
        ("code", Int),
        ("msg", Str),
        ("data", Obj(&REPLACE_NEW_FAILED)),
    ],
    optional: &[],
};
const AMENDED: Shape = Shape {
    required: &[
        ("symbol", Str),
        ("orderId", Int),
        ("orderListId", Int),
        ("origClientOrderId", Str),
        ("clientOrderId", Str),
        ("price", Dec),
        ("qty", Dec),
        ("executedQty", Dec),
        ("preventedQty", Dec),
        ("quoteOrderQty", Dec),
        ("cumulativeQuoteQty", Dec),
        ("status", Str),
        ("timeInForce", Str),
        ("type", Str),
        ("side", Str),
        ("workingTime", Int),
        ("selfTradePreventionMode", Str),
    ],
    optional: &[],
};
const AMEND: Shape = Shape {
    required: &[
        ("transactTime", Int),
        ("executionId", Int),
        ("amendedOrder", Obj(&AMENDED)),
    ],
    optional: &[],
};
const MY_TRADE: Shape = Shape {
    required: &[
        ("symbol", Str),
        ("id", Int),
        ("orderId", Int),
        ("orderListId", Int),
        ("price", Dec),
        ("qty", Dec),
        ("quoteQty", Dec),
        ("commission", Dec),
        ("commissionAsset", Str),
        ("time", Int),
        ("isBuyer", Bool),
        ("isMaker", Bool),
        ("isBestMatch", Bool),
    ],
    optional: &[],
};
const RATES: Shape = Shape {
    required: &[
        ("maker", Dec),
        ("taker", Dec),
        ("buyer", Dec),
        ("seller", Dec),
    ],
    optional: &[],
};
const BALANCE: Shape = Shape {
    required: &[("asset", Str), ("free", Dec), ("locked", Dec)],
    optional: &[],
};
const ACCOUNT: Shape = Shape {
    required: &[
        ("makerCommission", Int),
        ("takerCommission", Int),
        ("buyerCommission", Int),
        ("sellerCommission", Int),
        ("canTrade", Bool),
        ("canWithdraw", Bool),
        ("canDeposit", Bool),
        ("commissionRates", Obj(&RATES)),
        ("brokered", Bool),
        ("requireSelfTradePrevention", Bool),
        ("preventSor", Bool),
        ("updateTime", Int),
        ("accountType", Str),
        ("balances", Arr(&BALANCE)),
        ("permissions", Strs),
        ("uid", Int),
    ],
    optional: &[],
};
const EXECUTION_REPORT: Shape = Shape {
    required: &[
        ("e", Str),
        ("E", Int),
        ("s", Str),
        ("c", Str),
        ("S", Str),
        ("o", Str),
        ("f", Str),
        ("q", Dec),
        ("p", Dec),
        ("P", Dec),
        ("F", Dec),
        ("g", Int),
        ("C", Str),
        ("x", Str),
        ("X", Str),
        ("r", Str),
        ("i", Int),
        ("l", Dec),
        ("z", Dec),
        ("L", Dec),
        ("n", Dec),
        ("N", StrOrNull),
        ("T", Int),
        ("t", Int),
        ("I", Int),
        ("w", Bool),
        ("m", Bool),
        ("M", Bool),
        ("O", Int),
        ("Z", Dec),
        ("Y", Dec),
        ("Q", Dec),
        ("V", Str),
    ],
    optional: &[("W", Int), ("eR", Str), ("v", Int), ("j", Int), ("J", Int)],
};
const POSITION_BALANCE: Shape = Shape {
    required: &[("a", Str), ("f", Dec), ("l", Dec)],
    optional: &[],
};
const ACCOUNT_POSITION: Shape = Shape {
    required: &[
        ("e", Str),
        ("E", Int),
        ("u", Int),
        ("B", Arr(&POSITION_BALANCE)),
    ],
    optional: &[],
};

fn is_decimal(text: &str) -> bool {
    let (int, frac) = text.split_once('.').unwrap_or((text, "0"));
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Checks `v` against `shape`; `at` names where it is, for the message.
fn check(v: &Value, shape: &Shape, at: &str) {
    let object = v
        .as_object()
        .unwrap_or_else(|| panic!("{at}: not an object: {v}"));
    for (name, _) in shape.required {
        assert!(object.contains_key(*name), "{at}: missing {name:?} in {v}");
    }
    for (name, value) in object {
        let kind = shape
            .required
            .iter()
            .chain(shape.optional)
            .find(|(n, _)| n == name)
            .map(|(_, k)| *k)
            .unwrap_or_else(|| panic!("{at}: undocumented field {name:?} in {v}"));
        let here = format!("{at}.{name}");
        let ok = match kind {
            Str => value.is_string(),
            Dec => value.as_str().is_some_and(is_decimal),
            Int => value.is_i64() || value.is_u64(),
            Bool => value.is_boolean(),
            StrOrNull => value.is_string() || value.is_null(),
            Strs => value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            Obj(inner) => {
                check(value, inner, &here);
                true
            }
            Arr(inner) => {
                let items = value
                    .as_array()
                    .unwrap_or_else(|| panic!("{here}: not an array: {value}"));
                for (i, item) in items.iter().enumerate() {
                    check(item, inner, &format!("{here}[{i}]"));
                }
                true
            }
        };
        assert!(ok, "{here}: expected {kind:?}, got {value}");
    }
}

/// The answer envelope: `id`, `status`, `result` or `error`, `rateLimits`.
fn envelope(r: &Value) {
    const LIMIT: Shape = Shape {
        required: &[
            ("rateLimitType", Str),
            ("interval", Str),
            ("intervalNum", Int),
            ("limit", Int),
            ("count", Int),
        ],
        optional: &[],
    };
    let object = r.as_object().expect("answer object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let want: &[&str] = if object.contains_key("result") {
        &["id", "rateLimits", "result", "status"]
    } else {
        &["error", "id", "rateLimits", "status"]
    };
    assert_eq!(keys, want, "{r}");
    assert!(r["status"].is_u64(), "{r}");
    for (i, l) in r["rateLimits"]
        .as_array()
        .expect("array")
        .iter()
        .enumerate()
    {
        check(l, &LIMIT, &format!("rateLimits[{i}]"));
    }
}

fn ok(r: &Value, shape: &Shape, what: &str) {
    envelope(r);
    assert_eq!(r["status"], 200, "{what}: {r}");
    check(&r["result"], shape, what);
}

#[test]
fn answers_and_events_have_the_documented_shapes() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path, "", 5.0, "0.0002", "0.001");
    let mut c = sim.client();
    c.logon();
    let (bid, ask) = best(&sim);
    let (bid, ask): (f64, f64) = (bid.parse().unwrap(), ask.parse().unwrap());
    let px = |x: f64| format!("{x:.2}");
    let place = |c: &mut Client, extra: Value| {
        let mut params = json!({"symbol": "BTCUSDT", "timestamp": now_ms()});
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        c.call("order.place", params)
    };
    let rest = |id: &str, resp: &str| {
        json!({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": px(bid - 400.0),
               "quantity": "0.01", "newClientOrderId": id, "newOrderRespType": resp})
    };
    ok(
        &place(&mut c, rest("g1", "ACK")),
        &PLACE_ACK,
        "order.place ACK",
    );
    ok(
        &place(&mut c, rest("g2", "RESULT")),
        &PLACE_RESULT,
        "order.place RESULT",
    );
    ok(
        &place(&mut c, rest("g3", "FULL")),
        &PLACE_FULL,
        "order.place FULL",
    );
    let taker = place(
        &mut c,
        json!({"side": "BUY", "type": "LIMIT", "timeInForce": "IOC", "price": px(ask + 30.0),
               "quantity": "0.2", "newClientOrderId": "g4"}),
    );
    ok(&taker, &PLACE_FULL, "order.place FULL with fills");
    assert!(
        !taker["result"]["fills"].as_array().unwrap().is_empty(),
        "{taker}"
    );
    let expired = place(
        &mut c,
        json!({"side": "BUY", "type": "LIMIT", "timeInForce": "IOC", "price": px(bid - 900.0),
               "quantity": "0.01", "newClientOrderId": "g5"}),
    );
    ok(&expired, &PLACE_FULL, "order.place expired IOC");
    assert_eq!(
        expired["result"]["expiryReason"], "UNFILLED_IOC_QUANTITY_EXPIRED",
        "{expired}"
    );
    let status = c.call(
        "order.status",
        json!({"symbol": "BTCUSDT", "origClientOrderId": "g1", "timestamp": now_ms()}),
    );
    ok(&status, &STATUS, "order.status");
    let open = c.call(
        "openOrders.status",
        json!({"symbol": "BTCUSDT", "timestamp": now_ms()}),
    );
    envelope(&open);
    let open_orders = open["result"].as_array().expect("array");
    assert_eq!(open_orders.len(), 3, "{open}");
    for (i, o) in open_orders.iter().enumerate() {
        check(o, &STATUS, &format!("openOrders.status[{i}]"));
    }
    let cancel = c.call(
        "order.cancel",
        json!({"symbol": "BTCUSDT", "origClientOrderId": "g1", "timestamp": now_ms()}),
    );
    ok(&cancel, &CANCEL, "order.cancel");
    let replaced = c.call(
        "order.cancelReplace",
        json!({"symbol": "BTCUSDT", "cancelReplaceMode": "STOP_ON_FAILURE",
               "cancelOrigClientOrderId": "g2", "side": "BUY", "type": "LIMIT",
               "timeInForce": "GTC", "price": px(bid - 450.0), "quantity": "0.01",
               "newClientOrderId": "g6", "timestamp": now_ms()}),
    );
    ok(&replaced, &REPLACE_OK, "order.cancelReplace");
    let half = c.call(
        "order.cancelReplace",
        json!({"symbol": "BTCUSDT", "cancelReplaceMode": "ALLOW_FAILURE",
               "cancelOrigClientOrderId": "g6", "side": "BUY", "type": "LIMIT_MAKER",
               "price": px(ask + 100.0), "quantity": "0.01", "timestamp": now_ms()}),
    );
    envelope(&half);
    assert_eq!(half["status"], 409, "{half}");
    check(&half["error"], &REPLACE_ERROR, "order.cancelReplace -2021");
    let amended = c.call(
        "order.amend.keepPriority",
        json!({"symbol": "BTCUSDT", "origClientOrderId": "g3", "newQty": "0.005",
               "timestamp": now_ms()}),
    );
    ok(&amended, &AMEND, "order.amend.keepPriority");
    let trades = c.call(
        "myTrades",
        json!({"symbol": "BTCUSDT", "timestamp": now_ms()}),
    );
    envelope(&trades);
    let list = trades["result"].as_array().expect("array");
    assert!(!list.is_empty(), "{trades}");
    for (i, t) in list.iter().enumerate() {
        check(t, &MY_TRADE, &format!("myTrades[{i}]"));
    }
    let account = c.call("account.status", json!({"timestamp": now_ms()}));
    ok(&account, &ACCOUNT, "account.status");
    // Every event received, by type; each kind the session caused is there.
    c.events_until(Duration::from_secs(5), |e| {
        e.iter().any(|e| e["x"] == "REPLACED")
            && e.last()
                .is_some_and(|e| e["e"] == "outboundAccountPosition")
    });
    let mut seen = std::collections::BTreeSet::new();
    for (i, e) in c.events.iter().enumerate() {
        match e["e"].as_str() {
            Some("executionReport") => {
                check(e, &EXECUTION_REPORT, &format!("event[{i}] executionReport"));
                seen.insert(e["x"].as_str().unwrap().to_owned());
                if e["X"] == "EXPIRED" {
                    assert!(e.get("eR").is_some(), "{e}");
                }
            }
            Some("outboundAccountPosition") => {
                check(e, &ACCOUNT_POSITION, &format!("event[{i}] position"));
                seen.insert("outboundAccountPosition".to_owned());
            }
            _ => panic!("unexpected event {e}"),
        }
    }
    let seen: Vec<&str> = seen.iter().map(String::as_str).collect();
    assert_eq!(
        seen,
        [
            "CANCELED",
            "EXPIRED",
            "NEW",
            "REPLACED",
            "TRADE",
            "outboundAccountPosition"
        ]
    );
}
