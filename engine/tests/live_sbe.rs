//! pinion's live source on the simulator's SBE endpoint, over TLS on loopback: the source
//! connects with its API key, subscribes the SBE streams of `depth@100ms`, `bookTicker` and
//! `trade`, and receives, in order, exactly the frames the encoder makes of the real Spot
//! recording's messages from the diff that opened the market to the end.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::sim::start_sim_tuned;
use pinion_core::{InstrumentId, RecordKind, Venue};
use pinion_engine::pipeline;
use pinion_exchange_sim::live::LivePacing;
use pinion_feed::FrameSource;
use pinion_feed::live::{Encoding, LiveSource, LiveSpec, SnapshotRequests};
use pinion_feed::sbe::is_stream_message;
use pinion_feed::sbe_encode::{Exponents, SbeEncoder};
use pinion_net::wss::{ApiKeyHeader, WssSettings};

/// No REST: only the stream frames are checked here.
struct Offline;

impl pinion_feed::live::Fetch for Offline {
    fn get(&mut self, _path: &str) -> Result<pinion_feed::live::Answer, String> {
        Err("offline".to_owned())
    }
}

#[test]
fn the_live_source_reads_the_simulators_sbe_streams() {
    let Some(path) = pinion_testkit::data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let mut expected: Vec<Vec<u8>> = Vec::new();
    {
        let mut source = pinion_feed::source::open(&path).expect("open");
        let mut encoder = SbeEncoder::new(Exponents::BINANCE_SPOT);
        while let Some(rec) = source.next_record().expect("record") {
            if rec.kind == RecordKind::Frame {
                encoder
                    .encode(rec.payload, rec.t_recv, None)
                    .expect("encodes");
                expected.push(encoder.frame().to_vec());
            }
        }
    }
    let opened = path.clone();
    let sim = start_sim_tuned(
        "",
        1,
        1.0,
        |c| {
            c.pacing = LivePacing::AsFastAsPossible;
            c.session_queue = 100_000;
        },
        move || pinion_feed::source::open(&opened),
    );
    let port = sim.exchange.local_addr().port();
    let mut spec = LiveSpec::new(
        Venue::BinanceSpot,
        &format!("wss://localhost:{port}/sbe/stream"),
        &format!("https://localhost:{port}"),
        vec!["BTCUSDT".to_owned()],
        vec![
            "depth@100ms".to_owned(),
            "bookTicker".to_owned(),
            "trade".to_owned(),
        ],
    );
    spec.encoding = Encoding::Sbe;
    spec.stream_stale_after = Duration::ZERO;
    let mut settings = WssSettings::new(pipeline::trust(Some(&sim.cert)).expect("trust"));
    settings.api_key = ApiKeyHeader::new("sim-sbe-key");
    let mut source = LiveSource::new(
        spec,
        settings,
        Box::new(Offline),
        &[InstrumentId(0)],
        Arc::new(SnapshotRequests::new(1)),
    )
    .expect("source");

    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut released = false;
    let mut want = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while want.is_none_or(|n| got.len() < n) && Instant::now() < deadline {
        if !released && sim.exchange.stats().control_requests >= 1 {
            sim.exchange.release();
            released = true;
        }
        match source.next_record() {
            Ok(Some(r)) if r.kind == RecordKind::Frame && is_stream_message(r.payload) => {
                if got.is_empty() {
                    let k = expected
                        .iter()
                        .position(|e| e[..] == r.payload[..])
                        .expect("the first frame is one of the recording's");
                    want = Some(expected.len() - k);
                }
                got.push(r.payload.to_vec());
            }
            Ok(_) => std::thread::sleep(Duration::from_micros(100)),
            Err(e) => panic!("live source: {e}"),
        }
    }
    assert!(released, "the source never subscribed");
    let skipped = expected.len() - got.len();
    assert!(
        want == Some(got.len()) && skipped < 100,
        "{} frames, {skipped} of the recording's missing",
        got.len()
    );
    for (i, (a, b)) in got.iter().zip(&expected[skipped..]).enumerate() {
        assert_eq!(a, b, "frame {i} after the open");
    }
    assert_eq!(sim.exchange.stats().sbe_key_refusals, 0);
}

const SBE_KEY: &str = "sim-sbe-key-0123456789";

/// What a `pinion live` process left: its report and the recording of its session.
struct LiveRun {
    code: Option<i32>,
    report: serde_json::Value,
    pnr: std::path::PathBuf,
    stderr: String,
}

/// `pinion live` on the simulator `sim` with `[live]` keys `extra` (the key for SBE in
/// `PINION_TEST_SBE_KEY`), recording the session, until the simulator has released its whole
/// source and the session has had a few seconds more.
fn run_live_process(sim: &common::sim::Sim, extra: &str, tag: &str) -> LiveRun {
    use std::process::{Command, Stdio};
    let dir = &sim.dir.0;
    let pnr = dir.join(format!("{tag}.pnr"));
    let report_path = dir.join(format!("{tag}.json"));
    let config = common::sim::live_config(
        sim.exchange.local_addr(),
        &sim.cert,
        &format!("{extra}\nrecord = \"{}\"", pnr.display()),
    );
    let config_path = dir.join(format!("{tag}.toml"));
    std::fs::write(&config_path, config).expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pinion"))
        .arg("live")
        .arg("--config")
        .arg(&config_path)
        .arg("--no-progress")
        .arg("--report-json")
        .arg(&report_path)
        .env("PINION_TEST_SBE_KEY", SBE_KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pinion runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.exchange.stats().control_requests == 0
        && Instant::now() < deadline
        && matches!(child.try_wait(), Ok(None))
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    sim.exchange.release();
    assert!(
        sim.exchange.wait_exhausted(Duration::from_secs(120)),
        "the simulator did not release its whole source in time"
    );
    // The session takes the tail in, then stops as Ctrl-C would stop it.
    std::thread::sleep(Duration::from_secs(3));
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let code = child.wait().expect("pinion exits").code();
    let report = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    LiveRun {
        code,
        report,
        pnr,
        stderr,
    }
}

/// The books a recording replays to, fused, with the embedded config's instruments.
fn replay_books(pnr: &std::path::Path) -> Vec<pipeline::BookView> {
    let settings = common::fused_recording(pnr);
    let report = pipeline::run(
        &settings,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
        pipeline::Console::QUIET,
    )
    .expect("the recording replays");
    pipeline::final_books(&report)
}

/// `pinion live` with `encoding = "sbe"` on the real Spot recording served as SBE: the book
/// syncs from the REST snapshot and the binary diffs, ends live and equal to the simulator's,
/// level for level; the session's recording holds the binary frames as they came and replays
/// to the same book.
#[test]
fn an_sbe_session_ends_equal_to_the_venue_and_its_recording_replays_to_it() {
    let Some(path) = pinion_testkit::data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let opened = path.clone();
    let sim = start_sim_tuned(
        "",
        21,
        20_000.0,
        |c| c.sbe_streams = true,
        move || pinion_feed::source::open(&opened),
    );
    let run = run_live_process(
        &sim,
        "encoding = \"sbe\"\nsbe_api_key_env = \"PINION_TEST_SBE_KEY\"\nsnapshot_limit = 5000",
        "sbe",
    );
    assert_eq!(
        run.code,
        Some(130),
        "stopped by Ctrl-C, nothing else wrong: {}",
        run.stderr
    );
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_eq!(truth.last_update_id, 50_093_421_584);
    let book = &run.report["books"][0];
    assert_eq!(book["state"], "live", "{book}");
    assert_eq!(book["last_update_id"], truth.last_update_id, "{book}");
    assert_eq!(book["gaps"], 0, "{book}");
    assert_eq!(sim.exchange.stats().sbe_key_refusals, 0);
    // The recording holds binary frames, and replays to the venue's book.
    let mut source = pinion_feed::source::open(&run.pnr).expect("the recording opens");
    let mut binary = 0u64;
    while let Some(r) = source.next_record().expect("reads") {
        if r.kind == RecordKind::Frame && is_stream_message(r.payload) {
            binary += 1;
        }
    }
    assert!(binary > 30_000, "{binary} SBE frames recorded");
    common::sim::assert_equal_to_truth(&replay_books(&run.pnr), &truth);
}

/// A JSON feed and an SBE feed of the same streams as a redundant pair: merged by update id,
/// the book ends live and equal to the venue's, and the session's recording (each message
/// as whichever feed brought it first) replays to the same book.
#[test]
fn a_json_feed_and_an_sbe_feed_merge_by_update_id() {
    let Some(path) = pinion_testkit::data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let opened = path.clone();
    let sim = start_sim_tuned(
        "",
        22,
        20_000.0,
        |_| {},
        move || pinion_feed::source::open(&opened),
    );
    let port = sim.exchange.local_addr().port();
    let run = run_live_process(
        &sim,
        &format!(
            "redundant_ws_url = \"wss://localhost:{port}/sbe/stream\"\nredundant_encoding = \"sbe\"\n\
             sbe_api_key_env = \"PINION_TEST_SBE_KEY\"\nsnapshot_limit = 5000\ngap_hold_ms = 200"
        ),
        "pair",
    );
    assert_eq!(
        run.code,
        Some(130),
        "stopped by Ctrl-C, nothing else wrong: {}",
        run.stderr
    );
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    let book = &run.report["books"][0];
    assert_eq!(book["state"], "live", "{book}");
    assert_eq!(book["last_update_id"], truth.last_update_id, "{book}");
    common::sim::assert_equal_to_truth(&replay_books(&run.pnr), &truth);
    // Both feeds' frames are in the recording: text and binary.
    let mut source = pinion_feed::source::open(&run.pnr).expect("the recording opens");
    let (mut text, mut binary) = (0u64, 0u64);
    while let Some(r) = source.next_record().expect("reads") {
        if r.kind == RecordKind::Frame {
            if is_stream_message(r.payload) {
                binary += 1;
            } else {
                text += 1;
            }
        }
    }
    // Which feed wins each message is a race; together they carried the whole market.
    eprintln!("first arrivals recorded: {text} JSON, {binary} SBE");
    assert!(
        text + binary > 30_000,
        "{text} JSON and {binary} SBE frames"
    );
}
