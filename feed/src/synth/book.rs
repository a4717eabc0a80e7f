//! The synthetic market's own order book: the truth the generated frames describe.
//!
//! Each side is a vector of `(tick, qty)` levels ordered best first, allocated once with a fixed
//! capacity; inserts and removals shift elements within that capacity and never reallocate
//! ([`SideBook::set`] refuses an insert into a full side). Prices are tick indices (price / tick
//! size), quantities are in the instrument's quantity units. A level with zero quantity is never
//! stored.

use pinion_core::event::Side;

/// One level of the synthetic book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SynthLevel {
    /// Tick index of the price.
    pub(crate) tick: i64,
    /// Quantity in instrument units, always positive.
    pub(crate) qty: i64,
}

/// One side of the book, best level first.
#[derive(Debug, Clone)]
pub(crate) struct SideBook {
    side: Side,
    levels: Vec<SynthLevel>,
}

impl SideBook {
    /// An empty side that can hold `capacity` levels.
    pub(crate) fn with_capacity(side: Side, capacity: usize) -> Self {
        Self {
            side,
            levels: Vec::with_capacity(capacity),
        }
    }

    /// The levels, best first.
    #[inline]
    pub(crate) fn levels(&self) -> &[SynthLevel] {
        &self.levels
    }

    /// The best level.
    #[inline]
    pub(crate) fn best(&self) -> Option<SynthLevel> {
        self.levels.first().copied()
    }

    /// The worst (farthest from the touch) level.
    #[inline]
    pub(crate) fn worst(&self) -> Option<SynthLevel> {
        self.levels.last().copied()
    }

    /// The number of levels.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.levels.len()
    }

    /// `Ok(index)` of the level at `tick`, or `Err(index)` where it would be inserted.
    #[inline]
    fn find(&self, tick: i64) -> Result<usize, usize> {
        match self.side {
            // Descending: a level sorts before the target when its price is higher.
            Side::Bid => self.levels.binary_search_by(|l| tick.cmp(&l.tick)),
            Side::Ask => self.levels.binary_search_by(|l| l.tick.cmp(&tick)),
        }
    }

    /// The quantity at `tick` (0 when there is no level).
    #[inline]
    pub(crate) fn qty_at(&self, tick: i64) -> i64 {
        self.find(tick).map_or(0, |i| self.levels[i].qty)
    }

    /// Sets the absolute quantity at `tick`; zero removes the level. Returns false (and changes
    /// nothing) when a new level would exceed the side's capacity.
    pub(crate) fn set(&mut self, tick: i64, qty: i64) -> bool {
        match (self.find(tick), qty > 0) {
            (Ok(i), true) => self.levels[i].qty = qty,
            (Ok(i), false) => {
                self.levels.remove(i);
            }
            (Err(_), false) => {}
            (Err(i), true) => {
                if self.levels.len() == self.levels.capacity() {
                    return false;
                }
                self.levels.insert(i, SynthLevel { tick, qty });
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_keep_best_first_order() {
        let mut bids = SideBook::with_capacity(Side::Bid, 4);
        for t in [10, 12, 11] {
            assert!(bids.set(t, 1));
        }
        let ticks: Vec<i64> = bids.levels().iter().map(|l| l.tick).collect();
        assert_eq!(ticks, [12, 11, 10]);
        let mut asks = SideBook::with_capacity(Side::Ask, 4);
        for t in [13, 15, 14] {
            assert!(asks.set(t, 2));
        }
        assert_eq!(asks.best(), Some(SynthLevel { tick: 13, qty: 2 }));
        assert_eq!(asks.worst().map(|l| l.tick), Some(15));
    }

    #[test]
    fn zero_removes_and_capacity_is_respected() {
        let mut asks = SideBook::with_capacity(Side::Ask, 2);
        assert!(asks.set(5, 3));
        assert!(asks.set(6, 3));
        assert!(!asks.set(7, 3), "a third level must not reallocate");
        assert_eq!(asks.len(), 2);
        assert!(asks.set(5, 0));
        assert_eq!(asks.qty_at(5), 0);
        assert_eq!(asks.qty_at(6), 3);
        assert!(asks.set(6, 9));
        assert_eq!(asks.qty_at(6), 9);
    }
}
