//! `pinion live` end to end on loopback, over real TLS, against the exchange simulator's live
//! market serving a real recording: every book must end `live` and equal, level by level and
//! at the same update id, to the simulator's own book — through dropped diffs, resets,
//! half-open sockets, 1008 closes, server shutdowns and rotations.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::sim::*;
use pinion_engine::config::{Config, Overrides};
use pinion_engine::pipeline::{self, Console};
use pinion_testkit::alloc::{CountingAlloc, thread_allocations};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;
use pinion_exchange_sim::SelfSignedTls;
use pinion_exchange_sim::live::{LiveConfig, LivePacing};

const SPOT: &str = "binance/spot-btcusdt-20240808.hbt.gz";
const USDM: &str = "binance/usdm-btcusdt-20240808.hbt.gz";

#[test]
fn a_clean_synthetic_session_ends_equal_to_the_venue() {
    let sim = start_synthetic(30_000, "", 11, 20_000.0);
    let config = live_config(sim.exchange.local_addr(), &sim.cert, "");
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    let c = &report.input.live.as_ref().expect("live counters").conns[0];
    assert_eq!(
        c.opens.load(Ordering::Relaxed),
        1,
        "one connection, never lost"
    );
    assert_eq!(c.reconnects.load(Ordering::Relaxed), 0);
    assert_eq!(c.resyncs.load(Ordering::Relaxed), 0, "nothing to resync");
    assert_eq!(
        live_counter(&report, |l| l.snapshots.load(Ordering::Relaxed)),
        1,
        "one snapshot"
    );
    assert_eq!(counter(&report, "feed", "decode_errors"), 0);
    assert!(
        counter(&report, "strategy", "orders") > 0,
        "the strategy traded on the live book"
    );
}

#[test]
fn a_dropped_diff_resyncs_that_book_from_a_new_snapshot() {
    let sim = start_synthetic(40_000, "drop:btcusdt@depth@100ms:200", 2, 20_000.0);
    let config = live_config(sim.exchange.local_addr(), &sim.cert, "");
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    let book = &report.books[0];
    assert!(
        book.counters.gaps >= 1,
        "the gap was seen: {:?}",
        book.counters
    );
    assert!(
        live_counter(&report, |l| l.snapshots.load(Ordering::Relaxed)) >= 2,
        "a second snapshot resynced it"
    );
    let c = &report.input.live.as_ref().expect("live counters").conns[0];
    assert_eq!(
        c.reconnects.load(Ordering::Relaxed),
        0,
        "no reconnect for a gap"
    );
}

#[test]
fn a_reset_mid_frame_reconnects_and_resyncs() {
    let sim = start_synthetic(40_000, "rst:3000#0", 3, 20_000.0);
    let config = live_config(sim.exchange.local_addr(), &sim.cert, "");
    let report = run_session(&sim, &config, Duration::from_millis(2000));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    let c = &report.input.live.as_ref().expect("live counters").conns[0];
    assert_eq!(c.opens.load(Ordering::Relaxed), 2, "reopened once");
    assert_eq!(c.reconnects.load(Ordering::Relaxed), 1);
    assert_eq!(
        c.resyncs.load(Ordering::Relaxed),
        1,
        "the loss told the books to resync once"
    );
}

#[test]
fn a_half_open_socket_is_found_by_the_idle_timeout() {
    let sim = start_synthetic(40_000, "halfopen:2000#0", 4, 20_000.0);
    let config = live_config(sim.exchange.local_addr(), &sim.cert, "");
    let report = run_session(&sim, &config, Duration::from_millis(3000));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    let c = &report.input.live.as_ref().expect("live counters").conns[0];
    assert!(c.idle_timeouts.load(Ordering::Relaxed) >= 1);
    assert!(c.opens.load(Ordering::Relaxed) >= 2);
}

#[test]
fn a_server_shutdown_rotates_make_before_break_without_an_unsynced_view() {
    // The notice 500 ms into the first session, the close a second later.
    let sim = start_synthetic(40_000, "shutdown:500:1000#0", 5, 20_000.0);
    let config = live_config(sim.exchange.local_addr(), &sim.cert, "");
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    let live = report.input.live.as_ref().expect("live counters");
    assert_eq!(live.rotations.load(Ordering::Relaxed), 1, "one rotation");
    assert_eq!(live.conns[0].reconnects.load(Ordering::Relaxed), 0);
    let book = &report.books[0];
    assert_eq!(book.counters.gaps, 0, "no gap across the rotation");
    assert_eq!(
        book.counters.resyncs, 0,
        "the book never left live across the rotation: {:?}",
        book.counters
    );
}

#[test]
fn a_1008_close_reconnects_and_resyncs() {
    let sim = start_synthetic(40_000, "close1008:5000#0", 6, 20_000.0);
    let config = live_config(sim.exchange.local_addr(), &sim.cert, "");
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    let c = &report.input.live.as_ref().expect("live counters").conns[0];
    assert_eq!(c.opens.load(Ordering::Relaxed), 2);
    assert_eq!(c.policy_closes.load(Ordering::Relaxed), 1);
}

#[test]
fn connections_killed_after_the_handshake_back_off_and_then_sync() {
    let sim = start_synthetic(30_000, "kill:4", 7, 20_000.0);
    let config = live_config(sim.exchange.local_addr(), &sim.cert, "");
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    let c = &report.input.live.as_ref().expect("live counters").conns[0];
    assert_eq!(
        c.attempts.load(Ordering::Relaxed),
        5,
        "four killed, the fifth held"
    );
    assert_eq!(sim.exchange.stats().fault_kills, 4);
}

#[test]
fn a_missing_ack_is_asked_again() {
    let sim = start_synthetic(30_000, "noack:1#0", 8, 20_000.0);
    let config = live_config(sim.exchange.local_addr(), &sim.cert, "");
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    let c = &report.input.live.as_ref().expect("live counters").conns[0];
    assert_eq!(c.ack_timeouts.load(Ordering::Relaxed), 1);
    assert_eq!(c.subscribes.load(Ordering::Relaxed), 2);
    assert_eq!(c.reconnects.load(Ordering::Relaxed), 0);
}

#[test]
fn a_snapshot_older_than_the_buffered_diffs_is_fetched_again() {
    // 250 updates back: older than anything buffered at that point, so the book must ask again.
    let sim = start_synthetic(30_000, "stalesnap:250:1", 9, 5_000.0);
    // The market runs before the session joins, so the stale answer predates its buffer.
    sim.exchange.release();
    assert!(sim.exchange.wait_released(5_000, Duration::from_secs(30)));
    let config = live_config(sim.exchange.local_addr(), &sim.cert, "");
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    assert_eq!(sim.exchange.stats().fault_stale_snapshots, 1);
    assert!(
        live_counter(&report, |l| l.snapshots.load(Ordering::Relaxed)) >= 2,
        "the stale snapshot was replaced"
    );
}

#[test]
fn a_slow_snapshot_is_bridged_by_the_buffered_diffs() {
    let sim = start_synthetic(30_000, "slowsnap:700:1", 10, 20_000.0);
    let config = live_config(sim.exchange.local_addr(), &sim.cert, "");
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    assert_eq!(sim.exchange.stats().fault_slow_snapshots, 1);
    assert_eq!(
        live_counter(&report, |l| l.snapshots.load(Ordering::Relaxed)),
        1,
        "the one slow snapshot was enough"
    );
}

#[test]
fn a_silent_depth_stream_resyncs_that_book_alone() {
    let sim = start_synthetic(40_000, "mute:btcusdt@depth@100ms:300#0", 12, 20_000.0);
    let config = live_config(sim.exchange.local_addr(), &sim.cert, "")
        .replace("stream_stale_ms = 0", "stream_stale_ms = 400");
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let c = &report.input.live.as_ref().expect("live counters").conns[0];
    assert!(
        c.stale_streams.load(Ordering::Relaxed) >= 1,
        "the silence was seen"
    );
    assert_eq!(
        c.reconnects.load(Ordering::Relaxed),
        0,
        "the connection was kept"
    );
    assert_eq!(
        c.resyncs.load(Ordering::Relaxed),
        c.stale_streams.load(Ordering::Relaxed),
        "each stale stream resynced its book, and nothing else did"
    );
    let book = &report.books[0];
    assert!(book.counters.resyncs >= 1, "the book was marked unsynced");
}

#[test]
fn a_server_certificate_not_in_the_trust_store_is_refused() {
    let sim = start_synthetic(5_000, "", 13, 20_000.0);
    // Trust another certificate than the one the simulator serves.
    let other = SelfSignedTls::generate(&["localhost", "127.0.0.1"]).expect("certificate");
    let dir = TempDir::new("stranger");
    let cert = dir.0.join("other.pem");
    std::fs::write(&cert, &other.certificate_pem).expect("write cert");
    let config = live_config(sim.exchange.local_addr(), &cert, "");
    let config = Config::parse_with(&config, "live-test.toml", &Overrides::default())
        .expect("config parses");
    let settings = config.validate("live-test.toml").expect("config valid");
    let (settings, _) = pipeline::for_live(settings).expect("live settings");
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || pipeline::run(&settings, stop, Console::QUIET))
    };
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let report = runner.join().expect("thread").expect("ran");
    let c = &report.input.live.as_ref().expect("live counters").conns[0];
    assert!(c.attempts.load(Ordering::Relaxed) >= 2, "it kept trying");
    assert_eq!(
        c.opens.load(Ordering::Relaxed),
        0,
        "never with that certificate"
    );
    assert_eq!(sim.exchange.stats().ws_sessions, 0);
    assert_ne!(report.books[0].state.name(), "live");
}

#[test]
fn connections_rotate_before_the_venue_cuts_them_and_the_book_never_leaves_live() {
    // The venue cuts every session at 2.5 s (its 24 h, shortened); the session replaces each
    // connection after 1 s, well before.
    let sim = start_synthetic(60_000, "maxage:2500", 14, 15_000.0);
    let config = live_config(
        sim.exchange.local_addr(),
        &sim.cert,
        "rotate_after_s = 1.0\nrotate_jitter_s = 0.2",
    );
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    let live = report.input.live.as_ref().expect("live counters");
    assert!(
        live.rotations.load(Ordering::Relaxed) >= 2,
        "rotated on age"
    );
    assert_eq!(
        live.conns[0].reconnects.load(Ordering::Relaxed),
        0,
        "never cut"
    );
    assert_eq!(
        sim.exchange.stats().fault_max_age,
        0,
        "no session reached the cut"
    );
    let book = &report.books[0];
    assert_eq!(
        book.counters.resyncs, 0,
        "never unsynced: {:?}",
        book.counters
    );
    assert_eq!(
        counter(&report, "book", "lost_sync"),
        0,
        "the book never lost sync"
    );
}

/// One record, owned.
struct Owned {
    t_recv: u64,
    kind: pinion_core::RecordKind,
    meta: Vec<u8>,
    payload: Vec<u8>,
}

/// Several synthetic markets (one symbol each) merged by receive time into one source, as a
/// venue with many symbols.
struct Merged {
    sources: Vec<pinion_feed::synth::SynthMarket>,
    heads: Vec<Option<Owned>>,
    out: Option<Owned>,
    conns: Vec<pinion_core::ConnInfo>,
}

impl Merged {
    fn new(symbols: usize, messages: u64) -> Self {
        let sources: Vec<_> = (0..symbols)
            .map(|i| {
                pinion_feed::synth::SynthMarket::new(pinion_feed::synth::SynthConfig {
                    seed: 100 + i as u64,
                    symbol: format!("S{i}USDT"),
                    messages,
                    // A book no deeper than the 100-level snapshots the test asks for.
                    levels: 40,
                    ..pinion_feed::synth::SynthConfig::default()
                })
                .expect("synthetic market")
            })
            .collect();
        let conns = pinion_feed::FrameSource::connections(&sources[0]).to_vec();
        let mut m = Merged {
            heads: (0..symbols).map(|_| None).collect(),
            sources,
            out: None,
            conns,
        };
        for i in 0..symbols {
            m.refill(i);
        }
        m
    }

    fn refill(&mut self, i: usize) {
        self.heads[i] = pinion_feed::FrameSource::next_record(&mut self.sources[i])
            .expect("synthetic record")
            .map(|r| Owned {
                t_recv: r.t_recv,
                kind: r.kind,
                meta: r.meta.to_vec(),
                payload: r.payload.to_vec(),
            });
    }
}

impl pinion_feed::FrameSource for Merged {
    fn connections(&self) -> &[pinion_core::ConnInfo] {
        &self.conns
    }

    fn next_record(
        &mut self,
    ) -> Result<Option<pinion_core::RawRecord<'_>>, pinion_feed::SourceError> {
        let next = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (h.t_recv, i)))
            .min();
        let Some((_, i)) = next else {
            return Ok(None);
        };
        self.out = self.heads[i].take();
        self.refill(i);
        Ok(self.out.as_ref().map(|o| {
            pinion_core::RawRecord::new(
                o.t_recv,
                pinion_core::ConnId(0),
                o.kind,
                &o.meta,
                &o.payload,
            )
        }))
    }
}

/// A config with `symbols` synthetic symbols, each with its instrument.
fn many_symbols_config(sim: &Sim, symbols: usize, extra: &str) -> String {
    let names: Vec<String> = (0..symbols).map(|i| format!("\"S{i}USDT\"")).collect();
    let mut config = live_config(sim.exchange.local_addr(), &sim.cert, extra).replace(
        "symbols = [\"BTCUSDT\"]",
        &format!("symbols = [{}]", names.join(", ")),
    );
    for i in 0..symbols {
        config.push_str(&format!(
            "\n[[instrument]]\nvenue = \"binance-spot\"\nsymbol = \"S{i}USDT\"\ntick_size = \"0.01\"\nstep_size = \"0.00001\"\nqty_decimals = 8\n"
        ));
    }
    config
}

#[test]
fn snapshots_after_a_mass_reconnect_stay_inside_the_weight_budget() {
    const SYMBOLS: usize = 30;
    // Each snapshot weighs 5 (limit 100); the session may spend half of 200 per 2 s window:
    // 20 snapshots a window, so 30 symbols need two windows, and again after the reset.
    let sim = start_sim_tuned(
        "rst:4000#0",
        15,
        15_000.0,
        |c| {
            c.weight_limit = 200;
            c.weight_window = Duration::from_secs(2);
        },
        || Ok(Box::new(Merged::new(SYMBOLS, 5_000)) as Box<dyn pinion_feed::FrameSource + Send>),
    );
    let config = many_symbols_config(
        &sim,
        SYMBOLS,
        "snapshot_limit = 100\nrest_weight_limit = 200\nrest_weight_window_s = 2\nrest_weight_share = 0.5",
    )
    .replace(
        "streams = [\"depth@100ms\", \"bookTicker\", \"trade\"]",
        "streams = [\"depth@100ms\"]",
    );
    let report = run_session(&sim, &config, Duration::from_millis(5000));
    let books = pipeline::final_books(&report);
    for i in 0..SYMBOLS {
        let truth = sim.exchange.truth(&format!("S{i}USDT")).expect("truth");
        assert_equal_to_truth(&books, &truth);
    }
    let live = report.input.live.as_ref().expect("live counters");
    assert_eq!(live.conns[0].reconnects.load(Ordering::Relaxed), 1);
    assert!(live.snapshots.load(Ordering::Relaxed) >= 2 * SYMBOLS as u64);
    // The simulator's own count per window: the snapshots never took more than the share (the
    // instrument list at start-up, 20, comes on top in the first window).
    let windows = sim.exchange.stats().weight_windows;
    assert!(
        windows.len() >= 3,
        "spread over several windows: {windows:?}"
    );
    for w in &windows {
        assert!(w.used <= 100 + 20, "window over budget: {windows:?}");
    }
}

/// A gap hold long enough for a loaded 2-core host, where one feed's thread can be descheduled
/// for tens of ms while the other's runs.
const LOADED_HOST_GAP_HOLD: &str = "gap_hold_ms = 500";

/// The REST side of a source whose snapshots do not matter to the test.
struct Offline;

impl pinion_feed::live::Fetch for Offline {
    fn get(&mut self, _path: &str) -> Result<pinion_feed::live::Answer, String> {
        Err("offline".to_owned())
    }
}

#[test]
fn resubscribing_a_thousand_streams_stays_under_the_message_limit() {
    // 500 symbols × 2 streams: 1,000 streams on one connection, sent in batches under the
    // venue's 5 messages a second, then all again after the connection is reset.
    let sim = start_synthetic(100_000, "rst:8000#0", 16, 10_000.0);
    sim.exchange.release();
    let addr = sim.exchange.local_addr();
    let symbols: Vec<String> = (0..500)
        .map(|i| {
            if i == 0 {
                "BTCUSDT".to_owned()
            } else {
                format!("X{i}USDT")
            }
        })
        .collect();
    let mut spec = pinion_feed::live::LiveSpec::new(
        pinion_core::Venue::BinanceSpot,
        &format!("wss://localhost:{}/stream", addr.port()),
        &format!("https://localhost:{}", addr.port()),
        symbols.clone(),
        vec!["depth@100ms".to_owned(), "trade".to_owned()],
    );
    spec.reconnect_base = Duration::from_millis(20);
    spec.stream_stale_after = Duration::ZERO;
    let tls = pipeline::trust(Some(&sim.cert)).expect("trust");
    let ids: Vec<pinion_core::InstrumentId> = (0..symbols.len())
        .map(|i| pinion_core::InstrumentId(i as u16))
        .collect();
    let requests = Arc::new(pinion_feed::live::SnapshotRequests::new(ids.len()));
    let mut source = pinion_feed::live::LiveSource::new(
        spec,
        pinion_net::wss::WssSettings::new(tls),
        Box::new(Offline),
        &ids,
        requests,
    )
    .expect("source");
    let counters = source.counters();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut frames = 0u64;
    while Instant::now() < deadline {
        match pinion_feed::FrameSource::next_record(&mut source) {
            Ok(Some(r)) if r.kind == pinion_core::RecordKind::Frame => frames += 1,
            Ok(_) => std::thread::sleep(Duration::from_micros(200)),
            Err(e) => panic!("live source: {e}"),
        }
        let c = &counters.conns[0];
        if c.opens.load(Ordering::Relaxed) == 2 && c.subscribes.load(Ordering::Relaxed) == 10 {
            // Give the last acks a moment to arrive.
            let settle = Instant::now() + Duration::from_millis(500);
            while Instant::now() < settle {
                let _ = pinion_feed::FrameSource::next_record(&mut source);
            }
            break;
        }
    }
    let c = &counters.conns[0];
    let stats = sim.exchange.stats();
    assert_eq!(
        c.opens.load(Ordering::Relaxed),
        2,
        "reset once and reopened"
    );
    assert_eq!(
        c.subscribes.load(Ordering::Relaxed),
        10,
        "5 batches of 200, twice"
    );
    assert_eq!(c.ack_timeouts.load(Ordering::Relaxed), 0);
    assert_eq!(c.refused.load(Ordering::Relaxed), 0);
    assert_eq!(stats.message_rate_closes, 0, "never over the venue's limit");
    assert_eq!(stats.control_errors, 0);
    assert!(frames > 0);
}

#[test]
fn a_recorded_live_session_replays_to_the_same_books() {
    // A session with a gap and a reconnect in it, recorded to .pnr, then replayed from the file
    // through the same pipeline: the same records, so the same books.
    let sim = start_synthetic(
        30_000,
        "drop:btcusdt@depth@100ms:100,rst:6000#0",
        17,
        20_000.0,
    );
    let dir = TempDir::new("record");
    let pnr = dir.0.join("session.pnr");
    let config = live_config(
        sim.exchange.local_addr(),
        &sim.cert,
        &format!("record = \"{}\"", pnr.display()),
    );
    let live = run_session(&sim, &config, Duration::from_millis(1500));
    let live_books = pipeline::final_books(&live);
    assert_equal_to_truth(&live_books, &sim.exchange.truth("BTCUSDT").expect("truth"));
    assert!(
        live.input.notes.iter().any(|n| n.starts_with("recorded ")),
        "{:?}",
        live.input.notes
    );

    let replay = format!(
        "[input]\nsource = \"{}\"\n[pacing]\nmode = \"max\"\n[runtime]\nprogress = false\n",
        pnr.display()
    );
    let settings = Config::parse_with(&replay, "replay-test.toml", &Overrides::default())
        .expect("parses")
        .validate("replay-test.toml")
        .expect("valid");
    let replayed = pipeline::run(&settings, Arc::new(AtomicBool::new(false)), Console::QUIET)
        .expect("replay ran");
    let replayed_books = pipeline::final_books(&replayed);
    assert_eq!(
        replayed_books, live_books,
        "the replay ends where the session ended"
    );
    assert_eq!(
        replayed.books[0].counters.gaps, live.books[0].counters.gaps,
        "the same gap, at the same place"
    );
    assert_eq!(
        replayed.books[0].counters.resyncs,
        live.books[0].counters.resyncs
    );
}

#[test]
fn reading_live_frames_allocates_only_per_tls_record() {
    // The simulator writes back to back, so TLS records carry many frames: an allocation per
    // frame anywhere on the read path would show as one or more per frame.
    let sim = start_sim_tuned(
        "",
        18,
        1.0,
        |c| {
            c.pacing = LivePacing::AsFastAsPossible;
            // Released as fast as the simulator can, the frames outrun a reader the host
            // descheduled; a queue that holds all of them keeps the session from being dropped
            // as a slow consumer, which would end the market before every frame was read.
            c.session_queue = 250_000;
        },
        || {
            let market = pinion_feed::synth::SynthMarket::new(pinion_feed::synth::SynthConfig {
                seed: 18,
                messages: 200_000,
                ..pinion_feed::synth::SynthConfig::default()
            })
            .map_err(|e| pinion_feed::SourceError::Io(std::io::Error::other(e.to_string())))?;
            Ok(Box::new(market) as Box<dyn pinion_feed::FrameSource + Send>)
        },
    );
    let addr = sim.exchange.local_addr();
    let mut spec = pinion_feed::live::LiveSpec::new(
        pinion_core::Venue::BinanceSpot,
        &format!("wss://localhost:{}/stream", addr.port()),
        &format!("https://localhost:{}", addr.port()),
        vec!["BTCUSDT".to_owned()],
        vec![
            "depth@100ms".to_owned(),
            "bookTicker".to_owned(),
            "trade".to_owned(),
        ],
    );
    spec.stream_stale_after = Duration::ZERO;
    let tls = pipeline::trust(Some(&sim.cert)).expect("trust");
    let requests = Arc::new(pinion_feed::live::SnapshotRequests::new(1));
    let mut source = pinion_feed::live::LiveSource::new(
        spec,
        pinion_net::wss::WssSettings::new(tls),
        Box::new(Offline),
        &[pinion_core::InstrumentId(0)],
        requests,
    )
    .expect("source");
    const WARM_UP: u64 = 20_000;
    const MEASURED: u64 = 100_000;
    let mut frames = 0u64;
    let mut bytes = 0u64;
    let mut at_warm = 0;
    let mut released = false;
    let deadline = Instant::now() + Duration::from_secs(180);
    while frames < WARM_UP + MEASURED && Instant::now() < deadline {
        if !released && sim.exchange.stats().control_requests > 0 {
            sim.exchange.release();
            released = true;
        }
        match pinion_feed::FrameSource::next_record(&mut source) {
            Ok(Some(r)) if r.kind == pinion_core::RecordKind::Frame => {
                frames += 1;
                if frames > WARM_UP {
                    bytes += r.payload.len() as u64;
                }
                if frames == WARM_UP {
                    at_warm = thread_allocations();
                }
            }
            Ok(_) => {}
            Err(e) => panic!("live source: {e}"),
        }
    }
    let allocations = thread_allocations() - at_warm;
    assert_eq!(
        frames,
        WARM_UP + MEASURED,
        "every frame came (simulator: {:?})",
        sim.exchange.stats()
    );
    // rustls copies each TLS record it decrypts (up to 16 KiB of frames) into a new buffer:
    // that, and nothing per frame, is what may allocate.
    let records_at_least = bytes / 16_384;
    let per_frame = allocations as f64 / MEASURED as f64;
    eprintln!(
        "{allocations} allocations over {MEASURED} frames ({per_frame:.4} a frame), {bytes} bytes: at least {records_at_least} TLS records"
    );
    assert!(
        per_frame < 0.2,
        "{per_frame:.4} allocations a frame: something on the read path allocates per frame"
    );
}

#[test]
fn redundant_feeds_fill_each_others_gaps() {
    // Two connections to the simulator, each losing its own depth diffs: the first every
    // 100th, the second every 100th from the 150th, and both the 500th. Merged by update id,
    // the book sees exactly one gap: the diff both lost.
    let stream = "btcusdt@depth@100ms";
    let mut faults: Vec<String> = (1..=10)
        .map(|k| format!("drop:{stream}:{}#0", k * 100))
        .collect();
    faults.extend((1..=9).map(|k| format!("drop:{stream}:{}#1", k * 100 + 50)));
    faults.push(format!("drop:{stream}:500#1"));
    let sim = start_synthetic(40_000, &faults.join(","), 19, 20_000.0);
    let port = sim.exchange.local_addr().port();
    let config = live_config(
        sim.exchange.local_addr(),
        &sim.cert,
        &format!("redundant_ws_url = \"wss://localhost:{port}/stream\"\n{LOADED_HOST_GAP_HOLD}"),
    );
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    let live = report.input.live.as_ref().expect("live counters");
    assert_eq!(sim.exchange.stats().fault_drops, 20);
    let book = &report.books[0];
    assert_eq!(
        book.counters.gaps, 1,
        "only the diff both feeds lost: {:?}",
        book.counters
    );
    assert_eq!(live.gaps_unfilled.load(Ordering::Relaxed), 1);
    for c in &live.conns {
        assert!(
            c.first_arrivals.load(Ordering::Relaxed) > 0,
            "each feed won some"
        );
        assert!(c.duplicates.load(Ordering::Relaxed) > 0, "and lost some");
    }
}

#[test]
fn a_redundant_feed_lost_costs_the_books_nothing() {
    let sim = start_synthetic(40_000, "rst:3000#0", 20, 20_000.0);
    let port = sim.exchange.local_addr().port();
    let config = live_config(
        sim.exchange.local_addr(),
        &sim.cert,
        &format!("redundant_ws_url = \"wss://localhost:{port}/stream\"\n{LOADED_HOST_GAP_HOLD}"),
    );
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    let live = report.input.live.as_ref().expect("live counters");
    let lost: u64 = live
        .conns
        .iter()
        .map(|c| c.reconnects.load(Ordering::Relaxed))
        .sum();
    assert_eq!(lost, 1, "one feed was reset");
    let book = &report.books[0];
    assert_eq!(
        book.counters.resyncs, 0,
        "the other feed carried the book: {:?}",
        book.counters
    );
    assert_eq!(
        counter(&report, "book", "lost_sync"),
        0,
        "the book never lost sync"
    );
}

#[test]
fn a_session_on_the_real_spot_recording_ends_equal_to_the_venue() {
    let Some(path) = pinion_testkit::data::require(SPOT) else {
        return;
    };
    let sim = start_sim(&path, "drop:btcusdt@depth@100ms:1500", 21, 20_000.0);
    // The whole book: snapshots of 5,000 levels reach past the recording's deepest level.
    let config = live_config(
        sim.exchange.local_addr(),
        &sim.cert,
        "snapshot_limit = 5000",
    );
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_eq!(
        truth.last_update_id, 50_093_421_584,
        "the recording's own final book"
    );
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    let book = &report.books[0];
    assert_eq!(book.counters.gaps, 1, "the dropped diff, and only it");
    assert_eq!(counter(&report, "feed", "decode_errors"), 0);
}

#[test]
fn a_session_on_the_real_usdm_recording_follows_the_pu_chain() {
    let Some(path) = pinion_testkit::data::require(USDM) else {
        return;
    };
    let path2 = path.clone();
    let sim = start_sim_tuned(
        "rst:20000#0",
        22,
        20_000.0,
        |c| {
            let pacing = c.pacing;
            let ping = c.ping_interval;
            let held = c.start_held;
            *c = LiveConfig::usdm();
            c.pacing = pacing;
            c.ping_interval = ping;
            c.start_held = held;
        },
        move || pinion_feed::source::open(&path2),
    );
    let config = live_config(sim.exchange.local_addr(), &sim.cert, "")
        // The recording carries the unbatched depth stream, `@depth@0ms`.
        .replace("venue = \"binance-spot\"", "venue = \"binance-usdm\"")
        .replace(
            "streams = [\"depth@100ms\", \"bookTicker\", \"trade\"]",
            "streams = [\"depth@0ms\", \"bookTicker\"]",
        )
        .replace("tick_size = \"0.01\"", "tick_size = \"0.10\"")
        .replace(
            "step_size = \"0.00001\"\nqty_decimals = 8",
            "step_size = \"0.001\"",
        );
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    // Futures snapshots stop at 1,000 levels: the best 200 a side are exact.
    assert_top_equal_to_truth(&pipeline::final_books(&report), &truth, 200);
    let c = &report.input.live.as_ref().expect("live counters").conns[0];
    assert_eq!(c.reconnects.load(Ordering::Relaxed), 1, "the reset");
    assert_eq!(counter(&report, "feed", "decode_errors"), 0);
}

const BYBIT: &str = "bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst";

#[test]
fn a_bybit_session_on_the_real_recording_ends_equal_to_the_venue() {
    let Some(path) = pinion_testkit::data::require(BYBIT) else {
        return;
    };
    let sim = start_sim(&path, "", 23, 20_000.0);
    let port = sim.exchange.local_addr().port();
    let config = live_config(sim.exchange.local_addr(), &sim.cert, "")
        .replace("venue = \"binance-spot\"", "venue = \"bybit-linear\"")
        .replace(
            &format!("wss://localhost:{port}/stream"),
            &format!("wss://localhost:{port}/v5/public/linear"),
        )
        .replace(
            "streams = [\"depth@100ms\", \"bookTicker\", \"trade\"]",
            "streams = [\"orderbook.200\", \"publicTrade\"]",
        )
        .replace("tick_size = \"0.01\"", "tick_size = \"0.10\"")
        .replace(
            "step_size = \"0.00001\"\nqty_decimals = 8",
            "step_size = \"0.001\"",
        );
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let mut truth = sim.exchange.truth("linear:BTCUSDT").expect("truth");
    truth.symbol = "BTCUSDT".to_owned();
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    let c = &report.input.live.as_ref().expect("live counters").conns[0];
    assert_eq!(c.refused.load(Ordering::Relaxed), 0);
    assert_eq!(counter(&report, "feed", "decode_errors"), 0);
}

#[test]
fn duplicated_and_reordered_frames_leave_the_book_exact() {
    // A diff sent twice is applied once; two diffs swapped are a gap the book resyncs from.
    let stream = "btcusdt@depth@100ms";
    let sim = start_synthetic(
        30_000,
        &format!("dup:{stream}:150,dup:btcusdt@trade:400,swap:{stream}:900"),
        24,
        20_000.0,
    );
    let config = live_config(
        sim.exchange.local_addr(),
        &sim.cert,
        // Also every socket option, read back after connect.
        "busy_poll_us = 50\nrecv_buffer = 262144\nsend_buffer = 65536\nquickack = true",
    );
    let report = run_session(&sim, &config, Duration::from_millis(1500));
    let truth = sim.exchange.truth("BTCUSDT").expect("truth");
    assert_equal_to_truth(&pipeline::final_books(&report), &truth);
    let stats = sim.exchange.stats();
    assert_eq!(stats.fault_duplicates, 2);
    assert_eq!(stats.fault_swaps, 1);
    let book = &report.books[0];
    assert!(
        book.counters.duplicates >= 1,
        "the copy was seen as one: {:?}",
        book.counters
    );
    assert!(
        book.counters.gaps >= 1,
        "the swap was a gap: {:?}",
        book.counters
    );
}
