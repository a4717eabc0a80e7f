//! [`OrderSlots`]: a strategy's own orders, one per slot, and what the execution reports say
//! about each; shared by every strategy that quotes more than one order.
//!
//! A strategy names its orders by *slot* (the bid of ladder level 2, grid level 7, the one chase
//! order) and says, per slot, which order it wants there ([`Quote`] or nothing). The slots turn
//! that into intents that never contradict what is known about the orders:
//!
//! - a slot holds at most one live order: a new order goes only into a slot whose last order is
//!   known closed (filled, cancelled, rejected) or that never had one, so a second new on a slot
//!   whose order is still pending cannot happen;
//! - a cancel goes only to an order the venue has acknowledged and that is still open
//!   ([`OrderState::Open`] or [`OrderState::PartiallyFilled`]), once: an order still pending is
//!   left until its acknowledgement arrives, and then cancelled if it is still unwanted;
//! - while the order rate is used up ([`Intents::new_orders_allowed`]) nothing new is placed
//!   (the pause is counted as throttled); cancels still go;
//! - reports about ids the slots do not hold are ignored, except that their fills still count in
//!   the position.
//!
//! Per client order id the state is one of [`OrderState`]; the slots remember the current (or
//! last) order of each slot, and any other id is [`OrderState::Unknown`].
//!
//! Fixed capacity ([`MAX_SLOTS`]), nothing allocates after construction.

use arrayvec::ArrayVec;
use pinion_core::{InstrumentId, Px, Qty};

use crate::Intents;
use crate::kind::StrategyStats;
use crate::order::{
    ClientOrderId, ExecReport, OrderIdSource, OrderIntent, OrderSide, OrderStatus, OrderType,
    RejectReason, TimeInForce,
};
use crate::position::Position;
use crate::reason::{OrderReason, ReasonCode};

/// Most slots one strategy may use (the simulated venue holds 64 open orders in all).
pub const MAX_SLOTS: usize = 32;

/// What is known about one client order id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderState {
    /// Sent; no answer yet.
    Pending,
    /// Acknowledged and resting, nothing filled.
    Open,
    /// Some quantity filled, the rest still open.
    PartiallyFilled,
    /// Completely filled.
    Filled,
    /// Cancelled on request, expired by the venue (IOC/FOK remainder), or reported not open by
    /// the venue when a cancel named it.
    Cancelled,
    /// Refused by the risk gate or the venue; it never opened.
    Rejected,
    /// Not an order these slots hold.
    Unknown,
}

impl OrderState {
    /// Whether the order may still trade (sent and not known closed).
    #[inline]
    pub const fn is_live(self) -> bool {
        matches!(
            self,
            OrderState::Pending | OrderState::Open | OrderState::PartiallyFilled
        )
    }

    /// Whether a cancel may name the order: acknowledged and still open.
    #[inline]
    pub const fn is_cancelable(self) -> bool {
        matches!(self, OrderState::Open | OrderState::PartiallyFilled)
    }
}

/// The order a strategy wants in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// Buy or sell.
    pub side: OrderSide,
    /// Limit price.
    pub px: Px,
    /// Quantity of a new order.
    pub qty: Qty,
    /// Order type.
    pub order_type: OrderType,
    /// Time in force.
    pub tif: TimeInForce,
    /// Why it is wanted: the reason its order (and a cancel of it) carries.
    pub code: ReasonCode,
}

impl Quote {
    /// A post-only good-till-cancelled quote (`LIMIT_MAKER`), wanted for `code`.
    #[inline]
    pub const fn maker(side: OrderSide, px: Px, qty: Qty, code: ReasonCode) -> Self {
        Self {
            side,
            px,
            qty,
            order_type: OrderType::LimitMaker,
            tif: TimeInForce::Gtc,
            code,
        }
    }
}

/// The current (or last) order of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotOrder {
    /// Its client id.
    pub id: ClientOrderId,
    /// What is known about it.
    pub state: OrderState,
    /// Buy or sell.
    pub side: OrderSide,
    /// Its limit price.
    pub px: Px,
    /// Quantity still open.
    pub leaves: Qty,
    /// Event time it was sent at.
    pub sent_at: u64,
    /// Whether a cancel for it is on its way.
    pub cancel_sent: bool,
    /// Why it was placed: a cancel of it carries the same reason.
    pub reason: OrderReason,
}

/// What a report did to a slot, for the strategy to react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotEvent {
    /// The slot.
    pub slot: usize,
    /// The order's side.
    pub side: OrderSide,
    /// Its limit price.
    pub px: Px,
    /// Quantity filled by this report (0 when none).
    pub filled: Qty,
    /// The order's state after the report.
    pub state: OrderState,
}

/// A strategy's orders by slot, with the position and the counters they produce. See the
/// module docs.
#[derive(Debug, Clone)]
pub struct OrderSlots {
    instrument: InstrumentId,
    ids: OrderIdSource,
    slots: ArrayVec<Option<SlotOrder>, MAX_SLOTS>,
    position: Position,
    max_position: Qty,
    stats: StrategyStats,
}

impl OrderSlots {
    /// `n` empty slots (at most [`MAX_SLOTS`]) for orders in `instrument`, numbered from `ids`,
    /// never taking the worst-case position past `max_position`.
    pub fn new(instrument: InstrumentId, n: usize, ids: OrderIdSource, max_position: Qty) -> Self {
        let mut slots = ArrayVec::new();
        for _ in 0..n.min(MAX_SLOTS) {
            slots.push(None);
        }
        Self {
            instrument,
            ids,
            slots,
            position: Position::new(),
            max_position,
            stats: StrategyStats::default(),
        }
    }

    /// The instrument.
    #[inline]
    pub fn instrument(&self) -> InstrumentId {
        self.instrument
    }

    /// How many slots there are.
    #[inline]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Position and PnL from every fill of the instrument.
    #[inline]
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// Counters (`books` is the strategy's to count, through [`OrderSlots::count_book`]).
    #[inline]
    pub fn stats(&self) -> StrategyStats {
        self.stats
    }

    /// Counts one book view seen.
    #[inline]
    pub fn count_book(&mut self) {
        self.stats.books += 1;
    }

    /// Counts a signal not acted on because the order rate was used up.
    #[inline]
    pub fn count_throttled(&mut self) {
        self.stats.throttled += 1;
    }

    /// The current (or last) order of `slot`.
    #[inline]
    pub fn order(&self, slot: usize) -> Option<SlotOrder> {
        self.slots.get(slot).copied().flatten()
    }

    /// The live order of `slot` (pending or open).
    #[inline]
    pub fn live(&self, slot: usize) -> Option<SlotOrder> {
        self.order(slot).filter(|o| o.state.is_live())
    }

    /// Whether `slot` may take a new order (it exists and holds nothing live).
    #[inline]
    pub fn is_free(&self, slot: usize) -> bool {
        slot < self.slots.len() && self.live(slot).is_none()
    }

    /// Whether any slot holds a live order.
    pub fn any_live(&self) -> bool {
        (0..self.slots.len()).any(|s| self.live(s).is_some())
    }

    /// What is known about `id`.
    pub fn state(&self, id: ClientOrderId) -> OrderState {
        self.slots
            .iter()
            .flatten()
            .find(|o| o.id == id)
            .map_or(OrderState::Unknown, |o| o.state)
    }

    /// The slot holding `id` as its current (or last) order.
    pub fn slot_of(&self, id: ClientOrderId) -> Option<usize> {
        self.slots
            .iter()
            .position(|o| o.is_some_and(|o| o.id == id))
    }

    /// Quantity still open on live orders of `side`.
    pub fn open_qty(&self, side: OrderSide) -> Qty {
        Qty(self
            .slots
            .iter()
            .flatten()
            .filter(|o| o.state.is_live() && o.side == side)
            .fold(0i64, |s, o| s.saturating_add(o.leaves.0)))
    }

    /// Whether one more order of `qty` on `side` keeps the worst case (position, plus all
    /// that is open on that side, plus it) within the strategy's position cap.
    pub fn fits(&self, side: OrderSide, qty: Qty) -> bool {
        let open = i128::from(self.open_qty(side).0) + i128::from(qty.0);
        let worst = i128::from(self.position.qty().0) + i128::from(side.sign()) * open;
        worst.abs() <= i128::from(self.max_position.0)
    }

    /// Places `quote` in `slot`, decided on data stamped `t0` at event time `now`. Refused
    /// (false) when the slot is missing or holds a live order, when the order rate is used up
    /// (counted as throttled), when the quote is empty, or when the buffer is full.
    pub fn place(
        &mut self,
        slot: usize,
        quote: Quote,
        t0: u64,
        now: u64,
        out: &mut Intents,
    ) -> bool {
        if !self.is_free(slot) || quote.qty.0 <= 0 || quote.px.0 <= 0 {
            return false;
        }
        if !out.new_orders_allowed_on(self.instrument) {
            self.stats.throttled += 1;
            return false;
        }
        let id = self.ids.next_id();
        let reason = out.reason(quote.code);
        let intent = OrderIntent::new_limit(
            t0,
            id,
            self.instrument,
            quote.side,
            quote.px,
            quote.qty,
            quote.order_type,
            quote.tif,
            reason,
        );
        if !out.push(intent) {
            return false;
        }
        self.stats.orders += 1;
        self.slots[slot] = Some(SlotOrder {
            id,
            state: OrderState::Pending,
            side: quote.side,
            px: quote.px,
            leaves: quote.qty,
            sent_at: now,
            cancel_sent: false,
            reason,
        });
        true
    }

    /// Cancels the order of `slot` if it is acknowledged, open and not being cancelled
    /// already, for the reason it was placed; true when a cancel was written.
    pub fn cancel(&mut self, slot: usize, t0: u64, out: &mut Intents) -> bool {
        let Some(o) = self.order(slot) else {
            return false;
        };
        if !o.state.is_cancelable() || o.cancel_sent {
            return false;
        }
        let id = self.ids.next_id();
        let cancel = OrderIntent::cancel(t0, id, o.id, self.instrument, o.side, o.reason);
        if !out.push(cancel) {
            return false;
        }
        self.stats.cancels += 1;
        if let Some(Some(o)) = self.slots.get_mut(slot) {
            o.cancel_sent = true;
        }
        true
    }

    /// Cancels every open order (as [`OrderSlots::cancel`] allows).
    pub fn cancel_all(&mut self, t0: u64, out: &mut Intents) {
        for s in 0..self.slots.len() {
            self.cancel(s, t0, out);
        }
    }

    /// Brings `slot` towards `want`: a live order of another side or price is cancelled, an
    /// unwanted one too; a free slot gets `want` placed. An order that matches (side and
    /// price; a partly filled one keeps its smaller quantity) is left alone.
    pub fn reconcile(
        &mut self,
        slot: usize,
        want: Option<Quote>,
        t0: u64,
        now: u64,
        out: &mut Intents,
    ) {
        match (self.live(slot), want) {
            (Some(o), Some(q)) if o.side == q.side && o.px == q.px => {}
            (Some(_), _) => {
                self.cancel(slot, t0, out);
            }
            (None, Some(q)) => {
                self.place(slot, q, t0, now, out);
            }
            (None, None) => {}
        }
    }

    /// Applies a report: fills move the position whatever order they are for; a report about
    /// a slot's current order updates its state and is returned for the strategy to react to.
    pub fn on_exec(&mut self, rep: &ExecReport) -> Option<SlotEvent> {
        if rep.instrument != self.instrument {
            return None;
        }
        if rep.is_fill() {
            self.stats.fills += 1;
            self.position
                .apply_fill(rep.side, rep.last_px, rep.last_qty);
        }
        let slot = self.slot_of(rep.client_id)?;
        let o = self.slots[slot].as_mut()?;
        if !o.state.is_live() {
            // A late report about a closed order changes nothing but the position.
            return None;
        }
        match rep.status {
            OrderStatus::New => {
                o.state = OrderState::Open;
                o.leaves = rep.leaves_qty;
            }
            OrderStatus::PartiallyFilled => {
                o.state = OrderState::PartiallyFilled;
                o.leaves = rep.leaves_qty;
            }
            OrderStatus::Filled => {
                o.state = OrderState::Filled;
                o.leaves = Qty::ZERO;
            }
            OrderStatus::Canceled | OrderStatus::Expired => {
                o.state = OrderState::Cancelled;
                o.leaves = Qty::ZERO;
            }
            OrderStatus::CancelRejected(RejectReason::UnknownOrder) => {
                // The venue no longer has it open; any fill is reported on its own.
                o.state = OrderState::Cancelled;
                o.leaves = Qty::ZERO;
            }
            // Still open: a later decision may try again.
            OrderStatus::CancelRejected(_) => o.cancel_sent = false,
            OrderStatus::Rejected(reason) => {
                o.state = OrderState::Rejected;
                o.leaves = Qty::ZERO;
                if reason == RejectReason::Risk {
                    self.stats.risk_rejects += 1;
                } else {
                    self.stats.venue_rejects += 1;
                }
            }
        }
        Some(SlotEvent {
            slot,
            side: o.side,
            px: o.px,
            filled: rep.last_qty,
            state: o.state,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::order::{OrderAction, VenueOrderId};

    pub(crate) const INST: InstrumentId = InstrumentId(1);

    /// A report about `id` with `status`, filling `fill` at `px` and leaving `leaves` open.
    pub(crate) fn report(
        id: ClientOrderId,
        side: OrderSide,
        status: OrderStatus,
        px: i64,
        fill: i64,
        leaves: i64,
    ) -> ExecReport {
        ExecReport {
            client_id: id,
            venue_id: VenueOrderId(9),
            instrument: INST,
            side,
            status,
            last_px: if fill > 0 { Px(px) } else { Px::ZERO },
            last_qty: Qty(fill),
            cum_qty: Qty(fill),
            leaves_qty: Qty(leaves),
            maker: true,
            t0: 0,
            venue_ts: 0,
        }
    }

    fn slots() -> OrderSlots {
        OrderSlots::new(INST, 2, OrderIdSource::new(1), Qty(300))
    }

    #[test]
    fn a_pending_slot_takes_no_second_order_and_is_not_cancelled() {
        let mut s = slots();
        let mut out = Intents::new();
        let q = Quote::maker(OrderSide::Buy, Px(100), Qty(10), ReasonCode::Requote);
        assert!(s.place(0, q, 1, 1, &mut out));
        assert!(!s.place(0, q, 2, 2, &mut out), "slot 0 is pending");
        assert!(!s.cancel(0, 3, &mut out), "not acknowledged yet");
        assert!(!s.place(5, q, 2, 2, &mut out), "no such slot");
        assert_eq!(out.len(), 1);
        let id = out[0].client_id;
        assert_eq!(s.state(id), OrderState::Pending);
        assert_eq!(s.state(ClientOrderId(99)), OrderState::Unknown);
        // Acknowledged: now it can be cancelled, once.
        let ev = s.on_exec(&report(id, OrderSide::Buy, OrderStatus::New, 0, 0, 10));
        assert_eq!(ev.map(|e| e.state), Some(OrderState::Open));
        let mut out = Intents::new();
        assert!(s.cancel(0, 4, &mut out));
        assert!(!s.cancel(0, 5, &mut out));
        assert_eq!((out[0].action, out[0].target), (OrderAction::Cancel, id));
        assert_eq!(
            out[0].reason,
            OrderReason::new(0, ReasonCode::Requote),
            "a cancel carries the reason its order was placed for"
        );
        // A refused cancel lets it try again; a final report frees the slot.
        s.on_exec(&report(
            id,
            OrderSide::Buy,
            OrderStatus::CancelRejected(RejectReason::Venue),
            0,
            0,
            10,
        ));
        assert!(s.cancel(0, 6, &mut out));
        s.on_exec(&report(id, OrderSide::Buy, OrderStatus::Canceled, 0, 0, 0));
        assert_eq!(s.state(id), OrderState::Cancelled);
        assert!(s.is_free(0));
        assert_eq!(s.stats().cancels, 2);
    }

    #[test]
    fn fills_states_and_the_worst_case_cap() {
        let mut s = slots();
        let mut out = Intents::new();
        s.place(
            0,
            Quote::maker(OrderSide::Buy, Px(100), Qty(200), ReasonCode::Requote),
            1,
            1,
            &mut out,
        );
        let id = out[0].client_id;
        // 200 open on the buy side: another 100 fits the cap of 300, 101 does not.
        assert!(s.fits(OrderSide::Buy, Qty(100)));
        assert!(!s.fits(OrderSide::Buy, Qty(101)));
        let ev = s
            .on_exec(&report(
                id,
                OrderSide::Buy,
                OrderStatus::PartiallyFilled,
                100,
                50,
                150,
            ))
            .unwrap();
        assert_eq!(
            (ev.filled, ev.state),
            (Qty(50), OrderState::PartiallyFilled)
        );
        assert_eq!(s.position().qty(), Qty(50));
        assert_eq!(s.open_qty(OrderSide::Buy), Qty(150));
        s.on_exec(&report(
            id,
            OrderSide::Buy,
            OrderStatus::Filled,
            100,
            150,
            0,
        ));
        assert_eq!(s.state(id), OrderState::Filled);
        assert_eq!((s.position().qty(), s.stats().fills), (Qty(200), 2));
        // A report about an id the slots never held moves the position but nothing else.
        assert!(
            s.on_exec(&report(
                ClientOrderId(77),
                OrderSide::Sell,
                OrderStatus::Filled,
                100,
                20,
                0
            ))
            .is_none()
        );
        assert_eq!(s.position().qty(), Qty(180));
    }

    #[test]
    fn rejects_count_apart_and_the_rate_pauses_new_orders_only() {
        let mut s = slots();
        let mut out = Intents::new();
        let q = Quote::maker(OrderSide::Sell, Px(100), Qty(10), ReasonCode::GridLevel);
        s.place(0, q, 1, 1, &mut out);
        s.place(1, q, 1, 1, &mut out);
        let (a, b) = (out[0].client_id, out[1].client_id);
        s.on_exec(&report(
            a,
            OrderSide::Sell,
            OrderStatus::Rejected(RejectReason::Risk),
            0,
            0,
            0,
        ));
        s.on_exec(&report(b, OrderSide::Sell, OrderStatus::New, 0, 0, 10));
        assert_eq!(s.state(a), OrderState::Rejected);
        assert_eq!((s.stats().risk_rejects, s.stats().venue_rejects), (1, 0));
        let mut paused = Intents::new();
        paused.set_new_orders_allowed(false);
        assert!(!s.place(0, q, 2, 2, &mut paused));
        assert_eq!(s.stats().throttled, 1);
        // Reconcile: slot 1 is not wanted any more, so it is cancelled even while paused.
        s.reconcile(1, None, 3, 3, &mut paused);
        assert_eq!(paused.len(), 1);
        assert_eq!(paused[0].target, b);
    }
}
