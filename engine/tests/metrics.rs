//! The metrics endpoint from outside, as Prometheus and an operator see it: a replay and a live
//! session on loopback are scraped while they run, the exposition is parsed here (every sample
//! of a family with its `# HELP` and `# TYPE`, counters ending in `_total`), checked by
//! `promtool check metrics`, and scraped by a real Prometheus server whose HTTP API must then
//! return the series; `/health` and `/ready` answer with their reasons; the Grafana dashboard
//! in `configs/` uses only names the engine exports.
//!
//! `promtool` and `prometheus` come from Debian's `prometheus` package: under `CI` a missing one
//! fails the test, elsewhere its part is skipped with a message.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::sim::{TempDir, live_config, start_synthetic};
use pinion_engine::config::{Config, Override, Overrides};
use pinion_engine::metrics::{BookState, families, respond};
use pinion_engine::pipeline::{self, Console, PipelineError};

/// A free loopback port (bound, read, released: another process could take it in between,
/// which on a test machine it does not).
fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// `GET path` on `addr`: the status code and the body.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    request(addr, "GET", path)
}

fn request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8(raw).expect("a UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.parse().ok())
        .expect("a Content-Length");
    if method != "HEAD" {
        assert_eq!(body.len(), length, "Content-Length matches the body");
    }
    Ok((code, body.to_owned()))
}

/// One sample: its name, labels and value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: each family's type and help, and the samples.
#[derive(Debug, Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    helps: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    fn values(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }
}

/// Parses text exposition 0.0.4, failing on anything the format does not allow: a sample
/// before its family's `# TYPE`, a family declared twice, a malformed label set or value.
fn parse_exposition(text: &str) -> Exposition {
    let mut e = Exposition::default();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(
                e.helps.insert(name.to_owned(), help.to_owned()).is_none(),
                "HELP twice for {name}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                e.types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE twice for {name}"
            );
            current = Some(name.to_owned());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("labels end with }");
                (name, parse_labels(inner, line))
            }
            None => (series, BTreeMap::new()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "name {name}"
        );
        // A histogram's series are its name with `_bucket`, `_sum` or `_count`.
        let family = current.as_deref().unwrap_or_default();
        let of_family = name == family
            || (e.types.get(family).map(String::as_str) == Some("histogram")
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(family)));
        assert!(of_family, "sample {name} outside its family's block");
        e.samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    e
}

fn parse_labels(mut s: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !s.is_empty() {
        let (k, rest) = s
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label in {line}"));
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => panic!("bad escape {other:?} in {line}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {line}"),
            }
        };
        assert!(
            labels.insert(k.to_owned(), value).is_none(),
            "label {k} twice in {line}"
        );
        s = &rest[end + 1..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
    labels
}

/// What every exposition of the engine must satisfy: every family named by the conventions,
/// with HELP and TYPE, and of the type the engine declares.
fn assert_conventions(e: &Exposition) {
    let declared: BTreeMap<&str, &str> = families()
        .iter()
        .map(|f| {
            (
                f.name,
                match f.kind {
                    pinion_engine::metrics::MetricKind::Counter => "counter",
                    pinion_engine::metrics::MetricKind::Gauge => "gauge",
                    pinion_engine::metrics::MetricKind::Histogram => "histogram",
                },
            )
        })
        .collect();
    for (name, kind) in &e.types {
        assert!(name.starts_with("pinion_"), "{name}");
        assert!(e.helps.contains_key(name), "{name} has no HELP");
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name}: {kind}"
        );
        assert_eq!(declared.get(name.as_str()), Some(&kind.as_str()), "{name}");
    }
    for s in &e.samples {
        assert!(s.value.is_finite(), "{s:?}");
        if e.types.get(&s.name).map(String::as_str) == Some("counter") {
            assert!(s.value >= 0.0, "{s:?}");
        }
    }
}

/// The path of tool `name` on `PATH`; under `CI` a missing one fails the test, elsewhere it is
/// skipped with a message.
fn require_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not installed (Debian package `prometheus`); CI must have it"
        );
        eprintln!(
            "skipping the {name} check: {name} is not installed (Debian package `prometheus`)"
        );
    }
    found
}

/// `promtool check metrics` on `text` (when promtool is there): it must accept it without a
/// single complaint.
fn promtool_accepts(text: &str) {
    let Some(promtool) = require_tool("promtool") else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("promtool reads");
    let out = child.wait_with_output().expect("promtool ends");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool refused the exposition: {said}\n{text}"
    );
    assert!(said.trim().is_empty(), "promtool complained: {said}");
}

/// The embedded config on the synthetic market, paced at `rate` records a second, with
/// `extra` overrides.
fn replay_settings(
    records: u64,
    rate: u64,
    extra: &[(&str, &str)],
) -> pinion_engine::config::Settings {
    let mut o = Overrides::default();
    for (k, v) in [
        ("placement.mode", "\"2\"".to_owned()),
        ("placement.wait", "\"park\"".to_owned()),
        ("pacing.mode", "\"paced\"".to_owned()),
        ("pacing.rate", rate.to_string()),
        ("synthetic.records", records.to_string()),
        ("runtime.progress", "false".to_owned()),
    ] {
        o.push(Override::parse(&format!("{k}={v}")).expect("override"));
    }
    for (k, v) in extra {
        o.push(Override::parse(&format!("{k}={v}")).expect("override"));
    }
    common::embedded_with(&o)
}

#[test]
fn a_running_replay_is_served_and_parses() {
    let addr = free_addr();
    let listen = format!("\"{addr}\"");
    // 60 000 records at 20 000/s: three seconds to scrape in.
    let settings = replay_settings(60_000, 20_000, &[("metrics.listen", &listen)]);
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let (settings, stop) = (settings.clone(), Arc::clone(&stop));
        std::thread::spawn(move || pipeline::run(&settings, stop, Console::QUIET))
    };
    // Wait until the book is live and records flow.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (text, e) = loop {
        assert!(Instant::now() < deadline, "no live book was ever served");
        std::thread::sleep(Duration::from_millis(100));
        let Ok((200, text)) = get(addr, "/metrics") else {
            continue;
        };
        let e = parse_exposition(&text);
        let live = e.value("pinion_book_live", &[("instrument", "BTCUSDT")]);
        if live == Some(1.0) && e.value("pinion_feed_records_total", &[]) > Some(1000.0) {
            break (text, e);
        }
    };
    assert_conventions(&e);
    promtool_accepts(&text);
    assert_eq!(e.value("pinion_info", &[("command", "replay")]), Some(1.0));
    assert_eq!(e.value("pinion_stage_threads", &[]), Some(2.0));
    assert_eq!(e.value("pinion_stage_threads_running", &[]), Some(2.0));
    let book = [("venue", "binance-spot"), ("instrument", "BTCUSDT")];
    assert_eq!(e.value("pinion_book_sync_losses_total", &book), Some(0.0));
    let states: Vec<_> = e.values("pinion_book_state");
    assert_eq!(states.len(), 3, "one sample per state");
    assert_eq!(
        states.iter().filter(|s| s.value == 1.0).count(),
        1,
        "exactly one current state"
    );
    assert_eq!(
        e.value("pinion_book_state", &[("state", "live")]),
        Some(1.0)
    );
    assert!(
        e.values("pinion_live_connection_frames_total").is_empty(),
        "no live input"
    );

    // Each stage's running counters, and the rings between them.
    for stage in ["feed", "book", "strategy", "gateway"] {
        let m = e.value("pinion_stage_messages_total", &[("stage", stage)]);
        assert!(m.is_some(), "{stage}: no messages counter");
        assert!(
            e.value("pinion_stage_backpressure_total", &[("stage", stage)])
                .is_some()
        );
        assert!(e.value("pinion_stage_errors_total", &[("stage", stage)]) == Some(0.0));
    }
    for stage in ["feed", "book", "strategy"] {
        let m = e.value("pinion_stage_messages_total", &[("stage", stage)]);
        assert!(m > Some(100.0), "{stage}: {m:?} messages");
    }
    assert!(
        e.value("pinion_stage_input_queued", &[("stage", "book")])
            .is_some()
    );
    assert!(
        e.value("pinion_stage_input_queued", &[("stage", "feed")])
            .is_none()
    );
    assert!(e.value("pinion_ring_capacity", &[]) > Some(0.0));
    // The latency histograms while they record: cumulative buckets ending at +Inf = count.
    assert_eq!(e.types["pinion_latency_seconds"], "histogram");
    let hop = [("name", "hop.feed_book")];
    let count = e
        .value("pinion_latency_seconds_count", &hop)
        .expect("hop.feed_book is exported");
    assert!(count > 100.0, "{count}");
    let buckets: Vec<&Sample> = e
        .samples
        .iter()
        .filter(|s| {
            s.name == "pinion_latency_seconds_bucket"
                && s.labels.get("name").map(String::as_str) == Some("hop.feed_book")
        })
        .collect();
    assert_eq!(buckets.last().expect("buckets").labels["le"], "+Inf");
    assert_eq!(buckets.last().expect("buckets").value, count);
    assert!(
        buckets.windows(2).all(|w| w[0].value <= w[1].value),
        "cumulative"
    );
    assert!(e.value("pinion_latency_seconds_sum", &hop) > Some(0.0));

    // Counters move between scrapes while the replay runs.
    let first = e.value("pinion_feed_records_total", &[]).expect("records");
    std::thread::sleep(Duration::from_millis(300));
    let (_, text) = get(addr, "/metrics").expect("second scrape");
    let later = parse_exposition(&text)
        .value("pinion_feed_records_total", &[])
        .expect("records");
    assert!(later > first, "records {first} then {later}");

    assert_eq!(
        get(addr, "/health").expect("health"),
        (200, "ok\n".to_owned())
    );
    assert_eq!(
        get(addr, "/ready").expect("ready"),
        (200, "ready\n".to_owned())
    );
    assert_eq!(get(addr, "/metrics?x=1").expect("query").0, 200);
    assert_eq!(get(addr, "/nothing").expect("404").0, 404);
    assert_eq!(request(addr, "POST", "/metrics").expect("405").0, 405);
    assert_eq!(request(addr, "HEAD", "/health").expect("head").0, 200);
    // Not HTTP at all: a 400, and the endpoint goes on.
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"\x00\x01garbage\r\n\r\n").expect("write");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert_eq!(get(addr, "/health").expect("health after garbage").0, 200);

    let report = runner.join().expect("runner").expect("the replay ran");
    assert_eq!(report.books.len(), 1);
    // The endpoint closes with the run.
    assert!(get(addr, "/metrics").is_err(), "still served after the run");
}

#[test]
fn health_and_ready_say_why_not() {
    let settings = replay_settings(1000, 0, &[("metrics.status_interval_s", "5")]);
    let pipeline = pipeline::build(&settings, Arc::new(AtomicBool::new(false))).expect("builds");
    let mut src = pipeline.metrics.clone().expect("metrics are on");
    assert_eq!(src.threads, ["market", "trading"], "the planned threads");
    // Other tests of this binary run stage threads of the same names: this one looks for its
    // own. Built, not started: the book awaits its snapshot.
    src.threads = vec!["absent-stage".to_owned()];
    let health = respond(&src, "GET", "/health");
    assert_eq!(health.code, 503);
    assert_eq!(health.body, "stage thread(s) not running: absent-stage\n");
    let ready = respond(&src, "GET", "/ready");
    assert_eq!(ready.code, 503);
    assert!(
        ready
            .body
            .contains("book binance-spot BTCUSDT is awaiting_snapshot"),
        "{}",
        ready.body
    );
    assert!(
        ready.body.contains("stage thread(s) not running"),
        "{}",
        ready.body
    );
    // A thread of that name running is what /health looks for.
    let mut named = src.clone();
    named.threads = vec!["probe-thread".to_owned()];
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (started_tx, started) = std::sync::mpsc::channel::<()>();
    let probe = std::thread::Builder::new()
        .name("probe-thread".to_owned())
        .spawn(move || {
            // The thread has its name once its body runs.
            let _ = started_tx.send(());
            let _ = rx.recv();
        })
        .expect("spawn");
    started.recv().expect("the probe thread started");
    assert_eq!(respond(&named, "GET", "/health").code, 200);
    src.books.set(0, BookState::Live);
    assert_eq!(respond(&named, "GET", "/ready").code, 200);
    src.books.set(0, BookState::Syncing);
    let ready = respond(&named, "GET", "/ready");
    assert_eq!(
        ready.body,
        "not ready:\nbook binance-spot BTCUSDT is syncing\n"
    );
    drop(tx);
    probe.join().expect("probe");
    assert_eq!(respond(&named, "GET", "/health").code, 503);
    // Status line.
    let line = pinion_engine::metrics::status_line(&src, 0.0);
    assert!(line.starts_with("pinion replay "), "{line}");
    assert!(line.contains("books 0/1 live"), "{line}");
}

#[test]
fn the_config_and_flags_are_checked() {
    // The embedded config has the table, commented; a bad address is refused with its key.
    let base = Config::parse_with(
        pinion_engine::config::REPLAY_TOML,
        "replay.toml",
        &Overrides::default(),
    )
    .expect("parses");
    let s = base.validate("replay.toml").expect("valid");
    assert_eq!(s.metrics.listen, None, "off by default");
    assert_eq!(s.metrics.status_interval, None);
    let mut o = Overrides::default();
    o.push(Override::string(
        "metrics.listen",
        "localhost:9464".to_owned(),
    ));
    o.push(Override::value("metrics.status_interval_s", 100_000i64));
    let err = Config::parse_with(pinion_engine::config::REPLAY_TOML, "replay.toml", &o)
        .expect("parses")
        .validate("replay.toml")
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("metrics.listen: \"localhost:9464\" is not an IP address and port"),
        "{text}"
    );
    assert!(text.contains("metrics.status_interval_s"), "{text}");
    // The flag on both commands.
    use clap::Parser as _;
    for cmd in ["replay", "live"] {
        let cli = pinion_engine::cli::Cli::try_parse_from([
            "pinion",
            cmd,
            "--metrics-listen",
            "127.0.0.1:9999",
        ])
        .expect("the flag parses");
        let dbg = format!("{cli:?}");
        assert!(
            dbg.contains("metrics_listen: Some(\"127.0.0.1:9999\")"),
            "{dbg}"
        );
    }
    // A port already taken fails the run before it starts, naming the key.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let listen = format!("\"{}\"", taken.local_addr().expect("addr"));
    let settings = replay_settings(1000, 0, &[("metrics.listen", &listen)]);
    match pipeline::run(&settings, Arc::new(AtomicBool::new(false)), Console::QUIET) {
        Err(PipelineError::Metrics(e)) => {
            assert!(e.to_string().starts_with("metrics.listen "), "{e}")
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
}

/// Kills a child process of the test when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every metric name the dashboard's queries use.
fn dashboard_names() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/grafana-dashboard.json");
    let text = std::fs::read_to_string(&path).expect("the dashboard is there");
    let json: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&json, &mut exprs);
    assert!(
        exprs.len() >= 8,
        "only {} queries in the dashboard",
        exprs.len()
    );
    let mut names = BTreeSet::new();
    for e in &exprs {
        let mut rest = e.as_str();
        while let Some(at) = rest.find("pinion_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    names
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if k == "expr"
                    && let Some(s) = v.as_str()
                {
                    out.push(s.to_owned());
                } else {
                    collect_exprs(v, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The first value of `query` in a Prometheus server's answer, once it has one.
fn prometheus_value(prom: SocketAddr, query: &str) -> Option<f64> {
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (code, body) = get(prom, &format!("/api/v1/query?query={encoded}")).ok()?;
    if code != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    assert_eq!(v["status"], "success", "{body}");
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn a_live_session_is_scraped_by_prometheus_and_the_dashboard_matches() {
    // 200 000 frames at 20 000/s: ten seconds of market.
    let sim = start_synthetic(200_000, "", 5, 20_000.0);
    let addr = free_addr();
    let config = live_config(
        sim.exchange.local_addr(),
        &sim.cert,
        &format!("\n[metrics]\nlisten = \"{addr}\"\nstatus_interval_s = 2\n"),
    );
    let settings = Config::parse_with(&config, "live-metrics.toml", &Overrides::default())
        .expect("config parses")
        .validate("live-metrics.toml")
        .expect("config valid");
    let (settings, _) = pipeline::for_live(settings).expect("live settings");
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || pipeline::run(&settings, stop, Console::QUIET))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.exchange.stats().control_requests == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    sim.exchange.release();

    // The engine's own view: live families, per connection.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (text, e) = loop {
        assert!(
            Instant::now() < deadline,
            "the live book was never served live"
        );
        std::thread::sleep(Duration::from_millis(100));
        let Ok((200, text)) = get(addr, "/metrics") else {
            continue;
        };
        let e = parse_exposition(&text);
        if e.value("pinion_book_live", &[("instrument", "BTCUSDT")]) == Some(1.0)
            && e.value("pinion_live_connection_frames_total", &[("conn", "0")]) > Some(100.0)
        {
            break (text, e);
        }
    };
    assert_conventions(&e);
    promtool_accepts(&text);
    assert_eq!(e.value("pinion_info", &[("command", "live")]), Some(1.0));
    assert_eq!(
        e.value("pinion_live_connection_opens_total", &[("conn", "0")]),
        Some(1.0)
    );
    assert_eq!(
        e.value("pinion_live_connection_up", &[("conn", "0")]),
        Some(1.0)
    );
    let age = e
        .value(
            "pinion_live_connection_last_message_age_seconds",
            &[("conn", "0")],
        )
        .expect("a message came");
    assert!(
        (0.0..2.0).contains(&age),
        "last message {age} s ago while the market flows"
    );
    assert_eq!(
        e.value("pinion_live_connection_reconnects_total", &[("conn", "0")]),
        Some(0.0)
    );
    assert!(
        e.value(
            "pinion_live_connection_received_bytes_total",
            &[("conn", "0")]
        ) > Some(10_000.0)
    );
    assert_eq!(e.value("pinion_live_snapshots_total", &[]), Some(1.0));
    // The first snapshot is the source's own; the book stage asks only after a loss.
    assert_eq!(
        e.value(
            "pinion_book_snapshot_requests_total",
            &[("instrument", "BTCUSDT")]
        ),
        Some(0.0)
    );
    assert_eq!(
        get(addr, "/ready").expect("ready"),
        (200, "ready\n".to_owned())
    );

    // Every name the dashboard queries is exported, and every family exported is declared.
    let exported: BTreeSet<String> = e.types.keys().cloned().collect();
    let declared: BTreeSet<String> = families()
        .iter()
        .map(|f| f.name.to_owned())
        .filter(|n| !n.starts_with("pinion_order_session_") && !n.starts_with("pinion_bot_"))
        .collect();
    assert_eq!(
        exported, declared,
        "a live session without a bot exports every family but the order sessions' and the bot's"
    );
    let used = dashboard_names();
    // A histogram is queried by its series: `_bucket`, `_sum`, `_count`.
    let all: BTreeSet<String> = families()
        .iter()
        .flat_map(|f| {
            let mut names = vec![f.name.to_owned()];
            if f.kind == pinion_engine::metrics::MetricKind::Histogram {
                names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{}{s}", f.name)));
            }
            names
        })
        .collect();
    let unknown: Vec<_> = used.difference(&all).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries names never exported: {unknown:?}"
    );

    // A real Prometheus server scrapes it, and its HTTP API returns the series.
    if let Some(prometheus) = require_tool("prometheus") {
        let dir = TempDir::new("prometheus");
        let prom = free_addr();
        let config = dir.0.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: pinion\n    static_configs:\n      - targets: ['{addr}']\n"
            ),
        )
        .expect("prometheus config");
        let log = std::fs::File::create(dir.0.join("prometheus.log")).expect("log");
        let _server = Killed(
            Command::new(prometheus)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.0.join("data").display()
                ))
                .arg(format!("--web.listen-address={prom}"))
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("prometheus starts"),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut found = None;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            let frames = prometheus_value(
                prom,
                "pinion_live_connection_frames_total{job=\"pinion\",conn=\"0\"}",
            );
            let up = prometheus_value(prom, "up{job=\"pinion\"}");
            if let (Some(frames), Some(1.0)) = (frames, up)
                && frames > 0.0
            {
                found = Some(frames);
                break;
            }
        }
        let log = std::fs::read_to_string(dir.0.join("prometheus.log")).unwrap_or_default();
        let frames =
            found.unwrap_or_else(|| panic!("Prometheus never had the series; its log:\n{log}"));
        assert!(frames > 100.0, "frames {frames}");
        assert_eq!(
            prometheus_value(prom, "pinion_book_live{instrument=\"BTCUSDT\"}"),
            Some(1.0)
        );
    }

    stop.store(true, Ordering::Relaxed);
    let report = runner
        .join()
        .expect("runner")
        .expect("the live session ran");
    assert_eq!(report.books.len(), 1);
}

const API_KEY: &str = common::sim::TRADE_API_KEY;

#[test]
fn a_trading_session_exports_its_order_session_and_is_ready_once_reconciled() {
    let (pem, public) = common::sim::ed25519_key();
    let sim = common::sim::start_trading_sim(public, "");
    let metrics = free_addr();
    let config = common::sim::trading_config(&sim, "");
    let config_path = sim.dir.0.join("trade-metrics.toml");
    std::fs::write(&config_path, config).expect("write config");
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_pinion"))
            .arg("live")
            .arg("--config")
            .arg(&config_path)
            .arg("--trade")
            .arg("--duration")
            .arg("8")
            .arg("--no-progress")
            .arg("--metrics-listen")
            .arg(metrics.to_string())
            .env("PINION_TEST_API_KEY", API_KEY)
            .env("PINION_TEST_SECRET", &pem)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pinion runs"),
    );
    // Before the market opens the book cannot be live: /ready says so.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.exchange.stats().control_requests == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let (code, body) = get(metrics, "/ready").expect("ready before the market");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("book binance-spot BTCUSDT is"), "{body}");
    sim.exchange.release();

    let deadline = Instant::now() + Duration::from_secs(20);
    let book = [("venue", "binance-spot"), ("instrument", "BTCUSDT")];
    let (text, e) = loop {
        assert!(
            Instant::now() < deadline,
            "the order session was never served ready with answers"
        );
        std::thread::sleep(Duration::from_millis(100));
        let Ok((200, text)) = get(metrics, "/metrics") else {
            continue;
        };
        let e = parse_exposition(&text);
        if e.value("pinion_order_session_ready", &book) == Some(1.0)
            && e.value("pinion_book_live", &book) == Some(1.0)
            && e.value("pinion_order_session_answers_total", &book) > Some(0.0)
        {
            break (text, e);
        }
    };
    assert_conventions(&e);
    promtool_accepts(&text);
    let exported: BTreeSet<String> = e.types.keys().cloned().collect();
    let declared: BTreeSet<String> = families()
        .iter()
        .map(|f| f.name.to_owned())
        .filter(|n| !n.starts_with("pinion_bot_"))
        .collect();
    assert_eq!(
        exported, declared,
        "a trading session without a bot exports every family but the bot's"
    );
    assert_eq!(
        e.value("pinion_order_session_reconciled_total", &book),
        Some(1.0)
    );
    // The simulator's one rate limit (request weight per minute), used against its maximum,
    // and the circuit breaker closed.
    let weight = [
        ("venue", "binance-spot"),
        ("instrument", "BTCUSDT"),
        ("kind", "request_weight"),
        ("window", "60s"),
    ];
    let max = e
        .value("pinion_order_session_rate_limit_max", &weight)
        .unwrap_or_else(|| panic!("no weight limit:\n{text}"));
    let used = e
        .value("pinion_order_session_rate_limit_used", &weight)
        .unwrap_or_else(|| panic!("no weight used:\n{text}"));
    assert!(max > 0.0 && (0.0..=max).contains(&used), "{used} of {max}");
    for (state, v) in [("closed", 1.0), ("open", 0.0), ("half_open", 0.0)] {
        let labels = [book[0], book[1], ("state", state)];
        assert_eq!(
            e.value("pinion_order_session_breaker_state", &labels),
            Some(v),
            "breaker {state}:\n{text}"
        );
    }
    // The account and the kill switch, from the control board.
    let inst = [("instrument", "BTCUSDT")];
    assert_eq!(e.value("pinion_kill_switch", &[]), Some(0.0));
    assert_eq!(e.value("pinion_trading_paused", &[]), Some(0.0));
    for name in [
        "pinion_position",
        "pinion_net_pnl",
        "pinion_open_orders",
        "pinion_fills_total",
    ] {
        assert!(
            e.value(name, &inst).is_some(),
            "{name} for BTCUSDT:\n{text}"
        );
    }
    for outcome in [
        "sent",
        "cancel_sent",
        "refused_by_risk",
        "rejected_by_venue",
    ] {
        let labels = [("instrument", "BTCUSDT"), ("outcome", outcome)];
        assert!(
            e.value("pinion_orders_total", &labels).is_some(),
            "orders {outcome}"
        );
    }
    assert_eq!(
        e.value("pinion_order_session_logons_refused_total", &book),
        Some(0.0)
    );
    assert!(
        e.value("pinion_order_session_requests_total", &book)
            >= e.value("pinion_order_session_answers_total", &book)
    );
    assert_eq!(
        get(metrics, "/ready").expect("ready"),
        (200, "ready\n".to_owned())
    );
    let status = child.0.wait().expect("pinion exits");
    assert!(status.success(), "pinion live --trade: {status}");
}

#[test]
fn the_status_line_comes_every_interval_on_stderr() {
    // 50 000 records at 20 000/s: two and a half seconds, a line a second.
    let out = Command::new(env!("CARGO_BIN_EXE_pinion"))
        .args([
            "replay",
            "--records",
            "50000",
            "--pacing",
            "paced",
            "--rate",
            "20000",
            "--no-progress",
            "--set",
            "metrics.status_interval_s=1",
        ])
        .stdout(Stdio::null())
        .output()
        .expect("pinion runs");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("pinion replay ") && l.contains(" records ("))
        .collect();
    assert!(lines.len() >= 2, "status lines: {lines:?}\n{stderr}");
    for l in &lines {
        assert!(l.contains("books 1/1 live"), "{l}");
        assert!(l.contains("threads 2/2"), "{l}");
    }
    // Off by default: no status line.
    let out = Command::new(env!("CARGO_BIN_EXE_pinion"))
        .args([
            "replay",
            "--records",
            "20000",
            "--pacing",
            "paced",
            "--rate",
            "20000",
            "--no-progress",
        ])
        .stdout(Stdio::null())
        .output()
        .expect("pinion runs");
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(" records ("),
        "a status line without [metrics] status_interval_s"
    );
}
