//! pinion's side: the feed thread's work, fused with the book's, on one thread, as placement 1
//! runs it: `pinion_net::wss` on a `mio` poll loop, each message decoded by pinion's
//! [`Decoder`] and its events applied through [`BookSync`] (the engine's book stage calls the
//! same `on_event` / `on_ticker`) into the array [`OrderBook`](pinion_book::OrderBook).
//!
//! The loop waits in `epoll_wait` (a poll with a timeout), as the baseline's runtime does, or,
//! with `busy_poll`, polls without waiting, as pinion's busy-spin wait strategy does on an
//! isolated core: no wake-up on the path, at the price of a whole core.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pinion_book::{BookLevels, BookSync, SyncConfig};
use pinion_core::{ConnId, EventKind, RawRecord, RecordKind, Venue};
use pinion_feed::parse::{ConnCtx, Decoded, Decoder};
use pinion_net::mio::{Events, Poll, Token};
use pinion_net::rustls::RootCertStore;
use pinion_net::rustls::pki_types::CertificateDer;
use pinion_net::wss::{self, Endpoint, Received, Status, WssConnection, WssSettings};
use pinion_testkit::alloc::thread_allocations;

use crate::workload::Workload;
use crate::{ClientRun, Job, Tally, ns_since};

const TOKEN: Token = Token(1);
/// Longest a run may take before it is called a failure.
const DEADLINE: Duration = Duration::from_secs(300);

/// Everything the message callback touches.
struct Consumer<'a> {
    decoder: Decoder,
    ctx: ConnCtx,
    sync: BookSync,
    job: &'a Job,
    origin: Instant,
    received: usize,
    /// Frames whose decoding failed or gave no event.
    bad: u64,
    applied: Vec<u64>,
    read: Vec<u64>,
    first_ns: u64,
    last_ns: u64,
    allocs_from: u64,
    allocs_to: u64,
    work_allocs: u64,
}

impl Consumer<'_> {
    #[inline]
    fn on_message(&mut self, m: Received<'_>) {
        let i = self.received;
        self.received += 1;
        if i == 0 {
            self.first_ns = ns_since(self.origin);
        }
        if i == self.job.warm_up {
            self.allocs_from = thread_allocations();
        }
        let before = thread_allocations();
        let rec = RawRecord {
            t_recv: m.t_recv_ns,
            conn: ConnId(0),
            kind: RecordKind::Frame,
            meta: b"",
            payload: m.payload,
        };
        let sync = &mut self.sync;
        let res = self.decoder.decode(&self.ctx, &rec, m.t_recv_ns, |ev| {
            if ev.kind == EventKind::BookTicker {
                sync.on_ticker(ev);
            } else {
                sync.on_event(ev);
            }
        });
        let t = ns_since(self.origin);
        let after = thread_allocations();
        if !matches!(res, Ok(Decoded::Events(n)) if n > 0) {
            self.bad += 1;
        }
        if i >= self.job.warm_up {
            self.work_allocs += after - before;
        }
        if let Some(slot) = self.applied.get_mut(i) {
            *slot = t;
        }
        if let Some(slot) = self.read.get_mut(i) {
            *slot = m.t_recv_ns;
        }
        self.last_ns = t;
        self.allocs_to = after;
    }
}

/// Connects to `addr`, trusting `cert`, and consumes `job.frames` messages, waiting in
/// `epoll_wait` between them or, with `busy_poll`, polling without waiting.
///
/// # Panics
/// When the connection fails or ends early, or a frame does not decode: the two sides must do
/// the same, complete work for a figure to mean anything.
pub fn run(
    addr: SocketAddr,
    cert: &CertificateDer<'static>,
    workload: &Workload,
    job: &Job,
    origin: Instant,
    busy_poll: bool,
) -> ClientRun {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).expect("trust the certificate");
    let settings = WssSettings {
        clock_origin: origin,
        ..WssSettings::new(wss::client_config(roots).expect("client config"))
    };
    let endpoint = Endpoint::parse(&format!(
        "wss://127.0.0.1:{}/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker",
        addr.port()
    ))
    .expect("endpoint");
    let mut sync = BookSync::new(&workload.spec, workload.instrument, SyncConfig::default())
        .expect("book for BTCUSDT");
    for e in &workload.snapshot_events {
        sync.on_event(e);
    }
    let stamps = if job.stamp_each { job.frames } else { 0 };
    let mut c = Consumer {
        decoder: Decoder::new(workload.instruments.clone()),
        ctx: ConnCtx {
            venue: Venue::BinanceSpot,
            default_instrument: Some(workload.instrument),
        },
        sync,
        job,
        origin,
        received: 0,
        bad: 0,
        applied: vec![0; stamps],
        read: vec![0; stamps],
        first_ns: 0,
        last_ns: 0,
        allocs_from: 0,
        allocs_to: 0,
        work_allocs: 0,
    };

    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(16);
    let mut conn =
        WssConnection::connect_to(&endpoint, vec![addr], &settings, poll.registry(), TOKEN)
            .expect("connect");
    let deadline = Instant::now() + DEADLINE;
    let wait = if busy_poll {
        Duration::ZERO
    } else {
        Duration::from_millis(100)
    };
    while c.received < job.frames {
        poll.poll(&mut events, Some(wait)).expect("poll");
        for event in &events {
            match conn.poll_ready(event, |m| c.on_message(m)) {
                Ok(Status::Connecting | Status::Open) => {}
                Ok(Status::Closed { code }) => panic!(
                    "pinion: the connection closed ({code:?}) after {} of {} frames",
                    c.received, job.frames
                ),
                Err(e) => panic!(
                    "pinion: the connection failed after {} of {} frames: {e}",
                    c.received, job.frames
                ),
            }
        }
        assert!(
            Instant::now() < deadline,
            "pinion: {} of {} frames after {DEADLINE:?}",
            c.received,
            job.frames
        );
    }
    drop(conn);
    assert_eq!(c.received, job.frames, "pinion: more frames than sent");
    assert_eq!(c.bad, 0, "pinion: frames that did not decode to an event");
    let sync = &c.sync;
    let (counters, tickers) = (sync.counters(), sync.ticker_counters());
    let book = sync.book();
    let tally = Tally {
        depth_applied: counters.messages_applied,
        depth_stale: counters.stale,
        tickers_ahead: tickers.ahead,
        tickers_stale: tickers.stale,
        tickers_matched: tickers.matched,
        tickers_mismatched: tickers.mismatched,
        resyncs: counters.resyncs,
        last_update_id: sync.last_update_id(),
        best_bid: book.best_bid().map(|l| (l.px.0, l.qty.0)),
        best_ask: book.best_ask().map(|l| (l.px.0, l.qty.0)),
        synced: sync.is_synced(),
    };
    ClientRun {
        frames: c.received,
        applied: c.applied,
        read: c.read,
        first_ns: c.first_ns,
        last_ns: c.last_ns,
        allocs: c.allocs_to - c.allocs_from,
        work_allocs: c.work_allocs,
        tally,
    }
}
