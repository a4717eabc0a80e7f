//! [`BookTop`]: the top `K` levels of one instrument's book, the one value that carries the
//! book from the book stage to the strategy (and on to the simulated venue).
//!
//! Fixed-size, `Copy` and `#[repr(C)]`, so a ring slot holds it by value; a test pins its size.
//! The book fills it in place ([`BookTop::fill`], [`BookTop::fill_behind`]) and the strategy
//! reads it where it lies: nothing converts it on the way. It carries the `t0` of the event that
//! produced it, so tick-to-trade is measured from the frame's arrival, and the `synced` flag, so
//! a strategy never trades on a book the sync machine knows is wrong.
//!
//! Levels are best first on each side (bids descending, asks ascending); a side may hold fewer
//! than `K`. The counts never exceed `K`: they are private and set only through the fill
//! methods, which clamp them.
//!
//! # Analytics
//!
//! Integer arithmetic on the scaled prices ([`Px`], raw units of `10^-price_decimals`) and
//! quantities ([`Qty`]). Where a result is not a whole price unit it is rounded toward negative
//! infinity (floor), and the exact form is given beside it ([`BookTop::mid_x2`],
//! [`Sweep::notional`] over [`Sweep::filled`]). Intermediate products run in `i128` where an
//! `i64` could overflow, so no figure wraps or panics on any input.

use crate::decimal::{Px, Qty};
use crate::event::{Level, Side};
use crate::instrument::InstrumentId;

/// Levels per side of the default [`BookTop`]: what the book stage sends and strategies see.
pub const TOP_LEVELS: usize = 10;

/// The top `K` levels per side of one instrument's book, as of one update. See the module docs.
///
/// Two tops are equal when their headers and their held levels are; slots past the counts (left
/// over from an earlier fill of the same value) do not count.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BookTop<const K: usize = TOP_LEVELS> {
    /// The venue's update id of the last message applied (Binance `u`, Bybit `u`), or of the
    /// book ticker that tops the levels.
    pub last_update_id: u64,
    /// The `t0` of the market data this state results from (engine monotonic ns): latency only.
    pub t0: u64,
    /// Event time of this state: the receive time of the market data it results from (ns since
    /// the Unix epoch, as the recording or the socket gives it). Staleness and order-rate rules
    /// run on this clock, so a replay decides the same on any host. The fill methods leave it;
    /// the book stage stamps it (0 until then).
    pub t_recv: u64,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Whether the book was in sync with the venue. When false the levels may be wrong and
    /// nothing may be traded on them.
    pub synced: bool,
    n_bids: u8,
    n_asks: u8,
    bids: [Level; K],
    asks: [Level; K],
}

impl<const K: usize> BookTop<K> {
    /// No levels, not synced, every header field zero.
    pub const EMPTY: Self = {
        // The counts are `u8`; every top starts from this value, so this check covers them all.
        assert!(
            K <= u8::MAX as usize,
            "a BookTop holds at most 255 levels a side"
        );
        Self {
            last_update_id: 0,
            t0: 0,
            t_recv: 0,
            instrument: InstrumentId(0),
            synced: false,
            n_bids: 0,
            n_asks: 0,
            bids: [Level {
                px: Px(0),
                qty: Qty(0),
            }; K],
            asks: [Level {
                px: Px(0),
                qty: Qty(0),
            }; K],
        }
    };

    /// A top with the given header and the first `K` of the given best-first levels.
    pub fn from_levels(
        instrument: InstrumentId,
        last_update_id: u64,
        t0: u64,
        synced: bool,
        bids: &[Level],
        asks: &[Level],
    ) -> Self {
        let mut top = Self::EMPTY;
        top.set_header(instrument, last_update_id, t0, synced);
        top.copy_side(Side::Bid, bids);
        top.copy_side(Side::Ask, asks);
        top
    }

    /// Sets every header field at once.
    #[inline]
    pub fn set_header(
        &mut self,
        instrument: InstrumentId,
        last_update_id: u64,
        t0: u64,
        synced: bool,
    ) {
        self.instrument = instrument;
        self.last_update_id = last_update_id;
        self.t0 = t0;
        self.synced = synced;
    }

    #[inline]
    fn slots(&mut self, side: Side) -> (&mut [Level; K], &mut u8) {
        match side {
            Side::Bid => (&mut self.bids, &mut self.n_bids),
            Side::Ask => (&mut self.asks, &mut self.n_asks),
        }
    }

    /// Replaces the levels of `side`: `write` gets the side's `K` slots, writes its levels best
    /// first from the front, and returns how many it wrote (more than `K` counts as `K`).
    #[inline]
    pub fn fill(&mut self, side: Side, write: impl FnOnce(&mut [Level]) -> usize) {
        let (slots, n) = self.slots(side);
        *n = write(slots).min(K) as u8;
    }

    /// Replaces the levels of `side` with `best` followed by what `write` puts in the `K − 1`
    /// slots behind it (returning how many it wrote). With `K = 0` the side stays empty.
    #[inline]
    pub fn fill_behind(
        &mut self,
        side: Side,
        best: Level,
        write: impl FnOnce(&mut [Level]) -> usize,
    ) {
        let (slots, n) = self.slots(side);
        *n = match slots.split_first_mut() {
            Some((first, rest)) => {
                *first = best;
                (1 + write(rest).min(K - 1)) as u8
            }
            None => 0,
        };
    }

    /// Replaces the levels of `side` with the first `K` of `levels` (best first).
    #[inline]
    pub fn copy_side(&mut self, side: Side, levels: &[Level]) {
        self.fill(side, |out| {
            let n = levels.len().min(out.len());
            out[..n].copy_from_slice(&levels[..n]);
            n
        });
    }

    /// The levels of `side`, best first.
    #[inline]
    pub fn side(&self, side: Side) -> &[Level] {
        match side {
            Side::Bid => self.bids(),
            Side::Ask => self.asks(),
        }
    }

    /// Bid levels, best (highest) first.
    #[inline]
    pub fn bids(&self) -> &[Level] {
        &self.bids[..usize::from(self.n_bids).min(K)]
    }

    /// Ask levels, best (lowest) first.
    #[inline]
    pub fn asks(&self) -> &[Level] {
        &self.asks[..usize::from(self.n_asks).min(K)]
    }

    /// The best level of `side`.
    #[inline]
    pub fn best(&self, side: Side) -> Option<Level> {
        self.side(side).first().copied()
    }

    /// The best bid.
    #[inline]
    pub fn best_bid(&self) -> Option<Level> {
        self.bids().first().copied()
    }

    /// The best ask.
    #[inline]
    pub fn best_ask(&self) -> Option<Level> {
        self.asks().first().copied()
    }

    /// Best ask minus best bid, in raw price units (negative when crossed).
    #[inline]
    pub fn spread(&self) -> Option<i64> {
        self.best_ask()?.px.0.checked_sub(self.best_bid()?.px.0)
    }

    /// Twice the mid price, best bid + best ask: the exact mid, for any book with both sides
    /// (a locked or crossed one too).
    #[inline]
    pub fn mid_x2(&self) -> Option<i64> {
        self.best_ask()?.px.0.checked_add(self.best_bid()?.px.0)
    }

    /// The mid price rounded down to a price unit (`⌊mid_x2 / 2⌋`); `None` unless both sides
    /// are present and the book is neither locked nor crossed, since such a book has no price
    /// to quote around.
    #[inline]
    pub fn mid(&self) -> Option<Px> {
        let (b, a) = (self.best_bid()?, self.best_ask()?);
        // a − b > 0, so halving it rounds down, and the sum cannot overflow.
        (b.px < a.px).then(|| Px(b.px.0 + (a.px.0 - b.px.0) / 2))
    }

    /// The size-weighted mid, `(bid × ask_qty + ask × bid_qty) / (bid_qty + ask_qty)`, rounded
    /// down to a price unit. It leans towards the side with less quantity, the price more
    /// likely to trade next. `None` without both sides or when the two quantities sum to zero
    /// or less.
    pub fn microprice(&self) -> Option<Px> {
        let (b, a) = (self.best_bid()?, self.best_ask()?);
        let w = i128::from(b.qty.0) + i128::from(a.qty.0);
        if w <= 0 {
            return None;
        }
        let num =
            i128::from(b.px.0) * i128::from(a.qty.0) + i128::from(a.px.0) * i128::from(b.qty.0);
        // A weighted mean of two i64 prices with non-negative weights lies between them; with
        // a negative weight it may not, and then there is no price to give.
        i64::try_from(num.div_euclid(w)).ok().map(Px)
    }

    /// Total bid and ask quantity over the best `n` levels of each side (saturating).
    #[inline]
    pub fn depth_qty(&self, n: usize) -> (Qty, Qty) {
        let sum = |levels: &[Level]| {
            Qty(levels
                .iter()
                .take(n)
                .fold(0i64, |s, l| s.saturating_add(l.qty.0)))
        };
        (sum(self.bids()), sum(self.asks()))
    }

    /// Order-book imbalance over the best `n` levels in per-mille:
    /// `1000 × (bid qty − ask qty) / (bid qty + ask qty)`, truncated toward zero, in
    /// `-1000..=1000`; `None` when both sides are empty. Positive means more resting buyers.
    #[inline]
    pub fn imbalance_permille(&self, n: usize) -> Option<i64> {
        let (b, a) = self.depth_qty(n);
        permille(b.0, a.0)
    }

    /// The quantity resting within `bps` basis points of the mid, `(bids, asks)`: see
    /// [`BpsBand`]. Zero on both sides without a mid. Counts only the `K` levels held.
    pub fn depth_within_bps(&self, bps: u32) -> (Qty, Qty) {
        let Some(m2) = self.mid_x2() else {
            return (Qty::ZERO, Qty::ZERO);
        };
        let band = BpsBand::around(m2, bps);
        (
            band.depth(Side::Bid, self.bids().iter().copied()),
            band.depth(Side::Ask, self.asks().iter().copied()),
        )
    }

    /// Walks the held levels as a market order of `qty` from `aggressor` would: a buyer takes
    /// the asks, a seller the bids, best first.
    #[inline]
    pub fn sweep(&self, aggressor: Side, qty: Qty) -> Sweep {
        Sweep::through(self.side(aggressor.opposite()).iter().copied(), qty)
    }

    /// The cost of a market order of `qty` from `aggressor` against the mid, in basis points of
    /// the mid, rounded down: positive is worse than the mid (a buy above it, a sell below it).
    /// Exactly `⌊10⁴ × (2·notional − filled·mid_x2) / (filled·mid_x2)⌋` for a buyer, the
    /// numerator negated for a seller, over what the held levels fill. `None` without a fill, a
    /// positive `mid_x2`, or when the figure does not fit.
    pub fn slippage_bps(&self, aggressor: Side, qty: Qty) -> Option<i64> {
        let m2 = i128::from(self.mid_x2().filter(|&m| m > 0)?);
        let s = self.sweep(aggressor, qty);
        if s.filled.0 <= 0 {
            return None;
        }
        let cost = s
            .notional
            .checked_mul(2)?
            .checked_sub(i128::from(s.filled.0) * m2)?;
        let signed = match aggressor {
            Side::Bid => cost,
            Side::Ask => cost.checked_neg()?,
        };
        let den = i128::from(s.filled.0).checked_mul(m2)?;
        i64::try_from(signed.checked_mul(10_000)?.div_euclid(den)).ok()
    }
}

impl<const K: usize> PartialEq for BookTop<K> {
    fn eq(&self, other: &Self) -> bool {
        self.last_update_id == other.last_update_id
            && self.t0 == other.t0
            && self.t_recv == other.t_recv
            && self.instrument == other.instrument
            && self.synced == other.synced
            && self.bids() == other.bids()
            && self.asks() == other.asks()
    }
}

impl<const K: usize> Eq for BookTop<K> {}

impl<const K: usize> Default for BookTop<K> {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// `1000 × (b − a) / (b + a)`, truncated toward zero; `None` unless `b + a` is positive.
///
/// In 64-bit arithmetic whenever it cannot overflow, since a 128-bit division is a library call
/// and this runs on every view the strategy sees; exactly the 128-bit result either way.
#[inline]
fn permille(b: i64, a: i64) -> Option<i64> {
    let narrow = b
        .checked_add(a)
        .zip(b.checked_sub(a).and_then(|d| d.checked_mul(1000)));
    if let Some((total, diff)) = narrow {
        return (total > 0).then(|| diff / total);
    }
    let total = i128::from(b) + i128::from(a);
    if total <= 0 {
        return None;
    }
    Some(((i128::from(b) - i128::from(a)) * 1000 / total) as i64)
}

/// The prices within `bps` basis points of a mid, with exact integer bounds: bids at or above
/// `mid × (1 − bps/10⁴)`, asks at or below `mid × (1 + bps/10⁴)`, from the exact `mid_x2`.
///
/// One definition for every book that answers "depth within ±x bps": [`BookTop`] over its held
/// levels, and the full books of the book crate over all of theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpsBand {
    /// The lowest bid price inside, `⌈mid_x2 (10⁴ − bps) / (2·10⁴)⌉`.
    pub lo: i128,
    /// The highest ask price inside, `⌊mid_x2 (10⁴ + bps) / (2·10⁴)⌋`.
    pub hi: i128,
}

impl BpsBand {
    /// The band of `bps` basis points around the mid `mid_x2 / 2`.
    #[inline]
    pub fn around(mid_x2: i64, bps: u32) -> Self {
        let m2 = i128::from(mid_x2);
        let bps = i128::from(bps);
        let below = m2 * (10_000 - bps);
        Self {
            lo: below.div_euclid(20_000) + i128::from(below.rem_euclid(20_000) != 0),
            hi: (m2 * (10_000 + bps)).div_euclid(20_000),
        }
    }

    /// Whether `px` on `side` lies inside the band (only its own bound applies to each side).
    #[inline]
    pub fn contains(&self, side: Side, px: Px) -> bool {
        match side {
            Side::Bid => i128::from(px.0) >= self.lo,
            Side::Ask => i128::from(px.0) <= self.hi,
        }
    }

    /// The total quantity (saturating) of the best-first `levels` of `side` inside the band.
    #[inline]
    pub fn depth(&self, side: Side, levels: impl IntoIterator<Item = Level>) -> Qty {
        Qty(levels
            .into_iter()
            .take_while(|l| self.contains(side, l.px))
            .fold(0i64, |s, l| s.saturating_add(l.qty.0)))
    }
}

/// The result of walking one side of a book for a quantity (a simulated market order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sweep {
    /// How much the levels could fill, at most the quantity asked.
    pub filled: Qty,
    /// `Σ px × qty` over the fills, in units of `10^-(price_decimals + qty_decimals)`: with
    /// `filled`, the exact average price.
    pub notional: i128,
    /// The last (worst) price touched; zero when nothing filled.
    pub worst: Px,
    /// How many levels were touched.
    pub levels: u32,
}

impl Sweep {
    /// Fills `qty` from best-first `levels`, taking each level's quantity until none is left.
    pub fn through(levels: impl IntoIterator<Item = Level>, qty: Qty) -> Self {
        let mut s = Sweep::default();
        let mut left = qty.0;
        for l in levels {
            if left <= 0 {
                break;
            }
            let take = left.min(l.qty.0);
            left -= take;
            s.filled.0 += take;
            s.notional += i128::from(l.px.0) * i128::from(take);
            s.worst = l.px;
            s.levels += 1;
        }
        s
    }

    /// The volume-weighted average price of the fills, `⌊notional / filled⌋`, in raw price
    /// units; `None` when nothing filled.
    #[inline]
    pub fn vwap(&self) -> Option<Px> {
        if self.filled.0 <= 0 {
            return None;
        }
        i64::try_from(self.notional.div_euclid(i128::from(self.filled.0)))
            .ok()
            .map(Px)
    }
}

#[cfg(test)]
mod tests;
