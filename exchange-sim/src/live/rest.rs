//! The live exchange's REST side: depth snapshots from the truth book, `exchangeInfo`, `ping`,
//! `time`, the wallet API's signed `GET /sapi/v1/account/apiRestrictions` (the WS API
//! account's [`KeyProfile`](crate::wsapi::KeyProfile); weight 1), the inspection endpoints
//! `/sim/book`, `/sim/stats` and `/sim/account`, the control `/sim/print` (a trade print put
//! through the WS API account, to move the market through a stop on cue), with
//! Binance's request weights and a per-IP budget per fixed window. One connection serves requests until the
//! client asks to close (`Connection: close`), goes quiet for the read timeout, or leaves.
//!
//! Depth (`/api/v3/depth` Spot, `/fapi/v1/depth` USD-M, `/dapi/v1/depth` COIN-M):
//! - Spot: `limit` default 100, above 5000 served as 5000; weight 5 (≤100), 25 (≤500),
//!   50 (≤1000), 250 (≤5000).
//! - Futures: `limit` ∈ {5, 10, 20, 50, 100, 500, 1000}, default 500; weight 2 (≤50), 5 (100),
//!   10 (500), 20 (1000); the body adds `E` (now) and `T` (the last diff's transaction time);
//!   COIN-M also `symbol` and `pair`.
//!
//! Every weighed answer carries `x-mbx-used-weight` and `x-mbx-used-weight-1m`; past the budget
//! the answer is `429` with `Retry-After` (seconds to the end of the window) and code -1003.

use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use super::faults::Fault;
use super::{Dec, LiveShared, now_ms};
use crate::http::{self, RequestHead};
use crate::tls::Conn;

/// How long a keep-alive connection may stay idle between requests.
const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(60);

/// The API family a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Spot,
    UsdM,
    CoinM,
}

/// One answer.
struct Response {
    status: &'static str,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Response {
    fn json(status: &'static str, body: Vec<u8>) -> Self {
        Response {
            status,
            body,
            headers: Vec::new(),
        }
    }

    fn error(status: &'static str, code: i64, msg: &str) -> Self {
        let body = serde_json::to_vec(&json!({"code": code, "msg": msg})).unwrap_or_default();
        Response::json(status, body)
    }
}

/// Serves requests on one connection, starting with `head`.
pub(crate) fn serve(mut stream: Conn, head: RequestHead, shared: &LiveShared, ip: IpAddr) {
    // An idle keep-alive connection is kept this long, as a web front end would.
    let _ = stream.tcp().set_read_timeout(Some(KEEP_ALIVE_IDLE));
    let id = shared.next_rest.fetch_add(1, Ordering::SeqCst);
    if let Ok(socket) = stream.tcp().try_clone() {
        let mut sockets = shared
            .rest_sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        sockets.push((id, socket));
    }
    serve_requests(&mut stream, head, shared, ip);
    shared
        .rest_sockets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(i, _)| *i != id);
    stream.close_notify();
}

fn serve_requests(stream: &mut Conn, head: RequestHead, shared: &LiveShared, ip: IpAddr) {
    let mut head = head;
    loop {
        shared.count(|c| &c.rest_requests);
        let keep = !head.close && !head.upgrade_websocket;
        let response = answer(&head, shared, ip);
        if write(stream, &response, keep).is_err() || !keep {
            break;
        }
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        match http::read_head(stream) {
            Ok(next) => head = next,
            Err(http::HeadError::Closed | http::HeadError::Io(_)) => break,
            Err(_) => {
                shared.count(|c| &c.bad_requests);
                let _ = write(
                    stream,
                    &Response::error("400 Bad Request", -1100, "Bad request."),
                    false,
                );
                break;
            }
        }
    }
}

fn write(stream: &mut Conn, response: &Response, keep: bool) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\nConnection: {}\r\n",
        response.status,
        response.body.len(),
        if keep { "keep-alive" } else { "close" }
    );
    for (name, value) in &response.headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&response.body)?;
    stream.flush()
}

fn answer(head: &RequestHead, shared: &LiveShared, ip: IpAddr) -> Response {
    if head.method != "GET" || head.upgrade_websocket {
        shared.count(|c| &c.bad_requests);
        return Response::error("405 Method Not Allowed", -1000, "Only GET is served here.");
    }
    let path = head.path.as_str();
    if path == "/sim/book" {
        return sim_book(head, shared);
    }
    if path == "/sim/account" {
        let body = serde_json::to_vec(&shared.ws_api.snapshot()).unwrap_or_default();
        return Response::json("200 OK", body);
    }
    if path == "/sapi/v1/account/apiRestrictions" {
        return weighed(shared, ip, 1, || {
            match crate::wsapi::api_restrictions(shared, head) {
                Ok(body) => Response::json("200 OK", serde_json::to_vec(&body).unwrap_or_default()),
                Err((status, code, msg)) => Response::error(status, code, msg),
            }
        });
    }
    if path == "/sim/print" {
        return sim_print(head, shared);
    }
    if path == "/sim/stats" {
        let body = serde_json::to_vec(&shared.stats()).unwrap_or_default();
        return Response::json("200 OK", body);
    }
    let (family, endpoint) = if let Some(e) = path.strip_prefix("/api/v3/") {
        (Family::Spot, e)
    } else if let Some(e) = path.strip_prefix("/fapi/v1/") {
        (Family::UsdM, e)
    } else if let Some(e) = path.strip_prefix("/dapi/v1/") {
        (Family::CoinM, e)
    } else {
        shared.count(|c| &c.bad_requests);
        return Response::error("404 Not Found", -1000, "Unknown endpoint.");
    };
    match endpoint {
        "ping" => weighed(shared, ip, 1, || Response::json("200 OK", b"{}".to_vec())),
        "time" => weighed(shared, ip, 1, || {
            Response::json(
                "200 OK",
                format!("{{\"serverTime\":{}}}", now_ms()).into_bytes(),
            )
        }),
        "exchangeInfo" => {
            let weight = if family == Family::Spot { 20 } else { 1 };
            weighed(shared, ip, weight, || exchange_info(family, shared))
        }
        "depth" => depth(head, family, shared, ip),
        _ => {
            shared.count(|c| &c.bad_requests);
            Response::error("404 Not Found", -1000, "Unknown endpoint.")
        }
    }
}

/// Charges `weight` to `ip`'s window; the answer `make` gives, or 429 past the budget.
fn weighed(
    shared: &LiveShared,
    ip: IpAddr,
    weight: u64,
    make: impl FnOnce() -> Response,
) -> Response {
    let config = &shared.config;
    let window_ms = u64::try_from(config.weight_window.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let now = now_ms();
    let window = now / window_ms;
    let used = {
        let mut rest = shared.rest();
        let used = rest.weight.entry((ip, window)).or_insert(0);
        *used += weight;
        *used
    };
    shared
        .counters
        .weight_used
        .fetch_add(weight, Ordering::Relaxed);
    let weight_headers = |r: &mut Response| {
        r.headers.push(("x-mbx-used-weight", used.to_string()));
        r.headers.push(("x-mbx-used-weight-1m", used.to_string()));
    };
    if used > config.weight_limit {
        shared.count(|c| &c.weight_429);
        let msg = format!(
            "Too much request weight used; current limit is {} request weight per {} s. \
             Please use WebSocket Streams for live updates to avoid polling the API.",
            config.weight_limit,
            window_ms / 1000
        );
        let mut r = Response::error("429 Too Many Requests", -1003, &msg);
        let retry_ms = (window + 1) * window_ms - now;
        r.headers
            .push(("Retry-After", retry_ms.div_ceil(1000).to_string()));
        weight_headers(&mut r);
        return r;
    }
    let mut r = make();
    weight_headers(&mut r);
    r
}

/// Spot: the weight of a `limit` (already capped at 5000).
fn spot_weight(limit: u64) -> u64 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

/// Futures: the weight of a `limit`, or `None` when it is not one of the allowed values.
fn futures_weight(limit: u64) -> Option<u64> {
    match limit {
        5 | 10 | 20 | 50 => Some(2),
        100 => Some(5),
        500 => Some(10),
        1000 => Some(20),
        _ => None,
    }
}

/// A depth body: Binance's field order.
#[derive(Debug, serde::Serialize)]
struct DepthBody<'a> {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    symbol: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pair: Option<&'a str>,
    #[serde(rename = "E", skip_serializing_if = "Option::is_none")]
    event_time: Option<u64>,
    #[serde(rename = "T", skip_serializing_if = "Option::is_none")]
    transaction_time: Option<u64>,
    bids: Vec<[&'a str; 2]>,
    asks: Vec<[&'a str; 2]>,
}

fn depth(head: &RequestHead, family: Family, shared: &LiveShared, ip: IpAddr) -> Response {
    let Some(symbol) = head.query_param("symbol").filter(|s| !s.is_empty()) else {
        shared.count(|c| &c.bad_requests);
        return Response::error(
            "400 Bad Request",
            -1102,
            "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
        );
    };
    let symbol = symbol.to_ascii_uppercase();
    let limit = match head.query_param("limit") {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                shared.count(|c| &c.bad_requests);
                return Response::error(
                    "400 Bad Request",
                    -1100,
                    "Illegal characters found in parameter 'limit'; legal range is '1..5000'.",
                );
            }
        },
    };
    let (limit, weight) = if family == Family::Spot {
        let limit = limit.unwrap_or(100).min(5000);
        (limit, spot_weight(limit))
    } else {
        let limit = limit.unwrap_or(500);
        match futures_weight(limit) {
            Some(w) => (limit, w),
            None => {
                shared.count(|c| &c.bad_requests);
                return Response::error(
                    "400 Bad Request",
                    -1130,
                    "Data sent for parameter 'limit' is not valid; valid values are 5, 10, 20, 50, 100, 500, 1000.",
                );
            }
        }
    };
    let mut delay = None;
    let response = weighed(shared, ip, weight, || {
        let n = {
            let mut rest = shared.rest();
            rest.depth_answers += 1;
            rest.depth_answers - 1
        };
        let mut stale = None;
        for fault in &shared.config.faults.faults {
            match fault {
                Fault::StaleSnapshot {
                    updates_back,
                    count,
                } if count.is_none_or(|c| n < c) => {
                    stale = Some(usize::try_from(*updates_back).unwrap_or(usize::MAX));
                }
                Fault::SlowSnapshot { delay: d, count } if count.is_none_or(|c| n < c) => {
                    delay = Some(*d);
                }
                _ => {}
            }
        }
        let market = shared.market();
        let Some(state) = market.symbols.get(&symbol).filter(|s| s.seeded) else {
            shared.count(|c| &c.bad_requests);
            return Response::error("400 Bad Request", -1121, "Invalid symbol.");
        };
        let book = match stale {
            Some(k) => {
                shared.count(|c| &c.fault_stale_snapshots);
                state.history.rewind(&state.book, k)
            }
            None => state.book.clone(),
        };
        let take = usize::try_from(limit).unwrap_or(usize::MAX);
        let now = now_ms();
        let pair = symbol.split('_').next().unwrap_or_default().to_owned();
        let body = DepthBody {
            last_update_id: book.last_update_id,
            symbol: (family == Family::CoinM).then_some(symbol.as_str()),
            pair: (family == Family::CoinM).then_some(pair.as_str()),
            event_time: (family != Family::Spot).then_some(state.event_time.unwrap_or(now)),
            transaction_time: (family != Family::Spot)
                .then_some(state.transaction_time.or(state.event_time).unwrap_or(now)),
            bids: book.bids_best_first(take).map(level_pair).collect(),
            asks: book.asks_best_first(take).map(level_pair).collect(),
        };
        shared.count(|c| &c.snapshots_served);
        Response::json("200 OK", serde_json::to_vec(&body).unwrap_or_default())
    });
    if let Some(d) = delay {
        shared.count(|c| &c.fault_slow_snapshots);
        sleep_unless_stopping(shared, d);
    }
    response
}

fn level_pair(l: &super::truth::Level) -> [&str; 2] {
    [l.px_text.as_str(), l.qty_text.as_str()]
}

fn sleep_unless_stopping(shared: &LiveShared, d: Duration) {
    let deadline = std::time::Instant::now() + d;
    while !shared.stop.load(Ordering::Relaxed) {
        let now = std::time::Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(10)));
    }
}

/// `/sim/print?symbol=S&price=P[&qty=Q]`: a trade print put through the WS API's account (see
/// [`crate::wsapi`]'s `inject_print`): stops it crosses trigger. Answers `{}`.
fn sim_print(head: &RequestHead, shared: &LiveShared) -> Response {
    let symbol = head
        .query_param("symbol")
        .unwrap_or_default()
        .to_ascii_uppercase();
    let dec = |name: &str, default: &str| {
        Dec::parse(&head.query_param(name).unwrap_or_else(|| default.to_owned())).ok()
    };
    let (Some(px), Some(qty)) = (dec("price", ""), dec("qty", "0.00001")) else {
        shared.count(|c| &c.bad_requests);
        return Response::error(
            "400 Bad Request",
            -1100,
            "price (and qty, if given) must be decimals.",
        );
    };
    if symbol.is_empty() || px.is_zero() {
        shared.count(|c| &c.bad_requests);
        return Response::error("400 Bad Request", -1100, "symbol and price are needed.");
    }
    if !crate::wsapi::inject_print(shared, &symbol, px, qty) {
        return Response::error("404 Not Found", -1000, "No WS API is served here.");
    }
    Response::json("200 OK", b"{}".to_vec())
}

fn sim_book(head: &RequestHead, shared: &LiveShared) -> Response {
    let symbol = head
        .query_param("symbol")
        .unwrap_or_default()
        .to_ascii_uppercase();
    let depth = match head.query_param("depth") {
        None => usize::MAX,
        Some(d) => match d.parse() {
            Ok(d) => d,
            Err(_) => {
                shared.count(|c| &c.bad_requests);
                return Response::error("400 Bad Request", -1100, "depth must be a whole number.");
            }
        },
    };
    let market = shared.market();
    match market.symbols.get(&symbol).filter(|s| s.seeded) {
        Some(state) => {
            let truth = state.book.truth(&symbol, depth);
            Response::json("200 OK", serde_json::to_vec(&truth).unwrap_or_default())
        }
        None => {
            shared.count(|c| &c.bad_requests);
            Response::error("404 Not Found", -1121, "Invalid symbol.")
        }
    }
}

/// `1` at `decimals` fractional digits, written with at least 8 (`0.01000000`).
fn unit(decimals: usize) -> String {
    let width = decimals.max(8);
    if decimals == 0 {
        return format!("1.{}", "0".repeat(width));
    }
    let mut frac = "0".repeat(decimals - 1);
    frac.push('1');
    frac.push_str(&"0".repeat(width - decimals));
    format!("0.{frac}")
}

/// Base and quote asset of a symbol, by the usual quote suffixes.
fn assets(symbol: &str) -> (String, String) {
    const QUOTES: [&str; 11] = [
        "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "USD",
    ];
    let base = symbol.split('_').next().unwrap_or(symbol);
    for quote in QUOTES {
        if let Some(b) = base.strip_suffix(quote)
            && !b.is_empty()
        {
            return (b.to_owned(), quote.to_owned());
        }
    }
    (base.to_owned(), String::new())
}

/// The recorded body, or one made from the instruments (configured or derived from the
/// decimals seen).
fn exchange_info(family: Family, shared: &LiveShared) -> Response {
    let market = shared.market();
    if let Some(body) = &market.exchange_info {
        return Response::json("200 OK", body.clone());
    }
    let mut instruments = shared.config.instruments.clone();
    let mut seen: Vec<&String> = market.symbols.keys().collect();
    seen.sort();
    for symbol in seen {
        if instruments.iter().any(|i| i.symbol == *symbol) {
            continue;
        }
        let state = &market.symbols[symbol];
        instruments.push(super::InstrumentInfo {
            symbol: symbol.clone(),
            tick_size: unit(state.px_decimals),
            step_size: unit(state.qty_decimals),
            min_notional: "5.00000000".to_owned(),
        });
    }
    drop(market);
    let spot = family == Family::Spot;
    // Self-trade prevention as the WS API applies it to each symbol (the exchange's defaults
    // without one).
    let stp_of = |symbol: &str| -> (crate::wsapi::StpMode, Vec<&'static str>) {
        let names = |allowed: &[crate::wsapi::StpMode]| allowed.iter().map(|m| m.name()).collect();
        match shared.config.ws_api.as_ref() {
            Some(c) => {
                let (default, allowed) = c.stp_of(symbol);
                (default, names(allowed))
            }
            None => (
                crate::wsapi::StpMode::ExpireMaker,
                names(&crate::wsapi::StpMode::ALL),
            ),
        }
    };
    let symbols: Vec<serde_json::Value> = instruments
        .iter()
        .map(|i| {
            let (base, quote) = assets(&i.symbol);
            let notional = if spot {
                json!({"filterType": "NOTIONAL", "minNotional": i.min_notional, "applyMinToMarket": true,
                       "maxNotional": "9000000.00000000", "applyMaxToMarket": false, "avgPriceMins": 5})
            } else {
                json!({"filterType": "MIN_NOTIONAL", "notional": i.min_notional})
            };
            let mut symbol = json!({
                "symbol": i.symbol,
                "status": "TRADING",
                "baseAsset": base,
                "quoteAsset": quote,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": i.tick_size, "maxPrice": "1000000.00000000", "tickSize": i.tick_size},
                    {"filterType": "LOT_SIZE", "minQty": i.step_size, "maxQty": "9000.00000000", "stepSize": i.step_size},
                    notional,
                ],
            });
            if spot {
                let (default, allowed) = stp_of(&i.symbol);
                symbol["defaultSelfTradePreventionMode"] = json!(default.name());
                symbol["allowedSelfTradePreventionModes"] = json!(allowed);
            }
            symbol
        })
        .collect();
    let limit = shared.config.weight_limit;
    let body = json!({
        "timezone": "UTC",
        "serverTime": now_ms(),
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limit},
        ],
        "exchangeFilters": [],
        "symbols": symbols,
    });
    Response::json("200 OK", serde_json::to_vec(&body).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_the_venue_tables() {
        assert_eq!(
            [1, 100, 101, 500, 501, 1000, 1001, 5000].map(spot_weight),
            [5, 5, 25, 25, 50, 50, 250, 250]
        );
        assert_eq!(
            [5, 50, 100, 500, 1000].map(|l| futures_weight(l).expect("allowed")),
            [2, 2, 5, 10, 20]
        );
        assert_eq!(futures_weight(7), None);
        assert_eq!(unit(2), "0.01000000");
        assert_eq!(unit(0), "1.00000000");
        assert_eq!(unit(10), "0.0000000001");
        assert_eq!(assets("BTCUSDT"), ("BTC".into(), "USDT".into()));
        assert_eq!(assets("BTCUSD_PERP"), ("BTC".into(), "USD".into()));
    }
}
