//! [`QuoteChase`]: work a quantity as a maker at the touch, re-pegging as the touch moves, up to
//! a limit price, giving up after a while.
//!
//! A *chase* buys (or sells) `qty`: one post-only (`LIMIT_MAKER`) order, at the best bid for a
//! buy (`improve_ticks` above it to improve, never at or above the best ask), at the best ask for
//! a sell. When the touch moves away from the order's price, the order is cancelled and, once
//! the cancel is confirmed, placed again at the new touch for what is still to do. The price
//! never goes past the chase's limit: the tighter of `limit_px` (absolute) and `limit_ppm` of
//! the touch when the chase started (from there, away from the market: above for a buy, below
//! for a sell). What is done is measured on the position, so a fill that arrives late still
//! counts.
//!
//! Time is event time (the receive time of the market data). A chase older than `give_up_ns`
//! (found by a view or a trade) cancels its order and ends once nothing is open. With `cycle`, an ended chase starts the
//! next one at once: after a completed chase on the other side (so a buy is followed by the
//! sell that flattens it), after a given-up one on the same side; without it, the strategy
//! stops after the first chase.
//!
//! A chase is placed only while its remaining quantity fits within `max_position`; an unsynced
//! view cancels the order (the chase goes on when the book is back).

use pinion_core::{BookTop, InstrumentId, Px, Qty, TradePrint};

use crate::order::{ExecReport, OrderIdSource, OrderSide};
use crate::price::{ceil_tick, floor_tick, ppm_of};
use crate::reason::ReasonCode;
use crate::slots::{OrderSlots, Quote};
use crate::{Intents, Strategy};

/// Settings of the quote-chasing strategy (quantities and prices in the instrument's units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteChaseParams {
    /// The side of the first chase.
    pub side: OrderSide,
    /// Quantity each chase works.
    pub qty: Qty,
    /// Ticks the order improves on the touch (0 = join it).
    pub improve_ticks: i64,
    /// Highest price of a buy, lowest of a sell; `None` = no absolute limit.
    pub limit_px: Option<Px>,
    /// How far from the touch at its start a chase may follow the market, ppm; `None` = no
    /// relative limit.
    pub limit_ppm: Option<i64>,
    /// A chase older than this (event-time ns) gives up.
    pub give_up_ns: u64,
    /// Start the next chase when one ends.
    pub cycle: bool,
    /// Largest absolute position the strategy may build.
    pub max_position: Qty,
    /// The instrument's tick, price units.
    pub tick: Px,
}

/// How a chase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChaseEnd {
    /// The whole quantity was done.
    Done,
    /// Its time ran out.
    GaveUp,
}

/// The chase under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chase {
    side: OrderSide,
    /// The position when it started: what is done is measured from it.
    start_position: Qty,
    /// The quantity it works (the size when it started).
    qty: Qty,
    started_at: u64,
    limit: Px,
}

/// The quote-chasing strategy for one instrument. See the module docs.
#[derive(Debug, Clone)]
pub struct QuoteChase {
    params: QuoteChaseParams,
    orders: OrderSlots,
    chase: Option<Chase>,
    next_side: OrderSide,
    /// Without `cycle`: the first chase has ended.
    stopped: bool,
    done: u64,
    given_up: u64,
}

impl QuoteChase {
    /// A strategy trading `instrument`, numbering orders from `ids`.
    pub fn new(instrument: InstrumentId, params: QuoteChaseParams, ids: OrderIdSource) -> Self {
        Self {
            params,
            orders: OrderSlots::new(instrument, 1, ids, params.max_position),
            chase: None,
            next_side: params.side,
            stopped: false,
            done: 0,
            given_up: 0,
        }
    }

    /// The orders, what is known about them, the position and the counters.
    pub fn orders(&self) -> &OrderSlots {
        &self.orders
    }

    /// Chases completed and given up.
    pub fn chases(&self) -> (u64, u64) {
        (self.done, self.given_up)
    }

    /// The side of the chase under way.
    pub fn chasing(&self) -> Option<OrderSide> {
        self.chase.map(|c| c.side)
    }

    /// What the chase under way still has to do.
    fn remaining(&self, c: &Chase) -> Qty {
        let moved = (self.orders.position().qty().0 - c.start_position.0) * c.side.sign();
        Qty((c.qty.0 - moved).max(0))
    }

    fn start(&mut self, book: &BookTop, qty: Qty) -> Option<Chase> {
        let p = &self.params;
        let side = self.next_side;
        let touch = book.best(side.book_side())?.px;
        let relative = p.limit_ppm.map(|ppm| match side {
            OrderSide::Buy => Px(touch.0.saturating_add(ppm_of(touch, ppm))),
            OrderSide::Sell => Px(touch.0.saturating_sub(ppm_of(touch, ppm))),
        });
        let limit = match (side, p.limit_px, relative) {
            (OrderSide::Buy, a, b) => a.into_iter().chain(b).min().unwrap_or(Px(i64::MAX)),
            (OrderSide::Sell, a, b) => a.into_iter().chain(b).max().unwrap_or(Px(0)),
        };
        Some(Chase {
            side,
            start_position: self.orders.position().qty(),
            qty,
            started_at: book.t_recv,
            limit,
        })
    }

    fn end(&mut self, how: ChaseEnd) {
        let Some(c) = self.chase.take() else {
            return;
        };
        match how {
            ChaseEnd::Done => {
                self.done += 1;
                self.next_side = c.side.opposite();
            }
            ChaseEnd::GaveUp => self.given_up += 1,
        }
        self.stopped = !self.params.cycle;
    }

    /// The order's price for the chase on this view: the touch (improved), kept passive and
    /// within the limit.
    fn price(&self, c: &Chase, book: &BookTop) -> Option<Px> {
        let p = &self.params;
        let tick = p.tick.0.max(1);
        let improve = p.improve_ticks.saturating_mul(tick);
        let px = match c.side {
            OrderSide::Buy => {
                let at = book.best_bid()?.px.0.saturating_add(improve);
                let passive = book.best_ask()?.px.0.saturating_sub(tick);
                floor_tick(at.min(passive).min(c.limit.0), p.tick)
            }
            OrderSide::Sell => {
                let at = book.best_ask()?.px.0.saturating_sub(improve);
                let passive = book.best_bid()?.px.0.saturating_add(tick);
                ceil_tick(at.max(passive).max(c.limit.0), p.tick)
            }
        };
        (px.0 > 0).then_some(px)
    }
}

impl Strategy for QuoteChase {
    fn on_book(&mut self, book: &BookTop, out: &mut Intents) {
        if book.instrument != self.orders.instrument() {
            return;
        }
        self.orders.count_book();
        if !book.synced {
            self.orders.cancel_all(book.t0, out);
            return;
        }
        if self.chase.is_none() && !self.stopped {
            self.chase = self.start(book, out.order_qty(self.params.qty));
        }
        let Some(c) = self.chase else {
            return;
        };
        let remaining = self.remaining(&c);
        if remaining.0 == 0 && self.orders.live(0).is_none() {
            self.end(ChaseEnd::Done);
            return;
        }
        if book.t_recv.saturating_sub(c.started_at) > self.params.give_up_ns {
            self.orders.cancel(0, book.t0, out);
            if self.orders.live(0).is_none() {
                self.end(ChaseEnd::GaveUp);
            }
            return;
        }
        let want = self.price(&c, book).and_then(|px| {
            let keeps = self.orders.live(0).is_some_and(|o| o.px == px);
            (keeps || (remaining.0 > 0 && self.orders.fits(c.side, remaining)))
                .then_some(Quote::maker(c.side, px, remaining, ReasonCode::Chase))
        });
        self.orders.reconcile(0, want, book.t0, book.t_recv, out);
    }

    fn on_trade(&mut self, trade: &TradePrint, out: &mut Intents) {
        // Trades tell the time too: a chase past its time cancels without waiting for a view
        // (it ends on the next view, once nothing is open).
        if trade.instrument == self.orders.instrument()
            && let Some(c) = self.chase
            && trade.t_recv.saturating_sub(c.started_at) > self.params.give_up_ns
        {
            self.orders.cancel(0, trade.t0, out);
        }
    }

    fn on_exec(&mut self, rep: &ExecReport, _out: &mut Intents) {
        self.orders.on_exec(rep);
        if let Some(c) = self.chase
            && self.remaining(&c).0 == 0
            && self.orders.live(0).is_none()
        {
            self.end(ChaseEnd::Done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{OrderAction, OrderStatus, OrderType};
    use crate::slots::tests::{INST, report};
    use crate::testbook::book;

    fn params() -> QuoteChaseParams {
        QuoteChaseParams {
            side: OrderSide::Buy,
            qty: Qty(10),
            improve_ticks: 0,
            limit_px: Some(Px(100_020)),
            limit_ppm: None,
            give_up_ns: 1_000,
            cycle: true,
            max_position: Qty(10),
            tick: Px(10),
        }
    }

    fn qc(p: QuoteChaseParams) -> QuoteChase {
        QuoteChase::new(INST, p, OrderIdSource::new(1))
    }

    fn run(s: &mut QuoteChase, t: u64, bid: i64, ask: i64) -> Intents {
        let mut out = Intents::new();
        s.on_book(&book(t, bid, ask), &mut out);
        out
    }

    fn exec(s: &mut QuoteChase, o: &crate::OrderIntent, st: OrderStatus, fill: i64, leaves: i64) {
        s.on_exec(
            &report(o.client_id, o.side, st, o.px.0, fill, leaves),
            &mut Intents::new(),
        );
    }

    #[test]
    fn joins_the_bid_re_pegs_up_to_the_limit_and_never_crosses() {
        let mut s = qc(params());
        let a = run(&mut s, 0, 100_000, 100_050)[0];
        assert_eq!(
            (a.action, a.side, a.px, a.qty, a.order_type),
            (
                OrderAction::New,
                OrderSide::Buy,
                Px(100_000),
                Qty(10),
                OrderType::LimitMaker
            )
        );
        exec(&mut s, &a, OrderStatus::New, 0, 10);
        // The bid moves up: re-peg (cancel, then the new price once the cancel is confirmed).
        let out = run(&mut s, 100, 100_010, 100_050);
        assert_eq!(
            (out[0].action, out[0].target),
            (OrderAction::Cancel, a.client_id)
        );
        exec(&mut s, &a, OrderStatus::Canceled, 0, 0);
        let b = run(&mut s, 200, 100_010, 100_050)[0];
        assert_eq!((b.action, b.px), (OrderAction::New, Px(100_010)));
        exec(&mut s, &b, OrderStatus::New, 0, 10);
        // Past the limit: the order goes to the limit, no further.
        let out = run(&mut s, 300, 100_040, 100_090);
        assert_eq!(out[0].target, b.client_id);
        exec(&mut s, &b, OrderStatus::Canceled, 0, 0);
        let c = run(&mut s, 400, 100_040, 100_090)[0];
        assert_eq!(c.px, Px(100_020));
        // A one-tick spread with improvement asked: still below the ask.
        let mut p = params();
        p.improve_ticks = 3;
        p.limit_px = None;
        let mut s = qc(p);
        let o = run(&mut s, 0, 100_000, 100_010)[0];
        assert_eq!(o.px, Px(100_000));
    }

    #[test]
    fn a_done_chase_is_followed_by_one_on_the_other_side() {
        let mut p = params();
        p.limit_px = None;
        p.limit_ppm = Some(100);
        let mut s = qc(p);
        let a = run(&mut s, 0, 100_000, 100_050)[0];
        exec(&mut s, &a, OrderStatus::PartiallyFilled, 4, 6);
        assert_eq!(s.chasing(), Some(OrderSide::Buy));
        exec(&mut s, &a, OrderStatus::Filled, 6, 0);
        assert_eq!((s.chases(), s.chasing()), ((1, 0), None));
        // Now sell 10 at the ask, never under 1 bps below the ask at its start
        // (100,050 − 10 = 100,040).
        let b = run(&mut s, 10, 100_000, 100_050)[0];
        assert_eq!(
            (b.side, b.px, b.qty),
            (OrderSide::Sell, Px(100_050), Qty(10))
        );
        exec(&mut s, &b, OrderStatus::New, 0, 10);
        let out = run(&mut s, 20, 99_900, 99_950);
        assert_eq!(out[0].target, b.client_id);
        exec(&mut s, &b, OrderStatus::Canceled, 0, 0);
        let c = run(&mut s, 30, 99_900, 99_950)[0];
        assert_eq!(c.px, Px(100_040));
    }

    #[test]
    fn gives_up_in_event_time_and_stops_without_cycle() {
        let mut p = params();
        p.cycle = false;
        let mut s = qc(p);
        let a = run(&mut s, 0, 100_000, 100_050)[0];
        exec(&mut s, &a, OrderStatus::New, 0, 10);
        assert!(
            run(&mut s, 1_000, 100_000, 100_050).is_empty(),
            "at the limit, not past it"
        );
        let out = run(&mut s, 1_001, 100_000, 100_050);
        assert_eq!(
            (out[0].action, out[0].target),
            (OrderAction::Cancel, a.client_id)
        );
        exec(&mut s, &a, OrderStatus::Canceled, 0, 0);
        assert!(run(&mut s, 1_002, 100_000, 100_050).is_empty());
        assert_eq!(s.chases(), (0, 1));
        assert!(run(&mut s, 1_003, 100_000, 100_050).is_empty(), "stopped");
    }
}
