//! The whole pipeline on the real recordings and on the synthetic market, in each placement:
//! every message gets through, the counts match what the readers and the decoder see, the books
//! end exactly as a single-threaded reference (reader + decoder + book sync in one loop) leaves
//! them, and the report is produced.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use pinion_book::BookLevels as _;
use pinion_book::{BookSync, TickerOutcome};
use pinion_core::{ConnId, EventKind, InstrumentId, RecordKind, Side};
use pinion_engine::config::{Config, Override, Overrides, Settings};
use pinion_engine::pipeline::{self, Console, PipelineReport};
use pinion_engine::stages::book::{BookFinal, BookSeen};
use pinion_feed::parse::{Decoded, Decoder};
use pinion_feed::source::Decompress;

mod common;

/// The embedded config with `overrides` on top, validated.
fn settings(overrides: &[(&str, &str)]) -> Settings {
    let mut o = Overrides::default();
    o.push(Override::string("pacing.mode", "max"));
    o.push(Override::value("runtime.progress", false));
    for (k, v) in overrides {
        o.push(Override::parse(&format!("{k}={v}")).expect("override"));
    }
    common::embedded_with(&o)
}

/// What the single-threaded reference saw.
struct Reference {
    records: u64,
    events: u64,
    messages: u64,
    trades: u64,
    /// Book tickers ahead of their book (each one a view for the strategy).
    tickers_ahead: u64,
    /// Kline and 24 h ticker events (passed to the strategy, not applied to a book).
    candles_and_tickers: u64,
    books: Vec<BookFinal>,
}

/// Reader + decoder + book sync in one loop, on the same instruments as the pipeline.
fn reference(settings: &Settings) -> Reference {
    let prepared = pipeline::prepare(settings).expect("input prepares");
    let mut source = prepared.source;
    let mut conns = prepared.conns;
    let mut decoder = Decoder::new(prepared.instruments.clone());
    let mut books: Vec<Option<BookSync>> = (0..prepared.instruments.len()).map(|_| None).collect();
    for &id in &prepared.books {
        let spec = prepared.instruments.get(id).expect("spec");
        // The same grid choice as the pipeline's (finer for instruments with `px_decimals`).
        let grid = prepared
            .book_ticks
            .get(usize::from(id.0))
            .copied()
            .flatten();
        books[usize::from(id.0)] = Some(pipeline::book_for(spec, grid, id).expect("book"));
    }
    let mut fed_by: Vec<Option<ConnId>> = vec![None; books.len()];
    let mut seen = vec![BookSeen::default(); books.len()];
    let (mut records, mut events, mut trades, mut tickers_ahead) = (0u64, 0u64, 0u64, 0u64);
    let mut candles_and_tickers = 0u64;
    // An owned copy of each record, so the connection table can be refreshed from the source
    // when a record names a connection it has not announced yet (as the feed stage does).
    while let Some((t_recv, conn, kind, meta, payload)) =
        source.next_record().expect("reads").map(|r| {
            (
                r.t_recv,
                r.conn,
                r.kind,
                r.meta.to_vec(),
                r.payload.to_vec(),
            )
        })
    {
        let rec = pinion_core::RawRecord::new(t_recv, conn, kind, &meta, &payload);
        if conns.get(conn).is_none() {
            conns.refresh(&*source);
        }
        records += 1;
        if matches!(
            rec.kind,
            RecordKind::Connect | RecordKind::Disconnect | RecordKind::Gap
        ) {
            for (b, f) in books.iter_mut().zip(&fed_by) {
                if let (Some(b), Some(c)) = (b, f)
                    && *c == rec.conn
                {
                    b.on_reconnect();
                }
            }
            continue;
        }
        let Some(ctx) = conns.get(rec.conn).copied() else {
            continue;
        };
        let mut out = Vec::new();
        if let Ok(Decoded::Events(_)) = decoder.decode(&ctx, &rec, 0, |e| out.push(*e)) {
            for e in &out {
                events += 1;
                if e.kind == EventKind::Trade {
                    trades += 1;
                    continue;
                }
                // Klines and 24 h tickers pass the books by, on to the strategy.
                if matches!(e.kind, EventKind::Kline | EventKind::Ticker24h) {
                    candles_and_tickers += 1;
                    continue;
                }
                let i = usize::from(e.instrument.0);
                if let Some(Some(b)) = books.get_mut(i) {
                    fed_by[i] = Some(e.conn);
                    if e.kind == EventKind::BookTicker {
                        if b.on_ticker(e) == TickerOutcome::Ahead {
                            tickers_ahead += 1;
                        }
                    } else {
                        seen[i].count(e.kind);
                        b.on_event(e);
                    }
                }
            }
        }
    }
    let books = books
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.as_ref().map(|b| (i, b)))
        .map(|(i, b)| BookFinal {
            instrument: InstrumentId(i as u16),
            state: b.state(),
            counters: *b.counters(),
            last_update_id: b.last_update_id(),
            bids: b.book().levels(Side::Bid).collect(),
            asks: b.book().levels(Side::Ask).collect(),
            housekeeping: b.book().stats(),
            seen: seen[i],
        })
        .collect();
    Reference {
        records,
        events,
        messages: decoder.stats().messages.total(),
        trades,
        tickers_ahead,
        candles_and_tickers,
        books,
    }
}

fn run(settings: &Settings) -> PipelineReport {
    pipeline::run(settings, Arc::new(AtomicBool::new(false)), Console::QUIET).expect("replay runs")
}

/// Everything that must hold between a run and the reference.
fn check(report: &PipelineReport, reference: &Reference, what: &str) {
    let c = |stage: &str, name: &str| report.counter(stage, name);
    assert_eq!(c("feed", "records"), reference.records, "{what}: records");
    assert_eq!(
        c("feed", "messages_decoded"),
        reference.messages,
        "{what}: messages"
    );
    assert_eq!(c("feed", "events"), reference.events, "{what}: events");
    // Every event reached the book stage and every trade went on to the strategy.
    assert_eq!(
        c("book", "events"),
        reference.events,
        "{what}: events at the book"
    );
    assert_eq!(c("book", "trades"), reference.trades, "{what}: trades");
    assert_eq!(
        c("book", "candles") + c("book", "tickers"),
        reference.candles_and_tickers,
        "{what}: klines and 24 h tickers"
    );
    assert_eq!(
        c("strategy", "venue_klines") + c("strategy", "tickers"),
        reference.candles_and_tickers,
        "{what}: klines and 24 h tickers at the strategy"
    );
    assert_eq!(
        c("strategy", "trades"),
        reference.trades,
        "{what}: trades at the strategy"
    );
    // One view per committed message and per book ticker ahead of its book; no ticker
    // disagreed with a book; every intent reached the venue.
    assert_eq!(
        c("book", "tickers_ahead"),
        reference.tickers_ahead,
        "{what}: tickers ahead"
    );
    assert_eq!(
        c("book", "tickers_mismatched"),
        0,
        "{what}: ticker mismatches"
    );
    assert_eq!(
        c("strategy", "views"),
        c("book", "messages_committed") + c("book", "tickers_ahead") + c("book", "lost_sync"),
        "{what}: views"
    );
    assert_eq!(
        c("gateway", "orders_sent") + c("gateway", "cancels_sent"),
        c("strategy", "intents"),
        "{what}: intents at the gateway"
    );
    assert_eq!(c("feed", "source_errors"), 0, "{what}: source errors");
    // The books end exactly as the reference leaves them.
    assert_eq!(report.books.len(), reference.books.len(), "{what}: books");
    for (got, want) in report.books.iter().zip(&reference.books) {
        assert_eq!(got.instrument, want.instrument, "{what}");
        assert_eq!(
            got.state, want.state,
            "{what}: state of {:?}",
            got.instrument
        );
        assert_eq!(got.last_update_id, want.last_update_id, "{what}: update id");
        assert_eq!(got.counters, want.counters, "{what}: sync counters");
        assert_eq!(got.bids, want.bids, "{what}: bids of {:?}", got.instrument);
        assert_eq!(got.asks, want.asks, "{what}: asks of {:?}", got.instrument);
        assert_eq!(
            got.seen, want.seen,
            "{what}: events at {:?}",
            got.instrument
        );
    }
    // The report is produced, in text and JSON.
    let table = report.table();
    for name in [
        "tick_to_trade",
        "hop.feed_book",
        "book.service",
        "records/s",
    ] {
        assert!(
            table.contains(name),
            "{what}: report lacks {name}:\n{table}"
        );
    }
    let json = report.to_json();
    assert_eq!(
        json["throughput"]["records"], reference.records,
        "{what}: json"
    );
    assert!(report.throughput.records_per_second() > 0.0);
}

fn recording(relative: &str, placements: &[(&str, &str)], expect_messages: Option<u64>) {
    let Some(path) = pinion_testkit::data::require(relative) else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let base = settings(&[("input.source", &path)]);
    let reference = reference(&base);
    if let Some(n) = expect_messages {
        assert_eq!(reference.messages, n, "{relative}: decoded messages");
    }
    for (placement, wait) in placements {
        let s = settings(&[
            ("input.source", &path),
            ("placement.mode", placement),
            ("placement.wait", wait),
        ]);
        let report = run(&s);
        check(
            &report,
            &reference,
            &format!("{relative} placement {placement} {wait}"),
        );
    }
}

#[test]
fn binance_spot_recording_in_every_placement() {
    recording(
        "binance/spot-btcusdt-20240808.hbt.gz",
        &[("1", "park"), ("2", "park"), ("4", "spin-then-yield")],
        Some(41_249),
    );
}

#[test]
fn binance_usdm_recording() {
    recording(
        "binance/usdm-btcusdt-20240808.hbt.gz",
        &[("2", "park"), ("4", "park")],
        Some(93_954),
    );
}

#[test]
fn binance_multi_symbol_capture() {
    recording(
        "binance/spot-multi-20211012.cryptofeed.ws",
        &[("1", "park"), ("4", "spin-then-yield")],
        None,
    );
}

#[test]
fn bybit_capture() {
    recording(
        "bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst",
        &[("2", "spin-then-yield"), ("4", "park")],
        None,
    );
}

#[test]
fn spot_books_end_live_and_trade() {
    let Some(path) = pinion_testkit::data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let s = settings(&[
        ("input.source", &path.to_string_lossy()),
        ("placement.mode", "1"),
    ]);
    let report = run(&s);
    assert_eq!(report.books.len(), 1);
    let b = &report.books[0];
    assert_eq!(b.state, pinion_book::SyncState::Live);
    assert_eq!(b.counters.snapshots, 1);
    assert_eq!(b.counters.gaps, 0);
    // 3,451 depth messages: two are older than the snapshot, the rest apply.
    assert_eq!(report.counter("book", "messages_committed"), 3_449);
    assert_eq!(report.counter("feed", "decode_errors"), 0);
    assert!(
        report.counter("gateway", "orders_sent") > 0,
        "the strategy traded"
    );
    // What the strategy did and earned agrees with what the venue says happened.
    assert_eq!(report.trading.len(), 1);
    let t = &report.trading[0];
    assert_eq!(t.instrument, b.instrument);
    assert_eq!(t.stats.fills, report.counter("gateway", "venue_fills"));
    assert_eq!(
        t.stats.orders - t.stats.risk_rejects,
        report.counter("gateway", "orders_sent")
    );
    assert!(t.stats.fills > 0 && t.mark.is_some());
    let text = report.table();
    assert!(text.contains("trading (PnL in the quote asset"), "{text}");
    assert!(report.to_json()["trading"][0]["realized_pnl"].is_string());
    assert!(
        report
            .latency
            .get("tick_to_trade")
            .is_some_and(|h| h.count() > 0)
    );
    // Every order, and every view, is counted once more under what it was decided on: a view
    // per committed depth message and per ticker ahead of the book.
    let count = |name: &str| report.latency.get(name).map_or(0, |h| h.count());
    for (all, part) in [
        ("tick_to_trade", "tick_to_trade.on_"),
        ("strategy.t0_to_decision", "strategy.t0_to_decision.on_"),
    ] {
        let split: u64 = ["depth", "ticker", "other"]
            .iter()
            .map(|t| count(&format!("{part}{t}")))
            .sum();
        assert_eq!(split, count(all), "{all} split by trigger");
    }
    assert_eq!(count("strategy.t0_to_decision.on_depth"), 3_449);
    assert_eq!(count("strategy.t0_to_decision.on_ticker"), 28_037);
}

#[test]
fn synthetic_market_in_every_placement() {
    let base = settings(&[("synthetic.records", "20000")]);
    let reference = reference(&base);
    assert_eq!(reference.records, 20_002);
    for (placement, wait) in [("1", "park"), ("2", "park"), ("4", "spin-then-yield")] {
        let s = settings(&[
            ("synthetic.records", "20000"),
            ("placement.mode", placement),
            ("placement.wait", wait),
        ]);
        let report = run(&s);
        check(
            &report,
            &reference,
            &format!("synthetic placement {placement} {wait}"),
        );
        assert_eq!(report.books[0].state, pinion_book::SyncState::Live);
    }
}

#[test]
fn paced_replay_holds_the_recorded_rate() {
    // 2,000 records at 20,000/s take 0.1 s; max pacing takes far less.
    let s = settings(&[
        ("synthetic.records", "2000"),
        ("pacing.mode", "paced"),
        ("pacing.rate", "20000"),
        ("placement.mode", "2"),
        ("placement.wait", "spin-then-yield"),
    ]);
    let report = run(&s);
    assert_eq!(report.counter("feed", "records"), 2_002);
    assert!(
        report.throughput.seconds >= 0.099,
        "{}",
        report.throughput.seconds
    );
    let lateness = report
        .latency
        .get("feed.release_lateness")
        .expect("lateness");
    assert!(lateness.count() > 1_000);
}

#[test]
fn stop_flag_ends_the_stream_with_a_report() {
    let s = settings(&[("synthetic.records", "100000"), ("placement.mode", "2")]);
    let stop = Arc::new(AtomicBool::new(true));
    let report = pipeline::run(&s, stop, Console::QUIET).expect("replay runs");
    assert_eq!(report.counter("feed", "stopped_early"), 1);
    assert!(report.counter("feed", "records") < 100_002);
    assert!(!report.table().is_empty());
}

#[test]
fn report_files_are_written() {
    let dir = common::scratch_dir("report");
    let s = settings(&[("synthetic.records", "3000"), ("placement.mode", "1")]);
    let report = run(&s);
    let json = dir.join("report.json");
    report.write_json(&json).expect("json written");
    let text = std::fs::read_to_string(&json).expect("json read");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json parses");
    assert_eq!(v["placement"], "1");
    let files = report.write_hgrm(&dir.join("hgrm")).expect("hgrm written");
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().contains("tick_to_trade"))
    );
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}

#[test]
fn converted_recording_replays_like_its_original() {
    let Some(path) = pinion_testkit::data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let dir = common::scratch_dir("convert");
    let pnr = dir.join("spot.pnr");
    let original = settings(&[("input.source", &path.to_string_lossy())]);
    let summary = pipeline::convert_recording(&original, &path, &pnr).expect("converts");
    assert_eq!(summary.stats.records, 41_249);
    assert_eq!(
        summary.instruments, 1,
        "the header names the recording's instrument"
    );

    let reference = reference(&original);
    let s = settings(&[
        ("input.source", &pnr.to_string_lossy()),
        ("placement.mode", "2"),
        ("placement.wait", "park"),
    ]);
    let report = run(&s);
    check(&report, &reference, "converted spot recording");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn multi_symbol_books_all_sync() {
    let Some(path) = pinion_testkit::data::require("binance/spot-multi-20211012.cryptofeed.ws")
    else {
        return;
    };
    let s = settings(&[
        ("input.source", &path.to_string_lossy()),
        ("placement.mode", "1"),
    ]);
    let report = run(&s);
    assert_eq!(report.counter("feed", "decode_errors"), 0);
    // NKNUSDT, BLZETH, LRCBTC and RUNEEUR: four REST snapshots, four live books.
    assert_eq!(report.books.len(), 4);
    for b in &report.books {
        assert_eq!(b.state, pinion_book::SyncState::Live, "{:?}", b.instrument);
        assert_eq!((b.counters.snapshots, b.counters.gaps), (1, 0));
    }
}

#[test]
fn shipped_configs_are_valid_and_custom_placement_runs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("configs dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).expect("read");
        let mut config = Config::parse(&text, &name).unwrap_or_else(|e| panic!("{e}"));
        // A recording a config names by a relative path is relative to the repository root,
        // where `pinion` is run from; this test runs in engine/.
        let source = Path::new(&config.input.source);
        if config.input.source != "synthetic" && source.is_relative() {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let Some(rel) = source.strip_prefix("../shared/data").ok() else {
                panic!(
                    "{name}: recording {} is not under ../shared/data",
                    source.display()
                );
            };
            let Some(found) = pinion_testkit::data::require(&rel.to_string_lossy()) else {
                continue;
            };
            assert!(root.join(source).is_file() || std::env::var_os("PINION_DATA_DIR").is_some());
            let mut o = Overrides::default();
            o.push(Override::string("input.source", found.to_string_lossy()));
            config = Config::parse_with(&text, &name, &o).unwrap_or_else(|e| panic!("{e}"));
        }
        // Validated against 2 cores: the CI machine's.
        let s = config
            .validate_for(&name, 2, &pinion_testkit::data::data_dir())
            .unwrap_or_else(|e| panic!("{e}"));
        checked += 1;
        if s.placement.label == "custom" {
            let mut o = Overrides::default();
            o.push(Override::string("pacing.mode", "max"));
            o.push(Override::value("synthetic.records", 5_000));
            // Busy-spinning on a shared test machine wastes a core; the shape is what counts.
            o.push(Override::string("placement.threads[0].wait", "park"));
            let s = Config::parse_with(&text, &name, &o)
                .expect("parses")
                .validate_for(&name, 2, &pinion_testkit::data::data_dir())
                .expect("valid");
            let report = run(&s);
            assert_eq!(report.counter("feed", "records"), 5_002);
            assert_eq!(report.run.placement.threads.len(), 2);
        }
    }
    assert!(
        checked >= 2,
        "only {checked} configs found in {}",
        dir.display()
    );
}

#[test]
fn reconnect_record_resyncs_the_connections_books() {
    use pinion_feed::recording::{RecordingHeader, RecordingWriter, Rotation};
    let Some(path) = pinion_testkit::data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    // The spot recording with a reconnect of its connection half-way through, and no new
    // snapshot after it: the book must leave Live and wait for one.
    let dir = common::scratch_dir("reconnect");
    let pnr = dir.join("reconnect.pnr");
    let mut source = pipeline::open_source(&path, Decompress::Ahead).expect("opens");
    let mut header = RecordingHeader::new("reconnect test", 0);
    header.connections = source.connections().to_vec();
    let mut writer = RecordingWriter::create(&pnr, header, Rotation::NONE).expect("writer");
    let mut n = 0u64;
    while let Some(rec) = source.next_record().expect("reads") {
        n += 1;
        if n == 20_000 {
            writer
                .write_parts(
                    rec.t_recv,
                    rec.conn,
                    RecordKind::Connect,
                    b"wss://stream.binance.com",
                    b"",
                )
                .expect("write");
        }
        writer.write(&rec).expect("write");
    }
    writer.finish().expect("finish");

    let s = settings(&[
        ("input.source", &pnr.to_string_lossy()),
        ("input.venue", "binance-spot"),
        ("placement.mode", "2"),
        ("placement.wait", "park"),
    ]);
    let reference = reference(&s);
    let report = run(&s);
    check(&report, &reference, "recording with a reconnect");
    assert_eq!(report.counter("feed", "resync_records"), 1);
    let b = &report.books[0];
    assert_eq!(b.counters.resyncs, 1);
    assert_eq!(
        b.state,
        pinion_book::SyncState::AwaitingSnapshot {
            reason: pinion_book::ResyncReason::Reconnect
        }
    );
    // Fewer depth messages were committed than in the whole recording, the views after the
    // reconnect say the book is not synced, and tickers no longer top an unsynced book.
    assert!(report.counter("book", "messages_committed") < 3_449);
    assert_eq!(report.counter("book", "lost_sync"), 1);
    assert!(report.counter("strategy", "unsynced_views") > 0);
    assert!(report.counter("book", "tickers_unusable") > 0);
    let _ = std::fs::remove_dir_all(&dir);
}
