//! Every reader against the real recordings in `../shared/data` (exact counts from
//! `data/README.md`, or counted from the files with shell one-liners where the README gives none),
//! malformed input, and the steady state allocating nothing.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use pinion_core::{ConnId, RecordKind, Venue};
use pinion_feed::source::cryptofeed::{CryptofeedJsonlReader, CryptofeedTextReader};
use pinion_feed::source::hbt::HbtReader;
use pinion_feed::source::{self, Decompress, open};
use pinion_feed::{FrameSource, SourceError};
use pinion_testkit::data;

/// Counts this thread's allocations, so tests running in parallel do not disturb each other.
#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

fn allocations() -> u64 {
    pinion_testkit::alloc::thread_allocations()
}

/// What a source held, summed up.
#[derive(Debug, Default)]
struct Tally {
    records: u64,
    kinds: BTreeMap<String, u64>,
    /// Frames by Binance `stream` or Bybit `topic`.
    streams: BTreeMap<String, u64>,
    /// Bybit `orderbook.*` frames by `type`.
    book_types: BTreeMap<String, u64>,
    /// `(meta, lastUpdateId)` of each REST snapshot, in order.
    snapshots: Vec<(String, u64)>,
    /// `(conn, meta)` of each connect, in order.
    connects: Vec<(ConnId, String)>,
    first_t: Option<u64>,
    last_t: u64,
    /// Records whose time is below the previous one of the same connection.
    backwards: u64,
}

fn tally(src: &mut dyn FrameSource) -> Tally {
    let mut t = Tally::default();
    let mut last_by_conn: BTreeMap<ConnId, u64> = BTreeMap::new();
    while let Some(rec) = src.next_record().expect("the real recordings read cleanly") {
        t.records += 1;
        *t.kinds.entry(format!("{:?}", rec.kind)).or_default() += 1;
        t.first_t.get_or_insert(rec.t_recv);
        t.last_t = rec.t_recv;
        let prev = last_by_conn.entry(rec.conn).or_default();
        if rec.t_recv < *prev {
            t.backwards += 1;
        }
        *prev = rec.t_recv;
        let meta = String::from_utf8(rec.meta.to_vec()).expect("meta is text");
        match rec.kind {
            RecordKind::Frame => {
                let v: serde_json::Value =
                    serde_json::from_slice(rec.payload).expect("frames are JSON");
                let name = v["stream"].as_str().or(v["topic"].as_str()).unwrap_or("?");
                *t.streams.entry(name.to_owned()).or_default() += 1;
                if name.starts_with("orderbook.") {
                    let ty = v["type"].as_str().unwrap_or("?").to_owned();
                    *t.book_types.entry(ty).or_default() += 1;
                }
            }
            RecordKind::RestSnapshot => {
                let v: serde_json::Value =
                    serde_json::from_slice(rec.payload).expect("snapshots are JSON");
                let id = v["lastUpdateId"].as_u64().expect("Binance snapshot id");
                t.snapshots.push((meta, id));
            }
            RecordKind::Connect => t.connects.push((rec.conn, meta)),
            _ => {}
        }
    }
    t
}

fn kinds(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|&(k, n)| (k.to_owned(), n)).collect()
}

#[test]
fn binance_spot_hbt_counts_exactly() {
    let Some(path) = data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let mut src = open(&path).expect("open by file name");
    assert_eq!(src.connections().len(), 1);
    assert_eq!(src.connections()[0].venue, Some(Venue::BinanceSpot));
    let t = tally(src.as_mut());
    assert_eq!(t.records, 41_249);
    assert_eq!(t.kinds, kinds(&[("Frame", 41_248), ("RestSnapshot", 1)]));
    assert_eq!(
        t.streams,
        kinds(&[
            ("btcusdt@bookTicker", 28_040),
            ("btcusdt@depth@100ms", 3_451),
            ("btcusdt@trade", 9_757),
        ])
    );
    assert_eq!(t.snapshots, vec![(String::new(), 50_093_239_218)]);
    assert_eq!(t.first_t, Some(1_723_161_253_937_085_768));
    assert_eq!(t.last_t, 1_723_161_599_999_231_384);
    assert_eq!(t.backwards, 0);
}

#[test]
fn binance_usdm_hbt_counts_exactly() {
    let Some(path) = data::require("binance/usdm-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let mut src = HbtReader::open(&path).expect("open");
    assert_eq!(src.connections()[0].venue, Some(Venue::BinanceUsdm));
    let t = tally(&mut src);
    assert_eq!(t.records, 93_954);
    assert_eq!(t.kinds, kinds(&[("Frame", 93_953), ("RestSnapshot", 1)]));
    assert_eq!(
        t.streams,
        kinds(&[
            ("btcusdt@bookTicker", 66_089),
            ("btcusdt@depth@0ms", 6_551),
            ("btcusdt@trade", 21_313),
        ])
    );
    assert_eq!(t.snapshots, vec![(String::new(), 5_123_107_852_948)]);
    assert_eq!(t.first_t, Some(1_723_161_255_030_314_667));
    assert_eq!(t.last_t, 1_723_161_599_833_492_584);
    assert_eq!(t.backwards, 0);
    assert_eq!(src.line_number(), 93_954);
}

#[test]
fn cryptofeed_text_capture_merges_ws_and_http() {
    let Some(path) = data::require("binance/spot-multi-20211012.cryptofeed.ws") else {
        return;
    };
    data::require("binance/spot-multi-20211012.cryptofeed.http");
    let mut src = open(&path).expect("open by file name");
    let conns = src.connections().to_vec();
    assert_eq!(conns.len(), 2);
    assert!(conns.iter().all(|c| c.venue == Some(Venue::BinanceSpot)));
    let t = tally(src.as_mut());
    // Counted with: tail -n +2 X.cryptofeed.ws | grep -o '"stream":"[^"]*"' | sort | uniq -c
    assert_eq!(
        t.streams,
        kinds(&[
            ("blzeth@bookTicker", 1),
            ("blzeth@depth@100ms", 10),
            ("lrcbtc@aggTrade", 1),
            ("lrcbtc@bookTicker", 9),
            ("lrcbtc@depth@100ms", 15),
            ("lrcbtc@kline_1m", 1),
            ("nknusdt@aggTrade", 1),
            ("nknusdt@bookTicker", 74),
            ("nknusdt@depth@100ms", 150),
            ("nknusdt@kline_1m", 1),
            ("runeeur@depth@100ms", 2),
        ])
    );
    assert_eq!(t.records, 1 + 265 + 4);
    assert_eq!(
        t.kinds,
        kinds(&[("Connect", 1), ("Frame", 265), ("RestSnapshot", 4)])
    );
    let url = |s: &str| format!("https://api.binance.com/api/v3/depth?symbol={s}&limit=1000");
    assert_eq!(
        t.snapshots,
        vec![
            (url("NKNUSDT"), 499_869_752),
            (url("BLZETH"), 281_916_627),
            (url("LRCBTC"), 259_345_543),
            (url("RUNEEUR"), 15_602_511),
        ]
    );
    assert_eq!(t.connects.len(), 1);
    assert!(
        t.connects[0]
            .1
            .starts_with("wss://stream.binance.com:9443/stream?streams=nknusdt@")
    );
    // The connect time, exactly from `1633998511.159679`; the last frame at `1633998542.0778618`.
    assert_eq!(t.first_t, Some(1_633_998_511_159_679_000));
    assert_eq!(t.last_t, 1_633_998_542_077_861_800);
    assert_eq!(t.backwards, 0);
}

#[test]
fn cryptofeed_text_snapshots_fall_between_frames_by_time() {
    let Some(path) = data::require("binance/spot-multi-20211012.cryptofeed.ws") else {
        return;
    };
    let mut src = CryptofeedTextReader::open(&path).expect("open");
    let mut prev = 0;
    let mut snapshot_times = Vec::new();
    while let Some(rec) = src.next_record().expect("reads") {
        assert!(rec.t_recv >= prev, "merged stream goes back in time");
        prev = rec.t_recv;
        if rec.kind == RecordKind::RestSnapshot {
            snapshot_times.push(rec.t_recv);
        }
    }
    assert_eq!(
        snapshot_times,
        vec![
            1_633_998_512_320_639_000,
            1_633_998_514_646_289_800,
            1_633_998_516_844_380_900,
            1_633_998_522_743_208_000,
        ]
    );
}

#[test]
fn bybit_jsonl_capture_counts_exactly() {
    let Some(path) = data::require("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst") else {
        return;
    };
    let mut src = open(&path).expect("open by file name");
    let t = tally(src.as_mut());
    assert_eq!(
        t.kinds,
        kinds(&[("Connect", 2), ("Frame", 3_227), ("Http", 2)])
    );
    let book: u64 = t
        .streams
        .iter()
        .filter(|(k, _)| k.starts_with("orderbook.200."))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(book, 2_148);
    assert_eq!(t.book_types, kinds(&[("delta", 2_142), ("snapshot", 6)]));
    assert_eq!(
        t.connects,
        vec![
            (
                ConnId(1),
                "wss://stream.bybit.com/v5/public/linear".to_owned()
            ),
            (
                ConnId(2),
                "wss://stream.bybit.com/v5/public/spot".to_owned()
            ),
        ]
    );
    // The first record is the linear instruments-info response at 1786310817.601629; the last
    // frame arrives at 1786310862.023875.
    assert_eq!(t.first_t, Some(1_786_310_817_601_629_000));
    assert_eq!(t.last_t, 1_786_310_862_023_875_000);
    assert_eq!(t.backwards, 0, "each connection's times are non-decreasing");

    let conns = src.connections();
    assert_eq!(conns.len(), 3);
    assert_eq!((conns[0].id, conns[0].venue), (ConnId(0), None));
    assert_eq!(conns[1].venue, Some(Venue::BybitLinear));
    assert_eq!(conns[2].venue, Some(Venue::BybitSpot));
}

#[test]
fn bybit_jsonl_keeps_header_and_exact_frames() {
    let Some(path) = data::require("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst") else {
        return;
    };
    let mut src = CryptofeedJsonlReader::open(&path).expect("open");
    assert!(
        src.header()
            .is_some_and(|h| h.contains("\"exchange\":\"BYBIT\""))
    );
    let mut first_frame = None;
    while let Some(rec) = src.next_record().expect("reads") {
        if rec.kind == RecordKind::Frame {
            first_frame = Some((rec.t_recv, rec.payload.to_vec()));
            break;
        }
    }
    let (t, payload) = first_frame.expect("a frame");
    assert_eq!(t, 1_786_310_819_526_357_000);
    assert!(payload.starts_with(br#"{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"#));
}

/// Reads until the end or the first error; the records before it and the error.
fn read_to_error(src: &mut dyn FrameSource) -> (u64, Option<SourceError>) {
    let mut n = 0;
    loop {
        match src.next_record() {
            Ok(Some(_)) => n += 1,
            Ok(None) => return (n, None),
            Err(e) => return (n, Some(e)),
        }
    }
}

#[test]
fn truncated_gzip_is_a_typed_error_at_the_line() {
    let Some(path) = data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let bytes = std::fs::read(path).expect("read");
    let cut = bytes[..bytes.len() / 2].to_vec();
    let mut src = HbtReader::from_gzip(Cursor::new(cut), Some(Venue::BinanceSpot));
    let (n, err) = read_to_error(&mut src);
    assert!(n > 1_000, "the intact part reads ({n} records)");
    match err {
        Some(SourceError::Truncated {
            format: "hbt",
            position,
        }) => assert_eq!(position, n + 1),
        other => panic!("expected Truncated, got {other:?}"),
    }
}

/// Every record of `path` read both ways, compared field by field.
fn same_records_inline_and_ahead(path: &Path) -> u64 {
    let mut inline = source::open_with(path, Decompress::Inline).expect("open inline");
    let mut ahead = source::open_with(path, Decompress::Ahead).expect("open ahead");
    assert_eq!(inline.connections(), ahead.connections());
    let mut n = 0u64;
    loop {
        let a = inline.next_record().expect("inline reads");
        let b = ahead.next_record().expect("read-ahead reads");
        match (a, b) {
            (None, None) => return n,
            (Some(a), Some(b)) => {
                assert_eq!(
                    (a.t_recv, a.conn, a.kind, a.meta, a.payload),
                    (b.t_recv, b.conn, b.kind, b.meta, b.payload),
                    "record {n}"
                );
                n += 1;
            }
            (a, b) => panic!(
                "one ended first at record {n}: inline {:?}, ahead {:?}",
                a.is_some(),
                b.is_some()
            ),
        }
    }
}

#[test]
fn read_ahead_yields_exactly_the_inline_records() {
    for (file, records) in [
        ("binance/spot-btcusdt-20240808.hbt.gz", None),
        ("binance/usdm-btcusdt-20240808.hbt.gz", Some(93_954)),
        ("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst", None),
    ] {
        let Some(path) = data::require(file) else {
            continue;
        };
        let n = same_records_inline_and_ahead(&path);
        assert!(n > 1_000, "{file}: {n} records");
        if let Some(want) = records {
            assert_eq!(n, want, "{file}");
        }
    }
}

#[test]
fn read_ahead_reports_a_truncated_gzip_as_inline_does() {
    let Some(path) = data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let bytes = std::fs::read(path).expect("read");
    let dir = std::env::temp_dir().join(format!("pinion-read-ahead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cut_path = dir.join("spot-cut.hbt.gz");
    std::fs::write(&cut_path, &bytes[..bytes.len() / 2]).expect("write");
    let mut inline = source::open_with(&cut_path, Decompress::Inline).expect("open");
    let mut ahead = source::open_with(&cut_path, Decompress::Ahead).expect("open");
    let (n_inline, err_inline) = read_to_error(&mut *inline);
    let (n_ahead, err_ahead) = read_to_error(&mut *ahead);
    assert!(n_inline > 1_000);
    assert_eq!(n_ahead, n_inline);
    match (err_inline, err_ahead) {
        (
            Some(SourceError::Truncated { position: a, .. }),
            Some(SourceError::Truncated { position: b, .. }),
        ) => assert_eq!((a, b), (n_inline + 1, n_inline + 1)),
        other => panic!("expected Truncated both ways, got {other:?}"),
    }
    assert_eq!(
        errors_and_records_after_the_first_error(&mut *ahead),
        (0, 0)
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn truncated_zstd_is_a_typed_error() {
    let Some(path) = data::require("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst") else {
        return;
    };
    let bytes = std::fs::read(path).expect("read");
    let cut = bytes[..bytes.len() / 2].to_vec();
    let mut src = CryptofeedJsonlReader::from_zstd(Cursor::new(cut)).expect("header reads");
    let (n, err) = read_to_error(&mut src);
    assert!(n > 100, "the intact part reads ({n} records)");
    assert!(
        matches!(
            err,
            Some(SourceError::Truncated { .. } | SourceError::Format { .. })
        ),
        "{err:?}"
    );
}

/// Reads on after the first error, as the engine does, and returns how many more errors and
/// records came before the end. Bounded so a reader that repeats its error fails the test
/// instead of hanging it.
fn errors_and_records_after_the_first_error(src: &mut dyn FrameSource) -> (u32, u64) {
    let (mut errors, mut records) = (0, 0);
    for _ in 0..1_000 {
        match src.next_record() {
            Ok(Some(_)) => records += 1,
            Ok(None) => return (errors, records),
            Err(_) => errors += 1,
        }
    }
    panic!("no end after {errors} errors and {records} records past a truncation");
}

#[test]
fn after_a_truncated_stream_the_readers_report_the_end() {
    if let Some(path) = data::require("binance/spot-btcusdt-20240808.hbt.gz") {
        let bytes = std::fs::read(path).expect("read");
        let cut = bytes[..bytes.len() / 2].to_vec();
        let mut src = HbtReader::from_gzip(Cursor::new(cut), Some(Venue::BinanceSpot));
        let (_, err) = read_to_error(&mut src);
        assert!(
            matches!(err, Some(SourceError::Truncated { .. })),
            "{err:?}"
        );
        assert_eq!(errors_and_records_after_the_first_error(&mut src), (0, 0));
    }
    if let Some(path) = data::require("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst") {
        let bytes = std::fs::read(path).expect("read");
        let cut = bytes[..bytes.len() / 2].to_vec();
        let mut src = CryptofeedJsonlReader::from_zstd(Cursor::new(cut)).expect("header reads");
        let (_, err) = read_to_error(&mut src);
        assert!(err.is_some());
        assert_eq!(errors_and_records_after_the_first_error(&mut src), (0, 0));
    }
}

#[test]
fn a_bad_line_in_real_data_names_its_line_and_reading_goes_on() {
    let Some(path) = data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    // The first 100 real lines with line 50 replaced by a frame that lost its time stamp.
    let mut reader = HbtReader::open(&path).expect("open");
    let mut text = Vec::new();
    for line in 1..=100u64 {
        let rec = reader.next_record().expect("reads").expect("has 100 lines");
        if line == 50 {
            text.extend_from_slice(b"{\"stream\":\"btcusdt@trade\"}\n");
        } else {
            text.extend_from_slice(format!("{} ", rec.t_recv).as_bytes());
            text.extend_from_slice(rec.payload);
            text.push(b'\n');
        }
    }
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&text).expect("compress");
    let gz = gz.finish().expect("compress");

    let mut src = HbtReader::from_gzip(Cursor::new(gz), None);
    let (n, err) = read_to_error(&mut src);
    assert_eq!(n, 49);
    match err {
        Some(SourceError::Format {
            format: "hbt",
            position,
            ..
        }) => assert_eq!(position, 50),
        other => panic!("expected Format at line 50, got {other:?}"),
    }
    let (rest, err) = read_to_error(&mut src);
    assert_eq!(rest, 50, "the rest still reads");
    assert!(err.is_none(), "{err:?}");
}

#[test]
fn open_reports_missing_files_as_io_errors_whatever_their_name() {
    // The name no longer picks the reader, so no name is refused before the file is looked at.
    for name in [
        "x.json",
        "x.hbt",
        "x",
        "x.pnr",
        "x.pcap",
        "x.pcapng",
        "x.cryptofeed.jsonl.zst",
        "spot-x.hbt.gz",
    ] {
        let path = Path::new("/nonexistent").join(name);
        assert!(matches!(open(&path), Err(SourceError::Io(_))), "{name}");
    }
    assert_eq!(
        source::venue_from_file_name(Path::new("coinm-btcusd_perp-20240808.hbt.gz")),
        Some(Venue::BinanceCoinm)
    );
}

#[test]
fn hbt_steady_state_allocates_nothing() {
    let Some(path) = data::require("binance/usdm-btcusdt-20240808.hbt.gz") else {
        return;
    };
    hbt_reads_without_allocating(HbtReader::open(&path).expect("open"));
    // The reading thread's side of read-ahead: chunks circulate, none is allocated.
    hbt_reads_without_allocating(HbtReader::open_read_ahead(&path).expect("open"));
}

fn hbt_reads_without_allocating<R: std::io::BufRead>(mut src: HbtReader<R>) {
    // Warm up past the REST snapshot (line 55), the longest line.
    let mut bytes = 0usize;
    for _ in 0..1_000 {
        let rec = src.next_record().expect("reads").expect("more records");
        bytes += rec.payload.len();
    }
    let before = allocations();
    let mut n = 0u64;
    while let Some(rec) = src.next_record().expect("reads") {
        bytes += rec.payload.len();
        n += 1;
    }
    let during = allocations() - before;
    assert_eq!(n, 93_954 - 1_000);
    assert!(bytes > 0);
    assert_eq!(during, 0, "allocations while reading {n} records");
}

#[test]
fn jsonl_steady_state_allocates_nothing() {
    let Some(path) = data::require("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst") else {
        return;
    };
    let mut src = CryptofeedJsonlReader::open(&path).expect("open");
    // Warm up past the instruments-info responses (the longest lines).
    for _ in 0..500 {
        src.next_record().expect("reads").expect("more records");
    }
    // The spot connection opens late in this file: registering it and taking its address
    // allocate nothing either (its strings were reserved at start-up).
    let (mut frames, mut connects) = (0u64, 0u64);
    let before = allocations();
    while let Some(rec) = src.next_record().expect("reads") {
        match rec.kind {
            RecordKind::Frame => frames += 1,
            RecordKind::Connect => connects += 1,
            _ => {}
        }
    }
    let during = allocations() - before;
    assert_eq!(frames, 3_227 - (500 - 3));
    assert_eq!(connects, 1, "the spot connection opens after the warm-up");
    assert_eq!(during, 0, "allocations while reading {frames} frames");
    let spot = &src.connections()[2];
    assert_eq!(spot.url, "wss://stream.bybit.com/v5/public/spot");
    assert_eq!(spot.venue, Some(Venue::BybitSpot));
}
