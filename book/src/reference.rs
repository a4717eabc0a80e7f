//! [`ReferenceBook`]: the plainest correct L2 book, two `BTreeMap`s from price to quantity.
//!
//! It is the yardstick: the property tests and the real-data tests require the array book to
//! equal it level for level, and the benchmarks measure the array book against it in the same
//! run. It allocates per new level and is not for the hot path.
//!
//! It follows the same input rules as the array book: prices must lie on the tick grid,
//! quantities are absolute and non-negative, zero removes.

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::iter::Rev;

use pinion_core::{InstrumentSpec, Level, Px, Qty, Side};

use crate::book::MAX_TICK;
use crate::error::BookError;
use crate::levels::{BookLevels, L2Book};

/// A `BTreeMap` order book. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferenceBook {
    bids: BTreeMap<Px, Qty>,
    asks: BTreeMap<Px, Qty>,
    tick: i64,
}

impl ReferenceBook {
    /// An empty book for `spec`'s instrument.
    pub fn new(spec: &InstrumentSpec) -> Result<Self, BookError> {
        Self::with_tick(spec.tick)
    }

    /// An empty book for prices on a grid of `tick` raw units.
    pub fn with_tick(tick: Px) -> Result<Self, BookError> {
        if tick.0 <= 0 {
            return Err(BookError::BadTick);
        }
        Ok(Self {
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            tick: tick.0,
        })
    }

    /// The quantity at `px` on `side` (zero when there is no level there).
    pub fn qty_at(&self, side: Side, px: Px) -> Qty {
        let map = match side {
            Side::Bid => &self.bids,
            Side::Ask => &self.asks,
        };
        map.get(&px).copied().unwrap_or(Qty::ZERO)
    }
}

/// The levels of one side of a [`ReferenceBook`], best first.
#[derive(Debug, Clone)]
pub enum ReferenceLevels<'a> {
    /// Bids: highest price first.
    Bids(Rev<btree_map::Iter<'a, Px, Qty>>),
    /// Asks: lowest price first.
    Asks(btree_map::Iter<'a, Px, Qty>),
}

impl Iterator for ReferenceLevels<'_> {
    type Item = Level;

    fn next(&mut self) -> Option<Level> {
        let (px, qty) = match self {
            ReferenceLevels::Bids(it) => it.next()?,
            ReferenceLevels::Asks(it) => it.next()?,
        };
        Some(Level { px: *px, qty: *qty })
    }
}

impl BookLevels for ReferenceBook {
    fn best(&self, side: Side) -> Option<Level> {
        self.levels(side).next()
    }

    fn levels(&self, side: Side) -> impl Iterator<Item = Level> + '_ {
        match side {
            Side::Bid => ReferenceLevels::Bids(self.bids.iter().rev()),
            Side::Ask => ReferenceLevels::Asks(self.asks.iter()),
        }
    }

    fn len(&self, side: Side) -> usize {
        match side {
            Side::Bid => self.bids.len(),
            Side::Ask => self.asks.len(),
        }
    }
}

impl L2Book for ReferenceBook {
    fn set_level(&mut self, side: Side, px: Px, qty: Qty) -> Result<(), BookError> {
        if qty.0 < 0 {
            return Err(BookError::NegativeQty);
        }
        if px.0.rem_euclid(self.tick) != 0 {
            // As the array book does: a finer grid that holds the price and every level.
            let (mut a, mut b) = (self.tick.unsigned_abs(), px.0.unsigned_abs());
            while b != 0 {
                (a, b) = (b, a % b);
            }
            self.tick = i64::try_from(a).map_err(|_| BookError::OffTick(px))?;
        }
        if !(-MAX_TICK..=MAX_TICK).contains(&px.0.div_euclid(self.tick)) {
            return Err(BookError::PriceOutOfRange(px));
        }
        let map = match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        if qty.0 == 0 {
            map.remove(&px);
        } else {
            map.insert(px, qty);
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }
}
