//! Running it for real: the trade history and the structured log, through the `pinion` binary.
//!
//! - `pinion backtest --history DB` on the real recording: the file's fills are fills.csv row
//!   for row, its days add up exactly to the report's net PnL, and `pinion history … --csv`
//!   reads back what was written; a second run adds to the file.
//! - `pinion live --trade` against the exchange simulator with the log at `trace` into a file:
//!   the lifecycle records are there (connections logged as they open) and neither the API key nor the secret is, anywhere; the
//!   session's orders reach the history.
//! - Bad `[log]` keys and a bad `PINION_LOG` are refused with the key or the variable named; a
//!   history file from a newer schema is refused.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::sim::*;
use serde_json::Value;

const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";

fn pinion(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pinion"));
    c.args(args).env_remove("PINION_LOG");
    c
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A decimal string as an exact integer of `10^-scale` (at most `scale` decimals).
fn units(s: &str, scale: u32) -> i128 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(
        frac.len() <= scale as usize,
        "{s} has more than {scale} decimals"
    );
    let neg = int.starts_with('-');
    let int: i128 = int
        .trim_start_matches('-')
        .parse()
        .expect("an integer part");
    let frac: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i128>().expect("a fraction") * 10i128.pow(scale - frac.len() as u32)
    };
    let v = int * 10i128.pow(scale) + frac;
    if neg { -v } else { v }
}

/// CSV text (no quoted cells in what these commands write) as rows of cells, header first.
fn csv(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

fn backtest(dir: &Path, recording: &Path, db: &Path) {
    ok(
        pinion(&[
            "backtest",
            "--config",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../configs/backtest-market-making.toml"
            ),
            "--no-progress",
            "--placement",
            "1",
            "--set",
            "placement.wait=park",
        ])
        .arg("--input")
        .arg(recording)
        .arg("--out")
        .arg(dir)
        .arg("--history")
        .arg(db)
        .output()
        .expect("pinion runs"),
        "pinion backtest",
    );
}

#[test]
fn a_backtests_history_is_its_fills_csv_and_its_days_sum_to_its_net_pnl() {
    let Some(recording) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let dir = common::scratch_dir("ops-history");
    let db = dir.join("history.db");
    backtest(&dir.join("a"), &recording, &db);
    let db_arg = db.to_str().expect("UTF-8 path");

    // Row for row, byte for byte, the file's fills are fills.csv.
    let from_db = ok(
        pinion(&["history", "--db", db_arg, "fills", "--csv"])
            .output()
            .unwrap(),
        "history fills",
    );
    let fills_csv = std::fs::read_to_string(dir.join("a/fills.csv")).expect("fills.csv");
    let rows = csv(&fills_csv);
    assert!(
        rows.len() > 100,
        "the market-making run fills: {}",
        rows.len()
    );
    assert_eq!(csv(&from_db), rows);
    assert_eq!(from_db, fills_csv);

    // The per-day net PnL sums exactly to the report's.
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("a/report.json")).expect("report.json"),
    )
    .expect("JSON");
    let net = report["trading"]["total"]["net_pnl"]
        .as_str()
        .expect("net_pnl");
    let by_day = csv(&ok(
        pinion(&["history", "--db", db_arg, "pnl", "--by", "day", "--csv"])
            .output()
            .unwrap(),
        "history pnl by day",
    ));
    assert_eq!(
        by_day[0],
        [
            "day",
            "fills",
            "realized_pnl",
            "fees",
            "unrealized_pnl",
            "net_pnl"
        ]
    );
    let days = &by_day[1..];
    assert!(!days.is_empty());
    let net_col = |r: &Vec<String>| units(&r[5], 12);
    assert_eq!(days.iter().map(net_col).sum::<i128>(), units(net, 12));
    // Each day's net is its realised and unrealised less its fees; every fill is in a day.
    for d in days {
        assert_eq!(
            units(&d[2], 12) + units(&d[4], 12) - units(&d[3], 12),
            net_col(d),
            "{d:?}"
        );
    }
    let fills_per_day: u64 = days.iter().map(|d| d[1].parse::<u64>().unwrap()).sum();
    assert_eq!(fills_per_day as usize, rows.len() - 1);
    // The days are the UTC dates of the fills' times.
    for r in &rows[1..] {
        let t: u64 = r[0].parse().unwrap();
        let day = pinion_engine::ops::civil::date(t);
        assert!(days.iter().any(|d| d[0] == day), "{day} not among {days:?}");
    }

    // A second run adds to the file: every instrument's PnL is now twice the run's.
    backtest(&dir.join("b"), &recording, &db);
    let by_instrument = csv(&ok(
        pinion(&[
            "history",
            "--db",
            db_arg,
            "pnl",
            "--by",
            "instrument",
            "--csv",
        ])
        .output()
        .unwrap(),
        "history pnl by instrument",
    ));
    assert_eq!(by_instrument.len(), 2, "{by_instrument:?}");
    assert_eq!(by_instrument[1][0], "binance-spot BTCUSDT");
    assert_eq!(units(&by_instrument[1][5], 12), 2 * units(net, 12));
    assert_eq!(
        by_instrument[1][1].parse::<usize>().unwrap(),
        2 * (rows.len() - 1)
    );

    // A time window and an instrument pick fills: from the middle fill's time on, half-open.
    let mid = &rows[rows.len() / 2];
    let last = &rows[rows.len() - 1];
    let window = csv(&ok(
        pinion(&[
            "history",
            "--db",
            db_arg,
            "fills",
            "--csv",
            "--from",
            &mid[0],
            "--to",
            &last[0],
            "--instrument",
            "BTCUSDT",
        ])
        .output()
        .unwrap(),
        "history fills window",
    ));
    let t = |r: &Vec<String>| r[0].parse::<u64>().unwrap();
    let want: Vec<&Vec<String>> = rows[1..]
        .iter()
        .filter(|r| t(r) >= t(mid) && t(r) < t(last))
        .collect();
    // Both runs' fills, in run order.
    assert_eq!(window.len() - 1, 2 * want.len());
    assert!(want.len() > 10);
    assert_eq!(window[1..=want.len()].iter().collect::<Vec<_>>(), want);
    let none = ok(
        pinion(&[
            "history",
            "--db",
            db_arg,
            "fills",
            "--csv",
            "--instrument",
            "ETHUSDT",
        ])
        .output()
        .unwrap(),
        "history fills of another symbol",
    );
    assert_eq!(csv(&none).len(), 1, "{none}");

    // The schema is versioned and the journal is WAL.
    let conn = rusqlite::Connection::open(&db).expect("open");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, pinion_engine::ops::history::SCHEMA_VERSION);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let runs: i64 = conn
        .query_row(
            "SELECT count(*) FROM runs WHERE command = 'backtest'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(runs, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_history_from_a_newer_schema_or_a_missing_file_is_refused() {
    let dir = common::scratch_dir("ops-schema");
    let db = dir.join("newer.db");
    let conn = rusqlite::Connection::open(&db).expect("create");
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let empty = dir.join("empty.db");
    rusqlite::Connection::open(&empty)
        .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
        .expect("an SQLite file of something else");
    for (file, want) in [
        (db.clone(), "schema version 99"),
        (empty.clone(), "not a pinion history"),
        (dir.join("absent.db"), "no such history file"),
    ] {
        let out = pinion(&["history", "--db", file.to_str().unwrap(), "pnl"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{err}");
    }
    // A backtest asked to write into either refuses before it runs.
    for (file, want) in [
        (&db, "schema version 99"),
        (&dir.join("empty.db"), "not a pinion history"),
    ] {
        let out = pinion(&[
            "backtest",
            "--history",
            file.to_str().unwrap(),
            "--no-progress",
        ])
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{err}");
        assert!(out.stdout.is_empty());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_log_settings_are_refused_with_the_key_or_the_variable() {
    let out = pinion(&[
        "config",
        "--set",
        "log.level=loud",
        "--set",
        "log.format=xml",
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("log.level: \"loud\" is not a log level"),
        "{err}"
    );
    assert!(
        err.contains("log.format: \"xml\" is not a log format"),
        "{err}"
    );
    let out = pinion(&["replay", "--records", "10", "--no-progress"])
        .env("PINION_LOG", "pinion::run=chatty")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("PINION_LOG=pinion::run=chatty: \"chatty\" is not a log level"),
        "{err}"
    );
}

#[test]
fn a_replay_logs_its_start_and_end_as_json_lines_and_the_env_picks_the_level() {
    let dir = common::scratch_dir("ops-log");
    let log = dir.join("pinion.log");
    let set_file = format!("log.file=\"{}\"", log.display());
    let out = pinion(&[
        "replay",
        "--records",
        "2000",
        "--no-progress",
        "--set",
        &set_file,
    ])
    .env("PINION_LOG", "warn,pinion::run=debug")
    .output()
    .unwrap();
    ok(out, "pinion replay");
    let text = std::fs::read_to_string(&log).expect("the log file");
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let msgs: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["level"].as_str().unwrap(), r["msg"].as_str().unwrap()))
        .collect();
    assert_eq!(
        msgs,
        [
            ("info", "pinion replay starting"),
            ("debug", "config"),
            ("info", "pinion replay ended")
        ]
    );
    assert_eq!(records[0]["target"], "pinion::run");
    assert_eq!(records[1]["placement"], "2");
    assert_eq!(records[2]["log_records_dropped"], 0);
    assert!(records[2]["orders"].as_u64().unwrap() > 0, "{}", records[2]);
    // The default level keeps the lifecycle out of stderr.
    let out = pinion(&["replay", "--records", "2000", "--no-progress"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("\"pinion::run\""));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_trading_session_at_trace_level_logs_no_secret_and_its_orders_reach_the_history() {
    let (pem, public) = ed25519_key();
    let sim = start_trading_sim(public, "");
    let dir = &sim.dir.0;
    let config = trading_config(
        &sim,
        "recv_window_ms = 5000\nanswer_timeout_ms = 1000\nquery_after_ms = 1500\n",
    );
    let log = dir.join("pinion.log");
    let db = dir.join("history.db");
    let config = format!(
        "{config}\n[log]\nlevel = \"trace\"\nfile = \"{}\"\n",
        log.display()
    );
    let config_path = dir.join("trade.toml");
    std::fs::write(&config_path, config).expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pinion"))
        .arg("live")
        .arg("--config")
        .arg(&config_path)
        .args(["--trade", "--duration", "4", "--no-progress", "--history"])
        .arg(&db)
        .env("PINION_TEST_API_KEY", TRADE_API_KEY)
        .env("PINION_TEST_SECRET", &pem)
        .env("PINION_LOG", "trace")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pinion runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.exchange.stats().control_requests == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    sim.exchange.release();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let status = child.wait().expect("pinion exits");
    assert_eq!(status.code(), Some(0), "{stderr}");

    let text = std::fs::read_to_string(&log).expect("the log file");
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let has = |target: &str, msg: &str| {
        records
            .iter()
            .any(|r| r["target"] == target && r["msg"].as_str().is_some_and(|m| m.contains(msg)))
    };
    assert!(has("pinion::run", "pinion live starting"), "{text}");
    assert!(has("pinion::trade", "order entry"), "{text}");
    assert!(has("pinion::trade", "order session"), "{text}");
    // As it happened, from the watch on the feed's counters, and in the end summary.
    assert!(has("pinion::live", "connection 0: connected"), "{text}");
    assert!(has("pinion::live", "book snapshot taken"), "{text}");
    assert!(has("pinion::trade", ": order session connected"), "{text}");
    assert!(
        has("pinion::live", "connection 0: 1 opens, 0 reconnects"),
        "{text}"
    );
    assert!(has("pinion::run", "pinion live ended"), "{text}");
    // The credentials are named by their variables, never given.
    let entry = records
        .iter()
        .find(|r| r["msg"] == "order entry")
        .expect("order entry");
    assert_eq!(entry["api_key_env"], "PINION_TEST_API_KEY");
    assert_eq!(entry["secret_env"], "PINION_TEST_SECRET");
    let secret_lines: Vec<&str> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .collect();
    assert!(!secret_lines.is_empty());
    for (what, haystack) in [("the log file", &text), ("stderr", &stderr)] {
        assert!(
            !haystack.contains(TRADE_API_KEY),
            "the API key is in {what}"
        );
        for l in &secret_lines {
            assert!(!haystack.contains(l), "the secret is in {what}");
        }
    }

    // The session's orders and fills reached the history.
    let conn = rusqlite::Connection::open(&db).expect("open the history");
    let orders: i64 = conn
        .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert!(orders > 0, "no orders in the history\n{stderr}");
    let run_fills: i64 = conn
        .query_row("SELECT fills FROM runs WHERE command = 'live'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let fills: i64 = conn
        .query_row("SELECT count(*) FROM fills", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fills, run_fills);
    let db_text = std::fs::read(&db).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&db_text).contains(TRADE_API_KEY),
        "the API key is in the history"
    );
}

#[test]
fn a_replay_with_a_history_key_records_its_fills_and_a_sweep_refuses_one() {
    let dir = common::scratch_dir("ops-replay-history");
    let db = dir.join("replay.db");
    let set_db = format!("history.db=\"{}\"", db.display());
    let report = dir.join("report.json");
    ok(
        pinion(&[
            "replay",
            "--records",
            "20000",
            "--no-progress",
            "--set",
            &set_db,
        ])
        .arg("--report-json")
        .arg(&report)
        .output()
        .unwrap(),
        "pinion replay",
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report.json")).unwrap();
    let fills: u64 = report["trading"]
        .as_array()
        .expect("trading rows")
        .iter()
        .map(|t| t["fills"].as_u64().expect("fills"))
        .sum();
    assert!(fills > 0, "{}", report["trading"]);
    let conn = rusqlite::Connection::open(&db).expect("open");
    let (command, recorded): (String, i64) = conn
        .query_row("SELECT command, fills FROM runs", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM fills", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (command.as_str(), recorded, rows),
        ("replay", fills as i64, fills as i64)
    );
    let out = pinion(&[
        "backtest",
        "--sweep",
        "strategy.threshold=0.5,0.6",
        "--set",
        &set_db,
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot go with --sweep"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
