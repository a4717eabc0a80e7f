//! pinion-net's WebSocket-over-TLS client (`pinion_net::wss`) against the exchange simulator's
//! TLS server on loopback, driven from a `mio` poll loop on the test's thread, as the feed
//! thread drives it.
//!
//! - `receives_every_frame_of_the_recording_in_order`: every frame of the real Binance Spot
//!   recording arrives, byte for byte and in order, with non-decreasing receive stamps, then
//!   `serverShutdown` and a 1001 close; `TCP_NODELAY` read back on; a subscription request goes
//!   out on the open connection.
//! - `untrusted_certificates_are_refused`: a server certificate not in the trust store, and
//!   one not valid for the host name, each fail as `CertificateNotTrusted`; no session opens.
//! - `pings_are_answered_with_their_payload`: the simulator pings every 20 ms and drops a
//!   client whose pong does not echo the latest ping within 1 s; the session runs to its end.
//! - `reconnect_resumes_the_tls_session`: a second connection from the same client config
//!   resumes the first one's TLS session (it also starts with a refused address and goes on to
//!   the next).
//! - `reading_allocates_per_tls_record_not_per_message`: the allocation count per received
//!   message after warm-up, measured with the counting allocator.
//! - `refused_upgrades_and_sends_before_open_are_errors`: an unknown path is
//!   `HandshakeStatus { 404 }`; sending before the connection is open is `NotOpen`.
//! - `the_client_can_close_first`: a close from the client is answered with its code and ends
//!   the connection cleanly mid-recording.
//! - `a_ping_is_answered_with_its_payload_at_once` (a scripted tungstenite server on a thread):
//!   20 pings, each echoed with its own payload within the poll turn that read it (about 20 µs
//!   on loopback); the server's close without a TLS close_notify after it is still a clean end.
//! - `a_connection_dropped_without_a_close_is_a_reset`: the message before the drop arrives,
//!   then the connection fails with `Reset`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinion_core::RecordKind;
use pinion_exchange_sim::{FeedConfig, FeedServer, Pacing, SelfSignedTls};
use pinion_feed::FrameSource;
use pinion_feed::synth::{SynthConfig, SynthMarket};
use pinion_net::mio::{Events, Poll, Token};
use pinion_net::rustls::{self, CertificateError, HandshakeKind, RootCertStore};
use pinion_net::wss::{
    self, Endpoint, Received, Status, WssConnection, WssError, WssSettings, WssStats,
};
use pinion_testkit::alloc::{CountingAlloc, thread_allocations};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";
/// The recording's streams, as a client subscribes to them.
const STREAMS: &str = "btcusdt@depth@100ms/btcusdt@bookTicker/btcusdt@trade";
/// Frames of the recording (`shared/data/README.md`: depth, bookTicker, trade).
const FRAMES: usize = 3_451 + 28_040 + 9_757;
const SHUTDOWN_PREFIX: &[u8] = br#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":"#;
/// Longest a test waits for a session.
const SESSION_DEADLINE: Duration = Duration::from_secs(120);
const TOKEN: Token = Token(7);

fn recorded_frames(path: &Path) -> Vec<Vec<u8>> {
    let mut source = pinion_feed::source::open(path).expect("open recording");
    let mut frames = Vec::new();
    while let Some(rec) = source.next_record().expect("read recording") {
        if rec.kind == RecordKind::Frame {
            frames.push(rec.payload.to_vec());
        }
    }
    assert_eq!(frames.len(), FRAMES);
    frames
}

fn serve_recording_tls(path: &Path, config: FeedConfig, tls: &SelfSignedTls) -> FeedServer {
    let path: PathBuf = path.to_path_buf();
    FeedServer::start_tls(
        "127.0.0.1:0".parse().expect("addr"),
        config,
        Arc::clone(&tls.server_config),
        move || pinion_feed::source::open(&path),
    )
    .expect("start the TLS feed server")
}

/// Client settings trusting only `tls`'s certificate.
fn trusting(tls: &SelfSignedTls) -> WssSettings {
    let mut roots = RootCertStore::empty();
    roots
        .add(tls.certificate.clone())
        .expect("trust the certificate");
    WssSettings::new(wss::client_config(roots).expect("client config"))
}

fn endpoint(host: &str, server: &FeedServer) -> Endpoint {
    Endpoint::parse(&format!(
        "wss://{host}:{}/stream?streams={STREAMS}",
        server.local_addr().port()
    ))
    .expect("endpoint")
}

/// Drives one connection from a poll loop until it closes or fails. `on_open` runs once when
/// it opens.
fn drive(
    endpoint: &Endpoint,
    settings: &WssSettings,
    on_open: impl FnMut(&mut WssConnection),
    on_message: impl FnMut(Received<'_>),
) -> (WssConnection, Result<Status, WssError>) {
    drive_to(endpoint, None, settings, on_open, on_message)
}

/// [`drive`], connecting to `addrs` when given instead of resolving the endpoint's host.
fn drive_to(
    endpoint: &Endpoint,
    addrs: Option<Vec<SocketAddr>>,
    settings: &WssSettings,
    mut on_open: impl FnMut(&mut WssConnection),
    mut on_message: impl FnMut(Received<'_>),
) -> (WssConnection, Result<Status, WssError>) {
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(16);
    let mut conn = match addrs {
        None => WssConnection::connect(endpoint, settings, poll.registry(), TOKEN),
        Some(addrs) => WssConnection::connect_to(endpoint, addrs, settings, poll.registry(), TOKEN),
    }
    .expect("connect");
    let deadline = Instant::now() + SESSION_DEADLINE;
    let mut opened = false;
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .expect("poll");
        for event in &events {
            match conn.poll_ready(event, &mut on_message) {
                Ok(Status::Connecting) => {}
                Ok(Status::Open) => {
                    if !opened {
                        opened = true;
                        on_open(&mut conn);
                    }
                }
                done => return (conn, done),
            }
        }
        assert!(Instant::now() < deadline, "the session did not end in time");
    }
}

#[test]
fn receives_every_frame_of_the_recording_in_order() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let recorded = recorded_frames(&path);
    let tls = SelfSignedTls::generate(&["localhost", "127.0.0.1"]).expect("certificate");
    let server = serve_recording_tls(&path, FeedConfig::default(), &tls);
    let mut got: Vec<Vec<u8>> = Vec::with_capacity(FRAMES + 1);
    let mut stamps: Vec<u64> = Vec::with_capacity(FRAMES + 1);
    let (conn, outcome) = drive(
        &endpoint("localhost", &server),
        &trusting(&tls),
        |conn| {
            assert!(conn.nodelay(), "TCP_NODELAY reads back on");
            conn.send_text(r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}"#)
                .expect("send a subscription");
        },
        |m| {
            assert!(!m.binary);
            got.push(m.payload.to_vec());
            stamps.push(m.t_recv_ns);
        },
    );
    let stats = server.stats();
    server.shutdown();
    assert_eq!(
        outcome.expect("clean end"),
        Status::Closed { code: Some(1001) }
    );
    assert!(conn.nodelay());
    assert_eq!(got.len(), FRAMES + 1, "frame count");
    for (i, (g, r)) in got.iter().zip(&recorded).enumerate() {
        assert!(
            g == r,
            "frame {i} differs:\n got {}\nwant {}",
            String::from_utf8_lossy(g),
            String::from_utf8_lossy(r)
        );
    }
    assert!(got[FRAMES].starts_with(SHUTDOWN_PREFIX));
    assert!(stamps[0] > 0);
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "stamps step back");
    let s: WssStats = conn.stats();
    assert_eq!(s.messages, FRAMES as u64 + 1);
    assert_eq!(
        s.payload_bytes,
        got.iter().map(|f| f.len() as u64).sum::<u64>()
    );
    assert!(s.socket_bytes > s.payload_bytes, "TLS and framing overhead");
    assert_eq!((stats.sessions, stats.sessions_completed), (1, 1));
    assert_eq!(stats.frames_sent, FRAMES as u64);
}

#[test]
fn untrusted_certificates_are_refused() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let served = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let server = serve_recording_tls(&path, FeedConfig::default(), &served);

    // Another certificate for the same name is trusted, not the server's.
    let stranger = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let (_, outcome) = drive(
        &endpoint("localhost", &server),
        &trusting(&stranger),
        |_| panic!("opened against an untrusted certificate"),
        |_| panic!("a message over an untrusted connection"),
    );
    match outcome {
        Err(WssError::CertificateNotTrusted { host, error }) => {
            assert_eq!(host, "localhost");
            // Both self-signed certificates carry the same issuer name, so the verifier finds
            // the trusted one as a candidate issuer and the signature check is what fails.
            assert!(
                matches!(
                    error,
                    CertificateError::UnknownIssuer | CertificateError::BadSignature
                ),
                "{error:?}"
            );
        }
        other => panic!("expected CertificateNotTrusted, got {other:?}"),
    }

    // The server's own certificate, but it does not name the host connected to.
    let (_, outcome) = drive(
        &endpoint("127.0.0.1", &server),
        &trusting(&served),
        |_| panic!("opened with a certificate for another name"),
        |_| panic!("a message over an untrusted connection"),
    );
    match outcome {
        Err(WssError::CertificateNotTrusted { host, error }) => {
            assert_eq!(host, "127.0.0.1");
            assert!(
                matches!(
                    error,
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                ),
                "{error:?}"
            );
        }
        other => panic!("expected CertificateNotTrusted, got {other:?}"),
    }
    let stats = server.stats();
    server.shutdown();
    assert_eq!(stats.connections, 2);
    assert_eq!(stats.sessions, 0, "no session over an untrusted connection");
}

#[test]
fn pings_are_answered_with_their_payload() {
    let synth = SynthConfig {
        messages: 1_000_000,
        mean_interval_ns: 1_000_000,
        ..SynthConfig::default()
    };
    let config = FeedConfig {
        pacing: Pacing::Recorded { speed: 1.0 },
        ping_interval: Some(Duration::from_millis(20)),
        pong_timeout: Duration::from_secs(1),
        max_frames: Some(2_500),
        ..FeedConfig::default()
    };
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let server = FeedServer::start_tls(
        "127.0.0.1:0".parse().expect("addr"),
        config,
        Arc::clone(&tls.server_config),
        move || {
            let market = SynthMarket::new(synth.clone()).expect("synthetic config");
            Ok(Box::new(market) as Box<dyn FrameSource + Send>)
        },
    )
    .expect("start");
    let endpoint = Endpoint::parse(&format!(
        "wss://localhost:{}/stream",
        server.local_addr().port()
    ))
    .expect("endpoint");
    let mut messages = 0u64;
    let (conn, outcome) = drive(&endpoint, &trusting(&tls), |_| {}, |_| messages += 1);
    let stats = server.stats();
    server.shutdown();
    // A pong that did not echo the latest ping's payload would not count, and the session
    // would end with 1008 after 1 s, well before its ~2.5 s of frames.
    assert_eq!(
        outcome.expect("clean end"),
        Status::Closed { code: Some(1001) }
    );
    assert_eq!(stats.pong_timeouts, 0);
    assert_eq!(stats.sessions_completed, 1);
    assert_eq!(messages, 2_500 + 1, "every frame and serverShutdown");
    assert!(stats.pings_sent >= 50, "{} pings", stats.pings_sent);
    assert_eq!(conn.stats().pings, stats.pings_sent);
}

#[test]
fn reconnect_resumes_the_tls_session() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let config = FeedConfig {
        max_frames: Some(200),
        ..FeedConfig::default()
    };
    let server = serve_recording_tls(&path, config, &tls);
    let settings = trusting(&tls);
    let endpoint = endpoint("localhost", &server);
    // A port nothing listens on: the first connect is refused and the next address is tried.
    let refused = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let mut kinds = Vec::new();
    for addrs in [None, Some(vec![refused, server.local_addr()])] {
        let mut messages = 0u64;
        let (conn, outcome) = drive_to(&endpoint, addrs, &settings, |_| {}, |_| messages += 1);
        assert_eq!(
            outcome.expect("clean end"),
            Status::Closed { code: Some(1001) }
        );
        assert_eq!(messages, 200 + 1);
        assert_eq!(conn.peer_addr(), server.local_addr());
        kinds.push(conn.handshake_kind());
    }
    // A fresh config has no session to resume.
    let (conn, _) = drive(&endpoint, &trusting(&tls), |_| {}, |_| {});
    kinds.push(conn.handshake_kind());
    server.shutdown();
    assert_eq!(
        kinds,
        [
            Some(HandshakeKind::Full),
            Some(HandshakeKind::Resumed),
            Some(HandshakeKind::Full)
        ]
    );
}

#[test]
fn reading_allocates_per_tls_record_not_per_message() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let recorded = recorded_frames(&path);
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let server = serve_recording_tls(&path, FeedConfig::default(), &tls);
    const WARM_UP: usize = 2_000;
    let mut index = 0usize;
    let mut mismatches = 0usize;
    let mut at_warm = 0u64;
    let mut at_last = 0u64;
    // The callback allocates nothing: it compares in place and notes the allocation count.
    let (conn, outcome) = drive(
        &endpoint("localhost", &server),
        &trusting(&tls),
        |_| {},
        |m| {
            if index == WARM_UP {
                at_warm = thread_allocations();
            }
            match recorded.get(index) {
                Some(r) if r.as_slice() == m.payload => {}
                Some(_) => mismatches += 1,
                None => at_last = thread_allocations(),
            }
            index += 1;
        },
    );
    let socket_bytes = conn.stats().socket_bytes;
    server.shutdown();
    assert_eq!(
        outcome.expect("clean end"),
        Status::Closed { code: Some(1001) }
    );
    assert_eq!((index, mismatches), (FRAMES + 1, 0));
    let messages = (FRAMES - WARM_UP) as u64;
    let allocations = at_last - at_warm;
    // rustls copies each decrypted record into a new buffer; a record holds at most 16 KiB of
    // plaintext, so the count is bounded by the bytes read, and it is far below one per message.
    let records_at_least = socket_bytes / (16 << 10);
    eprintln!(
        "after {WARM_UP} messages of warm-up: {allocations} allocations over {messages} messages \
         ({:.4} per message; socket bytes {socket_bytes}, at least {records_at_least} TLS records)",
        allocations as f64 / messages as f64
    );
    assert!(
        allocations < messages / 4,
        "{allocations} allocations for {messages} messages"
    );
}

#[test]
fn refused_upgrades_and_sends_before_open_are_errors() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let server = serve_recording_tls(&path, FeedConfig::default(), &tls);
    let settings = trusting(&tls);
    let unknown = Endpoint::parse(&format!(
        "wss://localhost:{}/no/such/path",
        server.local_addr().port()
    ))
    .expect("endpoint");
    let (mut conn, outcome) = drive(
        &unknown,
        &settings,
        |_| panic!("opened on an unknown path"),
        |_| {},
    );
    assert!(
        matches!(outcome, Err(WssError::HandshakeStatus { status: 404 })),
        "{outcome:?}"
    );
    assert_eq!(conn.status(), Status::Closed { code: None });
    assert!(matches!(conn.send_text("{}"), Err(WssError::NotOpen)));

    let poll = Poll::new().expect("poll");
    let mut early = WssConnection::connect(
        &endpoint("localhost", &server),
        &settings,
        poll.registry(),
        TOKEN,
    )
    .expect("connect");
    assert_eq!(early.status(), Status::Connecting);
    assert!(matches!(early.send_text("{}"), Err(WssError::NotOpen)));
    drop(early);
    server.shutdown();
}

#[test]
fn the_client_can_close_first() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let config = FeedConfig {
        pacing: Pacing::Recorded { speed: 1.0 },
        ..FeedConfig::default()
    };
    let server = serve_recording_tls(&path, config, &tls);
    let (conn, outcome) = drive(
        &endpoint("localhost", &server),
        &trusting(&tls),
        |conn| conn.close().expect("start the close handshake"),
        |_| {},
    );
    let stats = server.stats();
    server.shutdown();
    // The server echoes the client's code and ends the session long before the recording's end.
    assert_eq!(
        outcome.expect("clean close"),
        Status::Closed { code: Some(1000) }
    );
    assert!(conn.stats().messages < FRAMES as u64);
    assert_eq!((stats.sessions, stats.sessions_completed), (1, 0));
}

// ---- against a scripted server ----

/// A TLS WebSocket server for one connection on its own thread, running `script` once the
/// upgrade is done; what the script returns comes back from the join.
fn scripted_server<T: Send + 'static>(
    tls: &SelfSignedTls,
    script: impl FnOnce(&mut ServerSocket) -> T + Send + 'static,
) -> (SocketAddr, std::thread::JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = Arc::clone(&tls.server_config);
    let handle = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().expect("accept");
        // Without it the server's small frames would wait on the client's delayed ACKs.
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        let conn = rustls::ServerConnection::new(config).expect("server connection");
        let mut ws =
            tungstenite::accept(rustls::StreamOwned::new(conn, tcp)).expect("websocket accept");
        script(&mut ws)
    });
    (addr, handle)
}

type ServerSocket =
    tungstenite::WebSocket<rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>>;

#[test]
fn a_ping_is_answered_with_its_payload_at_once() {
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let (addr, server) = scripted_server(&tls, |ws| {
        let mut delays = Vec::new();
        for i in 0..20u32 {
            let payload = format!("pinion-ping-{i}");
            let sent = Instant::now();
            ws.send(tungstenite::Message::Ping(payload.clone().into()))
                .expect("ping");
            match ws.read().expect("read the pong") {
                tungstenite::Message::Pong(echo) => {
                    assert_eq!(echo.as_ref(), payload.as_bytes(), "pong payload");
                    delays.push(sent.elapsed());
                }
                other => panic!("expected a pong, got {other:?}"),
            }
        }
        let normal = tungstenite::protocol::CloseFrame {
            code: tungstenite::protocol::frame::coding::CloseCode::Normal,
            reason: "".into(),
        };
        ws.close(Some(normal)).expect("close");
        while ws.read().is_ok() {}
        // Dropped without a TLS close_notify: after the close frames that is a clean end.
        delays
    });
    let endpoint = Endpoint::parse(&format!("wss://localhost:{}/", addr.port())).expect("url");
    let (conn, outcome) = drive(&endpoint, &trusting(&tls), |_| {}, |_| {});
    let delays = server.join().expect("server thread");
    assert_eq!(
        outcome.expect("clean end"),
        Status::Closed { code: Some(1000) }
    );
    assert_eq!(conn.stats().pings, 20);
    let worst = delays.iter().max().expect("delays");
    eprintln!("ping to pong on loopback over TLS: worst of 20 {worst:?} ({delays:?})");
    // Answered in the poll turn that read the ping (tens of microseconds on loopback). A pong
    // left for a later turn would never go: nothing else arrives to cause one, and the session
    // would hit the test's deadline. The bound only allows for a loaded machine's scheduling.
    assert!(*worst < Duration::from_millis(500), "{worst:?}");
}

#[test]
fn a_connection_dropped_without_a_close_is_a_reset() {
    let tls = SelfSignedTls::generate(&["localhost"]).expect("certificate");
    let (addr, server) = scripted_server(&tls, |ws| {
        ws.send(tungstenite::Message::text("last words"))
            .expect("send");
        // Dropping the socket sends neither a WebSocket close nor a TLS close_notify.
    });
    let endpoint = Endpoint::parse(&format!("wss://localhost:{}/", addr.port())).expect("url");
    let mut got = Vec::new();
    let (conn, outcome) = drive(
        &endpoint,
        &trusting(&tls),
        |_| {},
        |m| got.push(m.payload.to_vec()),
    );
    server.join().expect("server thread");
    assert!(matches!(outcome, Err(WssError::Reset)), "{outcome:?}");
    assert_eq!(got, [b"last words".to_vec()]);
    assert_eq!(conn.status(), Status::Closed { code: None });
}
