//! The sync machine's public vocabulary: its states, the outcome of each event, its counters,
//! its settings, and the result of a ticker check. All small and `Copy`, so the hot path can
//! return and count them without allocating.

use pinion_core::Level;

use crate::book::BookConfig;
use crate::error::BookError;

/// Why the machine is waiting for a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncReason {
    /// No snapshot has been seen yet.
    Start,
    /// Updates were missed between the book and a message.
    Gap,
    /// The book was crossed or locked after a whole message.
    Crossed,
    /// The connection was reopened.
    Reconnect,
    /// A split message was cut short, so the book holds part of it.
    Truncated,
    /// The book refused a level (off the tick grid, out of range, negative quantity).
    BadLevel,
    /// A book ticker with the book's update id showed other best levels than the book.
    TickerMismatch,
    /// Bybit signalled a restart (`u == 1`) on a delta.
    VenueReset,
}

impl ResyncReason {
    /// A stable lower-case word for reports (`gap`, `ticker_mismatch`, …); never changes with
    /// the code's spelling.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Gap => "gap",
            Self::Crossed => "crossed",
            Self::Reconnect => "reconnect",
            Self::Truncated => "truncated",
            Self::BadLevel => "bad_level",
            Self::TickerMismatch => "ticker_mismatch",
            Self::VenueReset => "venue_reset",
        }
    }
}

/// Where the machine is. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// The book is not trusted; a snapshot is needed.
    AwaitingSnapshot {
        /// Why.
        reason: ResyncReason,
    },
    /// The book holds a snapshot and waits for the message that bridges it (Binance).
    Syncing {
        /// The snapshot's `lastUpdateId`.
        snapshot_id: u64,
    },
    /// The book follows the venue message by message.
    Live,
}

impl SyncState {
    /// A stable word for reports: `live`; `syncing` (a snapshot held, waiting for the message
    /// that bridges it); `awaiting_snapshot` (none seen yet); `awaiting_snapshot:<reason>`
    /// after losing sync, with the reason's [`ResyncReason::name`] (`awaiting_snapshot:gap`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Syncing { .. } => "syncing",
            Self::AwaitingSnapshot { reason } => match reason {
                ResyncReason::Start => "awaiting_snapshot",
                ResyncReason::Gap => "awaiting_snapshot:gap",
                ResyncReason::Crossed => "awaiting_snapshot:crossed",
                ResyncReason::Reconnect => "awaiting_snapshot:reconnect",
                ResyncReason::Truncated => "awaiting_snapshot:truncated",
                ResyncReason::BadLevel => "awaiting_snapshot:bad_level",
                ResyncReason::TickerMismatch => "awaiting_snapshot:ticker_mismatch",
                ResyncReason::VenueReset => "awaiting_snapshot:venue_reset",
            },
        }
    }
}

/// What [`BookSync::on_event`](crate::BookSync::on_event) did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The event's levels went into the book; `committed` on the last event of a message.
    Applied {
        /// Whether the message is complete and the book consistent.
        committed: bool,
    },
    /// Kept for the coming snapshot.
    Buffered,
    /// Older than the book: ignored.
    Stale,
    /// A resend of the last message applied: ignored.
    Duplicate,
    /// Updates are missing: the machine now awaits a snapshot (the message was buffered when the
    /// venue buffers).
    Gap {
        /// The id the rule wanted.
        expected: u64,
        /// The id the message had.
        got: u64,
    },
    /// The book was crossed or locked after the message with this update id: resync.
    Crossed {
        /// The venue's update id of the message.
        update_id: u64,
    },
    /// The message committed, but the book ticker with the same update id showed other best
    /// levels: resync.
    TickerMismatch {
        /// The venue's update id of the message.
        update_id: u64,
    },
    /// Part of a message was lost: dropped, and a resync if the book held part of it.
    Truncated,
    /// The venue restarted its book (Bybit `u == 1` on a delta): resync.
    VenueReset,
    /// The book refused a level: resync.
    Rejected(BookError),
    /// Dropped because no snapshot has arrived and the venue's messages are not buffered.
    Unsynced,
    /// Not a book event (trade, ticker) or another instrument's.
    Ignored,
}

/// Counts of what the machine did, for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncCounters {
    /// Depth messages applied (committed).
    pub messages_applied: u64,
    /// Levels applied (depth and snapshot).
    pub levels_applied: u64,
    /// Snapshots applied.
    pub snapshots: u64,
    /// Events buffered for a snapshot.
    pub buffered: u64,
    /// Stale messages (and stale snapshots) ignored.
    pub stale: u64,
    /// Duplicate messages ignored.
    pub duplicates: u64,
    /// Gaps found.
    pub gaps: u64,
    /// Crossed or locked books found after a message.
    pub crossed: u64,
    /// Truncated messages.
    pub truncated: u64,
    /// Times the buffer filled up and was emptied.
    pub buffer_overflows: u64,
    /// Levels the book refused.
    pub rejected_levels: u64,
    /// Bybit restarts signalled on a delta.
    pub venue_resets: u64,
    /// Events dropped while unsynced and not buffered.
    pub unsynced_drops: u64,
    /// Times the machine went back to awaiting a snapshot.
    pub resyncs: u64,
}

/// Start-up settings of a [`BookSync`](crate::BookSync).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConfig {
    /// The book's settings.
    pub book: BookConfig,
    /// Events the pre-snapshot buffer holds (each is a 520-byte [`MarketEvent`](pinion_core::MarketEvent)).
    pub buffer_events: usize,
}

impl SyncConfig {
    /// The default buffer: 4096 events (about 2 MiB), minutes of Binance's 100 ms depth stream.
    pub const DEFAULT_BUFFER_EVENTS: usize = 4096;
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            book: BookConfig::default(),
            buffer_events: Self::DEFAULT_BUFFER_EVENTS,
        }
    }
}

/// The result of comparing a `BookTicker` event with the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickerCheck {
    /// The ticker's `u` is not the last applied depth `u` (or the book is not synced, or it is
    /// not a ticker of this instrument): nothing to compare.
    NotComparable,
    /// Same `u`, and best bid and ask (price and quantity) agree.
    Match,
    /// Same `u`, but the best levels differ.
    Mismatch {
        /// The book's best bid.
        book_bid: Option<Level>,
        /// The book's best ask.
        book_ask: Option<Level>,
        /// The ticker's best bid.
        ticker_bid: Option<Level>,
        /// The ticker's best ask.
        ticker_ask: Option<Level>,
    },
}

/// What [`BookSync::on_ticker`](crate::BookSync::on_ticker) made of a book ticker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickerOutcome {
    /// Not usable: another instrument's, the book is not synced or a message is in flight, or
    /// the ticker lacks a side or is itself crossed.
    Unusable,
    /// Older than the book: nothing new.
    Stale,
    /// The same update id as the book, and the same best bid and ask.
    Match,
    /// The same update id as the book but other best levels: the book is wrong, and the machine
    /// now awaits a snapshot.
    Mismatch,
    /// Newer than the book: its best bid and ask now top the book's snapshots until the depth
    /// stream catches up (and is checked against them then).
    Ahead,
}

/// Counts of what [`BookSync::on_ticker`](crate::BookSync::on_ticker) and the later checks did
/// with book tickers. Kept apart from [`SyncCounters`], which only the depth stream moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TickerCounters {
    /// Tickers ahead of the book (each became the top of the snapshots).
    pub ahead: u64,
    /// Tickers older than the book.
    pub stale: u64,
    /// Tickers whose best levels equal the book's at the same update id: right away when the
    /// book was there first, or when the depth message with the ticker's id was committed.
    pub matched: u64,
    /// Tickers that disagree with the book at the same update id (each a resync).
    pub mismatched: u64,
    /// Tickers that could not be used (see [`TickerOutcome::Unusable`]).
    pub unusable: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_are_stable_and_distinct() {
        let reasons = [
            ResyncReason::Start,
            ResyncReason::Gap,
            ResyncReason::Crossed,
            ResyncReason::Reconnect,
            ResyncReason::Truncated,
            ResyncReason::BadLevel,
            ResyncReason::TickerMismatch,
            ResyncReason::VenueReset,
        ];
        let mut names: Vec<&str> = reasons
            .iter()
            .map(|&reason| SyncState::AwaitingSnapshot { reason }.name())
            .collect();
        for (r, n) in reasons.iter().zip(&names).skip(1) {
            assert_eq!(*n, format!("awaiting_snapshot:{}", r.name()));
        }
        assert_eq!(names[0], "awaiting_snapshot");
        names.push(SyncState::Live.name());
        names.push(SyncState::Syncing { snapshot_id: 7 }.name());
        assert_eq!(names[names.len() - 2..], ["live", "syncing"]);
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
