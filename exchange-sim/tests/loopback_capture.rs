//! The exchange simulator's market-stream server against the real Binance Spot recording, over
//! loopback, and a real packet capture of that traffic replayed through the pcap source.
//!
//! - `client_receives_every_frame_of_the_recording`: a WebSocket client gets exactly the
//!   recording's frames, in order, then `serverShutdown` and a 1001 close; the REST snapshot it
//!   fetches is the recorded one. Needs no capture tool.
//! - `stream_selection_filters_real_frames`: a combined session asking for one stream and a raw
//!   session get exactly that stream's frames (counts from `shared/data/README.md`).
//! - `unanswered_pings_end_the_session`: a client that never answers pings is dropped with 1008.
//! - `loopback_capture_replays_to_the_same_frames_and_book`: `tcpdump` records the session on
//!   `lo`; the capture, read back with `PcapSource`, yields the same frames byte for byte, and
//!   decoding them into a synced book gives the same final book as the recording itself. Skips
//!   when `tcpdump` is missing or cannot capture (fails in CI when it is missing).
//! - `tls_client_receives_every_frame_and_the_snapshot`: the same over real TLS (`wss://`,
//!   `https://`) with a self-signed certificate the client trusts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pinion_book::{BookLevels, BookSync, SyncConfig, SyncState};
use pinion_core::{ConnId, InstrumentSpec, Instruments, RawRecord, RecordKind, Side, Venue};
use pinion_exchange_sim::{FeedConfig, FeedServer, Pacing};
use pinion_feed::FrameSource;
use pinion_feed::parse::{ConnCtx, Decoder};
use pinion_feed::source::pcap::{CaptureFilter, PcapConfig, PcapSource};
use pinion_feed::synth::{SynthConfig, SynthMarket};
use pinion_net::http::{self, HeadRules};
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";
/// The recording's streams, as a client subscribes to them.
const STREAMS: &str = "btcusdt@depth@100ms/btcusdt@bookTicker/btcusdt@trade";
/// Message counts of the recording (`shared/data/README.md`).
const DEPTH_MESSAGES: usize = 3_451;
const TICKER_MESSAGES: usize = 28_040;
const TRADE_MESSAGES: usize = 9_757;
const SHUTDOWN_PREFIX: &[u8] = br#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":"#;

/// The recording's frames and its REST snapshot, read directly.
struct Recorded {
    frames: Vec<Vec<u8>>,
    snapshot: Vec<u8>,
}

fn read_recording(path: &Path) -> Recorded {
    let mut source = pinion_feed::source::open(path).expect("open recording");
    let mut frames = Vec::new();
    let mut snapshot = Vec::new();
    while let Some(rec) = source.next_record().expect("read recording") {
        match rec.kind {
            RecordKind::Frame => frames.push(rec.payload.to_vec()),
            RecordKind::RestSnapshot => snapshot = rec.payload.to_vec(),
            _ => {}
        }
    }
    assert_eq!(
        frames.len(),
        DEPTH_MESSAGES + TICKER_MESSAGES + TRADE_MESSAGES
    );
    Recorded { frames, snapshot }
}

fn serve_recording(path: &Path, config: FeedConfig) -> FeedServer {
    let path = path.to_path_buf();
    FeedServer::start("127.0.0.1:0".parse().expect("addr"), config, move || {
        pinion_feed::source::open(&path)
    })
    .expect("start the feed server")
}

/// [`serve_recording`] with pings every few ms, so the session also answers keep-alives while
/// it streams.
fn serve_pinging(path: &Path) -> FeedServer {
    serve_recording(
        path,
        FeedConfig {
            ping_interval: Some(Duration::from_millis(5)),
            pong_timeout: Duration::from_secs(10),
            ..FeedConfig::default()
        },
    )
}

/// A plain HTTP/1.1 GET; the status code, the `Content-Type` and the body.
fn http_get(addr: SocketAddr, target: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let (code, content_type, body) = split_response(&response);
    (code, content_type, body.to_vec())
}

/// A complete response's status code, `Content-Type` and body, checked against its
/// `Content-Length`.
fn split_response(response: &[u8]) -> (u16, String, &[u8]) {
    let head = http::parse_response(response, &HeadRules::strict(16 << 10))
        .expect("well-formed response head")
        .expect("complete response head");
    let body = &response[head.len..];
    let length = head
        .headers
        .get_str("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .expect("Content-Length");
    assert_eq!(body.len(), length, "body length");
    let content_type = head.headers.get_str("content-type").unwrap_or_default();
    (head.code, content_type.to_owned(), body)
}

/// What a client got from one session.
struct Session {
    frames: Vec<Vec<u8>>,
    close_code: Option<CloseCode>,
    snapshot: Vec<u8>,
}

/// Opens `target`, fetches the BTCUSDT snapshot over REST while the stream buffers (the order
/// Binance prescribes), then reads until the server closes.
fn receive_all(addr: SocketAddr, target: &str) -> Session {
    let (mut ws, response) =
        tungstenite::connect(format!("ws://{addr}{target}")).expect("websocket connect");
    assert_eq!(response.status().as_u16(), 101);
    let (status, content_type, snapshot) =
        http_get(addr, "/api/v3/depth?symbol=BTCUSDT&limit=1000");
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json;charset=UTF-8");
    let mut frames = Vec::new();
    let mut close_code = None;
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => frames.push(text.as_bytes().to_vec()),
            Ok(Message::Binary(bytes)) => frames.push(bytes.to_vec()),
            Ok(Message::Close(frame)) => close_code = frame.map(|f| f.code),
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("client read failed: {e}"),
        }
    }
    Session {
        frames,
        close_code,
        snapshot,
    }
}

/// Checks a session's frames: the recording's, in order, then the shutdown notice.
fn assert_same_frames(got: &[Vec<u8>], recorded: &[Vec<u8>], what: &str) {
    assert_eq!(got.len(), recorded.len() + 1, "{what}: frame count");
    for (i, (g, r)) in got.iter().zip(recorded).enumerate() {
        assert!(
            g == r,
            "{what}: frame {i} differs:\n got {}\nwant {}",
            String::from_utf8_lossy(g),
            String::from_utf8_lossy(r)
        );
    }
    let last = got.last().expect("shutdown notice");
    assert!(
        last.starts_with(SHUTDOWN_PREFIX),
        "{what}: last frame is not serverShutdown: {}",
        String::from_utf8_lossy(last)
    );
}

#[test]
fn client_receives_every_frame_of_the_recording() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let recorded = read_recording(&path);
    let server = serve_pinging(&path);
    assert_eq!(server.snapshot_count(), 1);
    let session = receive_all(server.local_addr(), &format!("/stream?streams={STREAMS}"));
    assert_same_frames(&session.frames, &recorded.frames, "websocket client");
    assert_eq!(session.close_code, Some(CloseCode::Away));
    assert_eq!(session.snapshot, recorded.snapshot);

    // Unknown symbols and paths are answered with Binance-style errors.
    let (status, _, body) = http_get(server.local_addr(), "/api/v3/depth");
    assert_eq!(status, 400);
    assert!(body.starts_with(br#"{"code":-1102"#));
    let (status, _, _) = http_get(server.local_addr(), "/api/v3/ticker");
    assert_eq!(status, 404);

    let stats = server.stats();
    server.shutdown();
    assert_eq!(stats.sessions, 1);
    assert_eq!(stats.sessions_completed, 1);
    assert_eq!(stats.frames_sent, recorded.frames.len() as u64);
    assert_eq!(stats.snapshots_served, 1);
    assert_eq!(stats.bad_requests, 2);
    assert_eq!(stats.pong_timeouts, 0);
    assert_eq!(stats.source_errors, 0);
}

#[test]
fn stream_selection_filters_real_frames() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let recorded = read_recording(&path);
    let trades: Vec<&Vec<u8>> = recorded
        .frames
        .iter()
        .filter(|f| f.starts_with(br#"{"stream":"btcusdt@trade","#))
        .collect();
    assert_eq!(trades.len(), TRADE_MESSAGES);
    let server = serve_recording(&path, FeedConfig::default());

    let combined = receive_all(
        server.local_addr(),
        "/stream?streams=btcusdt%40trade/ethusdt@trade",
    );
    assert_eq!(combined.frames.len(), TRADE_MESSAGES + 1);
    assert!(combined.frames.iter().zip(&trades).all(|(g, r)| g == *r));

    let raw = receive_all(server.local_addr(), "/ws/btcusdt@trade");
    assert_eq!(raw.frames.len(), TRADE_MESSAGES + 1);
    for (g, r) in raw.frames.iter().zip(&trades) {
        // The raw payload is the envelope's `data`.
        let data = &r[br#"{"stream":"btcusdt@trade","data":"#.len()..r.len() - 1];
        assert_eq!(g.as_slice(), data);
    }
    assert!(
        raw.frames
            .last()
            .is_some_and(|f| f.starts_with(br#"{"e":"serverShutdown","E":"#))
    );
    server.shutdown();
}

#[test]
fn unanswered_pings_end_the_session() {
    let synth = SynthConfig {
        messages: 1_000_000,
        mean_interval_ns: 1_000_000,
        ..SynthConfig::default()
    };
    let config = FeedConfig {
        pacing: Pacing::Recorded { speed: 1.0 },
        ping_interval: Some(Duration::from_millis(50)),
        pong_timeout: Duration::from_millis(200),
        ..FeedConfig::default()
    };
    let server = FeedServer::start("127.0.0.1:0".parse().expect("addr"), config, move || {
        let market = SynthMarket::new(synth.clone()).expect("synthetic config");
        Ok(Box::new(market) as Box<dyn FrameSource + Send>)
    })
    .expect("start");
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/stream", server.local_addr()))
        .expect("websocket connect");
    // Not reading means not answering pings (tungstenite answers them inside `read`).
    std::thread::sleep(Duration::from_millis(800));
    let mut frames = 0usize;
    let mut close_code = None;
    loop {
        match ws.read() {
            Ok(Message::Text(_)) => frames += 1,
            Ok(Message::Close(frame)) => close_code = frame.map(|f| f.code),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let stats = server.stats();
    server.shutdown();
    assert_eq!(close_code, Some(CloseCode::Policy));
    assert_eq!(stats.pong_timeouts, 1);
    assert!(stats.pings_sent >= 1);
    // Paced at ~1,000 frames/s, the session lasted well under a second, not the whole market.
    assert!(frames > 10 && frames < 5_000, "{frames} frames");
}

// ---- the capture ----

/// How far back a packet's time in a classic pcap file falls behind the latest time of the
/// packets before it, at most (0 for a capture whose times never step back).
fn capture_clock_step_back(file: &Path) -> u64 {
    let bytes = std::fs::read(file).expect("read capture");
    let header = bytes.first_chunk::<24>().expect("pcap header");
    let word = |b: &[u8], big: bool| {
        let w: [u8; 4] = b.try_into().expect("4 bytes");
        if big {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    };
    let (big, ns_per_unit) = match (word(&header[..4], false), word(&header[..4], true)) {
        (0xa1b2_c3d4, _) => (false, 1_000),
        (0xa1b2_3c4d, _) => (false, 1),
        (_, 0xa1b2_c3d4) => (true, 1_000),
        (_, 0xa1b2_3c4d) => (true, 1),
        _ => panic!("{} is not a classic pcap file", file.display()),
    };
    let (mut at, mut latest, mut back) = (24, 0u64, 0u64);
    while let Some(rec) = bytes.get(at..at + 16) {
        let t = u64::from(word(&rec[..4], big)) * 1_000_000_000
            + u64::from(word(&rec[4..8], big)) * ns_per_unit;
        back = back.max(latest.saturating_sub(t));
        latest = latest.max(t);
        at += 16 + word(&rec[8..12], big) as usize;
    }
    back
}

/// `tcpdump` on PATH, if any.
fn find_tcpdump() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("tcpdump"))
        .find(|p| p.is_file())
}

/// A running `tcpdump` writing a capture of one TCP port on `lo`.
struct Capture {
    child: Child,
    stderr: mpsc::Receiver<String>,
    file: PathBuf,
}

impl Capture {
    /// Starts the capture and waits until tcpdump says it is listening; `Err` with its words when
    /// it cannot capture (not root, no `lo`).
    fn start(tcpdump: &Path, port: u16, file: &Path) -> Result<Capture, String> {
        let mut child = Command::new(tcpdump)
            // Immediate mode: without it libpcap holds packets in its ring until a block fills or
            // times out, and a SIGINT then loses the tail of the session.
            .args([
                "-i",
                "lo",
                "--immediate-mode",
                "-U",
                "-n",
                "-s",
                "0",
                "-B",
                "16384",
            ])
            .arg("-w")
            .arg(file)
            .args(["tcp", "port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", tcpdump.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut said = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains("listening on") => {
                    return Ok(Capture {
                        child,
                        stderr: rx,
                        file: file.to_path_buf(),
                    });
                }
                Ok(line) => said.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(said.join(" / "));
                }
            }
        }
    }

    /// Waits until the capture file stops growing, stops tcpdump with SIGINT and returns the
    /// number of packets it says the kernel dropped.
    fn stop(mut self) -> u64 {
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = size(&self.file);
        let mut stable_since = Instant::now();
        while Instant::now() < deadline && stable_since.elapsed() < Duration::from_millis(500) {
            std::thread::sleep(Duration::from_millis(50));
            let now = size(&self.file);
            if now != last {
                last = now;
                stable_since = Instant::now();
            }
        }
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -INT tcpdump failed");
        let exit = self.child.wait().expect("wait for tcpdump");
        assert!(exit.success(), "tcpdump exited with {exit}");
        let said: Vec<String> = self.stderr.try_iter().collect();
        said.iter()
            .find_map(|l| {
                l.strip_suffix(" packets dropped by kernel")
                    .and_then(|n| n.trim().parse().ok())
            })
            .expect("tcpdump's drop count")
    }
}

/// Decodes records into a BTCUSDT book the way the engine does.
struct BookReplay {
    decoder: Decoder,
    ctx: ConnCtx,
    sync: BookSync,
}

impl BookReplay {
    fn new() -> BookReplay {
        // BTC's asset precision (8 decimals): the recording has quantities finer than the lot.
        let spec =
            InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00000001").expect("spec");
        let mut instruments = Instruments::new();
        let id = instruments.add(spec.clone()).expect("register");
        BookReplay {
            decoder: Decoder::new(instruments),
            // Snapshots arrive without a request URL: the connection names the instrument.
            ctx: ConnCtx {
                venue: Venue::BinanceSpot,
                default_instrument: Some(id),
            },
            sync: BookSync::new(&spec, id, SyncConfig::default()).expect("book"),
        }
    }

    fn feed(&mut self, kind: RecordKind, t_recv: u64, payload: &[u8]) {
        let rec = RawRecord {
            t_recv,
            conn: ConnId(0),
            kind,
            meta: b"",
            payload,
        };
        let sync = &mut self.sync;
        self.decoder
            .decode(&self.ctx, &rec, t_recv, |e| {
                sync.on_event(e);
            })
            .expect("decode");
    }

    fn levels(&self, side: Side) -> Vec<pinion_core::Level> {
        self.sync.book().levels(side).collect()
    }
}

#[test]
fn loopback_capture_replays_to_the_same_frames_and_book() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let Some(tcpdump) = find_tcpdump() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but tcpdump is not installed (apt-get install tcpdump)"
        );
        eprintln!("skipping: tcpdump not found on PATH, no loopback capture");
        return;
    };
    let recorded = read_recording(&path);
    // A capture the kernel dropped packets from (its buffer overran while the host was busy)
    // is incomplete through no fault of the code under test: it is taken again, a few times.
    let mut attempts = 0;
    let (session, file, port) = loop {
        attempts += 1;
        let server = serve_pinging(&path);
        let port = server.local_addr().port();
        // In the shared temp dir: tcpdump drops root and writes as its own user.
        let file = std::env::temp_dir().join(format!(
            "pinion-loopback-{}-{port}.pcap",
            std::process::id()
        ));
        let capture = match Capture::start(&tcpdump, port, &file) {
            Ok(capture) => capture,
            Err(why) => {
                eprintln!("skipping: tcpdump cannot capture on lo ({why})");
                return;
            }
        };
        let session = receive_all(server.local_addr(), &format!("/stream?streams={STREAMS}"));
        let dropped = capture.stop();
        server.shutdown();
        if dropped == 0 {
            break (session, file, port);
        }
        let _ = std::fs::remove_file(&file);
        assert!(
            attempts < 3,
            "the kernel dropped packets in {attempts} captures in a row: {dropped} the last time"
        );
        eprintln!("the kernel dropped {dropped} packets: capturing again");
    };
    assert_same_frames(&session.frames, &recorded.frames, "websocket client");

    // Replay the capture: the server's direction of the one upgraded connection.
    let config = PcapConfig {
        filter: CaptureFilter {
            ports: vec![port],
            ..CaptureFilter::default()
        },
        ..PcapConfig::default()
    };
    let mut pcap = PcapSource::open(&file, config).expect("open capture");
    let mut replayed: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut connects = 0;
    let mut snapshots: Vec<(u64, String, Vec<u8>)> = Vec::new();
    while let Some(rec) = pcap.next_record().expect("read capture") {
        match rec.kind {
            RecordKind::Frame => replayed.push((rec.t_recv, rec.payload.to_vec())),
            RecordKind::Connect => connects += 1,
            RecordKind::RestSnapshot => snapshots.push((
                rec.t_recv,
                String::from_utf8_lossy(rec.meta).into_owned(),
                rec.payload.to_vec(),
            )),
            _ => {}
        }
    }
    let stats = *pcap.stats();
    eprintln!("pcap replay of {}: {stats:?}", file.display());
    let clock_back = capture_clock_step_back(&file);
    if std::env::var_os("PINION_KEEP_CAPTURE").is_none() {
        let _ = std::fs::remove_file(&file);
    }
    assert_eq!(connects, 1);
    assert_eq!(stats.upgrades, 1);
    // The REST connection is read as REST: its snapshot is a record, with its request's URL.
    assert_eq!(
        (stats.unusable, stats.http_connections, stats.http_responses),
        (0, 1, 1)
    );
    assert_eq!(snapshots.len(), 1);
    let (snapshot_t, snapshot_url, snapshot) = &snapshots[0];
    assert!(
        snapshot_url.ends_with("/api/v3/depth?symbol=BTCUSDT&limit=1000"),
        "{snapshot_url}"
    );
    assert_eq!(snapshot, &session.snapshot);
    assert_eq!((stats.gaps, stats.bad_frames, stats.truncated), (0, 0, 0));
    assert!(
        stats.control_frames > 0,
        "pings, pongs and the close were captured"
    );
    let replayed_frames: Vec<Vec<u8>> = replayed.iter().map(|(_, f)| f.clone()).collect();
    assert_same_frames(&replayed_frames, &recorded.frames, "pcap replay");
    // Frames carry the time of the packet that completed them, in capture order. Those times
    // only ever step back as far as the capture's own packet times do: on a multi-core host
    // the kernel stamps packets on whichever core handles them, and a capture file may hold a
    // packet stamped a few microseconds before the one ahead of it.
    assert!(
        replayed.windows(2).all(|w| w[1].0 + clock_back >= w[0].0),
        "frame times step back by more than the capture's own ({clock_back} ns)"
    );

    // The recording's book and the capture's book.
    let mut from_recording = BookReplay::new();
    let mut source = pinion_feed::source::open(&path).expect("open recording");
    while let Some(rec) = source.next_record().expect("read recording") {
        from_recording.feed(rec.kind, rec.t_recv, rec.payload);
    }
    // The capture alone, in capture order: the snapshot arrives while the stream buffers.
    let mut from_capture = BookReplay::new();
    let mut snapshot_fed = false;
    for (t, frame) in &replayed {
        if !snapshot_fed && *t >= *snapshot_t {
            from_capture.feed(RecordKind::RestSnapshot, *snapshot_t, snapshot);
            snapshot_fed = true;
        }
        from_capture.feed(RecordKind::Frame, *t, frame);
    }
    if !snapshot_fed {
        from_capture.feed(RecordKind::RestSnapshot, *snapshot_t, snapshot);
    }

    for replay in [&from_recording, &from_capture] {
        assert_eq!(replay.sync.state(), SyncState::Live);
        assert_eq!(replay.sync.counters().gaps, 0);
        assert_eq!(replay.sync.counters().snapshots, 1);
        let m = replay.decoder.stats().messages;
        assert_eq!(
            (m.depth, m.book_ticker, m.trade, m.snapshot),
            (
                DEPTH_MESSAGES as u64,
                TICKER_MESSAGES as u64,
                TRADE_MESSAGES as u64,
                1
            )
        );
    }
    assert_eq!(
        from_recording.sync.last_update_id(),
        from_capture.sync.last_update_id()
    );
    for side in [Side::Bid, Side::Ask] {
        let want = from_recording.levels(side);
        assert!(want.len() > 100, "{side:?}: a real book has depth");
        assert_eq!(from_capture.levels(side), want, "{side:?} levels differ");
    }
}

// ---- TLS ----

/// A rustls client trusting only the simulator's self-signed certificate.
fn tls_client(
    tls: &pinion_exchange_sim::SelfSignedTls,
    addr: SocketAddr,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(tls.certificate.clone())
        .expect("trust the certificate");
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("server name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("client");
    rustls::StreamOwned::new(conn, TcpStream::connect(addr).expect("connect"))
}

#[test]
fn tls_client_receives_every_frame_and_the_snapshot() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let recorded = read_recording(&path);
    let tls = pinion_exchange_sim::SelfSignedTls::generate(&["localhost", "127.0.0.1"])
        .expect("certificate");
    let server = {
        let path = path.clone();
        FeedServer::start_tls(
            "127.0.0.1:0".parse().expect("addr"),
            FeedConfig::default(),
            std::sync::Arc::clone(&tls.server_config),
            move || pinion_feed::source::open(&path),
        )
        .expect("start the TLS feed server")
    };
    let addr = server.local_addr();

    let stream = tls_client(&tls, addr);
    let (mut ws, response) = tungstenite::client(
        format!("wss://localhost:{}/stream?streams={STREAMS}", addr.port()),
        stream,
    )
    .expect("wss handshake");
    assert_eq!(response.status().as_u16(), 101);

    let mut rest = tls_client(&tls, addr);
    write!(
        rest,
        "GET /api/v3/depth?symbol=BTCUSDT HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = Vec::new();
    rest.read_to_end(&mut response)
        .expect("https response ends cleanly");
    let (status, _, body) = split_response(&response);
    assert_eq!(status, 200);
    assert_eq!(body, recorded.snapshot.as_slice());

    let mut frames = Vec::new();
    let mut close_code = None;
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => frames.push(text.as_bytes().to_vec()),
            Ok(Message::Close(frame)) => close_code = frame.map(|f| f.code),
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("wss read failed: {e}"),
        }
    }
    assert_same_frames(&frames, &recorded.frames, "wss client");
    assert_eq!(close_code, Some(CloseCode::Away));

    // A plaintext client is not served by a TLS listener.
    let mut plain = TcpStream::connect(addr).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = plain.write_all(b"GET /api/v3/depth?symbol=BTCUSDT HTTP/1.1\r\n\r\n");
    let mut answer = Vec::new();
    let asked = Instant::now();
    let _ = plain.read_to_end(&mut answer);
    assert!(answer.is_empty(), "a plaintext request got an answer");
    assert!(asked.elapsed() < Duration::from_secs(2), "dropped at once");

    let stats = server.stats();
    server.shutdown();
    assert_eq!((stats.sessions_completed, stats.snapshots_served), (1, 1));
    assert_eq!(stats.bad_requests, 1);
}
