//! The blocking HTTPS/1.1 client: one kept-alive TLS connection to one origin, one request at
//! a time. Made for a helper thread (snapshots, `exchangeInfo`), never the feed thread: every
//! call blocks for as long as DNS, TCP, TLS and the server take, bounded by the timeouts.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, HandshakeKind};

use super::error::Phase;
use super::{ReadLimits, ResponseHeaders, ResponseReader, RestError};
use crate::ratelimit::WeightWindow;
use crate::sockopt::{self, SocketOptions, SocketReport};
use crate::wss::{Endpoint, TlsClientConfig, WssError};

/// How requests are made: prepared once, shared by every connect.
#[derive(Debug, Clone)]
pub struct RestSettings {
    /// The TLS client config (the same [`crate::wss::client_config`] as the streams: SNI and
    /// verification always on; its session store resumes TLS on reconnect).
    pub tls: TlsClientConfig,
    /// Longest TCP connect, per resolved address.
    pub connect_timeout: Duration,
    /// Longest wait for the socket to take bytes (TLS handshake and request); the handshake's
    /// reads wait at most [`RestSettings::read_timeout`] each.
    pub write_timeout: Duration,
    /// Longest wait for the next bytes from the server.
    pub read_timeout: Duration,
    /// Longest time for a whole request, connect to last body byte, however the server
    /// trickles it.
    pub request_timeout: Duration,
    /// Bounds on the response head and body.
    pub limits: ReadLimits,
    /// Socket options besides `TCP_NODELAY` (always on).
    pub socket: SocketOptions,
    /// The `User-Agent` sent.
    pub user_agent: String,
}

impl RestSettings {
    /// 3 s connect, 5 s write, 10 s read, 30 s per request, 64 KiB heads, 16 MiB bodies.
    pub fn new(tls: TlsClientConfig) -> Self {
        RestSettings {
            tls,
            connect_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            limits: ReadLimits::default(),
            socket: SocketOptions::default(),
            user_agent: concat!("pinion/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// A response as the caller gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestResponse {
    /// The status code. 4xx and 5xx are responses too, not errors: the caller reads the
    /// exchange's error body (and a 429/418 pauses its weight window).
    pub status: u16,
    /// The body, dechunked.
    pub body: Vec<u8>,
    /// `X-MBX-USED-WEIGHT-1M`: the IP's weight used in the current minute, by the server's
    /// count.
    pub used_weight_1m: Option<u32>,
    /// `Retry-After` in seconds (sent with 429 and 418).
    pub retry_after: Option<Duration>,
    /// From the call to the last body byte, connect and retry included.
    pub elapsed: Duration,
    /// Every header.
    pub headers: ResponseHeaders,
    /// The request went over a connection kept alive from an earlier one.
    pub reused_connection: bool,
    /// A kept-alive connection had been closed by the server, and the request was sent again
    /// on a fresh one.
    pub retried: bool,
}

impl RestResponse {
    /// Applies what this response, received at `now_ns` (on the window's clock), says about
    /// the request-weight limit: the server's count, and a pause for a 429 or 418.
    pub fn apply_to(&self, window: &mut WeightWindow, now_ns: u64) {
        window.observe_response(self.status, self.used_weight_1m, self.retry_after, now_ns);
    }
}

/// Counters of one client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestStats {
    /// Requests answered.
    pub responses: u64,
    /// TCP+TLS connections made.
    pub connects: u64,
    /// Of those, TLS handshakes that resumed an earlier session.
    pub resumed: u64,
    /// Requests sent again after a kept-alive connection turned out closed.
    pub retries: u64,
}

/// One open connection.
#[derive(Debug)]
struct Conn {
    tcp: TcpStream,
    tls: ClientConnection,
}

/// How one attempt failed: `Stale` when a kept-alive connection was found closed before any
/// response byte (worth one more try on a fresh connection), else final.
enum Failure {
    Stale(RestError),
    Final(RestError),
}

/// The blocking HTTPS/1.1 client: one kept-alive TLS connection to one origin, one request at
/// a time. Made for a helper thread (snapshots, `exchangeInfo`), never the feed thread: every
/// call blocks for as long as DNS, TCP, TLS and the server take, bounded by the timeouts.
///
/// See [`crate::rest`] for the protocol details.
#[derive(Debug)]
pub struct RestClient {
    endpoint: Endpoint,
    host_header: String,
    server_name: ServerName<'static>,
    settings: RestSettings,
    conn: Option<Conn>,
    reader: ResponseReader,
    request: Vec<u8>,
    read_buf: Box<[u8]>,
    socket_report: Option<SocketReport>,
    handshake_kind: Option<HandshakeKind>,
    stats: RestStats,
}

impl RestClient {
    /// A client for `base_url` (`https://host[:port]`, no path). Connects on the first request.
    pub fn new(base_url: &str, settings: RestSettings) -> Result<Self, RestError> {
        let endpoint = Endpoint::parse_scheme(base_url, "https://", "the scheme is not https://")
            .map_err(|e| match e {
            WssError::Endpoint { url, what } => RestError::BaseUrl { url, what },
            _ => RestError::BaseUrl {
                url: base_url.to_owned(),
                what: "not a url",
            },
        })?;
        if endpoint.target() != "/" {
            return Err(RestError::BaseUrl {
                url: base_url.to_owned(),
                what: "a base url has no path or query",
            });
        }
        let host = endpoint.host();
        let server_name =
            ServerName::try_from(host.to_owned()).map_err(|_| RestError::ServerName {
                host: host.to_owned(),
            })?;
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let host_header = match endpoint.port() {
            443 => bracketed,
            port => format!("{bracketed}:{port}"),
        };
        Ok(RestClient {
            reader: ResponseReader::new(settings.limits),
            endpoint,
            host_header,
            server_name,
            settings,
            conn: None,
            request: Vec::with_capacity(512),
            read_buf: vec![0; 32 << 10].into_boxed_slice(),
            socket_report: None,
            handshake_kind: None,
            stats: RestStats::default(),
        })
    }

    /// `GET path_and_query` (`/api/v3/depth?symbol=BTCUSDT&limit=1000`). Reuses the kept-alive
    /// connection if there is one; if the server had closed it before answering (no response
    /// byte came), sends the request once more on a fresh connection, and never retries
    /// anything else.
    pub fn get(&mut self, path_and_query: &str) -> Result<RestResponse, RestError> {
        self.request_with("GET", path_and_query, &[], None)
    }

    /// [`RestClient::get`] with `headers` added to the request (`X-MBX-APIKEY` on a signed
    /// call). A name or value holding a control character, or a name that is not a token, is
    /// refused before anything is sent.
    pub fn get_with_headers(
        &mut self,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<RestResponse, RestError> {
        for (name, value) in headers {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(RestError::Target {
                    what: "a header name is not a token",
                });
            }
            if value.bytes().any(|b| b.is_ascii_control()) {
                return Err(RestError::Target {
                    what: "a header value holds a control character",
                });
            }
        }
        self.request_with("GET", path_and_query, headers, None)
    }

    /// `POST path_and_query` with `body` of `content_type` (a JSON call whose parameters are
    /// too long for a query string). Connection reuse and the one retry are as for
    /// [`RestClient::get`]: the retry happens only when the kept-alive connection turned out
    /// closed before any response byte, so the server never answered the first send.
    pub fn post(
        &mut self,
        path_and_query: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<RestResponse, RestError> {
        if content_type.bytes().any(|b| b.is_ascii_control()) {
            return Err(RestError::Target {
                what: "the content type holds a control character",
            });
        }
        self.request_with("POST", path_and_query, &[], Some((content_type, body)))
    }

    fn request_with(
        &mut self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<RestResponse, RestError> {
        check_target(path_and_query)?;
        let started = Instant::now();
        let deadline = started + self.settings.request_timeout;
        self.request.clear();
        let io = |source| RestError::Io {
            phase: Phase::Write,
            source,
        };
        write!(
            self.request,
            "{method} {path_and_query} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\n\
Accept: application/json\r\nAccept-Encoding: identity\r\nConnection: keep-alive\r\n",
            self.host_header, self.settings.user_agent
        )
        .map_err(io)?;
        for (name, value) in headers {
            write!(self.request, "{name}: {value}\r\n").map_err(io)?;
        }
        if let Some((content_type, body)) = body {
            write!(
                self.request,
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            )
            .map_err(io)?;
        }
        self.request.extend_from_slice(b"\r\n");
        if let Some((_, body)) = body {
            self.request.extend_from_slice(body);
        }
        let reused = self.conn.is_some();
        let mut retried = false;
        let outcome = match self.attempt(deadline) {
            Err(Failure::Stale(_)) if reused => {
                self.conn = None;
                retried = true;
                self.stats.retries += 1;
                self.attempt(deadline)
            }
            other => other,
        };
        let response = match outcome {
            Ok(response) => response,
            Err(Failure::Stale(e) | Failure::Final(e)) => {
                self.conn = None;
                return Err(e);
            }
        };
        if !response.keep_alive || self.reader.leftover() > 0 {
            self.close();
        }
        self.stats.responses += 1;
        let headers = response.headers;
        Ok(RestResponse {
            status: response.status,
            used_weight_1m: headers
                .get_str("x-mbx-used-weight-1m")
                .and_then(|v| v.trim().parse().ok()),
            retry_after: headers
                .get_str("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
            body: response.body,
            elapsed: started.elapsed(),
            headers,
            reused_connection: reused && !retried,
            retried,
        })
    }

    /// One try: connect if needed, send, read the whole response.
    fn attempt(&mut self, deadline: Instant) -> Result<super::Response, Failure> {
        let fresh = self.conn.is_none();
        if fresh {
            self.connect(deadline).map_err(Failure::Final)?;
        }
        let host = self.endpoint.host();
        let Some(conn) = self.conn.as_mut() else {
            return Err(Failure::Final(RestError::Io {
                phase: Phase::Connect,
                source: io::ErrorKind::NotConnected.into(),
            }));
        };
        self.reader.reset();
        // A write to a connection the server has closed may fail, or may succeed into the
        // socket buffer and show up as a close on the read.
        let stale = |e: RestError| {
            if fresh {
                Failure::Final(e)
            } else {
                Failure::Stale(e)
            }
        };
        if let Err(e) = send(conn, &self.request, &self.settings) {
            let error = classify(e, Phase::Write, host, &self.settings);
            return Err(if is_closed(&error) {
                stale(error)
            } else {
                Failure::Final(error)
            });
        }
        loop {
            let now = Instant::now();
            let Some(left) = deadline
                .checked_duration_since(now)
                .filter(|d| !d.is_zero())
            else {
                return Err(Failure::Final(RestError::Timeout {
                    phase: Phase::Read,
                    after: self.settings.request_timeout,
                }));
            };
            let wait = left.min(self.settings.read_timeout);
            let read = conn.tcp.set_read_timeout(Some(wait)).and_then(|()| {
                rustls::Stream::new(&mut conn.tls, &mut conn.tcp).read(&mut self.read_buf)
            });
            let n = match read {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    // TCP ended without close_notify.
                    return match self.reader.finish() {
                        Err(super::ReadError::ClosedBeforeResponse) => Err(stale(
                            RestError::Response(super::ReadError::ClosedBeforeResponse),
                        )),
                        Err(e) => Err(Failure::Final(e.into())),
                        Ok(_) => Err(Failure::Final(RestError::Truncated)),
                    };
                }
                Err(e) => {
                    let nothing_yet = self.reader.received() == 0;
                    let error = match e.kind() {
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => RestError::Timeout {
                            phase: Phase::Read,
                            after: wait,
                        },
                        _ => classify(e, Phase::Read, host, &self.settings),
                    };
                    return Err(if nothing_yet && is_closed(&error) {
                        stale(error)
                    } else {
                        Failure::Final(error)
                    });
                }
            };
            if n == 0 {
                // close_notify: the server is done with this connection.
                return match self.reader.finish() {
                    Err(super::ReadError::ClosedBeforeResponse) => Err(stale(RestError::Response(
                        super::ReadError::ClosedBeforeResponse,
                    ))),
                    Err(e) => Err(Failure::Final(e.into())),
                    Ok(response) => {
                        self.conn = None;
                        Ok(response)
                    }
                };
            }
            match self.reader.feed(&self.read_buf[..n]) {
                Ok(Some(response)) => return Ok(response),
                Ok(None) => {}
                Err(e) => return Err(Failure::Final(e.into())),
            }
        }
    }

    /// Resolves, connects (next address on failure), sets and checks socket options, and
    /// completes the TLS handshake.
    fn connect(&mut self, deadline: Instant) -> Result<(), RestError> {
        let host = self.endpoint.host();
        let addrs = self.endpoint.resolve().map_err(|e| match e {
            WssError::Dns { host, source } => RestError::Dns { host, source },
            _ => RestError::NoAddress {
                host: host.to_owned(),
            },
        })?;
        let mut last: Option<(SocketAddr, io::Error)> = None;
        let mut tcp = None;
        for addr in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RestError::Timeout {
                    phase: Phase::Connect,
                    after: self.settings.request_timeout,
                });
            }
            match TcpStream::connect_timeout(&addr, self.settings.connect_timeout.min(left)) {
                Ok(stream) => {
                    tcp = Some((addr, stream));
                    break;
                }
                Err(e) => last = Some((addr, e)),
            }
        }
        let (addr, tcp) = match (tcp, last) {
            (Some(found), _) => found,
            (None, Some((addr, e)))
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                let _ = addr;
                return Err(RestError::Timeout {
                    phase: Phase::Connect,
                    after: self.settings.connect_timeout,
                });
            }
            (None, Some((addr, source))) => return Err(RestError::Connect { addr, source }),
            (None, None) => {
                return Err(RestError::NoAddress {
                    host: host.to_owned(),
                });
            }
        };
        let report = sockopt::apply(&tcp, &self.settings.socket);
        self.socket_report = Some(report);
        if !report.nodelay_on() {
            return Err(RestError::NoDelay { addr, report });
        }
        let io_err = |source| RestError::Io {
            phase: Phase::Connect,
            source,
        };
        tcp.set_write_timeout(Some(self.settings.write_timeout))
            .map_err(io_err)?;
        tcp.set_read_timeout(Some(self.settings.read_timeout))
            .map_err(io_err)?;
        let tls = ClientConnection::new(self.settings.tls.rustls(), self.server_name.clone())
            .map_err(|error| RestError::Tls {
                host: host.to_owned(),
                error,
            })?;
        let mut conn = Conn { tcp, tls };
        while conn.tls.is_handshaking() {
            if let Err(e) = conn.tls.complete_io(&mut conn.tcp) {
                return Err(classify(e, Phase::Handshake, host, &self.settings));
            }
        }
        self.handshake_kind = conn.tls.handshake_kind();
        self.stats.connects += 1;
        if self.handshake_kind == Some(HandshakeKind::Resumed) {
            self.stats.resumed += 1;
        }
        self.conn = Some(conn);
        Ok(())
    }

    /// Closes the connection (TLS `close_notify`, best effort); the next request connects.
    pub fn close(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.tls.send_close_notify();
            let _ = conn.tls.write_tls(&mut conn.tcp);
        }
    }

    /// Whether a kept-alive connection is open.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The socket options asked for and read back on the last connect; `None` before one.
    pub fn socket_report(&self) -> Option<SocketReport> {
        self.socket_report
    }

    /// How the last TLS handshake went (`Full`, or `Resumed` on a reconnect).
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.handshake_kind
    }

    /// The counters so far.
    pub fn stats(&self) -> RestStats {
        self.stats
    }
}

/// Writes the request and the TLS records it makes.
fn send(conn: &mut Conn, request: &[u8], settings: &RestSettings) -> io::Result<()> {
    conn.tcp.set_write_timeout(Some(settings.write_timeout))?;
    let mut stream = rustls::Stream::new(&mut conn.tls, &mut conn.tcp);
    stream.write_all(request)?;
    stream.flush()
}

/// A request target must be an absolute path with an optional query, in plain visible ASCII:
/// no spaces, controls or line breaks that would split the request line or inject a header.
fn check_target(target: &str) -> Result<(), RestError> {
    if !target.starts_with('/') {
        return Err(RestError::Target {
            what: "it does not start with /",
        });
    }
    if target.contains('#') {
        return Err(RestError::Target {
            what: "a fragment is not sent to a server",
        });
    }
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RestError::Target {
            what: "it holds a space, a control character or non-ASCII (percent-encode it)",
        });
    }
    Ok(())
}

/// The error for an I/O failure in `phase`: TLS when rustls's error is inside, a timeout when
/// the socket timed out.
fn classify(e: io::Error, phase: Phase, host: &str, settings: &RestSettings) -> RestError {
    if let Some(error) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return match error {
            rustls::Error::InvalidCertificate(error) => RestError::CertificateNotTrusted {
                host: host.to_owned(),
                error: error.clone(),
            },
            error => RestError::Tls {
                host: host.to_owned(),
                error: error.clone(),
            },
        };
    }
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => RestError::Timeout {
            phase,
            after: match phase {
                Phase::Connect => settings.connect_timeout,
                Phase::Handshake | Phase::Write => settings.write_timeout,
                Phase::Read => settings.read_timeout,
            },
        },
        _ => RestError::Io { phase, source: e },
    }
}

/// Whether an error means the peer had closed the connection.
fn is_closed(error: &RestError) -> bool {
    match error {
        RestError::Io { source, .. } => matches!(
            source.kind(),
            io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::WriteZero
        ),
        RestError::Response(super::ReadError::ClosedBeforeResponse) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RestSettings {
        let roots = rustls::RootCertStore::empty();
        RestSettings::new(crate::wss::client_config(roots).expect("config"))
    }

    #[test]
    fn base_urls_are_origins_only() {
        let c = RestClient::new("https://api.binance.com", settings()).expect("valid");
        assert_eq!(c.host_header, "api.binance.com");
        let c = RestClient::new("https://127.0.0.1:8443", settings()).expect("valid");
        assert_eq!(c.host_header, "127.0.0.1:8443");
        let c = RestClient::new("https://[::1]:8443", settings()).expect("valid");
        assert_eq!(c.host_header, "[::1]:8443");
        for url in [
            "http://api.binance.com",
            "wss://api.binance.com",
            "https://api.binance.com/api",
            "https://api.binance.com?x=1",
            "https://:443",
        ] {
            assert!(
                matches!(
                    RestClient::new(url, settings()),
                    Err(RestError::BaseUrl { .. })
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn headers_that_would_break_the_request_are_refused_before_connecting() {
        // Port 9 on loopback: a request that got as far as connecting would fail otherwise.
        let mut c = RestClient::new("https://127.0.0.1:9", settings()).expect("valid");
        for (name, value) in [
            ("X-MBX-APIKEY", "key\r\nX-Injected: 1"),
            ("X MBX", "key"),
            ("", "key"),
            ("X-Bad:", "key"),
        ] {
            assert!(
                matches!(
                    c.get_with_headers("/sapi/v1/x", &[(name, value)]),
                    Err(RestError::Target { .. })
                ),
                "{name:?}: {value:?}"
            );
        }
        assert!(!c.is_connected());
    }

    #[test]
    fn targets_that_would_break_the_request_are_refused_without_quoting_them() {
        for (target, what) in [
            ("api/v3/time", "start"),
            (
                "/api/v3/depth?symbol=X&signature=secret\r\nX-Injected: 1",
                "control",
            ),
            ("/a b", "space"),
            ("/é", "non-ascii"),
            ("/a#b", "fragment"),
        ] {
            let err = check_target(target).expect_err(what);
            assert!(matches!(err, RestError::Target { .. }), "{what}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        check_target("/api/v3/depth?symbol=BTCUSDT&limit=5000").expect("valid");
    }
}
