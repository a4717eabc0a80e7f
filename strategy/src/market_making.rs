//! [`MarketMaking`]: quote both sides around a fair price, leaning away from inventory.
//!
//! - **Fair price**: the mid or the microprice of each synced view ([`FairPrice`]). The quotes
//!   are centred on an *anchor*, the fair price when they were last centred; the anchor moves
//!   only when the fair price has moved more than `requote_ppm` away from it, so a quiet market
//!   is not requoted on every view.
//! - **Skew**: the centre is shifted against the position, by `skew_ppm` of the anchor at a
//!   position of `max_position` and in proportion below it: long, both quotes move down (sell
//!   sooner, buy later); short, up.
//! - **Ladder**: `levels` quotes a side, level `k` at `half_spread_ppm + k × level_step_ppm`
//!   from the centre, `order_qty` each. A level is quoted only while a fill of it and of every
//!   level inside it keeps the position within `max_position`.
//! - Prices are rounded away from the centre to the tick and kept passive (a bid below the best
//!   ask, an ask above the best bid): every quote is post-only (`LIMIT_MAKER`).
//! - Slots: the bid of level `k` is slot `2k`, its ask `2k + 1`; a slot whose order no longer
//!   matches its quote is cancelled and requoted once the cancel is confirmed
//!   ([`OrderSlots::reconcile`]). An unsynced view, or one without a fair price, cancels all.
//!
//! Time plays no part; decisions are made on views, and reports only update the order states.

use pinion_core::{BookTop, InstrumentId, Px, Qty, TradePrint};

use crate::order::{ExecReport, OrderIdSource, OrderSide};
use crate::price::{ceil_tick, distance_ppm, floor_tick, ppm_of};
use crate::reason::ReasonCode;
use crate::slots::{OrderSlots, Quote};
use crate::{Intents, Strategy};

/// Most ladder levels a side.
pub const MAX_LADDER: usize = 8;

/// The price quotes are centred on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FairPrice {
    /// `(best bid + best ask) / 2`.
    Mid,
    /// The size-weighted mid ([`BookTop::microprice`]).
    Microprice,
}

/// Settings of the market-making strategy (quantities and prices in the instrument's units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketMakingParams {
    /// What the quotes are centred on.
    pub fair: FairPrice,
    /// Distance of the innermost quotes from the centre, ppm of the anchor.
    pub half_spread_ppm: i64,
    /// Shift of the centre at a position of `max_position`, ppm of the anchor.
    pub skew_ppm: i64,
    /// How far the fair price must move from the anchor before the quotes move, ppm.
    pub requote_ppm: i64,
    /// Quotes per side (`1..=MAX_LADDER`).
    pub levels: usize,
    /// Extra distance of each further level, ppm of the anchor.
    pub level_step_ppm: i64,
    /// Size of each quote.
    pub order_qty: Qty,
    /// Largest absolute position the quotes may build.
    pub max_position: Qty,
    /// The instrument's tick, price units.
    pub tick: Px,
}

/// The market-making strategy for one instrument. See the module docs.
#[derive(Debug, Clone)]
pub struct MarketMaking {
    params: MarketMakingParams,
    orders: OrderSlots,
    anchor: Option<Px>,
}

impl MarketMaking {
    /// A strategy trading `instrument`, numbering orders from `ids`.
    pub fn new(instrument: InstrumentId, params: MarketMakingParams, ids: OrderIdSource) -> Self {
        let levels = params.levels.clamp(1, MAX_LADDER);
        Self {
            params: MarketMakingParams { levels, ..params },
            orders: OrderSlots::new(instrument, 2 * levels, ids, params.max_position),
            anchor: None,
        }
    }

    /// The orders, what is known about them, the position and the counters.
    pub fn orders(&self) -> &OrderSlots {
        &self.orders
    }

    /// The fair price quotes are centred on now.
    pub fn anchor(&self) -> Option<Px> {
        self.anchor
    }

    fn fair(&self, book: &BookTop) -> Option<Px> {
        match self.params.fair {
            FairPrice::Mid => book.mid(),
            FairPrice::Microprice => book.microprice(),
        }
    }

    /// The centre: the anchor shifted against the position.
    fn centre(&self, anchor: Px) -> i64 {
        let p = &self.params;
        let full = i128::from(ppm_of(anchor, p.skew_ppm));
        let max = i128::from(p.max_position.0.max(1));
        let pos = i128::from(self.orders.position().qty().0).clamp(-max, max);
        anchor.0.saturating_sub((full * pos / max) as i64)
    }

    /// The quote of ladder level `k` on `side`, or none when its fill (and those inside it)
    /// could take the position past the cap.
    fn quote(
        &self,
        book: &BookTop,
        anchor: Px,
        k: usize,
        side: OrderSide,
        qty: Qty,
    ) -> Option<Quote> {
        let p = &self.params;
        let inside = i128::from(qty.0) * (k as i128 + 1);
        let worst = i128::from(self.orders.position().qty().0) + i128::from(side.sign()) * inside;
        if worst.abs() > i128::from(p.max_position.0) {
            return None;
        }
        let offset = ppm_of(
            anchor,
            p.half_spread_ppm
                .saturating_add(p.level_step_ppm.saturating_mul(k as i64)),
        );
        let centre = self.centre(anchor);
        let px = match side {
            OrderSide::Buy => {
                let passive = book.best_ask()?.px.0.saturating_sub(p.tick.0.max(1));
                floor_tick(centre.saturating_sub(offset).min(passive), p.tick)
            }
            OrderSide::Sell => {
                let passive = book.best_bid()?.px.0.saturating_add(p.tick.0.max(1));
                ceil_tick(centre.saturating_add(offset).max(passive), p.tick)
            }
        };
        Some(Quote::maker(side, px, qty, ReasonCode::Requote))
    }
}

impl Strategy for MarketMaking {
    fn on_book(&mut self, book: &BookTop, out: &mut Intents) {
        if book.instrument != self.orders.instrument() {
            return;
        }
        self.orders.count_book();
        let fair = if book.synced { self.fair(book) } else { None };
        let Some(fair) = fair else {
            self.orders.cancel_all(book.t0, out);
            return;
        };
        let anchor = match self.anchor {
            Some(a) if distance_ppm(fair, a) <= self.params.requote_ppm => a,
            _ => fair,
        };
        self.anchor = Some(anchor);
        let qty = out.order_qty(self.params.order_qty);
        for k in 0..self.params.levels {
            for (slot, side) in [(2 * k, OrderSide::Buy), (2 * k + 1, OrderSide::Sell)] {
                let want = self.quote(book, anchor, k, side, qty);
                self.orders.reconcile(slot, want, book.t0, book.t_recv, out);
            }
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
    use crate::testbook::{book, book_qty};

    fn params() -> MarketMakingParams {
        MarketMakingParams {
            fair: FairPrice::Mid,
            half_spread_ppm: 1_000, // 10 bps
            skew_ppm: 2_000,
            requote_ppm: 500,
            levels: 1,
            level_step_ppm: 1_000,
            order_qty: Qty(10),
            max_position: Qty(20),
            tick: Px(5),
        }
    }

    fn mm(p: MarketMakingParams) -> MarketMaking {
        MarketMaking::new(INST, p, OrderIdSource::new(1))
    }

    fn run(s: &mut MarketMaking, b: &BookTop) -> Intents {
        let mut out = Intents::new();
        s.on_book(b, &mut out);
        out
    }

    fn ack_all(s: &mut MarketMaking, out: &Intents) {
        for o in out.as_slice() {
            s.on_exec(
                &report(o.client_id, o.side, OrderStatus::New, 0, 0, o.qty.0),
                &mut Intents::new(),
            );
        }
    }

    #[test]
    fn quotes_both_sides_around_the_mid_rounded_away_to_the_tick() {
        let mut s = mm(params());
        // Mid 100,000; 10 bps = 100: bid 99,900, ask 100,100 (already on the tick).
        let out = run(&mut s, &book(1, 99_990, 100_010));
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
                    Px(99_900),
                    Qty(10),
                    OrderType::LimitMaker
                ),
                (
                    OrderAction::New,
                    OrderSide::Sell,
                    Px(100_100),
                    Qty(10),
                    OrderType::LimitMaker
                ),
            ]
        );
        // Pending: the next view sends nothing, whatever it says.
        assert!(run(&mut s, &book(2, 99_000, 99_010)).is_empty());
    }

    #[test]
    fn requotes_only_past_the_threshold_after_the_cancel_is_confirmed() {
        let mut s = mm(params());
        let first = run(&mut s, &book(1, 99_990, 100_010));
        ack_all(&mut s, &first);
        // Mid 100,040: 4 bps away, under the 5 bps threshold: nothing moves.
        assert!(run(&mut s, &book(2, 100_030, 100_050)).is_empty());
        assert_eq!(s.anchor(), Some(Px(100_000)));
        // Mid 100,060: 6 bps: both quotes are cancelled, not yet replaced.
        let out = run(&mut s, &book(3, 100_050, 100_070));
        assert_eq!(out.len(), 2);
        assert!(
            out.as_slice()
                .iter()
                .all(|o| o.action == OrderAction::Cancel)
        );
        assert_eq!(out[0].target, first[0].client_id);
        assert_eq!(out[1].target, first[1].client_id);
        assert!(
            run(&mut s, &book(4, 100_050, 100_070)).is_empty(),
            "one cancel each"
        );
        for o in first.as_slice() {
            s.on_exec(
                &report(o.client_id, o.side, OrderStatus::Canceled, 0, 0, 0),
                &mut Intents::new(),
            );
        }
        // Centre 100,060; ±100.06, truncated to 100: 99,960 and 100,160.
        let out = run(&mut s, &book(5, 100_050, 100_070));
        assert_eq!((out[0].side, out[0].px), (OrderSide::Buy, Px(99_960)));
        assert_eq!((out[1].side, out[1].px), (OrderSide::Sell, Px(100_160)));
    }

    #[test]
    fn inventory_skews_the_quotes_and_caps_the_side_that_adds_to_it() {
        let mut s = mm(params());
        let first = run(&mut s, &book(1, 99_990, 100_010));
        ack_all(&mut s, &first);
        // The bid fills: long 10 of a cap of 20, half the skew of 20 bps: the centre moves
        // 100 down to 99,900.
        let bid = first[0];
        s.on_exec(
            &report(
                bid.client_id,
                OrderSide::Buy,
                OrderStatus::Filled,
                99_900,
                10,
                0,
            ),
            &mut Intents::new(),
        );
        assert_eq!(s.orders().position().qty(), Qty(10));
        let out = run(&mut s, &book(2, 99_990, 100_010));
        // The ask (100,100) no longer matches 100,000: cancelled; the bid slot is requoted at
        // 99,800.
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0].action, out[0].side, out[0].px),
            (OrderAction::New, OrderSide::Buy, Px(99_800))
        );
        assert_eq!(
            (out[1].action, out[1].target),
            (OrderAction::Cancel, first[1].client_id)
        );
        ack_all(&mut s, &out);
        s.on_exec(
            &report(
                out[0].client_id,
                OrderSide::Buy,
                OrderStatus::Filled,
                99_800,
                10,
                0,
            ),
            &mut Intents::new(),
        );
        // At the cap: no bid, only the ask (centre 99,800, ask 99,900 but kept above the best
        // bid 99,990 + 5).
        s.on_exec(
            &report(
                first[1].client_id,
                OrderSide::Sell,
                OrderStatus::Canceled,
                0,
                0,
                0,
            ),
            &mut Intents::new(),
        );
        let out = run(&mut s, &book(3, 99_990, 100_010));
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].side, out[0].px), (OrderSide::Sell, Px(99_995)));
    }

    #[test]
    fn ladder_levels_step_out_and_microprice_leans_to_the_thin_side() {
        let mut p = params();
        p.levels = 2;
        p.fair = FairPrice::Microprice;
        p.max_position = Qty(100);
        p.skew_ppm = 0;
        let mut s = mm(p);
        // 30 bid × 10 ask: microprice = (99,990 × 10 + 100,010 × 30) / 40 = 100,005.
        let out = run(&mut s, &book_qty(1, 99_990, 30, 100_010, 10));
        let px: Vec<_> = out.as_slice().iter().map(|o| (o.side, o.px)).collect();
        // Level 0 ±100, level 1 ±200 (ppm of 100,005, truncated).
        assert_eq!(
            px,
            [
                (OrderSide::Buy, Px(99_905)),
                (OrderSide::Sell, Px(100_105)),
                (OrderSide::Buy, Px(99_805)),
                (OrderSide::Sell, Px(100_205)),
            ]
        );
    }

    #[test]
    fn an_unsynced_view_cancels_everything_open_and_throttling_pauses() {
        let mut s = mm(params());
        let mut paused = Intents::new();
        paused.set_new_orders_allowed(false);
        s.on_book(&book(1, 99_990, 100_010), &mut paused);
        assert!(paused.is_empty());
        assert_eq!(s.orders().stats().throttled, 2);
        let first = run(&mut s, &book(2, 99_990, 100_010));
        ack_all(&mut s, &first);
        let mut b = book(3, 99_990, 100_010);
        b.synced = false;
        let out = run(&mut s, &b);
        assert_eq!(out.len(), 2);
        assert!(
            out.as_slice()
                .iter()
                .all(|o| o.action == OrderAction::Cancel)
        );
    }
}
