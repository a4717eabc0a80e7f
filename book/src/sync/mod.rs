//! [`BookSync`]: the state machine that keeps one instrument's book equal to the venue's.
//!
//! It consumes [`MarketEvent`]s and decides, per venue rule ([`SequenceRule`]), whether each
//! depth message applies, is stale, is a duplicate, or reveals a gap. States:
//!
//! - [`SyncState::AwaitingSnapshot`]: the book is not trusted. Binance depth messages are kept in
//!   a bounded buffer for the coming snapshot (when it fills, it is emptied, counted, and
//!   buffering starts over); Bybit deltas are dropped (its snapshot comes in the stream).
//! - [`SyncState::Syncing`] (Binance): the book holds a REST snapshot; the next message must
//!   bridge the snapshot's id. Buffered messages are replayed through the rule right after the
//!   snapshot.
//! - [`SyncState::Live`]: every message must follow the previous one.
//!
//! A gap, a crossed or locked book after a whole message, a message cut short, a level the book
//! refuses, a Bybit reset, or [`BookSync::on_reconnect`] sends the machine back to
//! `AwaitingSnapshot` with the reason. In replay no snapshot can be fetched: the book then says
//! it is unsynced until a snapshot appears in the stream, and never silently goes on.
//!
//! Split messages (more levels than one event holds): the sequence is checked on the `FIRST`
//! event, every part is applied, and the book is committed (window housekeeping, cross check,
//! ids advanced) on the `LAST`. A part that does not belong to the message in flight, or a new
//! message before the last one ended, is a truncated message.
//!
//! Nothing here allocates after construction: the buffer's capacity is fixed up front.

mod outcome;
pub mod rule;

use pinion_feed::{EventFlags, EventKind, InstrumentId, InstrumentSpec, MarketEvent, Side};

use crate::book::OrderBook;
use crate::error::BookError;
use crate::snapshot::BookSnapshot;
use crate::view::{Cross, L2Book};
pub use outcome::{ResyncReason, SyncConfig, SyncCounters, SyncOutcome, SyncState, TickerCheck};
pub use rule::{MsgIds, SequenceRule, Verdict};

/// What to do with the remaining parts of the message in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Apply them (depth message).
    Apply,
    /// Apply them into a freshly cleared book (snapshot).
    Snapshot,
    /// Buffer them.
    Buffer,
    /// Ignore them, answering this outcome.
    Skip(SyncOutcome),
}

/// The exchange message whose parts are arriving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InFlight {
    kind: EventKind,
    ids: MsgIds,
    mode: Mode,
}

/// What the depth logic wants done with an event.
enum Step {
    /// Done; report this.
    Done(SyncOutcome),
    /// Put the event in the buffer and report this (`Buffered`, or the `Gap` that began
    /// buffering).
    Buffer(SyncOutcome),
}

/// The sync state machine of one instrument's book. See the module docs.
///
/// Generic over the book so the same machine drives the array book and, in tests and benches,
/// the `BTreeMap` reference.
#[derive(Debug, Clone)]
pub struct BookSync<B: L2Book = OrderBook> {
    book: B,
    rule: SequenceRule,
    instrument: InstrumentId,
    state: SyncState,
    /// Ids of the last message applied (or of the snapshot, while syncing).
    last: MsgIds,
    msg: Option<InFlight>,
    buffer: Vec<MarketEvent>,
    buffer_cap: usize,
    counters: SyncCounters,
    /// `t0` of the last event that changed the book.
    last_t0: u64,
}

impl BookSync<OrderBook> {
    /// A machine with an array book for `spec`'s instrument, following its venue's rule.
    pub fn new(
        spec: &InstrumentSpec,
        instrument: InstrumentId,
        config: SyncConfig,
    ) -> Result<Self, BookError> {
        let book = OrderBook::new(spec, config.book)?;
        Self::with_book(
            book,
            SequenceRule::for_venue(spec.venue),
            instrument,
            config.buffer_events,
        )
    }
}

impl<B: L2Book> BookSync<B> {
    /// A machine driving `book` (emptied first) under `rule`, with a buffer of `buffer_events`.
    pub fn with_book(
        mut book: B,
        rule: SequenceRule,
        instrument: InstrumentId,
        buffer_events: usize,
    ) -> Result<Self, BookError> {
        if !(1..=1 << 20).contains(&buffer_events) {
            return Err(BookError::BadBuffer(buffer_events));
        }
        book.clear();
        Ok(Self {
            book,
            rule,
            instrument,
            state: SyncState::AwaitingSnapshot {
                reason: ResyncReason::Start,
            },
            last: MsgIds::default(),
            msg: None,
            buffer: {
                // Mapped now: the buffer fills while awaiting a snapshot, mid-run.
                let mut v = Vec::with_capacity(buffer_events);
                pinion_feed::mem::prefault_spare(&mut v, MarketEvent::EMPTY);
                v
            },
            buffer_cap: buffer_events,
            counters: SyncCounters::default(),
            last_t0: 0,
        })
    }

    /// The book. Trust it only when [`BookSync::is_synced`].
    pub fn book(&self) -> &B {
        &self.book
    }

    /// Where the machine is.
    pub fn state(&self) -> SyncState {
        self.state
    }

    /// Whether the book follows the venue message by message now.
    pub fn is_synced(&self) -> bool {
        self.state == SyncState::Live && self.msg.is_none()
    }

    /// The rule in force.
    pub fn rule(&self) -> SequenceRule {
        self.rule
    }

    /// What the machine has done so far.
    pub fn counters(&self) -> &SyncCounters {
        &self.counters
    }

    /// The final update id of the last message applied (the snapshot's while syncing).
    pub fn last_update_id(&self) -> u64 {
        self.last.last
    }

    /// Events waiting in the buffer.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The top `K` levels, with the `t0` of the last event that changed the book.
    pub fn snapshot<const K: usize>(&self) -> BookSnapshot<K> {
        BookSnapshot::capture(
            &self.book,
            self.instrument,
            self.last.last,
            self.last_t0,
            self.is_synced(),
        )
    }

    /// The connection was reopened: whatever the book holds can no longer be trusted.
    pub fn on_reconnect(&mut self) {
        self.buffer.clear();
        self.resync(ResyncReason::Reconnect);
    }

    fn resync(&mut self, reason: ResyncReason) {
        self.state = SyncState::AwaitingSnapshot { reason };
        self.msg = None;
        self.counters.resyncs += 1;
    }

    /// Compares a `BookTicker` event with the book: when its `u` is the last applied depth
    /// message's, its best bid and ask must be the book's, exactly.
    pub fn check_ticker(&self, ev: &MarketEvent) -> TickerCheck {
        if ev.kind != EventKind::BookTicker
            || ev.instrument != self.instrument
            || self.msg.is_some()
            || matches!(self.state, SyncState::AwaitingSnapshot { .. })
            || ev.last_id != self.last.last
        {
            return TickerCheck::NotComparable;
        }
        let (book_bid, book_ask) = (self.book.best_bid(), self.book.best_ask());
        let (ticker_bid, ticker_ask) = (ev.ticker_bid(), ev.ticker_ask());
        if book_bid == ticker_bid && book_ask == ticker_ask {
            TickerCheck::Match
        } else {
            TickerCheck::Mismatch {
                book_bid,
                book_ask,
                ticker_bid,
                ticker_ask,
            }
        }
    }

    /// Consumes one event. See the module docs for the rules.
    pub fn on_event(&mut self, ev: &MarketEvent) -> SyncOutcome {
        if ev.instrument != self.instrument {
            return SyncOutcome::Ignored;
        }
        match ev.kind {
            EventKind::Depth => match self.on_depth(ev) {
                Step::Done(out) => out,
                Step::Buffer(out) => {
                    self.push_buffer(ev);
                    out
                }
            },
            EventKind::Snapshot => self.on_snapshot(ev),
            // Partial depth replaces only the top N levels and carries no id chain: it cannot
            // be reconciled with the diff stream, so the L2 book does not use it.
            EventKind::PartialDepth
            | EventKind::BookTicker
            | EventKind::Trade
            | EventKind::EndOfStream => SyncOutcome::Ignored,
        }
    }

    /// Deals with a message in flight when `ev` (a part) arrives. Returns the in-flight message
    /// if `ev` continues it; otherwise settles the truncation and returns `None`.
    fn take_continuation(&mut self, ev: &MarketEvent) -> Result<Option<InFlight>, SyncOutcome> {
        let ids = MsgIds::of(ev);
        match self.msg {
            Some(m) if !ev.is_first() && m.kind == ev.kind && m.ids == ids => Ok(Some(m)),
            Some(m) => {
                // The message in flight never got its last part.
                self.msg = None;
                self.counters.truncated += 1;
                match m.mode {
                    Mode::Apply | Mode::Snapshot => self.resync(ResyncReason::Truncated),
                    Mode::Buffer => self.pop_buffered(m.ids),
                    Mode::Skip(_) => {}
                }
                if ev.is_first() {
                    Ok(None)
                } else {
                    Err(SyncOutcome::Truncated)
                }
            }
            None if ev.is_first() => Ok(None),
            None => {
                // A part whose head we never saw. Its message's ids never get committed, so
                // the next message shows the gap if the head mattered.
                self.counters.truncated += 1;
                Err(SyncOutcome::Truncated)
            }
        }
    }

    fn on_depth(&mut self, ev: &MarketEvent) -> Step {
        let (m, head) = match self.take_continuation(ev) {
            Err(out) => return Step::Done(out),
            Ok(Some(m)) => (m, None),
            Ok(None) => {
                let (mode, head) = self.judge(ev);
                let m = InFlight {
                    kind: ev.kind,
                    ids: MsgIds::of(ev),
                    mode,
                };
                self.msg = Some(m);
                (m, head)
            }
        };
        match m.mode {
            Mode::Apply | Mode::Snapshot => Step::Done(self.apply_part(ev, m)),
            Mode::Buffer => {
                if ev.is_last() {
                    self.msg = None;
                }
                Step::Buffer(head.unwrap_or(SyncOutcome::Buffered))
            }
            Mode::Skip(out) => {
                if ev.is_last() {
                    self.msg = None;
                }
                Step::Done(out)
            }
        }
    }

    /// Decides what to do with a new depth message (its `FIRST` event); counts the decision.
    /// Returns the mode for all its parts and, when it differs from the mode's usual answer, the
    /// outcome for this first part.
    fn judge(&mut self, ev: &MarketEvent) -> (Mode, Option<SyncOutcome>) {
        let ids = MsgIds::of(ev);
        let verdict = match self.state {
            SyncState::AwaitingSnapshot { .. } => {
                if self.rule.buffers_before_snapshot() {
                    return (Mode::Buffer, None);
                }
                self.counters.unsynced_drops += 1;
                return (Mode::Skip(SyncOutcome::Unsynced), None);
            }
            SyncState::Syncing { snapshot_id } => self.rule.first_after_snapshot(snapshot_id, ids),
            SyncState::Live => {
                if self.rule == SequenceRule::Bybit && ev.flags.contains(EventFlags::RESET) {
                    self.counters.venue_resets += 1;
                    self.resync(ResyncReason::VenueReset);
                    return (Mode::Skip(SyncOutcome::VenueReset), None);
                }
                self.rule.next(self.last, ids)
            }
        };
        match verdict {
            Verdict::Apply => (Mode::Apply, None),
            Verdict::Duplicate => {
                self.counters.duplicates += 1;
                (Mode::Skip(SyncOutcome::Duplicate), None)
            }
            Verdict::Stale => {
                self.counters.stale += 1;
                (Mode::Skip(SyncOutcome::Stale), None)
            }
            Verdict::Gap { expected, got } => {
                self.counters.gaps += 1;
                self.resync(ResyncReason::Gap);
                let gap = SyncOutcome::Gap { expected, got };
                if self.rule.buffers_before_snapshot() {
                    // The message that revealed the gap is good data: it opens the new buffer.
                    (Mode::Buffer, Some(gap))
                } else {
                    (Mode::Skip(gap), None)
                }
            }
        }
    }

    fn on_snapshot(&mut self, ev: &MarketEvent) -> SyncOutcome {
        let m = match self.take_continuation(ev) {
            Err(out) => return out,
            Ok(Some(m)) => m,
            Ok(None) => {
                let ids = MsgIds::of(ev);
                let live = self.state == SyncState::Live;
                let mode = if live && self.rule.snapshot_is_stale(ids.last, self.last.last) {
                    self.counters.stale += 1;
                    Mode::Skip(SyncOutcome::Stale)
                } else {
                    self.book.clear();
                    Mode::Snapshot
                };
                let m = InFlight {
                    kind: ev.kind,
                    ids,
                    mode,
                };
                self.msg = Some(m);
                m
            }
        };
        match m.mode {
            Mode::Snapshot => self.apply_part(ev, m),
            Mode::Skip(out) => {
                if ev.is_last() {
                    self.msg = None;
                }
                out
            }
            // Snapshots are never buffered or applied as depth.
            Mode::Apply | Mode::Buffer => SyncOutcome::Ignored,
        }
    }

    /// Applies the levels of one part of message `m`; commits on its last part.
    fn apply_part(&mut self, ev: &MarketEvent, m: InFlight) -> SyncOutcome {
        // Bids then asks in two plain loops: cheaper than a chained iterator on the hot path.
        let applied = ev
            .bids()
            .iter()
            .try_for_each(|l| self.book.set_level(Side::Bid, l.px, l.qty))
            .and_then(|()| {
                ev.asks()
                    .iter()
                    .try_for_each(|l| self.book.set_level(Side::Ask, l.px, l.qty))
            });
        if let Err(e) = applied {
            self.counters.rejected_levels += 1;
            self.resync(ResyncReason::BadLevel);
            if !ev.is_last() {
                // The rest of this message is of no use now.
                self.msg = Some(InFlight {
                    mode: Mode::Skip(SyncOutcome::Rejected(e)),
                    ..m
                });
            }
            return SyncOutcome::Rejected(e);
        }
        self.counters.levels_applied += u64::from(ev.n_levels);
        self.last_t0 = ev.t0;
        if !ev.is_last() {
            return SyncOutcome::Applied { committed: false };
        }
        self.msg = None;
        self.book.commit();
        self.last = m.ids;
        if self.book.cross() != Cross::Clear {
            self.counters.crossed += 1;
            self.resync(ResyncReason::Crossed);
            return SyncOutcome::Crossed {
                update_id: m.ids.last,
            };
        }
        if m.mode == Mode::Snapshot {
            self.counters.snapshots += 1;
            if self.rule.buffers_before_snapshot() {
                self.state = SyncState::Syncing {
                    snapshot_id: m.ids.last,
                };
                self.drain_buffer();
            } else {
                self.state = SyncState::Live;
            }
        } else {
            self.counters.messages_applied += 1;
            self.state = SyncState::Live;
        }
        SyncOutcome::Applied { committed: true }
    }

    /// Replays the buffered messages through the rule after a snapshot. Stops at a gap (the
    /// snapshot is too old, or the buffer itself has a hole) and keeps the messages from there
    /// on for the next snapshot.
    fn drain_buffer(&mut self) {
        let mut i = 0;
        while i < self.buffer.len() {
            let ev = self.buffer[i];
            match self.on_depth(&ev) {
                Step::Done(_) => i += 1,
                Step::Buffer(_) => {
                    self.msg = None;
                    break;
                }
            }
        }
        self.buffer.drain(..i);
    }

    /// Appends a depth event to the buffer; a full buffer is emptied (counted) and buffering
    /// starts over with the next whole message.
    fn push_buffer(&mut self, ev: &MarketEvent) {
        if self.buffer.len() >= self.buffer_cap {
            self.buffer.clear();
            self.counters.buffer_overflows += 1;
            if !ev.is_first() {
                // Its head is gone with the buffer: drop the rest of this message too.
                if let Some(m) = self.msg.as_mut() {
                    m.mode = Mode::Skip(SyncOutcome::Buffered);
                }
                return;
            }
        }
        self.buffer.push(*ev);
        self.counters.buffered += 1;
    }

    /// Removes the parts of an unfinished buffered message from the buffer's end.
    fn pop_buffered(&mut self, ids: MsgIds) {
        while self
            .buffer
            .last()
            .is_some_and(|e| e.kind == EventKind::Depth && MsgIds::of(e) == ids)
        {
            self.buffer.pop();
        }
    }
}

#[cfg(test)]
mod tests;
