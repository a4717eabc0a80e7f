//! [`RiskGate`]: the one place every intent of every strategy passes before it may leave.
//!
//! A strategy decides; it does not police itself. The gate keeps its own account of what it let
//! through (open orders and their open quantity per side, from the intents it admitted and the
//! execution reports that came back) and of the position (from fills), so a strategy with a bug
//! in its bookkeeping still cannot breach a limit. The rules themselves are [`PreTradeRisk`]'s:
//! the exchange's filters and the engine's limits, the order-rate bucket and the kill switch.
//!
//! A refused intent is answered to its strategy as a [`RejectReason::Risk`] report, as a venue
//! would answer, so the strategy's order state never assumes an order the gate stopped.
//!
//! Fixed capacity: the open-order table holds at most [`RiskLimits::max_open_orders`] entries,
//! which the gate itself enforces, and is allocated once; nothing here allocates afterwards.

use pinion_core::{InstrumentId, InstrumentSpec, Px, Qty};

use crate::order::{
    ClientOrderId, ExecReport, OrderAction, OrderIntent, OrderSide, OrderStatus, OrderType,
    RejectReason,
};
use crate::position::Position;
use crate::reason::{OrderReason, ReasonCode};
use crate::risk::{PreTradeRisk, RiskLimits, RiskReject, RiskState};

/// An order the gate let through and has not seen closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Open {
    id: ClientOrderId,
    side: OrderSide,
    order_type: OrderType,
    /// The limit (zero for a market order).
    px: Px,
    leaves: Qty,
    reason: OrderReason,
}

/// What the gate did, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GateStats {
    /// Intents let through (orders and cancels).
    pub passed: u64,
    /// Intents refused.
    pub refused: u64,
    /// Of those, refused because the order rate was used up.
    pub rate_limited: u64,
    /// Intents sent, by reason code (index `code as usize`): `[new orders and replaces,
    /// cancels and amends]`. Those the gate passed, and the stage's cancels that do not pass it
    /// ([`RiskGate::note_cancels`]).
    pub sent_by_code: [[u64; 2]; ReasonCode::ALL.len()],
}

impl GateStats {
    /// Counts `intent` as sent under its reason code.
    #[inline]
    fn count(&mut self, intent: &OrderIntent) {
        let kind = usize::from(!matches!(
            intent.action,
            OrderAction::New | OrderAction::Replace
        ));
        if let Some(row) = self.sent_by_code.get_mut(intent.reason.code as usize) {
            row[kind] += 1;
        }
    }
}

/// The pre-trade gate of one instrument. See the module docs.
#[derive(Debug, Clone)]
pub struct RiskGate {
    instrument: InstrumentId,
    risk: PreTradeRisk,
    position: Position,
    open: Vec<Open>,
    mid: Option<Px>,
    stats: GateStats,
}

impl RiskGate {
    /// A gate for `instrument` under `limits` and the filters of `spec`.
    pub fn new(instrument: InstrumentId, limits: RiskLimits, spec: InstrumentSpec) -> Self {
        let capacity = limits.max_open_orders as usize;
        Self {
            instrument,
            risk: PreTradeRisk::new(limits, spec),
            position: Position::new(),
            open: Vec::with_capacity(capacity),
            mid: None,
            stats: GateStats::default(),
        }
    }

    /// The instrument.
    pub fn instrument(&self) -> InstrumentId {
        self.instrument
    }

    /// The current mid (from a synced book), or `None` while the book has none or is unsynced:
    /// then every order that needs a reference price is refused.
    pub fn set_mid(&mut self, mid: Option<Px>) {
        self.mid = mid;
    }

    /// Turns the kill switch on or off. While on, only cancels pass.
    pub fn set_kill_switch(&mut self, on: bool) {
        self.risk.set_kill_switch(on);
    }

    /// Whether the order rate allows a new order at `now_ns`, without using it: strategies are
    /// told before they decide, so a used-up rate is a pause rather than a stream of refusals.
    pub fn order_rate_available(&mut self, now_ns: u64) -> bool {
        self.risk.order_rate_available(now_ns)
    }

    /// How many new orders the order rate allows at `now_ns`, without using any: what
    /// [`Intents::set_new_order_budget`](crate::Intents::set_new_order_budget) takes.
    pub fn order_tokens(&mut self, now_ns: u64) -> u32 {
        self.risk.order_tokens(now_ns)
    }

    /// The instrument's quantity step.
    pub fn position_step(&self) -> Qty {
        self.risk.spec().step
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &RiskLimits {
        self.risk.limits()
    }

    /// The position as the gate counts it (from fills).
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// Orders let through and not yet seen closed.
    pub fn open_orders(&self) -> usize {
        self.open.len()
    }

    /// The orders let through and not yet seen closed: their ids and sides, in no particular
    /// order. What a kill or a cancel-all cancels.
    pub fn open_ids(&self) -> impl Iterator<Item = (ClientOrderId, OrderSide)> + '_ {
        self.open.iter().map(|o| (o.id, o.side))
    }

    /// Counts an order placed before a restart (known from a journal) as open, with `leaves`
    /// still to fill, as if it had been let through now. Ignored when already known or when no
    /// room is left.
    pub fn restore_open(
        &mut self,
        id: ClientOrderId,
        side: OrderSide,
        order_type: OrderType,
        px: Px,
        leaves: Qty,
        reason: OrderReason,
    ) {
        if self.open.len() < self.open.capacity() && !self.open.iter().any(|o| o.id == id) {
            self.open.push(Open {
                id,
                side,
                order_type,
                px,
                leaves,
                reason,
            });
        }
    }

    /// Counts `n` cancels of `code` sent without passing the gate (those of the kill, a
    /// cancel-all, a protective exit, a flatten or the stop) in [`GateStats::sent_by_code`].
    #[inline]
    pub fn note_cancels(&mut self, code: ReasonCode, n: u64) {
        if let Some(row) = self.stats.sent_by_code.get_mut(code as usize) {
            row[1] += n;
        }
    }

    /// Why the open order `id` was placed; [`OrderReason::UNKNOWN`] when the gate does not
    /// hold it open. Asked before [`RiskGate::on_exec`] takes a report, so a fill that closes
    /// the order is still told its reason.
    #[inline]
    pub fn reason_of(&self, id: ClientOrderId) -> OrderReason {
        self.open
            .iter()
            .find(|o| o.id == id)
            .map_or(OrderReason::UNKNOWN, |o| o.reason)
    }

    /// [`RiskGate::open_ids`] with each order's type: what an exit policy that keeps
    /// protective orders sorts by.
    pub fn open_typed(&self) -> impl Iterator<Item = (ClientOrderId, OrderSide, OrderType)> + '_ {
        self.open.iter().map(|o| (o.id, o.side, o.order_type))
    }

    /// [`RiskGate::open_ids`] with each order's limit (zero for a market order) and reason:
    /// what self-trade prevention between strategy instances compares a new order with.
    pub fn open_priced(
        &self,
    ) -> impl Iterator<Item = (ClientOrderId, OrderSide, Px, OrderReason)> + '_ {
        self.open.iter().map(|o| (o.id, o.side, o.px, o.reason))
    }

    /// Counters.
    pub fn stats(&self) -> GateStats {
        self.stats
    }

    /// Checks `intent` at `now_ns` (the time the order-rate bucket runs on). On success the
    /// intent may be sent, and a new order counts as open from now on.
    pub fn admit(&mut self, intent: &OrderIntent, now_ns: u64) -> Result<(), RiskReject> {
        self.admit_as(intent, now_ns, false)
    }

    /// [`RiskGate::admit`] for a closing order of a flatten or de-risk: one that only reduces
    /// the position passes the kill switch (see [`PreTradeRisk::check_reducing`]); every other
    /// rule holds, and anything that does not only reduce is checked as usual.
    pub fn admit_reducing(&mut self, intent: &OrderIntent, now_ns: u64) -> Result<(), RiskReject> {
        self.admit_as(intent, now_ns, true)
    }

    /// Quantity open on the side that would close the position (sells of a long, buys of a
    /// short): what a closing order must leave room for.
    pub fn open_closing_qty(&self) -> Qty {
        let side = if self.position.qty().0 >= 0 {
            OrderSide::Sell
        } else {
            OrderSide::Buy
        };
        Qty(self
            .open
            .iter()
            .filter(|o| o.side == side)
            .fold(0i64, |a, o| a.saturating_add(o.leaves.0)))
    }

    fn admit_as(
        &mut self,
        intent: &OrderIntent,
        now_ns: u64,
        reducing: bool,
    ) -> Result<(), RiskReject> {
        let state = self.state(now_ns);
        let checked = if reducing {
            self.risk.check_reducing(intent, &state)
        } else {
            self.risk.check(intent, &state)
        };
        let verdict = checked.and_then(|()| {
            if intent.action == OrderAction::New && self.open.len() == self.open.capacity() {
                // Only reachable when max_open_orders is 0; the check above enforces the rest.
                return Err(RiskReject::MaxOpenOrders);
            }
            Ok(())
        });
        match verdict {
            Ok(()) => {
                self.stats.passed += 1;
                self.stats.count(intent);
                if intent.action == OrderAction::New {
                    self.open.push(Open {
                        id: intent.client_id,
                        side: intent.side,
                        order_type: intent.order_type,
                        px: intent.px,
                        leaves: intent.qty,
                        reason: intent.reason,
                    });
                }
            }
            Err(e) => {
                self.stats.refused += 1;
                if e == RiskReject::RateLimited {
                    self.stats.rate_limited += 1;
                }
            }
        }
        verdict
    }

    /// The report a strategy gets for an intent the gate refused: its order never opened.
    pub fn refusal(intent: &OrderIntent, venue_ts: u64) -> ExecReport {
        let status = match intent.action {
            OrderAction::New => OrderStatus::Rejected(RejectReason::Risk),
            _ => OrderStatus::CancelRejected(RejectReason::Risk),
        };
        ExecReport::refusal(intent, status, venue_ts)
    }

    /// Takes a venue's report into account: fills move the position, and an order's open
    /// quantity follows its reports until it closes.
    pub fn on_exec(&mut self, rep: &ExecReport) {
        if rep.instrument != self.instrument {
            return;
        }
        if rep.is_fill() {
            self.position
                .apply_fill(rep.side, rep.last_px, rep.last_qty);
        }
        let Some(i) = self.open.iter().position(|o| o.id == rep.client_id) else {
            return;
        };
        match rep.status {
            OrderStatus::New | OrderStatus::PartiallyFilled => self.open[i].leaves = rep.leaves_qty,
            s if s.is_final() => {
                self.open.swap_remove(i);
            }
            _ => {}
        }
    }

    fn state(&self, now_ns: u64) -> RiskState {
        let (mut buy, mut sell) = (0i64, 0i64);
        for o in &self.open {
            match o.side {
                OrderSide::Buy => buy = buy.saturating_add(o.leaves.0),
                OrderSide::Sell => sell = sell.saturating_add(o.leaves.0),
            }
        }
        RiskState {
            position: self.position.qty(),
            open_orders: self.open.len() as u32,
            open_buy_qty: Qty(buy),
            open_sell_qty: Qty(sell),
            mid: self.mid,
            now_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{OrderType, TimeInForce, VenueOrderId};
    use pinion_core::Venue;

    const INST: InstrumentId = InstrumentId(1);

    fn gate(max_open: u32) -> RiskGate {
        let spec = InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001").unwrap();
        let limits = RiskLimits {
            max_order_qty: Qty(1_000),
            max_notional: i128::MAX,
            max_position: Qty(1_500),
            max_open_orders: max_open,
            orders_per_sec: 1_000,
            order_burst: 100,
            price_band_bps: 100,
        };
        let mut g = RiskGate::new(INST, limits, spec);
        g.set_mid(Some(Px(10_000)));
        g
    }

    fn buy(id: u64, qty: i64) -> OrderIntent {
        OrderIntent::new_limit(
            0,
            ClientOrderId(id),
            INST,
            OrderSide::Buy,
            Px(10_000),
            Qty(qty),
            OrderType::Limit,
            TimeInForce::Gtc,
            crate::OrderReason::new(0, crate::ReasonCode::Entry),
        )
    }

    fn report(id: u64, status: OrderStatus, last: i64, leaves: i64) -> ExecReport {
        ExecReport {
            client_id: ClientOrderId(id),
            venue_id: VenueOrderId(id),
            instrument: INST,
            side: OrderSide::Buy,
            status,
            last_px: Px(10_000),
            last_qty: Qty(last),
            cum_qty: Qty(0),
            leaves_qty: Qty(leaves),
            maker: true,
            t0: 0,
            venue_ts: 0,
        }
    }

    #[test]
    fn open_quantity_and_fills_count_against_the_position_limit() {
        let mut g = gate(10);
        assert_eq!(g.admit(&buy(1, 1_000), 0), Ok(()));
        // 1000 open + 1000 more would pass the 1500 cap.
        assert_eq!(g.admit(&buy(2, 1_000), 0), Err(RiskReject::MaxPosition));
        assert_eq!(g.admit(&buy(3, 500), 0), Ok(()));
        // Order 1 fills 600: position 600, leaves 400; the cap still counts all of it.
        g.on_exec(&report(1, OrderStatus::PartiallyFilled, 600, 400));
        assert_eq!(g.position().qty(), Qty(600));
        assert_eq!(g.admit(&buy(4, 1), 0), Err(RiskReject::MaxPosition));
        // The open order knows its reason until it closes.
        let entry = crate::OrderReason::new(0, ReasonCode::Entry);
        assert_eq!(g.reason_of(ClientOrderId(1)), entry);
        // Cancelled: its 400 no longer counts, the 600 filled does.
        g.on_exec(&report(1, OrderStatus::Canceled, 0, 0));
        assert_eq!(g.reason_of(ClientOrderId(1)), OrderReason::UNKNOWN);
        assert_eq!(g.open_orders(), 1);
        assert_eq!(g.admit(&buy(5, 400), 0), Ok(()));
        assert_eq!(g.admit(&buy(6, 1), 0), Err(RiskReject::MaxPosition));
        assert_eq!(
            g.stats(),
            GateStats {
                passed: 3,
                refused: 3,
                rate_limited: 0,
                sent_by_code: {
                    let mut s = [[0; 2]; ReasonCode::ALL.len()];
                    s[ReasonCode::Entry as usize] = [3, 0];
                    s
                },
            }
        );
        // Cancels sent around the gate count under their code.
        g.note_cancels(ReasonCode::Kill, 2);
        assert_eq!(g.stats().sent_by_code[ReasonCode::Kill as usize], [0, 2]);
    }

    #[test]
    fn open_orders_are_capped_and_cancels_always_pass() {
        let mut g = gate(2);
        assert!(g.admit(&buy(1, 1), 0).is_ok());
        assert!(g.admit(&buy(2, 1), 0).is_ok());
        assert_eq!(g.admit(&buy(3, 1), 0), Err(RiskReject::MaxOpenOrders));
        g.set_kill_switch(true);
        let cancel = OrderIntent::cancel(
            0,
            ClientOrderId(9),
            ClientOrderId(1),
            INST,
            OrderSide::Buy,
            crate::OrderReason::new(0, crate::ReasonCode::Requote),
        );
        assert_eq!(g.admit(&cancel, 0), Ok(()));
        assert_eq!(g.admit(&buy(4, 1), 0), Err(RiskReject::KillSwitch));
        // A rejected order closes; a report for an order the gate never let through is ignored.
        g.on_exec(&report(
            2,
            OrderStatus::Rejected(RejectReason::MaxQty),
            0,
            0,
        ));
        g.on_exec(&report(77, OrderStatus::Filled, 5, 0));
        assert_eq!(g.open_orders(), 1);
        assert_eq!(g.position().qty(), Qty(5));
    }

    #[test]
    fn a_refusal_reads_like_a_venue_reject() {
        let r = RiskGate::refusal(&buy(7, 3), 42);
        assert_eq!(r.status, OrderStatus::Rejected(RejectReason::Risk));
        assert!(r.status.is_final());
        assert_eq!(
            (r.client_id, r.venue_ts, r.last_qty),
            (ClientOrderId(7), 42, Qty::ZERO)
        );
        let cancel = OrderIntent::cancel(
            5,
            ClientOrderId(8),
            ClientOrderId(7),
            INST,
            OrderSide::Buy,
            crate::OrderReason::new(0, crate::ReasonCode::Requote),
        );
        assert_eq!(
            RiskGate::refusal(&cancel, 0).status,
            OrderStatus::CancelRejected(RejectReason::Risk)
        );
    }

    #[test]
    fn without_a_mid_limit_orders_are_refused() {
        let mut g = gate(4);
        g.set_mid(None);
        assert_eq!(g.admit(&buy(1, 1), 0), Err(RiskReject::NoReferencePrice));
    }
}
