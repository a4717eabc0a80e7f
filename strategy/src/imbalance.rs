//! [`ImbalanceStrategy`]: join the touch on the side the book leans towards.
//!
//! Signal: the imbalance over the best `levels` levels, `(bid qty − ask qty) / (bid qty + ask
//! qty)`, in per-mille. At or above `+enter_permille` the strategy wants to buy, at or below
//! `−enter_permille` to sell.
//!
//! Rules:
//! - at most one working order at a time; a new one only once the previous is known closed;
//! - a buy is a limit order at the best bid, a sell at the best ask (joining the queue, never
//!   crossing the spread);
//! - the working order is cancelled when the signal flips to the other side, when it has rested
//!   longer than `stale_after_ns`, or when the book loses sync; one cancel per order;
//! - time is event time: the receive time of the market data (`t_recv` of views and trades).
//!   Staleness and the order rate run on it, never on the engine clock, so a replay makes the
//!   same decisions however fast the host runs it (`t0` only travels on, for latency);
//! - nothing is placed while the book is unsynced, or when a fill could take the position past
//!   `max_position`;
//! - the strategy decides and the stage's [`RiskGate`](crate::RiskGate) polices: every intent
//!   passes the gate, and one it refuses comes back as a `Rejected(Risk)` report, which frees
//!   the working slot like any reject. While the order rate is used up
//!   ([`Intents::new_orders_allowed`]) a signal is a pause, counted, not an order.
//!
//! Position comes from fills in execution reports ([`Position`]).

use pinion_core::{BookTop, InstrumentId, Qty, TradePrint};

use crate::order::{
    ClientOrderId, ExecReport, OrderIdSource, OrderIntent, OrderSide, OrderStatus, OrderType,
    RejectReason, TimeInForce,
};
use crate::position::Position;
use crate::reason::{OrderReason, entry_or_exit};
use crate::{Intents, Strategy};

/// Settings of the imbalance strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImbalanceParams {
    /// Levels per side the imbalance is taken over.
    pub levels: usize,
    /// Entry threshold in per-mille of imbalance (`1..=1000`).
    pub enter_permille: i64,
    /// Size of each order.
    pub order_qty: Qty,
    /// Largest absolute position the strategy will build.
    pub max_position: Qty,
    /// A working order older than this (event-time ns) is cancelled.
    pub stale_after_ns: u64,
}

/// What the strategy has done, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImbalanceStats {
    /// Book views seen.
    pub books: u64,
    /// Orders placed.
    pub orders: u64,
    /// Cancels sent.
    pub cancels: u64,
    /// Orders the risk gate refused.
    pub risk_rejects: u64,
    /// Signals not acted on because the order rate was used up (asked before building an
    /// order, so they are not risk rejects).
    pub throttled: u64,
    /// Orders the venue rejected.
    pub venue_rejects: u64,
    /// Fills received.
    pub fills: u64,
}

/// The one order the strategy may have open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WorkingOrder {
    id: ClientOrderId,
    side: OrderSide,
    leaves: Qty,
    /// Event time of the decision that placed it.
    sent_at: u64,
    cancel_sent: bool,
    /// Why it was placed: a cancel of it carries the same reason.
    reason: OrderReason,
}

/// The order-book imbalance strategy for one instrument. See the module docs.
#[derive(Debug, Clone)]
pub struct ImbalanceStrategy {
    instrument: InstrumentId,
    params: ImbalanceParams,
    ids: OrderIdSource,
    position: Position,
    working: Option<WorkingOrder>,
    stats: ImbalanceStats,
}

impl ImbalanceStrategy {
    /// A strategy trading `instrument`, numbering orders from `ids`.
    pub fn new(instrument: InstrumentId, params: ImbalanceParams, ids: OrderIdSource) -> Self {
        Self {
            instrument,
            params,
            ids,
            position: Position::new(),
            working: None,
            stats: ImbalanceStats::default(),
        }
    }

    /// Position and PnL.
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// Counters.
    pub fn stats(&self) -> ImbalanceStats {
        self.stats
    }

    /// Whether an order is open (or on its way).
    pub fn has_working_order(&self) -> bool {
        self.working.is_some()
    }

    fn signal(&self, book: &BookTop) -> Option<OrderSide> {
        let imb = book.imbalance_permille(self.params.levels)?;
        if imb >= self.params.enter_permille {
            Some(OrderSide::Buy)
        } else if imb <= -self.params.enter_permille {
            Some(OrderSide::Sell)
        } else {
            None
        }
    }

    /// Cancels the working order (once), decided on data stamped `t0`.
    fn cancel_working(&mut self, t0: u64, out: &mut Intents) {
        let Some(w) = self.working.filter(|w| !w.cancel_sent) else {
            return;
        };
        let id = self.ids.next_id();
        let intent = OrderIntent::cancel(t0, id, w.id, self.instrument, w.side, w.reason);
        if out.push(intent) {
            self.stats.cancels += 1;
            if let Some(w) = self.working.as_mut() {
                w.cancel_sent = true;
            }
        }
    }

    fn is_stale(&self, now: u64) -> bool {
        self.working
            .is_some_and(|w| now.saturating_sub(w.sent_at) > self.params.stale_after_ns)
    }

    /// Whether a fill of `qty` on `side` keeps the position within the strategy's cap.
    fn within_cap(&self, side: OrderSide, qty: Qty) -> bool {
        let after = i128::from(self.position.qty().0) + i128::from(side.sign()) * i128::from(qty.0);
        after.abs() <= i128::from(self.params.max_position.0)
    }
}

impl Strategy for ImbalanceStrategy {
    fn on_book(&mut self, book: &BookTop, out: &mut Intents) {
        if book.instrument != self.instrument {
            return;
        }
        self.stats.books += 1;
        let signal = if book.synced { self.signal(book) } else { None };

        if let Some(w) = self.working {
            let flipped = signal == Some(w.side.opposite());
            if !book.synced || flipped || self.is_stale(book.t_recv) {
                self.cancel_working(book.t0, out);
            }
            return;
        }
        let Some(side) = signal else {
            return;
        };
        let qty = out.order_qty(self.params.order_qty);
        if qty.0 <= 0 || !self.within_cap(side, qty) {
            return;
        }
        let touch = match side {
            OrderSide::Buy => book.best_bid(),
            OrderSide::Sell => book.best_ask(),
        };
        let Some(touch) = touch else {
            return;
        };
        if !out.new_orders_allowed() {
            self.stats.throttled += 1;
            return;
        }
        let id = self.ids.next_id();
        let reason = out.reason(entry_or_exit(self.position.qty(), side));
        let intent = OrderIntent::new_limit(
            book.t0,
            id,
            self.instrument,
            side,
            touch.px,
            qty,
            OrderType::Limit,
            TimeInForce::Gtc,
            reason,
        );
        if out.push(intent) {
            self.stats.orders += 1;
            self.working = Some(WorkingOrder {
                id,
                side,
                leaves: intent.qty,
                sent_at: book.t_recv,
                cancel_sent: false,
                reason,
            });
        }
    }

    fn on_trade(&mut self, trade: &TradePrint, out: &mut Intents) {
        // Trades do not move the signal, but they tell the time: a resting order need not wait
        // for the next book change to be found stale.
        if trade.instrument == self.instrument && self.is_stale(trade.t_recv) {
            self.cancel_working(trade.t0, out);
        }
    }

    fn on_exec(&mut self, rep: &ExecReport, _out: &mut Intents) {
        if rep.instrument != self.instrument {
            return;
        }
        if rep.is_fill() {
            self.stats.fills += 1;
            self.position
                .apply_fill(rep.side, rep.last_px, rep.last_qty);
        }
        let Some(w) = self.working.as_mut().filter(|w| w.id == rep.client_id) else {
            return;
        };
        match rep.status {
            OrderStatus::New | OrderStatus::PartiallyFilled => w.leaves = rep.leaves_qty,
            OrderStatus::CancelRejected(RejectReason::UnknownOrder) => self.working = None,
            // The order is still open: a later flip or staleness may try again.
            OrderStatus::CancelRejected(_) => w.cancel_sent = false,
            OrderStatus::Rejected(RejectReason::Risk) => {
                self.stats.risk_rejects += 1;
                self.working = None;
            }
            OrderStatus::Rejected(_) => {
                self.stats.venue_rejects += 1;
                self.working = None;
            }
            OrderStatus::Filled | OrderStatus::Canceled | OrderStatus::Expired => {
                self.working = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{OrderAction, VenueOrderId};
    use pinion_core::{Level, Px};

    const INST: InstrumentId = InstrumentId(1);

    fn params() -> ImbalanceParams {
        ImbalanceParams {
            levels: 3,
            enter_permille: 400,
            order_qty: Qty(100),
            max_position: Qty(200),
            stale_after_ns: 1_000_000,
        }
    }

    fn strategy() -> ImbalanceStrategy {
        ImbalanceStrategy::new(INST, params(), OrderIdSource::new(1))
    }

    fn lv(px: i64, qty: i64) -> Level {
        Level {
            px: Px(px),
            qty: Qty(qty),
        }
    }

    /// A book at event time `t` (and `t0` = `t`) with the given quantity on each of the top
    /// three levels per side.
    fn book(t: u64, synced: bool, bid_qty: i64, ask_qty: i64) -> BookTop {
        let mut b = BookTop::from_levels(
            INST,
            t,
            t,
            synced,
            &[
                lv(10_000, bid_qty),
                lv(9_999, bid_qty),
                lv(9_998, bid_qty),
                lv(9_990, 1_000_000),
            ],
            &[
                lv(10_001, ask_qty),
                lv(10_002, ask_qty),
                lv(10_003, ask_qty),
            ],
        );
        b.t_recv = t;
        b
    }

    fn run_book(s: &mut ImbalanceStrategy, b: &BookTop) -> Intents {
        let mut out = Intents::new();
        s.on_book(b, &mut out);
        out
    }

    /// [`run_book`] while the order rate is used up.
    fn run_book_throttled(s: &mut ImbalanceStrategy, b: &BookTop) -> Intents {
        let mut out = Intents::new();
        out.set_new_orders_allowed(false);
        s.on_book(b, &mut out);
        out
    }

    fn report(
        s: &mut ImbalanceStrategy,
        id: ClientOrderId,
        side: OrderSide,
        status: OrderStatus,
        fill: i64,
    ) {
        let rep = ExecReport {
            client_id: id,
            venue_id: VenueOrderId(9),
            instrument: INST,
            side,
            status,
            last_px: if fill > 0 { Px(10_000) } else { Px::ZERO },
            last_qty: Qty(fill),
            cum_qty: Qty(fill),
            leaves_qty: Qty(0),
            maker: true,
            t0: 0,
            venue_ts: 0,
        };
        s.on_exec(&rep, &mut Intents::new());
    }

    #[test]
    fn bid_heavy_book_buys_at_the_bid_once() {
        let mut s = strategy();
        // (300 - 100) / 400 = 500 per-mille; the deep 4th bid level is not counted.
        let out = run_book(&mut s, &book(1, true, 100, 33));
        assert_eq!(out.len(), 1);
        let o = out[0];
        assert_eq!(
            (o.action, o.side, o.px, o.qty),
            (OrderAction::New, OrderSide::Buy, Px(10_000), Qty(100))
        );
        assert_eq!(
            (o.order_type, o.tif, o.t0, o.instrument),
            (OrderType::Limit, TimeInForce::Gtc, 1, INST)
        );
        // One working order at a time.
        assert!(run_book(&mut s, &book(2, true, 100, 33)).is_empty());
        assert_eq!(s.stats().orders, 1);
    }

    #[test]
    fn ask_heavy_book_sells_at_the_ask_and_balanced_does_nothing() {
        let mut s = strategy();
        assert!(run_book(&mut s, &book(1, true, 100, 100)).is_empty());
        // Just under the threshold: (100 - 134) / 234 = -145.
        assert!(run_book(&mut s, &book(1, true, 100, 134)).is_empty());
        let out = run_book(&mut s, &book(1, true, 10, 100));
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].side, out[0].px), (OrderSide::Sell, Px(10_001)));
    }

    #[test]
    fn never_trades_on_an_unsynced_book_and_cancels_on_sync_loss() {
        let mut s = strategy();
        assert!(run_book(&mut s, &book(1, false, 1_000, 1)).is_empty());
        let placed = run_book(&mut s, &book(2, true, 1_000, 1))[0];
        let out = run_book(&mut s, &book(3, false, 1_000, 1));
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].action, out[0].target),
            (OrderAction::Cancel, placed.client_id)
        );
        assert_ne!(out[0].client_id, placed.client_id);
        // Only one cancel per order.
        assert!(run_book(&mut s, &book(4, false, 1_000, 1)).is_empty());
        assert_eq!(s.stats().cancels, 1);
    }

    #[test]
    fn cancels_on_flip_and_when_stale_then_trades_again() {
        let mut s = strategy();
        let buy = run_book(&mut s, &book(10, true, 1_000, 1))[0];
        report(&mut s, buy.client_id, OrderSide::Buy, OrderStatus::New, 0);
        // Still bid heavy: keep it.
        assert!(run_book(&mut s, &book(20, true, 1_000, 1)).is_empty());
        // Flip to ask heavy: cancel.
        let out = run_book(&mut s, &book(30, true, 1, 1_000));
        assert_eq!(
            (out[0].action, out[0].target),
            (OrderAction::Cancel, buy.client_id)
        );
        report(
            &mut s,
            buy.client_id,
            OrderSide::Buy,
            OrderStatus::Canceled,
            0,
        );
        assert!(!s.has_working_order());
        // Now it can sell.
        let sell = run_book(&mut s, &book(40, true, 1, 1_000))[0];
        assert_eq!(sell.side, OrderSide::Sell);
        // Stale after 1 ms, found by a trade without any book change.
        let mut trade = TradePrint {
            t0: 0,
            t_recv: 40 + 1_000_000,
            exch_ts: 0,
            trade_ts: 0,
            trade_id: 1,
            px: Px(100),
            qty: Qty(1),
            instrument: INST,
            buyer_maker: false,
        };
        let mut out = Intents::new();
        s.on_trade(&trade, &mut out);
        assert!(out.is_empty(), "exactly at the limit is not stale yet");
        trade.t_recv += 1;
        s.on_trade(&trade, &mut out);
        assert_eq!(
            (out[0].action, out[0].target),
            (OrderAction::Cancel, sell.client_id)
        );
    }

    #[test]
    fn fills_move_the_position_and_the_cap_holds() {
        let mut s = strategy();
        for t in 0..2 {
            let o = run_book(&mut s, &book(t, true, 1_000, 1))[0];
            report(
                &mut s,
                o.client_id,
                OrderSide::Buy,
                OrderStatus::Filled,
                100,
            );
        }
        assert_eq!(s.position().qty(), Qty(200));
        assert_eq!(s.stats().fills, 2);
        // At the cap: no more buying, but selling is allowed.
        assert!(run_book(&mut s, &book(5, true, 1_000, 1)).is_empty());
        let out = run_book(&mut s, &book(6, true, 1, 1_000));
        assert_eq!(out[0].side, OrderSide::Sell);
    }

    #[test]
    fn a_used_up_order_rate_is_a_pause_but_cancels_still_go() {
        let mut s = strategy();
        assert!(run_book_throttled(&mut s, &book(1, true, 1_000, 1)).is_empty());
        assert_eq!((s.stats().throttled, s.stats().orders), (1, 0));
        // With the rate back, the same signal is an order.
        let o = run_book(&mut s, &book(2, true, 1_000, 1))[0];
        report(&mut s, o.client_id, o.side, OrderStatus::New, 0);
        // A flip cancels the working order even while new orders are paused.
        let out = run_book_throttled(&mut s, &book(3, true, 1, 1_000));
        assert_eq!(
            (out[0].action, out[0].target),
            (OrderAction::Cancel, o.client_id)
        );
    }

    #[test]
    fn a_gate_refusal_frees_the_slot_and_counts_apart_from_venue_rejects() {
        let mut s = strategy();
        let o = run_book(&mut s, &book(1, true, 1_000, 1))[0];
        report(
            &mut s,
            o.client_id,
            OrderSide::Buy,
            OrderStatus::Rejected(RejectReason::Risk),
            0,
        );
        assert!(!s.has_working_order());
        assert_eq!((s.stats().risk_rejects, s.stats().venue_rejects), (1, 0));
        let o = run_book(&mut s, &book(2, true, 1_000, 1))[0];
        report(
            &mut s,
            o.client_id,
            OrderSide::Buy,
            OrderStatus::Rejected(RejectReason::MaxQty),
            0,
        );
        assert!(!s.has_working_order());
        assert_eq!((s.stats().risk_rejects, s.stats().venue_rejects), (1, 1));
    }

    #[test]
    fn staleness_follows_event_time_not_the_engine_clock() {
        let mut s = strategy();
        // A slow host: the engine clock (`t0`) runs far ahead of the data's own time.
        let slow = |t: u64, bid: i64, ask: i64| {
            let mut b = book(t, true, bid, ask);
            b.t0 = t + 5_000_000_000;
            b
        };
        let o = run_book(&mut s, &slow(10, 1_000, 1))[0];
        report(&mut s, o.client_id, o.side, OrderStatus::New, 0);
        // 0.5 ms of event time later the order is not stale, whatever `t0` says.
        assert!(run_book(&mut s, &slow(500_010, 1_000, 1)).is_empty());
        // Past `stale_after_ns` of event time it is, and the cancel carries the `t0` of the
        // data it was decided on.
        let out = run_book(&mut s, &slow(1_000_011, 1_000, 1));
        assert_eq!(
            (out[0].action, out[0].target, out[0].t0),
            (OrderAction::Cancel, o.client_id, 1_000_011 + 5_000_000_000)
        );
    }

    #[test]
    fn other_instruments_are_ignored() {
        let mut s = strategy();
        let mut b = book(1, true, 1_000, 1);
        b.instrument = InstrumentId(7);
        assert!(run_book(&mut s, &b).is_empty());
        assert_eq!(s.stats().books, 0);
    }
}
