//! The `.pnr` recording format end to end: conversion round trips, rotation, corruption and
//! truncation detection, and the recorder thread (gaps on a full ring, no allocation on the feed
//! side).

use std::path::{Path, PathBuf};

use pinion_core::{ConnId, ConnInfo, RawRecord, RecordKind, Venue};
use pinion_feed::recording::format::{FILE_HEADER_FIXED_LEN, RECORD_HEADER_LEN, record_len};
use pinion_feed::recording::{
    ALL_CONNECTIONS, InstrumentDef, Recorder, RecordingHeader, RecordingReader, RecordingWriter,
    Rotation, convert,
};
use pinion_feed::{FrameSource, SourceError};

// ---------------------------------------------------------------------------------------------
// Allocation counting, per thread, so the recorder thread's own allocations do not count.

#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

fn allocations() -> u64 {
    pinion_testkit::alloc::thread_allocations()
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("pinion-rec-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A record with owned bytes, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    t_recv: u64,
    conn: ConnId,
    kind: RecordKind,
    meta: Vec<u8>,
    payload: Vec<u8>,
}

impl Owned {
    fn of(r: &RawRecord<'_>) -> Self {
        Self {
            t_recv: r.t_recv,
            conn: r.conn,
            kind: r.kind,
            meta: r.meta.to_vec(),
            payload: r.payload.to_vec(),
        }
    }

    fn raw(&self) -> RawRecord<'_> {
        RawRecord {
            t_recv: self.t_recv,
            conn: self.conn,
            kind: self.kind,
            meta: &self.meta,
            payload: &self.payload,
        }
    }
}

/// A source over hand-made records.
struct VecSource {
    conns: Vec<ConnInfo>,
    records: Vec<Owned>,
    next: usize,
}

impl FrameSource for VecSource {
    fn connections(&self) -> &[ConnInfo] {
        &self.conns
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        let r = self.records.get(self.next).map(Owned::raw);
        self.next += 1;
        Ok(r)
    }
}

fn conns() -> Vec<ConnInfo> {
    vec![
        ConnInfo {
            id: ConnId(0),
            venue: Some(Venue::BinanceSpot),
            url: "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms".into(),
        },
        ConnInfo {
            id: ConnId(1),
            venue: None,
            url: "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000".into(),
        },
    ]
}

/// Varied records: every kind, empty and odd-length fields, one larger than the read block.
fn hand_made() -> Vec<Owned> {
    let mut v = Vec::new();
    let t0 = 1_723_161_240_123_456_789u64;
    v.push(Owned {
        t_recv: t0,
        conn: ConnId(0),
        kind: RecordKind::Connect,
        meta: b"wss://stream.binance.com:9443/stream".to_vec(),
        payload: Vec::new(),
    });
    v.push(Owned {
        t_recv: t0 + 5,
        conn: ConnId(1),
        kind: RecordKind::RestSnapshot,
        meta: b"https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000".to_vec(),
        payload:
            br#"{"lastUpdateId":50093239218,"bids":[["61837.63000000","1.00000000"]],"asks":[]}"#
                .to_vec(),
    });
    for i in 0..500u64 {
        let payload = format!(
            r#"{{"stream":"btcusdt@bookTicker","data":{{"u":{i},"s":"BTCUSDT","b":"61837.6{}","B":"{}"}}}}"#,
            i % 10,
            "1".repeat((i % 13) as usize)
        );
        v.push(Owned {
            t_recv: t0 + 1_000 * i,
            conn: ConnId(0),
            kind: RecordKind::Frame,
            meta: Vec::new(),
            payload: payload.into_bytes(),
        });
    }
    v.push(Owned {
        t_recv: t0 + 600_000,
        conn: ConnId(1),
        kind: RecordKind::Http,
        meta: b"https://api.binance.com/api/v3/exchangeInfo".to_vec(),
        payload: (0..3_000_000u32).map(|i| b'a' + (i % 26) as u8).collect(),
    });
    v.push(Owned {
        t_recv: t0 + 700_000,
        conn: ConnId(0),
        kind: RecordKind::Gap,
        meta: Vec::new(),
        payload: 3u64.to_le_bytes().to_vec(),
    });
    v.push(Owned {
        t_recv: t0 + 800_000,
        conn: ConnId(0),
        kind: RecordKind::Disconnect,
        meta: Vec::new(),
        payload: Vec::new(),
    });
    v
}

fn header() -> RecordingHeader {
    let mut h = RecordingHeader::new("hand-made", 0);
    h.instruments.push(InstrumentDef {
        venue: Venue::BinanceSpot,
        symbol: "BTCUSDT".into(),
        tick_size: "0.01000000".into(),
        step_size: "0.00001000".into(),
    });
    h
}

fn read_all(path: &Path) -> Result<Vec<Owned>, SourceError> {
    let mut r = RecordingReader::open(path)?;
    let mut out = Vec::new();
    while let Some(rec) = r.next_record()? {
        out.push(Owned::of(&rec));
    }
    Ok(out)
}

fn write_hand_made(dir: &TempDir) -> (PathBuf, Vec<Owned>) {
    let records = hand_made();
    let path = dir.path("hand.pnr");
    let mut src = VecSource {
        conns: conns(),
        records: records.clone(),
        next: 0,
    };
    let mut w = RecordingWriter::create(&path, header(), Rotation::NONE).unwrap();
    let stats = convert(&mut src, &mut w).unwrap();
    assert_eq!(stats.records, records.len() as u64);
    assert_eq!(stats.count(RecordKind::Frame), 500);
    assert_eq!(w.finish().unwrap(), vec![path.clone()]);
    (path, records)
}

/// File offsets of the records of a file holding `records` after a header of `header_len`.
fn record_offsets(header_len: u64, records: &[Owned]) -> Vec<u64> {
    let mut at = header_len;
    records
        .iter()
        .map(|r| {
            let this = at;
            at += record_len(r.meta.len(), r.payload.len()) as u64;
            this
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Round trips.

#[test]
fn hand_made_records_round_trip_with_header() {
    let dir = TempDir::new("roundtrip");
    let (path, records) = write_hand_made(&dir);

    let reader = RecordingReader::open(&path).unwrap();
    let h = reader.header();
    assert_eq!(h.source, "hand-made");
    assert_eq!(
        h.start_ns, records[0].t_recv,
        "start time taken from the first record"
    );
    assert_eq!(h.connections, conns());
    assert_eq!(reader.connections(), conns().as_slice());
    let reg = h.instrument_registry().unwrap();
    let id = reg.lookup(Venue::BinanceSpot, b"btcusdt").unwrap();
    assert_eq!(reg.get(id).unwrap().price_decimals, 2);

    assert_eq!(read_all(&path).unwrap(), records);
}

#[test]
fn empty_recording_has_a_header_and_no_records() {
    let dir = TempDir::new("empty");
    let path = dir.path("empty.pnr");
    let w =
        RecordingWriter::create(&path, RecordingHeader::new("live", 7), Rotation::NONE).unwrap();
    w.finish().unwrap();
    let r = RecordingReader::open(&path).unwrap();
    assert_eq!(r.header().start_ns, 7);
    assert_eq!(read_all(&path).unwrap(), Vec::new());
}

#[test]
fn rotation_by_size_splits_into_numbered_standalone_files() {
    let dir = TempDir::new("rotate-size");
    let records: Vec<Owned> = hand_made()
        .into_iter()
        .filter(|r| r.payload.len() < 1000)
        .collect();
    let mut w =
        RecordingWriter::create(dir.path("day.pnr"), header(), Rotation::by_size(8 << 10)).unwrap();
    for r in &records {
        w.write(&r.raw()).unwrap();
    }
    let files = w.finish().unwrap();
    assert!(
        files.len() > 3,
        "expected several files, got {}",
        files.len()
    );
    let mut all = Vec::new();
    for (i, f) in files.iter().enumerate() {
        assert_eq!(f, &dir.path(&format!("day.{i:05}.pnr")));
        assert!(std::fs::metadata(f).unwrap().len() <= 8 << 10);
        let part = read_all(f).unwrap();
        let h = RecordingReader::open(f).unwrap().header().clone();
        assert_eq!(h.sequence, i as u32);
        assert_eq!(h.start_ns, part[0].t_recv);
        assert_eq!(h.instruments, header().instruments);
        all.extend(part);
    }
    assert_eq!(all, records);
}

#[test]
fn rotation_by_span_starts_a_file_per_interval() {
    let dir = TempDir::new("rotate-span");
    let records: Vec<Owned> = hand_made()
        .into_iter()
        .filter(|r| r.payload.len() < 1000)
        .collect();
    let span = 100_000; // the frames are 1 µs apart: 100 frames a file
    let mut w =
        RecordingWriter::create(dir.path("s.pnr"), header(), Rotation::by_span(span)).unwrap();
    for r in &records {
        w.write(&r.raw()).unwrap();
    }
    let files = w.finish().unwrap();
    let mut all = Vec::new();
    for f in &files {
        let part = read_all(f).unwrap();
        let first = part[0].t_recv;
        assert!(part.iter().all(|r| r.t_recv - first < span));
        all.extend(part);
    }
    assert_eq!(all, records);
    assert!(files.len() >= 5);
}

// ---------------------------------------------------------------------------------------------
// Corruption and truncation.

#[test]
fn truncation_anywhere_is_reported_at_the_record_it_cuts() {
    let dir = TempDir::new("truncate");
    // Small records so that every offset can be tried.
    let records: Vec<Owned> = hand_made().into_iter().take(60).collect();
    let full = dir.path("full.pnr");
    let mut w = RecordingWriter::create(&full, header(), Rotation::NONE).unwrap();
    for r in &records {
        w.write(&r.raw()).unwrap();
    }
    w.finish().unwrap();
    let bytes = std::fs::read(&full).unwrap();
    let header_len = header_len_of(&full);
    let offsets = record_offsets(header_len, &records);
    assert_eq!(
        *offsets.last().unwrap() + record_len(0, records[59].payload.len()) as u64,
        bytes.len() as u64
    );

    for cut in 0..bytes.len() {
        // The reader reads any `io::Read`; a slice stands for the cut file.
        let input = &bytes[..cut];
        if (cut as u64) < header_len {
            match RecordingReader::new(input) {
                Err(SourceError::Truncated { position: 0, .. }) => {}
                Err(SourceError::Format { .. }) if cut == 0 => {}
                other => panic!("cut {cut} in the header: {other:?}"),
            }
            continue;
        }
        let mut r = RecordingReader::new(input).unwrap();
        let whole = offsets.iter().filter(|&&o| o < cut as u64).count();
        let mut n = 0;
        let end = loop {
            match r.next_record() {
                Ok(Some(rec)) => {
                    assert_eq!(Owned::of(&rec), records[n], "cut {cut}");
                    n += 1;
                }
                other => break other.map(|o| o.map(|_| ())),
            }
        };
        if offsets.contains(&(cut as u64)) {
            assert!(matches!(end, Ok(None)), "cut {cut} at a boundary: {end:?}");
            assert_eq!(n, whole);
        } else {
            let at = offsets[whole - 1];
            assert!(
                matches!(end, Err(SourceError::Truncated { position, .. }) if position == at),
                "cut {cut}: expected truncated at {at}, got {end:?}"
            );
            assert_eq!(n, whole - 1);
            assert!(
                matches!(r.next_record(), Ok(None)),
                "reader ends after truncation"
            );
        }
    }
}

fn header_len_of(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    u64::from(u32::from_le_bytes([
        bytes[12], bytes[13], bytes[14], bytes[15],
    ]))
}

#[test]
fn flipped_payload_byte_is_a_checksum_error_and_reading_goes_on() {
    let dir = TempDir::new("flip");
    let (path, records) = write_hand_made(&dir);
    let offsets = record_offsets(header_len_of(&path), &records);
    let mut bytes = std::fs::read(&path).unwrap();
    let victim = 10;
    let at = offsets[victim] as usize + RECORD_HEADER_LEN + 5;
    bytes[at] ^= 0x20;
    let bad = dir.path("bad.pnr");
    std::fs::write(&bad, &bytes).unwrap();

    let mut r = RecordingReader::open(&bad).unwrap();
    let mut got = Vec::new();
    let mut errors = Vec::new();
    loop {
        match r.next_record() {
            Ok(Some(rec)) => got.push(Owned::of(&rec)),
            Ok(None) => break,
            Err(e) => errors.push(e),
        }
    }
    assert_eq!(errors.len(), 1);
    assert!(
        matches!(errors[0], SourceError::Checksum { position, .. } if position == offsets[victim]),
        "{:?}",
        errors[0]
    );
    let mut expected = records.clone();
    expected.remove(victim);
    assert_eq!(got, expected);
}

#[test]
fn corrupt_lengths_are_format_errors_at_the_record() {
    let dir = TempDir::new("length");
    let (path, records) = write_hand_made(&dir);
    let offsets = record_offsets(header_len_of(&path), &records);
    for field_byte in [12usize, 13, 15, 16, 18, 19] {
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[offsets[3] as usize + field_byte] ^= 0x7f;
        let bad = dir.path("len.pnr");
        std::fs::write(&bad, &bytes).unwrap();
        let mut r = RecordingReader::open(&bad).unwrap();
        for _ in 0..3 {
            assert!(r.next_record().unwrap().is_some());
        }
        let err = r.next_record().unwrap_err();
        assert!(
            matches!(err, SourceError::Format { position, .. } if position == offsets[3]),
            "byte {field_byte}: {err:?}"
        );
        assert!(matches!(r.next_record(), Ok(None)));
    }
}

#[test]
fn bad_magic_version_and_header_are_rejected() {
    let dir = TempDir::new("magic");
    let (path, _) = write_hand_made(&dir);
    let good = std::fs::read(&path).unwrap();
    let bad = dir.path("bad.pnr");

    let mut b = good.clone();
    b[1] = b'X';
    std::fs::write(&bad, &b).unwrap();
    assert!(matches!(
        RecordingReader::open(&bad),
        Err(SourceError::Format { position: 0, .. })
    ));

    let mut b = good.clone();
    b[8] = 2;
    std::fs::write(&bad, &b).unwrap();
    match RecordingReader::open(&bad) {
        Err(SourceError::Format {
            position: 8, what, ..
        }) => assert!(what.contains("version 2")),
        other => panic!("{other:?}"),
    }

    let mut b = good.clone();
    b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&bad, &b).unwrap();
    assert!(matches!(
        RecordingReader::open(&bad),
        Err(SourceError::Format { position: 12, .. })
    ));

    let mut b = good.clone();
    b[FILE_HEADER_FIXED_LEN + 2] ^= 1; // inside the source description
    std::fs::write(&bad, &b).unwrap();
    assert!(matches!(
        RecordingReader::open(&bad),
        Err(SourceError::Checksum { position: 0, .. })
    ));

    std::fs::write(&bad, b"{\"stream\":\"btcusdt@depth\"}\n").unwrap();
    assert!(matches!(
        RecordingReader::open(&bad),
        Err(SourceError::Format { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// The recorder.

#[test]
fn recorder_writes_everything_queued_before_shutdown() {
    let dir = TempDir::new("recorder");
    let records = hand_made();
    let w = RecordingWriter::create(dir.path("live.pnr"), header(), Rotation::NONE).unwrap();
    let (mut handle, recorder) = Recorder::spawn(w, 16 << 20).unwrap();
    for r in &records {
        // About 3.1 MB in all: fits the 16 MiB ring even if the thread drains nothing.
        assert!(handle.record(&r.raw()));
    }
    drop(handle);
    let report = recorder.shutdown().unwrap();
    assert_eq!(report.records, records.len() as u64);
    assert_eq!(report.gap_records, 1, "the hand-made Gap record");
    assert_eq!(report.files, vec![dir.path("live.pnr")]);
    assert_eq!(report.dropped, 0);
    assert_eq!(read_all(&report.files[0]).unwrap(), records);
}

/// What the recording must hold given which `record` calls succeeded: each accepted record,
/// preceded by one gap per connection that lost records since the last accepted one.
fn expected_with_gaps(outcomes: &[(Owned, bool)]) -> Vec<Owned> {
    let mut out = Vec::new();
    let mut pending: Vec<(ConnId, u64, u64)> = Vec::new();
    for (r, ok) in outcomes {
        if *ok {
            for (conn, t, lost) in pending.drain(..) {
                out.push(Owned {
                    t_recv: t,
                    conn,
                    kind: RecordKind::Gap,
                    meta: Vec::new(),
                    payload: lost.to_le_bytes().to_vec(),
                });
            }
            out.push(r.clone());
        } else if let Some(p) = pending.iter_mut().find(|p| p.0 == r.conn) {
            p.2 += 1;
        } else {
            pending.push((r.conn, r.t_recv, 1));
        }
    }
    out
}

#[test]
fn full_ring_drops_are_marked_by_gap_records_and_the_feed_side_never_allocates() {
    let dir = TempDir::new("gaps");
    let w = RecordingWriter::create(dir.path("gaps.pnr"), header(), Rotation::NONE).unwrap();
    let ring = 4096;
    let (mut handle, recorder) = Recorder::spawn(w, ring).unwrap();

    // Prepared before counting: frames on three connections, every 7th larger than the ring
    // (always dropped), the rest small.
    let records: Vec<Owned> = (0..20_000u64)
        .map(|i| Owned {
            t_recv: 1_000_000 + i,
            conn: ConnId((i % 3) as u16),
            kind: RecordKind::Frame,
            meta: Vec::new(),
            payload: vec![
                b'0' + (i % 10) as u8;
                if i % 7 == 3 {
                    ring + 1
                } else {
                    200 + (i % 50) as usize
                }
            ],
        })
        .collect();
    let mut accepted = vec![false; records.len()];

    let before = allocations();
    for (r, ok) in records.iter().zip(accepted.iter_mut()) {
        *ok = handle.record(&r.raw());
    }
    let feed_side_allocations = allocations() - before;
    assert_eq!(feed_side_allocations, 0, "the feed side allocated");

    let lost = accepted.iter().filter(|ok| !**ok).count() as u64;
    assert!(lost >= records.len() as u64 / 7);
    assert_eq!(handle.dropped(), lost);
    // The last record is accepted once the ring has room, so no gap is left pending.
    let last = Owned {
        t_recv: 9_000_000,
        conn: ConnId(2),
        kind: RecordKind::Disconnect,
        meta: Vec::new(),
        payload: Vec::new(),
    };
    while !handle.record(&last.raw()) {
        std::thread::yield_now();
    }
    let retries = handle.dropped() - lost;
    drop(handle);
    let report = recorder.shutdown().unwrap();
    assert_eq!(report.dropped, lost + retries);

    let mut outcomes: Vec<(Owned, bool)> = records.into_iter().zip(accepted).collect();
    for _ in 0..retries {
        outcomes.push((last.clone(), false));
    }
    outcomes.push((last, true));
    let expected = expected_with_gaps(&outcomes);
    let got = read_all(&report.files[0]).unwrap();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
    assert!(report.gap_records > 0);
    assert_eq!(
        got.iter().filter(|r| r.kind == RecordKind::Gap).count() as u64,
        report.gap_records
    );
    let gap_total: u64 = got
        .iter()
        .filter(|r| r.kind == RecordKind::Gap)
        .map(|r| u64::from_le_bytes(r.payload[..8].try_into().unwrap()))
        .sum();
    assert_eq!(gap_total, report.dropped);
}

#[test]
fn gaps_on_many_connections_merge_into_one_for_all() {
    let dir = TempDir::new("allgaps");
    let w = RecordingWriter::create(dir.path("all.pnr"), header(), Rotation::NONE).unwrap();
    let (mut handle, recorder) = Recorder::spawn(w, 1024).unwrap();
    let big = vec![b'x'; 2048];
    for c in 0..40u16 {
        let r = RawRecord {
            t_recv: 100 + u64::from(c),
            conn: ConnId(c),
            kind: RecordKind::Frame,
            meta: &[],
            payload: &big,
        };
        assert!(!handle.record(&r));
    }
    assert!(handle.flush_gaps());
    drop(handle);
    let report = recorder.shutdown().unwrap();
    let got = read_all(&report.files[0]).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].conn, ALL_CONNECTIONS);
    assert_eq!(got[0].kind, RecordKind::Gap);
    assert_eq!(got[0].t_recv, 100);
    assert_eq!(got[0].payload, 40u64.to_le_bytes());
}

// ---------------------------------------------------------------------------------------------
// Real recordings: converted, then read back record for record.

/// Converts a real recording to `.pnr`, then reads the original again beside the conversion and
/// checks every record is identical (time, connection, kind, meta, payload) and the counts match.
fn real_round_trip(relative: &str) -> Option<pinion_feed::recording::ConvertStats> {
    let path = pinion_testkit::data::require(relative)?;
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let dir = TempDir::new(&format!("real-{name}"));
    let out = dir.path("converted.pnr");

    let mut src = pinion_feed::source::open(&path).unwrap();
    let mut w =
        RecordingWriter::create(&out, RecordingHeader::new(&*name, 0), Rotation::NONE).unwrap();
    let stats = convert(&mut *src, &mut w).unwrap();
    assert_eq!(w.finish().unwrap(), vec![out.clone()]);
    let source_conns = src.connections().to_vec();

    let mut original = pinion_feed::source::open(&path).unwrap();
    let mut reader = RecordingReader::open(&out).unwrap();
    assert_eq!(reader.header().source, name);
    assert_eq!(reader.header().start_ns, stats.first_t_recv);
    let mut n = 0u64;
    loop {
        let a = original.next_record().unwrap();
        let b = reader.next_record().unwrap();
        assert_eq!(a, b, "{relative}: record {n} differs");
        if a.is_none() {
            break;
        }
        n += 1;
    }
    assert_eq!(n, stats.records);
    assert_eq!(
        reader.connections(),
        source_conns.as_slice(),
        "{relative}: connections"
    );
    Some(stats)
}

#[test]
fn real_binance_spot_hbt_round_trips() {
    let Some(stats) = real_round_trip("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    assert_eq!(stats.records, 41_249);
    assert_eq!(stats.count(RecordKind::RestSnapshot), 1);
    assert_eq!(stats.count(RecordKind::Frame), 41_248);
}

#[test]
fn real_binance_usdm_hbt_round_trips() {
    let Some(stats) = real_round_trip("binance/usdm-btcusdt-20240808.hbt.gz") else {
        return;
    };
    assert_eq!(stats.records, 93_954);
    assert_eq!(stats.count(RecordKind::RestSnapshot), 1);
}

#[test]
fn real_cryptofeed_ws_and_http_pair_round_trips() {
    let Some(stats) = real_round_trip("binance/spot-multi-20211012.cryptofeed.ws") else {
        return;
    };
    // The four REST depth snapshots of the .http file come with the stream.
    assert_eq!(stats.count(RecordKind::RestSnapshot), 4);
    assert!(stats.count(RecordKind::Frame) > 100);
}

#[test]
fn real_bybit_cryptofeed_jsonl_round_trips() {
    let Some(stats) = real_round_trip("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst") else {
        return;
    };
    assert!(stats.count(RecordKind::Frame) > 2_148);
    assert!(
        stats.count(RecordKind::Http) > 0,
        "instruments-info responses"
    );
}

#[test]
fn connections_learnt_after_the_first_record_reach_the_header() {
    let dir = TempDir::new("late-conns");
    let path = dir.path("late.pnr");
    let records = hand_made();
    let mut w = RecordingWriter::create(&path, header(), Rotation::NONE).unwrap();
    w.write(&records[0].raw()).unwrap();
    w.set_connections(&conns());
    w.write(&records[1].raw()).unwrap();
    w.finish().unwrap();
    let r = RecordingReader::open(&path).unwrap();
    assert_eq!(r.header().connections, conns());
    assert_eq!(read_all(&path).unwrap(), records[..2].to_vec());
    assert!(!dir.path("late.pnr.tmp").exists());
}
