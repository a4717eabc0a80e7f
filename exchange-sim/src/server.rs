//! [`FeedServer`]: the listener and the routing of each connection to a market-stream session
//! or a REST answer. Its settings are in `config`, what its threads share in `state`.
//!
//! One thread accepts; each connection gets its own thread (this is a test peer, not the hot
//! path). [`FeedServer::shutdown`] (or dropping the server) stops accepting, tells every session
//! to end and joins all threads.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use pinion_feed::{FrameSource, SourceError};

use crate::ExchangeSimError;
use crate::config::FeedConfig;
use crate::http::{self, RequestHead};
use crate::selection::StreamSelection;
use crate::session;
use crate::snapshots::SnapshotTable;
use crate::state::{Counters, FeedServerStats, Shared};
use crate::tls::Conn;

/// The market-stream server of the exchange simulator. See the [crate docs](crate).
#[derive(Debug)]
pub struct FeedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
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
        self.shared.counters.snapshot()
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
