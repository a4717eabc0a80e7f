//! [`SpreadCapture`]: quote inside a wide spread, step back when it narrows.
//!
//! - The spread is measured relative to the mid, in ppm. At or above `enter_spread_ppm` the
//!   strategy becomes active; below `exit_spread_ppm` (at most the entry threshold, so the two
//!   make a hysteresis band) it steps back and cancels its quotes.
//! - Active, it quotes a bid `improve_ticks` ticks above the best bid and an ask as far below the
//!   best ask (0 joins the touch), post-only, `order_qty` each; when the two would meet or cross
//!   there is no room inside and nothing is quoted. The quotes follow the touch: a quote whose
//!   price no longer matches is cancelled and placed again once the cancel is confirmed.
//! - A side is quoted only while its fill keeps the worst-case position within
//!   `max_position`. Slot 0 is the bid, slot 1 the ask ([`OrderSlots`]).
//! - An unsynced view cancels both quotes.

use pinion_core::{BookTop, InstrumentId, Px, Qty, TradePrint};

use crate::order::{ExecReport, OrderIdSource, OrderSide};
use crate::price::spread_ppm;
use crate::reason::ReasonCode;
use crate::slots::{OrderSlots, Quote};
use crate::{Intents, Strategy};

/// Settings of the spread-capture strategy (quantities and prices in the instrument's units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpreadCaptureParams {
    /// Spread (ppm of the mid) at or above which the strategy quotes.
    pub enter_spread_ppm: i64,
    /// Spread below which it steps back (at most `enter_spread_ppm`).
    pub exit_spread_ppm: i64,
    /// Ticks inside the touch each quote goes (0 = join it).
    pub improve_ticks: i64,
    /// Size of each quote.
    pub order_qty: Qty,
    /// Largest absolute position the quotes may build.
    pub max_position: Qty,
    /// The instrument's tick, price units.
    pub tick: Px,
}

/// The spread-capture strategy for one instrument. See the module docs.
#[derive(Debug, Clone)]
pub struct SpreadCapture {
    params: SpreadCaptureParams,
    orders: OrderSlots,
    active: bool,
}

impl SpreadCapture {
    /// A strategy trading `instrument`, numbering orders from `ids`.
    pub fn new(instrument: InstrumentId, params: SpreadCaptureParams, ids: OrderIdSource) -> Self {
        Self {
            params,
            orders: OrderSlots::new(instrument, 2, ids, params.max_position),
            active: false,
        }
    }

    /// The orders, what is known about them, the position and the counters.
    pub fn orders(&self) -> &OrderSlots {
        &self.orders
    }

    /// Whether the spread is wide enough to quote in.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The two quotes inside the spread, or none when there is no room.
    fn quotes(&self, book: &BookTop) -> Option<(Px, Px)> {
        let inside = self
            .params
            .improve_ticks
            .saturating_mul(self.params.tick.0.max(1));
        let bid = book.best_bid()?.px.0.saturating_add(inside);
        let ask = book.best_ask()?.px.0.saturating_sub(inside);
        (bid < ask).then_some((Px(bid), Px(ask)))
    }
}

impl Strategy for SpreadCapture {
    fn on_book(&mut self, book: &BookTop, out: &mut Intents) {
        if book.instrument != self.orders.instrument() {
            return;
        }
        self.orders.count_book();
        let spread = if book.synced { spread_ppm(book) } else { None };
        self.active = match spread {
            Some(s) if self.active => s >= self.params.exit_spread_ppm,
            Some(s) => s >= self.params.enter_spread_ppm,
            None => false,
        };
        let quotes = if self.active { self.quotes(book) } else { None };
        let qty = out.order_qty(self.params.order_qty);
        for (slot, side) in [(0, OrderSide::Buy), (1, OrderSide::Sell)] {
            let want = quotes.and_then(|(bid, ask)| {
                let px = if side == OrderSide::Buy { bid } else { ask };
                let keeps = self.orders.live(slot).is_some_and(|o| o.px == px);
                (keeps || self.orders.fits(side, qty)).then_some(Quote::maker(
                    side,
                    px,
                    qty,
                    ReasonCode::Requote,
                ))
            });
            self.orders.reconcile(slot, want, book.t0, book.t_recv, out);
        }
    }

    fn on_trade(&mut self, _trade: &TradePrint, _out: &mut Intents) {}

    fn on_exec(&mut self, rep: &ExecReport, _out: &mut Intents) {
        self.orders.on_exec(rep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{OrderAction, OrderStatus, OrderType};
    use crate::slots::tests::{INST, report};
    use crate::testbook::book;

    fn sc() -> SpreadCapture {
        SpreadCapture::new(
            INST,
            SpreadCaptureParams {
                enter_spread_ppm: 1_000, // 10 bps
                exit_spread_ppm: 500,
                improve_ticks: 1,
                order_qty: Qty(10),
                max_position: Qty(10),
                tick: Px(2),
            },
            OrderIdSource::new(1),
        )
    }

    fn run(s: &mut SpreadCapture, t: u64, bid: i64, ask: i64) -> Intents {
        let mut out = Intents::new();
        s.on_book(&book(t, bid, ask), &mut out);
        out
    }

    #[test]
    fn quotes_one_tick_inside_a_wide_spread_only() {
        let mut s = sc();
        // 80 of 100,000: 8 bps, under the entry threshold.
        assert!(run(&mut s, 1, 99_960, 100_040).is_empty());
        assert!(!s.is_active());
        // 100: 10 bps: quote 99,952 and 100,048.
        let out = run(&mut s, 2, 99_950, 100_050);
        let got: Vec<_> = out
            .as_slice()
            .iter()
            .map(|o| (o.action, o.side, o.px, o.qty, o.order_type))
            .collect();
        assert_eq!(
            got,
            [
                (
                    OrderAction::New,
                    OrderSide::Buy,
                    Px(99_952),
                    Qty(10),
                    OrderType::LimitMaker
                ),
                (
                    OrderAction::New,
                    OrderSide::Sell,
                    Px(100_048),
                    Qty(10),
                    OrderType::LimitMaker
                ),
            ]
        );
    }

    #[test]
    fn the_size_the_stage_sets_replaces_the_configured_one() {
        let mut s = sc();
        let mut out = Intents::new();
        out.set_order_qty(Some(Qty(6)));
        s.on_book(&book(1, 99_950, 100_050), &mut out);
        let sizes: Vec<_> = out.as_slice().iter().map(|o| o.qty).collect();
        assert_eq!(sizes, [Qty(6), Qty(6)]);
        // A size of zero opens nothing.
        let mut s = sc();
        let mut out = Intents::new();
        out.set_order_qty(Some(Qty::ZERO));
        s.on_book(&book(1, 99_950, 100_050), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn narrowing_past_the_exit_threshold_steps_back_and_the_band_holds_in_between() {
        let mut s = sc();
        let first = run(&mut s, 1, 99_950, 100_050);
        for o in first.as_slice() {
            s.on_exec(
                &report(o.client_id, o.side, OrderStatus::New, 0, 0, 10),
                &mut Intents::new(),
            );
        }
        // 6 bps: between the thresholds, still active; the touch did not move.
        let out = run(&mut s, 2, 99_950, 100_010);
        // The ask follows the touch: cancelled (100,048 is no longer one tick inside).
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].action, out[0].target),
            (OrderAction::Cancel, first[1].client_id)
        );
        assert!(s.is_active());
        // 4 bps: inactive, the bid is cancelled too (the ask's cancel is already on its way).
        let out = run(&mut s, 3, 99_980, 100_020);
        assert!(!s.is_active());
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].action, out[0].target),
            (OrderAction::Cancel, first[0].client_id)
        );
    }

    #[test]
    fn a_filled_side_at_the_cap_is_not_requoted() {
        let mut s = sc();
        let first = run(&mut s, 1, 99_950, 100_050);
        let bid = first[0];
        s.on_exec(
            &report(
                bid.client_id,
                OrderSide::Buy,
                OrderStatus::Filled,
                99_952,
                10,
                0,
            ),
            &mut Intents::new(),
        );
        // Long 10 at a cap of 10: no bid, the ask is still pending.
        assert!(run(&mut s, 2, 99_950, 100_050).is_empty());
        // No room inside a 2-tick spread of 1-tick improvement each: nothing at all.
        let mut tight = sc();
        tight.params.enter_spread_ppm = 1;
        tight.params.exit_spread_ppm = 1;
        assert!(run(&mut tight, 1, 100_000, 100_004).is_empty());
        assert!(tight.is_active());
    }
}
