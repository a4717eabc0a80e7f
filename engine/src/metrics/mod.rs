//! Metrics and health while a pipeline runs: a thread of its own serves Prometheus text
//! exposition (`/metrics`), liveness (`/health`) and readiness (`/ready`) over plain HTTP/1.1 on a
//! local address, and another prints a one-line status on stderr every few seconds.
//!
//! Everything here reads what the stages already publish with relaxed atomic stores on their own
//! cache lines ([`ProgressCounters`], a live source's [`LiveCounters`] and [`SnapshotRequests`],
//! an order session's [`SessionMirror`]), plus [`BookStates`], which the book stage writes when
//! a book's sync state changes and, behind a sequence lock, each top of book it sends. The
//! stages never wait for, lock against or format for this module: a scrape reads a snapshot of
//! numbers that may be a few microseconds apart from each other, which is what a scrape is.
//!
//! Liveness is read from the kernel: each planned stage thread must be present under
//! `/proc/self/task` with its name, so a stage thread that died (a panic ends it) makes `/health`
//! fail while the rest of the process runs on.
//!
//! The stages publish their running counters into [`StageLive`](crate::runtime::StageLive)
//! slots after each busy poll (only when something reads them), and share their latency
//! recorders' counts read-only ([`LiveLatency`](crate::latency::LiveLatency)), exported as
//! Prometheus histograms.

mod exposition;
mod server;
mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering, fence};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pinion_book::SyncState;
use pinion_core::{BookTop, InstrumentId, Instruments, Level, Px, Qty};
use pinion_feed::live::{LiveCounters, SnapshotRequests};
use pinion_gateway::binance::mirror::SessionMirror;

use crate::config::MetricsSettings;
use crate::progress::ProgressCounters;

pub use exposition::{Family, MetricKind, families, render, render_trading};
pub use server::{Response, respond};
pub use status::status_line;

/// A book's sync state as [`BookStates`] keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BookState {
    /// No book for this instrument.
    None = 0,
    /// Not trusted: waiting for a snapshot.
    AwaitingSnapshot = 1,
    /// A snapshot held, waiting for the message that bridges it.
    Syncing = 2,
    /// Following the venue message by message.
    Live = 3,
}

impl BookState {
    /// The state of a sync machine.
    #[inline]
    pub const fn of(state: SyncState) -> Self {
        match state {
            SyncState::AwaitingSnapshot { .. } => Self::AwaitingSnapshot,
            SyncState::Syncing { .. } => Self::Syncing,
            SyncState::Live => Self::Live,
        }
    }

    const fn from_code(code: u8) -> Self {
        match code {
            1 => Self::AwaitingSnapshot,
            2 => Self::Syncing,
            3 => Self::Live,
            _ => Self::None,
        }
    }

    /// The label value the exposition uses (`awaiting_snapshot`, `syncing`, `live`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::AwaitingSnapshot => "awaiting_snapshot",
            Self::Syncing => "syncing",
            Self::Live => "live",
        }
    }
}

/// One book's published state: written by the book stage only, read by the metrics thread.
#[derive(Debug, Default)]
struct BookSlot {
    state: AtomicU8,
    losses: AtomicU64,
    /// The last top of book sent to the strategy, behind a sequence lock: odd while the book
    /// stage writes it, bumped to the next even value once written.
    seq: AtomicU64,
    /// Best bid price and quantity, best ask price and quantity (raw units), whether synced,
    /// and the event time (ns); zero quantities for an empty side.
    top: [AtomicU64; 6],
}

/// The best levels of a book as the book stage last sent them to the strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopOfBook {
    /// Best bid (none when that side is empty).
    pub bid: Option<Level>,
    /// Best ask (none when that side is empty).
    pub ask: Option<Level>,
    /// Whether the book was in sync with the venue.
    pub synced: bool,
    /// The event time of that top, ns since the Unix epoch.
    pub t_recv: u64,
}

impl TopOfBook {
    /// Best ask less best bid in raw price units, with both sides.
    pub fn spread(&self) -> Option<i64> {
        Some(self.ask?.px.0 - self.bid?.px.0)
    }
}

/// Each book's sync state and losses of sync, by instrument id, as the book stage last published
/// them. The book stage is the single writer: it stores a state only when it changed and counts
/// a loss with a load and a store, so the hook costs a compare per event and nothing else.
#[derive(Debug)]
pub struct BookStates {
    slots: Box<[BookSlot]>,
}

impl BookStates {
    /// Slots for `instruments` instruments, all [`BookState::None`] until the book stage says.
    pub fn new(instruments: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: (0..instruments).map(|_| BookSlot::default()).collect(),
        })
    }

    /// Book `i` is now in `state` (book stage only).
    #[inline]
    pub fn set(&self, i: usize, state: BookState) {
        if let Some(s) = self.slots.get(i) {
            s.state.store(state as u8, Ordering::Relaxed);
        }
    }

    /// Book `i` lost its sync once more (book stage only: single writer, no read-modify-write).
    #[inline]
    pub fn lost(&self, i: usize) {
        if let Some(s) = self.slots.get(i) {
            s.losses
                .store(s.losses.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    /// Book `i`'s top was sent to the strategy as `top` (book stage only: the single writer).
    /// Six relaxed stores between two sequence bumps; no lock, no allocation.
    #[inline]
    pub fn set_top(&self, i: usize, top: &BookTop) {
        let Some(s) = self.slots.get(i) else {
            return;
        };
        let level = |l: Option<Level>| l.map_or((0, 0), |l| (l.px.0 as u64, l.qty.0 as u64));
        let (bp, bq) = level(top.best_bid());
        let (ap, aq) = level(top.best_ask());
        let seq = s.seq.load(Ordering::Relaxed);
        s.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (slot, v) in s
            .top
            .iter()
            .zip([bp, bq, ap, aq, u64::from(top.synced), top.t_recv])
        {
            slot.store(v, Ordering::Relaxed);
        }
        s.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// Book `i`'s top as last sent to the strategy, read whole (never half of one update and
    /// half of the next); `None` before the first or while the book stage keeps writing.
    pub fn top(&self, i: usize) -> Option<TopOfBook> {
        let s = self.slots.get(i)?;
        for _ in 0..64 {
            let before = s.seq.load(Ordering::Acquire);
            if before == 0 {
                return None;
            }
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let v: [u64; 6] = std::array::from_fn(|k| s.top[k].load(Ordering::Relaxed));
            fence(Ordering::Acquire);
            if s.seq.load(Ordering::Relaxed) != before {
                continue;
            }
            let level = |px: u64, qty: u64| {
                (qty != 0).then_some(Level {
                    px: Px(px as i64),
                    qty: Qty(qty as i64),
                })
            };
            return Some(TopOfBook {
                bid: level(v[0], v[1]),
                ask: level(v[2], v[3]),
                synced: v[4] != 0,
                t_recv: v[5],
            });
        }
        None
    }

    /// Book `i`'s state.
    pub fn state(&self, i: usize) -> BookState {
        self.slots.get(i).map_or(BookState::None, |s| {
            BookState::from_code(s.state.load(Ordering::Relaxed))
        })
    }

    /// Times book `i` lost its sync.
    pub fn losses(&self, i: usize) -> u64 {
        self.slots
            .get(i)
            .map_or(0, |s| s.losses.load(Ordering::Relaxed))
    }

    /// How many instruments there are slots for.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Everything the metrics thread reads.
#[derive(Debug, Clone)]
pub struct Sources {
    /// `replay` or `live`.
    pub command: &'static str,
    /// The stage threads' names, as planned.
    pub threads: Vec<String>,
    /// The instruments, for the labels.
    pub instruments: Instruments,
    /// Records and orders so far.
    pub progress: Arc<ProgressCounters>,
    /// The books' states.
    pub books: Arc<BookStates>,
    /// A live input's connection counters.
    pub live: Option<Arc<LiveCounters>>,
    /// A live input's snapshot requests, by instrument.
    pub requests: Option<Arc<SnapshotRequests>>,
    /// `pinion live --trade`: each order session's state, by the instrument it trades.
    pub sessions: Vec<(InstrumentId, Arc<SessionMirror>)>,
    /// When the run started.
    pub started: Instant,
    /// Set once the stages have finished.
    pub ended: Arc<AtomicBool>,
    /// The kill switch, the pause and each instrument's account.
    pub control: Option<Arc<crate::control::Control>>,
    /// Each stage's running counters.
    pub stages: Vec<Arc<crate::runtime::StageLive>>,
    /// The stages' latency recorders, read while they record.
    pub latency: Vec<crate::latency::LiveLatency>,
    /// Slots of each ring between the stages.
    pub ring_capacity: usize,
    /// The operator bot's counters, when the bot runs.
    pub bot: Option<Arc<crate::bot::BotCounters>>,
}

impl Sources {
    /// Seconds since the run started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Liveness: `Ok` when every stage thread runs; otherwise why not.
    pub fn health(&self) -> Result<(), String> {
        if self.ended.load(Ordering::Relaxed) {
            return Err("the stages have finished".to_owned());
        }
        let running = running_threads();
        let missing: Vec<&str> = self
            .threads
            .iter()
            .filter(|t| !running.iter().any(|r| r == comm_name(t)))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "stage thread(s) not running: {}",
                missing.join(", ")
            ))
        }
    }

    /// Readiness: `Ok` when the process is live, every book is live and every order session is
    /// ready (logged on, subscribed, reconciled); otherwise every reason.
    pub fn ready(&self) -> Result<(), Vec<String>> {
        let mut reasons = Vec::new();
        if let Err(e) = self.health() {
            reasons.push(e);
        }
        for (id, spec) in self.instruments.iter() {
            let state = self.books.state(usize::from(id.0));
            if state != BookState::None && state != BookState::Live {
                reasons.push(format!(
                    "book {} {} is {}",
                    spec.venue,
                    spec.symbol.as_str(),
                    state.name()
                ));
            }
        }
        for (id, session) in &self.sessions {
            if !session.is_ready() {
                let name = self
                    .instruments
                    .get(*id)
                    .map_or_else(String::new, |s| s.symbol.as_str().to_owned());
                reasons.push(format!("order session {name} is not ready"));
            }
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    /// Stage threads running now (of those planned).
    pub fn threads_running(&self) -> usize {
        if self.ended.load(Ordering::Relaxed) {
            return 0;
        }
        let running = running_threads();
        self.threads
            .iter()
            .filter(|t| running.iter().any(|r| r == comm_name(t)))
            .count()
    }
}

/// The kernel keeps 15 bytes of a thread's name.
fn comm_name(name: &str) -> &str {
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The names of this process's threads, from `/proc/self/task/*/comm`.
fn running_threads() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .map(|s| s.trim_end_matches('\n').to_owned())
        .collect()
}

/// Why the metrics could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address could not be bound.
    #[error("metrics.listen {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("metrics thread: {0}")]
    Spawn(std::io::Error),
}

/// The running metrics endpoint and status line; stopped by [`Monitor::stop`] or on drop.
#[derive(Debug)]
pub struct Monitor {
    done: Arc<AtomicBool>,
    ended: Arc<AtomicBool>,
    addr: Option<SocketAddr>,
    threads: Vec<JoinHandle<()>>,
}

impl Monitor {
    /// Binds the endpoint and starts the threads `settings` asks for (none when both are off).
    pub fn start(settings: &MetricsSettings, sources: Sources) -> Result<Self, MetricsError> {
        let done = Arc::new(AtomicBool::new(false));
        let ended = Arc::clone(&sources.ended);
        let mut threads = Vec::new();
        let mut addr = None;
        if let Some(listen) = settings.listen {
            let listener = server::bind(listen).map_err(|source| MetricsError::Bind {
                addr: listen,
                source,
            })?;
            addr = listener.local_addr().ok();
            let (src, flag) = (sources.clone(), Arc::clone(&done));
            threads.push(
                std::thread::Builder::new()
                    .name("metrics".to_owned())
                    .spawn(move || server::serve(&listener, &src, &flag))
                    .map_err(MetricsError::Spawn)?,
            );
        }
        if let Some(every) = settings.status_interval {
            let flag = Arc::clone(&done);
            let spawned = std::thread::Builder::new()
                .name("status".to_owned())
                .spawn(move || status::run(&sources, every, &flag));
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => {
                    let mut m = Self {
                        done,
                        ended,
                        addr,
                        threads,
                    };
                    m.halt();
                    return Err(MetricsError::Spawn(e));
                }
            }
        }
        Ok(Self {
            done,
            ended,
            addr,
            threads,
        })
    }

    /// Where the endpoint listens (the bound port when `:0` was asked for).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The stages have finished: `/health` and `/ready` say so from now on.
    pub fn stages_ended(&self) {
        self.ended.store(true, Ordering::Relaxed);
    }

    /// Stops the threads and waits for them.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        for h in self.threads.drain(..) {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_core::Side;

    fn top(i: u16, bid: i64, ask: i64, qty: i64) -> BookTop {
        let mut t = BookTop::EMPTY;
        t.instrument = InstrumentId(i);
        t.synced = true;
        t.t_recv = 7;
        t.copy_side(
            Side::Bid,
            &[Level {
                px: Px(bid),
                qty: Qty(qty),
            }],
        );
        t.copy_side(
            Side::Ask,
            &[Level {
                px: Px(ask),
                qty: Qty(qty + 1),
            }],
        );
        t
    }

    #[test]
    fn a_top_reads_back_whole_and_none_before_the_first() {
        let states = BookStates::new(2);
        assert_eq!(states.top(0), None);
        states.set_top(1, &top(1, 100, 103, 5));
        let t = states.top(1).expect("written");
        assert_eq!(t.bid.map(|l| (l.px.0, l.qty.0)), Some((100, 5)));
        assert_eq!(t.ask.map(|l| (l.px.0, l.qty.0)), Some((103, 6)));
        assert_eq!(t.spread(), Some(3));
        assert!(t.synced);
        assert_eq!(t.t_recv, 7);
        assert_eq!(states.top(0), None, "the other book untouched");
        assert_eq!(states.top(5), None, "no such book");
        let mut empty = BookTop::EMPTY;
        empty.instrument = InstrumentId(1);
        states.set_top(1, &empty);
        let t = states.top(1).expect("written");
        assert_eq!(
            (t.bid, t.ask, t.spread(), t.synced),
            (None, None, None, false)
        );
    }

    #[test]
    fn a_reader_never_sees_half_of_one_top_and_half_of_another() {
        // Every top the writer publishes has ask = bid + 3 and quantities bid + 1 and bid + 2:
        // a torn read would break one of those.
        let states = BookStates::new(1);
        let writer = {
            let states = Arc::clone(&states);
            std::thread::spawn(move || {
                for k in 1..200_000i64 {
                    states.set_top(0, &top(0, k, k + 3, k + 1));
                }
            })
        };
        let mut seen = 0u64;
        while !writer.is_finished() {
            if let Some(t) = states.top(0) {
                let (b, a) = (t.bid.expect("bid"), t.ask.expect("ask"));
                assert_eq!(a.px.0, b.px.0 + 3, "{t:?}");
                assert_eq!(b.qty.0, b.px.0 + 1, "{t:?}");
                assert_eq!(a.qty.0, b.px.0 + 2, "{t:?}");
                seen += 1;
            }
        }
        writer.join().expect("writer");
        // Under load the writer may finish before this thread reads once: the last top is
        // still there, whole.
        let last = states.top(0).expect("the last top");
        assert_eq!(
            last.bid.map(|l| (l.px.0, l.qty.0)),
            Some((199_999, 200_000))
        );
        eprintln!("{seen} tops read while the writer wrote");
    }
}
