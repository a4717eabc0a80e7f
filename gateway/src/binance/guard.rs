//! [`Guard`]: the position's protective orders resting on the exchange (`protect =
//! "exchange"` or `"both"`), so a stop survives the engine, its host or its network.
//!
//! The guard sees every report of the venue's symbol and keeps the position those fills add up
//! to (from the position a journal replayed, after a restart). Whenever the position differs
//! from what the resting protection covers, [`Guard::plan`] says what to send: cancel what
//! rests, then place a new bracket against the whole position at the prices the configured
//! distances give from its average entry:
//! - a stop and a take-profit: an OCO of a `STOP_LOSS` and a `TAKE_PROFIT` (market once
//!   triggered), above and below as the side needs;
//! - one of them: that order alone (`order.place`);
//! - with a trailing distance the stop leg is a trailing stop (`trailingDelta`, in BIPS, from
//!   the best price since it was placed) instead of one at a fixed price.
//!
//! Flat: what rests is cancelled. A leg that ends (filled, cancelled, expired) takes the
//! bracket with it (the exchange expires an OCO's other leg); the next plan covers what the
//! position then is. A bracket the exchange refuses is not sent again until the position
//! changes, so a market that already passed the stop does not make a loop of refusals.
//!
//! All integer arithmetic on scaled prices, fixed-size state; nothing allocates.

use arrayvec::ArrayVec;
use pinion_core::{InstrumentId, Px, Qty};
use pinion_strategy::{
    ClientOrderId, ExecReport, OrderIdSource, OrderSide, OrderStatus, Position, ProtectParams,
    ReasonCode,
};

use super::contingent::{ContingentLeg, ContingentOrder, LegSpec, ListIntent, ListShape, Trigger};

const PPM: i128 = 1_000_000;

/// Client ids of the guard's orders of instrument `i` start at `((i + 1) << 40) | GUARD_ID_BIT`,
/// apart from the strategy's (no bit) and the strategy stage's own (bit 39).
pub const GUARD_ID_BIT: u64 = 1 << 38;

/// The first id of the guard's range for `instrument`.
pub const fn guard_id_base(instrument: InstrumentId) -> u64 {
    ((instrument.0 as u64 + 1) << 40) | GUARD_ID_BIT
}

/// Whether `id` is one of the guard's (any instrument).
pub const fn is_guard_id(id: ClientOrderId) -> bool {
    id.0 & GUARD_ID_BIT != 0 && id.0 & (1 << 39) == 0
}

/// A bracket to place: closing side, quantity, stop price, trailing delta (BIPS), take-profit
/// price.
type Target = (OrderSide, Qty, Option<Px>, Option<u32>, Option<Px>);

/// What rests on the exchange for the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bracket {
    /// The list's id (an OCO placed by this session); `None` for a single order, or legs
    /// adopted from an earlier session.
    pub list: Option<ClientOrderId>,
    /// The orders (one or two), each still open.
    pub legs: [Option<ClientOrderId>; 2],
    /// The closing side.
    pub side: OrderSide,
    /// The quantity each leg closes.
    pub qty: Qty,
    /// The stop leg's trigger price (`None`: trailing or no stop).
    pub stop: Option<Px>,
    /// The stop leg's trailing delta, BIPS.
    pub trailing_bips: Option<u32>,
    /// The take-profit leg's trigger price.
    pub take_profit: Option<Px>,
    /// Whether the exchange has answered its placement (a report of a leg came back). Until
    /// then it is not cancelled: the session refuses to cancel a list it has no answer for,
    /// and a cancel refused there would leave the bracket resting beside its replacement.
    pub answered: bool,
}

impl Bracket {
    /// What its single order protects against: the trailing stop, the stop or the
    /// take-profit. A bracket adopted from an earlier session is not known in that detail and
    /// counts as a stop.
    pub const fn reason(&self) -> ReasonCode {
        if self.trailing_bips.is_some() {
            ReasonCode::Trailing
        } else if self.stop.is_none() && self.take_profit.is_some() {
            ReasonCode::TakeProfit
        } else {
            ReasonCode::Stop
        }
    }
}

/// One request the guard asks the venue to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardAction {
    /// `orderList.cancel` of `list`, the request's own id `cancel_id`.
    CancelList {
        /// The list.
        list: ClientOrderId,
        /// The cancel request's id.
        cancel_id: ClientOrderId,
    },
    /// `order.cancel` of a single protective order (cancelling an OCO's leg cancels the list).
    CancelOrder {
        /// The order.
        target: ClientOrderId,
        /// Its side.
        side: OrderSide,
        /// The cancel request's id.
        cancel_id: ClientOrderId,
        /// What the order protected against, the cancel's reason.
        reason: ReasonCode,
    },
    /// Place an OCO.
    PlaceList(ListIntent),
    /// Place one protective order.
    PlaceOne(ContingentOrder),
}

/// What the guard did, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuardStats {
    /// Brackets placed.
    pub placed: u64,
    /// Brackets cancelled (resized or flat).
    pub cancelled: u64,
    /// Brackets the exchange refused.
    pub refused: u64,
    /// Protective orders that filled.
    pub triggered_fills: u64,
    /// Legs an earlier session left resting, taken as this session's bracket.
    pub adopted_legs: u64,
}

/// The protective orders of one symbol. See the module docs.
#[derive(Debug, Clone)]
pub struct Guard {
    instrument: InstrumentId,
    params: ProtectParams,
    tick: Px,
    position: Position,
    resting: Option<Bracket>,
    /// The position a refused bracket was for: nothing is placed again until it changes.
    refused_at: Option<Qty>,
    ids: OrderIdSource,
    stats: GuardStats,
    /// Something changed since the last plan (a fill, the end of a leg): planning again may
    /// send something. The venue plans only then, so an idle poll costs one load.
    due: bool,
}

impl Guard {
    /// A guard of `instrument` (price tick `tick`) under `params`, starting from `position`
    /// (what a journal replayed; flat otherwise), taking client ids from `first_id` on (see
    /// [`guard_id_base`]).
    pub fn new(
        instrument: InstrumentId,
        params: ProtectParams,
        tick: Px,
        position: Position,
        first_id: u64,
    ) -> Self {
        Self {
            instrument,
            params,
            tick,
            position,
            resting: None,
            refused_at: None,
            ids: OrderIdSource::new(first_id),
            stats: GuardStats::default(),
            due: true,
        }
    }

    /// Takes orders an earlier session placed (open when it stopped, still open at the
    /// exchange) as the resting bracket: `legs` of side `side`, each for `qty`.
    pub fn adopt(&mut self, side: OrderSide, qty: Qty, legs: &[ClientOrderId]) {
        let mut b = Bracket {
            list: None,
            legs: [None; 2],
            side,
            qty,
            stop: None,
            trailing_bips: None,
            take_profit: None,
            answered: true,
        };
        for (slot, id) in b.legs.iter_mut().zip(legs) {
            *slot = Some(*id);
        }
        if b.legs[0].is_some() {
            self.stats.adopted_legs += legs.len().min(2) as u64;
            self.resting = Some(b);
            self.due = true;
        }
    }

    /// The position the fills add up to (signed).
    pub fn position(&self) -> Qty {
        self.position.qty()
    }

    /// Whether something changed since the last [`Guard::plan`] (else it sends nothing).
    #[inline]
    pub fn is_due(&self) -> bool {
        self.due
    }

    /// What rests now.
    pub fn resting(&self) -> Option<&Bracket> {
        self.resting.as_ref()
    }

    /// A client id of the guard's range (for the venue's own cancels of adopted orders).
    pub fn next_id(&mut self) -> ClientOrderId {
        self.ids.next_id()
    }

    /// Counters.
    pub fn stats(&self) -> GuardStats {
        self.stats
    }

    /// The settings.
    pub fn params(&self) -> &ProtectParams {
        &self.params
    }

    /// Takes one report of the symbol: a fill moves the position; the end of a resting leg
    /// ends the bracket; a refusal of one marks the position as refused.
    #[inline]
    pub fn on_report(&mut self, rep: &ExecReport) {
        if rep.instrument != self.instrument {
            return;
        }
        if rep.is_fill() {
            self.due = true;
            self.position
                .apply_fill(rep.side, rep.last_px, rep.last_qty);
            if is_guard_id(rep.client_id) {
                self.stats.triggered_fills += 1;
            }
        }
        let Some(b) = self.resting.as_mut() else {
            return;
        };
        if !b.legs.contains(&Some(rep.client_id)) {
            return;
        }
        if !b.answered && !rep.status.is_final() {
            // Answered: what changed while the placement was in flight is planned now.
            b.answered = true;
            self.due = true;
        }
        if rep.status.is_final() {
            self.due = true;
        }
        match rep.status {
            OrderStatus::Rejected(_) => {
                self.stats.refused += 1;
                self.refused_at = Some(self.position.qty());
                self.resting = None;
            }
            s if s.is_final() => self.resting = None,
            _ => {}
        }
    }

    /// The bracket the position needs now: side, quantity, stop, trailing and take-profit.
    fn target(&self) -> Option<Target> {
        let pos = self.position.qty().0;
        if pos == 0 {
            return None;
        }
        let entry = self.position.avg_price()?;
        let long = pos > 0;
        let side = if long {
            OrderSide::Sell
        } else {
            OrderSide::Buy
        };
        let tick = i128::from(self.tick.0.max(1));
        let e = i128::from(entry.0);
        // Against the position: below a long's entry, above a short's; in favour: the opposite.
        let at = |ppm: u32, against: bool| -> Px {
            let d = e * i128::from(ppm) / PPM;
            let (raw, down) = if against == long {
                (e - d, true)
            } else {
                (e + d, false)
            };
            let grid = if down {
                raw.div_euclid(tick) * tick
            } else {
                (raw + tick - 1).div_euclid(tick) * tick
            };
            Px(grid.clamp(tick, i128::from(i64::MAX)) as i64)
        };
        let trailing = self.params.trailing_ppm.map(|p| (p.div_ceil(100)).max(1));
        let stop = if trailing.is_some() {
            None
        } else {
            self.params.stop_loss_ppm.map(|p| at(p, true))
        };
        let tp = self.params.take_profit_ppm.map(|p| at(p, false));
        if stop.is_none() && trailing.is_none() && tp.is_none() {
            return None;
        }
        Some((side, Qty(pos.saturating_abs()), stop, trailing, tp))
    }

    /// What to send now (at most a cancel and a placement), `t0` the time that caused it.
    /// The bracket placed is taken as resting at once; its reports confirm or end it. While
    /// its placement is unanswered nothing is sent: the answer makes the guard due again.
    pub fn plan(&mut self, t0: u64) -> ArrayVec<GuardAction, 2> {
        let mut out = ArrayVec::new();
        if !std::mem::take(&mut self.due) {
            return out;
        }
        if self.resting.as_ref().is_some_and(|b| !b.answered) {
            return out;
        }
        let target = self.target();
        if let Some(b) = &self.resting
            && target.is_some_and(|(side, qty, ..)| side == b.side && qty == b.qty)
        {
            return out;
        }
        if self.refused_at == Some(self.position.qty()) {
            return out;
        }
        self.refused_at = None;
        if let Some(b) = self.resting.take() {
            let cancel_id = self.ids.next_id();
            self.stats.cancelled += 1;
            match (b.list, b.legs[0]) {
                (Some(list), _) => out.push(GuardAction::CancelList { list, cancel_id }),
                (None, Some(target)) => out.push(GuardAction::CancelOrder {
                    target,
                    side: b.side,
                    cancel_id,
                    reason: b.reason(),
                }),
                (None, None) => {}
            }
        }
        let Some((side, qty, stop, trailing, tp)) = target else {
            return out;
        };
        let trigger = match (stop, trailing) {
            (_, Some(d)) => Some(Trigger::Trailing(d)),
            (Some(p), None) => Some(Trigger::Stop(p)),
            (None, None) => None,
        };
        let leg = |ids: &mut OrderIdSource, spec| ContingentLeg {
            client_id: ids.next_id(),
            side,
            qty,
            spec,
        };
        let mut legs = [None; 2];
        let (action, list) = match (trigger, tp) {
            (Some(t), Some(tp)) => {
                let list_id = self.ids.next_id();
                let stop_leg = leg(&mut self.ids, LegSpec::stop_loss(t));
                let profit_leg = leg(&mut self.ids, LegSpec::take_profit(Trigger::Stop(tp)));
                legs = [Some(stop_leg.client_id), Some(profit_leg.client_id)];
                // A sell's take-profit is above the market and its stop below; a buy's the
                // other way round.
                let (above, below) = match side {
                    OrderSide::Sell => (profit_leg, stop_leg),
                    OrderSide::Buy => (stop_leg, profit_leg),
                };
                let list = ListIntent {
                    t0,
                    instrument: self.instrument,
                    list_id,
                    shape: ListShape::Oco { above, below },
                };
                (GuardAction::PlaceList(list), Some(list_id))
            }
            (Some(t), None) => {
                let l = leg(&mut self.ids, LegSpec::stop_loss(t));
                legs[0] = Some(l.client_id);
                (self.one(t0, l), None)
            }
            (None, Some(tp)) => {
                let l = leg(&mut self.ids, LegSpec::take_profit(Trigger::Stop(tp)));
                legs[0] = Some(l.client_id);
                (self.one(t0, l), None)
            }
            (None, None) => return out,
        };
        self.stats.placed += 1;
        self.resting = Some(Bracket {
            list,
            legs,
            side,
            qty,
            stop,
            trailing_bips: trailing,
            take_profit: tp,
            answered: false,
        });
        out.push(action);
        out
    }

    fn one(&self, t0: u64, leg: ContingentLeg) -> GuardAction {
        GuardAction::PlaceOne(ContingentOrder {
            t0,
            instrument: self.instrument,
            leg,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_strategy::{RejectReason, VenueOrderId};
    use proptest::prelude::*;

    const ID: InstrumentId = InstrumentId(0);

    fn params(sl: Option<u32>, tp: Option<u32>, tr: Option<u32>) -> ProtectParams {
        ProtectParams {
            stop_loss_ppm: sl,
            take_profit_ppm: tp,
            trailing_ppm: tr,
            ..ProtectParams::default()
        }
    }

    fn guard(p: ProtectParams) -> Guard {
        Guard::new(ID, p, Px(1), Position::new(), guard_id_base(ID))
    }

    fn report(
        id: ClientOrderId,
        side: OrderSide,
        status: OrderStatus,
        px: i64,
        q: i64,
    ) -> ExecReport {
        ExecReport {
            client_id: id,
            venue_id: VenueOrderId(1),
            instrument: ID,
            side,
            status,
            last_px: Px(px),
            last_qty: Qty(q),
            cum_qty: Qty(q),
            leaves_qty: Qty(0),
            maker: false,
            t0: 0,
            venue_ts: 0,
        }
    }

    fn fill(g: &mut Guard, side: OrderSide, px: i64, q: i64) {
        g.on_report(&report(ClientOrderId(1), side, OrderStatus::Filled, px, q));
    }

    /// The exchange answers the bracket placed (a leg's `New`), and the guard plans what it
    /// held back until then.
    fn answer(g: &mut Guard, t0: u64) {
        if let Some(b) = g.resting().copied()
            && !b.answered
        {
            let leg = b.legs[0].expect("a leg");
            g.on_report(&report(leg, b.side, OrderStatus::New, 0, 0));
            let _ = g.plan(t0);
        }
    }

    #[test]
    fn a_long_gets_an_oco_sell_with_the_take_profit_above_and_the_stop_below() {
        let mut g = guard(params(Some(10_000), Some(20_000), None));
        fill(&mut g, OrderSide::Buy, 10_000, 3);
        let plan = g.plan(7);
        assert_eq!(plan.len(), 1);
        let GuardAction::PlaceList(list) = plan[0] else {
            panic!("{plan:?}")
        };
        list.check().expect("a valid OCO");
        let ListShape::Oco { above, below } = list.shape else {
            panic!()
        };
        assert_eq!((above.side, above.qty), (OrderSide::Sell, Qty(3)));
        assert_eq!(above.spec, LegSpec::take_profit(Trigger::Stop(Px(10_200))));
        assert_eq!(below.spec, LegSpec::stop_loss(Trigger::Stop(Px(9_900))));
        assert!(is_guard_id(list.list_id) && is_guard_id(above.client_id));
        // Nothing more while the position stays.
        assert!(g.plan(8).is_empty());
    }

    #[test]
    fn a_short_gets_the_stop_above_and_a_trailing_stop_when_configured() {
        let mut g = guard(params(Some(10_000), None, Some(5_000)));
        fill(&mut g, OrderSide::Sell, 10_000, 2);
        let plan = g.plan(1);
        let GuardAction::PlaceOne(o) = plan[0] else {
            panic!("{plan:?}")
        };
        o.check().expect("valid");
        assert_eq!(o.leg.side, OrderSide::Buy);
        assert_eq!(o.leg.spec, LegSpec::stop_loss(Trigger::Trailing(50)));
        let mut g = guard(params(Some(10_000), None, None));
        fill(&mut g, OrderSide::Sell, 10_000, 2);
        let GuardAction::PlaceOne(o) = g.plan(1)[0] else {
            panic!()
        };
        assert_eq!(o.leg.spec, LegSpec::stop_loss(Trigger::Stop(Px(10_100))));
    }

    #[test]
    fn growing_resizes_and_flat_cancels() {
        let mut g = guard(params(Some(10_000), Some(10_000), None));
        fill(&mut g, OrderSide::Buy, 10_000, 1);
        let GuardAction::PlaceList(first) = g.plan(1)[0] else {
            panic!()
        };
        fill(&mut g, OrderSide::Buy, 10_200, 1);
        // Not cancelled while its placement is unanswered (the session would refuse it, and
        // the list would stay beside its replacement); the answer brings the resize.
        assert!(g.plan(2).is_empty(), "resized before the exchange answered");
        assert!(!g.is_due());
        let ListShape::Oco { above: leg, .. } = first.shape else {
            panic!()
        };
        g.on_report(&report(leg.client_id, leg.side, OrderStatus::New, 0, 0));
        assert!(g.is_due());
        let plan = g.plan(2);
        assert_eq!(
            plan[0],
            GuardAction::CancelList {
                list: first.list_id,
                cancel_id: ClientOrderId(first.list_id.0 + 3)
            }
        );
        let GuardAction::PlaceList(second) = plan[1] else {
            panic!()
        };
        let ListShape::Oco { above, .. } = second.shape else {
            panic!()
        };
        // Two at an average of 101.00: take-profit 1 % above.
        assert_eq!(
            (above.qty, above.spec.trigger),
            (Qty(2), Some(Trigger::Stop(Px(10_201))))
        );
        g.on_report(&report(above.client_id, above.side, OrderStatus::New, 0, 0));
        fill(&mut g, OrderSide::Sell, 10_100, 2);
        let plan = g.plan(3);
        assert!(
            matches!(plan.as_slice(), [GuardAction::CancelList { list, .. }] if *list == second.list_id)
        );
        assert!(g.resting().is_none());
    }

    #[test]
    fn a_stop_that_fills_ends_the_bracket_and_a_refusal_is_not_repeated() {
        let mut g = guard(params(Some(10_000), None, None));
        fill(&mut g, OrderSide::Buy, 10_000, 2);
        let GuardAction::PlaceOne(o) = g.plan(1)[0] else {
            panic!()
        };
        g.on_report(&report(
            o.leg.client_id,
            OrderSide::Sell,
            OrderStatus::Filled,
            9_900,
            2,
        ));
        assert_eq!(g.position(), Qty(0));
        assert!(g.resting().is_none());
        assert!(g.plan(2).is_empty());
        assert_eq!(g.stats().triggered_fills, 1);
        fill(&mut g, OrderSide::Buy, 10_000, 1);
        let GuardAction::PlaceOne(o) = g.plan(3)[0] else {
            panic!()
        };
        let refused = OrderStatus::Rejected(RejectReason::Venue);
        g.on_report(&report(o.leg.client_id, OrderSide::Sell, refused, 0, 0));
        assert!(g.plan(4).is_empty(), "not again for the same position");
        fill(&mut g, OrderSide::Buy, 10_000, 1);
        assert_eq!(g.plan(5).len(), 1, "a new position is tried");
    }

    #[test]
    fn adopted_legs_are_the_bracket_and_are_cancelled_by_order() {
        let mut pos = Position::new();
        pos.apply_fill(OrderSide::Buy, Px(10_000), Qty(2));
        let mut g = Guard::new(
            ID,
            params(Some(10_000), None, None),
            Px(1),
            pos,
            guard_id_base(ID) + 100,
        );
        let leg = ClientOrderId(guard_id_base(ID) + 5);
        g.adopt(OrderSide::Sell, Qty(2), &[leg]);
        assert!(g.plan(1).is_empty(), "adopted, not duplicated");
        fill(&mut g, OrderSide::Sell, 10_000, 2);
        assert!(
            matches!(g.plan(2).as_slice(), [GuardAction::CancelOrder { target, .. }] if *target == leg)
        );
    }

    proptest! {
        /// After every fill and the plan that follows it, what rests closes exactly the
        /// position: one bracket, on the closing side, for its whole size; nothing when flat.
        #[test]
        fn what_rests_always_equals_the_position(
            fills in proptest::collection::vec((any::<bool>(), 1i64..5, 9_000i64..11_000), 1..40),
            stop_fills in proptest::collection::vec(any::<bool>(), 40),
        ) {
            let mut g = guard(params(Some(10_000), Some(10_000), None));
            for (k, (buy, q, px)) in fills.into_iter().enumerate() {
                let side = if buy { OrderSide::Buy } else { OrderSide::Sell };
                fill(&mut g, side, px, q);
                let _ = g.plan(k as u64);
                answer(&mut g, k as u64);
                // Sometimes the stop leg fills in full before the next fill.
                if stop_fills[k]
                    && let Some(b) = g.resting().copied()
                {
                    g.on_report(&report(b.legs[0].expect("a leg"), b.side, OrderStatus::Filled, px, b.qty.0));
                    let _ = g.plan(k as u64);
                    answer(&mut g, k as u64);
                    prop_assert_eq!(g.position(), Qty(0));
                }
                let pos = g.position().0;
                match g.resting() {
                    None => prop_assert_eq!(pos, 0),
                    Some(b) => {
                        prop_assert_eq!(b.qty.0, pos.abs());
                        let closing = if pos > 0 { OrderSide::Sell } else { OrderSide::Buy };
                        prop_assert_eq!(b.side, closing);
                    }
                }
            }
        }
    }
}
