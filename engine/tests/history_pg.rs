//! The shared PostgreSQL copy of the trade history (`[history] postgres = true`), against a
//! real PostgreSQL server started for the test, through the `pinion` binary on the real
//! recording.
//!
//! - Database down while a run writes: the run is clean, the file has it, the report says the
//!   copy is behind. Database back: the next run's start-up comparison copies what was missed,
//!   and the copy equals the file, every table, row for row, value for value.
//! - A row removed from the file is removed from the copy at the next start.
//! - Over TLS (`sslmode=require`): the server's certificate is verified against
//!   `[history] postgres_ca_file`; without it the connection is refused for the certificate
//!   and the copy is behind, the run still clean. The connection string's password appears in
//!   no output.
//! - `pinion live --trade` with a journal: fills reach the copy while the session runs, and
//!   after its end (which replaces the streamed orders with the venue's) the copy equals the
//!   file.

mod common;

use std::path::Path;
use std::process::Command;

use pinion_testkit::postgres::PgServer;

const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";

/// `pinion backtest` on `recording` writing `db`, with the copy kept through `connection`;
/// (exit code, stderr).
fn backtest(
    dir: &Path,
    recording: &Path,
    db: &Path,
    connection: &str,
    extra: &[&str],
) -> (Option<i32>, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pinion"));
    c.args([
        "backtest",
        "--config",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../configs/backtest-market-making.toml"
        ),
        "--no-progress",
        "--placement",
        "1",
        "--max-records",
        "20000",
        "--set",
        "placement.wait=park",
        "--set",
        "history.postgres=true",
        "--set",
        "history.source=desk-a",
        "--set",
        "history.postgres_retry_ms=100",
        "--set",
        "history.postgres_flush_secs=2",
    ])
    .arg("--input")
    .arg(recording)
    .arg("--out")
    .arg(dir)
    .arg("--history")
    .arg(db)
    .env("PINION_HISTORY_POSTGRES", connection)
    .env_remove("PINION_LOG")
    .env_remove("CREDENTIALS_DIRECTORY");
    for e in extra {
        c.args(["--set", e]);
    }
    let out = c.output().expect("pinion runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every table of the file as text rows `rowid, columns…` in rowid order.
fn file_tables(db: &Path) -> Vec<(String, Vec<Vec<Option<String>>>)> {
    let conn = rusqlite::Connection::open(db).expect("open the history");
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    names
        .into_iter()
        .map(|t| {
            let mut stmt = conn
                .prepare(&format!("SELECT rowid, * FROM \"{t}\" ORDER BY rowid"))
                .unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                                rusqlite::types::Value::Null => None,
                                rusqlite::types::Value::Integer(v) => Some(v.to_string()),
                                rusqlite::types::Value::Text(s) => Some(s),
                                other => Some(format!("{other:?}")),
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            (t, rows)
        })
        .collect()
}

/// The same tables as the copy holds them for `source`, through `psql`.
fn copy_tables(
    pg: &PgServer,
    source: &str,
    like: &[(String, Vec<Vec<Option<String>>>)],
) -> Vec<(String, Vec<Vec<Option<String>>>)> {
    like.iter()
        .map(|(t, _)| {
            let cols = pg.psql(&format!(
                "SELECT column_name FROM information_schema.columns WHERE table_name = \
                 'pinion_{t}' AND column_name NOT IN ('source', 'row_id') ORDER BY ordinal_position"
            ));
            let select: Vec<String> = cols
                .lines()
                .map(|c| format!("coalesce(\"{c}\"::text, '<null>')"))
                .collect();
            let text = pg.psql(&format!(
                "SELECT row_id::text AS r, {} FROM \"pinion_{t}\" WHERE source = '{source}' \
                 ORDER BY row_id",
                select.join(", ")
            ));
            let rows = text
                .lines()
                .map(|l| {
                    l.split('\t')
                        .map(|v| (v != "<null>").then(|| v.to_owned()))
                        .collect()
                })
                .collect();
            (t.clone(), rows)
        })
        .collect()
}

fn assert_copy_equals_file(pg: &PgServer, db: &Path, source: &str) -> usize {
    let file = file_tables(db);
    let copy = copy_tables(pg, source, &file);
    let mut rows = 0;
    for ((t, f), (_, c)) in file.iter().zip(&copy) {
        assert_eq!(f.len(), c.len(), "table {t}: rows in the file vs the copy");
        for (a, b) in f.iter().zip(c) {
            assert_eq!(a, b, "table {t}: a row differs");
        }
        rows += f.len();
    }
    rows
}

#[test]
fn the_copy_catches_up_after_an_outage_and_equals_the_file_row_for_row() {
    let Some(recording) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let Some(mut pg) = PgServer::start("copy") else {
        return;
    };
    let dir = common::scratch_dir("history-pg");
    let db = dir.join("history.db");
    let connection = format!("{} password=not-used-but-secret", pg.url());

    // Down: the run is clean and in the file; the copy is behind, and says why.
    pg.stop();
    let (code, stderr) = backtest(&dir.join("a"), &recording, &db, &connection, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("history: run 1"), "{stderr}");
    assert!(
        stderr.contains("PostgreSQL copy (source \"desk-a\") behind"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-used-but-secret"), "{stderr}");

    // Back: the next start compares the whole file, so run 1 arrives with run 2.
    pg.restart();
    assert!(pg.wait_ready(std::time::Duration::from_secs(30)));
    let (code, stderr) = backtest(&dir.join("b"), &recording, &db, &connection, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("history: run 2"), "{stderr}");
    assert!(
        stderr.contains("PostgreSQL copy (source \"desk-a\") up to date"),
        "{stderr}"
    );
    let rows = assert_copy_equals_file(&pg, &db, "desk-a");
    let fills: usize = pg
        .psql("SELECT count(*) FROM pinion_fills WHERE source = 'desk-a'")
        .trim()
        .parse()
        .unwrap();
    assert!(fills > 10, "the runs filled: {fills}");
    assert!(rows > fills, "runs, fills, days and positions: {rows}");
    let runs = pg.psql("SELECT count(*) FROM pinion_runs WHERE source = 'desk-a'");
    assert_eq!(runs.trim(), "2");
    let sources = pg.psql("SELECT source, schema_version FROM pinion_sources");
    assert!(sources.starts_with("desk-a\t"), "{sources}");

    // A row the file lost leaves the copy at the next start; another engine's rows stay.
    pg.psql(
        "INSERT INTO pinion_runs (source, row_id, id, started_unix_ns, command, config, input,
             orders, cancels, fills, fills_not_recorded)
         VALUES ('desk-b', 1, 1, 0, 'backtest', 'x', 'y', 0, 0, 0, 0)",
    );
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let n = conn.execute("DELETE FROM fills WHERE run = 1", []).unwrap();
        assert!(n > 0);
    }
    let (code, stderr) = backtest(&dir.join("c"), &recording, &db, &connection, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("up to date"), "{stderr}");
    assert_copy_equals_file(&pg, &db, "desk-a");
    let other = pg.psql("SELECT count(*) FROM pinion_runs WHERE source = 'desk-b'");
    assert_eq!(
        other.trim(),
        "1",
        "another source's rows are not this one's to prune"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn over_tls_the_server_certificate_is_verified() {
    let Some(recording) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let Some(pg) = PgServer::start_tls("tls", &cert_pem, &key_pem) else {
        return;
    };
    let dir = common::scratch_dir("history-pg-tls");
    let db = dir.join("history.db");
    let ca = dir.join("db-ca.pem");
    std::fs::write(&ca, &cert_pem).unwrap();
    let connection = format!(
        "host=localhost port={} user=pinion dbname=postgres password=tls-secret-pw sslmode=require",
        pg.port()
    );

    // Not trusted: refused for its certificate; the run is clean, the copy behind.
    let (code, stderr) = backtest(&dir.join("a"), &recording, &db, &connection, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("behind"), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("certificate"),
        "the failure names the certificate: {stderr}"
    );
    assert!(!stderr.contains("tls-secret-pw"), "{stderr}");
    let empty =
        pg.psql("SELECT count(*) FROM information_schema.tables WHERE table_name = 'pinion_runs'");
    assert_eq!(
        empty.trim(),
        "0",
        "nothing was written over an untrusted connection"
    );

    // Trusted through postgres_ca_file: the copy is made over TLS.
    let ca_set = format!("history.postgres_ca_file={}", ca.display());
    let (code, stderr) = backtest(&dir.join("b"), &recording, &db, &connection, &[&ca_set]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("up to date"), "{stderr}");
    assert_copy_equals_file(&pg, &db, "desk-a");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_trading_sessions_fills_reach_the_copy_while_it_runs_and_its_end_matches_the_file() {
    use common::sim::*;
    use std::time::{Duration, Instant};

    let Some(pg) = PgServer::start("live") else {
        return;
    };
    let (pem, public) = ed25519_key();
    let sim = start_trading_sim(public, "");
    let dir = sim.dir.0.clone();
    let db = dir.join("history.db");
    let config = trading_config(&sim, "")
        + RESTING_QUOTES
        + &format!(
            "\n[journal]\npath = \"{}\"\n\n[history]\ndb = \"{}\"\npostgres = true\n\
             source = \"desk-live\"\npostgres_retry_ms = 200\n",
            dir.join("journal.bin").display(),
            db.display()
        );
    let config_path = dir.join("trade.toml");
    std::fs::write(&config_path, config).expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pinion"))
        .arg("live")
        .arg("--config")
        .arg(&config_path)
        .args(["--trade", "--duration", "12", "--no-progress"])
        .env("PINION_TEST_API_KEY", TRADE_API_KEY)
        .env("PINION_TEST_SECRET", &pem)
        .env("PINION_HISTORY_POSTGRES", pg.url())
        .env_remove("PINION_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pinion runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.exchange.stats().control_requests == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    sim.exchange.release();
    // Fills are in the copy while the session still runs.
    let fills = || -> u64 {
        let text = pg.psql(
            "SELECT CASE WHEN to_regclass('pinion_fills') IS NULL THEN 0 ELSE \
             (SELECT count(*) FROM pinion_fills) END",
        );
        text.trim().parse().unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    while fills() < 3 {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the session ended before three fills reached the copy"
        );
        assert!(
            Instant::now() < deadline,
            "no fills reached the copy while the session ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = child.wait().expect("pinion exits");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("PostgreSQL copy (source \"desk-live\") up to date"),
        "{stderr}"
    );
    // The end replaced the streamed orders with the venue's: deletions reached the copy too.
    assert_copy_equals_file(&pg, &db, "desk-live");
    let orders = pg.psql("SELECT count(*) FROM pinion_orders WHERE source = 'desk-live'");
    assert!(orders.trim().parse::<u64>().unwrap() > 0, "{stderr}");
}
