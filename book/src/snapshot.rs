//! [`BookSnapshot`]: the top `K` levels of a book, as the book stage sends them to the
//! strategy stage over a ring.
//!
//! Fixed-size, `Copy` and `#[repr(C)]` so a ring slot holds it by value. It carries the `t0` of
//! the event that produced it, so tick-to-trade is measured from the frame's arrival, and the
//! `synced` flag, so a strategy never trades on a book the sync machine knows is wrong.

use pinion_core::{InstrumentId, Level, Side};

use crate::view::BookView;

/// The number of levels per side in the default snapshot.
pub const DEFAULT_SNAPSHOT_DEPTH: usize = 10;

/// The top `K` levels per side of one instrument's book. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct BookSnapshot<const K: usize = DEFAULT_SNAPSHOT_DEPTH> {
    /// The venue's update id of the last message applied (`u`, Bybit `u`).
    pub last_update_id: u64,
    /// The `t0` of the event that produced this snapshot (engine monotonic ns).
    pub t0: u64,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Whether the book was in sync with the venue when this was taken.
    pub synced: bool,
    /// How many of `bids` are used.
    pub n_bids: u8,
    /// How many of `asks` are used.
    pub n_asks: u8,
    /// The best bids, best first.
    pub bids: [Level; K],
    /// The best asks, best first.
    pub asks: [Level; K],
}

impl<const K: usize> BookSnapshot<K> {
    /// An empty, unsynced snapshot.
    pub const EMPTY: Self = Self {
        last_update_id: 0,
        t0: 0,
        instrument: InstrumentId(0),
        synced: false,
        n_bids: 0,
        n_asks: 0,
        bids: [Level {
            px: pinion_core::Px(0),
            qty: pinion_core::Qty(0),
        }; K],
        asks: [Level {
            px: pinion_core::Px(0),
            qty: pinion_core::Qty(0),
        }; K],
    };

    /// A snapshot with no levels yet and the given header.
    #[inline]
    fn empty(instrument: InstrumentId, last_update_id: u64, t0: u64, synced: bool) -> Self {
        Self {
            instrument,
            last_update_id,
            t0,
            synced,
            ..Self::EMPTY
        }
    }

    /// Takes the top `K` levels of `book`. `K` must be at most 255 (the counts are `u8`).
    pub fn capture<B: BookView + ?Sized>(
        book: &B,
        instrument: InstrumentId,
        last_update_id: u64,
        t0: u64,
        synced: bool,
    ) -> Self {
        const {
            assert!(
                K <= u8::MAX as usize,
                "a snapshot holds at most 255 levels a side"
            )
        };
        let mut s = Self::empty(instrument, last_update_id, t0, synced);
        s.n_bids = book.top_levels(Side::Bid, &mut s.bids) as u8;
        s.n_asks = book.top_levels(Side::Ask, &mut s.asks) as u8;
        s
    }

    /// Takes the top `K` levels of `book` under a newer best bid and ask (from a book ticker
    /// ahead of the book): `bid` and `ask` go first, then the book's levels behind them. The
    /// book's levels at or through them are left out, since the venue says they are gone.
    pub fn capture_with_top<B: BookView + ?Sized>(
        book: &B,
        instrument: InstrumentId,
        top: (Level, Level),
        update_id: u64,
        t0: u64,
        synced: bool,
    ) -> Self {
        let (bid, ask) = top;
        let mut s = Self::empty(instrument, update_id, t0, synced);
        if let Some((first, rest)) = s.bids.split_first_mut() {
            *first = bid;
            s.n_bids = 1 + book.top_levels_behind(Side::Bid, bid.px, rest) as u8;
        }
        if let Some((first, rest)) = s.asks.split_first_mut() {
            *first = ask;
            s.n_asks = 1 + book.top_levels_behind(Side::Ask, ask.px, rest) as u8;
        }
        s
    }

    /// A snapshot of the first `K` of given best-first bid and ask levels.
    pub(crate) fn from_levels(
        instrument: InstrumentId,
        levels: (&[Level], &[Level]),
        update_id: u64,
        t0: u64,
        synced: bool,
    ) -> Self {
        let mut s = Self::empty(instrument, update_id, t0, synced);
        let nb = levels.0.len().min(K);
        let na = levels.1.len().min(K);
        s.bids[..nb].copy_from_slice(&levels.0[..nb]);
        s.asks[..na].copy_from_slice(&levels.1[..na]);
        s.n_bids = nb as u8;
        s.n_asks = na as u8;
        s
    }

    /// [`BookSnapshot::capture_with_top`] over given best-first bid and ask levels.
    pub(crate) fn compose(
        instrument: InstrumentId,
        top: (Level, Level),
        levels: (impl Iterator<Item = Level>, impl Iterator<Item = Level>),
        update_id: u64,
        t0: u64,
        synced: bool,
    ) -> Self {
        let (bid, ask) = top;
        let mut s = Self::empty(instrument, update_id, t0, synced);
        s.n_bids = fill_behind(&mut s.bids, bid, levels.0, |px| px < bid.px);
        s.n_asks = fill_behind(&mut s.asks, ask, levels.1, |px| px > ask.px);
        s
    }

    /// The used bid levels, best first.
    pub fn bids(&self) -> &[Level] {
        &self.bids[..usize::from(self.n_bids).min(K)]
    }

    /// The used ask levels, best first.
    pub fn asks(&self) -> &[Level] {
        &self.asks[..usize::from(self.n_asks).min(K)]
    }

    /// The best bid.
    pub fn best_bid(&self) -> Option<Level> {
        self.bids().first().copied()
    }

    /// The best ask.
    pub fn best_ask(&self) -> Option<Level> {
        self.asks().first().copied()
    }
}

/// Writes `best` and then the levels of `rest` (best first) that lie `behind` it into `out`;
/// returns the count.
#[inline]
fn fill_behind<const K: usize>(
    out: &mut [Level; K],
    best: Level,
    rest: impl Iterator<Item = Level>,
    behind: impl Fn(pinion_core::Px) -> bool,
) -> u8 {
    let Some((first, tail)) = out.split_first_mut() else {
        return 0;
    };
    *first = best;
    let mut n = 1;
    // Best first, so the levels to leave out are a prefix.
    for (slot, l) in tail.iter_mut().zip(rest.skip_while(|l| !behind(l.px))) {
        *slot = l;
        n += 1;
    }
    n as u8
}

impl<const K: usize> Default for BookSnapshot<K> {
    fn default() -> Self {
        Self::EMPTY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{L2Book, ReferenceBook};
    use pinion_core::{Px, Qty};

    #[test]
    fn snapshot_size_is_pinned() {
        // 16-byte header (two u64) + 8 bytes of small fields, then 2 × K levels of 16 bytes.
        assert_eq!(std::mem::size_of::<BookSnapshot>(), 24 + 2 * 10 * 16);
        assert_eq!(std::mem::size_of::<BookSnapshot<1>>(), 24 + 2 * 16);
    }

    fn lv(px: i64, qty: i64) -> Level {
        Level {
            px: Px(px),
            qty: Qty(qty),
        }
    }

    #[test]
    fn a_newer_top_goes_first_with_the_book_behind_it() {
        let mut b = ReferenceBook::with_tick(Px(1)).unwrap();
        for i in 0..20 {
            b.set_level(Side::Bid, Px(100 - i), Qty(1)).unwrap();
        }
        for i in 0..4 {
            b.set_level(Side::Ask, Px(101 + i), Qty(1)).unwrap();
        }
        let top = |bid, ask| {
            BookSnapshot::<4>::capture_with_top(&b, InstrumentId(2), (bid, ask), 9, 8, true)
        };
        // The bid moved down through two levels; the ask improved inside the spread. The
        // levels behind come from the book, past what a plain top-4 capture holds.
        let o = top(lv(98, 5), lv(100, 2));
        assert_eq!(o.bids(), [lv(98, 5), lv(97, 1), lv(96, 1), lv(95, 1)]);
        assert_eq!(o.asks(), [lv(100, 2), lv(101, 1), lv(102, 1), lv(103, 1)]);
        assert_eq!(
            (o.instrument, o.last_update_id, o.t0, o.synced),
            (InstrumentId(2), 9, 8, true)
        );
        // Same prices, new quantities: one for one.
        let o = top(lv(100, 9), lv(101, 8));
        assert_eq!(o.bids(), [lv(100, 9), lv(99, 1), lv(98, 1), lv(97, 1)]);
        assert_eq!(o.asks(), [lv(101, 8), lv(102, 1), lv(103, 1), lv(104, 1)]);
        // Through every level of a side: the ticker's level alone on it.
        let o = top(lv(99, 1), lv(300, 1));
        assert_eq!(o.asks(), [lv(300, 1)]);
        assert_eq!(o.n_bids, 4);
    }

    #[test]
    fn capture_takes_the_top_levels() {
        let mut b = ReferenceBook::with_tick(Px(1)).unwrap();
        for i in 0..15 {
            b.set_level(Side::Bid, Px(100 - i), Qty(1 + i)).unwrap();
        }
        b.set_level(Side::Ask, Px(101), Qty(7)).unwrap();
        let s: BookSnapshot = BookSnapshot::capture(&b, InstrumentId(3), 42, 99, true);
        assert_eq!((s.n_bids, s.n_asks), (10, 1));
        assert_eq!(
            s.bids()[9],
            Level {
                px: Px(91),
                qty: Qty(10)
            }
        );
        assert_eq!(
            s.best_ask(),
            Some(Level {
                px: Px(101),
                qty: Qty(7)
            })
        );
        assert_eq!(
            (s.instrument, s.last_update_id, s.t0, s.synced),
            (InstrumentId(3), 42, 99, true)
        );
    }
}
