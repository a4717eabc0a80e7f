//! The book stage: applies events to each instrument's book under its venue's sync rule, sends
//! the strategy a [`BookTop`] whenever the top of a book changes, and forwards trades.
//!
//! Books exist for the instruments found at start-up (from the config and a scan of the input),
//! each allocated then; an event for any other instrument is counted and dropped, never
//! allocated for on the hot path. A [`MarketMsg::Resync`] puts every book last fed by that
//! connection back to awaiting a snapshot.
//!
//! A top of book goes to the strategy:
//! - after every committed depth message;
//! - for every book ticker ahead of its book ([`BookSync::on_ticker`]): Binance's bookTicker
//!   comes as the best levels change while a Spot depth stream batches 100 ms, so the ticker is
//!   the freshest top of book there is. It tops the levels sent, over the book's deeper ones,
//!   until the depth stream reaches its update id, where the book is checked against it;
//! - once when a book loses sync (gap, crossed book, ticker mismatch, reconnect, …), so the
//!   strategy pulls its orders at once rather than at the next commit.
//!
//! Every top carries the `synced` flag, so the strategy never trades on a book known to be
//! wrong, and its event time (the receive time of the market data that brought it about), which
//! the message carries too.
//!
//! Every loss of sync (gap, crossed book, ticker mismatch, cut message, refused level, venue
//! reset, a reconnect under a live book) is also a [`Problem`] in the stage's [`ProblemLog`],
//! logged on that path only.
//!
//! At the end the stage hands each book's final state (levels, sync state, counters, how many
//! depth and snapshot events reached it) to a [`FinalBooks`] slot, so a test can compare it with
//! a reference and the report can say how each book fared.

use pinion_book::{BookLevels, BookSync, SyncCounters, SyncOutcome, SyncState, TickerOutcome};
use pinion_core::{
    BookTop, Candle, ConnId, EventKind, InstrumentId, Level, Side, Ticker24h, TradePrint,
};

use std::sync::Arc;

use pinion_feed::live::SnapshotRequests;

use super::handoff::Handoff;
use super::msg::{BookMsg, MarketMsg, Trigger};
use super::outbox::{Fanout, Stamped};
use crate::latency::{LiveLatency, Recorder};
use crate::metrics::{BookState, BookStates};
use crate::problems::{Problem, ProblemKind, ProblemLog, ProblemSummary, Subject};
use crate::runtime::{LiveCounts, Progress, RingRx, Stage, StageReport, now_ns};

/// Inputs handled per poll at most, so a thread shared with other stages keeps them moving.
const BATCH: usize = 64;

/// One book's state at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookFinal {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Where the sync machine ended.
    pub state: SyncState,
    /// What the machine did.
    pub counters: SyncCounters,
    /// The last applied update id.
    pub last_update_id: u64,
    /// All bid levels, best first.
    pub bids: Vec<Level>,
    /// All ask levels, best first.
    pub asks: Vec<Level>,
    /// The book's housekeeping: levels dropped for want of room, moves to a finer price grid.
    pub housekeeping: pinion_book::BookStats,
    /// What reached the book.
    pub seen: BookSeen,
}

/// How many book events of each sort reached one book (tickers and trades aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BookSeen {
    /// Incremental depth events.
    pub depth_events: u64,
    /// Full-book events: snapshots and top-N books.
    pub snapshot_events: u64,
}

impl BookSeen {
    /// Counts one book event.
    #[inline]
    pub fn count(&mut self, kind: EventKind) {
        if kind == EventKind::Depth {
            self.depth_events += 1;
        } else {
            self.snapshot_events += 1;
        }
    }
}

/// Where the book stage leaves its books' final states (filled once, in `finish`).
pub type FinalBooks = super::handoff::Handoff<BookFinal>;

#[derive(Debug, Default, Clone, Copy)]
struct BookCounts {
    events: u64,
    committed: u64,
    trades: u64,
    /// Venue klines passed on to the strategy.
    candles: u64,
    /// Venue 24 h tickers passed on to the strategy.
    tickers: u64,
    no_book: u64,
    resync_msgs: u64,
    gaps: u64,
    /// Books that went from trusted to awaiting a snapshot (each sent one unsynced view).
    lost_sync: u64,
}

/// The book stage. See the module docs.
pub struct BookStage {
    input: RingRx<Stamped<MarketMsg>>,
    /// Everything else, apart from the input, so a message can be handled in its ring slot.
    core: BookCore,
}

/// The book stage's state.
struct BookCore {
    /// To the strategy stages, each instrument to the one that trades it.
    out: Fanout<BookMsg>,
    /// Indexed by instrument id; `None` for instruments without a book.
    books: Vec<Option<BookSync>>,
    /// The connection that last fed each book.
    fed_by: Vec<Option<ConnId>>,
    /// What reached each book, by instrument.
    seen: Vec<BookSeen>,
    counts: BookCounts,
    /// Every loss of sync, counted and sampled.
    problems: ProblemLog,
    problem_summary: Handoff<ProblemSummary>,
    ended: bool,
    finals: FinalBooks,
    service: Recorder,
    hop: Recorder,
    /// Live input: where each book's need for a snapshot, and whether it is live, is told to
    /// the source.
    requests: Option<Arc<SnapshotRequests>>,
    /// Per instrument, whether it was last published live.
    published_live: Vec<bool>,
    /// Where each book's sync state is published for the metrics thread, when it runs.
    states: Option<Arc<BookStates>>,
    /// Per instrument, the state last published there.
    published_state: Vec<BookState>,
}

impl std::fmt::Debug for BookStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BookStage")
            .field("books", &self.core.books.iter().flatten().count())
            .field("counts", &self.core.counts)
            .finish_non_exhaustive()
    }
}

impl BookStage {
    /// A stage with `books[id]` for each instrument that has one; sync problems go to
    /// `problems`, whose summary is left in `problem_summary` at the end.
    pub fn new(
        input: RingRx<Stamped<MarketMsg>>,
        out: Fanout<BookMsg>,
        books: Vec<Option<BookSync>>,
        finals: FinalBooks,
        problems: ProblemLog,
        problem_summary: Handoff<ProblemSummary>,
    ) -> Self {
        let n = books.len();
        Self {
            input,
            core: BookCore {
                out,
                books,
                fed_by: vec![None; n],
                seen: vec![BookSeen::default(); n],
                counts: BookCounts::default(),
                problems,
                problem_summary,
                ended: false,
                finals,
                service: Recorder::new("book.service"),
                hop: Recorder::new("hop.feed_book"),
                requests: None,
                published_live: vec![false; n],
                states: None,
                published_state: vec![BookState::None; n],
            },
        }
    }
}

impl BookStage {
    /// Tells `requests` (a live source's) when a book needs a snapshot and whether it is live.
    pub fn with_snapshot_requests(mut self, requests: Arc<SnapshotRequests>) -> Self {
        self.core.requests = Some(requests);
        self
    }
}

impl BookStage {
    /// Publishes each book's sync state to `states` as it changes, and counts its losses of
    /// sync there, for the metrics thread.
    pub fn with_states(mut self, states: Arc<BookStates>) -> Self {
        self.core.states = Some(states);
        for i in 0..self.core.books.len() {
            self.core.note_state(i, false);
        }
        self
    }
}

impl BookCore {
    /// Publishes book `i`'s state when it changed since the last time, and a loss of sync:
    /// a compare per event and, rarely, a relaxed store.
    #[inline]
    fn note_state(&mut self, i: usize, lost: bool) {
        let Some(states) = &self.states else {
            return;
        };
        let Some(Some(sync)) = self.books.get(i) else {
            return;
        };
        if lost {
            states.lost(i);
        }
        let state = BookState::of(sync.state());
        if self.published_state[i] != state {
            self.published_state[i] = state;
            states.set(i, state);
        }
    }

    /// Tells a live source about book `i` after it handled something: a book that just lost
    /// its trust needs a snapshot, and a change of liveness is published.
    #[inline]
    fn publish(&mut self, i: usize, lost: bool) {
        let Some(requests) = &self.requests else {
            return;
        };
        let Some(Some(sync)) = self.books.get(i) else {
            return;
        };
        let id = InstrumentId(i as u16);
        if lost {
            requests.request(id);
        }
        let live = sync.state() == SyncState::Live;
        if self.published_live[i] != live {
            self.published_live[i] = live;
            requests.set_live(id, live);
        }
    }

    /// Handles one input where it lies in the ring; returns whether to take another in this
    /// poll.
    #[inline]
    fn handle(&mut self, input: &Stamped<MarketMsg>) -> bool {
        let start = now_ns();
        match &input.msg {
            MarketMsg::Event(ev) => self.on_event(ev),
            MarketMsg::Resync {
                conn, instrument, ..
            } => self.on_resync(*conn, *instrument, input.t_event),
            MarketMsg::End => {
                self.out.queue_all(BookMsg::End);
                self.ended = true;
            }
        }
        let end = now_ns();
        let more = self.out.flush(end) && !self.ended;
        // Recorded once the output is on its way.
        self.hop.record_between(input.t_exit, start);
        self.service.record_between(start, end);
        more
    }

    #[inline]
    fn on_event(&mut self, ev: &pinion_core::MarketEvent) {
        self.counts.events += 1;
        if ev.kind == EventKind::Trade {
            self.counts.trades += 1;
            // The decoder gives every trade its print; a trade without one carries nothing.
            if let Some(print) = TradePrint::from_event(ev) {
                self.out
                    .send(print.instrument, BookMsg::Trade(print), ev.t_recv, now_ns());
            }
            return;
        }
        // Candles and 24 h tickers do not touch the book: they go on to the strategy.
        if ev.kind == EventKind::Kline {
            self.counts.candles += 1;
            if let Some(candle) = Candle::from_event(ev) {
                self.out.send(
                    candle.instrument,
                    BookMsg::Candle(candle),
                    ev.t_recv,
                    now_ns(),
                );
            }
            return;
        }
        if ev.kind == EventKind::Ticker24h {
            self.counts.tickers += 1;
            if let Some(ticker) = Ticker24h::from_event(ev) {
                self.out.send(
                    ticker.instrument,
                    BookMsg::Ticker(ticker),
                    ev.t_recv,
                    now_ns(),
                );
            }
            return;
        }
        let i = usize::from(ev.instrument.0);
        let Some(Some(sync)) = self.books.get_mut(i) else {
            self.counts.no_book += 1;
            return;
        };
        self.fed_by[i] = Some(ev.conn);
        if ev.kind == EventKind::BookTicker {
            // A ticker ahead of the book is the freshest top of book there is (a Spot depth
            // stream batches 100 ms; tickers come as the best levels change): the strategy
            // sees it at once, on top of the book's deeper levels.
            match sync.on_ticker(ev) {
                TickerOutcome::Ahead => {
                    send_top(
                        &mut self.out,
                        self.states.as_deref(),
                        ev.t_recv,
                        Trigger::Ticker,
                        |top| sync.write_top_cached(top),
                    );
                }
                TickerOutcome::Mismatch => log_sync_problem(
                    &mut self.problems,
                    ev,
                    &SyncOutcome::TickerMismatch {
                        update_id: ev.last_id,
                    },
                ),
                _ => {}
            }
            return;
        }
        self.seen[i].count(ev.kind);
        let was_trusted = !matches!(sync.state(), SyncState::AwaitingSnapshot { .. });
        let was_live = sync.state() == SyncState::Live;
        let outcome = sync.on_event(ev);
        let lost = was_trusted && matches!(sync.state(), SyncState::AwaitingSnapshot { .. });
        if self.requests.is_some() && (lost || was_live != (sync.state() == SyncState::Live)) {
            self.publish(i, lost);
        }
        self.note_state(i, lost);
        let Some(Some(sync)) = self.books.get_mut(i) else {
            return;
        };
        if lost {
            // The book just lost sync (gap, crossed, ticker mismatch, cut message, bad level,
            // venue reset): the strategy must learn it now and pull its orders, not at the
            // next commit, which may be minutes away.
            self.counts.lost_sync += 1;
            send_top(
                &mut self.out,
                self.states.as_deref(),
                ev.t_recv,
                Trigger::Other,
                |top| sync.write_top(top),
            );
        }
        match outcome {
            SyncOutcome::Applied { committed: true } => {
                self.counts.committed += 1;
                send_top(
                    &mut self.out,
                    self.states.as_deref(),
                    ev.t_recv,
                    Trigger::Depth,
                    |top| sync.write_top_cached(top),
                );
            }
            SyncOutcome::Applied { committed: false }
            | SyncOutcome::Buffered
            | SyncOutcome::Stale
            | SyncOutcome::Duplicate
            | SyncOutcome::Unsynced
            | SyncOutcome::Ignored => {}
            problem => {
                if matches!(problem, SyncOutcome::Gap { .. }) {
                    self.counts.gaps += 1;
                }
                log_sync_problem(&mut self.problems, ev, &problem);
            }
        }
    }

    /// The connection `conn` was reopened, closed or lost frames at event time `t_event`; with
    /// `only`, that instrument's stream alone went stale.
    fn on_resync(&mut self, conn: ConnId, only: Option<InstrumentId>, t_event: u64) {
        self.counts.resync_msgs += 1;
        for (i, (sync, fed)) in self.books.iter_mut().zip(&self.fed_by).enumerate() {
            if only.is_some_and(|id| usize::from(id.0) != i) {
                continue;
            }
            if let (Some(sync), Some(c)) = (sync, fed)
                && *c == conn
            {
                let was_trusted = !matches!(sync.state(), SyncState::AwaitingSnapshot { .. });
                sync.on_reconnect();
                if was_trusted {
                    // An unsynced view, so the strategy pulls its orders now.
                    self.counts.lost_sync += 1;
                    if let Some(states) = &self.states {
                        states.lost(i);
                    }
                    log_reconnect(&mut self.problems, InstrumentId(i as u16), conn, t_event);
                    send_top(
                        &mut self.out,
                        self.states.as_deref(),
                        t_event,
                        Trigger::Other,
                        |top| sync.write_top(top),
                    );
                }
            }
        }
        if self.states.is_some() {
            for i in 0..self.books.len() {
                let fed = self.fed_by[i] == Some(conn) && self.books[i].is_some();
                if fed && only.is_none_or(|id| usize::from(id.0) == i) {
                    self.note_state(i, false);
                }
            }
        }
        if self.requests.is_some() {
            for i in 0..self.books.len() {
                let fed = self.fed_by[i] == Some(conn) && self.books[i].is_some();
                if fed && only.is_none_or(|id| usize::from(id.0) == i) {
                    self.publish(i, true);
                }
            }
        }
    }

    fn publish_finals(&mut self) {
        let finals: Vec<BookFinal> = self
            .books
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.as_ref().map(|b| (i, b)))
            .map(|(i, sync)| BookFinal {
                instrument: InstrumentId(i as u16),
                state: sync.state(),
                counters: *sync.counters(),
                last_update_id: sync.last_update_id(),
                bids: sync.book().levels(Side::Bid).collect(),
                asks: sync.book().levels(Side::Ask).collect(),
                housekeeping: sync.book().stats(),
                seen: self.seen[i],
            })
            .collect();
        self.finals.put(finals);
        self.problems.close();
        self.problem_summary.push(self.problems.summary());
    }
}

/// Logs a sync outcome that is a problem, about the event's instrument. Out of line, so the
/// event path's code stays small.
#[cold]
#[inline(never)]
fn log_sync_problem(log: &mut ProblemLog, ev: &pinion_core::MarketEvent, outcome: &SyncOutcome) {
    let kind = ProblemKind::of_sync(outcome).unwrap_or(ProblemKind::Gap);
    let mut p = Problem::new(kind, Subject::Instrument(ev.instrument))
        .with_detail(format_args!("{}", SyncDetail(outcome)));
    p.t_recv = Some(ev.t_recv);
    log.record(p);
}

/// Logs that a live book's connection reopened, closed or lost frames.
#[cold]
#[inline(never)]
fn log_reconnect(log: &mut ProblemLog, instrument: InstrumentId, conn: ConnId, t_event: u64) {
    let mut p = Problem::new(ProblemKind::Reconnect, Subject::Instrument(instrument)).with_detail(
        format_args!(
            "connection {} was reopened, closed or lost frames under a synced book",
            conn.0
        ),
    );
    p.t_recv = Some(t_event);
    log.record(p);
}

/// A sync problem in words.
struct SyncDetail<'a>(&'a SyncOutcome);

impl std::fmt::Display for SyncDetail<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            SyncOutcome::Gap { expected, got } => {
                write!(f, "updates missed: expected update {expected}, got {got}")
            }
            SyncOutcome::Crossed { update_id } => {
                write!(f, "book crossed or locked after update {update_id}")
            }
            SyncOutcome::TickerMismatch { update_id } => write!(
                f,
                "the book ticker of update {update_id} shows other best levels than the book"
            ),
            SyncOutcome::Truncated => f.write_str("a split message was cut short"),
            SyncOutcome::VenueReset => f.write_str("the venue restarted its book (u = 1)"),
            SyncOutcome::Rejected(e) => write!(f, "level refused: {e}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Sends the strategy the [`BookTop`] that `fill` writes, stamped with the event time `t_recv`:
/// the value the message carries, which the strategy then reads in its ring slot. With
/// `states`, its best levels are published there too, for the bot and the metrics.
#[inline]
fn send_top(
    out: &mut Fanout<BookMsg>,
    states: Option<&BookStates>,
    t_recv: u64,
    trigger: Trigger,
    fill: impl FnOnce(&mut BookTop),
) {
    let mut top = BookTop::EMPTY;
    fill(&mut top);
    top.t_recv = t_recv;
    if let Some(states) = states {
        states.set_top(usize::from(top.instrument.0), &top);
    }
    out.send(
        top.instrument,
        BookMsg::Book(top, trigger),
        t_recv,
        now_ns(),
    );
}

impl Stage for BookStage {
    fn name(&self) -> &'static str {
        "book"
    }

    fn poll(&mut self) -> Progress {
        let core = &mut self.core;
        if !core.out.flush(now_ns()) {
            return Progress::Idle;
        }
        if core.ended {
            return Progress::Done;
        }
        if self.input.pop_batch(BATCH, |m| core.handle(m)).taken > 0 {
            Progress::Busy
        } else {
            Progress::Idle
        }
    }

    fn live_counts(&self) -> Option<LiveCounts> {
        let c = &self.core.counts;
        Some(LiveCounts {
            messages: c.events,
            errors: c.lost_sync + c.no_book,
            backpressure: self.core.out.backpressure(),
            input_queued: self.input.len() as u64,
        })
    }

    fn live_latency(&self) -> Vec<LiveLatency> {
        vec![self.core.service.live(), self.core.hop.live()]
    }

    fn finish(&mut self) -> StageReport {
        self.core.publish_finals();
        let c = self.core.counts;
        let mut r = StageReport::new("book");
        let (mut snapshots, mut resyncs, mut stale) = (0, 0, 0);
        let mut tickers = pinion_book::TickerCounters::default();
        for s in self.core.books.iter().flatten() {
            snapshots += s.counters().snapshots;
            resyncs += s.counters().resyncs;
            stale += s.counters().stale;
            let t = s.ticker_counters();
            tickers.ahead += t.ahead;
            tickers.stale += t.stale;
            tickers.matched += t.matched;
            tickers.mismatched += t.mismatched;
            tickers.unusable += t.unusable;
        }
        r.counters = vec![
            ("events", c.events),
            ("messages_committed", c.committed),
            ("trades", c.trades),
            ("candles", c.candles),
            ("tickers", c.tickers),
            ("tickers_ahead", tickers.ahead),
            ("tickers_stale", tickers.stale),
            ("tickers_matched", tickers.matched),
            ("tickers_mismatched", tickers.mismatched),
            ("tickers_unusable", tickers.unusable),
            ("events_without_book", c.no_book),
            ("resync_messages", c.resync_msgs),
            ("gaps", c.gaps),
            ("lost_sync", c.lost_sync),
            ("snapshots_applied", snapshots),
            ("resyncs", resyncs),
            ("stale", stale),
            ("sent", self.core.out.sent()),
            ("backpressure", self.core.out.backpressure()),
        ];
        r.histograms = vec![self.core.service.take(), self.core.hop.take()];
        r
    }
}
