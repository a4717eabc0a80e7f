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
