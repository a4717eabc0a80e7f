//! A WebSocket client over TLS on a non-blocking `mio` socket, driven from the caller's poll
//! loop: the transport of the live market feed (and later the order gateway).
//!
//! [`WssConnection::connect`] resolves the host (DNS runs here, at connect time, never on the
//! read path; [`WssConnection::connect_to`] takes addresses resolved elsewhere), starts a non-blocking TCP connect and registers the socket with the caller's
//! [`mio::Registry`] under the caller's token, for both readiness directions, edge-triggered.
//! From then on the caller hands every event for that token to [`WssConnection::poll_ready`],
//! which advances the connection as far as the socket allows and returns:
//!
//! 1. TCP connect (the next resolved address if one fails); `TCP_NODELAY` and the optional
//!    [`WssSettings::socket`] options are set and read back (see [`crate::sockopt`]), a socket
//!    where `TCP_NODELAY` does not read back as on is an error;
//! 2. the TLS handshake from the shared [`client_config`] (SNI and certificate verification
//!    against the endpoint's host name, always; a reconnect from the same config resumes the
//!    session when the server agrees, see [`WssConnection::handshake_kind`]);
//! 3. the WebSocket upgrade (tungstenite's client handshake, resumed on each event while it
//!    would block);
//! 4. open: every text or binary message is handed to the caller's callback with its receive
//!    stamp, until the socket has nothing more. A ping is answered in the same call with a pong
//!    echoing its payload; a close from the server is answered and ends the connection with
//!    [`Status::Closed`] and the server's code.
//!
//! No threads, no async runtime: everything happens inside `connect` and `poll_ready`, on the
//! caller's thread. Because the registration is edge-triggered, `poll_ready` always reads until
//! the socket would block.
//!
//! Receive stamps are nanoseconds on the monotonic clock since the [`WssSettings::clock_origin`]
//! the caller chose, taken right after the socket read that brought the message's last bytes
//! (see `stream` for where kernel `SO_TIMESTAMPING` stamps would replace them).
//!
//! Allocation on the read path: tungstenite's frame reader splits message payloads off its
//! preallocated read buffer without allocating, and hands them out as borrowed slices here. rustls
//! (0.23) copies the plaintext of every TLS record it decrypts into a fresh `Vec`, so a
//! connection allocates once per received TLS record (up to 16 KiB of messages), not per
//! message: about 0.026 allocations per message on the Binance Spot recording over loopback
//! (`exchange-sim/tests/wss_client.rs` measures it). rustls's unbuffered API copies the same
//! way in this version (in-place decryption is still to come there); reaching zero needs that,
//! or kernel TLS (rustls's `kernel` connections) so the socket read yields plaintext.
//!
//! tungstenite also zero-fills the free part of its read buffer (up to
//! [`WebSocketConfig::read_buffer_size`], 128 KiB by default) before each socket read: no
//! allocation, but a memset per read that a smaller buffer makes cheaper; to be tuned with the
//! wire-to-book benchmark.

mod endpoint;
mod error;
mod stream;
mod tls;

pub use endpoint::Endpoint;
pub use error::WssError;
pub use tls::{TlsClientConfig, client_config};

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, HandshakeKind};
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

use crate::sockopt::{self, SocketOptions, SocketReport};
use stream::TlsStream;

/// Room reserved for a prepared frame: order requests are a few hundred bytes.
const FRAME_CAPACITY: usize = 4096;

/// A seed for masking keys that differs between connections and runs.
fn mask_seed(origin: Instant) -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    since ^ (origin.elapsed().as_nanos() as u64).rotate_left(32)
}

/// Writes one final, masked text frame carrying `payload` into `out` (cleared first), as RFC
/// 6455 §5.2 lays it out: FIN and opcode 1, the mask bit and the shortest length form, the
/// 4-byte masking key, the payload XORed with it.
pub fn encode_masked_text(payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    out.clear();
    out.push(0x81);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    // Eight bytes at a time: the body starts at a multiple of 4 from the key's phase.
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = out[start..].chunks_exact_mut(8);
    for chunk in &mut chunks {
        if let Ok(bytes) = <[u8; 8]>::try_from(&*chunk) {
            chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ wide).to_ne_bytes());
        }
    }
    for (b, m) in chunks.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *b ^= m;
    }
}

/// What every connection is made with: prepared once, shared by every connect and reconnect.
#[derive(Debug, Clone)]
pub struct WssSettings {
    /// The TLS client config (see [`client_config`]); its session store is what lets a
    /// reconnect resume.
    pub tls: TlsClientConfig,
    /// WebSocket limits and buffers (tungstenite's: message and frame size limits against a
    /// hostile peer, read buffer size).
    pub websocket: WebSocketConfig,
    /// Receive stamps count nanoseconds from this instant.
    pub clock_origin: Instant,
    /// Socket options applied after the TCP connect, besides `TCP_NODELAY` (always on).
    pub socket: SocketOptions,
    /// An API key sent in the upgrade request's `X-MBX-APIKEY` header (Binance's SBE market
    /// data streams need one). Never printed.
    pub api_key: Option<ApiKeyHeader>,
}

/// An API key for the WebSocket upgrade's `X-MBX-APIKEY` header. `Debug` shows only that
/// there is one; the key never reaches a log, an error or a report.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyHeader(String);

impl ApiKeyHeader {
    /// The header for `key`: `None` when it is empty or holds a byte a header value cannot
    /// (a control character, a line break): such a key could not be sent, or would inject
    /// headers. The refusal does not quote the key.
    pub fn new(key: &str) -> Option<Self> {
        let valid = !key.is_empty() && key.bytes().all(|c| (0x21..0x7f).contains(&c));
        valid.then(|| Self(key.to_owned()))
    }
}

impl fmt::Debug for ApiKeyHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyHeader(<redacted>)")
    }
}

impl WssSettings {
    /// Settings for a market-data connection: tungstenite's defaults except a 16 MiB limit on
    /// a message (the largest depth snapshot over a WebSocket API is well under it; the
    /// default 64 MiB is more than a feed should buffer for one peer), stamps counted from now.
    pub fn new(tls: TlsClientConfig) -> Self {
        WssSettings {
            tls,
            websocket: WebSocketConfig::default()
                .max_message_size(Some(16 << 20))
                .max_frame_size(Some(16 << 20)),
            clock_origin: Instant::now(),
            socket: SocketOptions::default(),
            api_key: None,
        }
    }
}

/// A message as received: borrowed for the callback only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    /// The payload, text as UTF-8 bytes.
    pub payload: &'a [u8],
    /// A binary message (else text).
    pub binary: bool,
    /// Receive stamp: ns since [`WssSettings::clock_origin`], taken at the socket read that
    /// brought the message's last bytes.
    pub t_recv_ns: u64,
}

/// Where a connection stands after [`WssConnection::poll_ready`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// TCP, TLS or the WebSocket upgrade is under way.
    Connecting,
    /// Messages flow.
    Open,
    /// The WebSocket close handshake is done (or the connection was closed here); nothing more
    /// will come.
    Closed {
        /// The close code the server sent, if any.
        code: Option<u16>,
    },
}

/// Counters of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WssStats {
    /// Text and binary messages handed to the callback.
    pub messages: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
    /// Bytes read from the socket (TLS records and handshakes).
    pub socket_bytes: u64,
    /// Pings received (each answered with a pong).
    pub pings: u64,
    /// Pongs received.
    pub pongs: u64,
}

/// The phase of a connection, holding what that phase needs.
enum Phase {
    /// TCP connect in progress.
    Tcp(TlsStream),
    /// TLS handshake in progress.
    Tls(TlsStream),
    /// WebSocket upgrade in progress.
    Upgrade(MidHandshake<ClientHandshake<TlsStream>>),
    /// Open.
    Open(Box<WebSocket<TlsStream>>),
    /// Closed cleanly, or failed (the error was returned once).
    Done,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Tcp(_) => "tcp",
            Phase::Tls(_) => "tls",
            Phase::Upgrade(_) => "upgrade",
            Phase::Open(_) => "open",
            Phase::Done => "done",
        }
    }
}

impl fmt::Debug for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One WebSocket-over-TLS client connection. See the [module docs](self).
#[derive(Debug)]
pub struct WssConnection {
    endpoint: Endpoint,
    settings: WssSettings,
    server_name: ServerName<'static>,
    registry: Registry,
    token: Token,
    /// Resolved addresses; `next_addr` is the one to try after the current one fails.
    addrs: Vec<SocketAddr>,
    next_addr: usize,
    peer: SocketAddr,
    phase: Phase,
    nodelay: bool,
    socket_report: Option<SocketReport>,
    handshake_kind: Option<HandshakeKind>,
    close_code: Option<u16>,
    stats: WssStats,
    /// The frame [`WssConnection::send_text_prepared`] builds, kept for the next one.
    frame: Vec<u8>,
    /// Masking keys of the frames built here.
    masks: crate::backoff::SplitMix64,
}

impl WssConnection {
    /// Resolves `endpoint`'s host (blocking for as long as the resolver takes), starts a
    /// non-blocking TCP connect to its first address and registers the socket with `registry`
    /// under `token`. Returns at once after that; the connection proceeds in
    /// [`WssConnection::poll_ready`].
    pub fn connect(
        endpoint: &Endpoint,
        settings: &WssSettings,
        registry: &Registry,
        token: Token,
    ) -> Result<Self, WssError> {
        let addrs = endpoint.resolve()?;
        Self::connect_to(endpoint, addrs, settings, registry, token)
    }

    /// [`WssConnection::connect`] with the host already resolved (by [`Endpoint::resolve`],
    /// possibly on another thread): tries `addrs` in order, the next when a connect fails. The
    /// endpoint's host is still the TLS server name.
    pub fn connect_to(
        endpoint: &Endpoint,
        addrs: Vec<SocketAddr>,
        settings: &WssSettings,
        registry: &Registry,
        token: Token,
    ) -> Result<Self, WssError> {
        let host = endpoint.host();
        let Some(&first) = addrs.first() else {
            return Err(WssError::NoAddress {
                host: host.to_owned(),
            });
        };
        let server_name =
            ServerName::try_from(host.to_owned()).map_err(|_| WssError::ServerName {
                host: host.to_owned(),
            })?;
        let registry = registry.try_clone().map_err(WssError::Io)?;
        let mut conn = WssConnection {
            endpoint: endpoint.clone(),
            settings: settings.clone(),
            server_name,
            registry,
            token,
            addrs,
            next_addr: 0,
            peer: first,
            phase: Phase::Done,
            nodelay: false,
            socket_report: None,
            handshake_kind: None,
            close_code: None,
            stats: WssStats::default(),
            frame: Vec::with_capacity(FRAME_CAPACITY),
            masks: crate::backoff::SplitMix64::new(mask_seed(settings.clock_origin)),
        };
        conn.phase = Phase::Tcp(conn.start_tcp()?);
        Ok(conn)
    }

    /// Connects to the next resolved address that accepts a connect call.
    fn start_tcp(&mut self) -> Result<TlsStream, WssError> {
        loop {
            let Some(&addr) = self.addrs.get(self.next_addr) else {
                // `connect` resolved at least one address, so a failure was recorded first.
                return Err(WssError::Tcp {
                    addr: self.peer,
                    source: io::ErrorKind::NotConnected.into(),
                });
            };
            self.next_addr += 1;
            self.peer = addr;
            let mut tcp = match TcpStream::connect(addr) {
                Ok(tcp) => tcp,
                Err(source) if self.next_addr >= self.addrs.len() => {
                    return Err(WssError::Tcp { addr, source });
                }
                Err(_) => continue,
            };
            self.registry
                .register(
                    &mut tcp,
                    self.token,
                    Interest::READABLE | Interest::WRITABLE,
                )
                .map_err(WssError::Io)?;
            let tls = ClientConnection::new(self.settings.tls.rustls(), self.server_name.clone())
                .map_err(|error| WssError::Tls {
                host: self.endpoint.host().to_owned(),
                error,
            })?;
            return Ok(TlsStream::new(tcp, tls, self.settings.clock_origin));
        }
    }

    /// Advances the connection on a readiness `event` for its token: through connect, TLS and
    /// the upgrade, then reads every message the socket holds, calling `on_message` for each
    /// text or binary one, answers pings, and writes out whatever is pending. An error ends the
    /// connection (later calls answer [`Status::Closed`]); the caller reconnects.
    pub fn poll_ready<F>(&mut self, event: &Event, mut on_message: F) -> Result<Status, WssError>
    where
        F: FnMut(Received<'_>),
    {
        if event.token() != self.token {
            return Ok(self.status());
        }
        let outcome = self.advance(&mut on_message);
        if outcome.is_err() {
            self.phase = Phase::Done;
        }
        outcome
    }

    fn advance(&mut self, on_message: &mut dyn FnMut(Received<'_>)) -> Result<Status, WssError> {
        loop {
            self.phase = match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Tcp(stream) => match self.tcp_connected(stream)? {
                    Ok(stream) => Phase::Tls(stream),
                    Err(pending) => {
                        self.phase = pending;
                        return Ok(Status::Connecting);
                    }
                },
                Phase::Tls(mut stream) => match stream.handshake() {
                    Ok(false) => {
                        self.phase = Phase::Tls(stream);
                        return Ok(Status::Connecting);
                    }
                    Ok(true) => {
                        self.handshake_kind = stream.tls.handshake_kind();
                        let request = self.upgrade_request()?;
                        self.upgraded(tungstenite::client::client_with_config(
                            request,
                            stream,
                            Some(self.settings.websocket),
                        ))?
                    }
                    Err(e) => return Err(self.io_error(e)),
                },
                Phase::Upgrade(mid) => self.upgraded(mid.handshake())?,
                Phase::Open(mut ws) => {
                    let status = self.read_open(&mut ws, on_message)?;
                    if status == Status::Open {
                        self.phase = Phase::Open(ws);
                    }
                    return Ok(status);
                }
                Phase::Done => return Ok(self.status()),
            };
            if let Phase::Upgrade(_) = self.phase {
                return Ok(Status::Connecting);
            }
        }
    }

    /// `Ok(Ok(stream))` once TCP is connected (and `TCP_NODELAY` checked), `Ok(Err(phase))`
    /// while the connect is pending (on this or the next address).
    fn tcp_connected(&mut self, stream: TlsStream) -> Result<Result<TlsStream, Phase>, WssError> {
        let failure = match stream.tcp.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match stream.tcp.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    return Ok(Err(Phase::Tcp(stream)));
                }
                Err(e) => Some(e),
            },
        };
        if let Some(source) = failure {
            if self.next_addr >= self.addrs.len() {
                return Err(WssError::Tcp {
                    addr: self.peer,
                    source,
                });
            }
            drop(stream);
            return Ok(Err(Phase::Tcp(self.start_tcp()?)));
        }
        let report = sockopt::apply(&stream.tcp, &self.settings.socket);
        self.socket_report = Some(report);
        if !report.nodelay_on() {
            return Err(WssError::NoDelay {
                addr: self.peer,
                why: match report.nodelay {
                    sockopt::Setting::Failed { kind, os_error, .. } => Some(match os_error {
                        Some(code) => io::Error::from_raw_os_error(code),
                        None => kind.into(),
                    }),
                    _ => None,
                },
            });
        }
        self.nodelay = true;
        Ok(Ok(stream))
    }

    /// The upgrade request: the endpoint's URL, and the API key header when there is one
    /// (marked sensitive, so nothing that prints headers shows it).
    fn upgrade_request(&self) -> Result<tungstenite::handshake::client::Request, WssError> {
        use tungstenite::client::IntoClientRequest as _;
        use tungstenite::http::HeaderValue;
        let mut request =
            self.endpoint
                .url()
                .into_client_request()
                .map_err(|_| WssError::Endpoint {
                    url: self.endpoint.url(),
                    what: "not a valid upgrade request URI",
                })?;
        if let Some(ApiKeyHeader(key)) = &self.settings.api_key {
            // `ApiKeyHeader::new` admitted only visible ASCII, which a header value takes.
            if let Ok(mut value) = HeaderValue::from_str(key) {
                value.set_sensitive(true);
                request.headers_mut().insert("X-MBX-APIKEY", value);
            }
        }
        Ok(request)
    }

    /// The phase after a step of the WebSocket upgrade.
    fn upgraded(
        &mut self,
        step: Result<
            (
                WebSocket<TlsStream>,
                tungstenite::handshake::client::Response,
            ),
            HandshakeError<ClientHandshake<TlsStream>>,
        >,
    ) -> Result<Phase, WssError> {
        match step {
            Ok((ws, _response)) => Ok(Phase::Open(Box::new(ws))),
            Err(HandshakeError::Interrupted(mid)) => Ok(Phase::Upgrade(mid)),
            Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                Err(WssError::HandshakeStatus {
                    status: response.status().as_u16(),
                })
            }
            Err(HandshakeError::Failure(tungstenite::Error::Io(e))) => Err(self.io_error(e)),
            Err(HandshakeError::Failure(e)) => Err(WssError::Handshake(e)),
        }
    }

    /// Reads until the socket would block, then flushes (the pongs queued by pings among them).
    fn read_open(
        &mut self,
        ws: &mut WebSocket<TlsStream>,
        on_message: &mut dyn FnMut(Received<'_>),
    ) -> Result<Status, WssError> {
        loop {
            match ws.read() {
                Ok(Message::Text(text)) => {
                    let payload = text.as_bytes();
                    self.count(payload.len());
                    on_message(Received {
                        payload,
                        binary: false,
                        t_recv_ns: ws.get_ref().last_read_ns,
                    });
                }
                Ok(Message::Binary(bytes)) => {
                    self.count(bytes.len());
                    on_message(Received {
                        payload: &bytes,
                        binary: true,
                        t_recv_ns: ws.get_ref().last_read_ns,
                    });
                }
                // tungstenite has queued the pong with the same payload; the next `read` (or
                // the flush below) writes it, within this call.
                Ok(Message::Ping(_)) => self.stats.pings += 1,
                Ok(Message::Pong(_)) => self.stats.pongs += 1,
                // tungstenite queues the answering close; reading on ends at the server's EOF.
                Ok(Message::Close(frame)) => self.close_code = frame.map(|f| u16::from(f.code)),
                Ok(Message::Frame(_)) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(self.closed(ws));
                }
                Err(e) => {
                    return match self.open_error(e) {
                        // The close frames have delimited the data already: a TCP end without
                        // TLS close_notify after them loses nothing.
                        WssError::Reset if !ws.can_read() => Ok(self.closed(ws)),
                        e => Err(e),
                    };
                }
            }
        }
        self.stats.socket_bytes = ws.get_ref().bytes_read;
        match ws.flush() {
            Ok(()) => Ok(Status::Open),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                Ok(Status::Open)
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Ok(self.closed(ws))
            }
            Err(e) => Err(self.open_error(e)),
        }
    }

    fn count(&mut self, len: usize) {
        self.stats.messages += 1;
        self.stats.payload_bytes += len as u64;
    }

    fn closed(&mut self, ws: &mut WebSocket<TlsStream>) -> Status {
        self.stats.socket_bytes = ws.get_ref().bytes_read;
        let stream = ws.get_mut();
        stream.tls.send_close_notify();
        let _ = stream.write_records();
        Status::Closed {
            code: self.close_code,
        }
    }

    /// Sends a text message (a subscription request). Queued and written as far as the socket
    /// takes it; the rest goes out on the next writable event.
    pub fn send_text(&mut self, text: &str) -> Result<(), WssError> {
        let Phase::Open(ws) = &mut self.phase else {
            return Err(WssError::NotOpen);
        };
        match ws.send(Message::text(text)) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => {
                let e = self.open_error(e);
                self.phase = Phase::Done;
                Err(e)
            }
        }
    }

    /// Sends a text message without allocating: the masked frame is built in a buffer this
    /// connection keeps, and handed straight to TLS, then written to the socket as far as it
    /// takes it (the rest goes out on the next writable event). The order path's sender.
    ///
    /// Messages queued by tungstenite (a pong, a close) go first; while they cannot, this falls
    /// back to [`WssConnection::send_text`], which queues behind them. Should TLS refuse part
    /// of the frame (its send buffer full: the peer has stopped reading), the connection ends
    /// with [`WssError::SendBufferFull`]: half a frame cannot be taken back.
    pub fn send_text_prepared(&mut self, text: &str) -> Result<(), WssError> {
        let Phase::Open(ws) = &mut self.phase else {
            return Err(WssError::NotOpen);
        };
        match ws.flush() {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                return self.send_text(text);
            }
            Err(e) => {
                let e = self.open_error(e);
                self.phase = Phase::Done;
                return Err(e);
            }
        }
        let mask = (self.masks.next_u64() as u32).to_be_bytes();
        encode_masked_text(text.as_bytes(), mask, &mut self.frame);
        let stream = ws.get_mut();
        let mut at = 0;
        while at < self.frame.len() {
            match stream.tls.writer().write(&self.frame[at..]) {
                Ok(0) => match stream.write_records() {
                    Ok(()) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.phase = Phase::Done;
                        return Err(WssError::SendBufferFull);
                    }
                    Err(e) => {
                        let e = self.io_error(e);
                        self.phase = Phase::Done;
                        return Err(e);
                    }
                },
                Ok(n) => at += n,
                Err(e) => {
                    let e = self.io_error(e);
                    self.phase = Phase::Done;
                    return Err(e);
                }
            }
        }
        match stream.write_records() {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => {
                let e = self.io_error(e);
                self.phase = Phase::Done;
                Err(e)
            }
        }
    }

    /// Starts the close handshake with code 1000; keep polling until [`Status::Closed`].
    pub fn close(&mut self) -> Result<(), WssError> {
        let Phase::Open(ws) = &mut self.phase else {
            return Err(WssError::NotOpen);
        };
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        match ws.close(Some(frame)).and_then(|()| ws.flush()) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => Ok(()),
            Err(e) => {
                let e = self.open_error(e);
                self.phase = Phase::Done;
                Err(e)
            }
        }
    }

    /// Where the connection stands.
    pub fn status(&self) -> Status {
        match self.phase {
            Phase::Tcp(_) | Phase::Tls(_) | Phase::Upgrade(_) => Status::Connecting,
            Phase::Open(_) => Status::Open,
            Phase::Done => Status::Closed {
                code: self.close_code,
            },
        }
    }

    /// Whether `TCP_NODELAY` read back as on after connect (a connection where it does not
    /// fails instead).
    pub fn nodelay(&self) -> bool {
        self.nodelay
    }

    /// The socket options asked for and read back after the TCP connect; `None` before it.
    pub fn socket_report(&self) -> Option<SocketReport> {
        self.socket_report
    }

    /// How the TLS handshake went: `Full`, or `Resumed` when a reconnect from the same config
    /// resumed an earlier session. `None` before the handshake completes.
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.handshake_kind
    }

    /// The address connected to (or being tried).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The counters so far.
    pub fn stats(&self) -> WssStats {
        self.stats
    }

    /// The error for a socket-level failure: TLS when rustls's error is inside.
    fn io_error(&self, e: io::Error) -> WssError {
        let host = self.endpoint.host();
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::InvalidCertificate(error)) => WssError::CertificateNotTrusted {
                host: host.to_owned(),
                error: error.clone(),
            },
            Some(error) => WssError::Tls {
                host: host.to_owned(),
                error: error.clone(),
            },
            None => match e.kind() {
                io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe => WssError::Reset,
                _ => WssError::Io(e),
            },
        }
    }

    /// The error for a failure once open.
    fn open_error(&self, e: tungstenite::Error) -> WssError {
        match e {
            tungstenite::Error::Io(e) => self.io_error(e),
            tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ) => WssError::Reset,
            e => WssError::Protocol(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::encode_masked_text;
    use tungstenite::protocol::frame::FrameHeader;
    use tungstenite::protocol::frame::coding::{Data, OpCode};

    /// A key that would break or inject a header is refused; none is ever printed.
    #[test]
    fn api_key_headers_refuse_bad_bytes_and_print_nothing() {
        use super::ApiKeyHeader;
        let key =
            ApiKeyHeader::new("vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A")
                .expect("a key of visible ASCII");
        assert_eq!(format!("{key:?}"), "ApiKeyHeader(<redacted>)");
        for bad in ["", "abc\r\nX-Injected: 1", "a b", "tab\tkey", "caf\u{e9}"] {
            assert!(ApiKeyHeader::new(bad).is_none(), "{bad:?}");
        }
    }

    /// Every length form decodes, with tungstenite's own reader, to the same payload.
    #[test]
    fn prepared_frames_read_back() {
        let mut out = Vec::new();
        for len in [0usize, 1, 125, 126, 127, 300, 65_535, 65_536, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mask = [0x12, 0x34, 0x56, (len % 251) as u8];
            encode_masked_text(&payload, mask, &mut out);
            let mut cursor = std::io::Cursor::new(&out[..]);
            let (header, length) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert!(header.is_final);
            assert_eq!(header.opcode, OpCode::Data(Data::Text));
            assert_eq!(header.mask, Some(mask));
            assert_eq!(length, len as u64);
            let at = cursor.position() as usize;
            let body: Vec<u8> = out[at..]
                .iter()
                .zip(mask.iter().cycle())
                .map(|(b, m)| b ^ m)
                .collect();
            assert_eq!(body, payload, "length {len}");
        }
    }
}
