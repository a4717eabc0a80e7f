//! The baseline: what a typical Rust client of Binance's streams runs, doing the same work.
//!
//! - Transport: a tokio current-thread runtime on the client's own thread, tokio-tungstenite
//!   over tokio-rustls (`client_async_tls_with_config` with a rustls connector) on a tokio
//!   `TcpStream` with `TCP_NODELAY` on, the same WebSocket limits as pinion's, and a rustls
//!   client config built the way pinion's is: the ring provider, the same safe protocol
//!   versions, the simulator's certificate as the only root. The socket is wrapped to note the
//!   instant each read returns bytes (one relaxed store), as pinion's stream does, so the
//!   baseline's latency splits the same way into written → read and read → applied.
//! - Decoding: the stream name picks the message type (a prefix check), then `serde_json`
//!   deserialises the frame into typed structs with owned `String`s, the usual shape (the parse
//!   benchmark's baseline uses the same structs); prices and quantities go through the same
//!   exact `Px`/`Qty` parsing as pinion's, so both books hold the same integers.
//! - Book: a `BTreeMap` per side (price → quantity, scaled integers), the common peer's book,
//!   under Binance Spot's documented sync rule (drop `u ≤ L`; the first applied message has
//!   `U ≤ L+1 ≤ u`; then `U == previous u + 1`), the book checked for a cross after each
//!   message, and the book ticker handled as pinion's `BookSync::on_ticker` does (stale, same
//!   id checked against the best levels, newer held until the depth stream reaches it). The
//!   run's counts of each outcome are compared with pinion's afterwards: the same decisions on
//!   every frame.

#![allow(non_snake_case)]

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::StreamExt;
use pinion_core::{Px, Qty};
use pinion_net::rustls::pki_types::CertificateDer;
use pinion_net::rustls::{self, ClientConfig, RootCertStore};
use pinion_testkit::alloc::thread_allocations;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, client_async_tls_with_config};

use crate::workload::Workload;
use crate::{ClientRun, Job, Tally, ns_since};

#[derive(Deserialize)]
struct Envelope<T> {
    #[allow(dead_code)]
    stream: String,
    data: T,
}

#[derive(Deserialize)]
struct DepthUpdate {
    #[allow(dead_code)]
    e: String,
    #[allow(dead_code)]
    E: u64,
    #[allow(dead_code)]
    s: String,
    U: u64,
    u: u64,
    b: Vec<[String; 2]>,
    a: Vec<[String; 2]>,
}

#[derive(Deserialize)]
struct BookTicker {
    u: u64,
    #[allow(dead_code)]
    s: String,
    b: String,
    B: String,
    a: String,
    A: String,
}

#[derive(Deserialize)]
struct Snapshot {
    lastUpdateId: u64,
    bids: Vec<[String; 2]>,
    asks: Vec<[String; 2]>,
}

/// A book ticker ahead of the book.
#[derive(Clone, Copy)]
struct Held {
    u: u64,
    bid: (i64, i64),
    ask: (i64, i64),
}

/// The peer's book: price → quantity per side, with the sync rule and the ticker logic.
struct PeerBook {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    last_u: u64,
    /// Waiting for the message that bridges the snapshot.
    bridging: bool,
    held: Option<Held>,
    price_decimals: u8,
    qty_decimals: u8,
    tally: Tally,
}

/// Why the peer could not use a frame; the benchmark's input is valid, so any is a failure.
#[derive(Debug)]
enum PeerError {
    Json,
    Decimal,
    Gap,
    Crossed,
    Unknown,
}

impl From<serde_json::Error> for PeerError {
    fn from(_: serde_json::Error) -> Self {
        PeerError::Json
    }
}

impl From<pinion_core::DecimalError> for PeerError {
    fn from(_: pinion_core::DecimalError) -> Self {
        PeerError::Decimal
    }
}

impl PeerBook {
    fn from_snapshot(workload: &Workload) -> Result<Self, PeerError> {
        let s: Snapshot = serde_json::from_slice(&workload.snapshot_json)?;
        let mut book = PeerBook {
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            last_u: s.lastUpdateId,
            bridging: true,
            held: None,
            price_decimals: workload.spec.price_decimals,
            qty_decimals: workload.spec.qty_decimals,
            tally: Tally::default(),
        };
        for (px, qty) in book.levels(&s.bids)? {
            book.bids.insert(px, qty);
        }
        for (px, qty) in book.levels(&s.asks)? {
            book.asks.insert(px, qty);
        }
        Ok(book)
    }

    fn levels<'a>(
        &self,
        raw: &'a [[String; 2]],
    ) -> Result<impl Iterator<Item = (i64, i64)> + 'a, PeerError> {
        let (pd, qd) = (self.price_decimals, self.qty_decimals);
        let parsed: Result<Vec<(i64, i64)>, PeerError> = raw
            .iter()
            .map(|[p, q]| {
                Ok((
                    Px::parse(p.as_bytes(), pd)?.0,
                    Qty::parse(q.as_bytes(), qd)?.0,
                ))
            })
            .collect();
        Ok(parsed?.into_iter())
    }

    fn best_bid(&self) -> Option<(i64, i64)> {
        self.bids.last_key_value().map(|(p, q)| (*p, *q))
    }

    fn best_ask(&self) -> Option<(i64, i64)> {
        self.asks.first_key_value().map(|(p, q)| (*p, *q))
    }

    fn on_frame(&mut self, text: &[u8]) -> Result<(), PeerError> {
        let name = text.get(11..).unwrap_or_default();
        if name.starts_with(b"btcusdt@bookTicker") {
            let t: Envelope<BookTicker> = serde_json::from_slice(text)?;
            self.on_ticker(&t.data)
        } else if name.starts_with(b"btcusdt@depth") {
            let d: Envelope<DepthUpdate> = serde_json::from_slice(text)?;
            self.on_depth(&d.data)
        } else {
            Err(PeerError::Unknown)
        }
    }

    fn on_depth(&mut self, d: &DepthUpdate) -> Result<(), PeerError> {
        let applies = if self.bridging {
            d.u > self.last_u && d.U <= self.last_u + 1
        } else {
            d.U == self.last_u + 1
        };
        if d.u <= self.last_u {
            self.tally.depth_stale += 1;
            return Ok(());
        }
        if !applies {
            return Err(PeerError::Gap);
        }
        let (pd, qd) = (self.price_decimals, self.qty_decimals);
        for (side, raw) in [(&mut self.bids, &d.b), (&mut self.asks, &d.a)] {
            for [p, q] in raw {
                let px = Px::parse(p.as_bytes(), pd)?.0;
                let qty = Qty::parse(q.as_bytes(), qd)?.0;
                if qty == 0 {
                    side.remove(&px);
                } else {
                    side.insert(px, qty);
                }
            }
        }
        self.bridging = false;
        self.last_u = d.u;
        self.tally.depth_applied += 1;
        if let (Some(b), Some(a)) = (self.best_bid(), self.best_ask())
            && b.0 >= a.0
        {
            return Err(PeerError::Crossed);
        }
        // A held ticker the book has now reached is dropped, checked when the ids are equal.
        if let Some(h) = self.held
            && self.last_u >= h.u
        {
            self.held = None;
            if self.last_u == h.u {
                self.check(h.bid, h.ask);
            }
        }
        Ok(())
    }

    fn on_ticker(&mut self, t: &BookTicker) -> Result<(), PeerError> {
        let (pd, qd) = (self.price_decimals, self.qty_decimals);
        let bid = (
            Px::parse(t.b.as_bytes(), pd)?.0,
            Qty::parse(t.B.as_bytes(), qd)?.0,
        );
        let ask = (
            Px::parse(t.a.as_bytes(), pd)?.0,
            Qty::parse(t.A.as_bytes(), qd)?.0,
        );
        if self.held.is_some_and(|h| t.u <= h.u) || t.u < self.last_u {
            self.tally.tickers_stale += 1;
        } else if t.u == self.last_u {
            self.check(bid, ask);
        } else {
            self.held = Some(Held { u: t.u, bid, ask });
            self.tally.tickers_ahead += 1;
        }
        Ok(())
    }

    fn check(&mut self, bid: (i64, i64), ask: (i64, i64)) {
        if self.best_bid() == Some(bid) && self.best_ask() == Some(ask) {
            self.tally.tickers_matched += 1;
        } else {
            self.tally.tickers_mismatched += 1;
        }
    }
}

/// A socket that notes when its last read returned bytes, in ns since `origin`.
struct StampedTcp {
    tcp: TcpStream,
    origin: Instant,
    last_read_ns: Arc<AtomicU64>,
}

impl AsyncRead for StampedTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let out = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(out, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.last_read_ns
                .store(ns_since(self.origin), Ordering::Relaxed);
        }
        out
    }
}

impl AsyncWrite for StampedTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Connects to `addr`, trusting `cert`, and consumes `job.frames` messages on a current-thread
/// tokio runtime on the calling thread.
///
/// # Panics
/// When the connection fails or ends early, or a frame cannot be used.
pub fn run(
    addr: SocketAddr,
    cert: &CertificateDer<'static>,
    workload: &Workload,
    job: &Job,
    origin: Instant,
) -> ClientRun {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).expect("trust the certificate");
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    // pinion's market-data settings: tungstenite's defaults with 16 MiB message limits.
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20));
    let url = format!(
        "wss://127.0.0.1:{}/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker",
        addr.port()
    );
    let mut book = PeerBook::from_snapshot(workload).expect("the snapshot");
    let stamps = if job.stamp_each { job.frames } else { 0 };
    let mut applied = vec![0u64; stamps];
    let mut read = vec![0u64; stamps];
    let last_read_ns = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    let (received, first_ns, last_ns, allocs, work_allocs) = runtime.block_on(async {
        let tcp = TcpStream::connect(addr).await.expect("baseline: connect");
        tcp.set_nodelay(true).expect("baseline: TCP_NODELAY");
        let stream = StampedTcp {
            tcp,
            origin,
            last_read_ns: Arc::clone(&last_read_ns),
        };
        let (mut ws, _) = client_async_tls_with_config(
            url,
            stream,
            Some(ws_config),
            Some(Connector::Rustls(Arc::new(config))),
        )
        .await
        .expect("baseline: TLS and WebSocket handshake");
        let (mut received, mut first_ns, mut last_ns) = (0usize, 0u64, 0u64);
        let (mut allocs_from, mut allocs_to, mut work_allocs) = (0u64, 0u64, 0u64);
        while received < job.frames {
            let message = match ws.next().await {
                Some(Ok(m)) => m,
                Some(Err(e)) => panic!(
                    "baseline: the connection failed after {received} of {} frames: {e}",
                    job.frames
                ),
                None => panic!(
                    "baseline: the connection ended after {received} of {} frames",
                    job.frames
                ),
            };
            let text: &[u8] = match &message {
                Message::Text(t) => t.as_bytes(),
                Message::Binary(b) => b.as_ref(),
                _ => continue,
            };
            let i = received;
            received += 1;
            if i == 0 {
                first_ns = ns_since(origin);
            }
            if i == job.warm_up {
                allocs_from = thread_allocations();
            }
            let before = thread_allocations();
            if let Err(e) = book.on_frame(text) {
                panic!("baseline: frame {i}: {e:?}");
            }
            let t = ns_since(origin);
            let after = thread_allocations();
            if i >= job.warm_up {
                work_allocs += after - before;
            }
            if let Some(slot) = applied.get_mut(i) {
                *slot = t;
            }
            if let Some(slot) = read.get_mut(i) {
                *slot = last_read_ns.load(Ordering::Relaxed);
            }
            last_ns = t;
            allocs_to = after;
        }
        (
            received,
            first_ns,
            last_ns,
            allocs_to - allocs_from,
            work_allocs,
        )
    });
    let mut tally = book.tally;
    tally.last_update_id = book.last_u;
    tally.best_bid = book.best_bid();
    tally.best_ask = book.best_ask();
    tally.synced = !book.bridging;
    ClientRun {
        frames: received,
        applied,
        read,
        first_ns,
        last_ns,
        allocs,
        work_allocs,
        tally,
    }
}
