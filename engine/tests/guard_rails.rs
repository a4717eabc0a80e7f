//! Guard rails around a replay: a paced replay does not sit out an hour-long hole in a
//! recording, and `convert` never writes over its input or leaves half a file.

use std::time::Instant;

use pinion_engine::config::{Override, Overrides, Settings};
use pinion_engine::pipeline::{self, Console};
use pinion_feed::FrameSource as _;
use pinion_feed::recording::{InstrumentDef, RecordingHeader, RecordingWriter, Rotation};
use pinion_feed::synth::{SynthConfig, SynthMarket};

mod common;

const HOUR_NS: u64 = 3_600_000_000_000;

/// The synthetic market written as a `.pnr`, with the receive times moved on by an hour after
/// record `holes[0]`, by another half hour after `holes[1]`, and so on; returns the file and
/// every record's receive time as written.
fn recording_with_holes(
    dir: &std::path::Path,
    records: u64,
    holes: &[(u64, u64)],
) -> (std::path::PathBuf, Vec<u64>) {
    let mut market = SynthMarket::new(SynthConfig {
        messages: records,
        mean_interval_ns: 20_000,
        ..SynthConfig::default()
    })
    .expect("synthetic market");
    let path = dir.join("holes.pnr");
    let mut header = RecordingHeader::new("synthetic with holes", 0);
    header.connections = market.connections().to_vec();
    header
        .instruments
        .push(InstrumentDef::from_spec(market.spec()));
    let mut writer = RecordingWriter::create(&path, header, Rotation::NONE).expect("writer");
    let mut times = Vec::new();
    let mut shift = 0u64;
    let mut n = 0u64;
    while let Some(rec) = market.next_record().expect("synthetic records") {
        if let Some((_, by)) = holes.iter().find(|(at, _)| *at == n) {
            shift += by;
        }
        let t = rec.t_recv + shift;
        writer
            .write_parts(t, rec.conn, rec.kind, rec.meta, rec.payload)
            .expect("write");
        times.push(t);
        n += 1;
    }
    writer.finish().expect("finish");
    (path, times)
}

fn paced(path: &std::path::Path, extra: &[(&str, &str)]) -> Settings {
    let mut o = Overrides::default();
    for (k, v) in [
        ("pacing.mode", "\"paced\""),
        ("placement.mode", "\"1\""),
        ("placement.wait", "\"park\""),
        ("runtime.progress", "false"),
    ] {
        o.push(Override::parse(&format!("{k}={v}")).expect("override"));
    }
    o.push(Override::string(
        "input.source",
        path.to_str().expect("UTF-8 path"),
    ));
    for (k, v) in extra {
        o.push(Override::parse(&format!("{k}={v}")).expect("override"));
    }
    common::embedded_with(&o)
}

/// What the pacer must cut: every gap between consecutive receive times above `cap` (the
/// recording's clock only moves forward here), cut down to `cap`.
fn expected_cuts(times: &[u64], cap: u64) -> (u64, u64) {
    times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|gap| *gap > cap)
        .fold((0, 0), |(n, ns), gap| (n + 1, ns + gap - cap))
}

#[test]
fn paced_replay_cuts_long_gaps_and_counts_them() {
    let dir = common::scratch_dir("pacing-holes");
    // 3,000 frames 20 µs apart (60 ms of recording) with an hour and half an hour of nothing
    // in between.
    let (path, times) =
        recording_with_holes(&dir, 3_000, &[(1_000, HOUR_NS), (2_000, HOUR_NS / 2)]);
    let settings = paced(&path, &[]);
    assert_eq!(settings.pacing.max_wait_ns(), Some(1_000_000_000));
    let started = Instant::now();
    let report =
        pipeline::run(&settings, std::sync::Arc::default(), Console::QUIET).expect("replay runs");
    let took = started.elapsed();
    // Two waits of 1 s and 60 ms of recording; nowhere near the hour and a half.
    assert!(took.as_secs_f64() < 20.0, "took {took:?}");
    assert!(
        took.as_secs_f64() >= 2.0,
        "took {took:?}: the capped waits are waited"
    );
    assert_eq!(report.counter("feed", "records"), times.len() as u64);
    let (jumps, skipped) = expected_cuts(&times, 1_000_000_000);
    assert_eq!(jumps, 2);
    assert_eq!(report.counter("feed", "pacing_jumps"), jumps);
    assert_eq!(report.counter("feed", "pacing_skipped_ns"), skipped);
    assert!(skipped > HOUR_NS + HOUR_NS / 2 - 3_000_000_000);
    // The book went through the holes untouched: the run is the recording, only faster.
    assert_eq!(report.books.len(), 1);
    assert_eq!(report.books[0].state, pinion_book::SyncState::Live);
    let table = report.table();
    assert!(
        table.contains("pacing: 2 recorded gaps longer than pacing.max_wait_ms were cut"),
        "{table}"
    );
    assert!(table.contains("pacing_jumps=2"), "{table}");
    assert!(
        report.pacing.contains("waits cut at 1000 ms"),
        "{}",
        report.pacing
    );
    let json = report.to_json();
    assert_eq!(json["stages"]["feed"]["pacing_jumps"], 2);
    assert_eq!(json["stages"]["feed"]["pacing_skipped_ns"], skipped);

    // A smaller cap, at twice the speed: the waits are scaled first, then cut.
    let settings = paced(
        &path,
        &[("pacing.speed", "2.0"), ("pacing.max_wait_ms", "100")],
    );
    let report =
        pipeline::run(&settings, std::sync::Arc::default(), Console::QUIET).expect("replay runs");
    let halved: Vec<u64> = times.iter().map(|t| (t - times[0]) / 2).collect();
    let (jumps, skipped) = expected_cuts(&halved, 100_000_000);
    assert_eq!(report.counter("feed", "pacing_jumps"), jumps);
    assert_eq!(jumps, 2);
    assert_eq!(report.counter("feed", "pacing_skipped_ns"), skipped);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn max_pacing_counts_no_jumps() {
    let dir = common::scratch_dir("pacing-max");
    let (path, _) = recording_with_holes(&dir, 500, &[(100, HOUR_NS)]);
    let settings = paced(&path, &[("pacing.mode", "\"max\"")]);
    let report =
        pipeline::run(&settings, std::sync::Arc::default(), Console::QUIET).expect("replay runs");
    assert_eq!(report.counter("feed", "pacing_jumps"), 0);
    assert!(!report.table().contains("recorded gaps"));
    // Connect, snapshot, the frames.
    assert!(report.counter("feed", "records") > 500);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The embedded config, as `pinion convert` loads it.
fn convert_settings() -> Settings {
    common::embedded_with(&Overrides::default())
}

fn refused(input: &std::path::Path, output: &std::path::Path) -> String {
    match pipeline::convert_recording(&convert_settings(), input, output) {
        Err(e @ pipeline::PipelineError::OutputIsInput { .. }) => e.to_string(),
        other => panic!("{} → {}: {other:?}", input.display(), output.display()),
    }
}

#[test]
fn convert_refuses_to_write_over_its_input() {
    let dir = common::scratch_dir("convert-self");
    let (input, _) = recording_with_holes(&dir, 200, &[]);
    let before = std::fs::read(&input).expect("read input");
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    let hard = dir.join("hard.pnr");
    std::fs::hard_link(&input, &hard).expect("hard link");
    let soft = dir.join("soft.pnr");
    std::os::unix::fs::symlink(&input, &soft).expect("symlink");
    let soft_dir = dir.join("linked-dir");
    std::os::unix::fs::symlink(&dir, &soft_dir).expect("symlink to the directory");
    let name = input.file_name().expect("name");
    for output in [
        input.clone(),
        dir.join(".").join(name),
        sub.join("..").join(name),
        hard.clone(),
        soft.clone(),
        soft_dir.join(name),
    ] {
        let text = refused(&input, &output);
        assert!(text.contains("is the input"), "{text}");
        // The other way round too: a link as the input, the file as the output.
        refused(&output, &input);
    }
    assert_eq!(std::fs::read(&input).expect("read input"), before);
    // A cryptofeed capture's `.http` is read too.
    let ws = dir.join("cap.cryptofeed.ws");
    let http = dir.join("cap.cryptofeed.http");
    std::fs::write(&ws, "x").expect("write");
    std::fs::write(&http, "y").expect("write");
    assert!(refused(&ws, &http).contains("cap.cryptofeed.http"));
    // Nothing but the files made here: no temporary file was left.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cap.cryptofeed.http",
            "cap.cryptofeed.ws",
            "hard.pnr",
            "holes.pnr",
            "linked-dir",
            "soft.pnr",
            "sub"
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_convert_leaves_the_output_as_it_was() {
    let dir = common::scratch_dir("convert-fail");
    let (input, _) = recording_with_holes(&dir, 2_000, &[]);
    // A byte flipped half-way: that record fails its checksum and the conversion stops there.
    let mut bytes = std::fs::read(&input).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    let damaged = dir.join("damaged.pnr");
    std::fs::write(&damaged, &bytes).expect("write");
    let output = dir.join("out.pnr");
    std::fs::write(&output, b"an older file").expect("write");
    let err = pipeline::convert_recording(&convert_settings(), &damaged, &output)
        .expect_err("a damaged record stops the conversion");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert_eq!(std::fs::read(&output).expect("read"), b"an older file");
    let stray: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");

    // A good conversion replaces it, and says it wrote the output (not a temporary name).
    let summary =
        pipeline::convert_recording(&convert_settings(), &input, &output).expect("converts");
    assert_eq!(summary.files, std::slice::from_ref(&output));
    assert_eq!(summary.stats.records, 2_002);
    let reader = pinion_feed::recording::RecordingReader::open(&output).expect("a recording");
    assert_eq!(reader.header().instruments.len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
