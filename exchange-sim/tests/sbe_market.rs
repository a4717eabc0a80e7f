//! The live exchange's SBE endpoint against a plain tungstenite + rustls client over TLS on
//! loopback, on the real Binance Spot recording (`binance/spot-btcusdt-20240808.hbt.gz`):
//!
//! - `sbe_streams_carry_the_encoders_frames`: a session on `/sbe/stream` with an
//!   `X-MBX-APIKEY` subscribes to `btcusdt@trade`, `@bestBidAsk` and `@depth` (a JSON text
//!   reply), then gets binary frames only, each equal to [`SbeEncoder`]'s frame for the
//!   recording's message, in the recording's order, from the diff that opened the market to
//!   the recording's end.
//! - `the_sbe_endpoint_wants_an_api_key`: the upgrade without the header (or with an empty
//!   one) is refused 401; with `sbe_streams` every stream path is the SBE endpoint.

use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinion_core::RecordKind;
use pinion_exchange_sim::LiveConfig;
use pinion_feed::sbe::{MessageHeader, Template};
use pinion_feed::sbe_encode::{Encoded, Exponents, SbeEncoder};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

mod live_client;

use live_client::{Sim, Ws, start};

const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";

impl Sim {
    /// A WebSocket session on `path`, with `api_key` as `X-MBX-APIKEY`, or the HTTP status
    /// that refused it.
    fn ws(&self, path: &str, api_key: Option<&str>) -> Result<Ws, Option<u16>> {
        let port = self.exchange.local_addr().port();
        let tcp = TcpStream::connect(self.exchange.local_addr()).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let name = ServerName::try_from("localhost").expect("name");
        let conn = ClientConnection::new(Arc::clone(&self.client), name).expect("tls client");
        let mut request = format!("wss://localhost:{port}{path}")
            .into_client_request()
            .expect("request");
        if let Some(key) = api_key {
            request
                .headers_mut()
                .insert("X-MBX-APIKEY", key.parse().expect("header value"));
        }
        match tungstenite::client::client(request, StreamOwned::new(conn, tcp)) {
            Ok((ws, _)) => Ok(ws),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                Err(Some(r.status().as_u16()))
            }
            Err(_) => Err(None),
        }
    }
}

fn config() -> LiveConfig {
    let mut config = LiveConfig::spot();
    config.start_held = true;
    config.ping_interval = None;
    config.session_queue = 100_000;
    config
}

/// The encoder's frame for every market data frame of the recording, in order.
fn encoded_recording(path: &Path) -> Vec<Vec<u8>> {
    let mut source = pinion_feed::source::open(path).expect("open");
    let mut encoder = SbeEncoder::new(Exponents::BINANCE_SPOT);
    let mut frames = Vec::new();
    while let Some(rec) = source.next_record().expect("record") {
        if rec.kind != RecordKind::Frame {
            continue;
        }
        let out = encoder
            .encode(rec.payload, rec.t_recv, None)
            .expect("encodes");
        assert!(matches!(out, Encoded::Frame(_)));
        frames.push(encoder.frame().to_vec());
    }
    frames
}

#[test]
fn sbe_streams_carry_the_encoders_frames() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let expected = encoded_recording(&path);
    assert_eq!(expected.len(), 41_248);
    let sim = start(path, config());
    let mut ws = sim
        .ws("/sbe/stream", Some("sbe-test-key"))
        .expect("an upgrade with a key");
    ws.send(Message::text(
        r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@bestBidAsk","btcusdt@depth"],"id":1}"#,
    ))
    .expect("subscribe");
    match ws.read().expect("the reply") {
        Message::Text(t) => assert_eq!(t.as_str(), r#"{"result":null,"id":1}"#),
        other => panic!("the reply is not text: {other:?}"),
    }
    sim.exchange.release();
    assert!(sim.exchange.wait_exhausted(Duration::from_secs(120)));

    let mut got: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut want_len = None;
    while want_len.is_none_or(|n| got.len() < n) {
        assert!(
            Instant::now() < deadline,
            "{} frames by the deadline",
            got.len()
        );
        match ws.read().expect("a frame") {
            Message::Binary(b) => {
                if got.is_empty() {
                    let k = expected
                        .iter()
                        .position(|e| e[..] == b[..])
                        .expect("the first frame is one of the recording's");
                    want_len = Some(expected.len() - k);
                }
                got.push(b.to_vec());
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("not a binary frame: {other:?}"),
        }
    }
    let skipped = expected.len() - got.len();
    // The market opens at the first diff that bridges the snapshot.
    let first = MessageHeader::read(&got[0]).expect("header");
    assert_eq!(
        Template::from_id(first.template_id),
        Some(Template::DepthDiff)
    );
    assert!(skipped < 100, "{skipped} frames before the market opened");
    eprintln!(
        "{} SBE frames after the open, {skipped} before it",
        got.len()
    );
    for (i, (a, b)) in got.iter().zip(&expected[skipped..]).enumerate() {
        assert_eq!(a, b, "frame {i} after the open");
    }
    let stats = sim.exchange.stats();
    assert_eq!(stats.sbe_encode_errors, 0);
    assert_eq!(stats.frames_sent, got.len() as u64);
}

#[test]
fn the_sbe_endpoint_wants_an_api_key() {
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        return;
    };
    let sim = start(path.clone(), config());
    assert_eq!(sim.ws("/sbe/ws/btcusdt@trade", None).err(), Some(Some(401)));
    assert_eq!(sim.ws("/sbe/stream", Some("")).err(), Some(Some(401)));
    assert!(sim.ws("/sbe/ws/btcusdt@trade", Some("k")).is_ok());
    // The JSON endpoint wants none.
    assert!(sim.ws("/stream", None).is_ok());
    assert_eq!(sim.exchange.stats().sbe_key_refusals, 2);

    let mut sbe_only = config();
    sbe_only.sbe_streams = true;
    let sim = start(path, sbe_only);
    assert_eq!(sim.ws("/stream", None).err(), Some(Some(401)));
    assert!(sim.ws("/ws/btcusdt@bestBidAsk", Some("k")).is_ok());
}
