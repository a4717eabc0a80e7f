//! [`SnapshotRequests`]: how the book stage tells a live source which books need a snapshot.
//!
//! The book stage owns the sync state machines; the live source owns the connections and the
//! REST client. When a book loses sync (a gap, a reconnect, a snapshot older than the buffered
//! diffs) the book stage bumps that instrument's request counter; the source compares it with
//! the last request it served and fetches a new snapshot for that instrument alone (Binance), or
//! resubscribes its order book topic (Bybit, whose snapshot comes in the stream). The book stage
//! also publishes whether each book is live, so the source can tell a book stuck unsynced with
//! nothing in flight (a snapshot that could not be used) and a rotation can wait for every book.
//!
//! One cache line per instrument, written by the book thread only on a change and read by the
//! feed thread on its timer: no locks, no allocation after construction. In a replay nobody
//! reads the requests; the books wait for a snapshot in the recording, as before.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam::utils::CachePadded;
use pinion_core::InstrumentId;

/// One instrument's slot.
#[derive(Debug, Default)]
struct Slot {
    /// Snapshot requests made so far.
    requested: AtomicU64,
    /// Whether the book follows the venue now.
    live: AtomicBool,
}

/// Per instrument: snapshot requests from the book stage, and whether each book is live.
#[derive(Debug)]
pub struct SnapshotRequests {
    slots: Box<[CachePadded<Slot>]>,
}

impl SnapshotRequests {
    /// Slots for instrument ids `0..instruments`.
    pub fn new(instruments: usize) -> Self {
        Self {
            slots: (0..instruments)
                .map(|_| CachePadded::new(Slot::default()))
                .collect(),
        }
    }

    /// How many instruments have a slot.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The book of `instrument` needs a new snapshot (book thread).
    pub fn request(&self, instrument: InstrumentId) {
        if let Some(s) = self.slots.get(usize::from(instrument.0)) {
            s.requested.fetch_add(1, Ordering::Release);
        }
    }

    /// Requests made so far for `instrument` (source thread): a value above the last one served
    /// is a request to serve.
    pub fn requested(&self, instrument: InstrumentId) -> u64 {
        self.slots
            .get(usize::from(instrument.0))
            .map_or(0, |s| s.requested.load(Ordering::Acquire))
    }

    /// Publishes whether the book of `instrument` is live (book thread, on a change).
    pub fn set_live(&self, instrument: InstrumentId, live: bool) {
        if let Some(s) = self.slots.get(usize::from(instrument.0)) {
            s.live.store(live, Ordering::Release);
        }
    }

    /// Whether the book of `instrument` was live when last published.
    pub fn is_live(&self, instrument: InstrumentId) -> bool {
        self.slots
            .get(usize::from(instrument.0))
            .is_some_and(|s| s.live.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_count_up_per_instrument_and_unknown_ids_are_ignored() {
        let r = SnapshotRequests::new(2);
        r.request(InstrumentId(1));
        r.request(InstrumentId(1));
        r.request(InstrumentId(7));
        assert_eq!(r.requested(InstrumentId(0)), 0);
        assert_eq!(r.requested(InstrumentId(1)), 2);
        assert_eq!(r.requested(InstrumentId(7)), 0);
        r.set_live(InstrumentId(0), true);
        assert!(r.is_live(InstrumentId(0)));
        assert!(!r.is_live(InstrumentId(1)));
    }
}
