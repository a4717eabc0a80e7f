//! `pinion live --trade` end to end on loopback, over real TLS: the simulator's market → book →
//! strategy → orders over the simulator's WS API → execution reports → position. After every
//! run, with or without seeded order faults, pinion's orders, fills, balances and position must
//! equal the simulator's account: each order's filled quantity and final state, every balance,
//! and the net position from the exchange's own trades.
//!
//! The runs use the `pinion` binary itself, with the key in its environment as a user would set
//! it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::sim::*;
use pinion_exchange_sim::wsapi::{SimAccount, SimOrder};
use serde_json::Value;

const API_KEY: &str = TRADE_API_KEY;
/// The token runs with a `[bot]` use against the Bot API fake.
const BOT_TOKEN: &str = "123456:TRADE-token_for_the_fake";
const OPERATOR: i64 = 4242;

/// What one `pinion live --trade` run left behind.
struct Run {
    code: Option<i32>,
    account: Value,
    report: Value,
    sim: SimAccount,
    stderr: String,
    /// The order session's frames as recorded (`--record-orders`).
    orders_pnr: Vec<u8>,
    _sim: Sim,
}

/// The simulator's synthetic market with the WS API enabled (`order_faults` in its grammar),
/// and `pinion live --trade` against it for `seconds`.
fn trade(order_faults: &str, seconds: f64, extra: &str) -> Run {
    trade_with(order_faults, seconds, extra, "", |_, _| {})
}

/// [`trade`], with `more` appended to the config (whole sections), and `during` called with
/// the simulator and the process id once the market is released.
fn trade_with(
    order_faults: &str,
    seconds: f64,
    extra: &str,
    more: &str,
    during: impl FnOnce(&Sim, u32),
) -> Run {
    trade_keyed(order_faults, seconds, extra, more, Secret::Env, during)
}

/// Where a run's signing key comes from.
enum Secret {
    /// `PINION_TEST_SECRET`.
    Env,
    /// A file with this mode: `$CREDENTIALS_DIRECTORY/PINION_TEST_SECRET` (`true`), or the
    /// file `PINION_TEST_SECRET_FILE` names.
    File { mode: u32, credentials_dir: bool },
}

/// [`trade_with`], the signing key from `secret`.
fn trade_keyed(
    order_faults: &str,
    seconds: f64,
    extra: &str,
    more: &str,
    secret: Secret,
    during: impl FnOnce(&Sim, u32),
) -> Run {
    let (pem, public) = ed25519_key();
    let sim = start_trading_sim(public, order_faults);
    let mut config = trading_config(
        &sim,
        &format!("recv_window_ms = 5000\nanswer_timeout_ms = 1000\nquery_after_ms = 1500\n{extra}"),
    );
    if more.contains("[placement]") {
        // `more` places the stages itself.
        config = config.replace("[placement]\nmode = \"2\"\nwait = \"park\"\n", "");
    }
    config += more;
    let ran = run_pinion(&sim, &pem, &config, seconds, secret, "", during);
    Run {
        code: ran.code,
        account: ran.account,
        report: ran.report,
        sim: sim.exchange.sim_account(),
        stderr: ran.stderr,
        orders_pnr: ran.orders_pnr,
        _sim: sim,
    }
}

/// What one `pinion live --trade` process left behind, on a simulator that outlives it.
struct Ran {
    code: Option<i32>,
    account: Value,
    report: Value,
    stderr: String,
    orders_pnr: Vec<u8>,
}

/// `pinion live --trade` on `config` against `sim` for `seconds`, signing with `pem` kept as
/// `secret` says; its files in the simulator's directory, named with `tag` (runs on one
/// simulator keep theirs apart). `during` is called with the simulator and the process id once
/// the market is released.
fn run_pinion(
    sim: &Sim,
    pem: &str,
    config: &str,
    seconds: f64,
    secret: Secret,
    tag: &str,
    during: impl FnOnce(&Sim, u32),
) -> Ran {
    let dir = &sim.dir.0;
    let config_path = dir.join(format!("trade{tag}.toml"));
    std::fs::write(&config_path, config).expect("write config");
    let account_path = dir.join(format!("account{tag}.json"));
    let report_path = dir.join(format!("report{tag}.json"));
    let pnr_path = dir.join(format!("orders{tag}.pnr"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_pinion"));
    command
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("PINION_TEST_SECRET")
        .env_remove("PINION_TEST_SECRET_FILE");
    match secret {
        Secret::Env => {
            command.env("PINION_TEST_SECRET", pem);
        }
        Secret::File {
            mode,
            credentials_dir,
        } => {
            use std::os::unix::fs::PermissionsExt as _;
            let creds = dir.join("credentials");
            std::fs::create_dir_all(&creds).expect("credentials dir");
            let path = creds.join("PINION_TEST_SECRET");
            std::fs::write(&path, pem).expect("write the key");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            if credentials_dir {
                command.env("CREDENTIALS_DIRECTORY", &creds);
            } else {
                command.env("PINION_TEST_SECRET_FILE", &path);
            }
        }
    }
    let mut child = command
        .arg("live")
        .arg("--config")
        .arg(&config_path)
        .arg("--trade")
        .arg("--duration")
        .arg(seconds.to_string())
        .arg("--no-progress")
        .arg("--account-out")
        .arg(&account_path)
        .arg("--report-json")
        .arg(&report_path)
        .arg("--record-orders")
        .arg(&pnr_path)
        .env("PINION_TEST_API_KEY", API_KEY)
        .env("PINION_BOT_TOKEN", BOT_TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pinion runs");
    // The market opens once the session has subscribed.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.exchange.stats().control_requests == 0
        && Instant::now() < deadline
        && matches!(child.try_wait(), Ok(None))
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    sim.exchange.release();
    during(sim, child.id());
    let out = {
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        let status = child.wait().expect("pinion exits");
        (status.code(), stderr)
    };
    let read = |p: &Path| -> Value {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    };
    Ran {
        code: out.0,
        account: read(&account_path),
        report: read(&report_path),
        stderr: out.1,
        orders_pnr: std::fs::read(&pnr_path).unwrap_or_default(),
    }
}

/// A decimal string as an exact integer count of `10^-decimals` (digits past them dropped).
fn scaled(s: &str, decimals: usize) -> i128 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let neg = int.starts_with('-');
    let int: i128 = int.trim_start_matches('-').parse().unwrap_or(0);
    let mut f: String = frac.chars().take(decimals).collect();
    while f.len() < decimals {
        f.push('0');
    }
    let v = int * 10i128.pow(decimals as u32) + f.parse::<i128>().unwrap_or(0);
    if neg { -v } else { v }
}

/// A decimal string as an exact integer count of 1e-8.
fn units(s: &str) -> i128 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let neg = int.starts_with('-');
    let int: i128 = int.trim_start_matches('-').parse().unwrap_or(0);
    let mut f = frac.to_owned();
    f.truncate(8);
    while f.len() < 8 {
        f.push('0');
    }
    let v = int * 100_000_000 + f.parse::<i128>().unwrap_or(0);
    if neg { -v } else { v }
}

/// The venue status pinion's final state must be, for an order the exchange has.
fn state_for(status: &str) -> &'static str {
    match status {
        "FILLED" => "Filled",
        "CANCELED" => "Canceled",
        "EXPIRED" | "EXPIRED_IN_MATCH" => "Expired",
        "PARTIALLY_FILLED" => "PartiallyFilled",
        _ => "New",
    }
}

/// pinion's orders, fills, balances and position equal the simulator's account.
fn assert_matches_the_exchange(run: &Run) {
    assert_eq!(
        run.code,
        Some(0),
        "pinion live --trade failed:\n{}",
        run.stderr
    );
    assert!(!run.sim.orders.is_empty(), "no order reached the exchange");
    assert_account_equals(&run.account, &run.report, &run.sim, |_| true);
}

/// A run's account (`--account-out`) and report equal `sim`: the orders `checked` picks of
/// the exchange's (the state and filled quantity of each), every balance, and the position.
fn assert_account_equals(
    account: &Value,
    report: &Value,
    sim: &SimAccount,
    checked: impl Fn(&SimOrder) -> bool,
) {
    assert_symbol_equals(account, report, sim, "BTCUSDT", checked);
}

/// [`assert_account_equals`] for `symbol` of a run that traded several: its session's orders
/// against the exchange's orders of `symbol` that `checked` picks, the balances of its two
/// assets, and its position against the exchange's trades of `symbol`.
fn assert_symbol_equals(
    account: &Value,
    report: &Value,
    sim: &SimAccount,
    symbol: &str,
    checked: impl Fn(&SimOrder) -> bool,
) {
    let account = account
        .as_array()
        .and_then(|a| a.iter().find(|x| x["symbol"] == symbol))
        .unwrap_or_else(|| panic!("no session of {symbol} in the account: {account}"));
    let ours: BTreeMap<&str, &Value> = account["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| (o["client_order_id"].as_str().unwrap_or(""), o))
        .collect();
    let theirs = || sim.orders.iter().filter(|o| o.symbol == symbol);
    for o in theirs().filter(|o| checked(o)) {
        let mine = ours
            .get(o.client_order_id.as_str())
            .unwrap_or_else(|| panic!("the exchange has {} which pinion lost", o.client_order_id));
        assert_eq!(
            units(mine["filled"].as_str().unwrap_or("")),
            units(&o.executed_qty),
            "{}: filled",
            o.client_order_id
        );
        assert_eq!(
            mine["state"].as_str(),
            Some(state_for(&o.status)),
            "{}: state (the exchange says {})",
            o.client_order_id,
            o.status
        );
    }
    // What pinion tracked and the exchange never had was refused, never left unknown.
    for (id, o) in &ours {
        if !theirs().any(|s| s.client_order_id == *id) {
            let state = o["state"].as_str().unwrap_or("");
            assert!(
                state.starts_with("Rejected"),
                "{id}: not at the exchange, yet {state}"
            );
        }
    }
    // Balances of the symbol's assets, asset by asset.
    let of_symbol = |asset: &str| symbol.starts_with(asset) || symbol.ends_with(asset);
    for b in sim.balances.iter().filter(|b| of_symbol(&b.asset)) {
        let mine = account["balances"]
            .as_array()
            .and_then(|v| v.iter().find(|x| x["asset"] == b.asset.as_str()))
            .unwrap_or_else(|| panic!("{symbol}: no balance of {}", b.asset));
        assert_eq!(
            units(mine["free"].as_str().unwrap_or("")),
            units(&b.free),
            "{symbol}: {} free",
            b.asset
        );
        assert_eq!(
            units(mine["locked"].as_str().unwrap_or("")),
            units(&b.locked),
            "{symbol}: {} locked",
            b.asset
        );
    }
    // Position from the exchange's trades = the strategy's position.
    let net: i128 = sim
        .trades
        .iter()
        .filter(|t| t.symbol == symbol)
        .map(|t| if t.is_buyer { 1 } else { -1 } * units(&t.qty))
        .sum();
    let position = report["trading"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["symbol"] == symbol))
        .and_then(|r| r["position"].as_str())
        .map(units)
        .unwrap_or_else(|| panic!("no position of {symbol} in the report"));
    assert_eq!(position, net, "{symbol}: position");
}

#[test]
fn a_clean_session_trades_and_ends_equal_to_the_exchange() {
    let run = trade("", 8.0, "");
    assert_matches_the_exchange(&run);
    assert!(!run.sim.trades.is_empty(), "nothing traded");
    let s = &run.account[0]["session"];
    assert_eq!(s["disconnects"], 0);
    assert_eq!(s["ready"], 1);
    assert_eq!(run.account[0]["orders_table"]["unknown"], 0);
    assert!(session(&run, "limit_checks") > 0, "counts were compared");
    // The order session's frames were recorded, the API key masked.
    let frames = recorded_frames(&run);
    assert!(
        frames.len() >= run.sim.orders.len(),
        "{} frames recorded for {} orders",
        frames.len(),
        run.sim.orders.len()
    );
    assert!(frames.iter().any(|f| f.contains("executionReport")));
    assert!(
        !run.orders_pnr
            .windows(API_KEY.len())
            .any(|w| w == API_KEY.as_bytes()),
        "the API key is in the recording"
    );
    assert_eq!(
        session(&run, "limit_drift"),
        0,
        "the rate-limit model predicted the exchange's every count"
    );
}

/// The text frames of the order session's recording.
fn recorded_frames(run: &Run) -> Vec<String> {
    let path = run._sim.dir.0.join("orders.pnr");
    let mut source = pinion_feed::source::open(&path).expect("the recording opens");
    let mut frames = Vec::new();
    while let Some(rec) = source.next_record().expect("the recording reads") {
        if rec.kind == pinion_core::RecordKind::Frame {
            frames.push(String::from_utf8_lossy(rec.payload).into_owned());
        }
    }
    frames
}

/// Each client order id appears once at the exchange: nothing was placed twice.
fn assert_no_order_twice(run: &Run) {
    let mut seen = std::collections::BTreeSet::new();
    for o in &run.sim.orders {
        assert!(
            seen.insert(o.client_order_id.as_str()),
            "{} placed twice",
            o.client_order_id
        );
    }
}

fn session(run: &Run, key: &str) -> u64 {
    run.account[0]["session"][key].as_u64().unwrap_or(0)
}

fn table(run: &Run, key: &str) -> u64 {
    run.account[0]["orders_table"][key].as_u64().unwrap_or(0)
}

#[test]
fn an_order_answered_1007_but_executed_ends_as_exactly_one_order_with_exact_fills() {
    let run = trade("o1007:3", 8.0, "");
    assert_matches_the_exchange(&run);
    assert_no_order_twice(&run);
    assert!(table(&run, "unknown") >= 1, "the outcome was unknown first");
}

#[test]
fn an_order_answered_1007_and_not_executed_ends_refused_after_the_query() {
    let run = trade("o1007x:3", 8.0, "");
    assert_matches_the_exchange(&run);
    assert_no_order_twice(&run);
    assert!(table(&run, "unknown") >= 1);
    assert!(session(&run, "status_queries") >= 1, "it was asked about");
}

#[test]
fn a_reset_after_an_order_was_read_reconnects_reconciles_and_loses_nothing() {
    let run = trade("oreset:3", 9.0, "");
    assert_matches_the_exchange(&run);
    assert_no_order_twice(&run);
    assert_eq!(session(&run, "disconnects"), 1);
    assert_eq!(session(&run, "ready"), 2, "ready again after the reconnect");
    assert!(table(&run, "unknown") >= 1);
}

#[test]
fn a_429_stops_new_orders_until_retry_after_and_never_reaches_a_ban() {
    let run = trade("o429:3", 8.0, "");
    assert_matches_the_exchange(&run);
    assert_eq!(session(&run, "rate_limited"), 1, "one 429");
    assert_eq!(session(&run, "banned"), 0, "no ban followed");
    assert!(
        run.account[0]["orders"]
            .as_array()
            .expect("orders")
            .iter()
            .any(|o| o["state"] == "Rejected(Overloaded)"),
        "the refused order is known as refused"
    );
}

#[test]
fn fills_that_arrive_before_the_answer_count_once() {
    let run = trade("fillfirst", 8.0, "");
    assert_matches_the_exchange(&run);
    assert_no_order_twice(&run);
    assert!(!run.sim.trades.is_empty(), "nothing traded");
}

#[test]
fn a_5xx_with_the_order_executed_resolves_from_user_data() {
    let run = trade("o5xx:3", 8.0, "");
    assert_matches_the_exchange(&run);
    assert_no_order_twice(&run);
    assert!(table(&run, "unknown") >= 1);
}

#[test]
fn a_5xx_with_the_order_not_executed_ends_refused_after_the_query() {
    let run = trade("o5xxx:3", 8.0, "");
    assert_matches_the_exchange(&run);
    assert_no_order_twice(&run);
    assert!(table(&run, "unknown") >= 1);
    assert!(session(&run, "status_queries") >= 1);
}

#[test]
fn an_answer_past_the_deadline_is_unknown_until_user_data_says() {
    let run = trade("olate:3:2500", 9.0, "");
    assert_matches_the_exchange(&run);
    assert_no_order_twice(&run);
    assert!(
        table(&run, "unknown") >= 1,
        "the late answer made it unknown"
    );
}

#[test]
fn a_skewed_exchange_clock_is_measured_and_every_timestamp_holds() {
    // 8 s ahead, beyond the 5 s recvWindow: local timestamps would all be refused.
    let run = trade("skew:8000", 8.0, "");
    assert_matches_the_exchange(&run);
    let offset = run.account[0]["clock_offset_us"]
        .as_i64()
        .expect("an offset");
    assert!(
        (offset - 8_000_000).abs() < 200_000,
        "offset {offset} µs, the exchange runs 8 s ahead"
    );
    assert_eq!(table(&run, "timestamp_rejects"), 0);
}

#[test]
fn a_burst_of_429s_is_waited_out_and_never_becomes_a_ban() {
    let run = trade("o429burst:3:3", 9.0, "");
    assert_matches_the_exchange(&run);
    assert_eq!(
        session(&run, "rate_limited"),
        3,
        "three 429s, one per retryAfter"
    );
    assert_eq!(session(&run, "banned"), 0, "no ban");
}

#[test]
fn a_revoked_key_leaves_open_orders_unknown_never_guessed_and_the_run_unclean() {
    let run = trade("revoke:4", 8.0, "");
    assert!(session(&run, "unauthorized") >= 1, "the revocation was met");
    let ours = run.account[0]["orders"].as_array().expect("orders");
    let mut unknown = 0;
    for o in &run.sim.orders {
        let mine = ours
            .iter()
            .find(|m| m["client_order_id"] == o.client_order_id.as_str())
            .unwrap_or_else(|| panic!("{} lost", o.client_order_id));
        let state = mine["state"].as_str().unwrap_or("");
        if state == "Unknown" {
            unknown += 1;
            continue;
        }
        // Whatever pinion still claims to know is what the exchange has.
        assert_eq!(state, state_for(&o.status), "{}", o.client_order_id);
        assert_eq!(
            units(mine["filled"].as_str().unwrap_or("")),
            units(&o.executed_qty),
            "{}",
            o.client_order_id
        );
    }
    let open_at_exchange = run
        .sim
        .orders
        .iter()
        .filter(|o| o.status == "NEW" || o.status == "PARTIALLY_FILLED")
        .count();
    assert!(
        unknown >= open_at_exchange,
        "{open_at_exchange} orders still open at the exchange, {unknown} unknown to pinion"
    );
    // Orders left unknown make the run unclean (none may have been open when the key went).
    if unknown > 0 {
        assert_eq!(run.code, Some(3), "{}", run.stderr);
        assert!(run.stderr.contains("not resolved"), "{}", run.stderr);
    } else {
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
}

#[test]
fn failures_in_a_row_open_the_breaker_and_it_holds_new_orders_back() {
    let run = trade(
        "o5xxx:3,o5xxx:4,o5xxx:5",
        9.0,
        "breaker_failures = 3\nbreaker_open_ms = 2000",
    );
    assert_matches_the_exchange(&run);
    assert_eq!(
        session(&run, "breaker_opened"),
        1,
        "three 5xx in a row opened it"
    );
    assert!(
        session(&run, "breaker_refused") >= 1,
        "new orders were held back while it was open"
    );
    assert!(
        run.sim.orders.len() > 2,
        "the probe closed it again and trading went on"
    );
}

#[test]
fn sigusr1_kills_trading_cancels_every_resting_order_and_nothing_new_is_sent() {
    // Market making keeps quotes resting; the exit policy leaves orders open, so whatever
    // the exchange has open at the end was left there by the kill, not by the wind-down.
    let mut at_kill = 0;
    let mut after_kill = 0;
    let more = format!("{MARKET_MAKING}\n[exit]\npolicy = \"leave\"\n");
    let run = trade_with("", 9.0, "", &more, |sim, pid| {
        // Quotes rest, then the operator kills trading.
        let deadline = Instant::now() + Duration::from_secs(6);
        while resting(&sim.exchange.sim_account()) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            resting(&sim.exchange.sim_account()) > 0,
            "no quote rested before the kill"
        );
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: a plain kill(2) on the child's pid.
        let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR1) };
        assert_eq!(sent, 0, "SIGUSR1 sent");
        std::thread::sleep(Duration::from_millis(1500));
        at_kill = sim.exchange.sim_account().orders.len();
        assert_eq!(
            resting(&sim.exchange.sim_account()),
            0,
            "an order still rests after the kill"
        );
        std::thread::sleep(Duration::from_secs(2));
        after_kill = sim.exchange.sim_account().orders.len();
    });
    assert_matches_the_exchange(&run);
    assert_eq!(at_kill, after_kill, "orders were placed after the kill");
    assert_eq!(run.report["control"]["killed"], "signal", "{}", run.stderr);
    assert!(
        run.report["control"]["control_cancels"].as_u64() > Some(0),
        "{}",
        run.report["control"]
    );
}

/// The position the exchange's trades add up to, in 1e-8.
fn exchange_position(account: &SimAccount) -> i128 {
    account
        .trades
        .iter()
        .map(|t| if t.is_buyer { 1 } else { -1 } * units(&t.qty))
        .sum()
}

#[test]
fn sigusr2_flattens_in_slices_and_ends_flat_with_nothing_open_equal_to_the_exchange() {
    let run = flattened_by_signal(false);
    assert_eq!(
        run.report["control"]["killed"],
        Value::Null,
        "a flatten is not a kill"
    );
}

#[test]
fn a_flatten_after_a_kill_still_closes_the_position() {
    let run = flattened_by_signal(true);
    assert_eq!(run.report["control"]["killed"], "signal", "{}", run.stderr);
}

#[test]
fn the_bots_flatten_once_confirmed_ends_flat_with_nothing_open_equal_to_the_exchange() {
    use pinion_exchange_sim::{BotApiConfig, BotApiFake, SelfSignedTls};
    let tls = SelfSignedTls::generate(&["localhost", "127.0.0.1"]).expect("certificate");
    let fake = BotApiFake::start(
        "127.0.0.1:0".parse().expect("addr"),
        BotApiConfig::new(BOT_TOKEN),
        Arc::clone(&tls.server_config),
    )
    .expect("the Bot API fake");
    let cert = std::env::temp_dir().join(format!(
        "pinion-trade-bot-{}-{}.pem",
        std::process::id(),
        fake.local_addr().port()
    ));
    std::fs::write(&cert, &tls.certificate_pem).expect("write cert");
    let more = format!(
        "{MARKET_MAKING}\n[exit]\npolicy = \"leave\"\n\
[risk.flatten]\nslice_qty = \"0.002\"\ndeadline_s = 8\n\n\
[bot]\napi_url = \"{}\"\nca_file = \"{}\"\nusers = [{OPERATOR}]\npoll_timeout_s = 1\n",
        fake.base_url(),
        cert.display()
    );
    let said = |text: &str| {
        fake.sent()
            .iter()
            .filter(|m| m.chat_id == OPERATOR)
            .any(|m| m.text.contains(text))
    };
    let wait = |what: &str, limit: Duration| {
        let until = Instant::now() + limit;
        while !said(what) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(said(what), "no message with {what:?}: {:?}", fake.sent());
    };
    let mut before = 0;
    let run = trade_with("", 16.0, "", &more, |sim, _| {
        let deadline = Instant::now() + Duration::from_secs(8);
        while exchange_position(&sim.exchange.sim_account()) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        before = exchange_position(&sim.exchange.sim_account());
        fake.inject(OPERATOR, "/flatten BTCUSDT");
        wait("Reply /flatten confirm", Duration::from_secs(5));
        fake.inject(OPERATOR, "/flatten confirm");
        wait("flatten BTCUSDT: done, position 0", Duration::from_secs(10));
    });
    let _ = std::fs::remove_file(&cert);
    assert_matches_the_exchange(&run);
    assert_ne!(
        before, 0,
        "no position was open when the flatten was asked for"
    );
    assert_eq!(
        exchange_position(&run.sim),
        0,
        "the exchange's position is not flat"
    );
    assert_eq!(
        resting(&run.sim),
        0,
        "an order still rests after the flatten"
    );
    let f = &run.report["trading"][0]["flatten"];
    assert_eq!(f["last"]["cause"], "operator", "{f}\n{}", run.stderr);
    assert_eq!(f["last"]["outcome"], "done", "{f}");
    assert_eq!(run.report["control"]["killed"], Value::Null);
}

/// Market making builds a position and keeps quotes resting; then (after SIGUSR1 when `killed`)
/// SIGUSR2 flattens: the exchange ends flat with nothing open, equal to pinion's account, in
/// slices of at most `slice_qty`, and nothing new is sent afterwards. The exit policy leaves
/// orders open, so what the exchange has open at the end was left there by the flatten.
fn flattened_by_signal(killed: bool) -> Run {
    let more = format!(
        "{MARKET_MAKING}\n[exit]\npolicy = \"leave\"\n\
[risk.flatten]\nslice_qty = \"0.002\"\ndeadline_s = 8\nslippage_bps = 20\n"
    );
    let mut before = 0;
    let mut at_signal = 0;
    let mut orders_when_flat = 0;
    let mut orders_at_end = 0;
    let run = trade_with("", 14.0, "", &more, |sim, pid| {
        let deadline = Instant::now() + Duration::from_secs(8);
        while (exchange_position(&sim.exchange.sim_account()) == 0
            || resting(&sim.exchange.sim_account()) == 0)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        if killed {
            // SAFETY: a plain kill(2) on the child's pid.
            let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR1) };
            assert_eq!(sent, 0, "SIGUSR1 sent");
            // The kill cancels the quotes; the position stays.
            let deadline = Instant::now() + Duration::from_secs(4);
            while resting(&sim.exchange.sim_account()) > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let a = sim.exchange.sim_account();
        before = exchange_position(&a);
        at_signal = a.orders.len();
        // SAFETY: a plain kill(2) on the child's pid.
        let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR2) };
        assert_eq!(sent, 0, "SIGUSR2 sent");
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let a = sim.exchange.sim_account();
            if (exchange_position(&a) == 0 && resting(&a) == 0) || Instant::now() > deadline {
                orders_when_flat = a.orders.len();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Flat, and the strategy stays stopped: nothing new reaches the exchange.
        std::thread::sleep(Duration::from_secs(2));
        orders_at_end = sim.exchange.sim_account().orders.len();
    });
    assert_matches_the_exchange(&run);
    assert_ne!(
        before, 0,
        "no position was open when the flatten was asked for"
    );
    assert_eq!(
        exchange_position(&run.sim),
        0,
        "the exchange's position is not flat"
    );
    assert_eq!(
        resting(&run.sim),
        0,
        "an order still rests after the flatten"
    );
    assert_eq!(
        orders_when_flat, orders_at_end,
        "orders were placed after the flatten"
    );
    let f = &run.report["trading"][0]["flatten"];
    assert_eq!(f["flattens"], 1, "{f}\n{}", run.stderr);
    assert_eq!(f["done"], 1, "{f}");
    assert_eq!(f["last"]["cause"], "signal", "{f}");
    assert_eq!(f["last"]["outcome"], "done", "{f}");
    assert_eq!(f["last"]["position_left"], "0", "{f}");
    // Slices no larger than slice_qty: the orders placed after the signal each within it.
    let closes = &run.sim.orders[at_signal.min(run.sim.orders.len())..];
    assert!(!closes.is_empty(), "no closing order reached the exchange");
    assert!(f["closing_orders"].as_u64() >= Some(1), "{f}");
    for o in closes {
        assert!(
            units(&o.orig_qty) <= units("0.002"),
            "{} is larger than a slice",
            o.orig_qty
        );
    }
    assert_eq!(run.report["control"]["flatten_requests"], 1);
    run
}

/// Market making, one quote a side resting near the mid.
const MARKET_MAKING: &str = "
[strategy]
kind = \"market-making\"
order_qty = \"0.001\"

[strategy.market_making]
fair = \"mid\"
half_spread_bps = 1.0
skew_bps = 0.0
requote_bps = 5.0
levels = 1
level_step_bps = 0.5
";

/// Orders the exchange has open.
fn resting(account: &SimAccount) -> usize {
    account
        .orders
        .iter()
        .filter(|o| o.status == "NEW" || o.status == "PARTIALLY_FILLED")
        .count()
}

/// Market making under `[exit] policy`, stopped by SIGTERM (as systemd stops a service) once
/// quotes rest: the run, and how many orders rested when the signal went.
fn stopped_by_sigterm(policy: &str) -> (Run, usize) {
    let more = format!("{MARKET_MAKING}\n[exit]\npolicy = \"{policy}\"\n");
    let mut at_stop = 0;
    let run = trade_with("", 30.0, "", &more, |sim, pid| {
        let deadline = Instant::now() + Duration::from_secs(8);
        while resting(&sim.exchange.sim_account()) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(500));
        at_stop = resting(&sim.exchange.sim_account());
        // SAFETY: a plain kill(2) on the child's pid.
        let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM sent");
    });
    assert!(at_stop > 0, "no quote rested before the stop");
    (run, at_stop)
}

/// The report's `exit` section and the account's agree, and say `policy` ran connected.
fn exit_report(run: &Run, policy: &str) -> Value {
    let exit = run.report["exit"].clone();
    assert_eq!(exit["policy"], policy, "{}", run.stderr);
    assert_eq!(exit["connected"], true);
    assert_eq!(
        run.account[0]["exit"], exit,
        "one session: its outcome is the total"
    );
    let n = |k: &str| exit[k].as_u64().unwrap_or(u64::MAX);
    assert_eq!(
        n("cancelled") + n("closed_otherwise") + n("left_open"),
        n("open_at_stop"),
        "{exit}"
    );
    exit
}

#[test]
fn sigterm_with_cancel_all_cancels_every_resting_order_and_says_so() {
    let (run, _) = stopped_by_sigterm("cancel_all");
    assert_matches_the_exchange(&run);
    assert_eq!(resting(&run.sim), 0, "an order rests after the exit");
    let exit = exit_report(&run, "cancel_all");
    assert!(exit["open_at_stop"].as_u64() >= Some(1), "{exit}");
    assert_eq!(exit["left_open"], 0, "{exit}");
    assert!(exit["cancelled"].as_u64() >= Some(1), "{exit}");
    assert!(
        session(&run, "cancel_all") >= 1,
        "the symbol's orders were cancelled with one request"
    );
}

#[test]
fn sigterm_with_leave_cancels_nothing_and_counts_what_it_left() {
    let (run, _) = stopped_by_sigterm("leave");
    assert_matches_the_exchange(&run);
    let exit = exit_report(&run, "leave");
    assert_eq!(exit["cancelled"], 0, "{exit}");
    let left = resting(&run.sim);
    assert!(left > 0, "the quotes were left at the exchange");
    assert_eq!(
        exit["left_open"].as_u64(),
        Some(left as u64),
        "{exit}: the exchange has {left} open"
    );
    assert_eq!(run.report["control"]["control_cancels"], 0);
}

#[test]
fn sigterm_with_keep_protective_cancels_the_quotes_which_protect_nothing() {
    // Limit quotes are not protective orders: each is cancelled on its own by the strategy
    // stage (no `openOrders.cancelAll`), and none is left.
    let (run, _) = stopped_by_sigterm("keep_protective");
    assert_matches_the_exchange(&run);
    assert_eq!(resting(&run.sim), 0, "a quote rests after the exit");
    let exit = exit_report(&run, "keep_protective");
    assert_eq!(exit["left_open"], 0, "{exit}");
    assert!(exit["cancelled"].as_u64() >= Some(1), "{exit}");
    assert_eq!(
        session(&run, "cancel_all"),
        0,
        "the symbol's orders were not cancelled wholesale"
    );
}

#[test]
fn the_signing_key_from_a_systemd_credential_trades() {
    let run = trade_keyed(
        "",
        6.0,
        "",
        "",
        Secret::File {
            mode: 0o400,
            credentials_dir: true,
        },
        |_, _| {},
    );
    assert_matches_the_exchange(&run);
}

#[test]
fn a_key_file_others_may_read_is_refused_before_anything_is_sent() {
    let run = trade_keyed(
        "",
        6.0,
        "",
        "",
        Secret::File {
            mode: 0o644,
            credentials_dir: false,
        },
        |_, _| {},
    );
    assert_ne!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("mode 0644") && run.stderr.contains("chmod 600"),
        "{}",
        run.stderr
    );
    assert!(run.sim.orders.is_empty(), "orders went out");
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn an_stp_mode_the_symbol_does_not_allow_stops_the_run_before_anything_is_sent() {
    use pinion_exchange_sim::wsapi::{StpMode, SymbolStp};
    // BTCUSDT allows two modes; the account's other symbols would allow every mode.
    let (pem, public) = ed25519_key();
    let sim = start_trading_sim_with(public, "", |api| {
        api.stp_symbols = vec![SymbolStp {
            symbol: "BTCUSDT".into(),
            default: StpMode::None,
            allowed: vec![StpMode::None, StpMode::ExpireTaker],
        }];
    });
    let config = |mode: &str| {
        trading_config(
            &sim,
            &format!(
                "recv_window_ms = 5000\nanswer_timeout_ms = 1000\nquery_after_ms = 1500\n\
                 stp_mode = \"{mode}\"\n"
            ),
        )
    };
    // An allowed mode trades as before, every order carrying it and none refused for it.
    let allowed = run_pinion(
        &sim,
        &pem,
        &config("EXPIRE_TAKER"),
        4.0,
        Secret::Env,
        "-allowed",
        |_, _| {},
    );
    assert_eq!(allowed.code, Some(0), "{}", allowed.stderr);
    let placed = sim.exchange.sim_account().orders.len();
    assert!(placed > 0, "no order placed: {}", allowed.stderr);
    assert!(contains(&allowed.orders_pnr, r#""V":"EXPIRE_TAKER""#));
    for other in [
        "NONE",
        "EXPIRE_MAKER",
        "EXPIRE_BOTH",
        "DECREMENT",
        "TRANSFER",
    ] {
        let field = format!(r#""V":"{other}""#);
        assert!(
            !contains(&allowed.orders_pnr, &field),
            "an order with {other}"
        );
    }
    assert!(!contains(&allowed.orders_pnr, "-1013"), "an order refused");

    // A mode the symbol does not allow: refused with what it allows, before the market's
    // streams or the order session open.
    let before = sim.exchange.stats();
    let refused = run_pinion(
        &sim,
        &pem,
        &config("EXPIRE_MAKER"),
        4.0,
        Secret::Env,
        "-refused",
        |_, _| {},
    );
    let after = sim.exchange.stats();
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(
            "live.orders.stp_mode = \"EXPIRE_MAKER\": BTCUSDT does not allow it (its allowed \
             modes: NONE, EXPIRE_TAKER; its default: NONE)"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!(
        after.ws_api_order_requests, before.ws_api_order_requests,
        "order requests went out"
    );
    assert_eq!(
        after.control_requests, before.control_requests,
        "subscribed"
    );
    assert_eq!(sim.exchange.sim_account().orders.len(), placed);
    assert!(
        refused.orders_pnr.is_empty(),
        "an order session was recorded"
    );
}

/// The open protective orders of pinion's at the exchange: (type, side, client id).
fn protective_open(account: &SimAccount) -> Vec<(String, String, String)> {
    account
        .orders
        .iter()
        .filter(|o| {
            o.status == "NEW" && (o.order_type == "STOP_LOSS" || o.order_type == "TAKE_PROFIT")
        })
        .map(|o| {
            (
                o.order_type.clone(),
                o.side.clone(),
                o.client_order_id.clone(),
            )
        })
        .collect()
}

#[test]
fn protect_exchange_keeps_a_bracket_on_the_exchange_whose_stop_fills_there_and_the_position_follows()
 {
    let more = "
[strategy]
protect = \"exchange\"

[protection]
stop_loss_bps = 200
take_profit_bps = 200
";
    let mut stop = None;
    let run = trade_with("", 12.0, "", more, |sim, _| {
        // A position, and its bracket: one stop and one take-profit resting.
        let deadline = Instant::now() + Duration::from_secs(9);
        let bracket = loop {
            let open = protective_open(&sim.exchange.sim_account());
            if open.len() == 2 && open[0].0 != open[1].0 {
                break open;
            }
            assert!(Instant::now() < deadline, "no bracket rested: {open:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let (_, side, id) = bracket
            .iter()
            .find(|(ty, ..)| ty == "STOP_LOSS")
            .cloned()
            .expect("a stop");
        // The market trades far through the stop.
        let price = if side == "SELL" {
            "1000.00"
        } else {
            "1000000.00"
        };
        let dec = pinion_exchange_sim::live::Dec::parse;
        assert!(sim.exchange.print(
            "BTCUSDT",
            dec(price).expect("price"),
            dec("0.00001").expect("qty")
        ));
        let deadline = Instant::now() + Duration::from_secs(3);
        while !sim
            .exchange
            .sim_account()
            .orders
            .iter()
            .any(|o| o.client_order_id == id && o.status == "FILLED")
        {
            assert!(Instant::now() < deadline, "the stop {id} did not fill");
            std::thread::sleep(Duration::from_millis(20));
        }
        stop = Some(id);
    });
    assert_matches_the_exchange(&run);
    let stop = stop.expect("the stop");
    let mine = run.account[0]["orders"]
        .as_array()
        .and_then(|v| v.iter().find(|o| o["client_order_id"] == stop.as_str()))
        .expect("pinion tracked the stop");
    assert_eq!(mine["state"], "Filled");
    assert_eq!(run.report["trading"][0]["protection"], "exchange");
    let guard = &run.account[0]["protection"];
    assert!(guard["protective_fills"].as_u64() >= Some(1), "{guard}");
    assert!(guard["placed"].as_u64() >= Some(1), "{guard}");
    // Under cancel_all nothing of the bracket is left at the exchange.
    assert!(protective_open(&run.sim).is_empty());
}

/// Sends `signal` to `pid`.
fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: a plain kill(2) on the child's pid.
    let sent = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(sent, 0, "signal {signal} sent");
}

/// The orders open at the exchange.
fn open_at(account: &SimAccount) -> Vec<SimOrder> {
    account
        .orders
        .iter()
        .filter(|o| o.status == "NEW" || o.status == "PARTIALLY_FILLED")
        .cloned()
        .collect()
}

/// Waits for a bracket to rest, then kills trading (SIGUSR1: the strategy's orders are
/// cancelled, none is sent again) and waits until the bracket alone is open, sized to the
/// position the exchange's trades add up to, on its closing side, unchanged for half a second:
/// from then on nothing of pinion's can move the position but the bracket itself. Returns the
/// bracket's two orders (stop first) and the position, in 1e-8.
fn bracket_alone(sim: &Sim, pid: u32) -> ([SimOrder; 2], i128) {
    let deadline = Instant::now() + Duration::from_secs(12);
    while protective_open(&sim.exchange.sim_account()).len() < 2 {
        assert!(Instant::now() < deadline, "no bracket rested");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(pid, libc::SIGUSR1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last: Option<(Vec<SimOrder>, i128)> = None;
    let mut since = Instant::now();
    loop {
        let account = sim.exchange.sim_account();
        let open = open_at(&account);
        let net = exchange_position(&account);
        let closing = if net > 0 { "SELL" } else { "BUY" };
        let settled = open.len() == 2
            && net != 0
            && open.iter().all(|o| {
                (o.order_type == "STOP_LOSS" || o.order_type == "TAKE_PROFIT")
                    && o.side == closing
                    && units(&o.orig_qty) == net.abs()
            })
            && open[0].order_type != open[1].order_type;
        let now = (open, net);
        if !settled || last.as_ref() != Some(&now) {
            since = Instant::now();
            last = settled.then_some(now);
        } else if since.elapsed() > Duration::from_millis(500) {
            let (mut open, net) = now;
            open.sort_by_key(|o| o.order_type != "STOP_LOSS");
            let [stop, take] = <[SimOrder; 2]>::try_from(open).expect("two orders");
            return ([stop, take], net);
        }
        assert!(
            Instant::now() < deadline,
            "the bracket never rested alone, sized to the position: {last:?} {:?}",
            open_at(&sim.exchange.sim_account())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A trade print at `price` through the simulator's market (stops it crosses trigger).
fn print_at(sim: &Sim, price: &str) {
    let dec = pinion_exchange_sim::live::Dec::parse;
    assert!(sim.exchange.print(
        "BTCUSDT",
        dec(price).expect("price"),
        dec("0.00001").expect("qty")
    ));
}

/// The exchange's status of the order with client id `id`.
fn status_of(sim: &Sim, id: &str) -> Option<String> {
    sim.exchange
        .sim_account()
        .orders
        .into_iter()
        .find(|o| o.client_order_id == id)
        .map(|o| o.status)
}

/// Waits until the exchange has the order `id` in `status`.
fn wait_status(sim: &Sim, id: &str, status: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while status_of(sim, id).as_deref() != Some(status) {
        assert!(
            Instant::now() < deadline,
            "{id} is {:?}, not {status}",
            status_of(sim, id)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A price in 1e-8 as the exchange writes it, on the 0.01 grid.
fn price_text(units_1e8: i128) -> String {
    let cents = units_1e8 / 1_000_000;
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// `protect = "both"` over the real session: the native bracket rests at the simulator as one
/// OCO list of a `STOP_LOSS` and a `TAKE_PROFIT` on the closing side, sized to the whole
/// position, with stop prices 2 % either side of one entry (their ratio is 1.02 / 0.98 whatever
/// the entry) and no trailing delta; and the stop triggers by the exchange's rule: a print a
/// dollar short of its stop price leaves it waiting, a print at it fires it, and the
/// take-profit expires with it. The engine's own exits stay on as the second line.
#[test]
fn protect_both_rests_an_oco_with_the_right_fields_whose_stop_fires_at_its_stop_price() {
    let more = "
[strategy]
protect = \"both\"

[protection]
stop_loss_bps = 200
take_profit_bps = 200
";
    let mut stop_id = String::new();
    let run = trade_with("", 25.0, "", more, |sim, pid| {
        let ([stop, take], net) = bracket_alone(sim, pid);
        let list = stop.order_list_id;
        assert!(list.is_some(), "the bracket is an order list: {stop:?}");
        assert_eq!(take.order_list_id, list, "one list: {take:?}");
        assert_eq!((stop.trailing_delta, take.trailing_delta), (None, None));
        let sl = units(stop.stop_price.as_deref().expect("a stop price"));
        let tp = units(take.stop_price.as_deref().expect("a take-profit price"));
        // Long: the stop 2 % under the entry, the take-profit 2 % over it; short: mirrored.
        let (lower, upper) = if net > 0 { (sl, tp) } else { (tp, sl) };
        let ratio = upper as f64 / lower as f64;
        let want = 1.02 / 0.98;
        assert!(
            (ratio - want).abs() < 1e-5,
            "stop {sl} and take-profit {tp} are not 2 % either side of one entry ({ratio})"
        );
        // One dollar short of the stop: nothing; at it: the stop fires.
        let short_of = if net > 0 {
            sl + 100_000_000
        } else {
            sl - 100_000_000
        };
        print_at(sim, &price_text(short_of));
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(
            status_of(sim, &stop.client_order_id).as_deref(),
            Some("NEW"),
            "the stop fired before the market reached it"
        );
        print_at(sim, &price_text(sl));
        wait_status(sim, &stop.client_order_id, "FILLED", Duration::from_secs(3));
        wait_status(
            sim,
            &take.client_order_id,
            "EXPIRED",
            Duration::from_secs(3),
        );
        stop_id = stop.client_order_id;
        // pinion takes the fill in: the position is flat at the exchange, and stays so.
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(exchange_position(&sim.exchange.sim_account()), 0);
        assert!(open_at(&sim.exchange.sim_account()).is_empty());
        signal(pid, libc::SIGTERM);
    });
    assert_matches_the_exchange(&run);
    assert_no_order_twice(&run);
    assert_eq!(run.report["trading"][0]["protection"], "both");
    let mine = run.account[0]["orders"]
        .as_array()
        .and_then(|v| v.iter().find(|o| o["client_order_id"] == stop_id.as_str()))
        .expect("pinion tracked the stop");
    assert_eq!(mine["state"], "Filled");
    let guard = &run.account[0]["protection"];
    assert_eq!(guard["protective_fills"], 1, "{guard}");
    assert_eq!(
        run.report["trading"][0]["position"].as_str().map(units),
        Some(0),
        "{}",
        run.report
    );
}

/// The open protective orders' client ids at the exchange.
fn protective_ids(account: &SimAccount) -> Vec<String> {
    let mut v: Vec<String> = protective_open(account)
        .into_iter()
        .map(|(.., id)| id)
        .collect();
    v.sort();
    v
}

/// Whether the engine's `/ready` answers 200 on `port`.
fn ready(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// A bracket still resting when pinion dies is the restarted pinion's: run 1 trades with
/// `protect = "exchange"` and a journal until its bracket rests alone (trading killed, so
/// nothing else can move the position), then is SIGKILLed with the stop untouched. Run 2, on
/// the same journal and account with trading killed from the start, takes the bracket in from
/// the journal and the exchange: it places no bracket of its own, cancels nothing, and once its
/// session is ready the bracket still rests as run 1 left it. Then the market trades through
/// the stop: the adopted stop fills, its take-profit expires, run 2 sees the fill as the
/// bracket's, and ends flat with its orders, balances and position equal to the simulator's.
#[test]
fn a_bracket_resting_when_pinion_dies_is_adopted_on_restart_and_its_stop_still_closes_the_position()
{
    let (pem, public) = ed25519_key();
    let sim = start_trading_sim(public, "");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = trading_config(
        &sim,
        "recv_window_ms = 5000\nanswer_timeout_ms = 1000\nquery_after_ms = 1500\n",
    ) + &format!(
        "
[strategy]
protect = \"exchange\"

[protection]
stop_loss_bps = 200
take_profit_bps = 200

[journal]
path = \"{}\"
",
        sim.dir.0.join("journal").display()
    );
    let mut left = None;
    let first = run_pinion(&sim, &pem, &config, 40.0, Secret::Env, "1", |sim, pid| {
        left = Some(bracket_alone(sim, pid));
        signal(pid, libc::SIGKILL);
    });
    assert_eq!(first.code, None, "run 1 was killed: {}", first.stderr);
    let ([stop, take], position) = left.expect("a bracket");
    let after_kill = sim.exchange.sim_account();
    assert_eq!(
        protective_ids(&after_kill),
        {
            let mut v = vec![stop.client_order_id.clone(), take.client_order_id.clone()];
            v.sort();
            v
        },
        "the bracket outlives run 1"
    );
    assert_eq!(exchange_position(&after_kill), position);
    let orders_before = after_kill.orders.len();

    // Run 2: trading killed from the start, so only the guard may act; `/ready` says when the
    // order session (logon, reconciliation of the adopted orders) is up.
    let restart = config.replacen("[risk]\n", "[risk]\nkill_switch = true\n", 1)
        + &format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n");
    let second = run_pinion(&sim, &pem, &restart, 40.0, Secret::Env, "2", |sim, pid| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !ready(port) {
            assert!(Instant::now() < deadline, "run 2 never became ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Ready, and a while past it: the adopted bracket still rests, untouched, and nothing
        // was placed or cancelled.
        std::thread::sleep(Duration::from_millis(1500));
        let account = sim.exchange.sim_account();
        assert_eq!(
            account.orders.len(),
            orders_before,
            "run 2 placed an order: {:?}",
            &account.orders[orders_before.min(account.orders.len())..]
        );
        assert_eq!(
            open_at(&account)
                .iter()
                .map(|o| o.client_order_id.as_str())
                .collect::<Vec<_>>()
                .len(),
            2,
            "{:?}",
            open_at(&account)
        );
        assert_eq!(
            status_of(sim, &stop.client_order_id).as_deref(),
            Some("NEW")
        );
        assert_eq!(
            status_of(sim, &take.client_order_id).as_deref(),
            Some("NEW")
        );
        // The market trades through the stop: the adopted stop closes the position.
        let sl = units(stop.stop_price.as_deref().expect("a stop price"));
        let through = if position > 0 {
            sl - 100_000_000
        } else {
            sl + 100_000_000
        };
        print_at(sim, &price_text(through));
        wait_status(sim, &stop.client_order_id, "FILLED", Duration::from_secs(3));
        wait_status(
            sim,
            &take.client_order_id,
            "EXPIRED",
            Duration::from_secs(3),
        );
        std::thread::sleep(Duration::from_secs(1));
        signal(pid, libc::SIGTERM);
    });
    assert_eq!(second.code, Some(0), "run 2 failed:\n{}", second.stderr);
    let at_end = sim.exchange.sim_account();
    assert_eq!(at_end.orders.len(), orders_before, "run 2 placed an order");
    assert_eq!(exchange_position(&at_end), 0, "flat at the exchange");
    assert!(open_at(&at_end).is_empty(), "{:?}", open_at(&at_end));
    // Run 2's state equals the exchange's: the two legs as the exchange ended them, every
    // balance, and the position (run 1's fills from the journal, the stop's from user data).
    let legs = [stop.client_order_id.as_str(), take.client_order_id.as_str()];
    assert_account_equals(&second.account, &second.report, &at_end, |o| {
        legs.contains(&o.client_order_id.as_str())
    });
    let state = |id: &str| {
        second.account[0]["orders"]
            .as_array()
            .and_then(|v| v.iter().find(|o| o["client_order_id"] == id))
            .map(|o| o["state"].clone())
    };
    assert_eq!(state(legs[0]), Some(Value::from("Filled")));
    assert_eq!(state(legs[1]), Some(Value::from("Expired")));
    assert_eq!(
        second.report["trading"][0]["position"].as_str().map(units),
        Some(0)
    );
    assert_eq!(second.report["trading"][0]["protection"], "exchange");
    let guard = &second.account[0]["protection"];
    assert_eq!(guard["placed"], 0, "run 2 placed a bracket: {guard}");
    assert_eq!(
        guard["cancelled"], 0,
        "run 2 cancelled the bracket: {guard}"
    );
    assert_eq!(guard["protective_fills"], 1, "{guard}");
    assert_eq!(guard["adopted_legs"], 2, "{guard}");
    // No `openOrders.cancelAll`: not at the first connect (it would take the bracket with the
    // rest), nor at the end (nothing was open by then).
    assert_eq!(second.account[0]["session"]["cancel_all"], 0);
}

/// The client id part of an order's `clientOrderId` (`p<epoch>-<13 base-36 digits>`).
fn client_number(text: &str) -> Option<u64> {
    let (_, digits) = text.rsplit_once('-')?;
    u64::from_str_radix(digits, 36).ok()
}

/// The number after `label` in `text` (up to a space, a comma or a parenthesis).
fn number_after(text: &str, label: &str) -> String {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {text:?}"));
    text[at + label.len()..]
        .split([' ', ',', '(', ')'])
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_owned()
}

/// The operator bot trades by hand: a marketable `/buy` confirmed by its button reaches the
/// exchange under a manual client id; a confirmation that comes too late, an order the risk
/// gate refuses when asked, and one its gate refuses when sent (trading killed in between)
/// never do; a resting order is cancelled by `/cancel` once confirmed; an alarm fires once.
/// The account still equals the exchange's, and the journal holds every operator action with
/// the operator's id, the orders' joined to their own records by client id.
#[test]
fn the_bots_manual_orders_pass_the_gate_only_once_confirmed_and_are_journaled_with_the_operator() {
    use pinion_engine::ops::journal::{OperatorAction, OperatorKind, Record, frame};
    use pinion_exchange_sim::{BotApiConfig, BotApiFake, SelfSignedTls};
    use pinion_strategy::ReasonCode;
    let tls = SelfSignedTls::generate(&["localhost", "127.0.0.1"]).expect("certificate");
    let fake = BotApiFake::start(
        "127.0.0.1:0".parse().expect("addr"),
        BotApiConfig::new(BOT_TOKEN),
        Arc::clone(&tls.server_config),
    )
    .expect("the Bot API fake");
    let dir = std::env::temp_dir().join(format!(
        "pinion-trade-manual-{}-{}",
        std::process::id(),
        fake.local_addr().port()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let cert = dir.join("fake.pem");
    std::fs::write(&cert, &tls.certificate_pem).expect("write cert");
    let journal = dir.join("journal");
    let more = format!(
        "\n[journal]\npath = \"{}\"\n\n\
[bot]\napi_url = \"{}\"\nca_file = \"{}\"\nusers = [{OPERATOR}]\npoll_timeout_s = 1\n\
kill_confirm_s = 5\nalerts_file = \"{}\"\n",
        journal.display(),
        fake.base_url(),
        cert.display(),
        dir.join("alerts.json").display()
    );
    let to_operator = || -> Vec<String> {
        fake.sent()
            .into_iter()
            .filter(|m| m.chat_id == OPERATOR)
            .map(|m| m.text)
            .collect()
    };
    let wait_said = |since: usize, what: &str, limit: Duration| -> String {
        let until = Instant::now() + limit;
        loop {
            if let Some(t) = to_operator()[since..].iter().find(|t| t.contains(what)) {
                return t.clone();
            }
            assert!(
                Instant::now() < until,
                "no message with {what:?}: {:?}",
                to_operator()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let say = |text: &str, expect: &str| -> String {
        let before = to_operator().len();
        fake.inject(OPERATOR, text);
        wait_said(before, expect, Duration::from_secs(10))
    };
    let press = |label: &str, expect: &str| -> String {
        let before = to_operator().len();
        assert!(fake.press(OPERATOR, label).is_some(), "no {label} button");
        wait_said(before, expect, Duration::from_secs(10))
    };
    let mut bought = 0;
    let mut rested = 0;
    let mut rest_px = String::new();
    let run = trade_with("", 30.0, "", &more, |sim, pid| {
        let until = Instant::now() + Duration::from_secs(15);
        while fake.stats().polls == 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        // The strategy stops deciding; manual orders still go (and have the order rate).
        say("/pause", "Paused");
        say("/alert BTCUSDT > 1", "Alert #1 set");
        // A marketable buy at the touch, once the book has one.
        let mut ask = String::new();
        for _ in 0..20 {
            ask = say("/buy BTCUSDT 0.001", "BUY 0.001");
            if ask.contains("Reply /buy confirm") {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        assert!(ask.contains("immediate or cancel"), "{ask}");
        assert!(ask.contains("Risk gate: passes now"), "{ask}");
        let bid: f64 = number_after(&ask, "Book bid ").parse().expect("a bid");
        let sent = press("Confirm", "SENT: BUY 0.001 BTCUSDT");
        bought = number_after(&sent, " as order ")
            .parse()
            .expect("an order id");
        // Too late: nothing is sent.
        say("/sell BTCUSDT 0.001", "Reply /sell confirm");
        std::thread::sleep(Duration::from_millis(5300));
        press("Confirm", "The order request expired: nothing was sent.");
        // Refused when asked: above the order limit (0.01).
        say(
            "/buy BTCUSDT 1",
            "Risk gate: REFUSED (quantity above the order limit)",
        );
        // A limit 0.4% under the bid (inside the 50 bps band) rests, and is cancelled by hand.
        rest_px = format!("{:.2}", bid * 0.996);
        say(
            &format!("/buy BTCUSDT 0.001 {rest_px}"),
            "Reply /buy confirm",
        );
        let sent = say("/buy confirm", "SENT: BUY 0.001 BTCUSDT");
        rested = number_after(&sent, " as order ")
            .parse()
            .expect("an order id");
        say(&format!("/cancel {rested}"), "Reply /cancel confirm");
        press("Confirm", &format!("SENT: cancel of order {rested}"));
        // Asked before a kill, confirmed after it: the stage's own gate refuses it.
        say("/sell BTCUSDT 0.001", "Reply /sell confirm");
        signal(pid, libc::SIGUSR1);
        wait_said(0, "KILL SWITCH", Duration::from_secs(10));
        press("Confirm", "REFUSED by the risk gate: SELL 0.001 BTCUSDT");
        let _ = sim;
    });
    assert_matches_the_exchange(&run);
    // The alarm (the mid above 1) fired, once.
    let fired = to_operator()
        .iter()
        .map(|t| t.matches("ALERT #1 BTCUSDT").count())
        .sum::<usize>();
    assert_eq!(fired, 1, "{:?}", to_operator());
    // At the exchange: the two confirmed orders, and no other manual one.
    let manual: Vec<&SimOrder> = run
        .sim
        .orders
        .iter()
        .filter(|o| {
            client_number(&o.client_order_id)
                .is_some_and(|n| n & (1 << 37) != 0 && n & (1 << 39) == 0)
        })
        .collect();
    let ids: Vec<u64> = manual
        .iter()
        .filter_map(|o| client_number(&o.client_order_id))
        .collect();
    assert_eq!(ids, [bought, rested], "{manual:?}");
    assert_eq!(manual[0].side, "BUY");
    assert_eq!(units(&manual[0].orig_qty), units("0.001"));
    assert_eq!(manual[1].status, "CANCELED", "{:?}", manual[1]);
    assert_eq!(units(&manual[1].price), units(&rest_px));
    // The journal: every operator action with the operator's id; the orders' records share
    // their client ids with the operator's.
    let bytes = std::fs::read(&journal).expect("the journal");
    let scan = frame::scan(&bytes).expect("a readable journal");
    let actions: Vec<OperatorAction> = scan
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Operator(a) => Some(*a),
            _ => None,
        })
        .collect();
    assert!(actions.iter().all(|a| a.user == OPERATOR), "{actions:?}");
    let kinds: Vec<(OperatorKind, u8)> = actions.iter().map(|a| (a.kind, a.outcome)).collect();
    assert_eq!(
        kinds,
        [
            (OperatorKind::Pause, OperatorAction::DONE),
            (OperatorKind::AlertSet, OperatorAction::DONE),
            (OperatorKind::Order, OperatorAction::DONE),
            (OperatorKind::Expired, OperatorAction::NOT_SENT),
            (OperatorKind::Order, OperatorAction::DONE),
            (OperatorKind::Cancel, OperatorAction::DONE),
            (OperatorKind::Order, OperatorAction::REFUSED),
        ],
        "{actions:?}"
    );
    assert_eq!(actions[2].client_id.0, bought);
    assert_eq!(actions[4].client_id.0, rested);
    assert_eq!(actions[5].target, rested);
    // Each manual order and cancel is journaled with the reason `manual`.
    let journaled = |id: u64| {
        scan.records.iter().any(|r| {
            matches!(r, Record::Order(o) if o.client_id.0 == id && o.reason.code == ReasonCode::Manual)
        })
    };
    assert!(journaled(bought) && journaled(rested) && journaled(actions[5].client_id.0));
    // And the account's orders say so too.
    let reason_of = |id: u64| {
        run.account[0]["orders"]
            .as_array()
            .and_then(|orders| {
                orders.iter().find(|o| {
                    o["client_order_id"]
                        .as_str()
                        .and_then(client_number)
                        .is_some_and(|n| n == id)
                })
            })
            .map(|o| o["reason"].clone())
    };
    assert_eq!(
        reason_of(bought),
        Some(Value::from("manual")),
        "{}",
        run.account
    );
    assert_eq!(reason_of(rested), Some(Value::from("manual")));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two instances trade on one account against the simulator: the account still equals the
/// exchange's, every order at the exchange names its instance, each instance's position and
/// realised PnL in the report equal a reckoning from the exchange's own trades of that
/// instance's orders, each within its own budget, and no order reached the exchange crossing
/// the other's: those were stopped before they were sent.
#[test]
fn two_strategies_trade_apart_and_each_ones_pnl_is_its_own_exchange_trades() {
    let run = trade_with("", 10.0, "", TWO_INSTANCES, |_, _| {});
    assert_two_instances_apart(&run);
}

/// The same two instances on a strategy stage of their own, on a thread of their own beside the
/// first strategy stage's (idle: no instance is left to it): the book stage's second lane
/// carries the market to them, the gateway's second lane their orders and reports, and at the
/// end their stage waits for the venue's wind-down as the one stage would. Same outcome.
#[test]
fn two_strategies_on_a_second_strategy_stage_trade_as_on_the_first() {
    let placement = "
[placement]
mode = \"custom\"
wait = \"park\"
[[placement.threads]]
name = \"market\"
stages = [\"feed\", \"book\", \"strategy\"]
[[placement.threads]]
name = \"trading\"
stages = [\"strategy:mid+micro\", \"gateway\"]
";
    let run = trade_with(
        "",
        10.0,
        "",
        &format!("{placement}{TWO_INSTANCES}"),
        |_, _| {},
    );
    assert_eq!(
        run.report["waits"],
        serde_json::json!(["market=park", "trading=park"]),
        "the custom placement ran"
    );
    assert_two_instances_apart(&run);
}

/// Position and realised PnL by average cost, reckoned from exchange trades in the order the
/// exchange made them (exact: 1e-8 units of price × 1e-8 of quantity).
#[derive(Debug, Default, Clone, Copy)]
struct Reckoning {
    qty: i128,
    cost: i128,
    realized: i128,
    peak: i128,
    trades: usize,
}

impl Reckoning {
    fn trade(&mut self, t: &pinion_exchange_sim::wsapi::SimTrade) {
        let b = self;
        let (px, q) = (units(&t.price), units(&t.qty));
        let dir = if t.is_buyer { 1 } else { -1 };
        b.trades += 1;
        let mut rest = q;
        if b.qty != 0 && b.qty.signum() != dir {
            let closed = rest.min(b.qty.abs());
            let removed = b.cost * closed / b.qty.abs();
            b.realized += b.qty.signum() * px * closed - removed;
            b.cost -= removed;
            b.qty += dir * closed;
            rest -= closed;
            if b.qty == 0 {
                b.cost = 0;
            }
        }
        if rest > 0 {
            b.qty += dir * rest;
            b.cost += px * dir * rest;
        }
        b.peak = b.peak.max(b.qty.abs());
    }

    /// A `by_strategy` row of the report (`what`'s) has this position and realised PnL, and
    /// the reckoning has trades.
    fn assert_row(&self, row: &Value, what: &str) {
        assert!(self.trades > 0, "{what} traded at the exchange: {self:?}");
        assert_eq!(
            units(row["position"].as_str().expect("position")),
            self.qty,
            "{what}'s position"
        );
        // The report's ledger keeps money in the instrument's units (1e-10 here: price 1e-2
        // × quantity 1e-8) and divides the average cost in them: it may round apart from this
        // reckoning, in 1e-16, by one of its units per trade.
        let reported = scaled(row["realized_pnl"].as_str().expect("realised"), 16);
        let diff = (reported - self.realized).abs();
        assert!(
            diff <= self.trades as i128 * 1_000_000,
            "{what}'s realised PnL: reported {reported}, reckoned {} (1e-16 units)",
            self.realized
        );
    }
}

/// Two instances on one instrument traded apart: each one's position and realised PnL equal
/// a reckoning from its own orders' exchange trades, each within its budget, no self-trade at
/// the exchange because such orders were stopped before they were sent.
fn assert_two_instances_apart(run: &Run) {
    assert_matches_the_exchange(run);
    let ours: BTreeMap<&str, u64> = run.account[0]["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| {
            (
                o["client_order_id"].as_str().unwrap_or(""),
                o["strategy"]
                    .as_u64()
                    .expect("every order names its instance"),
            )
        })
        .collect();
    let instance_of_order: BTreeMap<u64, u64> = run
        .sim
        .orders
        .iter()
        .map(|o| (o.order_id, ours[o.client_order_id.as_str()]))
        .collect();
    // Position and realised PnL per instance, from its orders' exchange trades.
    let mut books = [Reckoning::default(); 2];
    let mut trades = run.sim.trades.clone();
    trades.sort_by_key(|t| t.id);
    for t in &trades {
        books[instance_of_order[&t.order_id] as usize].trade(t);
    }
    let by = run.report["trading"][0]["by_strategy"]
        .as_array()
        .expect("by_strategy");
    assert_eq!(by.len(), 2, "{by:?}");
    for (k, (b, row)) in books.iter().zip(by).enumerate() {
        b.assert_row(row, &format!("instance {k}"));
    }
    assert!(books[0].peak <= units("0.002"), "maker's budget: {books:?}");
    assert!(books[1].peak <= units("0.003"), "taker's budget: {books:?}");
    // Nothing reached the exchange crossing another instance's order.
    assert!(
        run.sim
            .orders
            .iter()
            .all(|o| o.status != "EXPIRED_IN_MATCH"),
        "a self-trade reached the exchange"
    );
    // ... because such orders were stopped before they were sent.
    let stopped = run.report["stages"]["strategy"]["self_trades_stopped"]
        .as_u64()
        .unwrap_or(0);
    eprintln!("self-trades stopped: {stopped}");
    assert!(stopped > 0, "the two makers' quotes never crossed");
}

/// The pair the live pairs test trades: BTCUSDT against ETHUSDT (the instruments named as the
/// `[live]` symbols are, one venue), thresholds a few basis points wide so the synthetic market
/// opens and closes it several times in seconds, 20 USDT a leg (0.00032 BTC, 0.0064 ETH: inside
/// the account's 0.01 per order in either unit).
const LIVE_PAIR: &str = "
[[strategy]]
name = \"pair\"
kind = \"pairs\"
instruments = [\"BTCUSDT\", \"ETHUSDT\"]
[strategy.pairs]
entry_bps = 1.5
exit_bps = 0.3
sample_ms = 50
mean_samples = 20
warmup_samples = 10
notional = \"20\"
cooldown_ms = 500
";

/// The strategy-id part of one of this run's client order ids (`p<epoch>-<id>`, base 36).
fn client_id(text: &str) -> u64 {
    let (_, id) = text
        .split_once('-')
        .unwrap_or_else(|| panic!("{text}: not one of pinion's client ids"));
    u64::from_str_radix(id, 36).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// A pairs instance trading live: `pinion live --trade` with one `kind = "pairs"` instance on
/// BTCUSDT and ETHUSDT, both served by the simulator's synthetic market and both tradable on its
/// WS API. The run is clean and each symbol's session equals the exchange; every order at the
/// exchange is the pair's, on the leg its id says; each leg's row of the instance equals that
/// symbol's exchange trades reckoned apart; and the legs go out together: the two orders of a
/// decision are on opposite sides, and a leg opens from flat beside an order on the other leg
/// (unless the other leg already holds the opposite side, or this is the re-send of a leg whose
/// previous order fell short).
#[test]
fn a_pairs_instance_trades_both_legs_live_hedged_and_each_leg_is_its_exchange_trades() {
    let (pem, public) = ed25519_key();
    let eth = pinion_feed::synth::SynthConfig {
        seed: 11,
        symbol: "ETHUSDT".to_owned(),
        messages: 400_000,
        start_price: "3100.00".to_owned(),
        step_size: "0.0001".to_owned(),
        level_qty: "2.5".to_owned(),
        trade_qty: "0.1".to_owned(),
        ..pinion_feed::synth::SynthConfig::default()
    };
    let sim = start_trading_sim_on(public, "", vec![eth], |api| {
        api.balances.push(("ETH".to_owned(), "100".to_owned()));
    });
    let journal = sim.dir.0.join("pairs.journal");
    let config = trading_config(
        &sim,
        "recv_window_ms = 5000\nanswer_timeout_ms = 1000\nquery_after_ms = 1500\n",
    )
    .replace(
        "symbols = [\"BTCUSDT\"]",
        "symbols = [\"BTCUSDT\", \"ETHUSDT\"]",
    ) + &format!(
        "
[[instrument]]
venue = \"binance-spot\"
symbol = \"ETHUSDT\"
tick_size = \"0.01\"
step_size = \"0.0001\"
qty_decimals = 8

[journal]
path = \"{}\"
fsync = \"never\"
{LIVE_PAIR}",
        journal.display()
    );
    let ran = run_pinion(&sim, &pem, &config, 10.0, Secret::Env, "", |_, _| {});
    let at_exchange = sim.exchange.sim_account();
    assert_eq!(
        ran.code,
        Some(0),
        "pinion live --trade failed:\n{}",
        ran.stderr
    );
    const LEGS: [&str; 2] = ["BTCUSDT", "ETHUSDT"];

    // (1) Each symbol's session equals the exchange, and nothing is left open (IOCs only).
    for symbol in LEGS {
        assert_symbol_equals(&ran.account, &ran.report, &at_exchange, symbol, |_| true);
    }
    for session in ran.account.as_array().expect("sessions") {
        assert_eq!(session["orders_table"]["unknown"], 0, "{session}");
    }
    let open: Vec<&SimOrder> = at_exchange
        .orders
        .iter()
        .filter(|o| matches!(o.status.as_str(), "NEW" | "PARTIALLY_FILLED"))
        .collect();
    assert!(open.is_empty(), "left open at the exchange: {open:?}");

    // (2) Both legs traded; every order is the pair's (instance 0, its slot 0 on the leg's
    // instrument), and each leg's ids name one instrument, the two legs' different.
    let mut leg_instrument = [None::<u64>; 2];
    for o in &at_exchange.orders {
        let leg = LEGS
            .iter()
            .position(|s| *s == o.symbol)
            .unwrap_or_else(|| panic!("an order on {}", o.symbol));
        let id = client_id(&o.client_order_id);
        assert_eq!(
            (id & ((1 << 40) - 1)) >> 30,
            0,
            "{}: the pair's slot",
            o.client_order_id
        );
        let instrument = (id >> 40)
            .checked_sub(1)
            .unwrap_or_else(|| panic!("{}: no instrument's range", o.client_order_id));
        assert_eq!(
            *leg_instrument[leg].get_or_insert(instrument),
            instrument,
            "{}: {} orders from two instruments' ranges",
            o.client_order_id,
            o.symbol
        );
    }
    assert!(
        leg_instrument.iter().all(Option::is_some),
        "both legs sent orders: {leg_instrument:?}"
    );
    assert_ne!(leg_instrument[0], leg_instrument[1], "the legs' ids");
    for session in ran.account.as_array().expect("sessions") {
        for o in session["orders"].as_array().expect("orders") {
            assert_eq!(o["strategy"], 0, "every order is the pair's: {o}");
        }
    }

    // (3) Each leg's row of the instance equals that symbol's exchange trades reckoned apart.
    let mut trades = at_exchange.trades.clone();
    trades.sort_by_key(|t| t.id);
    for symbol in LEGS {
        let mut leg = Reckoning::default();
        for t in trades.iter().filter(|t| t.symbol == symbol) {
            leg.trade(t);
        }
        let row = ran.report["trading"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["symbol"] == symbol))
            .unwrap_or_else(|| panic!("{symbol} in the report"));
        let by = row["by_strategy"].as_array().expect("by_strategy");
        assert_eq!(by.len(), 1, "{symbol}: {by:?}");
        assert_eq!(by[0]["name"], "pair", "{symbol}");
        leg.assert_row(&by[0], &format!("the pair's {symbol} leg"));
    }

    // (4) The legs go out together. The journal holds every order the stage sent and every
    // report it applied, in the order it did: the two orders of one decision are adjacent, with
    // the one trigger time `t0`, and on opposite sides. Walked in that order with each leg's
    // position from its fills, every order that opens a leg from flat is followed by an order
    // on the other leg on the other side (beside it, or later when that leg still had an order
    // out or its order rate was spent), unless the other leg already holds that side or it is
    // the re-send of a leg whose previous order fell short. Only an opening in the run's last
    // second may still wait for its hedge when the run ends.
    use pinion_engine::ops::journal::Record;
    use pinion_strategy::OrderSide;
    let bytes = std::fs::read(&journal).expect("the journal");
    let scan = pinion_engine::ops::journal::frame::scan(&bytes).expect("the journal reads");
    let leg_of = |instrument: pinion_core::InstrumentId| {
        leg_instrument
            .iter()
            .position(|i| *i == Some(u64::from(instrument.0)))
            .unwrap_or_else(|| panic!("an order on instrument {instrument:?}, neither leg"))
    };
    let sign = |side: OrderSide| if side == OrderSide::Buy { 1 } else { -1 };
    // The orders sent since the last report, each with its leg.
    let mut run: Vec<(usize, pinion_strategy::OrderIntent)> = Vec::new();
    let mut position = [0i64; 2];
    // Each leg's last order, and whether it ended short of its quantity.
    let mut last: [Option<(pinion_strategy::OrderIntent, bool)>; 2] = [None; 2];
    // The hedge each leg owes: the side its next orders must take, and the opening that asked.
    let mut owed: [Option<(OrderSide, pinion_strategy::OrderIntent)>; 2] = [None; 2];
    let (mut orders, mut together, mut openings, mut late) = (0, 0, 0, 0);
    let mut last_t0 = 0;
    for record in &scan.records {
        match record {
            Record::Order(o) => {
                let leg = leg_of(o.instrument);
                orders += 1;
                last_t0 = last_t0.max(o.t0);
                let beside = run.last().filter(|(l, p)| *l != leg && p.t0 == o.t0);
                if let Some((_, p)) = beside {
                    assert_ne!(
                        p.side, o.side,
                        "one decision, both legs one side: {p:?} {o:?}"
                    );
                    together += 1;
                    if position[leg] == 0 {
                        openings += 1;
                    }
                }
                if owed[leg].is_some_and(|(side, _)| side == o.side) {
                    if beside.is_none() {
                        late += 1;
                    }
                    owed[leg] = None;
                }
                let resent = last[leg].is_some_and(|(p, short)| short && p.side == o.side);
                // The other leg already holds the opposite side: nothing to send there.
                let hedged = position[1 - leg] * sign(o.side) < 0;
                let answered = beside.is_some_and(|(_, p)| p.side != o.side);
                if position[leg] == 0 && !resent && !hedged && !answered {
                    owed[1 - leg] = Some((o.side.opposite(), *o));
                }
                run.push((leg, *o));
                last[leg] = Some((*o, false));
            }
            Record::Report(r) => {
                run.clear();
                let leg = leg_of(r.instrument);
                if r.is_fill() {
                    position[leg] += sign(r.side) * r.last_qty.0;
                }
                if let Some((o, short)) = last[leg].as_mut()
                    && o.client_id == r.client_id
                    && r.status.is_final()
                {
                    *short = r.cum_qty.0 < o.qty.0;
                }
                // The other leg already holds the owed side (its earlier order filled).
                for (l, due) in owed.iter_mut().enumerate() {
                    if due.is_some_and(|(side, _)| position[l] * sign(side) > 0) {
                        *due = None;
                    }
                }
            }
            _ => {}
        }
    }
    for (side, opening) in owed.iter().flatten() {
        assert!(
            last_t0.saturating_sub(opening.t0) < 1_000_000_000,
            "a leg opened from flat and the other never sent its {side:?}: {opening:?}"
        );
    }
    assert_eq!(
        orders,
        at_exchange.orders.len(),
        "every order journaled once"
    );
    eprintln!(
        "pair: {orders} orders, {together} decisions on both legs, {openings} openings, {late} hedges sent after their opening; trades {} BTCUSDT, {} ETHUSDT",
        trades.iter().filter(|t| t.symbol == "BTCUSDT").count(),
        trades.iter().filter(|t| t.symbol == "ETHUSDT").count(),
    );
    assert!(openings >= 2, "the pair opened {openings} times");
    assert!(
        together >= 3,
        "and closed: {together} decisions on both legs"
    );
}
