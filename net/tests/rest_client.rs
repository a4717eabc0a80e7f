//! The REST client against a TLS server on loopback, scripted per request: keep-alive, chunked
//! bodies, `Connection: close`, 429 with `Retry-After`, a server that closes the idle
//! kept-alive connection, one that cuts a body, one that never answers, and one whose
//! certificate is not trusted. The server counts accepted connections and resumed handshakes,
//! so reuse and resumption are observed from the other side.

#![cfg(feature = "wss")]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use pinion_net::http::{self, HeadRules};
use pinion_net::ratelimit::{Wait, WeightWindow};
use pinion_net::rest::{Phase, ReadError, ReadLimits, RestClient, RestError, RestSettings};
use pinion_net::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use pinion_net::rustls::{self, HandshakeKind, RootCertStore, ServerConfig, ServerConnection};
use pinion_net::wss;

/// A self-signed identity for 127.0.0.1.
struct Identity {
    config: Arc<ServerConfig>,
    cert: CertificateDer<'static>,
}

fn identity() -> Identity {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .expect("server config");
    Identity {
        config: Arc::new(config),
        cert,
    }
}

fn settings_trusting(cert: &CertificateDer<'static>) -> RestSettings {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).expect("root");
    let mut settings = RestSettings::new(wss::client_config(roots).expect("client config"));
    // Generous for a loaded 2-core machine; the timeout test sets its own.
    settings.read_timeout = Duration::from_secs(10);
    settings
}

/// What the server does with one request.
enum Reply {
    /// Send these bytes and wait for the next request.
    Send(Vec<u8>),
    /// Send these bytes in pieces, flushing and pausing between them.
    Pieces(Vec<Vec<u8>>),
    /// Send these bytes, then close the connection cleanly (close_notify and FIN) as a server
    /// ending an idle keep-alive connection does.
    SendThenClose(Vec<u8>),
    /// Send these bytes and a TLS close_notify, but keep TCP open a while: the client's next
    /// write succeeds and the close shows only on its read.
    SendThenCloseNotify(Vec<u8>),
    /// Send these bytes, then drop TCP without close_notify.
    SendThenCut(Vec<u8>),
    /// Close cleanly without answering.
    CloseWithoutAnswer,
    /// Never answer (the connection stays open until the test ends).
    Hang,
}

type Script = dyn Fn(usize, usize) -> Reply + Send + Sync;

struct Server {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    resumed: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

/// Serves over TLS on loopback; `script(connection, request)` (both counted from 0) says what
/// to do with each request.
fn serve(
    config: Arc<ServerConfig>,
    script: impl Fn(usize, usize) -> Reply + Send + Sync + 'static,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepts = Arc::new(AtomicUsize::new(0));
    let resumed = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let script: Arc<Script> = Arc::new(script);
    let (a, r, h) = (
        Arc::clone(&accepts),
        Arc::clone(&resumed),
        Arc::clone(&heads),
    );
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let index = a.fetch_add(1, Ordering::SeqCst);
            let (config, script, r, h) = (
                Arc::clone(&config),
                Arc::clone(&script),
                Arc::clone(&r),
                Arc::clone(&h),
            );
            thread::spawn(move || connection(tcp, config, index, &*script, &r, &h));
        }
    });
    Server {
        addr,
        accepts,
        resumed,
        heads,
    }
}

fn connection(
    tcp: TcpStream,
    config: Arc<ServerConfig>,
    index: usize,
    script: &Script,
    resumed: &AtomicUsize,
    heads: &Mutex<Vec<String>>,
) {
    let Ok(session) = ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(session, tcp);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut counted = false;
    for request in 0.. {
        // Read one request head.
        let len = loop {
            match http::parse_request(&buf, &HeadRules::strict(16 << 10)) {
                Ok(Some(head)) => break head.len,
                Ok(None) => {}
                Err(_) => return,
            }
            match tls.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        if !counted {
            counted = true;
            if tls.conn.handshake_kind() == Some(HandshakeKind::Resumed) {
                resumed.fetch_add(1, Ordering::SeqCst);
            }
        }
        heads
            .lock()
            .expect("heads")
            .push(String::from_utf8_lossy(&buf[..len]).into_owned());
        buf.drain(..len);
        let done = match script(index, request) {
            Reply::Send(bytes) => tls.write_all(&bytes).and_then(|()| tls.flush()).is_err(),
            Reply::Pieces(pieces) => pieces.iter().any(|p| {
                let failed = tls.write_all(p).and_then(|()| tls.flush()).is_err();
                thread::sleep(Duration::from_millis(5));
                failed
            }),
            Reply::SendThenClose(bytes) => {
                let _ = tls.write_all(&bytes).and_then(|()| tls.flush());
                tls.conn.send_close_notify();
                let _ = tls.flush();
                let _ = tls.sock.shutdown(Shutdown::Both);
                true
            }
            Reply::SendThenCloseNotify(bytes) => {
                let _ = tls.write_all(&bytes).and_then(|()| tls.flush());
                tls.conn.send_close_notify();
                let _ = tls.flush();
                thread::sleep(Duration::from_secs(2));
                true
            }
            Reply::SendThenCut(bytes) => {
                let _ = tls.write_all(&bytes).and_then(|()| tls.flush());
                let _ = tls.sock.shutdown(Shutdown::Both);
                true
            }
            Reply::CloseWithoutAnswer => {
                tls.conn.send_close_notify();
                let _ = tls.flush();
                let _ = tls.sock.shutdown(Shutdown::Both);
                true
            }
            Reply::Hang => {
                thread::sleep(Duration::from_secs(30));
                true
            }
        };
        if done {
            return;
        }
    }
}

fn ok_json(body: &str, weight: u32) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
x-mbx-used-weight-1m: {weight}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn keep_alive_reuses_one_connection_with_nodelay_on() {
    let id = identity();
    let server = serve(Arc::clone(&id.config), |_, request| {
        Reply::Send(ok_json(
            &format!("{{\"n\":{request}}}"),
            20 * (request as u32 + 1),
        ))
    });
    let mut client = RestClient::new(&server.url(), settings_trusting(&id.cert)).expect("client");
    for n in 0..3u32 {
        let r = client
            .get("/api/v3/depth?symbol=BTCUSDT&limit=1000")
            .expect("response");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, format!("{{\"n\":{n}}}").as_bytes());
        assert_eq!(r.used_weight_1m, Some(20 * (n + 1)));
        assert_eq!(r.retry_after, None);
        assert_eq!(r.reused_connection, n > 0);
        assert!(!r.retried);
        assert!(r.elapsed > Duration::ZERO);
        assert_eq!(r.headers.get_str("content-type"), Some("application/json"));
    }
    assert_eq!(
        server.accepts.load(Ordering::SeqCst),
        1,
        "one connection for three requests"
    );
    let report = client.socket_report().expect("connected");
    assert!(report.nodelay_on(), "{report}");
    assert_eq!(client.handshake_kind(), Some(HandshakeKind::Full));
    assert!(client.is_connected());
    let stats = client.stats();
    assert_eq!((stats.responses, stats.connects, stats.retries), (3, 1, 0));
    // The request head as the server saw it.
    let heads = server.heads.lock().expect("heads");
    let head = &heads[0];
    assert!(
        head.starts_with("GET /api/v3/depth?symbol=BTCUSDT&limit=1000 HTTP/1.1\r\n"),
        "{head}"
    );
    let req = http::parse_request(head.as_bytes(), &HeadRules::strict(4096))
        .expect("valid")
        .expect("complete");
    assert_eq!(
        req.headers.get_str("host"),
        Some(server.addr.to_string().as_str())
    );
    assert_eq!(req.headers.get_str("connection"), Some("keep-alive"));
    assert_eq!(req.headers.get_str("accept-encoding"), Some("identity"));
    assert!(
        req.headers
            .get_str("user-agent")
            .is_some_and(|ua| ua.starts_with("pinion/"))
    );
}

/// `body` as a chunked response, in chunks of the sizes in `sizes` taken in turn.
fn chunked_response(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-mbx-used-weight-1m: 50\r\n\r\n"
            .to_vec();
    for (i, piece) in body.chunks(sizes[0]).enumerate() {
        // Re-cut each piece by the next size too, so chunk boundaries fall anywhere.
        for part in piece.chunks(sizes[i % sizes.len()]) {
            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[test]
fn real_snapshots_and_exchange_info_arrive_byte_for_byte_over_one_connection() {
    let Some(info) = pinion_testkit::data::require("binance/spot-exchangeinfo-20211012.json.gz")
    else {
        return;
    };
    let Some(snapshots) =
        pinion_testkit::data::require("binance/spot-multi-20211012.cryptofeed.http")
    else {
        return;
    };
    let mut exchange_info = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(info).expect("open"))
        .read_to_end(&mut exchange_info)
        .expect("gunzip");
    // `<url> -> <time>: <body>` a line.
    let text = std::fs::read_to_string(snapshots).expect("read");
    let mut exchanges: Vec<(String, Vec<u8>)> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (url, rest) = line.split_once(" -> ").expect("url");
            let (_, body) = rest.split_once(": ").expect("body");
            let target = url.strip_prefix("https://api.binance.com").expect("host");
            (target.to_owned(), body.as_bytes().to_vec())
        })
        .collect();
    assert!(exchanges.len() >= 4, "four snapshots in the recording");
    exchanges.push(("/api/v3/exchangeInfo".to_owned(), exchange_info));
    let bodies: Vec<Vec<u8>> = exchanges.iter().map(|(_, b)| b.clone()).collect();
    let id = identity();
    let server = serve(Arc::clone(&id.config), move |_, request| {
        let body = &bodies[request];
        if request % 2 == 0 {
            Reply::Send(
                [
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nx-mbx-used-weight-1m: 50\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                    body,
                ]
                .concat(),
            )
        } else {
            Reply::Send(chunked_response(body, &[8191, 1, 16384, 77]))
        }
    });
    let mut client = RestClient::new(&server.url(), settings_trusting(&id.cert)).expect("client");
    for (target, body) in &exchanges {
        let r = client.get(target).expect("response");
        assert_eq!(r.status, 200);
        assert!(
            r.body == *body,
            "{target}: {} bytes, expected {}",
            r.body.len(),
            body.len()
        );
        assert_eq!(r.used_weight_1m, Some(50));
    }
    assert_eq!(server.accepts.load(Ordering::SeqCst), 1);
    let heads = server.heads.lock().expect("heads");
    for ((target, _), head) in exchanges.iter().zip(heads.iter()) {
        assert!(
            head.starts_with(&format!("GET {target} HTTP/1.1\r\n")),
            "{head}"
        );
    }
}

#[test]
fn chunked_bodies_arrive_whole_across_writes() {
    let id = identity();
    let body =
        "{\"lastUpdateId\":160,\"bids\":[[\"0.0024\",\"10\"]],\"asks\":[[\"0.0026\",\"100\"]]}";
    let (a, b) = body.split_at(30);
    let pieces = vec![
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-mbx-used-weight-1m: 5\r\n\r\n"
            .to_vec(),
        format!("{:x}\r\n{a}", a.len()).into_bytes(),
        format!("\r\n{:X};ext=1\r\n{b}\r\n", b.len()).into_bytes(),
        b"0\r\n".to_vec(),
        b"\r\n".to_vec(),
    ];
    let server = serve(Arc::clone(&id.config), move |_, _| {
        Reply::Pieces(pieces.clone())
    });
    let mut client = RestClient::new(&server.url(), settings_trusting(&id.cert)).expect("client");
    for _ in 0..2 {
        let r = client
            .get("/api/v3/depth?symbol=BNBBTC&limit=5")
            .expect("response");
        assert_eq!(r.body, body.as_bytes());
        assert_eq!(r.used_weight_1m, Some(5));
    }
    assert_eq!(
        server.accepts.load(Ordering::SeqCst),
        1,
        "chunked responses keep the connection"
    );
}

#[test]
fn connection_close_makes_the_next_request_reconnect_and_resume_tls() {
    let id = identity();
    let server = serve(Arc::clone(&id.config), |_, _| {
        Reply::Send(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}".to_vec())
    });
    let mut client = RestClient::new(&server.url(), settings_trusting(&id.cert)).expect("client");
    let first = client.get("/api/v3/exchangeInfo").expect("first");
    assert_eq!(first.body, b"{}");
    assert!(!client.is_connected(), "closed as the server asked");
    let second = client.get("/api/v3/exchangeInfo").expect("second");
    assert!(!second.reused_connection && !second.retried);
    assert_eq!(server.accepts.load(Ordering::SeqCst), 2);
    assert_eq!(client.handshake_kind(), Some(HandshakeKind::Resumed));
    assert_eq!(
        server.resumed.load(Ordering::SeqCst),
        1,
        "the server saw the resumption"
    );
    assert_eq!(client.stats().resumed, 1);
}

#[test]
fn a_429_is_a_response_with_its_retry_after() {
    let id = identity();
    let server = serve(Arc::clone(&id.config), |_, _| {
        let body = "{\"code\":-1003,\"msg\":\"Too many requests.\"}";
        Reply::Send(
            format!(
                "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nx-mbx-used-weight-1m: 6001\r\n\
Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    });
    let mut client = RestClient::new(&server.url(), settings_trusting(&id.cert)).expect("client");
    let r = client
        .get("/api/v3/depth?symbol=BTCUSDT&limit=5000")
        .expect("a response");
    assert_eq!(r.status, 429);
    assert_eq!(r.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(r.used_weight_1m, Some(6001));
    assert!(r.body.starts_with(b"{\"code\":-1003"));
    // The weight window takes the server's count and stops every request for 7 s.
    let mut window = WeightWindow::new(6000, 0.5, Duration::from_secs(60)).expect("window");
    // Two seconds before a minute boundary: the pause outlasts the window.
    let now_ns = 1_000 * 60_000_000_000 + 58_000_000_000;
    r.apply_to(&mut window, now_ns);
    assert_eq!(window.used(now_ns), 6001);
    let resume = now_ns + 7_000_000_000;
    assert_eq!(
        window.try_take(1, now_ns + 3_000_000_000),
        Err(Wait::Paused {
            until_ns: resume,
            status: 429
        })
    );
    window.try_take(5, resume).expect("after Retry-After");
    assert_eq!(client.stats().retries, 0, "a 429 is never retried here");
    assert_eq!(server.heads.lock().expect("heads").len(), 1);
}

#[test]
fn an_idle_connection_the_server_closed_is_retried_once_on_a_fresh_one() {
    idle_close_is_retried(Reply::SendThenClose);
}

#[test]
fn an_idle_close_seen_only_on_the_read_is_retried_too() {
    idle_close_is_retried(Reply::SendThenCloseNotify);
}

fn idle_close_is_retried(close: fn(Vec<u8>) -> Reply) {
    let id = identity();
    // The first connection answers once and then closes as if idle for too long, without
    // having said `Connection: close`.
    let server = serve(Arc::clone(&id.config), move |connection, _| {
        let reply = ok_json("{\"serverTime\":1}", 1);
        if connection == 0 {
            close(reply)
        } else {
            Reply::Send(reply)
        }
    });
    let mut client = RestClient::new(&server.url(), settings_trusting(&id.cert)).expect("client");
    client.get("/api/v3/time").expect("first");
    assert!(
        client.is_connected(),
        "the client believes it is kept alive"
    );
    thread::sleep(Duration::from_millis(100));
    let r = client.get("/api/v3/time").expect("retried transparently");
    assert_eq!(r.status, 200);
    assert!(r.retried && !r.reused_connection);
    assert_eq!(client.stats().retries, 1);
    assert_eq!(server.accepts.load(Ordering::SeqCst), 2);
    // The fresh connection is kept alive again.
    let r = client.get("/api/v3/time").expect("third");
    assert!(r.reused_connection && !r.retried);
    assert_eq!(server.accepts.load(Ordering::SeqCst), 2);
}

#[test]
fn a_fresh_connection_closed_before_answering_is_not_retried() {
    let id = identity();
    let server = serve(Arc::clone(&id.config), |_, _| Reply::CloseWithoutAnswer);
    let mut client = RestClient::new(&server.url(), settings_trusting(&id.cert)).expect("client");
    let err = client.get("/api/v3/time").expect_err("closed");
    assert!(
        matches!(err, RestError::Response(ReadError::ClosedBeforeResponse)),
        "{err}"
    );
    assert_eq!(
        server.accepts.load(Ordering::SeqCst),
        1,
        "no retry on a fresh connection"
    );
}

#[test]
fn a_body_cut_short_is_an_error_and_never_retried() {
    let id = identity();
    let server = serve(Arc::clone(&id.config), |connection, _| {
        if connection == 0 {
            Reply::Send(ok_json("{}", 1))
        } else {
            Reply::SendThenCut(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"bids\":".to_vec())
        }
    });
    let mut client = RestClient::new(&server.url(), settings_trusting(&id.cert)).expect("client");
    client.get("/a").expect("first");
    client.close();
    let err = client
        .get("/api/v3/depth?symbol=BTCUSDT&signature=s3cr3t")
        .expect_err("cut");
    assert!(
        matches!(
            err,
            RestError::Response(ReadError::ClosedMidBody {
                received: 8,
                expected: Some(100)
            })
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("s3cr3t"));
    assert_eq!(server.accepts.load(Ordering::SeqCst), 2);
    assert_eq!(client.stats().retries, 0);
    assert!(!client.is_connected());
}

#[test]
fn a_server_that_never_answers_times_out() {
    let id = identity();
    let server = serve(Arc::clone(&id.config), |_, _| Reply::Hang);
    let mut settings = settings_trusting(&id.cert);
    settings.read_timeout = Duration::from_millis(300);
    let mut client = RestClient::new(&server.url(), settings).expect("client");
    let started = std::time::Instant::now();
    let err = client.get("/api/v3/time").expect_err("timeout");
    assert!(
        matches!(
            err,
            RestError::Timeout {
                phase: Phase::Read,
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!client.is_connected());
}

#[test]
fn bodies_over_the_limit_are_refused() {
    let id = identity();
    let server = serve(Arc::clone(&id.config), |_, _| {
        Reply::Send(ok_json(&"x".repeat(2000), 1))
    });
    let mut settings = settings_trusting(&id.cert);
    settings.limits = ReadLimits {
        max_head: 4096,
        max_body: 1000,
    };
    let mut client = RestClient::new(&server.url(), settings).expect("client");
    let err = client.get("/big").expect_err("too large");
    assert!(
        matches!(
            err,
            RestError::Response(ReadError::BodyTooLarge {
                max: 1000,
                declared: Some(2000)
            })
        ),
        "{err}"
    );
}

#[test]
fn an_untrusted_certificate_is_a_tls_error_never_bypassed() {
    let served = identity();
    let other = identity();
    let server = serve(Arc::clone(&served.config), |_, _| {
        Reply::Send(ok_json("{}", 1))
    });
    let mut client =
        RestClient::new(&server.url(), settings_trusting(&other.cert)).expect("client");
    for _ in 0..2 {
        let err = client.get("/api/v3/time").expect_err("untrusted");
        assert!(
            matches!(err, RestError::CertificateNotTrusted { .. }),
            "{err}"
        );
    }
    assert!(
        server.heads.lock().expect("heads").is_empty(),
        "no request was ever sent"
    );
    assert_eq!(client.stats().connects, 0);
}

#[test]
fn nothing_listening_is_a_connect_error() {
    let id = identity();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut client = RestClient::new(
        &format!("https://127.0.0.1:{port}"),
        settings_trusting(&id.cert),
    )
    .expect("client");
    let err = client.get("/api/v3/time").expect_err("refused");
    assert!(matches!(err, RestError::Connect { .. }), "{err}");
}
