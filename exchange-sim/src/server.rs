//! [`FeedServer`]: the listener, its settings and counters, and the routing of each connection
//! to a market-stream session or a REST answer.
//!
//! One thread accepts; each connection gets its own thread (this is a test peer, not the hot
//! path). [`FeedServer::shutdown`] (or dropping the server) stops accepting, tells every session
//! to end and joins all threads.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use pinion_core::ConnId;
use pinion_feed::{FrameSource, SourceError};

use super::ExchangeSimError;
use super::http::{self, RequestHead};
use super::selection::StreamSelection;
use super::session;
use super::snapshots::SnapshotTable;
use super::tls::Conn;

/// Opens a fresh copy of the source: every session replays it from the start.
pub type SourceOpener =
    dyn Fn() -> Result<Box<dyn FrameSource + Send>, SourceError> + Send + Sync + 'static;

/// How fast frames are sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Back to back, as fast as the client reads.
    AsFastAsPossible,
    /// At the recorded receive times (`t_recv`) divided by `speed` (2.0 = twice as fast).
    Recorded {
        /// The speed factor, finite and positive.
        speed: f64,
    },
}

/// Settings of a [`FeedServer`]. [`FeedConfig::default`] behaves like Binance Spot's
/// market-stream server, replaying as fast as possible.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedConfig {
    /// Serve only frames of this connection of the source; `None` serves every connection's
    /// frames in source order (the same thing for single-connection recordings).
    pub connection: Option<ConnId>,
    /// How fast frames are sent.
    pub pacing: Pacing,
    /// Interval between server pings (Binance Spot: 20 s); `None` sends none.
    pub ping_interval: Option<Duration>,
    /// A ping not answered with a pong carrying its payload within this time ends the session
    /// (Binance Spot: 1 minute).
    pub pong_timeout: Duration,
    /// Send a `serverShutdown` event before closing at the end of the source, as Binance does
    /// before a planned shutdown.
    pub shutdown_notice: bool,
    /// Send at most this many frames per session.
    pub max_frames: Option<u64>,
    /// A client that does not read for this long is dropped (a blocked write times out).
    pub write_timeout: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            connection: None,
            pacing: Pacing::AsFastAsPossible,
            ping_interval: Some(Duration::from_secs(20)),
            pong_timeout: Duration::from_secs(60),
            shutdown_notice: true,
            max_frames: None,
            write_timeout: Duration::from_secs(30),
        }
    }
}

impl FeedConfig {
    /// Checks the settings that could make a session misbehave.
    pub fn validate(&self) -> Result<(), ExchangeSimError> {
        if let Pacing::Recorded { speed } = self.pacing
            && !(speed.is_finite() && speed > 0.0)
        {
            return Err(ExchangeSimError::Config(
                "pacing speed must be finite and positive",
            ));
        }
        if self.ping_interval.is_some_and(|d| d.is_zero()) {
            return Err(ExchangeSimError::Config("ping interval must not be zero"));
        }
        if self.pong_timeout.is_zero() || self.write_timeout.is_zero() {
            return Err(ExchangeSimError::Config(
                "pong and write timeouts must not be zero",
            ));
        }
        Ok(())
    }
}

/// Counters of a running server.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connections: AtomicU64,
    pub sessions: AtomicU64,
    pub sessions_completed: AtomicU64,
    pub frames_sent: AtomicU64,
    pub snapshots_served: AtomicU64,
    pub bad_requests: AtomicU64,
    pub pings_sent: AtomicU64,
    pub pong_timeouts: AtomicU64,
    pub source_errors: AtomicU64,
}

/// A copy of the server's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeedServerStats {
    /// TCP connections accepted.
    pub connections: u64,
    /// WebSocket sessions opened.
    pub sessions: u64,
    /// Sessions that reached the end of the source and closed it.
    pub sessions_completed: u64,
    /// Frames sent, over all sessions.
    pub frames_sent: u64,
    /// REST snapshots served.
    pub snapshots_served: u64,
    /// Requests answered with an error (bad head, unknown path, unknown symbol).
    pub bad_requests: u64,
    /// Pings sent.
    pub pings_sent: u64,
    /// Sessions ended because a ping went unanswered.
    pub pong_timeouts: u64,
    /// Records the source could not read (skipped), or failures to open it.
    pub source_errors: u64,
}

/// What every connection thread shares.
pub(crate) struct Shared {
    pub config: FeedConfig,
    pub open: Box<SourceOpener>,
    pub snapshots: SnapshotTable,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub stop: AtomicBool,
    pub counters: Counters,
}

/// The market-stream server of the exchange simulator. See the [module docs](super).
#[derive(Debug)]
pub struct FeedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("snapshots", &self.snapshots.len())
            .field("tls", &self.tls.is_some())
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

impl FeedServer {
    /// Listens on `listen` (port 0 picks a free one) and serves the source `open` returns.
    ///
    /// The source is opened once here to collect its REST snapshots (and to fail early when it
    /// cannot be read), then once per session.
    pub fn start<F>(
        listen: SocketAddr,
        config: FeedConfig,
        open: F,
    ) -> Result<FeedServer, ExchangeSimError>
    where
        F: Fn() -> Result<Box<dyn FrameSource + Send>, SourceError> + Send + Sync + 'static,
    {
        Self::start_with(listen, config, None, open)
    }

    /// Like [`FeedServer::start`], but every connection speaks TLS with `tls` (`wss://`,
    /// `https://`).
    pub fn start_tls<F>(
        listen: SocketAddr,
        config: FeedConfig,
        tls: Arc<rustls::ServerConfig>,
        open: F,
    ) -> Result<FeedServer, ExchangeSimError>
    where
        F: Fn() -> Result<Box<dyn FrameSource + Send>, SourceError> + Send + Sync + 'static,
    {
        Self::start_with(listen, config, Some(tls), open)
    }

    fn start_with<F>(
        listen: SocketAddr,
        config: FeedConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
        open: F,
    ) -> Result<FeedServer, ExchangeSimError>
    where
        F: Fn() -> Result<Box<dyn FrameSource + Send>, SourceError> + Send + Sync + 'static,
    {
        config.validate()?;
        let mut first = open()?;
        let (snapshots, scan_error) = SnapshotTable::scan(first.as_mut());
        if let Some(e) = scan_error {
            return Err(ExchangeSimError::Source(e));
        }
        let listener = TcpListener::bind(listen).map_err(|source| ExchangeSimError::Bind {
            addr: listen,
            source,
        })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ExchangeSimError::Bind {
                addr: listen,
                source,
            })?;
        let shared = Arc::new(Shared {
            config,
            open: Box::new(open),
            snapshots,
            tls,
            stop: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("exchange-sim-accept".into())
                .spawn(move || accept_loop(listener, &shared))
                .map_err(ExchangeSimError::Spawn)?
        };
        Ok(FeedServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many REST snapshots the source holds.
    pub fn snapshot_count(&self) -> usize {
        self.shared.snapshots.len()
    }

    /// The counters so far.
    pub fn stats(&self) -> FeedServerStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FeedServerStats {
            connections: get(&c.connections),
            sessions: get(&c.sessions),
            sessions_completed: get(&c.sessions_completed),
            frames_sent: get(&c.frames_sent),
            snapshots_served: get(&c.snapshots_served),
            bad_requests: get(&c.bad_requests),
            pings_sent: get(&c.pings_sent),
            pong_timeouts: get(&c.pong_timeouts),
            source_errors: get(&c.source_errors),
        }
    }

    /// Blocks until the server stops (it only stops through [`FeedServer::shutdown`] from
    /// another handle, so for a binary this means: serve until killed).
    pub fn wait(mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }

    /// Stops accepting, ends every session (closing it like a `serverShutdown`) and joins the
    /// threads. Sessions notice within a few milliseconds, except one blocked writing to a
    /// client that does not read: that one ends at [`FeedConfig::write_timeout`].
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // `accept` blocks; a connection of our own wakes it to see the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        if self.acceptor.is_some() {
            self.stop_and_join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: &Arc<Shared>) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        // A failed accept (the peer reset before we got to it) concerns that peer only.
        let Ok(stream) = conn else { continue };
        shared.counters.connections.fetch_add(1, Ordering::Relaxed);
        workers.retain(|w| !w.is_finished());
        let worker_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("exchange-sim-conn".into())
            .spawn(move || serve_connection(stream, &worker_shared));
        match spawned {
            Ok(handle) => workers.push(handle),
            // Out of threads: this connection is dropped, the server goes on.
            Err(_) => {
                shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
}

/// Reads the request head and answers it: a WebSocket session or one REST response.
fn serve_connection(tcp: TcpStream, shared: &Shared) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = tcp.set_write_timeout(Some(shared.config.write_timeout));
    // A TLS record of a ClientHello starts with 0x16 (handshake). Anything else is a
    // plaintext client on a TLS port: drop it at once rather than wait for a record that will
    // never complete.
    let mut first = [0u8; 1];
    if shared.tls.is_some() && !matches!(tcp.peek(&mut first), Ok(1) if first[0] == 0x16) {
        shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let Ok(mut stream) = Conn::new(tcp, shared.tls.as_ref()) else {
        shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let head = match http::read_head(&mut stream) {
        Ok(head) => head,
        Err(http::HeadError::Closed) => return,
        Err(_) => {
            shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
            // Over a TLS session that failed, an answer would only wait on the handshake.
            if let Conn::Plain(_) = stream {
                let _ = http::respond_error(&mut stream, "400 Bad Request", -1100, "Bad request.");
            }
            return;
        }
    };
    if head.upgrade_websocket {
        open_session(stream, &head, shared);
    } else {
        answer_rest(&mut stream, &head, shared);
        stream.close_notify();
    }
}

fn open_session(mut stream: Conn, head: &RequestHead, shared: &Shared) {
    let streams = head.query_param("streams");
    let selection = StreamSelection::from_request(&head.path, streams.as_deref());
    let (Some(selection), Some(key), "GET") = (
        selection,
        head.websocket_key.as_deref(),
        head.method.as_str(),
    ) else {
        shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        let _ = http::respond_error(&mut stream, "404 Not Found", -1000, "Unknown stream path.");
        return;
    };
    if http::respond_switching(&mut stream, key).is_err() {
        return;
    }
    shared.counters.sessions.fetch_add(1, Ordering::Relaxed);
    session::run(stream, selection, shared);
}

fn answer_rest(stream: &mut Conn, head: &RequestHead, shared: &Shared) {
    let c = &shared.counters;
    if head.method != "GET" || head.path != "/api/v3/depth" {
        c.bad_requests.fetch_add(1, Ordering::Relaxed);
        let _ = http::respond_error(stream, "404 Not Found", -1000, "Unknown endpoint.");
        return;
    }
    let Some(symbol) = head.query_param("symbol") else {
        c.bad_requests.fetch_add(1, Ordering::Relaxed);
        let _ = http::respond_error(
            stream,
            "400 Bad Request",
            -1102,
            "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
        );
        return;
    };
    match shared.snapshots.body_for(&symbol) {
        Some(body) => {
            c.snapshots_served.fetch_add(1, Ordering::Relaxed);
            let _ = http::respond(stream, "200 OK", "application/json;charset=UTF-8", body);
        }
        None => {
            c.bad_requests.fetch_add(1, Ordering::Relaxed);
            let _ = http::respond_error(stream, "400 Bad Request", -1121, "Invalid symbol.");
        }
    }
}
