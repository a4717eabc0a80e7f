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

use pinion_core::{
    BookTop, EventFlags, EventKind, InstrumentId, InstrumentSpec, Level, MarketEvent, Side,
};

use crate::book::OrderBook;
use crate::error::BookError;
use crate::levels::{Cross, L2Book};
pub use outcome::{
    ResyncReason, SyncConfig, SyncCounters, SyncOutcome, SyncState, TickerCheck, TickerCounters,
    TickerOutcome,
};
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

/// An unused cache slot.
const NO_LEVEL: Level = Level {
    px: pinion_core::Px(0),
    qty: pinion_core::Qty(0),
};

/// Levels per side kept in [`TopCache`]: a view's depth plus room for a ticker to move
/// through a few levels.
const TOP_CACHE_LEVELS: usize = 16;

/// The book's best levels as of its last change, kept for the views built on book tickers:
/// several tickers arrive between two depth messages, and each would otherwise walk the book
/// again for the same levels.
#[derive(Debug, Clone, Copy)]
struct TopCache {
    bids: [Level; TOP_CACHE_LEVELS],
    asks: [Level; TOP_CACHE_LEVELS],
    n_bids: usize,
    n_asks: usize,
    /// Whether the levels are the book's current ones.
    valid: bool,
}

impl TopCache {
    const EMPTY: TopCache = TopCache {
        bids: [NO_LEVEL; TOP_CACHE_LEVELS],
        asks: [NO_LEVEL; TOP_CACHE_LEVELS],
        n_bids: 0,
        n_asks: 0,
        valid: false,
    };

    /// The cached levels of one side behind `best` (strictly worse), if they are exactly the
    /// book's first `want` such levels: the cache must reach past them, or hold the whole side.
    #[inline]
    fn behind(
        levels: &[Level],
        n: usize,
        want: usize,
        behind: impl Fn(pinion_core::Px) -> bool,
    ) -> Option<&[Level]> {
        let skip = levels[..n].iter().take_while(|l| !behind(l.px)).count();
        let rest = &levels[skip..n];
        (rest.len() >= want || n < TOP_CACHE_LEVELS).then_some(rest)
    }
}

/// Copies as many of `from` as fit to the front of `out`; returns how many.
#[inline]
fn copy_prefix(out: &mut [Level], from: &[Level]) -> usize {
    let n = from.len().min(out.len());
    out[..n].copy_from_slice(&from[..n]);
    n
}

/// A book ticker newer than the book: the venue's best bid and ask as of `update_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bbo {
    bid: Level,
    ask: Level,
    update_id: u64,
    t0: u64,
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
    /// The newest book ticker ahead of the book, until the depth stream reaches its id.
    bbo: Option<Bbo>,
    top: TopCache,
    tickers: TickerCounters,
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
                pinion_core::mem::prefault_spare(&mut v, MarketEvent::EMPTY);
                v
            },
            buffer_cap: buffer_events,
            counters: SyncCounters::default(),
            bbo: None,
            top: TopCache::EMPTY,
            tickers: TickerCounters::default(),
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

    /// What book tickers have done so far.
    pub fn ticker_counters(&self) -> &TickerCounters {
        &self.tickers
    }

    /// Writes the top `K` levels into `top`, with the `t0` of the last event that changed them,
    /// the update id, the instrument and whether the book is in sync.
    ///
    /// When a book ticker ahead of the book is held (see [`BookSync::on_ticker`]), its best bid
    /// and ask top the levels: the book's levels at or through them are left out (the venue
    /// says they are gone), the rest follow, and `top` carries the ticker's update id and, if
    /// the ticker came later, its `t0`.
    pub fn write_top<const K: usize>(&self, top: &mut BookTop<K>) {
        let synced = self.is_synced();
        match self.bbo {
            Some(b) => {
                top.set_header(self.instrument, b.update_id, self.last_t0.max(b.t0), synced);
                self.book.capture_with_top(top, b.bid, b.ask);
            }
            None => {
                top.set_header(self.instrument, self.last.last, self.last_t0, synced);
                self.book.capture(top);
            }
        }
    }

    /// [`BookSync::write_top`] into a new value, for callers off the hot path.
    pub fn top<const K: usize>(&self) -> BookTop<K> {
        let mut top = BookTop::EMPTY;
        self.write_top(&mut top);
        top
    }

    /// The same as [`BookSync::write_top`], built for the hot path from a cache of the book's
    /// best levels, taken once per book change: the view after a depth message and the views
    /// of the tickers that follow it then walk the book once between them, not once each.
    /// Falls back to [`BookSync::write_top`] when the cache does not reach deep enough.
    pub fn write_top_cached<const K: usize>(&mut self, top: &mut BookTop<K>) {
        if !self.top.valid {
            self.top.n_bids = self.book.top_levels(Side::Bid, &mut self.top.bids);
            self.top.n_asks = self.book.top_levels(Side::Ask, &mut self.top.asks);
            self.top.valid = true;
        }
        let t = &self.top;
        let synced = self.is_synced();
        let Some(b) = self.bbo else {
            // The plain top K, when the cache holds that many or the whole side.
            let whole = |n: usize| n >= K || n < TOP_CACHE_LEVELS;
            if !(whole(t.n_bids) && whole(t.n_asks)) {
                return self.write_top(top);
            }
            top.set_header(self.instrument, self.last.last, self.last_t0, synced);
            top.copy_side(Side::Bid, &t.bids[..t.n_bids]);
            top.copy_side(Side::Ask, &t.asks[..t.n_asks]);
            return;
        };
        let want = K.saturating_sub(1);
        let bids = TopCache::behind(&t.bids, t.n_bids, want, |px| px < b.bid.px);
        let asks = TopCache::behind(&t.asks, t.n_asks, want, |px| px > b.ask.px);
        let (Some(bids), Some(asks)) = (bids, asks) else {
            // The ticker moved through more levels than the cache holds.
            return self.write_top(top);
        };
        top.set_header(self.instrument, b.update_id, self.last_t0.max(b.t0), synced);
        top.fill_behind(Side::Bid, b.bid, |rest| copy_prefix(rest, bids));
        top.fill_behind(Side::Ask, b.ask, |rest| copy_prefix(rest, asks));
    }

    /// Takes a book ticker (Binance `bookTicker`: the best bid and ask as of update id `u`, sent
    /// as they change, while a Spot depth stream batches 100 ms).
    ///
    /// - Older than the book: [`TickerOutcome::Stale`].
    /// - The book's own update id: its best levels must equal the book's, the venue's own check
    ///   of the sync ([`TickerOutcome::Match`]); if they differ the book is wrong and the
    ///   machine resyncs ([`TickerOutcome::Mismatch`]).
    /// - Newer: held as the top of the book's snapshots ([`TickerOutcome::Ahead`]) until the
    ///   depth stream commits a message at or past its id; a message with exactly its id is
    ///   then checked against it the same way.
    pub fn on_ticker(&mut self, ev: &MarketEvent) -> TickerOutcome {
        let out = self.judge_ticker(ev);
        match out {
            TickerOutcome::Unusable => self.tickers.unusable += 1,
            TickerOutcome::Stale => self.tickers.stale += 1,
            TickerOutcome::Match => self.tickers.matched += 1,
            TickerOutcome::Mismatch => {
                self.tickers.mismatched += 1;
                self.resync(ResyncReason::TickerMismatch);
            }
            TickerOutcome::Ahead => self.tickers.ahead += 1,
        }
        out
    }

    fn judge_ticker(&mut self, ev: &MarketEvent) -> TickerOutcome {
        if ev.kind != EventKind::BookTicker || ev.instrument != self.instrument || !self.is_synced()
        {
            return TickerOutcome::Unusable;
        }
        let (Some(bid), Some(ask)) = (ev.ticker_bid(), ev.ticker_ask()) else {
            return TickerOutcome::Unusable;
        };
        if bid.px >= ask.px {
            return TickerOutcome::Unusable;
        }
        let u = ev.last_id;
        if self.bbo.is_some_and(|b| u <= b.update_id) {
            // An older (or repeated) ticker than the one already held.
            return TickerOutcome::Stale;
        }
        if u < self.last.last {
            return TickerOutcome::Stale;
        }
        if u == self.last.last {
            return if self.book.best_bid() == Some(bid) && self.book.best_ask() == Some(ask) {
                TickerOutcome::Match
            } else {
                TickerOutcome::Mismatch
            };
        }
        self.bbo = Some(Bbo {
            bid,
            ask,
            update_id: u,
            t0: ev.t0,
        });
        TickerOutcome::Ahead
    }

    /// After a commit: drops the held ticker once the book has reached its id, checking the
    /// book against it when the ids are equal. Returns whether the check failed.
    fn settle_ticker(&mut self) -> bool {
        let Some(b) = self.bbo else {
            return false;
        };
        if self.last.last < b.update_id {
            return false;
        }
        self.bbo = None;
        if self.last.last > b.update_id {
            return false;
        }
        if self.book.best_bid() == Some(b.bid) && self.book.best_ask() == Some(b.ask) {
            self.tickers.matched += 1;
            false
        } else {
            self.tickers.mismatched += 1;
            true
        }
    }

    /// The connection was reopened: whatever the book holds can no longer be trusted.
    pub fn on_reconnect(&mut self) {
        self.buffer.clear();
        self.bbo = None;
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
            | EventKind::Kline
            | EventKind::Ticker24h => SyncOutcome::Ignored,
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
                    self.top.valid = false;
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
        self.top.valid = false;
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
        if self.settle_ticker() {
            self.resync(ResyncReason::TickerMismatch);
            return SyncOutcome::TickerMismatch {
                update_id: m.ids.last,
            };
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
