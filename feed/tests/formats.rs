//! Inputs recognised from their content: every real recording under a meaningless name reads as
//! under its own; the formats users have beyond the shipped ones (plain hbt lines, JSON lines with
//! every kind of time stamp or none, Bybit's zipped `ob500` files, gzip and zstd JSON lines,
//! standard input); and the typed errors for inputs that are none of them.

use std::fs;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use flate2::Compression;
use flate2::write::GzEncoder;
use pinion_core::{ConnId, InstrumentSpec, Instruments, RecordKind, Venue};
use pinion_feed::parse::{ConnCtx, Decoded, Decoder};
use pinion_feed::source::{self, Decompress};
use pinion_feed::{FrameSource, SourceError};
use pinion_testkit::data;

/// Counts this thread's allocations, so tests running in parallel do not disturb each other.
#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

/// A directory of its own under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pinion-formats-{}-{tag}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.join(name);
        fs::write(&path, bytes).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A record, owned: kind, connection, receive time, meta, payload.
type Rec = (RecordKind, ConnId, u64, Vec<u8>, Vec<u8>);

fn all(src: &mut dyn FrameSource) -> Vec<Rec> {
    let mut out = Vec::new();
    while let Some(r) = src.next_record().expect("reads cleanly") {
        out.push((
            r.kind,
            r.conn,
            r.t_recv,
            r.meta.to_vec(),
            r.payload.to_vec(),
        ));
    }
    out
}

fn open_all(path: &Path) -> Vec<Rec> {
    all(&mut *source::open(path).expect("opens"))
}

/// Reads both sources to the end, asserting every record is the same; the count.
fn assert_same_records(a: &mut dyn FrameSource, b: &mut dyn FrameSource, what: &str) -> u64 {
    let mut n = 0u64;
    loop {
        let ra = a.next_record().expect("the original reads");
        let rb = b.next_record().expect("the copy reads");
        match (ra, rb) {
            (None, None) => return n,
            (Some(x), Some(y)) => {
                assert!(
                    (x.kind, x.conn, x.t_recv, x.meta, x.payload)
                        == (y.kind, y.conn, y.t_recv, y.meta, y.payload),
                    "{what}: record {n} differs"
                );
            }
            (x, y) => panic!(
                "{what}: one ends at record {n} ({} / {})",
                x.is_some(),
                y.is_some()
            ),
        }
        n += 1;
    }
}

/// FNV-1a over every field of every record: what the standard-input child reports.
fn digest(src: &mut dyn FrameSource) -> (u64, u64) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    };
    let mut n = 0u64;
    while let Some(r) = src.next_record().expect("reads cleanly") {
        n += 1;
        eat(format!("{:?}", r.kind).as_bytes());
        eat(&r.conn.0.to_le_bytes());
        eat(&r.t_recv.to_le_bytes());
        eat(&(r.meta.len() as u64).to_le_bytes());
        eat(r.meta);
        eat(&(r.payload.len() as u64).to_le_bytes());
        eat(r.payload);
    }
    (n, h)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).expect("in memory");
    enc.finish().expect("in memory")
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("in memory")
}

/// A zip of `entries` (a name ending in `/` is a directory), each file with `method`.
fn zip(entries: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, options).expect("zip directory");
        } else {
            w.start_file(*name, options).expect("zip entry");
            w.write_all(bytes).expect("in memory");
        }
    }
    w.finish().expect("in memory").into_inner()
}

// ---- Real recordings under meaningless names --------------------------------------------------

/// Every real recording the project reads, by format.
const RECORDINGS: [&str; 7] = [
    "binance/spot-btcusdt-20240808.hbt.gz",
    "binance/usdm-btcusdt-20240808.hbt.gz",
    "bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst",
    "pcap/websocket_baseline.pcap",
    "pcap/two-binary-fragments.pcap",
    "pcap/reply-ping-coalesced.pcap",
    "binance/sbe/spot-btcusdt-20240808.sbe.pcap",
];

#[test]
fn every_real_recording_reads_the_same_under_a_meaningless_name() {
    let dir = TempDir::new("renamed");
    for (i, relative) in RECORDINGS.iter().enumerate() {
        let Some(original) = data::require(relative) else {
            continue;
        };
        let copy = dir.join(&format!("q{i}.dat"));
        fs::copy(&original, &copy).expect("copy");
        for decompress in [Decompress::Inline, Decompress::Ahead] {
            let mut a = source::open_with(&original, decompress).expect("original opens");
            let mut b = source::open_with(&copy, decompress).expect("renamed copy opens");
            let what = format!("{relative} ({decompress:?})");
            let n = assert_same_records(&mut *a, &mut *b, &what);
            assert!(n > 0, "{what}: no records");
            let ids =
                |s: &dyn FrameSource| s.connections().iter().map(|c| c.id).collect::<Vec<_>>();
            assert_eq!(ids(&*a), ids(&*b), "{what}: connections");
        }
        assert_eq!(
            source::is_compressed(&copy),
            source::is_compressed(&original),
            "{relative}: compressed or not, from the content"
        );
    }
}

/// A `.pnr` made from a real recording reads the same renamed, and says what it is.
#[test]
fn a_renamed_pnr_reads_the_same() {
    use pinion_feed::recording::{RecordingHeader, RecordingWriter, Rotation, convert};
    let Some(hbt) = data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let dir = TempDir::new("pnr");
    let pnr = dir.join("spot.pnr");
    let mut src = source::open(&hbt).expect("opens");
    let mut w = RecordingWriter::create(&pnr, RecordingHeader::new("spot", 0), Rotation::NONE)
        .expect("create");
    convert(&mut *src, &mut w).expect("convert");
    w.finish().expect("finish");
    let renamed = dir.join("m4");
    fs::copy(&pnr, &renamed).expect("copy");
    assert_eq!(
        source::container_of(&renamed).expect("readable"),
        source::sniff::Container::Pnr
    );
    let mut a = source::open(&hbt).expect("original");
    let mut b = source::open(&renamed).expect("renamed");
    assert_eq!(assert_same_records(&mut *a, &mut *b, "pnr"), 41_249);
    let (n, h) = digest(&mut *source::open(&renamed).expect("renamed"));
    let got = read_through_stdin(&renamed, "inline");
    assert!(
        got.starts_with(&format!("records={n} digest={h:016x}")),
        "{got}"
    );
}

#[test]
fn a_renamed_cryptofeed_text_capture_finds_its_http_companion() {
    let (Some(ws), Some(http)) = (
        data::require("binance/spot-multi-20211012.cryptofeed.ws"),
        data::require("binance/spot-multi-20211012.cryptofeed.http"),
    ) else {
        return;
    };
    let dir = TempDir::new("companion");
    let want = open_all(&ws);
    let snapshots = |recs: &[Rec]| {
        recs.iter()
            .filter(|r| r.0 == RecordKind::RestSnapshot)
            .count()
    };
    assert_eq!(
        snapshots(&want),
        4,
        "the original pair holds four snapshots"
    );
    // The last extension replaced by `.http`, or `.http` added; a name without an extension.
    for (ws_name, http_name) in [
        ("q7.dat", "q7.http"),
        ("r9.bin", "r9.bin.http"),
        ("s3", "s3.http"),
    ] {
        fs::copy(&ws, dir.join(ws_name)).expect("copy");
        fs::copy(&http, dir.join(http_name)).expect("copy");
        let mut a = source::open(&ws).expect("original");
        let mut b = source::open(&dir.join(ws_name)).expect("renamed");
        assert_eq!(b.connections().len(), 2, "{ws_name}: the REST connection");
        assert_same_records(&mut *a, &mut *b, ws_name);
    }
    // Alone, the capture reads without its snapshots.
    fs::copy(&ws, dir.join("lonely.txt")).expect("copy");
    let alone = open_all(&dir.join("lonely.txt"));
    assert_eq!(snapshots(&alone), 0);
    assert_eq!(alone.len(), want.len() - 4);
}

#[test]
fn plain_hbt_lines_read_as_their_gzip() {
    let Some(gz) = data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let dir = TempDir::new("plain-hbt");
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(fs::File::open(&gz).expect("open"))
        .read_to_end(&mut text)
        .expect("inflate");
    // Named as users name them, and with no name to go by.
    for name in ["spot-btcusdt-20240808.hbt", "z"] {
        let plain = dir.write(name, &text);
        let mut a = source::open(&gz).expect("gzip");
        let mut b = source::open_with(&plain, Decompress::Ahead).expect("plain");
        assert_eq!(assert_same_records(&mut *a, &mut *b, name), 41_249);
        assert!(!source::is_compressed(&plain));
    }
    // The venue is a hint of the name's prefix, as for the gzip file.
    let named = source::open(&dir.join("spot-btcusdt-20240808.hbt")).expect("plain");
    assert_eq!(named.connections()[0].venue, Some(Venue::BinanceSpot));
    let unnamed = source::open(&dir.join("z")).expect("plain");
    assert_eq!(unnamed.connections()[0].venue, None);
}

// ---- JSON lines ---------------------------------------------------------------------------------

/// Venue messages, with the time each carries (ms), if any.
const MESSAGES: [(&str, Option<u64>, RecordKind); 5] = [
    (
        r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161253937,"s":"BTCUSDT","U":1,"u":2,"b":[["61685.99","1.0"]],"a":[]}}"#,
        Some(1_723_161_253_937),
        RecordKind::Frame,
    ),
    (
        r#"{"u":400900217,"s":"BTCUSDT","b":"61685.99","B":"1.0","a":"61686.00","A":"2.0"}"#,
        None,
        RecordKind::Frame,
    ),
    (
        r#"{"lastUpdateId":2,"bids":[["61685.99","1.0"]],"asks":[["61686.00","2.0"]]}"#,
        None,
        RecordKind::RestSnapshot,
    ),
    (
        r#"{"topic":"orderbook.500.BTCUSDT","type":"delta","ts":1723161254001,"data":{"s":"BTCUSDT","b":[],"a":[["61686.1","0.5"]],"u":7,"seq":70},"cts":1723161254000}"#,
        Some(1_723_161_254_001),
        RecordKind::Frame,
    ),
    (
        r#"{"e":"trade","E":1723161254500,"s":"BTCUSDT","t":1,"p":"61686.00","q":"0.1","T":1723161254499,"m":true}"#,
        Some(1_723_161_254_500),
        RecordKind::Frame,
    ),
];

/// The i-th line's receive time in ns: a second and a bit apart, every digit significant.
fn line_ns(i: usize) -> u64 {
    1_723_161_253_937_085_768 + i as u64 * 1_123_456_789
}

#[test]
fn json_lines_with_every_stamp_unit_and_none() {
    let dir = TempDir::new("json-lines");
    // (stamp of a time in ns, the time it stands for, separator)
    type Stamp = fn(u64) -> (String, u64);
    let stamps: [(&str, Stamp, &str); 6] = [
        (
            "seconds with fraction",
            |t| (format!("{}.{:09}", t / 1_000_000_000, t % 1_000_000_000), t),
            " ",
        ),
        (
            "seconds with short fraction",
            |t| {
                (
                    format!("{}.{:03}", t / 1_000_000_000, t / 1_000_000 % 1_000),
                    t / 1_000_000 * 1_000_000,
                )
            },
            "\t",
        ),
        (
            "milliseconds",
            |t| ((t / 1_000_000).to_string(), t / 1_000_000 * 1_000_000),
            " ",
        ),
        (
            "microseconds",
            |t| ((t / 1_000).to_string(), t / 1_000 * 1_000),
            "\t",
        ),
        ("nanoseconds, tab", |t| (t.to_string(), t), "\t"),
        // With a space this is the hbt shape: read by that reader, to the same records.
        ("nanoseconds, space", |t| (t.to_string(), t), " "),
    ];
    for (what, stamp, sep) in stamps {
        let mut text = String::new();
        let mut want = Vec::new();
        for (i, (json, _, kind)) in MESSAGES.iter().enumerate() {
            let (s, t) = stamp(line_ns(i));
            text.push_str(&format!("{s}{sep}{json}\n"));
            want.push((*kind, ConnId(0), t, Vec::new(), json.as_bytes().to_vec()));
        }
        let path = dir.write("stamped", text.as_bytes());
        assert_eq!(open_all(&path), want, "{what}");
    }

    // No stamps: the message's own time, else the previous record's.
    let text: String = MESSAGES
        .iter()
        .map(|(json, _, _)| format!("{json}\n"))
        .collect();
    let mut last = 0;
    let want: Vec<Rec> = MESSAGES
        .iter()
        .map(|(json, ms, kind)| {
            last = ms.map_or(last, |ms| ms * 1_000_000);
            (*kind, ConnId(0), last, Vec::new(), json.as_bytes().to_vec())
        })
        .collect();
    let times: Vec<u64> = want.iter().map(|r| r.2).collect();
    assert_eq!(
        times,
        [
            1_723_161_253_937_000_000,
            1_723_161_253_937_000_000,
            1_723_161_253_937_000_000,
            1_723_161_254_001_000_000,
            1_723_161_254_500_000_000
        ]
    );
    let plain = dir.write("unstamped", text.as_bytes());
    let src = source::open(&plain).expect("opens");
    assert_eq!(src.connections().len(), 1);
    assert_eq!(src.connections()[0].venue, None);
    drop(src);
    assert_eq!(open_all(&plain), want);

    // The same text compressed every way reads the same, inline and ahead.
    let compressed = [
        ("g.gz", gzip(text.as_bytes())),
        ("z.zst", zstd(text.as_bytes())),
        (
            "d.zip",
            zip(
                &[("d/", b""), ("d/lines", text.as_bytes())],
                zip::CompressionMethod::Deflated,
            ),
        ),
        (
            "s.zip",
            zip(
                &[("lines", text.as_bytes())],
                zip::CompressionMethod::Stored,
            ),
        ),
    ];
    for (name, bytes) in compressed {
        let path = dir.write(name, &bytes);
        assert!(source::is_compressed(&path), "{name}");
        for decompress in [Decompress::Inline, Decompress::Ahead] {
            let got = all(&mut *source::open_with(&path, decompress).expect("opens"));
            assert_eq!(got, want, "{name} {decompress:?}");
        }
    }
}

/// Bybit's historical order book file: a 500-level snapshot, then deltas, one message a line,
/// no stamps (`ts` is the time).
fn ob500_lines() -> (String, Vec<u64>) {
    let levels = |first: i64, step: i64| {
        (0..500)
            .map(|i| {
                let px = first + step * i;
                format!("[\"{}.{}\",\"0.{:03}\"]", px / 10, px % 10, i % 999 + 1)
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut text = format!(
        "{{\"topic\":\"orderbook.500.BTCUSDT\",\"type\":\"snapshot\",\"ts\":1723161600123,\"data\":{{\"s\":\"BTCUSDT\",\"b\":[{}],\"a\":[{}],\"u\":1000,\"seq\":5000}},\"cts\":1723161600120}}\n",
        levels(650_000, -1),
        levels(650_001, 1)
    );
    let mut times = vec![1_723_161_600_123_000_000];
    for i in 1..=3u64 {
        let ts = 1_723_161_600_123 + i * 10;
        text.push_str(&format!(
            "{{\"topic\":\"orderbook.500.BTCUSDT\",\"type\":\"delta\",\"ts\":{ts},\"data\":{{\"s\":\"BTCUSDT\",\"b\":[[\"65000.0\",\"0.{i:03}\"]],\"a\":[],\"u\":{},\"seq\":{}}},\"cts\":{}}}\n",
            1000 + i,
            5000 + i,
            ts - 1
        ));
        times.push(ts * 1_000_000);
    }
    (text, times)
}

#[test]
fn bybit_ob500_zip_reads_its_first_file_with_ts_as_the_time() {
    let dir = TempDir::new("ob500");
    let (text, times) = ob500_lines();
    let archive = zip(
        &[
            ("2024-08-09/", b""),
            ("2024-08-09/BTCUSDT_2024-08-09_ob500.data", text.as_bytes()),
            ("2024-08-09/README.txt", b"not read"),
        ],
        zip::CompressionMethod::Deflated,
    );
    let named = dir.write("BTCUSDT_2024-08-09_ob500.data.zip", &archive);
    let renamed = dir.write("k2", &archive);
    let recs = open_all(&named);
    assert_eq!(recs, open_all(&renamed));
    assert_eq!(recs.iter().map(|r| r.2).collect::<Vec<_>>(), times);
    let lines: Vec<&str> = text.lines().collect();
    for (r, line) in recs.iter().zip(&lines) {
        assert_eq!((r.0, r.1), (RecordKind::Frame, ConnId(0)));
        assert_eq!(r.4, line.as_bytes());
    }

    // Decoded as Bybit linear, the snapshot is the whole 500-level book.
    let mut instruments = Instruments::new();
    instruments
        .add(InstrumentSpec::new(Venue::BybitLinear, "BTCUSDT", "0.10", "0.001").expect("spec"))
        .expect("add");
    let mut decoder = Decoder::new(instruments);
    let ctx = ConnCtx::new(Venue::BybitLinear);
    let mut src = source::open(&renamed).expect("opens");
    let (mut bids, mut asks) = (0, 0);
    let rec = src.next_record().expect("reads").expect("snapshot");
    let res = decoder.decode(&ctx, &rec, 0, |e| {
        bids += e.bids().len();
        asks += e.asks().len();
    });
    assert!(matches!(res, Ok(Decoded::Events(_))), "{res:?}");
    assert_eq!((bids, asks), (500, 500));
}

#[test]
fn a_damaged_zip_entry_is_an_error_not_a_panic() {
    let dir = TempDir::new("bad-zip");
    let (text, _) = ob500_lines();
    let good = zip(
        &[("x.data", text.as_bytes())],
        zip::CompressionMethod::Stored,
    );
    // Stored, so the flipped byte reaches the text unchanged: only the CRC-32 can tell.
    let at = good
        .windows(5)
        .position(|w| w == b"65000")
        .expect("the text is stored");
    let mut bad = good.clone();
    bad[at] = b'7';
    let path = dir.write("bad.zip", &bad);
    let mut src = source::open(&path).expect("the directory is intact");
    let mut errors = Vec::new();
    for _ in 0..100 {
        match src.next_record() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => errors.push(e.to_string()),
        }
    }
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("does not match its directory"),
        "{}",
        errors[0]
    );

    // An archive cut short loses its directory.
    let cut = dir.write("cut.zip", &good[..good.len() / 2]);
    assert!(matches!(
        source::open(&cut),
        Err(SourceError::Format { format: "zip", .. })
    ));
}

// ---- Errors -------------------------------------------------------------------------------------

#[test]
fn unknown_inputs_are_typed_errors_that_quote_them() {
    let dir = TempDir::new("unknown");
    let binary: Vec<u8> = (0u8..=255).rev().collect();
    let cases: [(&str, Vec<u8>, &str, &str); 7] = [
        ("a", binary, "plain text", "\\xff\\xfe\\xfd"),
        (
            "b",
            b"hello world\nmore\n".to_vec(),
            "plain text",
            "hello world\\nmore\\n",
        ),
        ("c", Vec::new(), "plain text", "(empty)"),
        (
            // The name claims cryptofeed; the content is neither that nor venue messages.
            "x.cryptofeed.jsonl.zst",
            zstd(b"{\"name\":\"BTCUSDT\",\"value\":1}\n"),
            "zstd text",
            "{\"name\":\"BTCUSDT\"",
        ),
        (
            "e.zst",
            zstd(b"not json at all\n"),
            "zstd text",
            "not json at all",
        ),
        (
            "f.gz",
            gzip(b"\x00\x01\x02 binary"),
            "gzip text",
            "\\x00\\x01\\x02",
        ),
        (
            "g.zip",
            zip(
                &[("readme.txt", b"Order book data, see below.\n")],
                zip::CompressionMethod::Deflated,
            ),
            "zip entry",
            "Order book data",
        ),
    ];
    for (name, bytes, want_container, want_seen) in cases {
        let path = dir.write(name, &bytes);
        let err = match source::open(&path) {
            Err(e) => e,
            Ok(_) => panic!("{name}: opened"),
        };
        let text = err.to_string();
        match err {
            SourceError::UnknownFormat {
                container, seen, ..
            } => {
                assert_eq!(container, want_container, "{name}");
                assert!(seen.starts_with(want_seen), "{name}: {seen}");
                // At most 48 bytes shown, each escaped to at most 4 characters, then `…`.
                assert!(seen.len() <= 48 * 4 + 3, "{name}: cut short: {seen}");
            }
            other => panic!("{name}: {other:?}"),
        }
        for known in ["hbt", "JSON lines", "cryptofeed", "pnr", "pcap"] {
            assert!(text.contains(known), "{name}: {text}");
        }
    }

    // A compressed stream that fails before its first line is reported as the stream's error.
    let Some(gz) = data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let bytes = fs::read(gz).expect("read");
    let cut = dir.write("cut", &bytes[..12]);
    assert!(
        matches!(
            source::open(&cut),
            Err(SourceError::Truncated {
                format: "gzip",
                position: 1
            })
        ),
        "{:?}",
        source::open(&cut).err()
    );
}

// ---- Standard input -----------------------------------------------------------------------------

/// Set for the child process of [`standard_input_reads_as_the_file`].
const CHILD_ENV: &str = "PINION_FORMATS_STDIN_CHILD";

/// Not a test of its own: the child the standard-input test runs, which reads `-` and prints
/// what it read. Does nothing unless the parent set [`CHILD_ENV`].
#[test]
fn stdin_child() {
    let Some(mode) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let decompress = if mode == "ahead" {
        Decompress::Ahead
    } else {
        Decompress::Inline
    };
    assert!(source::is_stdin(Path::new("-")));
    match source::open_with(Path::new(source::STDIN_PATH), decompress) {
        Ok(mut src) => {
            let (n, h) = digest(&mut *src);
            // A capture finds its connections as it reads: named after the reading.
            let url = src.connections().first().map_or("", |c| c.url.as_str());
            println!("stdin-result: records={n} digest={h:016x} url={url}");
        }
        Err(e) => println!("stdin-result: error={e}"),
    }
}

/// Runs [`stdin_child`] with `input` as its standard input; its one line of result.
fn read_through_stdin(input: &Path, mode: &str) -> String {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args(["--exact", "stdin_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .stdin(Stdio::from(fs::File::open(input).expect("open input")))
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.split_once("stdin-result: ").map(|(_, r)| r))
        .unwrap_or_else(|| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            panic!("no result from the child: {stdout}\n{stderr}")
        })
        .to_owned()
}

#[test]
fn standard_input_reads_as_the_file() {
    let dir = TempDir::new("stdin");
    let (ob500, _) = ob500_lines();
    let mut inputs = vec![
        dir.write("lines", ob500.as_bytes()),
        dir.write("lines.zst", &zstd(ob500.as_bytes())),
    ];
    for relative in [
        "binance/spot-btcusdt-20240808.hbt.gz",
        "bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst",
        "binance/sbe/spot-btcusdt-20240808.sbe.pcap",
    ] {
        inputs.extend(data::require(relative));
    }
    for input in &inputs {
        let (n, h) = digest(&mut *source::open(input).expect("opens"));
        assert!(n > 0);
        for mode in ["inline", "ahead"] {
            let got = read_through_stdin(input, mode);
            assert!(
                got.starts_with(&format!("records={n} digest={h:016x} url=")),
                "{} {mode}: {got}",
                input.display()
            );
        }
    }
    let got = read_through_stdin(&inputs[0], "inline");
    assert!(got.ends_with("url=stdin"), "{got}");

    // A zip's directory is at its end: refused with a way out.
    let zipped = dir.write(
        "z.zip",
        &zip(&[("l", ob500.as_bytes())], zip::CompressionMethod::Deflated),
    );
    let got = read_through_stdin(&zipped, "inline");
    assert!(got.contains("cannot be read as a stream"), "{got}");
}

// ---- Allocation ---------------------------------------------------------------------------------

#[test]
fn json_lines_steady_state_allocates_nothing() {
    let dir = TempDir::new("alloc");
    let mut text = String::new();
    for i in 0..3_000 {
        let (json, _, _) = MESSAGES[i % MESSAGES.len()];
        match i % 3 {
            0 => text.push_str(&format!("{json}\n")),
            1 => text.push_str(&format!("{} {json}\n", line_ns(i) / 1_000_000)),
            _ => text.push_str(&format!("{}.{:09}\t{json}\n", i, i)),
        }
    }
    for (name, bytes) in [
        ("p", text.clone().into_bytes()),
        ("g", gzip(text.as_bytes())),
    ] {
        let path = dir.write(name, &bytes);
        let mut src = source::open(&path).expect("opens");
        for _ in 0..100 {
            src.next_record().expect("reads").expect("more");
        }
        let before = pinion_testkit::alloc::thread_allocations();
        let mut n = 0;
        while src.next_record().expect("reads").is_some() {
            n += 1;
        }
        assert_eq!(n, 2_900);
        assert_eq!(
            pinion_testkit::alloc::thread_allocations() - before,
            0,
            "{name}: allocations in the steady state"
        );
    }
}
