//! The start-up checks of the order key, end to end against the exchange simulator over TLS:
//! `pinion live --trade` asks the WS API (`account.status`, `account.commission`) and the
//! wallet API (`GET /sapi/v1/account/apiRestrictions`, signed) before any order, refuses a key
//! that can withdraw unless `--allow-withdrawal-key` is given, warns about a key bound to no
//! IP address, and uses the exchange's commission rates when they differ from `[fees]`.
//!
//! (A secret file others may read is refused in `trade.rs`.)

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::sim::*;
use pinion_exchange_sim::Dec;
use pinion_exchange_sim::wsapi::{SimAccount, WsApiConfig};
use serde_json::Value;

/// What one run left behind.
struct Run {
    code: Option<i32>,
    report: Value,
    sim: SimAccount,
    stderr: String,
}

/// `pinion live --trade` for `seconds` against a simulator whose account `tune` shaped, with
/// `more` appended to the config and `args` added to the command.
fn run(tune: impl FnOnce(&mut WsApiConfig), more: &str, args: &[&str], seconds: f64) -> Run {
    let (pem, public) = ed25519_key();
    let sim = start_trading_sim_with(public, "", tune);
    let dir = &sim.dir.0;
    let config = trading_config(&sim, "recv_window_ms = 5000\n") + more;
    let config_path = dir.join("keys.toml");
    std::fs::write(&config_path, config).expect("write config");
    let report_path = dir.join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pinion"))
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("PINION_TEST_SECRET_FILE")
        .env("PINION_TEST_SECRET", &pem)
        .env("PINION_TEST_API_KEY", TRADE_API_KEY)
        .arg("live")
        .arg("--config")
        .arg(&config_path)
        .arg("--trade")
        .args(args)
        .arg("--duration")
        .arg(seconds.to_string())
        .arg("--no-progress")
        .arg("--report-json")
        .arg(&report_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pinion runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.exchange.stats().control_requests == 0
        && Instant::now() < deadline
        && matches!(child.try_wait(), Ok(None))
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    sim.exchange.release();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let status = child.wait().expect("pinion exits");
    let read = |p: &Path| -> Value {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    };
    Run {
        code: status.code(),
        report: read(&report_path),
        sim: sim.exchange.sim_account(),
        stderr,
    }
}

fn warnings(run: &Run) -> Vec<String> {
    run.report["key_checks"]["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_key_that_can_withdraw_is_refused_before_any_order_with_exit_code_4() {
    let run = run(|api| api.key.enable_withdrawals = true, "", &[], 4.0);
    assert_eq!(run.code, Some(4), "{}", run.stderr);
    assert!(
        run.stderr.contains("enableWithdrawals = true")
            && run.stderr.contains("--allow-withdrawal-key"),
        "{}",
        run.stderr
    );
    assert!(run.sim.orders.is_empty(), "orders went out");
}

#[test]
fn a_key_that_can_withdraw_trades_with_the_flag_and_the_report_says_so() {
    let run = run(
        |api| api.key.enable_withdrawals = true,
        "",
        &["--allow-withdrawal-key"],
        5.0,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let k = &run.report["key_checks"];
    assert_eq!(k["enable_withdrawals"], true, "{k}");
    assert_eq!(k["withdrawal_allowed_by_flag"], true, "{k}");
    assert!(
        warnings(&run)
            .iter()
            .any(|w| w.contains("--allow-withdrawal-key")),
        "{k}"
    );
    assert!(!run.sim.orders.is_empty(), "nothing was traded");
}

#[test]
fn a_safe_key_trades_and_the_report_shows_clean_checks() {
    let run = run(|_| {}, "", &[], 4.0);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let k = &run.report["key_checks"];
    assert_eq!(k["enable_withdrawals"], false, "{k}");
    assert_eq!(k["ip_restrict"], true, "{k}");
    assert_eq!(k["can_trade"], true, "{k}");
    assert_eq!(k["commission"][0]["symbol"], "BTCUSDT", "{k}");
    assert!(warnings(&run).is_empty(), "{k}");
    assert!(
        run.stderr.contains("order key: withdrawals disabled"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_key_bound_to_no_ip_address_is_warned_about_and_trades() {
    let run = run(|api| api.key.ip_restrict = false, "", &[], 4.0);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.report["key_checks"]["ip_restrict"], false);
    let w = warnings(&run);
    assert!(w.iter().any(|w| w.contains("ipRestrict = false")), "{w:?}");
    assert!(
        run.stderr
            .contains("warning: the order key is not restricted to IP addresses"),
        "{}",
        run.stderr
    );
}

/// An exact count of 1e-8 from a decimal string.
fn e8(s: &str) -> i128 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let neg = int.starts_with('-');
    let mut frac = frac.to_owned();
    frac.truncate(8);
    while frac.len() < 8 {
        frac.push('0');
    }
    let v = int.trim_start_matches('-').parse::<i128>().expect("int") * 100_000_000
        + frac.parse::<i128>().expect("frac");
    if neg { -v } else { v }
}

#[test]
fn commission_rates_unlike_the_config_are_warned_about_and_the_exchanges_are_charged() {
    let run = run(
        |api| {
            api.maker_commission = Dec::parse("0.00075").expect("rate");
            api.taker_commission = Dec::parse("0.0012").expect("rate");
        },
        "\n[fees]\nmaker_bps = 10\ntaker_bps = 10\n",
        &[],
        6.0,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let k = &run.report["key_checks"];
    assert_eq!(k["fees_configured"]["maker_bps"], "10", "{k}");
    assert_eq!(k["fees_used"]["maker_bps"], "7.5", "{k}");
    assert_eq!(k["fees_used"]["taker_bps"], "12", "{k}");
    assert!(
        warnings(&run)
            .iter()
            .any(|w| w.contains("differ from [fees]")),
        "{k}"
    );
    // The fees pinion charged its fills are the exchange's rates on the exchange's trades, to
    // within a rounding unit per fill; the configured 10 bps would be far off.
    assert!(!run.sim.trades.is_empty(), "nothing traded");
    let expected: i128 = run
        .sim
        .trades
        .iter()
        .map(|t| {
            let tenth_bps = if t.is_maker { 75 } else { 120 };
            e8(&t.quote_qty) * tenth_bps / 100_000
        })
        .sum();
    let at_config: i128 = run
        .sim
        .trades
        .iter()
        .map(|t| e8(&t.quote_qty) * 100 / 100_000)
        .sum();
    let charged = e8(run.report["trading"][0]["fees"].as_str().expect("fees"));
    let slack = run.sim.trades.len() as i128 + 1;
    assert!(
        (charged - expected).abs() <= slack,
        "charged {charged} e-8, the exchange's rates give {expected} (config's: {at_config})"
    );
    assert!(
        (charged - at_config).abs() > slack,
        "the configured rates were charged"
    );
}

#[test]
fn the_simulators_restrictions_request_is_signed_as_the_exchange_checks_it() {
    use pinion_gateway::binance::keycheck::{API_RESTRICTIONS_PATH, signed_query};
    use pinion_gateway::binance::sign::{Credentials, KeyKind};
    use pinion_net::rest::{RestClient, RestSettings};

    let (pem, public) = ed25519_key();
    let (other_pem, _) = ed25519_key();
    let sim = start_trading_sim_with(public, "", |api| api.key.ip_restrict = false);
    let tls = pinion_engine::pipeline::trust(Some(&sim.cert)).expect("trust");
    let base = format!("https://localhost:{}", sim.exchange.local_addr().port());
    let mut client = RestClient::new(&base, RestSettings::new(tls)).expect("client");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    let mut ask = |pem: &str, header_key: &str, timestamp: u128| {
        let key = Credentials::new(KeyKind::Ed25519, TRADE_API_KEY, pem).expect("key");
        let q = signed_query(&format!("timestamp={timestamp}&recvWindow=5000"), &key);
        let r = client
            .get_with_headers(
                &format!("{API_RESTRICTIONS_PATH}?{q}"),
                &[("X-MBX-APIKEY", header_key)],
            )
            .expect("answered");
        let body: Value = serde_json::from_slice(&r.body).expect("json");
        (r.status, body)
    };
    let (status, body) = ask(&pem, TRADE_API_KEY, now);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enableWithdrawals"], false);
    assert_eq!(body["ipRestrict"], false);
    let (status, body) = ask(&other_pem, TRADE_API_KEY, now);
    assert_eq!(
        (status, body["code"].as_i64()),
        (400, Some(-1022)),
        "{body}"
    );
    let (status, body) = ask(&pem, "someoneElsesKey", now);
    assert_eq!(
        (status, body["code"].as_i64()),
        (401, Some(-2015)),
        "{body}"
    );
    let (status, body) = ask(&pem, TRADE_API_KEY, now - 60_000);
    assert_eq!(
        (status, body["code"].as_i64()),
        (400, Some(-1021)),
        "{body}"
    );
}
