//! Benchmark: how fast each recording format reads, on the real recordings.
//!
//! Every case reads a whole file from the page cache (the first, warm-up iterations load it) and
//! touches every payload, so the figure is decode cost, not disk speed. Throughput is counted in
//! records: the same session read from different formats has the same records, so records/s
//! compare directly; the file sizes are printed at setup to turn them into MB/s of input.
//!
//! - `gzip-lines`: the in-run baseline for the `.hbt.gz` files, `<ns> <json>` lines through
//!   `flate2::GzDecoder` and `BufRead::read_until`, the least any reader of them must do.
//! - `hbt`, `cryptofeed-text`, `cryptofeed-jsonl`: the project's readers of those formats, as
//!   `source::open` picks them.
//! - `pnr`: the same recording converted (in setup) to pinion's own format, read with
//!   [`RecordingReader`]: the goal is at least 5× the gzip-lines baseline.
//!
//! - `pcap`: the real Spot session as a feed server would send it (one WebSocket text frame per
//!   TCP segment, Ethernet/IPv4, nanosecond pcap), written in setup with the pcap tests' capture
//!   writer and read back through [`source::open`]: container, link, TCP reassembly and WebSocket
//!   decoding together.
//!
//! Numbers mean something only on an idle machine; say its state beside them.

use std::fs::File;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::read::GzDecoder;
use pinion_core::{ConnId, ConnInfo, RawRecord, RecordKind};
use pinion_feed::recording::{
    RecordingHeader, RecordingReader, RecordingWriter, Rotation, convert,
};
use pinion_feed::{FrameSource, SourceError, source};
use pinion_testkit::data;
use pinion_testkit::pcap_writer::{
    CaptureWriter, ETHERNET, Flow, ethernet, upgrade_request, upgrade_response, ws_frame,
};

/// The baseline: gzip-compressed `<ns> <json>` lines, one buffer reused for every line.
struct GzLines {
    input: BufReader<GzDecoder<File>>,
    line: Vec<u8>,
    conns: Vec<ConnInfo>,
    line_no: u64,
}

impl GzLines {
    fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            input: BufReader::with_capacity(1 << 16, GzDecoder::new(File::open(path)?)),
            line: Vec::with_capacity(1 << 16),
            conns: vec![ConnInfo {
                id: ConnId(0),
                venue: None,
                url: path.display().to_string(),
            }],
            line_no: 0,
        })
    }
}

impl FrameSource for GzLines {
    fn connections(&self) -> &[ConnInfo] {
        &self.conns
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        self.line.clear();
        if self.input.read_until(b'\n', &mut self.line)? == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        let bad = |what: &str| SourceError::Format {
            format: "gzip-lines",
            position: self.line_no,
            what: what.into(),
        };
        let line = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        let space = line
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("no space"))?;
        let mut t_recv = 0u64;
        for &d in &line[..space] {
            if !d.is_ascii_digit() {
                return Err(bad("bad time"));
            }
            t_recv = t_recv * 10 + u64::from(d - b'0');
        }
        let payload = &line[space + 1..];
        let kind = if payload.starts_with(b"{\"lastUpdateId\"") {
            RecordKind::RestSnapshot
        } else {
            RecordKind::Frame
        };
        Ok(Some(RawRecord {
            t_recv,
            conn: ConnId(0),
            kind,
            meta: &[],
            payload,
        }))
    }
}

/// Reads a source to the end; returns (records, payload bytes).
fn drain(src: &mut dyn FrameSource) -> (u64, u64) {
    let mut records = 0;
    let mut bytes = 0;
    while let Some(rec) = src.next_record().expect("benchmark input reads") {
        records += 1;
        bytes += rec.payload.len() as u64 + u64::from(rec.payload.first().copied().unwrap_or(0));
    }
    black_box((records, bytes))
}

/// Converts a recording (any format [`source::open`] takes) to a `.pnr` in the temp directory.
fn to_pnr(input: &Path) -> PathBuf {
    let name = input.file_name().map_or_else(
        || "recording".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let out = std::env::temp_dir().join(format!("pinion-bench-{}-{name}.pnr", std::process::id()));
    let mut src = source::open(input).expect("open input");
    let mut writer = RecordingWriter::create(&out, RecordingHeader::new(name, 0), Rotation::NONE)
        .expect("create pnr");
    convert(&mut *src, &mut writer).expect("convert");
    writer.finish().expect("finish pnr");
    out
}

/// Size of a file in MB, and of a cryptofeed `.ws` with its `.http` beside it.
fn mb(path: &Path) -> f64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut total = size(path);
    if let Some(ws) = path.to_str().and_then(|p| p.strip_suffix(".ws")) {
        total += size(Path::new(&format!("{ws}.http")));
    }
    total as f64 / 1e6
}

/// One benchmark group: the input read by its own reader (and the gzip-lines baseline for the
/// hbt files), and the same records read from `.pnr`.
fn bench_input(c: &mut Criterion, rel: &str, short: &str, reader_name: &str) {
    let Some(input) = data::require(rel) else {
        return;
    };
    let pnr = to_pnr(&input);
    let (records, _) = drain(&mut *source::open(&input).expect("open input"));
    let (pnr_records, _) = drain(&mut RecordingReader::open(&pnr).expect("open pnr"));
    assert_eq!(records, pnr_records, "conversion kept every record");
    println!(
        "{rel}: {records} records; input {:.2} MB, pnr {:.2} MB",
        mb(&input),
        mb(&pnr)
    );

    let mut g = c.benchmark_group(format!("read/{short}"));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(records));
    if rel.ends_with(".hbt.gz") {
        g.bench_function("gzip-lines", |b| {
            b.iter(|| drain(&mut GzLines::open(&input).expect("open hbt")));
        });
    }
    g.bench_function(reader_name, |b| {
        b.iter(|| drain(&mut *source::open(&input).expect("open input")));
    });
    g.bench_function("pnr", |b| {
        b.iter(|| drain(&mut RecordingReader::open(&pnr).expect("open pnr")));
    });
    g.finish();
    let _ = std::fs::remove_file(&pnr);
}

/// Writes the frames of a recording as a capture of one server → client WebSocket session.
fn to_pcap(input: &Path) -> (PathBuf, u64) {
    let mut w = CaptureWriter::pcap(false, true, ETHERNET);
    let mut flow = Flow::new("127.0.0.1:50000", "127.0.0.1:9443", 1_000, 5_000);
    let mut t = 1;
    let put = |w: &mut CaptureWriter, t: u64, seg: pinion_testkit::pcap_writer::Segment| {
        w.packet(0, t, &ethernet(&[], &seg.ip()));
    };
    for seg in flow.open() {
        put(&mut w, t, seg);
    }
    let req = flow.client(&upgrade_request("127.0.0.1:9443", "/stream"));
    put(&mut w, t, req);
    let resp = flow.server(&upgrade_response(101, None));
    put(&mut w, t, resp);
    let mut frames = 0;
    let mut src = source::open(input).expect("open input");
    while let Some(rec) = src.next_record().expect("input reads") {
        if rec.kind == RecordKind::Frame {
            t = rec.t_recv;
            let seg = flow.server(&ws_frame(true, false, 1, rec.payload, None));
            put(&mut w, t, seg);
            frames += 1;
        }
    }
    let out = std::env::temp_dir().join(format!("pinion-bench-{}.pcap", std::process::id()));
    std::fs::write(&out, w.finish()).expect("write capture");
    (out, frames)
}

fn bench_pcap(c: &mut Criterion, rel: &str, short: &str) {
    let Some(input) = data::require(rel) else {
        return;
    };
    let (pcap, frames) = to_pcap(&input);
    let mut check = source::open(&pcap).expect("open capture");
    let mut read_frames = 0;
    while let Some(rec) = check.next_record().expect("capture reads") {
        read_frames += u64::from(rec.kind == RecordKind::Frame);
    }
    assert_eq!(read_frames, frames, "the capture gives back every frame");
    let (records, _) = drain(&mut *source::open(&pcap).expect("open capture"));
    println!(
        "{rel} as pcap: {frames} frames, {records} records; capture {:.2} MB",
        mb(&pcap)
    );
    let mut g = c.benchmark_group(format!("read/{short}"));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(records));
    g.bench_function("pcap", |b| {
        b.iter(|| drain(&mut *source::open(&pcap).expect("open capture")));
    });
    g.finish();
    let _ = std::fs::remove_file(&pcap);
}

fn readers(c: &mut Criterion) {
    bench_input(
        c,
        "binance/spot-btcusdt-20240808.hbt.gz",
        "spot-btcusdt-hbt",
        "hbt",
    );
    bench_input(
        c,
        "binance/usdm-btcusdt-20240808.hbt.gz",
        "usdm-btcusdt-hbt",
        "hbt",
    );
    bench_input(
        c,
        "binance/spot-multi-20211012.cryptofeed.ws",
        "spot-multi-cryptofeed",
        "cryptofeed-text",
    );
    bench_input(
        c,
        "bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst",
        "bybit-cryptofeed-jsonl",
        "cryptofeed-jsonl",
    );
    bench_pcap(
        c,
        "binance/spot-btcusdt-20240808.hbt.gz",
        "spot-btcusdt-pcap",
    );
}

criterion_group!(benches, readers);
criterion_main!(benches);
