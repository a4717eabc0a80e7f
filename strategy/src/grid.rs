//! [`Grid`]: resting orders on fixed price levels between a lower and an upper price; buy low,
//! sell high, each filled level replaced by its opposite one level over.
//!
//! - `levels` prices from `lower` to `upper` inclusive, evenly spaced ([`GridSpacing::Arithmetic`])
//!   or at a constant ratio ([`GridSpacing::Geometric`]), rounded down to the tick; computed once,
//!   at construction.
//! - On the first synced view every level below the best bid wants a buy and every level above
//!   the best ask a sell; levels inside the spread want nothing.
//! - A buy at level `i` that fills completely is replaced by a sell at level `i + 1`; a sell at
//!   level `i` by a buy at `i − 1`; the filled level wants nothing until a neighbour's fill
//!   gives it an order again. So each round trip buys at one level and sells one level higher.
//! - Level `i` is slot `i` ([`OrderSlots`]). An order is placed only post-only and passive (a
//!   buy below the best ask, a sell above the best bid: otherwise it waits for the market to
//!   come back) and while its fill keeps the worst-case position within `max_position`. A level
//!   refused or cancelled keeps wanting its order and is placed again on a later view. A live
//!   order of the wrong side (when fills arrive out of the usual order) is cancelled first.
//! - An unsynced view cancels every order; the levels keep what they want.

use arrayvec::ArrayVec;
use pinion_core::{BookTop, InstrumentId, Px, Qty, TradePrint};

use crate::order::{ExecReport, OrderIdSource, OrderSide};
use crate::price::floor_tick;
use crate::reason::ReasonCode;
use crate::slots::{MAX_SLOTS, OrderSlots, OrderState, Quote};
use crate::{Intents, Strategy};

/// Most grid levels.
pub const MAX_GRID_LEVELS: usize = MAX_SLOTS;

/// How the levels are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GridSpacing {
    /// The same price step between neighbours.
    Arithmetic,
    /// The same price ratio between neighbours.
    Geometric,
}

/// Settings of the grid strategy (quantities and prices in the instrument's units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridParams {
    /// The lowest level's price.
    pub lower: Px,
    /// The highest level's price (above `lower`).
    pub upper: Px,
    /// Number of levels (`2..=MAX_GRID_LEVELS`).
    pub levels: usize,
    /// How they are spaced.
    pub spacing: GridSpacing,
    /// Size of each order.
    pub order_qty: Qty,
    /// Largest absolute position the orders may build.
    pub max_position: Qty,
    /// The instrument's tick, price units.
    pub tick: Px,
}

impl GridParams {
    /// The level prices, lowest first.
    pub fn prices(&self) -> ArrayVec<Px, MAX_GRID_LEVELS> {
        let n = self.levels.clamp(2, MAX_GRID_LEVELS);
        let (lo, hi) = (self.lower.0, self.upper.0.max(self.lower.0));
        let mut out = ArrayVec::new();
        for i in 0..n {
            let px = match self.spacing {
                GridSpacing::Arithmetic => {
                    let step = i128::from(hi - lo) * i as i128 / (n as i128 - 1);
                    lo.saturating_add(step as i64)
                }
                // Construction only: floating point is fine here, the result is rounded to the
                // tick and the ends are exact.
                GridSpacing::Geometric if i == n - 1 => hi,
                GridSpacing::Geometric => {
                    let ratio = hi as f64 / (lo.max(1) as f64);
                    (lo as f64 * ratio.powf(i as f64 / (n - 1) as f64)).round() as i64
                }
            };
            out.push(floor_tick(px, self.tick));
        }
        out
    }
}

/// The grid strategy for one instrument. See the module docs.
#[derive(Debug, Clone)]
pub struct Grid {
    params: GridParams,
    prices: ArrayVec<Px, MAX_GRID_LEVELS>,
    want: [Option<OrderSide>; MAX_GRID_LEVELS],
    orders: OrderSlots,
    started: bool,
    round_trips: u64,
}

impl Grid {
    /// A strategy trading `instrument`, numbering orders from `ids`.
    pub fn new(instrument: InstrumentId, params: GridParams, ids: OrderIdSource) -> Self {
        let prices = params.prices();
        Self {
            params,
            orders: OrderSlots::new(instrument, prices.len(), ids, params.max_position),
            prices,
            want: [None; MAX_GRID_LEVELS],
            started: false,
            round_trips: 0,
        }
    }

    /// The orders, what is known about them, the position and the counters.
    pub fn orders(&self) -> &OrderSlots {
        &self.orders
    }

    /// The level prices, lowest first.
    pub fn prices(&self) -> &[Px] {
        &self.prices
    }

    /// What level `i` wants.
    pub fn wants(&self, i: usize) -> Option<OrderSide> {
        self.want.get(i).copied().flatten()
    }

    /// Sells filled (each the second half of a round trip, one level above its buy).
    pub fn round_trips(&self) -> u64 {
        self.round_trips
    }

    fn start(&mut self, bid: Px, ask: Px) {
        for (i, &px) in self.prices.iter().enumerate() {
            self.want[i] = if px < bid {
                Some(OrderSide::Buy)
            } else if px > ask {
                Some(OrderSide::Sell)
            } else {
                None
            };
        }
        self.started = true;
    }
}

impl Strategy for Grid {
    fn on_book(&mut self, book: &BookTop, out: &mut Intents) {
        if book.instrument != self.orders.instrument() {
            return;
        }
        self.orders.count_book();
        let touch = book.best_bid().zip(book.best_ask());
        let (Some((bid, ask)), true) = (touch, book.synced) else {
            self.orders.cancel_all(book.t0, out);
            return;
        };
        if !self.started {
            self.start(bid.px, ask.px);
        }
        let qty = out.order_qty(self.params.order_qty);
        for (i, &px) in self.prices.iter().enumerate() {
            let side = self.want[i];
            if self.orders.live(i).is_some_and(|o| Some(o.side) == side) {
                continue;
            }
            let want = side.filter(|&s| {
                let passive = match s {
                    OrderSide::Buy => px < ask.px,
                    OrderSide::Sell => px > bid.px,
                };
                passive && self.orders.fits(s, qty)
            });
            self.orders.reconcile(
                i,
                want.map(|s| Quote::maker(s, px, qty, ReasonCode::GridLevel)),
                book.t0,
                book.t_recv,
                out,
            );
        }
    }

    fn on_trade(&mut self, _trade: &TradePrint, _out: &mut Intents) {}

    fn on_exec(&mut self, rep: &ExecReport, _out: &mut Intents) {
        let Some(ev) = self.orders.on_exec(rep) else {
            return;
        };
        if ev.state != OrderState::Filled {
            return;
        }
        let i = ev.slot;
        self.want[i] = None;
        match ev.side {
            OrderSide::Buy if i + 1 < self.prices.len() => self.want[i + 1] = Some(OrderSide::Sell),
            OrderSide::Sell if i > 0 => {
                self.want[i - 1] = Some(OrderSide::Buy);
                self.round_trips += 1;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{OrderAction, OrderStatus, OrderType};
    use crate::slots::tests::{INST, report};
    use crate::testbook::book;

    fn params() -> GridParams {
        GridParams {
            lower: Px(99_700),
            upper: Px(100_300),
            levels: 5,
            spacing: GridSpacing::Arithmetic,
            order_qty: Qty(10),
            max_position: Qty(100),
            tick: Px(10),
        }
    }

    fn run(s: &mut Grid, t: u64, bid: i64, ask: i64) -> Intents {
        let mut out = Intents::new();
        s.on_book(&book(t, bid, ask), &mut out);
        out
    }

    #[test]
    fn levels_are_spaced_evenly_or_geometrically_on_the_tick() {
        assert_eq!(
            params().prices().as_slice(),
            [
                Px(99_700),
                Px(99_850),
                Px(100_000),
                Px(100_150),
                Px(100_300)
            ]
        );
        let g = GridParams {
            lower: Px(1_000),
            upper: Px(16_000),
            levels: 5,
            spacing: GridSpacing::Geometric,
            tick: Px(1),
            ..params()
        };
        assert_eq!(
            g.prices().as_slice(),
            [Px(1_000), Px(2_000), Px(4_000), Px(8_000), Px(16_000)]
        );
    }

    #[test]
    fn buys_below_and_sells_above_then_a_filled_buy_becomes_a_sell_one_level_up() {
        let mut s = Grid::new(INST, params(), OrderIdSource::new(1));
        // Touch 99,990 / 100,010: the middle level (100,000) is inside the spread.
        let out = run(&mut s, 1, 99_990, 100_010);
        let got: Vec<_> = out
            .as_slice()
            .iter()
            .map(|o| (o.action, o.side, o.px, o.order_type))
            .collect();
        assert_eq!(
            got,
            [
                (
                    OrderAction::New,
                    OrderSide::Buy,
                    Px(99_700),
                    OrderType::LimitMaker
                ),
                (
                    OrderAction::New,
                    OrderSide::Buy,
                    Px(99_850),
                    OrderType::LimitMaker
                ),
                (
                    OrderAction::New,
                    OrderSide::Sell,
                    Px(100_150),
                    OrderType::LimitMaker
                ),
                (
                    OrderAction::New,
                    OrderSide::Sell,
                    Px(100_300),
                    OrderType::LimitMaker
                ),
            ]
        );
        assert_eq!(s.wants(2), None);
        assert!(run(&mut s, 2, 99_990, 100_010).is_empty(), "all pending");
        let buy = out[1];
        s.on_exec(
            &report(buy.client_id, buy.side, OrderStatus::New, 0, 0, 10),
            &mut Intents::new(),
        );
        s.on_exec(
            &report(
                buy.client_id,
                buy.side,
                OrderStatus::PartiallyFilled,
                99_850,
                4,
                6,
            ),
            &mut Intents::new(),
        );
        assert_eq!(s.wants(2), None, "a partial fill replaces nothing");
        s.on_exec(
            &report(buy.client_id, buy.side, OrderStatus::Filled, 99_850, 6, 0),
            &mut Intents::new(),
        );
        assert_eq!((s.wants(1), s.wants(2)), (None, Some(OrderSide::Sell)));
        // The market is at 99,840 / 99,860: level 2 sells at 100,000.
        let out = run(&mut s, 3, 99_840, 99_860);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].side, out[0].px), (OrderSide::Sell, Px(100_000)));
        s.on_exec(
            &report(
                out[0].client_id,
                OrderSide::Sell,
                OrderStatus::Filled,
                100_000,
                10,
                0,
            ),
            &mut Intents::new(),
        );
        assert_eq!((s.wants(1), s.round_trips()), (Some(OrderSide::Buy), 1));
        assert_eq!(s.orders().position().qty(), Qty(0));
        assert_eq!(s.orders().position().realized(), 150 * 10);
        // The buy at level 1 waits while the market is below it (it would take).
        assert!(run(&mut s, 4, 99_700, 99_800).is_empty());
        let out = run(&mut s, 5, 99_990, 100_010);
        assert_eq!((out[0].side, out[0].px), (OrderSide::Buy, Px(99_850)));
    }

    #[test]
    fn an_unsynced_view_cancels_and_the_cap_limits_the_levels() {
        let mut p = params();
        p.max_position = Qty(10);
        let mut s = Grid::new(INST, p, OrderIdSource::new(1));
        // Worst case 10 a side: one buy and one sell.
        let out = run(&mut s, 1, 99_990, 100_010);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].px, out[1].px), (Px(99_700), Px(100_150)));
        for o in out.as_slice() {
            s.on_exec(
                &report(o.client_id, o.side, OrderStatus::New, 0, 0, 10),
                &mut Intents::new(),
            );
        }
        let mut b = book(2, 99_990, 100_010);
        b.synced = false;
        let mut c = Intents::new();
        s.on_book(&b, &mut c);
        assert_eq!(c.len(), 2);
        assert!(c.as_slice().iter().all(|o| o.action == OrderAction::Cancel));
    }
}
