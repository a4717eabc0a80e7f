//! Recordings nobody configured pinion for: instruments defined from the data, venues and
//! symbols from the content, never from the file's name.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use pinion_book::SyncState;
use pinion_engine::config::{Config, Override, REPLAY_TOML, REPLAY_TOML_NAME, Settings};
use pinion_engine::pipeline::{self, Console, PipelineReport};

/// The embedded config with its instrument definitions and lists taken out, fused, `max`
/// pacing, on `input`, plus `extra` TOML (instrument tables) and `set` overrides.
fn bare(input: &Path, extra: &str, set: &[(&str, &str)]) -> Settings {
    let start = REPLAY_TOML
        .find("# Instruments of the shipped recordings.")
        .expect("the embedded config's instrument section");
    let end = REPLAY_TOML.find("[report]").expect("the report table");
    let text = format!("{}{extra}\n{}", &REPLAY_TOML[..start], &REPLAY_TOML[end..]);
    let mut o = common::fused_overrides();
    for (k, v) in set {
        o.push(Override::parse(&format!("{k}={v}")).expect("override"));
    }
    o.push(Override::value(
        "input.source",
        input.to_str().expect("a UTF-8 path"),
    ));
    Config::parse_with(&text, REPLAY_TOML_NAME, &o)
        .expect("parses")
        .validate_for(
            REPLAY_TOML_NAME,
            pinion_engine::config::machine_cores(),
            &pinion_testkit::data::data_dir(),
        )
        .expect("valid")
}

fn run(settings: &Settings) -> PipelineReport {
    pipeline::run(settings, Arc::new(AtomicBool::new(false)), Console::QUIET).expect("replays")
}

/// Each book as text: venue, symbol, state, last update id and every level as exact decimals.
fn books(report: &PipelineReport) -> Vec<String> {
    let mut out: Vec<String> = report
        .books
        .iter()
        .map(|b| {
            let spec = report.input.instruments.get(b.instrument).expect("spec");
            let px = |l: &pinion_core::Level| {
                format!(
                    "{}x{}",
                    decimal(i128::from(l.px.0), spec.price_decimals),
                    decimal(i128::from(l.qty.0), spec.qty_decimals)
                )
            };
            format!(
                "{} {} {:?} {} bids[{}] asks[{}]",
                spec.venue,
                spec.symbol,
                b.state,
                b.last_update_id,
                b.bids.iter().map(px).collect::<Vec<_>>().join(" "),
                b.asks.iter().map(px).collect::<Vec<_>>().join(" ")
            )
        })
        .collect();
    out.sort();
    out
}

/// `units × 10^-decimals` written with its trailing zeros (and point) dropped.
fn decimal(units: i128, decimals: u8) -> String {
    let neg = units < 0;
    let digits = units.unsigned_abs().to_string();
    let d = usize::from(decimals);
    let padded = format!("{digits:0>width$}", width = d + 1);
    let (int, frac) = padded.split_at(padded.len() - d);
    let frac = frac.trim_end_matches('0');
    let sign = if neg { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// The feed's and book's counters of a report: what was read, decoded and applied.
fn market_counts(report: &PipelineReport) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for s in &report.run.stages {
        if s.stage != "feed" && s.stage != "book" {
            continue;
        }
        for &(k, v) in &s.counters {
            if k != "sent" && k != "backpressure" {
                out.push((format!("{}.{k}", s.stage), v));
            }
        }
    }
    out
}

fn scratch(name: &str) -> PathBuf {
    common::scratch_dir(name)
}

/// Writes `<ns> <json>` lines, gzip-compressed.
fn hbt(path: &Path, lines: &[String]) {
    let file = std::fs::File::create(path).expect("create");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    for l in lines {
        writeln!(gz, "{l}").expect("write");
    }
    gz.finish().expect("finish");
}

/// A Binance depth diff in a combined-stream envelope.
fn depth(
    t: u64,
    sym: &str,
    first: u64,
    last: u64,
    pu: Option<u64>,
    bids: &str,
    asks: &str,
) -> String {
    let pu = pu.map(|p| format!(",\"pu\":{p}")).unwrap_or_default();
    format!(
        "{t} {{\"stream\":\"{}@depth@100ms\",\"data\":{{\"e\":\"depthUpdate\",\"E\":{},\"s\":\"{sym}\",\"U\":{first},\"u\":{last}{pu},\"b\":[{bids}],\"a\":[{asks}]}}}}",
        sym.to_ascii_lowercase(),
        t / 1_000_000
    )
}

fn snapshot(t: u64, id: u64, bids: &str, asks: &str) -> String {
    format!("{t} {{\"lastUpdateId\":{id},\"bids\":[{bids}],\"asks\":[{asks}]}}")
}

#[test]
fn an_unconfigured_instrument_gets_its_tick_from_the_price_grid() {
    let dir = scratch("grid");
    let path = dir.join("capture.hbt.gz");
    let t = 1_700_000_000_000_000_000u64;
    hbt(
        &path,
        &[
            depth(
                t,
                "ZZZUSDT",
                99,
                100,
                None,
                r#"["10.05000000","1.50000000"]"#,
                "",
            ),
            snapshot(
                t + 1,
                100,
                r#"["10.05000000","1.50000000"],["10.00000000","2.00000000"]"#,
                r#"["10.15000000","3.00000000"],["10.20000000","1.00000000"]"#,
            ),
            depth(
                t + 2,
                "ZZZUSDT",
                101,
                102,
                None,
                r#"["10.10000000","1.25000000"]"#,
                r#"["10.20000000","0.00000000"]"#,
            ),
            depth(
                t + 3,
                "ZZZUSDT",
                103,
                103,
                None,
                "",
                r#"["10.35000000","4.00000000"]"#,
            ),
        ],
    );
    let report = run(&bare(&path, "", &[]));
    let notes = report.input.notes.join("\n");
    assert!(
        notes.contains("binance-spot ZZZUSDT: defined from the recording (prices to 2 decimals on a 0.05 grid, quantities to 2 decimals); not traded"),
        "{notes}"
    );
    assert_eq!(
        books(&report),
        ["binance-spot ZZZUSDT Live 103 bids[10.1x1.25 10.05x1.5 10x2] asks[10.15x3 10.35x4]"]
    );
    // Not traded: its order filters are unknown.
    assert!(report.trading.is_empty());
}

#[test]
fn a_price_between_the_listed_ticks_moves_the_book_to_a_finer_grid() {
    let dir = scratch("finer");
    let path = dir.join("capture.hbt.gz");
    let t = 1_700_000_000_000_000_000u64;
    hbt(
        &path,
        &[
            snapshot(
                t,
                100,
                r#"["10.10000000","1.00000000"]"#,
                r#"["10.30000000","2.00000000"]"#,
            ),
            depth(
                t + 1,
                "ZZZUSDT",
                101,
                101,
                None,
                r#"["10.15000000","1.00000000"]"#,
                "",
            ),
            depth(t + 2, "ZZZUSDT", 102, 102, None, r#"["10.125","0.5"]"#, ""),
        ],
    );
    let listed = "[[instrument]]\nvenue = \"binance-spot\"\nsymbol = \"ZZZUSDT\"\ntick_size = \"0.1\"\nstep_size = \"0.001\"\n";
    let report = run(&bare(&path, listed, &[]));
    let notes = report.input.notes.join("\n");
    assert!(
        notes.contains(
            "binance-spot ZZZUSDT: the recording has prices to 3 decimals (the tick has 1)"
        ),
        "{notes}"
    );
    assert!(
        notes.contains("the book keeps a 0.025 grid, orders the tick 0.1"),
        "{notes}"
    );
    assert_eq!(
        books(&report),
        ["binance-spot ZZZUSDT Live 102 bids[10.15x1 10.125x0.5 10.1x1] asks[10.3x2]"]
    );
    // Its filters are listed: it is traded, on its real tick.
    assert_eq!(report.trading.len(), 1);
}

#[test]
fn the_venue_comes_from_the_messages_not_the_name() {
    let dir = scratch("shape");
    let t = 1_700_000_000_000_000_000u64;
    let futures = |sym: &str| {
        vec![
            depth(
                t,
                sym,
                90,
                100,
                Some(89),
                r#"["100.0","1"]"#,
                r#"["100.1","1"]"#,
            ),
            format!(
                "{} {{\"lastUpdateId\":100,\"E\":1,\"T\":1,\"bids\":[[\"100.0\",\"1\"]],\"asks\":[[\"100.1\",\"1\"]]}}",
                t + 1
            ),
            depth(t + 2, sym, 101, 105, Some(100), r#"["100.0","2"]"#, ""),
        ]
    };
    // A USD-M recording named as if it were Spot's: the messages (`pu`) win.
    let misnamed = dir.join("spot-ethusdt-20240101.hbt.gz");
    hbt(&misnamed, &futures("ETHUSDT"));
    let report = run(&bare(&misnamed, "", &[]));
    assert_eq!(
        books(&report),
        ["binance-usdm ETHUSDT Live 105 bids[100x2] asks[100.1x1]"]
    );
    assert!(
        report
            .input
            .notes
            .iter()
            .any(|n| n.contains("not binance-spot's as its source says")),
        "{:?}",
        report.input.notes
    );
    // COIN-M by its symbol; the snapshot's symbol from the only depth stream.
    let coinm = dir.join("a.hbt.gz");
    hbt(&coinm, &futures("BTCUSD_PERP"));
    assert_eq!(
        books(&run(&bare(&coinm, "", &[]))),
        ["binance-coinm BTCUSD_PERP Live 105 bids[100x2] asks[100.1x1]"]
    );
}

#[test]
fn renamed_recordings_replay_like_their_originals_with_no_config() {
    let dir = scratch("renamed");
    let shipped: [(&str, Option<&str>); 5] = [
        ("binance/spot-btcusdt-20240808.hbt.gz", None),
        ("binance/usdm-btcusdt-20240808.hbt.gz", None),
        (
            "binance/spot-multi-20211012.cryptofeed.ws",
            Some("binance/spot-multi-20211012.cryptofeed.http"),
        ),
        ("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst", None),
        // Binary SBE streams, and the REST snapshot they sync from.
        ("binance/sbe/spot-btcusdt-20240808.sbe.pcap", None),
    ];
    for (i, (rel, companion)) in shipped.iter().enumerate() {
        let Some(original) = pinion_testkit::data::require(rel) else {
            continue;
        };
        let renamed = dir.join(format!("r{i}.dat"));
        std::fs::copy(&original, &renamed).expect("copy");
        if let Some(c) = companion {
            let Some(c) = pinion_testkit::data::require(c) else {
                continue;
            };
            std::fs::copy(c, dir.join(format!("r{i}.http"))).expect("copy");
        }
        let configured = run(&common::fused_recording(&original));
        let as_named = run(&bare(&original, "", &[]));
        let as_renamed = run(&bare(&renamed, "", &[]));
        assert!(!as_renamed.books.is_empty(), "{rel}: no book");
        assert_eq!(books(&as_named), books(&as_renamed), "{rel}: final books");
        assert_eq!(
            market_counts(&as_named),
            market_counts(&as_renamed),
            "{rel}: counts"
        );
        // With no instrument configured, the books are those of the configured run.
        assert_eq!(
            books(&configured),
            books(&as_renamed),
            "{rel}: books vs configured"
        );
        for b in &as_renamed.books {
            if rel.contains("sbe") {
                // The capture ends with its WebSocket's close: the book synced and then
                // waits for a new connection's snapshot.
                assert_eq!(
                    b.counters.snapshots, 1,
                    "{rel}: the capture's REST snapshot"
                );
                assert_eq!(b.counters.gaps, 0, "{rel}: no gap");
                assert!(
                    b.counters.messages_applied > 3_000,
                    "{rel}: the diffs applied"
                );
                continue;
            }
            assert_eq!(b.state, SyncState::Live, "{rel}: every book syncs");
            assert_eq!(b.counters.gaps, 0, "{rel}: no gap");
        }
    }
}

/// The SBE capture (frames from an encoder written apart from pinion's), with no config: the
/// book after its last frame is the one its `.book.json` gives, level for level, with no frame
/// refused. (The capture then ends with the WebSocket's close, after which the book waits for
/// a new connection's snapshot, as it must.)
#[test]
fn the_sbe_capture_replays_with_no_config_to_its_book() {
    let rel = "binance/sbe/spot-btcusdt-20240808.sbe.pcap";
    let (Some(pcap), Some(expected)) = (
        pinion_testkit::data::require(rel),
        pinion_testkit::data::require(&format!("{rel}.book.json")),
    ) else {
        return;
    };
    // The message (input record, from 1) that is the last binary frame.
    let mut source = pinion_feed::source::open(&pcap).expect("opens");
    let (mut n, mut last_frame) = (0u64, 0u64);
    while let Some(rec) = source.next_record().expect("reads") {
        n += 1;
        if rec.kind == pinion_core::RecordKind::Frame
            && pinion_feed::sbe::is_stream_message(rec.payload)
        {
            last_frame = n;
        }
    }
    let settings = bare(&pcap, "", &[]);
    let mut at_last_frame = None;
    let summary = pipeline::replay_books(
        &settings,
        pipeline::DumpPoints::At(last_frame),
        usize::MAX,
        |point| {
            if point.message == last_frame {
                at_last_frame = Some(point.books.clone());
            }
            Ok(())
        },
    )
    .expect("replays");
    assert_eq!(summary.decode_errors, 0);
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(expected).expect("read")).expect("JSON");
    let trim = |t: &str| {
        if !t.contains('.') {
            return t.to_owned();
        }
        let t = t.trim_end_matches('0');
        t.trim_end_matches('.').to_owned()
    };
    let side = |key: &str| -> Vec<[String; 2]> {
        expected[key]
            .as_array()
            .expect("levels")
            .iter()
            .map(|l| {
                [
                    trim(l[0].as_str().expect("px")),
                    trim(l[1].as_str().expect("qty")),
                ]
            })
            .collect()
    };
    let books = at_last_frame.expect("a point after the last frame");
    assert_eq!(books.len(), 1, "{books:?}");
    let b = &books[0];
    assert_eq!(
        (b.venue.as_str(), b.symbol.as_str()),
        ("binance-spot", "BTCUSDT")
    );
    assert_eq!(b.state, "live");
    assert_eq!(
        b.last_update_id,
        expected["lastUpdateId"].as_u64().expect("id")
    );
    assert_eq!(b.bids.len(), 1_209);
    assert_eq!(b.asks.len(), 2_196);
    // Both as exact decimals with trailing zeros dropped.
    let ours = |levels: &[[String; 2]]| -> Vec<[String; 2]> {
        levels.iter().map(|[p, q]| [trim(p), trim(q)]).collect()
    };
    assert!(ours(&b.bids) == side("bids"), "bids differ");
    assert!(ours(&b.asks) == side("asks"), "asks differ");
}

#[test]
fn a_host_keeps_its_own_instruments() {
    // A Binance.US capture: the global exchange's instrument list does not apply to it.
    let dir = scratch("host");
    let ws = dir.join("us.ws");
    let http = dir.join("us.http");
    let body = r#"{"lastUpdateId":100,"bids":[["30000.12","0.5"]],"asks":[["30000.57","0.25"]]}"#;
    std::fs::write(
        &http,
        format!("https://api.binance.us/api/v3/depth?symbol=BTCUSDT&limit=1000 -> 1700000000.5: {body}\n"),
    )
    .expect("write");
    let frame = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000001000,"s":"BTCUSDT","U":101,"u":101,"b":[["30000.13","1.125"]],"a":[]}}"#;
    std::fs::write(
        &ws,
        format!("wss://stream.binance.us:9443/stream?streams=btcusdt@depth@100ms <-> 1700000000.0\n1700000000.1: {frame}\n1700000001.0: {frame}\n"),
    )
    .expect("write");
    // The embedded config defines binance-spot BTCUSDT (tick 0.01) and loads the global list.
    let settings = common::fused_recording(&ws);
    let report = run(&settings);
    let notes = report.input.notes.join("\n");
    assert!(
        notes.contains("binance-us BTCUSDT: defined from the recording"),
        "{notes}"
    );
    assert_eq!(
        books(&report),
        ["binance-us BTCUSDT Live 101 bids[30000.13x1.125 30000.12x0.5] asks[30000.57x0.25]"]
    );
}

#[test]
fn standard_input_replays_with_no_flag_but_its_own() {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    let Some(path) = pinion_testkit::data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).expect("open"))
        .read_to_end(&mut text)
        .expect("inflate");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pinion"))
        .args([
            "replay",
            "--input",
            "-",
            "--pacing",
            "max",
            "-p",
            "1",
            "--no-progress",
        ])
        .env("PINION_DATA_DIR", pinion_testkit::data::data_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs pinion");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&text));
    let out = child.wait_with_output().expect("finishes");
    writer.join().expect("writer").expect("writes stdin");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Its venue comes from its messages' shape and the hbt snapshot, which names no symbol, is
    // placed by the only depth stream: both learnt from the head read ahead of the replay.
    let line = stdout
        .lines()
        .find(|l| l.contains("binance-spot BTCUSDT") && l.contains(" bids "))
        .unwrap_or_else(|| {
            panic!(
                "no book line in:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        line.contains("50093421584") && line.contains("1209 bids 2196 asks"),
        "{line}"
    );
}

/// The Bybit recording, with no config: its klines and 24 h tickers are decoded, not dropped as
/// unknown, and reach the strategy stage: 100 candles (71 linear and 25 spot messages, some
/// with two) and 162 tickers (the linear deltas of the best bid and ask alone carry no 24 h
/// field and make no event), counted from the file with a JSON reader.
#[test]
fn the_bybit_recordings_klines_and_tickers_reach_the_strategy_stage() {
    let Some(path) =
        pinion_testkit::data::require("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst")
    else {
        return;
    };
    let r = run(&bare(&path, "", &[]));
    assert_eq!(r.counter("book", "candles"), 100);
    assert_eq!(r.counter("book", "tickers"), 162);
    assert_eq!(r.counter("strategy", "venue_klines"), 100);
    assert_eq!(r.counter("strategy", "tickers"), 162);
    assert!(r.books.iter().all(|b| b.state == SyncState::Live));
}
